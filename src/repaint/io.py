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
from PIL import Image, ImageOps, UnidentifiedImageError

from repaint.errors import RepaintError

_UMASK = os.umask(0)
os.umask(_UMASK)
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
    """Open and fully decode an image as RGB, as the reference's loader does (no EXIF turn)."""
    return open_image(path, upright=False).convert("RGB")


ImageSource = str | Path | Image.Image | np.ndarray | torch.Tensor


def open_image(path: str | Path, *, upright: bool = True) -> Image.Image:
    """Open and fully decode an image file, keeping its mode (errors name the file).

    Decoding everything up front catches truncated files before any work is done; `upright`
    applies the EXIF orientation, as photo viewers do.
    """
    path = Path(path)
    if not path.is_file():
        raise RepaintError(f"{path}: no such image file")
    try:
        with Image.open(path) as image:
            image.load()
            return (ImageOps.exif_transpose(image) or image) if upright else image.copy()
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RepaintError(f"{path}: not a readable image ({reason})") from None


def pil_to_rgb(image: Image.Image) -> np.ndarray:
    """Any Pillow mode as uint8 RGB: 16/32-bit greys are scaled down (not clipped), CMYK,
    palette and alpha images converted."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        values = np.asarray(image).astype(np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        grey = np.round(values / peak * 255).clip(0, 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    if image.mode == "F":
        grey = np.round(np.asarray(image).clip(0, 1) * 255).astype(np.uint8)
        return np.repeat(grey[..., None], 3, axis=-1)
    return np.asarray(image.convert("RGB"))


def load_rgb(source: ImageSource, name: str = "image") -> np.ndarray:
    """An image as uint8 (H, W, 3) RGB from a path, PIL image, array or tensor.

    Arrays are (H, W), (H, W, 1|3|4) uint8 or float in [0, 1]; tensors (3, H, W) or
    (1, 3, H, W) in [-1, 1], the sampler's convention.
    """
    if isinstance(source, (str, Path)):
        name = str(source)
        array = pil_to_rgb(open_image(source))
    elif isinstance(source, Image.Image):
        array = pil_to_rgb(ImageOps.exif_transpose(source) or source)
    elif isinstance(source, torch.Tensor):
        tensor = source.detach().float().cpu()
        if tensor.ndim == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim != 3 or tensor.shape[0] != 3:
            raise RepaintError(f"{name}: expected a (3, H, W) tensor, got {tuple(source.shape)}")
        array = ((tensor.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).numpy()
    elif isinstance(source, np.ndarray):
        array = source
        if array.ndim == 2:
            array = array[..., None]
        if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
            raise RepaintError(f"{name}: expected an (H, W, 3) array, got shape {source.shape}")
        if array.dtype != np.uint8:
            array = np.round(np.clip(array.astype(np.float64), 0, 1) * 255).astype(np.uint8)
        array = np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array[..., :3]
    else:
        raise RepaintError(f"{name}: unsupported image type {type(source).__name__}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise RepaintError(f"{name}: the image is empty (zero size)")
    return np.array(array, dtype=np.uint8, order="C")  # a writable copy


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
        os.chmod(temporary, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs are ordinary files
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
