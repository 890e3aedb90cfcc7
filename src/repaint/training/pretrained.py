"""`--init`: fine-tuning starts from a registered model, a checkpoint with its config, or an
earlier run's folder. The network is the checkpoint's; an architecture flag may be given
only if it says the same."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repaint.checkpoints.resolve import resolve_model
from repaint.errors import RepaintError
from repaint.networks.unet import parse_channel_mult
from repaint.training.config import TrainConfig, flag
from repaint.training.state import MODEL_FILE


@dataclass(frozen=True)
class Pretrained:
    name: str
    checkpoint: Path
    config: dict[str, Any]  # reference-format model and diffusion keys
    sha256: str


def resolve_init(config: TrainConfig) -> Pretrained:
    """What `--init` names, with its config checked against the architecture flags."""
    source = config.init
    folder = Path(source).expanduser()
    if folder.is_dir():  # a run folder of `repaint train`
        if not (folder / MODEL_FILE).is_file():
            raise RepaintError(f"--init {source}: a folder without {MODEL_FILE}")
        source = str(folder / MODEL_FILE)
    try:
        resolved = resolve_model(source, config.init_config or None)
    except RepaintError as error:
        raise RepaintError(f"--init: {error}") from None
    model = dict(resolved.config)
    if model.get("class_cond"):
        raise RepaintError(
            f"--init {config.init}: a class-conditional model; repaint train trains "
            "unconditional priors on unlabelled images"
        )
    for name, value in config.architecture().items():
        if not _same(name, value, model):
            raise RepaintError(
                f"{flag(name)} {value}: --init {config.init} has {name} {model.get(name)!r}; "
                f"drop {flag(name)} (the architecture comes from the checkpoint)"
            )
    model["dropout"] = config.dropout
    model["use_fp16"] = False  # weights stay fp32; --precision autocasts
    return Pretrained(resolved.name, resolved.checkpoint, model, resolved.sha256)


def _same(name: str, value: Any, model: Mapping[str, Any]) -> bool:
    theirs = model.get(name)
    if name == "channel_mult":
        size = int(model["image_size"])
        try:
            return parse_channel_mult(str(value), size) == parse_channel_mult(theirs, size)
        except (RepaintError, ValueError):
            return False
    if name == "attention_resolutions":
        return _ints(value) == _ints(theirs)
    return str(value) == str(theirs)


def _ints(text: Any) -> set[str]:
    return {part.strip() for part in str(text).split(",") if part.strip()}
