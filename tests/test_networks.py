"""Tests for repaint.networks: reference architecture, golden checkpoints, precision, errors."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import Tensor, nn

from repaint.networks import (
    CheckpointMismatchError,
    EncoderUNetModel,
    QKVAttention,
    QKVAttentionLegacy,
    UNetModel,
    classifier_from_config,
    create_classifier,
    create_unet,
    load_state_dict_strict,
    read_state_dict,
    timestep_embedding,
    unet_from_config,
)

REPO_ROOT = Path(__file__).resolve().parents[1]
GOLDEN = Path(os.environ.get("REPAINT_GOLDEN", REPO_ROOT.parent / "shared" / "golden"))

# The architecture of celeba256_250000.pt, places256_300000.pt and 256x256_diffusion.pt
# (the last one with class_cond).
PUBLISHED_UNET: dict[str, Any] = dict(
    image_size=256,
    num_channels=256,
    num_res_blocks=2,
    learn_sigma=True,
    attention_resolutions="32,16,8",
    num_head_channels=64,
    num_heads=4,
    use_scale_shift_norm=True,
    resblock_updown=True,
    dropout=0.0,
)
# The architecture of 256x256_classifier.pt.
PUBLISHED_CLASSIFIER: dict[str, Any] = dict(
    image_size=256,
    classifier_width=128,
    classifier_depth=2,
    classifier_attention_resolutions="32,16,8",
    classifier_use_scale_shift_norm=True,
    classifier_resblock_updown=True,
    classifier_pool="attention",
)
TINY_UNET: dict[str, Any] = dict(
    image_size=32,
    num_channels=32,
    num_res_blocks=1,
    channel_mult="1,2",
    learn_sigma=True,
    attention_resolutions="16",
    num_heads=2,
    use_scale_shift_norm=True,
    resblock_updown=True,
)
TINY_CLASSIFIER: dict[str, Any] = dict(
    image_size=64, classifier_width=32, classifier_depth=1, classifier_attention_resolutions="8"
)


def golden_dir(name: str) -> Path:
    path = GOLDEN / name
    if not path.is_dir():
        if os.environ.get("CI") == "true":
            pytest.fail(f"golden data missing at {path}; CI must provide shared/golden")
        pytest.skip(f"golden data not found at {path} (set REPAINT_GOLDEN to its folder)")
    return path


def golden_conf(name: str) -> dict[str, Any]:
    return yaml.safe_load((golden_dir(name) / "conf.yml").read_text())


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def randomize(module: nn.Module, seed: int = 0) -> nn.Module:
    """Replace the zero-initialised weights so every layer influences the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in module.parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            param.copy_(0.1 * noise)
    return module


@pytest.mark.parametrize(
    ("factory", "kwargs", "expected"),
    [
        pytest.param(create_unet, PUBLISHED_UNET, 552_814_086, id="celeba-hq-256"),
        pytest.param(create_unet, PUBLISHED_UNET, 552_814_086, id="places2-256"),
        pytest.param(
            create_unet, {**PUBLISHED_UNET, "class_cond": True}, 553_838_086, id="imagenet-256"
        ),
        pytest.param(create_classifier, PUBLISHED_CLASSIFIER, 54_096_360, id="classifier-256"),
    ],
)
def test_published_parameter_counts(factory: Any, kwargs: dict[str, Any], expected: int) -> None:
    with torch.device("meta"):
        model = factory(**kwargs)
    assert n_params(model) == expected


def test_published_key_layout() -> None:
    with torch.device("meta"):
        unet = create_unet(**PUBLISHED_UNET, class_cond=True)
        classifier = create_classifier(**PUBLISHED_CLASSIFIER)
    shapes = {key: tuple(value.shape) for key, value in unet.state_dict().items()}
    assert shapes["input_blocks.1.0.in_layers.2.weight"] == (256, 256, 3, 3)
    assert shapes["input_blocks.1.0.emb_layers.1.weight"] == (512, 1024)  # scale and shift
    assert shapes["input_blocks.9.0.in_layers.2.weight"] == (512, 512, 3, 3)  # resblock down
    assert shapes["input_blocks.10.1.qkv.weight"] == (1536, 512, 1)  # attention at 32x32
    assert shapes["middle_block.1.proj_out.weight"] == (1024, 1024, 1)
    assert shapes["output_blocks.17.0.skip_connection.weight"] == (256, 512, 1, 1)
    assert shapes["label_emb.weight"] == (1000, 1024)
    assert shapes["out.2.weight"] == (6, 256, 3, 3)
    assert len(unet.input_blocks) == 18 and len(unet.output_blocks) == 18
    head = {key: tuple(value.shape) for key, value in classifier.out.state_dict().items()}
    assert head == {
        "0.weight": (512,),
        "0.bias": (512,),
        "2.positional_embedding": (512, 65),
        "2.qkv_proj.weight": (1536, 512, 1),
        "2.qkv_proj.bias": (1536,),
        "2.c_proj.weight": (1000, 512, 1),
        "2.c_proj.bias": (1000,),
    }


