"""What `repaint train` trains, as plain data (no torch), so the command line can list its
flags and refuse bad values without loading the training code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
