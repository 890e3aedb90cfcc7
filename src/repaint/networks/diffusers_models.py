"""Pixel-space diffusion models in the diffusers format, as priors for our sampler.

A diffusers model folder (`model_index.json` with `unet/` and `scheduler/`, or a bare
`UNet2DModel` folder with a `scheduler_config.json`), or `hf:ORG/NAME` on the Hugging Face
Hub, becomes a network with our interface plus a reference-style config: the scheduler's
training betas, variance type, prediction type and clipping. The sampler then runs the same
jump schedule and respacing as for guided-diffusion checkpoints. diffusers is an optional
extra: nothing here is imported until such a model is asked for.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from torch import Tensor, nn

from repaint.errors import RepaintError

EXTRA = "pip install 'repaint[diffusers]'"
VARIANCES = {"fixed_small": False, "fixed_small_log": False, "fixed_large": True}
"""diffusers variance types we run: -> whether it is the large (beta_t) one."""


def is_diffusers_model(source: str | Path) -> bool:
    """`hf:ORG/NAME`, or a folder laid out by diffusers' `save_pretrained`."""
    if str(source).startswith("hf:"):
        return True
    path = Path(source)
    return path.is_dir() and any(
        (path / name).is_file() for name in ("model_index.json", "unet/config.json", "config.json")
    )


def is_latent_model(folder: Path) -> bool:
    """A diffusers folder with a VAE and a text-conditioned `UNet2DConditionModel`."""
    unet_config = folder / "unet" / "config.json"
    return (
        (folder / "vae" / "config.json").is_file()
        and unet_config.is_file()
        and read_json(unet_config).get("_class_name") == "UNet2DConditionModel"
    )


def import_diffusers(source: str | Path):
    try:
        import diffusers
    except ImportError:
        raise RepaintError(f"{source}: diffusers models need the optional extra: {EXTRA}") from None
    return diffusers


def locate(source: str | Path) -> Path:
    """The local folder of a model: `hf:` ids from the Hugging Face cache, else downloaded."""
    if not str(source).startswith("hf:"):
        return Path(source)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise RepaintError(f"{source}: hf: models need the optional extra: {EXTRA}") from None

    repo_id = str(source)[3:]
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (huggingface_hub raises several kinds): try the network
        pass
    try:
        return Path(snapshot_download(repo_id))
    except Exception as error:
        raise RepaintError(
            f"{source}: not in the Hugging Face cache and could not be downloaded "
            f"({type(error).__name__}); connect to the network once, or pass a local folder"
        ) from None


class PixelUNet(nn.Module):
    """A diffusers `UNet2DModel` behind our network interface (x_t, timesteps, labels)."""

    def __init__(self, unet: nn.Module) -> None:
        super().__init__()
        self.unet = unet

    def forward(self, x: Tensor, timesteps: Tensor, y: Tensor | None = None) -> Tensor:
        return self.unet(x, timesteps, class_labels=y).sample


def read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RepaintError(f"{path}: not a readable diffusers config ({error})") from None


def load_pixel_model(source: str | Path) -> tuple[PixelUNet, dict[str, Any], Path]:
    """The network, its config (reference keys plus `betas`) and the folder it came from."""
    diffusers = import_diffusers(source)
    root = locate(source)
    unet_dir = root / "unet" if (root / "unet" / "config.json").is_file() else root
    unet_config = read_json(unet_dir / "config.json")
    kind = unet_config.get("_class_name")
    if kind != "UNet2DModel":
        raise RepaintError(
            f"{source}: a {kind or 'non-diffusers'} model; pixel RePaint needs a UNet2DModel"
        )
    diffusion = scheduler_config(root, source)
    try:
        unet = diffusers.UNet2DModel.from_pretrained(unet_dir)
    except (OSError, ValueError, RuntimeError) as error:
        raise RepaintError(f"{unet_dir}: cannot load the UNet2DModel ({error})") from None
    config = {
        "image_size": int(unet.config.sample_size),
        "class_cond": unet.config.num_class_embeds is not None,
        **diffusion,
    }
    return PixelUNet(unet), config, root


def scheduler_config(root: Path, source: str | Path) -> dict[str, Any]:
    """Our diffusion settings from a diffusers scheduler config: the training betas (as
    diffusers computes them), variance type, prediction type and clipping."""
    diffusers = import_diffusers(source)
    scheduler_file = next(
        (
            path
            for path in (
                root / "scheduler" / "scheduler_config.json",
                root / "scheduler_config.json",
            )
            if path.is_file()
        ),
        None,
    )
    if scheduler_file is None:
        raise RepaintError(f"{source}: no scheduler/scheduler_config.json (the noise schedule)")
    scheduler = diffusers.DDPMScheduler.from_config(read_json(scheduler_file))
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
