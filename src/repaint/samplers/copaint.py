"""CoPaint and CoPaint-TT (Zhang et al., "Towards Coherent Image Inpainting Using Denoising
Diffusion Implicit Models", ICML 2023, arXiv:2304.03322), as their reference runs them
(UCSB-NLP-Chang/CoPaint, `guided_diffusion/ddim.py: O_DDIMSampler`).

Instead of pasting the known region, each DDIM step first moves the whole x_t so that the
network's one-step x0 matches the known pixels, by G gradient steps on
L(x) = ||m * (gt - x0(x))||^2 + coef ||x - x_t||^2 (the paper's one-step approximation of
the posterior, with the regulariser keeping x near the prior's sample), then takes a
deterministic DDIM step (ddim_sigma = 0) with the optimised x, its eps and clipped x0.
The step size is lr * sqrt(abar_t / abar_0) ("smart" decay), cut by 0.8 until L does not
grow (adaptive), and lr and coef grow by their decay factors after every step. CoPaint-TT
walks a RePaint time list instead: before each jump up it re-optimises x_t at its level,
and each level up is RePaint's undo step, which also undoes one lr/coef decay.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import Tensor

from repaint.diffusion import DiffusionTables, GaussianDiffusion, q_step
from repaint.samplers.common import (
    Denoiser,
    Generators,
    SamplerStep,
    SamplingError,
    Step,
    epsilon,
    finish,
    noise_source,
    reverse_count,
    sampler_levels,
)
from repaint.schedule import Schedule, time_list

MAX_CUTS = 200  # 0.8^200 ~ 4e-20: a search this long means a NaN objective


def ddim_times(num_inference_steps: int, ddpm_num_steps: int) -> list[int]:
    """The reference's DDIM time list (`new_scheduler.ddim_timesteps`, linear): the levels
    round(i * ddpm_num_steps / num_inference_steps), rounded half to even as NumPy does, in
    decreasing order and ending at 0; `ddpm_num_steps` is the diffusion's respaced count."""
    ratio = ddpm_num_steps / num_inference_steps
    levels = np.round(np.arange(num_inference_steps) * ratio).astype(np.int64)
    return sorted({int(level) for level in levels}, reverse=True)


def step_lr(diffusion: GaussianDiffusion, lr: float, t: int) -> float:
    """CoPaint's "smart" learning rate at level t: lr * sqrt(abar_t) / sqrt(abar_0), in the
    reference's float64 order, so the step shrinks with the noise the network removes."""
    if t == 0:
        return lr
    abar = diffusion.alphas_cumprod
    return float(lr / (np.sqrt(1.0 / abar[t]) * math.sqrt(abar[0])))


@dataclass(frozen=True)
class Optimised:
    """x_t after CoPaint's optimisation at one level, and what the optimisation did."""

    x: Tensor  # the optimised x_t
    eps: Tensor  # the network's epsilon at x
    pred_x0: Tensor  # its clipped x0
    objectives: Tensor  # (G, N) float32: L at the start of each iteration
    grad_norms: Tensor  # (G, N): ||grad L||_2
    rejections: Tensor  # (G, N) int64: how often the step was cut by 0.8
    lrs: Tensor  # (G, N) float64: the step size of the accepted update
    final_loss: Tensor  # (N,) the data term at the optimised x
    forward: int  # network calls
    backward: int  # backward passes through the network


