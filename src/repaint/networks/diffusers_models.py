"""Pixel-space diffusion models in the diffusers format, as priors for our sampler.

A located diffusers model folder (see `repaint.checkpoints.hub`, which tells diffusers models
from checkpoints and fetches `hf:` ids) becomes a network with our interface plus a
reference-style config: the scheduler's training betas, variance type, prediction type and
clipping. The sampler then runs the same jump schedule and respacing as for guided-diffusion
checkpoints. diffusers is an optional extra: nothing here imports it until such a model is
loaded. This module sits below `repaint.checkpoints` and imports nothing from it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from repaint.errors import RepaintError
from repaint.version import install_hint

_EXTRA = install_hint("diffusers")
VARIANCES = {"fixed_small": False, "fixed_small_log": False, "fixed_large": True}
"""diffusers variance types we run: -> whether it is the large (beta_t) one."""


def import_diffusers(source: str | Path):
    """The `diffusers` module; its absence names the optional extra, for `source`."""
    try:
        import diffusers
    except ImportError:
        raise RepaintError(
            f"{source}: diffusers models need the optional extra: {_EXTRA}"
        ) from None
    return diffusers


class PixelUNet(nn.Module):
    """A diffusers `UNet2DModel` behind our network interface (x_t, timesteps, labels)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: Tensor, timesteps: Tensor, y: Tensor | None = None) -> Tensor:
        return self.unet(x, timesteps, class_labels=y).sample


def load_pixel_model(
    folder: Path, source: str | Path | None = None
) -> tuple[PixelUNet, dict[str, Any]]:
    """The network and its config (reference keys plus `betas`) from a local diffusers folder
    (`repaint.checkpoints.hub.locate` finds it); errors name `source`, by default `folder`."""
    source = folder if source is None else source
    diffusers = import_diffusers(source)
    unet_dir = folder / "unet" if (folder / "unet" / "config.json").is_file() else folder
    unet_config = _read_json(unet_dir / "config.json")
    kind = unet_config.get("_class_name")
    if kind != "UNet2DModel":
        raise RepaintError(
            f"{source}: a {kind or 'non-diffusers'} model; pixel RePaint needs a UNet2DModel"
        )
    diffusion = scheduler_config(folder, source)
    try:
        unet = diffusers.UNet2DModel.from_pretrained(unet_dir)
    except (OSError, ValueError, RuntimeError) as error:
        raise RepaintError(f"{unet_dir}: cannot load the UNet2DModel ({error})") from None
    config = {
        "image_size": int(unet.config.sample_size),
        "class_cond": unet.config.num_class_embeds is not None,
        **diffusion,
    }
    return PixelUNet(unet), config


def scheduler_config(folder: Path, source: str | Path | None = None) -> dict[str, Any]:
    """Our diffusion settings from a local diffusers folder's scheduler config: the training
    betas (as diffusers computes them), variance type, prediction type and clipping. Errors
    name `source`, by default `folder`."""
    source = folder if source is None else source
    diffusers = import_diffusers(source)
    scheduler_file = next(
        (
            path
            for path in (
                folder / "scheduler" / "scheduler_config.json",
                folder / "scheduler_config.json",
            )
            if path.is_file()
        ),
        None,
    )
    if scheduler_file is None:
        raise RepaintError(f"{source}: no scheduler/scheduler_config.json (the noise schedule)")
    scheduler = diffusers.DDPMScheduler.from_config(_read_json(scheduler_file))
    variance = scheduler.config.variance_type
    prediction = scheduler.config.prediction_type
    learned = variance in ("learned", "learned_range")
    if not learned and variance not in VARIANCES:
        raise RepaintError(f"{scheduler_file}: variance_type {variance!r} is not supported")
    if prediction not in ("epsilon", "sample"):
        raise RepaintError(
            f"{scheduler_file}: prediction_type {prediction!r} is not supported (epsilon or sample)"
        )
    return {
        "learn_sigma": learned,
        "sigma_small": not learned and not VARIANCES[variance],
        "predict_xstart": prediction == "sample",
        "clip_denoised": bool(scheduler.config.clip_sample),
        "diffusion_steps": int(scheduler.config.num_train_timesteps),
        "betas": scheduler.betas.double().tolist(),
    }


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RepaintError(f"{path}: not a readable diffusers config ({error})") from None
