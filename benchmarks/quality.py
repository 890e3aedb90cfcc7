"""Inpainting quality on held-out digits: RePaint, its ablations, diffusers and OpenCV.

    python benchmarks/quality.py --quick                 # every method, 2 images (~8 min)
    python benchmarks/quality.py                         # every method, 22 images (~71 min)
    python benchmarks/quality.py --model runs/digits/model.safetensors --images 8 --out /tmp/q

The first images of the `digits` test split (index % 6 == 0, never seen by the model) are
masked with each of the paper's six mask kinds, generated at the model's size from a fixed
seed, and filled by every method. For every method and mask kind the benchmark reports:

- semantic accuracy: the share of filled images that a digit classifier trained only on the
  training split (an RBF SVC on the grey image average-pooled to 8x8) assigns their true
  label; its accuracy on the clean images is the ceiling;
- PSNR over the filled pixels and SSIM (Gaussian window, sigma 1.5, skimage) averaged over
  the filled pixels, both against the ground truth;
- model evaluations and wall time per image.

Every diffusion method uses the same per-item generators (`derive_seed(seed, kind, index)`),
so all of them start from the same x_T. Items are batched across mask kinds; the time per
image is the batch's wall time over its size.

Cost (measured on the 2-core development machine, 2 torch threads, fp32, nothing else
running). The `digits` UNet (1.9 M parameters, 0.83 GFLOP per 32 px image) takes, per forward
pass: batch 6: 41 ms (6.8 ms/image), 12: 66 ms (5.5), 24: 120 ms (5.0), 32: 168 ms (5.3),
48: 233 ms (4.8), 64: 310 ms (4.8), 96: 580 ms (6.0), 128: 970 ms (7.6); hence batches of at
most 64. A whole sampler step costs about one forward pass: a 12-image run at batches of 24
took 4.4-4.9 ms per image and evaluation for every diffusion method, diffusers' loop
included (43.8 min for all methods, estimated 44.8 at its start). All methods together take
6,370 model evaluations per (image, mask) item (paper 2,410 + diffusers 2,410 + slowing-down
1,000 + fast 210 + no-resampling 250 + draft 90), ~32 s per item, ~3.2 min per image:

- full run, 22 images x 6 kinds = 132 items in 3 batches of 44:
  132 x 6,370 x 5.0 ms = ~70 min, plus ~1 min of set-up and scoring;
- `--quick`, 2 images x 6 kinds = 12 items in one batch of 12:
  12 x 6,370 x 5.5 ms = ~7.0 min, plus ~20 s.

The script measures the forward pass before it starts and prints its own estimate, then a
running ETA. Anything else using the CPU makes it several times slower (two processes with
two torch threads each on two cores); `--threads 1` limits the damage when it must share.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import importlib
import itertools
import json
import math
import os
import platform
import shlex
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repaint.choices import DEFAULT_MODEL, MASK_KINDS
from repaint.datasets import load_digits
from repaint.device import derive_seed, make_generator
from repaint.errors import RepaintError
from repaint.inpainter import Inpainter
from repaint.io import atomic_output, from_uint8, to_uint8
from repaint.loading import load_inpainter
from repaint.masks import generate_mask
from repaint.pixel import PixelInpainter
from repaint.presets import PRESETS
from repaint.prior import Prior, parse_dtype
from repaint.sampler import Step, repaint
from repaint.schedule import JumpSchedule

FULL_IMAGES = 22
QUICK_IMAGES = 2
DEFAULT_BATCH = 64  # the fastest per image on 2 cores (see Cost above)
OPENCV_RADIUS = 3
DIFFUSERS_ETA = 1.0  # DDPM ancestral sampling, as in the paper (diffusers' own default is 0)
CLASSIFIER = "SVC (RBF, C=1, gamma='scale') on the grey image average-pooled to 8x8"
SAMPLER_OVERHEAD = 1.0  # wall time of a sampler step over the bare forward pass (measured)

METHODS = (
    "repaint-paper",
    "no-resampling",
    "slowing-down",
    "repaint-fast",
    "repaint-draft",
    "diffusers-repaint",
    "opencv-telea",
    "opencv-ns",
    "masked-input",
)
DIFFUSION_METHODS = METHODS[:6]
REQUIREMENTS = {  # import name -> pip name
    "sklearn": "scikit-learn",
    "skimage": "scikit-image",
    "matplotlib": "matplotlib",
    "cv2": "opencv-python-headless",
    "diffusers": "diffusers",
}

Log = Callable[[str], None]


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- methods


@dataclass(frozen=True)
class Method:
    name: str
    family: str  # "repaint" (our sampler), "diffusers", "opencv" or "reference"
    description: str
    schedule: JumpSchedule | None = None
    eta: float | None = None  # our sampler: None = ancestral DDPM steps, a number = DDIM

    @property
    def evaluations(self) -> int:
        return self.schedule.reverse_steps if self.schedule is not None else 0


def scaled(schedule: JumpSchedule, factor: float) -> JumpSchedule:
    """A shorter schedule of the same shape, for smoke tests (`--schedule-scale`)."""
    return dataclasses.replace(
        schedule,
        t_T=max(2, round(schedule.t_T * factor)),
        jump_length=max(1, round(schedule.jump_length * factor)),
    )


def build_methods(
    names: Sequence[str] = METHODS,
    *,
    diffusion_steps: int = 1000,
    schedules: Mapping[str, JumpSchedule] | None = None,
    schedule_scale: float = 1.0,
) -> list[Method]:
    """The methods to run, in table order. `schedules` overrides a method's schedule by name
    (`repaint-paper` also sets the schedule of `diffusers-repaint` and the length of
    `slowing-down`); `schedule_scale` < 1 shortens them all."""
    unknown = sorted(set(names) - set(METHODS))
    if unknown:
        raise RepaintError(f"--methods: unknown method(s) {', '.join(unknown)}")
    overrides = dict(schedules or {})

    def pick(name: str, default: JumpSchedule) -> JumpSchedule:
        schedule = overrides.get(name, default)
        return scaled(schedule, schedule_scale) if schedule_scale != 1 else schedule

    paper = pick("repaint-paper", PRESETS["paper"].schedule)
    # As many plain steps as the paper schedule has evaluations, capped by the training steps.
    slow_default = JumpSchedule(
        t_T=min(paper.reverse_steps, diffusion_steps),
        jump_length=paper.jump_length,
        jump_n_sample=1,
    )
    slow = overrides.get("slowing-down", slow_default)
    catalogue = {
        "repaint-paper": Method(
            "repaint-paper", "repaint", "RePaint, the paper's schedule (our sampler)", paper
        ),
        "no-resampling": Method(
            "no-resampling",
            "repaint",
            "the paper's schedule without resampling (r = 1)",
            pick("no-resampling", dataclasses.replace(PRESETS["paper"].schedule, jump_n_sample=1)),
        ),
        "slowing-down": Method(
            "slowing-down",
            "repaint",
            "no resampling, with as many steps as the paper has evaluations (capped)",
            slow,
        ),
        "repaint-fast": Method(
            "repaint-fast",
            "repaint",
            "RePaint, preset `fast`",
            pick("repaint-fast", PRESETS["fast"].schedule),
            PRESETS["fast"].eta,
        ),
        "repaint-draft": Method(
            "repaint-draft",
            "repaint",
            "RePaint, preset `draft`",
            pick("repaint-draft", PRESETS["draft"].schedule),
            PRESETS["draft"].eta,
        ),
        "diffusers-repaint": Method(
            "diffusers-repaint",
            "diffusers",
            f"diffusers RePaintScheduler (eta={DIFFUSERS_ETA:g}) driving our model",
            paper,
        ),
        "opencv-telea": Method(
            "opencv-telea", "opencv", f"cv2.inpaint, INPAINT_TELEA, radius {OPENCV_RADIUS}"
        ),
        "opencv-ns": Method(
            "opencv-ns", "opencv", f"cv2.inpaint, INPAINT_NS, radius {OPENCV_RADIUS}"
        ),
        "masked-input": Method(
            "masked-input", "reference", "floor: the fill region left black (background)"
        ),
    }
    return [catalogue[name] for name in METHODS if name in names]


# --------------------------------------------------------------------------- samplers


def _diffusers_scheduler(config: Mapping[str, Any]):
    """A RePaintScheduler with our model's betas."""
    from diffusers import RePaintScheduler

    from repaint.diffusion import named_betas

    steps = int(config.get("diffusion_steps", 1000))
    schedule = config.get("noise_schedule", "linear")
    if schedule == "linear":  # our linear betas keep the 1e-4..0.02 range at 1,000 steps
        scale = 1000 / steps
        return RePaintScheduler(
            num_train_timesteps=steps,
            beta_start=scale * 1e-4,
            beta_end=scale * 0.02,
            beta_schedule="linear",
            eta=DIFFUSERS_ETA,
            clip_sample=True,
        )
    return RePaintScheduler(
        num_train_timesteps=steps,
        trained_betas=named_betas(schedule, steps),
        eta=DIFFUSERS_ETA,
        clip_sample=True,
    )


