"""Extending an image: a larger canvas filled window by window, the original untouched."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from repaint.cli import main
from repaint.errors import RepaintError
from repaint.loading import load_inpainter
from repaint.regions import MIN_CONTEXT, extend_canvas, plan_extension
from tests.test_branching import network_calls, unet_calls
from tests.test_inpaint import photo

SHORT = {"t_T": 6, "jump_length": 2, "jump_n_sample": 2}
# By hand: from level 5 down, a jump 2 levels back up fires when the run first reaches a
# segment end below t_T - 2 = 4, i.e. 2 and 0, so one window's run steps down from
#   5 4 3 (2 -> 4) 4 3 2 1 (0 -> 2) 2 1 0: 10 model evaluations (6 levels + 2 jumps x 2).
WINDOW_LEVELS = [5, 4, 3, 4, 3, 2, 1, 2, 1, 0]
STEPS_6 = (0, 200, 400, 599, 799, 999)  # level i: diffusion step round(i * 999 / 5)
SHORT_FLAGS = ["--t-T", "6", "--jump-length", "2", "--jump-n-sample", "2", "--no-progress"]


@pytest.fixture(scope="module")
def inpainter(tiny_model):
    return load_inpainter(tiny_model, device="cpu")


@settings(max_examples=60, deadline=None)
@given(
    size=st.sampled_from([8, 16, 32]),
    height=st.integers(4, 60),
    width=st.integers(4, 60),
    sides=st.tuples(*[st.integers(0, 40)] * 4).filter(any),
)
def test_the_plan_covers_every_new_pixel_each_window_adding_some_next_to_known(
    size, height, width, sides
):
    keep = np.ones((height, width), dtype=bool)
    _, grown = extend_canvas(np.zeros((height, width, 3), np.uint8), keep, sides)
    windows = plan_extension(~grown, size)
    done = grown.copy()
    for window in windows:
        rows, cols, _, _ = window.clip(*done.shape)
        assert (window.height, window.width) == (size, size)
        assert not done[rows, cols].all()  # each window generates something
        assert done[rows, cols].any()  # from context already there
        done[rows, cols] = True
    assert done.all()
    area = (height + sides[1] + sides[3]) * (width + sides[0] + sides[2])
    assert len(windows) <= -(-area // ((1 - MIN_CONTEXT) * size * size)) * 4 + 4


def test_a_texture_extended_to_96x64_keeps_the_original_and_fills_the_rest(inpainter):
    texture = photo(32, 32, seed=3)
    sides = (32, 16, 32, 16)
    with network_calls(inpainter, STEPS_6) as calls:
        result = inpainter(texture, None, schedule=SHORT, seed=2, num_samples=2, extend=sides)
    start, _ = extend_canvas(texture, np.ones((32, 32), bool), sides)
    covered = np.zeros((64, 96), dtype=bool)
    for window in result.windows:
        rows, cols, _, _ = window.clip(64, 96)
        covered[rows, cols] = True
    assert covered.all() and result.fit == "extend"
    # The greedy plan on this 64x96 canvas (32 px windows on an 8 px grid, each with at
    # least a quarter of it known), worked out by hand, (top, left): (0, 16) and (0, 48)
    # above the tile, (16, 0) and (16, 64) beside it, 768 new pixels each; (32, 0), (32, 32)
    # and (32, 64) along the bottom strip, 512 each; (0, 0) and (0, 64), the top corners,
    # 256 each. Nine windows, the two samples of each in one batch of 10 network calls.
    plan = [(0, 16), (0, 48), (16, 0), (16, 64), (32, 0), (32, 32), (32, 64), (0, 0), (0, 64)]
    assert [(window.top, window.left) for window in result.windows] == plan
    assert calls.levels == 9 * WINDOW_LEVELS and calls.batch_sizes == [2] * 90
    assert calls.evaluations == 9 * 2 * 10 == result.model_evaluations == 180
    new = np.ones((64, 96), dtype=bool)
    new[16:48, 32:64] = False
    for image in result.images:
        out = np.asarray(image)
        assert out.shape == (64, 96, 3)
        assert np.array_equal(out[16:48, 32:64], texture)  # bit for bit
        assert (out[new] != start[new]).any(axis=-1).mean() > 0.99  # every new pixel generated
    first, second = (np.asarray(image) for image in result.images)
    assert (first[new] != second[new]).any(axis=-1).mean() > 0.9  # samples differ


def test_a_mask_inside_is_filled_too_and_extension_does_not_branch(inpainter):
    texture = photo(32, 32, seed=4)
    keep = np.ones((32, 32), dtype=bool)
    keep[10:20, 10:20] = False
    with network_calls(inpainter, STEPS_6) as calls:
        result = inpainter(texture, keep, schedule=SHORT, seed=1, extend=(0, 0, 16, 0))
    # a 32x48 canvas: the window at left 16 takes the new strip and the hole's right part
    # (552 new pixels), the one at left 0 the rest of the hole (60); 2 x 10 evaluations
    assert [(window.top, window.left) for window in result.windows] == [(0, 16), (0, 0)]
    assert calls.levels == 2 * WINDOW_LEVELS and calls.evaluations == result.model_evaluations
    assert result.model_evaluations == 20
    out = np.asarray(result.image)
    assert out.shape == (32, 48, 3)
    assert np.array_equal(out[:, :32][keep], texture[keep])
    assert (out[10:20, 10:20] != texture[10:20, 10:20]).any()
    for options, words in [
        ({"branch_at": 2, "num_samples": 2}, "extend: .* drop branch_at"),
        ({"fit": "pad"}, "extend: .* drop fit"),
        ({"extend": (1, 2, 3)}, "LEFT,TOP,RIGHT,BOTTOM"),
        ({"extend": (0, 0, 0, 0)}, "all four sides are 0"),
        ({"extend": (-1, 0, 0, 0)}, "whole number of pixels"),
    ]:
        with pytest.raises(RepaintError, match=words):
            inpainter(texture, None, schedule=SHORT, seed=1, **{"extend": 8, **options})
    with pytest.raises(RepaintError, match="a mask is needed"):
        inpainter(texture, None, schedule=SHORT, seed=1)


def test_the_command_line_extends_without_a_mask_and_redoes_it_from_the_sidecar(
    tiny_model, tmp_path, capsys
):
    Image.fromarray(photo(32, 32, seed=5)).save(tmp_path / "tile.png")
    out, again = tmp_path / "out", tmp_path / "again"
    args = ["inpaint", str(tmp_path / "tile.png"), "--model", str(tiny_model), "--seed", "9"]
    args += ["--extend", "16,0,16,8", "--grid", "--out", str(out), *SHORT_FLAGS]
    with unet_calls(STEPS_6) as calls:
        assert main(args) == 0
    assert calls.levels == 4 * WINDOW_LEVELS and calls.evaluations == 40
    # a 64x40 canvas, the tile in rows 0-31, columns 16-47: windows (8, 0) and (8, 32), 640
    # new pixels each, then the two 8x16 top corners, (0, 0) and (0, 32): 4 x 10 evaluations
    assert "4 window(s) x 1 sample(s) x 10 = 40 model evaluations" in capsys.readouterr().err
    sidecar = json.loads((out / "tile.json").read_text())
    assert sidecar["mask"] is None and sidecar["options"]["extend"] == [16, 0, 16, 8]
    assert sidecar["model_evaluations"] == 40
    assert Image.open(out / "tile.png").size == (64, 40)
    assert Image.open(out / "tile_grid.png").width > 3 * 64
    assert main(["inpaint", "--from-sidecar", str(out / "tile.json"), "--out", str(again)]) == 0
    assert (again / "tile.png").read_bytes() == (out / "tile.png").read_bytes()
    with pytest.raises(SystemExit) as exit_code:
        main([*args[: -len(SHORT_FLAGS)], "--extend", "8,x", *SHORT_FLAGS])
    assert exit_code.value.code == 2
    assert "--extend: expected LEFT,TOP,RIGHT,BOTTOM" in capsys.readouterr().err
