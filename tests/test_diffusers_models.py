"""diffusers pixel models (UNet2DModel + scheduler config) as priors, on tiny random models."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from repaint.cli import main
from repaint.errors import RepaintError
from repaint.loading import load_inpainter
from repaint.samplers.repaint import repaint
from repaint.schedule import JumpSchedule

diffusers = pytest.importorskip("diffusers")

SIZE = 16


@pytest.fixture(scope="module")
def pixel_model(tmp_path_factory):
    """A tiny random UNet2DModel with a DDPM scheduler, saved as a diffusers pipeline folder
    (its output layer is not zero-initialised, so it predicts a real, if random, epsilon)."""
    torch.manual_seed(0)
    unet = diffusers.UNet2DModel(
        sample_size=SIZE,
        in_channels=3,
        out_channels=3,
        layers_per_block=1,
        block_out_channels=(8, 16),
        down_block_types=("DownBlock2D", "AttnDownBlock2D"),
        up_block_types=("AttnUpBlock2D", "UpBlock2D"),
        norm_num_groups=4,
    )
    scheduler = diffusers.DDPMScheduler(
        num_train_timesteps=1000,
        beta_schedule="linear",
        variance_type="fixed_small",
        clip_sample=True,
    )
    folder = tmp_path_factory.mktemp("pixel") / "ddpm-tiny"
    diffusers.DDPMPipeline(unet=unet, scheduler=scheduler).save_pretrained(folder)
    return folder, unet.eval(), scheduler


def test_our_epsilon_is_the_unet2dmodel_forward(pixel_model):
    folder, unet, _ = pixel_model
    inpainter = load_inpainter(folder, device="cpu")
    x, t = torch.randn(2, 3, SIZE, SIZE), torch.tensor([10, 700])
    with torch.no_grad():
        expected = unet(x, t).sample
        assert expected.abs().mean() > 0.01  # a real signal, not a zero output layer
        torch.testing.assert_close(inpainter.prior.denoise(x, t, None), expected, atol=0, rtol=0)
    assert inpainter.image_size == SIZE and inpainter.prior.config["sigma_small"]
    half = load_inpainter(folder, device="cpu", dtype="bf16")  # by autocast
    with torch.no_grad():
        low = half.prior.denoise(x, t, None)
    assert low.dtype == torch.float32 and 0 < (low - expected).abs().max() < 0.1


def straightforward_repaint(unet, scheduler, image, keep, timesteps, generator):
    """RePaint without resampling, written out: x_T; then for every step the posterior noise,
    the known region noised to the step (not at the first), one ancestral DDPM step with the
    posterior variance, clipped x0."""
    alpha_bar = scheduler.alphas_cumprod.double()
    x = torch.randn(image.shape, generator=generator)
    for index, t in enumerate(timesteps):
        previous = timesteps[index + 1] if index + 1 < len(timesteps) else None
        a_t = alpha_bar[t]
        a_prev = alpha_bar[previous] if previous is not None else torch.tensor(1.0).double()
        posterior_noise = torch.randn(image.shape, generator=generator)
        if index > 0:
            noise = torch.randn(image.shape, generator=generator)
            known = a_t.sqrt() * image + (1 - a_t).sqrt() * noise
            x = keep * known + (1 - keep) * x
        with torch.no_grad():
            eps = unet(x, torch.tensor([t])).sample.double()
        x0 = ((x - (1 - a_t).sqrt() * eps) / a_t.sqrt()).clamp(-1, 1)
        beta = 1 - a_t / a_prev
        mean = (a_prev.sqrt() * beta * x0 + (1 - beta).sqrt() * (1 - a_prev) * x) / (1 - a_t)
        variance = beta * (1 - a_prev) / (1 - a_t)
        x = (mean + (variance.sqrt() * posterior_noise if previous is not None else 0)).float()
    return x


@pytest.mark.parametrize("eta", [None, 1.0])
def test_pixel_inpainting_without_resampling_is_the_plain_loop(pixel_model, eta):
    folder, unet, scheduler = pixel_model
    inpainter = load_inpainter(folder, device="cpu")
    image = torch.linspace(-1, 1, 3 * SIZE * SIZE).reshape(1, 3, SIZE, SIZE)
    keep = torch.zeros(1, 1, SIZE, SIZE)
    keep[..., : SIZE // 2] = 1
    schedule = JumpSchedule(t_T=10, jump_length=1, jump_n_sample=1)
    diffusion = inpainter.prior.diffusion(10)
    ours = repaint(
        inpainter.prior.denoise,
        diffusion,
        image,
        keep,
        schedule,
        generator=torch.Generator().manual_seed(4),
        eta=eta,
        raw=True,
    )
    theirs = straightforward_repaint(
        unet,
        scheduler,
        image,
        keep,
        diffusion.timestep_map[::-1],
        torch.Generator().manual_seed(4),
    )
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=0)


def test_cli_inpaints_with_a_diffusers_folder(pixel_model, tmp_path):
    folder, _, _ = pixel_model
    image = np.random.default_rng(0).integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    keep = np.ones((SIZE, SIZE), dtype=bool)
    keep[4:12, 4:12] = False
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(keep).save(tmp_path / "m.png")
    args = ["inpaint", tmp_path / "a.png", "--mask", tmp_path / "m.png", "--model", folder]
    args += ["--out", tmp_path / "out", "--t-T", "6", "--jump-length", "2", "--no-progress"]
    assert main([str(arg) for arg in args]) == 0
    result = np.asarray(Image.open(tmp_path / "out" / "a.png"))
    assert (result[keep] == image[keep]).all() and (result[~keep] != image[~keep]).any()
    sidecar = json.loads((tmp_path / "out" / "a.json").read_text())
    assert sidecar["model"]["checkpoint"] == str(folder)


def test_hf_ids_resolve_through_the_hub_cache(pixel_model, monkeypatch):
    import huggingface_hub

    folder, _, _ = pixel_model
    asked = []

    def snapshot_download(repo_id, local_files_only=False, **kwargs):
        asked.append((repo_id, local_files_only))
        return str(folder)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    inpainter = load_inpainter("hf:google/ddpm-tiny", device="cpu")
    assert inpainter.image_size == SIZE and asked == [("google/ddpm-tiny", True)]


def test_hf_id_neither_cached_nor_downloadable_is_refused(monkeypatch):
    import huggingface_hub

    def offline(repo_id, local_files_only=False, **kwargs):
        raise huggingface_hub.errors.LocalEntryNotFoundError("not cached")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(RepaintError, match="hf:nobody/nothing: not in the Hugging Face cache"):
        load_inpainter("hf:nobody/nothing", device="cpu")


def test_without_the_extra_the_message_names_it(pixel_model, monkeypatch, capsys, tmp_path):
    folder, _, _ = pixel_model
    monkeypatch.setitem(sys.modules, "diffusers", None)  # import diffusers -> ImportError
    image = np.zeros((SIZE, SIZE, 3), dtype=np.uint8)
    Image.fromarray(image).save(tmp_path / "a.png")
    Image.fromarray(np.ones((SIZE, SIZE), dtype=bool)).save(tmp_path / "m.png")
    args = ["inpaint", tmp_path / "a.png", "--mask", tmp_path / "m.png", "--model", folder]
    assert main([str(arg) for arg in [*args, "--out", tmp_path / "out"]]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pip install 'repaint-diffusion[diffusers]'" in err[0]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
