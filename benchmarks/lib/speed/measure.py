"""How benchmarks/speed.py times its cases: a warm-up run each (the compile time, for
`compile`), value reads counted once, then every case in turn `repeats` times with the
device synchronised before each clock read; a row of rates per case from the median."""

from __future__ import annotations

import resource
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

from benchmarks.lib.progress import Log
from benchmarks.lib.speed.cases import Case


class ValueReads(TorchFunctionMode):
    """Counts calls that copy a tensor's value into Python: each is a device sync on a GPU."""

    READS = frozenset(
        {"item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "cpu"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(
        self,
        func: Callable[..., Any],
        types: Any,
        args: tuple[Any, ...] = (),
        kwargs: dict[str, Any] | None = None,
    ) -> Any:
        if getattr(func, "__name__", "") in self.READS:
            self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(cases: list[Case], repeats: int, device: torch.device, log: Log) -> None:
    """Warm up each case, count its value reads, then time all of them round-robin."""
    for case in cases:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        synchronize(device)
        started = time.perf_counter()
        case.run()
        synchronize(device)
        case.first_run_s = time.perf_counter() - started
        if case.variant == "fp32":  # the loop is the same for every variant
            with ValueReads() as reads, warnings.catch_warnings(record=True) as syncs:
                warnings.simplefilter("always")
                if device.type == "cuda":  # CUDA's own account of synchronising calls
                    torch.cuda.set_sync_debug_mode("warn")
                case.run()
                if device.type == "cuda":
                    torch.cuda.set_sync_debug_mode("default")
            case.reads = len(reads.calls)
            if device.type == "cuda":
                case.cuda_syncs = sum("synchroniz" in str(w.message) for w in syncs)
        if device.type == "cuda":
            case.peak_memory_mb = torch.cuda.max_memory_allocated(device) / 2**20
        else:  # the process's peak resident set so far (it only grows)
            case.peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        log(
            f"  warm: {case.arch} {case.sampler} {case.variant} b{case.batch}: "
            f"{case.first_run_s:.2f} s, value reads: {case.reads}"
        )
    for repeat in range(repeats):
        for case in cases:
            synchronize(device)
            started = time.perf_counter()
            case.run()
            synchronize(device)
            case.times.append(time.perf_counter() - started)
        log(f"  repeat {repeat + 1}/{repeats} done")


def row(case: Case) -> dict[str, Any]:
    """A timed case as one row of speed.json."""
    median = statistics.median(case.times)
    evaluations = case.schedule.reverse_steps
    image_evals_per_s = evaluations * case.batch / median
    achieved = case.flops_per_image * image_evals_per_s
    return {
        "arch": case.arch,
        "sampler": case.sampler,
        "variant": case.variant,
        "precision": case.precision,
        "batch": case.batch,
        "schedule": case.schedule.params(),
        "evaluations": evaluations,
        "params": case.params,
        "gflop_per_image_eval": case.flops_per_image / 1e9,
        "times_s": case.times,
        "median_s": median,
        "s_per_image": median / case.batch,
        "ms_per_eval": median / evaluations * 1000,
        "evals_per_s": evaluations / median,
        "image_evals_per_s": image_evals_per_s,
        "achieved_tflops": achieved / 1e12,
        "fraction_of_peak": achieved / case.peak_flops if case.peak_flops else None,
        "first_run_s": case.first_run_s,
        "compile_s": case.first_run_s - median if case.variant in ("compile", "fast") else None,
        "value_reads_per_run": case.reads,
        "cuda_syncs_per_run": case.cuda_syncs,
        "peak_memory_mb": case.peak_memory_mb,
    }
