"""Property tests: any schedule parameters give a valid time list or one RepaintError, never
a hang, and the counts taken without building the list equal the list's."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from repaint.errors import RepaintError
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
