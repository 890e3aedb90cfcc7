"""`repaint inpaint` and the Python API on a tiny random-weight model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repaint import inpaint
from repaint.cli import main
from repaint.errors import RepaintError, RepaintWarning
from repaint.inpainter import Inpainter, InpaintResult
from repaint.loading import load_inpainter
from repaint.presets import PRESETS
from repaint.schedule import JumpSchedule
from tests.conftest import SHORT


@pytest.fixture(scope="module")
def inpainter(tiny_model) -> Inpainter:
    return load_inpainter(tiny_model, device="cpu")


def photo(height: int = 32, width: int = 32, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def keep_mask(height: int = 32, width: int = 32, holes=((8, 8, 20, 20),)) -> np.ndarray:
    keep = np.ones((height, width), dtype=bool)
    for top, left, bottom, right in holes:
        keep[top:bottom, left:right] = False
    return keep


def run(inpainter, image, mask, **options):
    return inpainter(image, mask, schedule=SHORT, seed=7, **options)


def test_presets_state_their_cost(capsys):
    assert {name: s.reverse_steps for name, s in PRESETS.items()} == {
        "paper": 2410,
        "fast": 210,
        "draft": 90,
    }
    with pytest.raises(SystemExit):
        main(["inpaint", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    for name, schedule in PRESETS.items():
        assert f"{name} ({schedule.reverse_steps} evaluations" in help_text
    assert "fast (210 evaluations, default)" in help_text


def test_fast_preset_is_the_one_the_presets_benchmark_chose():
    report = json.loads((Path(__file__).parent.parent / "docs" / "presets.json").read_text())
    chosen = report["methods"][report["chosen"]]
    assert JumpSchedule.from_params(chosen["schedule"]) == PRESETS["fast"].schedule
    assert chosen["eta"] == PRESETS["fast"].eta
    paper = report["methods"]["paper"]
    assert chosen["mean"]["accuracy"] >= paper["mean"]["accuracy"] - report["tolerance"]


def test_every_input_type_gives_the_same_result(inpainter, tmp_path):
    image, keep = photo(), keep_mask()
    Image.fromarray(image).save(tmp_path / "image.png")
    Image.fromarray(keep).save(tmp_path / "mask.png")
    reference = np.asarray(run(inpainter, tmp_path / "image.png", tmp_path / "mask.png").images[0])
    tensor = torch.from_numpy(image).permute(2, 0, 1).float() / 127.5 - 1
    for source, mask in [
        (Image.fromarray(image), Image.fromarray(keep)),
        (image, keep),
        (tensor, torch.from_numpy(keep).float()),
        (str(tmp_path / "image.png"), keep.astype(np.float32)),
    ]:
        np.testing.assert_array_equal(np.asarray(run(inpainter, source, mask).images[0]), reference)


def test_known_pixels_are_untouched_and_the_hole_changes(inpainter):
    image, keep = photo(), keep_mask()
    out = np.asarray(run(inpainter, image, keep).images[0])
    np.testing.assert_array_equal(out[keep], image[keep])
    assert (out[~keep] != image[~keep]).any()


def test_fill_convention_is_the_inverse(inpainter):
    image, keep = photo(), keep_mask()
    as_keep = run(inpainter, image, keep.astype(np.uint8) * 255).images[0]
    as_fill = run(inpainter, image, (~keep).astype(np.uint8) * 255, mask_mode="fill").images[0]
    np.testing.assert_array_equal(np.asarray(as_keep), np.asarray(as_fill))


def test_samples_differ_and_each_is_independent_of_the_batch(inpainter):
    image, keep = photo(), keep_mask()
    three = run(inpainter, image, keep, num_samples=3).images
    assert len(three) == 3 and not np.array_equal(np.asarray(three[0]), np.asarray(three[1]))
    one_by_one = run(inpainter, image, keep, num_samples=3, batch_size=1).images
    for a, b in zip(three, one_by_one, strict=True):
        assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 1


def test_grow_enlarges_the_filled_area(inpainter):
    image, keep = photo(), keep_mask()
    grown = np.asarray(run(inpainter, image, keep, grow=2).images[0])
    ring = keep.copy()
    ring[6:22, 6:22] = False
    ring = keep & ~ring  # known before growing, filled after
    assert (grown[ring] != image[ring]).any()
    outside = keep.copy()
    outside[6:22, 6:22] = False
    np.testing.assert_array_equal(grown[outside], image[outside])


@pytest.mark.parametrize("fit", ["pad", "resize", "region"])
def test_fit_modes_keep_the_size_and_every_known_pixel(inpainter, fit):
    image, keep = photo(40, 64), keep_mask(40, 64, holes=((10, 20, 25, 40),))
    result = run(inpainter, image, keep, fit=fit)
    out = np.asarray(result.images[0])
    assert out.shape == image.shape and result.fit == fit
    np.testing.assert_array_equal(out[keep], image[keep])
    assert (out[~keep] != image[~keep]).any()


def test_crop_fit_returns_the_reference_centre_crop_at_model_size(inpainter):
    image, keep = photo(40, 64), keep_mask(40, 64, holes=((10, 20, 25, 40),))
    out = run(inpainter, image, keep, fit="crop").images[0]
    assert out.size == (32, 32)


def test_region_mode_on_a_large_image(inpainter):
    """Two holes far apart: two windows at native resolution; every known pixel identical."""
    image = photo(300, 400, seed=3)
    keep = keep_mask(300, 400, holes=((20, 30, 30, 40), (250, 350, 260, 360)))
    result = run(inpainter, image, keep)
    out = np.asarray(result.images[0])
    assert result.fit == "region" and len(result.windows) == 2
    assert all(w.height == w.width == 32 for w in result.windows)
    np.testing.assert_array_equal(out[keep], image[keep])
    assert (out[~keep] != image[~keep]).any(axis=-1).mean() > 0.5


def test_nearby_holes_share_one_window(inpainter):
    image = photo(300, 400)
    keep = keep_mask(300, 400, holes=((100, 100, 110, 110), (112, 112, 120, 120)))
    assert len(run(inpainter, image, keep).windows) == 1


def test_large_hole_is_downscaled_and_pasted_back(inpainter):
    image = photo(200, 200)
    keep = keep_mask(200, 200, holes=((40, 40, 160, 160),))
    result = run(inpainter, image, keep, mask_blur=4)
    out = np.asarray(result.images[0])
    assert len(result.windows) == 1 and result.windows[0].height > 32
    np.testing.assert_array_equal(out[keep], image[keep])


def test_mask_with_nothing_to_fill_copies_and_warns(inpainter):
    image = photo()
    with pytest.warns(RepaintWarning, match="nothing to inpaint"):
        result = run(inpainter, image, np.ones((32, 32), dtype=bool))
    np.testing.assert_array_equal(np.asarray(result.images[0]), image)
    assert result.model_evaluations == 0


def test_mask_with_nothing_known_warns_and_generates(inpainter):
    with pytest.warns(RepaintWarning, match="generated from scratch"):
        result = run(inpainter, photo(), np.zeros((32, 32), dtype=bool))
    assert result.model_evaluations == JumpSchedule(**SHORT).reverse_steps


def test_sixteen_bit_and_cmyk_images_are_converted(inpainter, tmp_path):
    grey16 = (np.linspace(0, 65535, 32 * 32).reshape(32, 32)).astype(np.uint16)
    Image.fromarray(grey16).save(tmp_path / "grey16.png")
    Image.fromarray(photo()).convert("CMYK").save(tmp_path / "cmyk.jpg")
    for name in ("grey16.png", "cmyk.jpg"):
        out = np.asarray(run(inpainter, tmp_path / name, keep_mask()).images[0])
        assert out.shape == (32, 32, 3)
    out = np.asarray(run(inpainter, tmp_path / "grey16.png", keep_mask()).images[0])
    assert out[-1, -1, 0] == 255 and out[0, 0, 0] == 0  # scaled, not clipped


def test_one_off_inpaint_function_returns_the_common_result(tiny_model, inpainter):
    result = inpaint(photo(), keep_mask(), model=tiny_model, device="cpu", schedule=SHORT, seed=1)
    assert isinstance(result, InpaintResult) and len(result.images) == 1
    assert result.request.seed == 1 and result.request.jump_schedule == JumpSchedule(**SHORT)
    same = run(inpainter, photo(), keep_mask(), num_samples=1)
    assert same.request.seed == 7
    two = inpaint(photo(), keep_mask(), model=inpainter, schedule=SHORT, seed=1, num_samples=2)
    assert isinstance(two, InpaintResult) and len(two.images) == 2
    np.testing.assert_array_equal(np.asarray(two.images[0]), np.asarray(result.images[0]))


def test_class_label_out_of_range(inpainter):
    with pytest.raises(RepaintError, match="class_label: "):
        run(inpainter, photo(), keep_mask(), class_label=1000)


def test_nan_during_sampling_is_an_error_naming_the_step(tiny_model, tmp_path):
    state = torch.load(tiny_model, weights_only=True)
    state["out.2.bias"] = torch.full_like(state["out.2.bias"], float("nan"))
    torch.save(state, tmp_path / "broken.pt")
    (tmp_path / "broken.yml").write_text(tiny_model.with_suffix(".yml").read_text())
    broken = load_inpainter(tmp_path / "broken.pt", device="cpu")
    with pytest.raises(RepaintError, match="model evaluation 1 of"):
        run(broken, photo(), keep_mask())


# ---- the command line -------------------------------------------------------------------


def write_inputs(folder: Path, names=("a", "b"), size=(32, 32)) -> tuple[Path, Path]:
    images, masks = folder / "images", folder / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    for i, name in enumerate(names):
        Image.fromarray(photo(*size, seed=i)).save(images / f"{name}.png")
        Image.fromarray(keep_mask(*size)).save(masks / f"{name}.png")
    return images, masks


SHORT_FLAGS = ["--t-T", "8", "--jump-length", "3", "--jump-n-sample", "2", "--no-progress"]


def cli(*args) -> int:
    return main([str(arg) for arg in args])


def test_folder_run_matches_masks_by_stem_and_writes_sidecars(tiny_model, tmp_path):
    images, masks = write_inputs(tmp_path, names=("b", "a"))
    (masks / "a.png").rename(masks / "a.png")  # same stems, listed in another order
    out = tmp_path / "out"
    code = cli(
        "inpaint",
        images,
        "--mask",
        masks,
        "--model",
        tiny_model,
        "--out",
        out,
        "--seed",
        5,
        *SHORT_FLAGS,
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.json", "a.png", "b.json", "b.png"]
    sidecar = json.loads((out / "a.json").read_text())
    assert sidecar["options"]["seed"] == 5 and sidecar["name"] == "a"
    assert sidecar["model"]["sha256"] and sidecar["schedule"]["t_T"] == 8
    assert sidecar["mask"].endswith("masks/a.png")


def test_one_mask_applies_to_every_image(tiny_model, tmp_path):
    images, masks = write_inputs(tmp_path)
    out = tmp_path / "out"
    assert (
        cli(
            "inpaint",
            images,
            "--mask",
            masks / "a.png",
            "--model",
            tiny_model,
            "--out",
            out,
            *SHORT_FLAGS,
        )
        == 0
    )
    assert sorted(p.name for p in out.glob("*.png")) == ["a.png", "b.png"]


def test_sidecar_reproduces_the_output(tiny_model, tmp_path):
    images, masks = write_inputs(tmp_path, names=("a",))
    first, second = tmp_path / "first", tmp_path / "second"
    assert (
        cli(
            "inpaint",
            images / "a.png",
            "--mask",
            masks / "a.png",
            "--model",
            tiny_model,
            "--out",
            first,
            "--num-samples",
            2,
            *SHORT_FLAGS,
        )
        == 0
    )
    assert cli("inpaint", "--from-sidecar", first / "a_1.json", "--out", second) == 0
    assert sorted(p.name for p in second.glob("*.png")) == ["a_1.png"]
    assert (first / "a_1.png").read_bytes() == (second / "a_1.png").read_bytes()


def test_ddim_eta_is_recorded_and_reproduced(tiny_model, tmp_path):
    images, masks = write_inputs(tmp_path, names=("a",))
    inputs = [images / "a.png", "--mask", masks / "a.png", "--model", tiny_model, "--seed", 3]
    assert cli("inpaint", *inputs, "--out", tmp_path / "ddim", "--eta", "0", *SHORT_FLAGS) == 0
    assert cli("inpaint", *inputs, "--out", tmp_path / "ddpm", "--eta", "ddpm", *SHORT_FLAGS) == 0
    sidecar = json.loads((tmp_path / "ddim" / "a.json").read_text())
    assert sidecar["options"]["eta"] == 0.0 and sidecar["sampler"] == "ddim eta=0"
    assert json.loads((tmp_path / "ddpm" / "a.json").read_text())["sampler"] == "ddpm"
    ddim = (tmp_path / "ddim" / "a.png").read_bytes()
    assert ddim != (tmp_path / "ddpm" / "a.png").read_bytes()
    assert (
        cli("inpaint", "--from-sidecar", tmp_path / "ddim" / "a.json", "--out", tmp_path / "again")
        == 0
    )
    assert (tmp_path / "again" / "a.png").read_bytes() == ddim


def test_progress_animation_and_grid(tiny_model, tmp_path):
    images, masks = write_inputs(tmp_path, names=("a",))
    out = tmp_path / "out"
    assert (
        cli(
            "inpaint",
            images,
            "--mask",
            masks,
            "--model",
            tiny_model,
            "--out",
            out,
            "--save-progress",
            "--grid",
            "--num-samples",
            2,
            *SHORT_FLAGS,
        )
        == 0
    )
    with Image.open(out / "a_0_progress.gif") as gif:
        # x_t | predicted x0, under a 16 px strip that names them
        assert gif.n_frames > 5 and gif.width == 2 * (gif.height - 16)
        strip = np.asarray(gif.convert("L"))[:16]
        assert (strip == 255).mean() > 0.8 and (strip < 128).any()  # white, with black text
    grid = Image.open(out / "a_grid.png")
    assert grid.width > 3 * grid.height  # input, masked, 2 samples


def test_schedule_plot(tmp_path):
    pytest.importorskip("matplotlib")
    assert (
        cli(
            "schedule",
            "--t-T",
            50,
            "--jump-length",
            5,
            "--jump-n-sample",
            3,
            "--plot",
            tmp_path / "s.png",
        )
        == 0
    )
    assert Image.open(tmp_path / "s.png").width > 300


def test_masks_command(tmp_path):
    assert (
        cli("masks", "--type", "nn2", "--size", 64, "--count", 3, "--seed", 1, "--out", tmp_path)
        == 0
    )
    files = sorted(tmp_path.glob("*.png"))
    assert len(files) == 3
    assert (np.asarray(Image.open(files[0])) > 0).mean() == 0.25


def test_models_command_lists_the_registry(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("REPAINT_HOME", str(tmp_path))
    assert cli("models") == 0
    listing = capsys.readouterr().out
    for name in ("celeba256", "places256", "imagenet256"):
        assert name in listing


@pytest.mark.parametrize(
    ("setup", "words"),
    [
        (lambda d: ["inpaint", d / "nope.png", "--mask", d / "masks"], ["nope.png"]),
        (lambda d: ["inpaint", d / "images", "--mask", d / "nomasks"], ["nomasks"]),
        (
            lambda d: ["inpaint", d / "images", "--mask", d / "othermasks"],
            ["no mask named", "2 of 2"],
        ),
        (
            lambda d: ["inpaint", d / "images", "--mask", d / "masks", "--model", "nosuchmodel"],
            ["nosuchmodel"],
        ),
        (lambda d: ["inpaint", d / "bad", "--mask", d / "masks" / "a.png"], ["broken.png"]),
        (lambda d: ["inpaint", d / "images", "--mask", d / "masks", "--eta", "2"], ["--eta"]),
        (lambda d: ["inpaint", d / "images", "--mask", d / "masks", "--class", "1000"], ["1000"]),
        (
            lambda d: [
                "inpaint",
                d / "images",
                "--mask",
                d / "masks",
                "--preset",
                "paper",
                "--n-sample",
                "0",
            ],
            ["--n-sample"],
        ),
    ],
)
def test_bad_input_is_one_line_exit_2_no_output(tiny_model, tmp_path, capsys, setup, words):
    write_inputs(tmp_path)
    (tmp_path / "nomasks").mkdir()
    (tmp_path / "othermasks").mkdir()
    Image.fromarray(keep_mask()).save(tmp_path / "othermasks" / "zzz.png")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    args = setup(tmp_path)
    if "--model" not in args:
        args += ["--model", tiny_model]
    out = tmp_path / "out"
    code = cli(*args, "--out", out, *SHORT_FLAGS)
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" not in line]
    assert code == 2 and len(err) == 1 and err[0].startswith("repaint: error:"), err
    for word in words:
        assert word in err[0]
    assert not out.exists() or not any(out.iterdir())


def test_zero_size_image_is_refused(inpainter):
    with pytest.raises(RepaintError, match="empty"):
        run(inpainter, np.zeros((0, 5, 3), dtype=np.uint8), keep_mask())
