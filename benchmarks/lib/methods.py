"""The methods the quality benchmarks compare, by name, and the adapters that run the
outside ones: diffusers' RePaint loop driving our network, and OpenCV's classical inpainting.
Our own sampler needs no adapter (the runner calls `repaint.samplers.repaint.repaint`)."""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repaint.errors import RepaintError
from repaint.presets import PRESETS
from repaint.schedule import JumpSchedule

OPENCV_RADIUS = 3
DIFFUSERS_ETA = 1.0  # DDPM ancestral sampling, as in the paper (diffusers' own default is 0)
METHODS = (
    "repaint-paper",
    "no-resampling",
    "slowing-down",
    "repaint-fast",
    "repaint-draft",
    "diffusers-repaint",
    "opencv-telea",
    "opencv-ns",
    "masked-input",
)
DIFFUSION_METHODS = METHODS[:6]
REQUIREMENTS = {  # import name -> pip name
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "matplotlib": "matplotlib",
    "cv2": "opencv-python-headless",
    "diffusers": "diffusers",
}


@dataclass(frozen=True)
class Method:
    name: str
    family: str  # "repaint" (our sampler), "diffusers", "opencv" or "reference"
    description: str
    schedule: JumpSchedule | None = None
    eta: float | None = None  # our sampler: None = ancestral DDPM steps, a number = DDIM

    @property
    def evaluations(self) -> int:
        return self.schedule.reverse_steps if self.schedule is not None else 0


def scaled(schedule: JumpSchedule, factor: float) -> JumpSchedule:
    """A shorter schedule of the same shape, for smoke tests (`--schedule-scale`)."""
    return dataclasses.replace(
        schedule,
        t_T=max(2, round(schedule.t_T * factor)),
        jump_length=max(1, round(schedule.jump_length * factor)),
    )


def build_methods(
    names: Sequence[str] = METHODS,
    *,
    diffusion_steps: int = 1000,
    schedules: Mapping[str, JumpSchedule] | None = None,
    schedule_scale: float = 1.0,
) -> list[Method]:
    """The methods to run, in table order. `schedules` overrides a method's schedule by name
    (`repaint-paper` also sets the schedule of `diffusers-repaint` and the length of
    `slowing-down`); `schedule_scale` < 1 shortens them all."""
    unknown = sorted(set(names) - set(METHODS))
    if unknown:
        raise RepaintError(f"--methods: unknown method(s) {', '.join(unknown)}")
    overrides = dict(schedules or {})

    def pick(name: str, default: JumpSchedule) -> JumpSchedule:
        schedule = overrides.get(name, default)
        return scaled(schedule, schedule_scale) if schedule_scale != 1 else schedule

    paper = pick("repaint-paper", PRESETS["paper"].schedule)
    # As many plain steps as the paper schedule has evaluations, capped by the training steps.
    slow_default = JumpSchedule(
        t_T=min(paper.reverse_steps, diffusion_steps),
        jump_length=paper.jump_length,
        jump_n_sample=1,
    )
    slow = overrides.get("slowing-down", slow_default)
    catalogue = {
        "repaint-paper": Method(
            "repaint-paper", "repaint", "RePaint, the paper's schedule (our sampler)", paper
        ),
        "no-resampling": Method(
            "no-resampling",
            "repaint",
            "the paper's schedule without resampling (r = 1)",
            pick("no-resampling", dataclasses.replace(PRESETS["paper"].schedule, jump_n_sample=1)),
        ),
        "slowing-down": Method(
            "slowing-down",
            "repaint",
            "no resampling, with as many steps as the paper has evaluations (capped)",
            slow,
        ),
        "repaint-fast": Method(
            "repaint-fast",
            "repaint",
            "RePaint, preset `fast`",
            pick("repaint-fast", PRESETS["fast"].schedule),
            PRESETS["fast"].eta,
        ),
        "repaint-draft": Method(
            "repaint-draft",
            "repaint",
            "RePaint, preset `draft`",
            pick("repaint-draft", PRESETS["draft"].schedule),
            PRESETS["draft"].eta,
        ),
        "diffusers-repaint": Method(
            "diffusers-repaint",
            "diffusers",
            f"diffusers RePaintScheduler (eta={DIFFUSERS_ETA:g}) driving our model",
            paper,
        ),
        "opencv-telea": Method(
            "opencv-telea", "opencv", f"cv2.inpaint, INPAINT_TELEA, radius {OPENCV_RADIUS}"
        ),
        "opencv-ns": Method(
            "opencv-ns", "opencv", f"cv2.inpaint, INPAINT_NS, radius {OPENCV_RADIUS}"
        ),
        "masked-input": Method(
            "masked-input", "reference", "floor: the fill region left black (background)"
        ),
    }
    return [catalogue[name] for name in METHODS if name in names]


