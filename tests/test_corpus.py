"""The bad-input corpus: what users (and a fault-injection pass) type, and the contract each
case must keep: exit code 2 (a `RepaintError` in Python), one line naming the flag, key or
file, no traceback, nothing left in the output folder, and no code run from a checkpoint.

The web app's cases are in `test_web.py`; docs/reliability.md counts them all.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import repaint
from repaint.cli import main
from repaint.errors import RepaintError
from tests.conftest import TINY_CONFIG

SHORT = ["--t-T", "4", "--jump-length", "2", "--jump-n-sample", "1", "--no-progress"]


class Exploit:
    """Unpickling this runs a shell command that leaves a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def bomb_png(side: int = 100_000) -> bytes:
    """A valid 1x1 PNG whose header claims side x side pixels."""
    import io

    buffer = io.BytesIO()
    Image.fromarray(np.zeros((1, 1), dtype=np.uint8)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = side.to_bytes(4, "big") * 2
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")
    return bytes(data)


@pytest.fixture(scope="module")
def world(tmp_path_factory, tiny_model) -> Path:
    """Inputs good and bad, models good and bad, made once."""
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    keep = np.full((32, 32), 255, dtype=np.uint8)
    keep[8:20, 8:20] = 0
    for folder in ("images", "masks", "empty", "texts", "dupes/x", "dupes/y", "othermasks"):
        (root / folder).mkdir(parents=True)
    Image.fromarray(image).save(root / "images" / "a.png")
    Image.fromarray(keep).save(root / "masks" / "a.png")
    Image.fromarray(keep).save(root / "othermasks" / "zzz.png")
    Image.fromarray(image).save(root / "dupes" / "x" / "a.png")
    Image.fromarray(image).save(root / "dupes" / "y" / "a.png")
    (root / "texts" / "notes.txt").write_text("hello")
    (root / "text.png").write_text("this is not a png")
    (root / "empty.png").write_bytes(b"")
    (root / "truncated.png").write_bytes((root / "images" / "a.png").read_bytes()[:60])
    (root / "bomb.png").write_bytes(bomb_png())
    (root / "a_file").write_text("a file where a folder should be")
    shutil.copy(tiny_model, root / "tiny.pt")
    shutil.copy(tiny_model.with_suffix(".yml"), root / "tiny.yml")
    shutil.copy(tiny_model, root / "noconfig.pt")
    torch.save({"weights": Exploit(root / "PWNED")}, root / "exploit.pt")
    shutil.copy(root / "tiny.yml", root / "exploit.yml")
    (root / "garbage.safetensors").write_bytes(b"\x00\x01garbage" * 10)
    shutil.copy(root / "tiny.yml", root / "garbage.yml")
    wide = {**TINY_CONFIG, "num_channels": 64}
    (root / "wide.yml").write_text(yaml.safe_dump(wide))
    (root / "broken.yml").write_text("image_size: [unclosed")
    (root / "heads0.yml").write_text(yaml.safe_dump({**TINY_CONFIG, "num_heads": 0}))
    (root / "sizestr.yml").write_text(yaml.safe_dump({**TINY_CONFIG, "image_size": "big"}))
    (root / "ckptdir.pt").mkdir()
    (root / "times_gap.json").write_text("[5, 4, 2, 1, 0, -1]")
    (root / "times_broken.json").write_text("[5, 4,")
    (root / "times_short.json").write_text("[2, 1, 0, -1]")
    return root


def check_contract(code: int, err: str, words: str, world: Path, out: Path) -> None:
    lines = [line for line in err.splitlines() if "warning:" not in line]
    assert code == 2, (code, err)
    assert len(lines) == 1 and lines[0].startswith("repaint: error:"), err
    assert words in lines[0], (words, lines[0])
    assert "Traceback" not in err
    assert not out.exists() or not any(out.iterdir()), list(out.iterdir())
    assert not (world / "PWNED").exists()


def good(world: Path) -> list[str]:
    return [str(world / "images" / "a.png"), "--mask", str(world / "masks" / "a.png")]


def tiny(world: Path) -> list[str]:
    return ["--model", str(world / "tiny.pt")]


INPAINT_CASES = {
    # request values: refused before any file is read
    "num-samples 0": (lambda w: [*good(w), *tiny(w), "--num-samples", "0"], "--num-samples"),
    "num-samples -3": (lambda w: [*good(w), *tiny(w), "--num-samples", "-3"], "--num-samples"),
    "num-samples huge": (lambda w: [*good(w), *tiny(w), "--num-samples", "99999999"], "--num-"),
    "num-samples text": (lambda w: [*good(w), *tiny(w), "--num-samples", "x"], "--num-samples"),
    "num-samples 0 batch 1": (
        lambda w: [*good(w), *tiny(w), "--num-samples", "0", "--batch-size", "1"],
        "--num-samples",
    ),
    "batch-size -1": (lambda w: [*good(w), *tiny(w), "--batch-size", "-1"], "--batch-size"),
    "batch-size 0": (lambda w: [*good(w), *tiny(w), "--batch-size", "0"], "--batch-size"),
    "batch-size text": (lambda w: [*good(w), *tiny(w), "--batch-size", "two"], "--batch-size"),
    "seed -1": (lambda w: [*good(w), *tiny(w), "--seed", "-1"], "--seed"),
    "seed 2**64": (lambda w: [*good(w), *tiny(w), "--seed", str(2**64)], "--seed"),
    "seed text": (lambda w: [*good(w), *tiny(w), "--seed", "abc"], "--seed"),
    "grow -5": (lambda w: [*good(w), *tiny(w), "--grow", "-5"], "--grow"),
    "grow -5 on a folder": (
        lambda w: [str(w / "images"), "--mask", str(w / "masks"), *tiny(w), "--grow", "-5"],
        "--grow",
    ),
    "mask-blur -1": (lambda w: [*good(w), *tiny(w), "--mask-blur", "-1"], "--mask-blur"),
    "fit zoom": (lambda w: [*good(w), *tiny(w), "--fit", "zoom"], "--fit"),
    "mask-mode white": (lambda w: [*good(w), *tiny(w), "--mask-mode", "white"], "--mask-mode"),
    "preset slow": (lambda w: [*good(w), *tiny(w), "--preset", "slow"], "--preset"),
    "dtype fp8": (lambda w: [*good(w), *tiny(w), "--dtype", "fp8"], "--dtype"),
    "eta 2": (lambda w: [*good(w), *tiny(w), "--eta", "2"], "--eta"),
    "eta -0.1": (lambda w: [*good(w), *tiny(w), "--eta", "-0.1"], "--eta"),
    "eta nan": (lambda w: [*good(w), *tiny(w), "--eta", "nan"], "--eta"),
    "eta word": (lambda w: [*good(w), *tiny(w), "--eta", "fast"], "--eta"),
    "t-T 0": (lambda w: [*good(w), *tiny(w), "--t-T", "0"], "--t-T:"),
    "t-T 1": (lambda w: [*good(w), *tiny(w), "--t-T", "1"], "--t-T"),
    "t-T 10**9": (lambda w: [*good(w), *tiny(w), "--t-T", str(10**9)], "more than"),
    "t-T 100000 jumps": (
        lambda w: [*good(w), *tiny(w), "--t-T", "100000", "--jump-length", "10"],
        "1000 diffusion steps",
    ),
    "t-T above the model": (lambda w: [*good(w), *tiny(w), "--t-T", "5000"], "--t-T"),
    "jump-length 0": (lambda w: [*good(w), *tiny(w), "--jump-length", "0"], "--jump-length:"),
    "jump-n-sample 0": (lambda w: [*good(w), *tiny(w), "--jump-n-sample", "0"], "--jump-n-sample:"),
    "jump-n-sample 10**7": (
        lambda w: [*good(w), *tiny(w), "--jump-n-sample", str(10**7)],
        "more than",
    ),
    "n-sample 0": (lambda w: [*good(w), *tiny(w), "--n-sample", "0"], "--n-sample:"),
    "n-sample 10**7": (lambda w: [*good(w), *tiny(w), "--n-sample", str(10**7)], "more than"),
    "start-resampling -1": (
        lambda w: [*good(w), *tiny(w), "--start-resampling", "-1"],
        "--start-resampling:",
    ),
    "jump2-length 0": (lambda w: [*good(w), *tiny(w), "--jump2-length", "0"], "--jump2-length:"),
    "class 1000": (lambda w: [*good(w), *tiny(w), "--class", "1000"], "--class"),
    "class unknown name": (lambda w: [*good(w), *tiny(w), "--class", "no such thing"], "--class"),
    "class on an unconditional model": (lambda w: [*good(w), *tiny(w), "--class", "5"], "--class"),
    "prompt on a pixel model": (lambda w: [*good(w), *tiny(w), "--prompt", "a cat"], "--prompt"),
    "guidance-scale nan": (
        lambda w: [*good(w), *tiny(w), "--guidance-scale", "nan"],
        "--guidance-scale",
    ),
    "classifier-scale -1": (
        lambda w: [*good(w), *tiny(w), "--classifier-scale", "-1"],
        "--classifier-scale",
    ),
    "device bogus": (lambda w: [*good(w), *tiny(w), "--device", "tpu"], "--device"),
    "device cuda without one": (lambda w: [*good(w), *tiny(w), "--device", "cuda"], "cuda"),
    "branch-at past t_T": (lambda w: [*good(w), *tiny(w), "--branch-at", "100"], "--branch-at"),
    "branch-at -1": (lambda w: [*good(w), *tiny(w), "--branch-at", "-1"], "--branch-at"),
    "branches 0": (lambda w: [*good(w), *tiny(w), "--branch-at", "2", "--branches", "0"], "--num-"),
    "branch-jump-length 0": (
        lambda w: [*good(w), *tiny(w), "--branch-at", "2", "--branch-jump-length", "0"],
        "jump_length",
    ),
    "branch schedule without a level": (
        lambda w: [*good(w), *tiny(w), "--branch-jump-n-sample", "2"],
        "--branch-at",
    ),
    "schedule-file missing": (
        lambda w: [*good(w), *tiny(w), "--schedule-file", str(w / "no_times.json")],
        "no_times.json",
    ),
    "schedule-file gap": (
        lambda w: [*good(w), *tiny(w), "--schedule-file", str(w / "times_gap.json")],
        "times_gap.json: entry 2",
    ),
    "schedule-file not json": (
        lambda w: [*good(w), *tiny(w), "--schedule-file", str(w / "times_broken.json")],
        "times_broken.json",
    ),
    "schedule-file with --t-T": (
        lambda w: (
            [*good(w), *tiny(w), "--schedule-file", str(w / "times_short.json"), "--t-T", "4"]
        ),
        "--schedule-file",
    ),
    "branch-schedule-file of another t_T": (
        lambda w: (
            [
                *good(w),
                *tiny(w),
                "--branch-at",
                "1",
                "--branches",
                "2",
                "--branch-schedule-file",
                str(w / "times_short.json"),
            ]
        ),
        "--branch-schedule-file",
    ),
    "extend text": (lambda w: [*good(w), *tiny(w), "--extend", "a,b"], "--extend"),
    "extend three sides": (lambda w: [*good(w), *tiny(w), "--extend", "1,2,3"], "--extend"),
    "extend negative": (lambda w: [*good(w), *tiny(w), "--extend", "-4"], "--extend"),
    "extend zero": (lambda w: [*good(w), *tiny(w), "--extend", "0"], "--extend"),
    "extend huge": (lambda w: [*good(w), *tiny(w), "--extend", "99999"], "--extend"),
    "extend with fit": (lambda w: [*good(w), *tiny(w), "--extend", "8", "--fit", "pad"], "--fit"),
    "sampler unknown": (lambda w: [*good(w), *tiny(w), "--sampler", "ddim"], "--sampler"),
    "sampler with eta": (
        lambda w: [*good(w), *tiny(w), "--sampler", "ddnm", "--eta", "0"],
        "--eta",
    ),
    "sampler with branching": (
        lambda w: [*good(w), *tiny(w), "--sampler", "dps", "--branch-at", "1", "--branches", "2"],
        "--branch-at",
    ),
    "sampler-option without a value": (
        lambda w: [*good(w), *tiny(w), "--sampler", "ddnm", "--sampler-option", "eta"],
        "--sampler-option: expected NAME=VALUE",
    ),
    "sampler-option of another sampler": (
        lambda w: [*good(w), *tiny(w), "--sampler", "diffpir", "--sampler-option", "lambda=1"],
        "no option 'lambda'",
    ),
    **{
        f"{sampler} {option}": (
            lambda w, s=sampler, o=option: [
                *good(w),
                *tiny(w),
                "--sampler",
                s,
                "--sampler-option",
                o,
            ],
            f"--sampler-option {option.split('=')[0]}:",
        )
        for sampler, option in [
            ("diffpir", "zeta=2"),
            ("diffpir", "lam=0"),
            ("diffpir", "sigma=-1"),
            ("diffpir", "eta=x"),
            ("diffpir", "guidance_scale=nan"),
            ("pigdm", "eta=1.5"),
            ("pigdm", "grad_term_weight=-1"),
            ("lanpaint", "n_steps=-1"),
            ("lanpaint", "n_steps=1.5"),
            ("lanpaint", "n_steps=1000"),
            ("lanpaint", "step_size=-0.1"),
            ("lanpaint", "beta=0"),
            ("lanpaint", "min_step_frac=2"),
            ("lanpaint", "early_stop=-1"),
            ("lanpaint", "lam=inf"),
        ]
    },
    **{
        f"{sampler} with eta": (
            lambda w, s=sampler: [*good(w), *tiny(w), "--sampler", s, "--eta", "0.5"],
            "--eta",
        )
        for sampler in ("diffpir", "pigdm", "lanpaint")
    },
    **{
        f"{sampler} with branching": (
            lambda w, s=sampler: [
                *good(w),
                *tiny(w),
                "--sampler",
                s,
                "--branch-at",
                "1",
                "--branches",
                "2",
            ],
            f"{sampler} cannot branch",
        )
        for sampler in ("diffpir", "pigdm", "lanpaint")
    },
    "extend with branching": (
        lambda w: [*good(w), *tiny(w), "--extend", "8", "--branch-at", "1", "--branches", "2"],
        "--branch-at",
    ),
    "extend past the pixel limit": (
        lambda w: [*good(w), *tiny(w), "--extend", "16000"],
        "pixels",
    ),
    "stop-resampling -1": (
        lambda w: [*good(w), *tiny(w), "--stop-resampling", "-1"],
        "--stop-resampling:",
    ),
    # files
    "image missing": (lambda w: [str(w / "nope.png"), "--mask", str(w / "masks")], "nope.png"),
    "mask missing": (lambda w: [str(w / "images"), "--mask", str(w / "nomask.png")], "nomask"),
    "image is text": (
        lambda w: [str(w / "text.png"), "--mask", str(w / "masks" / "a.png")],
        "text.png",
    ),
    "image is empty": (
        lambda w: [str(w / "empty.png"), "--mask", str(w / "masks" / "a.png")],
        "empty.png",
    ),
    "image truncated": (
        lambda w: [str(w / "truncated.png"), "--mask", str(w / "masks" / "a.png")],
        "truncated.png",
    ),
    "image is a bomb": (
        lambda w: [str(w / "bomb.png"), "--mask", str(w / "masks" / "a.png")],
        "pixels",
    ),
    "mask is a bomb": (
        lambda w: [str(w / "images" / "a.png"), "--mask", str(w / "bomb.png")],
        "bomb.png",
    ),
    "mask is text": (
        lambda w: [str(w / "images" / "a.png"), "--mask", str(w / "text.png")],
        "text",
    ),
    "mask folder without the stem": (
        lambda w: [str(w / "images"), "--mask", str(w / "othermasks")],
        "no mask named",
    ),
    "mask folder empty": (lambda w: [str(w / "images"), "--mask", str(w / "empty")], "no mask"),
    "image folder empty": (lambda w: [str(w / "empty"), "--mask", str(w / "masks")], "no images"),
    "image folder of text": (lambda w: [str(w / "texts"), "--mask", str(w / "masks")], "no images"),
    "two images, one stem": (
        lambda w: [str(w / "dupes"), "--mask", str(w / "masks" / "a.png")],
        "share the name",
    ),
    "no mask flag": (lambda w: [str(w / "images" / "a.png")], "--mask"),
    "no image": (lambda w: ["--mask", str(w / "masks" / "a.png")], "IMAGE"),
    # models
    "unknown model name": (lambda w: [*good(w), "--model", "celebahq"], "celebahq"),
    "model file missing": (lambda w: [*good(w), "--model", str(w / "gone.pt")], "gone.pt"),
    "model is a folder": (lambda w: [*good(w), "--model", str(w / "ckptdir.pt")], "ckptdir.pt"),
    "checkpoint without a config": (
        lambda w: [*good(w), "--model", str(w / "noconfig.pt")],
        "--model-config",
    ),
    "model config not YAML": (
        lambda w: [*good(w), *tiny(w), "--model-config", str(w / "broken.yml")],
        "broken.yml",
    ),
    "model config num_heads 0": (
        lambda w: [*good(w), *tiny(w), "--model-config", str(w / "heads0.yml")],
        "num_heads",
    ),
    "model config image_size text": (
        lambda w: [*good(w), *tiny(w), "--model-config", str(w / "sizestr.yml")],
        "image_size",
    ),
    "model config missing": (
        lambda w: [*good(w), *tiny(w), "--model-config", str(w / "none.yml")],
        "none.yml",
    ),
    "model config for a registered model": (
        lambda w: [*good(w), "--model", "digits", "--model-config", str(w / "tiny.yml")],
        "--model-config",
    ),
    "a pickle that runs code": (lambda w: [*good(w), "--model", str(w / "exploit.pt")], "exploit"),
    "garbage safetensors": (
        lambda w: [*good(w), "--model", str(w / "garbage.safetensors")],
        "garbage",
    ),
    "checkpoint of another width": (
        lambda w: [*good(w), *tiny(w), "--model-config", str(w / "wide.yml")],
        "num_channels",
    ),
    "not downloaded": (lambda w: [*good(w), "--model", "celeba256"], "repaint download"),
    "a diffusers folder that is not one": (
        lambda w: [*good(w), "--model", str(w / "empty")],
        "empty",
    ),
}


@pytest.mark.parametrize("case", sorted(INPAINT_CASES))
def test_inpaint(case, world, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REPAINT_HOME", str(tmp_path / "home"))
    build, words = INPAINT_CASES[case]
    out = tmp_path / "out"
    argv = ["inpaint", *SHORT, *build(world), "--out", str(out)]  # the case's flags win
    try:
        code = main(argv)
    except SystemExit as stop:  # argparse
        code = stop.code
    check_contract(code, capsys.readouterr().err, words, world, out)


OUT_CASES = {
    "out is a file": (lambda w: w / "a_file", "not a folder"),
    "out below a file": (lambda w: w / "a_file" / "results", "is a file"),
    "out missing": (None, "--out"),
}


@pytest.mark.parametrize("case", sorted(OUT_CASES))
def test_output_folder(case, world, tmp_path, capsys):
    where, words = OUT_CASES[case]
    argv = ["inpaint", *good(world), *tiny(world), *SHORT]
    if where is not None:
        argv += ["--out", str(where(world))]
    code = main(argv)
    check_contract(code, capsys.readouterr().err, words, world, tmp_path / "none")


@pytest.mark.parametrize("command", ["demo", "example"])
@pytest.mark.parametrize("case", ["out is a file", "out below a file"])
def test_offline_commands_output_folder(command, case, world, tmp_path, capsys):
    where, words = OUT_CASES[case]
    code = main([command, "--out", str(where(world))])
    check_contract(code, capsys.readouterr().err, words, world, tmp_path / "none")


# ---- sidecars -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sidecar(world) -> dict:
    out = world / "sidecar_run"
    assert main(["inpaint", *good(world), *tiny(world), "--out", str(out), *SHORT]) == 0
    return json.loads((out / "a.json").read_text())


def _set(path: str, value):
    def edit(data):
        *parents, last = path.split(".")
        for key in parents:
            data = data[key]
        data[last] = value

    return edit


def _drop(key: str):
    return lambda data: data.pop(key)


SIDECAR_CASES = {
    "not JSON": ("{nope", "not a readable sidecar"),
    "a list": ("[1, 2]", "JSON object"),
    "empty": ("", "not a readable sidecar"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00", "not a readable sidecar"),
    **{f"no {key}": (_drop(key), key) for key in ("input", "mask", "name", "sample", "options")},
    "no model": (_drop("model"), "'model'"),
    "model not a mapping": (_set("model", "digits"), "'model'"),
    "model.model missing": (_set("model", {}), "model.model"),
    "sample text": (_set("sample", "0"), "'sample'"),
    "sample 5": (_set("sample", 5), "sample 5"),
    "options a list": (_set("options", [1]), "'options'"),
    "unknown option": (_set("options.speed", 9), "'speed'"),
    "seed missing": (_set("options.seed", None), "seed is missing"),
    "num_samples 0": (_set("options.num_samples", 0), "options.num_samples"),
    "eta 7": (_set("options.eta", 7), "options.eta"),
    "schedule t_T text": (_set("options.schedule", {"t_T": "x"}), "t_T"),
    "schedule huge": (_set("options.schedule", {"t_T": 10**9}), "more than"),
    "preset unknown": (_set("options.preset", "slow"), "options.preset"),
    "input gone": (_set("input", "/nonexistent/a.png"), "/nonexistent/a.png"),
    "model gone": (_set("model.model", "/nonexistent/m.pt"), "/nonexistent/m.pt"),
}


@pytest.mark.parametrize("case", sorted(SIDECAR_CASES))
def test_sidecar(case, world, sidecar, tmp_path, capsys):
    change, words = SIDECAR_CASES[case]
    path = tmp_path / "bad.json"
    if isinstance(change, str):
        path.write_text(change)
    elif isinstance(change, bytes):
        path.write_bytes(change)
    else:
        data = json.loads(json.dumps(sidecar))
        change(data)
        path.write_text(json.dumps(data))
    out = tmp_path / "again"
    code = main(["inpaint", "--from-sidecar", str(path), "--out", str(out), "--no-progress"])
    check_contract(code, capsys.readouterr().err, words, world, out)


# ---- repaint run ------------------------------------------------------------------------------

RUN_CASES = {
    "diffusion_steps text": ({"diffusion_steps": "x"}, "diffusion_steps"),
    "diffusion_steps 0": ({"diffusion_steps": 0}, "diffusion_steps"),
    "image_size text": ({"image_size": "x"}, "image_size"),
    "image_size 0": ({"image_size": 0}, "image_size"),
    "num_channels negative": ({"num_channels": -4}, "num_channels"),
    "num_heads 0": ({"num_heads": 0}, "num_heads"),
    "cond_y text": ({"cond_y": "x"}, "cond_y"),
    "cond_y 5000": ({"cond_y": 5000}, "cond_y"),
    "classifier_scale text": ({"classifier_scale": "x"}, "classifier_scale"),
    "clip_denoised maybe": ({"clip_denoised": "maybe"}, "clip_denoised"),
    "use_fp16 text": ({"use_fp16": "x"}, "use_fp16"),
    "learn_sigma text": ({"learn_sigma": "yes"}, "learn_sigma"),
    "model_path a number": ({"model_path": 5}, "model_path"),
    "model_path a folder": ({"model_path": "."}, "."),
    "model_path a pickle exploit": ({"model_path": "EXPLOIT"}, "exploit.pt"),
    "noise_schedule bogus": ({"noise_schedule": "bogus"}, "noise_schedule"),
    "timestep_respacing abc": ({"timestep_respacing": "abc"}, "timestep_respacing"),
    "timestep_respacing 5000": ({"timestep_respacing": "5000"}, "5000"),
    "timestep_respacing 1": ({"timestep_respacing": "1"}, "timestep_respacing"),
    "attention_resolutions x": ({"attention_resolutions": "x"}, "attention_resolutions must be"),
    "channel_mult a,b": ({"channel_mult": "a,b"}, "channel_mult must be"),
    "schedule a list": ({"schedule_jump_params": [1, 2]}, "schedule_jump_params"),
    "schedule t_T text": ({"schedule_jump_params": {"t_T": "x"}}, "t_T"),
    "schedule huge": (
        {"schedule_jump_params": {"t_T": 10**9, "jump_length": 10, "jump_n_sample": 2}},
        "more than",
    ),
    "schedule unknown key": ({"schedule_jump_params": {"t_T": 3, "speed": 1}}, "speed"),
    "use_ddim true": ({"use_ddim": True}, "use_ddim"),
    "max_len text": ({"eval": {"max_len": "x"}}, "max_len"),
    "max_len -1": ({"eval": {"max_len": -1}}, "max_len"),
    "offset past the end": ({"eval": {"offset": 100}}, "offset=100"),
    "batch_size text": ({"eval": {"batch_size": "x"}}, "batch_size"),
    "batch_size 0": ({"eval": {"batch_size": 0}}, "batch_size"),
    "paths a list": ({"eval": {"paths": [1]}}, "paths"),
    "gt_path a number": ({"eval": {"gt_path": 5}}, "gt_path"),
    "gt_path missing folder": ({"eval": {"gt_path": "nowhere"}}, "nowhere"),
    "drop_last text": ({"eval": {"drop_last": "x"}}, "drop_last"),
    "output folder is a file": (
        {"eval": {"paths": {"srs": "conf.yml", "lrs": "l", "gts": "g", "gt_keep_masks": "k"}}},
        "srs",
    ),
    "data a list": ({"data": [1]}, "data.eval"),
}


@pytest.mark.parametrize("case", sorted(RUN_CASES))
def test_run(case, world, golden_dir, tmp_path, capsys, monkeypatch):
    edit, words = RUN_CASES[case]
    work = tmp_path / "work"
    shutil.copytree(golden_dir / "uncond32", work)
    conf = yaml.safe_load((work / "conf.yml").read_text())
    conf["schedule_jump_params"] = {"t_T": 3, "jump_length": 1, "jump_n_sample": 1}
    (entry,) = conf["data"]["eval"].values()
    for key, value in edit.items():
        if key == "eval":
            entry.update(value)
        elif value == "EXPLOIT":
            conf[key] = str(world / "exploit.pt")
        else:
            conf[key] = value
    (work / "conf.yml").write_text(yaml.safe_dump(conf))
    monkeypatch.chdir(work)
    code = main(["run", "--conf", "conf.yml", "--seed", "0", "--device", "cpu", "--no-progress"])
    check_contract(code, capsys.readouterr().err, words, world, work / "log")


# ---- repaint train ------------------------------------------------------------------------------

TRAIN_CASES = {
    "image-size 0": (["--image-size", "0"], "--image-size"),
    "image-size 30": (["--image-size", "30"], "--image-size"),
    "num-channels 0": (["--num-channels", "0"], "--num-channels"),
    "num-channels 48": (["--num-channels", "48"], "--num-channels"),
    "num-res-blocks 0": (["--num-res-blocks", "0"], "--num-res-blocks"),
    "channel-mult x": (["--channel-mult", "x"], "--channel-mult"),
    "channel-mult 1,0": (["--channel-mult", "1,0"], "--channel-mult"),
    "attention-resolutions x": (["--attention-resolutions", "x"], "--attention-resolutions"),
    "num-heads 0": (["--num-heads", "0"], "--num-heads"),
    "num-heads 3": (["--num-heads", "3"], "--num-heads"),
    "dropout 2": (["--dropout", "2"], "--dropout"),
    "diffusion-steps 0": (["--diffusion-steps", "0"], "--diffusion-steps"),
    "noise-schedule bogus": (["--noise-schedule", "bogus"], "--noise-schedule"),
    "lr -1": (["--lr", "-1"], "--lr"),
    "ema-rate 2": (["--ema-rate", "2"], "--ema-rate"),
    "sample-every -1": (["--sample-every", "-1"], "--sample-every"),
    "seed -1": (["--seed", "-1"], "--seed"),
    "steps 0": (["--steps", "0"], "--steps"),
    "batch-size 0": (["--batch-size", "0"], "--batch-size"),
    "batch-size 100000": (["--batch-size", "100000"], "--batch-size"),
    "save-every 0": (["--save-every", "0"], "--save-every"),
    "steps text": (["--steps", "many"], "--steps"),
    "data missing": (["--data", "/nonexistent/images"], "/nonexistent/images"),
    "data empty": (["--data", "EMPTY"], "empty"),
    "data only a corrupt image": (["--data", "CORRUPT"], "no readable images"),
    "data smaller than the model, no resize": (
        ["--data", "IMAGES", "--no-resize", "--image-size", "64"],
        "smaller than 64",
    ),
    "grad-accum 0": (["--grad-accum", "0"], "--grad-accum"),
    "grad-accum text": (["--grad-accum", "two"], "--grad-accum"),
    "batch x accum too large": (["--batch-size", "4000", "--grad-accum", "2"], "--batch-size"),
    "precision fp8": (["--precision", "fp8"], "--precision"),
    "lr-warmup -1": (["--lr-warmup", "-1"], "--lr-warmup"),
    "lr-schedule linear": (["--lr-schedule", "linear"], "--lr-schedule"),
    "grad-clip -1": (["--grad-clip", "-1"], "--grad-clip"),
    "grad-clip nan": (["--grad-clip", "nan"], "--grad-clip"),
    "ema-rate twice": (["--ema-rate", "0.9,0.9"], "--ema-rate"),
    "ema-rate text": (["--ema-rate", "fast"], "--ema-rate"),
    "ema-warmup bogus": (["--ema-warmup", "bogus"], "--ema-warmup"),
    "ema-power 0": (["--ema-power", "0"], "--ema-power"),
    "random-crop 0": (["--random-crop", "0,1"], "--random-crop"),
    "random-crop reversed": (["--random-crop", "0.9,0.5"], "--random-crop"),
    "random-crop text": (["--random-crop", "half"], "--random-crop"),
    "random-crop range without resize": (["--random-crop", "0.5,1", "--no-resize"], "--no-resize"),
    "workers -2": (["--workers", "-2"], "--workers"),
    "log-every 0": (["--log-every", "0"], "--log-every"),
    "val-every -1": (["--val-every", "-1"], "--val-every"),
    "val-split 0.9": (["--val-split", "0.9"], "--val-split"),
    "val-split on digits": (["--val-split", "0.1"], "--val-data digits"),
    "val-split and val-data": (["--val-split", "0.1", "--val-data", "EMPTY"], "--val-split"),
    "val-images 0": (["--val-images", "0"], "--val-images"),
    "val-preset bogus": (["--val-preset", "bogus"], "--val-preset"),
    "val-every on a folder without held-out images": (
        ["--data", "IMAGES", "--val-every", "5"],
        "--val-split",
    ),
    "val-data missing": (["--val-every", "5", "--val-data", "/nonexistent/held"], "held"),
    "init missing file": (["--init", "/nonexistent/model.pt"], "/nonexistent/model.pt"),
    "init unknown name": (["--init", "nosuchmodel"], "nosuchmodel"),
    "init-config without init": (["--init-config", "TINY_YML"], "--init-config"),
    "init and a disagreeing flag": (
        ["--init", "TINY", "--num-channels", "64"],
        "--num-channels 64",
    ),
    "init a pickle that runs code": (["--init", "EXPLOIT"], "only an unsafe load would run"),
}
PLACEHOLDERS = {
    "EMPTY": "empty",
    "CORRUPT": "corrupt",
    "IMAGES": "images",
    "TINY": "tiny.pt",
    "TINY_YML": "tiny.yml",
    "EXPLOIT": "exploit.pt",
}


@pytest.mark.parametrize("case", sorted(TRAIN_CASES))
def test_train(case, world, tmp_path, capsys):
    flags, words = TRAIN_CASES[case]
    (world / "corrupt").mkdir(exist_ok=True)
    (world / "corrupt" / "only.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    flags = [str(world / PLACEHOLDERS[flag]) if flag in PLACEHOLDERS else flag for flag in flags]
    data = [] if "--data" in flags else ["--data", "digits"]
    out = tmp_path / "run"
    try:
        code = main(["train", *data, "--out", str(out), "--steps", "1", *flags, "--no-progress"])
    except SystemExit as stop:
        code = stop.code
    check_contract(code, capsys.readouterr().err, words, world, out)


def other_world_state(path: Path, world: Path) -> None:
    """A valid state of the same settings, written by a two-process run."""
    from dataclasses import asdict

    from repaint.training.config import TrainConfig

    state = {
        "config": asdict(TrainConfig(data="digits", steps=1)),
        "step": 1,
        "model": {},
        "ema": {},
        "optimizer": {},
        "generator": torch.Generator().get_state(),
        "world_size": 2,
    }
    torch.save(state, path)


STATE_CASES = {
    "another world size": (other_world_state, "2 process(es), this is 1"),
    "foreign dict": (lambda path, world: torch.save({"a": 1}, path), "not a training state"),
    "garbage bytes": (lambda path, world: path.write_bytes(b"garbage"), "unreadable"),
    "a pickle that runs code": (
        lambda path, world: torch.save({"config": Exploit(world / "PWNED")}, path),
        "unreadable",
    ),
}


@pytest.mark.parametrize("case", sorted(STATE_CASES))
def test_train_state(case, world, tmp_path, capsys):
    make, words = STATE_CASES[case]
    out = tmp_path / "run"
    out.mkdir()
    make(out / "train_state.pt", world)
    before = sorted(out.iterdir())
    code = main(["train", "--data", "digits", "--out", str(out), "--steps", "1", "--no-progress"])
    lines = [line for line in capsys.readouterr().err.splitlines() if "warning" not in line]
    assert code == 2 and len(lines) == 1 and words in lines[0], lines
    assert sorted(out.iterdir()) == before and not (world / "PWNED").exists()


# ---- the Python API -----------------------------------------------------------------------------

digit = np.full((32, 32, 3), 200, dtype=np.uint8)
keep = np.ones((32, 32), dtype=bool)
keep[8:16, 8:16] = False
API_CASES = {
    "sampler_options a list": (
        lambda f: f(digit, keep, sampler="ddnm", sampler_options=[1]),
        "sampler_options: expected a mapping",
    ),
    "sampler_options unknown": (
        lambda f: f(digit, keep, sampler="pigdm", sampler_options={"zeta": 1}),
        "sampler_options: pigdm has no option 'zeta'",
    ),
    "lanpaint n_steps negative": (
        lambda f: f(digit, keep, sampler="lanpaint", sampler_options={"n_steps": -2}),
        "sampler_options.n_steps: ",
    ),
    "image an int": (lambda f: f(5, keep), "unsupported image type"),
    "image a list": (lambda f: f([[1, 2]], keep), "unsupported image type"),
    "image path missing": (lambda f: f("/nonexistent.png", keep), "/nonexistent.png"),
    "image 4-d array": (lambda f: f(np.zeros((2, 32, 32, 3), np.uint8), keep), "shape"),
    "image 5 channels": (lambda f: f(np.zeros((32, 32, 5), np.uint8), keep), "shape"),
    "image 0-255 floats": (lambda f: f(digit.astype(np.float32), keep), "divide"),
    "image NaN": (lambda f: f(np.full((32, 32, 3), np.nan, np.float32), keep), "NaN"),
    "image complex": (lambda f: f(digit.astype(np.complex64), keep), "pixel type"),
    "image 5-d tensor": (lambda f: f(torch.zeros(1, 1, 3, 32, 32), keep), "tensor"),
    "image empty": (lambda f: f(np.zeros((0, 4, 3), np.uint8), keep), "empty"),
    "mask floats above 1": (lambda f: f(digit, keep.astype(np.float32) * 3), "[0, 1]"),
    "mask int64": (lambda f: f(digit, keep.astype(np.int64)), "dtype"),
    "mask 5-d": (lambda f: f(digit, np.zeros((1, 1, 1, 32, 32), bool)), "mask"),
    "mask a string list": (lambda f: f(digit, ["x"]), "mask"),
    "generator an int": (lambda f: f(digit, keep, generator=5), "generator"),
    "seed and generator": (
        lambda f: f(digit, keep, seed=1, generator=torch.Generator().manual_seed(0)),
        "seed= or generator=",
    ),
    "unknown option": (lambda f: f(digit, keep, sampels=2), "'sampels'"),
    "num_samples 0": (lambda f: f(digit, keep, num_samples=0), "num_samples: "),
    "num_samples float": (lambda f: f(digit, keep, num_samples=1.5), "num_samples: "),
    "schedule a string": (lambda f: f(digit, keep, schedule="fast"), "schedule"),
    "eta nan": (lambda f: f(digit, keep, eta=math.nan), "eta: "),
    "t_T 1": (lambda f: f(digit, keep, schedule={"t_T": 1}), "schedule.t_T: "),
    "t_T 10**9": (lambda f: f(digit, keep, schedule={"t_T": 10**9}), "more than"),
    "dtype differs from the load": (lambda f: f(digit, keep, dtype="bf16"), "load_inpainter"),
    "prompt on a pixel model": (lambda f: f(digit, keep, prompt="x"), "prompt: "),
    "class on the digits model": (lambda f: f(digit, keep, class_label=3), "class_label: "),
    "model unknown": (
        lambda f: repaint.inpaint(digit, keep, model="nosuchmodel"),
        "nosuchmodel",
    ),
    "model device bogus": (lambda f: repaint.inpaint(digit, keep, device="tpu"), "--device"),
    "request not a request": (lambda f: f(digit, keep, request={"seed": 1}), "request"),
}


@pytest.fixture(scope="module")
def digits_model():
    return repaint.load_inpainter("digits", device="cpu")


@pytest.mark.parametrize("case", sorted(API_CASES))
def test_api(case, digits_model):
    call, words = API_CASES[case]
    with pytest.raises(RepaintError) as caught:
        call(lambda *a, **k: digits_model(*a, **{"schedule": {"t_T": 4}, **k}))
    message = str(caught.value)
    assert words in message and "\n" not in message, message


# ---- the smaller ones --------------------------------------------------------------------------


def test_a_full_disk_leaves_neither_the_png_nor_its_sidecar(world, tmp_path, capsys, monkeypatch):
    import errno

    import repaint.jobs

    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "a.json"))

    monkeypatch.setattr(repaint.jobs.json, "dump", no_space)
    out = tmp_path / "out"
    code = main(["inpaint", *good(world), *tiny(world), "--out", str(out), *SHORT])
    err = capsys.readouterr().err  # the cost lines came first: the failure is mid-run
    errors = [line for line in err.splitlines() if line.startswith("repaint: error:")]
    assert code == 2 and len(errors) == 1 and "a.json" in errors[0] and "Traceback" not in err
    assert not list(out.iterdir())  # no PNG without its sidecar, no temporary file


def test_a_folder_takes_webp_and_names_what_it_skips(world, tmp_path, capsys):
    images = tmp_path / "images"
    images.mkdir()
    Image.open(world / "images" / "a.png").save(images / "w.webp", lossless=True)
    (images / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    mask = str(world / "masks" / "a.png")
    code = main(["inpaint", str(images), "--mask", mask, *tiny(world), "--out", str(out), *SHORT])
    err = capsys.readouterr().err
    assert code == 0 and (out / "w.png").is_file()
    assert "skipped 1 file(s) that are not images: notes.txt" in err


def test_nan_stops_the_run_early(tiny_model, tmp_path):
    state = torch.load(tiny_model, weights_only=True)
    state["out.2.bias"] = torch.full_like(state["out.2.bias"], float("nan"))
    torch.save(state, tmp_path / "broken.pt")
    shutil.copy(tiny_model.with_suffix(".yml"), tmp_path / "broken.yml")
    broken = repaint.load_inpainter(tmp_path / "broken.pt", device="cpu")
    steps = []
    with pytest.raises(RepaintError, match="model evaluation 1 of 210"):
        broken(digit, keep, seed=0, callback=lambda event: steps.append(event.step.index))
    assert len(steps) == 25  # stopped at the first check, not after all 210


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("lots", "$REPAINT_MAX_PIXELS: expected"),
        ("0", "$REPAINT_MAX_PIXELS: expected"),
        ("100", "more than the limit of 100"),
    ],
)
def test_the_pixel_limit_setting(value, words, world, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("REPAINT_MAX_PIXELS", value)
    out = tmp_path / "out"
    code = main(["inpaint", *good(world), *tiny(world), "--out", str(out), *SHORT])
    check_contract(code, capsys.readouterr().err, words, world, out)


@pytest.mark.parametrize(
    ("flag", "value"),
    [
        ("--max-evaluations", "0"),
        ("--keep-minutes", "-1"),
        ("--max-results-mb", "0"),
        ("--max-upload-mb", "0"),
        ("--confirm-seconds", "-5"),
    ],
)
def test_serve_limits(flag, value, world, tmp_path, capsys):
    code = main(["serve", flag, value])
    check_contract(code, capsys.readouterr().err, flag, world, tmp_path / "none")
