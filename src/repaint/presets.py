"""Named schedules, next to the schedule they name.

`fast` is the default everywhere (command line, Python, web): the presets benchmark
(docs/presets.md) found it the cheapest schedule that kept the paper's semantic accuracy on
held-out digits. `paper` is Lugmayr et al.'s schedule (2,410 model evaluations per image);
`draft` (90) is for quick looks.
"""

from __future__ import annotations

from dataclasses import dataclass

from repaint.errors import FieldError
from repaint.schedule import JumpSchedule


@dataclass(frozen=True)
class Preset:
    """A jump schedule and the step taken between its jumps."""

    schedule: JumpSchedule
    eta: float | None = None  # None: ancestral DDPM steps (the paper's); a number: DDIM steps

    @property
    def reverse_steps(self) -> int:
        return self.schedule.reverse_steps

    def describe(self) -> str:
        sampler = "" if self.eta is None else f", DDIM eta={self.eta:g}"
        return f"{self.reverse_steps} evaluations{sampler}"


PRESETS: dict[str, Preset] = {
    "paper": Preset(JumpSchedule(t_T=250, jump_length=10, jump_n_sample=10)),
    "fast": Preset(JumpSchedule(t_T=50, jump_length=10, jump_n_sample=5)),
    "draft": Preset(JumpSchedule(t_T=50, jump_length=10, jump_n_sample=2)),
}
DEFAULT_PRESET = "fast"


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise FieldError("preset", f"unknown preset {name!r}; use one of {', '.join(PRESETS)}")
    return PRESETS[name]


def describe_presets() -> str:
    """One line for `--help`: every preset with its cost, the default marked."""
    return ", ".join(
        f"{name} ({preset.describe()}{', default' if name == DEFAULT_PRESET else ''})"
        for name, preset in PRESETS.items()
    )