def diffusers_repaint(
    denoise: Callable[[Tensor, Tensor, Tensor | None], Tensor],
    config: Mapping[str, Any],
    image: Tensor,
    keep: Tensor,
    schedule: JumpSchedule,
    generators: list[torch.Generator],
    callback: Callable[[int, int], None] | None = None,
) -> Tensor:
    """diffusers' RePaintPipeline loop (`step` / `undo_step`) with our network's epsilon.

    The network gets the scheduler's original timesteps; mask 1 = keep as in diffusers.
    One generator per item, passed as a list, so every item's noise is its own.
    """
    from diffusers.utils.torch_utils import randn_tensor

    if config.get("predict_xstart", False):
        raise RepaintError("diffusers-repaint needs an epsilon-predicting model")
    scheduler = _diffusers_scheduler(config)
    scheduler.set_timesteps(
        schedule.t_T, schedule.jump_length, schedule.jump_n_sample, device=image.device
    )
    timesteps = scheduler.timesteps
    total = int(sum(1 for i, t in enumerate(timesteps) if i == 0 or t < timesteps[i - 1]))
    x = randn_tensor(image.shape, generator=generators, device=image.device, dtype=image.dtype)
    t_last = timesteps[0] + 1
    done = 0
    for t in timesteps:
        if t < t_last:
            epsilon = denoise(x, t.expand(x.shape[0]), None)[:, :3]
            x = scheduler.step(epsilon, t, x, image, keep, generator=generators).prev_sample
            done += 1
            if callback is not None:
                callback(done, total)
        else:
            x = scheduler.undo_step(x, t_last, generator=generators)
        t_last = t
    return x


