"""Shared fixtures: where the reference's golden vectors are, and tiny models."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(os.environ.get("REPAINT_GOLDEN", ROOT.parent / "shared" / "golden"))


@pytest.fixture(scope="session")
def golden_dir() -> Path:
    """`../shared/golden` (or $REPAINT_GOLDEN); required under CI, skipped elsewhere."""
    if not (GOLDEN / "schedules.json").is_file():
        message = f"golden vectors not found at {GOLDEN} (set REPAINT_GOLDEN to their folder)"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return GOLDEN


@pytest.fixture
def workdir(golden_dir, tmp_path) -> Path:
    """A writable copy of the uncond32 golden folder with a very short schedule."""
    work = tmp_path / "uncond32"
    shutil.copytree(golden_dir / "uncond32", work)
    edit_conf(work, schedule_jump_params={"t_T": 3, "jump_length": 1, "jump_n_sample": 1})
    return work


def edit_conf(work: Path, drop: tuple[str, ...] = (), **changes) -> None:
    conf = yaml.safe_load((work / "conf.yml").read_text())
    for key in drop:
        conf.pop(key)
    conf.update(changes)
    (work / "conf.yml").write_text(yaml.safe_dump(conf))


TINY_CONFIG = {
    "image_size": 32,
    "num_channels": 32,
    "num_res_blocks": 1,
    "channel_mult": "1,2",
    "attention_resolutions": "16",
    "num_heads": 2,
    "learn_sigma": True,
    "use_scale_shift_norm": True,
    "resblock_updown": True,
    "diffusion_steps": 1000,
}
SHORT = {"t_T": 8, "jump_length": 3, "jump_n_sample": 2}  # 14 model evaluations


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    """A random-weight 32 px guided-diffusion checkpoint with a sidecar YAML config."""
    import torch

    from repaint.networks import unet_from_config

    folder = tmp_path_factory.mktemp("tiny_model")
    torch.manual_seed(0)
    torch.save(unet_from_config(TINY_CONFIG).state_dict(), folder / "tiny.pt")
    (folder / "tiny.yml").write_text(yaml.safe_dump(TINY_CONFIG))
    return folder / "tiny.pt"


TINY_TRAIN = {
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


def tiny_train_config(data, **changes):
    """A `TrainConfig` for a 16 px network small enough to train in tests."""
    from repaint.training.config import TrainConfig

    return TrainConfig(**{"data": str(data), **TINY_TRAIN, **changes})


def tiny_train_flags(data, out, **changes) -> list[str]:
    """The command-line form of `tiny_train_config`."""
    settings = {"data": data, "out": out, **TINY_TRAIN, **changes}
    flags = []
    for name, value in settings.items():
        if value is True:
            flags.append("--" + name.replace("_", "-"))
        elif value is not False:
            flags += ["--" + name.replace("_", "-"), str(value)]
    return [*flags, "--no-progress", "--device", "cpu"]


@pytest.fixture
def image_folder(tmp_path):
    """Eight random 16 px RGB images."""
    import numpy as np
    from PIL import Image

    folder = tmp_path / "images"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        pixels = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder
