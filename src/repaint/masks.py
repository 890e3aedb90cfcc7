"""Inpainting masks: reading them in any common convention, growing them, and generating
the six mask kinds of the RePaint paper (Lugmayr et al. 2022).

A mask is a bool array of shape (H, W) with True = known pixel (kept) and False = pixel to
fill, the reference's convention, in which a white (255) mask pixel is kept.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from repaint.choices import MASK_KINDS, MASK_MODES
from repaint.errors import RepaintError, RepaintWarning
from repaint.io import ImageSource, open_image, write_image

MODES = tuple(MASK_MODES)  # what a white mask pixel means

# ITU-R BT.601 weights, the ones Pillow's convert("L") uses, so an RGB mask reads the way an
# image viewer's greyscale shows it.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# LaMa's data_gen configs random_thin_256 / random_thick_256 (the paper's Narrow and Wide).
# Lengths, widths, box sides and margin are in pixels of a 256 image and scale with the size.
_THIN = {"min_strokes": 4, "max_strokes": 50, "max_width": 10, "max_len": 40}
_THICK = {"min_strokes": 1, "max_strokes": 5, "max_width": 100, "max_len": 200}
_MAX_ANGLE = 4
_MAX_VERTICES = 5
# LaMa mixes its generators by weight, one generator per mask: strokes 1, boxes 0.3.
_BOX_CHANCE = 0.3 / 1.3
_BOX_MARGIN, _BOX_MIN, _BOX_MAX, _MAX_BOXES = 10, 30, 150, 3
# LaMa discards masks that fill more than half the image (max_tamper_area: 0.5) and draws
# again; the bound only keeps the loop finite, a thick mask passes in most draws.
_MAX_FILL = 0.5
_MAX_DRAWS = 100


def load_mask(
    source: ImageSource,
    *,
    mode: str = "keep",
    size: tuple[int, int] | None = None,
    name: str = "mask",
) -> np.ndarray:
    """Read a mask into a bool keep-mask (True = known).

    `mode="keep"`: white means keep (the reference); `mode="fill"`: white means fill (most
    editors). A pixel is white when its value is at least half of full scale, so
    anti-aliased edges split at 50%. Colour masks are read by luminance (BT.601). With an
    alpha channel that is not fully opaque everywhere, the alpha is the mask (opaque =
    white), because tools that paint over a transparent layer leave the colour meaningless.
    16-bit images ("I;16", and "I" taken as 16-bit) have full scale 65535, float arrays 1.

    `size=(width, height)` is the image's size: a mask of another size is resized with
    nearest neighbour, with a RepaintWarning. Files are named by their path in errors, other
    sources by `name`.
    """
    label = str(source) if isinstance(source, str | Path) else name
    if mode not in MODES:
        raise RepaintError(f"{label}: unknown mask mode {mode!r} (expected 'keep' or 'fill')")
    if isinstance(source, str | Path):
        array = _pil_to_array(open_image(source), label)
    elif isinstance(source, Image.Image):
        array = _pil_to_array(source, label)
    elif isinstance(source, torch.Tensor):
        array = _tensor_to_array(source, label)
    elif isinstance(source, np.ndarray):
        array = source
    else:
        raise RepaintError(f"{label}: cannot read a mask from {type(source).__name__}")

    white = _whiteness(array, label) >= 0.5
    keep = white if mode == "keep" else ~white
    if size is not None and keep.shape != (size[1], size[0]):
        height, width = keep.shape
        warnings.warn(
            f"{label}: mask is {width}x{height} but the image is {size[0]}x{size[1]}; "
            "resized with nearest neighbour",
            RepaintWarning,
            stacklevel=2,
        )
        keep = np.array(Image.fromarray(keep).resize(size, Image.NEAREST), dtype=bool)
    return keep


def _pil_to_array(image: Image.Image, label: str) -> np.ndarray:
    """Pixels as an array whose dtype says the full scale (bool, uint8, uint16, float)."""
    if image.mode in ("1", "L", "LA", "RGB", "RGBA", "F") or image.mode.startswith("I;16"):
        return np.asarray(image)
    if image.mode == "I":  # what older Pillow makes of a 16-bit PNG
        return np.asarray(image).clip(0, 65535).astype(np.uint16)
    try:  # palette and the rarer modes; Pillow turns palette transparency into alpha
        return np.asarray(image.convert("RGBA"))
    except ValueError:
        raise RepaintError(f"{label}: unsupported image mode {image.mode!r} for a mask") from None


def _tensor_to_array(tensor: torch.Tensor, label: str) -> np.ndarray:
    """(H, W), (1, H, W), (C, H, W) or (1, C, H, W) -> (H, W) or (H, W, C)."""
    shape = tuple(tensor.shape)
    if tensor.dim() == 4 and shape[0] == 1:
        tensor = tensor[0]
    if tensor.dim() == 3:
        tensor = tensor.permute(1, 2, 0)
    elif tensor.dim() != 2:
        raise RepaintError(
            f"{label}: a mask tensor must be (H, W), (1, H, W), (C, H, W) or (1, C, H, W), "
            f"got shape {shape}"
        )
    tensor = tensor.detach().cpu()
    if tensor.is_floating_point():
        tensor = tensor.float()  # numpy has no bfloat16
    return tensor.numpy()


def _whiteness(array: np.ndarray, label: str) -> np.ndarray:
    """Mask value as a fraction of full scale, (H, W) float32."""
    if array.ndim not in (2, 3):
        raise RepaintError(f"{label}: a mask array must be (H, W) or (H, W, C), got {array.shape}")
    if array.size == 0:
        raise RepaintError(f"{label}: the mask is empty (shape {array.shape})")
    channels = 1 if array.ndim == 2 else array.shape[2]
    if not 1 <= channels <= 4:
        raise RepaintError(f"{label}: a mask has 1 to 4 channels, got {channels}")

    if array.dtype == bool:
        values = array.astype(np.float32)
    elif array.dtype.type is np.uint8:
        values = array.astype(np.float32) / 255
    elif array.dtype.type is np.uint16:
        values = array.astype(np.float32) / 65535
    elif np.issubdtype(array.dtype, np.floating):
        if not (np.isfinite(array).all() and array.min() >= 0 and array.max() <= 1):
            raise RepaintError(f"{label}: float mask values must lie in [0, 1]")
        values = array.astype(np.float32)
    else:
        raise RepaintError(
            f"{label}: mask dtype {array.dtype} is not supported (use bool, uint8, uint16 "
            "or float in [0, 1])"
        )

    if values.ndim == 2:
        return values
    colour = values[..., 0] if channels <= 2 else values[..., :3] @ _LUMA
    alpha = values[..., -1] if channels in (2, 4) else None
    return alpha if alpha is not None and (alpha < 1).any() else colour


def grow_fill(keep: np.ndarray, pixels: int) -> np.ndarray:
    """Grow the area to fill by `pixels` in every direction, so generated content blends
    past the edge of an object. The structuring element is a square (Chebyshev distance):
    a square's max filter separates into a row pass and a column pass, cheap for any size."""
    if pixels < 0:
        raise RepaintError(f"mask growth must be 0 or more pixels, got {pixels}")
    if pixels == 0:
        return keep
    fill = torch.from_numpy(~keep).float()[None, None]
    side = 2 * pixels + 1
    fill = F.max_pool2d(fill, (1, side), stride=1, padding=(0, pixels))
    fill = F.max_pool2d(fill, (side, 1), stride=1, padding=(pixels, 0))
    return fill[0, 0].numpy() == 0


