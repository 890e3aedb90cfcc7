"""Training speed and memory of `repaint train`, each case a real `repaint train` process.

    python benchmarks/train_speed.py --out docs            # CPU rows and the memory rows
    python benchmarks/train_speed.py --quick               # fewer steps, 2,000 images
    python benchmarks/train_speed.py --device cuda --out docs/gpu

Throughput (images/s) of one network (64 px, the default `repaint train` UNet) at one global
batch, from the per-step training seconds in `metrics.jsonl` after warm-up steps:
fp32 against bf16 autocast; one process with every thread against two `torchrun` processes
(Gloo on CPU, NCCL on GPU) with the threads shared out; data in memory (the built-in digits,
nothing to decode) against a folder of PNGs streamed by loader processes, and by the main
process alone. Memory: the peak resident set of the whole process tree (main process and
loader workers, sampled every 50 ms from /proc; shared pages count in each process) while
training on a generated folder of 200 images and one of 20,000, plus how long the folder
listing took. GPU rows, until measured on a GPU, are an arithmetic bound from the dense
bf16 datasheet peak (three forward passes' FLOPs per trained image), labelled as such.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

if not __package__:  # run as `python benchmarks/train_speed.py`: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import itertools

from benchmarks.lib.hardware import GPU_PEAK_TFLOPS, count_flops, cpu_name
from benchmarks.lib.reports import command_line, machine_info, utc_now, write_json, write_text
from repaint.networks import unet_from_config
from repaint.training.config import TrainConfig
from repaint.training.state import read_metrics

SIZE = 64
NETWORK = ["--image-size", str(SIZE)]  # the default UNet otherwise (64 channels, 1,2,2)
WARM = 3  # steps left out of the throughput


def make_folder(folder: Path, count: int) -> Path:
    """`count` 72x64 PNGs (a smooth random field each), so decoding and cropping both run."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(count):
        path = folder / f"{i // 1000:03d}" / f"{i:06d}.png"
        if path.exists():
            continue
        path.parent.mkdir(exist_ok=True)
        coarse = rng.integers(0, 256, (9, 8, 3), dtype=np.uint8)
        Image.fromarray(coarse).resize((72, 64), Image.BILINEAR).save(path, compress_level=1)
    return folder


