"""`repaint run --conf CONF.yml`: a reference-format config, end to end."""

from __future__ import annotations

import argparse

from repaint.cli.common import add_device_argument, add_speed_arguments, required


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "run",
        help="run a reference-format YAML config end to end",
        description="Run a config in the reference RePaint format (model, diffusion, "
        "classifier, schedule_jump_params and data.eval keys) and write its output folders, "
        "following the config exactly (its schedule, not a preset). Relative paths in the "
        "config resolve against the working directory.",
    )
    required(parser).add_argument(
        "--conf", required=True, metavar="CONF.yml", help="the config file (required)"
    )
    parser.add_argument(
        "--seed",
        type=int,
        help="seed of the one generator all randomness comes from (default: a fresh one, printed)",
    )
    add_device_argument(parser)
    parser.add_argument(
        "--per-image-seeds",
        action="store_true",
        help="each image its own generator from the seed and its name (always under torchrun): "
        "results independent of batching and sharding, finished images skipped on a rerun; "
        "the default is the reference's single generator",
    )
    add_speed_arguments(parser)
    parser.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from repaint.accel import Acceleration
    from repaint.reference import run_config

    summary = run_config(
        args.conf,
        seed=args.seed,
        device=args.device,
        acceleration=Acceleration(channels_last=args.channels_last, compile=args.compile),
        per_image_seeds=args.per_image_seeds,
        progress=False if args.no_progress else None,
    )
    if not summary.main:
        return 0
    rate = summary.model_evaluations / summary.seconds if summary.seconds else float("inf")
    skipped = f", {summary.skipped} skipped (already done)" if summary.skipped else ""
    print(
        f"inpainted {summary.images} image(s){skipped} with seed {summary.seed} in "
        f"{summary.seconds:.1f} s on {summary.processes} process(es) ({rate:.1f} model "
        "evaluations/s); outputs in "
        + ", ".join(str(folder) for folder in summary.output_folders.values())
    )
    return 0
