"""The quality benchmark (benchmarks/quality.py and the benchmarks.lib it runs on) on a tiny
random model and tiny schedules."""

from __future__ import annotations

import importlib.util
import itertools
import json

import numpy as np
import pytest
import torch

pytest.importorskip("sklearn")
pytest.importorskip("skimage")
pytest.importorskip("matplotlib")

from benchmarks import quality
from benchmarks.lib import methods, quality_report, reports, runner
from repaint.device import derive_seed, make_generator
from repaint.loading import load_inpainter
from repaint.pixel import PixelInpainter
from repaint.presets import PRESETS
from repaint.samplers.repaint import repaint
from repaint.schedule import JumpSchedule

HAVE_CV2 = importlib.util.find_spec("cv2") is not None
HAVE_DIFFUSERS = importlib.util.find_spec("diffusers") is not None
METHODS = [
    name
    for name in methods.METHODS
    if (HAVE_CV2 or not name.startswith("opencv"))
    and (HAVE_DIFFUSERS or name != "diffusers-repaint")
]
DIFFUSION = [name for name in METHODS if name in methods.DIFFUSION_METHODS]
KINDS = ("thick", "ex64")
IMAGES = 2
TINY = {
    "repaint-paper": JumpSchedule(t_T=8, jump_length=3, jump_n_sample=2),  # 14 evaluations
    "no-resampling": JumpSchedule(t_T=8, jump_length=3, jump_n_sample=1),
    "repaint-fast": JumpSchedule(t_T=6, jump_length=2, jump_n_sample=2),
    "repaint-draft": JumpSchedule(t_T=4, jump_length=2, jump_n_sample=1),
}


@pytest.fixture(scope="module")
def inpainter(tiny_model) -> PixelInpainter:
    loaded = load_inpainter(tiny_model, device="cpu")
    assert isinstance(loaded, PixelInpainter)
    return loaded


@pytest.fixture(scope="module")
def bench(inpainter) -> runner.Benchmark:
    return runner.run_benchmark(
        inpainter,
        images=IMAGES,
        kinds=KINDS,
        seed=3,
        methods=METHODS,
        schedules=TINY,
        batch_size=3,  # 4 items in two batches of 2
        log=lambda message: None,
    )


def test_every_method_is_scored_with_numbers_in_range(bench):
    report = bench.report
    assert list(report["methods"]) == METHODS
    assert report["settings"]["batches"] == [2, 2]
    assert 0.9 <= report["classifier"]["clean_accuracy_test_split"] <= 1
    for name, row in report["methods"].items():
        assert set(row["per_kind"]) == set(KINDS), name
        for cell in [*row["per_kind"].values(), row["mean"]]:
            assert 0 <= cell["accuracy"] <= 1, name
            assert cell["psnr"] is not None and cell["psnr"] > 0, name
            assert cell["ssim"] is not None and -1 <= cell["ssim"] <= 1, name
        assert all(cell["images"] == IMAGES for cell in row["per_kind"].values())
        assert row["seconds_per_image"] >= 0
    rows = report["methods"]
    assert rows["repaint-paper"]["evaluations_per_image"] == 14
    assert rows["slowing-down"]["evaluations_per_image"] == 14  # as many as the paper
    assert rows["slowing-down"]["schedule"]["jump_n_sample"] == 1
    if HAVE_DIFFUSERS:
        assert rows["diffusers-repaint"]["evaluations_per_image"] == 14
    for name in DIFFUSION:
        assert rows[name]["seconds_per_image"] > 0


def test_diffusion_outputs_keep_the_known_pixels_exactly(bench):
    keep = bench.keep
    assert bench.truth.shape == (len(KINDS) * IMAGES, 32, 32, 3)
    for name in DIFFUSION:
        output = bench.outputs[name]
        assert output.shape == bench.truth.shape and output.dtype == np.uint8
        assert np.array_equal(output[keep], bench.truth[keep]), name
        assert not np.array_equal(output[~keep], bench.truth[~keep]), name  # it did fill


@pytest.mark.skipif(not HAVE_CV2, reason="opencv is not installed")
def test_opencv_changes_only_the_fill_region(bench):
    keep = bench.keep
    for name in ("opencv-telea", "opencv-ns"):
        output = bench.outputs[name]
        assert np.array_equal(output[keep], bench.truth[keep]), name
        assert not np.array_equal(output[~keep], bench.outputs["masked-input"][~keep]), name


def test_masks_are_the_paper_kinds_from_the_seed(bench):
    assert bench.kinds == ["thick"] * IMAGES + ["ex64"] * IMAGES
    ex64 = bench.keep[IMAGES]
    assert ex64.sum() == 8 * 8 and ex64[12:20, 12:20].all()
    fills = bench.report["mask_fill_fraction"]
    assert 0 < fills["thick"] <= 0.5 and fills["ex64"] == pytest.approx(1 - 64 / 1024)


