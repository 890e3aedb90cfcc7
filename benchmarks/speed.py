"""Sampling speed: our RePaint loop and its fast paths, against diffusers' RePaintPipeline.

    python benchmarks/speed.py --out docs                       # CPU: ~25 min on 2 cores
    python benchmarks/speed.py --device cuda --out docs/gpu     # GPU: the paper schedule

Each case runs the whole sampler (known-region injection, jumps, the final paste) on one
random image with a half mask, with networks of the published architectures and random
weights, so nothing is downloaded; every network and diffusion is built by
`repaint.prior.create_prior`, the factory every user's model goes through:

- `digits` (1.9 M parameters, 32 px, the embedded model) and `celeba256` (the guided-diffusion
  256 px UNet of the CelebA-HQ and Places2 checkpoints, 552.8 M) through our sampler, plain
  fp32 (what the reference computes) and with each fast path of `repaint.accel`;
- `ddpm-celebahq-256`, diffusers' `UNet2DModel` in the configuration of
  `google/ddpm-ema-celebahq-256` (113.7 M), driven in turn by `RePaintPipeline` and by our
  sampler, with the same schedule and batch, so their ratio compares samplers only.

Every case is run once to warm up (for `compile` this run is reported as the compile time),
then `--repeats` times, alternating between the cases of an architecture; the median is
reported, with the device synchronised before each clock read. FLOPs per image and model
evaluation are counted once with `torch.utils.flop_counter`; achieved FLOP/s is compared
with the device's peak (on CPU a measured dense matmul rate of the same precision; on GPU the
datasheet's dense peak). `reads/run` counts the values copied from tensors into Python during
one run (each is a host-device sync on a GPU): ours reads one (the NaN check after the loop).
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import resource
import shlex
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.overrides import TorchFunctionMode

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from repaint.accel import Acceleration
from repaint.checkpoints import MODELS
from repaint.device import resolve_device
from repaint.io import atomic_output
from repaint.networks import unet_from_config
from repaint.networks.diffusers_models import PixelUNet
from repaint.prior import Prior, create_prior
from repaint.sampler import repaint
from repaint.schedule import JumpSchedule

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
GPU_PEAK_TFLOPS = {  # dense, from the datasheets: (fp32, tf32, bf16/fp16 tensor cores)
    "H100": (67, 495, 989),
    "H200": (67, 495, 989),
    "A100": (19.5, 156, 312),
    "A10": (31.2, 62.5, 125),
    "L4": (30.3, 60, 121),
}
SCHEDULES = {  # (device type, architecture size) -> default schedule
    ("cpu", "small"): JumpSchedule(t_T=50, jump_length=10, jump_n_sample=2),
    ("cpu", "large"): JumpSchedule(t_T=3, jump_length=1, jump_n_sample=2),
    ("cuda", "small"): JumpSchedule(t_T=250, jump_length=10, jump_n_sample=10),
    ("cuda", "large"): JumpSchedule(t_T=250, jump_length=10, jump_n_sample=10),
}
VARIANTS = {  # name -> (network dtype, acceleration)
    "fp32": ("fp32", Acceleration()),
    "channels_last": ("fp32", Acceleration(channels_last=True)),
    "bf16": ("bf16", Acceleration()),
    "fp16": ("fp16", Acceleration()),
    "compile": ("fp32", Acceleration(compile=True)),
    "fast": ("bf16", Acceleration(channels_last=True, compile=True)),
}


class ValueReads(TorchFunctionMode):
    """Counts calls that copy a tensor's value into Python: each is a device sync on a GPU."""

    READS = frozenset(
        {"item", "tolist", "numpy", "__bool__", "__int__", "__float__", "__index__", "cpu"}
    )

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[str] = []

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if getattr(func, "__name__", "") in self.READS:
            self.calls.append(func.__name__)
        return func(*args, **(kwargs or {}))


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


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count_flops(forward: Callable[[], Any]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        forward()
    return float(counter.get_total_flops())


def cpu_matmul_peak(dtype: torch.dtype, sizes=(1024, 2048, 4096), repeats: int = 8) -> float:
    """The best FLOP/s of large dense matmuls in `dtype`: the practical peak of this CPU."""
    best = 0.0
    for size in sizes:
        a = torch.randn(size, size, dtype=dtype)
        b = torch.randn(size, size, dtype=dtype)
        a @ b
        fastest = math.inf
        for _ in range(repeats):
            started = time.perf_counter()
            a @ b
            fastest = min(fastest, time.perf_counter() - started)
        best = max(best, 2 * size**3 / fastest)
    return best


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def peak_flops(device: torch.device, precision: str) -> tuple[float | None, str]:
    if device.type == "cpu":
        dtype = torch.bfloat16 if precision == "bf16" else torch.float32
        return cpu_matmul_peak(dtype), f"best measured {precision} matmul (1024-4096 square)"
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        for key, (fp32, tf32, half) in GPU_PEAK_TFLOPS.items():
            if key in name:
                if precision in ("bf16", "fp16"):
                    return half * 1e12, f"{key} dense {precision} tensor-core datasheet peak"
                if torch.backends.cudnn.allow_tf32:
                    return tf32 * 1e12, f"{key} dense TF32 datasheet peak (cuDNN allows TF32)"
                return fp32 * 1e12, f"{key} fp32 datasheet peak"
    return None, "unknown device peak"


def test_inputs(size: int, batch: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
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
    arch: str, config: dict, variants: list[str], batches: list[int], schedule, device, peaks
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
            cases += _our_variant_cases(
                arch, prior, variant, dtype_name, batches, schedule, device, peaks
            )
    return cases


def _our_variant_cases(
    arch: str,
    prior: Prior,
    variant: str,
    dtype_name: str,
    batches: list[int],
    schedule: JumpSchedule,
    device: torch.device,
    peaks: dict[str, float | None],
) -> list[Case]:
    network, size = prior.network, prior.image_size
    diffusion = prior.diffusion(schedule.t_T)
    params = sum(p.numel() for p in network.parameters())
    probe = torch.randn(1, 3, size, size, device=device)
    flops = count_flops(lambda: network(probe, torch.tensor([500], device=device)))
    cases = []
    for batch in batches:
        image, keep = test_inputs(size, batch, device)

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


def diffusers_cases(batches: list[int], schedule, device, peaks) -> list[Case]:
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
        image, keep = test_inputs(256, batch, device)

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


def measure(cases: list[Case], repeats: int, device: torch.device, log) -> None:
    """Warm up each case, count its value reads, then time all of them round-robin."""
    for case in cases:
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        synchronize(device)
        started = time.perf_counter()
        case.run()
        synchronize(device)
        case.first_run_s = time.perf_counter() - started
        if case.variant == "fp32":  # the loop is the same for every variant
            with ValueReads() as reads, warnings.catch_warnings(record=True) as syncs:
                warnings.simplefilter("always")
                if device.type == "cuda":  # CUDA's own account of synchronising calls
                    torch.cuda.set_sync_debug_mode("warn")
                case.run()
                if device.type == "cuda":
                    torch.cuda.set_sync_debug_mode("default")
            case.reads = len(reads.calls)
            if device.type == "cuda":
                case.cuda_syncs = sum("synchroniz" in str(w.message) for w in syncs)
        if device.type == "cuda":
            case.peak_memory_mb = torch.cuda.max_memory_allocated(device) / 2**20
        else:  # the process's peak resident set so far (it only grows)
            case.peak_memory_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        log(
            f"  warm: {case.arch} {case.sampler} {case.variant} b{case.batch}: "
            f"{case.first_run_s:.2f} s, value reads: {case.reads}"
        )
    for repeat in range(repeats):
        for case in cases:
            synchronize(device)
            started = time.perf_counter()
            case.run()
            synchronize(device)
            case.times.append(time.perf_counter() - started)
        log(f"  repeat {repeat + 1}/{repeats} done")


def row(case: Case) -> dict[str, Any]:
    median = statistics.median(case.times)
    evaluations = case.schedule.reverse_steps
    image_evals_per_s = evaluations * case.batch / median
    achieved = case.flops_per_image * image_evals_per_s
    return {
        "arch": case.arch,
        "sampler": case.sampler,
        "variant": case.variant,
        "precision": case.precision,
        "batch": case.batch,
        "schedule": case.schedule.params(),
        "evaluations": evaluations,
        "params": case.params,
        "gflop_per_image_eval": case.flops_per_image / 1e9,
        "times_s": case.times,
        "median_s": median,
        "s_per_image": median / case.batch,
        "ms_per_eval": median / evaluations * 1000,
        "evals_per_s": evaluations / median,
        "image_evals_per_s": image_evals_per_s,
        "achieved_tflops": achieved / 1e12,
        "fraction_of_peak": achieved / case.peak_flops if case.peak_flops else None,
        "first_run_s": case.first_run_s,
        "compile_s": case.first_run_s - median if case.variant in ("compile", "fast") else None,
        "value_reads_per_run": case.reads,
        "cuda_syncs_per_run": case.cuda_syncs,
        "peak_memory_mb": case.peak_memory_mb,
    }


def render_markdown(report: dict[str, Any]) -> str:
    memory = "peak GPU memory" if report["device"].startswith("cuda") else "process peak RSS"
    lines = [
        "| architecture | sampler | variant | batch | evals | s/image | ms/eval | image-evals/s "
        f"| GFLOP/eval | TFLOP/s | of peak | reads/run | {memory} (MB) | first run (s) |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in report["results"]:
        peak = "" if r["fraction_of_peak"] is None else f"{r['fraction_of_peak']:.1%}"
        lines.append(
            f"| {r['arch']} | {r['sampler']} | {r['variant']} | {r['batch']} | "
            f"{r['evaluations']} | {r['s_per_image']:.3f} | {r['ms_per_eval']:.1f} | "
            f"{r['image_evals_per_s']:.1f} | {r['gflop_per_image_eval']:.1f} | "
            f"{r['achieved_tflops']:.3f} | {peak} | {r['value_reads_per_run'] or '-'} | "
            f"{r['peak_memory_mb']:.0f} | {r['first_run_s']:.1f} |"
        )
    lines.append("")
    for ratio in report["ratios"]:
        lines.append(f"- {ratio}")
    lines.append("")
    return "\n".join(lines)


def ratios(results: list[dict[str, Any]]) -> list[str]:
    """Speed-ups against the sampler or path they replace, at the same batch."""
    notes = []
    by_key = {(r["arch"], r["sampler"], r["variant"], r["batch"]): r for r in results}
    for (arch, sampler, variant, batch), r in by_key.items():
        if sampler == "repaint" and arch == "ddpm-celebahq-256":
            other = by_key.get((arch, "diffusers", variant, batch))
            if other:
                speedup = other["ms_per_eval"] / r["ms_per_eval"]
                notes.append(
                    f"{arch}, batch {batch}: our sampler {speedup:.2f}x "
                    f"diffusers' RePaintPipeline per model evaluation ({r['ms_per_eval']:.1f} vs "
                    f"{other['ms_per_eval']:.1f} ms), same UNet2DModel"
                )
        elif sampler == "repaint" and variant != "fp32":
            base = by_key.get((arch, "repaint", "fp32", 1))
            if base:
                speedup = base["s_per_image"] / r["s_per_image"]
                notes.append(
                    f"{arch}, {variant}, batch {batch}: {speedup:.2f}x "
                    "the plain fp32 batch-1 path per image"
                )
        elif sampler == "repaint" and variant == "fp32" and batch > 1:
            base = by_key.get((arch, "repaint", "fp32", 1))
            if base:
                notes.append(
                    f"{arch}, fp32, batch {batch}: {base['s_per_image'] / r['s_per_image']:.2f}x "
                    "batch 1 per image"
                )
    return notes


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/speed.py", description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or auto")
    parser.add_argument("--archs", default="digits,celeba256,ddpm-celebahq-256")
    parser.add_argument(
        "--variants", help=f"of {', '.join(VARIANTS)} (default: all that apply to the device)"
    )
    parser.add_argument("--batches", default="1,16", help="batch sizes, 32 px (default: 1,16)")
    parser.add_argument(
        "--large-batches", help="batch sizes, 256 px (default: 1 on CPU, 1,4 on GPU)"
    )
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--t-T", type=int, help="schedule override for every architecture")
    parser.add_argument("--jump-length", type=int)
    parser.add_argument("--jump-n-sample", type=int)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--out", type=Path, help="write speed.json and speed.md here")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    archs = [a for a in args.archs.split(",") if a]
    batches = [int(b) for b in args.batches.split(",")]
    large_batches = [
        int(b) for b in (args.large_batches or ("1,4" if device.type == "cuda" else "1")).split(",")
    ]
    default_variants = ["fp32", "channels_last", "bf16", "compile", "fast"]
    if device.type == "cuda":
        default_variants.insert(3, "fp16")
    variants = args.variants.split(",") if args.variants else default_variants

    def log(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    def schedule_for(size: str) -> JumpSchedule:
        base = SCHEDULES[(device.type if device.type == "cuda" else "cpu", size)]
        return JumpSchedule(
            t_T=args.t_T or base.t_T,
            jump_length=args.jump_length or base.jump_length,
            jump_n_sample=args.jump_n_sample or base.jump_n_sample,
        )

    precisions = {v_dtype for v_dtype, _ in (VARIANTS[v] for v in variants)} | {"fp32"}
    peaks, peak_notes = {}, {}
    for precision in precisions:
        peaks[precision], peak_notes[precision] = peak_flops(device, precision)
    log("peaks: " + ", ".join(f"{k} {v / 1e12:.3f} TFLOP/s" for k, v in peaks.items() if v))
    results = []
    for arch in archs:
        log(f"{arch}:")
        if arch == "ddpm-celebahq-256":
            cases = diffusers_cases(large_batches, schedule_for("large"), device, peaks)
        else:
            config = MODELS[arch].config
            size = "small" if int(config["image_size"]) <= 64 else "large"
            sizes = batches if size == "small" else large_batches
            cases = our_cases(arch, config, variants, sizes, schedule_for(size), device, peaks)
        measure(cases, args.repeats, device, log)
        results += [row(case) for case in cases]
        del cases
    report = {
        "benchmark": "speed",
        "command": shlex.join(
            ["python", "benchmarks/speed.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "peaks": {k: {"flops": v, "source": peak_notes[k]} for k, v in peaks.items()},
        "results": results,
        "ratios": ratios(results),
    }
    print(render_markdown(report))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        with atomic_output(args.out / "speed.json", "w") as handle:
            json.dump(report, handle, indent=2)
            handle.write("\n")
        with atomic_output(args.out / "speed.md", "w") as handle:
            handle.write(
                f"Command: `{report['command']}`\n\n{report['date']}; {report['device']} "
                f"({report['device_name']}, {report['cpu_count']} CPUs, "
                f"{report['torch_threads']} threads); torch {report['torch']}.\n\n"
            )
            handle.write(render_markdown(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
