"""What `repaint models` shows: each known model, its size, licence and whether it is on disk.

Apart from :mod:`repaint.checkpoints.registry` because the rows join the registry with the
store (which itself depends on the registry).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from repaint.checkpoints.registry import MODELS
from repaint.checkpoints.store import checkpoint_path, format_size, is_downloaded


def list_models() -> list[dict[str, Any]]:
    """One row per registry entry, for `repaint models`; sizes include the classifier."""
    return [
        {
            "name": spec.name,
            "description": spec.description,
            "size": format_size(sum(part.size_bytes for part in spec.parts)),
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
