"""One inpainting request: every choice a user makes, declared once and checked once, from
every door.

Each field is declared here with its help text, its web label, its flag and its kind
(`entry`); the command line's flags (`repaint.cli.request_flags`), the web form's schema
(`repaint.web.form`) and the Python keywords (the fields themselves) are generated from this
table. Construction refuses a bad value with a `FieldError` naming the field; each door words
it its own way (`--num-samples` on the command line, `options.num_samples` in the web page,
`num_samples` in Python). The request is frozen: a run that draws a fresh seed makes a copy
(`with_seed`). This module imports no torch, so argument errors and `--help` stay fast.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from typing import Any

from repaint.choices import DTYPES, FIT_MODES, MASK_MODES
from repaint.errors import FieldError, RepaintError
from repaint.imagenet import parse_class
from repaint.presets import DEFAULT_PRESET, PRESETS, describe_presets, get_preset
from repaint.request_checks import (
    check_branching,
    choice,
    eta_value,
    integer,
    number,
    sides,
    time_list,
)
from repaint.samplers import SAMPLERS, get_spec
from repaint.schedule import JumpSchedule, Schedule, TimeList

MAX_SEED = 2**63 - 1
MAX_SAMPLES = 10_000  # per image: beyond this a typo, not a plan
SD = "Stable Diffusion models (--model FOLDER or hf:ORG/NAME)"
BRANCHING = "branching: samples share one run down to a level, then go on each with its own noise"


def entry(default: Any, kind: str, help: str, label: str, **more: Any) -> Any:
    """A request field and what every door needs to offer it: its kind (value, choice,
    switch, or one of the structured kinds each door handles itself), its help text, its web
    label, and optionally its `flag`, `choices`, `metavar`, CLI `group`, `web_default` and
    `web_limits` (pydantic constraints of the form field)."""
    return field(default=default, metadata={"kind": kind, "help": help, "label": label, **more})


@dataclass(frozen=True)
class InpaintRequest:
    """How to inpaint (the model is chosen separately). Defaults are the product's."""

    preset: str = entry(DEFAULT_PRESET, "choice", describe_presets(), "Preset", choices=PRESETS)
    schedule: Mapping[str, Any] | Schedule | None = entry(
        None, "schedule", "the preset's schedule changed, or a whole time list", "Schedule",
        flag="--schedule-file",
    )  # fmt: skip
    eta: float | str | None = entry(
        None,
        "eta",
        "the step between jumps: ddpm (ancestral, the paper's) or DDIM with this eta in [0, 1] "
        "(0 = deterministic); default: the preset's",
        "Step (eta)",
        metavar="ddpm|ETA",
    )
    sampler: str = entry(
        "repaint", "choice", "the sampler (docs/samplers.md compares them)", "Sampler",
        choices=SAMPLERS,
    )  # fmt: skip
    sampler_options: Mapping[str, Any] | None = entry(
        None,
        "options",
        "a hyperparameter of the sampler, NAME=VALUE (repeat the flag for more; their defaults "
        "are the authors')",
        "Sampler options",
        flag="--sampler-option",
        metavar="NAME=VALUE",
    )
    num_samples: int = entry(1, "int", "samples per image", "Samples", web_limits={"le": 8})
    seed: int | None = entry(None, "int", "run seed (default: a fresh one, recorded)", "Seed")
    mask_mode: str = entry(
        "keep", "choice", "; ".join(f"{mode}: {words}" for mode, words in MASK_MODES.items()),
        "Mask convention", choices=MASK_MODES, web_default="fill",
    )  # fmt: skip
    grow: int = entry(0, "int", "grow the fill area by N px (latent cells)", "Grow", metavar="N")
    fit: str = entry(
        "auto",
        "choice",
        "how images of another size meet the model: region (default for larger images: "
        "inpaint around the holes), pad (default for smaller ones), resize, crop",
        "Fit",
        choices=FIT_MODES,
    )
    mask_blur: int | None = entry(
        None, "int", "feather the pasted edge over N px (default: 0; 4 for Stable Diffusion)",
        "Edge blur", metavar="N",
    )  # fmt: skip
    context: float = entry(
        0.5, "float", "region fit: context around a hole, as a share of its size", "Context"
    )
    extend: tuple[int, int, int, int] | None = entry(
        None,
        "extend",
        "grow the canvas by these pixels (one number: every side) and fill the new area "
        "(outpainting, textures), window by window at the model's size; the original pixels "
        "stay exact",
        "Extend",
        metavar="LEFT,TOP,RIGHT,BOTTOM",
    )
    prompt: str | None = entry(
        None, "text", "what to paint into the hole", "Prompt", group=SD,
        web_limits={"max_length": 2000},
    )  # fmt: skip
    negative_prompt: str = entry(
        "", "text", "what to steer away from", "Negative prompt", group=SD,
        web_limits={"max_length": 2000},
    )  # fmt: skip
    guidance_scale: float | None = entry(
        None, "float", "classifier-free guidance scale (default: 7.5)", "Guidance", group=SD
    )
    class_label: int | str | None = entry(
        None, "text", "ImageNet class id or name", "Class", flag="--class"
    )
    classifier_scale: float | None = entry(
        None, "float", "classifier guidance scale (default: the model's)", "Classifier scale"
    )
    dtype: str = entry(
        "fp32",
        "choice",
        "network precision: fp16/bf16 convolutions with GroupNorm, softmax and the diffusion "
        "maths in fp32",
        "Precision",
        choices=DTYPES,
    )
    compile: bool = entry(
        False, "switch", "torch.compile the network (and CUDA graphs on GPU)", "Compile"
    )
    channels_last: bool = entry(False, "switch", "NHWC memory layout", "Channels last")
    batch_size: int | None = entry(
        None,
        "int",
        "items per network call (default: as many as fit a memory budget; the pixels are the "
        "same either way)",
        "Batch size",
    )
    branch_at: int | None = entry(
        None, "int", "the level (t_T-1 ... 0) where the shared run stops and branches start",
        "Branch at", metavar="LEVEL", group=BRANCHING,
    )  # fmt: skip
    branch_schedule: Mapping[str, Any] | TimeList | None = entry(
        None, "branch_schedule", "the branches' own schedule", "Branch schedule",
        group=BRANCHING, flag="--branch-schedule-file",
    )  # fmt: skip

    def __post_init__(self) -> None:
        preset = get_preset(self.preset)
        choice("sampler", self.sampler, SAMPLERS)
        spec = get_spec(self.sampler)
        if not spec.takes_eta and self.eta not in (None, "ddpm"):
            raise FieldError(
                "eta",
                f"chooses RePaint's step between jumps; {self.sampler} takes its own steps "
                f"(set them with {{sampler_options}}), so drop it",
            )
        self._set("sampler_options", spec.checked_options(self._mapping("sampler_options")) or None)
        self._set("schedule", self._overrides(preset.schedule))
        self._set("eta", eta_value(preset.eta if self.eta is None else self.eta))
        integer("num_samples", self.num_samples, 1, MAX_SAMPLES)
        if self.seed is not None:
            integer("seed", self.seed, 0, MAX_SEED)
        choice("mask_mode", self.mask_mode, MASK_MODES)
        integer("grow", self.grow, 0)
        choice("fit", self.fit, FIT_MODES)
        if self.mask_blur is not None:
            integer("mask_blur", self.mask_blur, 0)
        self._set("context", number("context", self.context, 0.0))
        if self.extend is not None:
            self._set("extend", sides(self.extend))
            if self.fit != "auto":
                raise FieldError(
                    "extend", "it plans its own windows at the model's size; drop {fit}"
                )
            if self.branch_at is not None:
                raise FieldError(
                    "extend",
                    "its windows depend on each other, so runs cannot branch; drop {branch_at}",
                )
        for name in ("prompt", "negative_prompt"):
            value = getattr(self, name)
            if not (isinstance(value, str) or (value is None and name == "prompt")):
                raise FieldError(name, f"expected text, got {value!r}")
        if self.guidance_scale is not None:
            self._set("guidance_scale", number("guidance_scale", self.guidance_scale))
        if self.class_label is not None:
            try:
                self._set("class_label", parse_class(self.class_label))
            except RepaintError as error:
                raise FieldError("class_label", str(error)) from None
        if self.classifier_scale is not None:
            self._set("classifier_scale", number("classifier_scale", self.classifier_scale, 0.0))
        choice("dtype", self.dtype, DTYPES)
        for name in ("compile", "channels_last"):
            if not isinstance(getattr(self, name), bool):
                raise FieldError(name, "expected true or false")
        if self.batch_size is not None:
            integer("batch_size", self.batch_size, 1, MAX_SAMPLES)
        branch = check_branching(self, spec)
        self._set("branch_schedule", branch)

    def _set(self, name: str, value: Any) -> None:
        object.__setattr__(self, name, value)

    def _mapping(self, name: str) -> Mapping[str, Any] | None:
        value = getattr(self, name)
        if value is not None and not isinstance(value, Mapping):
            raise FieldError(name, f"expected a mapping of names to values, got {value!r}")
        return value

    def _overrides(self, base: JumpSchedule) -> dict[str, int] | None:
        """The schedule keys that differ from the preset's, after checking the whole."""
        given = self.schedule
        if given is None:
            return None
        if isinstance(given, JumpSchedule | TimeList):
            given = given.params()
        if not isinstance(given, Mapping):
            raise FieldError("schedule", f"expected a mapping of schedule keys, got {given!r}")
        if "times" in given:
            return time_list(given, "schedule").params()
        try:
            merged = JumpSchedule.from_params({**base.params(), **given})
        except FieldError:
            raise
        except RepaintError as error:  # the reference's key names, as ours
            key, _, problem = str(error).removeprefix("schedule_jump_params").partition(": ")
            raise FieldError(f"schedule{key}" if problem else "schedule", problem or key) from None
        if merged.t_T < 2:
            raise FieldError(
                "schedule.t_T", f"at least 2 denoising levels are needed, got {merged.t_T}"
            )
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
        """What RePaint takes: None for ancestral DDPM steps, else the DDIM eta."""
        return None if self.eta == "ddpm" else float(self.eta)

    def options_for_sampler(self) -> dict[str, Any]:
        """The sampler's hyperparameters: its defaults with the ones given."""
        return {**get_spec(self.sampler).defaults(), **(self.sampler_options or {})}

    def describe_sampler(self) -> str:
        """The sidecar's words: RePaint's step (ddpm, or ddim with its eta), or the sampler."""
        if get_spec(self.sampler).takes_eta:
            return "ddpm" if self.eta == "ddpm" else f"ddim eta={self.eta:g}"
        return self.sampler

    def with_seed(self, seed: int) -> InpaintRequest:
        return replace(self, seed=seed)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data; `from_dict` of it gives an equal request."""
        data = asdict(self)
        for name in ("schedule", "branch_schedule", "sampler_options"):
            value = getattr(self, name)
            data[name] = None if not value else dict(value)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "options") -> InpaintRequest:
        """A request from JSON (sidecars, the web form); unknown keys are refused."""
        if not isinstance(data, Mapping):
            raise RepaintError(f"{where}: expected a JSON object of request options")
        return cls(**_known(data, where))

    @classmethod
    def from_options(cls, request: InpaintRequest | None = None, **options: Any) -> InpaintRequest:
        """`request` with `options` (keyword arguments of the Python API) applied."""
        _known(options, "inpainting option")
        if request is not None and not isinstance(request, InpaintRequest):
            raise RepaintError(
                f"request: expected an InpaintRequest, got {type(request).__name__}; pass "
                "options as keywords instead"
            )
        if request is None:
            return cls(**options)
        return replace(request, **options) if options else request


def _known(data: Mapping[str, Any], where: str) -> Mapping[str, Any]:
    known = {f.name for f in fields(InpaintRequest)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise RepaintError(
            f"{where}: unknown option {unknown[0]!r}; known options: {', '.join(sorted(known))}"
        )
    return data


def request_fields() -> list[Any]:
    """The table: every field with its metadata, in declaration order."""
    return list(fields(InpaintRequest))


def field_default(item: Any, door: str = "python") -> Any:
    """A field's default at a door (the web page paints masks: white = fill)."""
    if door == "web" and "web_default" in item.metadata:
        return item.metadata["web_default"]
    return None if item.default is MISSING else item.default


def cli_flag(name: str) -> str:
    """How the command line names a field (or a key inside one: `schedule.t_T` is --t-T)."""
    head, _, key = name.partition(".")
    if head == "schedule" and key:
        return "--" + key.replace("_", "-")
    if head == "branch_schedule" and key:
        return "--branch-" + key.replace("_", "-")
    if head == "sampler_options":
        return "--sampler-option" + (f" {key}" if key else "")
    table = {item.name: item for item in fields(InpaintRequest)}
    if head in table:
        return table[head].metadata.get("flag", "--" + head.replace("_", "-"))
    return "--" + name.replace("_", "-")
