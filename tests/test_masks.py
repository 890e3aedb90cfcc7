"""Mask reading in every convention, growing, and the paper's mask generators."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from PIL import Image

from repaint import masks
from repaint.errors import RepaintError, RepaintWarning
from repaint.masks import (
    MASK_KINDS,
    check_mask,
    fill_fraction,
    generate_mask,
    grow_fill,
    load_mask,
    save_mask,
    write_masks,
)

# A painted mask with anti-aliased greys on both sides of the 50% threshold.
PAINTED = np.array(
    [
        [0, 0, 255, 255],
        [0, 127, 128, 255],
        [0, 1, 254, 255],
    ],
    dtype=np.uint8,
)
WHITE = PAINTED >= 128


def save(tmp_path, image: Image.Image, name: str = "mask.png"):
    path = tmp_path / name
    image.save(path)
    return path


# --- conventions ---------------------------------------------------------------------------


def test_keep_and_fill_modes_are_complementary(tmp_path):
    path = save(tmp_path, Image.fromarray(PAINTED))
    keep = load_mask(path)
    assert keep.dtype == bool and keep.shape == PAINTED.shape
    np.testing.assert_array_equal(keep, WHITE)
    np.testing.assert_array_equal(load_mask(path, mode="fill"), ~WHITE)
    np.testing.assert_array_equal(load_mask(str(path), mode="keep"), WHITE)


def test_grey_edges_split_at_half_of_full_scale():
    grey = np.array([[0, 127, 128, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(load_mask(grey), [[False, False, True, True]])
    deep = np.array([[0, 32767, 32768, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(load_mask(deep), [[False, False, True, True]])
    floats = np.array([[0.0, 0.499, 0.5, 1.0]])
    np.testing.assert_array_equal(load_mask(floats), [[False, False, True, True]])


def test_rgb_mask_is_read_by_luminance(tmp_path):
    rgb = np.zeros((1, 6, 3), dtype=np.uint8)
    rgb[0, 1] = 255  # white
    rgb[0, 2] = (128, 128, 128)  # grey just over half
    rgb[0, 3] = (0, 255, 0)  # green: luminance 0.587
    rgb[0, 4] = (255, 0, 0)  # red: luminance 0.299
    rgb[0, 5] = (127, 127, 127)  # grey just under half
    expected = [[False, True, True, True, False, False]]
    np.testing.assert_array_equal(load_mask(save(tmp_path, Image.fromarray(rgb))), expected)
    np.testing.assert_array_equal(load_mask(rgb), expected)


def test_rgba_with_transparency_reads_the_alpha(tmp_path):
    rgba = np.zeros((3, 4, 4), dtype=np.uint8)  # black everywhere: the colour means nothing
    rgba[..., 3] = PAINTED
    path = save(tmp_path, Image.fromarray(rgba, "RGBA"))
    np.testing.assert_array_equal(load_mask(path), WHITE)
    np.testing.assert_array_equal(load_mask(path, mode="fill"), ~WHITE)

    la = np.stack([np.zeros_like(PAINTED), PAINTED], axis=-1)
    np.testing.assert_array_equal(load_mask(save(tmp_path, Image.fromarray(la, "LA"))), WHITE)


def test_fully_opaque_rgba_reads_the_colour(tmp_path):
    rgba = np.full((3, 4, 4), 255, dtype=np.uint8)
    rgba[..., :3] = PAINTED[..., None]
    np.testing.assert_array_equal(load_mask(save(tmp_path, Image.fromarray(rgba, "RGBA"))), WHITE)


def test_one_bit_png(tmp_path):
    path = save(tmp_path, Image.fromarray(WHITE))
    assert Image.open(path).mode == "1"
    np.testing.assert_array_equal(load_mask(path), WHITE)


def test_sixteen_bit_png_and_mode_i(tmp_path):
    deep = PAINTED.astype(np.uint16) * 257  # same fractions of full scale
    path = save(tmp_path, Image.fromarray(deep))
    assert Image.open(path).mode == "I;16"
    np.testing.assert_array_equal(load_mask(path), WHITE)
    np.testing.assert_array_equal(load_mask(Image.fromarray(deep.astype(np.int32))), WHITE)


def test_palette_png_with_and_without_transparency(tmp_path):
    palette = Image.fromarray(WHITE.astype(np.uint8))  # indices 0 and 1
    palette = palette.convert("P")
    palette.putpalette([0, 0, 0, 255, 255, 255])
    path = save(tmp_path, palette, "palette.png")
    assert Image.open(path).mode == "P"
    np.testing.assert_array_equal(load_mask(path), WHITE)

    palette.putpalette([0, 0, 0, 0, 0, 0])  # both entries black, index 0 transparent
    palette.info["transparency"] = 0
    np.testing.assert_array_equal(load_mask(save(tmp_path, palette, "clear.png")), WHITE)


@pytest.mark.parametrize(
    "array",
    [
        WHITE,
        WHITE.astype(np.float32),
        WHITE.astype(np.float64) * 0.6,
        PAINTED,
        PAINTED[..., None],
        np.repeat(PAINTED[..., None], 3, axis=-1),
    ],
    ids=["bool", "float32", "float64", "uint8", "uint8-hw1", "uint8-rgb"],
)
def test_numpy_inputs(array):
    np.testing.assert_array_equal(load_mask(array), WHITE)


@pytest.mark.parametrize(
    "shape", [(3, 4), (1, 3, 4), (3, 3, 4), (1, 3, 3, 4), (1, 1, 3, 4)], ids=str
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.bool])
def test_torch_inputs(shape, dtype):
    tensor = torch.from_numpy(WHITE).to(dtype).expand(shape)
    np.testing.assert_array_equal(load_mask(tensor), WHITE)
    np.testing.assert_array_equal(load_mask(tensor, mode="fill"), ~WHITE)


def test_other_size_is_resized_nearest_with_a_warning():
    small = np.array([[1, 0], [0, 1]], dtype=bool)
    with pytest.warns(RepaintWarning, match=r"my mask: mask is 2x2 but the image is 4x6"):
        keep = load_mask(small, size=(4, 6), name="my mask")
    assert keep.shape == (6, 4)
    np.testing.assert_array_equal(keep, np.repeat(np.repeat(small, 3, axis=0), 2, axis=1))


def test_matching_size_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(load_mask(WHITE, size=(4, 3)), WHITE)


# --- errors --------------------------------------------------------------------------------


def test_missing_file(tmp_path):
    with pytest.raises(RepaintError, match=r"nowhere\.png: no such image file"):
        load_mask(tmp_path / "nowhere.png")


def test_truncated_png(tmp_path):
    path = save(
        tmp_path,
        Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64), dtype=np.uint8)),
    )
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(RepaintError, match=r"mask\.png: not a readable image"):
        load_mask(path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("hello")
    with pytest.raises(RepaintError, match=r"notes\.png: not a readable image"):
        load_mask(path)


@pytest.mark.parametrize(
    ("source", "problem"),
    [
        (np.zeros((0, 5), dtype=bool), "empty"),
        (np.zeros((4, 4, 5), dtype=np.uint8), "1 to 4 channels"),
        (np.zeros((2, 4, 4, 1), dtype=np.uint8), r"\(H, W\) or \(H, W, C\)"),
        (np.full((2, 2), 255.0), r"float mask values must lie in \[0, 1\]"),
        (np.ones((2, 2), dtype=np.int64), "dtype int64 is not supported"),
        (torch.ones(2, 1, 4, 4), r"got shape \(2, 1, 4, 4\)"),
        ([[0, 1]], "cannot read a mask from list"),
    ],
    ids=["zero-size", "channels", "ndim", "float-range", "int64", "torch-batch", "list"],
)
def test_bad_sources_name_the_mask(source, problem):
    with pytest.raises(RepaintError, match=rf"^hole: .*{problem}"):
        load_mask(source, name="hole")


def test_unknown_mode_is_named(tmp_path):
    with pytest.raises(RepaintError, match=r"m\.png: unknown mask mode 'white'"):
        load_mask(tmp_path / "m.png", mode="white")


# --- growing and summaries -----------------------------------------------------------------


def test_grow_fill_single_pixel_becomes_square():
    keep = np.ones((9, 9), dtype=bool)
    keep[4, 4] = False
    expected = np.ones((9, 9), dtype=bool)
    expected[2:7, 2:7] = False
    np.testing.assert_array_equal(grow_fill(keep, 2), expected)
    assert grow_fill(keep, 0) is keep


def test_grow_fill_clips_at_the_border_and_never_shrinks():
    keep = np.ones((6, 8), dtype=bool)
    keep[0, 0] = False
    grown = grow_fill(keep, 1)
    assert np.count_nonzero(~grown) == 4 and not grown[:2, :2].any()

    random_keep = np.random.default_rng(0).random((40, 50)) > 0.05
    previous = random_keep
    for pixels in (1, 2, 4):
        grown = grow_fill(random_keep, pixels)
        assert grown.dtype == bool and grown.shape == random_keep.shape
        assert not (grown & ~previous).any()  # every fill pixel stays a fill pixel
        previous = grown
    assert fill_fraction(previous) > fill_fraction(random_keep)


def test_grow_fill_rejects_negative():
    with pytest.raises(RepaintError, match="-1"):
        grow_fill(np.ones((4, 4), dtype=bool), -1)


def test_fraction_description_and_checks():
    keep = generate_mask("nn2", 16, np.random.default_rng(0))
    assert fill_fraction(keep) == 0.75
    assert check_mask(keep, "a.png") is None
    nothing_to_fill = check_mask(np.ones((4, 4), dtype=bool), "a.png")
    assert nothing_to_fill is not None and nothing_to_fill.startswith("a.png: ")
    assert "nothing to inpaint" in nothing_to_fill
    nothing_known = check_mask(np.zeros((4, 4), dtype=bool), "b.png")
    assert nothing_known is not None and "keeps no pixel" in nothing_known


# --- generators ----------------------------------------------------------------------------


@pytest.mark.parametrize("size", [256, 64])
def test_fixed_kinds_geometry(size):
    rng = np.random.default_rng(0)
    rows, cols = np.indices((size, size))

    nn2 = generate_mask("nn2", size, rng)
    np.testing.assert_array_equal(nn2, (rows % 2 == 0) & (cols % 2 == 0))
    assert 1 - fill_fraction(nn2) == 0.25

    ev2li = generate_mask("ev2li", size, rng)
    np.testing.assert_array_equal(ev2li, rows % 2 == 0)
    assert fill_fraction(ev2li) == 0.5

    genhalf = generate_mask("genhalf", size, rng)
    np.testing.assert_array_equal(genhalf, cols < size // 2)
    assert fill_fraction(genhalf) == 0.5

    ex64 = generate_mask("ex64", size, rng)
    side = size // 4
    start = (size - side) // 2
    inside = (rows >= start) & (rows < start + side) & (cols >= start) & (cols < start + side)
    np.testing.assert_array_equal(ex64, inside)
    assert 1 - fill_fraction(ex64) == side**2 / size**2
    if size == 256:
        assert ex64[96:160, 96:160].all() and ex64.sum() == 64 * 64

    for keep in (nn2, ev2li, genhalf, ex64):
        assert keep.dtype == bool and keep.shape == (size, size)


@pytest.mark.parametrize("size", [256, 64])
def test_random_kinds_fill_at_most_half_and_are_deterministic(size):
    cores = {}
    for kind in ("thin", "thick"):
        fractions, core = [], []
        for seed in range(20):
            keep = generate_mask(kind, size, np.random.default_rng(seed))
            assert keep.dtype == bool and keep.shape == (size, size)
            np.testing.assert_array_equal(
                keep, generate_mask(kind, size, np.random.default_rng(seed))
            )
            fractions.append(fill_fraction(keep))
            # fill pixels 16/256 of the width away from any known pixel: wide strokes only
            core.append(fill_fraction(~grow_fill(~keep, size // 16)))
        assert all(0 < fraction <= 0.5 for fraction in fractions), (kind, fractions)
        assert len(set(fractions)) > 15  # the seed matters
        cores[kind] = np.mean(core)
    assert cores["thick"] > 5 * cores["thin"], cores


def test_thin_and_thick_differ():
    rng = np.random.default_rng(3)
    assert not np.array_equal(generate_mask("thin", 64, rng), generate_mask("thick", 64, rng))


def test_half_cap_is_enforced_when_every_draw_is_too_large(monkeypatch):
    monkeypatch.setattr(masks, "_MAX_DRAWS", 1)
    monkeypatch.setattr(masks, "_MAX_FILL", 0.02)
    for seed in range(5):
        keep = generate_mask("thin", 64, np.random.default_rng(seed))
        assert 0 < fill_fraction(keep) <= 0.02


@pytest.mark.parametrize(
    ("kind", "size", "problem"),
    [
        ("wide", 64, "unknown mask kind 'wide'.*thin, thick, ev2li, nn2, ex64, genhalf"),
        ("thin", 7, "at least 8 pixels, got 7"),
    ],
)
def test_generator_errors(kind, size, problem):
    with pytest.raises(RepaintError, match=problem):
        generate_mask(kind, size, np.random.default_rng(0))


def test_write_masks_round_trip(tmp_path):
    paths = write_masks("thick", 64, 3, seed=7, out_dir=tmp_path / "out")
    assert [path.name for path in paths] == [
        "thick_00000.png",
        "thick_00001.png",
        "thick_00002.png",
    ]
    assert sorted(path.name for path in (tmp_path / "out").iterdir()) == [p.name for p in paths]
    rng = np.random.default_rng(7)
    for path in paths:
        with Image.open(path) as image:
            assert image.mode == "L" and image.size == (64, 64)
            assert set(np.unique(np.asarray(image))) <= {0, 255}
        np.testing.assert_array_equal(load_mask(path), generate_mask("thick", 64, rng))

    again = write_masks("thick", 64, 3, seed=7, out_dir=tmp_path / "again")
    assert [p.read_bytes() for p in again] == [p.read_bytes() for p in paths]
    other = write_masks("thick", 64, 3, seed=8, out_dir=tmp_path / "other")
    assert [p.read_bytes() for p in other] != [p.read_bytes() for p in paths]


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_save_mask_round_trips_every_kind(tmp_path, kind):
    keep = generate_mask(kind, 32, np.random.default_rng(1))
    save_mask(keep, tmp_path / "k.png")
    np.testing.assert_array_equal(load_mask(tmp_path / "k.png"), keep)
    np.testing.assert_array_equal(load_mask(tmp_path / "k.png", mode="fill"), ~keep)