def opencv_inpaint(images: np.ndarray, keeps: np.ndarray, flag: int) -> np.ndarray:
    import cv2

    return np.stack(
        [
            cv2.inpaint(image, (~keep).astype(np.uint8) * 255, OPENCV_RADIUS, flag)
            for image, keep in zip(images, keeps, strict=True)
        ]
    )


def measure_forward(prior: Prior, batch: int, repeats: int = 2) -> float:
    """Seconds of one forward pass of a batch (after a warm-up pass)."""
    size = prior.image_size
    x = torch.randn(batch, 3, size, size, device=prior.device)
    t = torch.full((batch,), 500, device=prior.device)
    with torch.inference_mode():
        prior.denoise(x, t, None)
        started = time.perf_counter()
        for _ in range(repeats):
            prior.denoise(x, t, None)
    return (time.perf_counter() - started) / repeats


# --------------------------------------------------------------------------- metrics


def _grey(images: np.ndarray) -> np.ndarray:
    return images[..., :3].astype(np.float64).mean(axis=-1) / 255


def classifier_features(images: np.ndarray) -> np.ndarray:
    """uint8 (N, S, S, 3) -> the grey image average-pooled to 8x8, (N, 64)."""
    grey = _grey(images)
    n, size = grey.shape[0], grey.shape[1]
    if size % 8:
        raise RepaintError(f"the classifier needs an image size divisible by 8, got {size}")
    step = size // 8
    return grey.reshape(n, 8, step, 8, step).mean(axis=(2, 4)).reshape(n, 64)


def train_classifier(size: int):
    from sklearn.svm import SVC

    images, labels = load_digits("train", size)
    return SVC(C=1.0, gamma="scale").fit(classifier_features(images), labels)


def fill_psnr(truth: np.ndarray, output: np.ndarray, keep: np.ndarray) -> float:
    """PSNR (dB, peak 255) over the filled pixels of one image; NaN if nothing was filled."""
    fill = ~keep
    if not fill.any():
        return math.nan
    error = truth[fill].astype(np.float64) - output[fill].astype(np.float64)
    mse = float(np.mean(error**2))
    return 10 * math.log10(255**2 / max(mse, 1e-10))


def fill_ssim(truth: np.ndarray, output: np.ndarray, keep: np.ndarray) -> float:
    """The SSIM map of the whole image (Gaussian window, sigma 1.5) averaged over the
    filled pixels of one image; NaN if nothing was filled."""
    from skimage.metrics import structural_similarity

    fill = ~keep
    if not fill.any():
        return math.nan
    _, ssim_map = structural_similarity(
        truth,
        output,
        channel_axis=-1,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        full=True,
    )
    return float(ssim_map[fill].mean())


