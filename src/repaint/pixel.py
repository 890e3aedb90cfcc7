"""RePaint in pixel space: guided-diffusion checkpoints and diffusers pixel models, on
images of any size.

An image is fitted to the model's square size by windows (see `repaint.regions`); every
window of every sample is one item with its own generator, seeded from the run seed, the
image's name, the sample and the window (`derive_seed`), so a result never depends on
batch composition: items share batches (within a memory budget) and give the pixels they
give one by one, and any output can be reproduced from its sidecar.
"""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from repaint.choices import SAMPLER_CHOICES
from repaint.costs import request_costs
from repaint.device import derive_seed, make_generator
from repaint.errors import RepaintError, RepaintWarning
from repaint.inpainter import Hooks, Inpainter, InpaintResult, Plan, frame, time_call
from repaint.io import center_crop_resize, from_uint8
from repaint.masks import grow_fill
from repaint.prior import Prior, draw_labels
from repaint.regions import (
    choose_fit,
    extract,
    feather,
    paste,
    plan_extension,
    plan_windows,
)
from repaint.request import InpaintRequest
from repaint.sampler import (
    SamplerState,
    Step,
    continue_with,
    repaint,
    repaint_until,
)
from repaint.samplers import run_sampler
from repaint.schedule import Schedule

BATCH_PIXELS = 8 * 256 * 256
"""The default memory budget of one batch, in model pixels: 8 items of a 256 px UNet
(a few GB at fp32), 512 of the 32 px digits model. `batch_size` overrides it."""


@dataclass(frozen=True)
class Domain:
    """What a model was trained on, for the warning when it is used far outside it."""

    description: str  # e.g. "32x32 greyscale handwritten digits"
    photo: bool  # made for colour photos
    advice: str  # what to use instead, and how to get it
    greyscale: bool = False  # trained on R = G = B images: its fills are made grey


@dataclass(frozen=True)
class _Item:
    sample: int  # -1: the shared part of branched samples
    window: int
    image: Tensor
    keep: Tensor
    seed: int
    x: Tensor | None = None  # a branch starts from the shared run's sample
    label: Tensor | None = None  # and keeps its class label


