"""What every sampler shares: the denoiser they call, the `Step` their callbacks receive,
their noise, the network's epsilon, the levels they walk (the successors stop at level 0,
as their reference does) and the output."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from repaint.diffusion import DiffusionTables, GaussianDiffusion, MeanType, eps_from_x0
from repaint.errors import RepaintError
from repaint.schedule import Schedule, time_list

Generators = torch.Generator | Sequence[torch.Generator]

Denoiser = Callable[[Tensor, Tensor, Tensor | None], Tensor]
"""(x_t, original diffusion step per sample, class labels or None) -> the network output:
epsilon (or x0) channels, then the variance channels of learned-variance models."""

Guidance = Callable[[Tensor, Tensor, Tensor | None], Tensor]
"""(x_t, original diffusion step per sample, class labels) -> scaled grad of log p(y | x_t)."""


@dataclass(frozen=True)
class Step:
    """What a callback sees after each reverse step."""

    index: int  # 0-based count of reverse steps (model evaluations) so far
    total: int  # model evaluations in the whole run
    t: int  # the respaced level this step started from
    x: Tensor  # the sample after the step (level t - 1)
    pred_x0: Tensor  # the (clipped) prediction of the clean image


class SamplingError(RepaintError):
    """The sample stopped being finite (NaN or inf), usually from a broken checkpoint."""


def noise_source(
    generator: torch.Generator | Sequence[torch.Generator], shape: torch.Size, device: torch.device
) -> Callable[[], Tensor]:
    """Standard normal draws of `shape`: from one generator, or one (1, C, H, W) per image."""
    if isinstance(generator, torch.Generator):
        return lambda: torch.randn(shape, generator=generator, device=generator.device).to(device)
    generators = list(generator)
    if len(generators) != shape[0]:
        raise RepaintError(f"got {len(generators)} generators for a batch of {shape[0]} images")
    one = (1, *shape[1:])

    def draw() -> Tensor:
        return torch.cat(
            [torch.randn(one, generator=g, device=g.device).to(device) for g in generators]
        )

    return draw


@dataclass(frozen=True)
class SamplerStep(Step):
    """A `Step` with the network work done so far.

    `index`/`total` count reverse steps (so `index == total - 1` at the last one, as
    progress bars and previews expect); `forward` counts network calls and `backward`
    backward passes through the network (gradients to the input only: no weight gradients,
    roughly the time of one to two forward calls), both cumulative and including this
    step. The reference counts network calls, so `forward` is the figure it reports."""

    forward: int
    backward: int

    @property
    def evaluations(self) -> int:
        """Forward-call equivalents: a call with a backward pass counts as 2."""
        return self.forward + self.backward


def sampler_levels(schedule: Schedule | Sequence[int], diffusion: GaussianDiffusion) -> list[int]:
    """The levels a sampler walks: the time list without a final -1 (these samplers stop at
    level 0, as the reference drops RePaint's last pair 0 -> -1), checked against the
    diffusion; going up is allowed one level at a time (time travel)."""
    levels = time_list(schedule)
    if levels and levels[-1] == -1:
        levels = levels[:-1]
    if len(levels) < 2 or min(levels) < 0 or levels[1] >= levels[0]:
        raise RepaintError(
            f"time list {levels[:5]}...: expected levels >= 0 that start by going down"
        )
    if max(levels) >= diffusion.num_timesteps:
        raise RepaintError(
            f"the time list reaches level {max(levels)} but the diffusion has only "
            f"{diffusion.num_timesteps} steps: respace it to at least {max(levels) + 1}"
        )
    for t, s in itertools.pairwise(levels):
        if s > t + 1 or s == t:
            raise RepaintError(f"time list: {t} -> {s}; time travel goes up one level at a time")
    return levels


def reverse_count(levels: Sequence[int]) -> int:
    return sum(1 for t, s in itertools.pairwise(levels) if s < t)


def epsilon(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    tables: DiffusionTables,
    x: Tensor,
    t: int,
    labels: Tensor | None = None,
) -> Tensor:
    """The network's noise prediction at respaced level t (variance channels dropped; an
    x0-predicting network's output is turned into the epsilon it implies)."""
    out = denoiser(x, tables.timestep_map[t].expand(x.shape[0]), labels)[:, : x.shape[1]].float()
    return eps_from_x0(tables, x, t, out) if diffusion.mean_type is MeanType.X0 else out


def finish(x: Tensor, image: Tensor, keep_mask: Tensor, paste: bool, clip: bool = True) -> Tensor:
    """The reference's output `clamp(x, -1, 1)` (`clip` off: latents, which have no fixed
    range), optionally with the known pixels pasted."""
    if not torch.isfinite(x).all():
        raise SamplingError("the sample became NaN/inf; the checkpoint or its config is wrong")
    x = x.clamp(-1, 1) if clip else x
    return torch.where(keep_mask.expand_as(x) > 0.5, image, x) if paste else x
