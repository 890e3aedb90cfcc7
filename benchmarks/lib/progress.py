"""Progress of a long benchmark: log lines with an ETA, durations in words, and the measured
forward pass that the first estimate is made from."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable

import torch

from repaint.prior import Prior

Log = Callable[[str], None]


def stderr_log(message: str) -> None:
    """Progress goes to stderr, so that a script's stdout stays its result."""
    print(message, file=sys.stderr, flush=True)


def duration(seconds: float) -> str:
    """`42 s`, `3 min 05 s` or `1 h 02 min`: as precise as a person reading a log needs."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def measure_forward(prior: Prior, batch: int, repeats: int = 2) -> float:
    """Seconds of one forward pass of a batch (after a warm-up pass): the unit of every
    estimate, since a sampler step costs about one forward pass."""
    size = prior.image_size
    x = torch.randn(batch, 3, size, size, device=prior.device)
    t = torch.full((batch,), 500, device=prior.device)
    with torch.inference_mode():
        prior.denoise(x, t, None)
        started = time.perf_counter()
        for _ in range(repeats):
            prior.denoise(x, t, None)
    return (time.perf_counter() - started) / repeats


class Progress:
    """Work is counted in image-evaluations; logs at most every `every` seconds, so that a
    run of an hour leaves a readable log. The ETA is the estimate until 5 s have passed,
    then the measured rate."""

    def __init__(self, total: float, estimate_s: float, log: Log, every: float = 60) -> None:
        self.total, self.estimate_s, self.log, self.every = total, estimate_s, log, every
        self.done = 0.0
        self.started = time.perf_counter()
        self.last = self.started

    def remaining_s(self) -> float:
        elapsed = time.perf_counter() - self.started
        if self.done <= 0 or elapsed < 5:
            return self.estimate_s * (1 - self.done / max(self.total, 1))
        return elapsed / self.done * (self.total - self.done)

    def advance(self, units: float, label: str, force: bool = False) -> None:
        self.done += units
        now = time.perf_counter()
        if force or now - self.last >= self.every:
            self.last = now
            share = self.done / max(self.total, 1)
            self.log(
                f"  {label} | {share:.0%} of all work, {duration(now - self.started)} elapsed, "
                f"~{duration(self.remaining_s())} left"
            )
