"""What a run hands back and what its door hears while it runs: the `InpaintResult`, the
`Plan` (its cost, known before sampling), `Progress` after every step, recorded frames, and
the `Hooks` a door passes in. One frame cadence serves every door (`frame_due`)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from PIL import Image

from repaint.regions import Window
from repaint.request import InpaintRequest
from repaint.samplers.common import Step

FRAMES = 40
"""About this many recorded steps per run: animation frames and the web page's scrubber."""


def frame_due(step: Step) -> bool:
    every = max(1, step.total // FRAMES)
    return step.index % every == 0 or step.index == step.total - 1


class Frame(NamedTuple):
    """One recorded step of one image, in pixels: x_t and the predicted clean image."""

    x: np.ndarray  # uint8 (h, w, 3)
    x0: np.ndarray


@dataclass(frozen=True)
class Progress:
    """What a callback sees: the sampler's step, which batch of how many it belongs to, the
    image of its first row, that image's frame if one was recorded at this step, and (on
    demand) the first row in pixels for a live preview."""

    step: Step
    batch: int
    batches: int
    image: int = 0
    frame: Frame | None = None
    pixels: Callable[[], Frame] | None = None
    rows: int = 1  # images in the batch: model evaluations of this step


@dataclass(frozen=True)
class Plan:
    """What a run will cost, known before sampling starts."""

    windows: int  # of all images
    samples: int
    evaluations_each: int  # the schedule's model evaluations for one window of one sample
    batches: int
    seconds_per_call: float | None = None  # one timed network call at the batch's shape
    shared_evaluations: int = 0  # branched samples: the part they share, once per window
    shared_batches: int = 0
    images: int = 1
    exact: bool = True  # False: a lower bound (a sampler with a step-size search)

    @property
    def model_evaluations(self) -> int:
        """Windows x (shared part + samples x schedule): what the sidecars record."""
        return self.windows * (self.shared_evaluations + self.samples * self.evaluations_each)

    @property
    def network_calls(self) -> int:
        return self.evaluations_each * self.batches + self.shared_evaluations * self.shared_batches

    @property
    def seconds(self) -> float | None:
        return None if self.seconds_per_call is None else self.seconds_per_call * self.network_calls

    def describe(self) -> str:
        images = f"{self.images} image(s), " if self.images > 1 else ""
        windows = f"{self.windows} window(s) x " if self.windows > 1 else ""
        each = f"{self.samples} sample(s) x {self.evaluations_each}"
        if self.shared_evaluations:
            each = f"({self.shared_evaluations} shared + {self.samples} branch(es) x "
            each += f"{self.evaluations_each})"
        batches = self.batches + self.shared_batches
        at_least = "" if self.exact else "at least "
        cost = (
            f"{images}{windows}{each} = {at_least}{self.model_evaluations:,} model evaluations "
            f"in {batches} batch(es)"
        )
        if self.seconds is not None:
            cost += f", about {duration(self.seconds)} on this device"
        return cost


@dataclass(frozen=True)
class Hooks:
    """What one call asks for besides the request: its name (seeds and messages derive from
    it), a progress callback, a cost callback before sampling, and recorded frames."""

    name: str = "image"
    callback: Callable[[Progress], None] | None = None
    on_plan: Callable[[Plan], None] | None = None
    record: bool = False


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


def duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
