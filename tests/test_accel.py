"""The fast paths (channels_last, torch.compile, half precision) give the plain path's result
within the tolerances stated in docs/performance.md, and the loop never waits on the host.

They use the embedded digits model: a random UNet's zero-initialised output layer would
predict zero noise whatever the path."""

from __future__ import annotations

import pytest
import torch
from torch.overrides import TorchFunctionMode

from repaint.accel import Acceleration
from repaint.pipeline import Inpainter
from repaint.sampler import repaint
from repaint.schedule import JumpSchedule
from tests.conftest import SHORT

BF16_TOLERANCE = 0.1  # max abs difference of a bf16 sample from fp32, in [-1, 1] units


def sample(inpainter: Inpainter, schedule: dict = SHORT) -> torch.Tensor:
    """The raw sample of a fixed half-masked image, two items, fixed generators."""
    image = torch.linspace(-1, 1, 2 * 3 * 32 * 32).reshape(2, 3, 32, 32)
    keep = torch.zeros(2, 1, 32, 32)
    keep[..., :16] = 1
    jumps = JumpSchedule.from_params(schedule)
    return repaint(
        inpainter.denoise,
        inpainter.diffusion(jumps.t_T),
        image,
        keep,
        jumps,
        generator=[torch.Generator().manual_seed(k) for k in range(2)],
        raw=True,
    )


def load(**options) -> Inpainter:
    return Inpainter.from_pretrained("digits", device="cpu", **options)


@pytest.fixture(scope="module")
def plain() -> torch.Tensor:
    return sample(load())


def test_channels_last_gives_the_plain_result(plain):
    fast = load(acceleration=Acceleration(channels_last=True))
    assert (
        fast.unet.input_blocks[1][0]
        .in_layers[2]
        .weight.is_contiguous(memory_format=torch.channels_last)
    )
    torch.testing.assert_close(sample(fast), plain, atol=1e-5, rtol=0)


def test_compiled_network_gives_the_plain_result(plain):
    torch._dynamo.reset()
    compiled = load(acceleration=Acceleration(compile=True))
    result = sample(compiled)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # really compiled
    torch.testing.assert_close(result, plain, atol=1e-4, rtol=0)


@pytest.mark.parametrize("how", ["torso", "autocast"])
def test_bf16_stays_within_the_documented_tolerance(plain, how):
    if how == "torso":  # our UNet's own scheme: bf16 convolutions, fp32 norms
        half = load(dtype="bf16")
    else:  # autocast, as for networks of other families
        half = load(acceleration=Acceleration(autocast=torch.bfloat16))
    result = sample(half)
    assert result.dtype == torch.float32
    difference = (result - plain).abs()
    print(f"bf16 ({how}) vs fp32: max {difference.max():.4f}, mean {difference.mean():.5f}")
    assert 0 < difference.max() < BF16_TOLERANCE  # it did run in bf16, and stayed close


class HostSyncCounter(TorchFunctionMode):
    """Counts the calls that copy a tensor's value to Python (a device sync on a GPU)."""

    SYNCING = frozenset(
        {"item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        name = getattr(func, "__name__", "")
        if name in self.SYNCING:
            self.calls.append(name)
        return func(*args, **(kwargs or {}))


def test_the_loop_reads_no_values_back_per_step():
    """One read after the loop (the NaN check), however many steps: none inside it."""
    inpainter = load()
    counts = []
    for schedule in (SHORT, {"t_T": 12, "jump_length": 3, "jump_n_sample": 3}):
        with HostSyncCounter() as counter:
            sample(inpainter, schedule)
        counts.append(counter.calls)
    assert counts[0] == counts[1] == ["__int__"]
