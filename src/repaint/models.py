"""Known checkpoints, downloading them safely, and resolving what `--model` names.

Downloads go to ``<repaint_home()>/checkpoints/<filename>.part`` and are renamed to the final
name only once complete and verified, so a file under the final name is always whole. An
interrupted download resumes from its ``.part`` with an HTTP ``Range`` request.

Integrity: where a spec publishes a SHA-256 the download must match it. None of the current
upstream checkpoints has a published hash, so the hash of the first complete download is
recorded in a sidecar ``<file>.sha256`` and later checks compare against that (trust on first
use); a size check against the spec's approximate size guards that first download against
error pages. A checkpoint fetched by hand and put at :func:`checkpoint_path` counts as
downloaded; its hash is recorded on first use.

Hashing a 2 GB file takes seconds, so digests are cached in ``<repaint_home()>/sha256.json``
keyed by path, size and modification time.

Tests and offline mirrors: set ``REPAINT_MIRROR`` to a base URL (``http://``, ``https://`` or
``file://``); every checkpoint is then fetched from ``<REPAINT_MIRROR>/<filename>`` instead of
its upstream URL. A single spec can also be pointed elsewhere with
``dataclasses.replace(spec, url=...)`` and passed to :func:`download`.
"""

from __future__ import annotations

import difflib
import hashlib
import http.client
import json
import os
import re
import sys
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from tqdm import tqdm

from repaint.version import __version__
from repaint.config import CLASSIFIER_DEFAULTS, DIFFUSION_DEFAULTS, MODEL_DEFAULTS
from repaint.errors import RepaintError
from repaint.io import atomic_output, read_yaml

CHECKPOINT_SUFFIXES = (".pt", ".pth", ".safetensors")
MIRROR_ENV = "REPAINT_MIRROR"
TIMEOUT_S = 60
_CHUNK = 1 << 20
_SIZE_TOLERANCE = 0.1  # how far an unhashed download may be from the spec's approximate size

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
class ModelSpec:
    """A checkpoint we know how to fetch and build.

    ``config`` holds the reference-format model and diffusion keys the checkpoint was trained
    with. A spec with ``local_path`` (and no ``url``) names a file that ships with the package
    or otherwise exists already: it is never downloaded and always listed as available.
    """

    name: str
    description: str
    filename: str
    url: str | None
    sha256: str | None  # None where upstream publishes no hash (see the module docstring)
    size_bytes: int  # approximate, for listings and the sanity check of unhashed downloads
    licence: str
    source: str  # homepage
    config: dict[str, Any] = field(default_factory=dict)
    classifier: ModelSpec | None = None  # classifier-guidance network, fetched alongside
    classifier_scale: float = 0.0
    local_path: Path | None = None


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
    config={"image_size": 256, **CLASSIFIER_DEFAULTS},  # OpenAI's classifier is the default
)

DIGITS_DIR = Path(__file__).parent / "data" / "digits"
DIGITS = ModelSpec(
    name="digits",
    description="handwritten digits, 32x32: trained by us on scikit-learn's digits (offline)",
    filename="digits.safetensors",
    url=None,
    sha256=None,  # computed from the shipped file
    size_bytes=7_700_000,
    licence="MIT (this package); data: scikit-learn digits (BSD-3-Clause)",
    source="docs/digits-model.md",
    # the architecture exactly as training recorded it next to the weights
    config={
        key: value
        for key, value in read_yaml(DIGITS_DIR / "digits.yml").items()
        if key != "trained"
    },
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
            config={**_ARCH_256, "class_cond": False},
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
            config={**_ARCH_256, "class_cond": False},
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
            config={**_ARCH_256, "class_cond": True},
            classifier=_IMAGENET_CLASSIFIER,
            classifier_scale=1.0,
        ),
    )
}


# ---------------------------------------------------------------------------------------------
# Where files live


def repaint_home() -> Path:
    """``$REPAINT_HOME``, else ``$XDG_CACHE_HOME/repaint``, else ``~/.cache/repaint``."""
    if home := os.environ.get("REPAINT_HOME"):
        return Path(home).expanduser()
    cache_root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_root).expanduser() / "repaint"


def checkpoint_path(spec: ModelSpec) -> Path:
    """Where the spec's file is, or will be once downloaded."""
    if spec.local_path is not None:
        return spec.local_path
    return repaint_home() / "checkpoints" / spec.filename


def _files(spec: ModelSpec) -> list[ModelSpec]:
    """The spec's classifier (if any) and the spec itself: everything a run needs."""
    return [spec.classifier, spec] if spec.classifier is not None else [spec]