@pytest.mark.parametrize(
    ("name", "file"),
    [("uncond32", "model.pt"), ("classcond64", "model.pt"), ("classcond64", "classifier.pt")],
)
def test_golden_checkpoints_load_strictly(name: str, file: str) -> None:
    conf = golden_conf(name)
    size = conf["image_size"]
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(0))
    timesteps = torch.tensor([10.0, 900.0])
    with torch.no_grad():
        if file == "classifier.pt":
            model = load_state_dict_strict(classifier_from_config(conf), golden_dir(name) / file)
            out = model.eval()(x, timesteps)
            assert out.shape == (2, 1000)
        else:
            model = load_state_dict_strict(unet_from_config(conf), golden_dir(name) / file)
            y = torch.tensor([3, 7]) if conf["class_cond"] else None
            out = model.eval()(x, timesteps, y)
            assert out.shape == (2, 6, size, size)
    assert torch.isfinite(out).all()


def f32(value: float) -> Tensor:
    """A float64 schedule coefficient as the reference uses it (cast to float32)."""
    return torch.tensor(value, dtype=torch.float32)


@pytest.mark.parametrize(("name", "atol"), [("uncond32", 1e-5), ("classcond64", 1e-5)])
def test_golden_first_reverse_step(name: str, atol: float) -> None:
    """The networks reproduce the reference's first sampling step (no known-region injection
    yet): x_T -> clipped x0 prediction -> posterior sample, with classifier guidance if set."""
    conf = golden_conf(name)
    folder = golden_dir(name)
    golden = np.load(folder / "golden.npz")
    unet = load_state_dict_strict(unet_from_config(conf), folder / "model.pt").eval()

    betas = golden["betas"]
    alphas_cumprod = np.cumprod(1.0 - betas)
    prev = np.append(1.0, alphas_cumprod[:-1])
    posterior_variance = betas * (1.0 - prev) / (1.0 - alphas_cumprod)
    t = int(golden["times"][0])
    timesteps = torch.tensor([int(golden["timestep_map"][t])])
    x = torch.from_numpy(golden["noise"][0])
    assert golden["noise_kind"][0] == "x_T" and golden["noise_kind"][1] == "posterior"
    y = torch.tensor([conf["cond_y"]]) if conf["class_cond"] else None

    with torch.no_grad():
        eps, v = unet(x, timesteps, y).chunk(2, dim=1)
    pred_xstart = f32(np.sqrt(1.0 / alphas_cumprod[t])) * x
    pred_xstart = (pred_xstart - f32(np.sqrt(1.0 / alphas_cumprod[t] - 1.0)) * eps).clamp(-1, 1)
    frac = (v + 1) / 2
    log_var = frac * f32(np.log(betas[t])) + (1 - frac) * f32(np.log(posterior_variance[t]))
    coef_x0 = betas[t] * np.sqrt(prev[t]) / (1.0 - alphas_cumprod[t])
    coef_xt = (1.0 - prev[t]) * np.sqrt(1.0 - betas[t]) / (1.0 - alphas_cumprod[t])
    mean = f32(coef_x0) * pred_xstart + f32(coef_xt) * x
    if conf["classifier_scale"]:
        classifier = classifier_from_config(conf)
        load_state_dict_strict(classifier, folder / conf["classifier_path"]).eval()
        x_in = x.clone().requires_grad_(True)
        log_prob = F.log_softmax(classifier(x_in, timesteps), dim=-1)[:, conf["cond_y"]]
        (grad,) = torch.autograd.grad(log_prob.sum(), x_in)
        mean = mean + torch.exp(log_var) * grad * conf["classifier_scale"]
    sample = mean + torch.exp(0.5 * log_var) * torch.from_numpy(golden["noise"][1])

    expected_x0 = torch.from_numpy(golden["reverse_pred_xstart"][:1])
    assert torch.allclose(pred_xstart, expected_x0, atol=1e-3)  # x0 amplifies eps ~100x
    assert torch.allclose(sample, torch.from_numpy(golden["reverse_samples"][:1]), atol=atol)


@pytest.mark.parametrize(
    ("override", "suspect"),
    [({"class_cond": True}, "class_cond"), ({"num_channels": 64}, "num_channels")],
)
def test_golden_mismatch_names_hyper_parameter(override: dict[str, Any], suspect: str) -> None:
    conf = {**golden_conf("uncond32"), **override}
    model = unet_from_config(conf)
    before = {key: value.clone() for key, value in model.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match=suspect) as info:
        load_state_dict_strict(model, golden_dir("uncond32") / "model.pt")
    assert info.value.suspects[0] == suspect
    assert "model.pt" in str(info.value)
    assert all(torch.equal(before[key], value) for key, value in model.state_dict().items())