def fill_fraction(keep: np.ndarray) -> float:
    """Share of pixels to fill, in [0, 1]."""
    return (keep.size - np.count_nonzero(keep)) / keep.size


def check_mask(keep: np.ndarray, name: str) -> str | None:
    """A warning message when the mask leaves nothing to fill or nothing known, else None:
    both are legal but usually a mask inverted or in the wrong convention."""
    if keep.all():
        return f"{name}: the mask keeps every pixel, so there is nothing to inpaint"
    if not keep.any():
        return (
            f"{name}: the mask keeps no pixel, so the image is generated from scratch "
            "(wrong mask mode?)"
        )
    return None


def generate_mask(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """A (size, size) keep-mask of one of the paper's kinds (see MASK_KINDS).

    thin / thick are LaMa's random Narrow and Wide masks, drawn again while more than half
    the image would be filled; the others are fixed: nn2 keeps even rows and even columns,
    ev2li even rows, ex64 the centre square of side size // 4, genhalf the left half.
    """
    if kind not in MASK_KINDS:
        raise RepaintError(f"unknown mask kind {kind!r} (expected one of {', '.join(MASK_KINDS)})")
    if size < 8:
        raise RepaintError(f"mask size must be at least 8 pixels, got {size}")
    if kind in ("thin", "thick"):
        return ~_random_fill(kind, size, rng)
    keep = np.zeros((size, size), dtype=bool)
    if kind == "nn2":
        keep[::2, ::2] = True
    elif kind == "ev2li":
        keep[::2] = True
    elif kind == "ex64":
        side = size // 4
        start = (size - side) // 2
        keep[start : start + side, start : start + side] = True
    else:  # genhalf
        keep[:, : size // 2] = True
    return keep


def _random_fill(kind: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """Fill-mask (True = fill) of a thin or thick draw holding at most half the pixels."""
    for _ in range(_MAX_DRAWS):
        if kind == "thick" and rng.random() < _BOX_CHANCE:
            fill = _boxes(size, rng)
        else:
            fill = _strokes(size, rng, **(_THIN if kind == "thin" else _THICK))
        if fill.mean() <= _MAX_FILL:
            return fill
    # Every draw was too large (practically never): keep the top rows up to the cap.
    fill[np.cumsum(fill.sum(axis=1)) > _MAX_FILL * fill.size] = False
    return fill


def _strokes(
    size: int,
    rng: np.random.Generator,
    *,
    min_strokes: int,
    max_strokes: int,
    max_width: int,
    max_len: int,
) -> np.ndarray:
    """LaMa's irregular mask: brush strokes, each 1 to 5 straight segments with round ends.

    As in LaMa, a segment is 10 + [0, max_len) long and 5 + [0, max_width) wide, its
    direction 0.01 + a whole number of radians below max_angle, mirrored on every other
    stroke, and its end is clamped to the image.
    """
    scale = size / 256
    canvas = Image.new("1", (size, size))
    pen = ImageDraw.Draw(canvas)
    for stroke in range(rng.integers(min_strokes, max_strokes + 1)):
        x, y = rng.integers(0, size, 2).astype(float)
        for _ in range(1 + rng.integers(_MAX_VERTICES)):
            angle = 0.01 + rng.integers(_MAX_ANGLE)
            if stroke % 2 == 0:
                angle = 2 * math.pi - angle
            length = (10 + rng.integers(max_len)) * scale
            width = max(1, round((5 + rng.integers(max_width)) * scale))
            end_x = min(max(x + length * math.sin(angle), 0), size)
            end_y = min(max(y + length * math.cos(angle), 0), size)
            pen.line([(x, y), (end_x, end_y)], fill=1, width=width)
            radius = width / 2
            for cx, cy in ((x, y), (end_x, end_y)):
                pen.ellipse([cx - radius, cy - radius, cx + radius, cy + radius], fill=1)
            x, y = end_x, end_y
    return np.array(canvas, dtype=bool)  # writable, for the cap below


def _boxes(size: int, rng: np.random.Generator) -> np.ndarray:
    """LaMa's rectangle mask: 1 to 3 boxes of side 30-150, 10 pixels clear of the border."""
    scale = size / 256
    margin = round(_BOX_MARGIN * scale)
    fill = np.zeros((size, size), dtype=bool)
    for _ in range(rng.integers(1, _MAX_BOXES + 1)):
        width, height = (round(side * scale) for side in rng.integers(_BOX_MIN, _BOX_MAX + 1, 2))
        left = rng.integers(margin, size - margin - width + 1)
        top = rng.integers(margin, size - margin - height + 1)
        fill[top : top + height, left : left + width] = True
    return fill


def save_mask(keep: np.ndarray, path: str | Path) -> None:
    """Write an 8-bit greyscale image, 255 = keep, 0 = fill (the reference's files)."""
    write_image(keep.astype(np.uint8)[..., None] * 255, path)


def write_masks(kind: str, size: int, count: int, seed: int, out_dir: Path) -> list[Path]:
    """Write `count` masks as `{kind}_{i:05d}.png`; the same seed writes the same files."""
    rng = np.random.default_rng(seed)
    paths = [Path(out_dir) / f"{kind}_{i:05d}.png" for i in range(count)]
    for path in paths:
        save_mask(generate_mask(kind, size, rng), path)
    return paths