def optimise_xt(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    tables: DiffusionTables,
    image: Tensor,
    keep_mask: Tensor,
    x: Tensor,
    t: int,
    *,
    lr: float,
    coef: float,
    iterations: int = 2,
    adaptive: bool = True,
    reevaluate: bool = True,
    labels: Tensor | None = None,
) -> Optimised:
    """G gradient steps on L(x) = ||m (gt - x0(x))||^2 + coef ||x - x_t||^2 at level t, the
    gradient through the network and the clamp of x0 (Zhang et al., Sec. 3).

    With `adaptive` a step that raises L is cut by 0.8 and retried (the cut carries over to
    the later iterations at this level). The reference then evaluates the accepted x again
    with gradients (1 + 2G + cuts network calls); `reevaluate=False` makes the checks with
    gradients instead and keeps the accepted one: the same values for G fewer calls. Every
    image has its own loss, step size and cuts (the reference sums the batch; the same at
    batch 1)."""
    n = x.shape[0]
    shape = (n, *[1] * (x.dim() - 1))
    y, origin = image * keep_mask, x.detach()
    lrs = np.full(n, step_lr(diffusion, lr, t))
    forward = backward = 0

    def predict(x_in: Tensor) -> tuple[Tensor, Tensor]:
        nonlocal forward
        forward += 1
        eps = epsilon(denoiser, diffusion, tables, x_in, t, labels)
        x0 = (
            tables.sqrt_recip_alphas_cumprod[t] * x_in - tables.sqrt_recipm1_alphas_cumprod[t] * eps
        )
        return eps, x0.clamp(-1, 1)

    def data_term(x0: Tensor) -> Tensor:
        return ((y - x0 * keep_mask) ** 2).flatten(1).sum(1)

    def objective(x0: Tensor, x_in: Tensor) -> Tensor:
        return data_term(x0) + coef * ((origin - x_in) ** 2).flatten(1).sum(1)

    def moved(x_in: Tensor, grad: Tensor) -> Tensor:
        return x_in - torch.from_numpy(lrs).to(x_in).view(shape) * grad

    objectives, grad_norms, rejections, step_lrs = [], [], [], []
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        eps, x0 = predict(x)
        for iteration in range(iterations):
            loss = objective(x0, x)
            (grad,) = torch.autograd.grad(loss.sum(), x)
            backward += 1
            x, loss = x.detach(), loss.detach()
            cuts = torch.zeros(n, dtype=torch.int64)
            new_x = moved(x, grad)
            last = iteration == iterations - 1
            while adaptive:
                with torch.set_grad_enabled(not (reevaluate or last)):
                    new_x = new_x.detach().requires_grad_(not (reevaluate or last))
                    new_eps, new_x0 = predict(new_x)
                    rejected = ~(objective(new_x0, new_x) <= loss).cpu()  # NaN: worse
                if not rejected.any():
                    break
                if int(cuts.max()) >= MAX_CUTS:
                    raise SamplingError(
                        f"CoPaint at level {t}: no step lowers the objective (NaN?)"
                    )
                lrs[rejected.numpy()] *= 0.8
                cuts += rejected
                new_x = moved(x, grad)
            objectives.append(loss)
            grad_norms.append(torch.linalg.vector_norm(grad.flatten(1), dim=1))
            rejections.append(cuts)
            step_lrs.append(torch.from_numpy(lrs.copy()))
            if adaptive and not reevaluate:
                x, eps, x0 = new_x, new_eps, new_x0
            else:  # the reference evaluates the accepted x again (we skip the last one's graph)
                with torch.set_grad_enabled(not last):
                    x = new_x.detach().requires_grad_(not last)
                    eps, x0 = predict(x)
    with torch.no_grad():
        final_loss = data_term(x0)

    def stacked(values: list[Tensor], dtype: torch.dtype) -> Tensor:
        return torch.stack(values) if values else torch.empty(0, n, dtype=dtype)

    return Optimised(
        x=x.detach(),
        eps=eps.detach(),
        pred_x0=x0.detach(),
        objectives=stacked(objectives, x.dtype),
        grad_norms=stacked(grad_norms, x.dtype),
        rejections=stacked(rejections, torch.int64),
        lrs=stacked(step_lrs, torch.float64),
        final_loss=final_loss.detach(),
        forward=forward,
        backward=backward,
    )


def copaint_step(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    tables: DiffusionTables,
    image: Tensor,
    keep_mask: Tensor,
    x: Tensor,
    t: int,
    s: int,
    noise: Tensor,
    *,
    lr: float,
    coef: float,
    iterations: int = 2,
    ddim_sigma: float = 0.0,
    adaptive: bool = True,
    reevaluate: bool = True,
    labels: Tensor | None = None,
) -> tuple[Tensor, Optimised]:
    """One CoPaint step x_t -> x_s: optimise x_t (`optimise_xt`), then Song et al.'s DDIM
    step from the optimised x, x_s = sqrt(abar_s) x0 + sqrt(1 - abar_s - sigma^2) eps +
    sigma z, with its clipped x0 and, as the reference, the network's eps (not the one the
    clipped x0 implies)."""
    options = {"adaptive": adaptive, "reevaluate": reevaluate, "labels": labels}
    opt = optimise_xt(
        denoiser, diffusion, tables, image, keep_mask, x, t, lr=lr, coef=coef,
        iterations=iterations, **options,
    )  # fmt: skip
    abar_t, abar_s = tables.alphas_cumprod[t], tables.alphas_cumprod[s]
    sigma = ddim_sigma * torch.sqrt((1 - abar_s) / (1 - abar_t)) * torch.sqrt(1 - abar_t / abar_s)
    mean = opt.pred_x0 * torch.sqrt(abar_s) + torch.sqrt(1 - abar_s - sigma**2) * opt.eps
    return mean + noise * sigma, opt