@pytest.mark.parametrize(
    ("override", "suspect"),
    [
        ({"class_cond": True}, "class_cond"),
        ({"learn_sigma": False}, "learn_sigma"),
        ({"num_channels": 64}, "num_channels"),
        ({"channel_mult": "1,3"}, "channel_mult"),
        ({"num_res_blocks": 2}, "num_res_blocks"),
        ({"attention_resolutions": "32,16"}, "attention_resolutions"),
        ({"resblock_updown": False}, "resblock_updown"),
        ({"use_scale_shift_norm": False}, "use_scale_shift_norm"),
    ],
)
def test_unet_mismatch_diagnosis(override: dict[str, Any], suspect: str) -> None:
    state = create_unet(**TINY_UNET).state_dict()
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_strict(create_unet(**{**TINY_UNET, **override}), state)
    assert suspect in info.value.suspects
    assert suspect in str(info.value)


@pytest.mark.parametrize(
    ("override", "suspect"),
    [
        ({"classifier_width": 64}, "classifier_width"),
        ({"classifier_pool": "adaptive"}, "classifier_pool"),
        ({"image_size": 128}, "image_size"),
        ({"classifier_use_scale_shift_norm": False}, "classifier_use_scale_shift_norm"),
    ],
)
def test_classifier_mismatch_diagnosis(override: dict[str, Any], suspect: str) -> None:
    state = create_classifier(**TINY_CLASSIFIER).state_dict()
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_strict(create_classifier(**{**TINY_CLASSIFIER, **override}), state)
    assert suspect in info.value.suspects


def test_mismatch_detects_swapped_checkpoints() -> None:
    classifier_state = create_classifier(**TINY_CLASSIFIER).state_dict()
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_strict(create_unet(**{**TINY_UNET, "image_size": 64}), classifier_state)
    assert info.value.suspects == ("model_path",)
    unet_state = create_unet(**TINY_UNET).state_dict()
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_strict(create_classifier(**TINY_CLASSIFIER), unet_state)
    assert info.value.suspects == ("classifier_path",)


def test_mismatch_message_truncates_key_lists() -> None:
    state = create_unet(**TINY_UNET).state_dict()
    with pytest.raises(CheckpointMismatchError) as info:
        load_state_dict_strict(create_unet(**{**TINY_UNET, "num_res_blocks": 3}), state)
    assert len(info.value.missing) > 8
    assert f"missing keys ({len(info.value.missing)})" in str(info.value)
    assert "... (+" in str(info.value)


def test_missing_checkpoint_names_path(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "celeba256_250000.pt"
    with pytest.raises(FileNotFoundError, match=r"celeba256_250000\.pt"):
        load_state_dict_strict(create_unet(**TINY_UNET), path)


def test_non_checkpoint_file_names_path(tmp_path: Path) -> None:
    text = tmp_path / "notes.pt"
    text.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"notes\.pt"):
        read_state_dict(text)
    not_a_state_dict = tmp_path / "list.pt"
    torch.save([1, 2, 3], not_a_state_dict)
    with pytest.raises(ValueError, match=r"list\.pt.*not a state dict"):
        read_state_dict(not_a_state_dict)


def test_safetensors_checkpoint(tmp_path: Path) -> None:
    safetensors_torch = pytest.importorskip("safetensors.torch")
    source = randomize(create_unet(**TINY_UNET))
    path = tmp_path / "model.safetensors"
    safetensors_torch.save_file(source.state_dict(), path)
    target = load_state_dict_strict(create_unet(**TINY_UNET), path)
    assert all(
        torch.equal(a, b) for a, b in zip(source.parameters(), target.parameters(), strict=True)
    )


def naive_attention(qkv: Tensor, heads: int, legacy: bool) -> Tensor:
    """The reference formula: q and k each scaled by ch**-0.25, float softmax, einsums."""
    batch, width, length = qkv.shape
    ch = width // (3 * heads)
    if legacy:
        q, k, v = qkv.reshape(batch * heads, 3 * ch, length).split(ch, dim=1)
    else:
        q, k, v = (part.reshape(batch * heads, ch, length) for part in qkv.chunk(3, dim=1))
    scale = ch**-0.25
    weight = torch.einsum("bct,bcs->bts", q * scale, k * scale).float().softmax(dim=-1)
    return torch.einsum("bts,bcs->bct", weight, v).reshape(batch, -1, length)