# --------------------------------------------------------------------------- progress


class Progress:
    """Work is counted in image-evaluations; logs at most every `every` seconds."""

    def __init__(self, total: float, estimate_s: float, log: Log, every: float = 60) -> None:
        self.total, self.estimate_s, self.log, self.every = total, estimate_s, log, every
        self.done = 0.0
        self.started = time.perf_counter()
        self.last = self.started

    def remaining_s(self) -> float:
        elapsed = time.perf_counter() - self.started
        if self.done <= 0 or elapsed < 5:
            return self.estimate_s * (1 - self.done / max(self.total, 1))
        return elapsed / self.done * (self.total - self.done)

    def advance(self, units: float, label: str, force: bool = False) -> None:
        self.done += units
        now = time.perf_counter()
        if force or now - self.last >= self.every:
            self.last = now
            share = self.done / max(self.total, 1)
            self.log(
                f"  {label} | {share:.0%} of all work, {_duration(now - self.started)} elapsed, "
                f"~{_duration(self.remaining_s())} left"
            )


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


# --------------------------------------------------------------------------- benchmark


@dataclass
class Benchmark:
    report: dict[str, Any]
    truth: np.ndarray  # uint8 (items, S, S, 3)
    keep: np.ndarray  # bool (items, S, S)
    kinds: list[str]  # mask kind of each item
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # method -> uint8 like truth


def _chunks(count: int, batch_size: int) -> list[range]:
    """`count` items in the fewest batches of at most `batch_size`, sizes as even as can be."""
    batches = max(1, math.ceil(count / max(batch_size, 1)))
    edges = np.linspace(0, count, batches + 1).round().astype(int)
    return [range(a, b) for a, b in itertools.pairwise(edges.tolist()) if b > a]


