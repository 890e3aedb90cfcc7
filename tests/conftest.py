"""Shared fixtures: where the reference's golden vectors are, and tiny models."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(os.environ.get("REPAINT_GOLDEN", ROOT.parent / "shared" / "golden"))


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """`../shared/golden` (or $REPAINT_GOLDEN); required under CI, skipped elsewhere."""
    if not (GOLDEN / "schedules.json").is_file():
        message = f"golden vectors not found at {GOLDEN} (set REPAINT_GOLDEN to their folder)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return GOLDEN
