import itertools
import json

import pytest

from repaint.cli import main
from repaint.errors import RepaintError
from repaint.schedule import JumpSchedule, TimeList


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


def test_a_time_list_has_the_cost_of_the_schedule_it_was_built_from(golden_dir):
    for entry in json.loads((golden_dir / "schedules.json").read_text()):
        listed = TimeList(entry["times"])
        assert listed.times() == entry["times"]
        assert listed.counts() == (entry["reverse_steps"], entry["forward_steps"])
        assert listed.t_T == JumpSchedule.from_params(entry["params"]).t_T


@pytest.mark.parametrize(
    ("levels", "words"),
    [
        ([3, 2, 1], "last entry must be -1"),
        ([3, 1, 0, -1], "entry 1 goes from 3 to 1"),
        ([3, 2, 3, 4, 3, 2, 1, 0, -1], "entry 3 is 4, above the first entry"),
        ([3, 2, 1, 0, -1, 0, -1], "entry 4 reaches -1 before the end"),
        ([3, 2, 1.0, 0, -1], "entry 2 is 1.0, not a whole number"),
        ([-1], "expected levels from t_T - 1 down to -1"),
        ("3,2,1,0,-1", "expected a list of levels"),
    ],
)
def test_a_bad_time_list_is_refused_with_the_entry_named(levels, words):
    with pytest.raises(RepaintError, match=words):
        TimeList(levels)


def test_a_schedule_file_is_a_list_or_what_schedule_json_prints(tmp_path):
    times = JumpSchedule(t_T=20, jump_length=5, jump_n_sample=3, stop_resampling=8).times()
    (tmp_path / "list.json").write_text(json.dumps(times))
    (tmp_path / "object.json").write_text(json.dumps({"times": times, "reverse_steps": 30}))
    assert TimeList.from_file(tmp_path / "list.json") == TimeList.from_file(
        tmp_path / "object.json"
    )
    assert TimeList.from_file(tmp_path / "list.json").times() == times
    (tmp_path / "broken.json").write_text("[19, 18,")
    (tmp_path / "other.json").write_text('{"levels": [1, 0, -1]}')
    for name, words in [
        ("missing.json", "no such schedule file"),
        ("broken.json", "not a JSON schedule"),
        ("other.json", "expected a JSON list of levels"),
    ]:
        with pytest.raises(RepaintError, match=f"{name}: {words}"):
            TimeList.from_file(tmp_path / name)


def test_repaint_schedule_reads_plots_and_refuses_a_schedule_file(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "early.json"
    assert main(["schedule", "--t-T", "30", "--stop-resampling", "15", "--json"]) == 0
    path.write_text(capsys.readouterr().out)
    assert main(["schedule", "--schedule-file", str(path), "--plot", str(tmp_path / "s.png")]) == 0
    printed = capsys.readouterr().out
    assert printed.startswith(f"{JumpSchedule(t_T=30, stop_resampling=15).reverse_steps} model")
    assert (tmp_path / "s.png").read_bytes().startswith(b"\x89PNG")
    assert main(["schedule", "--schedule-file", str(path), "--jump-length", "3"]) == 2
    error = capsys.readouterr().err
    assert error.strip().splitlines() == [
        "repaint: error: --schedule-file: a time list replaces the whole schedule; "
        "drop --jump-length"
    ]
