"""Latent RePaint: the same jump schedule in a latent diffusion model's latent space, guided
by a text prompt (Stable Diffusion and other diffusers `StableDiffusionPipeline` folders).

The image is encoded with the VAE (its `scaling_factor` applied); the mask goes to the latent
grid conservatively, so a latent cell counts as known only if all its pixels are; any
sampler whose spec runs on latent models (RePaint, DDNM) runs on the latents with
classifier-free guidance in one batched UNet call, branching and recording frames as on
pixel models; the result is decoded and pasted into the full-resolution input where it was
to be filled, with a feathered edge, so every known pixel is kept exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from repaint.accel import PLAIN, Acceleration
from repaint.checkpoints.hub import locate
from repaint.errors import RepaintError
from repaint.execution import Layout
from repaint.inpainter import Inpainter
from repaint.io import from_uint8
from repaint.networks.diffusers_models import import_diffusers, scheduler_config
from repaint.prior import DiffusionPrior
from repaint.regions import Window, feather, paste
from repaint.request import InpaintRequest
from repaint.samplers.common import Denoiser, Guidance
from repaint.version import install_hint

DEFAULT_GUIDANCE = 7.5
DEFAULT_FEATHER = 4  # pixels of blending inside the hole, over the VAE's seams


def latent_keep(keep: Tensor, factor: int, grow: int = 0) -> Tensor:
    """(N, 1, H, W) pixel keep-mask -> latent grid: a cell is known only if every pixel of it
    is; `grow` widens the area to fill by that many cells."""
    cells = -F.max_pool2d(-keep.float(), factor)
    if grow:
        cells = -F.max_pool2d(-cells, 2 * grow + 1, stride=1, padding=grow)
    return cells


class LatentPrior(DiffusionPrior):
    """A latent diffusion pipeline behind the one prior interface: the denoiser with the
    prompt and classifier-free guidance bound in (unconditional and conditional in one
    batched UNet call), the diffusion of its scheduler's betas, and the VAE as the way into
    and out of latent space."""

    family = "latent"
    batch_pixels = 4 * 64 * 64  # latent pixels: four 512 px images (doubled by the guidance)

    def __init__(
        self,
        components: Mapping[str, Any],
        diffusion_config: Mapping[str, Any],
        *,
        device: torch.device,
        dtype: torch.dtype,
        acceleration: Acceleration = PLAIN,
    ) -> None:
        super().__init__({**diffusion_config, "clip_denoised": False}, device)
        unet = components["unet"].to(device).eval()
        if acceleration.channels_last:
            unet = unet.to(memory_format=torch.channels_last)
        self.unet = torch.compile(unet) if acceleration.compile else unet
        self.vae = components["vae"].to(device).eval()
        self.text_encoder = components["text_encoder"].to(device).eval()
        self.tokenizer = components["tokenizer"]
        self.dtype = dtype
        self.factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.scaling = float(getattr(self.vae.config, "scaling_factor", 0.18215))

    @torch.no_grad()
    def embed(self, prompts: list[str]) -> Tensor:
        tokens = self.tokenizer(
            prompts,
            padding="max_length",
            max_length=self.tokenizer.model_max_length,
            truncation=True,
            return_tensors="pt",
        )
        return self.text_encoder(tokens.input_ids.to(self.device))[0]

    def conditioned(
        self, request: InpaintRequest, labels: Tensor | None
    ) -> tuple[Denoiser, Guidance | None]:
        """Epsilon with classifier-free guidance at the request's scale (7.5 by default)."""
        del labels
        scale = DEFAULT_GUIDANCE if request.guidance_scale is None else request.guidance_scale
        context = self.embed([request.negative_prompt, request.prompt or ""])
        uncond, cond = context.split(1)

        def denoise(x: Tensor, timesteps: Tensor, _labels: Tensor | None = None) -> Tensor:
            batch = x.shape[0]
            both = torch.cat([uncond.expand(batch, -1, -1), cond.expand(batch, -1, -1)])
            pair = torch.cat([x, x]).to(self.dtype)
            eps = self.unet(pair, torch.cat([timesteps, timesteps]), encoder_hidden_states=both)
            eps_uncond, eps_cond = eps.sample.float().chunk(2)
            return eps_uncond + scale * (eps_cond - eps_uncond)

        return denoise, None

    @torch.no_grad()
    def encode(self, pixels: Tensor) -> Tensor:
        return self.vae.encode(pixels.to(self.dtype)).latent_dist.mean.float() * self.scaling

    @torch.no_grad()
    def decode(self, x: Tensor) -> Tensor:
        return self.vae.decode((x / self.scaling).to(self.dtype)).sample.float().clamp(-1, 1)


