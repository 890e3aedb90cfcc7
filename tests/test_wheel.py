"""The built wheel, installed into a fresh virtual environment with only its declared
dependencies, runs the command line, a small inpainting and the demo on the embedded model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from importlib import metadata
from pathlib import Path

import pytest

from repaint.version import DISTRIBUTION

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str | Path, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return done.stdout + done.stderr


def test_the_distribution_name_is_ours_everywhere():
    """`repaint` on the package index is another project (0.1.0, 2022); ours is
    repaint-diffusion, with complete metadata, and no message names the other."""
    info = metadata.metadata(DISTRIBUTION)
    assert info["Name"] == DISTRIBUTION == "repaint-diffusion"
    assert info.get_all("Project-URL") and info.get_all("Classifier") and info["Author"]
    scripts = metadata.entry_points(group="console_scripts", name="repaint")
    assert [script.value for script in scripts] == ["repaint.cli:main"]
    for path in [ROOT / "README.md", *sorted((ROOT / "src").rglob("*.py"))]:
        text = path.read_text()
        assert "install 'repaint[" not in text and "install repaint[" not in text, path


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX venv layout")
def test_the_wheel_installs_alone_and_inpaints(tmp_path):
    dist = tmp_path / "dist"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", dist, ROOT)
    wheels = list(dist.glob("repaint_diffusion-*.whl"))
    assert len(wheels) == 1, wheels
    env = tmp_path / "venv"
    venv.create(env, with_pip=True, system_site_packages=False)
    python, repaint = env / "bin" / "python", env / "bin" / "repaint"
    constraints = ROOT / "constraints.txt"
    run(python, "-m", "pip", "install", "--quiet", "-c", constraints, wheels[0])
    run(python, "-m", "pip", "check")
    assert "inpaint" in run(repaint, "--help")
    code = "import repaint, json; print(json.dumps([str(p) for p in repaint.example()]))"
    image, mask = json.loads(run(python, "-c", code).strip().splitlines()[-1])
    assert str(env) in image  # the example ships inside the installed package
    out = tmp_path / "out"
    run(
        repaint,
        "inpaint",
        image,
        "--mask",
        mask,
        "--seed",
        "1",
        "--t-T",
        "10",
        "--jump-n-sample",
        "1",
        "--no-progress",
        "--out",
        out,
        cwd=tmp_path,
    )
    sidecar = json.loads((out / "digit.json").read_text())
    assert sidecar["model"]["model"] == "digits" and (out / "digit.png").stat().st_size > 0
    # the demo and the examples ship inside the wheel: nothing from the source tree
    shown = run(repaint, "demo", "--preset", "draft", "--no-progress", "--out", "d", cwd=tmp_path)
    assert "540 model evaluations" in shown and (tmp_path / "d" / "comparison.png").is_file()
    run(repaint, "example", "--out", "ex", cwd=tmp_path)
    assert len(list((tmp_path / "ex" / "digits").glob("*.png"))) == 6
    assert os.path.getsize(wheels[0]) < 20 * 2**20
