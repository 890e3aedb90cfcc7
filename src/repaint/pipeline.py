"""Inpaint your own images: `Inpainter` keeps a model loaded, `inpaint()` is the one-off call.

An image of any size and its mask go in; the mask is read in either convention, optionally
grown, and the image is fitted to the model's size (see `repaint.regions`). Every sample of
every window draws its noise from its own generator, seeded from the run seed, the image's
name, the sample and the window (`derive_seed`), so a result never depends on batch
composition and can be reproduced from its sidecar.
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from repaint.accel import PLAIN, Acceleration, accelerate
from repaint.errors import RepaintWarning
from repaint.device import derive_seed, make_generator, new_seed, resolve_device
from repaint.diffusion import GaussianDiffusion
from repaint.errors import RepaintError
from repaint.io import ImageSource, center_crop_resize, load_rgb
from repaint.masks import check_mask, grow_fill, load_mask
from repaint.networks import NUM_CLASSES, classifier_from_config, load_checkpoint, unet_from_config
from repaint.networks.diffusers_models import (
    is_diffusers_model,
    is_latent_model,
    load_pixel_model,
    locate,
)
from repaint.regions import Window, choose_fit, extract, feather, paste, plan_windows, to_tensor
from repaint.sampler import Step, classifier_guidance, repaint
from repaint.schedule import JumpSchedule


@dataclass(frozen=True)
class Preset:
    """A jump schedule and the step taken between its jumps."""

    schedule: JumpSchedule
    eta: float | None = None  # None: ancestral DDPM steps (the paper's); a number: DDIM steps

    @property
    def reverse_steps(self) -> int:
        return self.schedule.reverse_steps

    def describe(self) -> str:
        sampler = "" if self.eta is None else f", DDIM eta={self.eta:g}"
        return f"{self.reverse_steps} evaluations{sampler}"


PRESETS: dict[str, Preset] = {
    "paper": Preset(JumpSchedule(t_T=250, jump_length=10, jump_n_sample=10)),
    "fast": Preset(JumpSchedule(t_T=50, jump_length=10, jump_n_sample=5)),
    "draft": Preset(JumpSchedule(t_T=50, jump_length=10, jump_n_sample=2)),
}
"""Named settings: `paper` is Lugmayr et al.'s schedule (2,410 model evaluations per image);
`fast` (210) is the cheapest candidate that kept the paper's semantic accuracy on the digits
benchmark (docs/presets.md: DDIM steps between the jumps did worse there); `draft` (90) is
for quick looks."""

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
DEFAULT_MODEL = "digits"


def resolve_schedule(preset: str | None, schedule: JumpSchedule | Mapping | None) -> JumpSchedule:
    """An explicit schedule wins over a preset; unknown preset names are refused."""
    if schedule is not None:
        return (
            schedule if isinstance(schedule, JumpSchedule) else JumpSchedule.from_params(schedule)
        )
    return _preset(preset).schedule


def resolve_eta(preset: str | None, eta: float | str | None) -> float | None:
    """`eta` as the sampler takes it: "ddpm" -> None (ancestral), a number -> DDIM, None ->
    the preset's."""
    if eta is None:
        return _preset(preset).eta
    if eta == "ddpm":
        return None
    try:
        value = float(eta)
    except (TypeError, ValueError):
        value = math.nan
    if not 0 <= value <= 1:
        raise RepaintError(f"--eta: use ddpm or a DDIM eta in [0, 1], got {eta!r}")
    return value


