"""One sampler registry, one field table: no sampler is named outside `repaint.samplers`, the
printed, recorded and estimated costs agree with the network calls actually made for every
sampler, a sampler registered in a test appears at every door, and every request field has
its flag and its web form field, each door naming fields its own way."""

from __future__ import annotations

import ast
import json
import re
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import repaint
from repaint.cli import build_parser, main
from repaint.errors import FieldError, RepaintError
from repaint.networks import UNetModel
from repaint.request import InpaintRequest, cli_flag, request_fields
from repaint.samplers import SAMPLERS, Option, SamplerSpec, register, unregister

PACKAGE = Path(repaint.__file__).resolve().parent
SHORT = ["--t-T", "6", "--jump-length", "2", "--jump-n-sample", "2"]


def sampler_literals(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, name) of every sampler name compared with something (==, !=, in, not in)."""
    names = set(SAMPLERS)
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Compare):
            continue
        for operand in [node.left, *node.comparators]:
            values = (
                operand.elts if isinstance(operand, ast.Tuple | ast.List | ast.Set) else [operand]
            )
            for value in values:
                if isinstance(value, ast.Constant) and value.value in names:
                    found.append((node.lineno, value.value))
    return found


def test_no_sampler_is_compared_by_name_outside_the_registry():
    offences = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if "samplers" in path.relative_to(PACKAGE).parts:
            continue
        for line, name in sampler_literals(ast.parse(path.read_text())):
            offences.append(f"{path.relative_to(PACKAGE)}:{line} compares {name!r}")
    assert not offences, offences


def test_the_name_check_finds_a_comparison():
    tree = ast.parse('if request.sampler != "ddnm" or x in ("dps", 1):\n    pass\n')
    assert sampler_literals(tree) == [(1, "ddnm"), (1, "dps")]


@contextmanager
def counted():
    """Images through any guided-diffusion UNet, forward and backward (the cost's plan
    timing call on zeros is left out)."""
    counts = {"forward": 0, "backward": 0}

    def add(kind: str, images: int) -> None:
        counts[kind] += images

    def forward(module, args):
        if isinstance(module, UNetModel) and args[0].abs().sum() > 0:
            add("forward", args[0].shape[0])
            if args[0].requires_grad:
                args[0].register_hook(lambda grad: add("backward", grad.shape[0]))

    handle = torch.nn.modules.module.register_module_forward_pre_hook(forward)
    try:
        yield counts
    finally:
        handle.remove()


CASES = [[name] for name in SAMPLERS] + [["repaint", "--branch-at", "3", "--branches", "2"]]


@pytest.mark.parametrize("case", CASES, ids=[" ".join(case) for case in CASES])
def test_every_door_states_the_cost_that_is_spent(case, tmp_path, capsys):
    """Header, plan line, sidecar, the web page's estimate and the network calls made."""
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from repaint.web.app import create_app

    sampler, *branching = case
    image, mask = repaint.example()
    argv = ["inpaint", str(image), "--mask", str(mask), "--sampler", sampler, *SHORT, *branching]
    with counted() as counts:
        assert main([*argv, "--seed", "1", "--no-progress", "--out", str(tmp_path)]) == 0
    err = capsys.readouterr().err
    samples = 2 if branching else 1
    sidecars = [json.loads(path.read_text()) for path in sorted(tmp_path.glob("*.json"))]
    assert len(sidecars) == samples
    recorded = sidecars[0]["model_evaluations"]
    planned = int(re.search(r"= (?:at least )?([\d,]+) model evaluations", err)[1].replace(",", ""))
    header = re.search(r"(\d+) (?:model evaluations per window|per branch)", err)
    made = counts["forward"] + counts["backward"]
    assert planned == recorded
    exact = SAMPLERS[sampler].cost_is_exact
    assert made == recorded if exact else made >= recorded  # CoPaint: a lower bound
    shared = re.search(r"(\d+) shared down to level", err)
    each = int(header[1])
    assert recorded == (int(shared[1]) if shared else 0) + samples * each
    with TestClient(create_app(model="digits", models=["digits"], device="cpu")) as client:
        schedule = {"t_T": 6, "jump_length": 2, "jump_n_sample": 2}
        asked = {**schedule, "sampler": sampler, "num_samples": samples}
        if branching:
            asked["branch_at"] = 3
        api = client.post("/api/evaluations", json=asked).json()
    assert api["evaluations"] == each and api["total"] == recorded
    if sampler in ("dps", "pigdm"):  # a backward pass per step, counted as an evaluation
        assert counts["backward"] == counts["forward"] > 0


def inpaint_actions() -> list:
    """The arguments of `repaint inpaint`, as its parser has them."""
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    return commands.choices["inpaint"]._actions


def inpaint_action(dest: str):
    return next(action for action in inpaint_actions() if action.dest == dest)


def toy_sampler(denoiser, diffusion, image, keep_mask, levels, *, generator, callback=None,
                paste=True, blend=0.5):  # fmt: skip
    """Fills the hole with `blend` x the known pixels' mean: no network at all."""
    mean = (image * keep_mask).sum() / keep_mask.expand_as(image).sum().clamp(min=1)
    return torch.where(keep_mask.expand_as(image) > 0.5, image, blend * mean)