def is_downloaded(spec: ModelSpec) -> bool:
    """Whether every file of the spec is present (not whether it verifies)."""
    return all(checkpoint_path(part).is_file() for part in _files(spec))


def get_spec(name: str) -> ModelSpec:
    """The registry entry called `name`; an unknown name lists the known ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise RepaintError(_unknown_model_message(name)) from None


def _unknown_model_message(name: str) -> str:
    close = difflib.get_close_matches(name, list(MODELS), n=1)
    hint = f"did you mean {close[0]!r}? " if close else ""
    return (
        f"unknown model {name!r}; {hint}known models: {', '.join(sorted(MODELS))} "
        f"(or pass a path to a {', '.join(CHECKPOINT_SUFFIXES)} checkpoint)"
    )


def format_size(size_bytes: int) -> str:
    """Human-readable size in 1024-based units, e.g. ``2.1 GB``."""
    size = float(size_bytes)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


# ---------------------------------------------------------------------------------------------
# Hashing


def _hash_cache_file() -> Path:
    return repaint_home() / "sha256.json"


def _read_hash_cache() -> dict[str, Any]:
    try:
        data = json.loads(_hash_cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _remember_hash(path: Path, digest: str) -> None:
    """Best effort: a read-only or broken cache only costs a rehash next time."""
    stat = path.stat()
    cache_data = _read_hash_cache()
    cache_data[str(path.resolve())] = [stat.st_size, stat.st_mtime_ns, digest]
    try:
        with atomic_output(_hash_cache_file(), "w") as handle:
            json.dump(cache_data, handle, indent=0)
    except OSError:
        pass


def _hash_file(path: Path) -> hashlib._Hash:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file, cached by (path, size, mtime) so big checkpoints are hashed once."""
    path = Path(path)
    stat = path.stat()
    entry = _read_hash_cache().get(str(path.resolve()))
    if isinstance(entry, list) and entry[:2] == [stat.st_size, stat.st_mtime_ns]:
        return str(entry[2])
    digest = _hash_file(path).hexdigest()
    _remember_hash(path, digest)
    return digest


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _recorded_hash(path: Path) -> str | None:
    try:
        return _sidecar(path).read_text().split()[0].lower()
    except (OSError, IndexError):
        return None


def _record_hash(path: Path, digest: str) -> None:
    """Write ``<file>.sha256`` in ``sha256sum`` format, so ``sha256sum -c`` can check it."""
    with atomic_output(_sidecar(path), "w") as handle:
        handle.write(f"{digest}  {path.name}\n")


def verify(spec_or_name: ModelSpec | str) -> str:
    """Check a present checkpoint against its published or recorded SHA-256; return the hash.

    Without either, the current hash is recorded (first use of a hand-placed file). Files
    shipped inside the package are only checked against a published hash, never recorded.
    """
    spec = get_spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
    path = checkpoint_path(spec)
    if not path.is_file():
        raise RepaintError(f"{path}: model {spec.name!r} is not downloaded")
    digest = file_sha256(path)
    expected = spec.sha256 or (None if spec.local_path else _recorded_hash(path))
    if expected is None:
        if spec.local_path is None:
            _record_hash(path, digest)
        return digest
    if digest != expected.lower():
        raise RepaintError(
            f"{path}: SHA-256 mismatch (expected {expected}, got {digest}); the file is "
            f"damaged or was replaced, run `repaint download {spec.name} --force`"
        )
    return digest


# ---------------------------------------------------------------------------------------------
# Downloading


def download_url(spec: ModelSpec) -> str:
    """The spec's URL, or ``$REPAINT_MIRROR/<filename>`` when a mirror is set."""
    if mirror := os.environ.get(MIRROR_ENV):
        return f"{mirror.rstrip('/')}/{spec.filename}"
    if spec.url is None:
        raise RepaintError(f"model {spec.name!r} has no download URL")
    return spec.url


def download(
    spec_or_name: ModelSpec | str, *, progress: bool | None = None, force: bool = False
) -> Path:
    """Fetch a checkpoint (and its classifier) into :func:`repaint_home`; return its path.

    Already downloaded and verified: returns at once. ``force`` discards any earlier file and
    partial download. ``progress`` shows a byte progress bar; by default only when stderr is a
    terminal. Failures raise :class:`RepaintError`; after a network failure the ``.part`` file
    is kept and the same call resumes it.
    """
    spec = get_spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
    show = sys.stderr.isatty() if progress is None else progress
    for part in _files(spec):
        _download_one(part, show=show, force=force)
    return checkpoint_path(spec)


