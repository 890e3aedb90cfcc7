"""Finding diffusers models: telling a diffusers folder from a checkpoint, and `hf:` ids.

A diffusers model is a folder laid out by diffusers' ``save_pretrained`` (``model_index.json``
with ``unet/`` and ``scheduler/``, or a bare ``UNet2DModel`` folder with a
``scheduler_config.json``), or ``hf:ORG/NAME`` on the Hugging Face Hub, which :func:`locate`
turns into a local snapshot folder. Building the network from that folder is
:mod:`repaint.networks.diffusers_models`' job. Only the standard library is imported here;
``huggingface_hub`` (part of the optional extra) only when an ``hf:`` id is located.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from repaint.errors import RepaintError
from repaint.version import install_hint

EXTRA = install_hint("diffusers")


def is_diffusers_model(source: str | Path) -> bool:
    """`hf:ORG/NAME`, or a folder laid out by diffusers' `save_pretrained`."""
    if str(source).startswith("hf:"):
        return True
    path = Path(source)
    return path.is_dir() and any(
        (path / name).is_file() for name in ("model_index.json", "unet/config.json", "config.json")
    )


def is_latent_model(folder: Path) -> bool:
    """A diffusers folder with a VAE and a text-conditioned `UNet2DConditionModel`."""
    unet_config = folder / "unet" / "config.json"
    return (
        (folder / "vae" / "config.json").is_file()
        and unet_config.is_file()
        and read_json(unet_config).get("_class_name") == "UNet2DConditionModel"
    )


def locate(source: str | Path) -> Path:
    """The local folder of a model: `hf:` ids from the Hugging Face cache, else downloaded."""
    if not str(source).startswith("hf:"):
        return Path(source)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise RepaintError(f"{source}: hf: models need the optional extra: {EXTRA}") from None

    repo_id = str(source)[3:]
    try:
        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # not cached (huggingface_hub raises several kinds): try the network
        pass
    try:
        return Path(snapshot_download(repo_id))
    except Exception as error:
        raise RepaintError(
            f"{source}: not in the Hugging Face cache and could not be downloaded "
            f"({type(error).__name__}); connect to the network once, or pass a local folder"
        ) from None


def read_json(path: Path) -> dict[str, Any]:
    """A diffusers config file; unreadable or malformed ones raise :class:`RepaintError`."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        raise RepaintError(f"{path}: not a readable diffusers config ({error})") from None


def cached_models(cache_dir: str | Path | None = None) -> list[str]:
    """`hf:` ids of the diffusers models in the local Hugging Face cache (`cache_dir`, else
    huggingface_hub's default), for the web page's model list; none without the optional
    extra or a cache."""
    try:
        from huggingface_hub import scan_cache_dir
    except ImportError:
        return []
    try:
        repos = scan_cache_dir(cache_dir).repos
    except Exception:  # no cache folder yet, or one that cannot be read: nothing to offer
        return []
    found = set()
    for repo in repos:
        if repo.repo_type == "model" and any(
            is_diffusers_model(revision.snapshot_path) for revision in repo.revisions
        ):
            found.add(f"hf:{repo.repo_id}")
    return sorted(found)


def takes_a_prompt(source: str | Path, cache_dir: str | Path | None = None) -> bool:
    """Whether a model (a diffusers folder or a cached `hf:` id) is text-conditioned; False
    for anything else, including what cannot be found without the network."""
    if not is_diffusers_model(source):
        return False
    try:
        hub = str(source).startswith("hf:")
        folder = _cached(str(source), cache_dir) if hub else Path(source)
    except Exception:  # not cached, or the extra is missing: the page shows no prompt
        return False
    return is_latent_model(folder)


def _cached(source: str, cache_dir: str | Path | None) -> Path:
    from huggingface_hub import snapshot_download

    return Path(snapshot_download(source[3:], cache_dir=cache_dir, local_files_only=True))
