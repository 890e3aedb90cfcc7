"""DDNM inpainting (Wang et al., "Zero-Shot Image Restoration Using Denoising Diffusion
Null-Space Model", ICLR 2023, arXiv:2212.00490, Algorithm 1), as CoPaint's reference runs
it (UCSB-NLP-Chang/CoPaint, `guided_diffusion/ddnm.py`).

For a linear degradation y = A x, DDNM keeps the null-space part of the network's clean
image and takes the range-space part from the observation:
x0h = A^+ y + (I - A^+ A) x0|t. For inpainting A = A^+ = multiplication by the keep mask,
so x0h is the ground truth on known pixels and the network's x0 elsewhere. The next level
is then drawn around x0h, x_s = sqrt(abar_s) x0h + gamma (sqrt(1 - abar_s) (eta z +
sqrt(1 - eta^2) eps)), with the reference's quirks: `gamma = sqrt(1 - abar_t^2)` of the
*current* level (DDNM's code: of the next) scales the noise and the epsilon term alike, x0
is clipped before the projection, and the loop stops at level 0 and returns that state,
clamped (DDNM's code returns x0h of the last step).
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


class DDNMStep(NamedTuple):
    x: Tensor  # the sample at level s
    pred_x0: Tensor  # the projected x0h
    eps: Tensor  # the network's epsilon


@torch.no_grad()
def ddnm_step(
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
    eta: float = 0.85,
    sigma_y: float = 0.0,
    labels: Tensor | None = None,
    clip_denoised: bool = True,
) -> DDNMStep:
    """One DDNM step x_t -> x_s (Wang et al., Algorithm 1; the reference's float32 order).

    With `sigma_y` > 0 (noisy observations, the paper's DDNM+) the projection is scaled by
    lambda_t = sigma_t / (abar_s sigma_y) and the noise dropped where sigma_t is the
    smaller, as the reference does; 0 (its default) is plain DDNM."""
    eps = epsilon(denoiser, diffusion, tables, x, t, labels)
    abar_t, abar_s = tables.alphas_cumprod[t], tables.alphas_cumprod[s]
    x0 = (x - eps * (1 - abar_t).sqrt()) / abar_t.sqrt()
    x0 = x0.clamp(-1, 1) if clip_denoised else x0  # latents have no fixed range
    sigma_t = (1 - abar_t**2).sqrt()  # sic: abar of the current level, squared
    noisy = sigma_t < abar_s * sigma_y
    lam = torch.where(noisy, sigma_t / (abar_s * sigma_y), torch.ones_like(sigma_t))
    gamma = torch.where(
        noisy, torch.zeros_like(sigma_t), (sigma_t**2 - (abar_s * sigma_y) ** 2).sqrt()
    )
    y = image * keep_mask
    x0 = x0 - lam * ((x0 * keep_mask - y) * keep_mask)  # A^+ y + (I - A^+ A) x0
    c1 = (1 - abar_s).sqrt() * eta
    c2 = (1 - abar_s).sqrt() * ((1 - eta**2) ** 0.5)
    return DDNMStep(abar_s.sqrt() * x0 + gamma * (c1 * noise + c2 * eps), x0, eps)


def ddnm(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    image: Tensor,
    keep_mask: Tensor,
    schedule: Schedule | Sequence[int],
    *,
    generator: Generators,
    eta: float = 0.85,
    sigma_y: float = 0.0,
    labels: Tensor | None = None,
    paste: bool = False,
    clip_denoised: bool = True,
    callback: Callable[[Step], None] | None = None,
) -> Tensor:
    """Inpaint `image` where `keep_mask` is 0 with DDNM; returns the level-0 state in [-1, 1].

    `schedule` is a RePaint time list (a `JumpSchedule`, `TimeList` or list of levels): each
    step down is one DDNM step (one network call), each step up re-noises by one level
    (time travel as RePaint's undo step; the reference's DDNM loop does the same, DDNM's own
    code re-noises x0h instead). Draws: x_T, then one per step down and one per step up, in
    the order of the list. `paste` puts the known pixels of `image` into the output (the
    reference does not); `clip_denoised` off (latent models) keeps x0 and the output
    unclamped. Callbacks get a `SamplerStep` after each step down.
    """
    levels = sampler_levels(schedule, diffusion)
    tables = diffusion.tables(image.device)
    keep = keep_mask.to(device=image.device, dtype=image.dtype)
    randn = noise_source(generator, image.shape, image.device)
    total, index = reverse_count(levels), 0
    step = partial(
        ddnm_step, denoiser, diffusion, tables, image, keep, labels=labels,
        clip_denoised=clip_denoised,
    )  # fmt: skip
    x = randn()
    with torch.no_grad():
        for t, s in itertools.pairwise(levels):
            if s > t:
                x = q_step(tables, x, s, randn())
                continue
            x, pred_x0, _ = step(x, t, s, randn(), eta=eta, sigma_y=sigma_y)
            index += 1
            if callback is not None:
                callback(SamplerStep(index - 1, total, t, x, pred_x0, forward=index, backward=0))
    return finish(x, image, keep, paste, clip_denoised)


def planned_cost(
    levels: Schedule | Sequence[int], diffusion: GaussianDiffusion | None = None, **options: object
) -> tuple[int, int]:
    """(network calls, backward passes): one call per step down to level 0."""
    del diffusion, options
    return reverse_count([level for level in time_list(levels) if level >= 0]), 0
