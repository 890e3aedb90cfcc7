"""What `repaint train` trains and how, as plain data (no torch), so the command line can
derive its flags from the fields and refuse bad values before anything is loaded.

Each field carries its help text and group; `cli/train.py` turns every field into a flag
(`--batch-size` for `batch_size`; booleans become switches), so a new option is one field.
The architecture fields default to None: "the default network, or the one `--init` names".
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from repaint.errors import RepaintError
from repaint.presets import PRESETS

# The default network when neither a flag nor `--init` gives one (a 32-64 px prior).
ARCHITECTURE_DEFAULTS: dict[str, Any] = {
    "image_size": 32,
    "num_channels": 64,
    "num_res_blocks": 2,
    "channel_mult": "1,2,2",
    "attention_resolutions": "16,8",
    "num_heads": 4,
    "diffusion_steps": 1000,
    "noise_schedule": "linear",
}
PRECISIONS = ("fp32", "bf16", "fp16")
LR_SCHEDULES = ("constant", "cosine")
EMA_WARMUPS = ("ratio", "power", "none")
MAX_BATCH = 4096
MAX_VAL_IMAGES = 256
GROUPS = 32  # GroupNorm's groups: every width must be a multiple


def option(default: Any, help: str, group: str, kind: type | None = None, **extra: Any) -> Any:
    """A config field with what its flag needs: help text, a --help group and a type (for
    fields whose default, None, does not say it)."""
    metadata = {"help": help, "group": group, "kind": kind or type(default), **extra}
    return field(default=default, metadata=metadata)


@dataclass
class TrainConfig:
    """One training run; the model keys are the reference's."""

    data: str = option("digits", "a folder of images (any depth), or: digits", "data")
    flip: bool = option(False, "random horizontal flips", "data")
    random_crop: str = option(
        "",
        "MIN,MAX: a random square of MIN..MAX of the short side, resized to the model size "
        "(alone or 1: the whole short side at a random place); default: the centre square",
        "data",
    )
    resize: bool = option(
        True, "crop at the model size without resampling (no image may be smaller)", "data"
    )
    workers: int = option(
        -1, "data loading processes (-1: one per spare CPU core, up to 8)", "data"
    )
    init: str = option(
        "",
        "start from a registered model (celeba256, ...), a checkpoint with its YAML, or a "
        "run folder; the architecture comes from it",
        "model",
    )
    init_config: str = option("", "the YAML config of an --init checkpoint without one", "model")
    image_size: int | None = option(None, "model size in pixels", "model", int)
    num_channels: int | None = option(None, "base width", "model", int)
    num_res_blocks: int | None = option(None, "residual blocks per level (depth)", "model", int)
    channel_mult: str | None = option(None, "width multipliers per level", "model", str)
    attention_resolutions: str | None = option(
        None, "resolutions with self-attention", "model", str
    )
    num_heads: int | None = option(None, "attention heads", "model", int)
    diffusion_steps: int | None = option(None, "training diffusion steps", "model", int)
    noise_schedule: str | None = option(None, "linear or cosine", "model", str)
    dropout: float = option(0.0, "dropout rate", "model")
    steps: int = option(10_000, "optimiser steps in all", "optimisation")
    batch_size: int = option(32, "images per process and micro-batch", "optimisation")
    grad_accum: int = option(
        1, "micro-batches per step (global batch: batch x accum x processes)", "optimisation"
    )
    lr: float = option(2e-4, "AdamW learning rate", "optimisation")
    lr_warmup: int = option(0, "steps of linear learning-rate warm-up from 0", "optimisation")
    lr_schedule: str = option(
        "constant", "constant, or cosine: decay to 0 at --steps", "optimisation"
    )
    grad_clip: float = option(0.0, "clip the gradient norm to this (0: never)", "optimisation")
    precision: str = option(
        "fp32",
        "fp32, bf16 or fp16 autocast (fp16 with a gradient scaler; weights, EMA and "
        "optimiser state stay fp32)",
        "optimisation",
    )
    ema_rate: str = option(
        "0.999", "EMA rate(s), e.g. 0.9999,0.999: the first is model.safetensors", "EMA"
    )
    ema_warmup: str = option(
        "ratio",
        "ratio: min(rate, (1+n)/(10+n)); power: min(rate, 1-(1+n)^-power) (k-diffusion); "
        "none: the rate from the first step",
        "EMA",
    )
    ema_power: float = option(0.6667, "the power of --ema-warmup power", "EMA")
    val_every: int = option(
        0, "inpaint the held-out images every N steps and record hole PSNR (0: never)", "validation"
    )
    val_data: str = option(
        "", "held-out images: a folder, or digits (its test split; the default there)", "validation"
    )
    val_split: float = option(
        0.0, "hold out this share of --data instead (never trained on)", "validation"
    )
    val_images: int = option(12, "held-out images to inpaint", "validation")
    val_preset: str = option("draft", f"their schedule: {', '.join(PRESETS)}", "validation")
    save_every: int = option(500, "checkpoint every N steps", "output")
    sample_every: int = option(1000, "write a sample grid every N steps (0: never)", "output")
    log_every: int = option(10, "append the mean loss to metrics.jsonl every N steps", "output")
    seed: int = option(0, "seed of all training randomness", "output")

    def architecture(self) -> dict[str, Any]:
        """The architecture flags given (not None)."""
        return {
            name: getattr(self, name)
            for name in ARCHITECTURE_DEFAULTS
            if getattr(self, name) is not None
        }

    def model_config(self) -> dict[str, Any]:
        """The reference-format keys of a network trained from scratch."""
        picked = {**ARCHITECTURE_DEFAULTS, **self.architecture()}
        return {
            "image_size": picked["image_size"],
            "num_channels": picked["num_channels"],
            "num_res_blocks": picked["num_res_blocks"],
            "channel_mult": picked["channel_mult"],
            "attention_resolutions": picked["attention_resolutions"],
            "num_heads": picked["num_heads"],
            "num_head_channels": -1,
            "num_heads_upsample": -1,
            "learn_sigma": True,
            "class_cond": False,
            "use_scale_shift_norm": True,
            "resblock_updown": True,
            "use_new_attention_order": False,
            "dropout": self.dropout,
            "diffusion_steps": picked["diffusion_steps"],
            "noise_schedule": picked["noise_schedule"],
            "predict_xstart": False,
        }

    def ema_rates(self) -> list[float]:
        return [float(part) for part in str(self.ema_rate).split(",")]

    def crop_range(self) -> tuple[float, float] | None:
        """(MIN, MAX) of `--random-crop`, None for centre crops."""
        if not self.random_crop:
            return None
        parts = [float(part) for part in str(self.random_crop).split(",")]
        return (parts[0], parts[-1])

    def check(self) -> None:
        """Refuse settings that cannot train, naming the flag, before any data is read."""
        for name in ("steps", "batch_size", "grad_accum", "save_every", "log_every"):
            if getattr(self, name) < 1:
                raise refuse(self, name, "at least 1")
        for name in ("sample_every", "seed", "lr_warmup", "val_every"):
            if getattr(self, name) < 0:
                raise refuse(self, name, "0 or more")
        if self.batch_size * self.grad_accum > MAX_BATCH:
            raise refuse(self, "batch_size", f"at most {MAX_BATCH} with --grad-accum")
        if self.workers < -1:
            raise refuse(self, "workers", "-1 (automatic) or 0 or more")
        self._check_architecture()
        if not 0 <= self.dropout < 1:
            raise refuse(self, "dropout", "in [0, 1)")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise refuse(self, "lr", "more than 0")
        if not (math.isfinite(self.grad_clip) and self.grad_clip >= 0):
            raise refuse(self, "grad_clip", "0 (never) or more")
        for name, allowed in (
            ("lr_schedule", LR_SCHEDULES),
            ("precision", PRECISIONS),
            ("ema_warmup", EMA_WARMUPS),
            ("val_preset", tuple(PRESETS)),
        ):
            if getattr(self, name) not in allowed:
                raise refuse(self, name, " or ".join(allowed))
        rates = _floats(self.ema_rate)
        if not rates or not all(0 <= rate < 1 for rate in rates) or len(set(rates)) < len(rates):
            raise refuse(self, "ema_rate", "distinct numbers in [0, 1), comma-separated")
        if not (math.isfinite(self.ema_power) and self.ema_power > 0):
            raise refuse(self, "ema_power", "more than 0")
        self._check_crop()
        if not (math.isfinite(self.val_split) and 0 <= self.val_split <= 0.5):
            raise refuse(self, "val_split", "in [0, 0.5]")
        if not 1 <= self.val_images <= MAX_VAL_IMAGES:
            raise refuse(self, "val_images", f"in 1..{MAX_VAL_IMAGES}")
        if self.val_split and self.val_data:
            raise RepaintError("--val-split: held out from --data; drop it or --val-data")
        if self.val_split and self.data == "digits":
            raise RepaintError(
                "--val-split: digits has its own held-out split; use --val-data digits"
            )
        if self.val_every and not (self.val_data or self.val_split or self.data == "digits"):
            raise RepaintError(
                "--val-every: needs images never trained on: --val-data FOLDER or "
                "--val-split FRACTION"
            )
        if self.init_config and not self.init:
            raise RepaintError("--init-config: only with --init CHECKPOINT")

    def _check_architecture(self) -> None:
        given = self.architecture()
        for name in ("num_res_blocks", "num_heads", "diffusion_steps", "image_size"):
            if name in given and given[name] < 1:
                raise refuse(self, name, "at least 1")
        if self.init:
            return  # checked against the checkpoint's own config
        picked = {**ARCHITECTURE_DEFAULTS, **given}
        channels = picked["num_channels"]
        if channels < GROUPS or channels % GROUPS:
            raise refuse(self, "num_channels", f"a multiple of {GROUPS} (GroupNorm's groups)")
        mults = _numbers(picked["channel_mult"])
        if not mults:
            raise refuse(
                self, "channel_mult", "comma-separated whole numbers of at least 1, e.g. 1,2,2"
            )
        step = 2 ** (len(mults) - 1)
        if picked["image_size"] < 8 or picked["image_size"] % step:
            raise refuse(
                self, "image_size", f"at least 8 and a multiple of {step} for {len(mults)} levels"
            )
        if _numbers(picked["attention_resolutions"]) is None:
            raise refuse(self, "attention_resolutions", "comma-separated whole numbers, e.g. 16,8")
        if any(channels * mult % picked["num_heads"] for mult in mults):
            raise refuse(self, "num_heads", "a divisor of every level's width")
        if picked["diffusion_steps"] < 2:
            raise refuse(self, "diffusion_steps", "at least 2")
        if picked["noise_schedule"] not in ("linear", "cosine"):
            raise refuse(self, "noise_schedule", "linear or cosine")

    def _check_crop(self) -> None:
        if not self.random_crop:
            return
        parts = _floats(self.random_crop)
        if not parts or len(parts) > 2 or not all(0 < part <= 1 for part in parts):
            raise refuse(self, "random_crop", "MIN,MAX shares of the short side in (0, 1]")
        if parts[0] > parts[-1]:
            raise refuse(self, "random_crop", "MIN,MAX with MIN at most MAX")
        if not self.resize and parts != [1.0] * len(parts):
            raise RepaintError(
                f"--random-crop {self.random_crop}: a share of the short side resizes; with "
                "--no-resize give --random-crop alone (a model-size square at a random place)"
            )

    def resume_view(self) -> dict[str, Any]:
        """The settings a resumed run must share, architecture defaults filled in."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name not in RESUMABLE}
        if not self.init:
            values.update({**ARCHITECTURE_DEFAULTS, **self.architecture()})
        if self.lr_schedule == "cosine":
            values["steps"] = self.steps  # the decay runs over --steps
        values["ema_rate"] = self.ema_rates()
        return values


# Options that may change when a run is resumed (they change no weight); the rest must match.
RESUMABLE = {
    "steps",
    "save_every",
    "sample_every",
    "log_every",
    "workers",
    "val_every",
    "val_data",
    "val_images",
    "val_preset",
}


def resume_view_of(saved: dict[str, Any]) -> dict[str, Any]:
    """A saved config's `resume_view`; keys an older release did not have take their
    defaults, so its runs still resume."""
    known = {f.name for f in fields(TrainConfig)}
    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    values = {**defaults, **{k: v for k, v in saved.items() if k in known}}
    if isinstance(values.get("ema_rate"), float):
        values["ema_rate"] = repr(values["ema_rate"])
    try:
        return TrainConfig(**values).resume_view()
    except (TypeError, ValueError):
        return {}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def refuse(config: TrainConfig, name: str, wanted: str) -> RepaintError:
    shown = f"--no-{name.replace('_', '-')}" if name == "resize" else flag(name)
    return RepaintError(f"{shown}: must be {wanted}, got {getattr(config, name)!r}")


def _numbers(text: str) -> list[int] | None:
    """'1,2,2' -> [1, 2, 2]; None unless every part is a whole number of at least 1."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not all(part.isdigit() and int(part) >= 1 for part in parts):
        return None
    return [int(part) for part in parts]


def _floats(text: str) -> list[float] | None:
    try:
        values = [float(part) for part in str(text).split(",")]
    except ValueError:
        return None
    return values if all(math.isfinite(value) for value in values) else None
