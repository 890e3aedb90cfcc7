"""RePaint's time schedule: when to denoise, and when to jump back up the chain.

The schedule is a list of respaced time levels starting at `t_T - 1` and ending at `-1`,
each entry one step away from the previous. Going down from `a` to `a - 1` is one reverse
(model) step at `t = a`; going up from `a` to `a + 1` is one forward "undo" step that
re-noises into level `a + 1`. The parameters and the resulting list are those of the
reference's `get_schedule_jump`.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from repaint.errors import RepaintError

NEVER = 100_000_000  # the reference's "resampling from the start" sentinel
MAX_EVALUATIONS = 1_000_000  # per image: hours of a 256 px UNet on a GPU


class _Costs:
    """What both kinds of schedule derive from their `times()`, `counts()` and `t_T`."""

    def pairs(self) -> list[tuple[int, int]]:
        """Consecutive (t, next t) transitions: reverse when next < t, forward otherwise."""
        return list(itertools.pairwise(self.times()))  # type: ignore[attr-defined]

    @property
    def reverse_steps(self) -> int:
        """Model evaluations per image."""
        return self.counts()[0]  # type: ignore[attr-defined]

    @property
    def forward_steps(self) -> int:
        return self.counts()[1]  # type: ignore[attr-defined]

    def _cost_lines(self) -> list[str]:
        reverse, forward = self.counts()  # type: ignore[attr-defined]
        t_T = self.t_T  # type: ignore[attr-defined]
        return [
            f"{reverse} model evaluations per image "
            f"({t_T} denoising levels, {reverse - t_T} of them repeated by resampling)",
            f"{forward} forward (re-noising) steps, {reverse + forward} transitions in all",
        ]


@dataclass(frozen=True)
class JumpSchedule(_Costs):
    """RePaint's resampling schedule (reference names and defaults).

    `jump_length` forward steps are taken every `jump_length` reverse steps, and each such
    segment is denoised `jump_n_sample` times in all. `jump2_*` and `jump3_*` nest shorter
    jumps inside each segment; `n_sample` repeats every single reverse step; resampling only
    happens at levels `t <= start_resampling` (the reference's late-only resampling) and
    `t >= stop_resampling` (ours: early-only resampling; 0, the default, changes nothing).
    """

    t_T: int = 250
    n_sample: int = 1
    jump_length: int = 10
    jump_n_sample: int = 10
    jump2_length: int = 1
    jump2_n_sample: int = 1
    jump3_length: int = 1
    jump3_n_sample: int = 1
    start_resampling: int = NEVER
    stop_resampling: int = 0

    def __post_init__(self) -> None:
        for entry in fields(self):
            value = getattr(self, entry.name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise RepaintError(
                    f"schedule_jump_params.{entry.name}: expected an integer, got {value!r}"
                )
            minimum = 0 if entry.name.endswith("_resampling") else 1
            if value < minimum:
                raise RepaintError(
                    f"schedule_jump_params.{entry.name}: must be >= {minimum}, got {value}"
                )

    @classmethod
    def from_params(cls, params: dict) -> JumpSchedule:
        """Build from a reference `schedule_jump_params` mapping, rejecting unknown keys."""
        known = {entry.name for entry in fields(cls)}
        unknown = sorted(set(params) - known)
        if unknown:
            raise RepaintError(
                f"schedule_jump_params: unknown key(s) {', '.join(unknown)}; "
                f"known keys are {', '.join(sorted(known))}"
            )
        if "t_T" not in params:
            raise RepaintError("schedule_jump_params.t_T: required key is missing")
        return cls(**params)

    def params(self) -> dict[str, int]:
        return asdict(self)

    def times(self) -> list[int]:
        """The time list, exactly as the reference's `get_schedule_jump` yields it (after
        `counts` has refused a schedule too long to build)."""
        self.counts()
        t_T, start, stop = self.t_T, self.start_resampling, self.stop_resampling
        # Outermost first; a jump at one level re-arms every level nested inside it.
        levels = [
            (self.jump_length, self.jump_n_sample),
            (self.jump2_length, self.jump2_n_sample),
            (self.jump3_length, self.jump3_n_sample),
        ]

        def left(depth: int, t: int) -> int:
            """Extra passes still due at segment end `t` (ends are 0, length, 2*length, ...
            below t_T - length); passes used are recorded, so re-arming is clearing."""
            length, n_sample = levels[depth]
            if n_sample <= 1 or t % length or not 0 <= t < t_T - length:
                return 0
            return n_sample - 1 - used[depth].get(t, 0)

        used: list[dict[int, int]] = [{} for _ in levels]
        times: list[int] = []
        t = t_T
        while t >= 1:
            t -= 1
            times.append(t)
            if t + 1 < t_T - 1 and stop <= t <= start:
                for _ in range(self.n_sample - 1):
                    times += [t + 1, t]
            for depth in reversed(range(len(levels))):
                length = levels[depth][0]
                if left(depth, t) > 0 and stop <= t <= start - length:
                    used[depth][t] = used[depth].get(t, 0) + 1
                    times += range(t + 1, t + length + 1)
                    t += length
                    for inner in range(depth + 1, len(levels)):
                        used[inner].clear()
        times.append(-1)
        self._check(times)
        return times

    def _check(self, times: list[int]) -> None:
        steps_ok = all(abs(a - b) == 1 for a, b in itertools.pairwise(times))
        range_ok = all(-1 <= t <= self.t_T for t in times)
        if len(times) < 2 or times[0] <= times[1] or times[-1] != -1 or not (steps_ok and range_ok):
            raise RepaintError(
                f"schedule_jump_params {self.params()} give no valid time list; "
                "check that the jump lengths fit within t_T"
            )

    def counts(self, limit: int = MAX_EVALUATIONS) -> tuple[int, int]:
        """(reverse, forward) steps of `times()`, counted without building the list: the
        descent between segment ends is counted in one step, so the work grows with the
        number of jumps, not with the length of the schedule. A schedule of more than
        `limit` model evaluations is refused as soon as the count passes it."""
        if self.t_T > limit:
            self._too_costly(limit)
        t_T, start, repeats = self.t_T, self.start_resampling, self.n_sample - 1
        stop = self.stop_resampling
        levels = [
            (self.jump_length, self.jump_n_sample),
            (self.jump2_length, self.jump2_n_sample),
            (self.jump3_length, self.jump3_n_sample),
        ]
        used: list[dict[int, int]] = [{} for _ in levels]
        reverse = forward = 0
        t = t_T
        while t >= 1:
            # the next level at which a jump may fire: a segment end below t
            target = 0
            for length, n_sample in levels:
                top = min(t - 1, t_T - length - 1, start - length)
                if n_sample > 1 and top >= 0 and top - top % length >= stop:
                    target = max(target, top - top % length)
            reverse += t - target
            last_repeat = min(t - 1, start, t_T - 3)  # levels where n_sample repeats a step
            first_repeat = max(target, stop)
            if repeats and last_repeat >= first_repeat:
                reverse += repeats * (last_repeat - first_repeat + 1)
                forward += repeats * (last_repeat - first_repeat + 1)
            if reverse > limit:
                self._too_costly(limit)
            t = target
            for depth in reversed(range(len(levels))):
                length, n_sample = levels[depth]
                due = n_sample > 1 and t % length == 0 and 0 <= t < t_T - length
                due = due and stop <= t <= start - length
                if due and used[depth].get(t, 0) < n_sample - 1:
                    used[depth][t] = used[depth].get(t, 0) + 1
                    forward += length
                    t += length
                    for inner in range(depth + 1, len(levels)):
                        used[inner].clear()
        return reverse, forward

    def _too_costly(self, limit: int) -> None:
        raise RepaintError(
            f"schedule_jump_params {self.params()}: more than {limit:,} model evaluations "
            "per image; lower t_T, the jump counts or n_sample"
        )

    def summary(self) -> str:
        """A short human description: cost first, then the shape of the schedule."""
        reverse = self.reverse_steps
        lines = self._cost_lines()
        if self.jump_n_sample > 1 and self.jump_length < self.t_T:
            lines.append(
                f"every {self.jump_length} steps: jump back {self.jump_length} levels, "
                f"each segment denoised {self.jump_n_sample} times"
            )
        for depth, (length, n_sample) in enumerate(
            [(self.jump2_length, self.jump2_n_sample), (self.jump3_length, self.jump3_n_sample)],
            start=2,
        ):
            if n_sample > 1:
                lines.append(f"nested jumps (level {depth}): {length} levels, {n_sample} times")
        if self.n_sample > 1:
            lines.append(f"every step repeated {self.n_sample} times (n_sample)")
        if self.start_resampling < NEVER:
            lines.append(f"resampling only at t <= {self.start_resampling}")
        if self.stop_resampling > 0:
            lines.append(f"resampling only at t >= {self.stop_resampling}")
        if reverse == self.t_T:
            lines.append("no resampling: plain ancestral sampling with known-region injection")
        return "\n".join(lines)


@dataclass(frozen=True)
class TimeList(_Costs):
    """A schedule given as its time list (from a file, or edited from `repaint schedule
    --json`), for shapes the jump parameters cannot express. Validated as the reference's
    lists are shaped: it starts at its highest level t_T - 1, moves by one level at a time,
    never goes below 0 before its last entry, and ends at -1."""

    levels: tuple[int, ...]
    where: str = field(default="schedule times", compare=False)  # what errors name

    def __post_init__(self) -> None:
        levels, where = self.levels, self.where
        if isinstance(levels, str | bytes) or not isinstance(levels, Sequence):
            raise RepaintError(f"{where}: expected a list of levels, got {levels!r}")
        for index, level in enumerate(levels):
            if isinstance(level, bool) or not isinstance(level, int):
                raise RepaintError(f"{where}: entry {index} is {level!r}, not a whole number")
        object.__setattr__(self, "levels", tuple(levels))
        if len(levels) < 2 or levels[0] < 0:
            raise RepaintError(
                f"{where}: expected levels from t_T - 1 down to -1, e.g. [1, 0, -1]; "
                f"got {list(levels[:5])}"
            )
        top = levels[0]
        for index, (a, b) in enumerate(itertools.pairwise(levels), start=1):
            if abs(a - b) != 1:
                raise RepaintError(
                    f"{where}: entry {index} goes from {a} to {b}; each step must move by "
                    "exactly one level (+1 re-noises, -1 denoises)"
                )
            if b > top:
                raise RepaintError(
                    f"{where}: entry {index} is {b}, above the first entry {top}; the list "
                    "must start at its highest level, t_T - 1"
                )
            if b < 0 and index != len(levels) - 1:
                raise RepaintError(
                    f"{where}: entry {index} reaches -1 before the end; -1 (the finished "
                    "image) must be the last entry"
                )
        if levels[-1] != -1:
            raise RepaintError(f"{where}: the last entry must be -1, got {levels[-1]}")
        self.counts()

    @classmethod
    def from_file(cls, path: str | Path) -> TimeList:
        """A JSON list of levels, or the object `repaint schedule --json` prints."""
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise RepaintError(f"{path}: no such schedule file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
            raise RepaintError(f"{path}: not a JSON schedule ({error})") from None
        if isinstance(data, dict):
            if "times" not in data:
                raise RepaintError(f'{path}: expected a JSON list of levels or {{"times": [...]}}')
            data = data["times"]
        return cls(data, where=str(path))

    @property
    def t_T(self) -> int:
        return self.levels[0] + 1

    def params(self) -> dict[str, list[int]]:
        return {"times": list(self.levels)}

    def times(self) -> list[int]:
        return list(self.levels)

    def counts(self, limit: int = MAX_EVALUATIONS) -> tuple[int, int]:
        reverse = sum(1 for a, b in itertools.pairwise(self.levels) if b < a)
        if reverse > limit:
            raise RepaintError(
                f"{self.where}: {reverse:,} model evaluations per image, more than {limit:,}"
            )
        return reverse, len(self.levels) - 1 - reverse

    def summary(self) -> str:
        jumps = sum(
            1
            for a, b, c in zip(self.levels, self.levels[1:], self.levels[2:], strict=False)
            if b < a and c > b
        )
        lines = [*self._cost_lines(), f"a time list from {self.where}: {jumps} jump(s) back up"]
        return "\n".join(lines)


Schedule = JumpSchedule | TimeList


def time_list(schedule: Schedule | Sequence[int]) -> list[int]:
    """The levels of a schedule object, or of a list already built."""
    return schedule.times() if isinstance(schedule, JumpSchedule | TimeList) else list(schedule)
