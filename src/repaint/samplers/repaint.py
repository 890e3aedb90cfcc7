"""RePaint (Lugmayr et al., CVPR 2022, Algorithm 1): the sampler this project reproduces.

Every reverse step first replaces the known region of its input by the ground truth noised
to the step's level, then takes one ancestral DDPM step over the whole image (or, with
`eta`, a DDIM step of that stochasticity). Every forward step re-noises the current sample
by one level, so that the next reverse steps can harmonise the generated region with the
known one. All randomness comes from one `torch.Generator` (or one per image), in the
reference's order: `x_T`; then per reverse step the posterior noise followed by the
known-region noise; one draw per forward step. A run can stop at a level and go on, also
as several branches (`repaint_until`, `repaint(state=)`, `continue_with`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from repaint.diffusion import (
    GaussianDiffusion,
    ddim_step,
    eps_from_x0,
    p_mean_variance,
    q_sample,
    q_step,
)
from repaint.errors import RepaintError
from repaint.samplers.common import (
    Denoiser,
    Guidance,
    SamplingError,
    Step,
    noise_source,
    reverse_count,
)
from repaint.schedule import Schedule, time_list


@dataclass
class SamplerState:
    """Where a run stands: hand it to `repaint(state=...)` to go on exactly as if it had not
    stopped (the generators' states are part of it)."""

    x: Tensor  # the sample at level times[position]
    position: int  # transitions done
    evaluations: int  # model evaluations done
    times: list[int]  # the whole time list
    generator_states: list[Tensor]  # torch.Generator.get_state() of each generator

    @property
    def level(self) -> int:
        return self.times[self.position]


def repaint(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    image: Tensor,
    keep_mask: Tensor,
    schedule: Schedule | Sequence[int],
    *,
    generator: torch.Generator | Sequence[torch.Generator],
    labels: Tensor | None = None,
    guidance: Guidance | None = None,
    eta: float | None = None,
    clip_denoised: bool = True,
    raw: bool = False,
    callback: Callable[[Step], None] | None = None,
    check_every: int = 25,
    state: SamplerState | None = None,
) -> Tensor:
    """Inpaint `image` where `keep_mask` is 0 and return the sample, in [-1, 1].

    `image` is (N, C, H, W) in [-1, 1]; `keep_mask` broadcasts to it with 1 = known. The
    schedule's levels index `diffusion` (respaced to at least `t_T` steps). With `raw` the
    reference's output is returned as is; otherwise the known pixels are pasted back exactly.
    With one generator per image, each image's noise is its own: its result does not depend
    on what it is batched with. `eta=None` takes the reference's ancestral DDPM steps (with
    the model's variance); a number takes DDIM steps of that stochasticity between the jumps
    (0: deterministic, 1: the posterior variance), which stay accurate on short schedules.
    The noise is drawn in the same order either way. Every `check_every` model evaluations
    (one host read, so no sync per step on a GPU) a sample that became NaN/inf stops the run
    with the step named. `state` (from `repaint_until`) resumes a stopped run: the result
    equals the uninterrupted run's bit for bit.
    """
    run = _Run(denoiser, diffusion, image, keep_mask, schedule, generator, state)
    x = run.loop(labels, guidance, eta, clip_denoised, callback, check_every, until=None)
    if raw:
        return x
    return torch.where(run.keep_mask.expand_as(x) > 0.5, image, x)


def repaint_until(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    image: Tensor,
    keep_mask: Tensor,
    schedule: Schedule | Sequence[int],
    *,
    level: int,
    generator: torch.Generator | Sequence[torch.Generator],
    labels: Tensor | None = None,
    guidance: Guidance | None = None,
    eta: float | None = None,
    clip_denoised: bool = True,
    callback: Callable[[Step], None] | None = None,
    check_every: int = 25,
    state: SamplerState | None = None,
) -> SamplerState:
    """Run `repaint` until the schedule first comes down to `level`, and hand back the
    state there (several continuations can start from it; see `repaint(state=...)`)."""
    run = _Run(denoiser, diffusion, image, keep_mask, schedule, generator, state)
    x = run.loop(labels, guidance, eta, clip_denoised, callback, check_every, until=level)
    return SamplerState(
        x=x,
        position=run.position,
        evaluations=run.index,
        times=run.times,
        generator_states=[g.get_state() for g in run.generators],
    )


def continue_with(
    state: SamplerState,
    schedule: Schedule | Sequence[int],
    generator_states: Sequence[Tensor] | None = None,
) -> SamplerState:
    """The same point of the run, going on with another schedule (from where that schedule
    first comes down to the state's level) and, optionally, other generator states: a
    branch. The schedule must have the state's t_T, the diffusion it was respaced to."""
    times = time_list(schedule)
    if times[0] != state.times[0] or state.level not in times:
        raise RepaintError(
            f"a branch schedule must start at t_T={state.times[0] + 1} and come down through "
            f"level {state.level}"
        )
    rest = times[times.index(state.level) :]
    return SamplerState(
        x=state.x,
        position=state.position,
        evaluations=state.evaluations,
        times=state.times[: state.position] + rest,
        generator_states=list(
            state.generator_states if generator_states is None else generator_states
        ),
    )


def branch_costs(
    schedule: Schedule, branch_schedule: Schedule, level: int | None
) -> tuple[int, int]:
    """Model evaluations of the shared part (down to `level`) and of each branch after it;
    without a level, (0, the whole schedule's)."""
    if level is None:
        return 0, schedule.reverse_steps
    times, rest = schedule.times(), branch_schedule.times()
    if level not in times or level not in rest:
        raise RepaintError(f"--branch-at {level}: not a level of the schedule")
    shared = times[: times.index(level) + 1]
    branch = rest[rest.index(level) :]

    def downs(levels: list[int]) -> int:
        return sum(1 for a, b in itertools.pairwise(levels) if b < a)

    return downs(shared), downs(branch)


class _Run:
    """The loop's set-up and its position, shared by `repaint` and `repaint_until`."""

    def __init__(self, denoiser, diffusion, image, keep_mask, schedule, generator, state):
        times = time_list(schedule)
        if max(times) >= diffusion.num_timesteps:
            raise RepaintError(
                f"the schedule reaches level {max(times)} but the diffusion has only "
                f"{diffusion.num_timesteps} steps: respace it to at least t_T={max(times) + 1}"
            )
        self.denoiser, self.diffusion, self.image, self.times = denoiser, diffusion, image, times
        self.tables = diffusion.tables(image.device)
        self.keep_mask = keep_mask.to(device=image.device, dtype=image.dtype)
        self.transitions = list(itertools.pairwise(times))
        self.total = sum(1 for t, t_next in self.transitions if t_next < t)
        self.generators = [generator] if isinstance(generator, torch.Generator) else list(generator)
        self.randn = noise_source(generator, image.shape, image.device)
        self.position, self.index, self.state = 0, 0, state
        if state is not None:
            if state.times != times or len(state.generator_states) != len(self.generators):
                raise RepaintError(
                    "the sampler state belongs to another schedule or batch; resume it with "
                    "the schedule and generators it was made with"
                )
            for g, saved in zip(self.generators, state.generator_states, strict=True):
                g.set_state(saved)
            self.position, self.index = state.position, state.evaluations

    def loop(self, labels, guidance, eta, clip_denoised, callback, check_every, until):
        if eta is not None and not 0 <= eta <= 1:
            raise RepaintError(f"eta must be in [0, 1] (0: deterministic DDIM), got {eta}")
        tables, image, keep_mask, total = self.tables, self.image, self.keep_mask, self.total
        x = self.randn() if self.state is None else self.state.x.to(image.device).clone()
        first_bad_step = torch.full((), -1, device=image.device)
        start = self.position
        with torch.no_grad():
            for t, t_next in self.transitions[self.position :]:
                # a resumed run goes on past the level it was stopped at
                if t == until and (self.position > start or self.state is None):
                    break
                self.position += 1
                if t_next > t:
                    x = q_step(tables, x, t_next, self.randn())
                    continue
                posterior_noise = self.randn()
                if self.index > 0:  # as in the reference, the first step starts from noise
                    known = q_sample(tables, image, t, self.randn())
                    x = keep_mask * known + (1 - keep_mask) * x
                x, pred_x0 = _reverse_step(
                    self.denoiser,
                    self.diffusion,
                    tables,
                    x,
                    t,
                    posterior_noise,
                    labels,
                    guidance,
                    eta,
                    clip_denoised,
                )
                bad = ~torch.isfinite(x).all()
                first_bad_step = torch.where(bad & (first_bad_step < 0), self.index, first_bad_step)
                if callback is not None:
                    callback(Step(index=self.index, total=total, t=t, x=x, pred_x0=pred_x0))
                self.index += 1
                if self.index % check_every == 0 and self.index < total:
                    _check_finite(first_bad_step, self.transitions, total)
            else:
                if until is not None:
                    raise RepaintError(
                        f"level {until} is not reached on the way down of this schedule "
                        f"(t_T={self.times[0] + 1}); choose a level in [0, {self.times[0]}]"
                    )
        _check_finite(first_bad_step, self.transitions, total)
        return x


def _check_finite(first_bad_step: Tensor, transitions: list[tuple[int, int]], total: int) -> None:
    bad_step = int(first_bad_step)
    if bad_step >= 0:
        bad_t = [t for t, t_next in transitions if t_next < t][bad_step]
        raise SamplingError(
            f"the sample became NaN/inf at model evaluation {bad_step + 1} of {total} "
            f"(t={bad_t}); the checkpoint or its config is probably wrong"
        )


def _reverse_step(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    tables,
    x: Tensor,
    t: int,
    noise: Tensor,
    labels: Tensor | None,
    guidance: Guidance | None,
    eta: float | None,
    clip_denoised: bool,
) -> tuple[Tensor, Tensor]:
    """One step x_t -> x_{t-1}, ancestral (`eta` None) or DDIM, optionally guided."""
    timesteps = tables.timestep_map[t].expand(x.shape[0])
    posterior = p_mean_variance(
        diffusion, tables, denoiser(x, timesteps, labels), x, t, clip_denoised
    )
    if eta is None:
        mean = posterior.mean
        if guidance is not None:
            # Sohl-Dickstein et al.: shift the mean by variance * grad log p(y | x_t).
            grad = guidance(x, timesteps, labels).float()
            mean = mean + torch.exp(posterior.log_variance) * grad
        if t == 0:
            return mean, posterior.pred_x0
        return mean + torch.exp(0.5 * posterior.log_variance) * noise, posterior.pred_x0
    pred_x0 = posterior.pred_x0
    if guidance is not None:
        # Song et al.'s score conditioning: shift epsilon by -sqrt(1 - alpha_bar) * grad.
        eps = eps_from_x0(tables, x, t, pred_x0)
        eps = eps - tables.sqrt_one_minus_alphas_cumprod[t] * guidance(x, timesteps, labels).float()
        pred_x0 = (
            tables.sqrt_recip_alphas_cumprod[t] * x - tables.sqrt_recipm1_alphas_cumprod[t] * eps
        )
    return ddim_step(tables, x, t, pred_x0, eta, noise), pred_x0


def classifier_guidance(classifier: Callable[[Tensor, Tensor], Tensor], scale: float) -> Guidance:
    """Guidance by a noisy-image classifier: `scale * grad_x log softmax(classifier(x, t))[y]`."""

    def gradient(x: Tensor, timesteps: Tensor, labels: Tensor | None) -> Tensor:
        if labels is None:
            raise RepaintError("classifier guidance needs class labels (set cond_y or --class)")
        with torch.enable_grad():
            x_in = x.detach().requires_grad_(True)
            log_probs = torch.log_softmax(classifier(x_in, timesteps).float(), dim=-1)
            selected = log_probs[torch.arange(len(labels), device=x.device), labels]
            return torch.autograd.grad(selected.sum(), x_in)[0] * scale

    return gradient


def sample(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    image: Tensor,
    keep_mask: Tensor,
    levels: Schedule | Sequence[int],
    *,
    generator: torch.Generator | Sequence[torch.Generator],
    callback: Callable[[Step], None] | None = None,
    paste: bool = True,
    eta: float | None = None,
    guidance: Guidance | None = None,
    clip_denoised: bool = True,
    state: SamplerState | None = None,
    until: int | None = None,
) -> Tensor | SamplerState:
    """The registry's call: the whole run (from `state`, the rest of it; `paste` off: the
    reference's raw sample), or with `until` the run down to that level, as a state."""
    options = {
        "generator": generator,
        "guidance": guidance,
        "eta": eta,
        "clip_denoised": clip_denoised,
        "callback": callback,
        "state": state,
    }
    if until is not None:
        return repaint_until(denoiser, diffusion, image, keep_mask, levels, level=until, **options)
    return repaint(denoiser, diffusion, image, keep_mask, levels, raw=not paste, **options)


def planned_cost(
    levels: Schedule | Sequence[int], diffusion: GaussianDiffusion | None = None, **options: object
) -> tuple[int, int]:
    """(network calls, backward passes): one call per step down, the last to -1 included."""
    del diffusion, options
    return reverse_count(time_list(levels)), 0