def run_benchmark(
    inpainter: Inpainter,
    *,
    images: int,
    kinds: Sequence[str] = MASK_KINDS,
    seed: int = 0,
    methods: Sequence[str] = METHODS,
    schedules: Mapping[str, JumpSchedule] | None = None,
    schedule_scale: float = 1.0,
    extra_methods: Sequence[Method] = (),
    batch_size: int = DEFAULT_BATCH,
    log: Log = _stderr,
    log_every: float = 60,
    on_method: Callable[[dict[str, Any]], None] | None = None,
) -> Benchmark:
    """Fill the first `images` test digits under every mask kind with every method.

    `extra_methods` (our sampler with other schedules or `eta`) run after the named ones.
    `on_method` gets the partial report (`complete` false) after every method but the last.
    """
    if not isinstance(inpainter, PixelInpainter):
        raise RepaintError(
            f"model {inpainter.name}: the benchmark needs a pixel-space model (a checkpoint "
            "or a diffusers UNet2DModel), not a latent one"
        )
    prior = inpainter.prior
    if prior.class_cond:
        raise RepaintError("the benchmark needs an unconditional model (labels would leak)")
    size = inpainter.image_size
    test_images, test_labels = load_digits("test", size)
    if not 1 <= images <= len(test_images):
        raise RepaintError(f"--images must be in [1, {len(test_images)}], got {images}")
    diffusion_steps = prior.diffusion_steps
    chosen = build_methods(
        methods, diffusion_steps=diffusion_steps, schedules=schedules, schedule_scale=schedule_scale
    ) + list(extra_methods)

    log(f"training the digit classifier ({CLASSIFIER}) on the training split")
    classifier = train_classifier(size)
    clean_all = float(np.mean(classifier.predict(classifier_features(test_images)) == test_labels))
    truth_images, truth_labels = test_images[:images], test_labels[:images]
    clean = float(np.mean(classifier.predict(classifier_features(truth_images)) == truth_labels))
    log(f"clean accuracy: {clean:.3f} on the {images} images ({clean_all:.3f} on all test images)")

    # Items: every mask kind x every image, kind-major; masks from a fixed seed per kind.
    keep_list, item_kinds, item_index = [], [], []
    for kind in kinds:
        rng = np.random.default_rng(derive_seed(seed, "mask", kind))
        for index in range(images):
            keep_list.append(generate_mask(kind, size, rng))
            item_kinds.append(kind)
            item_index.append(index)
    keep = np.stack(keep_list)
    truth = np.stack([truth_images[i] for i in item_index])
    labels = np.array([truth_labels[i] for i in item_index])
    seeds = [derive_seed(seed, kind, i) for kind, i in zip(item_kinds, item_index, strict=True)]
    items = len(item_kinds)
    batches = _chunks(items, batch_size)

    # ETA from a measured forward pass of the largest batch.
    largest = max(len(b) for b in batches)
    forward_s = measure_forward(prior, largest)
    per_unit = forward_s / largest * SAMPLER_OVERHEAD
    work = {m.name: m.evaluations * items for m in chosen}
    estimate = sum(work.values()) * per_unit
    log(
        f"{images} images x {len(kinds)} mask kinds = {items} items in {len(batches)} batch(es) "
        f"of <= {largest}; forward pass of {largest}: {forward_s:.3f} s "
        f"({forward_s / largest * 1000:.2f} ms per image)"
    )
    log(f"estimated time: ~{_duration(estimate)} for {sum(work.values()):,} image-evaluations")
    progress = Progress(sum(work.values()), estimate, log, log_every)

    image_t = torch.stack([from_uint8(image) for image in truth]).to(inpainter.device)
    keep_t = torch.from_numpy(keep)[:, None].float().to(inpainter.device)
    outputs: dict[str, np.ndarray] = {}
    rows: dict[str, Any] = {}
    report = {
        "benchmark": "quality",
        "settings": {
            "model": inpainter.name,
            "checkpoint": None if inpainter.checkpoint is None else str(inpainter.checkpoint),
            "sha256": inpainter.sha256,
            "model_config": {k: v for k, v in prior.config.items() if k != "trained"},
            "device": str(inpainter.device),
            "dtype": str(parse_dtype(inpainter.loaded_as["dtype"])).removeprefix("torch."),
            "image_size": size,
            "images": images,
            "test_images": "the first N of the digits test split (index % 6 == 0)",
            "mask_kinds": list(kinds),
            "mask_seed": "numpy default_rng(derive_seed(seed, 'mask', kind)), one mask per image",
            "sample_seed": "derive_seed(seed, kind, index), the same for every diffusion method",
            "seed": seed,
            "batch_size": batch_size,
            "batches": [len(b) for b in batches],
            "schedule_scale": schedule_scale,
            "opencv_radius": OPENCV_RADIUS,
            "diffusers_eta": DIFFUSERS_ETA,
        },
        "classifier": {
            "description": CLASSIFIER,
            "trained_on": "digits training split (index % 6 != 0)",
            "clean_accuracy": clean,
            "clean_accuracy_test_split": clean_all,
            "test_split_images": len(test_images),
        },
        "mask_fill_fraction": {
            kind: float((~keep[np.array(item_kinds) == kind]).mean()) for kind in kinds
        },
        "methods": rows,
        "complete": False,
        "timing": {
            "forward_batch": largest,
            "forward_seconds": forward_s,
            "forward_ms_per_image": forward_s / largest * 1000,
            "estimated_seconds": estimate,
            "run_seconds": 0.0,
        },
        "notes": _notes(chosen, diffusion_steps, images, len(kinds)),
    }
    bench_started = time.perf_counter()
    for method in chosen:
        log(f"{method.name}: {method.description}, {method.evaluations} evaluations per image")
        started = time.perf_counter()
        if method.family in ("repaint", "diffusers"):
            results = []
            for number, batch in enumerate(batches, start=1):
                part = slice(batch.start, batch.stop)
                batch_kinds = ",".join(dict.fromkeys(item_kinds[part]))
                label = f"{method.name} batch {number}/{len(batches)} [{batch_kinds}]"
                generators = [make_generator(seeds[i], inpainter.device) for i in batch]
                results.append(
                    _sample(prior, method, image_t[part], keep_t[part], generators, progress, label)
                )
                progress.advance(0, f"{label} done", force=True)
            outputs[method.name] = np.concatenate(results)
        elif method.family == "opencv":
            import cv2

            flag = cv2.INPAINT_TELEA if method.name == "opencv-telea" else cv2.INPAINT_NS
            outputs[method.name] = opencv_inpaint(truth, keep, flag)
        else:  # masked-input
            outputs[method.name] = np.where(keep[..., None], truth, 0).astype(np.uint8)
        seconds = time.perf_counter() - started
        rows[method.name] = {
            "description": method.description,
            "family": method.family,
            "schedule": None if method.schedule is None else method.schedule.params(),
            "eta": method.eta,
            "evaluations_per_image": method.evaluations,
            "seconds": seconds,
            "seconds_per_image": seconds / items,
            **score(outputs[method.name], truth, keep, labels, item_kinds, kinds, classifier),
        }
        log(
            f"{method.name}: {_duration(seconds)}; accuracy/PSNR/SSIM "
            + ", ".join(f"{k} {_cell(v)}" for k, v in rows[method.name]["per_kind"].items())
        )
        report["timing"]["run_seconds"] = time.perf_counter() - bench_started
        if on_method is not None and method is not chosen[-1]:
            on_method(report)
    report["timing"]["run_seconds"] = time.perf_counter() - bench_started
    report["complete"] = True
    return Benchmark(report, truth, keep, item_kinds, outputs)


