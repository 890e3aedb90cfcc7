"""Checkpoints: the models we know by name, their files on disk, downloads, and `--model`.

- :mod:`~repaint.checkpoints.registry`: the known models (:data:`MODELS`) as data.
- :mod:`~repaint.checkpoints.store`: where files live, their SHA-256 records, :func:`verify`.
- :mod:`~repaint.checkpoints.download`: resumable, checked HTTP downloads.
- :mod:`~repaint.checkpoints.resolve`: a `--model` value to a :class:`ResolvedModel`.
- :mod:`~repaint.checkpoints.listing`: the rows and table of `repaint models`.
- :mod:`~repaint.checkpoints.hub`: diffusers folders and `hf:` ids (imported on its own).

Importing the package reads no file and touches no network.
"""

from repaint.checkpoints.download import MIRROR_ENV, download, download_url
from repaint.checkpoints.listing import format_model_table, list_models
from repaint.checkpoints.registry import (
    CHECKPOINT_SUFFIXES,
    DIGITS,
    DIGITS_DIR,
    MODELS,
    ModelSpec,
    get_spec,
)
from repaint.checkpoints.resolve import ResolvedClassifier, ResolvedModel, resolve_model
from repaint.checkpoints.store import (
    checkpoint_path,
    file_sha256,
    format_size,
    is_downloaded,
    repaint_home,
    verify,
)

__all__ = [
    "CHECKPOINT_SUFFIXES",
    "DIGITS",
    "DIGITS_DIR",
    "MIRROR_ENV",
    "MODELS",
    "ModelSpec",
    "ResolvedClassifier",
    "ResolvedModel",
    "checkpoint_path",
    "download",
    "download_url",
    "file_sha256",
    "format_model_table",
    "format_size",
    "get_spec",
    "is_downloaded",
    "list_models",
    "repaint_home",
    "resolve_model",
    "verify",
]