def _preset(name: str | None) -> Preset:
    name = name or "paper"
    if name not in PRESETS:
        raise RepaintError(f"--preset: unknown preset {name!r}; use one of {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class Progress:
    """What a callback sees: the sampler's step, and which batch of how many it belongs to."""

    step: Step
    batch: int
    batches: int


@dataclass
class InpaintResult:
    images: list[Image.Image]  # one per sample, the input's size (the model's for fit=crop)
    seed: int
    schedule: JumpSchedule
    eta: float | None  # None: ancestral DDPM steps; a number: DDIM steps
    fit: str
    windows: list[Window]
    model_evaluations: int
    seconds: float
    frames: list[list[np.ndarray]] = field(default_factory=list)  # per sample, if recorded


@dataclass(frozen=True)
class _Item:
    sample: int
    window: int
    image: Tensor
    keep: Tensor
    seed: int


class Inpainter:
    """A loaded model ready to inpaint images of any size, one call per image."""

    text_conditioned = False

    def __init__(
        self,
        unet: torch.nn.Module,
        config: Mapping[str, Any],
        *,
        device: torch.device,
        name: str,
        checkpoint: Path | None = None,
        sha256: str | None = None,
        classifier: torch.nn.Module | None = None,
        classifier_scale: float = 0.0,
        acceleration: Acceleration = PLAIN,
    ) -> None:
        self.unet = unet.to(device).eval()
        self.config = dict(config)
        self.device = device
        self.name = name
        self.checkpoint = checkpoint
        self.sha256 = sha256
        self.classifier = None if classifier is None else classifier.to(device).eval()
        self.classifier_scale = classifier_scale
        self.image_size = int(config["image_size"])
        self.class_cond = bool(config.get("class_cond", False))
        self.acceleration = acceleration
        self._network = accelerate(self.unet, self.unet, acceleration, device)
        self._diffusions: dict[int, GaussianDiffusion] = {}

    @classmethod
    def from_pretrained(
        cls,
        name_or_path: str | Path = DEFAULT_MODEL,
        *,
        device: str | torch.device = "auto",
        dtype: str | torch.dtype = "fp32",
        model_config: str | Path | None = None,
        acceleration: Acceleration = PLAIN,
    ) -> Inpainter:
        """Load a registered model by name (see `repaint models`), a checkpoint path with its
        reference-format config (`model_config`, or a YAML next to the checkpoint), or a
        diffusers pixel model (a folder, or `hf:ORG/NAME`; needs the `diffusers` extra).
        `dtype` fp16/bf16 runs the network's convolutions in half precision (GroupNorm,
        softmax, the timestep embedding and the diffusion arithmetic stay fp32);
        `acceleration` adds channels_last and torch.compile (see `repaint.accel`)."""
        from repaint.models import resolve_model

        torch_device = device if isinstance(device, torch.device) else resolve_device(device)
        torch_dtype = _parse_dtype(dtype)
        if is_diffusers_model(name_or_path):
            network, config, folder = load_pixel_model(name_or_path)
            if torch_dtype != torch.float32:  # no torso scheme of its own: autocast
                acceleration = dataclasses.replace(acceleration, autocast=torch_dtype)
            return cls(
                network,
                config,
                device=torch_device,
                name=str(name_or_path),
                checkpoint=folder,
                acceleration=acceleration,
            )
        resolved = resolve_model(str(name_or_path), model_config)
        try:
            unet = unet_from_config(resolved.config, dtype=torch_dtype)
        except (KeyError, ValueError) as error:
            raise RepaintError(f"{resolved.checkpoint}: bad model config ({error})") from None
        load_checkpoint(unet, resolved.checkpoint, f"model {name_or_path}")
        classifier, scale = None, 0.0
        if resolved.classifier is not None:
            classifier = classifier_from_config(resolved.classifier.config, dtype=torch_dtype)
            load_checkpoint(classifier, resolved.classifier.path, f"classifier of {name_or_path}")
            scale = resolved.classifier.scale
        return cls(
            unet,
            resolved.config,
            device=torch_device,
            name=resolved.name,
            checkpoint=resolved.checkpoint,
            sha256=resolved.sha256,
            classifier=classifier,
            classifier_scale=scale,
            acceleration=acceleration,
        )

    def diffusion(self, t_T: int) -> GaussianDiffusion:
        """The model's diffusion respaced to `t_T` steps (cached)."""
        steps = int(self.config.get("diffusion_steps", 1000))
        if t_T > steps:
            raise RepaintError(f"t_T={t_T} exceeds the model's {steps} diffusion steps")
        if t_T not in self._diffusions:
            self._diffusions[t_T] = GaussianDiffusion.from_config(
                steps=steps,
                noise_schedule=self.config.get("noise_schedule", "linear"),
                timestep_respacing=str(t_T),
                learn_sigma=bool(self.config.get("learn_sigma", False)),
                sigma_small=bool(self.config.get("sigma_small", False)),
                predict_xstart=bool(self.config.get("predict_xstart", False)),
                betas=self.config.get("betas"),
            )
        return self._diffusions[t_T]

    def denoise(self, x: Tensor, timesteps: Tensor, labels: Tensor | None) -> Tensor:
        return self._network(x, timesteps, labels if self.class_cond else None)

    def __call__(
        self,
        image: ImageSource,
        mask: ImageSource,
        *,
        preset: str | None = "paper",
        schedule: JumpSchedule | Mapping | None = None,
        eta: float | str | None = None,
        num_samples: int = 1,
        seed: int | None = None,
        mask_mode: str = "keep",
        grow: int = 0,
        fit: str = "auto",
        mask_blur: int | None = None,
        context: float = 0.5,
        class_label: int | None = None,
        classifier_scale: float | None = None,
        batch_size: int | None = None,
        prompt: str | None = None,
        negative_prompt: str = "",
        guidance_scale: float | None = None,
        name: str = "image",
        callback: Callable[[Progress], None] | None = None,
        record_every: int = 0,
    ) -> InpaintResult:
        """Inpaint one image. `mask` is white = keep (`mask_mode="keep"`, the reference's
        convention) or white = fill (`"fill"`). An explicit `schedule` overrides the preset's;
        `eta` is "ddpm" (ancestral steps), a DDIM eta in [0, 1], or None for the preset's.
        See the module doc for `fit`; `record_every` keeps an (x_t | predicted x0) frame
        every that many steps for animations."""
        started = time.perf_counter()
        if prompt or negative_prompt or guidance_scale is not None:
            raise RepaintError(
                f"--prompt: model {self.name} is not text-conditioned; prompts need a "
                "Stable Diffusion (latent diffusion) model"
            )
        jump_schedule = resolve_schedule(preset, schedule)
        sampler_eta = resolve_eta(preset, eta)
        if num_samples < 1:
            raise RepaintError(f"--num-samples must be at least 1, got {num_samples}")
        if class_label is not None and not 0 <= class_label < NUM_CLASSES:
            raise RepaintError(f"--class: {class_label} is not a class id in [0, {NUM_CLASSES})")
        seed = new_seed() if seed is None else seed
        rgb = load_rgb(image, name)
        mask_name = str(mask) if isinstance(mask, (str, Path)) else f"mask of {name}"
        keep = load_mask(mask, mode=mask_mode, size=(rgb.shape[1], rgb.shape[0]), name=mask_name)
        keep = grow_fill(keep, grow)
        size = self.image_size
        resolved_fit = choose_fit(fit, *rgb.shape[:2], size)
        if resolved_fit == "crop":
            rgb, keep = _centre_crop(rgb, keep, size)
        fill = ~keep
        result = InpaintResult([], seed, jump_schedule, sampler_eta, resolved_fit, [], 0, 0.0)
        problem = check_mask(keep, mask_name)
        if problem is not None:
            warnings.warn(problem, RepaintWarning, stacklevel=2)
        if not fill.any():  # nothing to do: the output is the input
            result.images = [Image.fromarray(rgb) for _ in range(num_samples)]
            return result

        result.windows = plan_windows(fill, size, resolved_fit, context)
        image_t, fill_t = to_tensor(rgb), torch.from_numpy(fill)
        items = []
        for index, window in enumerate(result.windows):
            window_image, window_keep = extract(image_t, fill_t, window, size)
            items += [
                _Item(k, index, window_image, window_keep, derive_seed(seed, name, k, index))
                for k in range(num_samples)
            ]
        batch = batch_size or num_samples
        batches = [items[i : i + batch] for i in range(0, len(items), batch)]
        diffusion = self.diffusion(jump_schedule.t_T)
        scale = self.classifier_scale if classifier_scale is None else classifier_scale
        guidance = None
        if self.classifier is not None and scale > 0:
            guidance = classifier_guidance(self.classifier, scale)

        canvases = [rgb.copy() for _ in range(num_samples)]
        alpha = feather(fill_t, mask_blur or 0)
        result.frames = [[] for _ in range(num_samples)] if record_every else []
        for number, chunk in enumerate(batches):
            generators = [make_generator(item.seed, self.device) for item in chunk]
            labels = self._labels(chunk, generators, class_label, guidance is not None)

            def on_step(step: Step, number: int = number, chunk: list[_Item] = chunk) -> None:
                if record_every and (
                    step.index % record_every == 0 or step.index == step.total - 1
                ):
                    for row, item in enumerate(chunk):
                        if item.window == 0:
                            result.frames[item.sample].append(_frame(step, row))
                if callback is not None:
                    callback(Progress(step, number, len(batches)))

            samples = repaint(
                self.denoise,
                diffusion,
                torch.stack([item.image for item in chunk]).to(self.device),
                torch.stack([item.keep for item in chunk]).to(self.device),
                jump_schedule,
                generator=generators,
                labels=labels,
                guidance=guidance,
                eta=sampler_eta,
                clip_denoised=bool(self.config.get("clip_denoised", True)),
                callback=on_step,
            )
            for item, sample in zip(chunk, samples.float().cpu(), strict=True):
                window = result.windows[item.window]
                paste(canvases[item.sample], fill, alpha, window, sample)
        result.images = [Image.fromarray(canvas) for canvas in canvases]
        result.model_evaluations = jump_schedule.reverse_steps * len(batches)
        result.seconds = time.perf_counter() - started
        return result

    def _labels(
        self,
        chunk: list[_Item],
        generators: list[torch.Generator],
        class_label: int | None,
        guided: bool,
    ) -> Tensor | None:
        """Fixed labels, or one random label per item drawn first from its own generator."""
        if not (self.class_cond or guided):
            return None
        if class_label is not None:
            return torch.full((len(chunk),), class_label, device=self.device)
        return torch.cat(
            [torch.randint(0, NUM_CLASSES, (1,), generator=g, device=g.device) for g in generators]
        ).to(self.device)


def load_inpainter(
    source: str | Path = DEFAULT_MODEL,
    *,
    device: str | torch.device = "auto",
    dtype: str | torch.dtype = "fp32",
    model_config: str | Path | None = None,
    acceleration: Acceleration = PLAIN,
):
    """Any model: a registered name, a checkpoint, or a diffusers folder / `hf:` id, pixel
    (`Inpainter`) or latent with a text prompt (`repaint.latent.LatentInpainter`)."""
    if is_diffusers_model(source) and is_latent_model(locate(source)):
        from repaint.latent import LatentInpainter

        torch_device = device if isinstance(device, torch.device) else resolve_device(device)
        return LatentInpainter.from_folder(source, device=torch_device, dtype=_parse_dtype(dtype))
    return Inpainter.from_pretrained(
        source, device=device, dtype=dtype, model_config=model_config, acceleration=acceleration
    )


def inpaint(
    image: ImageSource,
    mask: ImageSource,
    model: str | Path | Inpainter = DEFAULT_MODEL,
    *,
    device: str = "auto",
    dtype: str = "fp32",
    **options: Any,
) -> Image.Image | list[Image.Image]:
    """One-off inpainting: returns an image, or a list with `num_samples > 1`.

    `options` are those of `Inpainter.__call__` (preset, schedule, eta, num_samples, seed,
    mask_mode, grow, fit, mask_blur, class_label, classifier_scale, batch_size; prompt,
    negative_prompt, guidance_scale for Stable Diffusion models). Keep an
    `Inpainter` to inpaint many images without reloading the model.
    """
    inpainter = (
        model
        if isinstance(model, Inpainter) or hasattr(model, "unet")
        else load_inpainter(model, device=device, dtype=dtype)
    )
    images = inpainter(image, mask, **options).images
    return images if options.get("num_samples", 1) > 1 else images[0]


def _parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in DTYPES:
        raise RepaintError(f"--dtype: unknown precision {dtype!r}; use one of {', '.join(DTYPES)}")
    return DTYPES[dtype]


def _centre_crop(rgb: np.ndarray, keep: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The reference's centre-crop resize for the image, nearest-neighbour for the mask."""
    image = center_crop_resize(Image.fromarray(rgb), size)
    height, width = keep.shape
    scale = size / min(height, width)
    resized = Image.fromarray(keep).resize(
        (round(width * scale), round(height * scale)), Image.NEAREST
    )
    array = np.asarray(resized)
    top, left = (array.shape[0] - size) // 2, (array.shape[1] - size) // 2
    return image, array[top : top + size, left : left + size].astype(bool)


def _frame(step: Step, row: int) -> np.ndarray:
    """x_t and the predicted x0 side by side, uint8."""
    pair = torch.cat([step.x[row], step.pred_x0[row]], dim=-1).float().clamp(-1, 1)
    return ((pair + 1) * 127.5).round().to(torch.uint8).permute(1, 2, 0).cpu().numpy()
