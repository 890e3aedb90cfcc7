"""What a request costs in model evaluations, for every sampler, known before any image is
read. The command line's header and plan, the sidecar's count, the web page's estimate and
its work limit all come from here, so they agree (a backward pass through the network counts
as an evaluation: it costs about as much as a call)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass

from repaint.diffusion import GaussianDiffusion
from repaint.errors import FieldError, RepaintWarning
from repaint.request import InpaintRequest
from repaint.samplers import SamplerSpec, get_spec
from repaint.schedule import Schedule, time_list


@dataclass(frozen=True)
class Costs:
    """Model evaluations of one window: the shared part of branched samples (once), and
    each sample's (or branch's) own run; `exact` is False where the sampler's count is a
    lower bound (CoPaint's step-size search adds calls)."""

    shared: int
    each: int
    exact: bool = True

    def total(self, samples: int) -> int:
        return self.shared + samples * self.each


def sampler_levels(spec: SamplerSpec, schedule: Schedule) -> list[int]:
    """The levels `spec` walks for a product schedule: its time list (jumps as time
    travel), or straight down from t_T - 1 to 0."""
    if spec.walk == "straight":
        return list(range(schedule.t_T - 1, -1, -1))
    return time_list(schedule)


def request_costs(request: InpaintRequest, diffusion: GaussianDiffusion | None = None) -> Costs:
    """The costs of one window of `request`. `diffusion` is the model's, respaced to t_T
    (a sampler whose work depends on the noise levels needs it); None: the published
    models' (1,000 linear steps)."""
    spec = get_spec(request.sampler)
    schedule = request.jump_schedule
    if diffusion is None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RepaintWarning)
            diffusion = GaussianDiffusion.from_config(timestep_respacing=schedule.t_T)
    cost = spec.cost_function()
    options = request.options_for_sampler()

    def evaluations(levels: list[int]) -> int:
        return sum(cost(levels, diffusion, **options))

    level = request.branch_at
    if level is None:
        return Costs(0, evaluations(sampler_levels(spec, schedule)), spec.cost_is_exact)
    times = sampler_levels(spec, schedule)
    rest = sampler_levels(spec, request.branch_jump_schedule)
    if level not in times or level not in rest:
        raise FieldError("branch_at", f"{level} is not a level of the schedule")
    shared, branch = times[: times.index(level) + 1], rest[rest.index(level) :]
    return Costs(evaluations(shared), evaluations(branch), spec.cost_is_exact)
