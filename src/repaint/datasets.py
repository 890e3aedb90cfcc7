"""Training data: a folder of images, or the built-in `digits`.

`digits` are the 1,797 real 8x8 handwritten digit scans that ship with scikit-learn,
upscaled to the model size (bicubic) as white ink on black, in RGB. The split is fixed:
every sixth image (index % 6 == 0, 300 images) is the held-out test set that the `digits`
model never saw; the other 1,497 are the training set.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from repaint.errors import RepaintError, RepaintWarning
from repaint.io import INPUT_EXTENSIONS, center_crop_resize, open_image, pil_to_rgb
from repaint.version import install_hint

BUILTIN = ("digits",)
TEST_EVERY = 6


def load_digits(split: str = "train", size: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """The digits of one split as uint8 (N, size, size, 3) images and their int labels."""
    try:
        from sklearn.datasets import load_digits as sklearn_digits
    except ImportError:
        raise RepaintError(
            f"the digits dataset needs scikit-learn: {install_hint('train')}"
        ) from None
    if split not in ("train", "test", "all"):
        raise RepaintError(f"digits split must be train, test or all, got {split!r}")
    data = sklearn_digits()
    index = np.arange(len(data.target))
    if split == "test":
        index = index[index % TEST_EVERY == 0]
    elif split == "train":
        index = index[index % TEST_EVERY != 0]
    images = [_upscale_digit(data.images[i], size) for i in index]
    return np.stack(images), data.target[index].astype(np.int64)


def _upscale_digit(digit: np.ndarray, size: int) -> np.ndarray:
    """An 8x8 scan with ink 0..16 as white-on-black uint8 RGB of `size`."""
    grey = Image.fromarray(np.round(digit * (255 / 16)).astype(np.uint8))
    resized = np.asarray(grey.resize((size, size), Image.BICUBIC))
    return np.repeat(resized[..., None], 3, axis=-1)


def load_folder(folder: str | Path, size: int) -> np.ndarray:
    """Every image below `folder` as uint8 (N, size, size, 3): centre-cropped and resized
    (with a warning when sizes differ); other files are skipped with a warning."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RepaintError(f"{folder}: no such folder (or use a built-in dataset: {BUILTIN})")
    images, sizes = [], set()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        if path.suffix.lower() not in INPUT_EXTENSIONS:
            warnings.warn(f"{path}: not an image file, skipped", RepaintWarning, stacklevel=2)
            continue
        try:
            image = open_image(path)
        except RepaintError as error:
            warnings.warn(f"{error}; skipped", RepaintWarning, stacklevel=2)
            continue
        sizes.add(image.size)
        images.append(center_crop_resize(Image.fromarray(pil_to_rgb(image)), size))
    if not images:
        raise RepaintError(f"{folder}: no readable images to train on")
    if len(sizes) > 1 or sizes != {(size, size)}:
        warnings.warn(
            f"{folder}: images of {len(sizes)} size(s) were centre-cropped and resized to "
            f"{size}x{size}",
            RepaintWarning,
            stacklevel=2,
        )
    return np.stack(images)


def load_training_images(source: str, size: int) -> np.ndarray:
    if source in BUILTIN:
        return load_digits("train", size)[0]
    return load_folder(source, size)
