"""The guided-diffusion noisy-image classifier (``EncoderUNetModel``) and its factories.

It is the UNet's downsampling half and bottleneck followed by a pooling head; its logits
steer sampling towards a class (classifier guidance). Keys match ``256x256_classifier.pt``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any, Literal

import torch
from torch import Tensor, nn

from repaint.networks.layers import (
    AttentionPool2d,
    BlockFactory,
    GroupNorm32,
    build_encoder_half,
    cast_convs,
    time_embed_mlp,
    timestep_embedding,
    zero_init,
)
from repaint.networks.unet import (
    NUM_CLASSES,
    attention_downsample_factors,
    parse_channel_mult,
    pick_config,
    resolve_dtype,
)

Pool = Literal["adaptive", "attention", "spatial", "spatial_v2"]
POOLS: tuple[Pool, ...] = ("adaptive", "attention", "spatial", "spatial_v2")


class EncoderUNetModel(nn.Module):
    """Half UNet with a pooling head, mapping noisy images and timesteps to logits.

    ``pool`` selects the head: ``"adaptive"`` (global average pool + 1x1 conv),
    ``"attention"`` (:class:`AttentionPool2d`, needs ``num_head_channels``), ``"spatial"`` /
    ``"spatial_v2"`` (an MLP on the spatial means of every block's output). Other arguments
    are as in :class:`~repaint.networks.unet.UNetModel`.
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
        num_heads: int = 1,
        num_head_channels: int = -1,
        use_scale_shift_norm: bool = False,
        resblock_updown: bool = False,
        use_new_attention_order: bool = False,
        pool: Pool = "adaptive",
        dtype: torch.dtype = torch.float32,
    ) -> None:
        super().__init__()
        if pool not in POOLS:
            raise ValueError(f"unknown pool {pool!r}; expected one of {POOLS}")
        if pool == "attention" and num_head_channels == -1:
            raise ValueError('pool="attention" needs num_head_channels')
        self.image_size = image_size
        self.in_channels = in_channels
        self.model_channels = model_channels
        self.out_channels = out_channels
        self.pool = pool

        self.time_embed = time_embed_mlp(model_channels)
        blocks = BlockFactory(
            emb_channels=4 * model_channels,
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

        channels = encoder.channels
        # The spatial heads see the mean of every input block's output and of the bottleneck.
        feature_size = sum(encoder.skip_channels) + channels
        self.out: nn.Sequential
        if pool == "adaptive":
            self.out = nn.Sequential(
                GroupNorm32(channels),
                nn.SiLU(),
                nn.AdaptiveAvgPool2d((1, 1)),
                zero_init(nn.Conv2d(channels, out_channels, 1)),
                nn.Flatten(),
            )
        elif pool == "attention":
            self.out = nn.Sequential(
                GroupNorm32(channels),
                nn.SiLU(),
                AttentionPool2d(
                    image_size // encoder.downsample, channels, num_head_channels, out_channels
                ),
            )
        elif pool == "spatial":
            self.out = nn.Sequential(
                nn.Linear(feature_size, 2048),
                nn.ReLU(),
                nn.Linear(2048, out_channels),
            )
        else:
            self.out = nn.Sequential(
                nn.Linear(feature_size, 2048),
                GroupNorm32(2048),
                nn.SiLU(),
                nn.Linear(2048, out_channels),
            )
        self.set_torso_dtype(dtype)

    @property
    def torso_dtype(self) -> torch.dtype:
        """Precision of the input and middle blocks."""
        return self.input_blocks[0][0].weight.dtype

    def set_torso_dtype(self, dtype: torch.dtype) -> None:
        """Run the input and middle blocks' convolutions in ``dtype``; the head stays float32.

        See :meth:`repaint.networks.unet.UNetModel.set_torso_dtype`.
        """
        for part in (self.input_blocks, self.middle_block):
            cast_convs(part, dtype)

    def forward(self, x: Tensor, timesteps: Tensor) -> Tensor:
        """Return ``[N, out_channels]`` logits for noisy images at original diffusion steps."""
        if timesteps.ndim == 0:
            timesteps = timesteps.expand(x.shape[0])
        emb = self.time_embed(timestep_embedding(timesteps, self.model_channels))
        spatial = self.pool.startswith("spatial")
        means = []
        h = x.to(self.torso_dtype)
        for block in self.input_blocks:
            h = block(h, emb)
            if spatial:
                means.append(h.to(x.dtype).mean(dim=(2, 3)))
        h = self.middle_block(h, emb)
        if spatial:
            means.append(h.to(x.dtype).mean(dim=(2, 3)))
            return self.out(torch.cat(means, dim=-1))
        return self.out(h.to(x.dtype))


def create_classifier(
    image_size: int,
    classifier_use_fp16: bool = False,
    classifier_width: int = 128,
    classifier_depth: int = 2,
    classifier_attention_resolutions: str | int | Iterable[int] = "32,16,8",
    classifier_use_scale_shift_norm: bool = True,
    classifier_resblock_updown: bool = True,
    classifier_pool: Pool = "attention",
    *,
    dtype: torch.dtype | None = None,
) -> EncoderUNetModel:
    """Build the classifier from the reference's ``create_classifier`` hyper-parameters.

    Defaults are the reference's ``classifier_defaults``. As there, ``channel_mult`` always
    follows ``image_size``, heads are 64 channels wide and there are 1000 classes. ``dtype``
    overrides ``classifier_use_fp16`` for the torso precision.
    """
    return EncoderUNetModel(
        image_size=image_size,
        in_channels=3,
        model_channels=classifier_width,
        out_channels=NUM_CLASSES,
        num_res_blocks=classifier_depth,
        attention_resolutions=attention_downsample_factors(
            classifier_attention_resolutions, image_size
        ),
        channel_mult=parse_channel_mult("", image_size),
        num_head_channels=64,
        use_scale_shift_norm=classifier_use_scale_shift_norm,
        resblock_updown=classifier_resblock_updown,
        pool=classifier_pool,
        dtype=resolve_dtype(classifier_use_fp16, dtype),
    )


CLASSIFIER_CONFIG_KEYS = (
    "image_size",
    "classifier_use_fp16",
    "classifier_width",
    "classifier_depth",
    "classifier_attention_resolutions",
    "classifier_use_scale_shift_norm",
    "classifier_resblock_updown",
    "classifier_pool",
)
"""Keys of a reference-format config that :func:`classifier_from_config` reads."""


def classifier_from_config(
    conf: Mapping[str, Any], *, dtype: torch.dtype | None = None
) -> EncoderUNetModel:
    """Build the classifier from a reference-format config dict, ignoring unrelated keys.

    Absent optional keys take :func:`create_classifier`'s defaults.
    """
    return create_classifier(
        **pick_config(conf, CLASSIFIER_CONFIG_KEYS, ("image_size",)), dtype=dtype
    )
