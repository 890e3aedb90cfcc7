"""Images and config files in and out, with errors that name the file.

Writes go to a temporary name in the target folder and are renamed when complete, so an
interrupted run never leaves a truncated image behind.
"""

from __future__ import annotations

import io
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import numpy as np
import torch
import yaml
from PIL import Image, ImageOps, UnidentifiedImageError

from repaint.errors import RepaintError, TooLarge

MAX_PIXELS_ENV = "REPAINT_MAX_PIXELS"
DEFAULT_MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485  # Pillow's own bomb threshold
FILE_MODE = 0o644  # outputs are ordinary files (mkstemp alone makes them 0600)
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".gif"}  # what the reference's loader lists
INPUT_EXTENSIONS = IMAGE_EXTENSIONS | {".webp", ".bmp", ".tif", ".tiff"}  # what inpaint reads


def max_pixels() -> int:
    """The most pixels an input image may have: $REPAINT_MAX_PIXELS, else Pillow's limit."""
    value = os.environ.get(MAX_PIXELS_ENV)
    if value is None:
        return DEFAULT_MAX_PIXELS
    if not value.strip().isdigit() or int(value) < 1:
        raise RepaintError(f"${MAX_PIXELS_ENV}: expected a positive whole number, got {value!r}")
    return int(value)


def check_pixels(width: int, height: int, name: object) -> None:
    """Refuse an image larger than `max_pixels()` before it is decoded (decompression bombs
    claim huge sizes in a few bytes)."""
    limit = max_pixels()
    if width * height > limit:
        raise TooLarge(
            f"{name}: {width}x{height} is {width * height:,} pixels, more than the limit of "
            f"{limit:,}; shrink the image or raise ${MAX_PIXELS_ENV}"
        )


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


def open_image(path: str | Path | bytes, *, upright: bool = True, name: str = "") -> Image.Image:
    """Open and fully decode an image file (or its bytes), keeping its mode; errors name the
    file (or `name`).

    Decoding everything up front catches truncated files before any work is done; the size
    is checked against `max_pixels()` before decoding; `upright` applies the EXIF
    orientation, as photo viewers do.
    """
    if isinstance(path, bytes):
        source, label = io.BytesIO(path), name or "image"
    else:
        path = Path(path)
        if not path.is_file():
            raise RepaintError(f"{path}: no such image file")
        source, label = path, str(path)
    with _decoding(label), Image.open(source) as image:
        check_pixels(*image.size, label)
        image.load()
        return (ImageOps.exif_transpose(image) or image) if upright else image.copy()


def image_header(path: str | Path) -> tuple[int, int]:
    """(width, height) as an image file's header gives them, without decoding the pixels:
    a cheap check of every file of a large folder (a truncated body shows only on decoding).
    The EXIF orientation is not applied."""
    with _decoding(str(path)), Image.open(path) as image:
        check_pixels(*image.size, path)
        return image.size


