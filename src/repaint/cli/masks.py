"""`repaint masks`: the paper's six mask kinds, as files."""

from __future__ import annotations

import argparse
from pathlib import Path

from repaint.choices import MASK_KINDS
from repaint.cli.common import required
from repaint.errors import RepaintError


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "masks",
        help="generate the paper's mask kinds",
        description="Write keep-masks (255 = keep, 0 = fill) of the six kinds of the RePaint "
        "paper: thin (Narrow) and thick (Wide) LaMa masks, ev2li (alternating lines), nn2 "
        "(super-resolve 2x), ex64 (expand: keep the centre quarter), genhalf (keep the left "
        "half).",
    )
    needed = required(parser)
    needed.add_argument("--type", required=True, choices=MASK_KINDS, help="mask kind (required)")
    needed.add_argument(
        "--out", required=True, type=Path, metavar="DIR", help="output folder (required)"
    )
    parser.add_argument("--size", type=int, default=256, help="side in pixels (default: 256)")
    parser.add_argument("--count", type=int, default=1, help="how many (default: 1)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: 0)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from repaint.masks import write_masks

    if args.count < 1:
        raise RepaintError(f"--count must be at least 1, got {args.count}")
    paths = write_masks(args.type, args.size, args.count, args.seed, args.out)
    print(f"wrote {len(paths)} {args.type} mask(s) of {args.size}x{args.size} to {args.out}")
    return 0
