"""DPS inpainting (Chung et al., "Diffusion Posterior Sampling for General Noisy Inverse
Problems", ICLR 2023, arXiv:2209.14687, Algorithm 1), as CoPaint's reference runs it
(UCSB-NLP-Chang/CoPaint, `guided_diffusion/dps.py`, conditioning method `ps`).

Each step is an ancestral step x' ~ p(x_s | x_t, x0) around the network's clipped x0,
followed by a gradient step on the measurement error through the network:
x_s = x' - zeta grad_{x_t} ||y - A x0(x_t)||_2, with A the keep mask and y = A gt + n,
n ~ N(0, sigma^2). As in the reference (and DPS's code), the norm is not squared (the
paper's Algorithm 1 squares it), so zeta is a step length in units of the error; the step
uses the fixed eta = 1 variance instead of DPS's learned one, and the loop stops at level 0.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from functools import partial
from typing import NamedTuple

import torch
from torch import Tensor

from repaint.diffusion import DiffusionTables, GaussianDiffusion, q_step
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


class DPSStep(NamedTuple):
    x: Tensor  # the sample at level s, after the guidance step
    pre_guidance: Tensor  # x', the ancestral step before it
    pred_x0: Tensor  # the network's clipped x0
    eps: Tensor  # the network's epsilon
    distance: Tensor  # (N,) ||y - A x0||_2 per image


def dps_step(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    tables: DiffusionTables,
    measurement: Tensor,
    keep_mask: Tensor,
    x: Tensor,
    t: int,
    s: int,
    noise: Tensor,
    *,
    step_size: float = 1.0,
    eta: float = 1.0,
    labels: Tensor | None = None,
) -> DPSStep:
    """One DPS step x_t -> x_s (Chung et al., Algorithm 1 lines 4-7): one network call with
    its backward pass. The ancestral step re-derives epsilon from the clipped x0 (as the
    reference's DDIM form with `eta`); the gradient goes through the clamp and the network.

    The error is a norm per image, summed over the batch, so each image's step is its own
    (the reference takes one norm over the whole batch; the same at batch 1)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        eps_net = epsilon(denoiser, diffusion, tables, x, t, labels)
        x0 = (
            tables.sqrt_recip_alphas_cumprod[t] * x
            - tables.sqrt_recipm1_alphas_cumprod[t] * eps_net
        ).clamp(-1, 1)
        distance = torch.linalg.vector_norm((measurement - x0 * keep_mask).flatten(1), dim=1)
        (grad,) = torch.autograd.grad(distance.sum(), x)
    x0, eps_net, distance = x0.detach(), eps_net.detach(), distance.detach()
    with torch.no_grad():
        eps = (tables.sqrt_recip_alphas_cumprod[t] * x - x0) / tables.sqrt_recipm1_alphas_cumprod[t]
        abar_t, abar_s = tables.alphas_cumprod[t], tables.alphas_cumprod[s]
        sigma = eta * torch.sqrt((1 - abar_s) / (1 - abar_t)) * torch.sqrt(1 - abar_t / abar_s)
        x_prime = x0 * torch.sqrt(abar_s) + torch.sqrt(1 - abar_s - sigma**2) * eps
        x_prime = x_prime + sigma * noise
        return DPSStep(x_prime - grad * step_size, x_prime, x0, eps_net, distance)


def dps(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    image: Tensor,
    keep_mask: Tensor,
    schedule: Schedule | Sequence[int],
    *,
    generator: Generators,
    step_size: float = 1.0,
    eta: float = 1.0,
    measurement_sigma: float = 1e-4,
    labels: Tensor | None = None,
    paste: bool = False,
    callback: Callable[[Step], None] | None = None,
) -> Tensor:
    """Inpaint `image` where `keep_mask` is 0 with DPS; returns the level-0 state in [-1, 1].

    `schedule` is a RePaint time list: each step down is one DPS step, one network call and
    one backward pass through it (a `SamplerStep` counts both); a step up (not in the
    reference, whose DPS loop has no time travel) re-noises by one level. Draws: x_T, the
    measurement noise, then per step down the posterior noise and the reference's unused
    `q_sample` of the measurement, per step up one. `step_size` is the paper's zeta (the
    reference's CelebA-HQ value; 0.5 for ImageNet). `paste` puts the known pixels of `image`
    into the output (the reference does not).
    """
    levels = sampler_levels(schedule, diffusion)
    tables = diffusion.tables(image.device)
    keep = keep_mask.to(device=image.device, dtype=image.dtype)
    randn = noise_source(generator, image.shape, image.device)
    total, index = reverse_count(levels), 0
    x = randn()
    measurement = image * keep + randn() * measurement_sigma
    step = partial(dps_step, denoiser, diffusion, tables, measurement, keep, labels=labels)
    with torch.no_grad():
        for t, s in itertools.pairwise(levels):
            if s > t:
                x = q_step(tables, x, s, randn())
                continue
            noise = randn()
            randn()  # the reference's q_sample of the measurement, unused by `ps`
            x, _, pred_x0, _, _ = step(x, t, s, noise, step_size=step_size, eta=eta)
            index += 1
            if callback is not None:
                callback(
                    SamplerStep(index - 1, total, t, x, pred_x0, forward=index, backward=index)
                )
    return finish(x, image, keep, paste)


def planned_cost(
    levels: Schedule | Sequence[int], diffusion: GaussianDiffusion | None = None, **options: object
) -> tuple[int, int]:
    """(network calls, backward passes): one of each per step down to level 0."""
    del diffusion, options
    down = reverse_count([level for level in time_list(levels) if level >= 0])
    return down, down