def score(
    output: np.ndarray,
    truth: np.ndarray,
    keep: np.ndarray,
    labels: np.ndarray,
    item_kinds: Sequence[str],
    kinds: Sequence[str],
    classifier,
) -> dict[str, Any]:
    """Accuracy, fill PSNR and fill SSIM per mask kind and pooled over all items."""
    correct = classifier.predict(classifier_features(output)) == labels
    psnr = np.array([fill_psnr(t, o, k) for t, o, k in zip(truth, output, keep, strict=True)])
    ssim = np.array([fill_ssim(t, o, k) for t, o, k in zip(truth, output, keep, strict=True)])
    kinds_arr = np.array(item_kinds)
    per_kind = {}
    for kind in kinds:
        select = kinds_arr == kind
        per_kind[kind] = {
            "accuracy": float(correct[select].mean()),
            "psnr": _nanmean(psnr[select]),
            "ssim": _nanmean(ssim[select]),
            "images": int(select.sum()),
        }
    pooled = {"accuracy": float(correct.mean()), "psnr": _nanmean(psnr), "ssim": _nanmean(ssim)}
    return {"per_kind": per_kind, "mean": pooled}


def _sample(
    prior: Prior,
    method: Method,
    image: Tensor,
    keep: Tensor,
    generators: list[torch.Generator],
    progress: Progress,
    label: str,
) -> np.ndarray:
    size = image.shape[0]
    schedule = method.schedule
    assert schedule is not None
    with torch.inference_mode():
        if method.family == "repaint":

            def on_step(step: Step) -> None:
                progress.advance(size, f"{label} evaluation {step.index + 1}/{step.total}")

            samples = repaint(
                prior.denoise,
                prior.diffusion(schedule.t_T),
                image,
                keep,
                schedule,
                generator=generators,
                eta=method.eta,
                clip_denoised=prior.clip_denoised,
                callback=on_step,
            )
        else:

            def on_eval(done: int, total: int) -> None:
                progress.advance(size, f"{label} evaluation {done}/{total}")

            samples = diffusers_repaint(
                prior.denoise, prior.config, image, keep, schedule, generators, on_eval
            )
    return to_uint8(samples)


def _nanmean(values: np.ndarray) -> float | None:
    finite = values[np.isfinite(values)]
    return float(finite.mean()) if finite.size else None


def _notes(methods: Sequence[Method], diffusion_steps: int, images: int, kinds: int) -> list[str]:
    names = {m.name: m for m in methods}
    notes = [
        "Accuracy: share of filled images the classifier labels correctly; PSNR (dB) over the "
        "filled pixels; SSIM: the SSIM map (Gaussian window, sigma 1.5) averaged over the "
        "filled pixels. Means over images; the mean column pools all mask kinds.",
        "s/image: wall time of a method's batches over the number of (image, mask) items, on "
        "the machine above; the batches mix mask kinds.",
        f"Small samples: each accuracy cell counts {images} image(s), so one image moves it by "
        f"{1 / images:.2f}; the mean column pools {images * kinds} items.",
    ]
    if "slowing-down" in names:
        slow = names["slowing-down"].schedule
        paper = names.get("repaint-paper")
        wanted = paper.evaluations if paper is not None else PRESETS["paper"].schedule.reverse_steps
        assert slow is not None
        if slow.t_T < wanted:
            notes.append(
                f"slowing-down: the paper's ablation gives plain sampling as many steps as "
                f"RePaint has evaluations ({wanted}); the model was trained with "
                f"{diffusion_steps} diffusion steps, so it is capped at t_T={slow.t_T}."
            )
        else:
            notes.append(f"slowing-down: plain sampling with t_T={slow.t_T}.")
    if "diffusers-repaint" in names:
        notes.append(
            "diffusers-repaint: diffusers' RePaintScheduler with the same betas, its own "
            "time steps (multiples of 4) and its own step/undo_step loop, fed our network's "
            f"epsilon; eta={DIFFUSERS_ETA:g} (DDPM, its fixed posterior variance, not our "
            "learned one); known and unknown regions share one noise draw per step, as in "
            "diffusers. Same x_T as the other diffusion methods."
        )
    if "masked-input" in names:
        notes.append(
            "masked-input is a floor, not a method: the classifier on the image with the fill "
            "region left black (the background colour of the digits)."
        )
    return notes


