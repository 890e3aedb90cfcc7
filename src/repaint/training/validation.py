"""What training is for, measured while it runs: the EMA model inpaints a fixed held-out set
under fixed masks of the paper's six kinds with a cheap schedule, and the PSNR of the holes
(with the loss on the same images) goes to `metrics.jsonl`, a preview grid and a plot.

Everything is fixed across validations (images, masks, the inpainting noise, the levels and
noise of the held-out loss), so the figures move only with the weights.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from repaint.choices import MASK_KINDS
from repaint.device import derive_seed, make_generator
from repaint.diffusion import GaussianDiffusion, q_sample
from repaint.errors import RepaintError, RepaintWarning
from repaint.io import atomic_output, from_uint8, to_uint8, write_image
from repaint.masks import generate_mask
from repaint.presets import get_preset
from repaint.prior import diffusion_from_config
from repaint.samplers.repaint import repaint
from repaint.schedule import JumpSchedule
from repaint.training.losses import training_loss
from repaint.version import install_hint

LOSS_LEVELS = 8  # levels per held-out image for the held-out loss, spread over the chain
PREVIEW_ROWS = 8
PREVIEW_TILE = 64  # smallest side of a preview tile, in pixels


@dataclass(frozen=True)
class HeldOut:
    """The fixed validation inputs, on the training device."""

    images: Tensor  # (N, 3, H, W) in [-1, 1]
    keep: Tensor  # (N, 1, H, W), 1 = known
    kinds: list[str]
    seed: int
    preset: str


def held_out_set(pixels: np.ndarray, seed: int, preset: str, device: torch.device) -> HeldOut:
    """Image i gets a mask of kind i mod 6 (the paper's kinds), drawn from a fixed seed."""
    size = pixels.shape[1]
    kinds = [MASK_KINDS[i % len(MASK_KINDS)] for i in range(len(pixels))]
    masks = [
        generate_mask(kind, size, np.random.default_rng(derive_seed(seed, "val-mask", i)))
        for i, kind in enumerate(kinds)
    ]
    images = torch.stack([from_uint8(image) for image in pixels]).to(device)
    keep = torch.from_numpy(np.stack(masks)[:, None].astype(np.float32)).to(device)
    return HeldOut(images, keep, kinds, seed, preset)


def denoiser(model: nn.Module) -> Callable[[Tensor, Tensor, Tensor | None], Tensor]:
    return lambda x, t, labels: model(x, t)


@torch.no_grad()
def validate(
    model: nn.Module, model_config: Mapping[str, Any], held: HeldOut
) -> tuple[dict[str, Any], np.ndarray]:
    """The metrics of one validation and its preview grid (masked input | inpainted | truth)."""
    was_training = model.training
    model.eval()
    try:
        preset = get_preset(held.preset)
        schedule = preset.schedule
        diffusion = _respaced(model_config, schedule)
        count = len(held.images)
        generators = [
            make_generator(derive_seed(held.seed, "val-inpaint", i), held.images.device)
            for i in range(count)
        ]
        filled = repaint(
            denoiser(model),
            diffusion,
            held.images,
            held.keep,
            schedule,
            generator=generators,
            eta=preset.eta,
        )
        loss = held_out_loss(model, model_config, held)
    finally:
        model.train(was_training)
    psnr = hole_psnr(filled, held.images, held.keep)
    by_kind = {
        kind: float(np.mean([p for p, k in zip(psnr, held.kinds, strict=True) if k == kind]))
        for kind in MASK_KINDS
        if kind in held.kinds
    }
    metrics = {"val_loss": loss, "hole_psnr": float(np.mean(psnr)), "hole_psnr_by_kind": by_kind}
    return metrics, preview(held, filled)


def _respaced(model_config: Mapping[str, Any], schedule: JumpSchedule) -> GaussianDiffusion:
    with warnings.catch_warnings():  # a short respacing of a long chain warns; meant here
        warnings.simplefilter("ignore", RepaintWarning)
        return diffusion_from_config(model_config, schedule.t_T)


def held_out_loss(model: nn.Module, model_config: Mapping[str, Any], held: HeldOut) -> float:
    """The training loss on the held-out images at fixed levels and noise."""
    diffusion = diffusion_from_config(model_config, int(model_config["diffusion_steps"]))
    tables = diffusion.tables(held.images.device)
    generator = make_generator(derive_seed(held.seed, "val-loss"), torch.device("cpu"))
    total, count = 0.0, 0
    for j in range(LOSS_LEVELS):
        level = int((j + 0.5) * diffusion.num_timesteps / LOSS_LEVELS)
        x0 = held.images
        t = torch.full((len(x0),), level, device=x0.device)
        noise = torch.randn(x0.shape, generator=generator).to(x0.device)
        x_t = q_sample(tables, x0, t, noise)
        loss = training_loss(model(x_t, t).float(), diffusion, tables, x0, x_t, t, noise)
        total, count = total + float(loss.sum()), count + len(x0)
    return total / count


def hole_psnr(output: Tensor, truth: Tensor, keep: Tensor) -> list[float]:
    """PSNR of the filled pixels of each image, on the [0, 1] scale (100 dB if exact)."""
    hole = (keep < 0.5).expand_as(truth).float()
    error = ((output.float() - truth.float()) / 2) ** 2 * hole
    mse = error.flatten(1).sum(1) / hole.flatten(1).sum(1).clamp(min=1)
    return [100.0 if value == 0 else -10 * math.log10(value) for value in mse.tolist()]


def preview(held: HeldOut, filled: Tensor) -> np.ndarray:
    """Rows of masked input (holes grey), inpainted and truth, uint8."""
    rows = min(PREVIEW_ROWS, len(filled))
    masked = torch.where(held.keep > 0.5, held.images, torch.zeros_like(held.images))
    tiles = [to_uint8(part[:rows]) for part in (masked, filled, held.images)]  # (rows, H, W, 3)
    rows = [np.concatenate(list(row), axis=1) for row in zip(*tiles, strict=True)]
    grid = np.concatenate(rows, axis=0)
    scale = max(1, PREVIEW_TILE // filled.shape[-1])  # small models: pixels made visible
    return grid.repeat(scale, axis=0).repeat(scale, axis=1)


@torch.no_grad()
def sample_grid(path: Path, model: nn.Module, model_config: Mapping[str, Any]) -> None:
    """16 unconditional samples (a plain 50-step schedule) to watch training progress."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    size = int(model_config["image_size"])
    shape = (16, 3, size, size)
    schedule = JumpSchedule(t_T=50, jump_length=1, jump_n_sample=1)
    try:
        samples = repaint(
            denoiser(model),
            _respaced(model_config, schedule),
            torch.zeros(shape, device=device),
            torch.zeros((16, 1, size, size), device=device),
            schedule,
            generator=make_generator(0, device),
        )
    finally:
        model.train(was_training)
    pixels = to_uint8(samples)  # (16, size, size, 3)
    tiles = pixels.reshape(4, 4, size, size, 3).transpose(0, 2, 1, 3, 4)  # rows, y, cols, x, c
    write_image(np.ascontiguousarray(tiles.reshape(4 * size, 4 * size, 3)), path)


def plotting_available() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        warnings.warn(
            f"no plot of the metrics without matplotlib: {install_hint('train')}",
            RepaintWarning,
            stacklevel=2,
        )
        return False
    return True


def plot_metrics(records: Sequence[Mapping[str, Any]], path: Path) -> None:
    """Training and held-out loss, and hole PSNR, against steps."""
    from matplotlib.figure import Figure  # the Figure API: no global backend is switched

    train = [(r["step"], r["loss"]) for r in records if "loss" in r]
    val = [r for r in records if "hole_psnr" in r]
    figure = Figure(figsize=(10, 4))
    loss_axes, psnr_axes = figure.subplots(1, 2)
    if train:
        loss_axes.plot(*zip(*train, strict=False), linewidth=1, label="training")
    if val:
        loss_axes.plot(
            [r["step"] for r in val], [r["val_loss"] for r in val], "o-", label="held out"
        )
        psnr_axes.plot([r["step"] for r in val], [r["hole_psnr"] for r in val], "o-")
    loss_axes.set(xlabel="step", ylabel="loss", yscale="log", title="loss")
    loss_axes.legend()
    psnr_axes.set(xlabel="step", ylabel="dB", title="held-out hole PSNR (inpainting)")
    figure.tight_layout()
    with atomic_output(path) as handle:
        figure.savefig(handle, format="png")


def check_held_out(pixels: np.ndarray | None, size: int) -> None:
    if pixels is None or not len(pixels):
        raise RepaintError("--val-every: no held-out image to inpaint")
    if pixels.shape[1] != size:
        raise RepaintError(f"--val-data: images of {pixels.shape[1]} px for a {size} px model")
