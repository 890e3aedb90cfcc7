"""Every shell command of the README, in order, in one working folder: what a new user types.

Commands on files that ship (or that an earlier command wrote, starting with `repaint
example`) run as written with the installed `repaint`. Those that cannot run here are
still checked: the `repaint` parser must accept their flags, and each has a stated reason
(a download, a GPU, a server that runs until stopped). One substitution keeps the suite
short, and is listed: the training example runs 2 steps instead of 20,000. A command of a
kind this file does not know fails the test, so a new README command is never unchecked.
(The README's Python snippets run in tests/test_api.py.)
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from repaint.cli import build_parser
from repaint.version import DISTRIBUTION

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
REPAINT = Path(sys.executable).parent / "repaint"

SHORTER = {("train", "--steps", "20000"): ("train", "--steps", "2")}
"""Arguments replaced to keep the suite short: (command, flag, README value) -> value run."""

NETWORK_MODELS = ("celeba256", "places256", "imagenet256")

PRINTS = {
    "--branch-at 20": "(69 shared + 3 branch(es) x 51) = 222 model evaluations",
    "--extend 32,16,32,16": "9 window(s)",
}
"""What the README says a command prints (a command containing the key prints the value)."""


def readme_commands() -> list[tuple[int, list[str]]]:
    """(README line, argv) for every command of every ```sh block, continuation lines
    joined, comments dropped, `a && b` split."""
    commands, lines = [], README.read_text().splitlines()
    inside, pending, start = False, "", 0
    for number, line in enumerate(lines, start=1):
        if line.startswith("```"):
            inside = line == "```sh"
            continue
        if not inside:
            continue
        if not pending:
            start = number
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        words, pending = shlex.split(pending + line, comments=True), ""
        while words:
            cut = words.index("&&") if "&&" in words else len(words)
            commands.append((start, words[:cut]))
            words = words[cut + 1 :]
    return commands


def why_not_run(argv: list[str]) -> str | None:
    """Why a `repaint ...` command cannot run on this machine, or None when it can."""
    command = argv[0]
    model = argv[argv.index("--model") + 1] if "--model" in argv else ""
    model = argv[argv.index("--init") + 1] if "--init" in argv else model
    if command == "download" or model in NETWORK_MODELS or model.startswith("hf:"):
        return "downloads a published model (no network in the test)"
    if "--device" in argv and argv[argv.index("--device") + 1] == "cuda":
        return "needs a GPU"
    if command == "serve":
        return "a server that runs until stopped (tests/test_web.py and e2e/ drive it)"
    if command == "run":
        return "a reference config with its downloaded checkpoint (tests/test_golden.py runs one)"
    return None


def shortened(argv: list[str]) -> list[str]:
    argv = list(argv)
    for (command, flag, value), (_, _, short) in SHORTER.items():
        if argv[0] == command and flag in argv and argv[argv.index(flag) + 1] == value:
            argv[argv.index(flag) + 1] = short
    return argv


def check_parses(argv: list[str]) -> None:
    try:
        build_parser().parse_args(argv)
    except SystemExit as error:
        if error.code == 0 and "--help" in argv:
            return
        pytest.fail(f"`repaint {shlex.join(argv)}` does not parse (exit {error.code})")


@pytest.fixture(scope="module")
def session(tmp_path_factory) -> Path:
    """The user's working folder, shared by the commands in README order."""
    return tmp_path_factory.mktemp("readme")


COMMANDS = readme_commands()


def test_the_readme_has_commands_of_every_section():
    programs = {argv[0] for _, argv in COMMANDS}
    assert {"make", "repaint", "pip", "torchrun"} <= programs
    assert sum(argv[0] == "repaint" for _, argv in COMMANDS) >= 20


@pytest.mark.parametrize(
    "line, argv", COMMANDS, ids=[f"L{line}-{' '.join(a[:3])}" for line, a in COMMANDS]
)
def test_readme_command(line, argv, session, capfd):
    program, args = argv[0], argv[1:]
    if program == "make":
        (target,) = args
        dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
        assert dry.returncode == 0, f"README line {line}: make {target}: {dry.stderr}"
        return
    if program == "pip":
        extras = set(metadata.metadata(DISTRIBUTION).get_all("Provides-Extra") or [])
        if args[:2] == ["install", "-e"]:
            wanted = re.fullmatch(r"\.\[(\w+)\]", args[2])
            assert wanted and wanted.group(1) in extras, f"README line {line}: {args}"
        else:
            assert args[:2] == ["install", "torch"], f"README line {line}: {args}"  # GPU torch
        return
    if program == ".":
        assert args == [".venv/bin/activate"]  # `make install` creates it (the Makefile)
        return
    if program == "torchrun":
        assert args[args.index("-m") + 1] == "repaint", argv
        check_parses(args[args.index("-m") + 2 :])  # 8 GPUs
        return
    assert program == "repaint", f"README line {line}: a command this test does not know"
    stdout = None
    if ">" in args:
        args, stdout = args[: args.index(">")], args[args.index(">") + 1]
    check_parses(args)
    if why_not_run(args):
        return  # its flags parse; the reason it cannot run here is in why_not_run
    done = subprocess.run(
        [str(REPAINT), *shortened(args)],
        cwd=session,
        capture_output=True,
        text=True,
        timeout=900,
        env={**os.environ, "REPAINT_HOME": str(session / ".cache")},
    )
    assert done.returncode == 0, f"README line {line}: {done.stdout[-1500:]}{done.stderr[-1500:]}"
    if stdout:
        (session / stdout).write_text(done.stdout)
    for needle, printed in PRINTS.items():
        if needle in shlex.join(args):
            assert printed in done.stdout + done.stderr, (
                f"README line {line} says it prints {printed!r}"
            )
