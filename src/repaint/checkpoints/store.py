"""Where checkpoints live on disk and how we know they are intact.

Files go to ``<repaint_home()>/checkpoints/<filename>``. Where a spec publishes a SHA-256 the
file must match it. None of the current upstream checkpoints has a published hash, so the hash
of the first complete download is recorded in a sidecar ``<file>.sha256`` (``sha256sum``
format) and later checks compare against that (trust on first use). A checkpoint fetched by
hand and put at :func:`checkpoint_path` counts as downloaded; its hash is recorded on first use.

Hashing a 2 GB file takes seconds, so digests are cached in ``<repaint_home()>/sha256.json``
keyed by path, size and modification time.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from repaint.checkpoints.registry import ModelSpec, get_spec
from repaint.errors import RepaintError
from repaint.io import atomic_output

_CHUNK = 1 << 20


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


def is_downloaded(spec: ModelSpec) -> bool:
    """Whether every file of the spec is present (not whether it verifies)."""
    return all(checkpoint_path(part).is_file() for part in spec.parts)


def format_size(size_bytes: int) -> str:
    """Human-readable size in 1024-based units, e.g. ``2.1 GB``."""
    size = float(size_bytes)
    for unit in ("B", "KB", "MB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


# ---------------------------------------------------------------------------------------------
# The digest cache


def _hash_cache_file() -> Path:
    return repaint_home() / "sha256.json"


def _read_hash_cache() -> dict[str, Any]:
    try:
        data = json.loads(_hash_cache_file().read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remember_hash(path: Path, digest: str) -> None:
    """Cache `digest` for the file as it is now; best effort (a failure costs a rehash)."""
    stat = path.stat()
    cache_data = _read_hash_cache()
    cache_data[str(path.resolve())] = [stat.st_size, stat.st_mtime_ns, digest]
    try:
        with atomic_output(_hash_cache_file(), "w") as handle:
            json.dump(cache_data, handle, indent=0)
    except OSError:
        pass


def hash_file(path: Path) -> hashlib._Hash:
    """A SHA-256 hasher fed the whole file (uncached; callers may go on updating it)."""
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
    digest = hash_file(path).hexdigest()
    remember_hash(path, digest)
    return digest


# ---------------------------------------------------------------------------------------------
# Recorded hashes and verification


def sidecar_path(path: Path) -> Path:
    """The ``<file>.sha256`` record beside a checkpoint."""
    return path.with_name(path.name + ".sha256")


def _recorded_hash(path: Path) -> str | None:
    try:
        return sidecar_path(path).read_text().split()[0].lower()
    except (OSError, IndexError):
        return None


def record_hash(path: Path, digest: str) -> None:
    """Write ``<file>.sha256`` in ``sha256sum`` format, so ``sha256sum -c`` can check it."""
    with atomic_output(sidecar_path(path), "w") as handle:
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
            record_hash(path, digest)
        return digest
    if digest != expected.lower():
        raise RepaintError(
            f"{path}: SHA-256 mismatch (expected {expected}, got {digest}); the file is "
            f"damaged or was replaced, run `repaint download {spec.name} --force`"
        )
    return digest
