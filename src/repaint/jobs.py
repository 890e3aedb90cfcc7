"""`repaint inpaint` over files: pairing images with masks, output names, reruns, failures.

Each output `NAME.png` (or `NAME_K.png` for several samples) gets a sidecar `NAME[_K].json`
(see `repaint.sidecar`) that makes it again with `repaint inpaint --from-sidecar`. An image
whose outputs and sidecars already exist for the same model and request is skipped, so a
rerun finishes an interrupted run.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from repaint.costs import request_costs
from repaint.errors import RepaintError, RepaintWarning
from repaint.files import output_name, write_outputs
from repaint.inpainter import Inpainter
from repaint.io import INPUT_EXTENSIONS, list_images, load_rgb
from repaint.masks import load_mask
from repaint.regions import check_extended
from repaint.request import InpaintRequest
from repaint.results import Hooks, Plan

FAILURES = "failures.jsonl"


@dataclass(frozen=True)
class Job:
    name: str  # the image's file stem: output names and per-sample seeds derive from it
    image: Path
    mask: Path | None  # None: keep every pixel (an image only extended)


def pair_inputs(image_arg: str | Path, mask_arg: str | Path | None) -> list[Job]:
    """Images and masks: file and file, folder and folder (masks matched by file stem), or
    a folder of images and one mask file for all of them; no mask: images alone."""
    image_arg = Path(image_arg)
    mask_arg = None if mask_arg is None else Path(mask_arg)
    if not image_arg.exists():
        raise RepaintError(f"{image_arg}: no such image file or folder")
    if mask_arg is not None and not mask_arg.exists():
        raise RepaintError(f"{mask_arg}: no such mask file or folder")
    images = _list_inputs(image_arg) if image_arg.is_dir() else [image_arg]
    if not images:
        kinds = ", ".join(sorted(INPUT_EXTENSIONS))
        raise RepaintError(f"{image_arg}: the folder holds no images ({kinds})")
    stems: dict[str, Path] = {}
    for image in images:
        if image.stem in stems:
            raise RepaintError(
                f"{image}: two images share the name {image.stem!r} ({stems[image.stem]}); "
                "outputs are named by file stem, so rename one"
            )
        stems[image.stem] = image
    if mask_arg is None or mask_arg.is_file():
        return [Job(image.stem, image, mask_arg) for image in images]
    masks = {mask.stem: mask for mask in _list_inputs(mask_arg)}
    missing = [image for image in images if image.stem not in masks]
    if missing:
        raise RepaintError(
            f"{mask_arg}: no mask named like {missing[0].name} ({len(missing)} of "
            f"{len(images)} images have no mask with the same file stem)"
        )
    return [Job(image.stem, image, masks[image.stem]) for image in images]


def _list_inputs(folder: Path) -> list[Path]:
    """Every image a single file may be, below `folder`; other files are named in a warning
    rather than skipped in silence."""
    images = list_images(folder, INPUT_EXTENSIONS)
    others = sorted(
        str(path.relative_to(folder))
        for path in folder.rglob("*")
        if path.is_file()
        and path.suffix.lower() not in INPUT_EXTENSIONS
        and not path.name.startswith(".")
    )
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        warnings.warn(
            f"{folder}: skipped {len(others)} file(s) that are not images: {shown}",
            RepaintWarning,
            stacklevel=3,
        )
    return images


@dataclass
class RunSummary:
    outputs: list[Path] = field(default_factory=list)
    model_evaluations: int = 0
    seconds: float = 0.0
    done: int = 0  # images inpainted now
    skipped: int = 0  # images whose outputs were already complete
    failed: int = 0  # images recorded in failures.jsonl
    seed: int = 0

    def counts(self) -> dict[str, float]:
        return {
            "done": self.done,
            "skipped": self.skipped,
            "failed": self.failed,
            "seconds": self.seconds,
            "model_evaluations": self.model_evaluations,
        }


def check_inputs(
    jobs: list[Job], mask_mode: str, extend: tuple[int, int, int, int] | None = None
) -> None:
    """Decode every image and mask before any model work, so bad input fails up front."""
    for job in jobs:
        rgb = load_rgb(job.image)
        if extend is not None:
            check_extended(rgb.shape[:2], extend, str(job.image))
        if job.mask is not None:
            size = (rgb.shape[1], rgb.shape[0])
            load_mask(job.mask, mode=mask_mode, size=size, name=str(job.mask))


def run_jobs(
    inpainter: Inpainter,
    jobs: list[Job],
    request: InpaintRequest,
    out_dir: Path,
    *,
    model_source: dict[str, Any],
    save_progress: bool = False,
    grid: bool = False,
    progress: bool | None = None,
    only_sample: int | None = None,
    keep_going: bool = False,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> RunSummary:
    """Inpaint every job and write its outputs, sidecars and optional extras.

    Images are read and inpainted in groups whose work shares batches (each output is what
    it would be alone). Before each group's sampling, its cost (and an estimated time) is
    logged. With `keep_going`, a job that fails (unreadable input, NaN) is recorded in
    `failures.jsonl` and the others go on.
    """
    request = inpainter.prepare(request)
    costs = request_costs(request, inpainter.prior.diffusion(request.jump_schedule.t_T))
    show = sys.stderr.isatty() if progress is None else progress
    summary = RunSummary(seed=request.seed)
    started = time.perf_counter()
    cost = f"{costs.each} model evaluations per window and sample"
    if request.branch_at is not None:
        cost = (
            f"{costs.shared} shared down to level {request.branch_at}, then {costs.each} per branch"
        )
    log(
        f"{len(jobs)} image(s) x {request.num_samples} sample(s), {cost} "
        f"({_schedule_name(request)}), sampler {request.describe_sampler()}, seed "
        f"{request.seed}, model {inpainter.name}"
    )
    pending = [
        job for job in jobs if not is_complete(job, request, out_dir, model_source, only_sample)
    ]
    summary.skipped = len(jobs) - len(pending)
    per_image = costs.total(request.num_samples)
    with tqdm(
        total=per_image * len(pending), unit="eval", disable=not show, dynamic_ncols=True
    ) as bar:

        def on_plan(plan: Plan, names: list[str]) -> None:
            bar.total += plan.model_evaluations - per_image * len(names)
            bar.refresh()
            more = f" and {len(names) - 1} more" if len(names) > 1 else ""
            log(f"{names[0]}{more}: {plan.describe()}")

        for group in _groups(inpainter, request, pending):
            inputs = _read_group(inpainter, group, request, out_dir, summary, keep_going)
            if not inputs:
                continue
            names = [name for name, _, _ in inputs]
            hooks = Hooks(
                names[0],
                lambda event: bar.update(event.rows),
                lambda plan, names=names: on_plan(plan, names),
                save_progress,
            )
            try:
                results = inpainter.inpaint_many(inputs, request, hooks)
            except RepaintError as error:
                if not keep_going:
                    raise
                for job in group:
                    if job.name in names:
                        record_failure(out_dir, job, str(error))
                        summary.failed += 1
                continue
            by_name = {job.name: job for job in group}
            for name, result in zip(names, results, strict=True):
                summary.done += 1
                summary.model_evaluations += result.model_evaluations
                summary.outputs += write_outputs(
                    by_name[name], result, inpainter, out_dir, model_source, only_sample,
                    grid=grid, animation=save_progress,
                )  # fmt: skip
    summary.seconds = time.perf_counter() - started
    return summary


GROUP_IMAGES = 64  # at most this many decoded images wait for a batch


def _groups(inpainter: Inpainter, request: InpaintRequest, jobs: list[Job]) -> list[list[Job]]:
    """Jobs in groups whose items fill about one batch of the model's input size."""
    items = inpainter.budget(request)(inpainter.nominal_shape())
    size = min(GROUP_IMAGES, max(1, items // request.num_samples))
    return [jobs[i : i + size] for i in range(0, len(jobs), size)]


def _read_group(
    inpainter: Inpainter,
    group: list[Job],
    request: InpaintRequest,
    out_dir: Path,
    summary: RunSummary,
    keep_going: bool,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """Each job's image and keep-mask; one that cannot be read is a failure."""
    inputs = []
    for job in group:
        try:
            rgb, keep = inpainter.read(job.image, job.mask, request, job.name)
        except RepaintError as error:
            if not keep_going:
                raise
            record_failure(out_dir, job, str(error))
            summary.failed += 1
            continue
        inputs.append((job.name, rgb, keep))
    return inputs


def _schedule_name(request: InpaintRequest) -> str:
    if request.schedule and "times" in request.schedule:
        schedule = request.jump_schedule
        return f"a time list of {len(schedule.levels)} levels from t_T={schedule.t_T}"
    changed = ", ".join(f"{key}={value}" for key, value in (request.schedule or {}).items())
    return f"preset {request.preset}" + (f" with {changed}" if changed else "")


def is_complete(
    job: Job,
    request: InpaintRequest,
    out_dir: Path,
    model_source: dict[str, Any],
    only_sample: int | None = None,
) -> bool:
    """Every output of `job` exists with a sidecar saying it was made with this model and
    these options (outputs are renamed into place only when complete, sidecars last)."""
    samples = range(request.num_samples) if only_sample is None else [only_sample]
    for sample in samples:
        stem = output_name(job.name, sample, request.num_samples)
        try:
            sidecar = json.loads((out_dir / f"{stem}.json").read_text())
        except (OSError, ValueError):
            return False
        same_model = sidecar.get("model", {}).get("sha256") == model_source.get("sha256")
        if not (
            (out_dir / f"{stem}.png").is_file()
            and same_model
            and sidecar.get("options") == request.to_dict()
        ):
            return False
    return True


def record_failure(out_dir: Path, job: Job, error: str) -> None:
    """One JSON line per failed image, appended (a single small write: whole lines even
    when several processes append)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    line = json.dumps(
        {
            "name": job.name,
            "image": str(job.image),
            "mask": None if job.mask is None else str(job.mask),
            "error": error,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )
    with open(out_dir / FAILURES, "a") as handle:
        handle.write(line + "\n")
