"""Guided-diffusion networks (UNet, noisy-image classifier) and strict checkpoint loading."""

from repaint.networks.checkpoint import (
    CheckpointMismatchError,
    load_checkpoint,
    load_state_dict_strict,
    read_state_dict,
)
from repaint.networks.classifier import (
    CLASSIFIER_CONFIG_KEYS,
    EncoderUNetModel,
    classifier_from_config,
    create_classifier,
)
from repaint.networks.layers import QKVAttention, QKVAttentionLegacy, timestep_embedding
from repaint.networks.unet import (
    NUM_CLASSES,
    UNET_CONFIG_KEYS,
    UNetModel,
    create_unet,
    unet_from_config,
)

__all__ = [
    "CLASSIFIER_CONFIG_KEYS",
    "NUM_CLASSES",
    "UNET_CONFIG_KEYS",
    "CheckpointMismatchError",
    "EncoderUNetModel",
    "QKVAttention",
    "QKVAttentionLegacy",
    "UNetModel",
    "classifier_from_config",
    "create_classifier",
    "create_unet",
    "load_checkpoint",
    "load_state_dict_strict",
    "read_state_dict",
    "timestep_embedding",
    "unet_from_config",
]
