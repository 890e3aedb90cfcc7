"""Windows of an image of any size on a model of one fixed size (`repaint.regions`)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from repaint.errors import RepaintError
from repaint.io import from_uint8
from repaint.regions import (
    Window,
    choose_fit,
    extract,
    feather,
    hole_boxes,
    paste,
    plan_windows,
)

SEEDS = range(12)


def covered(window: Window, y: int, x: int) -> bool:
    return (
        window.top <= y < window.top + window.height
        and window.left <= x < window.left + window.width
    )


def overlap(a: Window, b: Window) -> bool:
    rows = max(a.top, b.top) < min(a.top + a.height, b.top + b.height)
    cols = max(a.left, b.left) < min(a.left + a.width, b.left + b.width)
    return rows and cols


def random_holes(rng: np.random.Generator) -> np.ndarray:
    """A random image shape with a few random rectangular holes."""
    height, width = (int(v) for v in rng.integers(20, 200, size=2))
    fill = np.zeros((height, width), dtype=bool)
    for _ in range(int(rng.integers(1, 7))):
        h, w = (int(v) for v in rng.integers(1, 25, size=2))
        top, left = int(rng.integers(0, height)), int(rng.integers(0, width))
        fill[top : top + h, left : left + w] = True
    return fill


# choose_fit


@pytest.mark.parametrize(
    ("height", "width", "expected"),
    [(32, 32, "pad"), (10, 20, "pad"), (32, 5, "pad"), (33, 32, "region"), (8, 64, "region")],
)
def test_auto_pads_small_images_and_uses_regions_for_large_ones(height, width, expected):
    assert choose_fit("auto", height, width, 32) == expected


@pytest.mark.parametrize("fit", ["region", "pad", "resize", "crop"])
def test_explicit_fit_is_kept_whatever_the_size(fit):
    assert choose_fit(fit, 10, 10, 32) == fit
    assert choose_fit(fit, 500, 300, 32) == fit


def test_unknown_fit_is_refused_naming_the_flag():
    with pytest.raises(RepaintError, match="--fit") as caught:
        choose_fit("stretch", 32, 32, 32)
    assert "stretch" in str(caught.value)


# plan_windows


def test_resize_uses_the_whole_image_as_one_window():
    fill = np.zeros((30, 50), dtype=bool)
    fill[3, 4] = True
    assert plan_windows(fill, 32, "resize") == [Window(0, 0, 30, 50)]


@pytest.mark.parametrize("fit", ["pad", "crop"])
@pytest.mark.parametrize(("height", "width"), [(30, 50), (50, 30), (41, 41), (7, 64)])
def test_pad_and_crop_use_one_centred_square_of_the_long_side(fit, height, width):
    fill = np.zeros((height, width), dtype=bool)
    fill[0, 0] = True
    (window,) = plan_windows(fill, 32, fit)
    side = max(height, width)
    assert window.height == window.width == side
    # Centred: the padding on either side differs by at most one pixel.
    assert abs(-window.top - (window.top + side - height)) <= 1
    assert abs(-window.left - (window.left + side - width)) <= 1


def test_far_apart_holes_get_a_window_each():
    fill = np.zeros((256, 256), dtype=bool)
    fill[10:14, 10:14] = True
    fill[200:210, 220:224] = True
    windows = plan_windows(fill, 32, "region")
    assert len(windows) == 2
    for window in windows:
        assert window.height == window.width >= 32
    assert any(covered(w, 10, 10) and covered(w, 13, 13) for w in windows)
    assert any(covered(w, 200, 220) and covered(w, 209, 223) for w in windows)
    assert not overlap(*windows)


def test_a_large_hole_gets_a_window_larger_than_the_model_with_context():
    fill = np.zeros((400, 400), dtype=bool)
    fill[100:180, 150:190] = True  # 80 px tall
    (window,) = plan_windows(fill, 32, "region", context=0.5)
    assert window.height == window.width >= 160  # the hole plus half its size each side
    assert covered(window, 100, 150) and covered(window, 179, 189)


def test_holes_whose_windows_would_overlap_share_one_window():
    fill = np.zeros((256, 256), dtype=bool)
    fill[100:104, 100:104] = True
    fill[100:104, 120:124] = True  # 16 px apart: not one group, but 32 px windows overlap
    assert len(hole_boxes(fill, cell=4)) == 2
    (window,) = plan_windows(fill, 32, "region")
    assert window.height == window.width >= 32
    assert covered(window, 100, 100) and covered(window, 103, 123)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("context", [0.0, 0.5])
def test_region_windows_cover_every_hole_and_never_overlap(seed, context):
    rng = np.random.default_rng(seed)
    fill = random_holes(rng)
    model_size = int(rng.choice([16, 32, 64]))
    windows = plan_windows(fill, model_size, "region", context=context)
    assert windows
    height, width = fill.shape
    for window in windows:
        assert window.height == window.width >= min(model_size, max(height, width))
    for a, b in itertools.combinations(windows, 2):
        assert not overlap(a, b), (a, b)
    for y, x in zip(*np.nonzero(fill), strict=True):
        assert any(covered(w, y, x) for w in windows), (y, x)


# hole_boxes


def test_hole_boxes_are_the_bounding_boxes_of_the_components():
    fill = np.zeros((64, 64), dtype=bool)
    fill[5:8, 6:10] = True
    fill[40, 50] = True
    fill[41:45, 48] = True
    boxes = sorted(hole_boxes(fill, cell=4))
    assert boxes == [(5, 6, 8, 10), (40, 48, 45, 51)]


def test_holes_within_one_cell_are_grouped_and_farther_ones_are_not():
    near = np.zeros((32, 32), dtype=bool)
    near[0, 0] = near[0, 9] = True  # neighbouring 8 px cells
    assert hole_boxes(near, cell=8) == [(0, 0, 1, 10)]
    far = np.zeros((32, 32), dtype=bool)
    far[0, 0] = far[0, 20] = True  # one empty cell between them
    assert sorted(hole_boxes(far, cell=8)) == [(0, 0, 1, 1), (0, 20, 1, 21)]
    diagonal = np.zeros((32, 32), dtype=bool)
    diagonal[7, 7] = diagonal[8, 8] = True  # cells touch at a corner
    assert hole_boxes(diagonal, cell=8) == [(7, 7, 9, 9)]


def test_no_holes_no_boxes():
    assert hole_boxes(np.zeros((20, 30), dtype=bool), cell=4) == []


def test_hole_boxes_handle_sizes_that_are_not_a_multiple_of_the_cell():
    fill = np.zeros((13, 11), dtype=bool)
    fill[12, 10] = True
    assert hole_boxes(fill, cell=8) == [(12, 10, 13, 11)]


# Window.clip


@pytest.mark.parametrize(
    "window",
    [Window(-3, -2, 10, 10), Window(2, 15, 10, 10), Window(-4, -4, 20, 30), Window(1, 2, 3, 4)],
)
def test_clip_maps_the_window_onto_the_image(window):
    height, width = 8, 20
    image = np.arange(height * width).reshape(height, width)
    # The window drawn by hand, -1 where it lies past the image.
    drawn = np.full((window.height, window.width), -1)
    for wy, wx in itertools.product(range(window.height), range(window.width)):
        y, x = window.top + wy, window.left + wx
        if 0 <= y < height and 0 <= x < width:
            drawn[wy, wx] = image[y, x]
    rows, cols, window_rows, window_cols = window.clip(height, width)
    np.testing.assert_array_equal(drawn[window_rows, window_cols], image[rows, cols])
    assert (drawn[window_rows, window_cols] >= 0).all()
    assert (drawn >= 0).sum() == image[rows, cols].size  # nothing inside the image left out


def test_clip_of_a_window_past_the_top_left():
    assert Window(-3, -2, 10, 10).clip(5, 20) == (
        slice(0, 5),
        slice(0, 8),
        slice(3, 8),
        slice(2, 10),
    )


# extract


def random_image(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    return rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8)


@pytest.mark.parametrize(
    "window", [Window(0, 0, 40, 40), Window(-10, 5, 60, 60), Window(3, 3, 8, 8)]
)
def test_extract_gives_model_sized_image_and_mask(window):
    rng = np.random.default_rng(0)
    image = from_uint8(random_image(rng, 40, 50))
    fill = torch.from_numpy(rng.random((40, 50)) < 0.2)
    crop, keep = extract(image, fill, window, 16)
    assert crop.shape == (3, 16, 16)
    assert keep.shape == (1, 16, 16)
    assert crop.min() >= -1 and crop.max() <= 1
    assert set(keep.unique().tolist()) <= {0.0, 1.0}


def test_extract_at_the_window_size_is_the_image_itself():
    rng = np.random.default_rng(1)
    pixels = random_image(rng, 30, 40)
    image = from_uint8(pixels)
    fill = torch.zeros(30, 40, dtype=torch.bool)
    fill[12:15, 20:22] = True
    window = Window(5, 10, 16, 16)
    crop, keep = extract(image, fill, window, 16)
    torch.testing.assert_close(crop, image[:, 5:21, 10:26], rtol=0, atol=0)
    expected_keep = ~fill[5:21, 10:26]
    assert torch.equal(keep[0].bool(), expected_keep)


def test_padded_border_is_known_and_replicates_the_edge():
    rng = np.random.default_rng(2)
    image = from_uint8(random_image(rng, 10, 20))
    fill = torch.ones(10, 20, dtype=torch.bool)  # everything inside the image is to fill
    crop, keep = extract(image, fill, Window(-5, 0, 20, 20), 20)
    assert (keep[0, :5] == 1).all() and (keep[0, 15:] == 1).all()
    assert (keep[0, 5:15] == 0).all()
    torch.testing.assert_close(crop[:, 5:15], image, rtol=0, atol=0)
    torch.testing.assert_close(crop[:, :5], image[:, :1].expand(3, 5, 20), rtol=0, atol=0)
    torch.testing.assert_close(crop[:, 15:], image[:, -1:].expand(3, 5, 20), rtol=0, atol=0)


@pytest.mark.parametrize(("y", "x"), [(0, 0), (37, 50), (63, 63), (4, 3)])
def test_one_image_pixel_to_fill_marks_the_model_pixel_over_it(y, x):
    image = from_uint8(np.zeros((64, 64, 3), dtype=np.uint8))
    fill = torch.zeros(64, 64, dtype=torch.bool)
    fill[y, x] = True
    _, keep = extract(image, fill, Window(0, 0, 64, 64), 16)  # 4x4 image pixels per model pixel
    expected = torch.ones(16, 16)
    expected[y // 4, x // 4] = 0
    assert torch.equal(keep[0], expected)


# feather


def block_fill() -> torch.Tensor:
    fill = torch.zeros(30, 30, dtype=torch.bool)
    fill[5:25, 5:25] = True
    return fill


@pytest.mark.parametrize("width", [2, 4, 7])
def test_feather_ramps_from_the_edge_to_one_inside(width):
    fill = block_fill()
    alpha = feather(fill, width)
    assert alpha.shape == fill.shape
    assert (alpha[~fill] == 0).all()
    assert alpha[15, 15] == 1
    row = alpha[15, 5:16]  # from the hole's left edge towards its centre
    expected = [min(step, width) / width for step in range(1, 12)]
    torch.testing.assert_close(row, torch.tensor(expected), rtol=0, atol=1e-6)
    assert (alpha[fill] >= 1 / width - 1e-6).all()
    assert (alpha <= 1).all()


@pytest.mark.parametrize("width", [0, 1])
def test_feather_of_width_one_or_less_is_a_hard_edge(width):
    fill = block_fill()
    assert torch.equal(feather(fill, width), fill.float())


def test_feather_of_a_thin_hole_never_reaches_one():
    fill = torch.zeros(20, 20, dtype=torch.bool)
    fill[5:15, 9:11] = True  # two pixels wide: erodes away after one step
    alpha = feather(fill, 4)
    torch.testing.assert_close(alpha[fill], torch.full((20,), 0.25))


# paste


def paste_case(seed: int, size: int):
    rng = np.random.default_rng(seed)
    canvas = random_image(rng, 48, 64)
    fill = rng.random((48, 64)) < 0.3
    result = torch.from_numpy(rng.uniform(-1, 1, size=(3, size, size)).astype(np.float32))
    return canvas, fill, result


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize(
    "window",
    [Window(0, 0, 16, 16), Window(10, 20, 40, 40), Window(-8, -8, 80, 80), Window(30, 50, 9, 9)],
)
@pytest.mark.parametrize("feather_width", [1, 3])
def test_paste_keeps_known_pixels_bit_identical_whatever_the_scale(seed, window, feather_width):
    canvas, fill, result = paste_case(seed, 16)
    before = canvas.copy()
    alpha = feather(torch.from_numpy(fill), feather_width)
    paste(canvas, fill, alpha, window, result)
    inside = np.zeros_like(fill)
    rows, cols, _, _ = window.clip(*fill.shape)
    inside[rows, cols] = True
    changeable = fill & inside
    np.testing.assert_array_equal(canvas[~changeable], before[~changeable])
    assert (canvas[changeable] != before[changeable]).any()


def test_paste_with_a_hard_edge_writes_the_result_inside_the_window():
    canvas = np.full((20, 30, 3), 40, dtype=np.uint8)
    fill = np.zeros((20, 30), dtype=bool)
    fill[2:18, 2:28] = True
    window = Window(-5, 10, 30, 30)  # past the top and bottom, right half of the image
    result = torch.ones(3, 8, 8)  # white, at a quarter of the window's scale
    paste(canvas, fill, feather(torch.from_numpy(fill), 1), window, result)
    target = fill.copy()
    target[:, :10] = False
    assert (canvas[target] == 255).all()
    assert (canvas[~target] == 40).all()


def test_paste_blends_by_alpha():
    canvas = np.full((10, 10, 3), 100, dtype=np.uint8)
    fill = np.zeros((10, 10), dtype=bool)
    fill[3:7, 3:7] = True
    alpha = torch.zeros(10, 10)
    alpha[3:7, 3:7] = 0.5
    alpha[3, 3] = 0.25
    result = torch.full((3, 10, 10), 200 / 127.5 - 1)
    paste(canvas, fill, alpha, Window(0, 0, 10, 10), result)
    assert (canvas[4:7, 4:7] == 150).all()
    assert (canvas[3, 3] == 125).all()
    assert (canvas[~fill] == 100).all()
