"""Sampler states: stop anywhere on the schedule, save, and go on bit for bit."""

from __future__ import annotations

import pytest
import torch

from repaint.errors import RepaintError
from repaint.loading import load_inpainter
from repaint.samplers.repaint import repaint, repaint_until
from repaint.schedule import JumpSchedule
from repaint.state_file import load_state, save_state

SCHEDULE = JumpSchedule(t_T=20, jump_length=4, jump_n_sample=3)


@pytest.fixture(scope="module")
def prior(tiny_model):
    return load_inpainter(tiny_model, device="cpu").prior


def inputs():
    image = torch.linspace(-1, 1, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
    keep = torch.zeros(2, 1, 32, 32)
    keep[..., :16] = 1
    return image, keep


def generators(seed: int = 3):
    return [torch.Generator().manual_seed(seed + k) for k in range(2)]


def run(prior, **options):
    image, keep = inputs()
    return repaint(
        prior.denoise, prior.diffusion(SCHEDULE.t_T), image, keep, SCHEDULE, raw=True, **options
    )


@pytest.mark.parametrize("level", [19, 12, 7, 0])
def test_resuming_from_a_state_equals_the_uninterrupted_run(prior, level, tmp_path):
    whole = run(prior, generator=generators())
    image, keep = inputs()
    state = repaint_until(
        prior.denoise,
        prior.diffusion(SCHEDULE.t_T),
        image,
        keep,
        SCHEDULE,
        level=level,
        generator=generators(),
    )
    assert state.level == level and 0 <= state.evaluations < SCHEDULE.reverse_steps
    saved = save_state(state, tmp_path / "state.safetensors", {"note": "test"})
    loaded, info = load_state(saved)
    assert info == {"note": "test"} and loaded.position == state.position
    resumed = run(prior, generator=generators(seed=99), state=loaded)  # states restored
    assert torch.equal(resumed, whole)


def test_continuations_from_one_state_differ_with_their_own_generators(prior):
    image, keep = inputs()
    state = repaint_until(
        prior.denoise, prior.diffusion(20), image, keep, SCHEDULE, level=8, generator=generators()
    )
    branch = dict(state.__dict__)
    one = run(prior, generator=generators(), state=state)
    branch["generator_states"] = [g.get_state() for g in generators(seed=50)]
    other = run(prior, generator=generators(), state=type(state)(**branch))
    assert not torch.equal(one, other)


def test_a_state_of_another_schedule_or_a_missing_level_is_refused(prior, tmp_path):
    image, keep = inputs()
    state = repaint_until(
        prior.denoise, prior.diffusion(20), image, keep, SCHEDULE, level=8, generator=generators()
    )
    with pytest.raises(RepaintError, match="another schedule"):
        repaint(
            prior.denoise,
            prior.diffusion(20),
            image,
            keep,
            JumpSchedule(t_T=20, jump_length=2, jump_n_sample=2),
            generator=generators(),
            state=state,
        )
    with pytest.raises(RepaintError, match="level 25"):
        repaint_until(
            prior.denoise,
            prior.diffusion(20),
            image,
            keep,
            SCHEDULE,
            level=25,
            generator=generators(),
        )
    (tmp_path / "bad.safetensors").write_bytes(b"garbage")
    with pytest.raises(RepaintError, match="not a sampler state"):
        load_state(tmp_path / "bad.safetensors")
