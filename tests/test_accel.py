"""The fast paths (channels_last, torch.compile, half precision) give the plain path's result
within the tolerances stated in docs/performance.md, and the loop never waits on the host.

They use the embedded digits model: a random UNet's zero-initialised output layer would
predict zero noise whatever the path."""

from __future__ import annotations

import pytest
import torch

from benchmarks.lib.speed.measure import ValueReads
from repaint.accel import Acceleration
from repaint.checkpoints import resolve_model
from repaint.loading import load_inpainter
from repaint.pixel import PixelInpainter
from repaint.prior import Prior, create_prior
from repaint.samplers.repaint import repaint
from repaint.schedule import JumpSchedule
from tests.conftest import SHORT

BF16_TOLERANCE = 0.1  # max abs difference of a bf16 sample from fp32, in [-1, 1] units


def sample(prior: Prior, schedule: dict = SHORT) -> torch.Tensor:
    """The raw sample of a fixed half-masked image, two items, fixed generators."""
    image = torch.linspace(-1, 1, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
    keep = torch.zeros(2, 1, 32, 32)
    keep[..., :16] = 1
    jumps = JumpSchedule.from_params(schedule)
    return repaint(
        prior.denoise,
        prior.diffusion(jumps.t_T),
        image,
        keep,
        jumps,
        generator=[torch.Generator().manual_seed(k) for k in range(2)],
        raw=True,
    )


def load(**options) -> Prior:
    """The digits model's prior, loaded as users load it (`load_inpainter`)."""
    inpainter = load_inpainter("digits", device="cpu", **options)
    assert isinstance(inpainter, PixelInpainter)
    return inpainter.prior


@pytest.fixture(scope="module")
def plain() -> torch.Tensor:
    return sample(load())


def test_channels_last_gives_the_plain_result(plain):
    fast = load(channels_last=True)
    assert (
        fast.network.input_blocks[1][0]
        .in_layers[2]
        .weight.is_contiguous(memory_format=torch.channels_last)
    )
    torch.testing.assert_close(sample(fast), plain, atol=1e-5, rtol=0)


def test_compiled_network_gives_the_plain_result(plain):
    torch._dynamo.reset()
    compiled = load(compile=True)
    result = sample(compiled)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # really compiled
    torch.testing.assert_close(result, plain, atol=1e-4, rtol=0)


@pytest.mark.parametrize("how", ["torso", "autocast"])
def test_bf16_stays_within_the_documented_tolerance(plain, how):
    if how == "torso":  # our UNet's own scheme: bf16 convolutions, fp32 norms
        half = load(dtype="bf16")
    else:  # autocast, as for networks of other families
        digits = resolve_model("digits")
        half = create_prior(
            digits.config,
            checkpoint=digits.checkpoint,
            device=torch.device("cpu"),
            acceleration=Acceleration(autocast=torch.bfloat16),
        )
    result = sample(half)
    assert result.dtype == torch.float32
    difference = (result - plain).abs()
    print(f"bf16 ({how}) vs fp32: max {difference.max():.4f}, mean {difference.mean():.5f}")
    assert 0 < difference.max() < BF16_TOLERANCE  # it did run in bf16, and stayed close


def test_the_loop_reads_no_values_back_per_step():
    """The NaN check reads one value every 25 model evaluations and once at the end,
    however many steps: never one per step."""
    prior = load()
    for schedule in (SHORT, {"t_T": 12, "jump_length": 3, "jump_n_sample": 3}):
        evaluations = JumpSchedule.from_params(schedule).reverse_steps
        with ValueReads() as counter:
            sample(prior, schedule)
        assert counter.calls == ["__int__"] * (1 + (evaluations - 1) // 25), evaluations


def test_speed_benchmark_reports_every_case(tmp_path, capsys):
    from benchmarks import speed

    argv = ["--archs", "digits", "--variants", "fp32,bf16", "--batches", "1,2", "--repeats", "1"]
    argv += ["--t-T", "4", "--jump-length", "2", "--jump-n-sample", "2", "--out", str(tmp_path)]
    assert speed.main(argv) == 0
    report = __import__("json").loads((tmp_path / "speed.json").read_text())
    rows = {(r["variant"], r["batch"]): r for r in report["results"]}
    assert set(rows) == {("fp32", 1), ("fp32", 2), ("bf16", 1), ("bf16", 2)}
    assert rows["fp32", 1]["evaluations"] == 6 and rows["fp32", 1]["value_reads_per_run"] == 1
    assert 0.7 < rows["fp32", 1]["gflop_per_image_eval"] < 1.0  # the digits UNet: 0.83
    assert any("bf16, batch 2" in line for line in report["ratios"])
    assert "| digits | repaint | bf16 | 2 | 6 |" in (tmp_path / "speed.md").read_text()
