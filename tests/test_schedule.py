import itertools
import json

import pytest

from repaint.errors import RepaintError
from repaint.schedule import JumpSchedule


def test_every_golden_schedule_is_reproduced_exactly(golden_dir):
    entries = json.loads((golden_dir / "schedules.json").read_text())
    assert len(entries) >= 10
    for entry in entries:
        schedule = JumpSchedule.from_params(entry["params"])
        assert schedule.times() == entry["times"], entry["params"]
        assert schedule.reverse_steps == entry["reverse_steps"], entry["params"]
        assert schedule.forward_steps == entry["forward_steps"], entry["params"]


def test_paper_schedule_costs_2410_evaluations():
    schedule = JumpSchedule(t_T=250, jump_length=10, jump_n_sample=10)
    times = schedule.times()
    assert times[0] == 249 and times[-1] == -1
    assert schedule.reverse_steps == 2410
    assert all(abs(a - b) == 1 for a, b in itertools.pairwise(times))


def test_no_resampling_is_a_plain_countdown():
    assert JumpSchedule(t_T=7, jump_length=3, jump_n_sample=1).times() == list(range(6, -2, -1))


@pytest.mark.parametrize(
    ("params", "key"),
    [
        ({"t_T": 0}, "t_T"),
        ({"t_T": 10, "jump_length": 0}, "jump_length"),
        ({"t_T": 10, "jump_n_sample": -1}, "jump_n_sample"),
        ({"t_T": 10, "n_sample": 1.5}, "n_sample"),
        ({"t_T": "250"}, "t_T"),
        ({"t_T": 10, "jump4_length": 2}, "jump4_length"),
        ({"jump_length": 2}, "t_T"),
    ],
)
def test_invalid_parameters_name_the_key(params, key):
    with pytest.raises(RepaintError, match=key):
        JumpSchedule.from_params(params).times()


def test_summary_states_the_cost():
    text = JumpSchedule(t_T=50, jump_length=5, jump_n_sample=3).summary()
    assert text.startswith("140 model evaluations")
    assert "jump back 5 levels" in text


def test_early_and_late_resampling_stay_on_their_side_at_equal_cost():
    """start_resampling (the reference's) keeps every jump at or below it; stop_resampling
    keeps every jump at or above it; mirrored thresholds cost the same."""
    base = {"t_T": 50, "jump_length": 5, "jump_n_sample": 3}
    late = JumpSchedule(**base, start_resampling=24)
    early = JumpSchedule(**base, stop_resampling=25)
    late_up = [a for a, b in late.pairs() if b > a]
    early_up = [a for a, b in early.pairs() if b > a]
    assert late_up and max(late_up) <= 24 and early_up and min(early_up) >= 25
    plain = JumpSchedule(**base)
    assert late.reverse_steps == early.reverse_steps < plain.reverse_steps
    assert late.counts() == early.counts()
    assert JumpSchedule(**base, stop_resampling=0).times() == plain.times()
    assert "resampling only at t >= 25" in early.summary()
