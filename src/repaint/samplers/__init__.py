"""Training-free inpainting samplers besides RePaint, as CoPaint's reference implementation
(UCSB-NLP-Chang/CoPaint) runs them: DDNM (`ddnm`), DPS (`dps`), CoPaint and CoPaint-TT
(`copaint`). RePaint itself is `repaint.sampler.repaint`.

All take `(denoiser, diffusion, image, keep_mask, time list, *, generator, ...)` like
`repaint`, draw every random number from `generator` in the reference's order, return the
level-0 state clamped to [-1, 1] (with `paste=True`, the known pixels of `image` exactly),
and call `callback` with a `SamplerStep` after each step down. `SAMPLERS` maps a name to the
function, `DEFAULTS` to its keyword defaults (the reference's CelebA-HQ settings),
`TIME_LISTS` to the kind of time list it walks and `REFERENCE_SCHEDULES` to the reference
scripts' schedules. `planned_evaluations` tells the network work of a run beforehand.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

from torch import Tensor

from repaint.diffusion import GaussianDiffusion
from repaint.errors import RepaintError
from repaint.samplers.common import SamplerStep
from repaint.samplers.copaint import Optimised, copaint, copaint_step, ddim_times, optimise_xt
from repaint.samplers.ddnm import ddnm, ddnm_step
from repaint.samplers.dps import dps, dps_step
from repaint.schedule import Schedule, time_list

__all__ = [
    "DEFAULTS",
    "REFERENCE_SCHEDULES",
    "SAMPLERS",
    "TIME_LISTS",
    "Optimised",
    "SamplerStep",
    "copaint",
    "copaint_step",
    "ddim_times",
    "ddnm",
    "ddnm_step",
    "dps",
    "dps_step",
    "optimise_xt",
    "planned_evaluations",
    "run_sampler",
    "walk",
]

SAMPLERS: dict[str, Callable[..., Tensor]] = {
    "ddnm": ddnm,
    "dps": dps,
    "copaint": copaint,
    "copaint-tt": copaint,  # the same function on a time list with jumps
}

_COPAINT = {
    "lr": 0.02,
    "lr_decay": 1.012,
    "coef": 1e-4,
    "coef_decay": 1.01,
    "iterations": 2,
    "ddim_sigma": 0.0,
    "adaptive": True,
}
DEFAULTS: dict[str, dict[str, float | int | bool]] = {
    "ddnm": {"eta": 0.85, "sigma_y": 0.0},
    "dps": {"step_size": 1.0, "eta": 1.0, "measurement_sigma": 1e-4},
    "copaint": dict(_COPAINT),
    "copaint-tt": {**_COPAINT, "optimize_before_time_travel": True},
}

TIME_LISTS: dict[str, str] = {
    "ddnm": "jump",  # a RePaint schedule (JumpSchedule / TimeList); without jumps: plain
    "dps": "jump",
    "copaint": "ddim",  # ddim_times(num_inference_steps, t_T) on a diffusion respaced to t_T
    "copaint-tt": "jump",
}

REFERENCE_SCHEDULES: dict[str, dict[str, int]] = {
    "ddnm": {"t_T": 250, "jump_length": 1, "jump_n_sample": 1},
    "dps": {"t_T": 250, "jump_length": 1, "jump_n_sample": 1},
    "copaint": {"t_T": 250, "num_inference_steps": 250},
    "copaint-tt": {"t_T": 250, "jump_length": 10, "jump_n_sample": 2},
}


def planned_evaluations(
    name: str,
    times: Schedule | Sequence[int],
    *,
    iterations: int = 2,
    adaptive: bool = True,
    reevaluate: bool = True,
    optimize_before_time_travel: bool = True,
) -> tuple[int, int]:
    """(network calls, backward passes through the network) of one run on `times`.

    DDNM: one call per step down; DPS: one call and one backward pass. CoPaint optimises at
    every step down (and before every jump up in CoPaint-TT) with 1 + 2G calls (1 + G
    without `adaptive` or `reevaluate`) and G backward passes; every 0.8 cut of its step
    size adds one call, so for CoPaint this is a lower bound (the runs' `SamplerStep`s
    count exactly)."""
    levels = [level for level in time_list(times) if level >= 0]
    pairs = list(itertools.pairwise(levels))
    down = sum(1 for t, s in pairs if s < t)
    if name == "ddnm":
        return down, 0
    if name == "dps":
        return down, down
    if name not in SAMPLERS:
        raise RepaintError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    jumps = sum(1 for a, b in itertools.pairwise(pairs) if a[1] < a[0] and b[1] > b[0])
    optimisations = down + (jumps if optimize_before_time_travel else 0)
    per_call = 1 + (2 * iterations if adaptive and reevaluate else iterations)
    return optimisations * per_call, optimisations * iterations


def walk(name: str, schedule: Schedule) -> list[int]:
    """The levels sampler `name` walks for a schedule of the product: `copaint` goes straight
    down from t_T - 1 to 0 (its reference, `ddim_times(t_T, t_T)`), the others follow the
    schedule's jumps as time travel."""
    if name not in SAMPLERS:
        raise RepaintError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    if name == "copaint":
        return list(range(schedule.t_T - 1, -1, -1))
    return time_list(schedule)


def run_sampler(
    name: str,
    denoiser: Callable[..., Tensor],
    diffusion: GaussianDiffusion,
    image: Tensor,
    keep_mask: Tensor,
    schedule: Schedule,
    **options: object,
) -> Tensor:
    """`name` on `schedule` (see `walk`) with its reference defaults, the known pixels pasted."""
    sampler = SAMPLERS[name]
    return sampler(
        denoiser, diffusion, image, keep_mask, walk(name, schedule), paste=True, **options
    )
