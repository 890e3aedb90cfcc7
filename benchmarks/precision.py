"""How far half precision moves RePaint's result: bf16/fp16 against fp32 for the same seeds.

    python benchmarks/precision.py --out docs                  # CPU: fp32 and bf16
    python benchmarks/precision.py --device cuda --dtypes fp32,bf16,fp16 --out docs/gpu

Runs one preset (default `fast`) over the quality benchmark's items (held-out digits x the
six mask kinds, the same x_T and noise for every precision) once per network precision and
reports, against fp32: the largest and mean absolute pixel difference over the filled pixels,
the share of filled pixels that differ, and the change in semantic accuracy. The network
runs its convolutions in the chosen precision; GroupNorm, softmax, the timestep embedding
and all diffusion arithmetic stay fp32. Writes `precision.json` and `precision.md`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

if not __package__:  # run as `python benchmarks/precision.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lib.methods import Method
from benchmarks.lib.reports import command_line, machine_info, utc_now, write_json, write_text
from benchmarks.lib.runner import run_benchmark
from repaint.choices import DEFAULT_MODEL
from repaint.loading import load_inpainter
from repaint.presets import DEFAULT_PRESET, PRESETS, get_preset


def compare(reference: np.ndarray, other: np.ndarray, keep: np.ndarray) -> dict[str, float]:
    """Pixel differences (0-255 levels) over the filled pixels of every item."""
    fill = ~keep
    difference = np.abs(reference.astype(np.int16) - other.astype(np.int16))[fill]
    return {
        "max_abs_levels": int(difference.max()),
        "mean_abs_levels": float(difference.mean()),
        "max_abs_unit": float(difference.max()) * 2 / 255,  # in the sampler's [-1, 1] units
        "mean_abs_unit": float(difference.mean()) * 2 / 255,
        "share_changed": float((difference > 0).mean()),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks/precision.py", description=__doc__)
    parser.add_argument("--preset", default=DEFAULT_PRESET, choices=PRESETS)
    parser.add_argument("--dtypes", default="fp32,bf16", help="fp32 first (the reference)")
    parser.add_argument("--images", type=int, default=12)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--out", type=Path, default=Path("docs"))
    args = parser.parse_args(argv)
    dtypes = args.dtypes.split(",")
    preset = get_preset(args.preset)
    method = Method(
        f"preset-{args.preset}", "repaint", f"preset {args.preset}", preset.schedule, preset.eta
    )
    runs = {}
    for dtype in dtypes:
        print(f"{dtype}:", file=sys.stderr)
        inpainter = load_inpainter(args.model, device=args.device, dtype=dtype)
        runs[dtype] = run_benchmark(
            inpainter, images=args.images, methods=[], extra_methods=[method]
        )
    reference = runs[dtypes[0]]
    rows = {}
    for dtype, benchmark in runs.items():
        row = benchmark.report["methods"][method.name]
        rows[dtype] = {
            "accuracy": row["mean"]["accuracy"],
            "psnr": row["mean"]["psnr"],
            "seconds": row["seconds"],
            **compare(
                reference.outputs[method.name], benchmark.outputs[method.name], reference.keep
            ),
        }
    report = {
        "benchmark": "precision",
        "command": command_line("benchmarks/precision.py", argv),
        "date": utc_now(),
        "machine": machine_info(),
        "device": args.device,
        "preset": args.preset,
        "schedule": preset.schedule.params(),
        "eta": preset.eta,
        "items": len(reference.kinds),
        "results": rows,
    }
    lines = [
        f"Command: `{report['command']}`",
        "",
        f"{report['date']}; device {args.device}, torch {torch.__version__}; preset "
        f"`{args.preset}` ({preset.describe()}), {report['items']} items "
        "(held-out digits x 6 mask kinds), the same seeds for every precision. Differences "
        f"against {dtypes[0]} over the filled pixels, in 8-bit levels.",
        "",
        "| precision | accuracy | change | PSNR (dB) | max abs diff | mean abs diff | "
        "pixels changed | time (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    base = rows[dtypes[0]]["accuracy"]
    for dtype, row in rows.items():
        lines.append(
            f"| {dtype} | {row['accuracy']:.3f} | {row['accuracy'] - base:+.3f} | "
            f"{row['psnr']:.1f} | {row['max_abs_levels']} | {row['mean_abs_levels']:.2f} | "
            f"{row['share_changed']:.1%} | {row['seconds']:.0f} |"
        )
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "precision.json", report)
    write_text(args.out / "precision.md", "\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