# --------------------------------------------------------------------------- outputs


def _cell(row: Mapping[str, Any]) -> str:
    psnr = "-" if row["psnr"] is None else f"{row['psnr']:.1f}"
    ssim = "-" if row["ssim"] is None else f"{row['ssim']:.3f}"
    return f"{row['accuracy']:.2f} / {psnr} / {ssim}"


def render_markdown(report: Mapping[str, Any]) -> str:
    settings, classifier = report["settings"], report["classifier"]
    kinds = settings["mask_kinds"]
    machine = report["machine"]
    fills = report["mask_fill_fraction"]
    lines = [
        "# Inpainting quality on held-out digits",
        "",
        f"Command: `{report['command']}`",
        "",
        *(
            []
            if report.get("complete", True)
            else [f"**Partial results**: {len(report['methods'])} methods done so far.", ""]
        ),
        f"{report['date']}; {machine['cpu_count']} CPUs ({machine['processor']}), "
        f"torch {machine['torch']} ({machine['torch_threads']} threads), "
        f"device {settings['device']}, {settings['dtype']}; model `{settings['model']}`"
        + (f" (sha256 {settings['sha256'][:12]})" if settings.get("sha256") else "")
        + ".",
        "",
        f"{settings['images']} held-out test digits (never seen in training) x "
        f"{len(kinds)} mask kinds at {settings['image_size']} px, seed {settings['seed']}. "
        "Each cell: **semantic accuracy / PSNR (dB) / SSIM**, PSNR and SSIM over the filled "
        "pixels only.",
        "",
        f"Classifier: {classifier['description']}, trained on the training split only. "
        f"Clean accuracy (the ceiling): **{classifier['clean_accuracy']:.3f}** on these "
        f"{settings['images']} images, {classifier['clean_accuracy_test_split']:.3f} on all "
        f"{classifier['test_split_images']} test images.",
        "",
        "| method | evals/image | s/image | "
        + " | ".join(f"{k} ({fills[k]:.0%} filled)" for k in kinds)
        + " | mean acc |",
        "|---|---:|---:|" + "---:|" * len(kinds) + "---:|",
    ]
    for name, row in report["methods"].items():
        cells = [_cell(row["per_kind"][k]) for k in kinds]
        lines.append(
            f"| {name} | {row['evaluations_per_image']:,} | {row['seconds_per_image']:.2f} | "
            + " | ".join(cells)
            + f" | {row['mean']['accuracy']:.3f} |"
        )
    timing = report["timing"]
    lines += [
        "",
        f"Forward pass: {timing['forward_ms_per_image']:.2f} ms per image at a batch of "
        f"{timing['forward_batch']}. All methods with scoring took "
        f"{_duration(timing['run_seconds'])}; the estimate at the start was "
        f"{_duration(timing['estimated_seconds'])}.",
        "",
        "Notes:",
        "",
        *[f"- {note}" for note in report["notes"]],
        "",
        "Methods:",
        "",
        *[f"- `{name}`: {row['description']}" for name, row in report["methods"].items()],
        "",
    ]
    return "\n".join(lines)


def render_plot(report: Mapping[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kinds = report["settings"]["mask_kinds"]
    rows = report["methods"]
    ceiling = report["classifier"]["clean_accuracy"]
    fig, (bars, cost) = plt.subplots(
        1, 2, figsize=(14, 5.4), gridspec_kw={"width_ratios": [2.2, 1]}
    )
    width = 0.8 / max(len(rows), 1)
    positions = np.arange(len(kinds))
    colours = plt.get_cmap("tab10")
    for number, (name, row) in enumerate(rows.items()):
        values = [row["per_kind"][k]["accuracy"] for k in kinds]
        bars.bar(
            positions + (number - (len(rows) - 1) / 2) * width,
            values,
            width,
            label=name,
            color=colours(number % 10),
        )
    bars.axhline(ceiling, color="black", linestyle="--", linewidth=1, label="clean (ceiling)")
    bars.set_xticks(positions, kinds)
    bars.set_ylim(0, 1.05)
    bars.set_ylabel("semantic accuracy")
    bars.set_title(
        f"Digit classifier accuracy on filled images ({report['settings']['images']} per kind)"
    )
    bars.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.08))

    markers = {"repaint": ("o", 45), "diffusers": ("x", 90)}
    for number, (name, row) in enumerate(rows.items()):
        accuracy = row["mean"]["accuracy"]
        if row["evaluations_per_image"] > 0:
            marker, area = markers.get(row["family"], ("s", 45))
            cost.scatter(
                row["evaluations_per_image"],
                accuracy,
                color=colours(number % 10),
                marker=marker,
                s=area,
                linewidths=2,
                label=name,
                zorder=3,
            )
        else:
            cost.axhline(accuracy, color=colours(number % 10), linestyle=":", label=name)
    cost.axhline(ceiling, color="black", linestyle="--", linewidth=1, label="clean (ceiling)")
    cost.set_xscale("log")
    cost.set_xlabel("model evaluations per image")
    cost.set_ylabel("mean semantic accuracy (all mask kinds)")
    cost.set_ylim(0, 1.05)
    cost.set_title("Accuracy against cost")
    cost.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    with atomic_output(path) as handle:
        fig.savefig(handle, format="png", dpi=110)
    plt.close(fig)