def missing_requirements(methods: Sequence[str]) -> list[str]:
    """pip names of the packages the chosen methods need that are not installed, so that a
    run stops at once with one line instead of failing an hour in."""
    needed = ["sklearn", "skimage", "matplotlib"]
    if any(name.startswith("opencv") for name in methods):
        needed.append("cv2")
    if "diffusers-repaint" in methods:
        needed.append("diffusers")
    missing = []
    for module in needed:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(REQUIREMENTS[module])
    return missing


def diffusers_scheduler(config: Mapping[str, Any]) -> Any:
    """A RePaintScheduler with our model's betas."""
    from diffusers import RePaintScheduler

    from repaint.diffusion import named_betas

    steps = int(config.get("diffusion_steps", 1000))
    schedule = config.get("noise_schedule", "linear")
    if schedule == "linear":  # our linear betas keep the 1e-4..0.02 range at 1,000 steps
        scale = 1000 / steps
        return RePaintScheduler(
            num_train_timesteps=steps,
            beta_start=scale * 1e-4,
            beta_end=scale * 0.02,
            beta_schedule="linear",
            eta=DIFFUSERS_ETA,
            clip_sample=True,
        )
    return RePaintScheduler(
        num_train_timesteps=steps,
        trained_betas=named_betas(schedule, steps),
        eta=DIFFUSERS_ETA,
        clip_sample=True,
    )


def diffusers_repaint(
    denoise: Callable[[Tensor, Tensor, Tensor | None], Tensor],
    config: Mapping[str, Any],
    image: Tensor,
    keep: Tensor,
    schedule: JumpSchedule,
    generators: list[torch.Generator],
    callback: Callable[[int, int], None] | None = None,
) -> Tensor:
    """diffusers' RePaintPipeline loop (`step` / `undo_step`) with our network's epsilon.

    The network gets the scheduler's original timesteps; mask 1 = keep as in diffusers.
    One generator per item, passed as a list, so every item's noise is its own.
    """
    from diffusers.utils.torch_utils import randn_tensor

    if config.get("predict_xstart", False):
        raise RepaintError("diffusers-repaint needs an epsilon-predicting model")
    scheduler = diffusers_scheduler(config)
    scheduler.set_timesteps(
        schedule.t_T, schedule.jump_length, schedule.jump_n_sample, device=image.device
    )
    timesteps = scheduler.timesteps
    total = int(sum(1 for i, t in enumerate(timesteps) if i == 0 or t < timesteps[i - 1]))
    x = randn_tensor(image.shape, generator=generators, device=image.device, dtype=image.dtype)
    t_last = timesteps[0] + 1
    done = 0
    for t in timesteps:
        if t < t_last:
            epsilon = denoise(x, t.expand(x.shape[0]), None)[:, :3]
            x = scheduler.step(epsilon, t, x, image, keep, generator=generators).prev_sample
            done += 1
            if callback is not None:
                callback(done, total)
        else:
            x = scheduler.undo_step(x, t_last, generator=generators)
        t_last = t
    return x


def opencv_inpaint(images: np.ndarray, keeps: np.ndarray, name: str) -> np.ndarray:
    """Method `opencv-telea` or `opencv-ns` on uint8 images, one at a time."""
    import cv2

    flag = cv2.INPAINT_TELEA if name == "opencv-telea" else cv2.INPAINT_NS
    return np.stack(
        [
            cv2.inpaint(image, (~keep).astype(np.uint8) * 255, OPENCV_RADIUS, flag)
            for image, keep in zip(images, keeps, strict=True)
        ]
    )