def _download_one(spec: ModelSpec, *, show: bool, force: bool) -> None:
    final = checkpoint_path(spec)
    if spec.local_path is not None:
        if not final.is_file():
            raise RepaintError(f"{final}: the {spec.name!r} model file is missing; reinstall")
        verify(spec)
        return
    partial = final.with_name(final.name + ".part")
    if force:
        for stale in (final, _sidecar(final), partial):
            stale.unlink(missing_ok=True)
    elif final.is_file():
        verify(spec)
        return

    url = download_url(spec)
    final.parent.mkdir(parents=True, exist_ok=True)
    try:
        hasher = _fetch(url, partial, label=spec.filename, show=show)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        if isinstance(error, urllib.error.HTTPError):
            reason = f"the server answered HTTP {error.code} {error.reason}"
        else:
            reason = str(getattr(error, "reason", None) or error) or type(error).__name__
        kept = f"; {partial} keeps the part received" if partial.is_file() else ""
        raise RepaintError(
            f"downloading {url} failed ({reason}){kept}; run the same command again to resume"
        ) from None

    digest = hasher.hexdigest()
    received = partial.stat().st_size
    if spec.sha256 is not None and digest != spec.sha256.lower():
        partial.unlink()
        raise RepaintError(
            f"{url}: SHA-256 mismatch (expected {spec.sha256}, got {digest}); "
            "the partial file was removed, run again"
        )
    if spec.sha256 is None and abs(received - spec.size_bytes) > _SIZE_TOLERANCE * spec.size_bytes:
        partial.unlink()
        raise RepaintError(
            f"{url}: got {format_size(received)}, expected about {format_size(spec.size_bytes)} "
            "(an error page or a different file?); the partial file was removed, run again"
        )
    os.replace(partial, final)
    if spec.sha256 is None:
        _record_hash(final, digest)
    _remember_hash(final, digest)


class _ShortRead(OSError):
    """The connection closed before the announced length arrived."""


