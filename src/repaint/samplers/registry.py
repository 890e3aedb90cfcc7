"""Every sampler, described once: what it is called, what runs it, what it costs, what it
can do and which options it takes. Costs, capability checks, the command line's choices,
the web page's list and its estimates all read these specs; nothing outside this package
compares a sampler's name.

The specs are plain data (functions are named as `module:function` and imported on first
use), so `repaint --help` lists the samplers without importing torch. `register` adds one
(a test registers a toy sampler this way).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any

from repaint.errors import FieldError, RepaintError

PIXEL, LATENT = "pixel", "latent"


@dataclass(frozen=True)
class Option:
    """One hyperparameter of a sampler: its default (the authors') and its bounds."""

    default: float | int | bool
    help: str
    minimum: float | None = None
    maximum: float | None = None
    strictly_above: bool = False  # the minimum itself is not allowed

    def check(self, sampler: str, name: str, value: Any) -> float | int | bool:
        """The value, converted to the default's type, or a `FieldError` naming it."""
        field = f"sampler_options.{name}"
        kind = type(self.default)
        if kind is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "false", "1", "0"):
                return str(value).lower() in ("true", "1")
            raise FieldError(field, f"expected true or false, got {value!r}")
        try:
            number = kind(value) if not isinstance(value, bool) else math.nan
        except (TypeError, ValueError):
            number = math.nan
        if kind is int and isinstance(value, float) and not value.is_integer():
            number = math.nan
        if not math.isfinite(number):
            wanted = "a whole number" if kind is int else "a finite number"
            raise FieldError(field, f"expected {wanted}, got {value!r}")
        low, high = self.minimum, self.maximum
        below = low is not None and (number <= low if self.strictly_above else number < low)
        if below or (high is not None and number > high):
            raise FieldError(field, f"{sampler}'s {name} must be {self.bounds()}, got {value!r}")
        return number

    def bounds(self) -> str:
        if self.minimum is None and self.maximum is None:
            return "any number"
        if self.maximum is None:
            return f"{'above' if self.strictly_above else 'at least'} {self.minimum:g}"
        if self.minimum is None:
            return f"at most {self.maximum:g}"
        opening = "(" if self.strictly_above else "["
        return f"in {opening}{self.minimum:g}, {self.maximum:g}]"


@dataclass(frozen=True)
class SamplerSpec:
    """A training-free inpainting sampler.

    `function` runs it: `(denoiser, diffusion, image, keep_mask, levels, *, generator,
    callback, paste, **options)` plus `eta`, `guidance`, `clip_denoised`, `state`/`until`
    where the flags below say it takes them; `cost` is `(levels, diffusion, **options) ->
    (network calls, backward passes)`. `walk` is how a product schedule becomes its levels:
    "schedule" (the time list, its jumps as time travel) or "straight" (t_T - 1 down to 0)."""

    name: str
    summary: str
    function: str
    cost: str
    reference: str  # whose code it reproduces
    options: Mapping[str, Option] = field(default_factory=dict)
    walk: str = "schedule"
    branches: bool = False  # runs can stop at a level and continue (--branch-at)
    takes_eta: bool = False  # RePaint's DDPM/DDIM step between jumps (--eta)
    guided: bool = False  # classifier guidance
    clip_denoised: bool = False  # honours the model's choice of clipping x0 (latents need it)
    gradients: bool = False  # backward passes through the network
    families: tuple[str, ...] = (PIXEL,)
    cost_is_exact: bool = True  # False: a lower bound (step-size searches add calls)

    def load(self) -> Callable[..., Any]:
        return _resolve(self.function)

    def cost_function(self) -> Callable[..., tuple[int, int]]:
        return _resolve(self.cost)

    def defaults(self) -> dict[str, Any]:
        return {name: option.default for name, option in self.options.items()}

    def checked_options(self, given: Mapping[str, Any] | None) -> dict[str, Any]:
        """`given` over the defaults, each checked; an unknown name is refused."""
        given = dict(given or {})
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            known = ", ".join(self.options) or "none"
            raise FieldError(
                "sampler_options",
                f"{self.name} has no option {unknown[0]!r} (its options: {known})",
            )
        return {
            name: option.check(self.name, name, given[name])
            for name, option in self.options.items()
            if name in given
        }


def _resolve(reference: str) -> Callable[..., Any]:
    module, name = reference.split(":")
    return getattr(import_module(module), name)


SAMPLERS: dict[str, SamplerSpec] = {}


def register(spec: SamplerSpec) -> SamplerSpec:
    SAMPLERS[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    SAMPLERS.pop(name, None)


def get_spec(name: str) -> SamplerSpec:
    if name not in SAMPLERS:
        raise RepaintError(f"unknown sampler {name!r}; known: {', '.join(SAMPLERS)}")
    return SAMPLERS[name]


def sampler_names(family: str | None = None) -> list[str]:
    return [name for name, spec in SAMPLERS.items() if family is None or family in spec.families]


def call_sampler(
    spec: SamplerSpec,
    denoiser: Any,
    diffusion: Any,
    image: Any,
    keep_mask: Any,
    levels: Any,
    *,
    generator: Any,
    callback: Callable[[Any], None] | None = None,
    options: Mapping[str, Any] | None = None,
    eta: float | None = None,
    guidance: Any = None,
    clip_denoised: bool = True,
    until: int | None = None,
    state: Any = None,
) -> Any:
    """Run `spec` on a batch, the known pixels pasted into its output, passing each of
    `eta`, `guidance`, `clip_denoised` and `until`/`state` only where the spec takes it:
    what every door runs, in one place."""
    kwargs = {**spec.defaults(), **(options or {})}
    kwargs.update(generator=generator, callback=callback, paste=True)
    if spec.takes_eta:
        kwargs["eta"] = eta
    if spec.guided:
        kwargs["guidance"] = guidance
    if spec.clip_denoised:
        kwargs["clip_denoised"] = clip_denoised
    if spec.branches:
        kwargs.update(until=until, state=state)
    return spec.load()(denoiser, diffusion, image, keep_mask, levels, **kwargs)
