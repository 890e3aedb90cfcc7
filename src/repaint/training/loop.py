"""`repaint train`: a guided-diffusion UNet prior for your own images, from one process to
many machines under `torchrun` (PyTorch's DistributedDataParallel: NCCL on GPUs, Gloo on
CPU), with autocast mixed precision, gradient accumulation, fine-tuning and an inpainting
score as the signal.

The network, checkpoint format and config keys are those of the published models, so the
result loads through exactly the same path (`--model out/model.safetensors`). Every random
draw follows the run's seed (see `training.data`): an interrupted run, restarted with the
same command (at the same number of processes), continues from its last checkpoint and ends
with the same weights as an uninterrupted one. SIGINT/SIGTERM (Ctrl-C, a scheduler's
preemption) finish the step, save, and stop.
"""

from __future__ import annotations

import contextlib
import copy
import math
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn
from tqdm.auto import tqdm

from repaint.device import make_generator, resolve_device
from repaint.diffusion import q_sample
from repaint.distributed import Context
from repaint.errors import RepaintError, RepaintWarning
from repaint.io import check_output_folder, write_image
from repaint.networks import load_checkpoint, unet_from_config
from repaint.prior import diffusion_from_config
from repaint.training.config import TrainConfig
from repaint.training.data import Data, Layout, Planner, auto_workers, batches, open_data
from repaint.training.losses import training_loss
from repaint.training.optim import dropout_seed, optimise
from repaint.training.pretrained import Pretrained, resolve_init
from repaint.training.state import (
    MODEL_FILE,
    STATE_FILE,
    Parts,
    RunIdentity,
    append_metrics,
    export,
    read_metrics,
    resume,
    save_state,
    trim_metrics,
)
from repaint.training.validation import (
    HeldOut,
    check_held_out,
    held_out_set,
    plot_metrics,
    plotting_available,
    sample_grid,
    validate,
)

AUTOCAST = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class TrainingStopped(KeyboardInterrupt):
    """A signal asked the run to stop; it saved its state at `step`."""

    def __init__(self, step: int) -> None:
        super().__init__(step)
        self.step = step


def train(
    config: TrainConfig,
    out: Path,
    *,
    device: str | torch.device = "auto",
    progress: bool | None = None,
    command: str = "",
    log: Callable[[str], None] = lambda message: print(message, file=sys.stderr),
) -> Path:
    """Train (or resume) into `out`; returns the exported model file."""
    config.check()
    check_output_folder(out)
    context = Context.from_env()
    try:
        return _train(config, Path(out), context, device, progress, command, log)
    finally:
        context.close()


