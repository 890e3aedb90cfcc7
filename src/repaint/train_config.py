"""What `repaint train` trains, as plain data (no torch), so the command line can list its
flags and refuse bad values without loading the training code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from repaint.errors import RepaintError


@dataclass
class TrainConfig:
    """What to train on and how; the model keys are the reference's."""

    data: str = "digits"
    image_size: int = 32
    num_channels: int = 64
    num_res_blocks: int = 2
    channel_mult: str = "1,2,2"
    attention_resolutions: str = "16,8"
    num_heads: int = 4
    dropout: float = 0.0
    diffusion_steps: int = 1000
    noise_schedule: str = "linear"
    steps: int = 10_000
    batch_size: int = 32
    lr: float = 2e-4
    ema_rate: float = 0.999
    save_every: int = 500
    sample_every: int = 1000
    seed: int = 0

    def model_config(self) -> dict[str, Any]:
        """The reference-format keys that describe the trained network and its diffusion."""
        return {
            "image_size": self.image_size,
            "num_channels": self.num_channels,
            "num_res_blocks": self.num_res_blocks,
            "channel_mult": self.channel_mult,
            "attention_resolutions": self.attention_resolutions,
            "num_heads": self.num_heads,
            "num_head_channels": -1,
            "num_heads_upsample": -1,
            "learn_sigma": True,
            "class_cond": False,
            "use_scale_shift_norm": True,
            "resblock_updown": True,
            "use_new_attention_order": False,
            "dropout": self.dropout,
            "diffusion_steps": self.diffusion_steps,
            "noise_schedule": self.noise_schedule,
            "predict_xstart": False,
        }

    def check(self) -> None:
        """Refuse settings that cannot train, naming the flag, before any data is read."""

        def refuse(name: str, wanted: str) -> RepaintError:
            flag = "--" + name.replace("_", "-")
            return RepaintError(f"{flag}: must be {wanted}, got {getattr(self, name)!r}")

        for name in ("steps", "batch_size", "save_every", "num_res_blocks", "num_heads"):
            if getattr(self, name) < 1:
                raise refuse(name, "at least 1")
        if self.batch_size > MAX_BATCH:
            raise refuse("batch_size", f"at most {MAX_BATCH}")
        if self.sample_every < 0 or self.seed < 0:
            raise refuse("sample_every" if self.sample_every < 0 else "seed", "0 or more")
        if self.num_channels < GROUPS or self.num_channels % GROUPS:
            raise refuse("num_channels", f"a multiple of {GROUPS} (GroupNorm's groups)")
        mults = _numbers(self.channel_mult)
        if not mults:
            raise refuse("channel_mult", "comma-separated whole numbers of at least 1, e.g. 1,2,2")
        step = 2 ** (len(mults) - 1)
        if self.image_size < 8 or self.image_size % step:
            raise refuse(
                "image_size", f"at least 8 and a multiple of {step} for {len(mults)} levels"
            )
        if _numbers(self.attention_resolutions) is None:
            raise refuse("attention_resolutions", "comma-separated whole numbers, e.g. 16,8")
        if any(self.num_channels * mult % self.num_heads for mult in mults):
            raise refuse("num_heads", "a divisor of every level's width")
        if not 0 <= self.dropout < 1:
            raise refuse("dropout", "in [0, 1)")
        if self.diffusion_steps < 2:
            raise refuse("diffusion_steps", "at least 2")
        if self.noise_schedule not in ("linear", "cosine"):
            raise refuse("noise_schedule", "linear or cosine")
        if not self.lr > 0:
            raise refuse("lr", "more than 0")
        if not 0 <= self.ema_rate < 1:
            raise refuse("ema_rate", "in [0, 1)")


MAX_BATCH = 4096
GROUPS = 32


def _numbers(text: str) -> list[int] | None:
    """'1,2,2' -> [1, 2, 2]; None unless every part is a whole number of at least 1."""
    parts = [part.strip() for part in str(text).split(",") if part.strip()]
    if not all(part.isdigit() and int(part) >= 1 for part in parts):
        return None
    return [int(part) for part in parts]
