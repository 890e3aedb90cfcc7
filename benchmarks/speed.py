"""Sampling speed: our RePaint loop and its fast paths, against diffusers' RePaintPipeline.

    python benchmarks/speed.py --out docs                       # CPU: short schedules
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
What a run takes and finds on the development machine is in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

if not __package__:  # run as `python benchmarks/speed.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lib.hardware import cpu_name, peak_flops
from benchmarks.lib.progress import stderr_log
from benchmarks.lib.reports import command_line, utc_now
from benchmarks.lib.speed.cases import VARIANTS, diffusers_cases, our_cases
from benchmarks.lib.speed.measure import measure, row
from benchmarks.lib.speed.report import ratios, render_markdown, write_report
from repaint.checkpoints import MODELS
from repaint.device import resolve_device
from repaint.schedule import JumpSchedule

SCHEDULES = {  # (device type, architecture size) -> default schedule
    ("cpu", "small"): JumpSchedule(t_T=50, jump_length=10, jump_n_sample=2),
    ("cpu", "large"): JumpSchedule(t_T=3, jump_length=1, jump_n_sample=2),
    ("cuda", "small"): JumpSchedule(t_T=250, jump_length=10, jump_n_sample=10),
    ("cuda", "large"): JumpSchedule(t_T=250, jump_length=10, jump_n_sample=10),
}


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
    stderr_log("peaks: " + ", ".join(f"{k} {v / 1e12:.3f} TFLOP/s" for k, v in peaks.items() if v))
    results = []
    for arch in archs:
        stderr_log(f"{arch}:")
        if arch == "ddpm-celebahq-256":
            cases = diffusers_cases(large_batches, schedule_for("large"), device, peaks)
        else:
            config = MODELS[arch].config
            size = "small" if int(config["image_size"]) <= 64 else "large"
            sizes = batches if size == "small" else large_batches
            cases = our_cases(arch, config, variants, sizes, schedule_for(size), device, peaks)
        measure(cases, args.repeats, device, stderr_log)
        results += [row(case) for case in cases]
        del cases
    report = {
        "benchmark": "speed",
        "command": command_line("benchmarks/speed.py", argv),
        "date": utc_now(),
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
        write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
