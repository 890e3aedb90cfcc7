"""The inpainting request: one checked, frozen value from every door, and its sidecar."""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import re

import pytest

from repaint.cli import main
from repaint.errors import FieldError, RepaintError
from repaint.presets import DEFAULT_PRESET, PRESETS
from repaint.request import InpaintRequest, cli_flag
from repaint.schedule import JumpSchedule
from repaint.sidecar import read_sidecar
from tests.test_inpaint import SHORT_FLAGS, write_inputs


def test_defaults_are_the_fast_preset_with_ancestral_steps():
    request = InpaintRequest()
    assert request.preset == DEFAULT_PRESET == "fast"
    assert request.jump_schedule == PRESETS["fast"].schedule
    assert request.eta == "ddpm" and request.sampler_eta is None
    assert request.jump_schedule.reverse_steps == 210


def test_schedule_keys_override_the_preset_and_only_differences_are_kept():
    request = InpaintRequest(preset="paper", schedule={"t_T": 100})
    assert request.schedule == {"t_T": 100}
    assert request.jump_schedule == dataclasses.replace(PRESETS["paper"].schedule, t_T=100)
    same = InpaintRequest(preset="paper", schedule=PRESETS["paper"].schedule)
    assert same.schedule is None and same == InpaintRequest(preset="paper")


@pytest.mark.parametrize(
    ("options", "field", "flag"),
    [
        ({"num_samples": 0}, "num_samples", "--num-samples"),
        ({"num_samples": True}, "num_samples", "--num-samples"),
        ({"num_samples": 2.5}, "num_samples", "--num-samples"),
        ({"seed": -1}, "seed", "--seed"),
        ({"mask_mode": "white"}, "mask_mode", "--mask-mode"),
        ({"fit": "zoom"}, "fit", "--fit"),
        ({"grow": -1}, "grow", "--grow"),
        ({"mask_blur": -2}, "mask_blur", "--mask-blur"),
        ({"batch_size": 0}, "batch_size", "--batch-size"),
        ({"eta": 2}, "eta", "--eta"),
        ({"eta": "fast"}, "eta", "--eta"),
        ({"dtype": "fp8"}, "dtype", "--dtype"),
        ({"class_label": "not a class at all"}, "class_label", "--class"),
        ({"class_label": 1000}, "class_label", "--class"),
        ({"guidance_scale": math.nan}, "guidance_scale", "--guidance-scale"),
        ({"classifier_scale": -1.0}, "classifier_scale", "--classifier-scale"),
        ({"context": -0.5}, "context", "--context"),
        ({"compile": "yes"}, "compile", "--compile"),
        ({"prompt": 5}, "prompt", "--prompt"),
        (
            {"sampler": "ddnm", "sampler_options": {"eta": 3}},
            "sampler_options.eta",
            "--sampler-option eta",
        ),
        ({"schedule": {"t_T": 1}}, "schedule.t_T", "--t-T"),
        ({"schedule": {"times": [0, -1]}}, "schedule", "--schedule-file"),
        ({"schedule": {"times": [2, 0, -1]}}, "schedule", "--schedule-file"),
    ],
)
def test_bad_values_are_refused_naming_the_field_each_door_its_way(options, field, flag):
    with pytest.raises(FieldError) as refused:
        InpaintRequest(**options)
    assert str(refused.value).startswith(f"{field}: ")
    assert refused.value.worded(cli_flag).startswith(f"{flag}: ")


@pytest.mark.parametrize(
    ("options", "words"),
    [
        ({"preset": "slow"}, "preset: unknown preset"),
        ({"schedule": {"t_T": 0}}, "t_T"),
        ({"schedule": {"bogus": 1}}, "bogus"),
        ({"schedule": [1, 2]}, "schedule"),
        ({"schedule": {"times": [2, 1, 0, -1], "t_T": 3}}, "whole schedule; drop schedule.t_T"),
        ({"schedule": {"times": [2, 0, -1]}}, "entry 1 goes from 2 to 0"),
    ],
)
def test_bad_values_are_refused(options, words):
    with pytest.raises(RepaintError, match=re.escape(words)):
        InpaintRequest(**options)


