"""Sidecars written by the previous release (before the sampler registry and the shared
execution) still make their outputs again, byte for byte: a plain run, DDNM, two branches
from a shared start, and an extended canvas (`tests/data/previous_release`, written with
release 0.1.0 from the files of `repaint example`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repaint.cli import main

RECORDED = Path(__file__).parent / "data" / "previous_release"


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("examples")
    assert main(["example", "--out", str(folder)]) == 0
    return folder


@pytest.mark.parametrize("sidecar", sorted(p.name for p in RECORDED.glob("*.json")))
def test_an_old_sidecar_makes_the_same_output(sidecar, examples, tmp_path):
    data = json.loads((RECORDED / sidecar).read_text())
    assert "sampler_options" not in data["options"]  # written before the field existed
    data["input"] = str(examples / "digit.png")  # where the same input lies now
    if data["mask"] is not None:
        data["mask"] = str(examples / "digit_mask.png")
    moved = tmp_path / sidecar
    moved.write_text(json.dumps(data))
    out = tmp_path / "again"
    assert main(["inpaint", "--from-sidecar", str(moved), "--no-progress", "--out", str(out)]) == 0
    again = (out / data["output"]).read_bytes()
    assert again == (RECORDED / sidecar.replace(".json", ".png")).read_bytes()
