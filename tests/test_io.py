"""Images and config files in and out (`repaint.io`): pixels read back exactly, writes are
atomic and ordinary files, errors name the file."""

from __future__ import annotations

import os
import stat

import numpy as np
import pytest
import torch
from PIL import Image

from repaint.errors import RepaintError
from repaint.io import (
    FILE_MODE,
    atomic_output,
    center_crop_resize,
    from_uint8,
    list_images,
    load_rgb,
    read_yaml,
    to_uint8,
    write_image,
)


@pytest.fixture
def u8() -> np.ndarray:
    """A random RGB image holding the darkest and brightest levels."""
    pixels = np.random.default_rng(0).integers(0, 256, size=(9, 13, 3), dtype=np.uint8)
    pixels[0, 0] = 0
    pixels[-1, -1] = 255
    return pixels


# load_rgb


def test_load_rgb_from_a_path(u8, tmp_path):
    path = tmp_path / "image.png"
    Image.fromarray(u8).save(path)
    np.testing.assert_array_equal(load_rgb(path), u8)
    np.testing.assert_array_equal(load_rgb(str(path)), u8)


def test_load_rgb_from_a_pil_image_drops_alpha(u8):
    np.testing.assert_array_equal(load_rgb(Image.fromarray(u8)), u8)
    rgba = np.concatenate([u8, np.full((*u8.shape[:2], 1), 7, dtype=np.uint8)], axis=-1)
    np.testing.assert_array_equal(load_rgb(Image.fromarray(rgba, "RGBA")), u8)


def test_load_rgb_from_a_uint8_array_is_an_equal_writable_copy(u8):
    loaded = load_rgb(u8)
    np.testing.assert_array_equal(loaded, u8)
    assert loaded.dtype == np.uint8 and loaded.flags.writeable and loaded.flags.c_contiguous
    loaded[0, 0] = 99
    assert (u8[0, 0] == 0).all()


def test_load_rgb_from_uint16_scales_down(u8):
    np.testing.assert_array_equal(load_rgb(u8.astype(np.uint16) * 257), u8)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_array_in_zero_one_gives_back_the_image_exactly(u8, dtype):
    np.testing.assert_array_equal(load_rgb(u8.astype(dtype) / dtype(255)), u8)


def test_float_tensor_in_zero_one_gives_back_the_image_exactly(u8):
    tensor = torch.from_numpy(u8).permute(2, 0, 1).float() / 255
    np.testing.assert_array_equal(load_rgb(tensor), u8)
    np.testing.assert_array_equal(load_rgb(tensor[None]), u8)  # (1, 3, H, W)
    np.testing.assert_array_equal(load_rgb(tensor.double()), u8)


def test_float_in_minus_one_one_gives_back_the_image_within_one_level(u8):
    array = u8 / 127.5 - 1
    assert array.min() < 0
    tensor = torch.from_numpy(u8).permute(2, 0, 1).float() / 127.5 - 1
    for source in (array, array.astype(np.float32), tensor, tensor[None]):
        loaded = load_rgb(source)
        assert loaded.dtype == np.uint8 and loaded.shape == u8.shape
        assert np.abs(loaded.astype(int) - u8.astype(int)).max() <= 1


@pytest.mark.parametrize("scale", [255.0, 2.0])
def test_floats_outside_minus_one_one_are_refused(u8, scale):
    values = u8.astype(np.float32) / 255 * scale
    with pytest.raises(RepaintError, match="divide"):
        load_rgb(values)
    with pytest.raises(RepaintError, match="divide"):
        load_rgb(torch.from_numpy(values).permute(2, 0, 1))


def test_floats_below_minus_one_are_refused(u8):
    values = u8.astype(np.float32) / 127.5 - 1
    values[0, 0, 0] = -1.5
    with pytest.raises(RepaintError, match="divide"):
        load_rgb(values)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_nan_or_infinite_pixels_are_refused(u8, bad):
    values = u8.astype(np.float32) / 255
    values[2, 3, 1] = bad
    with pytest.raises(RepaintError, match="NaN"):
        load_rgb(values)
    with pytest.raises(RepaintError, match="NaN"):
        load_rgb(torch.from_numpy(values).permute(2, 0, 1))


def test_grey_arrays_and_tensors_become_three_equal_channels(u8):
    grey = u8[..., 0]
    for source in (grey, torch.from_numpy(grey), grey[..., None], torch.from_numpy(grey)[None]):
        loaded = load_rgb(source)
        assert loaded.shape == (*grey.shape, 3)
        for channel in range(3):
            np.testing.assert_array_equal(loaded[..., channel], grey)