class LatentInpainter(Inpainter):
    """A latent diffusion pipeline ready to inpaint images of any multiple-of-8 size: encode,
    the same samplers and execution as pixel models, decode."""

    text_conditioned = True
    fits = ("auto", "region")

    def __init__(self, prior: LatentPrior, *, name: str, checkpoint: Path) -> None:
        self.prior, self.name, self.checkpoint = prior, name, checkpoint

    @classmethod
    def from_folder(
        cls,
        source: str | Path,
        *,
        device: torch.device,
        dtype: torch.dtype,
        acceleration: Acceleration = PLAIN,
    ) -> LatentInpainter:
        diffusers = import_diffusers(source)
        try:
            import transformers
        except ImportError:
            raise RepaintError(
                f"{source}: Stable Diffusion models need the optional extra: "
                + install_hint("diffusers")
            ) from None
        root = locate(source)
        config = scheduler_config(root, source)
        try:  # each part loaded in its dtype, not cast afterwards
            components = {
                "unet": diffusers.UNet2DConditionModel.from_pretrained(
                    root / "unet", torch_dtype=dtype
                ),
                "vae": diffusers.AutoencoderKL.from_pretrained(root / "vae", torch_dtype=dtype),
                "text_encoder": transformers.CLIPTextModel.from_pretrained(
                    root / "text_encoder", torch_dtype=dtype
                ),
                "tokenizer": transformers.AutoTokenizer.from_pretrained(root / "tokenizer"),
            }
        except (OSError, ValueError, RuntimeError) as error:
            raise RepaintError(
                f"{root}: cannot load the Stable Diffusion parts ({error})"
            ) from None
        prior = LatentPrior(
            components, config, device=device, dtype=dtype, acceleration=acceleration
        )
        return cls(prior, name=str(source), checkpoint=root)

    def check_image(self, rgb: np.ndarray, name: str) -> None:
        factor = self.prior.factor
        height, width = rgb.shape[:2]
        if height % factor or width % factor:
            raise RepaintError(
                f"{name}: {width}x{height} is not a multiple of {factor} in both sides, "
                "as the latent grid needs; crop or resize it"
            )

    def layout(
        self, rgb: np.ndarray, keep: np.ndarray, request: InpaintRequest, name: str
    ) -> Layout:
        """The whole image at its own size as latents; `grow` is in latent cells (`factor`
        pixels each), `mask_blur` feathers the pasted edge (default 4 px), so every known
        pixel stays exact."""
        prior = self.prior
        pixels = from_uint8(rgb)[None].to(self.device)
        latents = prior.encode(pixels)[0]
        cells = latent_keep(
            torch.from_numpy(keep)[None, None].to(self.device), prior.factor, request.grow
        )[0]
        fill = ~keep
        blur = DEFAULT_FEATHER if request.mask_blur is None else request.mask_blur
        alpha = feather(torch.from_numpy(fill), blur)
        whole = Window(0, 0, *rgb.shape[:2])

        def put(canvas: np.ndarray, window: int, sample: Tensor) -> None:
            paste(canvas, fill, alpha, whole, sample)

        return Layout(name, rgb, "latent", [whole], lambda w, canvas: (latents, cells), put)

    def nominal_shape(self) -> tuple[int, ...]:
        return (4, 64, 64)  # a 512 px image

    def to_pixels(self, x: Tensor) -> Tensor:
        return self.prior.decode(x)
