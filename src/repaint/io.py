"""Images and config files in and out, with errors that name the file.

Writes go to a temporary name in the target folder and are renamed when complete, so an
interrupted run never leaves a truncated image behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import torch
import yaml
from PIL import Image, UnidentifiedImageError

from repaint.errors import RepaintError

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif"}  # what the reference's loader lists


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise RepaintError(f"{path}: no such config file") from None
    except OSError as error:
        raise RepaintError(f"{path}: cannot read config ({error.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        first_line = str(error).splitlines()[0]
        raise RepaintError(f"{path}: not valid YAML ({first_line})") from None
    if not isinstance(data, dict):
        raise RepaintError(f"{path}: expected a mapping of config keys at the top level")
    return data


def read_image(path: str | Path) -> Image.Image:
    """Open and fully decode an image as RGB (catches truncated files up front)."""
    path = Path(path)
    if not path.is_file():
        raise RepaintError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            image.load()
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RepaintError(f"{path}: not a readable image ({reason})") from None


def list_images(folder: str | Path) -> list[Path]:
    """Image files below `folder`, recursively, sorted by path like the reference."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RepaintError(f"{folder}: no such image folder")
    return sorted(
        (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()),
        key=str,
    )


def center_crop_resize(image: Image.Image, size: int) -> np.ndarray:
    """The reference's resize: halve with a box filter while possible, bicubic-resize the
    short side to `size`, then take the centre square. Returns uint8 (size, size, C)."""
    while min(image.size) >= 2 * size:
        image = image.resize(tuple(side // 2 for side in image.size), resample=Image.BOX)
    scale = size / min(image.size)
    image = image.resize(tuple(round(side * scale) for side in image.size), Image.BICUBIC)
    array = np.asarray(image)
    top = (array.shape[0] - size) // 2
    left = (array.shape[1] - size) // 2
    return array[top : top + size, left : left + size]


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """(N, C, H, W) in [-1, 1] -> (N, H, W, C) uint8, truncating as the reference does."""
    pixels = ((images.detach().float() + 1) * 127.5).clamp(0, 255).to(torch.uint8)
    return pixels.permute(0, 2, 3, 1).cpu().numpy()


@contextmanager
def atomic_output(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; rename it to `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_image(array: np.ndarray, path: str | Path) -> None:
    """Write a uint8 (H, W, C) array; the format follows the file extension."""
    path = Path(path)
    image = Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array)
    with atomic_output(path) as handle:
        image.save(handle, format=Image.registered_extensions().get(path.suffix.lower(), "PNG"))