def test_rgba_arrays_drop_alpha(u8):
    rgba = np.concatenate([u8, np.zeros((*u8.shape[:2], 1), dtype=np.uint8)], axis=-1)
    np.testing.assert_array_equal(load_rgb(rgba), u8)


@pytest.mark.parametrize(
    ("source", "shape"),
    [
        (np.zeros((4, 5, 2), dtype=np.uint8), "(4, 5, 2)"),
        (np.zeros((2, 4, 5, 3), dtype=np.uint8), "(2, 4, 5, 3)"),
        (np.zeros(7, dtype=np.uint8), "(7,)"),
        (torch.zeros(2, 3, 4, 5), "(2, 3, 4, 5)"),
        (torch.zeros(5, 6, 7), "(5, 6, 7)"),
        (torch.zeros(7), "(7,)"),
    ],
)
def test_bad_shapes_are_refused_naming_the_shape(source, shape):
    with pytest.raises(RepaintError) as caught:
        load_rgb(source, name="photo")
    message = str(caught.value)
    assert shape in message
    assert message.startswith("photo:")


@pytest.mark.parametrize(
    "source",
    [
        np.zeros((0, 5, 3), dtype=np.uint8),
        np.zeros((5, 0), dtype=np.float32),
        torch.zeros(3, 0, 4),
        torch.zeros(1, 3, 4, 0),
    ],
)
def test_zero_size_images_are_refused(source):
    with pytest.raises(RepaintError, match="empty"):
        load_rgb(source)


def test_unsupported_types_are_refused():
    with pytest.raises(RepaintError, match="list"):
        load_rgb([[0, 0, 0]])
    with pytest.raises(RepaintError, match="int64"):
        load_rgb(np.zeros((4, 4, 3), dtype=np.int64))


def test_missing_or_unreadable_image_files_are_named(tmp_path):
    missing = tmp_path / "missing.png"
    with pytest.raises(RepaintError, match="no such image file") as caught:
        load_rgb(missing)
    assert str(missing) in str(caught.value)
    broken = tmp_path / "broken.png"
    broken.write_text("not an image")
    with pytest.raises(RepaintError, match="not a readable image") as caught:
        load_rgb(broken)
    assert str(broken) in str(caught.value)


# to_uint8 / from_uint8


def test_to_uint8_rounds_by_default_and_truncates_on_request():
    x = 10.6 / 127.5 - 1  # level 10.6
    y = 200.3 / 127.5 - 1  # level 200.3
    image = torch.tensor([[[x, y]], [[y, x]], [[x, x]]])  # (C=3, H=1, W=2)
    rounded = to_uint8(image)
    truncated = to_uint8(image, truncate=True)
    assert rounded.shape == truncated.shape == (1, 2, 3)
    assert rounded.dtype == truncated.dtype == np.uint8
    np.testing.assert_array_equal(rounded[0], [[11, 200, 11], [200, 11, 11]])
    np.testing.assert_array_equal(truncated[0], [[10, 200, 10], [200, 10, 10]])


def test_to_uint8_moves_channels_last_for_batches_and_clamps():
    levels = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    images = levels / 127.5 - 1
    images[1, 2, 3, 4] = 5.0
    images[0, 0, 0, 0] = -7.0
    pixels = to_uint8(images)
    assert pixels.shape == (2, 4, 5, 3)
    expected = levels.permute(0, 2, 3, 1).numpy().astype(np.uint8)
    expected[1, 3, 4, 2] = 255
    expected[0, 0, 0, 0] = 0
    np.testing.assert_array_equal(pixels, expected)


def test_from_uint8_is_inverted_by_to_uint8_for_every_level():
    levels = np.arange(256, dtype=np.uint8).reshape(16, 16)
    pixels = np.stack([levels, levels.T, 255 - levels], axis=-1)
    images = from_uint8(pixels)
    assert images.shape == (3, 16, 16)
    assert images.min() == -1 and images.max() == 1
    np.testing.assert_array_equal(to_uint8(images), pixels)
    # Truncating (the reference's way) may lose one level to float error, never more.
    difference = pixels.astype(int) - to_uint8(images, truncate=True).astype(int)
    assert difference.min() >= 0 and difference.max() <= 1


# atomic_output / write_image


