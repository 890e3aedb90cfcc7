"""The one inpainter interface: images, masks and an `InpaintRequest` in, `InpaintResult`s
out, whatever the model family behind it.

`repaint.load_inpainter(source)` (in `repaint.loading`) loads any model: a registered name,
a guided-diffusion checkpoint or a diffusers pixel model (`repaint.pixel.PixelInpainter`),
or a Stable Diffusion folder (`repaint.latent.LatentInpainter`). Both families run every
request the same way (`repaint.execution`: the same samplers, batching and assembly); a
family only lays an image out for its model (`layout`) and brings results back to pixels
(`to_pixels`). The shared work lives here: the request from keywords, the seed (from `seed=`
or a diffusers-style `generator=`), reading the image and mask, the capability checks and
the mask guard.
"""

from __future__ import annotations

import time
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from repaint.choices import MASK_MODES, flip_hint
from repaint.device import new_seed
from repaint.errors import FieldError, RepaintError, RepaintWarning
from repaint.execution import Execution, Layout
from repaint.io import ImageSource, load_rgb
from repaint.masks import check_mask, fill_fraction, load_mask
from repaint.prior import DiffusionPrior
from repaint.regions import check_extended, extend_canvas
from repaint.request import InpaintRequest
from repaint.results import Hooks, InpaintResult, Plan, Progress
from repaint.samplers import get_spec, sampler_names

MOSTLY_FILLED = 0.5  # above this share of the image to fill, the mask may be inverted


