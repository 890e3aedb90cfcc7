"""Study 3.5, diversity: K samples from K full runs against K branches of one shared run
(branching near the start, the middle and the end, and one large jump after branching):
the evaluations they cost, how far apart the K fills are, and their accuracy."""

from __future__ import annotations

import itertools
import time
from typing import Any

import numpy as np
import torch

from benchmarks.lib.metrics import classifier_features, train_classifier
from benchmarks.lib.progress import stderr_log
from repaint.datasets import load_digits
from repaint.device import derive_seed, make_generator
from repaint.io import from_uint8, to_uint8
from repaint.masks import generate_mask
from repaint.pixel import PixelInpainter
from repaint.presets import PRESETS
from repaint.samplers.repaint import branch_costs, continue_with, repaint, repaint_until
from repaint.schedule import JumpSchedule

DIVERSITY_KINDS = ("genhalf", "nn2", "ex64")  # large holes, where samples can differ
BRANCH_LEVELS = (45, 25, 5)  # near the start, the middle and the end of t_T=50
BRANCHES = 4


def diversity(
    inpainter: PixelInpainter, images: int, seed: int, scale: float
) -> list[dict[str, Any]]:
    """K full runs against K branches: cost, mean pairwise distance of the fills, accuracy."""
    prior, size = inpainter.prior, inpainter.image_size
    schedule = PRESETS["fast"].schedule
    if scale != 1:
        schedule = JumpSchedule(t_T=max(8, round(50 * scale)), jump_length=2, jump_n_sample=3)
    top = schedule.t_T - 1
    levels = sorted({min(top, max(1, round(level * schedule.t_T / 50))) for level in BRANCH_LEVELS})
    test_images, test_labels = load_digits("test", size)
    keep_list, truth, labels, seeds = [], [], [], []
    for kind in DIVERSITY_KINDS:
        rng = np.random.default_rng(derive_seed(seed, "mask", kind))
        for index in range(images):
            keep_list.append(generate_mask(kind, size, rng))
            truth.append(test_images[index])
            labels.append(test_labels[index])
            seeds.append(derive_seed(seed, kind, index))
    keep = np.stack(keep_list)
    image_t = torch.stack([from_uint8(image) for image in truth])
    keep_t = torch.from_numpy(keep)[:, None].float()
    classifier = train_classifier(size)
    diffusion = prior.diffusion(schedule.t_T)
    # "one large jump for a new suggestion, then small late jumps to harmonise" (3.5)
    far = min(top, 4 * levels[0])
    one_jump = JumpSchedule(
        t_T=schedule.t_T, jump_length=far, jump_n_sample=2, jump2_length=2, jump2_n_sample=2
    )
    settings = [("K full runs", None, schedule)]
    settings += [(f"K branches from level {level}", level, schedule) for level in reversed(levels)]
    settings.append(
        (
            f"K branches from level {levels[0]}: a jump of {far}, then jumps of 2",
            levels[0],
            one_jump,
        )
    )
    rows = []
    for name, level, rest in settings:
        started = time.perf_counter()
        common = {"clip_denoised": prior.clip_denoised}
        with torch.inference_mode():
            if level is None:
                fills = [
                    repaint(
                        prior.denoise,
                        diffusion,
                        image_t,
                        keep_t,
                        schedule,
                        **common,
                        generator=[make_generator(derive_seed(s, "run", k), "cpu") for s in seeds],
                    )
                    for k in range(BRANCHES)
                ]
            else:
                shared_gens = [make_generator(derive_seed(s, "shared"), "cpu") for s in seeds]
                shared = repaint_until(
                    prior.denoise,
                    diffusion,
                    image_t,
                    keep_t,
                    schedule,
                    level=level,
                    generator=shared_gens,
                    **common,
                )
                fills = []
                for k in range(BRANCHES):
                    gens = [make_generator(derive_seed(s, "branch", k), "cpu") for s in seeds]
                    branch = continue_with(shared, rest, [g.get_state() for g in gens])
                    fills.append(
                        repaint(
                            prior.denoise,
                            diffusion,
                            image_t,
                            keep_t,
                            branch.times,
                            generator=gens,
                            state=branch,
                            **common,
                        )
                    )
        outputs = np.stack([to_uint8(fill) for fill in fills])  # (K, items, S, S, 3)
        shared_cost, each = branch_costs(schedule, rest, level)
        fill = ~keep[..., None]
        distances = [
            np.sqrt(
                (((a.astype(float) - b) ** 2) * fill).sum((1, 2, 3)) / (3 * fill.sum((1, 2, 3)))
            )
            for a, b in itertools.combinations(outputs, 2)
        ]
        predicted = [classifier.predict(classifier_features(out)) for out in outputs]
        rows.append(
            {
                "setting": name,
                "branch_at": level,
                "evaluations": shared_cost + BRANCHES * each,
                "shared": shared_cost,
                "per_branch": each,
                "pairwise_rms": float(np.mean(distances)),
                "accuracy": float(np.mean([p == np.array(labels) for p in predicted])),
                "seconds": time.perf_counter() - started,
            }
        )
        stderr_log(
            f"diversity: {name}: {rows[-1]['evaluations']} evaluations, "
            f"distance {rows[-1]['pairwise_rms']:.1f}, accuracy {rows[-1]['accuracy']:.3f}"
        )
    return rows
