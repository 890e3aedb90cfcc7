"""What benchmarks/speed.py times: one case per architecture, sampler, fast path and batch,
each a whole sampler run on a half-masked random image, with networks of the published
architectures and random weights (nothing to download). Every network and diffusion is
built by `repaint.prior.create_prior`, the factory every user's model goes through."""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from benchmarks.lib.hardware import count_flops
from repaint.accel import Acceleration
from repaint.networks import unet_from_config
from repaint.networks.diffusers_models import PixelUNet
from repaint.prior import Prior, create_prior
from repaint.samplers.repaint import repaint
from repaint.schedule import JumpSchedule

Peaks = Mapping[str, float | None]  # precision -> peak FLOP/s

CELEBAHQ_UNET2D = {  # google/ddpm-ema-celebahq-256, unet/config.json
    "sample_size": 256,
    "in_channels": 3,
    "out_channels": 3,
    "layers_per_block": 2,
    "block_out_channels": (128, 128, 256, 256, 512, 512),
    "down_block_types": ("DownBlock2D",) * 4 + ("AttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "AttnUpBlock2D") + ("UpBlock2D",) * 4,
    "act_fn": "silu",
    "attention_head_dim": None,
    "center_input_sample": False,
    "downsample_padding": 0,
    "flip_sin_to_cos": False,
    "freq_shift": 1,
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-6,
    "norm_num_groups": 32,
    "time_embedding_type": "positional",
}
VARIANTS = {  # name -> (network dtype, acceleration)
    "fp32": ("fp32", Acceleration()),
    "channels_last": ("fp32", Acceleration(channels_last=True)),
    "bf16": ("bf16", Acceleration()),
    "fp16": ("fp16", Acceleration()),
    "compile": ("fp32", Acceleration(compile=True)),
    "fast": ("bf16", Acceleration(channels_last=True, compile=True)),
}


@dataclass
class Case:
    arch: str
    sampler: str  # "repaint" (ours) or "diffusers"
    variant: str
    batch: int
    schedule: JumpSchedule
    run: Callable[[], Any]
    params: int
    flops_per_image: float
    peak_flops: float | None
    precision: str
    times: list[float] = field(default_factory=list)
    first_run_s: float = 0.0
    reads: int | None = None
    cuda_syncs: int | None = None
    peak_memory_mb: float = 0.0


def half_masked_inputs(
    size: int, batch: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random image (seed 0) and a keep-mask of its left half."""
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
    keep = torch.ones(batch, 1, size, size)
    keep[..., size // 2 :] = 0
    return image.to(device), keep.to(device)


def random_checkpoint(config: dict, folder: Path) -> Path:
    """A checkpoint of the architecture `config` describes, with random weights (seed 0)."""
    torch.manual_seed(0)
    path = folder / "random.pt"
    torch.save(unet_from_config(config).state_dict(), path)
    return path


def our_cases(
    arch: str,
    config: dict,
    variants: list[str],
    batches: list[int],
    schedule: JumpSchedule,
    device: torch.device,
    peaks: Peaks,
) -> list[Case]:
    """Each variant's network comes from `create_prior`, as every user's does: loaded from a
    random-weight checkpoint, so that fp16/bf16 get our UNet's own precision scheme (a ready
    network passed as `network=` at fp16/bf16 would be put under autocast instead). An fp32
    network is shared (`network=`) by the variants that leave its memory format alone."""
    cases = []
    loaded: dict[tuple[str, bool], torch.nn.Module] = {}
    with tempfile.TemporaryDirectory(prefix="speed-") as folder:
        checkpoint = random_checkpoint(config, Path(folder))
        for variant in variants:
            dtype_name, acceleration = VARIANTS[variant]
            if dtype_name == "fp16" and device.type != "cuda":
                continue
            key = (dtype_name, acceleration.channels_last)
            if dtype_name == "fp32" and key in loaded:
                prior = create_prior(
                    config, network=loaded[key], device=device, acceleration=acceleration
                )
            else:
                prior = create_prior(
                    config,
                    checkpoint=checkpoint,
                    device=device,
                    dtype=dtype_name,
                    acceleration=acceleration,
                    source=f"random {arch} weights",
                )
                loaded[key] = prior.network
            cases += _variant_cases(
                arch, prior, variant, dtype_name, batches, schedule, device, peaks
            )
    return cases


def _variant_cases(
    arch: str,
    prior: Prior,
    variant: str,
    dtype_name: str,
    batches: list[int],
    schedule: JumpSchedule,
    device: torch.device,
    peaks: Peaks,
) -> list[Case]:
    network, size = prior.network, prior.image_size
    diffusion = prior.diffusion(schedule.t_T)
    params = sum(p.numel() for p in network.parameters())
    probe = torch.randn(1, 3, size, size, device=device)
    flops = count_flops(lambda: network(probe, torch.tensor([500], device=device)))
    cases = []
    for batch in batches:
        image, keep = half_masked_inputs(size, batch, device)

        def run(image=image, keep=keep) -> Any:
            generators = [torch.Generator(device).manual_seed(k) for k in range(len(image))]
            with torch.no_grad():
                return repaint(
                    prior.denoise,
                    diffusion,
                    image,
                    keep,
                    schedule,
                    generator=generators,
                    clip_denoised=prior.clip_denoised,
                )

        cases.append(
            Case(
                arch,
                "repaint",
                variant,
                batch,
                schedule,
                run,
                params,
                flops,
                peaks[dtype_name],
                dtype_name,
            )
        )
    return cases


def diffusers_cases(
    batches: list[int], schedule: JumpSchedule, device: torch.device, peaks: Peaks
) -> list[Case]:
    """diffusers' UNet2DModel (google/ddpm-ema-celebahq-256's architecture) driven by its
    RePaintPipeline and by our sampler: same network, schedule and batch."""
    from diffusers import RePaintPipeline, RePaintScheduler, UNet2DModel

    torch.manual_seed(0)
    unet = UNet2DModel(**CELEBAHQ_UNET2D).to(device).eval()
    scheduler = RePaintScheduler(
        num_train_timesteps=1000,
        beta_start=1e-4,
        beta_end=0.02,
        beta_schedule="linear",
        eta=1.0,
        clip_sample=True,
    )
    pipeline = RePaintPipeline(unet=unet, scheduler=scheduler).to(device)
    pipeline.set_progress_bar_config(disable=True)
    # Our sampler gets the same UNet2DModel the way a diffusers pixel model is loaded
    # (`repaint.loading`): behind PixelUNet, through create_prior, with the scheduler's
    # diffusion (linear betas, fixed small variance, clipped x0).
    prior = create_prior(
        {
            "image_size": 256,
            "class_cond": False,
            "diffusion_steps": 1000,
            "noise_schedule": "linear",
            "learn_sigma": False,
            "sigma_small": True,
            "predict_xstart": False,
            "clip_denoised": True,
        },
        network=PixelUNet(unet),
        device=device,
    )
    diffusion = prior.diffusion(schedule.t_T)
    params = sum(p.numel() for p in unet.parameters())
    probe = torch.randn(1, 3, 256, 256, device=device)
    flops = count_flops(lambda: unet(probe, torch.tensor([500], device=device)))

    cases = []
    for batch in batches:
        image, keep = half_masked_inputs(256, batch, device)

        def run_diffusers(image=image, keep=keep) -> Any:
            generators = [torch.Generator(device).manual_seed(k) for k in range(len(image))]
            with torch.no_grad():
                return pipeline(
                    image,
                    keep,
                    num_inference_steps=schedule.t_T,
                    eta=1.0,
                    jump_length=schedule.jump_length,
                    jump_n_sample=schedule.jump_n_sample,
                    generator=generators,
                    output_type="np",
                ).images

        def run_ours(image=image, keep=keep) -> Any:
            generators = [torch.Generator(device).manual_seed(k) for k in range(len(image))]
            with torch.no_grad():
                return repaint(
                    prior.denoise,
                    diffusion,
                    image,
                    keep,
                    schedule,
                    generator=generators,
                    eta=1.0,
                    clip_denoised=prior.clip_denoised,
                )

        for sampler, run in (("diffusers", run_diffusers), ("repaint", run_ours)):
            cases.append(
                Case(
                    "ddpm-celebahq-256",
                    sampler,
                    "fp32",
                    batch,
                    schedule,
                    run,
                    params,
                    flops,
                    peaks["fp32"],
                    "fp32",
                )
            )
    return cases
