"""One inpainting request: every choice a user makes, checked once, from every door.

The command line builds an `InpaintRequest` from flags, the web app from its form, a sidecar
from JSON and the Python API from keywords; each output's sidecar is written from it and
read back into it. Construction refuses a bad value with a `RepaintError` that names the
flag and the fix, before any image is read or model loaded. The request is frozen: a run
that draws a fresh seed makes a copy (`with_seed`) rather than changing the caller's.

This module imports no torch, so argument errors and `--help` stay fast.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from repaint.choices import DTYPES, FIT_MODES, MASK_MODES, SAMPLER_CHOICES
from repaint.errors import RepaintError
from repaint.imagenet import parse_class
from repaint.presets import DEFAULT_PRESET, get_preset
from repaint.schedule import JumpSchedule, Schedule, TimeList

MAX_SEED = 2**63 - 1
MAX_SAMPLES = 10_000  # per image: beyond this a typo, not a plan
MAX_EXTEND = 16_384  # pixels per side; the canvas is also held to $REPAINT_MAX_PIXELS


def flag(name: str) -> str:
    """The command-line flag of a request field, as errors name it."""
    return "--" + name.replace("_", "-")


@dataclass(frozen=True)
class InpaintRequest:
    """How to inpaint (the model is chosen separately). Defaults are the product's."""

    preset: str = DEFAULT_PRESET
    schedule: Mapping[str, Any] | Schedule | None = None  # preset overrides, or {"times": [...]}
    eta: float | str | None = None  # "ddpm", a DDIM eta in [0, 1]; None: the preset's
    num_samples: int = 1
    seed: int | None = None  # None: a fresh seed per run, recorded in the result
    mask_mode: str = "keep"  # see repaint.choices.MASK_MODES
    grow: int = 0  # pixels (latent cells for Stable Diffusion) added around the hole
    fit: str = "auto"  # see repaint.regions
    mask_blur: int | None = None  # feathered edge in pixels; None: the model family's default
    context: float = 0.5  # region mode: context around a hole, as a share of its size
    extend: tuple[int, int, int, int] | None = None  # pixels added (left, top, right, bottom)
    prompt: str | None = None  # text-conditioned (Stable Diffusion) models only
    negative_prompt: str = ""
    guidance_scale: float | None = None  # classifier-free guidance; None: 7.5
    class_label: int | str | None = None  # ImageNet class id or name
    classifier_scale: float | None = None  # None: the model's
    dtype: str = "fp32"
    compile: bool = False
    channels_last: bool = False
    batch_size: int | None = None  # windows x samples per network call; None: by memory
    branch_at: int | None = None  # samples share one run down to this level, then branch
    branch_schedule: Mapping[str, Any] | TimeList | None = None  # the branches' own, if any
    sampler: str = "repaint"  # see repaint.choices.SAMPLER_CHOICES

    def __post_init__(self) -> None:
        preset = get_preset(self.preset)
        _choice("sampler", self.sampler, SAMPLER_CHOICES)
        if self.sampler != "repaint" and self.eta not in (None, "ddpm"):
            raise RepaintError(
                f"--eta: chooses RePaint's step between jumps; --sampler {self.sampler} takes "
                "its own steps, so drop --eta"
            )
        self._set("schedule", self._overrides(preset.schedule))
        self._set("eta", _eta(preset.eta if self.eta is None else self.eta))
        _integer("num_samples", self.num_samples, 1, MAX_SAMPLES)
        if self.seed is not None:
            _integer("seed", self.seed, 0, MAX_SEED)
        _choice("mask_mode", self.mask_mode, MASK_MODES)
        _integer("grow", self.grow, 0)
        _choice("fit", self.fit, FIT_MODES)
        if self.mask_blur is not None:
            _integer("mask_blur", self.mask_blur, 0)
        self._set("context", _number("context", self.context, 0.0))
        if self.extend is not None:
            self._set("extend", _sides(self.extend))
            if self.fit != "auto":
                raise RepaintError(
                    "--extend: it plans its own windows at the model's size; drop --fit"
                )
            if self.branch_at is not None:
                raise RepaintError(
                    "--extend: its windows depend on each other, so runs cannot branch; drop "
                    "--branch-at"
                )
        for name in ("prompt", "negative_prompt"):
            value = getattr(self, name)
            if not (isinstance(value, str) or (value is None and name == "prompt")):
                raise RepaintError(f"{flag(name)}: expected text, got {value!r}")
        if self.guidance_scale is not None:
            self._set("guidance_scale", _number("guidance_scale", self.guidance_scale))
        if self.class_label is not None:
            try:
                self._set("class_label", parse_class(self.class_label))
            except RepaintError as error:
                raise RepaintError(f"--class: {error}") from None
        if self.classifier_scale is not None:
            self._set("classifier_scale", _number("classifier_scale", self.classifier_scale, 0.0))
        _choice("dtype", self.dtype, DTYPES)
        for name in ("compile", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                raise RepaintError(f"{flag(name)}: expected true or false")
        if self.batch_size is not None:
            _integer("batch_size", self.batch_size, 1, MAX_SAMPLES)
        self._check_branching()

    def _check_branching(self) -> None:
        """A branch level on the way down, and a branch schedule of the same t_T."""
        if self.branch_schedule is not None:
            if self.branch_at is None:
                raise RepaintError("--branch-jump-length and the like need --branch-at LEVEL")
            given = self.branch_schedule
            if isinstance(given, TimeList):
                given = given.params()
            if not isinstance(given, Mapping):
                raise RepaintError("branch_schedule: expected a mapping of schedule keys")
            if "t_T" in given:
                raise RepaintError("branch_schedule: t_T is the shared run's; leave it out")
            if "times" in given:
                given = _time_list(given, "--branch-schedule-file").params()
            elif given and isinstance(self.jump_schedule, TimeList):
                raise RepaintError(
                    "--branch-jump-length/--branch-jump-n-sample change jump parameters, but "
                    "the run's schedule is a time list; give the branches one with "
                    "--branch-schedule-file"
                )
            self._set("branch_schedule", dict(given) or None)
            branch = self.branch_jump_schedule
            if branch.t_T != self.jump_schedule.t_T:
                raise RepaintError(
                    f"--branch-schedule-file: starts at t_T={branch.t_T}, but the shared run's "
                    f"t_T is {self.jump_schedule.t_T}; both must start at the same level"
                )
            if isinstance(branch, JumpSchedule):
                JumpSchedule.from_params(branch.params()).counts()
        if self.branch_at is not None and self.sampler != "repaint":
            raise RepaintError(
                f"--branch-at: branches continue RePaint's sampler state; --sampler "
                f"{self.sampler} cannot branch, so use --num-samples (or --sampler repaint)"
            )
        if self.branch_at is not None:
            t_T = self.jump_schedule.t_T
            _integer("branch_at", self.branch_at, 0, t_T - 1)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _overrides(self, base: JumpSchedule) -> dict[str, int] | None:
        """The schedule keys that differ from the preset's, after checking the whole."""
        given = self.schedule
        if given is None:
            return None
        if isinstance(given, JumpSchedule | TimeList):
            given = given.params()
        if not isinstance(given, Mapping):
            raise RepaintError(f"schedule: expected a mapping of schedule keys, got {given!r}")
        if "times" in given:
            return _time_list(given, "--schedule-file").params()
        merged = JumpSchedule.from_params({**base.params(), **given})
        if merged.t_T < 2:
            raise RepaintError(f"--t-T: at least 2 denoising levels are needed, got {merged.t_T}")
        merged.counts()  # refuses a schedule too long to run, in well under a second
        changed = {
            key: value for key, value in merged.params().items() if base.params()[key] != value
        }
        return changed or None

    @property
    def jump_schedule(self) -> Schedule:
        """The preset's jump schedule with the overrides, or the time list given instead."""
        if self.schedule and "times" in self.schedule:
            return TimeList(tuple(self.schedule["times"]))
        base = get_preset(self.preset).schedule
        return replace(base, **self.schedule) if self.schedule else base

    @property
    def branch_jump_schedule(self) -> Schedule:
        """The schedule of the branches after the shared part (the run's, unless changed)."""
        if not self.branch_schedule:
            return self.jump_schedule
        if "times" in self.branch_schedule:
            return TimeList(tuple(self.branch_schedule["times"]))
        return JumpSchedule.from_params({**self.jump_schedule.params(), **self.branch_schedule})

    @property
    def sampler_eta(self) -> float | None:
        """What the sampler takes: None for ancestral DDPM steps, else the DDIM eta."""
        return None if self.eta == "ddpm" else float(self.eta)

    def describe_sampler(self) -> str:
        if self.sampler != "repaint":
            return self.sampler
        return "ddpm" if self.eta == "ddpm" else f"ddim eta={self.eta:g}"

    def with_seed(self, seed: int) -> InpaintRequest:
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; `from_dict` of it gives an equal request."""
        data = asdict(self)
        data["schedule"] = None if self.schedule is None else dict(self.schedule)
        data["branch_schedule"] = None if not self.branch_schedule else dict(self.branch_schedule)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "options") -> InpaintRequest:
        """A request from JSON (sidecars, the web form); unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise RepaintError(f"{where}: expected a JSON object of request options")
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise RepaintError(
                f"{where}: unknown option {unknown[0]!r}; known options: {', '.join(sorted(known))}"
            )
        return cls(**data)

    @classmethod
    def from_options(cls, request: InpaintRequest | None = None, **options: Any) -> InpaintRequest:
        """`request` with `options` (keyword arguments of the Python API) applied."""
        known = {field.name for field in fields(cls)}
        unknown = sorted(set(options) - known)
        if unknown:
            raise RepaintError(
                f"unknown inpainting option {unknown[0]!r}; "
                f"known options: {', '.join(sorted(known))}"
            )
        if request is not None and not isinstance(request, InpaintRequest):
            raise RepaintError(
                f"request: expected an InpaintRequest, got {type(request).__name__}; pass "
                "options as keywords instead"
            )
        if request is None:
            return cls(**options)
        return replace(request, **options) if options else request


def _integer(name: str, value: Any, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise RepaintError(f"{flag(name)}: expected a whole number, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bound = f"at least {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise RepaintError(f"{flag(name)}: must be {bound}, got {value}")


def _number(name: str, value: Any, minimum: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise RepaintError(f"{flag(name)}: expected a finite number, got {value!r}")
    if minimum is not None and value < minimum:
        raise RepaintError(f"{flag(name)}: must be at least {minimum:g}, got {value:g}")
    return float(value)


def _choice(name: str, value: Any, choices: Any) -> None:
    if value not in choices:
        raise RepaintError(
            f"{flag(name)}: unknown value {value!r}; use one of {', '.join(choices)}"
        )


def _time_list(given: Mapping[str, Any], option: str) -> TimeList:
    """`{"times": [...]}` alone: a time list replaces the whole schedule."""
    others = sorted(set(given) - {"times"})
    if others:
        raise RepaintError(
            f"{option}: a time list replaces the whole schedule; drop "
            f"{', '.join(flag(name) for name in others)}"
        )
    listed = TimeList(given["times"], where=option)
    if listed.t_T < 2:
        raise RepaintError(f"{option}: at least 2 denoising levels are needed, e.g. [1, 0, -1]")
    return listed


def _sides(value: Any) -> tuple[int, int, int, int]:
    """LEFT,TOP,RIGHT,BOTTOM pixels (one number: every side), not all zero."""
    sides = [value] * 4 if isinstance(value, int) and not isinstance(value, bool) else value
    if isinstance(sides, str | bytes) or not isinstance(sides, Sequence) or len(sides) != 4:
        raise RepaintError(f"--extend: expected LEFT,TOP,RIGHT,BOTTOM in pixels, got {value!r}")
    for side in sides:
        if isinstance(side, bool) or not isinstance(side, int) or not 0 <= side <= MAX_EXTEND:
            raise RepaintError(
                f"--extend: each side must be a whole number of pixels in [0, {MAX_EXTEND}], "
                f"got {value!r}"
            )
    if not any(sides):
        raise RepaintError("--extend: all four sides are 0; give the pixels to add")
    return (sides[0], sides[1], sides[2], sides[3])


def _eta(value: Any) -> float | str:
    """`ddpm` (ancestral steps), or a DDIM eta in [0, 1] from a number or its text."""
    if value is None or value == "ddpm":
        return "ddpm"
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not 0 <= number <= 1:
        raise RepaintError(f"--eta: use ddpm or a DDIM eta in [0, 1], got {value!r}")
    return number
