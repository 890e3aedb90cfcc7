"""Inpainting quality on held-out digits: RePaint, its ablations, diffusers and OpenCV.

    python benchmarks/quality.py --quick                 # every method, 2 images
    python benchmarks/quality.py                         # every method, 22 images
    python benchmarks/quality.py --model runs/digits/model.safetensors --images 8 --out /tmp/q

The first images of the `digits` test split (index % 6 == 0, never seen by the model) are
masked with each of the paper's six mask kinds, generated at the model's size from a fixed
seed, and filled by every method. For every method and mask kind the benchmark reports:

- semantic accuracy: the share of filled images that a digit classifier trained only on the
  training split (an RBF SVC on the grey image average-pooled to 8x8) assigns their true
  label; its accuracy on the clean images is the ceiling;
- PSNR over the filled pixels and SSIM (Gaussian window, sigma 1.5, skimage) averaged over
  the filled pixels, both against the ground truth;
- model evaluations and wall time per image.

Every diffusion method uses the same per-item generators (`derive_seed(seed, kind, index)`),
so all of them start from the same x_T. Items are batched across mask kinds; the time per
image is the batch's wall time over its size.

The script measures the forward pass before it starts and prints its own estimate, then a
running ETA; what a run costs on the development machine is in docs/performance.md.
Anything else using the CPU slows it down; `--threads 1` limits the damage when it must
share. Writes quality.json, quality.md and quality.png to `--out` (after every method too,
marked partial).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

if not __package__:  # run as `python benchmarks/quality.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lib.methods import METHODS, missing_requirements
from benchmarks.lib.progress import stderr_log
from benchmarks.lib.quality_report import write_outputs
from benchmarks.lib.reports import command_line, machine_info, utc_now
from benchmarks.lib.runner import DEFAULT_BATCH, run_benchmark
from repaint.choices import DEFAULT_MODEL, MASK_KINDS
from repaint.errors import RepaintError
from repaint.loading import load_inpainter

FULL_IMAGES = 22
QUICK_IMAGES = 2


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="benchmarks/quality.py",
        description="Inpainting quality of RePaint, its ablations, diffusers and OpenCV on "
        "held-out digits (docs/performance.md gives the cost of a run).",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK_IMAGES} images instead of {FULL_IMAGES}"
    )
    parser.add_argument("--out", type=Path, default=Path("docs"), help="output folder (docs/)")
    parser.add_argument(
        "--model", default=DEFAULT_MODEL, help="registered model name or checkpoint path"
    )
    parser.add_argument("--images", type=int, help="test images per mask kind")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    parser.add_argument(
        "--methods", default=",".join(METHODS), help="comma-separated subset (default: all)"
    )
    parser.add_argument(
        "--kinds", default=",".join(MASK_KINDS), help="comma-separated mask kinds (default: all)"
    )
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda, mps or auto")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--schedule-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    kinds = [k for k in args.kinds.split(",") if k]
    missing = missing_requirements(methods)
    if missing:
        print(
            f"quality benchmark: missing {', '.join(missing)}; "
            "install with: pip install -e '.[bench]'",
            file=sys.stderr,
        )
        return 2
    images = args.images or (QUICK_IMAGES if args.quick else FULL_IMAGES)
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        unknown = sorted(set(kinds) - set(MASK_KINDS))
        if unknown:
            raise RepaintError(f"--kinds: unknown mask kind(s) {', '.join(unknown)}")
        inpainter = load_inpainter(args.model, device=args.device)
        stderr_log(f"model {inpainter.name} ({inpainter.checkpoint}) on {inpainter.device}")
        header = {
            "command": command_line("benchmarks/quality.py", argv),
            "date": utc_now(),
            "machine": machine_info(),
        }

        def save_partial(partial: dict[str, Any]) -> None:
            write_outputs({**header, **partial}, args.out)
            stderr_log(f"partial results ({len(partial['methods'])} methods) in {args.out}")

        benchmark = run_benchmark(
            inpainter,
            images=images,
            kinds=kinds,
            seed=args.seed,
            methods=methods,
            schedule_scale=args.schedule_scale,
            batch_size=args.batch_size,
            on_method=save_partial,
        )
    except RepaintError as error:
        print(f"quality benchmark: {error}", file=sys.stderr)
        return 2
    report = {**header, "finished": utc_now(), **benchmark.report}
    for path in write_outputs(report, args.out):
        stderr_log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
