"""Running methods over the quality benchmark's items: held-out digits under the paper's
mask kinds, in batches that mix mask kinds, every diffusion method from the same x_T, each
method scored as soon as it is done."""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from benchmarks.lib.methods import (
    DIFFUSERS_ETA,
    METHODS,
    OPENCV_RADIUS,
    Method,
    build_methods,
    diffusers_repaint,
    opencv_inpaint,
)
from benchmarks.lib.metrics import (
    CLASSIFIER,
    classifier_features,
    format_score,
    score,
    train_classifier,
)
from benchmarks.lib.progress import Log, Progress, duration, measure_forward, stderr_log
from benchmarks.lib.quality_report import notes
from repaint.choices import MASK_KINDS
from repaint.datasets import load_digits
from repaint.device import derive_seed, make_generator
from repaint.errors import RepaintError
from repaint.inpainter import Inpainter
from repaint.io import from_uint8, to_uint8
from repaint.masks import generate_mask
from repaint.pixel import PixelInpainter
from repaint.prior import Prior, parse_dtype
from repaint.samplers.common import Step
from repaint.samplers.repaint import repaint
from repaint.schedule import JumpSchedule

DEFAULT_BATCH = 64  # the fastest per image on the development machine (docs/performance.md)
SAMPLER_OVERHEAD = 1.0  # wall time of a sampler step over the bare forward pass (measured)


@dataclass
class Benchmark:
    report: dict[str, Any]
    truth: np.ndarray  # uint8 (items, S, S, 3)
    keep: np.ndarray  # bool (items, S, S)
    kinds: list[str]  # mask kind of each item
    outputs: dict[str, np.ndarray] = field(default_factory=dict)  # method -> uint8 like truth


def chunks(count: int, batch_size: int) -> list[range]:
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
    log: Log = stderr_log,
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
    batches = chunks(items, batch_size)

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
    log(f"estimated time: ~{duration(estimate)} for {sum(work.values()):,} image-evaluations")
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
        "notes": notes(chosen, diffusion_steps, images, len(kinds)),
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
            outputs[method.name] = opencv_inpaint(truth, keep, method.name)
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
            f"{method.name}: {duration(seconds)}; accuracy/PSNR/SSIM "
            + ", ".join(f"{k} {format_score(v)}" for k, v in rows[method.name]["per_kind"].items())
        )
        report["timing"]["run_seconds"] = time.perf_counter() - bench_started
        if on_method is not None and method is not chosen[-1]:
            on_method(report)
    report["timing"]["run_seconds"] = time.perf_counter() - bench_started
    report["complete"] = True
    return Benchmark(report, truth, keep, item_kinds, outputs)


def _sample(
    prior: Prior,
    method: Method,
    image: Tensor,
    keep: Tensor,
    generators: list[torch.Generator],
    progress: Progress,
    label: str,
) -> np.ndarray:
    """One batch through our sampler or diffusers' loop, counting every evaluation."""
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
