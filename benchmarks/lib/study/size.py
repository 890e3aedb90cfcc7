"""Study 3.1, time against image size: one model evaluation at batch 1 for each published
guided-diffusion architecture (random weights), with its FLOPs."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from benchmarks.lib.hardware import count_flops
from benchmarks.lib.progress import stderr_log
from repaint.checkpoints.registry import get_spec
from repaint.networks import unet_from_config
from repaint.presets import PRESETS
from repaint.prior import create_prior

ADM64 = {  # guided-diffusion's 64x64 ImageNet model (its README's flags), without classes
    "image_size": 64,
    "num_channels": 192,
    "num_res_blocks": 3,
    "learn_sigma": True,
    "attention_resolutions": "32,16,8",
    "num_head_channels": 64,
    "resblock_updown": True,
    "use_new_attention_order": True,
    "use_scale_shift_norm": True,
    "noise_schedule": "cosine",
    "class_cond": False,
}


def time_sizes(repeats: int) -> list[dict[str, Any]]:
    """Seconds and FLOPs of one model evaluation at batch 1 for each architecture."""
    archs = {
        "digits 32 px": get_spec("digits").config,
        "ADM 64 px (ImageNet)": ADM64,
        "ADM 256 px (CelebA-HQ, Places2)": get_spec("celeba256").config,
    }
    rows = []
    for name, config in archs.items():
        torch.manual_seed(0)
        network = unet_from_config(config).eval()
        prior = create_prior(config, network=network, device="cpu")
        size = int(config["image_size"])
        x, t = torch.randn(1, 3, size, size), torch.zeros(1, dtype=torch.long)
        with torch.inference_mode():
            flops = count_flops(lambda: prior.denoise(x, t, t))  # noqa: B023 (called here)
            prior.denoise(x, t, t)  # warm-up
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                prior.denoise(x, t, t)
                times.append(time.perf_counter() - started)
        params = sum(p.numel() for p in network.parameters())
        rows.append(
            {
                "architecture": name,
                "image_size": size,
                "parameters": params,
                "gflop": flops / 1e9,
                "seconds": float(np.median(times)),
                "paper_seconds": float(np.median(times)) * PRESETS["paper"].reverse_steps,
            }
        )
        stderr_log(f"size: {name}: {rows[-1]['seconds'] * 1000:.0f} ms, {flops / 1e9:.1f} GFLOP")
    return rows