def copaint(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    image: Tensor,
    keep_mask: Tensor,
    times: Schedule | Sequence[int],
    *,
    generator: Generators,
    lr: float = 0.02,
    lr_decay: float = 1.012,
    coef: float = 1e-4,
    coef_decay: float = 1.01,
    iterations: int = 2,
    ddim_sigma: float = 0.0,
    adaptive: bool = True,
    optimize_before_time_travel: bool = True,
    reevaluate: bool = True,
    labels: Tensor | None = None,
    paste: bool = False,
    callback: Callable[[Step], None] | None = None,
) -> Tensor:
    """Inpaint `image` where `keep_mask` is 0 with CoPaint; returns the level-0 state in
    [-1, 1] (`paste` puts the known pixels of `image` into it; the reference does not).

    `times`: for CoPaint a decreasing list such as `ddim_times(steps, t_T)` (levels of
    `diffusion`, respaced to t_T); for CoPaint-TT a RePaint schedule (`JumpSchedule`,
    `TimeList`; its final -1 is dropped), whose steps up are time travel. Draws: x_T; per
    step down the DDIM noise (drawn even when `ddim_sigma` is 0); before each jump up the
    reference's discarded DDIM step, then one per level up. A `SamplerStep` after each step
    down counts network calls (1 + 2G + cuts per optimisation, 1 + G + cuts without
    `reevaluate`) and backward passes (G).
    """
    levels = sampler_levels(times, diffusion)
    tables = diffusion.tables(image.device)
    keep = keep_mask.to(device=image.device, dtype=image.dtype)
    randn = noise_source(generator, image.shape, image.device)
    total, index, forward, backward = reverse_count(levels), 0, 0, 0
    options = {"iterations": iterations, "adaptive": adaptive, "reevaluate": reevaluate}
    common = (denoiser, diffusion, tables, image, keep)
    optimise = partial(optimise_xt, *common, labels=labels, **options)
    step = partial(copaint_step, *common, ddim_sigma=ddim_sigma, labels=labels, **options)
    x, came_down = randn(), False
    with torch.no_grad():
        for t, s in itertools.pairwise(levels):
            if s < t:
                x, opt = step(x, t, s, randn(), lr=lr, coef=coef)
                lr, coef, came_down = lr * lr_decay, coef * coef_decay, True
                forward, backward, index = forward + opt.forward, backward + opt.backward, index + 1
                if callback is not None:
                    callback(SamplerStep(index - 1, total, t, x, opt.pred_x0, forward, backward))
                continue
            if came_down and optimize_before_time_travel:
                opt = optimise(x, t, lr=lr, coef=coef)
                x, forward, backward = opt.x, forward + opt.forward, backward + opt.backward
                randn()  # the reference's DDIM step from the re-optimised x, thrown away
            x, came_down = q_step(tables, x, s, randn()), False
            lr, coef = lr / lr_decay, coef / coef_decay
    return finish(x, image, keep, paste)


def planned_cost(
    levels: Schedule | Sequence[int],
    diffusion: GaussianDiffusion | None = None,
    *,
    iterations: int = 2,
    adaptive: bool = True,
    reevaluate: bool = True,
    optimize_before_time_travel: bool = True,
    **options: object,
) -> tuple[int, int]:
    """(network calls, backward passes) of one run: an optimisation at every step down (and
    before every jump up in CoPaint-TT) with 1 + 2G calls (1 + G without `adaptive` or
    `reevaluate`) and G backward passes. Every 0.8 cut of the step size adds one call, so
    this is a lower bound (the run's `SamplerStep`s count exactly)."""
    del diffusion, options
    pairs = list(itertools.pairwise([level for level in time_list(levels) if level >= 0]))
    down = sum(1 for t, s in pairs if s < t)
    jumps = sum(1 for a, b in itertools.pairwise(pairs) if a[1] < a[0] and b[1] > b[0])
    optimisations = down + (jumps if optimize_before_time_travel else 0)
    per_call = 1 + (2 * iterations if adaptive and reevaluate else iterations)
    return optimisations * per_call, optimisations * iterations
