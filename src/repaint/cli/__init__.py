"""The `repaint` command line: one module per command, each with `add_parser` (flags only,
no torch, so `repaint --help` and argument errors answer at once) and `run` (imports what
the command needs). Problems the user can fix exit with code 2 and one line."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from repaint.cli import demo, inpaint, masks, models, run, schedule, serve, train
from repaint.errors import FieldError, RepaintError
from repaint.request import cli_flag
from repaint.version import __version__

EXIT_USER_ERROR = 2
COMMANDS = (inpaint, run, schedule, masks, models, serve, train, demo)


class Parser(argparse.ArgumentParser):
    """argparse with the failure contract: a bad argument is one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USER_ERROR, f"repaint: error: {message} (see: {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="repaint",
        description="RePaint: inpaint images with a pretrained diffusion model.",
    )
    parser.add_argument("--version", action="version", version=f"repaint {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.add_parser(commands)
    return parser


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    print(f"repaint: warning: {message}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    with warnings.catch_warnings():  # restored on return: callers keep their own hook
        warnings.showwarning = _one_line_warning
        try:
            return args.handler(args)
        except FieldError as error:  # named the command line's way: by its flag
            print(f"repaint: error: {error.worded(cli_flag)}", file=sys.stderr)
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
