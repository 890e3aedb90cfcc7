"""`repaint run --conf CONF.yml`: the reference's `test.py`, end to end.

Reads a reference-format config, builds the guided-diffusion model (and classifier), lists
the `data.eval` images and masks, inpaints them batch by batch and writes the reference's
four output folders. With a seed, all randomness comes from one generator in the
reference's order (random class labels of a batch, then that batch's RePaint draws), which
is what reproduces the golden vectors.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm.auto import tqdm

from repaint.accel import PLAIN, Acceleration
from repaint.config import load_reference_config
from repaint.device import derive_seed, make_generator, new_seed, resolve_device
from repaint.distributed import Context
from repaint.errors import RepaintError
from repaint.io import (
    center_crop_resize,
    check_output_folder,
    from_uint8,
    list_images,
    read_image,
    to_uint8,
    write_image,
)
from repaint.networks import NUM_CLASSES
from repaint.prior import Prior, create_prior, draw_labels
from repaint.samplers.repaint import repaint
from repaint.schedule import JumpSchedule


@dataclass(frozen=True)
class EvalItem:
    """One input of `data.eval`: its output name, image in [-1, 1] and keep-mask in [0, 1]."""

    name: str
    image: Tensor  # (3, H, W)
    keep_mask: Tensor  # (3, H, W), RGB like the reference reads it


@dataclass(frozen=True)
class RunSummary:
    images: int
    seed: int
    model_evaluations: int
    seconds: float
    output_folders: dict[str, Path]
    skipped: int = 0  # per-image mode: images whose outputs were already there
    processes: int = 1
    main: bool = True  # rank 0 (the totals are over all ranks there)


def load_eval_items(entry: dict[str, Any], image_size: int) -> list[EvalItem]:
    """Images and masks sorted by path and paired by position, as the reference does."""
    gt_dir = Path(entry["gt_path"]).expanduser()
    mask_dir = Path(entry["mask_path"]).expanduser()
    image_paths, mask_paths = list_images(gt_dir), list_images(mask_dir)
    if len(image_paths) != len(mask_paths):
        raise RepaintError(
            f"{gt_dir} holds {len(image_paths)} images but {mask_dir} holds "
            f"{len(mask_paths)} masks; they are paired by sorted position, so the counts must match"
        )
    offset = entry["offset"]
    end = None if entry["max_len"] is None else offset + entry["max_len"]
    pairs = list(zip(image_paths, mask_paths, strict=True))[offset:end]
    if not pairs:
        raise RepaintError(f"{gt_dir}: no images to inpaint (after offset={offset})")

    items = []
    for image_path, mask_path in pairs:
        image = center_crop_resize(read_image(image_path), image_size)
        mask = center_crop_resize(read_image(mask_path), image_size)
        items.append(
            EvalItem(
                name=image_path.stem,
                image=from_uint8(image),
                keep_mask=torch.from_numpy(mask.astype(np.float32) / 255.0).permute(2, 0, 1),
            )
        )
    return items


def build_model(
    conf: dict[str, Any], device: torch.device, acceleration: Acceleration = PLAIN
) -> Prior:
    """The config's network, diffusion and classifier, from the one factory; `use_fp16`
    and `classifier_use_fp16` take half precision on CUDA, as the reference does."""

    def half(key: str) -> str:
        return "fp16" if bool(conf[key]) and device.type == "cuda" else "fp32"

    classifier = None
    if conf["classifier_scale"] > 0 and conf["classifier_path"]:
        path = Path(conf["classifier_path"]).expanduser()
        classifier = (path, conf, float(conf["classifier_scale"]))
    return create_prior(
        conf,
        checkpoint=Path(conf["model_path"]).expanduser(),
        classifier=classifier,
        device=device,
        dtype=half("use_fp16"),
        classifier_dtype=half("classifier_use_fp16"),
        acceleration=acceleration,
        source="config key model_path",
    )


def run_config(
    conf_path: str | Path,
    *,
    seed: int | None = None,
    device: str = "auto",
    acceleration: Acceleration = PLAIN,
    per_image_seeds: bool = False,
    progress: bool | None = None,
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> RunSummary:
    """Run a reference config end to end and write its four output folders.

    By default all randomness comes from one generator in the reference's order (what the
    golden vectors check). With `per_image_seeds`, and always under torchrun, each image
    draws from its own generator seeded from the run seed and its name, so its result does
    not depend on the batch or the sharding, and images whose outputs exist are skipped.
    """
    context = Context.from_env()
    try:
        return _run(conf_path, context, seed, device, acceleration, per_image_seeds, progress, log)
    finally:
        context.close()


def _run(conf_path, context, seed, device, acceleration, per_image_seeds, progress, log):
    conf = load_reference_config(conf_path)
    (entry,) = conf["data"]["eval"].values()
    schedule = JumpSchedule.from_params(conf["schedule_jump_params"])
    items = load_eval_items(entry, conf["image_size"])
    torch_device = resolve_device(context.device(device))
    prior = build_model(conf, torch_device, acceleration)
    diffusion, guidance = prior.diffusion(conf["timestep_respacing"]), prior.guidance()
    cond_y = conf["cond_y"]
    if cond_y is not None and not 0 <= int(cond_y) < NUM_CLASSES:
        raise RepaintError(f"{conf_path}: cond_y must be a class id in [0, {NUM_CLASSES})")

    # Labels matter only to a class-conditional model or a classifier; only then are random
    # ones drawn (from the run's generator, before the batch's x_T).
    needs_labels = prior.uses_labels
    seed = context.broadcast(new_seed() if seed is None else seed)
    batch_size = entry["batch_size"]
    if entry["drop_last"] and len(items) % batch_size and len(items) > batch_size:
        items = items[: len(items) - len(items) % batch_size]
    folders = {
        key: Path(entry["paths"][key]).expanduser() for key in entry["paths"] if key in OUTPUTS
    }
    for key, folder in folders.items():
        check_output_folder(folder, f"{conf_path}: data.eval paths.{key}")
    per_image = per_image_seeds or context.world > 1
    skipped = 0
    if per_image:  # this rank's share, less what an earlier run finished
        share = context.share(items)
        items = [
            i for i in share if not all((f / f"{i.name}.png").is_file() for f in folders.values())
        ]
        skipped = len(share) - len(items)
    batches = [items[i : i + batch_size] for i in range(0, len(items), batch_size)]
    total = schedule.reverse_steps * len(batches)
    if context.is_main:
        log(
            f"{conf.get('name') or Path(conf_path).stem}: {sum(map(len, batches))} images, "
            f"{schedule.reverse_steps} model evaluations each, seed {seed}, {torch_device}"
            + (f", {context.world} processes" if context.world > 1 else "")
        )

    started = time.perf_counter()
    show = (sys.stderr.isatty() if progress is None else progress) and context.is_main
    generator = make_generator(seed, torch_device)
    with tqdm(total=total, unit="eval", disable=not show, dynamic_ncols=True) as bar:
        for batch in batches:
            image = torch.stack([item.image for item in batch]).to(torch_device)
            keep_mask = torch.stack([item.keep_mask for item in batch]).to(torch_device)
            if per_image:  # each image its own noise: results independent of the sharding
                generators = [
                    make_generator(derive_seed(seed, item.name), torch_device) for item in batch
                ]
            labels = None
            if needs_labels or cond_y is not None:
                labels = draw_labels(
                    generators if per_image else generator,
                    len(batch),
                    torch_device,
                    None if cond_y is None else int(cond_y),
                )
            sample = repaint(
                prior.denoise,
                diffusion,
                image,
                keep_mask,
                schedule,
                generator=generators if per_image else generator,
                labels=labels,
                guidance=guidance,
                clip_denoised=bool(conf["clip_denoised"]),
                raw=True,
                callback=lambda step: bar.update(1),
            )
            _write_outputs(folders, [item.name for item in batch], image, keep_mask, sample)
    seconds = time.perf_counter() - started
    shares = context.gather((sum(map(len, batches)), skipped, total, seconds))
    return RunSummary(
        images=sum(share[0] for share in shares),
        seed=seed,
        model_evaluations=sum(share[2] for share in shares),
        seconds=max(share[3] for share in shares),
        output_folders=folders,
        skipped=sum(share[1] for share in shares),
        processes=context.world,
        main=context.is_main,
    )


OUTPUTS: dict[str, Callable[[Tensor, Tensor, Tensor], Tensor]] = {
    "srs": lambda image, keep, sample: sample,  # the raw sample, as the reference writes it
    "lrs": lambda image, keep, sample: image * keep + -1 * torch.ones_like(image) * (1 - keep),
    "gts": lambda image, keep, sample: image,
    "gt_keep_masks": lambda image, keep, sample: keep * 2 - 1,
}
"""The reference's output folders (config `paths` keys) and what each holds."""


def _write_outputs(
    folders: dict[str, Path], names: list[str], image: Tensor, keep: Tensor, sample: Tensor
) -> None:
    for key, folder in folders.items():
        pixels = to_uint8(OUTPUTS[key](image, keep, sample), truncate=True)
        for name, array in zip(names, pixels, strict=True):
            write_image(array, folder / f"{name}.png")
