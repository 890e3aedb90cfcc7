"""Building blocks shared by the guided-diffusion (ADM) UNet and its noisy-image classifier.

Every attribute name and ``nn.Sequential`` index below is load-bearing: together they spell
the state-dict keys of the published checkpoints (``input_blocks.1.0.in_layers.2.weight``,
``middle_block.1.qkv.weight``, ...), so renaming or reordering anything breaks loading.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

ModuleT = TypeVar("ModuleT", bound=nn.Module)


class GroupNorm32(nn.GroupNorm):
    """GroupNorm with 32 groups that always normalises in float32.

    Statistics over thousands of half-precision values are too lossy, so a low-precision torso
    keeps its norms (and their parameters) in float32 and only casts the result back.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(32, channels)

    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x.float()).to(x.dtype)


def zero_init(module: ModuleT) -> ModuleT:
    """Zero all parameters, so a residual branch or output head starts out contributing nothing."""
    with torch.no_grad():
        for param in module.parameters():
            param.zero_()
    return module


def timestep_embedding(timesteps: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """Sinusoidal embedding ``[cos(t * f_i), sin(t * f_i)]`` of (possibly fractional) timesteps.

    ``f_i = max_period ** (-i / half)`` for ``i < half = dim // 2``; an odd ``dim`` gets a zero
    column. The frequencies are computed on the CPU and then moved, as the reference does, so
    they are bit-identical on every device.
    """
    half = dim // 2
    exponents = torch.arange(half, dtype=torch.float32, device="cpu") / half
    freqs = torch.exp(-math.log(max_period) * exponents).to(timesteps.device)
    args = timesteps[:, None].float() * freqs[None]
    embedding = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        embedding = F.pad(embedding, (0, 1))
    return embedding


def time_embed_mlp(model_channels: int) -> nn.Sequential:
    """The MLP lifting the sinusoidal embedding to ``4 * model_channels`` (``time_embed``)."""
    emb_channels = 4 * model_channels
    return nn.Sequential(
        nn.Linear(model_channels, emb_channels),
        nn.SiLU(),
        nn.Linear(emb_channels, emb_channels),
    )


def cast_convs(module: nn.Module, dtype: torch.dtype) -> None:
    """Store every convolution inside ``module`` in ``dtype``.

    This is the reference's half-precision recipe: convolutions (the bulk of the compute) run in
    low precision, while norms and the embedding linears keep float32 parameters.
    """
    if not dtype.is_floating_point:
        raise ValueError(f"torso dtype must be a floating point type, got {dtype}")
    for child in module.modules():
        if isinstance(child, (nn.Conv1d, nn.Conv2d)):
            child.to(dtype)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, optionally followed by a 3x3 convolution."""

    def __init__(self, channels: int, use_conv: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1) if use_conv else None

    def forward(self, x: Tensor) -> Tensor:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
        return x if self.conv is None else self.conv(x)


class Downsample(nn.Module):
    """2x downsampling by a strided 3x3 convolution, or by average pooling without one."""

    def __init__(self, channels: int, use_conv: bool) -> None:
        super().__init__()
        self.op = (
            nn.Conv2d(channels, channels, 3, stride=2, padding=1) if use_conv else nn.AvgPool2d(2)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.op(x)


class ResBlock(nn.Module):
    """Residual block conditioned on the timestep embedding, optionally resampling by 2.

    With ``use_scale_shift_norm`` the embedding modulates the second norm FiLM-style
    (``norm(h) * (1 + scale) + shift``); otherwise it is added before that norm.
    """

    def __init__(
        self,
        channels: int,
        emb_channels: int,
        dropout: float,
        out_channels: int | None = None,
        *,
        use_scale_shift_norm: bool = False,
        up: bool = False,
        down: bool = False,
    ) -> None:
        super().__init__()
        out_channels = out_channels or channels
        self.use_scale_shift_norm = use_scale_shift_norm
        self.in_layers = nn.Sequential(
            GroupNorm32(channels),
            nn.SiLU(),
            nn.Conv2d(channels, out_channels, 3, padding=1),
        )
        # Resampling happens between the activation and the conv of ``in_layers`` (and on the
        # skip path); the identity keeps a single code path for plain blocks.
        self.h_upd: nn.Module
        self.x_upd: nn.Module
        if up:
            self.h_upd, self.x_upd = Upsample(channels, False), Upsample(channels, False)
        elif down:
            self.h_upd, self.x_upd = Downsample(channels, False), Downsample(channels, False)
        else:
            self.h_upd = self.x_upd = nn.Identity()
        self.emb_layers = nn.Sequential(
            nn.SiLU(),
            nn.Linear(emb_channels, 2 * out_channels if use_scale_shift_norm else out_channels),
        )
        self.out_layers = nn.Sequential(
            GroupNorm32(out_channels),
            nn.SiLU(),
            nn.Dropout(dropout),
            zero_init(nn.Conv2d(out_channels, out_channels, 3, padding=1)),
        )
        self.skip_connection = (
            nn.Identity() if out_channels == channels else nn.Conv2d(channels, out_channels, 1)
        )

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:
        in_norm, in_act, in_conv = self.in_layers
        h = in_conv(self.h_upd(in_act(in_norm(x))))
        x = self.x_upd(x)
        emb_out = self.emb_layers(emb).to(h.dtype)[:, :, None, None]
        out_norm, out_act, out_dropout, out_conv = self.out_layers
        if self.use_scale_shift_norm:
            scale, shift = emb_out.chunk(2, dim=1)
            h = out_norm(h) * (1 + scale) + shift
        else:
            h = out_norm(h + emb_out)
        return self.skip_connection(x) + out_conv(out_dropout(out_act(h)))


def _attend(q: Tensor, k: Tensor, v: Tensor) -> Tensor:
    """Softmax attention over ``[batch, heads, channels, tokens]`` tensors (same layout out).

    SDPA's default scale ``1/sqrt(channels)`` equals the reference's scaling of both q and k by
    ``channels ** -0.25``; the fused kernels also accumulate the softmax in float32.
    """
    out = F.scaled_dot_product_attention(q.mT, k.mT, v.mT)
    return out.mT


class QKVAttentionLegacy(nn.Module):
    """Multi-head attention on packed qkv laid out head-major: ``[head][q|k|v][channel]``.

    This is the layout of all published guided-diffusion / RePaint checkpoints.
    """

    def __init__(self, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads

    def forward(self, qkv: Tensor) -> Tensor:
        """Map ``[N, 3 * H * C, T]`` packed qkv to ``[N, H * C, T]``."""
        batch, width, length = qkv.shape
        q, k, v = qkv.reshape(batch, self.n_heads, 3, width // (3 * self.n_heads), length).unbind(2)
        return _attend(q, k, v).reshape(batch, -1, length)


class QKVAttention(nn.Module):
    """Multi-head attention on packed qkv laid out q/k/v-major: ``[q|k|v][head][channel]``."""

    def __init__(self, n_heads: int) -> None:
        super().__init__()
        self.n_heads = n_heads

    def forward(self, qkv: Tensor) -> Tensor:
        """Map ``[N, 3 * H * C, T]`` packed qkv to ``[N, H * C, T]``."""
        batch, width, length = qkv.shape
        q, k, v = qkv.reshape(batch, 3, self.n_heads, width // (3 * self.n_heads), length).unbind(1)
        return _attend(q, k, v).reshape(batch, -1, length)


class AttentionBlock(nn.Module):
    """Residual self-attention over all spatial positions.

    ``num_head_channels`` (when not -1) fixes the width per head and overrides ``num_heads``.
    """

    def __init__(
        self,
        channels: int,
        num_heads: int = 1,
        num_head_channels: int = -1,
        use_new_attention_order: bool = False,
    ) -> None:
        super().__init__()
        if num_head_channels != -1:
            if channels % num_head_channels:
                raise ValueError(
                    f"{channels} attention channels are not divisible by "
                    f"num_head_channels={num_head_channels}"
                )
            num_heads = channels // num_head_channels
        elif channels % num_heads:
            raise ValueError(
                f"{channels} attention channels are not divisible by num_heads={num_heads}"
            )
        self.norm = GroupNorm32(channels)
        self.qkv = nn.Conv1d(channels, 3 * channels, 1)
        self.attention = (
            QKVAttention(num_heads) if use_new_attention_order else QKVAttentionLegacy(num_heads)
        )
        self.proj_out = zero_init(nn.Conv1d(channels, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        batch, channels, *spatial = x.shape
        x = x.reshape(batch, channels, -1)
        h = self.proj_out(self.attention(self.qkv(self.norm(x))))
        return (x + h).reshape(batch, channels, *spatial)


class AttentionPool2d(nn.Module):
    """CLIP-style pooling: the spatial mean, prepended as an extra token, attends to all
    positions, and its attended value is projected to ``output_dim`` logits."""

    def __init__(
        self, spatial_dim: int, embed_dim: int, num_head_channels: int, output_dim: int
    ) -> None:
        super().__init__()
        self.positional_embedding = nn.Parameter(
            torch.randn(embed_dim, spatial_dim**2 + 1) / embed_dim**0.5
        )
        self.qkv_proj = nn.Conv1d(embed_dim, 3 * embed_dim, 1)
        self.c_proj = nn.Conv1d(embed_dim, output_dim, 1)
        self.attention = QKVAttention(embed_dim // num_head_channels)

    def forward(self, x: Tensor) -> Tensor:
        batch, channels = x.shape[:2]
        x = x.reshape(batch, channels, -1)
        x = torch.cat([x.mean(dim=-1, keepdim=True), x], dim=-1)
        x = x + self.positional_embedding.to(x.dtype)
        return self.c_proj(self.attention(self.qkv_proj(x)))[:, :, 0]


class EmbedSequential(nn.Sequential):
    """``nn.Sequential`` that also hands the timestep embedding to its residual blocks."""

    def forward(self, x: Tensor, emb: Tensor) -> Tensor:  # type: ignore[override]
        for layer in self:
            x = layer(x, emb) if isinstance(layer, ResBlock) else layer(x)
        return x


@dataclass(frozen=True)
class BlockFactory:
    """Hyper-parameters shared by every residual and attention block of one network."""

    emb_channels: int
    dropout: float
    use_scale_shift_norm: bool
    num_head_channels: int
    use_new_attention_order: bool

    def res(
        self,
        channels: int,
        out_channels: int | None = None,
        *,
        up: bool = False,
        down: bool = False,
    ) -> ResBlock:
        return ResBlock(
            channels,
            self.emb_channels,
            self.dropout,
            out_channels,
            use_scale_shift_norm=self.use_scale_shift_norm,
            up=up,
            down=down,
        )

    def attention(self, channels: int, num_heads: int) -> AttentionBlock:
        return AttentionBlock(
            channels, num_heads, self.num_head_channels, self.use_new_attention_order
        )


class EncoderHalf(NamedTuple):
    """The downsampling half of the UNet plus its bottleneck, shared by both networks."""

    input_blocks: nn.ModuleList
    middle_block: EmbedSequential
    skip_channels: list[int]
    """Output channels of each input block, in order (the UNet's skip connections)."""
    channels: int
    """Channels at the bottleneck."""
    downsample: int
    """Total downsampling factor at the bottleneck."""


def build_encoder_half(
    blocks: BlockFactory,
    *,
    in_channels: int,
    model_channels: int,
    num_res_blocks: int,
    attention_resolutions: Collection[int],
    channel_mult: Sequence[float],
    conv_resample: bool,
    resblock_updown: bool,
    num_heads: int,
) -> EncoderHalf:
    """Build ``input_blocks`` and ``middle_block``.

    Each level holds ``num_res_blocks`` residual blocks of width ``mult * model_channels``
    (followed by attention where the current downsampling factor is in
    ``attention_resolutions``); every level but the last ends with a 2x downsampling block.
    """
    channels = int(channel_mult[0] * model_channels)
    input_blocks = nn.ModuleList([EmbedSequential(nn.Conv2d(in_channels, channels, 3, padding=1))])
    skip_channels = [channels]
    downsample = 1
    for level, mult in enumerate(channel_mult):
        for _ in range(num_res_blocks):
            out_channels = int(mult * model_channels)
            layers: list[nn.Module] = [blocks.res(channels, out_channels)]
            channels = out_channels
            if downsample in attention_resolutions:
                layers.append(blocks.attention(channels, num_heads))
            input_blocks.append(EmbedSequential(*layers))
            skip_channels.append(channels)
        if level != len(channel_mult) - 1:
            resample = (
                blocks.res(channels, down=True)
                if resblock_updown
                else Downsample(channels, conv_resample)
            )
            input_blocks.append(EmbedSequential(resample))
            skip_channels.append(channels)
            downsample *= 2
    middle_block = EmbedSequential(
        blocks.res(channels),
        blocks.attention(channels, num_heads),
        blocks.res(channels),
    )
    return EncoderHalf(input_blocks, middle_block, skip_channels, channels, downsample)