def toy_cost(levels, diffusion=None, **options):
    return 7, 0


@pytest.fixture
def toy():
    spec = SamplerSpec(
        name="toy",
        summary="a test sampler",
        function=f"{__name__}:toy_sampler",
        cost=f"{__name__}:toy_cost",
        reference="this test",
        options={"blend": Option(0.5, "share of the mean", 0, 1)},
    )
    register(spec)
    yield spec
    unregister("toy")


def test_a_registered_sampler_appears_at_every_door(toy, tmp_path):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from repaint.web.app import create_app

    assert "toy" in inpaint_action("sampler").choices
    with TestClient(create_app(model="digits", models=["digits"], device="cpu")) as client:
        assert "toy" in client.get("/api/config").json()["samplers"]
        cost = client.post("/api/evaluations", json={"t_T": 5, "sampler": "toy"}).json()
    assert cost["evaluations"] == 7
    image, mask = repaint.example()
    argv = ["inpaint", str(image), "--mask", str(mask), "--sampler", "toy", "--sampler-option",
            "blend=0.25", "--seed", "0", "--no-progress", "--out", str(tmp_path)]  # fmt: skip
    assert main(argv) == 0
    sidecar = json.loads((tmp_path / "digit.json").read_text())
    assert sidecar["model_evaluations"] == 7 and sidecar["options"]["sampler_options"] == {
        "blend": 0.25
    }
    with pytest.raises(RepaintError, match=r"sampler_options\.blend"):
        InpaintRequest(sampler="toy", sampler_options={"blend": 2})


def test_every_request_field_has_a_flag_and_a_form_field():
    pytest.importorskip("fastapi")
    from repaint.web.form import FormOptions

    actions = inpaint_actions()
    flags = {flag for action in actions for flag in action.option_strings}
    dests = {action.dest for action in actions}
    for item in request_fields():
        if item.metadata["kind"] in ("schedule", "branch_schedule"):
            assert {"--t-T", "--schedule-file"} <= flags or item.name != "schedule"
            assert "--branch-jump-length" in flags or item.name != "branch_schedule"
        else:
            assert cli_flag(item.name) in flags and item.name in dests, item.name
        assert item.name in FormOptions.model_fields, item.name
        assert item.metadata["help"] and item.metadata["label"], item.name


def test_each_door_names_the_field_its_own_way(tmp_path, capsys):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from repaint.web.app import create_app

    with pytest.raises(FieldError) as python:
        InpaintRequest(num_samples=0)
    assert str(python.value).startswith("num_samples: ")
    image, mask = repaint.example()
    argv = [
        "inpaint",
        str(image),
        "--mask",
        str(mask),
        "--num-samples",
        "0",
        "--out",
        str(tmp_path),
    ]
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("repaint: error: --num-samples: ")
    with TestClient(create_app(model="digits", models=["digits"], device="cpu")) as client:
        response = client.post("/api/estimate", json={"num_samples": 3, "grow": -1})
    assert response.status_code == 400 and response.json()["error"].startswith("options.grow: ")
    assert "--grow" not in response.json()["error"]


def test_a_bad_network_key_in_a_run_config_is_named(golden_dir, tmp_path, capsys):
    import shutil

    import yaml

    work = tmp_path / "uncond32"
    shutil.copytree(golden_dir / "uncond32", work)
    conf = yaml.safe_load((work / "conf.yml").read_text())
    conf["attention_resolutions"] = "abc"
    (work / "conf.yml").write_text(yaml.safe_dump(conf))
    code = main(["run", "--conf", str(work / "conf.yml"), "--seed", "0", "--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "attention_resolutions" in err[0]
    assert "conf.yml" in err[0] and "invalid literal" not in err[0]


def test_a_folder_shares_batches_and_gives_the_pixels_of_one_by_one(tmp_path, capsys):
    """The six example digits at default options: one batch of six, byte for byte the
    outputs of --batch-size 1."""
    assert main(["example", "--out", str(tmp_path / "ex")]) == 0
    common = ["inpaint", str(tmp_path / "ex" / "digits"), "--mask", str(tmp_path / "ex" / "masks"),
              "--preset", "draft", "--seed", "5", "--no-progress"]  # fmt: skip
    with counted() as together:
        assert main([*common, "--out", str(tmp_path / "a")]) == 0
    with counted() as alone:
        assert main([*common, "--batch-size", "1", "--out", str(tmp_path / "b")]) == 0
    outputs = sorted(path.name for path in (tmp_path / "a").glob("*.png"))
    assert len(outputs) == 6
    for name in outputs:
        first = np.asarray(Image.open(tmp_path / "a" / name))
        assert np.array_equal(first, np.asarray(Image.open(tmp_path / "b" / name)))
    assert together["forward"] == alone["forward"] == 6 * 90
    assert "6 image(s)" in capsys.readouterr().err
