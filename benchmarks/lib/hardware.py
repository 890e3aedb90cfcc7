"""What the device can do, to compare a measured rate with: FLOPs of a forward pass, the
peak FLOP/s of this CPU (measured) or GPU (datasheet), and the CPU's name."""

from __future__ import annotations

import math
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

GPU_PEAK_TFLOPS = {  # dense, from the datasheets: (fp32, tf32, bf16/fp16 tensor cores)
    "H100": (67, 495, 989),
    "H200": (67, 495, 989),
    "A100": (19.5, 156, 312),
    "A10": (31.2, 62.5, 125),
    "L4": (30.3, 60, 121),
}


def count_flops(forward: Callable[[], Any]) -> float:
    """FLOPs of one call, counted by torch.utils.flop_counter (no timing involved)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        forward()
    return float(counter.get_total_flops())


def cpu_matmul_peak(
    dtype: torch.dtype, sizes: tuple[int, ...] = (1024, 2048, 4096), repeats: int = 8
) -> float:
    """The best FLOP/s of large dense matmuls in `dtype`: the practical peak of this CPU."""
    best = 0.0
    for size in sizes:
        a = torch.randn(size, size, dtype=dtype)
        b = torch.randn(size, size, dtype=dtype)
        a @ b
        fastest = math.inf
        for _ in range(repeats):
            started = time.perf_counter()
            a @ b
            fastest = min(fastest, time.perf_counter() - started)
        best = max(best, 2 * size**3 / fastest)
    return best


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_flops(device: torch.device, precision: str) -> tuple[float | None, str]:
    """The peak FLOP/s of `device` in `precision`, and where the figure comes from."""
    if device.type == "cpu":
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        return cpu_matmul_peak(dtype), f"best measured {precision} matmul (1024-4096 square)"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (fp32, tf32, half) in GPU_PEAK_TFLOPS.items():
            if key in name:
                if precision in ("bf16", "fp16"):
                    return half * 1e12, f"{key} dense {precision} tensor-core datasheet peak"
                if torch.backends.cudnn.allow_tf32:
                    return tf32 * 1e12, f"{key} dense TF32 datasheet peak (cuDNN allows TF32)"
                return fp32 * 1e12, f"{key} fp32 datasheet peak"
    return None, "unknown device peak"