def test_atomic_output_makes_an_ordinary_file_whatever_the_umask(tmp_path):
    path = tmp_path / "new" / "folder" / "out.bin"
    old = os.umask(0o077)
    try:
        with atomic_output(path) as handle:
            handle.write(b"done")
    finally:
        os.umask(old)
    assert path.read_bytes() == b"done"
    assert stat.S_IMODE(path.stat().st_mode) == FILE_MODE == 0o644
    assert sorted(p.name for p in path.parent.iterdir()) == ["out.bin"]


def test_atomic_output_leaves_nothing_when_the_block_fails(tmp_path):
    path = tmp_path / "out.bin"
    with pytest.raises(ValueError, match="boom"), atomic_output(path) as handle:
        handle.write(b"half")
        assert list(tmp_path.glob("*.part")), "the data goes to a temporary file first"
        raise ValueError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_output_keeps_the_old_file_when_the_block_fails(tmp_path):
    path = tmp_path / "out.txt"
    path.write_text("old")
    with pytest.raises(KeyboardInterrupt), atomic_output(path, "w") as handle:
        handle.write("new")
        raise KeyboardInterrupt
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


def test_write_image_round_trips_and_follows_the_extension(u8, tmp_path):
    png, jpg = tmp_path / "a.png", tmp_path / "b.JPG"
    write_image(u8, png)
    write_image(u8, jpg)
    np.testing.assert_array_equal(load_rgb(png), u8)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert jpg.read_bytes()[:3] == b"\xff\xd8\xff"
    grey = tmp_path / "grey.png"
    write_image(u8[..., :1], grey)
    with Image.open(grey) as image:
        assert image.mode == "L"


def test_write_image_into_a_blocked_folder_names_the_path(u8, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(OSError) as caught:
        write_image(u8, blocker / "out.png")
    assert str(blocker) in str(caught.value.filename)


# read_yaml


def test_read_yaml_reads_a_mapping(tmp_path):
    path = tmp_path / "conf.yml"
    path.write_text("image_size: 32\nname: test\n")
    assert read_yaml(path) == {"image_size": 32, "name": "test"}


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (None, "no such config file"),
        ("a: [1, 2\n", "not valid YAML"),
        ("- 1\n- 2\n", "mapping"),
        ("just a string\n", "mapping"),
        ("", "mapping"),
    ],
)
def test_read_yaml_errors_name_the_file(tmp_path, text, words):
    path = tmp_path / "conf.yml"
    if text is not None:
        path.write_text(text)
    with pytest.raises(RepaintError, match=words) as caught:
        read_yaml(path)
    assert str(caught.value).startswith(f"{path}: ")


# center_crop_resize


def test_center_crop_resize_returns_the_model_size():
    rng = np.random.default_rng(3)
    for height, width in [(50, 80), (80, 50), (200, 300), (33, 33), (20, 40)]:
        image = Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))
        assert center_crop_resize(image, 32).shape == (32, 32, 3)


def test_center_crop_resize_is_a_centre_crop_when_the_short_side_fits(u8):
    rng = np.random.default_rng(4)
    square = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(center_crop_resize(Image.fromarray(square), 32), square)
    wide = rng.integers(0, 256, (32, 48, 3), dtype=np.uint8)
    np.testing.assert_array_equal(center_crop_resize(Image.fromarray(wide), 32), wide[:, 8:40])
    tall = rng.integers(0, 256, (51, 32, 3), dtype=np.uint8)
    np.testing.assert_array_equal(center_crop_resize(Image.fromarray(tall), 32), tall[9:41])


def test_center_crop_resize_keeps_a_flat_colour():
    image = Image.new("RGB", (300, 200), (12, 130, 250))
    result = center_crop_resize(image, 32)
    assert (result == np.array([12, 130, 250], dtype=np.uint8)).all()


# list_images


def test_list_images_recurses_and_sorts_by_path(tmp_path):
    names = ["b.png", "a.jpg", "Z.jpeg", "sub/c.PNG", "sub/deeper/d.gif", "sub/a.png"]
    for name in [*names, "notes.txt", "sub/e.bmp", "x.png/inner.txt"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    expected = sorted((tmp_path / name for name in names), key=str)
    assert [p.name for p in expected][:3] == ["Z.jpeg", "a.jpg", "b.png"]
    assert list_images(tmp_path) == expected


def test_list_images_of_a_missing_folder_names_it(tmp_path):
    with pytest.raises(RepaintError, match="no such image folder") as caught:
        list_images(tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(caught.value)
