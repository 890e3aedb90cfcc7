"""`repaint schedule`: the jump schedule of a preset or of the reference's flags, and its cost."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from repaint.cli.common import add_schedule_arguments, schedule_from_args
from repaint.errors import RepaintError
from repaint.presets import PRESETS, get_preset
from repaint.schedule import JumpSchedule, Schedule, TimeList


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "schedule",
        help="print the jump schedule and its cost",
        description="Show RePaint's time schedule: a preset's, or the reference's defaults "
        "(the paper's schedule), with any flag given on top, or a time list from a file.",
    )
    parser.add_argument(
        "--preset", choices=PRESETS, help="start from this preset (default: the paper's values)"
    )
    add_schedule_arguments(parser)
    parser.add_argument(
        "--json",
        action="store_true",
        help='print {"times": [...], "reverse_steps": N, "forward_steps": M}',
    )
    parser.add_argument("--plot", metavar="FILE.png", help="also plot t against the step")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    given = schedule_from_args(args) or {}
    if "times" in given:
        if args.preset:
            raise RepaintError("--schedule-file: replaces the preset's schedule; drop --preset")
        schedule: Schedule = TimeList(given["times"], where=args.schedule_file)
    else:
        base = get_preset(args.preset).schedule if args.preset else JumpSchedule()
        schedule = JumpSchedule.from_params({**base.params(), **given})
    if args.plot:
        from repaint.outputs import plot_schedule

        plot_schedule(schedule, Path(args.plot))
        print(f"schedule plot written to {args.plot}", file=sys.stderr)
    if args.json:
        print(
            json.dumps(
                {
                    "times": schedule.times(),
                    "reverse_steps": schedule.reverse_steps,
                    "forward_steps": schedule.forward_steps,
                }
            )
        )
    else:
        print(schedule.summary())
    return 0
