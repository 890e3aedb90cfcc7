"""`--sampler ddnm|dps|copaint|copaint-tt` through every door: the command line (with its
sidecar rerun), the Python API and the web app; and the one-line refusals where a sampler
does not apply."""

from __future__ import annotations

import io
import itertools
import json
import time

import numpy as np
import pytest
from PIL import Image

import repaint
from repaint.cli import main
from repaint.costs import request_costs, sampler_levels
from repaint.errors import RepaintError
from repaint.request import InpaintRequest
from repaint.samplers import SAMPLERS, get_spec
from repaint.schedule import JumpSchedule

OTHERS = [name for name in SAMPLERS if name != "repaint"]
SHORT = {"t_T": 6, "jump_length": 2, "jump_n_sample": 2}
SHORT_FLAGS = ["--t-T", "6", "--jump-length", "2", "--jump-n-sample", "2", "--no-progress"]


@pytest.fixture(scope="module")
def digits():
    return repaint.load_inpainter("digits", device="cpu")


def example_arrays() -> tuple[np.ndarray, np.ndarray]:
    image, mask = repaint.example()
    rgb = np.asarray(Image.open(image).convert("RGB"))
    keep = np.asarray(Image.open(mask).convert("L")) > 127
    return rgb, keep


@pytest.mark.parametrize("name", OTHERS)
def test_each_sampler_keeps_the_known_pixels_fills_the_hole_and_repeats_per_seed(digits, name):
    rgb, keep = example_arrays()
    first = digits(rgb, keep, schedule=SHORT, sampler=name, seed=3, num_samples=2)
    again = digits(rgb, keep, schedule=SHORT, sampler=name, seed=3, num_samples=2)
    other_seed = digits(rgb, keep, schedule=SHORT, sampler=name, seed=4)
    images = [np.asarray(image) for image in first.images]
    for image in images:
        assert image.shape == rgb.shape and np.array_equal(image[keep], rgb[keep])
    assert all(np.array_equal(a, np.asarray(b)) for a, b in zip(images, again.images, strict=True))
    assert not np.array_equal(images[0], images[1])  # each sample its own noise
    assert not np.array_equal(images[0], np.asarray(other_seed.images[0]))
    assert first.request.sampler == name
    assert first.model_evaluations == 2 * request_costs(first.request).each


def planned(name, levels):
    spec = get_spec(name)
    return spec.cost_function()(levels, None, **spec.defaults())


def test_costs_count_backward_passes_and_copaint_goes_straight_down():
    schedule = JumpSchedule(t_T=6, jump_length=2, jump_n_sample=2)
    levels = {name: sampler_levels(get_spec(name), schedule) for name in SAMPLERS}
    assert levels["copaint"] == [5, 4, 3, 2, 1, 0]
    assert levels["copaint-tt"] == levels["ddnm"] == levels["repaint"]
    downs = sum(1 for a, b in itertools.pairwise(levels["ddnm"]) if b < a)
    assert planned("repaint", levels["repaint"]) == (downs, 0)  # to -1 included
    assert planned("ddnm", levels["ddnm"]) == (downs - 1, 0)  # stops at level 0
    assert planned("dps", levels["dps"]) == (downs - 1, downs - 1)
    assert planned("copaint", levels["copaint"]) == (5 * 5, 5 * 2)


@pytest.mark.parametrize("name", OTHERS)
def test_the_command_line_runs_a_sampler_and_its_sidecar_makes_it_again(name, tmp_path, capsys):
    image, mask = repaint.example()
    common = ["inpaint", str(image), "--mask", str(mask), "--seed", "2", *SHORT_FLAGS]
    assert main([*common, "--sampler", name, "--out", str(tmp_path / "a")]) == 0
    sidecar = json.loads((tmp_path / "a" / "digit.json").read_text())
    assert sidecar["sampler"] == name and sidecar["options"]["sampler"] == name
    assert "model evaluations" in capsys.readouterr().out
    again = ["inpaint", "--from-sidecar", str(tmp_path / "a" / "digit.json")]
    assert main([*again, "--no-progress", "--out", str(tmp_path / "b")]) == 0
    first = (tmp_path / "a" / "digit.png").read_bytes()
    assert first == (tmp_path / "b" / "digit.png").read_bytes()
    assert main([*common, "--out", str(tmp_path / "c")]) == 0  # RePaint differs
    assert (tmp_path / "c" / "digit.png").read_bytes() != first


