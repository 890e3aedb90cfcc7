"""Branching: samples share one run down to a level, then each goes on with its own noise."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from repaint.cli import main
from repaint.errors import RepaintError
from repaint.loading import load_inpainter
from repaint.sampler import branch_costs
from repaint.schedule import JumpSchedule
from tests.test_inpaint import keep_mask, photo, write_inputs

SCHEDULE = {"t_T": 12, "jump_length": 3, "jump_n_sample": 2}


@pytest.fixture(scope="module")
def inpainter(tiny_model):
    return load_inpainter(tiny_model, device="cpu")


def test_branches_share_the_start_and_differ_after(inpainter):
    image, keep = photo(), keep_mask()
    result = inpainter(image, keep, schedule=SCHEDULE, seed=4, num_samples=3, branch_at=5)
    outs = [np.asarray(im) for im in result.images]
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[1], outs[2])
    for out in outs:
        np.testing.assert_array_equal(out[keep], image[keep])
    shared, each = branch_costs(JumpSchedule(**SCHEDULE), JumpSchedule(**SCHEDULE), 5)
    assert result.model_evaluations == shared + 3 * each
    assert shared + each == JumpSchedule(**SCHEDULE).reverse_steps
    one_by_one = inpainter(
        image, keep, schedule=SCHEDULE, seed=4, num_samples=3, branch_at=5, batch_size=1
    )
    for a, b in zip(result.images, one_by_one.images, strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_plain_run_can_be_branched_later_from_where_it_stood(inpainter):
    """The shared start of a branched run is sample 0's own run of the same seed and name:
    what the web page's "branch from here" relies on."""
    image, keep = photo(), keep_mask()
    seen: list = []

    def first_arrival(event) -> None:
        if event.step.t - 1 == 5 and not seen:
            seen.append(event.step.x[0].clone())

    inpainter(image, keep, schedule=SCHEDULE, seed=4, name="a", callback=first_arrival)
    shared: list = []

    def last_shared(event) -> None:
        if event.batch == 0:
            shared[:] = [event.step.x[0].clone()]

    inpainter(
        image, keep, schedule=SCHEDULE, seed=4, name="a", num_samples=2, branch_at=5,
        callback=last_shared,
    )  # fmt: skip
    assert len(seen) == 1 and len(shared) == 1
    assert np.array_equal(seen[0].numpy(), shared[0].numpy())


def test_branching_at_the_top_is_k_independent_runs_sharing_nothing_but_x_T(inpainter):
    image, keep = photo(), keep_mask()
    result = inpainter(image, keep, schedule=SCHEDULE, seed=4, num_samples=2, branch_at=11)
    assert result.model_evaluations == 2 * JumpSchedule(**SCHEDULE).reverse_steps


def test_a_branch_schedule_changes_only_the_rest(inpainter):
    image, keep = photo(), keep_mask()
    plain = inpainter(image, keep, schedule=SCHEDULE, seed=4, num_samples=2, branch_at=5)
    other = inpainter(
        image,
        keep,
        schedule=SCHEDULE,
        seed=4,
        num_samples=2,
        branch_at=5,
        branch_schedule={"jump_n_sample": 1},
    )
    shared, each = branch_costs(
        JumpSchedule(**SCHEDULE), JumpSchedule(**{**SCHEDULE, "jump_n_sample": 1}), 5
    )
    assert other.model_evaluations == shared + 2 * each
    assert other.model_evaluations < plain.model_evaluations
    assert not np.array_equal(np.asarray(plain.images[0]), np.asarray(other.images[0]))


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"branch_at": 12}, "--branch-at"),
        ({"branch_at": -1}, "--branch-at"),
        ({"branch_schedule": {"jump_length": 2}}, "--branch-at"),
        ({"branch_at": 3, "branch_schedule": {"t_T": 20}}, "t_T"),
        ({"branch_at": 3, "branch_schedule": {"jump_length": 0}}, "jump_length"),
    ],
)
def test_bad_branching_is_refused(inpainter, options, words):
    with pytest.raises(RepaintError, match=words):
        inpainter(photo(), keep_mask(), schedule=SCHEDULE, seed=0, num_samples=2, **options)


def test_each_branch_is_reproduced_from_its_sidecar_and_the_cost_counts_the_start_once(
    tiny_model, tmp_path, capsys
):
    images, masks = write_inputs(tmp_path, names=("a",))
    out = tmp_path / "out"
    flags = ["--t-T", "12", "--jump-length", "3", "--jump-n-sample", "2", "--no-progress"]
    args = [images / "a.png", "--mask", masks / "a.png", "--model", tiny_model, "--seed", 2]
    args += ["--branch-at", 5, "--branches", 3, "--branch-jump-n-sample", 1, "--out", out]
    assert main([str(a) for a in ["inpaint", *args, *flags]]) == 0
    captured = capsys.readouterr()
    printed = captured.err
    shared, each = branch_costs(
        JumpSchedule(**SCHEDULE), JumpSchedule(**{**SCHEDULE, "jump_n_sample": 1}), 5
    )
    total = shared + 3 * each
    assert f"({shared} shared + 3 branch(es) x {each}) = {total} model evaluations" in printed
    assert f"{shared} shared down to level 5, then {each} per branch" in printed
    assert re.search(rf"{total} model evaluations \(", captured.out)
    for k in range(3):
        sidecar = json.loads((out / f"a_{k}.json").read_text())
        assert sidecar["model_evaluations"] == total and sidecar["options"]["branch_at"] == 5
        again = tmp_path / f"again{k}"
        assert (
            main(["inpaint", "--from-sidecar", str(out / f"a_{k}.json"), "--out", str(again)]) == 0
        )
        assert (again / f"a_{k}.png").read_bytes() == (out / f"a_{k}.png").read_bytes()


def test_a_time_list_runs_as_the_schedule_it_lists_and_branches_from_its_own(inpainter):
    """A schedule given as its levels gives the very image of the jump parameters that built
    it; branches may take their own list, and a list refuses jump-parameter overrides."""
    image, keep = photo(), keep_mask()
    times = {"times": JumpSchedule(**SCHEDULE).times()}
    by_params = inpainter(image, keep, schedule=SCHEDULE, seed=5, num_samples=2, branch_at=5)
    by_list = inpainter(image, keep, schedule=times, seed=5, num_samples=2, branch_at=5)
    for a, b in zip(by_params.images, by_list.images, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    plain = {"times": JumpSchedule(**{**SCHEDULE, "jump_n_sample": 1}).times()}
    own = inpainter(
        image, keep, schedule=times, seed=5, num_samples=2, branch_at=5, branch_schedule=plain
    )
    changed = inpainter(
        image,
        keep,
        schedule=SCHEDULE,
        seed=5,
        num_samples=2,
        branch_at=5,
        branch_schedule={"jump_n_sample": 1},
    )
    assert own.model_evaluations == changed.model_evaluations < by_list.model_evaluations
    for a, b in zip(own.images, changed.images, strict=True):
        assert np.array_equal(np.asarray(a), np.asarray(b))
    with pytest.raises(RepaintError, match="the run's schedule is a time list"):
        inpainter(
            image, keep, schedule=times, seed=5, branch_at=5, branch_schedule={"jump_length": 2}
        )
    with pytest.raises(RepaintError, match="t_T is 12"):
        inpainter(
            image,
            keep,
            schedule=times,
            seed=5,
            branch_at=5,
            branch_schedule={"times": [2, 1, 0, -1]},
        )
