"""The study benchmark (benchmarks/study.py and benchmarks.lib.study) on the embedded model
with its short settings."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("sklearn")
pytest.importorskip("skimage")
pytest.importorskip("matplotlib")

from benchmarks import study
from benchmarks.lib.study.diversity import BRANCHES, diversity
from benchmarks.lib.study.schedules import quality_methods
from repaint.loading import load_inpainter


def test_early_and_late_resampling_are_compared_at_equal_cost_on_their_sides():
    early, late, everywhere = quality_methods(1.0)["early-late"]
    assert early.evaluations == late.evaluations < everywhere.evaluations
    assert min(a for a, b in early.schedule.pairs() if b > a) >= 25
    assert max(a for a, b in late.schedule.pairs() if b > a) <= 24


def test_later_branches_cost_less_and_differ_less():
    """K full runs against K branches of one shared run: the shared part is paid once, and
    branching near the end leaves the samples far more alike than independent runs."""
    rows = diversity(load_inpainter("digits", device="cpu"), 2, 0, 0.2)
    full, *branches = rows
    assert full["shared"] == 0 and full["evaluations"] == BRANCHES * full["per_branch"]
    latest = next(row for row in branches if row["branch_at"] == 1)
    assert latest["evaluations"] == latest["shared"] + BRANCHES * latest["per_branch"]
    assert latest["evaluations"] < full["evaluations"]
    assert latest["pairwise_rms"] < 0.6 * full["pairwise_rms"]
    assert all(0 <= row["accuracy"] <= 1 for row in rows)


def test_the_texture_experiment_writes_its_tables_and_figure(tmp_path):
    assert study.main(["--quick", "--experiments", "texture", "--out", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "study.json").read_text())
    cases = report["results"]["texture"]["cases"]
    assert [case["windows"] for case in cases] == [9, 3]
    assert all(case["original_exact"] for case in cases)
    assert (tmp_path / "study_texture.png").read_bytes().startswith(b"\x89PNG")
    assert "## Texture extension" in (tmp_path / "study_tables.md").read_text()
    (tmp_path / "study_tables.md").unlink()
    redrawn = ["--from-json", str(tmp_path / "study.json"), "--out", str(tmp_path)]
    assert study.main(redrawn) == 0 and (tmp_path / "study_tables.md").exists()
    assert study.main(["--experiments", "nonsense", "--out", str(tmp_path)]) == 2
    (tmp_path / "other.json").write_text("[1, 2]")
    assert study.main(["--from-json", str(tmp_path / "other.json"), "--out", str(tmp_path)]) == 2
