"""ImageNet class names, for `--class` on class-conditional models.

A bottom-floor module (standard library only) so the command line can check a class name
before anything heavy is imported. The 1000 names ship in ``repaint/data/imagenet_classes.txt``.
"""

from __future__ import annotations

import difflib
import re
from functools import cache
from importlib import resources

from repaint.errors import RepaintError


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


__all__ = ["imagenet_classes", "parse_class"]
