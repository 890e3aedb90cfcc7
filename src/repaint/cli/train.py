"""`repaint train`: a diffusion prior on your images, resumable."""

from __future__ import annotations

import argparse
import sys
from dataclasses import fields
from pathlib import Path

from repaint.cli.common import add_device_argument, required
from repaint.train_config import TrainConfig

HELP = {
    "image_size": "model size in pixels",
    "num_channels": "base width",
    "num_res_blocks": "residual blocks per level (depth)",
    "channel_mult": "width multipliers per level",
    "attention_resolutions": "resolutions with self-attention",
    "num_heads": "attention heads",
    "dropout": "dropout rate",
    "diffusion_steps": "training diffusion steps",
    "noise_schedule": "linear or cosine",
    "steps": "optimisation steps in all",
    "batch_size": "images per step",
    "lr": "AdamW learning rate",
    "ema_rate": "exponential moving average rate of the exported weights",
    "save_every": "checkpoint every N steps",
    "sample_every": "write a sample grid every N steps (0: never)",
    "seed": "seed of all training randomness",
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train",
        help="train a diffusion prior on your images",
        description="Train a guided-diffusion UNet (learned variance, the published models' "
        "architecture and checkpoint format) on a folder of images or a built-in dataset "
        "(digits). Checkpoints go to --out; rerunning the same command resumes an "
        "interrupted run. The result loads with --model OUT/model.safetensors.",
    )
    needed = required(parser)
    needed.add_argument("--data", required=True, help="a folder of images, or: digits (required)")
    needed.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="run folder (required)"
    )
    for field in fields(TrainConfig):
        if field.name == "data":
            continue
        parser.add_argument(
            "--" + field.name.replace("_", "-"),
            type=type(field.default),
            default=field.default,
            help=f"{HELP[field.name]} (default: {field.default})",
        )
    add_device_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    config.check()

    from repaint.device import resolve_device
    from repaint.train import train

    command = "repaint " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""
    try:
        path = train(
            config,
            args.out,
            device=resolve_device(args.device),
            progress=False if args.no_progress else None,
            command=command,
        )
    except KeyboardInterrupt:
        print(
            f"repaint: interrupted; rerun the same command to resume from {args.out}",
            file=sys.stderr,
        )
        return 130
    print(f"trained model: {path} (use it with --model {path})")
    return 0
