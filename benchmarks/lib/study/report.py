"""benchmarks/study.py's tables (docs/study_tables.md) and figures (docs/study_*.png), drawn
from its report alone, so that `--from-json` can redraw them without running anything."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.lib.reports import save_figure
from benchmarks.lib.study.diversity import BRANCHES, DIVERSITY_KINDS
from benchmarks.lib.study.schedules import GROUPS


def render_tables(report: dict[str, Any]) -> str:
    lines = [
        "# The RePaint study, redone: tables",
        "",
        f"Command: `{report['command']}`",
        "",
        f"{report['date']}; {report['machine_line']}. Written by benchmarks/study.py; read "
        "[study.md](study.md) for what they show.",
    ]
    results = report["results"]
    if "size" in results:
        lines += [
            "",
            "## Time against image size (batch 1, fp32, median)",
            "",
            "| architecture | parameters | GFLOP / evaluation | s / evaluation "
            "| paper schedule (2,410) |",
            "|---|---:|---:|---:|---:|",
        ]
        for row in results["size"]:
            lines.append(
                f"| {row['architecture']} | {row['parameters'] / 1e6:.1f} M | {row['gflop']:.1f} "
                f"| {row['seconds']:.3f} | {row['paper_seconds'] / 60:.1f} min |"
            )
    for key, title in (
        ("t_T", "No resampling, against t_T"),
        ("resampling", "Amount of resampling at t_T=50, jump_length=10"),
        (
            "early-late",
            "Early against late resampling at equal cost (t_T=50, jump_length=5, jump_n_sample=5)",
        ),
    ):
        if key not in results:
            continue
        kinds = list(results[key][0]["per_kind_accuracy"])
        lines += [
            "",
            f"## {title}",
            "",
            f"{report['items']}. Accuracy / PSNR (dB) / SSIM of the filled pixels, then accuracy "
            "per mask kind.",
            "",
            "| setting | evaluations | s / image | accuracy | PSNR | SSIM | "
            + " | ".join(kinds)
            + " |",
            "|---|---:|---:|---:|---:|---:|" + "---:|" * len(kinds),
        ]
        for row in results[key]:
            per_kind = " | ".join(f"{row['per_kind_accuracy'][k]:.2f}" for k in kinds)
            lines.append(
                f"| {row['setting']} | {row['evaluations']:,} | {row['seconds_per_image']:.2f} "
                f"| {row['accuracy']:.3f} | {row['psnr']:.1f} | {row['ssim']:.3f} | {per_kind} |"
            )
    if "diversity" in results:
        lines += [
            "",
            f"## Diversity of {BRANCHES} samples (preset fast, masks {', '.join(DIVERSITY_KINDS)})",
            "",
            "Evaluations: for all K samples of one item (shared part once). Distance: RMS "
            "difference (0-255) between two samples over the filled pixels, averaged over the "
            "pairs and items.",
            "",
            "| setting | evaluations for K | shared | per branch | pairwise distance | accuracy |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in results["diversity"]:
            lines.append(
                f"| {row['setting']} | {row['evaluations']:,} | {row['shared']} | "
                f"{row['per_branch']} | {row['pairwise_rms']:.1f} | {row['accuracy']:.3f} |"
            )
    if "texture" in results:
        lines += [
            "",
            "## Texture extension",
            "",
            "| --extend | windows | evaluations | s | original exact |",
            "|---|---:|---:|---:|---|",
        ]
        for case in results["texture"]["cases"]:
            lines.append(
                f"| {','.join(map(str, case['extend']))} | {case['windows']} | "
                f"{case['evaluations']:,} | {case['seconds']:.1f} | {case['original_exact']} |"
            )
        lines += ["", "![texture extension](study_texture.png)"]
    return "\n".join(lines) + "\n"


def render_plots(report: dict[str, Any], out: Path) -> list[Path]:
    """study_size.png, study_quality.png and study_diversity.png, for the experiments run."""
    from matplotlib.figure import Figure

    results, written = report["results"], []
    if "size" in results:
        figure = Figure(figsize=(6, 3.5))
        axes = figure.subplots()
        rows = results["size"]
        axes.scatter([r["gflop"] for r in rows], [r["seconds"] for r in rows])
        for row in rows:
            axes.annotate(row["architecture"], (row["gflop"], row["seconds"]), fontsize=7)
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.set_xlabel("GFLOP per model evaluation")
        axes.set_ylabel("seconds per evaluation (batch 1)")
        axes.set_title("time follows FLOPs on this CPU", fontsize=9)
        figure.tight_layout()
        written.append(save_figure(figure, out / "study_size.png", dpi=120))
    series = [(key, results[key]) for key in GROUPS if key in results]
    if series:
        figure = Figure(figsize=(10, 4))
        for axes, metric in zip(figure.subplots(1, 2), ("accuracy", "psnr"), strict=True):
            for (key, rows), marker in zip(series, "osD", strict=False):
                x = [row["evaluations"] for row in rows]
                y = [row[metric] for row in rows]
                axes.plot(
                    x, y, marker=marker, linestyle="-" if key != "early-late" else "none", label=key
                )
                for row in rows:
                    axes.annotate(row["setting"], (row["evaluations"], row[metric]), fontsize=6)
            axes.set_xscale("log")
            axes.set_xlabel("model evaluations per image")
            axes.set_ylabel(
                "semantic accuracy" if metric == "accuracy" else "PSNR of the fill (dB)"
            )
            axes.legend(fontsize=7)
        figure.tight_layout()
        written.append(save_figure(figure, out / "study_quality.png", dpi=120))
    if "diversity" in results:
        figure = Figure(figsize=(6, 4))
        axes = figure.subplots()
        for row in results["diversity"]:
            axes.scatter(row["evaluations"], row["pairwise_rms"])
            axes.annotate(
                f"{row['setting']} (acc {row['accuracy']:.2f})",
                (row["evaluations"], row["pairwise_rms"]),
                fontsize=6,
            )
        axes.set_xlabel(f"model evaluations for {BRANCHES} samples")
        axes.set_ylabel("mean pairwise RMS distance of the fills")
        figure.tight_layout()
        written.append(save_figure(figure, out / "study_diversity.png", dpi=120))
    return written
