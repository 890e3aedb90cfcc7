"""PiGDM inpainting (Song et al., "Pseudoinverse-Guided Diffusion Models for Inverse
Problems", ICLR 2023), as RED-diff's implementation runs it (NVlabs/RED-diff,
`algos/pgdm.py`, with the `in2` inpainting operator of their inpainting scripts).

Each step is a DDIM step (Song et al., ICLR 2021) around the network's x0 plus the
paper's pseudoinverse guidance: for a noiseless linear measurement y = H x it is
(H^+ y - H^+ H x0)^T dx0/dx_t, a vector-Jacobian product through the network (one backward
pass), weighted by sqrt(abar_s) sqrt(abar_t) (the paper's r_t^2 folded into the DDIM step:
the "adaptive weight" of RED-diff's `awd`). For inpainting H = H^+ = the keep mask, so the VJP
pulls the unknown region towards agreeing with the known pixels; `in2` then replaces the
known region of x0 by y and zeroes the guidance there:

    x_s = sqrt(abar_s) x0' + c1 z + c2 eps + w sqrt(abar_s) sqrt(abar_t) (1 - m) g,
    c1 = eta sqrt((1 - abar_t / abar_s)(1 - abar_s) / (1 - abar_t)), c2 = sqrt(1 - abar_s - c1^2),

with x0 = (x_t - sqrt(1 - abar_t) eps) / sqrt(abar_t) (not clipped), x0' = (1 - m) x0 + m y
and g = d/dx_t sum((m y - m x0) * x0) (m y - m x0 held fixed). The walk starts at the top
level from sqrt(abar_T) m y + sqrt(1 - abar_T) z and its last step goes to "level -1"
(abar = 1): x_{-1} = x0' + the guidance, the clean image. RED-diff's levels are
range(0, 1000, 1000 // steps), i.e. a diffusion respaced with `"ddimN"`; its tables are
float32 (float32 betas, torch's cumprod), which this module uses on that process.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from repaint.diffusion import DiffusionTables, GaussianDiffusion, linear_betas, q_step
from repaint.samplers.common import (
    Denoiser,
    Generators,
    SamplerStep,
    Step,
    epsilon,
    finish,
    noise_source,
    reverse_count,
    sampler_levels,
)
from repaint.schedule import Schedule, time_list


def reference_alphas(diffusion: GaussianDiffusion, device: torch.device) -> Tensor:
    """abar per level, shifted by one (index level + 1; index 0 is level -1, abar = 1), as
    RED-diff's `Diffusion.alpha`: on (a respacing of) the linear 1000-step process their
    float32 table (cumprod of 1 - float32(betas) with a leading beta 0, in torch on the
    CPU), otherwise the diffusion's own values in float32."""
    original = np.asarray(diffusion.timestep_map)
    base = linear_betas(1000)
    exact = original.max() < 1000 and np.allclose(
        np.cumprod(1.0 - base)[original], diffusion.alphas_cumprod, rtol=1e-12, atol=0
    )
    if exact:
        betas = torch.cat([torch.zeros(1), torch.from_numpy(base)]).float()
        table = (1 - betas).cumprod(dim=0)[np.concatenate([[0], original + 1])]
    else:
        table = torch.cat([torch.ones(1), torch.from_numpy(diffusion.alphas_cumprod).float()])
    return table.to(device)


class PiGDMStep(NamedTuple):
    x: Tensor  # the sample at level s
    pred_x0: Tensor  # x0 with the known region replaced by y
    raw_x0: Tensor  # the network's x0 (not clipped)
    eps: Tensor  # the network's epsilon
    guidance: Tensor  # the masked vector-Jacobian product g (before its weight)


