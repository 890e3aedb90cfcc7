"""Bad input to `repaint run` and `repaint schedule`: one line, exit code 2, no outputs."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from repaint.cli import main
from tests.conftest import edit_conf


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "repaint", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_user_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("repaint: warning")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("repaint: error: ")
    assert "Traceback" not in result.stderr
    for word in words:
        assert word in lines[0], lines[0]


def written_files(work: Path) -> list[Path]:
    return [p for p in (work / "log").rglob("*") if p.is_file()] if (work / "log").exists() else []


def test_short_run_succeeds_and_writes_four_folders(workdir):
    result = run_cli("run", "--conf", "conf.yml", "--seed", "1", cwd=workdir)
    assert result.returncode == 0, result.stderr
    names = sorted(p.relative_to(workdir / "log").as_posix() for p in written_files(workdir))
    assert names == ["gt/img.png", "gt_keep_mask/img.png", "gt_masked/img.png", "inpainted/img.png"]


def test_missing_checkpoint(workdir):
    (workdir / "model.pt").unlink()
    assert_user_error(run_cli("run", "--conf", "conf.yml", cwd=workdir), "model.pt")
    assert written_files(workdir) == []


def test_checkpoint_of_another_architecture(workdir):
    edit_conf(workdir, num_channels=64)
    result = run_cli("run", "--conf", "conf.yml", cwd=workdir)
    assert_user_error(result, "model.pt", "num_channels")
    assert written_files(workdir) == []


def test_not_a_checkpoint(workdir):
    (workdir / "model.pt").write_bytes(b"this is not a checkpoint")
    assert_user_error(run_cli("run", "--conf", "conf.yml", cwd=workdir), "model.pt")


def test_pickled_object_is_refused(workdir, tmp_path):
    torch.save({"weights": object()}, workdir / "model.pt")  # needs unpickling arbitrary code
    assert_user_error(run_cli("run", "--conf", "conf.yml", cwd=workdir), "model.pt")


def test_missing_required_key(workdir):
    edit_conf(workdir, drop=("model_path",))
    assert_user_error(run_cli("run", "--conf", "conf.yml", cwd=workdir), "conf.yml", "model_path")


def test_missing_eval_key(workdir):
    conf = yaml.safe_load((workdir / "conf.yml").read_text())
    del conf["data"]["eval"]["uncond32"]["mask_path"]
    (workdir / "conf.yml").write_text(yaml.safe_dump(conf))
    assert_user_error(run_cli("run", "--conf", "conf.yml", cwd=workdir), "mask_path")


def test_missing_config_file(tmp_path):
    assert_user_error(run_cli("run", "--conf", "nope.yml", cwd=tmp_path), "nope.yml")


def test_invalid_yaml(tmp_path):
    (tmp_path / "bad.yml").write_text("a: [unclosed\n")
    assert_user_error(run_cli("run", "--conf", "bad.yml", cwd=tmp_path), "bad.yml", "YAML")


@pytest.mark.parametrize(
    ("key", "value"),
    [("use_ddim", True), ("inpa_inj_sched_prev_cumnoise", True), ("respace_interpolate", True)],
)
def test_keys_the_reference_crashes_on(workdir, key, value):
    edit_conf(workdir, **{key: value})
    assert_user_error(run_cli("run", "--conf", "conf.yml", cwd=workdir), key)
    assert written_files(workdir) == []


def test_unknown_key_warns_and_runs(workdir):
    edit_conf(workdir, favourite_colour="blue")
    result = run_cli("run", "--conf", "conf.yml", "--seed", "1", cwd=workdir)
    assert result.returncode == 0, result.stderr
    assert "repaint: warning:" in result.stderr and "favourite_colour" in result.stderr


def test_mask_count_mismatch(workdir):
    shutil.copy(workdir / "gts" / "img.png", workdir / "gts" / "img2.png")
    result = run_cli("run", "--conf", "conf.yml", cwd=workdir)
    assert_user_error(result, "gts", "masks", "2 images", "1 masks")
    assert written_files(workdir) == []


def test_unreadable_image(workdir):
    (workdir / "gts" / "img.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    assert_user_error(run_cli("run", "--conf", "conf.yml", cwd=workdir), "img.png")
    assert written_files(workdir) == []


def test_truncated_image(workdir):
    data = (workdir / "masks" / "img.png").read_bytes()
    (workdir / "masks" / "img.png").write_bytes(data[: len(data) // 2])
    assert_user_error(run_cli("run", "--conf", "conf.yml", cwd=workdir), "img.png")
    assert written_files(workdir) == []


def test_schedule_json_matches_the_library(capsys):
    argv = ["schedule", "--json", "--t-T", "50", "--jump-length", "5", "--jump-n-sample", "3"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["reverse_steps"] == 140 and printed["forward_steps"] == 90
    assert printed["times"][0] == 49 and printed["times"][-1] == -1


def test_schedule_summary_and_bad_parameters(capsys):
    assert main(["schedule"]) == 0
    assert "2410 model evaluations" in capsys.readouterr().out
    assert main(["schedule", "--jump-length", "0"]) == 2
    assert "jump_length" in capsys.readouterr().err
