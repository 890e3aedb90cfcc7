"""Our sampler against vectors recorded from the reference implementation."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from repaint.accel import Acceleration
from repaint.config import load_reference_config
from repaint.device import make_generator
from repaint.reference import build_model, load_eval_items
from repaint.sampler import repaint
from repaint.schedule import JumpSchedule

TOLERANCE = {"uncond32": 1e-4, "classcond64": 1e-3}
CPU = torch.device("cpu")


@pytest.fixture(params=sorted(TOLERANCE))
def case(request, golden_dir, monkeypatch):
    """One golden folder, as the working directory (config paths are relative to it)."""
    folder = golden_dir / request.param
    monkeypatch.chdir(folder)
    return request.param, folder, np.load(folder / "golden.npz")


def test_library_reproduces_every_reverse_step(case):
    name, folder, golden = case
    conf = load_reference_config(folder / "conf.yml")
    denoiser, diffusion, guidance = build_model(conf, CPU)
    assert diffusion.timestep_map == golden["timestep_map"].tolist()
    np.testing.assert_allclose(diffusion.betas, golden["betas"], rtol=1e-12)
    schedule = JumpSchedule.from_params(conf["schedule_jump_params"])
    assert schedule.times() == golden["times"].tolist()

    (entry,) = conf["data"]["eval"].values()
    (item,) = load_eval_items(entry, conf["image_size"])
    np.testing.assert_array_equal(item.image[None].numpy(), golden["gt"])
    np.testing.assert_array_equal(item.keep_mask[None].numpy(), golden["gt_keep_mask"])

    labels = None if conf["cond_y"] is None else torch.tensor([conf["cond_y"]])
    samples, predictions = [], []

    def record(step):
        samples.append(step.x[0].clone())
        predictions.append(step.pred_x0[0].clone())

    final = repaint(
        denoiser,
        diffusion,
        item.image[None],
        item.keep_mask[None],
        schedule,
        generator=make_generator(int(golden["seed"]), CPU),
        labels=labels,
        guidance=guidance,
        raw=True,
        callback=record,
    )
    tolerance = TOLERANCE[name]
    assert len(samples) == len(golden["reverse_samples"]) == schedule.reverse_steps
    errors = [
        float((ours - torch.from_numpy(theirs)).abs().max())
        for ours, theirs in zip(samples, golden["reverse_samples"], strict=True)
    ]
    assert max(errors) < tolerance, f"worst step {int(np.argmax(errors))}: {max(errors)}"
    pred_errors = [
        float((ours - torch.from_numpy(theirs)).abs().max())
        for ours, theirs in zip(predictions, golden["reverse_pred_xstart"], strict=True)
    ]
    assert max(pred_errors) < tolerance
    assert float((final - torch.from_numpy(golden["final_sample"])).abs().max()) < tolerance


def test_fast_fp32_path_still_reproduces_the_reference(golden_dir, monkeypatch):
    """channels_last and torch.compile together stay within the golden tolerance."""
    folder = golden_dir / "uncond32"
    monkeypatch.chdir(folder)
    golden = np.load(folder / "golden.npz")
    conf = load_reference_config(folder / "conf.yml")
    torch._dynamo.reset()
    denoiser, diffusion, _ = build_model(conf, CPU, Acceleration(channels_last=True, compile=True))
    (entry,) = conf["data"]["eval"].values()
    (item,) = load_eval_items(entry, conf["image_size"])
    final = repaint(
        denoiser,
        diffusion,
        item.image[None],
        item.keep_mask[None],
        JumpSchedule.from_params(conf["schedule_jump_params"]),
        generator=make_generator(int(golden["seed"]), CPU),
        raw=True,
    )
    error = float((final - torch.from_numpy(golden["final_sample"])).abs().max())
    assert error < TOLERANCE["uncond32"]


def test_default_output_pastes_known_pixels_exactly(golden_dir, monkeypatch):
    folder = golden_dir / "uncond32"
    monkeypatch.chdir(folder)
    conf = load_reference_config("conf.yml")
    denoiser, diffusion, _ = build_model(conf, CPU)
    (item,) = load_eval_items(conf["data"]["eval"]["uncond32"], conf["image_size"])
    schedule = JumpSchedule(t_T=10, jump_length=3, jump_n_sample=2)
    image, keep = item.image[None], item.keep_mask[None]

    def run(raw):
        return repaint(
            denoiser, diffusion, image, keep, schedule, generator=make_generator(0, CPU), raw=raw
        )

    pasted, raw = run(False), run(True)
    known = keep.expand_as(image) > 0.5
    assert torch.equal(pasted[known], image[known])
    assert torch.equal(pasted[~known], raw[~known])
    assert not torch.equal(raw[known], image[known])  # the reference's raw sample differs


def test_cli_writes_the_reference_output(case, tmp_path):
    name, folder, golden = case
    work = tmp_path / name
    shutil.copytree(folder, work)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "repaint",
            "run",
            "--conf",
            "conf.yml",
            "--seed",
            str(int(golden["seed"])),
            "--device",
            "cpu",
        ],
        cwd=work,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr
    ours = np.asarray(Image.open(work / "log" / "inpainted" / "img.png"), dtype=np.int16)
    expected = np.asarray(Image.open(folder / "expected_inpainted.png"), dtype=np.int16)
    assert ours.shape == expected.shape
    difference = np.abs(ours - expected)
    assert difference.max() <= 1
    assert (difference > 0).mean() <= 0.001
    for sub in ("gt_masked", "gt", "gt_keep_mask"):
        assert (work / "log" / sub / "img.png").is_file()
    mask = np.asarray(Image.open(work / "log" / "gt_keep_mask" / "img.png"))
    assert set(np.unique(mask)) <= {0, 255}