def pigdm_step(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    tables: DiffusionTables,
    alphas: Tensor,
    image: Tensor,
    keep_mask: Tensor,
    x: Tensor,
    t: int,
    s: int,
    noise: Tensor,
    *,
    eta: float = 1.0,
    grad_term_weight: float = 1.0,
    labels: Tensor | None = None,
) -> PiGDMStep:
    """One PiGDM step x_t -> x_s (s = -1: to the clean image), one network call and one
    backward pass, in RED-diff's float32 order. `alphas` is `reference_alphas`.

    The product's sum runs over the batch, as RED-diff's does; the images do not mix (each
    image's x0 depends on its x_t only)."""
    n = x.shape[0]
    alpha_t, alpha_s = alphas[t + 1], alphas[s + 1]
    c1 = ((1 - alpha_t / alpha_s) * (1 - alpha_s) / (1 - alpha_t)).sqrt() * eta
    c2 = ((1 - alpha_s) - c1**2).sqrt()
    mask = keep_mask.expand_as(image).reshape(n, -1)
    y = image.reshape(n, -1) * mask  # H x, then H^+: times the mask again
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        eps = epsilon(denoiser, diffusion, tables, x, t, labels)
        x0 = (x - eps * (1 - alpha_t).sqrt()) / alpha_t.sqrt()
        mat = y * mask - (x0.reshape(n, -1) * mask) * mask  # H^+ y - H^+ H x0
        (grad,) = torch.autograd.grad((mat.detach() * x0.reshape(n, -1)).sum(), x)
    x0, eps = x0.detach(), eps.detach()
    with torch.no_grad():
        coeff = alpha_s.sqrt() * alpha_t.sqrt() * grad_term_weight
        m = mask.view(x0.size())
        pred_x0 = x0 * (1 - m) + (y * mask).view(x0.size())
        grad = grad * (1 - m)
        x_s = alpha_s.sqrt() * pred_x0 + c1 * noise + c2 * eps + grad * coeff
    return PiGDMStep(x_s, pred_x0, x0, eps, grad)


def pigdm(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    image: Tensor,
    keep_mask: Tensor,
    schedule: Schedule | Sequence[int],
    *,
    generator: Generators,
    eta: float = 1.0,
    grad_term_weight: float = 1.0,
    labels: Tensor | None = None,
    paste: bool = False,
    callback: Callable[[Step], None] | None = None,
) -> Tensor:
    """Inpaint `image` where `keep_mask` is 0 with PiGDM; returns the clean image in [-1, 1]
    (RED-diff returns it unclamped; `paste` puts the known pixels of `image` into it, which
    `in2` already does to x0 before the last guidance step).

    `schedule`: levels of `diffusion` (RED-diff's: `range(steps - 1, -1, -1)` on a diffusion
    respaced with `"ddim{steps}"`); the walk always ends with the step 0 -> -1 to the clean
    image (a RePaint time list already does). A step up (not in RED-diff) re-noises one
    level. Defaults: RED-diff's inpainting script (eta 1, weight 1; `pgdm.yaml` has eta 0).
    Draws: x_T, then one per step down (drawn even when eta = 0) and one per step up."""
    levels = [*sampler_levels(schedule, diffusion), -1]
    tables = diffusion.tables(image.device)
    alphas = reference_alphas(diffusion, image.device)
    keep = keep_mask.to(device=image.device, dtype=image.dtype)
    randn = noise_source(generator, image.shape, image.device)
    total, index = reverse_count(levels), 0
    n = image.shape[0]
    mask = keep.expand_as(image).reshape(n, -1)
    start = ((image.reshape(n, -1) * mask) * mask).view(image.shape)  # H^+ y
    alpha_top = alphas[levels[0] + 1]
    x = alpha_top.sqrt() * start + (1 - alpha_top).sqrt() * randn()
    for t, s in itertools.pairwise(levels):
        if s > t:
            x = q_step(tables, x, s, randn())
            continue
        step = pigdm_step(
            denoiser, diffusion, tables, alphas, image, keep, x, t, s, randn(),
            eta=eta, grad_term_weight=grad_term_weight, labels=labels,
        )  # fmt: skip
        x, index = step.x, index + 1
        if callback is not None:
            callback(SamplerStep(index - 1, total, t, x, step.pred_x0, index, index))
    return finish(x, image, keep, paste)


def planned_cost(
    times: Schedule | Sequence[int], diffusion: GaussianDiffusion | None = None, **options: object
) -> tuple[int, int]:
    """(network calls, backward passes): one of each per step down, including the last step
    0 -> -1 (added when the time list does not end with -1)."""
    del diffusion, options
    levels = time_list(times)
    if levels[-1] != -1:
        levels = [*levels, -1]
    down = sum(1 for t, s in itertools.pairwise(levels) if s < t)
    return down, down
