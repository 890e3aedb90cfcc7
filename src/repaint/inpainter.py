"""The one inpainter interface: an image, a mask and an `InpaintRequest` in, an
`InpaintResult` out, whatever the model family behind it.

`repaint.load_inpainter(source)` (in `repaint.loading`) loads any model: a registered name,
a guided-diffusion checkpoint or a diffusers pixel model (`repaint.pixel.PixelInpainter`),
or a Stable Diffusion folder (`repaint.latent.LatentInpainter`). The shared work lives
here: the request from keywords, the seed (from `seed=` or a diffusers-style
`generator=`), reading the image and mask, the capability checks and the mask guard. The
families implement `_inpaint`.
"""

from __future__ import annotations

import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from repaint.choices import MASK_MODES, flip_hint
from repaint.device import new_seed
from repaint.errors import RepaintError, RepaintWarning
from repaint.io import ImageSource, load_rgb, to_uint8
from repaint.masks import check_mask, fill_fraction, load_mask
from repaint.regions import Window, check_extended, extend_canvas
from repaint.request import InpaintRequest
from repaint.sampler import Step

MOSTLY_FILLED = 0.5  # above this share of the image to fill, the mask may be inverted


@dataclass(frozen=True)
class Progress:
    """What a callback sees: the sampler's step, and which batch of how many it belongs to."""

    step: Step
    batch: int
    batches: int


@dataclass(frozen=True)
class Plan:
    """What a run will cost, known before sampling starts."""

    windows: int
    samples: int
    evaluations_each: int  # the schedule's model evaluations for one window of one sample
    batches: int
    seconds_per_call: float | None = None  # one timed network call at the batch's shape
    shared_evaluations: int = 0  # branched samples: the part they share, once per window
    shared_batches: int = 0

    @property
    def model_evaluations(self) -> int:
        """Windows x (shared part + samples x schedule): what the sidecar records."""
        return self.windows * (self.shared_evaluations + self.samples * self.evaluations_each)

    @property
    def network_calls(self) -> int:
        return self.evaluations_each * self.batches + self.shared_evaluations * self.shared_batches

    @property
    def seconds(self) -> float | None:
        return None if self.seconds_per_call is None else self.seconds_per_call * self.network_calls

    def describe(self) -> str:
        windows = f"{self.windows} window(s) x " if self.windows > 1 else ""
        each = f"{self.samples} sample(s) x {self.evaluations_each}"
        if self.shared_evaluations:
            each = f"({self.shared_evaluations} shared + {self.samples} branch(es) x "
            each += f"{self.evaluations_each})"
        batches = self.batches + self.shared_batches
        cost = (
            f"{windows}{each} = {self.model_evaluations:,} model evaluations in {batches} batch(es)"
        )
        if self.seconds is not None:
            cost += f", about {_duration(self.seconds)} on this device"
        return cost


@dataclass(frozen=True)
class Hooks:
    """What one call asks for besides the request: its name (seeds and messages derive from
    it), a progress callback, a cost callback before sampling, and animation frames."""

    name: str = "image"
    callback: Callable[[Progress], None] | None = None
    on_plan: Callable[[Plan], None] | None = None
    record_every: int = 0  # keep a frame every that many steps (0: none)

    def progress(self, step: Step, batch: int = 0, batches: int = 1) -> None:
        if self.callback is not None:
            self.callback(Progress(step, batch, batches))

    def records(self, step: Step) -> bool:
        every = self.record_every
        return bool(every) and (step.index % every == 0 or step.index == step.total - 1)


@dataclass
class InpaintResult:
    """What every entry point returns: `.images` (one per sample) with their provenance."""

    images: list[Image.Image]
    request: InpaintRequest  # as run, with the seed that was used
    fit: str
    windows: list[Window] = field(default_factory=list)
    model_evaluations: int = 0  # windows x samples x schedule
    network_calls: int = 0
    seconds: float = 0.0
    frames: list[list[np.ndarray]] = field(default_factory=list)  # per sample, if recorded

    @property
    def image(self) -> Image.Image:
        return self.images[0]

    @property
    def seed(self) -> int:
        assert self.request.seed is not None
        return self.request.seed


