"""Inputs that ship with the package, so everything can be tried offline with the embedded
`digits` model: one held-out digit with its keep-mask, and six held-out digits of the test
split (never seen in training), each with a keep-mask of one of the paper's six kinds."""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from repaint.io import check_output_folder


def _folder() -> Path:
    return Path(str(resources.files("repaint").joinpath("data", "examples")))


def example() -> tuple[Path, Path]:
    """A held-out digit and a keep-mask (white = keep) shipped with the package, for trying
    the API offline with the embedded `digits` model."""
    folder = _folder()
    return folder / "digit.png", folder / "digit_mask.png"


def held_out_digits() -> list[tuple[str, Path, Path]]:
    """(mask kind, digit, keep-mask) for digits 0..5 of the test split, one per mask kind
    of the paper, in MASK_KINDS order: what `make demo` inpaints."""
    folder = _folder()
    items = []
    for image in sorted((folder / "digits").glob("*.png")):
        kind = image.stem.split("_", 1)[1]
        items.append((kind, image, folder / "masks" / image.name))
    return items


def write_examples(out: str | Path) -> list[Path]:
    """Copy the examples into `out`: `digit.png`, `digit_mask.png`, and `digits/` with
    `masks/` (matched by file name, as `repaint inpaint FOLDER --mask FOLDER` expects).
    Existing files of the same names are replaced; nothing else in `out` is touched."""
    out = Path(out)
    check_output_folder(out)
    image, mask = example()
    pairs = [(image, out / image.name), (mask, out / mask.name)]
    for _, digit, keep in held_out_digits():
        pairs += [(digit, out / "digits" / digit.name), (keep, out / "masks" / keep.name)]
    for source, target in pairs:
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(f".{target.name}.partial")
        shutil.copyfile(source, partial)
        partial.replace(target)
    return [target for _, target in pairs]