def _fetch(url: str, partial: Path, *, label: str, show: bool) -> hashlib._Hash:
    """Bring `partial` up to the whole file at `url`; return the SHA-256 of all of it.

    Resumes with ``Range: bytes=N-``: 206 appends, 200 (range ignored) starts over, 416 means
    the part is already whole (checked against the total the server states, when it does).
    """
    offset = partial.stat().st_size if partial.is_file() else 0
    request = urllib.request.Request(url, headers={"User-Agent": f"repaint/{__version__}"})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
    try:
        response = urllib.request.urlopen(request, timeout=TIMEOUT_S)
    except urllib.error.HTTPError as error:
        if error.code != 416 or not offset:
            raise
        total = _range_total(error.headers.get("Content-Range"))
        error.close()
        if total is None or total == offset:
            return _hash_file(partial)
        partial.unlink()  # the part is longer than the file: not ours to resume
        return _fetch(url, partial, label=label, show=show)

    with response:
        if "text/html" in (response.headers.get("Content-Type") or ""):
            raise RepaintError(
                f"{url}: the server sent a web page instead of the checkpoint (rate limit or "
                "login page?); try again later, or download it by hand"
            )
        status = response.status or 200  # file:// answers carry no status
        if status == 206:
            if _range_start(response.headers.get("Content-Range")) != offset:
                partial.unlink()
                raise RepaintError(
                    f"{url}: the server sent the wrong byte range; "
                    "the partial file was removed, run again"
                )
            hasher, mode = _hash_file(partial), "ab"
        else:
            offset, hasher, mode = 0, hashlib.sha256(), "wb"
        length = response.headers.get("Content-Length")
        total = offset + int(length) if length and length.isdigit() else None
        with (
            partial.open(mode) as out,
            tqdm(
                total=total,
                initial=offset,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=label,
                disable=not show,
                file=sys.stderr,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK):
                out.write(chunk)
                hasher.update(chunk)
                bar.update(len(chunk))
            received = out.tell()
    if total is not None and received < total:
        raise _ShortRead(f"connection closed after {received} of {total} bytes")
    return hasher


def _range_start(content_range: str | None) -> int | None:
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", (content_range or "").strip())
    return int(match.group(1)) if match else None


def _range_total(content_range: str | None) -> int | None:
    match = re.fullmatch(r"bytes \*/(\d+)", (content_range or "").strip())
    return int(match.group(1)) if match else None


# ---------------------------------------------------------------------------------------------
# Listing


def list_models() -> list[dict[str, Any]]:
    """One row per registry entry, for `repaint models`; sizes include the classifier."""
    return [
        {
            "name": spec.name,
            "description": spec.description,
            "size": format_size(sum(part.size_bytes for part in _files(spec))),
            "licence": spec.licence,
            "url": spec.url,
            "downloaded": is_downloaded(spec),
            "path": str(checkpoint_path(spec)),
        }
        for spec in MODELS.values()
    ]


def format_model_table(rows: Iterable[Mapping[str, Any]]) -> str:
    """A plain-text table of :func:`list_models` rows."""
    header = ("NAME", "SIZE", "DOWNLOADED", "LICENCE", "DESCRIPTION")
    lines = [header] + [
        (
            str(row["name"]),
            str(row["size"]),
            "yes" if row["downloaded"] else "no",
            str(row["licence"]),
            str(row["description"]),
        )
        for row in rows
    ]
    widths = [max(len(line[column]) for line in lines) for column in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


# ---------------------------------------------------------------------------------------------
# Resolving --model


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
    in; ``classifier`` is None unless guidance is configured with a positive scale.
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
        raise RepaintError(_unknown_model_message(name_or_path))
    if not path.is_file() or path.suffix not in CHECKPOINT_SUFFIXES:
        raise RepaintError(
            f"{path}: not a checkpoint file (expected {', '.join(CHECKPOINT_SUFFIXES)})"
        )

    if model_config is not None:
        conf_path, base = Path(model_config), Path.cwd()
    else:
        candidates = [path.with_suffix(".yml"), path.with_suffix(".yaml")]
        candidates += [path.with_name(path.name + ".yml"), path.with_name(path.name + ".yaml")]
        conf_path = next((candidate for candidate in candidates if candidate.is_file()), None)
        if conf_path is None:
            raise RepaintError(
                f"{path}: no model configuration; pass `--model-config conf.yml` "
                f"or put a sidecar YAML at {candidates[0]}"
            )
        base = conf_path.parent
    raw = read_yaml(conf_path)
    config = _model_config(conf_path, raw)
    return ResolvedModel(
        name=path.stem,
        checkpoint=path,
        config=config,
        classifier=_yaml_classifier(conf_path, raw, base, config["image_size"]),
    )


def _resolve_registered(spec: ModelSpec) -> ResolvedModel:
    missing = [part for part in _files(spec) if not checkpoint_path(part).is_file()]
    if missing:
        size = format_size(sum(part.size_bytes for part in missing))
        raise RepaintError(
            f"model {spec.name!r} is not downloaded; run `repaint download {spec.name}` ({size})"
        )
    for part in _files(spec):
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
    return _with_defaults({key: raw[key] for key in MODEL_KEYS if raw.get(key) is not None})


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


# ---------------------------------------------------------------------------------------------
# ImageNet classes


@cache
def imagenet_classes() -> tuple[str, ...]:
    """The 1000 ILSVRC-2012 class lines in index order; synonyms separated by ", "."""
    data = resources.files("repaint").joinpath("data").joinpath("imagenet_classes.txt")
    return tuple(data.read_text(encoding="utf-8").splitlines())


def _normal(name: str) -> str:
    return " ".join(name.split()).casefold()


def parse_class(value: str | int) -> int:
    """An ImageNet class id from a number 0-999 or a case-insensitive class name.

    A name matches any synonym of a class line exactly; where it names several classes, a
    class whose first name it is wins (``partridge`` is 86, not 82), else it is ambiguous.
    """
    classes = imagenet_classes()
    text = str(value).strip()
    if isinstance(value, bool):
        raise RepaintError(f"class {value!r}: expected an ImageNet class id or name")
    if isinstance(value, int) or re.fullmatch(r"[+-]?\d+", text):
        index = int(text)
        if not 0 <= index < len(classes):
            raise RepaintError(f"class {value!r}: ImageNet class ids run from 0 to 999")
        return index

    wanted = _normal(text)
    synonyms = [[_normal(name) for name in line.split(",")] for line in classes]
    matches = [index for index, names in enumerate(synonyms) if wanted in names]
    primary = [index for index in matches if synonyms[index][0] == wanted]
    if len(primary) == 1 or len(matches) == 1:
        return (primary or matches)[0]
    if matches:
        listed = ", ".join(f"{index} ({classes[index]})" for index in primary or matches)
        raise RepaintError(f"class {value!r} is ambiguous: {listed}; pass the number instead")
    every_name = sorted({name for names in synonyms for name in names})
    close = difflib.get_close_matches(wanted, every_name, n=3)
    hint = f"; did you mean {' or '.join(repr(name) for name in close)}?" if close else ""
    raise RepaintError(f"class {value!r}: not an ImageNet class name{hint} (or pass 0-999)")


__all__ = [
    "CHECKPOINT_SUFFIXES",
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
    "imagenet_classes",
    "is_downloaded",
    "list_models",
    "parse_class",
    "repaint_home",
    "resolve_model",
    "verify",
]