def test_results_do_not_depend_on_batching(inpainter, bench):
    again = runner.run_benchmark(
        inpainter,
        images=IMAGES,
        kinds=KINDS,
        seed=3,
        methods=["repaint-draft"],
        schedules=TINY,
        batch_size=4,
        log=lambda message: None,
    )
    assert np.array_equal(again.outputs["repaint-draft"], bench.outputs["repaint-draft"])


@pytest.mark.skipif(not HAVE_DIFFUSERS, reason="diffusers is not installed")
def test_diffusers_starts_from_the_same_noise_as_our_sampler(inpainter):
    seen: dict[str, torch.Tensor] = {}

    def recorder(name):
        def denoise(x, timesteps, labels):
            seen.setdefault(name, x.clone())
            return torch.zeros(x.shape[0], 6, *x.shape[2:])

        return denoise

    image = torch.zeros(2, 3, 32, 32)
    keep = torch.ones(2, 1, 32, 32)
    keep[..., 8:24, 8:24] = 0
    schedule = TINY["repaint-paper"]

    def generators():
        return [make_generator(derive_seed(3, "thin", i), torch.device("cpu")) for i in range(2)]

    prior = inpainter.prior
    repaint(recorder("ours"), prior.diffusion(8), image, keep, schedule, generator=generators())
    methods.diffusers_repaint(
        recorder("diffusers"), prior.config, image, keep, schedule, generators()
    )
    assert torch.equal(seen["ours"], seen["diffusers"])


@pytest.mark.skipif(not HAVE_DIFFUSERS, reason="diffusers is not installed")
def test_diffusers_paper_schedule_has_the_papers_evaluations():
    scheduler = methods.diffusers_scheduler({"diffusion_steps": 1000})
    scheduler.set_timesteps(250, jump_length=10, jump_n_sample=10)
    steps = scheduler.timesteps.tolist()
    reverse = 1 + sum(1 for a, b in itertools.pairwise(steps) if b < a)
    assert reverse == PRESETS["paper"].reverse_steps == 2410
    ours = np.linspace(1e-4, 0.02, 1000)
    assert np.allclose(scheduler.betas.numpy(), ours, rtol=1e-5)


def test_full_method_list_matches_the_brief():
    built = {m.name: m for m in methods.build_methods()}
    assert built["repaint-paper"].evaluations == 2410
    assert built["no-resampling"].evaluations == 250
    assert built["slowing-down"].schedule.t_T == 1000  # capped by the training steps
    assert built["slowing-down"].evaluations == 1000
    assert built["repaint-fast"].evaluations == 210
    assert built["repaint-draft"].evaluations == 90
    assert built["diffusers-repaint"].schedule == PRESETS["paper"].schedule
    assert runner.chunks(10, 4) == [range(0, 3), range(3, 7), range(7, 10)]


def test_outputs_are_written(bench, tmp_path):
    report = {
        "command": "python benchmarks/quality.py --test",
        "date": "2026-01-01T00:00:00+00:00",
        "machine": reports.machine_info(),
        **bench.report,
    }
    paths = quality_report.write_outputs(report, tmp_path / "docs")
    assert [p.name for p in paths] == ["quality.json", "quality.md", "quality.png"]
    loaded = json.loads(paths[0].read_text())
    assert loaded["methods"].keys() == bench.report["methods"].keys()
    assert loaded["machine"]["cpu_count"] >= 1 and loaded["machine"]["torch"] == torch.__version__
    markdown = paths[1].read_text()
    assert "`python benchmarks/quality.py --test`" in markdown
    assert "Clean accuracy (the ceiling)" in markdown
    for name in METHODS:
        assert f"| {name} |" in markdown
    assert paths[2].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "docs").glob(".*part"))  # atomic writes left nothing behind


def test_command_line_end_to_end(tiny_model, tmp_path, capsys):
    chosen = "repaint-draft,masked-input" + (",opencv-ns" if HAVE_CV2 else "")
    code = quality.main(
        [
            "--model",
            str(tiny_model),
            "--images",
            "1",
            "--kinds",
            "nn2",
            "--methods",
            chosen,
            "--schedule-scale",
            "0.05",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    report = json.loads((tmp_path / "quality.json").read_text())
    assert report["command"].startswith("python benchmarks/quality.py --model ")
    assert report["settings"]["images"] == 1 and report["settings"]["mask_kinds"] == ["nn2"]
    assert report["methods"]["repaint-draft"]["evaluations_per_image"] < 90
    assert "estimated time" in capsys.readouterr().err


def test_missing_package_is_one_line(monkeypatch, capsys, tmp_path):
    real = methods.importlib.import_module

    def fake(name, *args):
        if name == "diffusers":
            raise ImportError(name)
        return real(name, *args)

    monkeypatch.setattr(methods.importlib, "import_module", fake)
    assert quality.main(["--out", str(tmp_path)]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "diffusers" in error and ".[bench]" in error
    assert not (tmp_path / "quality.json").exists()


def test_bad_arguments_are_refused(tiny_model, capsys):
    assert quality.main(["--model", str(tiny_model), "--kinds", "bogus"]) == 2
    assert "bogus" in capsys.readouterr().err
    with pytest.raises(Exception, match="unknown method"):
        methods.build_methods(["nope"])
