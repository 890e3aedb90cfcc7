"""A result's files on disk: per sample a PNG and its sidecar (written together or not at
all), an animation of the recorded frames, and a grid of the input, the masked input and the
samples. Folder runs (`repaint.jobs`) write through here; the web app keeps the same PNG and
sidecar pairs in memory (`repaint.sidecar.sample_outputs` makes them for both).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from repaint.errors import RepaintError
from repaint.io import atomic_output, load_rgb, write_image
from repaint.masks import load_mask
from repaint.outputs import comparison_grid, save_animation
from repaint.pixel import centre_crop
from repaint.regions import extend_canvas
from repaint.results import InpaintResult
from repaint.sidecar import sample_outputs

if TYPE_CHECKING:
    from repaint.inpainter import Inpainter
    from repaint.jobs import Job


def output_name(name: str, sample: int, num_samples: int) -> str:
    return name if num_samples == 1 else f"{name}_{sample}"


def write_outputs(
    job: Job,
    result: InpaintResult,
    inpainter: Inpainter,
    out_dir: Path,
    model_source: dict[str, Any],
    only_sample: int | None,
    *,
    grid: bool = False,
    animation: bool = False,
) -> list[Path]:
    """Every file of one job's result; returns their paths."""
    samples = result.request.num_samples
    written = []
    for _sample, image, sidecar in sample_outputs(
        result,
        model_source,
        name=job.name,
        filename=lambda k: output_name(job.name, k, samples) + ".png",
        inputs={
            "input": str(job.image.resolve()),
            "mask": None if job.mask is None else str(job.mask.resolve()),
        },
        device=str(inpainter.device),
        only_sample=only_sample,
    ):
        path = out_dir / sidecar["output"]
        _write_pair(image, path, sidecar)
        written.append(path)
    if grid:
        written.append(_write_grid(job, result, out_dir))
    if animation:
        for sample, frames in enumerate(result.frames):
            if only_sample is None or sample == only_sample:
                stem = output_name(job.name, sample, samples)
                written += save_animation(
                    frames, out_dir / f"{stem}_progress.gif", labels=inpainter.frame_labels
                )
    return written


def _write_pair(image: np.ndarray, path: Path, sidecar: dict[str, Any]) -> None:
    """The PNG and its sidecar appear together or not at all (a full disk leaves neither)."""
    json_path = path.with_suffix(".json")
    try:
        write_image(image, path)
        try:
            with atomic_output(json_path, "w") as handle:
                json.dump(sidecar, handle, indent=2)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
    except OSError as error:
        raise RepaintError(
            f"{error.filename or path}: cannot write the output ({error.strerror or error}); "
            "nothing was left half-written"
        ) from None


def _write_grid(job: Job, result: InpaintResult, out_dir: Path) -> Path:
    """Input | masked input | samples, the inputs shown as the model saw them (centre-cropped
    for fit=crop, so the grid matches the result)."""
    original = load_rgb(job.image)
    size = (original.shape[1], original.shape[0])
    if job.mask is None:
        keep = np.ones(original.shape[:2], dtype=bool)
    else:
        keep = load_mask(job.mask, mode=result.request.mask_mode, size=size)
    if result.fit == "crop":
        original, keep = centre_crop(original, keep, result.images[0].height)
    if result.request.extend is not None:
        original, keep = extend_canvas(original, keep, result.request.extend)
    masked = np.where(keep[..., None], original, np.uint8(128))
    panels = [Image.fromarray(original), Image.fromarray(masked), *result.images]
    labels = ["input", "masked", *[f"sample {k}" for k in range(len(result.images))]]
    path = out_dir / f"{job.name}_grid.png"
    write_image(np.asarray(comparison_grid(panels, labels)), path)
    return path