@pytest.mark.parametrize("legacy", [True, False])
def test_sdpa_attention_matches_reference_formula(legacy: bool) -> None:
    heads = 4
    qkv = torch.randn(2, 3 * heads * 16, 37, generator=torch.Generator().manual_seed(1))
    attention = QKVAttentionLegacy(heads) if legacy else QKVAttention(heads)
    expected = naive_attention(qkv, heads, legacy)
    assert torch.allclose(attention(qkv), expected, atol=1e-5, rtol=0)
    # The two layouts really differ, so each order is tested for itself.
    assert not torch.allclose(naive_attention(qkv, heads, not legacy), expected, atol=1e-2)


def test_timestep_embedding_formula() -> None:
    timesteps = torch.tensor([0, 3, 999])
    dim = 9
    half = dim // 2
    freqs = np.exp(-np.log(10000.0) * np.arange(half) / half)
    args = timesteps.numpy()[:, None] * freqs[None]
    expected = np.concatenate([np.cos(args), np.sin(args), np.zeros((3, 1))], axis=1)
    embedding = timestep_embedding(timesteps, dim)
    assert embedding.dtype == torch.float32
    np.testing.assert_allclose(embedding.numpy(), expected, atol=1e-4)
    fractional = timestep_embedding(torch.tensor([2.5]), dim)
    assert torch.allclose(fractional[0, :half], torch.cos(2.5 * torch.from_numpy(freqs).float()))


@pytest.mark.parametrize("model_kind", ["unet", "classifier"])
def test_low_precision_torso(model_kind: str) -> None:
    if model_kind == "unet":
        model: UNetModel | EncoderUNetModel = randomize(create_unet(**TINY_UNET)).eval()
        size = TINY_UNET["image_size"]
    else:
        model = randomize(create_classifier(**TINY_CLASSIFIER)).eval()
        size = TINY_CLASSIFIER["image_size"]
    x = torch.randn(2, 3, size, size, generator=torch.Generator().manual_seed(2))
    timesteps = torch.tensor([5, 500])
    keys = list(model.state_dict())
    with torch.no_grad():
        reference = model(x, timesteps)
        model.set_torso_dtype(torch.bfloat16)
        low = model(x, timesteps)

    assert model.torso_dtype == torch.bfloat16
    assert list(model.state_dict()) == keys
    assert model.input_blocks[1][0].in_layers[2].weight.dtype == torch.bfloat16
    assert model.input_blocks[1][0].in_layers[0].weight.dtype == torch.float32
    assert model.time_embed[0].weight.dtype == torch.float32
    assert model.out[0].weight.dtype == torch.float32
    assert low.dtype == torch.float32
    relative_error = (low - reference).norm() / reference.norm()
    assert 0 < relative_error < 0.05


def test_fp16_flag_and_float32_checkpoint() -> None:
    source = randomize(create_unet(**TINY_UNET))
    model = load_state_dict_strict(create_unet(**TINY_UNET, use_fp16=True), source.state_dict())
    assert model.torso_dtype == torch.float16
    assert model.input_blocks[0][0].weight.dtype == torch.float16
    assert torch.equal(model.input_blocks[0][0].weight, source.input_blocks[0][0].weight.half())
    assert create_unet(**TINY_UNET, use_fp16=True, dtype=torch.float32).torso_dtype == torch.float32


@pytest.mark.parametrize("pool", ["adaptive", "attention", "spatial", "spatial_v2"])
def test_classifier_pools(pool: str) -> None:
    model = randomize(create_classifier(**TINY_CLASSIFIER, classifier_pool=pool)).eval()
    x = torch.randn(2, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        logits = model(x, torch.tensor([1, 2]))
    assert logits.shape == (2, 1000)
    assert torch.isfinite(logits).all()


def test_new_attention_order_same_keys_different_output() -> None:
    legacy = randomize(create_unet(**TINY_UNET)).eval()
    new = create_unet(**TINY_UNET, use_new_attention_order=True).eval()
    load_state_dict_strict(new, legacy.state_dict())
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        assert not torch.allclose(legacy(x, torch.tensor([7])), new(x, torch.tensor([7])))


def test_class_labels_are_checked() -> None:
    x = torch.zeros(1, 3, 32, 32)
    with pytest.raises(ValueError, match="needs class labels"):
        create_unet(**TINY_UNET, class_cond=True)(x, torch.tensor([1]))
    with pytest.raises(ValueError, match="unconditional"):
        create_unet(**TINY_UNET)(x, torch.tensor([1]), torch.tensor([0]))


def test_config_helpers_pick_relevant_keys() -> None:
    conf = {**TINY_UNET, "attention_resolutions": 16, "diffusion_steps": 1000, "data": {}}
    model = unet_from_config(conf)
    assert model.out_channels == 6 and model.model_channels == 32
    with pytest.raises(KeyError, match="num_channels"):
        unet_from_config({"image_size": 32, "num_res_blocks": 1})
    with pytest.raises(ValueError, match="channel_mult"):
        create_unet(image_size=48, num_channels=32, num_res_blocks=1)
