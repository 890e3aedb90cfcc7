"""Study 3.6, texture: a held-out digit extended beyond its borders (`extend=`), checking
that the original pixels come back exactly, and a figure of the samples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from benchmarks.lib.progress import stderr_log
from repaint.datasets import load_digits
from repaint.io import atomic_output
from repaint.outputs import comparison_grid
from repaint.pixel import PixelInpainter


def texture(inpainter: PixelInpainter, out: Path, seed: int, scale: float) -> dict[str, Any]:
    """A held-out digit extended on every side, and a row of them extended to the right."""
    schedule = None if scale == 1 else {"t_T": 8, "jump_length": 2, "jump_n_sample": 2}
    size = inpainter.image_size
    tile = load_digits("test", size)[0][0]
    rows, cases = [], []
    for sides in ((32, 16, 32, 16), (0, 0, 64, 0)):
        result = inpainter(tile, None, schedule=schedule, seed=seed, num_samples=3, extend=sides)
        start = np.zeros_like(np.asarray(result.images[0]))
        left, top = sides[0], sides[1]
        start[top : top + size, left : left + size] = tile
        panels = [Image.fromarray(start), *result.images]
        labels = [f"--extend {','.join(map(str, sides))}", "sample 0", "sample 1", "sample 2"]
        rows.append(comparison_grid(panels, labels))
        exact = all(
            np.array_equal(np.asarray(image)[top : top + size, left : left + size], tile)
            for image in result.images
        )
        cases.append(
            {
                "extend": list(sides),
                "windows": len(result.windows),
                "evaluations": result.model_evaluations,
                "seconds": result.seconds,
                "original_exact": exact,
            }
        )
        stderr_log(
            f"texture: extend {sides}: {len(result.windows)} windows, exact original: {exact}"
        )
    grid = Image.new("RGB", (max(r.width for r in rows), sum(r.height for r in rows)), "white")
    for number, row in enumerate(rows):
        grid.paste(row, (0, sum(r.height for r in rows[:number])))
    with atomic_output(out / "study_texture.png") as handle:
        grid.save(handle, format="PNG")
    return {"cases": cases, "figure": "study_texture.png"}
