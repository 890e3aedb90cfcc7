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
from repaint.loading import load_inpainter
from repaint.reference import build_model, load_eval_items
from repaint.samplers.repaint import repaint
from repaint.schedule import JumpSchedule

TOLERANCE = {"uncond32": 1e-4, "classcond64": 1e-3}
CPU = torch.device("cpu")


@pytest.fixture(params=sorted(TOLERANCE))
def case(request, golden_dir, monkeypatch):
    """One golden folder, as the working directory (config paths are relative to it)."""
    folder = golden_dir / request.param
    monkeypatch.chdir(folder)
    return request.param, folder, np.load(folder / "golden.npz")


def check_against_golden(name, golden, prior, image, keep_mask, schedule, labels):
    """Run the loop with the golden seed and compare every reverse step to the reference.

    The predicted x0 is compared in units of the network's output: at level t it is the
    epsilon error times sqrt(1 - alpha_bar) / sqrt(alpha_bar), which is about 150 near
    t = T, so there float32 rounding of a different CPU's kernels shows up amplified."""
    diffusion = prior.diffusion(len(golden["timestep_map"]))
    guidance = prior.guidance()
    samples, predictions, levels = [], [], []

    def record(step):
        samples.append(step.x[0].clone())
        predictions.append(step.pred_x0[0].clone())
        levels.append(step.t)

    final = repaint(
        prior.denoise,
        diffusion,
        image,
        keep_mask,
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
    alpha_bar = torch.from_numpy(diffusion.alphas_cumprod).float()
    pred_errors = [
        float((ours - torch.from_numpy(theirs)).abs().max() * alpha_bar[t].sqrt())
        for ours, theirs, t in zip(predictions, golden["reverse_pred_xstart"], levels, strict=True)
    ]
    assert max(pred_errors) < tolerance, f"worst x0 step {int(np.argmax(pred_errors))}"
    assert float((final - torch.from_numpy(golden["final_sample"])).abs().max()) < tolerance


def test_library_reproduces_every_reverse_step(case):
    name, folder, golden = case
    conf = load_reference_config(folder / "conf.yml")
    prior = build_model(conf, CPU)
    diffusion = prior.diffusion(conf["timestep_respacing"])
    assert diffusion.timestep_map == golden["timestep_map"].tolist()
    np.testing.assert_allclose(diffusion.betas, golden["betas"], rtol=1e-12)
    schedule = JumpSchedule.from_params(conf["schedule_jump_params"])
    assert schedule.times() == golden["times"].tolist()

    (entry,) = conf["data"]["eval"].values()
    (item,) = load_eval_items(entry, conf["image_size"])
    np.testing.assert_array_equal(item.image[None].numpy(), golden["gt"])
    np.testing.assert_array_equal(item.keep_mask[None].numpy(), golden["gt_keep_mask"])
    labels = None if conf["cond_y"] is None else torch.tensor([conf["cond_y"]])
    check_against_golden(
        name, golden, prior, item.image[None], item.keep_mask[None], schedule, labels
    )


def test_the_path_inpaint_users_take_loads_the_same_prior(case):
    """`repaint inpaint --model model.pt --model-config conf.yml` and the Python API load
    the checkpoint through `load_inpainter`; its prior reproduces the reference too."""
    name, folder, golden = case
    conf = load_reference_config(folder / "conf.yml")
    inpainter = load_inpainter(folder / "model.pt", model_config=folder / "conf.yml", device="cpu")
    schedule = JumpSchedule.from_params(conf["schedule_jump_params"])
    image = torch.from_numpy(golden["gt"])
    keep = torch.from_numpy(golden["gt_keep_mask"])
    labels = None if conf["cond_y"] is None else torch.tensor([conf["cond_y"]])
    check_against_golden(name, golden, inpainter.prior, image, keep, schedule, labels)


def test_fast_fp32_path_still_reproduces_the_reference(golden_dir, monkeypatch):
    """channels_last and torch.compile together stay within the golden tolerance."""
    folder = golden_dir / "uncond32"
    monkeypatch.chdir(folder)
    golden = np.load(folder / "golden.npz")
    conf = load_reference_config(folder / "conf.yml")
    torch._dynamo.reset()
    prior = build_model(conf, CPU, Acceleration(channels_last=True, compile=True))
    (entry,) = conf["data"]["eval"].values()
    (item,) = load_eval_items(entry, conf["image_size"])
    final = repaint(
        prior.denoise,
        prior.diffusion(conf["timestep_respacing"]),
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
    prior = build_model(conf, CPU)
    denoiser, diffusion = prior.denoise, prior.diffusion(conf["timestep_respacing"])
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