@contextmanager
def _decoding(label: str) -> Iterator[None]:
    """Pillow's failures as one line naming the file; our pixel limit replaces its warning."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    except Image.DecompressionBombError:
        raise TooLarge(
            f"{label}: its header claims more than {2 * DEFAULT_MAX_PIXELS:,} pixels, more "
            "than Pillow decodes (a decompression bomb?); shrink the image"
        ) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as error:
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise RepaintError(f"{label}: not a readable image ({reason})") from None


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

    Arrays are (H, W) or (H, W, 1|3|4); tensors (H, W), (C, H, W) or (1, C, H, W). uint8
    values are pixels, uint16 scale down from 65535. Floats are read by their range, never
    guessed silently: any negative value means [-1, 1] (the model's range), otherwise
    [0, 1] (what `torchvision`'s `to_tensor` and diffusers' processors give); values
    outside both are refused.
    """
    if isinstance(source, (str, Path)):
        name = str(source)
        array = pil_to_rgb(open_image(source))
    elif isinstance(source, Image.Image):
        check_pixels(*source.size, name)
        array = pil_to_rgb(ImageOps.exif_transpose(source) or source)
    elif isinstance(source, torch.Tensor):
        check_pixels(source.shape[-1], source.shape[-2] if source.ndim > 1 else 1, name)
        tensor = source.detach().cpu()
        if tensor.ndim == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim == 3 and tensor.shape[0] in (1, 3, 4):
            tensor = tensor.permute(1, 2, 0)
        elif tensor.ndim != 2:
            raise RepaintError(
                f"{name}: expected a (3, H, W) or (1, 3, H, W) tensor, got {tuple(source.shape)}"
            )
        array = _rgb_pixels(
            tensor.float().numpy() if tensor.is_floating_point() else tensor.numpy(), name
        )
    elif isinstance(source, np.ndarray):
        if source.ndim >= 2:
            check_pixels(source.shape[1], source.shape[0], name)
        array = _rgb_pixels(source, name)
    else:
        raise RepaintError(f"{name}: unsupported image type {type(source).__name__}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise RepaintError(f"{name}: the image is empty (zero size)")
    return np.array(array, dtype=np.uint8, order="C")  # a writable copy


def _rgb_pixels(array: np.ndarray, name: str) -> np.ndarray:
    """(H, W) or (H, W, 1|3|4) of any numeric dtype -> uint8 (H, W, 3)."""
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise RepaintError(f"{name}: expected an (H, W, 3) array, got shape {array.shape}")
    if array.dtype == np.uint16:
        array = np.round(array.astype(np.float64) / 257)
    elif np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float64)
        if values.size and not np.isfinite(values).all():
            raise RepaintError(f"{name}: the image holds NaN or infinite values")
        low, high = (values.min(), values.max()) if values.size else (0.0, 0.0)
        if low < -1 or high > 1:
            raise RepaintError(
                f"{name}: float pixel values must lie in [0, 1] or [-1, 1], got "
                f"[{low:g}, {high:g}]; divide 0-255 values by 255 or pass uint8"
            )
        array = np.round((values + 1) * 127.5 if low < 0 else values * 255)
    elif array.dtype != np.uint8:
        raise RepaintError(f"{name}: unsupported pixel type {array.dtype}; use uint8 or float")
    array = array.astype(np.uint8)
    return np.repeat(array, 3, axis=-1) if array.shape[-1] == 1 else array[..., :3]


def list_images(folder: str | Path, extensions: set[str] = IMAGE_EXTENSIONS) -> list[Path]:
    """Image files below `folder`, recursively, sorted by path like the reference (whose
    loader lists .jpg, .jpeg, .png and .gif: the default)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise RepaintError(f"{folder}: no such image folder")
    return sorted(
        (p for p in folder.rglob("*") if p.suffix.lower() in extensions and p.is_file()),
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


# 8-bit conversions, in one place. The model's range is [-1, 1]; pixel values are 0-255.


def from_uint8(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float (C, H, W) in [-1, 1]."""
    return torch.from_numpy(np.array(pixels, dtype=np.uint8)).permute(2, 0, 1).float() / 127.5 - 1


def to_levels(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] -> float pixel levels in [0, 255] (clamped, not yet rounded)."""
    return (images.detach().float().clamp(-1, 1) + 1) * 127.5


def to_uint8(images: torch.Tensor, *, truncate: bool = False) -> np.ndarray:
    """(N, C, H, W) or (C, H, W) in [-1, 1] -> (N, H, W, C) or (H, W, C) uint8, rounded;
    `truncate` converts as the reference's `test.py` does (for `repaint run`'s folders)."""
    levels = to_levels(images)
    pixels = (levels if truncate else levels.round()).to(torch.uint8)
    return pixels.movedim(-3, -1).cpu().numpy()


def check_output_folder(folder: str | Path, what: str = "--out") -> None:
    """Refuse an output folder that cannot be written, before any work: it must be a folder
    (or creatable below the nearest existing one) and writable. Nothing is created here."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        problem = (
            "is not a folder" if existing == folder else f"cannot be made: {existing} is a file"
        )
        raise RepaintError(f"{what} {folder}: {problem}")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RepaintError(f"{what} {folder}: {existing} is not writable")


@contextmanager
def atomic_output(path: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file beside `path`; rename it to `path` only if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
        os.chmod(temporary, FILE_MODE)
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
