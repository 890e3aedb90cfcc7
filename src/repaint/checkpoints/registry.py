"""The checkpoints we know by name: what each one is, where it comes from, how it was trained.

Kept apart from the code that stores, downloads and resolves them so that the list of models
reads as data. Nothing here touches the disk at import time: the `digits` model's
architecture is read from the YAML shipped beside its weights on first use of its ``config``.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from repaint.config import CLASSIFIER_DEFAULTS
from repaint.errors import RepaintError
from repaint.io import read_yaml

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")


@dataclass(frozen=True)
class ModelSpec:
    """A checkpoint we know how to fetch and build.

    Its ``config`` holds the reference-format model and diffusion keys the checkpoint was
    trained with: those in ``config_file`` (a YAML read on first use; its ``trained`` record is
    left out), overridden by ``settings``. A spec with ``local_path`` (and no ``url``) names a
    file that ships with the package or otherwise exists already: it is never downloaded and
    always listed as available.
    """

    name: str
    description: str
    filename: str
    url: str | None
    sha256: str | None  # None where upstream publishes no hash (see repaint.checkpoints.store)
    size_bytes: int  # approximate, for listings and the sanity check of unhashed downloads
    licence: str
    source: str  # homepage
    domain: str  # what it was trained on, e.g. "256x256 face photos (CelebA-HQ)"
    photo: bool  # whether that is photographs (not drawings, digits, ...)
    greyscale: bool = False  # trained on images with R = G = B
    settings: Mapping[str, Any] = field(default_factory=dict)
    config_file: Path | None = None
    classifier: ModelSpec | None = None  # classifier-guidance network, fetched alongside
    classifier_scale: float = 0.0
    local_path: Path | None = None

    @cached_property
    def config(self) -> dict[str, Any]:
        """The checkpoint's model and diffusion keys; reads ``config_file`` once."""
        from_file: dict[str, Any] = {}
        if self.config_file is not None:
            from_file = read_yaml(self.config_file)
            from_file.pop("trained", None)  # how it was trained, not how to build it
        return {**from_file, **self.settings}

    @property
    def parts(self) -> tuple[ModelSpec, ...]:
        """The classifier (if any) and the spec itself: every file a run needs."""
        return (self,) if self.classifier is None else (self.classifier, self)


_ARCH_256 = {
    "image_size": 256,
    "num_channels": 256,
    "num_res_blocks": 2,
    "learn_sigma": True,
    "attention_resolutions": "32,16,8",
    "num_head_channels": 64,
    "num_heads": 4,
    "num_heads_upsample": -1,
    "use_scale_shift_norm": True,
    "resblock_updown": True,
    "use_fp16": False,  # the run picks the precision; checkpoints hold float32 weights
    "channel_mult": "",
    "dropout": 0.0,
    "use_new_attention_order": False,
    "diffusion_steps": 1000,
    "noise_schedule": "linear",
    "predict_xstart": False,
}
_REPAINT_SOURCE = "https://github.com/andreas128/RePaint"
_REPAINT_LICENCE = "CC BY-NC-SA 4.0"
_OPENAI_SOURCE = "https://github.com/openai/guided-diffusion"
_OPENAI_BASE = "https://openaipublic.blob.core.windows.net/diffusion/jul-2021"
_IMAGENET_DOMAIN = "256x256 ImageNet photos"


def _google_drive(file_id: str) -> str:
    """A direct-download URL that skips Drive's confirmation page for large files."""
    return f"https://drive.usercontent.google.com/download?id={file_id}&confirm=t"


_IMAGENET_CLASSIFIER = ModelSpec(
    name="imagenet256-classifier",
    description="OpenAI's noisy-image ImageNet classifier for classifier guidance",
    filename="256x256_classifier.pt",
    url=f"{_OPENAI_BASE}/256x256_classifier.pt",
    sha256=None,
    size_bytes=216_400_000,
    licence="MIT",
    source=_OPENAI_SOURCE,
    domain=_IMAGENET_DOMAIN,
    photo=True,
    settings={"image_size": 256, **CLASSIFIER_DEFAULTS},  # OpenAI's classifier is the default
)

DIGITS_DIR = Path(__file__).parent.parent / "data" / "digits"
DIGITS = ModelSpec(
    name="digits",
    description="handwritten digits, 32x32: trained by us on scikit-learn's digits (offline)",
    filename="digits.safetensors",
    url=None,
    sha256=None,  # computed from the shipped file
    size_bytes=7_700_000,
    licence="MIT (this package); data: scikit-learn digits (BSD-3-Clause)",
    source="docs/digits-model.md",
    domain="32x32 greyscale handwritten digits",
    photo=False,
    greyscale=True,
    config_file=DIGITS_DIR / "digits.yml",  # the architecture exactly as training recorded it
    local_path=DIGITS_DIR / "digits.safetensors",
)

MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        DIGITS,
        ModelSpec(
            name="celeba256",
            description="faces: RePaint's CelebA-HQ 256x256 model",
            filename="celeba256_250000.pt",
            url=_google_drive("1norNWWGYP3EZ_o05DmoW1ryKuKMmhlCX"),
            sha256=None,
            size_bytes=2_211_300_000,
            licence=_REPAINT_LICENCE,
            source=_REPAINT_SOURCE,
            domain="256x256 face photos (CelebA-HQ)",
            photo=True,
            settings={**_ARCH_256, "class_cond": False},
        ),
        ModelSpec(
            name="places256",
            description="scenes: RePaint's Places2 256x256 model",
            filename="places256_300000.pt",
            url=_google_drive("1QEl-btGbzQz6IwkXiFGd49uQNTUtTHsk"),
            sha256=None,
            size_bytes=2_211_300_000,
            licence=_REPAINT_LICENCE,
            source=_REPAINT_SOURCE,
            domain="256x256 scene photos (Places2)",
            photo=True,
            settings={**_ARCH_256, "class_cond": False},
        ),
        ModelSpec(
            name="imagenet256",
            description="general images: OpenAI's class-conditional ImageNet 256x256 model",
            filename="256x256_diffusion.pt",
            url=f"{_OPENAI_BASE}/256x256_diffusion.pt",
            sha256=None,
            size_bytes=2_215_400_000,
            licence="MIT",
            source=_OPENAI_SOURCE,
            domain=_IMAGENET_DOMAIN,
            photo=True,
            settings={**_ARCH_256, "class_cond": True},
            classifier=_IMAGENET_CLASSIFIER,
            classifier_scale=1.0,
        ),
    )
}


def get_spec(name: str) -> ModelSpec:
    """The registry entry called `name`; an unknown name lists the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise RepaintError(unknown_model_message(name)) from None


def unknown_model_message(name: str) -> str:
    """Why `name` is no model: the closest known name, all of them, and the path alternative."""
    close = difflib.get_close_matches(name, list(MODELS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown model {name!r}; {hint}known models: {', '.join(sorted(MODELS))} "
        f"(or pass a path to a {', '.join(CHECKPOINT_SUFFIXES)} checkpoint)"
    )