class Inpainter(ABC):
    """A loaded model ready to inpaint images: `inpainter(image, mask_image, **options)`."""

    name: str
    device: torch.device
    checkpoint: Path | None = None
    sha256: str | None = None
    image_size: int | None = None  # None: any size (latent models)
    diffusion_steps: int | None = None  # the most denoising levels (t_T) the model has
    text_conditioned = False
    uses_labels = False  # class-conditional, or guided by a classifier
    fits: tuple[str, ...] = ("auto", "region", "pad", "resize", "crop")
    branches = False  # can samples share the start of a run (--branch-at)
    samplers: tuple[str, ...] = ("repaint",)  # the --sampler choices this family runs
    frame_labels: tuple[str, ...] = ("x_t", "predicted x0")  # the panels of a recorded frame
    loaded_as: dict[str, Any] = {"dtype": "fp32", "compile": False, "channels_last": False}  # noqa: RUF012
    """The request fields fixed when the model was loaded (set by `load_inpainter`)."""

    def __call__(
        self,
        image: ImageSource,
        mask_image: ImageSource | None,
        request: InpaintRequest | None = None,
        *,
        generator: torch.Generator | None = None,
        name: str = "image",
        callback: Callable[[Progress], None] | None = None,
        on_plan: Callable[[Plan], None] | None = None,
        record_every: int = 0,
        **options: Any,
    ) -> InpaintResult:
        """Inpaint one image. `options` are `InpaintRequest` fields (preset, schedule, eta,
        num_samples, seed, mask_mode, grow, fit, mask_blur, prompt, class_label, ...) and
        override `request`'s. `generator` (a `torch.Generator`, as in diffusers) supplies
        the run seed instead of `seed`. `on_plan` hears the cost before sampling (with a
        timed network call); `record_every` keeps an animation frame every that many
        steps."""
        started = time.perf_counter()
        request = InpaintRequest.from_options(request, **options)
        for key, value in self.loaded_as.items():
            if key in options and options[key] != value:
                raise RepaintError(
                    f"{key}={options[key]!r}: model {self.name} was loaded with {key}={value!r}; "
                    f"pass {key} to load_inpainter"
                )
        request = replace(request, **self.loaded_as)
        self.check(request)
        request = request.with_seed(_run_seed(request, generator))
        rgb = load_rgb(image, name)
        mask_name = str(mask_image) if isinstance(mask_image, (str, Path)) else f"mask of {name}"
        if mask_image is None:
            if request.extend is None:
                raise RepaintError("mask_image: a mask is needed, unless extend= grows the image")
            keep = np.ones(rgb.shape[:2], dtype=bool)
        else:
            size = (rgb.shape[1], rgb.shape[0])
            keep = load_mask(mask_image, mode=request.mask_mode, size=size, name=mask_name)
            if request.extend is None or not keep.all():  # a keep-all mask suits extending
                warn_about_mask(keep, request.mask_mode, mask_name)
        if request.extend is not None:
            check_extended(rgb.shape[:2], request.extend, name)  # before allocating it
            rgb, keep = extend_canvas(rgb, keep, request.extend)
        self.check_image(rgb, name)
        if keep.all():  # nothing to do: the output is the input
            images = [Image.fromarray(rgb) for _ in range(request.num_samples)]
            return InpaintResult(images, request, fit="none")
        hooks = Hooks(name, callback, on_plan, record_every)
        result = self._inpaint(rgb, keep, request, hooks)
        result.seconds = time.perf_counter() - started
        return result

    def check(self, request: InpaintRequest) -> None:
        """Refuse what this model cannot do, before any image is read."""
        t_T = request.jump_schedule.t_T
        if self.diffusion_steps is not None and t_T > self.diffusion_steps:
            raise RepaintError(
                f"--t-T: {t_T} exceeds the {self.diffusion_steps} diffusion steps of model "
                f"{self.name}; use at most {self.diffusion_steps}"
            )
        if (request.prompt or request.guidance_scale is not None) and not self.text_conditioned:
            raise RepaintError(
                f"--prompt: model {self.name} is not text-conditioned; prompts need a "
                "Stable Diffusion (latent diffusion) model"
            )
        if request.class_label is not None and not self.uses_labels:
            raise RepaintError(
                f"--class: model {self.name} is neither class-conditional nor guided by a "
                "classifier; drop --class or use --model imagenet256"
            )
        if request.sampler not in self.samplers:
            raise RepaintError(
                f"--sampler {request.sampler}: model {self.name} runs only "
                f"{', '.join(self.samplers)} (the other samplers need a pixel-space model)"
            )
        if request.branch_at is not None and not self.branches:
            raise RepaintError(f"--branch-at: model {self.name} does not branch its runs yet")
        if request.fit not in self.fits:
            raise RepaintError(
                f"--fit {request.fit}: model {self.name} inpaints the image at its own size; "
                f"use {' or '.join(self.fits)}"
            )

    def time_evaluation(self) -> float | None:
        """Seconds of one model evaluation of one image on this device, for estimates made
        before an image is seen; None where that depends on the image's size."""
        return None

    def check_image(self, rgb: np.ndarray, name: str) -> None:  # noqa: B027 (optional hook)
        """Refuse or warn about an image this model cannot or should not take."""

    @abstractmethod
    def _inpaint(
        self, rgb: np.ndarray, keep: np.ndarray, request: InpaintRequest, hooks: Hooks
    ) -> InpaintResult:
        """Fill `~keep` in `rgb` (uint8 H, W, 3) as `request` says (its seed is set)."""


def warn_about_mask(keep: np.ndarray, mode: str, name: str) -> None:
    """One warning for a mask that is probably in the other convention."""
    problem = check_mask(keep, name)
    share = fill_fraction(keep)
    if problem is None and share > MOSTLY_FILLED:
        problem = (
            f"{name}: {share:.0%} of the image is to be filled, read as {MASK_MODES[mode]}; "
            f"if white marks the area to fill, use {flip_hint(mode)}"
        )
    elif problem is not None and not keep.any():
        problem += f"; to flip it use {flip_hint(mode)}"
    if problem is not None:
        warnings.warn(problem, RepaintWarning, stacklevel=3)


def frame(step: Step, row: int, *, with_x: bool = True) -> np.ndarray:
    """An animation frame: x_t and the predicted x0 side by side (or x0 alone), uint8."""
    pair = torch.cat([step.x[row], step.pred_x0[row]], dim=-1) if with_x else step.pred_x0[row]
    return to_uint8(pair)


def time_call(call: Callable[[], Any], device: torch.device, repeats: int = 2) -> float:
    """Seconds for one call, the device synchronised (for the cost estimate); the fastest
    of `repeats`, because the first call also sets up kernels."""
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        with torch.no_grad():
            call()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - started)
    return best


def _run_seed(request: InpaintRequest, generator: torch.Generator | None) -> int:
    if generator is None:
        return new_seed() if request.seed is None else request.seed
    if request.seed is not None:
        raise RepaintError("pass either seed= or generator=, not both")
    if not isinstance(generator, torch.Generator):
        raise RepaintError(
            f"generator: expected one torch.Generator, got {type(generator).__name__}"
        )
    return int(torch.randint(0, 2**31, (1,), generator=generator, device=generator.device))


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
