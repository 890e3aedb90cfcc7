"""Images of any size on a model of one fixed size.

A *window* is a rectangle of the image (it may reach past the borders, which are then
padded) that is resized to the model's square input, inpainted, resized back, and pasted
into the image *only where pixels were to be filled*. Known pixels therefore stay
bit-identical whatever the window's scale. The fit modes choose the windows:

- `region`: a square around each group of holes, with context; at least the model's size,
  so a small hole in a large photo is inpainted at full resolution. Holes whose windows
  would overlap share one window; holes far apart get their own.
- `pad`: one square window over the whole image (aspect ratio kept, borders padded).
- `resize`: the whole image, squeezed to the model's square (aspect ratio not kept).
- `crop`: like the reference's loader, the centre square resized to the model size; the
  output then has the model's size (see `repaint.io.center_crop_resize`).

Extending an image (`extend_canvas`, `plan_extension`) uses windows of the model's own size
in an order: each is inpainted after the ones before it have been pasted, and sees their
pixels as known, so a canvas of any size grows continuously out of the original.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from repaint.choices import FIT_MODES
from repaint.errors import RepaintError
from repaint.io import check_pixels, to_levels


@dataclass(frozen=True)
class Window:
    """A rectangle in image pixels; it may extend past the image (that part is padded)."""

    top: int
    left: int
    height: int
    width: int

    def clip(self, height: int, width: int) -> tuple[slice, slice, slice, slice]:
        """Slices of the image and of the window covering their intersection."""
        top, left = max(self.top, 0), max(self.left, 0)
        bottom = min(self.top + self.height, height)
        right = min(self.left + self.width, width)
        return (
            slice(top, bottom),
            slice(left, right),
            slice(top - self.top, bottom - self.top),
            slice(left - self.left, right - self.left),
        )


def choose_fit(fit: str, height: int, width: int, model_size: int) -> str:
    """Resolve `auto`: the image itself when it has the model's size, regions when it is
    larger, else one padded square."""
    if fit not in FIT_MODES:
        raise RepaintError(f"--fit: unknown mode {fit!r}; use one of {', '.join(FIT_MODES)}")
    if fit != "auto":
        return fit
    if height > model_size or width > model_size:
        return "region"
    return "pad"


def plan_windows(fill: np.ndarray, model_size: int, fit: str, context: float = 0.5) -> list[Window]:
    """The windows that cover every pixel to fill, for a resolved fit mode."""
    height, width = fill.shape
    if fit == "resize":
        return [Window(0, 0, height, width)]
    if fit in ("pad", "crop"):
        side = max(height, width)
        return [Window((height - side) // 2, (width - side) // 2, side, side)]
    boxes = hole_boxes(fill, cell=max(model_size // 8, 1))
    windows = [_square_around(box, model_size, context, height, width) for box in boxes]
    # Merge until no two windows overlap: each merged window surrounds all its boxes.
    merged = True
    while merged:
        merged = False
        for i in range(len(windows)):
            for j in range(i + 1, len(windows)):
                if _overlap(windows[i], windows[j]):
                    boxes[i] = _union(boxes[i], boxes.pop(j))
                    windows.pop(j)
                    windows[i] = _square_around(boxes[i], model_size, context, height, width)
                    merged = True
                    break
            if merged:
                break
    return windows


Box = tuple[int, int, int, int]  # top, left, bottom, right (exclusive)


def hole_boxes(fill: np.ndarray, cell: int) -> list[Box]:
    """Bounding boxes of the groups of holes, grouping holes within about one `cell`.

    Connected components are found on a coarse grid of `cell`-sized cells (8-connected),
    which is fast for any image size and joins specks that belong together; each box is
    then fitted to the hole pixels of its component.
    """
    height, width = fill.shape
    rows, cols = math.ceil(height / cell), math.ceil(width / cell)
    padded = np.zeros((rows * cell, cols * cell), dtype=bool)
    padded[:height, :width] = fill
    occupied = padded.reshape(rows, cell, cols, cell).any(axis=(1, 3))
    label = np.zeros(occupied.shape, dtype=np.int64)
    count = 0
    for start in zip(*np.nonzero(occupied), strict=True):
        if label[start]:
            continue
        count += 1
        label[start] = count
        queue = deque([start])
        while queue:
            r, c = queue.popleft()
            for nr in range(max(r - 1, 0), min(r + 2, rows)):
                for nc in range(max(c - 1, 0), min(c + 2, cols)):
                    if occupied[nr, nc] and not label[nr, nc]:
                        label[nr, nc] = count
                        queue.append((nr, nc))
    ys, xs = np.nonzero(fill)
    owner = label[ys // cell, xs // cell] - 1
    tops, lefts = np.full(count, height), np.full(count, width)
    bottoms, rights = np.zeros(count, dtype=np.int64), np.zeros(count, dtype=np.int64)
    np.minimum.at(tops, owner, ys)
    np.minimum.at(lefts, owner, xs)
    np.maximum.at(bottoms, owner, ys + 1)
    np.maximum.at(rights, owner, xs + 1)
    return [
        (int(t), int(le), int(b), int(r))
        for t, le, b, r in zip(tops, lefts, bottoms, rights, strict=True)
    ]


def _square_around(box: Box, model_size: int, context: float, height: int, width: int) -> Window:
    """A square window around `box` with `context` of its size on each side, at least the
    model's size, shifted inside the image where the image is large enough."""
    top, left, bottom, right = box
    extent = max(bottom - top, right - left)
    side = max(model_size, math.ceil(extent * (1 + 2 * context)))
    side = min(side, max(height, width))

    def place(start: int, stop: int, length: int) -> int:
        if side >= length:
            return (length - side) // 2  # centred, the rest is padding
        centre = (start + stop) // 2
        return min(max(centre - side // 2, 0), length - side)

    return Window(place(top, bottom, height), place(left, right, width), side, side)


def _overlap(a: Window, b: Window) -> bool:
    return (
        a.top < b.top + b.height
        and b.top < a.top + a.height
        and a.left < b.left + b.width
        and b.left < a.left + a.width
    )


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def extract(image: Tensor, fill: Tensor, window: Window, size: int) -> tuple[Tensor, Tensor]:
    """The window's image (3, size, size) and keep-mask (1, size, size) at the model's size.

    Borders past the image are padded by replication and count as known. A model pixel is
    to be filled if any image pixel under it is, so the whole hole is generated.
    """
    height, width = fill.shape
    rows, cols, _, _ = window.clip(height, width)
    pad = (
        rows.start - window.top,
        window.top + window.height - rows.stop,
        cols.start - window.left,
        window.left + window.width - cols.stop,
    )
    crop = image[:, rows, cols]
    hole = fill[rows, cols].float()
    if any(pad):
        left_right_top_bottom = (pad[2], pad[3], pad[0], pad[1])
        crop = F.pad(crop[None], left_right_top_bottom, mode="replicate")[0]
        hole = F.pad(hole, left_right_top_bottom, value=0.0)
    if crop.shape[-2:] != (size, size):
        crop = F.interpolate(
            crop[None], (size, size), mode="bicubic", antialias=True, align_corners=False
        )[0].clamp(-1, 1)
        hole = F.interpolate(hole[None, None], (size, size), mode="area")[0, 0]
    keep = (hole <= 0).float()[None]
    return crop, keep


def feather(fill: Tensor, width: int) -> Tensor:
    """Blend weights of the generated pixels: 0 on known pixels, rising from 1/width at the
    hole's edge to 1 at `width` pixels inside it. `width` <= 1 gives a hard edge."""
    alpha = fill.float()
    if width <= 1:
        return alpha
    inside = alpha[None, None]
    total = alpha.clone()
    for _ in range(width - 1):
        inside = -F.max_pool2d(-inside, 3, stride=1, padding=1)  # erode by one pixel
        total += inside[0, 0]
    return total / width


def paste(
    canvas: np.ndarray, fill: np.ndarray, alpha: Tensor, window: Window, result: Tensor
) -> None:
    """Write the window's result (3, S, S) in [-1, 1] into `canvas` (uint8 H, W, 3) where
    `fill` is set and inside the window, blended by `alpha`; other pixels are untouched."""
    height, width = fill.shape
    if result.shape[-2:] != (window.height, window.width):
        result = F.interpolate(
            result[None].float(), (window.height, window.width), mode="bicubic", align_corners=False
        )[0]
    rows, cols, window_rows, window_cols = window.clip(height, width)
    generated = to_levels(result[:, window_rows, window_cols]).permute(1, 2, 0)
    weight = alpha[rows, cols][..., None]
    original = torch.from_numpy(canvas[rows, cols]).float()
    blended = (weight * generated + (1 - weight) * original).round().clamp(0, 255).to(torch.uint8)
    target = fill[rows, cols]
    canvas[rows, cols][target] = blended.numpy()[target]


MIN_CONTEXT = 0.25
"""The share of an extension window that should already be known: less, and its fill is
barely tied to the image; more, and the canvas needs many more windows."""


def check_extended(shape: tuple[int, int], extend: tuple[int, int, int, int], name: str) -> None:
    """Refuse an extended canvas over the pixel limit, before it is allocated."""
    left, top, right, bottom = extend
    height, width = shape
    check_pixels(width + left + right, height + top + bottom, f"{name} with --extend")


def extend_canvas(
    rgb: np.ndarray, keep: np.ndarray, extend: tuple[int, int, int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """The image with (left, top, right, bottom) pixels added, and its keep-mask with the
    new pixels to fill. The new pixels start as copies of the nearest edge (the sampler
    never reads them; they only show in grids)."""
    left, top, right, bottom = extend
    grown = np.pad(rgb, ((top, bottom), (left, right), (0, 0)), mode="edge")
    grown_keep = np.pad(keep, ((top, bottom), (left, right)), constant_values=False)
    return grown, grown_keep


def plan_extension(fill: np.ndarray, model_size: int) -> list[Window]:
    """Model-size windows, in the order to inpaint them, covering every pixel to fill.

    Greedy: among window positions on a grid of a quarter of the model's size, take the one
    that fills the most pending pixels while at least `MIN_CONTEXT` of it is already known
    (original or generated by an earlier window); when none qualifies, the one with the
    most context. Each window marks its pixels done, so the plan depends on the geometry
    only, never on the content: every sample and a rerun from a sidecar share it.
    """
    height, width = fill.shape
    size, stride = model_size, max(model_size // 4, 1)

    def positions(length: int) -> list[int]:
        if length <= size:
            return [(length - size) // 2]
        return sorted({*range(0, length - size + 1, stride), length - size})

    tops, lefts = positions(height), positions(width)
    pending = fill.copy()
    windows: list[Window] = []
    while pending.any():
        table = np.pad(pending.astype(np.int64).cumsum(0).cumsum(1), ((1, 0), (1, 0)))
        best: tuple[bool, int, int] | None = None
        chosen = None
        for top in tops:
            for left in lefts:
                rows = slice(max(top, 0), min(top + size, height))
                cols = slice(max(left, 0), min(left + size, width))
                new = int(
                    table[rows.stop, cols.stop]
                    - table[rows.start, cols.stop]
                    - table[rows.stop, cols.start]
                    + table[rows.start, cols.start]
                )
                if new == 0:
                    continue
                known = (rows.stop - rows.start) * (cols.stop - cols.start) - new
                enough = known >= MIN_CONTEXT * size * size
                score = (enough, new, known) if enough else (enough, known, new)
                if best is None or score > best:
                    best, chosen = score, Window(top, left, size, size)
        assert chosen is not None  # some position covers every pending pixel
        windows.append(chosen)
        rows, cols, _, _ = chosen.clip(height, width)
        pending[rows, cols] = False
    return windows