def test_it_is_frozen_and_a_seed_makes_a_copy():
    request = InpaintRequest()
    with pytest.raises(dataclasses.FrozenInstanceError):
        request.seed = 5  # type: ignore[misc]
    seeded = request.with_seed(5)
    assert seeded.seed == 5 and request.seed is None


def test_json_round_trip_gives_an_equal_request():
    request = InpaintRequest(
        preset="draft",
        schedule={"jump_length": 5},
        eta="0.5",
        num_samples=3,
        seed=11,
        mask_mode="fill",
        grow=2,
        fit="crop",
        mask_blur=3,
        class_label="golden retriever",
        classifier_scale=2.0,
        dtype="bf16",
        batch_size=4,
    )
    assert request.class_label == 207 and request.eta == 0.5
    data = json.loads(json.dumps(request.to_dict()))
    assert InpaintRequest.from_dict(data) == request
    # applying the normalised values again changes nothing
    assert dataclasses.replace(request) == request


def test_a_time_list_round_trips_through_json_and_is_the_schedule():
    times = [3, 2, 1, 2, 1, 0, -1]
    request = InpaintRequest(schedule={"times": times}, branch_at=1)
    assert request.jump_schedule.times() == times and request.jump_schedule.reverse_steps == 5
    data = json.loads(json.dumps(request.to_dict()))
    assert InpaintRequest.from_dict(data) == request


def test_unknown_options_are_refused_by_name():
    with pytest.raises(RepaintError, match="'sampels'"):
        InpaintRequest.from_dict({"sampels": 2})
    with pytest.raises(RepaintError, match="'mask'"):
        InpaintRequest.from_options(mask="m.png")
    with pytest.raises(RepaintError, match="JSON object"):
        InpaintRequest.from_dict([1])  # type: ignore[arg-type]


def test_a_sidecar_reads_back_into_the_request_it_was_written_from(tiny_model, tmp_path):
    images, masks = write_inputs(tmp_path, names=("a",))
    out = tmp_path / "out"
    flags = ["--model", tiny_model, "--seed", 9, "--num-samples", 2, "--grow", 1, "--eta", "0"]
    code = main(
        ["inpaint", str(images / "a.png"), "--mask", str(masks / "a.png"), "--out", str(out)]
        + [str(arg) for arg in flags]
        + SHORT_FLAGS
    )
    assert code == 0
    sidecar = read_sidecar(out / "a_1.json")
    expected = InpaintRequest(
        schedule=JumpSchedule(t_T=8, jump_length=3, jump_n_sample=2),
        eta=0,
        num_samples=2,
        seed=9,
        grow=1,
    )
    assert sidecar.request == expected and sidecar.sample == 1 and sidecar.name == "a"
    data = json.loads((out / "a_1.json").read_text())
    assert data["schedule"]["t_T"] == 8 and data["sampler"] == "ddim eta=0"


@pytest.fixture(scope="module")
def written_sidecar(tiny_model, tmp_path_factory) -> dict:
    """One short run's sidecar, for the tests that break it."""
    folder = tmp_path_factory.mktemp("sidecar")
    images, masks = write_inputs(folder, names=("a",))
    out = folder / "out"
    args = [images / "a.png", "--mask", masks / "a.png", "--model", tiny_model, "--out", out]
    assert main([str(arg) for arg in ["inpaint", *args]] + SHORT_FLAGS) == 0
    return json.loads((out / "a.json").read_text())


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (lambda d: d.pop("options"), "'options' is missing"),
        (lambda d: d.update(sample="0"), "'sample' has the wrong type"),
        (lambda d: d["options"].update(speed=3), "'speed'"),
        (lambda d: d["options"].update(num_samples=0), "options.num_samples"),
        (lambda d: d["options"].update(seed=None), "seed is missing"),
        (lambda d: d.update(sample=7), "sample 7"),
    ],
)
def test_broken_sidecars_are_one_line_errors(written_sidecar, tmp_path, capsys, edit, words):
    data = copy.deepcopy(written_sidecar)
    edit(data)
    (tmp_path / "bad.json").write_text(json.dumps(data))
    capsys.readouterr()
    again = str(tmp_path / "again")
    code = main(["inpaint", "--from-sidecar", str(tmp_path / "bad.json"), "--out", again])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and words in err[0], err
    assert not (tmp_path / "again").exists()
