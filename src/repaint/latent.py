"""Latent RePaint: the same jump schedule in a latent diffusion model's latent space, guided
by a text prompt (Stable Diffusion and other diffusers `StableDiffusionPipeline` folders).

The image is encoded with the VAE (its `scaling_factor` applied); the mask goes to the latent
grid conservatively, so a latent cell counts as known only if all its pixels are; the RePaint
loop (ours, DDPM or DDIM steps) runs on the latents with classifier-free guidance in one
batched UNet call; the result is decoded and pasted into the full-resolution input where it
was to be filled, with a feathered edge, so every known pixel is kept exactly.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from repaint.errors import RepaintWarning
from repaint.device import make_generator, new_seed
from repaint.diffusion import GaussianDiffusion
from repaint.errors import RepaintError
from repaint.io import ImageSource, load_rgb
from repaint.masks import check_mask, load_mask
from repaint.networks.diffusers_models import import_diffusers, locate, scheduler_config
from repaint.regions import Window, feather, paste, to_tensor
from repaint.sampler import Step, repaint
from repaint.schedule import JumpSchedule

DEFAULT_GUIDANCE = 7.5
DEFAULT_FEATHER = 4  # pixels of blending inside the hole, over the VAE's seams


def latent_keep(keep: Tensor, factor: int, grow: int = 0) -> Tensor:
    """(N, 1, H, W) pixel keep-mask -> latent grid: a cell is known only if every pixel of it
    is; `grow` widens the area to fill by that many cells."""
    cells = -F.max_pool2d(-keep.float(), factor)
    if grow:
        cells = -F.max_pool2d(-cells, 2 * grow + 1, stride=1, padding=grow)
    return cells


class LatentInpainter:
    """A latent diffusion pipeline ready to inpaint images of any multiple-of-8 size."""

    class_cond = False
    text_conditioned = True
    classifier = None
    sha256 = None

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
        self.factor = 2 ** (len(self.vae.config.block_out_channels) - 1)
        self.scaling = float(getattr(self.vae.config, "scaling_factor", 0.18215))
        self.image_size = None  # any multiple of `factor`
        self._diffusions: dict[int, GaussianDiffusion] = {}

    @classmethod
    def from_folder(cls, source: str | Path, *, device: torch.device, dtype: torch.dtype):
        diffusers = import_diffusers(source)
        try:
            import transformers
        except ImportError:
            raise RepaintError(
                f"{source}: Stable Diffusion models need the optional extra: "
                "pip install 'repaint[diffusers]'"
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
            self._diffusions[t_T] = GaussianDiffusion.from_config(
                timestep_respacing=str(t_T),
                sigma_small=bool(self.config["sigma_small"]),
                betas=self.config["betas"],
            )
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

    def __call__(
        self,
        image: ImageSource,
        mask: ImageSource,
        *,
        preset: str | None = "paper",
        schedule: JumpSchedule | Mapping | None = None,
        eta: float | str | None = None,
        prompt: str | None = None,
        negative_prompt: str = "",
        guidance_scale: float | None = None,
        num_samples: int = 1,
        seed: int | None = None,
        mask_mode: str = "keep",
        grow: int = 0,
        mask_blur: int | None = None,
        fit: str = "auto",
        class_label: int | None = None,
        classifier_scale: float | None = None,
        batch_size: int | None = None,
        name: str = "image",
        callback: Callable[[Any], None] | None = None,
        record_every: int = 0,
    ):
        """Inpaint one image at its own size; `grow` is in latent cells (`factor` pixels
        each), `mask_blur` feathers the pasted edge (default 4 px). All samples run as one
        batch (twice that for the guidance)."""
        from repaint.pipeline import (
            InpaintResult,
            Progress,
            derive_seed,
            resolve_eta,
            resolve_schedule,
        )

        started = time.perf_counter()
        if class_label is not None or classifier_scale:
            raise RepaintError(f"--class: model {self.name} is guided by a prompt, not classes")
        if fit not in ("auto", "region"):
            raise RepaintError(f"--fit {fit}: latent models inpaint the image at its own size")
        schedule = resolve_schedule(preset, schedule)
        eta = resolve_eta(preset, eta)
        scale = DEFAULT_GUIDANCE if guidance_scale is None else guidance_scale
        seed = new_seed() if seed is None else seed
        rgb = load_rgb(image, name)
        height, width = rgb.shape[:2]
        if height % self.factor or width % self.factor:
            raise RepaintError(
                f"{name}: {width}x{height} is not a multiple of {self.factor} in both sides, "
                "as the latent grid needs; crop or resize it"
            )
        mask_name = str(mask) if isinstance(mask, (str, Path)) else f"mask of {name}"
        keep = load_mask(mask, mode=mask_mode, size=(width, height), name=mask_name)
        problem = check_mask(keep, mask_name)
        if problem is not None:
            warnings.warn(problem, RepaintWarning, stacklevel=2)
        result = InpaintResult([], seed, schedule, eta, "latent", [], 0, 0.0)
        if keep.all():
            result.images = [Image.fromarray(rgb) for _ in range(num_samples)]
            return result
        pixels = to_tensor(rgb)[None].to(self.device)
        latents = self.encode(pixels).expand(num_samples, -1, -1, -1)
        cells = latent_keep(torch.from_numpy(keep)[None, None].to(self.device), self.factor, grow)
        generators = [
            make_generator(derive_seed(seed, name, k, 0), self.device) for k in range(num_samples)
        ]
        denoise = self.denoiser(prompt or "", negative_prompt, scale, num_samples)
        result.frames = [[] for _ in range(num_samples)] if record_every else []

        def on_step(step: Step) -> None:
            if record_every and (step.index % record_every == 0 or step.index == step.total - 1):
                for k, frame in enumerate(self.decode(step.pred_x0)):
                    result.frames[k].append(_uint8(frame))
            if callback is not None:
                callback(Progress(step, 0, 1))

        samples = repaint(
            denoise,
            self.diffusion(schedule.t_T),
            latents,
            cells,
            schedule,
            generator=generators,
            eta=eta,
            clip_denoised=False,
            callback=on_step,
        )
        fill = ~keep
        alpha = feather(torch.from_numpy(fill), DEFAULT_FEATHER if mask_blur is None else mask_blur)
        whole = Window(0, 0, height, width)
        for decoded in self.decode(samples).cpu():
            canvas = rgb.copy()
            paste(canvas, fill, alpha, whole, decoded)
            result.images.append(Image.fromarray(canvas))
        result.model_evaluations = schedule.reverse_steps
        result.seconds = time.perf_counter() - started
        return result


def _uint8(image: Tensor) -> np.ndarray:
    return ((image + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