class Inpainter(ABC):
    """A loaded model ready to inpaint images: `inpainter(image, mask_image, **options)`."""

    name: str
    prior: DiffusionPrior
    checkpoint: Path | None = None
    sha256: str | None = None
    image_size: int | None = None  # None: any size (latent models)
    text_conditioned = False
    fits: tuple[str, ...] = ("auto", "region", "pad", "resize", "crop")
    frame_labels: tuple[str, ...] = ("x_t", "predicted x0")  # the panels of a recorded frame
    loaded_as: dict[str, Any] = {"dtype": "fp32", "compile": False, "channels_last": False}  # noqa: RUF012
    """The request fields fixed when the model was loaded (set by `load_inpainter`)."""

    @property
    def device(self) -> torch.device:
        return self.prior.device

    @property
    def diffusion_steps(self) -> int:
        return self.prior.diffusion_steps

    @property
    def uses_labels(self) -> bool:
        return self.prior.uses_labels

    @property
    def samplers(self) -> list[str]:
        """The samplers this model's family runs."""
        return sampler_names(self.prior.family)

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
        record: bool = False,
        **options: Any,
    ) -> InpaintResult:
        """Inpaint one image. `options` are `InpaintRequest` fields (preset, schedule, eta,
        sampler, num_samples, seed, mask_mode, grow, fit, mask_blur, prompt, class_label,
        ...) and override `request`'s. `generator` (a `torch.Generator`, as in diffusers)
        supplies the run seed instead of `seed`. `on_plan` hears the cost before sampling
        (with a timed network call); `record` keeps frames of about 40 steps."""
        request = self.prepare(InpaintRequest.from_options(request, **options), options, generator)
        rgb, keep = self.read(image, mask_image, request, name)
        return self.inpaint_many(
            [(name, rgb, keep)], request, Hooks(name, callback, on_plan, record)
        )[0]

    def prepare(
        self,
        request: InpaintRequest,
        options: dict[str, Any] | None = None,
        generator: torch.Generator | None = None,
    ) -> InpaintRequest:
        """The request as this model runs it: its load-time fields, checked, with a seed."""
        for key, value in self.loaded_as.items():
            if options and key in options and options[key] != value:
                raise RepaintError(
                    f"{key}={options[key]!r}: model {self.name} was loaded with {key}={value!r}; "
                    f"pass {key} to load_inpainter"
                )
        request = replace(request, **self.loaded_as)
        self.check(request)
        return request.with_seed(_run_seed(request, generator))

    def read(
        self, image: ImageSource, mask_image: ImageSource | None, request: InpaintRequest, name: str
    ) -> tuple[np.ndarray, np.ndarray]:
        """The image (uint8 RGB) and its keep-mask, extended if asked, checked and warned
        about before any model work."""
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
        return rgb, keep

    def inpaint_many(
        self,
        inputs: Sequence[tuple[str, np.ndarray, np.ndarray]],
        request: InpaintRequest,
        hooks: Hooks | None = None,
    ) -> list[InpaintResult]:
        """Several (name, image, keep-mask) with one request (prepared, with a seed): their
        work shares batches, and each result is what it would be alone."""
        started = time.perf_counter()
        hooks = hooks or Hooks()
        results: dict[int, InpaintResult] = {}
        layouts, order = [], []
        for index, (name, rgb, keep) in enumerate(inputs):
            if keep.all():  # nothing to do: the output is the input
                images = [Image.fromarray(rgb) for _ in range(request.num_samples)]
                results[index] = InpaintResult(images, request, fit="none")
                continue
            layouts.append(self.layout(rgb, keep, request, name))
            order.append(index)
        if layouts:
            execution = Execution(
                self.prior, self.to_pixels, request, hooks, self.budget(request), self.time_call
            )
            for index, result in zip(order, execution.run(layouts), strict=True):
                results[index] = result
        for result in results.values():
            result.seconds = (time.perf_counter() - started) / len(results)
        return [results[index] for index in range(len(inputs))]

    def check(self, request: InpaintRequest) -> None:
        """Refuse what this model cannot do, before any image is read."""
        spec = get_spec(request.sampler)
        t_T = request.jump_schedule.t_T
        if t_T > self.diffusion_steps:
            raise FieldError(
                "schedule.t_T",
                f"{t_T} exceeds the {self.diffusion_steps} diffusion steps of model "
                f"{self.name}; use at most {self.diffusion_steps}",
            )
        if (request.prompt or request.guidance_scale is not None) and not self.text_conditioned:
            raise FieldError(
                "prompt" if request.prompt else "guidance_scale",
                f"model {self.name} is not text-conditioned; prompts need a Stable Diffusion "
                "(latent diffusion) model",
            )
        if request.class_label is not None and not self.uses_labels:
            raise FieldError(
                "class_label",
                f"model {self.name} is neither class-conditional nor guided by a classifier; "
                "drop it or use the model imagenet256",
            )
        if self.prior.family not in spec.families:
            raise FieldError(
                "sampler",
                f"{request.sampler} runs on {' and '.join(spec.families)} models; model "
                f"{self.name} is a {self.prior.family} model, whose samplers are "
                f"{', '.join(self.samplers)}",
            )
        if not spec.guided and self.guided(request):
            raise FieldError(
                "sampler",
                f"{request.sampler} takes no classifier guidance, and model {self.name} guides "
                "with its classifier: set {classifier_scale} to 0, or use the repaint sampler",
            )
        if request.fit not in self.fits:
            raise FieldError(
                "fit",
                f"model {self.name} inpaints the image at its own size, so {request.fit!r} does "
                f"not apply; use {' or '.join(self.fits)}",
            )

    def guided(self, request: InpaintRequest) -> bool:
        """Whether this model would guide the request with a classifier."""
        del request
        return False

    def budget(self, request: InpaintRequest) -> Callable[[tuple[int, ...]], int]:
        """Items per batch, by their input shape: the request's batch size, or as many as
        fit the prior's memory budget."""
        if request.batch_size is not None:
            return lambda shape: request.batch_size
        return lambda shape: max(1, self.prior.batch_pixels // (shape[-1] * shape[-2]))

    def nominal_shape(self) -> tuple[int, ...]:
        """The input shape of a typical item, to size groups of images before they are read."""
        side = self.image_size or 64
        return (3, side, side)

    def time_call(self, batch: int, shape: tuple[int, ...]) -> float:
        """Seconds of one network call on a batch of inputs of `shape` (device synchronised;
        the faster of two: the first also sets up kernels)."""
        x = torch.zeros(batch, *shape, device=self.device)
        steps = torch.zeros(batch, dtype=torch.long, device=self.device)
        labels = steps if self.uses_labels else None
        denoiser, _ = self.prior.conditioned(InpaintRequest(), labels)
        return time_call(lambda: denoiser(x, steps, None), self.device)

    def time_evaluation(self) -> float | None:
        """Seconds of one model evaluation of one image on this device, for estimates made
        before an image is seen; None where that depends on the image's size."""
        return None

    def check_image(self, rgb: np.ndarray, name: str) -> None:  # noqa: B027 (optional hook)
        """Refuse or warn about an image this model cannot or should not take."""

    @abstractmethod
    def layout(
        self, rgb: np.ndarray, keep: np.ndarray, request: InpaintRequest, name: str
    ) -> Layout:
        """`rgb` (uint8 H, W, 3) laid out for the model: windows and their inputs."""

    @abstractmethod
    def to_pixels(self, x: Tensor) -> Tensor:
        """Samples (N, C, h, w) of the model's space as images (N, 3, h', w') in [-1, 1]."""


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