def _train(
    config: TrainConfig,
    out: Path,
    context: Context,
    device_name: str | torch.device,
    progress: bool | None,
    command: str,
    log: Callable[[str], None],
) -> Path:
    device = resolve_device(context.device(str(device_name)))
    pretrained = resolve_init(config) if config.init else None
    model_config = pretrained.config if pretrained else config.model_config()
    size = int(model_config["image_size"])
    data = _on_main(context, lambda: _open(config, size))
    if config.val_every:
        check_held_out(data.held_out, size)
    main = context.is_main
    if main:
        _prepare_output(out)
    parts = _build(config, model_config, pretrained, device)
    identity = RunIdentity(context.world, data.fingerprint)
    step = resume(out / STATE_FILE, config, parts, identity, log if main else _quiet)
    network: nn.Module = parts.model
    if context.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        network = nn.parallel.DistributedDataParallel(parts.model, device_ids=ids)
    layout = Layout(config.batch_size, config.grad_accum, context.world, context.rank)
    diffusion = diffusion_from_config(model_config, int(model_config["diffusion_steps"]))
    tables = diffusion.tables(device)
    record = _record(config, pretrained, layout, command)
    held = None
    if config.val_every and main:
        held = held_out_set(data.held_out, config.seed, config.val_preset, device)
    plots = main and config.val_every > 0 and plotting_available()
    if main:
        trim_metrics(out, step)
        append_metrics(out, {"step": step, "event": "start", **record["run"]})
        log(
            f"training on {len(data.training):,} images of {data.description} ({size} px), "
            f"{sum(p.numel() for p in parts.model.parameters()):,} parameters, global batch "
            f"{layout.global_batch} = {layout.batch} x {layout.accum} accumulated x "
            f"{layout.world} process(es), {config.precision}, step {step} of {config.steps}"
        )
        if held is not None and step == 0:
            _validate(out, parts.emas[0], model_config, held, 0, plots)
    planner = Planner(
        parts.generator,
        layout,
        len(data.training),
        diffusion.num_timesteps,
        (3, size, size),
        flip=config.flip,
        crop_range=config.crop_range(),
    )
    workers = auto_workers(config.workers, context.world, data.training.in_memory)
    stream = batches(data.training, planner, workers)
    autocast = AUTOCAST[config.precision]
    show = main and (sys.stderr.isatty() if progress is None else progress)
    seen: set[str] = set()
    recent: list[float] = []  # losses since the last checkpoint message
    since_log: list[float] = []  # and since the last metrics line
    busy, done_here = 0.0, 0  # seconds in training steps (not saving or validating)
    with (
        _stop_on_signal() as stop,
        tqdm(initial=step, total=config.steps, unit="step", disable=not show) as bar,
    ):
        while step < config.steps:
            began = time.perf_counter()
            draws, losses = None, []
            for micro in range(layout.accum):
                images, failed = next(stream)
                _report(failed, seen)
                if images is None:
                    raise RepaintError(
                        f"--data {config.data}: no image of a batch could be decoded"
                    )
                draws = draws or planner.pending.popleft()
                x0 = images.to(device).float() / 127.5 - 1
                t, noise = draws.t[micro].to(device), draws.noise[micro].to(device)
                x_t = q_sample(tables, x0, t, noise)
                last = micro == layout.accum - 1
                sync = network.no_sync() if context.world > 1 and not last else _nothing()
                with sync, dropout_seed(config, model_config, step, context.rank, device):
                    with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
                        output = network(x_t, t)
                    loss = training_loss(output.float(), diffusion, tables, x0, x_t, t, noise)
                    loss = loss.mean()
                    parts.scaler.scale(loss / layout.accum).backward()
                losses.append(loss.detach())
            mean_loss, stopping = _reduce(torch.stack(losses).mean(), stop.is_set(), context)
            if not math.isfinite(mean_loss):
                raise RepaintError(
                    f"the loss became {mean_loss} at step {step + 1}; lower --lr and rerun "
                    f"(the run resumes from its last checkpoint in {out})"
                )
            optimise(config, parts, step)
            step += 1
            done_here += 1
            recent.append(mean_loss)
            since_log.append(mean_loss)
            bar.update(1)
            busy += time.perf_counter() - began
            rate = done_here * layout.global_batch / busy
            bar.set_postfix(loss=f"{mean_loss:.4f}", images_per_s=f"{rate:.1f}")
            if not main:
                if stopping:
                    dist.barrier()  # exit only once rank 0 has saved (torchrun stops the rest)
                    raise TrainingStopped(step)
                continue
            if step % config.log_every == 0 or step == config.steps or stopping:
                lr = parts.optimizer.param_groups[0]["lr"]
                append_metrics(
                    out,
                    {
                        "step": step,
                        "loss": sum(since_log) / len(since_log),
                        "lr": lr,
                        "images_per_second": round(rate, 2),
                        "seconds": round(busy, 4),
                    },
                )
                since_log.clear()
            if step % config.save_every == 0 or step == config.steps or stopping:
                save_state(out / STATE_FILE, config, step, parts, draws.state, identity)
                export(out, model_config, parts.emas, config.ema_rates(), record)
                if not show:
                    log(
                        f"step {step}/{config.steps}: mean loss {sum(recent) / len(recent):.4f}, "
                        f"{rate:.1f} images/s, saved"
                    )
                recent.clear()
            if config.sample_every and step % config.sample_every == 0:
                sample_grid(out / "samples" / f"step_{step:06d}.png", parts.emas[0], model_config)
            if held is not None and step % config.val_every == 0:
                _validate(out, parts.emas[0], model_config, held, step, plots)
            if stopping:
                if context.world > 1:
                    dist.barrier()
                raise TrainingStopped(step)
    return out / MODEL_FILE


