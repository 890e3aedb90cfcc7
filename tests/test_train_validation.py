"""Inpainting as the training signal: held-out hole PSNR in metrics.jsonl rises as the
prior learns, with a preview grid and a plot."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from repaint.errors import RepaintError
from repaint.training.loop import train
from repaint.training.state import read_metrics
from tests.conftest import tiny_train_config

CPU = torch.device("cpu")


def quiet(message: str) -> None:
    del message


def test_hole_psnr_rises_on_the_digits_and_is_plotted(tmp_path):
    config = tiny_train_config(
        "digits", steps=40, batch_size=8, lr=1e-3, val_every=20, val_images=6, save_every=40
    )
    out = tmp_path / "run"
    train(config, out, device=CPU, log=quiet)
    checks = [r for r in read_metrics(out) if "hole_psnr" in r]
    assert [r["step"] for r in checks] == [0, 20, 40]
    assert checks[-1]["hole_psnr"] > checks[0]["hole_psnr"] + 3  # dB
    assert checks[-1]["val_loss"] < checks[0]["val_loss"]
    assert set(checks[0]["hole_psnr_by_kind"]) == {
        "thin",
        "thick",
        "ev2li",
        "nn2",
        "ex64",
        "genhalf",
    }
    grid = Image.open(out / "val" / "step_000040.png")
    assert grid.size == (3 * 64, 6 * 64)  # masked | inpainted | truth, 16 px tiles shown at 64
    assert Image.open(out / "metrics.png").size[0] > 400


def test_the_same_weights_give_the_same_figures(tmp_path):
    """Masks, noise and levels are fixed: a validation depends on the weights alone."""
    config = tiny_train_config("digits", steps=2, val_every=2, val_images=4, save_every=2)
    first, second = tmp_path / "a", tmp_path / "b"
    train(config, first, device=CPU, log=quiet)
    train(config, second, device=CPU, log=quiet)
    figures = [[r for r in read_metrics(out) if "hole_psnr" in r] for out in (first, second)]
    assert figures[0] == figures[1]


def test_a_held_out_share_of_a_folder_is_never_trained_on(tmp_path, monkeypatch):
    import repaint.training.data as data_module

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(40):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    config = tiny_train_config(
        folder, steps=2, val_every=2, val_split=0.25, save_every=2, workers=0
    )
    _, held_files = data_module.scan_folder(folder, 16, val_split=0.25)
    count = min(config.val_images, len(held_files))
    opened = []
    real = data_module.open_image
    monkeypatch.setattr(data_module, "open_image", lambda path: opened.append(path) or real(path))
    train(config, tmp_path / "run", device=CPU, log=quiet)
    held = {path.name for path in opened[:count]}
    trained = {path.name for path in opened[count:]}
    assert held and trained and not held & trained
    assert any("hole_psnr" in r for r in read_metrics(tmp_path / "run"))


def test_validation_needs_images_never_trained_on(image_folder, tmp_path):
    with pytest.raises(RepaintError, match="--val-data FOLDER or --val-split"):
        train(tiny_train_config(image_folder, val_every=2), tmp_path / "run", device=CPU, log=quiet)
