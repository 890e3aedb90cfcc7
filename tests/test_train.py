"""`repaint train` on a tiny run: loss, exact resume, bad input, loading the result."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import repaint.train as train_module
from repaint.cli import main
from repaint.diffusion import GaussianDiffusion, q_sample
from repaint.errors import RepaintError, RepaintWarning
from repaint.loading import load_inpainter
from repaint.losses import training_loss
from repaint.train import MODEL_FILE, STATE_FILE, TrainConfig, train

CPU = torch.device("cpu")


def tiny_config(data, **changes) -> TrainConfig:
    settings = {
        "data": str(data),
        "image_size": 16,
        "num_channels": 32,
        "num_res_blocks": 1,
        "channel_mult": "1,2",
        "attention_resolutions": "8",
        "steps": 4,
        "batch_size": 3,
        "save_every": 2,
        "sample_every": 0,
        "seed": 3,
    }
    return TrainConfig(**{**settings, **changes})


@pytest.fixture
def image_folder(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


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


def test_interrupted_run_resumes_to_the_same_weights(image_folder, tmp_path, monkeypatch):
    config = tiny_config(image_folder)
    whole = train(config, tmp_path / "whole", device=CPU, progress=False, log=quiet)

    calls = {"n": 0}
    real_loss = train_module.training_loss

    def interrupt_on_third_step(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real_loss(*args, **kwargs)

    monkeypatch.setattr(train_module, "training_loss", interrupt_on_third_step)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "resumed", device=CPU, progress=False, log=quiet)
    saved = torch.load(tmp_path / "resumed" / STATE_FILE, weights_only=True)
    assert saved["step"] == 2
    monkeypatch.setattr(train_module, "training_loss", real_loss)
    messages = []
    resumed = train(config, tmp_path / "resumed", device=CPU, progress=False, log=messages.append)
    assert any("resuming from step 2" in message for message in messages)
    assert whole.read_bytes() == resumed.read_bytes()


def test_trained_model_loads_through_the_normal_path(image_folder, tmp_path):
    path = train(tiny_config(image_folder, steps=2), tmp_path / "run", device=CPU, log=quiet)
    assert path.name == MODEL_FILE and (tmp_path / "run" / "model.yml").is_file()
    inpainter = load_inpainter(path, device="cpu")
    image = np.zeros((16, 16, 3), dtype=np.uint8)
    keep = np.ones((16, 16), dtype=bool)
    keep[4:12, 4:12] = False
    result = inpainter(image, keep, schedule={"t_T": 5, "jump_length": 2, "jump_n_sample": 2})
    assert result.images[0].size == (16, 16)


def test_resume_with_other_settings_is_refused(image_folder, tmp_path):
    train(tiny_config(image_folder, steps=2), tmp_path / "run", device=CPU, log=quiet)
    with pytest.raises(RepaintError, match="num_channels"):
        train(tiny_config(image_folder, num_channels=64), tmp_path / "run", device=CPU, log=quiet)


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
    assert "cannot write" in message and "run" in message


def test_missing_folder_is_an_error(tmp_path, capsys):
    message = cli_error(
        capsys, "train", "--data", tmp_path / "nope", "--out", tmp_path / "o", "--no-progress"
    )
    assert "nope" in message


def test_ema_warms_up_instead_of_averaging_the_initialisation(image_folder, tmp_path):
    from safetensors.torch import load_file

    config = tiny_config(image_folder, steps=6, save_every=6, ema_rate=0.9999)
    exported = load_file(train(config, tmp_path / "run", device=CPU, log=quiet))
    state = torch.load(tmp_path / "run" / STATE_FILE, weights_only=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        initial = train_module.unet_from_config(config.model_config()).state_dict()
    key = "input_blocks.0.0.weight"
    to_trained = float((exported[key] - state["model"][key]).abs().mean())
    to_initial = float((exported[key] - initial[key]).abs().mean())
    assert to_trained < to_initial  # a plain 0.9999 EMA would still be ~99.9% initialisation