def machine_info(inpainter: Inpainter | None = None) -> dict[str, Any]:
    versions = {}
    for module in ("numpy", "sklearn", "skimage", "cv2", "diffusers", "matplotlib"):
        try:
            versions[module] = importlib.import_module(module).__version__
        except (ImportError, AttributeError):
            versions[module] = None
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "packages": versions,
    }


def write_outputs(report: dict[str, Any], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "quality.json", out / "quality.md", out / "quality.png"]
    with atomic_output(paths[0], "w") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    with atomic_output(paths[1], "w") as handle:
        handle.write(render_markdown(report))
    render_plot(report, paths[2])
    return paths


# --------------------------------------------------------------------------- command line


def missing_requirements(methods: Sequence[str]) -> list[str]:
    """pip names of the packages the chosen methods need that are not installed."""
    needed = ["sklearn", "skimage", "matplotlib"]
    if any(name.startswith("opencv") for name in methods):
        needed.append("cv2")
    if "diffusers-repaint" in methods:
        needed.append("diffusers")
    missing = []
    for module in needed:
        try:
            importlib.import_module(module)
        except ImportError:
            missing.append(REQUIREMENTS[module])
    return missing


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/quality.py",
        description="Inpainting quality of RePaint, its ablations, diffusers and OpenCV on "
        "held-out digits (see the module docstring for the cost).",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_IMAGES} images instead of {FULL_IMAGES}"
    )
    parser.add_argument("--out", type=Path, default=Path("docs"), help="output folder (docs/)")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="registered model name or checkpoint path"
    )
    parser.add_argument("--images", type=int, help="test images per mask kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    parser.add_argument(
        "--methods", default=",".join(METHODS), help="comma-separated subset (default: all)"
    )
    parser.add_argument(
        "--kinds", default=",".join(MASK_KINDS), help="comma-separated mask kinds (default: all)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--schedule-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    kinds = [k for k in args.kinds.split(",") if k]
    missing = missing_requirements(methods)
    if missing:
        print(
            f"quality benchmark: missing {', '.join(missing)}; "
            "install with: pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2
    images = args.images or (QUICK_IMAGES if args.quick else FULL_IMAGES)
    command = shlex.join(
        ["python", "benchmarks/quality.py", *(sys.argv[1:] if argv is None else argv)]
    )
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        unknown = sorted(set(kinds) - set(MASK_KINDS))
        if unknown:
            raise RepaintError(f"--kinds: unknown mask kind(s) {', '.join(unknown)}")
        inpainter = load_inpainter(args.model, device=args.device)
        _stderr(f"model {inpainter.name} ({inpainter.checkpoint}) on {inpainter.device}")
        header = {
            "command": command,
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "machine": machine_info(),
        }

        def save_partial(partial: dict[str, Any]) -> None:
            write_outputs({**header, **partial}, args.out)
            _stderr(f"partial results ({len(partial['methods'])} methods) in {args.out}")

        benchmark = run_benchmark(
            inpainter,
            images=images,
            kinds=kinds,
            seed=args.seed,
            methods=methods,
            schedule_scale=args.schedule_scale,
            batch_size=args.batch_size,
            on_method=save_partial,
        )
    except RepaintError as error:
        print(f"quality benchmark: {error}", file=sys.stderr)
        return 2
    finished = datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")
    report = {**header, "finished": finished, **benchmark.report}
    for path in write_outputs(report, args.out):
        _stderr(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
