"""`repaint train`: a guided-diffusion UNet prior for your own images.

The network, checkpoint format and config keys are those of the published models, so a
trained model loads through exactly the same path (`--model out/model.safetensors`). All
randomness (batches, levels, noise) comes from one generator whose state is saved with each
checkpoint: an interrupted run, restarted with the same command, continues from its last
checkpoint and ends with the same weights as an uninterrupted one.
"""

from __future__ import annotations

import copy
import sys
import warnings
from collections.abc import Callable
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
import yaml
from safetensors.torch import save as safetensors_bytes
from tqdm.auto import tqdm

from repaint.datasets import load_training_images
from repaint.device import make_generator
from repaint.diffusion import GaussianDiffusion, q_sample
from repaint.errors import RepaintError, RepaintWarning
from repaint.io import atomic_output, to_uint8, write_image
from repaint.losses import training_loss
from repaint.networks import unet_from_config
from repaint.sampler import repaint
from repaint.schedule import JumpSchedule
from repaint.train_config import TrainConfig

STATE_FILE = "train_state.pt"
MODEL_FILE = "model.safetensors"
# Options that may change when a run is resumed; everything else must match the checkpoint.
RESUMABLE = {"steps", "save_every", "sample_every"}


def train(
    config: TrainConfig,
    out: Path,
    *,
    device: torch.device,
    progress: bool | None = None,
    command: str = "",
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> Path:
    """Train (or resume) into `out`; returns the exported model file."""
    _prepare_output(out)
    images = torch.from_numpy(load_training_images(config.data, config.image_size))
    images = images.permute(0, 3, 1, 2).contiguous().to(device)
    with torch.random.fork_rng(devices=[]):  # the initial weights follow the run's seed
        torch.manual_seed(config.seed)
        model = unet_from_config(config.model_config()).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
    generator = make_generator(config.seed, torch.device("cpu"))
    step = _resume(out / STATE_FILE, config, model, ema, optimizer, generator, log)
    diffusion = GaussianDiffusion.from_config(
        steps=config.diffusion_steps, noise_schedule=config.noise_schedule, learn_sigma=True
    )
    tables = diffusion.tables(device)
    log(
        f"training on {len(images)} images of {config.data} ({config.image_size} px), "
        f"{sum(p.numel() for p in model.parameters()):,} parameters, step {step} of {config.steps}"
    )
    show = sys.stderr.isatty() if progress is None else progress
    recent: list[float] = []
    model.train()
    with tqdm(initial=step, total=config.steps, unit="step", disable=not show) as bar:
        while step < config.steps:
            index = torch.randint(0, len(images), (config.batch_size,), generator=generator)
            t = torch.randint(0, diffusion.num_timesteps, (config.batch_size,), generator=generator)
            noise = torch.randn((config.batch_size, *images.shape[1:]), generator=generator)
            x0 = images[index.to(device)].float() / 127.5 - 1
            t, noise = t.to(device), noise.to(device)
            x_t = q_sample(tables, x0, t, noise)
            loss = training_loss(model(x_t, t), diffusion, tables, x0, x_t, t, noise).mean()
            if not torch.isfinite(loss):
                raise RepaintError(
                    f"the loss became {float(loss)} at step {step + 1}; lower --lr and rerun "
                    f"(the run resumes from its last checkpoint in {out})"
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            # Warm-up: early on, averaging over the random initialisation would swamp the EMA.
            rate = min(config.ema_rate, (1 + step) / (10 + step))
            with torch.no_grad():
                for averaged, current in zip(ema.parameters(), model.parameters(), strict=True):
                    averaged.lerp_(current, 1 - rate)
            step += 1
            recent.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{recent[-1]:.4f}")
            if step % config.save_every == 0 or step == config.steps:
                _save_state(out / STATE_FILE, config, step, model, ema, optimizer, generator)
                _export(out, config, ema, step, command)
                if not show:
                    log(f"step {step}/{config.steps}: mean loss {np.mean(recent):.4f}, saved")
                recent.clear()
            if config.sample_every and step % config.sample_every == 0:
                _sample_grid(out / "samples" / f"step_{step:06d}.png", ema, diffusion, device)
    return out / MODEL_FILE


def _prepare_output(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise RepaintError(f"{out}: cannot write there ({error.strerror})") from None


def _resume(
    path: Path,
    config: TrainConfig,
    model: torch.nn.Module,
    ema: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
    log: Callable[[str], None],
) -> int:
    """Load the last checkpoint in the output folder, if any; returns the step reached."""
    if not path.is_file():
        return 0
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a truncated or foreign file: say which
        raise RepaintError(
            f"{path}: unreadable training checkpoint ({_first_line(error)}); delete it"
        ) from None
    expected = {"config", "model", "ema", "optimizer", "generator", "step"}
    if not isinstance(state, dict) or not expected <= set(state):
        raise RepaintError(
            f"{path}: not a training state written by `repaint train`; delete it or use "
            "another --out"
        )
    saved = state["config"] if isinstance(state["config"], dict) else {}
    different = [
        f"{field.name} ({saved.get(field.name)!r} there, {getattr(config, field.name)!r} now)"
        for field in fields(config)
        if field.name not in RESUMABLE and saved.get(field.name) != getattr(config, field.name)
    ]
    if different:
        raise RepaintError(
            f"{path.parent} holds a run with other settings: {', '.join(different)}; "
            "use the same options or another --out"
        )
    try:
        model.load_state_dict(state["model"])
        ema.load_state_dict(state["ema"])
        optimizer.load_state_dict(state["optimizer"])
        generator.set_state(state["generator"])
    except (RuntimeError, ValueError, TypeError, KeyError) as error:
        raise RepaintError(
            f"{path}: a damaged training state ({_first_line(error)}); delete it"
        ) from None
    log(f"resuming from step {state['step']} ({path})")
    return int(state["step"])


def _first_line(error: Exception) -> str:
    text = str(error).strip()
    if "Weights only load failed" in text:  # torch's advice to unpickle it is not ours
        return "it holds objects that only an unsafe load would run"
    return text.splitlines()[0] if text else type(error).__name__


def _save_state(
    path: Path,
    config: TrainConfig,
    step: int,
    model: torch.nn.Module,
    ema: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    generator: torch.Generator,
) -> None:
    state = {
        "config": asdict(config),
        "step": step,
        "model": model.state_dict(),
        "ema": ema.state_dict(),
        "optimizer": optimizer.state_dict(),
        "generator": generator.get_state(),
    }
    with atomic_output(path) as handle:
        torch.save(state, handle)


def _export(out: Path, config: TrainConfig, ema: torch.nn.Module, step: int, command: str) -> None:
    """The EMA weights as safetensors plus the sidecar config `--model` reads."""
    weights = {
        name: tensor.detach().cpu().contiguous() for name, tensor in ema.state_dict().items()
    }
    with atomic_output(out / MODEL_FILE) as handle:
        handle.write(safetensors_bytes(weights))
    sidecar = {
        **config.model_config(),
        "trained": {"data": config.data, "steps": step, "command": command, **asdict(config)},
    }
    with atomic_output(out / "model.yml", "w") as handle:
        yaml.safe_dump(sidecar, handle, sort_keys=False)


def _sample_grid(
    path: Path, ema: torch.nn.Module, diffusion: GaussianDiffusion, device: torch.device
) -> None:
    """16 unconditional samples (a plain 50-step schedule) to watch training progress."""
    size = ema.image_size
    shape = (16, 3, size, size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RepaintWarning)
        respaced = GaussianDiffusion.from_config(
            steps=diffusion.num_timesteps, timestep_respacing="50", learn_sigma=True
        )
    samples = repaint(
        lambda x, t, y: ema(x, t),
        respaced,
        torch.zeros(shape, device=device),
        torch.zeros((16, 1, size, size), device=device),
        JumpSchedule(t_T=50, jump_length=1, jump_n_sample=1),
        generator=make_generator(0, device),
    )
    pixels = to_uint8(samples)  # (16, size, size, 3)
    tiles = pixels.reshape(4, 4, size, size, 3).transpose(0, 2, 1, 3, 4)  # rows, y, cols, x, c
    write_image(np.ascontiguousarray(tiles.reshape(4 * size, 4 * size, 3)), path)
