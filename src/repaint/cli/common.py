"""Flag groups more than one command shares."""

from __future__ import annotations

import argparse
from dataclasses import fields

from repaint.choices import DEVICES
from repaint.errors import RepaintError
from repaint.schedule import NEVER, JumpSchedule, TimeList

SCHEDULE_HELP = {
    "t_T": "number of denoising levels (the model is respaced to this many steps)",
    "n_sample": "repeat every single reverse step this many times",
    "jump_length": "levels to jump back up after each segment",
    "jump_n_sample": "times each segment is denoised in all (1 = no resampling)",
    "jump2_length": "nested jump length (level 2)",
    "jump2_n_sample": "nested jump count (level 2)",
    "jump3_length": "nested jump length (level 3)",
    "jump3_n_sample": "nested jump count (level 3)",
    "start_resampling": "resample only at levels t <= this: late-only (default: everywhere)",
    "stop_resampling": "resample only at levels t >= this: early-only (default: 0, everywhere)",
}


def add_schedule_arguments(parser: argparse.ArgumentParser, *, over_preset: bool = False) -> None:
    """Flags named after the reference's `schedule_jump_params` keys. With `over_preset`,
    unset flags stay None so that the preset fills them."""
    title = "jump schedule (reference schedule_jump_params)"
    if over_preset:
        title += "; each flag given overrides the preset's value"
    group = parser.add_argument_group(title)
    for field in fields(JumpSchedule):
        shown = "everywhere" if field.default == NEVER else field.default
        help_text = SCHEDULE_HELP[field.name]
        group.add_argument(
            "--" + field.name.replace("_", "-"),
            dest=field.name,
            type=int,
            default=None,
            metavar="N",
            help=help_text if over_preset else f"{help_text} (default: {shown})",
        )
    group.add_argument(
        "--schedule-file",
        metavar="FILE.json",
        help="the whole time list instead: a JSON list of levels from t_T-1 down to -1 in steps "
        'of one (or the {"times": [...]} that `repaint schedule --json` prints)',
    )


def schedule_overrides(args: argparse.Namespace) -> dict[str, int]:
    """The schedule flags that were given."""
    return {
        field.name: getattr(args, field.name)
        for field in fields(JumpSchedule)
        if getattr(args, field.name) is not None
    }


def schedule_from_args(args: argparse.Namespace) -> dict | None:
    """The schedule flags given, or the time list of `--schedule-file` (not both)."""
    overrides = schedule_overrides(args)
    if not args.schedule_file:
        return overrides or None
    listed = TimeList.from_file(args.schedule_file)  # the file's own problems first
    if overrides:
        given = ", ".join("--" + name.replace("_", "-") for name in overrides)
        raise RepaintError(
            f"--schedule-file: a time list replaces the whole schedule; drop {given}"
        )
    return listed.params()


def add_speed_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the network (and CUDA graphs on GPU); the first step compiles",
    )
    parser.add_argument(
        "--channels-last", action="store_true", help="NHWC memory layout for the network"
    )


def add_device_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", default="auto", help=f"{', '.join(DEVICES)} or cuda:N (default: auto)"
    )


def required(parser: argparse.ArgumentParser) -> argparse._ArgumentGroup:
    """The group `--help` lists first, so required flags are marked as such."""
    return parser.add_argument_group("required")
