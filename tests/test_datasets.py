"""The built-in digits: the fixed split the `digits` model was trained on."""

import numpy as np
import pytest

from repaint.datasets import load_digits
from repaint.errors import RepaintError

pytest.importorskip("sklearn")


def test_fixed_split_sizes_and_disjointness():
    train_images, train_labels = load_digits("train", 32)
    test_images, test_labels = load_digits("test", 32)
    all_images, _ = load_digits("all", 32)
    assert len(train_images) == len(train_labels) == 1497
    assert len(test_images) == len(test_labels) == 300 >= 250
    assert len(all_images) == len(train_images) + len(test_images)
    np.testing.assert_array_equal(test_images, all_images[::6])  # every sixth scan
    assert set(np.unique(test_labels)) == set(range(10))
    assert train_images.shape[1:] == (32, 32, 3) and train_images.dtype == np.uint8


def test_digits_are_white_ink_on_black():
    images, _ = load_digits("test", 16)
    assert images[:, 0, 0].mean() < 10  # corners are background
    assert images.max() > 200  # strokes are bright


def test_unknown_split_is_refused():
    with pytest.raises(RepaintError, match="split"):
        load_digits("validation")
