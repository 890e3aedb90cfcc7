"""`repaint serve`: the browser app."""

from __future__ import annotations

import argparse
import sys
import warnings

from repaint.cli.common import add_device_argument
from repaint.errors import RepaintError
from repaint.version import install_hint


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="a web app: paint a mask, run, watch, download",
        description=f"Serve the browser app (needs: {install_hint('web')}). One run at a "
        "time per device; further runs queue.",
    )
    parser.add_argument("--model", default="digits", help="the model offered first")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default: 127.0.0.1)")
    parser.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    add_device_argument(parser)
    parser.add_argument(
        "--max-upload-mb", type=float, default=10.0, help="largest upload accepted (default: 10)"
    )
    parser.add_argument(
        "--max-evaluations",
        type=int,
        default=100_000,
        help="most model evaluations one request may ask for (default: 100000)",
    )
    parser.add_argument(
        "--keep-minutes", type=float, default=60.0, help="keep results this long (default: 60)"
    )
    parser.add_argument(
        "--max-results-mb",
        type=float,
        default=512.0,
        help="memory for kept results; the oldest go first (default: 512)",
    )
    parser.add_argument(
        "--confirm-seconds",
        type=float,
        default=180.0,
        help="the page asks before a run estimated to take longer (default: 180)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from repaint.web.app import create_app
    except ImportError:
        raise RepaintError(f"serve needs the optional extra: {install_hint('web')}") from None
    if args.host not in ("127.0.0.1", "localhost", "::1"):
        warnings.warn(
            f"--host {args.host}: the app has no authentication; anyone who can reach this "
            "address can use it",
            stacklevel=1,
        )
    for flag in (
        "max_upload_mb",
        "max_evaluations",
        "keep_minutes",
        "max_results_mb",
        "confirm_seconds",
    ):
        if getattr(args, flag) <= 0:
            raise RepaintError(f"--{flag.replace('_', '-')}: must be more than 0")
    app = create_app(
        model=args.model,
        device=args.device,
        max_upload_mb=args.max_upload_mb,
        max_evaluations=args.max_evaluations,
        keep_s=args.keep_minutes * 60,
        max_results_mb=args.max_results_mb,
        confirm_s=args.confirm_seconds,
    )
    print(f"repaint: serving on http://{args.host}:{args.port} (Ctrl-C stops)", file=sys.stderr)
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning")
    return 0
