"""The experiments of a follow-up study of RePaint, redone with this project's tools.

    python benchmarks/study.py --out docs                 # everything, ~25 min on 2 CPU cores
    python benchmarks/study.py --quick --out /tmp/study   # every experiment, short (~3 min)
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
pixels), on the embedded model. Writes study.json, study_tables.md and study_*.png.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.quality import (
    Method,
    classifier_features,
    machine_info,
    run_benchmark,
    train_classifier,
)
from benchmarks.speed import count_flops
from repaint.checkpoints.registry import get_spec
from repaint.datasets import load_digits
from repaint.device import derive_seed, make_generator
from repaint.errors import RepaintError
from repaint.io import atomic_output, from_uint8, to_uint8
from repaint.loading import load_inpainter
from repaint.masks import generate_mask
from repaint.networks import unet_from_config
from repaint.outputs import comparison_grid
from repaint.pixel import PixelInpainter
from repaint.presets import PRESETS
from repaint.prior import create_prior
from repaint.sampler import branch_costs, continue_with, repaint, repaint_until
from repaint.schedule import JumpSchedule

EXPERIMENTS = ("size", "t_T", "resampling", "early-late", "diversity", "texture")
ADM64 = {  # guided-diffusion's 64x64 ImageNet model (its README's flags), without classes
    "image_size": 64,
    "num_channels": 192,
    "num_res_blocks": 3,
    "learn_sigma": True,
    "attention_resolutions": "32,16,8",
    "num_head_channels": 64,
    "resblock_updown": True,
    "use_new_attention_order": True,
    "use_scale_shift_norm": True,
    "noise_schedule": "cosine",
    "class_cond": False,
}
T_T_LEVELS = (10, 25, 50, 100, 250)
RESAMPLINGS = (2, 3, 5, 10, 20)  # jump_n_sample at t_T=50, jump_length=10
EARLY_LATE = {"t_T": 50, "jump_length": 5, "jump_n_sample": 5}
DIVERSITY_KINDS = ("genhalf", "nn2", "ex64")  # large holes, where samples can differ
BRANCH_LEVELS = (45, 25, 5)  # near the start, the middle and the end of t_T=50
BRANCHES = 4


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def time_sizes(repeats: int) -> list[dict[str, Any]]:
    """Seconds and FLOPs of one model evaluation at batch 1 for each architecture."""
    archs = {
        "digits 32 px": get_spec("digits").config,
        "ADM 64 px (ImageNet)": ADM64,
        "ADM 256 px (CelebA-HQ, Places2)": get_spec("celeba256").config,
    }
    rows = []
    for name, config in archs.items():
        torch.manual_seed(0)
        network = unet_from_config(config).eval()
        prior = create_prior(config, network=network, device="cpu")
        size = int(config["image_size"])
        x, t = torch.randn(1, 3, size, size), torch.zeros(1, dtype=torch.long)
        with torch.inference_mode():
            flops = count_flops(lambda: prior.denoise(x, t, t))  # noqa: B023 (called here)
            prior.denoise(x, t, t)  # warm-up
            times = []
            for _ in range(repeats):
                started = time.perf_counter()
                prior.denoise(x, t, t)
                times.append(time.perf_counter() - started)
        params = sum(p.numel() for p in network.parameters())
        rows.append(
            {
                "architecture": name,
                "image_size": size,
                "parameters": params,
                "gflop": flops / 1e9,
                "seconds": float(np.median(times)),
                "paper_seconds": float(np.median(times)) * PRESETS["paper"].reverse_steps,
            }
        )
        log(f"size: {name}: {rows[-1]['seconds'] * 1000:.0f} ms, {flops / 1e9:.1f} GFLOP")
    return rows


def quality_methods(scale: float) -> dict[str, list[Method]]:
    """The schedules of experiments t_T, resampling and early-late (`scale` < 1: shorter)."""

    def method(name: str, **params: int) -> Method:
        if scale != 1:
            params["t_T"] = max(4, round(params["t_T"] * scale))
            params["jump_length"] = max(1, round(params.get("jump_length", 10) * scale))
        schedule = JumpSchedule(**params)
        return Method(name, "repaint", schedule.summary().splitlines()[0], schedule)

    middle = max(4, round(EARLY_LATE["t_T"] * scale)) // 2
    early = method(f"early only (t >= {middle})", **EARLY_LATE, stop_resampling=middle)
    late = method(f"late only (t <= {middle - 1})", **EARLY_LATE, start_resampling=middle - 1)
    if early.evaluations != late.evaluations:
        raise RepaintError(f"early/late costs differ: {early.evaluations} vs {late.evaluations}")
    return {
        "t_T": [method(f"t_T={t}", t_T=t, jump_n_sample=1) for t in T_T_LEVELS],
        "resampling": [
            method(f"jump_n_sample={n}", t_T=50, jump_length=10, jump_n_sample=n)
            for n in RESAMPLINGS
        ],
        "early-late": [early, late, method("everywhere", **EARLY_LATE)],
    }


def diversity(
    inpainter: PixelInpainter, images: int, seed: int, scale: float
) -> list[dict[str, Any]]:
    """K full runs against K branches: cost, mean pairwise distance of the fills, accuracy."""
    prior, size = inpainter.prior, inpainter.image_size
    schedule = PRESETS["fast"].schedule
    if scale != 1:
        schedule = JumpSchedule(t_T=max(8, round(50 * scale)), jump_length=2, jump_n_sample=3)
    top = schedule.t_T - 1
    levels = sorted({min(top, max(1, round(level * schedule.t_T / 50))) for level in BRANCH_LEVELS})
    test_images, test_labels = load_digits("test", size)
    keep_list, truth, labels, seeds = [], [], [], []
    for kind in DIVERSITY_KINDS:
        rng = np.random.default_rng(derive_seed(seed, "mask", kind))
        for index in range(images):
            keep_list.append(generate_mask(kind, size, rng))
            truth.append(test_images[index])
            labels.append(test_labels[index])
            seeds.append(derive_seed(seed, kind, index))
    keep = np.stack(keep_list)
    image_t = torch.stack([from_uint8(image) for image in truth])
    keep_t = torch.from_numpy(keep)[:, None].float()
    classifier = train_classifier(size)
    diffusion = prior.diffusion(schedule.t_T)
    # "one large jump for a new suggestion, then small late jumps to harmonise" (3.5)
    far = min(top, 4 * levels[0])
    one_jump = JumpSchedule(
        t_T=schedule.t_T, jump_length=far, jump_n_sample=2, jump2_length=2, jump2_n_sample=2
    )
    settings = [("K full runs", None, schedule)]
    settings += [(f"K branches from level {level}", level, schedule) for level in reversed(levels)]
    settings.append(
        (
            f"K branches from level {levels[0]}: a jump of {far}, then jumps of 2",
            levels[0],
            one_jump,
        )
    )
    rows = []
    for name, level, rest in settings:
        started = time.perf_counter()
        common = {"clip_denoised": prior.clip_denoised}
        with torch.inference_mode():
            if level is None:
                fills = [
                    repaint(
                        prior.denoise,
                        diffusion,
                        image_t,
                        keep_t,
                        schedule,
                        **common,
                        generator=[make_generator(derive_seed(s, "run", k), "cpu") for s in seeds],
                    )
                    for k in range(BRANCHES)
                ]
            else:
                shared_gens = [make_generator(derive_seed(s, "shared"), "cpu") for s in seeds]
                shared = repaint_until(
                    prior.denoise,
                    diffusion,
                    image_t,
                    keep_t,
                    schedule,
                    level=level,
                    generator=shared_gens,
                    **common,
                )
                fills = []
                for k in range(BRANCHES):
                    gens = [make_generator(derive_seed(s, "branch", k), "cpu") for s in seeds]
                    branch = continue_with(shared, rest, [g.get_state() for g in gens])
                    fills.append(
                        repaint(
                            prior.denoise,
                            diffusion,
                            image_t,
                            keep_t,
                            branch.times,
                            generator=gens,
                            state=branch,
                            **common,
                        )
                    )
        outputs = np.stack([to_uint8(fill) for fill in fills])  # (K, items, S, S, 3)
        shared_cost, each = branch_costs(schedule, rest, level)
        fill = ~keep[..., None]
        distances = [
            np.sqrt(
                (((a.astype(float) - b) ** 2) * fill).sum((1, 2, 3)) / (3 * fill.sum((1, 2, 3)))
            )
            for a, b in itertools.combinations(outputs, 2)
        ]
        predicted = [classifier.predict(classifier_features(out)) for out in outputs]
        rows.append(
            {
                "setting": name,
                "branch_at": level,
                "evaluations": shared_cost + BRANCHES * each,
                "shared": shared_cost,
                "per_branch": each,
                "pairwise_rms": float(np.mean(distances)),
                "accuracy": float(np.mean([p == np.array(labels) for p in predicted])),
                "seconds": time.perf_counter() - started,
            }
        )
        log(
            f"diversity: {name}: {rows[-1]['evaluations']} evaluations, "
            f"distance {rows[-1]['pairwise_rms']:.1f}, accuracy {rows[-1]['accuracy']:.3f}"
        )
    return rows


def texture(inpainter: PixelInpainter, out: Path, seed: int, scale: float) -> dict[str, Any]:
    """A held-out digit extended on every side, and a row of them extended to the right."""
    schedule = None if scale == 1 else {"t_T": 8, "jump_length": 2, "jump_n_sample": 2}
    size = inpainter.image_size
    tile = load_digits("test", size)[0][0]
    rows, cases = [], []
    for sides in ((32, 16, 32, 16), (0, 0, 64, 0)):
        result = inpainter(tile, None, schedule=schedule, seed=seed, num_samples=3, extend=sides)
        start = np.zeros_like(np.asarray(result.images[0]))
        left, top = sides[0], sides[1]
        start[top : top + size, left : left + size] = tile
        panels = [Image.fromarray(start), *result.images]
        labels = [f"--extend {','.join(map(str, sides))}", "sample 0", "sample 1", "sample 2"]
        rows.append(comparison_grid(panels, labels))
        exact = all(
            np.array_equal(np.asarray(image)[top : top + size, left : left + size], tile)
            for image in result.images
        )
        cases.append(
            {
                "extend": list(sides),
                "windows": len(result.windows),
                "evaluations": result.model_evaluations,
                "seconds": result.seconds,
                "original_exact": exact,
            }
        )
        log(f"texture: extend {sides}: {len(result.windows)} windows, exact original: {exact}")
    grid = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    for number, row in enumerate(rows):
        grid.paste(row, (0, sum(r.height for r in rows[:number])))
    with atomic_output(out / "study_texture.png") as handle:
        grid.save(handle, format="PNG")
    return {"cases": cases, "figure": "study_texture.png"}


def quality_rows(report: dict[str, Any], methods: list[Method]) -> list[dict[str, Any]]:
    rows = []
    for method in methods:
        row = report["methods"][method.name]
        rows.append(
            {
                "setting": method.name,
                "schedule": row["schedule"],
                "evaluations": row["evaluations_per_image"],
                "seconds_per_image": row["seconds_per_image"],
                **row["mean"],
                "per_kind_accuracy": {k: v["accuracy"] for k, v in row["per_kind"].items()},
            }
        )
    return rows


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
        written.append(_save(figure, out / "study_size.png"))
    series = [(key, results[key]) for key in ("t_T", "resampling", "early-late") if key in results]
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
        written.append(_save(figure, out / "study_quality.png"))
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
        written.append(_save(figure, out / "study_diversity.png"))
    return written


def _save(figure: Any, path: Path) -> Path:
    with atomic_output(path) as handle:
        figure.savefig(handle, format="png", dpi=120)
    return path


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
            return _write(report, args.out, write_json=False)
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
        "command": shlex.join(
            ["python", "benchmarks/study.py", *(sys.argv[1:] if argv is None else argv)]
        ),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
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
        methods = [
            m for key in ("t_T", "resampling", "early-late") if key in chosen for m in groups[key]
        ]
        if methods:
            bench = run_benchmark(
                inpainter, images=images, methods=(), extra_methods=methods, seed=args.seed
            )
            kinds = len(bench.report["settings"]["mask_kinds"])
            report["items"] = f"{images} held-out digits x {kinds} mask kinds"
            for key in ("t_T", "resampling", "early-late"):
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
    return _write(report, args.out, write_json=True)


def _write(report: dict[str, Any], out: Path, *, write_json: bool) -> int:
    out.mkdir(parents=True, exist_ok=True)
    if write_json:
        with atomic_output(out / "study.json", "w") as handle:
            json.dump(report, handle, indent=2)
    with atomic_output(out / "study_tables.md", "w") as handle:
        handle.write(render_tables(report))
    for path in render_plots(report, out):
        log(f"wrote {path}")
    log(f"wrote {out / 'study_tables.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
