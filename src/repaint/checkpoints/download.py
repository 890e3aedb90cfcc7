"""Fetching checkpoints over HTTP: resumable, checked, and never leaving a half file in place.

Downloads go to ``<checkpoint_path()>.part`` and are renamed to the final name only once
complete and verified, so a file under the final name is always whole. An interrupted
download resumes from its ``.part`` with an HTTP ``Range`` request. A download without a
published hash is checked against the spec's approximate size (against error pages), then its
hash is recorded (see :mod:`repaint.checkpoints.store`).

Tests and offline mirrors: set ``REPAINT_MIRROR`` to a base URL (``http://``, ``https://`` or
``file://``); every checkpoint is then fetched from ``<REPAINT_MIRROR>/<filename>`` instead of
its upstream URL. A single spec can also be pointed elsewhere with
``dataclasses.replace(spec, url=...)`` and passed to :func:`download`.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import re
import sys
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from repaint.checkpoints.registry import ModelSpec, get_spec
from repaint.checkpoints.store import (
    checkpoint_path,
    format_size,
    hash_file,
    record_hash,
    remember_hash,
    sidecar_path,
    verify,
)
from repaint.errors import RepaintError
from repaint.version import __version__

MIRROR_ENV = "REPAINT_MIRROR"
TIMEOUT_S = 60
_CHUNK = 1 << 20
_SIZE_TOLERANCE = 0.1  # how far an unhashed download may be from the spec's approximate size


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
    """Fetch a checkpoint (and its classifier) to :func:`checkpoint_path`; return its path.

    Already downloaded and verified: returns at once. ``force`` discards any earlier file and
    partial download. ``progress`` shows a byte progress bar; by default only when stderr is a
    terminal. Failures raise :class:`RepaintError`; after a network failure the ``.part`` file
    is kept and the same call resumes it.
    """
    spec = get_spec(spec_or_name) if isinstance(spec_or_name, str) else spec_or_name
    show = sys.stderr.isatty() if progress is None else progress
    for part in spec.parts:
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
        for stale in (final, sidecar_path(final), partial):
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
        record_hash(final, digest)
    remember_hash(final, digest)


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
            return hash_file(partial)
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
            hasher, mode = hash_file(partial), "ab"
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