class PixelInpainter(Inpainter):
    """A pixel-space prior of one square size, ready to inpaint images of any size."""

    branches = True
    samplers = tuple(SAMPLER_CHOICES)

    def check(self, request: InpaintRequest) -> None:
        super().check(request)
        if request.sampler != "repaint" and self.prior.guidance(request.classifier_scale):
            raise RepaintError(
                f"--sampler {request.sampler}: classifier guidance (the classifier of model "
                f"{self.name}) is RePaint's only; add --classifier-scale 0, or use --sampler "
                "repaint"
            )

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

    def time_evaluation(self) -> float:
        channels = int(self.prior.config.get("in_channels", 3))
        x = torch.zeros(1, channels, self.image_size, self.image_size, device=self.device)
        steps = torch.zeros(1, dtype=torch.long, device=self.device)
        return time_call(lambda: self.prior.denoise(x, steps, steps), self.device)

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
        self, rgb: np.ndarray, keep: np.ndarray, request: InpaintRequest, hooks: Hooks
    ) -> InpaintResult:
        size = self.image_size
        keep = grow_fill(keep, request.grow)
        if request.extend is not None:
            return self._inpaint_in_order(rgb, ~keep, request, hooks)
        fit = choose_fit(request.fit, *rgb.shape[:2], size)
        if fit == "crop":
            rgb, keep = centre_crop(rgb, keep, size)
        fill = ~keep
        windows = plan_windows(fill, size, fit, request.context)
        image_t, fill_t = from_uint8(rgb), torch.from_numpy(fill)
        crops = [extract(image_t, fill_t, window, size) for window in windows]
        budget = request.batch_size or max(1, BATCH_PIXELS // (size * size))
        samples, seed, level, name = (
            request.num_samples,
            request.seed,
            request.branch_at,
            hooks.name,
        )
        shared = (
            []
            if level is None
            else [
                _Item(-1, w, *crop, derive_seed(seed, name, 0, w)) for w, crop in enumerate(crops)
            ]
        )
        shared_batches = _chunks(shared, budget)
        costs = request_costs(request)
        number_of_batches = len(shared_batches) + -(-len(windows) * samples // budget)
        if hooks.on_plan is not None:
            hooks.on_plan(self._plan(request, len(windows), costs, len(shared_batches), budget))

        frames: list[list[np.ndarray]] = [[] for _ in range(samples)]
        batch_number = 0

        def on_step(step: Step, chunk: list[_Item]) -> None:
            if hooks.records(step):
                for row, item in enumerate(chunk):
                    for sample in [item.sample] if item.sample >= 0 else range(samples):
                        if item.window == 0:
                            frames[sample].append(self._frame(step, row))
            hooks.progress(step, batch_number, number_of_batches)

        starts: dict[int, tuple[Tensor, Tensor | None]] = {}
        state = None
        for chunk in shared_batches:
            state, labels = self._sample(chunk, request, request.jump_schedule, on_step, level)
            for row, item in enumerate(chunk):
                starts[item.window] = (state.x[row], None if labels is None else labels[row])
            batch_number += 1
        # The shared start is sample 0's own run (so a plain run can be branched later from
        # where it stood); each branch then draws from its own stream.
        items = [
            _Item(
                k,
                w,
                *crop,
                derive_seed(seed, name, k if level is None else f"branch-{k}", w),
                *starts.get(w, (None, None)),
            )
            for w, crop in enumerate(crops)
            for k in range(samples)
        ]
        schedule = request.jump_schedule if state is None else request.branch_jump_schedule
        canvases = [rgb.copy() for _ in range(samples)]
        alpha = feather(fill_t, request.mask_blur or 0)
        batches = _chunks(items, budget)
        for chunk in batches:
            result, _ = self._sample(chunk, request, schedule, on_step, None, state)
            for item, sample in zip(chunk, self._fills(result), strict=True):
                paste(canvases[item.sample], fill, alpha, windows[item.window], sample)
            batch_number += 1
        shared_cost, branch_cost = costs
        return InpaintResult(
            images=[Image.fromarray(canvas) for canvas in canvases],
            request=request,
            fit=fit,
            windows=windows,
            model_evaluations=len(windows) * shared_cost + len(items) * branch_cost,
            network_calls=len(shared_batches) * shared_cost + len(batches) * branch_cost,
            frames=frames if hooks.record_every else [],
        )

    def _inpaint_in_order(
        self, rgb: np.ndarray, fill: np.ndarray, request: InpaintRequest, hooks: Hooks
    ) -> InpaintResult:
        """Extension: windows of the model's size one after another (`plan_extension`),
        each seeing what the windows before it generated as known; the samples of a window
        share batches. Known pixels are never written."""
        size, samples = self.image_size, request.num_samples
        windows = plan_extension(fill, size)
        budget = request.batch_size or max(1, BATCH_PIXELS // (size * size))
        per_window = -(-samples // budget)
        evaluations = request_costs(request)[1]
        if hooks.on_plan is not None:
            plan = self._plan(request, 1, (0, evaluations), 0, budget)  # timed at one window
            batches = len(windows) * per_window
            hooks.on_plan(dataclasses.replace(plan, windows=len(windows), batches=batches))
        frames: list[list[np.ndarray]] = [[] for _ in range(samples)]
        canvases = [rgb.copy() for _ in range(samples)]
        pending = fill.copy()
        batch_number = 0

        def on_step(step: Step, chunk: list[_Item]) -> None:
            if hooks.records(step):
                for row, item in enumerate(chunk):
                    frames[item.sample].append(self._frame(step, row))
            hooks.progress(step, batch_number, len(windows) * per_window)

        for w, window in enumerate(windows):
            pending_t = torch.from_numpy(pending)
            alpha = feather(pending_t, request.mask_blur or 0)
            items = [
                _Item(
                    k,
                    w,
                    *extract(from_uint8(canvases[k]), pending_t, window, size),
                    derive_seed(request.seed, hooks.name, k, w),
                )
                for k in range(samples)
            ]
            for chunk in _chunks(items, budget):
                result, _ = self._sample(chunk, request, request.jump_schedule, on_step, None)
                for item, sample in zip(chunk, self._fills(result), strict=True):
                    paste(canvases[item.sample], pending, alpha, window, sample)
                batch_number += 1
            rows, cols, _, _ = window.clip(*pending.shape)
            pending[rows, cols] = False
        return InpaintResult(
            images=[Image.fromarray(canvas) for canvas in canvases],
            request=request,
            fit="extend",
            windows=windows,
            model_evaluations=len(windows) * samples * evaluations,
            network_calls=len(windows) * per_window * evaluations,
            frames=frames if hooks.record_every else [],
        )

    def _frame(self, step: Step, row: int) -> np.ndarray:
        """An animation frame, grey for a greyscale model as its fills are."""
        image = frame(step, row)
        if self.domain is not None and self.domain.greyscale:
            grey = image.mean(axis=-1, keepdims=True).round().astype(np.uint8)
            image = np.repeat(grey, 3, axis=-1)
        return image

    def _fills(self, result: Tensor) -> Tensor:
        """The batch's samples on the CPU. A greyscale model's three output channels are
        independent estimates of one grey value: where most of the window is invented
        (a 94% mask) they drift apart into a colour cast its data never had, so its fills
        take their mean."""
        result = result.float().cpu()
        if self.domain is not None and self.domain.greyscale:
            result = result.mean(dim=1, keepdim=True).expand_as(result)
        return result

    def _sample(
        self,
        chunk: list[_Item],
        request: InpaintRequest,
        schedule: Schedule,
        on_step: Callable[[Step, list[_Item]], None],
        until: int | None,
        shared: SamplerState | None = None,
    ) -> tuple[Any, Tensor | None]:
        """One batch: the whole run, the shared part down to `until` (a state), or a branch
        from the `shared` state, each item with its own generator."""
        generators = [make_generator(item.seed, self.device) for item in chunk]
        labels = None
        if chunk[0].label is not None:
            labels = torch.stack([item.label for item in chunk])
        elif self.prior.uses_labels:
            labels = draw_labels(generators, len(chunk), self.device, request.class_label)
        state = None
        if shared is not None:
            branch = continue_with(shared, schedule, [g.get_state() for g in generators])
            state = dataclasses.replace(branch, x=torch.stack([item.x for item in chunk]))
        if request.sampler != "repaint":
            result = run_sampler(
                request.sampler,
                self.prior.denoise,
                self.prior.diffusion(schedule.t_T),
                torch.stack([item.image for item in chunk]).to(self.device),
                torch.stack([item.keep for item in chunk]).to(self.device),
                schedule,
                generator=generators,
                labels=labels,
                callback=lambda step: on_step(step, chunk),
            )
            return result, labels
        levels = schedule if state is None else state.times  # a branch's own time list
        run = repaint_until if until is not None else repaint
        options = {"level": until} if until is not None else {"state": state}
        result = run(
            self.prior.denoise,
            self.prior.diffusion(schedule.t_T),
            torch.stack([item.image for item in chunk]).to(self.device),
            torch.stack([item.keep for item in chunk]).to(self.device),
            levels,
            generator=generators,
            labels=labels,
            guidance=self.prior.guidance(request.classifier_scale),
            eta=request.sampler_eta,
            clip_denoised=self.prior.clip_denoised,
            callback=lambda step: on_step(step, chunk),
            **options,
        )
        return result, labels

    def _plan(
        self,
        request: InpaintRequest,
        windows: int,
        costs: tuple[int, int],
        shared_batches: int,
        budget: int,
    ) -> Plan:
        """The cost, with a network call timed at the batch's shape (skipped under
        torch.compile, whose first call compiles)."""
        seconds = None
        batch = min(budget, windows * request.num_samples)
        if not request.compile:
            channels = int(self.prior.config.get("in_channels", 3))
            x = torch.zeros(batch, channels, self.image_size, self.image_size, device=self.device)
            steps = torch.zeros(batch, dtype=torch.long, device=self.device)
            seconds = time_call(lambda: self.prior.denoise(x, steps, steps), self.device)
        return Plan(
            windows=windows,
            samples=request.num_samples,
            evaluations_each=costs[1],
            batches=-(-windows * request.num_samples // budget),
            seconds_per_call=seconds,
            shared_evaluations=costs[0],
            shared_batches=shared_batches,
        )


def _chunks(items: list[_Item], size: int) -> list[list[_Item]]:
    return [items[i : i + size] for i in range(0, len(items), size)]


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
