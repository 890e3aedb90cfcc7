"""`repaint models` and `repaint download`: the known checkpoints and fetching them."""

from __future__ import annotations

import argparse


def add_parser(commands: argparse._SubParsersAction) -> None:
    listing = commands.add_parser("models", help="list the known models")
    listing.set_defaults(handler=run_models)
    download = commands.add_parser(
        "download",
        help="download a known model into the cache ($REPAINT_HOME)",
        description="Download a registered checkpoint (and its classifier) with resume and a "
        "SHA-256 check. The cache is $REPAINT_HOME, default ~/.cache/repaint.",
    )
    download.add_argument("name", help="a name from `repaint models`")
    download.add_argument("--force", action="store_true", help="download again from scratch")
    download.set_defaults(handler=run_download)


def run_models(args: argparse.Namespace) -> int:
    from repaint.checkpoints import format_model_table, list_models, repaint_home

    print(format_model_table(list_models()))
    print(f"\ncache: {repaint_home()} (set REPAINT_HOME to move it)")
    return 0


def run_download(args: argparse.Namespace) -> int:
    from repaint.checkpoints import download

    path = download(args.name, force=args.force)
    print(f"{args.name}: {path}")
    return 0
