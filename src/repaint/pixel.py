"""RePaint in pixel space: guided-diffusion checkpoints and diffusers pixel models, on
images of any size.

An image is fitted to the model's square size by windows (see `repaint.regions`); every
window of every sample is one item with its own generator, seeded from the run seed, the
image's name, the sample and the window (`derive_seed`), so a result never depends on
batch composition: items share batches (within a memory budget) and give the pixels they
give one by one, and any output can be reproduced from its sidecar.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from repaint.device import derive_seed, make_generator
from repaint.errors import RepaintWarning
from repaint.inpainter import Inpainter, InpaintResult, Plan, Progress, frame, records, time_call
from repaint.io import center_crop_resize, from_uint8
from repaint.masks import grow_fill
from repaint.prior import Prior, draw_labels
from repaint.regions import choose_fit, extract, feather, paste, plan_windows
from repaint.request import InpaintRequest
from repaint.sampler import Step, repaint

BATCH_PIXELS = 8 * 256 * 256
"""The default memory budget of one batch, in model pixels: 8 items of a 256 px UNet
(a few GB at fp32), 512 of the 32 px digits model. `batch_size` overrides it."""


@dataclass(frozen=True)
class Domain:
    """What a model was trained on, for the warning when it is used far outside it."""

    description: str  # e.g. "32x32 greyscale handwritten digits"
    photo: bool  # made for colour photos
    advice: str  # what to use instead, and how to get it


@dataclass(frozen=True)
class _Item:
    sample: int
    window: int
    image: Tensor
    keep: Tensor
    seed: int


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
        self.device = prior.device
        self.checkpoint = checkpoint
        self.sha256 = sha256
        self.image_size = prior.image_size
        self.diffusion_steps = prior.diffusion_steps
        self.uses_labels = prior.uses_labels
        self.domain = domain
        self._domain_warned = False

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

    def _inpaint(
        self,
        rgb: np.ndarray,
        keep: np.ndarray,
        request: InpaintRequest,
        name: str,
        callback: Callable[[Progress], None] | None,
        on_plan: Callable[[Plan], None] | None,
        record_every: int,
    ) -> InpaintResult:
        schedule, size = request.jump_schedule, self.image_size
        keep = grow_fill(keep, request.grow)
        fit = choose_fit(request.fit, *rgb.shape[:2], size)
        if fit == "crop":
            rgb, keep = centre_crop(rgb, keep, size)
        fill = ~keep
        windows = plan_windows(fill, size, fit, request.context)
        image_t, fill_t = from_uint8(rgb), torch.from_numpy(fill)
        items = []
        for index, window in enumerate(windows):
            window_image, window_keep = extract(image_t, fill_t, window, size)
            items += [
                _Item(
                    k, index, window_image, window_keep, derive_seed(request.seed, name, k, index)
                )
                for k in range(request.num_samples)
            ]
        batch = request.batch_size or max(1, BATCH_PIXELS // (size * size))
        batches = [items[i : i + batch] for i in range(0, len(items), batch)]
        diffusion = self.prior.diffusion(schedule.t_T)
        guidance = self.prior.guidance(request.classifier_scale)
        if on_plan is not None:
            on_plan(self._plan(windows, request, len(batches), len(batches[0])))

        canvases = [rgb.copy() for _ in range(request.num_samples)]
        alpha = feather(fill_t, request.mask_blur or 0)
        frames: list[list[np.ndarray]] = [[] for _ in range(request.num_samples)]
        for number, chunk in enumerate(batches):
            generators = [make_generator(item.seed, self.device) for item in chunk]
            labels = None
            if self.prior.uses_labels:
                labels = draw_labels(generators, len(chunk), self.device, request.class_label)

            def on_step(step: Step, number: int = number, chunk: list[_Item] = chunk) -> None:
                if records(step, record_every):
                    for row, item in enumerate(chunk):
                        if item.window == 0:
                            frames[item.sample].append(frame(step, row))
                if callback is not None:
                    callback(Progress(step, number, len(batches)))

            samples = repaint(
                self.prior.denoise,
                diffusion,
                torch.stack([item.image for item in chunk]).to(self.device),
                torch.stack([item.keep for item in chunk]).to(self.device),
                schedule,
                generator=generators,
                labels=labels,
                guidance=guidance,
                eta=request.sampler_eta,
                clip_denoised=self.prior.clip_denoised,
                callback=on_step,
            )
            for item, sample in zip(chunk, samples.float().cpu(), strict=True):
                paste(canvases[item.sample], fill, alpha, windows[item.window], sample)
        return InpaintResult(
            images=[Image.fromarray(canvas) for canvas in canvases],
            request=request,
            fit=fit,
            windows=windows,
            model_evaluations=len(items) * schedule.reverse_steps,
            network_calls=len(batches) * schedule.reverse_steps,
            frames=frames if record_every else [],
        )

    def _plan(self, windows: list, request: InpaintRequest, batches: int, batch: int) -> Plan:
        """The cost, with a network call timed at the batch's shape (skipped under
        torch.compile, whose first call compiles)."""
        seconds = None
        if not request.compile:
            channels = int(self.prior.config.get("in_channels", 3))
            x = torch.zeros(batch, channels, self.image_size, self.image_size, device=self.device)
            steps = torch.zeros(batch, dtype=torch.long, device=self.device)
            seconds = time_call(lambda: self.prior.denoise(x, steps, steps), self.device)
        return Plan(
            windows=len(windows),
            samples=request.num_samples,
            evaluations_each=request.jump_schedule.reverse_steps,
            batches=batches,
            seconds_per_call=seconds,
        )


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
