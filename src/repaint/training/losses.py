"""Training objective of guided-diffusion models with learned variance (Nichol & Dhariwal).

The loss is L_simple (MSE of the predicted noise) plus the variational bound term of the
step, through which alone the variance channels learn (the mean is detached there). The
bound term is the KL between the true posterior q(x_{t-1} | x_t, x_0) and the model's
Gaussian, in bits per dimension, and at t = 0 the discretised decoder likelihood.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from repaint.diffusion import (
    DiffusionTables,
    GaussianDiffusion,
    VarianceType,
    at,
    p_mean_variance,
)


def normal_kl(mean1: Tensor, logvar1: Tensor, mean2: Tensor, logvar2: Tensor) -> Tensor:
    """KL(N(mean1, exp(logvar1)) || N(mean2, exp(logvar2))), elementwise, in nats."""
    return 0.5 * (
        -1.0
        + logvar2
        - logvar1
        + torch.exp(logvar1 - logvar2)
        + (mean1 - mean2) ** 2 * torch.exp(-logvar2)
    )


def _standard_normal_cdf(x: Tensor) -> Tensor:
    """A fast tanh approximation of the standard normal CDF (as used by Ho et al.)."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_nll(x: Tensor, mean: Tensor, log_scale: Tensor) -> Tensor:
    """-log likelihood (nats) of 8-bit data `x` in [-1, 1] under a Gaussian discretised
    into 256 bins, with open-ended outer bins."""
    centred = x - mean
    inv_std = torch.exp(-log_scale)
    cdf_plus = _standard_normal_cdf(inv_std * (centred + 1.0 / 255.0))
    cdf_min = _standard_normal_cdf(inv_std * (centred - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_one_minus_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_probs = torch.where(
        x < -0.999,
        log_cdf_plus,
        torch.where(
            x > 0.999, log_one_minus_cdf_min, torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
        ),
    )
    return -log_probs


def training_loss(
    model_output: Tensor,
    diffusion: GaussianDiffusion,
    tables: DiffusionTables,
    x0: Tensor,
    x_t: Tensor,
    t: Tensor,
    noise: Tensor,
) -> Tensor:
    """Per-sample hybrid loss for a batch noised to levels `t` (one level per sample)."""
    channels = x0.shape[1]
    if diffusion.variance_type is not VarianceType.LEARNED_RANGE:
        return ((model_output - noise) ** 2).mean(dim=(1, 2, 3))
    eps, variance_values = model_output.split(channels, dim=1)
    mse = ((eps - noise) ** 2).mean(dim=(1, 2, 3))
    # The bound trains only the variance: the mean it sees is detached.
    frozen = torch.cat([eps.detach(), variance_values], dim=1)
    model = p_mean_variance(diffusion, tables, frozen, x_t, t, clip_denoised=False)
    true_mean = at(tables.posterior_mean_coef1, t) * x0 + at(tables.posterior_mean_coef2, t) * x_t
    kl = normal_kl(true_mean, at(tables.min_log_variance, t), model.mean, model.log_variance)
    nll = discretized_gaussian_nll(x0, model.mean, 0.5 * model.log_variance)
    nats = torch.where((t == 0).view(-1, 1, 1, 1), nll, kl)
    return mse + nats.mean(dim=(1, 2, 3)) / math.log(2.0)
