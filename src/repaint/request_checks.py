"""The checks of `InpaintRequest`'s values, each raising a `FieldError` naming its field (no
torch: the command line runs them before anything heavy is imported)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from repaint.errors import FieldError, RepaintError
from repaint.schedule import JumpSchedule, TimeList

if TYPE_CHECKING:
    from repaint.request import InpaintRequest
    from repaint.samplers import SamplerSpec

MAX_EXTEND = 16_384  # pixels per side; the canvas is also held to $REPAINT_MAX_PIXELS


def integer(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError(name, f"expected a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"at least {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise FieldError(name, f"must be {bound}, got {value}")


def number(name: str, value: Any, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise FieldError(name, f"expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise FieldError(name, f"must be at least {minimum:g}, got {value:g}")
    return float(value)


def choice(name: str, value: Any, choices: Any) -> None:
    if value not in choices:
        raise FieldError(name, f"unknown value {value!r}; use one of {', '.join(choices)}")


def time_list(given: Mapping[str, Any], name: str) -> TimeList:
    """`{"times": [...]}` alone: a time list replaces the whole schedule."""
    others = sorted(set(given) - {"times"})
    if others:
        drop = ", ".join("{" + f"{name}.{key}" + "}" for key in others)
        raise FieldError(name, f"a time list replaces the whole schedule; drop {drop}")
    try:
        listed = TimeList(given["times"], where="times")
    except RepaintError as error:
        raise FieldError(name, str(error)) from None
    if listed.t_T < 2:
        raise FieldError(name, "at least 2 denoising levels are needed, e.g. [1, 0, -1]")
    return listed


def sides(value: Any) -> tuple[int, int, int, int]:
    """LEFT,TOP,RIGHT,BOTTOM pixels (one number: every side), not all zero."""
    given = [value] * 4 if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(given, str | bytes) or not isinstance(given, Sequence) or len(given) != 4:
        raise FieldError("extend", f"expected LEFT,TOP,RIGHT,BOTTOM in pixels, got {value!r}")
    for side in given:
        if isinstance(side, bool) or not isinstance(side, int) or not 0 <= side <= MAX_EXTEND:
            raise FieldError(
                "extend",
                f"each side must be a whole number of pixels in [0, {MAX_EXTEND}], got {value!r}",
            )
    if not any(given):
        raise FieldError("extend", "all four sides are 0; give the pixels to add")
    return (given[0], given[1], given[2], given[3])


def eta_value(value: Any) -> float | str:
    """`ddpm` (ancestral steps), or a DDIM eta in [0, 1] from a number or its text."""
    if value is None or value == "ddpm":
        return "ddpm"
    try:
        figure = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        figure = math.nan
    if not 0 <= figure <= 1:
        raise FieldError("eta", f"use ddpm or a DDIM eta in [0, 1], got {value!r}")
    return figure


def check_branching(request: InpaintRequest, spec: SamplerSpec) -> dict[str, Any] | None:
    """A branch level on the way down of a sampler that branches, and a branch schedule of
    the same t_T; returns the branch schedule as plain data."""
    given: Any = request.branch_schedule
    if given is not None:
        if request.branch_at is None:
            raise FieldError("branch_schedule", "the branches' schedule needs {branch_at}")
        if isinstance(given, TimeList):
            given = given.params()
        if not isinstance(given, Mapping):
            raise FieldError("branch_schedule", "expected a mapping of schedule keys")
        if "t_T" in given:
            raise FieldError("branch_schedule", "t_T is the shared run's; leave it out")
        if "times" in given:
            given = time_list(given, "branch_schedule").params()
        elif given and isinstance(request.jump_schedule, TimeList):
            raise FieldError(
                "branch_schedule",
                "changes jump parameters, but the run's schedule is a time list; give the "
                "branches a time list too",
            )
        given = dict(given) or None
    if request.branch_at is None:
        return given
    if not spec.branches:
        raise FieldError(
            "branch_at",
            f"branches continue a sampler's state; {spec.name} cannot branch, so use "
            "{num_samples} (or the repaint sampler)",
        )
    t_T = request.jump_schedule.t_T
    integer("branch_at", request.branch_at, 0, t_T - 1)
    if given:
        branch = (
            TimeList(tuple(given["times"]))
            if "times" in given
            else JumpSchedule.from_params({**request.jump_schedule.params(), **given})
        )
        if branch.t_T != t_T:
            raise FieldError(
                "branch_schedule",
                f"starts at t_T={branch.t_T}, but the shared run's t_T is {t_T}; both must "
                "start at the same level",
            )
        if isinstance(branch, JumpSchedule):
            JumpSchedule.from_params(branch.params()).counts()
    return given
