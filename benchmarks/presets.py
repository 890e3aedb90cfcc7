"""Quality against model evaluations: which cheaper schedule keeps the paper's accuracy?

    python benchmarks/presets.py --images 12 --out docs

Runs the quality benchmark (`benchmarks/quality.py`: held-out digits x the six mask kinds,
semantic accuracy, fill PSNR and SSIM, the same x_T for every method) for the paper schedule
and for shorter candidates, with ancestral DDPM steps and with DDIM steps (`eta` 0) between
the jumps. The candidate with the fewest model evaluations whose mean accuracy is within
`--tolerance` (1 point) of the paper schedule's is the recommended `fast` preset. Writes
`presets.json`, `presets.md` and `presets.png` (accuracy against evaluations) to `--out`.

With 12 images the mean accuracy pools 72 items, so one item moves it by 1.4 points: the
choice is only as sure as that. The schedules together take 4,485 model evaluations per
item; what that costs on the development machine is in docs/performance.md.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch

if not __package__:  # run as `python benchmarks/presets.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lib.methods import Method, missing_requirements, scaled
from benchmarks.lib.reports import (
    command_line,
    machine_info,
    save_figure,
    utc_now,
    write_json,
    write_text,
)
from benchmarks.lib.runner import DEFAULT_BATCH, run_benchmark
from repaint.choices import DEFAULT_MODEL
from repaint.errors import RepaintError
from repaint.loading import load_inpainter
from repaint.presets import PRESETS
from repaint.schedule import JumpSchedule

PAPER = "paper"
TOLERANCE = 0.01


def candidate(t_T: int, jump_length: int, jump_n_sample: int, eta: float | None) -> Method:
    schedule = JumpSchedule(t_T=t_T, jump_length=jump_length, jump_n_sample=jump_n_sample)
    sampler = "ddpm" if eta is None else f"ddim{eta:g}"
    return Method(
        f"{sampler}-t{t_T}-j{jump_length}-r{jump_n_sample}",
        "repaint",
        f"{'ancestral DDPM' if eta is None else f'DDIM (eta={eta:g})'} steps, "
        f"t_T={t_T}, jump_length={jump_length}, jump_n_sample={jump_n_sample}",
        schedule,
        eta,
    )


CANDIDATES = (
    candidate(100, 10, 5, None),
    candidate(100, 10, 3, None),
    candidate(50, 10, 5, None),
    candidate(25, 5, 5, None),
    candidate(50, 10, 2, None),
    candidate(100, 10, 5, 0.0),
    candidate(50, 10, 5, 0.0),
    candidate(25, 5, 5, 0.0),
    candidate(25, 5, 3, 0.0),
    candidate(50, 10, 2, 0.0),
)


def choose(rows: Mapping[str, Mapping[str, Any]], tolerance: float) -> str | None:
    """The fewest evaluations with accuracy >= the paper's - tolerance (ties: higher accuracy,
    then higher PSNR)."""
    floor = rows[PAPER]["mean"]["accuracy"] - tolerance - 1e-9
    good = [
        name for name, row in rows.items() if name != PAPER and row["mean"]["accuracy"] >= floor
    ]
    if not good:
        return None
    return min(
        good,
        key=lambda n: (
            rows[n]["evaluations_per_image"],
            -rows[n]["mean"]["accuracy"],
            -rows[n]["mean"]["psnr"],
        ),
    )


def render_markdown(report: Mapping[str, Any]) -> str:
    rows = report["methods"]
    kinds = report["settings"]["mask_kinds"]
    chosen = report["chosen"]
    lines = [
        "# Presets: semantic accuracy against model evaluations",
        "",
        f"Command: `{report['command']}`",
        "",
        f"{report['date']}; torch {report['machine']['torch']} "
        f"({report['machine']['torch_threads']} threads), device {report['settings']['device']}; "
        f"model `{report['settings']['model']}`; {report['settings']['images']} held-out digits "
        f"x {len(kinds)} mask kinds, seed {report['settings']['seed']}. "
        f"Clean accuracy (ceiling): {report['classifier']['clean_accuracy']:.3f}.",
        "",
        "| schedule | sampler | evals/image | " + " | ".join(kinds) + " | mean acc | PSNR | SSIM |",
        "|---|---|---:|" + "---:|" * len(kinds) + "---:|---:|---:|",
    ]
    order = sorted(rows, key=lambda n: (-rows[n]["evaluations_per_image"], n))
    for name in order:
        row = rows[name]
        schedule = row["schedule"]
        label = f"t_T={schedule['t_T']}, j={schedule['jump_length']}, r={schedule['jump_n_sample']}"
        sampler = "DDPM" if row["eta"] is None else f"DDIM eta={row['eta']:g}"
        mark = " (paper)" if name == PAPER else " **(fast)**" if name == chosen else ""
        cells = " | ".join(f"{row['per_kind'][k]['accuracy']:.2f}" for k in kinds)
        lines.append(
            f"| {label}{mark} | {sampler} | {row['evaluations_per_image']:,} | {cells} | "
            f"{row['mean']['accuracy']:.3f} | {row['mean']['psnr']:.1f} | "
            f"{row['mean']['ssim']:.3f} |"
        )
    paper = rows[PAPER]["mean"]["accuracy"]
    items = report["settings"]["images"] * len(kinds)
    lines += [
        "",
        f"Rule: the fewest evaluations with mean accuracy >= {paper:.3f} - "
        f"{report['tolerance']:.2f} (the paper schedule's, less {report['tolerance'] * 100:g} "
        f"point). Chosen: **{chosen or 'none'}**"
        + (
            f" ({rows[chosen]['evaluations_per_image']:,} evaluations, "
            f"{rows[PAPER]['evaluations_per_image'] / rows[chosen]['evaluations_per_image']:.1f}x "
            "fewer than the paper schedule)."
            if chosen
            else "."
        ),
        "",
        f"The mean pools {items} items, so one item moves it by {100 / items:.1f} points; "
        "treat differences of a point or two as noise. PSNR and SSIM are over the filled "
        "pixels.",
        "",
        "![accuracy against model evaluations](presets.png)",
        "",
    ]
    return "\n".join(lines)


def render_plot(report: Mapping[str, Any], path: Path) -> None:
    from matplotlib.figure import Figure

    rows = report["methods"]
    paper = rows[PAPER]["mean"]["accuracy"]
    fig = Figure(figsize=(7.5, 4.8))
    axes = fig.subplots()
    series: dict[str, list[tuple[int, float, str]]] = {}
    for name, row in rows.items():
        sampler = "DDPM (ancestral)" if row["eta"] is None else f"DDIM (eta={row['eta']:g})"
        series.setdefault(sampler, []).append(
            (row["evaluations_per_image"], row["mean"]["accuracy"], name)
        )
    for (sampler, points), marker, below in zip(
        series.items(), "os^D", (4, -11, 4, -11), strict=False
    ):
        points.sort()
        axes.plot(
            [p[0] for p in points], [p[1] for p in points], marker=marker, ls="", label=sampler
        )
        for evaluations, accuracy, name in points:
            schedule = rows[name]["schedule"]
            axes.annotate(
                f"{schedule['t_T']}/{schedule['jump_length']}/{schedule['jump_n_sample']}",
                (evaluations, accuracy),
                textcoords="offset points",
                xytext=(4, below),
                fontsize=7,
            )
    axes.axhline(paper, color="black", ls="--", lw=1, label="paper schedule")
    axes.axhspan(
        paper - report["tolerance"], paper, color="grey", alpha=0.2, label="within 1 point"
    )
    if report["chosen"]:
        row = rows[report["chosen"]]
        axes.scatter(
            row["evaluations_per_image"],
            row["mean"]["accuracy"],
            s=220,
            facecolors="none",
            edgecolors="red",
            linewidths=2,
            label="fast (chosen)",
            zorder=3,
        )
    axes.axhline(
        report["classifier"]["clean_accuracy"], color="green", ls=":", lw=1, label="clean ceiling"
    )
    axes.set_xscale("log")
    axes.set_xlabel("model evaluations per image (log)")
    axes.set_ylabel("mean semantic accuracy, all mask kinds")
    axes.set_title("RePaint schedules on held-out digits (labels: t_T/jump_length/jump_n_sample)")
    axes.title.set_fontsize(9)
    axes.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="benchmarks/presets.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--images", type=int, default=12, help="test images per mask kind")
    parser.add_argument("--out", type=Path, default=Path("docs"), help="output folder (docs/)")
    parser.add_argument("--model", default=DEFAULT_MODEL)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=DEFAULT_BATCH)
    parser.add_argument(
        "--tolerance", type=float, default=TOLERANCE, help="accuracy (0.01 = 1 point)"
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--schedule-scale", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    missing = missing_requirements([])
    if missing:
        print(f"presets benchmark: missing {', '.join(missing)}; pip install -e '.[bench]'")
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    command = command_line("benchmarks/presets.py", argv)
    paper = Method(PAPER, "repaint", "the paper's schedule", PRESETS["paper"].schedule)
    candidates = [paper, *CANDIDATES]
    if args.schedule_scale != 1:  # smoke tests only
        candidates = [
            Method(m.name, m.family, m.description, scaled(m.schedule, args.schedule_scale), m.eta)
            for m in candidates
        ]
    try:
        inpainter = load_inpainter(args.model, device=args.device)
        benchmark = run_benchmark(
            inpainter,
            images=args.images,
            seed=args.seed,
            methods=[],
            extra_methods=candidates,
            batch_size=args.batch_size,
        )
    except RepaintError as error:
        print(f"presets benchmark: {error}", file=sys.stderr)
        return 2
    report = {
        "command": command,
        "date": utc_now(),
        "machine": machine_info(),
        "tolerance": args.tolerance,
        **benchmark.report,
    }
    report["chosen"] = choose(report["methods"], args.tolerance)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json(args.out / "presets.json", report)
    write_text(args.out / "presets.md", render_markdown(report))
    render_plot(report, args.out / "presets.png")
    print(f"chosen: {report['chosen']}; wrote {args.out}/presets.{{json,md,png}}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
