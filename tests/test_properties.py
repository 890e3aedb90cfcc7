"""Property tests: any schedule parameters give a valid time list or one RepaintError, never
a hang, and the counts taken without building the list equal the list's; any array or byte
string is an image (or mask) or one RepaintError."""

from __future__ import annotations

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from repaint.errors import RepaintError
from repaint.io import load_rgb, open_image
from repaint.masks import load_mask
from repaint.schedule import NEVER, JumpSchedule

small = st.integers(min_value=1, max_value=6)
params = st.fixed_dictionaries(
    {
        "t_T": st.integers(min_value=1, max_value=80),
        "n_sample": st.integers(min_value=1, max_value=3),
        "jump_length": st.integers(min_value=1, max_value=15),
        "jump_n_sample": small,
        "jump2_length": small,
        "jump2_n_sample": st.integers(min_value=1, max_value=3),
        "jump3_length": small,
        "jump3_n_sample": st.integers(min_value=1, max_value=3),
        "start_resampling": st.one_of(st.just(NEVER), st.integers(min_value=0, max_value=80)),
        "stop_resampling": st.one_of(st.just(0), st.integers(min_value=0, max_value=80)),
    }
)


@settings(max_examples=300, deadline=None)
@given(params)
def test_counts_equal_the_expanded_list(values):
    schedule = JumpSchedule(**values)
    try:
        times = schedule.times()
    except RepaintError:
        return  # refused in one line; the counts may refuse the same parameters or not
    reverse = sum(1 for a, b in itertools.pairwise(times) if b < a)
    assert schedule.counts() == (reverse, len(times) - 1 - reverse)
    assert times[0] == schedule.t_T - 1 and times[-1] == -1
    assert all(abs(a - b) == 1 for a, b in itertools.pairwise(times))


@settings(max_examples=200, deadline=None)
@given(
    st.integers(min_value=-5, max_value=10**12),
    st.integers(min_value=-5, max_value=10**6),
    st.integers(min_value=-5, max_value=10**6),
    st.integers(min_value=-5, max_value=50),
)
def test_any_numbers_give_a_count_or_one_error_quickly(t_T, jump_length, jump_n_sample, n_sample):
    """Huge values are refused by the cost limit before anything is expanded (a schedule of
    a million evaluations counts in about a second in the worst case)."""
    try:
        schedule = JumpSchedule(
            t_T=t_T, jump_length=jump_length, jump_n_sample=jump_n_sample, n_sample=n_sample
        )
        reverse, forward = schedule.counts(limit=20_000)
    except RepaintError as error:
        assert "\n" not in str(error)
        return
    assert schedule.t_T <= reverse <= 20_000 and forward >= 0


dtypes = st.sampled_from([np.uint8, np.uint16, np.int32, np.float32, np.float64, np.bool_])
shapes = st.one_of(
    hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
    st.tuples(st.integers(1, 6), st.integers(1, 6), st.sampled_from([1, 3, 4])),
)


@settings(max_examples=300, deadline=None)
@given(hnp.arrays(dtypes, shapes, elements={"allow_nan": True, "allow_infinity": True}))
def test_any_array_is_an_image_or_one_error(array):
    try:
        rgb = load_rgb(array, "x")
    except RepaintError as error:
        assert "\n" not in str(error) and str(error).startswith("x")
        return
    assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[-1] == 3
    assert rgb.shape[:2] == array.shape[:2]


@settings(max_examples=300, deadline=None)
@given(
    hnp.arrays(dtypes, shapes, elements={"allow_nan": True, "allow_infinity": True}),
    st.sampled_from(["keep", "fill"]),
)
def test_any_array_is_a_mask_or_one_error(array, mode):
    try:
        keep = load_mask(array, mode=mode, name="m")
    except RepaintError as error:
        assert "\n" not in str(error) and str(error).startswith("m")
        return
    assert keep.dtype == bool and keep.shape == array.shape[:2]


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_an_image_or_one_error(data):
    try:
        image = open_image(data, name="upload")
    except RepaintError as error:
        assert "\n" not in str(error) and str(error).startswith("upload")
        return
    assert image.size[0] * image.size[1] >= 1
