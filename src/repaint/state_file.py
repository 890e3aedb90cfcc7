"""Sampler states on disk: one safetensors file, no pickle.

The tensors (the sample and each generator's state) are safetensors tensors; the position,
the time list and whatever the caller adds (e.g. the request, to continue it from the
command line) are JSON in the file's metadata. Loading never runs code from the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from repaint.errors import RepaintError
from repaint.io import atomic_output
from repaint.samplers.repaint import SamplerState

FORMAT = "repaint-sampler-state/1"


def save_state(state: SamplerState, path: str | Path, info: dict[str, Any] | None = None) -> Path:
    """Write `state` (and JSON-able `info`) to `path`, atomically."""
    tensors = {"x": state.x.detach().cpu().contiguous()}
    for number, generator_state in enumerate(state.generator_states):
        tensors[f"generator_{number}"] = generator_state.cpu().contiguous()
    metadata = {
        "format": FORMAT,
        "position": str(state.position),
        "evaluations": str(state.evaluations),
        "times": json.dumps(state.times),
        "generators": str(len(state.generator_states)),
        "info": json.dumps(info or {}),
    }
    path = Path(path)
    with atomic_output(path) as handle:
        handle.write(save(tensors, metadata=metadata))
    return path


def load_state(path: str | Path, device: torch.device | str = "cpu") -> tuple[SamplerState, dict]:
    """The state and the `info` saved with it; a foreign or damaged file is one line."""
    path = Path(path)
    if not path.is_file():
        raise RepaintError(f"{path}: no such sampler state file")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
        if metadata.get("format") != FORMAT:
            raise ValueError("not a repaint sampler state")
        count = int(metadata["generators"])
        state = SamplerState(
            x=tensors["x"].to(device),
            position=int(metadata["position"]),
            evaluations=int(metadata["evaluations"]),
            times=[int(t) for t in json.loads(metadata["times"])],
            generator_states=[tensors[f"generator_{n}"] for n in range(count)],
        )
        info = json.loads(metadata["info"])
    except (SafetensorError, OSError, ValueError, KeyError, TypeError) as error:
        raise RepaintError(f"{path}: not a sampler state written by repaint ({error})") from None
    if not 0 <= state.position < len(state.times):
        raise RepaintError(f"{path}: the position is outside its time list")
    return state, info
