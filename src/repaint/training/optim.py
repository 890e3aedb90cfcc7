"""One optimisation step's rules: the learning-rate schedule, the EMA's warm-up, gradient
clipping and mixed-precision scaling, and dropout that a resumed run redraws the same."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from repaint.device import derive_seed
from repaint.training.config import TrainConfig
from repaint.training.state import Parts


def learning_rate(config: TrainConfig, step: int) -> float:
    """The rate of the step after `step` steps: linear warm-up from 0, then constant or a
    cosine decay to 0 at `--steps`."""
    rate = config.lr
    if step < config.lr_warmup:
        return rate * (step + 1) / config.lr_warmup
    if config.lr_schedule == "cosine":
        progress = (step - config.lr_warmup) / max(1, config.steps - config.lr_warmup)
        rate = rate * 0.5 * (1 + math.cos(math.pi * progress))
    return rate


def ema_decay(config: TrainConfig, rate: float, step: int) -> float:
    """The EMA rate at step `step`: early on, averaging over the random initialisation would
    swamp the EMA, so it warms up (diffusers' ratio, or k-diffusion's power)."""
    if config.ema_warmup == "ratio":
        return min(rate, (1 + step) / (10 + step))
    if config.ema_warmup == "power":
        return min(rate, max(0.0, 1 - (1 + step) ** -config.ema_power))
    return rate


def optimise(config: TrainConfig, parts: Parts, step: int) -> None:
    if config.grad_clip:
        parts.scaler.unscale_(parts.optimizer)
        nn.utils.clip_grad_norm_(parts.model.parameters(), config.grad_clip)
    for group in parts.optimizer.param_groups:
        group["lr"] = learning_rate(config, step)
    parts.scaler.step(parts.optimizer)
    parts.scaler.update()
    parts.optimizer.zero_grad(set_to_none=True)
    with torch.no_grad():
        for rate, ema in zip(config.ema_rates(), parts.emas, strict=True):
            decay = ema_decay(config, rate, step)
            for averaged, current in zip(ema.parameters(), parts.model.parameters(), strict=True):
                averaged.lerp_(current, 1 - decay)


@contextlib.contextmanager
def dropout_seed(
    config: TrainConfig, model_config: dict[str, Any], step: int, rank: int, device: torch.device
) -> Iterator[None]:
    """Dropout draws from torch's global generator: seeded per step and process, so a
    resumed run draws the same masks (nothing to do without dropout)."""
    if not model_config.get("dropout"):
        yield
        return
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(derive_seed(config.seed, "dropout", step, rank))
        yield