def process_tree_rss(root: int) -> int:
    """Bytes resident in `root` and its descendants now (Linux /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
                parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
    tree, changed = {root}, True
    while changed:
        grown = tree | {pid for pid, parent in parents.items() if parent in tree}
        changed, tree = grown != tree, grown
    total = 0
    for pid in tree:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf(
                "SC_PAGE_SIZE"
            )
        except (OSError, IndexError, ValueError):
            continue
    return total


def run_case(flags: list[str], out: Path, *, processes: int, threads: int) -> dict[str, Any]:
    """One `repaint train` run; its throughput, peak tree memory and wall time."""
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if processes == 1:
        command = [sys.executable, "-m", "repaint", "train", *flags]
    else:
        command = [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node",
            str(processes),
            "-m",
            "repaint",
            "train",
            *flags,
        ]
    command += ["--out", str(out), "--no-progress", "--log-every", "1", "--sample-every", "0"]
    started = time.perf_counter()
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    peak, done = 0, threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, process_tree_rss(process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    _stdout, stderr = process.communicate()
    done.set()
    sampler.join()
    if process.returncode:
        raise SystemExit(f"case failed ({process.returncode}): {' '.join(command)}\n{stderr}")
    records = [r for r in read_metrics(out) if "seconds" in r]
    start = next(r for r in read_metrics(out) if r.get("event") == "start")
    steps = records[-1]["step"] - records[WARM - 1]["step"]
    seconds = records[-1]["seconds"] - records[WARM - 1]["seconds"]
    per_step = [b["seconds"] - a["seconds"] for a, b in itertools.pairwise(records)]
    return {
        "images_per_second": round(start["global_batch"] * steps / seconds, 2),
        "median_step_seconds": round(statistics.median(per_step[WARM - 1 :]), 4),
        "global_batch": start["global_batch"],
        "peak_rss_mb": round(peak / 2**20, 1),
        "train_seconds": records[-1]["seconds"],
        "wall_seconds": round(time.perf_counter() - started, 1),
        "log": [line for line in stderr.splitlines() if "training on" in line][:1],
    }


def gpu_bound() -> list[dict[str, Any]]:
    """Images/s that the dense bf16 peak of an H100 allows: 3 forward passes per image."""
    rows = []
    configs = {
        "64 px (this benchmark's UNet)": TrainConfig(image_size=SIZE).model_config(),
        "256 px (celeba256's UNet)": {
            "image_size": 256,
            "num_channels": 256,
            "num_res_blocks": 2,
            "learn_sigma": True,
            "attention_resolutions": "32,16,8",
            "num_head_channels": 64,
            "use_scale_shift_norm": True,
            "resblock_updown": True,
        },
    }
    peak = GPU_PEAK_TFLOPS["H100"][2] * 1e12
    for name, config in configs.items():
        network = unet_from_config(config)
        size = int(config["image_size"])
        x, t = torch.zeros(1, 3, size, size), torch.zeros(1, dtype=torch.long)
        flops = 3 * count_flops(lambda n=network, a=x, b=t: n(a, b))
        rows.append(
            {
                "network": name,
                "tflop_per_image": round(flops / 1e12, 4),
                "bound_images_per_second": round(peak / flops, 1),
                "basis": "H100 dense bf16 datasheet peak (989 TFLOP/s), not a measurement",
            }
        )
    return rows


def render(report: dict[str, Any]) -> str:
    lines = [
        f"Measured {report['date']} on {report['cpu']} ({report['machine']['cpu_count']} "
        f"cores), torch {report['machine']['torch']}: `{report['command']}`.",
        "",
        "| case | precision | processes x threads | data | images/s | median step (s) "
        "| peak memory (MB) |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["speed"]:
        lines.append(
            f"| {row['name']} | {row['precision']} | {row['processes']} x {row['threads']} | "
            f"{row['data']} | {row['images_per_second']} | {row['median_step_seconds']} | "
            f"{row['peak_rss_mb']} |"
        )
    lines += [
        "",
        "| folder | images | outside training steps (s) | peak memory, process tree (MB) |",
        "| --- | --- | --- | --- |",
    ]
    for row in report["memory"]:
        lines.append(
            f"| {row['name']} | {row['images']:,} | {row['start_seconds']} | {row['peak_rss_mb']} |"
        )
    memory = report["memory"]
    lines += [
        "",
        f"Peak memory grows by {memory[-1]['peak_rss_mb'] - memory[0]['peak_rss_mb']:.1f} "
        f"MB from {memory[0]['images']:,} to {memory[-1]['images']:,} images.",
        "",
        "| GPU network | TFLOP per trained image | bound (images/s) | basis |",
        "| --- | --- | --- | --- |",
    ]
    for row in report["gpu_bound"]:
        lines.append(
            f"| {row['network']} | {row['tflop_per_image']} | "
            f"{row['bound_images_per_second']} | {row['basis']} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=14, help="steps per speed case")
    parser.add_argument("--batch", type=int, default=8, help="global batch")
    parser.add_argument("--images", type=int, default=20_000, help="the large folder's size")
    parser.add_argument("--quick", action="store_true", help="8 steps, 2,000 images")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--work", type=Path, help="where the generated folders go (kept)")
    parser.add_argument("--out", type=Path, help="write train_speed.json and .md here")
    args = parser.parse_args(argv)
    steps, large = (8, 2000) if args.quick else (args.steps, args.images)
    work = args.work or Path(tempfile.mkdtemp(prefix="train_speed_"))
    cores = os.cpu_count() or 1
    base = [*NETWORK, "--steps", str(steps), "--save-every", str(steps), "--device", args.device]
    small_folder = make_folder(work / "small", 200)
    cases = [
        ("fp32", "fp32", 1, cores, "digits", 0),
        ("bf16", "bf16", 1, cores, "digits", 0),
        ("torchrun", "fp32", 2, max(1, cores // 2), "digits", 0),
        ("folder, loader processes", "fp32", 1, cores, str(small_folder), -1),
        ("folder, main process decodes", "fp32", 1, cores, str(small_folder), 0),
    ]
    speed = []
    for name, precision, processes, threads, data, workers in cases:
        flags = [
            *base,
            "--data",
            data,
            "--precision",
            precision,
            "--workers",
            str(workers),
            "--batch-size",
            str(args.batch // processes),
        ]
        row = run_case(
            flags, work / "runs" / name.replace(" ", "_"), processes=processes, threads=threads
        )
        speed.append(
            {
                "name": name,
                "precision": precision,
                "processes": processes,
                "threads": threads,
                "data": "memory" if data == "digits" else "folder",
                **row,
            }
        )
        print(f"{name}: {row['images_per_second']} images/s", file=sys.stderr)
    memory = []
    for count in (200, large):
        folder = make_folder(work / f"folder_{count}", count)
        flags = [*base, "--data", str(folder), "--batch-size", str(args.batch)]
        row = run_case(flags, work / "runs" / f"memory_{count}", processes=1, threads=cores)
        start = row["wall_seconds"] - row["train_seconds"]  # imports, listing, saving
        memory.append(
            {
                "name": folder.name,
                "images": count,
                "peak_rss_mb": row["peak_rss_mb"],
                "start_seconds": round(start, 1),
            }
        )
        print(f"{count} images: {row['peak_rss_mb']} MB", file=sys.stderr)
    report = {
        "command": command_line("benchmarks/train_speed.py", argv),
        "date": utc_now(),
        "cpu": cpu_name(),
        "machine": machine_info(),
        "speed": speed,
        "memory": memory,
        "gpu_bound": gpu_bound(),
    }
    text = render(report)
    print(text)
    if args.out:
        write_json(args.out / "train_speed.json", report)
        write_text(args.out / "train_speed.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
