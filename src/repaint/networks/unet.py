"""The guided-diffusion (ADM) UNet used by RePaint, and its factory functions.

The module tree reproduces the reference's exactly, so the published checkpoints
(``celeba256_250000.pt``, ``places256_300000.pt``, ``256x256_diffusion.pt``, ...) load strictly.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from repaint.networks.layers import (
    BlockFactory,
    EmbedSequential,
    GroupNorm32,
    Upsample,
    build_encoder_half,
    cast_convs,
    time_embed_mlp,
    timestep_embedding,
    zero_init,
)

NUM_CLASSES = 1000
"""Number of classes of class-conditional models (ImageNet), as in the reference."""

DEFAULT_CHANNEL_MULT: dict[int, tuple[float, ...]] = {
    512: (0.5, 1, 1, 2, 2, 4, 4),
    256: (1, 1, 2, 2, 4, 4),
    128: (1, 1, 2, 3, 4),
    64: (1, 2, 3, 4),
}
"""Per-level width multipliers the reference picks when ``channel_mult`` is empty."""


class UNetModel(nn.Module):
    """UNet with timestep embedding, self-attention and optional class conditioning.

    Arguments follow the reference. ``attention_resolutions`` holds downsampling *factors*
    (``image_size // resolution``; the factories convert from resolutions). ``dtype`` is the
    torso's precision (see :meth:`set_torso_dtype`); the interface stays in the input's dtype.
    """

    def __init__(
        self,
        image_size: int,
        in_channels: int,
        model_channels: int,
        out_channels: int,
        num_res_blocks: int,
        attention_resolutions: Collection[int],
        *,
        dropout: float = 0.0,
        channel_mult: Sequence[float] = (1, 2, 4, 8),
        conv_resample: bool = True,
        num_classes: int | None = None,
        num_heads: int = 1,
        num_head_channels: int = -1,
        num_heads_upsample: int = -1,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        use_new_attention_order: bool = False,
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        self.image_size = image_size
        self.in_channels = in_channels
        self.model_channels = model_channels
        self.out_channels = out_channels
        self.num_classes = num_classes

        self.time_embed = time_embed_mlp(model_channels)
        emb_channels = 4 * model_channels
        if num_classes is not None:
            self.label_emb = nn.Embedding(num_classes, emb_channels)

        blocks = BlockFactory(
            emb_channels=emb_channels,
            dropout=dropout,
            use_scale_shift_norm=use_scale_shift_norm,
            num_head_channels=num_head_channels,
            use_new_attention_order=use_new_attention_order,
        )
        encoder = build_encoder_half(
            blocks,
            in_channels=in_channels,
            model_channels=model_channels,
            num_res_blocks=num_res_blocks,
            attention_resolutions=attention_resolutions,
            channel_mult=channel_mult,
            conv_resample=conv_resample,
            resblock_updown=resblock_updown,
            num_heads=num_heads,
        )
        self.input_blocks = encoder.input_blocks
        self.middle_block = encoder.middle_block

        # Mirror image of the encoder: each level has one extra block, fed the concatenation
        # of the running features and the matching skip connection.
        heads_up = num_heads if num_heads_upsample == -1 else num_heads_upsample
        skip_channels = list(encoder.skip_channels)
        channels, downsample = encoder.channels, encoder.downsample
        self.output_blocks = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mult))):
            for i in range(num_res_blocks + 1):
                out_ch = int(mult * model_channels)
                layers: list[nn.Module] = [blocks.res(channels + skip_channels.pop(), out_ch)]
                channels = out_ch
                if downsample in attention_resolutions:
                    layers.append(blocks.attention(channels, heads_up))
                if level and i == num_res_blocks:
                    layers.append(
                        blocks.res(channels, up=True)
                        if resblock_updown
                        else Upsample(channels, conv_resample)
                    )
                    downsample //= 2
                self.output_blocks.append(EmbedSequential(*layers))

        self.out = nn.Sequential(
            GroupNorm32(channels),
            nn.SiLU(),
            zero_init(nn.Conv2d(channels, out_channels, 3, padding=1)),
        )
        self.set_torso_dtype(dtype)

    @property
    def torso_dtype(self) -> torch.dtype:
        """Precision of the input, middle and output blocks."""
        return self.input_blocks[0][0].weight.dtype

    def set_torso_dtype(self, dtype: torch.dtype) -> None:
        """Run the torso in ``dtype`` (e.g. ``torch.float16`` on GPU, ``torch.bfloat16`` on CPU).

        Equivalent to the reference's ``convert_to_fp16``: only convolution weights change
        precision; norms, ``time_embed``, ``label_emb`` and ``out`` stay float32. State-dict keys
        are unchanged, and loading a float32 checkpoint afterwards casts it.
        """
        for part in (self.input_blocks, self.middle_block, self.output_blocks):
            cast_convs(part, dtype)

    def forward(self, x: Tensor, timesteps: Tensor, y: Tensor | None = None) -> Tensor:
        """Predict ``[N, out_channels, H, W]`` for noisy images ``x`` at the given steps.

        ``timesteps`` are original diffusion steps (``[N]`` or a scalar, may be fractional);
        ``y`` holds ``[N]`` class labels and is required exactly when the model is
        class-conditional.
        """
        if self.num_classes is not None and y is None:
            raise ValueError("class-conditional model needs class labels y")
        if self.num_classes is None and y is not None:
            raise ValueError("unconditional model got class labels y; pass y=None")
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(x.shape[0])
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        if y is not None:
            emb = emb + self.label_emb(y)

        skips = []
        h = x.to(self.torso_dtype)
        for block in self.input_blocks:
            h = block(h, emb)
            skips.append(h)
        h = self.middle_block(h, emb)
        for block in self.output_blocks:
            h = block(torch.cat([h, skips.pop()], dim=1), emb)
        return self.out(h.to(x.dtype))


def parse_channel_mult(channel_mult: str | Sequence[float], image_size: int) -> tuple[float, ...]:
    """Turn ``""`` (per-size default), ``"1,2,2"`` or a sequence into multipliers."""
    if not isinstance(channel_mult, str):
        return tuple(channel_mult)
    if channel_mult == "":
        if image_size not in DEFAULT_CHANNEL_MULT:
            raise ValueError(
                f"no default channel_mult for image_size={image_size} "
                f"(defaults exist for {sorted(DEFAULT_CHANNEL_MULT)}); set channel_mult"
            )
        return DEFAULT_CHANNEL_MULT[image_size]
    values = (float(token) for token in channel_mult.split(","))
    return tuple(int(v) if v.is_integer() else v for v in values)


def attention_downsample_factors(
    attention_resolutions: str | int | Iterable[int], image_size: int
) -> tuple[int, ...]:
    """Convert resolutions (``"32,16,8"``; YAML may give a bare int) to downsampling factors."""
    if isinstance(attention_resolutions, int):
        resolutions = [attention_resolutions]
    elif isinstance(attention_resolutions, str):
        resolutions = [int(token) for token in attention_resolutions.split(",") if token.strip()]
    else:
        resolutions = list(attention_resolutions)
    return tuple(image_size // res for res in resolutions)


def resolve_dtype(use_fp16: bool, dtype: torch.dtype | None) -> torch.dtype:
    """An explicit ``dtype`` wins over the reference's ``use_fp16`` flag."""
    if dtype is not None:
        return dtype
    return torch.float16 if use_fp16 else torch.float32


def create_unet(
    image_size: int,
    num_channels: int,
    num_res_blocks: int,
    channel_mult: str | Sequence[float] = "",
    learn_sigma: bool = False,
    class_cond: bool = False,
    attention_resolutions: str | int | Iterable[int] = "16",
    num_heads: int = 1,
    num_head_channels: int = -1,
    num_heads_upsample: int = -1,
    use_scale_shift_norm: bool = False,
    dropout: float = 0.0,
    resblock_updown: bool = False,
    use_fp16: bool = False,
    use_new_attention_order: bool = False,
    *,
    dtype: torch.dtype | None = None,
) -> UNetModel:
    """Build the UNet from the reference's ``create_model`` hyper-parameters (same defaults).

    RGB in; 3 output channels, or 6 (noise and variance interpolation) with ``learn_sigma``.
    ``dtype`` overrides ``use_fp16`` for the torso precision.
    """
    return UNetModel(
        image_size=image_size,
        in_channels=3,
        model_channels=num_channels,
        out_channels=6 if learn_sigma else 3,
        num_res_blocks=num_res_blocks,
        attention_resolutions=attention_downsample_factors(attention_resolutions, image_size),
        dropout=dropout,
        channel_mult=parse_channel_mult(channel_mult, image_size),
        num_classes=NUM_CLASSES if class_cond else None,
        num_heads=num_heads,
        num_head_channels=num_head_channels,
        num_heads_upsample=num_heads_upsample,
        use_scale_shift_norm=use_scale_shift_norm,
        resblock_updown=resblock_updown,
        use_new_attention_order=use_new_attention_order,
        dtype=resolve_dtype(use_fp16, dtype),
    )


UNET_CONFIG_KEYS = (
    "image_size",
    "num_channels",
    "num_res_blocks",
    "channel_mult",
    "learn_sigma",
    "class_cond",
    "attention_resolutions",
    "num_heads",
    "num_head_channels",
    "num_heads_upsample",
    "use_scale_shift_norm",
    "dropout",
    "resblock_updown",
    "use_fp16",
    "use_new_attention_order",
)
"""Keys of a reference-format config that :func:`unet_from_config` reads."""


def pick_config(
    conf: Mapping[str, Any], keys: Sequence[str], required: Sequence[str]
) -> dict[str, Any]:
    """Select ``keys`` from a config that also holds unrelated settings."""
    missing = [key for key in required if key not in conf]
    if missing:
        raise KeyError(f"config lacks required network keys: {', '.join(missing)}")
    return {key: conf[key] for key in keys if key in conf}


def unet_from_config(conf: Mapping[str, Any], *, dtype: torch.dtype | None = None) -> UNetModel:
    """Build the UNet from a reference-format config dict, ignoring unrelated keys.

    Absent optional keys take :func:`create_unet`'s defaults.
    """
    picked = pick_config(conf, UNET_CONFIG_KEYS, ("image_size", "num_channels", "num_res_blocks"))
    return create_unet(**picked, dtype=dtype)
