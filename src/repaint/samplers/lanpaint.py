"""LanPaint inpainting (Zheng, Lan and Wang, "LanPaint: Training-Free Diffusion Inpainting
with Asymptotically Exact and Fast Conditional Sampling", TMLR 2025, arXiv:2502.03491), as
its authors' code updates (scraed/LanPaint, `src/LanPaint/lanpaint.py`, the ComfyUI node's
defaults in `nodes.py`), reproduced here: that code is a ComfyUI node and does not run
outside ComfyUI's samplers. `tests/golden_samplers/record_lanpaint.py` runs its `LanPaint`
class inside a minimal stand-in for ComfyUI's Euler sampler to check this module.

Before every denoising step the sampler "thinks": k Langevin steps on x_t (variance
preserving, abar = 1 / (1 + sigma^2)) towards the inpainting posterior, then one network
call gives the x0 that an Euler step of the probability-flow ODE (ComfyUI's `euler`, in the
variance-exploding x = x_t / sqrt(abar)) uses; x_t's known region is first reset to
y + sigma z with the run's initial noise z. The Langevin target is the paper's
bidirectional-guided (BiG) score:
  unknown pixels: -(x_t - x0),   known: -(1 + lambda)(x_t - y) + lambda (x_t - x0),
with x0 = D(x_t / sqrt(abar), sigma). Each Langevin step integrates
dx = -A x dt + C dt + sqrt(2) dW exactly for fixed C (the overdamped limit of the paper's
fast Langevin dynamics, which the code now runs), with A = 1 / (1 - abar)
(unknown) or (1 + lambda) / (1 - abar) (known), C = (sqrt(abar) (x_t + score) - x_t) /
(1 - abar) + A x_t and dt = StepSize (known: times beta); from the second step on, two half
steps with the previous C around a fresh C (a corrector). With MinStepFrac 1 (the node's
value) the step size stays StepSize and the step count ramps down as k (1 - abar), rounded;
the last denoising step does not think (EarlyStop 1). LanPaint-k: k Langevin steps, so up
to k + 1 network calls per denoising step.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from repaint.diffusion import DiffusionTables, GaussianDiffusion
from repaint.errors import RepaintError
from repaint.samplers.common import (
    Denoiser,
    Generators,
    SamplerStep,
    Step,
    epsilon,
    finish,
    noise_source,
    sampler_levels,
)
from repaint.schedule import Schedule, time_list


def sigmas(diffusion: GaussianDiffusion, device: torch.device) -> Tensor:
    """sigma per level (index level + 1; index 0 is level -1, sigma 0): the variance-exploding
    noise level sqrt((1 - abar) / abar), in float32."""
    abar = torch.from_numpy(diffusion.alphas_cumprod).float()
    return torch.cat([torch.zeros(1), ((1 - abar) / abar) ** 0.5]).to(device)


def inner_steps(n_steps: int, frac: float, min_step_frac: float) -> int:
    """The node's step count at noise fraction frac = 1 - abar
    (`min_step_frac_effective_steps`): k while frac >= MinStepFrac, then
    round(k frac / MinStepFrac) (Python's rounding, half to even)."""
    if min_step_frac <= 0 or frac >= min_step_frac or n_steps <= 0:
        return n_steps
    return max(0, round(n_steps * frac / min_step_frac))


def _noise_fraction(sigma: Tensor) -> Tensor:
    return 1 - 1 / (1 + sigma**2)


class Langevin(NamedTuple):
    x_t: Tensor  # after the step
    C: Tensor  # the drift constant, carried to the next step
    x0: Tensor  # x_t + score at the point C was taken


def denoised(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    tables: DiffusionTables,
    x: Tensor,
    sigma: Tensor,
    t: int,
    labels: Tensor | None = None,
) -> Tensor:
    """ComfyUI's epsilon model in its variance-exploding form: D(x, sigma) =
    x - sigma eps(x / sqrt(sigma^2 + 1), t)."""
    x_in = x / (sigma**2 + 1.0**2) ** 0.5
    return x - epsilon(denoiser, diffusion, tables, x_in, t, labels) * sigma


def langevin_step(
    score: Callable[[Tensor], Tensor],
    x_t: Tensor,
    keep: Tensor,
    abt: Tensor,
    step_size: Tensor,
    C: Tensor | None,
    noise: Callable[[], Tensor],
    *,
    lam: float,
    beta: float,
) -> Langevin:
    """One overdamped Langevin step (the code's `langevin_dynamics` + `run_overdamped`):
    a full step with C at x_t when `C` is None, else half step, new C, correction
    (C_new - C) dt, half step with the old C. Draws one normal per half or full step."""
    dtx = 2 * step_size * abt**0
    dty = 2 * step_size * (beta * abt**0)
    a_x = 1 / (1 - abt) * dtx / 2 / (dtx / 2)
    a_y = (1 + lam) / (1 - abt) * dty / 2 / (dty / 2)
    d_x = d_y = (2 * abt**0) ** 0.5
    A = a_x * (1 - keep) + a_y * keep
    D = d_x * (1 - keep) + d_y * keep
    dt = dtx / 2 * (1 - keep) + dty / 2 * keep

    def coef_c(x_t: Tensor) -> tuple[Tensor, Tensor]:
        x0 = x_t + score(x_t)
        return (abt**0.5 * x0 - x_t) / (1 - abt) + A * x_t, x0

    def advance(x_t: Tensor, dt: Tensor, C: Tensor) -> Tensor:
        a_dt = A * dt
        exp_neg = torch.exp(-a_dt)
        small = torch.abs(A) < 1e-8
        k = torch.where(small, dt, (-torch.expm1(-a_dt)) / A)
        k2 = torch.where(small, dt, (-torch.expm1(-2 * a_dt)) / (2 * A))
        mean = exp_neg * x_t + k * C
        return mean + noise() * torch.sqrt(torch.clamp(D**2 * k2, min=0.0))

    if C is None:
        C, x0 = coef_c(x_t)
        return Langevin(advance(x_t, dt, C), C, x0)
    x_t = advance(x_t, dt / 2, C)
    C_new, x0 = coef_c(x_t)
    x_t = x_t + (C_new - C) * dt
    return Langevin(advance(x_t, dt / 2, C), C_new, x0)


class LanPaintStep(NamedTuple):
    x: Tensor  # the variance-exploding sample at the next level (its x0 at the end)
    pred_x0: Tensor  # the denoised image, known region replaced by y
    calls: int  # network calls made


@torch.no_grad()
def lanpaint_step(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    tables: DiffusionTables,
    y: Tensor,
    keep: Tensor,
    first_noise: Tensor,
    x: Tensor,
    t: int,
    sigma: Tensor,
    sigma_next: Tensor,
    n_steps: int,
    noise: Callable[[], Tensor],
    *,
    lam: float = 5.0,
    step_size: float = 0.2,
    beta: float = 1.0,
    min_step_frac: float = 1.0,
    labels: Tensor | None = None,
) -> LanPaintStep:
    """One denoising step at level t (variance-exploding `x` at `sigma`, shape (N,)):
    replace the known region by y + sigma z, `n_steps` Langevin steps on x_t, one network
    call for x0, and ComfyUI's Euler step to `sigma_next`."""
    view = (-1,) + (1,) * (x.dim() - 1)
    abt = (1 / (1 + sigma**2)).view(view)
    s = sigma.view(view)
    size = (step_size * (1 - abt.view(-1)).clamp(min=min_step_frac)).view(view)
    x = x * (1 - keep) + (first_noise * s + y) * keep
    x_t = x / (1 + s**2) ** 0.5
    calls = 0

    def score(x_t: Tensor) -> Tensor:
        nonlocal calls
        calls += 1
        x0 = denoised(denoiser, diffusion, tables, x_t * (1 + s**2) ** 0.5, s, t, labels)
        score_x = -(x_t - x0)
        score_y = -(1 + lam) * (x_t - y) + lam * (x_t - x0)
        return score_x * (1 - keep) + score_y * keep

    C = None
    for _ in range(n_steps):
        if torch.mean(2 * size * abt**0 / 2) <= 0.0:
            break
        x_t, C, _ = langevin_step(score, x_t, keep, abt, size, C, noise, lam=lam, beta=beta)
    x = x_t * (1 + s**2) ** 0.5
    out = denoised(denoiser, diffusion, tables, x, s, t, labels)
    out = out * (1 - keep) + y * keep
    d = (x - out) / s
    return LanPaintStep(x + d * (sigma_next - sigma).view(view), out, calls + 1)


@torch.no_grad()
def lanpaint(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    image: Tensor,
    keep_mask: Tensor,
    schedule: Schedule | Sequence[int],
    *,
    generator: Generators,
    n_steps: int = 5,
    lam: float = 5.0,
    step_size: float = 0.2,
    beta: float = 1.0,
    min_step_frac: float = 1.0,
    early_stop: int = 1,
    labels: Tensor | None = None,
    paste: bool = False,
    callback: Callable[[Step], None] | None = None,
) -> Tensor:
    """Inpaint `image` where `keep_mask` is 0 with LanPaint-`n_steps`; returns the clean
    image in [-1, 1] (`paste` puts the known pixels of `image` into it exactly; LanPaint's
    own output has them to rounding).

    `schedule`: levels of `diffusion`, walked down to the clean image (a final level -1,
    sigma = 0, is implied); a step up adds variance-exploding noise (not in LanPaint).
    Defaults: the node's (`LanPaint_KSampler`): 5 steps, lambda 5, StepSize 0.2, beta 1,
    MinStepFrac 1, EarlyStop 1 (no thinking on the last `early_stop` steps). The known
    region y = image * keep_mask (ComfyUI's latent may hold the whole image). Draws: z
    (x_T = y + sqrt(1 + sigma_T^2) z, and the known region's noise at every step), then
    one per Langevin full step and two per corrected step, one per step up."""
    levels = [*sampler_levels(schedule, diffusion), -1]
    tables = diffusion.tables(image.device)
    table = sigmas(diffusion, image.device)
    keep = keep_mask.to(device=image.device, dtype=image.dtype)
    randn = noise_source(generator, image.shape, image.device)
    n = image.shape[0]
    y = image * keep
    downs = [(t, s) for t, s in itertools.pairwise(levels) if s < t]
    z = randn()
    sigma_top = table[levels[0] + 1].expand(n)
    x = z * torch.sqrt(1.0 + sigma_top.view(-1, 1, 1, 1) ** 2.0) + y
    index = forward = 0
    for t, s in itertools.pairwise(levels):
        sigma, sigma_next = table[t + 1].expand(n), table[s + 1].expand(n)
        if s > t:
            x = x + (sigma_next**2 - sigma**2).sqrt().view(-1, 1, 1, 1) * randn()
            continue
        k = n_steps if len(downs) - index > early_stop else 0
        if k:
            k = inner_steps(k, float(_noise_fraction(sigma).mean()), min_step_frac)
        step = lanpaint_step(
            denoiser, diffusion, tables, y, keep, z, x, t, sigma, sigma_next, k, randn,
            lam=lam, step_size=step_size, beta=beta, min_step_frac=min_step_frac,
            labels=labels,
        )  # fmt: skip
        x, index, forward = step.x, index + 1, forward + step.calls
        if callback is not None:
            x_vp = x / (1 + sigma_next.view(-1, 1, 1, 1) ** 2) ** 0.5
            callback(SamplerStep(index - 1, len(downs), t, x_vp, step.pred_x0, forward, 0))
    return finish(x, image, keep, paste)


def planned_cost(
    times: Schedule | Sequence[int],
    diffusion: GaussianDiffusion,
    *,
    n_steps: int = 5,
    step_size: float = 0.2,
    min_step_frac: float = 1.0,
    early_stop: int = 1,
    **options: object,
) -> tuple[int, int]:
    """(network calls, backward passes) of one run: per denoising step 1 + its Langevin
    step count (n_steps, ramped down below MinStepFrac, 0 on the last `early_stop` steps
    and with a zero step size)."""
    levels = [level for level in time_list(times) if level >= 0] + [-1]
    table = sigmas(diffusion, torch.device("cpu"))
    downs = [t for t, s in itertools.pairwise(levels) if s < t]
    if len(levels) < 2 or not downs:
        raise RepaintError("LanPaint needs a time list that goes down")
    calls = 0
    for index, t in enumerate(downs):
        k = n_steps if len(downs) - index > early_stop and step_size > 0 else 0
        if k:
            k = inner_steps(k, float(_noise_fraction(table[t + 1].view(1)).mean()), min_step_frac)
        calls += 1 + k
    return calls, 0