def _quiet(message: str) -> None:
    del message


def _open(config: TrainConfig, size: int) -> Data:
    return open_data(
        config.data,
        size,
        resize=config.resize,
        val_split=config.val_split,
        val_data=config.val_data,
        val_images=config.val_images if config.val_every else 0,
    )


def _on_main(context: Context, work: Callable[[], Any]) -> Any:
    """`work` on rank 0 only (one scan of a large folder, one set of warnings), its result
    (or its one-line error) on every rank."""
    if context.world == 1:
        return work()
    outcome: tuple[str, Any] = ("error", "rank 0 did not answer")
    if context.is_main:
        try:
            outcome = ("ok", work())
        except RepaintError as error:
            outcome = ("error", str(error))
    outcome = context.broadcast(outcome)
    if outcome[0] == "error":
        raise RepaintError(outcome[1])
    return outcome[1]


def _prepare_output(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / ".write_test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise RepaintError(f"{out}: cannot write there ({error.strerror})") from None


def _build(
    config: TrainConfig,
    model_config: dict[str, Any],
    pretrained: Pretrained | None,
    device: torch.device,
) -> Parts:
    with torch.random.fork_rng(devices=[]):  # the initial weights follow the run's seed
        torch.manual_seed(config.seed)
        model = unet_from_config(model_config)
    if pretrained is not None:
        load_checkpoint(model, pretrained.checkpoint, f"--init {config.init}")
    model = model.to(device)
    emas = [copy.deepcopy(model).requires_grad_(False) for _ in config.ema_rates()]
    return Parts(
        model=model,
        emas=emas,
        optimizer=torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0),
        generator=make_generator(config.seed, torch.device("cpu")),
        scaler=torch.amp.GradScaler(device.type, enabled=config.precision == "fp16"),
    )


def _record(
    config: TrainConfig, pretrained: Pretrained | None, layout: Layout, command: str
) -> dict[str, Any]:
    """How the exported weights were made, for `model.yml`."""
    run = {
        "global_batch": layout.global_batch,
        "world_size": layout.world,
        "precision": config.precision,
    }
    init = None
    if pretrained is not None:
        init = {
            "name": pretrained.name,
            "path": str(pretrained.checkpoint),
            "sha256": pretrained.sha256,
        }
    return {**asdict(config), "command": command, "initialised_from": init, "run": run}


def _reduce(loss: Tensor, stop: bool, context: Context) -> tuple[float, bool]:
    """The global mean loss, and whether any process was asked to stop (one collective)."""
    if context.world == 1:
        return loss.item(), stop
    values = torch.stack([loss.float(), torch.tensor(float(stop), device=loss.device)])
    dist.all_reduce(values)
    return values[0].item() / context.world, bool(values[1].item() > 0)


def _validate(
    out: Path, ema: nn.Module, model_config: dict[str, Any], held: HeldOut, step: int, plots: bool
) -> None:
    metrics, grid = validate(ema, model_config, held)
    append_metrics(out, {"step": step, **metrics})
    write_image(grid, out / "val" / f"step_{step:06d}.png")
    if plots:
        plot_metrics(read_metrics(out), out / "metrics.png")


def _report(failed: list[str], seen: set[str]) -> None:
    for message in failed:
        if message not in seen:
            seen.add(message)
            warnings.warn(
                f"{message}; skipped (the next image takes its place)", RepaintWarning, stacklevel=3
            )


@contextlib.contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextlib.contextmanager
def _stop_on_signal() -> Iterator[threading.Event]:
    """SIGINT and SIGTERM set the event (the loop saves and stops after the step); a second
    SIGINT interrupts at once. Signals are left alone outside the main thread."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return

    def request(number: int, frame: object) -> None:
        del frame
        if stop.is_set() and number == signal.SIGINT:
            raise KeyboardInterrupt
        stop.set()

    previous = {
        number: signal.signal(number, request) for number in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
