"""ImageNet class names and ids for --class."""

from __future__ import annotations

import pytest

from repaint.errors import RepaintError
from repaint.imagenet import imagenet_classes, parse_class


def test_class_file_has_1000_lines() -> None:
    classes = imagenet_classes()
    assert len(classes) == 1000
    assert classes[0].startswith("tench") and classes[999].startswith("toilet tissue")


@pytest.mark.parametrize(
    ("value", "index"),
    [
        (0, 0),
        ("999", 999),
        ("goldfish", 1),
        ("Great White Shark", 2),
        ("man-eater", 2),
        ("partridge", 86),
    ],
)
def test_parse_class(value: str | int, index: int) -> None:
    assert parse_class(value) == index


@pytest.mark.parametrize("value", [1000, "-1"])
def test_parse_class_out_of_range(value: str | int) -> None:
    with pytest.raises(RepaintError, match="0 to 999"):
        parse_class(value)


def test_parse_class_unknown_and_ambiguous() -> None:
    with pytest.raises(RepaintError, match="not an ImageNet class name"):
        parse_class("notaclass")
    with pytest.raises(RepaintError, match="did you mean 'goldfish'"):
        parse_class("goldfsh")
    with pytest.raises(RepaintError, match=r"ambiguous: 134 \(crane\), 517 \(crane\)"):
        parse_class("crane")
