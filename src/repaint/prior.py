"""One factory for a diffusion prior: network + respaced diffusion + guidance, from a config.

Like guided-diffusion's `create_model_and_diffusion`, `create_prior` builds everything a
sampler needs from one reference-format config (model, diffusion and classifier keys, plus
`betas`/`sigma_small`/`clip_denoised` for diffusers schedulers). `repaint run`, `repaint
inpaint`, the Python API and the benchmarks all build their networks here, so the golden
vectors that check `repaint run` check the path every user takes. Class labels for
class-conditional models and classifiers are drawn here too (`draw_labels`), in one place.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from repaint.accel import PLAIN, Acceleration, accelerate
from repaint.diffusion import GaussianDiffusion
from repaint.errors import FieldError, RepaintError
from repaint.networks import (
    NUM_CLASSES,
    UNetModel,
    classifier_from_config,
    load_checkpoint,
    unet_from_config,
)
from repaint.samplers.common import Denoiser, Guidance
from repaint.samplers.repaint import classifier_guidance

if TYPE_CHECKING:
    from repaint.request import InpaintRequest

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def parse_dtype(dtype: str | torch.dtype) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype not in PRECISIONS:
        raise RepaintError(
            f"--dtype: unknown precision {dtype!r}; use one of {', '.join(PRECISIONS)}"
        )
    return PRECISIONS[dtype]


class DiffusionPrior(ABC):
    """What every sampler needs of a model, whatever its family, k-diffusion style: the
    denoiser with its conditioning bound in (`conditioned`), the diffusion tables for a
    schedule (`diffusion`, cached), and the way into and out of the space it denoises
    (`encode`/`decode`: the identity for pixel models, the VAE for latent ones)."""

    family = "pixel"
    batch_pixels = 8 * 256 * 256
    """A batch's memory budget in model-space pixels: 8 items of a 256 px UNet (a few GB at
    fp32), 512 of the 32 px digits model."""

    def __init__(self, config: Mapping[str, Any], device: torch.device) -> None:
        self.config = dict(config)  # reference keys with defaults (or a scheduler's `betas`)
        self.device = device
        self._diffusions: dict[str, GaussianDiffusion] = {}

    uses_labels = False

    @property
    def clip_denoised(self) -> bool:
        return bool(self.config.get("clip_denoised", True))

    @property
    def diffusion_steps(self) -> int:
        betas = self.config.get("betas")
        return len(betas) if betas is not None else int(self.config.get("diffusion_steps", 1000))

    def diffusion(self, respacing: int | str) -> GaussianDiffusion:
        """The diffusion respaced to `respacing` (t_T, or the reference's string; cached)."""
        key = str(respacing)
        if key.isdigit() and int(key) > self.diffusion_steps:
            raise FieldError(
                "schedule.t_T",
                f"{key} exceeds the model's {self.diffusion_steps} diffusion steps; use at "
                f"most {self.diffusion_steps}",
            )
        if key not in self._diffusions:
            self._diffusions[key] = diffusion_from_config(self.config, key)
        return self._diffusions[key]

    @abstractmethod
    def conditioned(
        self, request: InpaintRequest, labels: Tensor | None
    ) -> tuple[Denoiser, Guidance | None]:
        """The denoiser (and classifier guidance, if any) with the request's conditioning and
        these class labels bound in: samplers call it with labels None."""

    def encode(self, pixels: Tensor) -> Tensor:
        return pixels

    def decode(self, x: Tensor) -> Tensor:
        return x


class Prior(DiffusionPrior):
    """A loaded pixel-space network with its diffusion, ready for any sampler of
    `repaint.samplers`."""

    def __init__(
        self,
        network: nn.Module,
        config: Mapping[str, Any],
        denoise: Denoiser,
        device: torch.device,
        classifier: nn.Module | None = None,
        classifier_scale: float = 0.0,
    ) -> None:
        super().__init__(config, device)
        self.network, self.denoise = network, denoise  # the network behind the interface
        self.classifier, self.classifier_scale = classifier, classifier_scale

    @property
    def image_size(self) -> int:
        return int(self.config["image_size"])

    @property
    def class_cond(self) -> bool:
        return bool(self.config.get("class_cond", False))

    @property
    def uses_labels(self) -> bool:
        """Labels matter to a class-conditional network or a classifier, nothing else."""
        return self.class_cond or (self.classifier is not None and self.classifier_scale > 0)

    def guidance(self, scale: float | None = None) -> Guidance | None:
        """Classifier guidance at `scale` (None: the model's), or None without a classifier."""
        scale = self.classifier_scale if scale is None else scale
        if self.classifier is None or scale <= 0:
            return None
        return classifier_guidance(self.classifier, scale)

    def conditioned(
        self, request: InpaintRequest, labels: Tensor | None
    ) -> tuple[Denoiser, Guidance | None]:
        denoise, guided = self.denoise, self.guidance(request.classifier_scale)

        def bound(x: Tensor, timesteps: Tensor, _labels: Tensor | None = None) -> Tensor:
            return denoise(x, timesteps, labels)

        if guided is None:
            return bound, None

        def guidance(x: Tensor, timesteps: Tensor, _labels: Tensor | None = None) -> Tensor:
            return guided(x, timesteps, labels)

        return bound, guidance


def diffusion_from_config(config: Mapping[str, Any], respacing: int | str) -> GaussianDiffusion:
    """guided-diffusion's diffusion keys (or a diffusers scheduler's betas) -> our process."""
    return GaussianDiffusion.from_config(
        steps=int(config.get("diffusion_steps", 1000)),
        noise_schedule=config.get("noise_schedule", "linear"),
        timestep_respacing=str(respacing),
        learn_sigma=bool(config.get("learn_sigma", False)),
        sigma_small=bool(config.get("sigma_small", False)),
        predict_xstart=bool(config.get("predict_xstart", False)),
        betas=config.get("betas"),
    )


def create_prior(
    config: Mapping[str, Any],
    *,
    checkpoint: Path | None = None,
    network: nn.Module | None = None,
    classifier: tuple[Path, Mapping[str, Any], float] | None = None,
    device: torch.device,
    dtype: str | torch.dtype = "fp32",
    classifier_dtype: str | torch.dtype | None = None,
    acceleration: Acceleration = PLAIN,
    source: str = "--model",
) -> Prior:
    """Build (or take) the network, load its weights, and wrap it for the sampler.

    Either `checkpoint` (a guided-diffusion state dict for the UNet `config` describes) or
    a ready `network` (e.g. a diffusers UNet2DModel). `classifier` is (path, config, scale).
    `classifier_dtype` defaults to `dtype`. Our UNets keep their torso scheme at fp16/bf16
    (convolutions in half precision, GroupNorm, softmax and the timestep embedding in fp32);
    other networks get autocast.
    """
    torch_dtype = parse_dtype(dtype)
    if network is None:
        if checkpoint is None:
            raise RepaintError("create_prior needs a checkpoint or a network")
        try:
            network = unet_from_config(config, dtype=torch_dtype)
        except (KeyError, ValueError) as error:
            raise RepaintError(f"{checkpoint}: bad model config ({error})") from None
        load_checkpoint(network, checkpoint, source)
    elif isinstance(network, UNetModel):  # a ready guided-diffusion UNet: its torso scheme
        network.set_torso_dtype(torch_dtype)
    elif torch_dtype != torch.float32:  # no precision scheme of its own: autocast
        acceleration = Acceleration(acceleration.channels_last, acceleration.compile, torch_dtype)
    network = network.to(device).eval()
    class_cond = bool(config.get("class_cond", False))

    def plain(x: Tensor, timesteps: Tensor, labels: Tensor | None) -> Tensor:
        return network(x, timesteps, labels if class_cond else None)

    prior = Prior(network, config, accelerate(plain, network, acceleration, device), device)
    if classifier is not None:
        path, classifier_config, scale = classifier
        model_dtype = torch_dtype if classifier_dtype is None else parse_dtype(classifier_dtype)
        model = classifier_from_config(classifier_config, dtype=model_dtype)
        load_checkpoint(model, path, f"classifier of {source}")
        prior.classifier, prior.classifier_scale = model.to(device).eval(), float(scale)
    return prior


def draw_labels(
    generator: torch.Generator | Sequence[torch.Generator],
    count: int,
    device: torch.device,
    class_label: int | None = None,
) -> Tensor:
    """Class labels: `class_label` for all, else random ones drawn before any noise.

    With one generator per image each image draws its own label first (results independent
    of batching); with a single generator the batch's labels come in one draw, as the
    reference's `test.py` does.
    """
    if class_label is not None:
        if not 0 <= class_label < NUM_CLASSES:
            problem = f"{class_label} is not a class id in [0, {NUM_CLASSES})"
            raise FieldError("class_label", problem)
        return torch.full((count,), class_label, device=device)
    if isinstance(generator, torch.Generator):
        return torch.randint(0, NUM_CLASSES, (count,), generator=generator, device=device)
    return torch.cat(
        [torch.randint(0, NUM_CLASSES, (1,), generator=g, device=g.device) for g in generator]
    ).to(device)
