"""`repaint train` on tiny runs: the loss, the draw order, schedules, exact resume, bad
input, loading the result."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from PIL import Image

import repaint.training.loop as loop_module
from repaint.cli import main
from repaint.datasets import load_digits
from repaint.diffusion import GaussianDiffusion, q_sample
from repaint.errors import RepaintError, RepaintWarning
from repaint.loading import load_inpainter
from repaint.networks import unet_from_config
from repaint.training.config import TrainConfig
from repaint.training.loop import train
from repaint.training.losses import training_loss
from repaint.training.optim import ema_decay, learning_rate
from repaint.training.state import MODEL_FILE, STATE_FILE, read_metrics
from tests.conftest import tiny_train_config as tiny_config

CPU = torch.device("cpu")


def quiet(message: str) -> None:
    del message


def test_perfect_prediction_has_near_zero_loss():
    diffusion = GaussianDiffusion.from_config(steps=1000, learn_sigma=True)
    tables = diffusion.tables()
    torch.manual_seed(0)
    x0 = torch.rand(4, 3, 8, 8) * 2 - 1
    noise = torch.randn_like(x0)
    t = torch.tensor([5, 200, 600, 999])
    x_t = q_sample(tables, x0, t, noise)
    exact = torch.cat([noise, -torch.ones_like(noise)], dim=1)  # v = -1: posterior variance
    loss = training_loss(exact, diffusion, tables, x0, x_t, t, noise)
    assert loss.shape == (4,) and float(loss.max()) < 1e-3
    wrong = torch.cat([noise + 0.5, torch.ones_like(noise)], dim=1)
    assert float(training_loss(wrong, diffusion, tables, x0, x_t, t, noise).min()) > 0.2


def test_the_first_step_draws_images_levels_and_noise_in_the_published_order(tmp_path):
    """The shipped digits weights were trained with one generator drawing, per step, the
    image indices, then the levels, then the noise: the stream keeps that order, so the
    documented command still reproduces them. The expected loss is computed here from those
    draws, independently of the loader."""
    config = tiny_config("digits", steps=1, save_every=1, log_every=1, lr=1e-3)
    train(config, tmp_path / "run", device=CPU, log=quiet)
    generator = torch.Generator().manual_seed(config.seed)
    images = torch.from_numpy(load_digits("train", 16)[0]).permute(0, 3, 1, 2)
    index = torch.randint(0, len(images), (3,), generator=generator)
    t = torch.randint(0, 1000, (3,), generator=generator)
    noise = torch.randn((3, 3, 16, 16), generator=generator)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = unet_from_config(config.model_config())
    diffusion = GaussianDiffusion.from_config(steps=1000, learn_sigma=True)
    tables = diffusion.tables()
    x0 = images[index].float() / 127.5 - 1
    x_t = q_sample(tables, x0, t, noise)
    with torch.no_grad():
        expected = training_loss(model(x_t, t), diffusion, tables, x0, x_t, t, noise).mean()
    logged = [r["loss"] for r in read_metrics(tmp_path / "run") if "loss" in r]
    assert logged == [pytest.approx(expected.item(), rel=1e-6)]


def test_interrupted_run_resumes_to_the_same_weights_with_only_the_remaining_steps(
    image_folder, tmp_path, monkeypatch
):
    config = tiny_config(image_folder, log_every=1)
    whole = train(config, tmp_path / "whole", device=CPU, progress=False, log=quiet)

    calls = {"loss": 0, "steps": 0}
    real_loss, real_step = loop_module.training_loss, torch.optim.AdamW.step

    def interrupt_on_third_step(*args, **kwargs):
        calls["loss"] += 1
        if calls["loss"] == 3:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    def counted(self, *args, **kwargs):
        calls["steps"] += 1
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted)
    monkeypatch.setattr(loop_module, "training_loss", interrupt_on_third_step)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", device=CPU, progress=False, log=quiet)
    saved = torch.load(tmp_path / "resumed" / STATE_FILE, weights_only=True)
    assert saved["step"] == 2 and calls["steps"] == 2
    monkeypatch.setattr(loop_module, "training_loss", real_loss)
    calls["steps"] = 0
    messages = []
    resumed = train(config, tmp_path / "resumed", device=CPU, progress=False, log=messages.append)
    assert any("resuming from step 2" in message for message in messages)
    assert calls["steps"] == config.steps - 2  # not retrained from step 0
    assert whole.read_bytes() == resumed.read_bytes()
    steps = [r["step"] for r in read_metrics(tmp_path / "resumed") if "loss" in r]
    assert steps == [1, 2, 3, 4]  # step 3, lost at the interruption, is logged once


def test_trained_model_loads_through_the_normal_path(image_folder, tmp_path):
    path = train(tiny_config(image_folder, steps=2), tmp_path / "run", device=CPU, log=quiet)
    assert path.name == MODEL_FILE and (tmp_path / "run" / "model.yml").is_file()
    inpainter = load_inpainter(path, device="cpu")
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    keep = np.ones((16, 16), dtype=bool)
    keep[4:12, 4:12] = False
    result = inpainter(image, keep, schedule={"t_T": 5, "jump_length": 2, "jump_n_sample": 2})
    assert result.images[0].size == (16, 16)


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"num_channels": 64}, "num_channels"),
        ({"precision": "bf16"}, "precision ('fp32' there, 'bf16' now)"),
        ({"grad_accum": 2}, "grad_accum"),
        ({"flip": True}, "flip"),
    ],
)
def test_resume_with_other_settings_is_refused(image_folder, tmp_path, change, words):
    train(tiny_config(image_folder, steps=2), tmp_path / "run", device=CPU, log=quiet)
    with pytest.raises(RepaintError, match=words.replace("(", r"\(").replace(")", r"\)")):
        train(tiny_config(image_folder, **change), tmp_path / "run", device=CPU, log=quiet)


def test_a_longer_run_and_new_output_settings_resume(image_folder, tmp_path):
    train(tiny_config(image_folder, steps=2), tmp_path / "run", device=CPU, log=quiet)
    train(
        tiny_config(image_folder, steps=4, log_every=1, save_every=1),
        tmp_path / "run",
        device=CPU,
        log=quiet,
    )
    assert torch.load(tmp_path / "run" / STATE_FILE, weights_only=True)["step"] == 4


def test_cosine_decay_fixes_the_number_of_steps(image_folder, tmp_path):
    train(
        tiny_config(image_folder, steps=2, lr_schedule="cosine"),
        tmp_path / "run",
        device=CPU,
        log=quiet,
    )
    with pytest.raises(RepaintError, match="steps"):
        train(
            tiny_config(image_folder, steps=4, lr_schedule="cosine"),
            tmp_path / "run",
            device=CPU,
            log=quiet,
        )


def test_learning_rate_warms_up_then_follows_its_schedule():
    config = TrainConfig(lr=1.0, lr_warmup=4, steps=14, lr_schedule="cosine")
    rates = [learning_rate(config, step) for step in range(14)]
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]
    assert rates[4] == 1.0 and rates[9] == pytest.approx(0.5) and rates[13] < 0.03
    assert all(a >= b for a, b in itertools.pairwise(rates[3:]))  # after the warm-up
    constant = TrainConfig(lr=3e-4)
    assert {learning_rate(constant, step) for step in range(50)} == {3e-4}


def test_ema_warmups():
    ratio, power, none = (TrainConfig(ema_warmup=kind) for kind in ("ratio", "power", "none"))
    assert ema_decay(ratio, 0.999, 0) == 0.1 and ema_decay(ratio, 0.999, 10**6) == 0.999
    assert ema_decay(power, 0.9999, 0) == 0.0
    assert ema_decay(power, 0.9999, 999) == pytest.approx(1 - 1000 ** (-0.6667))
    assert ema_decay(none, 0.99, 0) == 0.99


def test_several_ema_rates_are_exported(image_folder, tmp_path):
    from safetensors.torch import load_file

    config = tiny_config(image_folder, steps=3, ema_rate="0.5,0.9", ema_warmup="none")
    train(config, tmp_path / "run", device=CPU, log=quiet)
    state = torch.load(tmp_path / "run" / STATE_FILE, weights_only=True)
    fast = load_file(tmp_path / "run" / "model.safetensors")
    slow = load_file(tmp_path / "run" / "model_ema0.9.safetensors")
    key = "out.2.weight"
    live = state["model"][key]
    assert (fast[key] - live).abs().sum() < (slow[key] - live).abs().sum()
    assert load_inpainter(tmp_path / "run" / "model_ema0.9.safetensors", device="cpu")


def test_sample_grid_is_written(image_folder, tmp_path):
    train(
        tiny_config(image_folder, steps=2, sample_every=2), tmp_path / "run", device=CPU, log=quiet
    )
    grid = Image.open(tmp_path / "run" / "samples" / "step_000002.png")
    assert grid.size == (64, 64)  # 4 x 4 samples of 16 px


def test_mixed_sizes_and_stray_files_warn(image_folder, tmp_path):
    Image.new("RGB", (40, 24), "red").save(image_folder / "big.png")
    (image_folder / "notes.txt").write_text("not an image")
    with pytest.warns(RepaintWarning) as records:
        train(
            tiny_config(image_folder, steps=1, save_every=1),
            tmp_path / "run",
            device=CPU,
            log=quiet,
        )
    messages = " ".join(str(record.message) for record in records)
    assert "notes.txt" in messages and "resized" in messages


def test_ema_warms_up_instead_of_averaging_the_initialisation(image_folder, tmp_path):
    from safetensors.torch import load_file

    config = tiny_config(image_folder, steps=6, save_every=6, ema_rate="0.9999")
    exported = load_file(train(config, tmp_path / "run", device=CPU, log=quiet))
    state = torch.load(tmp_path / "run" / STATE_FILE, weights_only=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        initial = unet_from_config(config.model_config()).state_dict()
    key = "input_blocks.0.0.weight"
    to_trained = float((exported[key] - state["model"][key]).abs().mean())
    to_initial = float((exported[key] - initial[key]).abs().mean())
    assert to_trained < to_initial  # a plain 0.9999 EMA would still be ~99.9% initialisation


def test_a_non_finite_loss_stops_with_advice(image_folder, tmp_path, monkeypatch):
    real = loop_module.training_loss
    monkeypatch.setattr(loop_module, "training_loss", lambda *a, **k: real(*a, **k) * math.nan)
    with pytest.raises(RepaintError, match="lower --lr"):
        train(tiny_config(image_folder), tmp_path / "run", device=CPU, log=quiet)


def cli_error(capsys, *args) -> str:
    assert main([str(arg) for arg in args]) == 2
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" not in line]
    assert len(lines) == 1 and lines[0].startswith("repaint: error:")
    return lines[0]


def test_empty_folder_is_an_error(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    message = cli_error(
        capsys, "train", "--data", tmp_path / "empty", "--out", tmp_path / "o", "--no-progress"
    )
    assert "no readable images" in message
    assert not (tmp_path / "o").exists()


def test_unwritable_output_is_an_error(image_folder, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output folder should go")
    message = cli_error(
        capsys,
        "train",
        "--data",
        image_folder,
        "--out",
        blocker / "run",
        "--image-size",
        16,
        "--no-progress",
    )
    assert "--out" in message and "file" in message


def test_missing_folder_is_an_error(tmp_path, capsys):
    message = cli_error(
        capsys, "train", "--data", tmp_path / "nope", "--out", tmp_path / "o", "--no-progress"
    )
    assert "nope" in message


def test_help_lists_the_scale_options(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for option in (
        "--precision",
        "--grad-accum",
        "--init",
        "--flip",
        "--random-crop",
        "--no-resize",
        "--val-every",
        "--lr-warmup",
        "--ema-warmup",
        "--grad-clip",
        "--workers",
        "torchrun",
    ):
        assert option in text, option
