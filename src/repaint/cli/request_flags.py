"""The command line's form of `InpaintRequest`: one flag per field, generated from the
request's field table (help, kind, choices, group), and the request built back from them.

Structured fields have their own flags: `schedule` the reference's schedule keys (`--t-T`,
...) or `--schedule-file`; `branch_schedule` `--branch-jump-length`,
`--branch-jump-n-sample` or `--branch-schedule-file`; `sampler_options` a repeatable
`--sampler-option NAME=VALUE`; `extend` one number or four.
"""

from __future__ import annotations

import argparse
from typing import Any

from repaint.cli.common import add_schedule_arguments, schedule_from_args
from repaint.errors import FieldError, RepaintError
from repaint.request import InpaintRequest, cli_flag, request_fields
from repaint.samplers import SAMPLERS
from repaint.schedule import TimeList

TYPES = {"int": int, "float": float, "text": str, "eta": str}


def add_request_arguments(parser: argparse.ArgumentParser) -> None:
    """A flag (or a few) for every request field, in table order."""
    groups: dict[str, argparse._ArgumentGroup] = {}
    for item in request_fields():
        meta = item.metadata
        where = parser
        if meta.get("group"):
            where = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        kind, flag, text = meta["kind"], cli_flag(item.name), meta["help"]
        if kind == "schedule":
            add_schedule_arguments(parser, over_preset=True)
        elif kind == "branch_schedule":
            _add_branch_schedule(where)
        elif kind == "choice":
            choices = list(meta["choices"])
            if item.name == "sampler":
                text += "; " + "; ".join(f"{n}: {spec.summary}" for n, spec in SAMPLERS.items())
            where.add_argument(
                flag, dest=item.name, default=item.default, choices=choices, help=text
            )
        elif kind == "switch":
            where.add_argument(flag, dest=item.name, action="store_true", help=text)
        elif kind == "options":
            text += "; " + "; ".join(
                f"{n}: " + ", ".join(f"{o}={opt.default}" for o, opt in spec.options.items())
                for n, spec in SAMPLERS.items()
                if spec.options
            )
            where.add_argument(
                flag, dest=item.name, action="append", metavar=meta["metavar"], help=text
            )
        elif kind == "extend":
            where.add_argument(
                flag, dest=item.name, type=_sides, metavar=meta["metavar"], help=text
            )
        else:
            where.add_argument(
                flag,
                dest=item.name,
                type=TYPES[kind],
                default=item.default,
                metavar=meta.get("metavar"),
                help=text,
            )
    parser.add_argument(  # the branching words for --num-samples
        "--branches", type=int, dest="num_samples", metavar="K", help="same as --num-samples"
    )


def request_from_args(args: argparse.Namespace) -> InpaintRequest:
    """The flags as one checked request."""
    values: dict[str, Any] = {}
    for item in request_fields():
        kind = item.metadata["kind"]
        if kind == "schedule":
            values[item.name] = schedule_from_args(args)
        elif kind == "branch_schedule":
            values[item.name] = _branch_schedule(args)
        elif kind == "options":
            values[item.name] = _options(getattr(args, item.name))
        else:
            values[item.name] = getattr(args, item.name)
    return InpaintRequest(**values)


def _add_branch_schedule(group: Any) -> None:
    group.add_argument(
        "--branch-jump-length", type=int, metavar="N", help="the branches' jump length"
    )
    group.add_argument(
        "--branch-jump-n-sample", type=int, metavar="N", help="the branches' jump count"
    )
    group.add_argument(
        "--branch-schedule-file",
        metavar="FILE.json",
        help="the branches' own time list (same t_T; they take it from where it first "
        "reaches --branch-at)",
    )


def _branch_schedule(args: argparse.Namespace) -> dict | None:
    if args.branch_schedule_file:
        if args.branch_jump_length is not None or args.branch_jump_n_sample is not None:
            raise RepaintError(
                "--branch-schedule-file: a time list replaces the branches' whole schedule; "
                "drop --branch-jump-length/--branch-jump-n-sample"
            )
        return TimeList.from_file(args.branch_schedule_file).params()
    given = {"jump_length": args.branch_jump_length, "jump_n_sample": args.branch_jump_n_sample}
    return {key: value for key, value in given.items() if value is not None} or None


def _options(given: list[str] | None) -> dict[str, str] | None:
    """`NAME=VALUE` words as a mapping (the sampler's spec converts and checks the values)."""
    if not given:
        return None
    options = {}
    for word in given:
        name, equals, value = word.partition("=")
        if not equals or not name.strip():
            raise FieldError("sampler_options", f"expected NAME=VALUE, got {word!r}")
        options[name.strip()] = value.strip()
    return options


def _sides(text: str) -> tuple[int, ...] | int:
    """`--extend 16` or `--extend 32,0,32,0`; the request checks the values."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected LEFT,TOP,RIGHT,BOTTOM in pixels (or one number), got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values
