"""The experiments of a follow-up study of RePaint, redone with this project's tools.

    python benchmarks/study.py --out docs                 # everything
    python benchmarks/study.py --quick --out /tmp/study   # every experiment, short
    python benchmarks/study.py --experiments diversity,texture --out /tmp/study

Multari and Pollet ("Inpainting with Diffusion Models: Understanding the RePaint approach",
ENS Paris-Saclay, 2024) used RePaint as an instrument. Their experiments, here:

- `size` (their 3.1): time of one model evaluation against image size, for the published
  guided-diffusion architectures with random weights: the embedded 32 px `digits` UNet,
  the 64 px ImageNet UNet (unconditional here) and the 256 px CelebA-HQ/Places2 UNet, with
  the FLOPs of each (torch.utils.flop_counter);
- `t_T` (3.2): quality and cost without resampling, against the number of levels t_T;
- `resampling` (3.3): quality and cost against the amount of resampling at fixed t_T;
- `early-late` (3.4): resampling only in the early (noisy) levels against only in the late
  ones, at equal cost (asserted), next to resampling everywhere;
- `diversity` (3.5): K samples from K full runs against K branches from one shared run
  (branching near the start, the middle and the end, and one large jump after branching):
  the evaluations they cost, the mean pairwise distance of the K fills, and their accuracy;
- `texture` (3.6): an image extended beyond its borders (`--extend`).

Quality is measured as in benchmarks/quality.py (the held-out digits, the paper's mask
kinds, a digit classifier trained on the training split, PSNR and SSIM of the filled
pixels), on the embedded model. Writes study.json, study_tables.md and study_*.png; what
they found, and how long they took on the development machine, is in docs/study.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

if not __package__:  # run as `python benchmarks/study.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lib.progress import stderr_log
from benchmarks.lib.reports import command_line, machine_info, utc_now, write_json, write_text
from benchmarks.lib.runner import run_benchmark
from benchmarks.lib.study.diversity import diversity
from benchmarks.lib.study.report import render_plots, render_tables
from benchmarks.lib.study.schedules import GROUPS, quality_methods, quality_rows
from benchmarks.lib.study.size import time_sizes
from benchmarks.lib.study.texture import texture
from repaint.errors import RepaintError
from repaint.loading import load_inpainter
from repaint.pixel import PixelInpainter

EXPERIMENTS = ("size", *GROUPS, "diversity", "texture")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/study.py", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--experiments", default=",".join(EXPERIMENTS))
    parser.add_argument("--images", type=int, default=8, help="test digits per mask kind (8)")
    parser.add_argument("--quick", action="store_true", help="2 images, short schedules")
    parser.add_argument("--model", default="digits")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="timings per architecture")
    parser.add_argument(
        "--from-json", type=Path, help="only redraw the tables and figures of this study.json"
    )
    args = parser.parse_args(argv)
    if args.from_json:
        try:
            report = json.loads(args.from_json.read_text())
            return write(report, args.out, write_report=False)
        except (OSError, ValueError, KeyError, TypeError) as error:
            print(f"study: {args.from_json}: not a study.json ({error!r})", file=sys.stderr)
            return 2
    chosen = [name for name in args.experiments.split(",") if name]
    unknown = sorted(set(chosen) - set(EXPERIMENTS))
    if unknown:
        print(
            f"study: unknown experiment(s) {', '.join(unknown)}; use {', '.join(EXPERIMENTS)}",
            file=sys.stderr,
        )
        return 2
    images, scale = (2, 0.2) if args.quick else (args.images, 1.0)
    machine = machine_info()
    report: dict[str, Any] = {
        "command": command_line("benchmarks/study.py", argv),
        "date": utc_now(),
        "machine": machine,
        "machine_line": f"{machine.get('cpu_count')} CPUs, torch {torch.__version__} "
        f"({torch.get_num_threads()} threads), fp32",
        "items": "",
        "results": {},
    }
    results = report["results"]
    try:
        inpainter = load_inpainter(args.model, device="cpu")
        assert isinstance(inpainter, PixelInpainter)
        if "size" in chosen:
            results["size"] = time_sizes(1 if args.quick else args.repeats)
        groups = quality_methods(scale)
        methods = [m for key in GROUPS if key in chosen for m in groups[key]]
        if methods:
            bench = run_benchmark(
                inpainter, images=images, methods=(), extra_methods=methods, seed=args.seed
            )
            kinds = len(bench.report["settings"]["mask_kinds"])
            report["items"] = f"{images} held-out digits x {kinds} mask kinds"
            for key in GROUPS:
                if key in chosen:
                    results[key] = quality_rows(bench.report, groups[key])
        if "diversity" in chosen:
            results["diversity"] = diversity(inpainter, images, args.seed, scale)
        if "texture" in chosen:
            args.out.mkdir(parents=True, exist_ok=True)
            results["texture"] = texture(inpainter, args.out, args.seed, scale)
    except RepaintError as error:
        print(f"study: {error}", file=sys.stderr)
        return 2
    return write(report, args.out, write_report=True)


def write(report: dict[str, Any], out: Path, *, write_report: bool) -> int:
    """study.json (unless redrawing from it), study_tables.md and the figures."""
    out.mkdir(parents=True, exist_ok=True)
    if write_report:
        write_json(out / "study.json", report)
    write_text(out / "study_tables.md", render_tables(report))
    for path in render_plots(report, out):
        stderr_log(f"wrote {path}")
    stderr_log(f"wrote {out / 'study_tables.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
