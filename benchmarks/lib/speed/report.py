"""benchmarks/speed.py's report: the Markdown table, the speed-ups against the path or
sampler each case replaces, and speed.json and speed.md."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.lib.reports import write_json, write_text


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


def write_report(report: dict[str, Any], out: Path) -> None:
    """speed.json, and speed.md: the command, the machine, then the table."""
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "speed.json", report)
    write_text(
        out / "speed.md",
        f"Command: `{report['command']}`\n\n{report['date']}; {report['device']} "
        f"({report['device_name']}, {report['cpu_count']} CPUs, "
        f"{report['torch_threads']} threads); torch {report['torch']}.\n\n"
        + render_markdown(report),
    )
