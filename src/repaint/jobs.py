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
from PIL import Image
from tqdm.auto import tqdm

from repaint.device import new_seed
from repaint.errors import RepaintError, RepaintWarning
from repaint.inpainter import Inpainter, InpaintResult, Plan
from repaint.io import INPUT_EXTENSIONS, atomic_output, list_images, load_rgb, write_image
from repaint.masks import load_mask
from repaint.outputs import comparison_grid, save_animation
from repaint.pixel import centre_crop
from repaint.regions import check_extended, extend_canvas
from repaint.request import InpaintRequest
from repaint.sampler import branch_costs
from repaint.schedule import Schedule
from repaint.sidecar import make_sidecar

FRAMES_PER_ANIMATION = 80
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


def output_name(job: Job, sample: int, num_samples: int) -> str:
    return job.name if num_samples == 1 else f"{job.name}_{sample}"


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

    Before each image's sampling starts, its cost (and an estimated time) is logged. With
    `keep_going`, a job that fails (unreadable input, NaN) is recorded in
    `failures.jsonl` and the others go on.
    """
    if request.seed is None:
        request = request.with_seed(new_seed())
    schedule = request.jump_schedule
    per_image = schedule.reverse_steps  # network calls, until an image's plan says more
    show = sys.stderr.isatty() if progress is None else progress
    summary = RunSummary(seed=request.seed)
    started = time.perf_counter()
    shared, each = branch_costs(schedule, request.branch_jump_schedule, request.branch_at)
    cost = f"{each} model evaluations per window and sample"
    if request.branch_at is not None:
        cost = f"{shared} shared down to level {request.branch_at}, then {each} per branch"
    log(
        f"{len(jobs)} image(s) x {request.num_samples} sample(s), {cost} "
        f"({_schedule_name(request)}), seed {request.seed}, model {inpainter.name}"
    )
    with tqdm(
        total=per_image * len(jobs), unit="eval", disable=not show, dynamic_ncols=True
    ) as bar:

        def on_plan(plan: Plan, name: str) -> None:
            bar.total += plan.network_calls - per_image
            bar.refresh()
            log(f"{name}: {plan.describe()}")

        for job in jobs:
            if is_complete(job, request, out_dir, model_source, only_sample):
                summary.skipped += 1
                bar.total -= per_image
                continue
            try:
                result = inpainter(
                    job.image,
                    job.mask,
                    request,
                    name=job.name,
                    callback=lambda event: bar.update(1),
                    on_plan=lambda plan, name=job.name: on_plan(plan, name),
                    record_every=_record_every(schedule) if save_progress else 0,
                )
            except RepaintError as error:
                if not keep_going:
                    raise
                record_failure(out_dir, job, str(error))
                summary.failed += 1
                continue
            summary.done += 1
            summary.model_evaluations += result.model_evaluations
            summary.outputs += _write_job(
                job, result, out_dir, model_source, str(inpainter.device), only_sample
            )
            if grid:
                summary.outputs.append(_write_grid(job, result, out_dir))
            if save_progress:
                for sample, frames in enumerate(result.frames):
                    if only_sample is None or sample == only_sample:
                        stem = output_name(job, sample, request.num_samples)
                        summary.outputs += save_animation(
                            frames, out_dir / f"{stem}_progress.gif", labels=inpainter.frame_labels
                        )
    summary.seconds = time.perf_counter() - started
    return summary


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
        stem = output_name(job, sample, request.num_samples)
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


def _record_every(schedule: Schedule) -> int:
    return max(1, schedule.reverse_steps // FRAMES_PER_ANIMATION)


def _write_job(
    job: Job,
    result: InpaintResult,
    out_dir: Path,
    model_source: dict[str, Any],
    device: str,
    only_sample: int | None,
) -> list[Path]:
    written = []
    for sample, image in enumerate(result.images):
        if only_sample is not None and sample != only_sample:
            continue
        stem = output_name(job, sample, result.request.num_samples)
        path = out_dir / f"{stem}.png"
        sidecar = make_sidecar(
            result,
            model_source,
            sample=sample,
            name=job.name,
            output=path.name,
            inputs={
                "input": str(job.image.resolve()),
                "mask": None if job.mask is None else str(job.mask.resolve()),
            },
            device=device,
        )
        _write_pair(np.asarray(image), path, sidecar)
        written.append(path)
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
