"""Latent RePaint: the same jump schedule in a latent diffusion model's latent space, guided
by a text prompt (Stable Diffusion and other diffusers `StableDiffusionPipeline` folders).

The image is encoded with the VAE (its `scaling_factor` applied); the mask goes to the latent
grid conservatively, so a latent cell counts as known only if all its pixels are; the RePaint
loop (ours, DDPM or DDIM steps) runs on the latents with classifier-free guidance in one
batched UNet call; the result is decoded and pasted into the full-resolution input where it
was to be filled, with a feathered edge, so every known pixel is kept exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from repaint.checkpoints.hub import locate
from repaint.device import derive_seed, make_generator
from repaint.diffusion import GaussianDiffusion
from repaint.errors import RepaintError
from repaint.inpainter import Hooks, Inpainter, InpaintResult, Plan, time_call
from repaint.io import from_uint8, to_uint8
from repaint.networks.diffusers_models import import_diffusers, scheduler_config
from repaint.prior import diffusion_from_config
from repaint.regions import Window, feather, paste
from repaint.request import InpaintRequest
from repaint.sampler import Step, repaint
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


class LatentInpainter(Inpainter):
    """A latent diffusion pipeline ready to inpaint images of any multiple-of-8 size."""

    text_conditioned = True
    fits = ("auto", "region")
    frame_labels = ("predicted image",)

    def __init__(
        self,
        components: Mapping[str, Any],
        diffusion_config: Mapping[str, Any],
        *,
        device: torch.device,
        name: str,
        checkpoint: Path,
        dtype: torch.dtype,
    ) -> None:
        self.unet = components["unet"].to(device, dtype).eval()
        self.vae = components["vae"].to(device, dtype).eval()
        self.text_encoder = components["text_encoder"].to(device, dtype).eval()
        self.tokenizer = components["tokenizer"]
        self.config = dict(diffusion_config)
        self.device, self.dtype, self.name, self.checkpoint = device, dtype, name, checkpoint
        self.sha256 = None
        self.diffusion_steps = len(self.config["betas"])
        self.factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.scaling = float(getattr(self.vae.config, "scaling_factor", 0.18215))
        self._diffusions: dict[int, GaussianDiffusion] = {}

    @classmethod
    def from_folder(cls, source: str | Path, *, device: torch.device, dtype: torch.dtype):
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
        try:
            components = {
                "unet": diffusers.UNet2DConditionModel.from_pretrained(root / "unet"),
                "vae": diffusers.AutoencoderKL.from_pretrained(root / "vae"),
                "text_encoder": transformers.CLIPTextModel.from_pretrained(root / "text_encoder"),
                "tokenizer": transformers.AutoTokenizer.from_pretrained(root / "tokenizer"),
            }
        except (OSError, ValueError, RuntimeError) as error:
            raise RepaintError(
                f"{root}: cannot load the Stable Diffusion parts ({error})"
            ) from None
        return cls(
            components, config, device=device, name=str(source), checkpoint=root, dtype=dtype
        )

    def diffusion(self, t_T: int) -> GaussianDiffusion:
        if t_T not in self._diffusions:
            self._diffusions[t_T] = diffusion_from_config(self.config, t_T)
        return self._diffusions[t_T]

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

    def denoiser(self, prompt: str, negative_prompt: str, scale: float, batch: int):
        """Epsilon with classifier-free guidance: unconditional and conditional in one call."""
        context = self.embed([negative_prompt, prompt])
        uncond, cond = (part.expand(batch, -1, -1) for part in context.split(1))
        both = torch.cat([uncond, cond])

        def denoise(x: Tensor, timesteps: Tensor, labels: Tensor | None) -> Tensor:
            pair = torch.cat([x, x]).to(self.dtype)
            eps = self.unet(pair, torch.cat([timesteps, timesteps]), encoder_hidden_states=both)
            eps_uncond, eps_cond = eps.sample.float().chunk(2)
            return eps_uncond + scale * (eps_cond - eps_uncond)

        return denoise

    @torch.no_grad()
    def encode(self, image: Tensor) -> Tensor:
        return self.vae.encode(image.to(self.dtype)).latent_dist.mean.float() * self.scaling

    @torch.no_grad()
    def decode(self, latents: Tensor) -> Tensor:
        return self.vae.decode((latents / self.scaling).to(self.dtype)).sample.float().clamp(-1, 1)

    def check_image(self, rgb: np.ndarray, name: str) -> None:
        height, width = rgb.shape[:2]
        if height % self.factor or width % self.factor:
            raise RepaintError(
                f"{name}: {width}x{height} is not a multiple of {self.factor} in both sides, "
                "as the latent grid needs; crop or resize it"
            )

    def _inpaint(
        self, rgb: np.ndarray, keep: np.ndarray, request: InpaintRequest, hooks: Hooks
    ) -> InpaintResult:
        """Inpaint at the image's own size; `grow` is in latent cells (`factor` pixels
        each), `mask_blur` feathers the pasted edge (default 4 px). All samples run as one
        batch (twice that for the guidance)."""
        schedule, samples = request.jump_schedule, request.num_samples
        scale = DEFAULT_GUIDANCE if request.guidance_scale is None else request.guidance_scale
        height, width = rgb.shape[:2]
        pixels = from_uint8(rgb)[None].to(self.device)
        latents = self.encode(pixels).expand(samples, -1, -1, -1)
        cells = latent_keep(
            torch.from_numpy(keep)[None, None].to(self.device), self.factor, request.grow
        )
        generators = [
            make_generator(derive_seed(request.seed, hooks.name, k, 0), self.device)
            for k in range(samples)
        ]
        denoise = self.denoiser(request.prompt or "", request.negative_prompt, scale, samples)
        if hooks.on_plan is not None:
            steps = torch.zeros(samples, dtype=torch.long, device=self.device)
            seconds = time_call(lambda: denoise(latents, steps, None), self.device)
            hooks.on_plan(Plan(1, samples, schedule.reverse_steps, 1, seconds))
        frames: list[list[np.ndarray]] = [[] for _ in range(samples)]

        def on_step(step: Step) -> None:
            if hooks.records(step):
                for k, decoded in enumerate(self.decode(step.pred_x0)):
                    frames[k].append(to_uint8(decoded))
            hooks.progress(step)

        result = repaint(
            denoise,
            self.diffusion(schedule.t_T),
            latents,
            cells,
            schedule,
            generator=generators,
            eta=request.sampler_eta,
            clip_denoised=False,
            callback=on_step,
        )
        fill = ~keep
        blur = DEFAULT_FEATHER if request.mask_blur is None else request.mask_blur
        alpha = feather(torch.from_numpy(fill), blur)
        whole = Window(0, 0, height, width)
        images = []
        for decoded in self.decode(result).cpu():
            canvas = rgb.copy()
            paste(canvas, fill, alpha, whole, decoded)
            images.append(Image.fromarray(canvas))
        return InpaintResult(
            images=images,
            request=request,
            fit="latent",
            windows=[whole],
            model_evaluations=samples * schedule.reverse_steps,
            network_calls=schedule.reverse_steps,
            frames=frames if hooks.record_every else [],
        )
