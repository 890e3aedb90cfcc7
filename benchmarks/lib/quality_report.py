"""The quality benchmark's report in words and pictures: its notes, the Markdown table of
docs/quality.md and the accuracy plot of docs/quality.png."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lib.methods import DIFFUSERS_ETA, Method
from benchmarks.lib.metrics import format_score
from benchmarks.lib.progress import duration
from benchmarks.lib.reports import save_figure, write_json, write_text
from repaint.presets import PRESETS


def notes(methods: Sequence[Method], diffusion_steps: int, images: int, kinds: int) -> list[str]:
    """What a reader needs to read the table right: the metrics, the sample size, and how
    the methods that are not plain RePaint were run."""
    names = {m.name: m for m in methods}
    lines = [
        "Accuracy: share of filled images the classifier labels correctly; PSNR (dB) over the "
        "filled pixels; SSIM: the SSIM map (Gaussian window, sigma 1.5) averaged over the "
        "filled pixels. Means over images; the mean column pools all mask kinds.",
        "s/image: wall time of a method's batches over the number of (image, mask) items, on "
        "the machine above; the batches mix mask kinds.",
        f"Small samples: each accuracy cell counts {images} image(s), so one image moves it by "
        f"{1 / images:.2f}; the mean column pools {images * kinds} items.",
    ]
    if "slowing-down" in names:
        slow = names["slowing-down"].schedule
        paper = names.get("repaint-paper")
        wanted = paper.evaluations if paper is not None else PRESETS["paper"].schedule.reverse_steps
        assert slow is not None
        if slow.t_T < wanted:
            lines.append(
                f"slowing-down: the paper's ablation gives plain sampling as many steps as "
                f"RePaint has evaluations ({wanted}); the model was trained with "
                f"{diffusion_steps} diffusion steps, so it is capped at t_T={slow.t_T}."
            )
        else:
            lines.append(f"slowing-down: plain sampling with t_T={slow.t_T}.")
    if "diffusers-repaint" in names:
        lines.append(
            "diffusers-repaint: diffusers' RePaintScheduler with the same betas, its own "
            "time steps (multiples of 4) and its own step/undo_step loop, fed our network's "
            f"epsilon; eta={DIFFUSERS_ETA:g} (DDPM, its fixed posterior variance, not our "
            "learned one); known and unknown regions share one noise draw per step, as in "
            "diffusers. Same x_T as the other diffusion methods."
        )
    if "masked-input" in names:
        lines.append(
            "masked-input is a floor, not a method: the classifier on the image with the fill "
            "region left black (the background colour of the digits)."
        )
    return lines


def render_markdown(report: Mapping[str, Any]) -> str:
    settings, classifier = report["settings"], report["classifier"]
    kinds = settings["mask_kinds"]
    machine = report["machine"]
    fills = report["mask_fill_fraction"]
    lines = [
        "# Inpainting quality on held-out digits",
        "",
        f"Command: `{report['command']}`",
        "",
        *(
            []
            if report.get("complete", True)
            else [f"**Partial results**: {len(report['methods'])} methods done so far.", ""]
        ),
        f"{report['date']}; {machine['cpu_count']} CPUs ({machine['processor']}), "
        f"torch {machine['torch']} ({machine['torch_threads']} threads), "
        f"device {settings['device']}, {settings['dtype']}; model `{settings['model']}`"
        + (f" (sha256 {settings['sha256'][:12]})" if settings.get("sha256") else "")
        + ".",
        "",
        f"{settings['images']} held-out test digits (never seen in training) x "
        f"{len(kinds)} mask kinds at {settings['image_size']} px, seed {settings['seed']}. "
        "Each cell: **semantic accuracy / PSNR (dB) / SSIM**, PSNR and SSIM over the filled "
        "pixels only.",
        "",
        f"Classifier: {classifier['description']}, trained on the training split only. "
        f"Clean accuracy (the ceiling): **{classifier['clean_accuracy']:.3f}** on these "
        f"{settings['images']} images, {classifier['clean_accuracy_test_split']:.3f} on all "
        f"{classifier['test_split_images']} test images.",
        "",
        "| method | evals/image | s/image | "
        + " | ".join(f"{k} ({fills[k]:.0%} filled)" for k in kinds)
        + " | mean acc |",
        "|---|---:|---:|" + "---:|" * len(kinds) + "---:|",
    ]
    for name, row in report["methods"].items():
        cells = [format_score(row["per_kind"][k]) for k in kinds]
        lines.append(
            f"| {name} | {row['evaluations_per_image']:,} | {row['seconds_per_image']:.2f} | "
            + " | ".join(cells)
            + f" | {row['mean']['accuracy']:.3f} |"
        )
    timing = report["timing"]
    lines += [
        "",
        f"Forward pass: {timing['forward_ms_per_image']:.2f} ms per image at a batch of "
        f"{timing['forward_batch']}. All methods with scoring took "
        f"{duration(timing['run_seconds'])}; the estimate at the start was "
        f"{duration(timing['estimated_seconds'])}.",
        "",
        "Notes:",
        "",
        *[f"- {note}" for note in report["notes"]],
        "",
        "Methods:",
        "",
        *[f"- `{name}`: {row['description']}" for name, row in report["methods"].items()],
        "",
    ]
    return "\n".join(lines)


def render_plot(report: Mapping[str, Any], path: Path) -> None:
    """Accuracy per mask kind (bars) and mean accuracy against evaluations (scatter)."""
    from matplotlib import colormaps
    from matplotlib.figure import Figure

    kinds = report["settings"]["mask_kinds"]
    rows = report["methods"]
    ceiling = report["classifier"]["clean_accuracy"]
    fig = Figure(figsize=(14, 5.4))
    bars, cost = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    width = 0.8 / max(len(rows), 1)
    positions = np.arange(len(kinds))
    colours = colormaps["tab10"]
    for number, (name, row) in enumerate(rows.items()):
        values = [row["per_kind"][k]["accuracy"] for k in kinds]
        bars.bar(
            positions + (number - (len(rows) - 1) / 2) * width,
            values,
            width,
            label=name,
            color=colours(number % 10),
        )
    bars.axhline(ceiling, color="black", linestyle="--", linewidth=1, label="clean (ceiling)")
    bars.set_xticks(positions, kinds)
    bars.set_ylim(0, 1.05)
    bars.set_ylabel("semantic accuracy")
    bars.set_title(
        f"Digit classifier accuracy on filled images ({report['settings']['images']} per kind)"
    )
    bars.legend(fontsize=7, ncol=5, loc="upper center", bbox_to_anchor=(0.5, -0.08))

    markers = {"repaint": ("o", 45), "diffusers": ("x", 90)}
    for number, (name, row) in enumerate(rows.items()):
        accuracy = row["mean"]["accuracy"]
        if row["evaluations_per_image"] > 0:
            marker, area = markers.get(row["family"], ("s", 45))
            cost.scatter(
                row["evaluations_per_image"],
                accuracy,
                color=colours(number % 10),
                marker=marker,
                s=area,
                linewidths=2,
                label=name,
                zorder=3,
            )
        else:
            cost.axhline(accuracy, color=colours(number % 10), linestyle=":", label=name)
    cost.axhline(ceiling, color="black", linestyle="--", linewidth=1, label="clean (ceiling)")
    cost.set_xscale("log")
    cost.set_xlabel("model evaluations per image")
    cost.set_ylabel("mean semantic accuracy (all mask kinds)")
    cost.set_ylim(0, 1.05)
    cost.set_title("Accuracy against cost")
    cost.legend(fontsize=7, loc="lower right", ncol=2)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)


def write_outputs(report: dict[str, Any], out: Path) -> list[Path]:
    """quality.json, quality.md and quality.png in `out`, each written atomically."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "quality.json", out / "quality.md", out / "quality.png"]
    write_json(paths[0], report)
    write_text(paths[1], render_markdown(report))
    render_plot(report, paths[2])
    return paths
