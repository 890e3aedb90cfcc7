"""RePaint in pixel space: guided-diffusion checkpoints and diffusers pixel models, on
images of any size.

An image is fitted to the model's square size by windows (see `repaint.regions`), whose
crops are the model's inputs; `repaint.execution` runs them (every window of every sample
of every image an item with its own generator) and pastes the results back.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from repaint.errors import RepaintWarning
from repaint.execution import Layout
from repaint.inpainter import Inpainter
from repaint.io import center_crop_resize, from_uint8
from repaint.masks import grow_fill
from repaint.prior import Prior
from repaint.regions import (
    choose_fit,
    extract,
    feather,
    paste,
    plan_extension,
    plan_windows,
)
from repaint.request import InpaintRequest


@dataclass(frozen=True)
class Domain:
    """What a model was trained on, for the warning when it is used far outside it."""

    description: str  # e.g. "32x32 greyscale handwritten digits"
    photo: bool  # made for colour photos
    advice: str  # what to use instead, and how to get it
    greyscale: bool = False  # trained on R = G = B images: its fills are made grey


class PixelInpainter(Inpainter):
    """A pixel-space prior of one square size, ready to inpaint images of any size."""

    def __init__(
        self,
        prior: Prior,
        *,
        name: str,
        checkpoint: Path | None = None,
        sha256: str | None = None,
        domain: Domain | None = None,
    ) -> None:
        self.prior = prior
        self.name = name
        self.checkpoint = checkpoint
        self.sha256 = sha256
        self.image_size = prior.image_size
        self.domain = domain
        self._domain_warned = False

    def guided(self, request: InpaintRequest) -> bool:
        return self.prior.guidance(request.classifier_scale) is not None

    def time_evaluation(self) -> float:
        channels = int(self.prior.config.get("in_channels", 3))
        return self.time_call(1, (channels, self.image_size, self.image_size))

    def check_image(self, rgb: np.ndarray, name: str) -> None:
        """Warn once when a model made for small greyscale images meets a large colour photo."""
        if self.domain is None or self.domain.photo or self._domain_warned:
            return
        height, width = rgb.shape[:2]
        spread = np.abs(rgb.astype(np.int16) - rgb.mean(axis=-1, keepdims=True)).mean()
        colour = spread > 8
        if max(height, width) > 4 * self.image_size or colour:
            self._domain_warned = True
            kind = "colour image" if colour else "image"
            warnings.warn(
                f"{name}: model {self.name} was trained on {self.domain.description}, not on a "
                f"{width}x{height} {kind} like this one, so the fill will not look like a "
                f"photo; {self.domain.advice}",
                RepaintWarning,
                stacklevel=3,
            )

    def layout(
        self, rgb: np.ndarray, keep: np.ndarray, request: InpaintRequest, name: str
    ) -> Layout:
        """Windows at the model's size around the holes (or one for the whole image), or,
        to extend a canvas, model-size windows one after another (`plan_extension`), each
        seeing what the windows before it generated as known. Known pixels are never
        written."""
        size = self.image_size
        keep = grow_fill(keep, request.grow)
        if request.extend is not None:
            return self._extension(rgb, ~keep, request, name)
        fit = choose_fit(request.fit, *rgb.shape[:2], size)
        if fit == "crop":
            rgb, keep = centre_crop(rgb, keep, size)
        fill = ~keep
        windows = plan_windows(fill, size, fit, request.context)
        image_t, fill_t = from_uint8(rgb), torch.from_numpy(fill)
        crops = [extract(image_t, fill_t, window, size) for window in windows]
        alpha = feather(fill_t, request.mask_blur or 0)

        def put(canvas: np.ndarray, window: int, sample: Tensor) -> None:
            paste(canvas, fill, alpha, windows[window], sample)

        return Layout(name, rgb, fit, windows, lambda window, canvas: crops[window], put)

    def _extension(
        self, rgb: np.ndarray, fill: np.ndarray, request: InpaintRequest, name: str
    ) -> Layout:
        size = self.image_size
        windows = plan_extension(fill, size)
        pending, masks = fill.copy(), []
        for window in windows:  # what is still to fill when each window's turn comes
            masks.append(torch.from_numpy(pending.copy()))
            rows, cols, _, _ = window.clip(*pending.shape)
            pending[rows, cols] = False
        alphas = [feather(mask, request.mask_blur or 0) for mask in masks]

        def take(window: int, canvas: np.ndarray) -> tuple[Tensor, Tensor]:
            return extract(from_uint8(canvas), masks[window], windows[window], size)

        def put(canvas: np.ndarray, window: int, sample: Tensor) -> None:
            paste(canvas, masks[window].numpy(), alphas[window], windows[window], sample)

        return Layout(name, rgb, "extend", windows, take, put, ordered=True)

    def to_pixels(self, x: Tensor) -> Tensor:
        """Samples as images. A greyscale model's three output channels are independent
        estimates of one grey value: where most of the window is invented (a 94% mask) they
        drift apart into a colour cast its data never had, so its images take their mean."""
        if self.domain is not None and self.domain.greyscale:
            x = x.float().mean(dim=1, keepdim=True).expand(-1, 3, -1, -1)
        return x


def centre_crop(rgb: np.ndarray, keep: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's centre-crop resize for the image, nearest-neighbour for the mask."""
    image = center_crop_resize(Image.fromarray(rgb), size)
    height, width = keep.shape
    scale = size / min(height, width)
    resized = Image.fromarray(keep).resize(
        (round(width * scale), round(height * scale)), Image.NEAREST
    )
    array = np.asarray(resized)
    top, left = (array.shape[0] - size) // 2, (array.shape[1] - size) // 2
    return image, array[top : top + size, left : left + size].astype(bool)
