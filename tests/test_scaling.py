"""`repaint inpaint` over a folder under torchrun (2 CPU processes, Gloo), resumed after a
kill, and going on past a broken image."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repaint.datasets import load_digits

SHORT = ["--t-T", "8", "--jump-length", "3", "--jump-n-sample", "2"]  # 14 evaluations
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}  # what torchrun gives each process


@pytest.fixture()
def folder(tmp_path) -> tuple[Path, Path]:
    """8 held-out digits and their masks (matched by stem)."""
    images, _ = load_digits("test", 32)
    image_dir, mask_dir = tmp_path / "images", tmp_path / "masks"
    image_dir.mkdir()
    mask_dir.mkdir()
    rng = np.random.default_rng(0)
    for index in range(8):
        Image.fromarray(images[index]).save(image_dir / f"digit{index}.png")
        keep = np.ones((32, 32), dtype=bool)
        top, left = rng.integers(2, 18, size=2)
        keep[top : top + 12, left : left + 12] = False
        Image.fromarray(keep).save(mask_dir / f"digit{index}.png")
    return image_dir, mask_dir


def command(folder, out: Path, *extra: str) -> list[str]:
    image_dir, mask_dir = folder
    return [
        "-m", "repaint", "inpaint", str(image_dir), "--mask", str(mask_dir), "--model", "digits",
        "--seed", "5", "--no-progress", "--out", str(out), *extra,
    ]  # fmt: skip


def outputs(out: Path) -> dict[str, bytes]:
    return {path.name: path.read_bytes() for path in sorted(out.glob("*.png"))}


def test_two_processes_give_the_single_process_outputs(folder, tmp_path):
    single, double = tmp_path / "single", tmp_path / "double"
    subprocess.run([sys.executable, *command(folder, single, *SHORT)], check=True, env=ENV)
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    done = subprocess.run(
        [*torchrun, "--nproc_per_node", "2", *command(folder, double, *SHORT)],
        check=True,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert "8 done, 0 skipped" in done.stdout and "on 2 process(es)" in done.stdout
    ours, theirs = outputs(single), outputs(double)
    assert len(ours) == 8 and ours.keys() == theirs.keys()
    assert all(ours[name] == theirs[name] for name in ours)  # bit for bit
    seeds = {json.loads(p.read_text())["options"]["seed"] for p in double.glob("*.json")}
    assert seeds == {5}


def test_a_killed_run_resumes_without_redoing_finished_images(folder, tmp_path):
    out = tmp_path / "out"
    slow = ["--t-T", "50", "--jump-length", "10", "--jump-n-sample", "2"]  # 90 evaluations
    slow += ["--batch-size", "1"]  # one image at a time (else all eight share one batch)
    process = subprocess.Popen([sys.executable, *command(folder, out, *slow)], env=ENV)
    deadline = time.monotonic() + 120
    while len(list(out.glob("*.json"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    finished = {
        p.name: p.stat().st_mtime_ns for p in out.glob("*.png") if (out / f"{p.stem}.json").exists()
    }
    assert 2 <= len(finished) < 8
    rerun = subprocess.run(
        [sys.executable, *command(folder, out, *slow)], env=ENV, capture_output=True, text=True
    )
    assert rerun.returncode == 0, rerun.stderr
    assert f"{len(finished)} skipped" in rerun.stdout
    assert len(outputs(out)) == 8
    for name, mtime in finished.items():
        assert (out / name).stat().st_mtime_ns == mtime  # not written again


def test_a_broken_image_is_recorded_and_the_rest_go_on(folder, tmp_path, capsys):
    from repaint.cli import main

    image_dir = folder[0]
    (image_dir / "digit3.png").write_bytes(b"\x89PNG\r\n\x1a\nbroken")
    out = tmp_path / "out"
    code = main(command(folder, out, *SHORT)[2:])
    assert code == 2
    assert "1 of 8 image(s) failed" in capsys.readouterr().err
    assert sorted(outputs(out)) == [f"digit{i}.png" for i in range(8) if i != 3]
    (failure,) = [json.loads(line) for line in (out / "failures.jsonl").read_text().splitlines()]
    assert failure["name"] == "digit3" and "digit3.png" in failure["error"]


def test_reference_config_under_torchrun_matches_per_image_seeds(workdir, tmp_path):
    """`repaint run --conf` with 2 processes gives, image for image, what one process gives
    with --per-image-seeds; a rerun skips everything."""
    import shutil

    import yaml

    conf = yaml.safe_load((workdir / "conf.yml").read_text())
    conf["data"]["eval"]["uncond32"].update(max_len=None, batch_size=2)
    (workdir / "conf.yml").write_text(yaml.safe_dump(conf))
    for folder in ("gts", "masks"):
        (original,) = sorted((workdir / folder).iterdir())
        for index in range(5):
            shutil.copy(original, workdir / folder / f"copy{index}{original.suffix}")
    run = ["-m", "repaint", "run", "--conf", "conf.yml", "--seed", "3", "--no-progress"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    subprocess.run([sys.executable, *run, "--per-image-seeds"], cwd=workdir, check=True, env=ENV)
    single = {p.name: p.read_bytes() for p in (workdir / "log" / "inpainted").iterdir()}
    shutil.rmtree(workdir / "log")
    subprocess.run([*torchrun, "--nproc_per_node", "2", *run], cwd=workdir, check=True, env=ENV)
    double = {p.name: p.read_bytes() for p in (workdir / "log" / "inpainted").iterdir()}
    assert len(single) == 6 and single == double
    again = subprocess.run(
        [*torchrun, "--nproc_per_node", "2", *run],
        cwd=workdir,
        env=ENV,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0 and "6 skipped" in again.stdout
