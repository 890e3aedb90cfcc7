"""DiffPIR inpainting (Zhu et al., "Denoising Diffusion Models for Plug-and-Play Image
Restoration", CVPR 2023 workshops (NTIRE), arXiv:2305.08995, Algorithm 1), as its authors'
code runs it (yuanzhi-zhu/DiffPIR, `main_ddpir.py`, task `inpaint`, mode `DiffPIR`).

Plug-and-play with the diffusion model as the denoiser. Each step:
1. the prior sub-problem is one network call: x0 = clip(x0(x_t));
2. the data sub-problem, min ||y - m x||^2 + rho_t ||x - x0||^2, has a closed form
   for a mask: x0h = (m y + rho_t x0) / (m + rho_t), rho_t = lambda sigma_n^2 / sigma_t^2
   with sigma_t = sqrt(1 - abar_t) / sqrt(abar_t), taken with a guidance scale:
   x0 <- x0 + g (x0h - x0);
3. the next level is drawn around x0: x_s = sqrt(abar_s) x0 + sqrt(1 - zeta)
   (sqrt(1 - abar_s - s^2) eps + s z1) + sqrt(zeta) sqrt(1 - abar_s) z2, with
   eps = (x_t - sqrt(abar_t) x0) / sqrt(1 - abar_t) the noise the data step implies and
   s = eta sqrt(1 - abar_s) / sqrt(1 - abar_t) sqrt(beta_t). zeta = 1 (the authors' value)
   re-injects fresh noise only, so each step is x0 re-noised to the next level.

Exactly the authors' arithmetic: their float32 tables (float32 betas, NumPy's float32
cumprod), rho_t as `lambda sigma^2 / sigma_t^2` in torch's order, the beta of the single
original step at t in `s`, x_T = sqrt(abar_T) (m y + m - 1) + sqrt(1 - abar_T) z (their
masked image with -1 in the hole), and draws in channels-last order: their image tensor is
channels-last (a permuted NumPy array), so `randn_like` fills it in that order and the
network sees channels-last input, which rounds differently. The loop stops at level 0 and
returns that state; the authors' last iteration calls the network at level 0 and discards
the result: we skip the call and make its draw.

Their time list is not a uniform respacing: `quad_levels(steps)` visits
999 - floor(1000 sqrt(i / (steps - 1))), denser at low noise (`diffpir_diffusion` respaces a
diffusion to those steps). On another diffusion the same update runs on its levels.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor

from repaint.diffusion import DiffusionTables, GaussianDiffusion, linear_betas
from repaint.errors import RepaintError
from repaint.samplers.common import (
    Denoiser,
    Generators,
    SamplerStep,
    Step,
    epsilon,
    finish,
    reverse_count,
    sampler_levels,
)
from repaint.schedule import Schedule, time_list


def quad_levels(steps: int, num_train_timesteps: int = 1000) -> list[int]:
    """The authors' `skip_type: quad` levels (original steps, descending, ending at 0):
    seq_i = int(sqrt(linspace(0, T^2, steps))_i), the last one minus 1, and t_i = T-1-seq_i."""
    if steps < 2:
        raise RepaintError(f"DiffPIR needs at least 2 steps, got {steps}")
    seq = [int(s) for s in np.sqrt(np.linspace(0, num_train_timesteps**2, steps))]
    seq[-1] -= 1
    levels = [num_train_timesteps - 1 - s for s in seq]
    if len(set(levels)) != len(levels):
        raise RepaintError(f"{steps} quad steps of {num_train_timesteps} repeat a level")
    return levels


def respaced(diffusion: GaussianDiffusion, kept: Sequence[int]) -> GaussianDiffusion:
    """`diffusion` keeping only the levels `kept` (alpha_bar kept, betas between them
    derived, as guided-diffusion's respacing); the network still gets the original steps."""
    kept = sorted(set(kept))
    betas, last = [], 1.0
    for level in kept:
        betas.append(1 - diffusion.alphas_cumprod[level] / last)
        last = diffusion.alphas_cumprod[level]
    timestep_map = [diffusion.timestep_map[level] for level in kept]
    return GaussianDiffusion(
        np.array(betas), timestep_map, diffusion.mean_type, diffusion.variance_type
    )


def diffpir_diffusion(diffusion: GaussianDiffusion, steps: int = 20) -> GaussianDiffusion:
    """The unrespaced `diffusion` respaced to the authors' `quad_levels(steps)` (walk it
    from `steps - 1` down to 0)."""
    return respaced(diffusion, quad_levels(steps, diffusion.num_timesteps))


@dataclass(frozen=True)
class ReferenceTables:
    """Per level, float32 as the authors compute them."""

    sqrt_abar: Tensor
    sqrt_1m_abar: Tensor
    beta: Tensor  # of the single original step at the level (their `betas[t_i]`)
    exact: bool  # built from their linear 1000-step schedule


def reference_tables(diffusion: GaussianDiffusion, device: torch.device) -> ReferenceTables:
    """When `diffusion` is (a respacing of) the linear 1000-step process, the authors'
    float32 tables: betas = float32(linspace(1e-4, 0.02, 1000)), abar = NumPy's float32
    cumprod of 1 - betas (their `np.cumprod` of a tensor), square roots in float32.
    Otherwise the diffusion's own values in float32 (and its respaced beta)."""
    original = np.asarray(diffusion.timestep_map)
    base = linear_betas(1000)
    base_abar = np.cumprod(1.0 - base)
    exact = bool(
        original.max() < 1000
        and np.allclose(base_abar[original], diffusion.alphas_cumprod, rtol=1e-12, atol=0)
    )
    if exact:
        betas32 = base.astype(np.float32)
        abar = torch.from_numpy(np.cumprod(np.float32(1) - betas32))[original]
        beta = torch.from_numpy(betas32)[original]
    else:
        abar = torch.from_numpy(diffusion.alphas_cumprod).float()
        beta = torch.from_numpy(diffusion.betas).float()
    return ReferenceTables(
        torch.sqrt(abar).to(device), torch.sqrt(1.0 - abar).to(device), beta.to(device), exact
    )


def channels_last_noise(
    generator: Generators, shape: torch.Size, device: torch.device
) -> Callable[[], Tensor]:
    """Standard normals of `shape` (N, C, H, W) drawn into channels-last memory, as
    `randn_like` draws for the authors' channels-last tensors (the values differ from a
    contiguous draw); one generator, or one (1, C, H, W) draw per image."""
    generators = [generator] if isinstance(generator, torch.Generator) else list(generator)
    if len(generators) > 1 or not isinstance(generator, torch.Generator):
        if len(generators) != shape[0]:
            raise RepaintError(f"got {len(generators)} generators for a batch of {shape[0]}")
        shape = torch.Size((1, *shape[1:]))

    def one(g: torch.Generator) -> Tensor:
        empty = torch.empty(shape, device=g.device, memory_format=torch.channels_last)
        return empty.normal_(generator=g).to(device)

    return lambda: torch.cat([one(g) for g in generators])


class DiffPIRStep(NamedTuple):
    x: Tensor  # the sample at level s
    pred_x0: Tensor  # x0 after the data step
    net_x0: Tensor  # the network's clipped x0
    eps: Tensor  # the network's epsilon


@torch.no_grad()
def diffpir_step(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    tables: DiffusionTables,
    ref: ReferenceTables,
    image: Tensor,
    keep_mask: Tensor,
    x: Tensor,
    t: int,
    s: int,
    noise: Tensor,
    fresh_noise: Tensor,
    *,
    lam: float = 1.0,
    zeta: float = 1.0,
    eta: float = 0.0,
    sigma: float = 0.001,
    guidance_scale: float = 1.0,
    labels: Tensor | None = None,
) -> DiffPIRStep:
    """One DiffPIR step x_t -> x_s (Algorithm 1: denoise, data step, re-noise), in the
    authors' float32 order.
    `noise` is z1 (scaled by eta's s; unused at eta = 0), `fresh_noise` z2."""
    x = x.contiguous(memory_format=torch.channels_last)
    eps_net = epsilon(denoiser, diffusion, tables, x, t, labels)
    net_x0 = (
        tables.sqrt_recip_alphas_cumprod[t] * x - tables.sqrt_recipm1_alphas_cumprod[t] * eps_net
    ).clamp(-1, 1)
    sa_t, sa_s = ref.sqrt_abar[t], ref.sqrt_abar[s]
    s1m_t, s1m_s = ref.sqrt_1m_abar[t], ref.sqrt_1m_abar[s]
    rho = lam * sigma**2 / (s1m_t / sa_t) ** 2  # torch's float / tensor
    x0_data = (keep_mask * image + rho * net_x0).div(keep_mask + rho)
    x0 = net_x0 + guidance_scale * (x0_data - net_x0)
    eps = (x - sa_t * x0) / s1m_t
    eta_sigma = eta * s1m_s / s1m_t * torch.sqrt(ref.beta[t])
    x_s = (
        sa_s * x0
        + math.sqrt(1 - zeta) * (torch.sqrt(s1m_s**2 - eta_sigma**2) * eps + eta_sigma * noise)
        + math.sqrt(zeta) * s1m_s * fresh_noise
    )
    return DiffPIRStep(x_s, x0, net_x0, eps_net)


def undo_step(ref: ReferenceTables, x: Tensor, s: int, t: int, noise: Tensor) -> Tensor:
    """x_s -> x_t (t > s) as the authors' repeat loop (`iter_num_U`) re-noises."""
    ratio = ref.sqrt_abar[t] / ref.sqrt_abar[s]
    scale = torch.sqrt(ref.sqrt_1m_abar[t] ** 2 - ratio**2 * ref.sqrt_1m_abar[s] ** 2)
    return ratio * x + scale * noise


def diffpir(
    denoiser: Denoiser,
    diffusion: GaussianDiffusion,
    image: Tensor,
    keep_mask: Tensor,
    schedule: Schedule | Sequence[int],
    *,
    generator: Generators,
    lam: float = 1.0,
    zeta: float = 1.0,
    eta: float = 0.0,
    sigma: float = 0.001,
    guidance_scale: float = 1.0,
    labels: Tensor | None = None,
    paste: bool = False,
    callback: Callable[[Step], None] | None = None,
) -> Tensor:
    """Inpaint `image` where `keep_mask` is 0 with DiffPIR; returns the level-0 state in
    [-1, 1] (`paste` puts the known pixels of `image` into it; the authors' saved image
    does not have them).

    `schedule`: the levels of `diffusion` to walk (a time list; the authors' is
    `range(steps - 1, -1, -1)` on `diffpir_diffusion(full, steps)`); a step up re-noises
    one level as the authors' repeat loop does. Hyperparameters: their inpainting config
    (lambda 1, zeta 1, eta 0, sigma = max(0.001, noise level of y) = 0.001, guidance 1).
    Draws (channels-last): x_T; per step down the network step's unused posterior draw,
    z1 and z2; per step up one; one more at the end (the discarded last iteration)."""
    levels = sampler_levels(schedule, diffusion)
    tables = diffusion.tables(image.device)
    ref = reference_tables(diffusion, image.device)
    keep = keep_mask.to(device=image.device, dtype=image.dtype)
    randn = channels_last_noise(generator, image.shape, image.device)
    total, index = reverse_count(levels), 0
    start = keep * image + (keep - 1)  # their 2 (m y) - 1: -1 in the hole
    x = ref.sqrt_abar[levels[0]] * start + ref.sqrt_1m_abar[levels[0]] * randn()
    hyper = {"lam": lam, "zeta": zeta, "eta": eta, "sigma": sigma}
    for t, s in itertools.pairwise(levels):
        if s > t:
            x = undo_step(ref, x, t, s, randn())
            continue
        randn()  # the posterior draw of the authors' network call (p_sample), unused
        step = diffpir_step(
            denoiser, diffusion, tables, ref, image, keep, x, t, s, randn(), randn(),
            guidance_scale=guidance_scale, labels=labels, **hyper,
        )  # fmt: skip
        x, index = step.x, index + 1
        if callback is not None:
            callback(SamplerStep(index - 1, total, t, x, step.pred_x0, forward=index, backward=0))
    randn()  # the authors' last iteration: a network call at level 0, its draw, no update
    return finish(x, image, keep, paste)


def planned_cost(
    times: Schedule | Sequence[int], diffusion: GaussianDiffusion | None = None, **options: object
) -> tuple[int, int]:
    """(network calls, backward passes): one call per step down (the authors count one more,
    the discarded call at level 0)."""
    del diffusion, options
    levels = [level for level in time_list(times) if level >= 0]
    return sum(1 for t, s in itertools.pairwise(levels) if s < t), 0
