"""Latent RePaint with a text prompt, on a tiny random Stable-Diffusion-shaped pipeline built
here from configs: UNet2DConditionModel, AutoencoderKL, CLIPTextModel and a word tokenizer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from repaint.cli import main
from repaint.latent import latent_keep
from repaint.loading import load_inpainter

diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")

WORDS = ["[PAD]", "[UNK]", "a", "red", "blue", "cat", "dog", "photo", "of"]
HEIGHT, WIDTH = 48, 64
SHORT = {"t_T": 6, "jump_length": 2, "jump_n_sample": 2}  # 10 evaluations


@pytest.fixture(scope="module")
def sd_folder(tmp_path_factory):
    from tokenizers import Tokenizer, models, pre_tokenizers

    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("sd") / "tiny-sd"
    unet = diffusers.UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=16,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    vae = diffusers.AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=(4, 4, 4, 4),
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=2,
        sample_size=64,
    )
    text_encoder = transformers.CLIPTextModel(
        transformers.CLIPTextConfig(
            vocab_size=len(WORDS),
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            max_position_embeddings=8,
            pad_token_id=0,
            bos_token_id=0,
            eos_token_id=0,
        )
    )
    words = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="[UNK]"))
    words.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=words, pad_token="[PAD]", unk_token="[UNK]", model_max_length=8
    )
    scheduler = diffusers.DDPMScheduler(
        beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012, clip_sample=False
    )
    for name, part in (
        ("unet", unet),
        ("vae", vae),
        ("text_encoder", text_encoder),
        ("tokenizer", tokenizer),
        ("scheduler", scheduler),
    ):
        part.save_pretrained(folder / name)
    (folder / "model_index.json").write_text(json.dumps({"_class_name": "StableDiffusionPipeline"}))
    return folder


def photo() -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)


def hole() -> np.ndarray:
    keep = np.ones((HEIGHT, WIDTH), dtype=bool)
    keep[13:35, 20:45] = False  # not aligned to the 8 px latent cells
    return keep


def test_latent_mask_is_conservative_and_grows_in_cells():
    keep = torch.ones(1, 1, 16, 24)
    keep[..., 9, 3] = 0  # one unknown pixel makes its whole 8x8 cell unknown
    cells = latent_keep(keep, 8)
    assert cells.shape == (1, 1, 2, 3) and cells.sum() == 5 and cells[0, 0, 1, 0] == 0
    assert latent_keep(keep, 8, grow=1).sum() == 2  # the cell and its neighbours


@pytest.fixture(scope="module")
def inpainter(sd_folder):
    return load_inpainter(sd_folder, device="cpu")


def test_latent_inpainting_keeps_known_pixels_and_follows_the_prompt(inpainter):
    image, keep = photo(), hole()
    calls = []
    unet = inpainter.prior.unet
    forward = unet.forward

    def counting(sample, *args, **kwargs):
        calls.append(sample.shape[0])
        return forward(sample, *args, **kwargs)

    unet.forward = counting
    try:
        first = inpainter(image, keep, schedule=SHORT, prompt="a red cat", seed=1, num_samples=2)
    finally:
        unet.forward = forward
    assert calls == [4] * 10  # unconditional and conditional, 2 samples, in one call per step
    again = inpainter(image, keep, schedule=SHORT, prompt="a red cat", seed=1, num_samples=2)
    other = inpainter(image, keep, schedule=SHORT, prompt="a blue dog", seed=1, num_samples=2)
    for k in range(2):
        result = np.asarray(first.images[k])
        assert result.shape == image.shape
        assert (result[keep] == image[keep]).all()  # every known pixel, exactly
        assert (result[~keep] != image[~keep]).any()
        assert (result == np.asarray(again.images[k])).all()  # deterministic for a seed
        assert (result != np.asarray(other.images[k])).any()  # the prompt matters
    assert (np.asarray(first.images[0]) != np.asarray(first.images[1])).any()


def test_sizes_off_the_latent_grid_are_refused(inpainter):
    with pytest.raises(Exception, match="not a multiple of 8"):
        inpainter(photo()[:44], hole()[:44], schedule=SHORT, prompt="a cat")


def test_cli_with_prompt_sidecar_and_progress(sd_folder, tmp_path):
    Image.fromarray(photo()).save(tmp_path / "a.png")
    Image.fromarray(hole()).save(tmp_path / "m.png")
    args = ["inpaint", tmp_path / "a.png", "--mask", tmp_path / "m.png", "--model", sd_folder]
    args += ["--prompt", "a photo of a cat", "--guidance-scale", "3", "--eta", "0"]
    args += ["--t-T", "6", "--jump-length", "2", "--jump-n-sample", "2", "--seed", "2"]
    args += ["--save-progress", "--no-progress", "--out", tmp_path / "out"]
    assert main([str(arg) for arg in args]) == 0
    sidecar = json.loads((tmp_path / "out" / "a.json").read_text())
    assert sidecar["options"]["prompt"] == "a photo of a cat"
    assert sidecar["options"]["guidance_scale"] == 3.0 and sidecar["sampler"] == "ddim eta=0"
    assert (tmp_path / "out" / "a_progress.gif").stat().st_size > 0
    again = tmp_path / "again"
    assert (
        main(["inpaint", "--from-sidecar", str(tmp_path / "out" / "a.json"), "--out", str(again)])
        == 0
    )
    assert (again / "a.png").read_bytes() == (tmp_path / "out" / "a.png").read_bytes()


def test_prompt_for_a_pixel_model_is_one_line(tiny_model, tmp_path, capsys):
    Image.fromarray(photo()[:32, :32]).save(tmp_path / "a.png")
    Image.fromarray(hole()[:32, :32]).save(tmp_path / "m.png")
    args = ["inpaint", tmp_path / "a.png", "--mask", tmp_path / "m.png", "--model", tiny_model]
    args += ["--prompt", "a cat", "--out", tmp_path / "out", "--t-T", "4", "--no-progress"]
    assert main([str(arg) for arg in args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not text-conditioned" in err[0]


def test_a_latent_model_branches_with_the_known_pixels_exact(inpainter):
    image, keep = photo(), hole()
    result = inpainter(image, keep, schedule=SHORT, prompt="a cat", seed=2, num_samples=2,
                       branch_at=3)  # fmt: skip
    plain = inpainter(image, keep, schedule=SHORT, prompt="a cat", seed=2)
    # the time list of t_T 6, jump length 2, twice: 5 4 3 2 (3 4) 3 2 1 0 (1 2) 1 0 -1;
    # down to level 3: 2 steps, shared; from there each branch: 1 + 4 + 3 = 8 steps
    shared, branch = 2, 8
    assert result.model_evaluations == shared + 2 * branch
    outs = [np.asarray(im) for im in result.images]
    for out in outs:
        assert (out[keep] == image[keep]).all()
    assert (outs[0] != outs[1]).any() and (outs[0] != np.asarray(plain.image)).any()


def test_a_crop_fit_is_refused_in_one_line(inpainter):
    from repaint.errors import RepaintError

    with pytest.raises(RepaintError, match=r"fit: .*'crop' does not apply"):
        inpainter(photo(), hole(), fit="crop", schedule={"t_T": 4})


def test_a_latent_model_extends_the_whole_canvas_at_once(inpainter):
    image = photo()
    result = inpainter(image, None, schedule=SHORT, prompt="a cat", seed=3, extend=(8, 0, 8, 8))
    out = np.asarray(result.image)
    assert out.shape == (HEIGHT + 8, WIDTH + 16, 3)
    assert np.array_equal(out[:HEIGHT, 8 : 8 + WIDTH], image)
    assert (out[:, :8] != out[:, 8:9]).any()  # the new columns are generated, not the edge


def test_ddnm_runs_on_latents_and_pixel_only_samplers_are_refused(inpainter):
    from repaint.errors import RepaintError

    image, keep = photo(), hole()
    result = inpainter(image, keep, schedule=SHORT, prompt="a cat", sampler="ddnm", seed=0)
    out = np.asarray(result.image)
    assert (out[keep] == image[keep]).all() and (out[~keep] != image[~keep]).any()
    assert result.model_evaluations == 9  # DDNM stops at level 0: one step fewer than RePaint
    with pytest.raises(RepaintError, match=r"sampler: dps runs on pixel models; model .* latent"):
        inpainter(image, keep, schedule=SHORT, prompt="a cat", sampler="dps", seed=0)


def test_the_web_runner_records_frames_of_a_latent_model(sd_folder):
    import io
    import time

    from fastapi.testclient import TestClient

    from repaint.web.app import create_app

    files = {}
    for name, array in (("image", photo()), ("mask", np.where(hole(), 0, 255).astype(np.uint8))):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, format="PNG")
        files[name] = (f"{name}.png", buffer.getvalue(), "image/png")
    options = {"schedule": SHORT, "prompt": "a red cat", "seed": 3, "sampler": "ddnm"}
    with TestClient(create_app(model=str(sd_folder), models=[str(sd_folder)], device="cpu")) as c:
        job = c.post("/api/jobs", files=files, data={"options": json.dumps(options)}).json()
        for _ in range(600):
            status = c.get(f"/api/jobs/{job['id']}").json()
            if status["state"] in ("done", "failed", "cancelled"):
                break
            time.sleep(0.1)
        assert status["state"] == "done", status
        assert len(status["frames"]) == 9  # a recorded frame for each of DDNM's 9 steps
        frame = Image.open(io.BytesIO(c.get(f"/api/jobs/{job['id']}/frames/0.png").content))
        assert frame.size == (WIDTH, HEIGHT)  # decoded to pixels


def test_the_parts_load_in_their_dtype_without_a_casting_warning(sd_folder, capfd):
    """diffusers warns "Casting directly with `to()` can lead to inconsistent results" when a
    model is cast after loading; its parts are loaded in their dtype instead."""
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        inpainter = load_inpainter(sd_folder, device="cpu", dtype="bf16")
    said = capfd.readouterr().err + " ".join(str(w.message) for w in caught)
    assert "Casting directly" not in said and "should be kept in float32" not in said
    prior = inpainter.prior
    assert {p.dtype for p in prior.unet.parameters()} == {torch.bfloat16}
    assert {p.dtype for p in prior.vae.parameters()} == {torch.bfloat16}
