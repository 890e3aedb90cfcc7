"""From what `--model` names to a loaded inpainter of the right family.

A registered name or a guided-diffusion checkpoint (with its reference-format config) and a
diffusers `UNet2DModel` become a `PixelInpainter`, built by the one factory
(`repaint.prior.create_prior`); a Stable Diffusion folder or `hf:` id becomes a
`LatentInpainter`.
"""

from __future__ import annotations

from pathlib import Path

import torch

from repaint.accel import Acceleration
from repaint.checkpoints import resolve_model
from repaint.checkpoints.hub import is_diffusers_model, is_latent_model, locate
from repaint.choices import DEFAULT_MODEL
from repaint.device import resolve_device
from repaint.inpainter import Inpainter
from repaint.latent import LatentInpainter
from repaint.networks.diffusers_models import import_diffusers, load_pixel_model
from repaint.pixel import Domain, PixelInpainter
from repaint.prior import PRECISIONS, create_prior, parse_dtype

PHOTO_MODELS = (
    "celeba256 (faces) or places256 (scenes): `repaint download places256`, then --model places256"
)


def load_inpainter(
    source: str | Path = DEFAULT_MODEL,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "fp32",
    model_config: str | Path | None = None,
    compile: bool = False,
    channels_last: bool = False,
) -> Inpainter:
    """Any model, ready to inpaint: a registered name (`repaint models`), a checkpoint path
    with its config (`model_config`, or a YAML beside it), or a diffusers folder or
    `hf:ORG/NAME` (pixel `UNet2DModel`, or Stable Diffusion for prompts). `dtype` fp16/bf16
    runs the network in half precision with the diffusion maths in fp32; `compile` and
    `channels_last` are the speed-ups of `repaint.accel`."""
    torch_device = device if isinstance(device, torch.device) else resolve_device(device)
    dtype = next(name for name, kind in PRECISIONS.items() if kind == parse_dtype(dtype))
    inpainter = _load(source, torch_device, dtype, model_config, compile, channels_last)
    inpainter.loaded_as = {"dtype": dtype, "compile": compile, "channels_last": channels_last}
    return inpainter


def _load(
    source: str | Path,
    torch_device: torch.device,
    dtype: str,
    model_config: str | Path | None,
    compile: bool,
    channels_last: bool,
) -> Inpainter:
    acceleration = Acceleration(channels_last=channels_last, compile=compile)
    if is_diffusers_model(source):
        import_diffusers(source)  # the missing extra is said before any download
        folder = locate(source)
        if is_latent_model(folder):
            return LatentInpainter.from_folder(
                source, device=torch_device, dtype=parse_dtype(dtype), acceleration=acceleration
            )
        network, config = load_pixel_model(folder, source)
        prior = create_prior(
            config, network=network, device=torch_device, dtype=dtype, acceleration=acceleration
        )
        return PixelInpainter(prior, name=str(source), checkpoint=folder)

    resolved = resolve_model(str(source), model_config)
    classifier = None
    if resolved.classifier is not None:
        part = resolved.classifier
        classifier = (part.path, part.config, part.scale)
    prior = create_prior(
        resolved.config,
        checkpoint=resolved.checkpoint,
        classifier=classifier,
        device=torch_device,
        dtype=dtype,
        acceleration=acceleration,
        source=f"model {source}",
    )
    domain = None
    if resolved.spec is not None:
        spec = resolved.spec
        advice = f"for photos use {PHOTO_MODELS}"
        domain = Domain(spec.domain, spec.photo, advice, greyscale=spec.greyscale)
    return PixelInpainter(
        prior,
        name=resolved.name,
        checkpoint=resolved.checkpoint,
        sha256=resolved.sha256,
        domain=domain,
    )
