"""Sidecars: the JSON beside each output that says how it was made and makes it again.

A sidecar holds the inputs, the model and its SHA-256, the resolved schedule and sampler,
and the whole `InpaintRequest` (with its seed) under `options`; `read_sidecar` turns it back
into a request, so `repaint inpaint --from-sidecar FILE.json` redoes the output. The command
line and the web app write the same shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from repaint.errors import FieldError, RepaintError
from repaint.inpainter import Inpainter
from repaint.request import InpaintRequest
from repaint.results import InpaintResult
from repaint.version import __version__


def model_source(
    inpainter: Inpainter, model: str | Path, model_config: str | Path | None = None
) -> dict[str, Any]:
    """Where the model came from: what was asked for, what was loaded, and its hash."""
    path = Path(model)
    return {
        "model": str(path.resolve()) if path.exists() else str(model),
        "model_config": None if model_config is None else str(Path(model_config).resolve()),
        "name": inpainter.name,
        "checkpoint": None if inpainter.checkpoint is None else str(inpainter.checkpoint),
        "sha256": inpainter.sha256,
    }


def make_sidecar(
    result: InpaintResult,
    model: dict[str, Any],
    *,
    sample: int,
    name: str,
    output: str,
    inputs: dict[str, str | None],
    device: str,
) -> dict[str, Any]:
    """Everything that decided one output: inputs, model, schedule, sampler, seed, options."""
    request = result.request
    return {
        "repaint_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **inputs,
        "name": name,
        "output": output,
        "sample": sample,
        "model": model,
        "schedule": request.jump_schedule.params(),
        "sampler": request.describe_sampler(),
        "options": request.to_dict(),
        "fit": result.fit,
        "regions": len(result.windows),
        "device": device,
        "dtype": request.dtype,
        "model_evaluations": result.model_evaluations,
        "network_calls": result.network_calls,
        "seconds": round(result.seconds, 3),
    }


def sample_outputs(
    result: InpaintResult,
    model: dict[str, Any],
    *,
    name: str,
    filename: Callable[[int], str],
    inputs: dict[str, str | None],
    device: str,
    only_sample: int | None = None,
) -> list[tuple[int, np.ndarray, dict[str, Any]]]:
    """(sample, image, sidecar) of every sample (or only one): what the command line writes
    to disk and the web app keeps in memory."""
    return [
        (
            sample,
            np.asarray(image),
            make_sidecar(
                result,
                model,
                sample=sample,
                name=name,
                output=filename(sample),
                inputs=inputs,
                device=device,
            ),
        )
        for sample, image in enumerate(result.images)
        if only_sample is None or sample == only_sample
    ]


@dataclass(frozen=True)
class Sidecar:
    """What `--from-sidecar` needs to make an output again."""

    path: Path
    name: str
    image: Path
    mask: Path | None
    sample: int
    model: dict[str, Any]
    request: InpaintRequest
    device: str | None


def read_sidecar(path: str | Path) -> Sidecar:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RepaintError(f"{path}: no such sidecar file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise RepaintError(f"{path}: not a readable sidecar JSON ({error})") from None
    if not isinstance(data, dict):
        raise RepaintError(f"{path}: a sidecar is a JSON object")
    for key, kind in (
        ("input", str),
        ("mask", (str, type(None))),
        ("name", str),
        ("sample", int),
        ("model", dict),
        ("options", dict),
    ):
        if key not in data:
            raise RepaintError(f"{path}: sidecar key {key!r} is missing")
        if not isinstance(data[key], kind) or isinstance(data[key], bool):
            raise RepaintError(f"{path}: sidecar key {key!r} has the wrong type")
    if not isinstance(data["model"].get("model"), str):
        raise RepaintError(f"{path}: sidecar key 'model.model' is missing")
    try:
        request = InpaintRequest.from_dict(data["options"], where=f"{path}: options")
    except FieldError as error:  # named as the file names it
        raise RepaintError(f"{path}: {error.worded(lambda name: f'options.{name}')}") from None
    if request.seed is None:
        raise RepaintError(f"{path}: options.seed is missing, so the output cannot be redone")
    if not 0 <= data["sample"] < request.num_samples:
        raise RepaintError(f"{path}: sample {data['sample']} is not one of the run's samples")
    device = data.get("device")
    return Sidecar(
        path=path,
        name=data["name"],
        image=Path(data["input"]),
        mask=None if data["mask"] is None else Path(data["mask"]),
        sample=data["sample"],
        model=data["model"],
        request=request,
        device=device if isinstance(device, str) else None,
    )
