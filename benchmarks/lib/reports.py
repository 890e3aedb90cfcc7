"""What every benchmark report carries and how it reaches the disk: the command and date,
the machine, and JSON, Markdown and PNG files written atomically (an interrupted run leaves
the previous report whole)."""

from __future__ import annotations

import datetime
import importlib
import json
import os
import platform
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from repaint.io import atomic_output

PACKAGES = ("numpy", "sklearn", "skimage", "cv2", "diffusers", "matplotlib")


def command_line(script: str, argv: Sequence[str] | None) -> str:
    """The command that reproduces this run, as the reports quote it."""
    return shlex.join(["python", script, *(sys.argv[1:] if argv is None else argv)])


def utc_now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def machine_info() -> dict[str, Any]:
    """The machine and package versions, so that a report's timings can be placed."""
    versions = {}
    for module in PACKAGES:
        try:
            versions[module] = importlib.import_module(module).__version__
        except (ImportError, AttributeError):
            versions[module] = None
    return {
        "cpu_count": os.cpu_count(),
        "processor": platform.processor() or platform.machine(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "packages": versions,
    }


def write_json(path: Path, report: Any) -> Path:
    with atomic_output(path, "w") as handle:
        json.dump(report, handle, indent=2)
        handle.write("\n")
    return path


def write_text(path: Path, text: str) -> Path:
    with atomic_output(path, "w") as handle:
        handle.write(text)
    return path


def save_figure(figure: Any, path: Path, dpi: int) -> Path:
    """A matplotlib Figure as a PNG (the Figure API: no global backend to set)."""
    with atomic_output(path) as handle:
        figure.savefig(handle, format="png", dpi=dpi)
    return path
