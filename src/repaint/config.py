"""Reference-format YAML configs: the keys, their defaults, and what we refuse to guess.

A config is plain data. `load_reference_config` returns the YAML mapping with defaults
filled in, after checking it: required keys present, keys the reference would crash on
rejected with a reason, unknown keys reported as warnings.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from repaint.errors import RepaintError, RepaintWarning
from repaint.io import read_yaml
from repaint.schedule import JumpSchedule

# guided-diffusion's model_and_diffusion_defaults() and classifier_defaults()
MODEL_DEFAULTS: dict[str, Any] = {
    "num_heads": 4,
    "num_heads_upsample": -1,
    "num_head_channels": -1,
    "channel_mult": "",
    "dropout": 0.0,
    "class_cond": False,
    "use_checkpoint": False,
    "use_scale_shift_norm": True,
    "resblock_updown": False,
    "use_fp16": False,
    "use_new_attention_order": False,
    "learn_sigma": False,
}
DIFFUSION_DEFAULTS: dict[str, Any] = {
    "diffusion_steps": 1000,
    "noise_schedule": "linear",
    "timestep_respacing": "",
    "use_kl": False,
    "predict_xstart": False,
    "rescale_timesteps": False,
    "rescale_learned_sigmas": False,
}
CLASSIFIER_DEFAULTS: dict[str, Any] = {
    "classifier_use_fp16": False,
    "classifier_width": 128,
    "classifier_depth": 2,
    "classifier_attention_resolutions": "32,16,8",
    "classifier_use_scale_shift_norm": True,
    "classifier_resblock_updown": True,
    "classifier_pool": "attention",
}
REPAINT_DEFAULTS: dict[str, Any] = {
    "name": None,
    "classifier_scale": 0.0,
    "classifier_path": None,
    "cond_y": None,
    "clip_denoised": True,
    "show_progress": False,
    "use_ddim": False,
    "inpa_inj_sched_prev": True,
    "inpa_inj_sched_prev_cumnoise": False,
    "inpa_inj_time_shift": 1,
    "respace_interpolate": False,
}
REQUIRED = (
    "model_path",
    "image_size",
    "num_channels",
    "num_res_blocks",
    "attention_resolutions",
    "schedule_jump_params",
    "data",
)
# Keys of the published configs that only steer the reference's own logging or tooling.
IGNORED = {"lr_kernel_n_std", "num_samples", "n_jobs", "print_estimated_vars", "use_value_logger"}
DEFAULTS = {**MODEL_DEFAULTS, **DIFFUSION_DEFAULTS, **CLASSIFIER_DEFAULTS, **REPAINT_DEFAULTS}
KNOWN = set(DEFAULTS) | set(REQUIRED) | IGNORED | {"debug", "seed", "device"}

# value -> why the reference cannot run it
REJECTED = {
    "use_ddim": (True, "the reference crashes on DDIM sampling with a jump schedule"),
    "inpa_inj_sched_prev_cumnoise": (True, "the reference's cumulative-noise injection is broken"),
    "rescale_timesteps": (True, "the reference does not implement rescaled timesteps"),
    "inpa_inj_sched_prev": (False, "without known-region injection the run is not inpainting"),
}

EVAL_REQUIRED = ("gt_path", "mask_path", "paths")
EVAL_DEFAULTS: dict[str, Any] = {
    "batch_size": 1,
    "offset": 0,
    "max_len": None,
    "drop_last": False,
    "random_crop": False,
    "random_flip": False,
}
EVAL_IGNORED = {
    "mask_loader",
    "image_size",
    "class_cond",
    "deterministic",
    "return_dict",
    "return_dataloader",
    "ds_conf",
}
OUTPUT_FOLDERS = ("srs", "lrs", "gts", "gt_keep_masks")


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _resolutions(value: Any) -> bool:
    if _whole(value):
        return value >= 1
    parts = [part.strip() for part in value.split(",")] if isinstance(value, str) else []
    return bool(parts) and all(part.isdigit() and int(part) >= 1 for part in parts)


def _multipliers(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        return value == "" or all(float(part) > 0 for part in value.split(","))
    except ValueError:
        return False


def _rules() -> dict[str, tuple[Callable[[Any], bool], str]]:
    """The type (and least value) of every key a run reads, so a bad value is one line up
    front rather than a traceback deep in the network or the data loader."""
    positive = (lambda v: _whole(v) and v >= 1, "a whole number of at least 1")
    heads = (lambda v: _whole(v) and (v >= 1 or v == -1), "a whole number of at least 1, or -1")
    number = (lambda v: isinstance(v, int | float) and not isinstance(v, bool), "a number")
    flag = (lambda v: isinstance(v, bool), "true or false")
    text = (lambda v: isinstance(v, str), "text")
    rules = {key: flag for key, value in DEFAULTS.items() if isinstance(value, bool)}
    rules |= dict.fromkeys(
        ("image_size", "num_channels", "num_res_blocks", "diffusion_steps"), positive
    )
    rules |= dict.fromkeys(("classifier_width", "classifier_depth"), positive)
    rules |= dict.fromkeys(("num_heads", "num_head_channels", "num_heads_upsample"), heads)
    rules |= dict.fromkeys(("dropout", "classifier_scale"), number)
    rules |= dict.fromkeys(("model_path", "noise_schedule", "classifier_pool"), text)
    rules |= dict.fromkeys(
        ("attention_resolutions", "classifier_attention_resolutions"),
        (_resolutions, "comma-separated whole numbers like '16,8'"),
    )
    rules["channel_mult"] = (
        _multipliers,
        "'' (the default for the image size) or comma-separated numbers like '1,2,2'",
    )
    rules["classifier_path"] = (lambda v: v is None or isinstance(v, str), "a file path")
    rules["timestep_respacing"] = (
        lambda v: isinstance(v, str) or _whole(v),
        "a step count like '250'",
    )
    rules["cond_y"] = (lambda v: v is None or _whole(v), "a class id (a whole number) or null")
    return rules


def check_types(path: Path, conf: Mapping[str, Any]) -> None:
    """Refuse a key of the wrong type (keys absent from `conf` are not checked)."""
    rules = _rules()
    for key, value in conf.items():
        if key in rules and not rules[key][0](value):
            raise RepaintError(f"{path}: {key} must be {rules[key][1]}, got {value!r}")


def load_reference_config(path: str | Path) -> dict[str, Any]:
    """Read and check a reference config; returns the mapping with defaults filled in."""
    path = Path(path)
    raw = read_yaml(path)
    missing = [key for key in REQUIRED if raw.get(key) is None]
    if missing:
        raise RepaintError(f"{path}: required key {missing[0]!r} is missing")
    for key in sorted(set(raw) - KNOWN):
        warnings.warn(f"{path}: unknown key {key!r} ignored", RepaintWarning, stacklevel=2)

    conf = {**DEFAULTS, **{key: value for key, value in raw.items() if value is not None}}
    check_types(path, conf)
    for key, (bad_value, reason) in REJECTED.items():
        if bool(conf[key]) == bad_value:
            raise RepaintError(f"{path}: {key}: {conf[key]!r} is not supported ({reason})")
    if conf["respace_interpolate"]:
        raise RepaintError(
            f"{path}: respace_interpolate is not supported (the reference crashes on it); "
            "remove the key"
        )
    if conf["inpa_inj_time_shift"] != 1:
        raise RepaintError(f"{path}: inpa_inj_time_shift must be 1 (the reference's value)")
    if not isinstance(conf["schedule_jump_params"], dict):
        raise RepaintError(f"{path}: schedule_jump_params must be a mapping")
    try:
        JumpSchedule.from_params(conf["schedule_jump_params"])
    except RepaintError as error:
        raise RepaintError(f"{path}: {error}") from None
    conf["data"] = {"eval": _check_eval(path, conf["data"])}
    return conf


def _check_eval(path: Path, data: Any) -> dict[str, Any]:
    """The single `data.eval.<name>` entry the reference's test.py runs, with defaults."""
    entries = data.get("eval") if isinstance(data, dict) else None
    if not isinstance(entries, dict) or len(entries) != 1:
        raise RepaintError(f"{path}: data.eval must hold exactly one dataset entry")
    ((name, entry),) = entries.items()
    prefix = f"data.eval.{name}"
    if not isinstance(entry, dict):
        raise RepaintError(f"{path}: {prefix} must be a mapping")
    for key in EVAL_REQUIRED:
        if entry.get(key) is None:
            raise RepaintError(f"{path}: required key '{prefix}.{key}' is missing")
    for key in sorted(set(entry) - set(EVAL_REQUIRED) - set(EVAL_DEFAULTS) - EVAL_IGNORED):
        warnings.warn(f"{path}: unknown key '{prefix}.{key}' ignored", RepaintWarning, stacklevel=3)
    entry = {**EVAL_DEFAULTS, **{k: v for k, v in entry.items() if v is not None}, "name": name}
    if entry["random_crop"]:
        raise RepaintError(f"{path}: {prefix}.random_crop: true is not supported by the reference")
    if entry["random_flip"]:
        warnings.warn(
            f"{path}: {prefix}.random_flip ignored (inputs are used as they are)",
            RepaintWarning,
            stacklevel=3,
        )
    paths = entry["paths"]
    if not isinstance(paths, dict):
        raise RepaintError(f"{path}: {prefix}.paths must be a mapping")
    for key in ("srs", "lrs", "gt_keep_masks"):
        if not paths.get(key):
            raise RepaintError(f"{path}: required key '{prefix}.paths.{key}' is missing")
    for key in ("batch_size", "offset", "max_len"):
        value = entry[key]
        if key == "max_len" and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < (key == "batch_size"):
            least = "at least 1" if key == "batch_size" else "0 or more"
            raise RepaintError(f"{path}: {prefix}.{key} must be a whole number, {least}")
    for key in ("gt_path", "mask_path"):
        if not isinstance(entry[key], str):
            raise RepaintError(f"{path}: {prefix}.{key} must be a folder path")
    for key, value in paths.items():
        if not isinstance(value, str):
            raise RepaintError(f"{path}: {prefix}.paths.{key} must be a folder path")
    if not isinstance(entry["drop_last"], bool):
        raise RepaintError(f"{path}: {prefix}.drop_last must be true or false")
    return {name: entry}
