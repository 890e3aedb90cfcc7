"""Training at scale on tiny runs: torchrun (Gloo on CPU) against one process, gradient
accumulation against a larger batch, mixed precision, fine-tuning from a checkpoint, and
exact resumes that take only the remaining steps."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from repaint.cli import main
from repaint.config import load_reference_config
from repaint.datasets import load_digits
from repaint.diffusion import GaussianDiffusion, q_sample
from repaint.networks import load_checkpoint, unet_from_config
from repaint.training.loop import TrainingStopped, train
from repaint.training.losses import training_loss
from repaint.training.state import STATE_FILE, read_metrics
from tests.conftest import ROOT, tiny_train_config, tiny_train_flags

CPU = torch.device("cpu")
WORKER = ROOT / "tests" / "train_worker.py"


def quiet(message: str) -> None:
    del message


def losses(out: Path) -> list[float]:
    return [r["loss"] for r in read_metrics(out) if "loss" in r]


def torchrun(flags: list[str], count_dir: Path, **env: str) -> subprocess.CompletedProcess:
    count_dir.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(WORKER),
        "train",
        *flags,
    ]
    environment = {**os.environ, "OMP_NUM_THREADS": "1", "COUNT_DIR": str(count_dir), **env}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=ROOT, env=environment, check=False
    )


def counts(count_dir: Path) -> list[int]:
    return [int((count_dir / f"rank{rank}").read_text()) for rank in (0, 1)]


@pytest.fixture(scope="module")
def single_run(tmp_path_factory):
    """20 steps of one process with a batch of 4 on eight 16 px images."""
    root = tmp_path_factory.mktemp("single")
    data = root / "images"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(8):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(data / f"{i}.png")
    config = tiny_train_config(data, steps=20, batch_size=4, log_every=1, save_every=10)
    train(config, root / "run", device=CPU, log=quiet)
    return data, root / "run"


def test_gradient_accumulation_equals_the_larger_batch(single_run, tmp_path):
    data, single = single_run
    config = tiny_train_config(
        data, steps=20, batch_size=2, grad_accum=2, log_every=1, save_every=10
    )
    train(config, tmp_path / "accum", device=CPU, log=quiet)
    np.testing.assert_allclose(losses(tmp_path / "accum"), losses(single), rtol=1e-4)
    assert len(losses(single)) == 20


def test_two_processes_under_torchrun_equal_one_with_the_same_global_batch(single_run, tmp_path):
    data, single = single_run
    out = tmp_path / "ddp"
    flags = tiny_train_flags(data, out, steps=20, batch_size=2, log_every=1, save_every=10)
    result = torchrun(flags, tmp_path / "counts")
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(losses(out), losses(single), rtol=1e-4)
    start = next(r for r in read_metrics(out) if r.get("event") == "start")
    assert start["world_size"] == 2 and start["global_batch"] == 4
    assert counts(tmp_path / "counts") == [20, 20]
    assert result.stdout.count("trained model:") == 1  # rank 0 speaks
    image = tmp_path / "in.png"
    Image.fromarray(np.full((16, 16, 3), 120, dtype=np.uint8)).save(image)
    code = main(
        [
            "inpaint",
            str(image),
            "--model",
            str(out / "model.safetensors"),
            "--extend",
            "0,0,8,0",
            "--preset",
            "draft",
            "--t-T",
            "6",
            "--seed",
            "0",
            "--out",
            str(tmp_path / "filled"),
            "--no-progress",
        ]
    )
    assert code == 0 and (tmp_path / "filled" / "in.png").is_file()


def test_torchrun_resumes_after_a_preemption_with_the_same_weights(single_run, tmp_path):
    data, _ = single_run
    flags = tiny_train_flags(data, tmp_path / "whole", steps=8, batch_size=2, save_every=4)
    assert torchrun(flags, tmp_path / "c0").returncode == 0
    out = tmp_path / "preempted"
    flags = tiny_train_flags(data, out, steps=8, batch_size=2, save_every=4)
    stopped = torchrun(flags, tmp_path / "c1", STOP_AFTER="2")
    assert stopped.returncode != 0 and "stopped at step 3 and saved" in stopped.stderr
    assert counts(tmp_path / "c1") == [3, 3]
    assert torch.load(out / STATE_FILE, weights_only=True)["step"] == 3
    resumed = torchrun(flags, tmp_path / "c2")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert counts(tmp_path / "c2") == [5, 5]  # only the remaining steps
    whole = (tmp_path / "whole" / "model.safetensors").read_bytes()
    assert (out / "model.safetensors").read_bytes() == whole
    refused = main(["train", *tiny_train_flags(data, out, steps=8, batch_size=2, save_every=4)])
    assert refused == 2  # one process cannot continue a two-process run


def test_accumulated_run_resumes_exactly_after_a_signal(single_run, tmp_path, monkeypatch):
    data, _ = single_run
    config = tiny_train_config(data, steps=6, batch_size=2, grad_accum=2, save_every=3)
    whole = train(config, tmp_path / "whole", device=CPU, log=quiet)
    taken = {"n": 0}
    real = torch.optim.AdamW.step

    def counted(self, *args, **kwargs):
        taken["n"] += 1
        if taken["n"] == 2:
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: finish the step, save, stop
        return real(self, *args, **kwargs)

    monkeypatch.setattr(torch.optim.AdamW, "step", counted)
    with pytest.raises(TrainingStopped) as stopped:
        train(config, tmp_path / "run", device=CPU, log=quiet)
    # the signal came during step 2's update: the next step, already begun, ends the run
    assert stopped.value.step == 3 == taken["n"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored
    monkeypatch.setattr(torch.optim.AdamW, "step", real)
    resumed = train(config, tmp_path / "run", device=CPU, log=quiet)
    assert resumed.read_bytes() == whole.read_bytes()


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_trains(tmp_path, precision):
    config = tiny_train_config(
        "digits", steps=30, batch_size=8, lr=1e-3, log_every=1, save_every=30, precision=precision
    )
    train(config, tmp_path / "run", device=CPU, log=quiet)
    values = losses(tmp_path / "run")
    assert np.isfinite(values).all() and np.mean(values[-5:]) < 0.7 * np.mean(values[:5])
    state = torch.load(tmp_path / "run" / STATE_FILE, weights_only=True)
    assert all(tensor.dtype == torch.float32 for tensor in state["model"].values())
    assert all(tensor.dtype == torch.float32 for tensor in state["ema"].values())
    if precision == "fp16":
        assert state["scaler"]["scale"] > 0


def test_fine_tuning_starts_from_the_checkpoint(golden_dir, tmp_path):
    folder = golden_dir / "uncond32"
    config = tiny_train_config(
        "digits",
        init=str(folder / "model.pt"),
        init_config=str(folder / "conf.yml"),
        image_size=None,
        num_channels=None,
        num_res_blocks=None,
        channel_mult=None,
        attention_resolutions=None,
        steps=1,
        log_every=1,
        save_every=1,
    )
    train(config, tmp_path / "run", device=CPU, log=quiet)
    generator = torch.Generator().manual_seed(config.seed)
    images = torch.from_numpy(load_digits("train", 32)[0]).permute(0, 3, 1, 2)
    index = torch.randint(0, len(images), (3,), generator=generator)
    t = torch.randint(0, 1000, (3,), generator=generator)
    noise = torch.randn((3, 3, 32, 32), generator=generator)
    model = unet_from_config(load_reference_config(folder / "conf.yml"))
    load_checkpoint(model, folder / "model.pt")
    diffusion = GaussianDiffusion.from_config(steps=1000, learn_sigma=True)
    tables = diffusion.tables()
    x0 = images[index].float() / 127.5 - 1
    x_t = q_sample(tables, x0, t, noise)
    with torch.no_grad():
        expected = training_loss(model(x_t, t), diffusion, tables, x0, x_t, t, noise).mean()
    assert losses(tmp_path / "run") == [pytest.approx(expected.item(), rel=1e-6)]
    record = yaml.safe_load((tmp_path / "run" / "model.yml").read_text())
    assert record["trained"]["initialised_from"]["path"] == str(folder / "model.pt")
    assert len(record["trained"]["initialised_from"]["sha256"]) == 64
    assert record["num_res_blocks"] == 1  # the checkpoint's architecture, not the default


def test_a_disagreeing_architecture_flag_is_refused(golden_dir, tmp_path, capsys):
    folder = golden_dir / "uncond32"
    run = tmp_path / "run"
    shutil.copy(folder / "model.pt", tmp_path / "model.pt")
    shutil.copy(folder / "conf.yml", tmp_path / "model.yml")
    code = main(
        [
            "train",
            "--data",
            "digits",
            "--out",
            str(run),
            "--init",
            str(tmp_path / "model.pt"),
            "--num-channels",
            "64",
            "--no-progress",
        ]
    )
    error = capsys.readouterr().err
    assert code == 2 and "--num-channels 64" in error and "32" in error
    assert not run.exists()
    agreeing = main(
        [
            "train",
            "--data",
            "digits",
            "--out",
            str(run),
            "--init",
            str(tmp_path / "model.pt"),
            "--num-channels",
            "32",
            "--steps",
            "1",
            "--batch-size",
            "2",
            "--no-progress",
            "--device",
            "cpu",
        ]
    )
    assert agreeing == 0  # a flag that agrees is fine
