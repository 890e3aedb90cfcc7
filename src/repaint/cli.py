"""The `repaint` command line. Problems the user can fix exit with code 2 and one line."""

from __future__ import annotations

import argparse
import json
import sys
import warnings
from collections.abc import Sequence
from dataclasses import fields

from repaint import __version__
from repaint.errors import RepaintError
from repaint.schedule import NEVER, JumpSchedule

EXIT_USER_ERROR = 2


def add_schedule_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags named after the reference's `schedule_jump_params` keys."""
    group = parser.add_argument_group("jump schedule (reference schedule_jump_params)")
    defaults = {field.name: field.default for field in fields(JumpSchedule)}
    help_text = {
        "t_T": "number of denoising levels (the model is respaced to this many steps)",
        "n_sample": "repeat every single reverse step this many times",
        "jump_length": "levels to jump back up after each segment",
        "jump_n_sample": "times each segment is denoised in all (1 = no resampling)",
        "jump2_length": "nested jump length (level 2)",
        "jump2_n_sample": "nested jump count (level 2)",
        "jump3_length": "nested jump length (level 3)",
        "jump3_n_sample": "nested jump count (level 3)",
        "start_resampling": "resample only at levels t <= this (default: everywhere)",
    }
    for name, default in defaults.items():
        flag = "--" + name.replace("_", "-").replace("t-T", "t-T")
        shown = "everywhere" if default == NEVER else default
        group.add_argument(
            flag,
            dest=name,
            type=int,
            default=default,
            metavar="N",
            help=f"{help_text[name]} (default: {shown})",
        )


def schedule_from_args(args: argparse.Namespace) -> JumpSchedule:
    return JumpSchedule(**{field.name: getattr(args, field.name) for field in fields(JumpSchedule)})


def cmd_schedule(args: argparse.Namespace) -> int:
    schedule = schedule_from_args(args)
    if args.json:
        times = schedule.times()
        print(
            json.dumps(
                {
                    "times": times,
                    "reverse_steps": schedule.reverse_steps,
                    "forward_steps": schedule.forward_steps,
                }
            )
        )
    else:
        print(schedule.summary())
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from repaint.reference import run_config

    summary = run_config(
        args.conf,
        seed=args.seed,
        device=args.device,
        progress=False if args.no_progress else None,
    )
    rate = summary.model_evaluations / summary.seconds if summary.seconds else float("inf")
    print(
        f"inpainted {summary.images} image(s) with seed {summary.seed} in "
        f"{summary.seconds:.1f} s ({rate:.1f} model evaluations/s); outputs in "
        + ", ".join(str(folder) for folder in summary.output_folders.values())
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="repaint",
        description="RePaint: inpaint images with a pretrained diffusion model.",
    )
    parser.add_argument("--version", action="version", version=f"repaint {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = commands.add_parser(
        "run",
        help="run a reference-format YAML config end to end",
        description="Run a config in the reference RePaint format (model, diffusion, "
        "classifier, schedule_jump_params and data.eval keys) and write its output folders. "
        "Relative paths in the config resolve against the working directory.",
    )
    run.add_argument("--conf", required=True, metavar="CONF.yml", help="the config file")
    run.add_argument(
        "--seed",
        type=int,
        help="seed of the one generator all randomness comes from (default: a fresh one, printed)",
    )
    run.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (default: auto)")
    run.add_argument("--no-progress", action="store_true", help="never show a progress bar")
    run.set_defaults(handler=cmd_run)

    schedule = commands.add_parser(
        "schedule",
        help="print the jump schedule and its cost",
        description="Show RePaint's time schedule for the given parameters.",
    )
    add_schedule_arguments(schedule)
    schedule.add_argument(
        "--json",
        action="store_true",
        help='print {"times": [...], "reverse_steps": N, "forward_steps": M}',
    )
    schedule.set_defaults(handler=cmd_schedule)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"repaint: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    warnings.showwarning = _one_line_warning
    try:
        return args.handler(args)
    except RepaintError as error:
        print(f"repaint: error: {error}", file=sys.stderr)
    except OSError as error:
        where = f"{error.filename}: " if error.filename else ""
        print(f"repaint: error: {where}{error.strerror or error}", file=sys.stderr)
    except KeyboardInterrupt:
        print("repaint: interrupted", file=sys.stderr)
        return 130
    return EXIT_USER_ERROR


if __name__ == "__main__":
    sys.exit(main())
