"""What a `--model` value names: a registered model or a checkpoint file with its config.

Either way the answer is a :class:`ResolvedModel`: the checkpoint path, the reference-format
model and diffusion keys with defaults filled in, and the classifier for guidance if any, which
is all the pipeline needs to build and load the networks.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repaint.checkpoints.registry import (
    CHECKPOINT_SUFFIXES,
    MODELS,
    ModelSpec,
    unknown_model_message,
)
from repaint.checkpoints.store import checkpoint_path, file_sha256, format_size, verify
from repaint.config import CLASSIFIER_DEFAULTS, DIFFUSION_DEFAULTS, MODEL_DEFAULTS, check_types
from repaint.errors import RepaintError
from repaint.io import read_yaml

# Network-defining keys of a reference config; `timestep_respacing` is left out because it is
# a per-run setting (the jump schedule's t_T), not a property of the checkpoint.
NETWORK_REQUIRED = ("image_size", "num_channels", "num_res_blocks", "attention_resolutions")
MODEL_KEYS = (
    *NETWORK_REQUIRED,
    *MODEL_DEFAULTS,
    *(key for key in DIFFUSION_DEFAULTS if key != "timestep_respacing"),
)
CLASSIFIER_KEYS = ("image_size", *CLASSIFIER_DEFAULTS)


@dataclass(frozen=True)
class ResolvedClassifier:
    """A classifier for guidance: its file, its ``classifier_*`` config and the scale."""

    path: Path
    config: dict[str, Any]
    scale: float


@dataclass(frozen=True)
class ResolvedModel:
    """Everything needed to build and load the networks for a run.

    ``config`` holds the reference model and diffusion keys with reference defaults filled
    in; ``classifier`` is None unless guidance is configured with a positive scale; ``spec``
    is the registry entry, None for a checkpoint file.
    """

    name: str
    checkpoint: Path
    config: dict[str, Any]
    classifier: ResolvedClassifier | None = None
    spec: ModelSpec | None = None

    @property
    def sha256(self) -> str:
        """The checkpoint's SHA-256, computed on first use and then cached on disk."""
        return file_sha256(self.checkpoint)


def resolve_model(name_or_path: str, model_config: str | Path | None = None) -> ResolvedModel:
    """Turn a `--model` value (registry name or checkpoint path) into a :class:`ResolvedModel`.

    A checkpoint path takes its configuration from `model_config` (a reference-format YAML;
    only model, diffusion and classifier keys are read, relative ``classifier_path`` values are
    taken from the working directory as the reference does) or else from a YAML beside it:
    ``<stem>.yml``, ``<stem>.yaml``, ``<file>.yml`` or ``<file>.yaml``, where a relative
    ``classifier_path`` is relative to that YAML's folder.
    """
    if name_or_path in MODELS:
        if model_config is not None:
            raise RepaintError(
                f"--model-config {model_config}: only for checkpoint files; "
                f"{name_or_path!r} is a known model with a built-in configuration"
            )
        return _resolve_registered(MODELS[name_or_path])

    path = Path(name_or_path).expanduser()
    if not path.exists():
        looks_like_path = path.suffix in CHECKPOINT_SUFFIXES or any(
            separator in name_or_path for separator in ("/", os.sep)
        )
        if looks_like_path:
            raise RepaintError(f"{path}: no such checkpoint file")
        raise RepaintError(unknown_model_message(name_or_path))
    if not path.is_file() or path.suffix not in CHECKPOINT_SUFFIXES:
        raise RepaintError(
            f"{path}: not a checkpoint file (expected {', '.join(CHECKPOINT_SUFFIXES)})"
        )

    if model_config is not None:
        conf_path, base = Path(model_config), Path.cwd()
    else:
        conf_path = _sidecar_config(path)
        base = conf_path.parent
    raw = read_yaml(conf_path)
    config = _model_config(conf_path, raw)
    return ResolvedModel(
        name=path.stem,
        checkpoint=path,
        config=config,
        classifier=_yaml_classifier(conf_path, raw, base, config["image_size"]),
    )


def _sidecar_config(checkpoint: Path) -> Path:
    """The first YAML found beside a checkpoint, under the names :func:`resolve_model` lists."""
    candidates = [checkpoint.with_suffix(".yml"), checkpoint.with_suffix(".yaml")]
    candidates += [
        checkpoint.with_name(checkpoint.name + ".yml"),
        checkpoint.with_name(checkpoint.name + ".yaml"),
    ]
    found = next((candidate for candidate in candidates if candidate.is_file()), None)
    if found is None:
        raise RepaintError(
            f"{checkpoint}: no model configuration; pass `--model-config conf.yml` "
            f"or put a sidecar YAML at {candidates[0]}"
        )
    return found


def _resolve_registered(spec: ModelSpec) -> ResolvedModel:
    missing = [part for part in spec.parts if not checkpoint_path(part).is_file()]
    if missing:
        size = format_size(sum(part.size_bytes for part in missing))
        raise RepaintError(
            f"model {spec.name!r} is not downloaded; run `repaint download {spec.name}` ({size})"
        )
    for part in spec.parts:
        verify(part)
    classifier = None
    if spec.classifier is not None and spec.classifier_scale > 0:
        classifier = ResolvedClassifier(
            path=checkpoint_path(spec.classifier),
            config={**CLASSIFIER_DEFAULTS, **spec.classifier.config},
            scale=spec.classifier_scale,
        )
    return ResolvedModel(
        name=spec.name,
        checkpoint=checkpoint_path(spec),
        config=_with_defaults(spec.config),
        classifier=classifier,
        spec=spec,
    )


def _with_defaults(picked: Mapping[str, Any]) -> dict[str, Any]:
    defaults = {**MODEL_DEFAULTS, **DIFFUSION_DEFAULTS}
    del defaults["timestep_respacing"]
    return {**defaults, **picked}


def _model_config(conf_path: Path, raw: Mapping[str, Any]) -> dict[str, Any]:
    missing = [key for key in NETWORK_REQUIRED if raw.get(key) is None]
    if missing:
        raise RepaintError(f"{conf_path}: required model key {missing[0]!r} is missing")
    config = _with_defaults({key: raw[key] for key in MODEL_KEYS if raw.get(key) is not None})
    check_types(conf_path, config)
    return config


def _yaml_classifier(
    conf_path: Path, raw: Mapping[str, Any], base: Path, image_size: int
) -> ResolvedClassifier | None:
    scale = raw.get("classifier_scale") or 0.0
    if isinstance(scale, bool) or not isinstance(scale, int | float):
        raise RepaintError(f"{conf_path}: classifier_scale must be a number, got {scale!r}")
    if not raw.get("classifier_path") or scale <= 0:
        return None
    path = Path(raw["classifier_path"]).expanduser()
    path = path if path.is_absolute() else base / path
    if not path.is_file():
        raise RepaintError(f"{conf_path}: classifier_path: {path}: no such classifier file")
    picked = {key: raw[key] for key in CLASSIFIER_KEYS if raw.get(key) is not None}
    config = {**CLASSIFIER_DEFAULTS, "image_size": image_size, **picked}
    return ResolvedClassifier(path=path, config=config, scale=float(scale))