@pytest.mark.parametrize(
    "options, words",
    [
        ({"sampler": "lanczos"}, "sampler: unknown value 'lanczos'"),
        ({"sampler": "dps", "eta": 0.0}, "eta: chooses RePaint's step"),
        ({"sampler": "copaint", "branch_at": 3, "num_samples": 2}, "branch_at: branches"),
    ],
)
def test_bad_combinations_are_one_line(options, words):
    with pytest.raises(RepaintError, match=words.replace("(", r"\(")):
        InpaintRequest(schedule=SHORT, **options)


def test_the_command_line_refuses_in_one_line(tmp_path, capsys):
    image, mask = repaint.example()
    argv = ["inpaint", str(image), "--mask", str(mask), *SHORT_FLAGS, "--out", str(tmp_path)]
    assert main([*argv, "--sampler", "dps", "--branch-at", "2", "--branches", "2"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--branch-at" in err[0] and "dps cannot branch" in err[0]
    assert not any(tmp_path.iterdir())


def test_classifier_guidance_is_refused_for_other_samplers(digits, monkeypatch):
    rgb, keep = example_arrays()
    guided = lambda scale=None: None if scale == 0 else (lambda x, t, y: x)  # noqa: E731
    monkeypatch.setattr(digits.prior, "guidance", guided)
    with pytest.raises(RepaintError, match="set classifier_scale to 0"):
        digits(rgb, keep, schedule=SHORT, sampler="ddnm", seed=0)
    result = digits(rgb, keep, schedule=SHORT, sampler="ddnm", classifier_scale=0, seed=0)
    assert np.array_equal(np.asarray(result.images[0])[keep], rgb[keep])


def test_the_web_app_offers_and_runs_the_samplers():
    pytest.importorskip("fastapi")
    pytest.importorskip("multipart")
    from fastapi.testclient import TestClient

    from repaint.web.app import create_app

    with TestClient(create_app(model="digits", device="cpu")) as client:
        config = client.get("/api/config").json()
        assert set(config["samplers"]) == {"repaint", *OTHERS}
        cost = client.post("/api/evaluations", json={**SHORT, "sampler": "copaint"}).json()
        assert cost["evaluations"] == 35  # 5 steps of 1 + 2 x 2 calls and 2 backward passes
        rgb, keep = example_arrays()
        painted = np.where(keep, 0, 255).astype(np.uint8)
        files = {}
        for name, array in (("image", rgb), ("mask", painted)):
            buffer = io.BytesIO()
            Image.fromarray(array).save(buffer, format="PNG")
            files[name] = (f"{name}.png", buffer.getvalue(), "image/png")
        options = {"model": "digits", "schedule": SHORT, "seed": 1, "sampler": "copaint-tt"}
        job = client.post("/api/jobs", files=files, data={"options": json.dumps(options)}).json()
        for _ in range(600):
            status = client.get(f"/api/jobs/{job['id']}").json()
            if status["state"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.1)
        assert status["state"] == "done", status
        sidecar = client.get(f"/api/jobs/{job['id']}/results/0.json").json()
        assert sidecar["sampler"] == "copaint-tt"
        png = client.get(f"/api/jobs/{job['id']}/results/0.png").content
        result = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
        assert np.array_equal(result[keep], rgb[keep])


def test_the_benchmark_matches_budgets_and_reports_intervals(tmp_path):
    pytest.importorskip("sklearn")
    pytest.importorskip("skimage")
    from benchmarks.samplers import SAMPLERS, fit_budget, main, planned, schedule_for

    for name in SAMPLERS:
        schedule = fit_budget(name, 60)
        bigger = schedule_for(name, schedule.t_T + 1)
        assert planned(name, schedule) <= 60 < planned(name, bigger)
    assert main(["--images", "1", "--budgets", "12", "--samplers", "repaint,ddnm,dps",
                 "--out", str(tmp_path)]) == 0  # fmt: skip
    report = json.loads((tmp_path / "samplers.json").read_text())
    rows = {row["sampler"]: row for row in report["rows"]}
    assert set(rows) == {"repaint", "ddnm", "dps"}
    for row in rows.values():
        assert row["evaluations"] <= 12
        mean, low, high = row["per_kind"]["all"]["psnr"]
        assert low <= mean <= high
    assert "| ddnm |" in (tmp_path / "samplers_tables.md").read_text()
    assert (tmp_path / "samplers.png").stat().st_size > 0
