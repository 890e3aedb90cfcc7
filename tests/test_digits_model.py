"""The embedded `digits` model: shipped, small, loadable offline, and actually trained."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from repaint.checkpoints import DIGITS, DIGITS_DIR, list_models, resolve_model
from repaint.loading import load_inpainter

pytest.importorskip("sklearn")


def test_ships_within_the_size_limit_with_its_config():
    assert DIGITS.local_path.is_file()
    assert DIGITS.local_path.stat().st_size <= 20 * 1024 * 1024
    shipped = yaml.safe_load((DIGITS_DIR / "digits.yml").read_text())
    assert DIGITS.config["image_size"] == 32 and DIGITS.config["learn_sigma"] is True
    assert "repaint train --data digits" in shipped["trained"]["command"]


def test_listed_as_available_and_default():
    row = next(row for row in list_models() if row["name"] == "digits")
    assert row["downloaded"]
    assert resolve_model("digits").checkpoint == DIGITS.local_path


def test_fills_a_held_out_digit_plausibly():
    """The model generates digit-like strokes, not noise: the filled right half of a held-out
    digit is dark background in the corners and has some bright ink."""
    from repaint.datasets import load_digits

    images, _ = load_digits("test", 32)
    inpainter = load_inpainter("digits", device="cpu")
    keep = np.ones((32, 32), dtype=bool)
    keep[:, 16:] = False
    filled = np.asarray(inpainter(images[1], keep, preset="draft", seed=0).images[0])
    right = filled[:, 16:, 0].astype(float)
    assert right[:4, -4:].mean() < 60 and right[-4:, -4:].mean() < 60  # background corners
    assert right.max() > 150  # some stroke
    np.testing.assert_array_equal(filled[:, :16], images[1][:, :16])


def test_a_fill_of_the_greyscale_model_is_grey_even_where_almost_all_is_invented():
    """The demo's ex64 row (94% filled) used to come out with a pink cast: the model's three
    channels drift apart where little is known. Its fills are now grey, known pixels exact."""
    from repaint.datasets import load_digits
    from repaint.masks import generate_mask

    images, _ = load_digits("test", 32)
    keep = generate_mask("ex64", 32, np.random.default_rng(0))
    inpainter = load_inpainter("digits", device="cpu")
    result = inpainter(images[4], keep, preset="draft", seed=4)
    out = np.asarray(result.image).astype(int)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert np.array_equal(out[keep], images[4][keep])
    assert inpainter.domain is not None and inpainter.domain.greyscale
