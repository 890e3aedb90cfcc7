"""`repaint train`: a diffusion prior on your images, resumable, on one process or under
`torchrun`. Every flag comes from a field of `TrainConfig` (its help, group and type)."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import fields
from pathlib import Path

from repaint.cli.common import add_device_argument, required
from repaint.training.config import TrainConfig, flag

GROUPS = {
    "data": "data (folders are streamed: decoded by worker processes, never held whole)",
    "model": "network (with --init: taken from the checkpoint; a flag given must agree)",
    "optimisation": "optimisation (global batch = --batch-size x --grad-accum x processes)",
    "EMA": "exponential moving average of the exported weights",
    "validation": "inpainting as the training signal (hole PSNR in metrics.jsonl)",
    "output": "output and randomness",
}


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "train",
        help="train a diffusion prior on your images",
        description="Train a guided-diffusion UNet (learned variance, the published models' "
        "architecture and checkpoint format) on a folder of images or the built-in digits, "
        "from scratch or from a model (--init). Checkpoints go to --out; rerunning the same "
        "command resumes an interrupted run (Ctrl-C and SIGTERM save first). Many GPUs: "
        "torchrun --nproc_per_node N -m repaint train ... The result loads with --model "
        "OUT/model.safetensors.",
    )
    needed = required(parser)
    needed.add_argument("--data", required=True, help="a folder of images, or: digits (required)")
    needed.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="run folder (required)"
    )
    groups = {name: parser.add_argument_group(title) for name, title in GROUPS.items()}
    for field in fields(TrainConfig):
        if field.name == "data":
            continue
        meta = field.metadata
        group = groups[meta["group"]]
        shown = field.default if field.default is not None else "default or --init's"
        if meta["kind"] is bool:
            name = f"--no-{field.name.replace('_', '-')}" if field.default else flag(field.name)
            group.add_argument(
                name,
                dest=field.name,
                action="store_false" if field.default else "store_true",
                help=meta["help"],
            )
        elif field.name == "random_crop":
            group.add_argument(
                flag(field.name),
                nargs="?",
                const="1",
                default="",
                metavar="MIN,MAX",
                help=meta["help"],
            )
        else:
            group.add_argument(
                flag(field.name),
                type=meta["kind"],
                default=field.default,
                help=f"{meta['help']} (default: {shown!s})" if shown != "" else meta["help"],
            )
    add_device_argument(parser)
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    config.check()

    from repaint.training.loop import TrainingStopped, train

    command = "repaint " + " ".join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else ""
    try:
        path = train(
            config,
            args.out,
            device=args.device,
            progress=False if args.no_progress else None,
            command=command,
        )
    except TrainingStopped as stopped:
        print(
            f"repaint: stopped at step {stopped.step} and saved; rerun the same command to "
            f"resume from {args.out}",
            file=sys.stderr,
        )
        return 130
    except KeyboardInterrupt:
        print(
            f"repaint: interrupted; rerun the same command to resume from {args.out}",
            file=sys.stderr,
        )
        return 130
    if os.environ.get("RANK", "0") == "0":  # under torchrun, one process speaks
        print(f"trained model: {path} (use it with --model {path})")
    return 0
