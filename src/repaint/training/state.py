"""A training run's folder: the resumable state, the exported model and the metrics log.

`train_state.pt` holds everything a resumed run needs to continue bit for bit (weights, EMA,
optimiser, gradient scaler, the data generator's state) and what it must agree on (the
settings, the number of processes, the data); it is read with `weights_only=True`, so a
foreign file can run no code. `model.safetensors` and `model.yml` are the EMA weights and
the reference-format config `--model` reads. All writes are atomic.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import save as safetensors_bytes
from torch import nn

from repaint.errors import RepaintError
from repaint.io import atomic_output
from repaint.training.config import TrainConfig, resume_view_of

STATE_FILE = "train_state.pt"
MODEL_FILE = "model.safetensors"
METRICS_FILE = "metrics.jsonl"
REQUIRED = {"config", "model", "ema", "optimizer", "generator", "step"}


@dataclass
class Parts:
    """What a checkpoint saves and restores."""

    model: nn.Module
    emas: list[nn.Module]
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    scaler: torch.amp.GradScaler


@dataclass(frozen=True)
class RunIdentity:
    """What a resumed run must share with the run it continues, besides the settings."""

    world: int
    data: str  # the data's fingerprint


def save_state(
    path: Path,
    config: TrainConfig,
    step: int,
    parts: Parts,
    generator_state: torch.Tensor,
    identity: RunIdentity,
) -> None:
    rates = config.ema_rates()
    state = {
        "config": asdict(config),
        "step": step,
        "model": parts.model.state_dict(),
        "ema": parts.emas[0].state_dict(),
        "emas": {
            repr(rate): ema.state_dict()
            for rate, ema in zip(rates[1:], parts.emas[1:], strict=True)
        },
        "optimizer": parts.optimizer.state_dict(),
        "generator": generator_state,
        "scaler": parts.scaler.state_dict(),
        "world_size": identity.world,
        "data": identity.data,
    }
    with atomic_output(path) as handle:
        torch.save(state, handle)


def resume(
    path: Path,
    config: TrainConfig,
    parts: Parts,
    identity: RunIdentity,
    log: Callable[[str], None],
) -> int:
    """Restore the run folder's last checkpoint, if any; returns the step it reached."""
    if not path.is_file():
        return 0
    state = read_state(path)
    _check_compatible(path, config, state, identity)
    rates = config.ema_rates()
    try:
        parts.model.load_state_dict(state["model"])
        parts.emas[0].load_state_dict(state["ema"])
        extra = state.get("emas", {})
        for rate, ema in zip(rates[1:], parts.emas[1:], strict=False):
            ema.load_state_dict(extra[repr(rate)])
        parts.optimizer.load_state_dict(state["optimizer"])
        parts.generator.set_state(state["generator"])
        if "scaler" in state:
            parts.scaler.load_state_dict(state["scaler"])
    except (RuntimeError, ValueError, TypeError, KeyError) as error:
        raise RepaintError(
            f"{path}: a damaged training state ({_first_line(error)}); delete it"
        ) from None
    log(f"resuming from step {state['step']} ({path})")
    return int(state["step"])


def read_state(path: Path) -> dict[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which
        raise RepaintError(
            f"{path}: unreadable training checkpoint ({_first_line(error)}); delete it"
        ) from None
    if not isinstance(state, dict) or not set(state) >= REQUIRED:
        raise RepaintError(
            f"{path}: not a training state written by `repaint train`; delete it or use "
            "another --out"
        )
    return state


def _check_compatible(
    path: Path, config: TrainConfig, state: Mapping[str, Any], identity: RunIdentity
) -> None:
    saved = resume_view_of(state["config"] if isinstance(state["config"], dict) else {})
    now = config.resume_view()
    different = [
        f"{name} ({saved.get(name)!r} there, {value!r} now)"
        for name, value in now.items()
        if saved.get(name) != value
    ]
    if different:
        raise RepaintError(
            f"{path.parent} holds a run with other settings: {', '.join(different)}; "
            "use the same options or another --out"
        )
    world = int(state.get("world_size", 1))
    if world != identity.world:
        raise RepaintError(
            f"{path.parent} holds a run of {world} process(es), this is {identity.world}: "
            f"resume it with torchrun --nproc_per_node {world} (the data order and the "
            "batch split depend on it), or use another --out"
        )
    if state.get("data", identity.data) != identity.data:
        raise RepaintError(
            f"--data {config.data}: its files changed since {path.parent} started (the "
            "resumed order would differ); restore them or use another --out"
        )


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    if "Weights only load failed" in text:  # torch's advice to unpickle it is not ours
        return "it holds objects that only an unsafe load would run"
    return text.splitlines()[0] if text else type(error).__name__


def export(
    out: Path,
    model_config: Mapping[str, Any],
    emas: list[nn.Module],
    rates: list[float],
    record: Mapping[str, Any],
) -> None:
    """Each EMA's weights as safetensors with the YAML `--model` reads beside it; the first
    rate is `model.safetensors`, the others `model_ema<rate>.safetensors`."""
    for index, (rate, ema) in enumerate(zip(rates, emas, strict=True)):
        stem = "model" if index == 0 else f"model_ema{rate!r}"
        weights = {
            name: tensor.detach().cpu().contiguous() for name, tensor in ema.state_dict().items()
        }
        with atomic_output(out / f"{stem}.safetensors") as handle:
            handle.write(safetensors_bytes(weights))
        sidecar = {**model_config, "trained": {**record, "ema_rate_of_these_weights": rate}}
        with atomic_output(out / f"{stem}.yml", "w") as handle:
            yaml.safe_dump(sidecar, handle, sort_keys=False)


def append_metrics(out: Path, record: Mapping[str, Any]) -> None:
    with open(out / METRICS_FILE, "a") as handle:
        handle.write(json.dumps(record) + "\n")


def read_metrics(out: Path) -> list[dict[str, Any]]:
    path = out / METRICS_FILE
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue  # a line cut short by a crash
    return records


def trim_metrics(out: Path, step: int) -> None:
    """Drop the records past the checkpoint a run resumes from: those steps are redone."""
    records = [record for record in read_metrics(out) if record.get("step", 0) <= step]
    with atomic_output(out / METRICS_FILE, "w") as handle:
        handle.writelines(json.dumps(record) + "\n" for record in records)
