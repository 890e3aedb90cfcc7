"""What a new user meets first: the diffusers-shaped Python API, the README's examples, the
cost printed before a run, batched windows, and the guards that catch a wrong mask or a
wrong model."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import repaint
from repaint.cli import main
from repaint.errors import RepaintError, RepaintWarning
from repaint.inpainter import InpaintResult
from repaint.loading import load_inpainter
from repaint.pixel import centre_crop
from tests.conftest import SHORT
from tests.test_inpaint import SHORT_FLAGS, keep_mask, photo

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def digits():
    return load_inpainter("digits", device="cpu")


def test_diffusers_keywords_and_a_generator_work_with_the_defaults():
    image_path, mask_path = repaint.example()
    image, mask = Image.open(image_path), Image.open(mask_path)
    result = repaint.inpaint(
        image=image, mask_image=mask, generator=torch.Generator().manual_seed(0)
    )
    assert isinstance(result, InpaintResult) and len(result.images) == 1
    assert result.request.preset == "fast" and result.model_evaluations == 210
    again = repaint.inpaint(image, mask, seed=result.request.seed, schedule=SHORT)
    short = repaint.inpaint(image, mask, generator=torch.Generator().manual_seed(0), schedule=SHORT)
    assert short.request.seed == result.request.seed  # the generator gives the run seed
    np.testing.assert_array_equal(np.asarray(again.images[0]), np.asarray(short.images[0]))
    keep = np.asarray(mask) > 127
    np.testing.assert_array_equal(np.asarray(result.images[0])[keep], np.asarray(image)[keep])


def test_seed_and_generator_together_are_refused(digits):
    image, mask = repaint.example()
    with pytest.raises(RepaintError, match="seed= or generator="):
        digits(image, mask, seed=1, generator=torch.Generator().manual_seed(0))


def test_a_unit_range_float_tensor_keeps_its_known_pixels(digits):
    image = photo(32, 32, seed=4)
    tensor = torch.from_numpy(image).permute(2, 0, 1).float() / 255  # torchvision's to_tensor
    keep = keep_mask()
    out = np.asarray(digits(tensor[None], keep, schedule=SHORT, seed=2).images[0], dtype=int)
    assert np.abs(out[keep] - image[keep].astype(int)).max() <= 1
    assert abs(out[keep].mean() - image[keep].mean()) < 0.5  # not brightened, not darkened


def test_out_of_range_floats_are_refused_not_guessed(digits):
    image = photo().astype(np.float32)  # 0-255 as floats
    with pytest.raises(RepaintError, match="divide"):
        digits(image, keep_mask(), schedule=SHORT, seed=0)


def test_load_time_options_cannot_silently_differ(digits):
    image, mask = repaint.example()
    with pytest.raises(RepaintError, match="load_inpainter"):
        digits(image, mask, dtype="bf16", schedule=SHORT, seed=0)


@pytest.mark.parametrize(
    "code",
    re.findall(r"```python\n(.*?)```", README.read_text(), re.DOTALL),
    ids=lambda code: code.splitlines()[0][:40],
)
def test_readme_python_examples_run(code, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme"})


def three_holes(tmp_path: Path) -> tuple[Path, Path]:
    image = photo(160, 240, seed=5)
    keep = keep_mask(160, 240, holes=((10, 10, 20, 20), (10, 200, 20, 210), (130, 110, 140, 120)))
    Image.fromarray(image).save(tmp_path / "three.png")
    Image.fromarray(keep).save(tmp_path / "mask.png")
    return tmp_path / "three.png", tmp_path / "mask.png"


def test_three_holes_are_batched_by_default_with_the_pixels_of_one_by_one(
    tiny_model, tmp_path, capsys
):
    image, mask = three_holes(tmp_path)
    common = [image, "--mask", mask, "--model", tiny_model, "--seed", 4, *SHORT_FLAGS]
    assert main([str(arg) for arg in ["inpaint", *common, "--out", tmp_path / "batched"]]) == 0
    printed = capsys.readouterr().err
    assert (
        main(
            [str(a) for a in ["inpaint", *common, "--out", tmp_path / "single", "--batch-size", 1]]
        )
        == 0
    )
    batched = np.asarray(Image.open(tmp_path / "batched" / "three.png"))
    single = np.asarray(Image.open(tmp_path / "single" / "three.png"))
    np.testing.assert_array_equal(batched, single)
    sidecar = json.loads((tmp_path / "batched" / "three.json").read_text())
    assert sidecar["regions"] == 3 and sidecar["network_calls"] == 14  # one batch
    cost = re.search(
        r"three: 3 window\(s\) x 1 sample\(s\) x 14 = (\d+) model evaluations", printed
    )
    assert cost is not None, printed
    assert int(cost.group(1)) == sidecar["model_evaluations"] == 42
    assert re.search(r"in 1 batch\(es\), about \d+ s on this device", printed)


def test_a_mask_that_looks_inverted_warns_once_with_the_fix(tiny_model, tmp_path, capsys):
    image = photo()
    keep = np.zeros((32, 32), dtype=bool)
    keep[4:8, 4:8] = True  # white = the small area: drawn as a fill mask
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(keep).save(tmp_path / "m.png")
    args = ["inpaint", tmp_path / "a.png", "--mask", tmp_path / "m.png", "--model", tiny_model]
    assert main([str(a) for a in [*args, "--out", tmp_path / "out", *SHORT_FLAGS]]) == 0
    warned = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(warned) == 1 and "98% of the image is to be filled" in warned[0]
    assert "--mask-mode fill" in warned[0] and "white = fill" in warned[0]
    assert (
        main(
            [str(a) for a in [*args, "--out", tmp_path / "o2", "--mask-mode", "fill"]] + SHORT_FLAGS
        )
        == 0
    )
    assert "warning" not in capsys.readouterr().err


def test_digits_on_a_large_colour_photo_warns_once_and_names_the_photo_models(digits):
    image = np.zeros((384, 512, 3), dtype=np.uint8)
    image[..., 0] = np.linspace(0, 255, 512, dtype=np.uint8)  # a red ramp: colour
    image[..., 2] = 90
    keep = keep_mask(384, 512, holes=((100, 100, 120, 120),))
    fresh = load_inpainter("digits", device="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fresh(image, keep, schedule=SHORT, seed=0)
        fresh(image, keep, schedule=SHORT, seed=1)
    domain = [w for w in caught if issubclass(w.category, RepaintWarning)]
    assert len(domain) == 1, [str(w.message) for w in domain]
    message = str(domain[0].message)
    assert "handwritten digits" in message and "512x384 colour image" in message
    assert "celeba256" in message and "repaint download" in message
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a digit-like input does not warn
        digits(*repaint.example(), schedule=SHORT, seed=0)


def test_crop_grid_shows_the_centre_cropped_input(tiny_model, tmp_path):
    image = photo(40, 64, seed=8)
    keep = keep_mask(40, 64, holes=((10, 20, 25, 40),))
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(keep).save(tmp_path / "m.png")
    args = ["inpaint", tmp_path / "a.png", "--mask", tmp_path / "m.png", "--model", tiny_model]
    flags = ["--fit", "crop", "--grid", "--out", tmp_path / "out"]
    assert main([str(a) for a in [*args, *flags]] + SHORT_FLAGS) == 0
    grid = np.asarray(Image.open(tmp_path / "out" / "a_grid.png"))
    caption, scale = 18, 256 // 32  # panels are enlarged 8x (nearest) under a caption
    shown = grid[caption : caption + 256, :256][::scale, ::scale]
    cropped, _ = centre_crop(image, keep, 32)
    np.testing.assert_array_equal(shown, cropped)
    squashed = np.asarray(Image.fromarray(image).resize((32, 32)))
    assert not np.array_equal(shown, squashed)


def test_schedule_takes_a_preset_and_help_marks_required_flags(capsys):
    assert main(["schedule", "--preset", "fast", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reverse_steps"] == 210
    assert main(["schedule", "--preset", "fast", "--jump-n-sample", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["reverse_steps"] == 50
    with pytest.raises(SystemExit):
        main(["inpaint", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "required:" in help_text and "output folder (required" in help_text
    assert "white = fill, black = keep (IOPaint, Stable Diffusion)" in help_text
