"""The RePaint loop with analytic denoisers: draw order, callbacks, labels, guidance, NaN."""

from __future__ import annotations

import math

import pytest
import torch

from repaint.diffusion import GaussianDiffusion, ddim_step, linear_betas, q_sample
from repaint.samplers.common import SamplingError
from repaint.samplers.repaint import classifier_guidance, repaint
from repaint.schedule import JumpSchedule

DIFFUSION = GaussianDiffusion.from_config(steps=1000, timestep_respacing="20", learn_sigma=False)
SCHEDULE = JumpSchedule(t_T=20, jump_length=4, jump_n_sample=3)
BASE_ALPHA_BAR = torch.from_numpy(__import__("numpy").cumprod(1 - linear_betas(1000))).float()


def oracle_for(target: torch.Tensor):
    """The exact epsilon-denoiser of a distribution concentrated on `target`."""

    def denoiser(x, timesteps, labels):
        a = BASE_ALPHA_BAR[timesteps].view(-1, 1, 1, 1)
        return (x - a.sqrt() * target) / (1 - a).sqrt()

    return denoiser


def half_mask(shape):
    keep = torch.zeros(shape[0], 1, *shape[2:])
    keep[..., : shape[-1] // 2] = 1
    return keep


@pytest.mark.parametrize("eta", [None, 0.0, 0.5])  # ancestral, deterministic DDIM, between
def test_oracle_denoiser_recovers_its_image_everywhere(eta):
    target = torch.rand(1, 3, 8, 8) * 2 - 1
    result = repaint(
        oracle_for(target),
        DIFFUSION,
        target,
        half_mask(target.shape),
        SCHEDULE,
        generator=torch.Generator().manual_seed(0),
        eta=eta,
        raw=True,
    )
    torch.testing.assert_close(result, target, atol=1e-4, rtol=0)


def test_known_region_drives_the_fill_when_the_model_knows_nothing():
    """A denoiser predicting zero noise still gets the known half exactly in the output."""
    image = torch.rand(2, 3, 8, 8) * 2 - 1
    keep = half_mask(image.shape)
    out = repaint(
        lambda x, t, y: torch.zeros_like(x),
        DIFFUSION,
        image,
        keep,
        SCHEDULE,
        generator=torch.Generator().manual_seed(1),
    )
    known = keep.expand_as(image) > 0.5
    assert torch.equal(out[known], image[known])
    assert out.shape == image.shape and torch.isfinite(out).all()


def test_draw_order_and_callback_per_reverse_step():
    image = torch.zeros(1, 3, 4, 4)
    seen = []
    generator = torch.Generator().manual_seed(5)
    repaint(
        lambda x, t, y: torch.zeros_like(x),
        DIFFUSION,
        image,
        half_mask(image.shape),
        SCHEDULE,
        generator=generator,
        callback=lambda step: seen.append((step.index, step.total, step.t)),
    )
    reverse_ts = [a for a, b in SCHEDULE.pairs() if b < a]
    assert seen == [(i, len(reverse_ts), t) for i, t in enumerate(reverse_ts)]
    # x_T + posterior noise per reverse step + known noise per reverse step but the first
    # + one draw per forward step
    draws = 1 + 2 * SCHEDULE.reverse_steps - 1 + SCHEDULE.forward_steps
    replay = torch.Generator().manual_seed(5)
    for _ in range(draws):
        torch.randn(image.shape, generator=replay)
    assert torch.equal(generator.get_state(), replay.get_state())


def test_same_seed_same_result_other_seed_other_result():
    image = torch.rand(1, 3, 8, 8) * 2 - 1

    def run(seed):
        return repaint(
            lambda x, t, y: 0.5 * x,
            DIFFUSION,
            image,
            half_mask(image.shape),
            SCHEDULE,
            generator=torch.Generator().manual_seed(seed),
        )

    assert torch.equal(run(3), run(3))
    assert not torch.equal(run(3), run(4))


def test_labels_and_original_timesteps_reach_the_model():
    calls = []

    def denoiser(x, timesteps, labels):
        calls.append((timesteps.tolist(), labels.tolist()))
        return torch.zeros_like(x)

    image = torch.zeros(2, 3, 4, 4)
    repaint(
        denoiser,
        DIFFUSION,
        image,
        half_mask(image.shape),
        JumpSchedule(t_T=20, jump_length=1, jump_n_sample=1),
        generator=torch.Generator().manual_seed(0),
        labels=torch.tensor([3, 9]),
    )
    assert calls[0] == ([DIFFUSION.timestep_map[19]] * 2, [3, 9])
    assert calls[-1] == ([0, 0], [3, 9])
    assert DIFFUSION.timestep_map[19] == 999


def test_nan_names_the_model_evaluation():
    counter = {"n": 0}

    def breaks_at_fifth(x, timesteps, labels):
        counter["n"] += 1
        return torch.full_like(x, math.nan) if counter["n"] == 5 else torch.zeros_like(x)

    image = torch.zeros(1, 3, 4, 4)
    with pytest.raises(SamplingError, match="model evaluation 5 of"):
        repaint(
            breaks_at_fifth,
            DIFFUSION,
            image,
            half_mask(image.shape),
            SCHEDULE,
            generator=torch.Generator().manual_seed(0),
        )


def test_classifier_guidance_is_the_scaled_log_softmax_gradient():
    weight = torch.randn(10, 3 * 4 * 4)

    def classifier(x, timesteps):
        return x.flatten(1) @ weight.T

    x = torch.randn(2, 3, 4, 4)
    labels = torch.tensor([1, 7])
    gradient = classifier_guidance(classifier, scale=2.5)(x, torch.zeros(2), labels)
    probs = torch.softmax(classifier(x, None), dim=-1)
    expected = 2.5 * (weight[labels] - probs @ weight).view_as(x)
    torch.testing.assert_close(gradient, expected, atol=1e-5, rtol=1e-5)


def test_guidance_shifts_the_mean_toward_the_class():
    image = torch.zeros(1, 3, 4, 4)
    keep = torch.zeros(1, 1, 4, 4)  # nothing known: plain guided generation

    def run(scale):
        guidance = classifier_guidance(
            lambda x, t: torch.stack([x.mean((1, 2, 3)), -x.mean((1, 2, 3))], 1), scale
        )
        return repaint(
            lambda x, t, y: torch.zeros_like(x),
            DIFFUSION,
            image,
            keep,
            JumpSchedule(t_T=20, jump_length=1, jump_n_sample=1),
            generator=torch.Generator().manual_seed(0),
            labels=torch.tensor([0]),
            guidance=guidance,
            clip_denoised=False,
        )

    assert float(run(50.0).mean()) > float(run(0.0).mean())


def test_schedule_longer_than_the_diffusion_is_refused():
    with pytest.raises(Exception, match="respace it to at least t_T=50"):
        repaint(
            lambda x, t, y: x,
            DIFFUSION,
            torch.zeros(1, 3, 2, 2),
            torch.ones(1, 1, 2, 2),
            JumpSchedule(t_T=50),
            generator=torch.Generator(),
        )


def test_per_image_generators_make_results_independent_of_the_batch():
    images = torch.rand(3, 3, 8, 8) * 2 - 1
    keep = half_mask(images.shape)

    def denoiser(x, t, y):
        return 0.3 * x

    def run(batch, seeds):
        return repaint(
            denoiser,
            DIFFUSION,
            images[batch],
            keep[batch],
            SCHEDULE,
            generator=[torch.Generator().manual_seed(s) for s in seeds],
        )

    together = run([0, 1, 2], [10, 11, 12])
    alone = run([1], [11])
    torch.testing.assert_close(together[1:2], alone, atol=1e-6, rtol=0)
    with pytest.raises(Exception, match="2 generators for a batch of 3"):
        run([0, 1, 2], [1, 2])


SMALL_VARIANCE = GaussianDiffusion.from_config(
    steps=1000, timestep_respacing="20", learn_sigma=False, sigma_small=True
)


def test_ddim_with_eta_one_is_the_ancestral_step_with_posterior_variance():
    """DDIM's eta = 1 draws from the true posterior: the same sample as DDPM with fixed-small
    variance for the same noise, jumps and known-region injection included."""
    image = torch.rand(2, 3, 8, 8) * 2 - 1

    def run(eta):
        return repaint(
            lambda x, t, y: 0.5 * torch.tanh(x) + 1e-4 * t.view(-1, 1, 1, 1),
            SMALL_VARIANCE,
            image,
            half_mask(image.shape),
            SCHEDULE,
            generator=torch.Generator().manual_seed(3),
            eta=eta,
            raw=True,
        )

    torch.testing.assert_close(run(1.0), run(None), atol=2e-5, rtol=0)
    assert (run(0.0) - run(None)).abs().max() > 0.1  # eta = 0 is a different sampler


def test_ddim_eta_zero_follows_the_noise_of_x_t():
    """The deterministic step keeps the noise direction: q(x0, t, eps) -> q(x0, t - 1, eps)."""
    tables = DIFFUSION.tables()
    x0, eps = torch.rand(1, 3, 4, 4) * 2 - 1, torch.randn(1, 3, 4, 4)
    for t in (19, 7, 1):
        stepped = ddim_step(tables, q_sample(tables, x0, t, eps), t, x0, 0.0, torch.randn(1))
        torch.testing.assert_close(stepped, q_sample(tables, x0, t - 1, eps), atol=1e-5, rtol=0)


def test_eta_outside_zero_one_is_refused():
    with pytest.raises(Exception, match="eta must be in"):
        repaint(
            lambda x, t, y: x,
            DIFFUSION,
            torch.zeros(1, 3, 2, 2),
            torch.ones(1, 1, 2, 2),
            SCHEDULE,
            generator=torch.Generator(),
            eta=1.5,
        )
