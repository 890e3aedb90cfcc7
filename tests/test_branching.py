"""Branching: samples share one run down to a level, then each goes on with its own noise."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import numpy as np
import pytest
import torch

from repaint.cli import main
from repaint.errors import RepaintError
from repaint.loading import load_inpainter
from repaint.networks import UNetModel
from repaint.schedule import JumpSchedule
from tests.test_inpaint import keep_mask, photo, write_inputs

SCHEDULE = {"t_T": 12, "jump_length": 3, "jump_n_sample": 2}
# Worked out by hand from SCHEDULE: coming down from level 11, a jump 3 levels back up fires
# the first time the run reaches a segment end below t_T - 3 = 9, that is 6, 3 and 0; each
# reverse step at level t (t -> t - 1) is one model evaluation. So the run takes
#   11 10 9 8 7 (6 -> 9) 9 8 7 6                  down to level 5, where it first arrives: 9
#   5 4 (3 -> 6) 6 5 4 3 2 1 (0 -> 3) 3 2 1 0     the rest, from level 5: 12
# 9 + 12 = 21 = 12 levels + 3 jumps x 3 repeated levels. With jump_n_sample 1 the rest
# from level 5 has no jump: 5 4 3 2 1 0, 6 evaluations.
SHARED = [11, 10, 9, 8, 7, 9, 8, 7, 6]
BRANCH = [5, 4, 6, 5, 4, 3, 2, 1, 3, 2, 1, 0]
PLAIN_BRANCH = [5, 4, 3, 2, 1, 0]
# The 1000 diffusion steps respaced to t_T = 12 (guided-diffusion's space_timesteps: level i
# is step round(i * 999 / 11)): what the network is handed as its timestep at each level.
STEPS_12 = (0, 91, 182, 272, 363, 454, 545, 636, 727, 817, 908, 999)


class Calls:
    """The network calls actually made: each one's input batch and level (the index of its
    timestep in `steps`, the schedule's respaced diffusion steps). The cost plan of the
    command line times one call on zeros before sampling; a sampler's input is never all
    zeros, so those are left out."""

    def __init__(self, steps: Sequence[int]) -> None:
        self.level_of = {step: level for level, step in enumerate(steps)}
        self.inputs: list[torch.Tensor] = []
        self.levels: list[int] = []

    def record(self, args: tuple) -> None:
        x, steps = args[0], args[1]
        if not x.any():
            return
        assert len(set(steps.tolist())) == 1  # one level per call, whatever the batch
        self.inputs.append(x.detach().float().cpu().clone())
        self.levels.append(self.level_of[int(steps[0])])

    @property
    def batch_sizes(self) -> list[int]:
        return [len(x) for x in self.inputs]

    @property
    def evaluations(self) -> int:
        """Images put through the network: what `model_evaluations` reports."""
        return sum(self.batch_sizes)


@contextmanager
def network_calls(inpainter, steps: Sequence[int] = STEPS_12) -> Iterator[Calls]:
    """Count the calls of `inpainter`'s network (a hook on the prior's module)."""
    calls = Calls(steps)
    handle = inpainter.prior.network.register_forward_pre_hook(lambda _, a: calls.record(a))
    try:
        yield calls
    finally:
        handle.remove()


@contextmanager
def unet_calls(steps: Sequence[int] = STEPS_12) -> Iterator[Calls]:
    """Count the calls of any guided-diffusion UNet, for a model the command line loads."""
    calls = Calls(steps)

    def record(module, args) -> None:
        if isinstance(module, UNetModel):
            calls.record(args)

    handle = torch.nn.modules.module.register_module_forward_pre_hook(record)
    try:
        yield calls
    finally:
        handle.remove()


@pytest.fixture(scope="module")
def inpainter(tiny_model):
    return load_inpainter(tiny_model, device="cpu")


def test_branches_share_the_start_and_differ_after(inpainter):
    image, keep = photo(), keep_mask()
    with network_calls(inpainter) as calls:
        result = inpainter(image, keep, schedule=SCHEDULE, seed=4, num_samples=3, branch_at=5)
    outs = [np.asarray(im) for im in result.images]
    assert not np.array_equal(outs[0], outs[1]) and not np.array_equal(outs[1], outs[2])
    for out in outs:
        np.testing.assert_array_equal(out[keep], image[keep])
    # the start runs once, on one image; then the three branches run side by side
    assert calls.levels == SHARED + BRANCH
    assert calls.batch_sizes == [1] * 9 + [3] * 12
    assert calls.evaluations == 9 + 3 * 12 == result.model_evaluations == 45
    with network_calls(inpainter) as single:
        one_by_one = inpainter(
            image, keep, schedule=SCHEDULE, seed=4, num_samples=3, branch_at=5, batch_size=1
        )
    assert single.levels == SHARED + 3 * BRANCH and single.batch_sizes == [1] * 45
    assert one_by_one.model_evaluations == 45
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

    with network_calls(inpainter) as calls:
        plain = inpainter(image, keep, schedule=SCHEDULE, seed=4, name="a", callback=first_arrival)
    # the unbranched run is the shared part and one branch, step for step
    assert calls.levels == SHARED + BRANCH and calls.evaluations == plain.model_evaluations == 21
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


def test_every_branch_takes_its_first_step_from_the_shared_state(inpainter):
    """What each branch hands the network first is the shared run's sample at the branch
    level (in the region to fill; the known region is the ground truth noised afresh by the
    branch's own noise). A branch restarted from x_T would fail: its first call would be at
    level 11 and its input x_T, checked below to be far from the shared state."""
    image, keep = photo(), keep_mask()
    fill = torch.from_numpy(~keep)
    shared: list = []

    def last_shared(event) -> None:
        if event.batch == 0:
            shared[:] = [event.step.x[0].float().cpu().clone()]

    with network_calls(inpainter) as calls:
        inpainter(
            image, keep, schedule=SCHEDULE, seed=4, num_samples=3, branch_at=5, batch_size=2,
            callback=last_shared,
        )  # fmt: skip
    # the start (9 calls of 1), branches 0 and 1 together (12 of 2), then branch 2 (12 of 1)
    assert calls.batch_sizes == [1] * 9 + [2] * 12 + [1] * 12
    assert calls.levels == SHARED + BRANCH + BRANCH
    state = shared[0]  # the sample after the shared run's last step: level 5
    firsts = torch.cat([calls.inputs[9], calls.inputs[21]])  # each branch's first step
    assert len(firsts) == 3
    for x in firsts:
        assert torch.equal(x[:, fill], state[:, fill])
        assert not torch.equal(x[:, ~fill], state[:, ~fill])  # the known part noised anew
    for a, b in [(0, 1), (0, 2), (1, 2)]:
        assert not torch.equal(firsts[a][:, ~fill], firsts[b][:, ~fill])  # each its own noise
    # the mutation a restart from x_T would be: the run's first input (x_T, taken as is)
    x_T = calls.inputs[0][0]
    assert calls.levels[0] == 11 and calls.levels[9] == calls.levels[21] == 5
    assert (x_T[:, fill] - state[:, fill]).abs().max() > 0.5


def test_branching_at_the_top_is_k_independent_runs_sharing_nothing_but_x_T(inpainter):
    image, keep = photo(), keep_mask()
    with network_calls(inpainter) as calls:
        result = inpainter(image, keep, schedule=SCHEDULE, seed=4, num_samples=2, branch_at=11)
    # no shared step: the whole schedule (9 + 12 = 21 steps), each step on both branches
    assert calls.levels == SHARED + BRANCH and calls.batch_sizes == [2] * 21
    assert calls.evaluations == 2 * 21 == result.model_evaluations == 42
    first, second = calls.inputs[0], calls.inputs[1]
    assert torch.equal(first[0], first[1])  # the one x_T both start from
    assert not torch.equal(second[0], second[1])  # and nothing after it


def test_a_branch_schedule_changes_only_the_rest(inpainter):
    image, keep = photo(), keep_mask()
    plain = inpainter(image, keep, schedule=SCHEDULE, seed=4, num_samples=2, branch_at=5)
    with network_calls(inpainter) as calls:
        other = inpainter(
            image,
            keep,
            schedule=SCHEDULE,
            seed=4,
            num_samples=2,
            branch_at=5,
            branch_schedule={"jump_n_sample": 1},
        )
    assert calls.levels == SHARED + PLAIN_BRANCH and calls.batch_sizes == [1] * 9 + [2] * 6
    assert calls.evaluations == 9 + 2 * 6 == other.model_evaluations == 21
    assert plain.model_evaluations == 9 + 2 * 12 == 33
    assert not np.array_equal(np.asarray(plain.images[0]), np.asarray(other.images[0]))


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"branch_at": 12}, "branch_at: "),
        ({"branch_at": -1}, "branch_at: "),
        ({"branch_schedule": {"jump_length": 2}}, "needs branch_at"),
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
    with unet_calls() as calls:
        assert main([str(a) for a in ["inpaint", *args, *flags]]) == 0
    # 9 shared steps on one image, then the 3 branches' 6 steps together: 9 + 3 x 6 = 27
    assert calls.levels == SHARED + PLAIN_BRANCH and calls.batch_sizes == [1] * 9 + [3] * 6
    assert calls.evaluations == 27
    captured = capsys.readouterr()
    printed = captured.err
    assert "(9 shared + 3 branch(es) x 6) = 27 model evaluations" in printed
    assert "9 shared down to level 5, then 6 per branch" in printed
    assert re.search(r"\b27 model evaluations \(", captured.out)
    for k in range(3):
        sidecar = json.loads((out / f"a_{k}.json").read_text())
        assert sidecar["model_evaluations"] == 27 and sidecar["options"]["branch_at"] == 5
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
    with network_calls(inpainter) as calls:
        own = inpainter(
            image, keep, schedule=times, seed=5, num_samples=2, branch_at=5, branch_schedule=plain
        )
    assert calls.levels == SHARED + PLAIN_BRANCH and calls.evaluations == 9 + 2 * 6
    changed = inpainter(
        image,
        keep,
        schedule=SCHEDULE,
        seed=5,
        num_samples=2,
        branch_at=5,
        branch_schedule={"jump_n_sample": 1},
    )
    assert own.model_evaluations == changed.model_evaluations == 21
    assert by_list.model_evaluations == 9 + 2 * 12 == 33
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
