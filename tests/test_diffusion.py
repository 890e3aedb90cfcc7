"""The diffusion maths against the formulas of Ho et al. and Nichol & Dhariwal."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repaint.diffusion import (
    GaussianDiffusion,
    MeanType,
    VarianceType,
    cosine_betas,
    linear_betas,
    p_mean_variance,
    space_timesteps,
)
from repaint.errors import RepaintError


def test_linear_betas_span_ho_et_al_range_for_any_length():
    np.testing.assert_allclose(linear_betas(1000)[[0, -1]], [1e-4, 0.02])
    np.testing.assert_allclose(linear_betas(250)[[0, -1]], [4e-4, 0.08])


def test_cosine_betas_follow_alpha_bar():
    betas = cosine_betas(100)
    alpha_bar = np.cumprod(1 - betas)
    expected = [math.cos((t / 100 + 0.008) / 1.008 * math.pi / 2) ** 2 for t in range(1, 101)]
    expected = np.array(expected) / math.cos(0.008 / 1.008 * math.pi / 2) ** 2
    np.testing.assert_allclose(alpha_bar[:-1], expected[:-1], rtol=1e-10)
    assert betas.max() <= 0.999


@pytest.mark.parametrize(
    ("respacing", "expected"),
    [
        ("10", [0, 11, 22, 33, 44, 55, 66, 77, 88, 99]),
        ("2,3", [0, 49, 50, 74, 99]),  # round(24.5) == 24, as in the reference
        ("ddim4", [0, 25, 50, 75]),
        ("", list(range(100))),
        ("100", list(range(100))),
    ],
)
def test_space_timesteps(respacing, expected):
    assert space_timesteps(100, respacing) == expected


@pytest.mark.parametrize("respacing", ["ddimx", "1,a", "0", "ddim45"])
def test_bad_respacing_is_a_clear_error(respacing):
    with pytest.raises(RepaintError, match="timestep_respacing"):
        space_timesteps(100, respacing)


def test_respacing_keeps_alpha_bar_at_kept_steps():
    full = GaussianDiffusion.from_config(steps=1000)
    spaced = GaussianDiffusion.from_config(steps=1000, timestep_respacing="250")
    assert spaced.num_timesteps == 250
    np.testing.assert_allclose(
        spaced.alphas_cumprod, full.alphas_cumprod[spaced.timestep_map], rtol=1e-12
    )


def fixed_variance_output(variance_type, t):
    diffusion = GaussianDiffusion(linear_betas(100), variance_type=variance_type)
    tables = diffusion.tables()
    x = torch.randn(1, 3, 4, 4)
    return diffusion, p_mean_variance(diffusion, tables, torch.zeros_like(x), x, t).log_variance


def test_fixed_large_variance_is_beta_and_fixed_small_is_posterior():
    betas = linear_betas(100)
    alpha_bar = np.cumprod(1 - betas)
    t = 7
    posterior = betas[t] * (1 - alpha_bar[t - 1]) / (1 - alpha_bar[t])
    _, large = fixed_variance_output(VarianceType.FIXED_LARGE, t)
    _, small = fixed_variance_output(VarianceType.FIXED_SMALL, t)
    torch.testing.assert_close(large, torch.full_like(large, math.log(betas[t])))
    torch.testing.assert_close(small, torch.full_like(small, math.log(posterior)))


def test_epsilon_prediction_inverts_the_forward_process():
    torch.manual_seed(0)
    diffusion = GaussianDiffusion(linear_betas(50), variance_type=VarianceType.FIXED_SMALL)
    tables = diffusion.tables()
    x0 = torch.rand(2, 3, 8, 8) * 2 - 1
    eps = torch.randn_like(x0)
    t = 30
    a = float(tables.alphas_cumprod[t])
    x_t = math.sqrt(a) * x0 + math.sqrt(1 - a) * eps
    posterior = p_mean_variance(diffusion, tables, eps, x_t, t)
    torch.testing.assert_close(posterior.pred_x0, x0, atol=1e-5, rtol=1e-5)
    # the posterior mean is the q(x_{t-1} | x_t, x0) mean of Ho et al. (eq. 7)
    betas, alpha_bar = diffusion.betas, np.cumprod(1 - diffusion.betas)
    coef_x0 = math.sqrt(alpha_bar[t - 1]) * betas[t] / (1 - alpha_bar[t])
    coef_xt = math.sqrt(1 - betas[t]) * (1 - alpha_bar[t - 1]) / (1 - alpha_bar[t])
    torch.testing.assert_close(posterior.mean, coef_x0 * x0 + coef_xt * x_t, atol=1e-5, rtol=1e-5)


def test_x0_prediction_and_clipping():
    diffusion = GaussianDiffusion(
        linear_betas(100), mean_type=MeanType.X0, variance_type=VarianceType.FIXED_LARGE
    )
    output = torch.full((1, 3, 2, 2), 3.0)
    clipped = p_mean_variance(diffusion, diffusion.tables(), output, torch.zeros_like(output), 5)
    unclipped = p_mean_variance(
        diffusion, diffusion.tables(), output, torch.zeros_like(output), 5, clip_denoised=False
    )
    assert float(clipped.pred_x0.max()) == 1.0
    assert float(unclipped.pred_x0.max()) == 3.0


def test_learned_range_interpolates_between_bounds():
    diffusion = GaussianDiffusion.from_config(steps=100, learn_sigma=True)
    tables = diffusion.tables()
    x = torch.zeros(1, 3, 2, 2)
    t = 40
    low = p_mean_variance(diffusion, tables, torch.cat([x, -torch.ones_like(x)], 1), x, t)
    high = p_mean_variance(diffusion, tables, torch.cat([x, torch.ones_like(x)], 1), x, t)
    torch.testing.assert_close(low.log_variance, tables.min_log_variance[t].expand_as(x))
    torch.testing.assert_close(high.log_variance, tables.max_log_variance[t].expand_as(x))


def test_channel_count_mismatch_is_reported():
    diffusion = GaussianDiffusion.from_config(steps=100, learn_sigma=True)
    x = torch.zeros(1, 3, 2, 2)
    with pytest.raises(RepaintError, match="learn_sigma"):
        p_mean_variance(diffusion, diffusion.tables(), x, x, 3)


def test_too_few_diffusion_steps_name_the_key():
    with pytest.raises(RepaintError, match="diffusion_steps"):
        GaussianDiffusion.from_config(steps=10)


def test_per_sample_levels_equal_one_level_at_a_time():
    diffusion = GaussianDiffusion.from_config(steps=100, learn_sigma=True)
    tables = diffusion.tables()
    torch.manual_seed(0)
    x = torch.randn(3, 3, 5, 7)  # batch and width differ, so wrong broadcasting fails
    output = torch.randn(3, 6, 5, 7)
    levels = torch.tensor([0, 40, 99])
    batched = p_mean_variance(diffusion, tables, output, x, levels)
    for i, t in enumerate(levels.tolist()):
        single = p_mean_variance(diffusion, tables, output[i : i + 1], x[i : i + 1], t)
        torch.testing.assert_close(batched.mean[i : i + 1], single.mean)
        torch.testing.assert_close(batched.log_variance[i : i + 1], single.log_variance)
        torch.testing.assert_close(batched.pred_x0[i : i + 1], single.pred_x0)
