"""Every sampler of the registry (RePaint, DDNM, DPS, CoPaint, CoPaint-TT, DiffPIR, ΠGDM and
LanPaint) at matched model-evaluation budgets, on held-out digits under the paper's six mask
kinds.

    python benchmarks/samplers.py --quick                        # 6 images, budget 50
    python benchmarks/samplers.py --images 60 --budgets 50,100   # docs/samplers.md

For each budget every sampler gets the largest t_T whose planned cost fits it, counting a
backward pass through the network as one evaluation (DPS: 2 per step; CoPaint: 1 + 2G
forward and G backward per step, plus one forward per cut of its step size, which the
report counts as run; LanPaint: 1 + its Langevin steps per step). Schedules per sampler:
RePaint jumps back t_T // 5 levels 3 times (the `fast` preset's shape), CoPaint-TT t_T // 5
levels twice (its authors' script), the others go straight down (their reference configs),
each on the product's uniformly respaced diffusion. Every sampler uses the same
per-item generators and the reference hyperparameters; outputs are pasted and made grey like
the product's. Scores as in benchmarks/quality.py (semantic accuracy from a digit classifier
trained on the training split, PSNR and SSIM of the filled region), each mean with a
bootstrap 95% interval over the items; wall time per image from the batched runs. How long
the runs take on the development machine is in docs/samplers.md.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

if not __package__:  # run as `python benchmarks/samplers.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.lib.hardware import cpu_name
from benchmarks.lib.metrics import item_scores, train_classifier
from benchmarks.lib.reports import machine_info, save_figure, write_json, write_text
from benchmarks.lib.runner import chunks
from repaint.choices import MASK_KINDS
from repaint.costs import request_costs
from repaint.costs import sampler_levels as request_levels
from repaint.datasets import load_digits
from repaint.device import derive_seed, make_generator
from repaint.io import from_uint8, to_uint8
from repaint.loading import load_inpainter
from repaint.masks import generate_mask
from repaint.presets import PRESETS
from repaint.prior import Prior
from repaint.request import InpaintRequest
from repaint.samplers import SAMPLERS as REGISTRY
from repaint.samplers import call_sampler, get_spec
from repaint.samplers.common import Step
from repaint.schedule import JumpSchedule

SAMPLERS = tuple(REGISTRY)
PRESET_ROWS = {"repaint-fast": "fast"}  # RePaint at a preset's own shape, where it fits
BOOTSTRAP = 1000
BATCH = 60


def schedule_for(name: str, t_T: int) -> JumpSchedule:
    """Each sampler's schedule family (see the module docstring)."""
    jump = max(1, t_T // 5)
    if name == "repaint":
        return JumpSchedule(t_T=t_T, jump_length=jump, jump_n_sample=3)
    if name == "copaint-tt":
        return JumpSchedule(t_T=t_T, jump_length=jump, jump_n_sample=2)
    return JumpSchedule(t_T=t_T, jump_length=1, jump_n_sample=1)


def planned(name: str, schedule: JumpSchedule) -> int:
    """The sampler's planned model evaluations on `schedule` (backward passes counted)."""
    sampler = "repaint" if name in PRESET_ROWS else name
    return request_costs(InpaintRequest(schedule=schedule, sampler=sampler)).each


def fit_budget(name: str, budget: int) -> JumpSchedule:
    """The schedule of the largest t_T whose planned cost is at most `budget` (a preset row
    runs its preset's schedule)."""
    if name in PRESET_ROWS:
        return PRESETS[PRESET_ROWS[name]].schedule
    best = schedule_for(name, 2)
    for t_T in range(2, 1001):
        schedule = schedule_for(name, t_T)
        if planned(name, schedule) > budget:
            break
        best = schedule
    return best


def bootstrap(values: np.ndarray, rng: np.random.Generator) -> list[float | None]:
    """[mean, low, high]: the mean and its 95% percentile-bootstrap interval."""
    values = values[np.isfinite(values)]
    if not values.size:
        return [None, None, None]
    means = rng.choice(values, (BOOTSTRAP, values.size)).mean(axis=1)
    return [float(values.mean()), *map(float, np.percentile(means, [2.5, 97.5]))]


def run(
    name: str,
    schedule: JumpSchedule,
    prior: Prior,
    images: torch.Tensor,
    keeps: torch.Tensor,
    seeds: list[int],
) -> tuple[np.ndarray, float, int]:
    """Outputs (uint8), seconds, and evaluations actually made per image."""
    outputs, evaluations, started = [], 0, time.perf_counter()
    for chunk in chunks(len(seeds), BATCH):
        generators = [make_generator(seeds[i], prior.device) for i in chunk]
        image, keep = images[chunk.start : chunk.stop], keeps[chunk.start : chunk.stop]
        steps: list[Step] = []
        spec = get_spec("repaint" if name in PRESET_ROWS else name)
        with torch.inference_mode(not spec.gradients):
            x = call_sampler(
                spec,
                prior.denoise,
                prior.diffusion(schedule.t_T),
                image,
                keep,
                request_levels(spec, schedule),
                generator=generators,
                callback=steps.append,
            )
        made = getattr(steps[-1], "evaluations", steps[-1].index + 1)  # RePaint: one per step
        evaluations = max(evaluations, made)
        x = x.mean(dim=1, keepdim=True).expand_as(x)  # the digits model is greyscale
        x = torch.where(keep.expand_as(x) > 0.5, image, x)
        outputs.append(to_uint8(x))
    return np.concatenate(outputs), time.perf_counter() - started, evaluations


def _cell(stat: list[float | None], digits: int) -> str:
    mean, low, high = stat
    if mean is None:
        return "-"
    return f"{mean:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def render_tables(report: dict[str, Any]) -> str:
    """Markdown: per budget and mask kind, every sampler's scores with 95% intervals."""
    lines = [
        f"{report['images']} held-out digits x {len(report['kinds'])} mask kinds per row; "
        "mean [95% bootstrap interval].",
        "",
    ]
    for budget in report["budgets"]:
        rows = [row for row in report["rows"] if row["budget"] == budget]
        for kind in ["all", *report["kinds"]]:
            lines += [
                f"### Budget {budget}, {'all mask kinds' if kind == 'all' else kind}",
                "",
                "| sampler | t_T | evaluations | ms / image | accuracy | PSNR (dB) | SSIM |",
                "|---|---:|---:|---:|---|---|---|",
            ]
            for row in rows:
                stats = row["per_kind"][kind]
                lines.append(
                    f"| {row['sampler']} | {row['schedule']['t_T']} | {row['evaluations']} | "
                    f"{row['seconds_per_image'] * 1000:.0f} | {_cell(stats['accuracy'], 3)} | "
                    f"{_cell(stats['psnr'], 2)} | {_cell(stats['ssim'], 3)} |"
                )
            lines.append("")
    return "\n".join(lines)


def render_plot(report: dict[str, Any], path: Path) -> None:
    """Accuracy (top) and fill PSNR (bottom) against the model evaluations made per image
    (the cost that does not depend on the machine), one column per mask kind, a line per
    sampler through its budgets, 95% intervals as bars."""
    from matplotlib.figure import Figure

    kinds = report["kinds"]
    figure = Figure(figsize=(3.2 * len(kinds), 6.4), layout="constrained")
    axes = figure.subplots(2, len(kinds), squeeze=False)
    names = list(dict.fromkeys(row["sampler"] for row in report["rows"]))
    for column, kind in enumerate(kinds):
        for metric, ax in zip(("accuracy", "psnr"), axes[:, column], strict=True):
            for name in names:
                rows = sorted(
                    (row for row in report["rows"] if row["sampler"] == name),
                    key=lambda row: row["budget"],
                )
                x = [row["evaluations"] for row in rows]
                stats = [row["per_kind"][kind][metric] for row in rows]
                y = [stat[0] for stat in stats]
                error = [[m - lo for m, lo, _ in stats], [hi - m for m, _, hi in stats]]
                ax.errorbar(x, y, yerr=error, marker="o", capsize=3, label=name)
            ax.set_title(f"{kind}: {'accuracy' if metric == 'accuracy' else 'fill PSNR (dB)'}")
            ax.set_xlabel("model evaluations per image")
            if metric == "accuracy":
                ax.set_ylim(0, 1.02)
    axes[0, 0].legend(fontsize=8)
    save_figure(figure, path, dpi=72)


def write_docs(report: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "samplers.json", report)
    write_text(out / "samplers_tables.md", render_tables(report))
    render_plot(report, out / "samplers.png")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=60, help="held-out digits per mask kind")
    parser.add_argument("--budgets", default="50,100", help="model evaluations per image")
    parser.add_argument(
        "--samplers", default=",".join(SAMPLERS), help="also: repaint-fast (the fast preset)"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="6 images, budget 50")
    parser.add_argument("--out", type=Path, default=Path("docs"))
    parser.add_argument("--from-json", type=Path, help="redraw tables and plot from a report")
    parser.add_argument(
        "--merge",
        type=Path,
        help="a report whose other rows to keep (same --images and --seed): add samplers "
        "to it without running the others again",
    )
    args = parser.parse_args(argv)
    if args.from_json:
        write_docs(json.loads(args.from_json.read_text()), args.out)
        return 0
    if args.quick:
        args.images, args.budgets = 6, "50"
    budgets = [int(b) for b in args.budgets.split(",")]
    names = args.samplers.split(",")
    inpainter = load_inpainter("digits", device="cpu")
    prior, size = inpainter.prior, inpainter.image_size
    digits, labels = load_digits("test", size)
    rng = np.random.default_rng(args.seed)
    truth, keep, kinds, item_labels, seeds = [], [], [], [], []
    for kind, index in itertools.product(MASK_KINDS, range(args.images)):
        truth.append(digits[index])
        keep.append(generate_mask(kind, size, rng))
        kinds.append(kind)
        item_labels.append(labels[index])
        seeds.append(derive_seed(args.seed, kind, index))
    truth_a, keep_a = np.stack(truth), np.stack(keep)
    images = torch.stack([from_uint8(image) for image in truth_a])
    keeps = torch.from_numpy(keep_a)[:, None].float()
    classifier = train_classifier(size)
    report: dict[str, Any] = {
        "images": args.images,
        "kinds": list(MASK_KINDS),
        "budgets": budgets,
        "machine": machine_info(),
        "rows": [],
    }
    kinds_a, labels_a = np.array(kinds), np.array(item_labels)
    for budget, name in itertools.product(budgets, names):
        schedule = fit_budget(name, budget)
        output, seconds, made = run(name, schedule, prior, images, keeps, seeds)
        correct, psnr, ssim = item_scores(output, truth_a, keep_a, labels_a, classifier)
        boot = np.random.default_rng(1)
        row = {
            "budget": budget,
            "sampler": name,
            "schedule": schedule.params(),
            "evaluations": made,
            "seconds_per_image": seconds / len(seeds),
            "per_kind": {},
        }
        for kind in [*MASK_KINDS, "all"]:
            select = np.ones(len(kinds_a), bool) if kind == "all" else kinds_a == kind
            row["per_kind"][kind] = {
                "accuracy": bootstrap(correct[select].astype(float), boot),
                "psnr": bootstrap(psnr[select], boot),
                "ssim": bootstrap(ssim[select], boot),
            }
        report["rows"].append(row)
        overall = row["per_kind"]["all"]
        print(
            f"budget {budget} {name:10s} t_T={schedule.t_T:3d} evals={made:4d} "
            f"acc={overall['accuracy'][0]:.3f} psnr={overall['psnr'][0]:.2f} "
            f"ssim={overall['ssim'][0]:.3f} {seconds / len(seeds) * 1000:.0f} ms/image",
            file=sys.stderr,
            flush=True,
        )
    if args.merge:
        report = merged(json.loads(args.merge.read_text()), report, args)
    write_docs(report, args.out)
    return 0


def merged(old: dict[str, Any], new: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """`old`'s rows that `new` did not run, then `new`'s, in budget and registry order; the
    runs that made them are listed."""
    if old.get("images") != new["images"]:
        raise SystemExit(f"--merge: {old.get('images')} images there, {new['images']} here")
    ran = {(row["budget"], row["sampler"]) for row in new["rows"]}
    rows = [row for row in old["rows"] if (row["budget"], row["sampler"]) not in ran]
    order = [*SAMPLERS, *PRESET_ROWS]
    rank = {name: i for i, name in enumerate(["repaint", *PRESET_ROWS, *order[1:]])}
    rows = sorted(rows + new["rows"], key=lambda r: (r["budget"], rank.get(r["sampler"], 99)))
    runs = old.get("runs") or [{"samplers": sorted({r["sampler"] for r in old["rows"]})}]
    runs.append({"samplers": args.samplers.split(","), "budgets": new["budgets"],
                 "argv": sys.argv[1:], "cpu": cpu_name()})  # fmt: skip
    budgets = sorted({*old.get("budgets", []), *new["budgets"]})
    return {**old, "budgets": budgets, "machine": new["machine"], "rows": rows, "runs": runs}


if __name__ == "__main__":
    sys.exit(main())
