"""`repaint inpaint` over files: pairing images with masks, output names, sidecars, reruns.

Each output `NAME.png` (or `NAME_K.png` for several samples) gets a sidecar `NAME[_K].json`
holding everything needed to make it again: the inputs, the model and its SHA-256, the
schedule, the seed and every option. `repaint inpaint --from-sidecar FILE.json` does that.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from tqdm.auto import tqdm

from repaint.version import __version__
from repaint.device import new_seed
from repaint.errors import RepaintError
from repaint.io import atomic_output, list_images, load_rgb, write_image
from repaint.masks import load_mask
from repaint.outputs import comparison_grid, save_animation
from repaint.pipeline import Inpainter, InpaintResult, Progress, resolve_eta, resolve_schedule
from repaint.schedule import JumpSchedule

FRAMES_PER_ANIMATION = 80
FAILURES = "failures.jsonl"


@dataclass(frozen=True)
class Job:
    name: str  # the image's file stem: output names and per-sample seeds derive from it
    image: Path
    mask: Path


def pair_inputs(image_arg: str | Path, mask_arg: str | Path) -> list[Job]:
    """Images and masks: file and file, folder and folder (masks matched by file stem), or
    a folder of images and one mask file for all of them."""
    image_arg, mask_arg = Path(image_arg), Path(mask_arg)
    if not image_arg.exists():
        raise RepaintError(f"{image_arg}: no such image file or folder")
    if not mask_arg.exists():
        raise RepaintError(f"{mask_arg}: no such mask file or folder")
    images = list_images(image_arg) if image_arg.is_dir() else [image_arg]
    if not images:
        raise RepaintError(f"{image_arg}: the folder holds no images (.png, .jpg, .jpeg, .gif)")
    stems: dict[str, Path] = {}
    for image in images:
        if image.stem in stems:
            raise RepaintError(
                f"{image}: two images share the name {image.stem!r} ({stems[image.stem]}); "
                "outputs are named by file stem, so rename one"
            )
        stems[image.stem] = image
    if mask_arg.is_file():
        return [Job(image.stem, image, mask_arg) for image in images]
    masks = {mask.stem: mask for mask in list_images(mask_arg)}
    missing = [image for image in images if image.stem not in masks]
    if missing:
        raise RepaintError(
            f"{mask_arg}: no mask named like {missing[0].name} ({len(missing)} of "
            f"{len(images)} images have no mask with the same file stem)"
        )
    return [Job(image.stem, image, masks[image.stem]) for image in images]


@dataclass
class RunOptions:
    """Everything besides the model that decides an output (stored in each sidecar)."""

    preset: str | None = "paper"
    schedule: dict[str, int] | None = None  # explicit schedule parameters; override the preset
    eta: float | str | None = None  # "ddpm", a DDIM eta, or None for the preset's
    num_samples: int = 1
    seed: int | None = None
    mask_mode: str = "keep"
    grow: int = 0
    fit: str = "auto"
    mask_blur: int | None = None  # None: the model family's default
    class_label: int | None = None
    classifier_scale: float | None = None
    batch_size: int | None = None
    prompt: str | None = None  # text-conditioned (Stable Diffusion) models only
    negative_prompt: str = ""
    guidance_scale: float | None = None

    def jump_schedule(self) -> JumpSchedule:
        return resolve_schedule(self.preset, self.schedule)

    def sampler_eta(self) -> float | None:
        return resolve_eta(self.preset, self.eta)


@dataclass
class RunSummary:
    outputs: list[Path] = field(default_factory=list)
    model_evaluations: int = 0
    seconds: float = 0.0
    done: int = 0  # images inpainted now
    skipped: int = 0  # images whose outputs were already complete
    failed: int = 0  # images recorded in failures.jsonl

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


def check_inputs(jobs: list[Job], mask_mode: str) -> None:
    """Decode every image and mask before any model work, so bad input fails up front."""
    for job in jobs:
        rgb = load_rgb(job.image)
        load_mask(job.mask, mode=mask_mode, size=(rgb.shape[1], rgb.shape[0]), name=str(job.mask))


def run_jobs(
    inpainter: Inpainter,
    jobs: list[Job],
    options: RunOptions,
    out_dir: Path,
    *,
    model_source: dict[str, Any],
    device: str,
    dtype: str,
    save_progress: bool = False,
    grid: bool = False,
    progress: bool | None = None,
    only_sample: int | None = None,
    keep_going: bool = False,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> RunSummary:
    """Inpaint every job and write its outputs, sidecars and optional extras.

    A job whose outputs and sidecars already exist with the same model and options is
    skipped, so a rerun finishes an interrupted run. With `keep_going`, a job that fails
    (unreadable input, NaN) is recorded in `failures.jsonl` and the others go on.
    """
    schedule = options.jump_schedule()
    options.seed = options.seed if options.seed is not None else new_seed()
    batches = -(-options.num_samples // (options.batch_size or options.num_samples))
    per_image = schedule.reverse_steps * batches
    show = sys.stderr.isatty() if progress is None else progress
    summary = RunSummary()
    started = time.perf_counter()
    log(
        f"{len(jobs)} image(s) x {options.num_samples} sample(s), {schedule.reverse_steps} "
        f"model evaluations each, seed {options.seed}, model {inpainter.name}"
    )
    with tqdm(
        total=per_image * len(jobs), unit="eval", disable=not show, dynamic_ncols=True
    ) as bar:

        def on_progress(event: Progress) -> None:
            if event.step.index == 0 and event.batch == 0:
                # region mode may need more batches than assumed for this image
                bar.total += event.step.total * event.batches - per_image
            bar.update(1)

        for job in jobs:
            if is_complete(job, options, out_dir, model_source, only_sample):
                summary.skipped += 1
                bar.total -= per_image
                continue
            try:
                result = inpainter(
                    job.image,
                    job.mask,
                    name=job.name,
                    callback=on_progress,
                    record_every=_record_every(schedule) if save_progress else 0,
                    **asdict(options),
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
                job, result, options, out_dir, model_source, device, dtype, only_sample
            )
            if grid:
                summary.outputs.append(_write_grid(job, result, options, out_dir))
            if save_progress:
                for sample, frames in enumerate(result.frames):
                    if only_sample is None or sample == only_sample:
                        stem = output_name(job, sample, options.num_samples)
                        summary.outputs += save_animation(frames, out_dir / f"{stem}_progress.gif")
    summary.seconds = time.perf_counter() - started
    return summary


def is_complete(
    job: Job,
    options: RunOptions,
    out_dir: Path,
    model_source: dict[str, Any],
    only_sample: int | None = None,
) -> bool:
    """Every output of `job` exists with a sidecar saying it was made with this model and
    these options (outputs are renamed into place only when complete, sidecars last)."""
    samples = range(options.num_samples) if only_sample is None else [only_sample]
    for sample in samples:
        stem = output_name(job, sample, options.num_samples)
        try:
            sidecar = json.loads((out_dir / f"{stem}.json").read_text())
        except (OSError, ValueError):
            return False
        same_model = sidecar.get("model", {}).get("sha256") == model_source.get("sha256")
        if not (
            (out_dir / f"{stem}.png").is_file()
            and same_model
            and sidecar.get("options") == asdict(options)
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
            "mask": str(job.mask),
            "error": error,
            "time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
    )
    with open(out_dir / FAILURES, "a") as handle:
        handle.write(line + "\n")


def _record_every(schedule: JumpSchedule) -> int:
    return max(1, schedule.reverse_steps // FRAMES_PER_ANIMATION)


def _write_job(
    job: Job,
    result: InpaintResult,
    options: RunOptions,
    out_dir: Path,
    model_source: dict[str, Any],
    device: str,
    dtype: str,
    only_sample: int | None,
) -> list[Path]:
    written = []
    for sample, image in enumerate(result.images):
        if only_sample is not None and sample != only_sample:
            continue
        stem = output_name(job, sample, options.num_samples)
        path = out_dir / f"{stem}.png"
        write_image(np.asarray(image), path)
        sidecar = make_sidecar(
            result,
            options,
            model_source,
            sample=sample,
            name=job.name,
            output=path.name,
            inputs={"input": str(job.image.resolve()), "mask": str(job.mask.resolve())},
            device=device,
            dtype=dtype,
        )
        with atomic_output(out_dir / f"{stem}.json", "w") as handle:
            json.dump(sidecar, handle, indent=2)
        written.append(path)
    return written


def make_sidecar(
    result: InpaintResult,
    options: RunOptions,
    model_source: dict[str, Any],
    *,
    sample: int,
    name: str,
    output: str,
    inputs: dict[str, str],
    device: str,
    dtype: str,
) -> dict[str, Any]:
    """Everything that decided one output: inputs, model, schedule, sampler, seed, options."""
    return {
        "repaint_version": __version__,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **inputs,
        "name": name,
        "output": output,
        "sample": sample,
        "model": model_source,
        "schedule": result.schedule.params(),
        "sampler": "ddpm" if result.eta is None else f"ddim eta={result.eta:g}",
        "options": asdict(options),
        "fit": result.fit,
        "regions": len(result.windows),
        "device": device,
        "dtype": dtype,
        "model_evaluations": result.model_evaluations,
        "seconds": round(result.seconds, 3),
    }


def _write_grid(job: Job, result: InpaintResult, options: RunOptions, out_dir: Path) -> Path:
    original = load_rgb(job.image)
    keep = load_mask(job.mask, mode=options.mask_mode, size=(original.shape[1], original.shape[0]))
    if result.fit == "crop":  # the samples have the model's size; show the inputs likewise
        original = np.asarray(Image.fromarray(original).resize(result.images[0].size))
        keep = np.asarray(Image.fromarray(keep).resize(result.images[0].size, Image.NEAREST))
    masked = np.where(keep[..., None], original, np.uint8(128))
    panels = [Image.fromarray(original), Image.fromarray(masked), *result.images]
    labels = ["input", "masked", *[f"sample {k}" for k in range(len(result.images))]]
    path = out_dir / f"{job.name}_grid.png"
    write_image(np.asarray(comparison_grid(panels, labels)), path)
    return path


def read_sidecar(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise RepaintError(f"{path}: no such sidecar file") from None
    except (OSError, json.JSONDecodeError) as error:
        raise RepaintError(f"{path}: not a readable sidecar JSON ({error})") from None
    for key in ("input", "mask", "name", "sample", "model", "options"):
        if key not in data:
            raise RepaintError(f"{path}: sidecar key {key!r} is missing")
    return data
