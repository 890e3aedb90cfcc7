"""Record LanPaint golden vectors from its authors' `LanPaint` class (scraed/LanPaint,
`src/LanPaint/lanpaint.py`), run inside a minimal stand-in for ComfyUI.

LanPaint ships as a ComfyUI node: ComfyUI's KSampler calls it as the model of a k-diffusion
sampler. ComfyUI is not available here, so this script provides the few pieces the node
uses, transcribed from ComfyUI and the node (`src/LanPaint/nodes.py`):

- the epsilon model in its variance-exploding form (`model_sampling` EPS):
  D(x, sigma) = x - sigma eps(x / sqrt(sigma^2 + 1), t), with t the original step of the
  schedule's level (ComfyUI's nearest-sigma lookup gives the same step for these sigmas),
  and `noise_scaling` (x_T = y + sqrt(1 + sigma^2) z; known region y + sigma z);
- `KSAMPLER.sample` and `KSamplerX0Inpaint.__call__` of the node: the initial noise from the
  global generator seeded with the seed (`prepare_noise`), the inner step count
  (`min_step_frac_effective_steps` with MinStepFrac 1, none on the last step: EarlyStop 1),
  abar = 1 / (1 + sigma^2), and the node's defaults (`LanPaint_KSampler`);
- ComfyUI's `sample_euler` loop over the sigmas (no churn).

The network and the sigmas come from this project (the uncond32 prior respaced to
`STEPS` levels; its network matches guided-diffusion's bit for bit, see
`tests/test_samplers_golden.py`), so this runs in the project's venv:

    .venv/bin/python tests/golden_samplers/record_lanpaint.py /path/to/LanPaint-checkout \
        ../shared/golden/uncond32 tests/golden_samplers/lanpaint --commit <hash>

`LanPaint.__call__` runs unchanged; `torch.randn_like`, `LanPaint.langevin_dynamics` and the
model are wrapped to record every draw, every Langevin state and every network call.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from repaint.config import load_reference_config
from repaint.io import read_image
from repaint.prior import create_prior

SEED = 3
STEPS = 8
NODE = {"NSteps": 5, "Friction": 15.0, "Lambda": 5.0, "Beta": 1.0, "StepSize": 0.2}
MIN_STEP_FRAC, EARLY_STOP = 1.0, 1


def effective_steps(n_steps: int, frac: float, min_frac: float) -> int:
    """nodes.py: min_step_frac_effective_steps."""
    if min_frac <= 0 or frac >= min_frac or n_steps <= 0:
        return n_steps
    return max(0, round(n_steps * frac / min_frac))


class ModelSampling:
    """ComfyUI's EPS model sampling: the two functions LanPaint calls."""

    def noise_scaling(self, sigma, noise, latent_image, max_denoise=False):
        sigma = sigma.view(sigma.shape[:1] + (1,) * (noise.ndim - 1))
        noise = noise * torch.sqrt(1.0 + sigma**2.0) if max_denoise else noise * sigma
        noise += latent_image
        return noise


class Model:
    """What LanPaint calls `inner_model`: (x, sigma) -> denoised (ComfyUI's apply_model)."""

    def __init__(self, denoise, levels: dict[float, int], calls: list):
        self.inner_model = type("Inner", (), {"model_sampling": ModelSampling()})()
        self.denoise, self.levels, self.calls = denoise, levels, calls

    def __call__(self, x, sigma, model_options=None, seed=None):
        s = sigma.view(sigma.shape[:1] + (1,) * (x.ndim - 1))
        x_in = x / (s**2 + 1.0**2) ** 0.5  # calculate_input
        t = torch.tensor([self.levels[float(v)] for v in sigma])
        eps = self.denoise(x_in, t, None)[:, :3].float()
        self.calls.append({"t": int(t[0]), "x": x.numpy().copy(), "eps": eps.numpy().copy()})
        return x - eps * s  # calculate_denoised


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkout", type=Path)
    parser.add_argument("golden", type=Path, help="the uncond32 folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--commit", default="unknown", help="upstream commit of the checkout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.set_grad_enabled(False)  # ComfyUI samples without autograd
    sys.path.insert(0, str(args.checkout.resolve() / "src"))
    from LanPaint.lanpaint import LanPaint  # the authors' class

    folder = args.golden.resolve()
    prior = create_prior(
        load_reference_config(folder / "conf.yml"), checkpoint=folder / "model.pt",
        device=torch.device("cpu"),
    )  # fmt: skip
    diffusion = prior.diffusion(STEPS)
    abar = torch.from_numpy(diffusion.alphas_cumprod).float()
    level_sigmas = ((1 - abar) / abar) ** 0.5
    sigmas = torch.cat([level_sigmas.flip(0), torch.zeros(1)])  # the sampler's list
    steps_of = {float(s): diffusion.timestep_map[i] for i, s in enumerate(level_sigmas)}

    def tensor(path: Path) -> torch.Tensor:
        pixels = np.asarray(read_image(path), dtype=np.uint8)
        return torch.from_numpy(pixels.copy()).permute(2, 0, 1)[None].float() / 127.5 - 1

    image = tensor(folder / "gts" / "img.png")
    keep = (tensor(folder / "masks" / "img.png")[:, :1] > 0).float()
    latent_image = image * keep
    denoise_mask = 1 - keep

    calls: list[dict] = []
    model = Model(prior.denoise, steps_of, calls)
    draws: list[tuple[np.ndarray, int]] = []
    inner: list[dict] = []
    outer: list[dict] = []
    original_randn_like = torch.randn_like

    def randn_like(tensor, *a, **k):
        value = original_randn_like(tensor, *a, **k)
        draws.append((value.numpy().copy(), len(outer)))
        return value

    torch.randn_like = randn_like
    original_dynamics = LanPaint.langevin_dynamics

    def langevin_dynamics(self, x_t, *a, **k):
        before = x_t.numpy().copy()
        x_out, state = original_dynamics(self, x_t, *a, **k)
        inner.append({"step": len(outer), "x_in": before, "x_out": x_out.numpy().copy(),
                      "C": state.C.numpy().copy()})  # fmt: skip
        return x_out, state

    LanPaint.langevin_dynamics = langevin_dynamics

    # KSAMPLER.sample of the node
    generator = torch.manual_seed(SEED)  # comfy.sample.prepare_noise
    noise = torch.randn(image.size(), dtype=image.dtype, generator=generator, device="cpu")
    max_denoise = True  # the schedule starts at the model's sigma_max (KSAMPLER.max_denoise)
    x = model.inner_model.model_sampling.noise_scaling(sigmas[0], noise, latent_image, max_denoise)
    x_T = x.clone()
    paint = LanPaint(
        model, NODE["NSteps"], NODE["Friction"], NODE["Lambda"], NODE["Beta"],
        NODE["StepSize"], IS_FLUX=False, IS_FLOW=False, EarlyStopThreshold=0.0,
        EarlyStopPatience=1, EarlyStopHook=None, MinStepFrac=MIN_STEP_FRAC,
    )  # fmt: skip
    s_in = x.new_ones([x.shape[0]])
    total_steps = len(sigmas) - 1
    for i in range(total_steps):  # k-diffusion's sample_euler
        sigma = sigmas[i] * s_in
        # KSamplerX0Inpaint.__call__
        ve_sigma = sigma
        abt = 1 / (1 + ve_sigma**2)
        flow_t = (1 - abt) ** 0.5 / ((1 - abt) ** 0.5 + abt**0.5)
        latent_mask = 1 - (denoise_mask > 0.5).float()
        current_step = torch.argmin(torch.abs(sigmas - torch.mean(sigma)))
        n_eff = NODE["NSteps"]
        if total_steps - current_step <= EARLY_STOP:
            n_eff = 0
        else:
            n_eff = effective_steps(n_eff, float((1.0 - abt).mean()), MIN_STEP_FRAC)
        x_in = x.numpy().copy()
        denoised = paint(
            x, latent_image, noise, sigma, latent_mask, (ve_sigma, abt, flow_t), {}, SEED,
            n_steps=n_eff,
        )  # fmt: skip
        record = {"x_in": x_in, "x_thought": x.numpy().copy(), "denoised": denoised.numpy()}
        d = (x - denoised) / sigmas[i]  # to_d
        x = x + d * (sigmas[i + 1] - sigmas[i])
        record.update(x_out=x.numpy().copy(), n_steps=n_eff, level=STEPS - 1 - i)
        outer.append(record)
    write(args, diffusion, sigmas, image, keep, x_T, noise, draws, inner, outer, calls, x)


def write(args, diffusion, sigmas, image, keep, x_T, noise, draws, inner, outer, calls, x):
    arrays = {
        "seed": np.array(SEED),
        "noise": np.stack([noise.numpy()] + [d for d, _ in draws]),
        "noise_kind": np.array(["x_T"] + ["langevin"] * len(draws)),
        "noise_event": np.array([-1] + [e for _, e in draws]),
        "timestep_map": np.array(diffusion.timestep_map),
        "alphas_cumprod": diffusion.alphas_cumprod,
        "sigmas": sigmas.numpy(),
        "gt": image.numpy(),
        "gt_keep_mask": keep.numpy(),
        "x_T": x_T.numpy(),
        "levels": np.array([o["level"] for o in outer]),
        "inner_steps": np.array([o["n_steps"] for o in outer]),
        "outer_x_in": np.concatenate([o["x_in"] for o in outer]),
        "outer_x_thought": np.concatenate([o["x_thought"] for o in outer]),
        "outer_denoised": np.concatenate([o["denoised"] for o in outer]),
        "outer_x_out": np.concatenate([o["x_out"] for o in outer]),
        "inner_step": np.array([s["step"] for s in inner]),
        "inner_x_in": np.concatenate([s["x_in"] for s in inner]),
        "inner_x_out": np.concatenate([s["x_out"] for s in inner]),
        "inner_C": np.concatenate([s["C"] for s in inner]),
        "model_t": np.array([c["t"] for c in calls]),
        "model_x": np.concatenate([c["x"] for c in calls]),
        "model_eps": np.concatenate([c["eps"] for c in calls]),
        "final_state": x.numpy(),
        "final_sample": np.clip(x.numpy(), -1, 1),
    }
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "golden.npz", **arrays)
    description = {
        "reference": f"scraed/LanPaint@{args.commit}",
        "entry_point": "src/LanPaint/lanpaint.py: LanPaint.__call__ (LanPaint.LanPaint, "
        "score_model, langevin_dynamics, prepare_step_size), unchanged; the ComfyUI glue "
        "(KSAMPLER.sample, KSamplerX0Inpaint.__call__, sample_euler, EPS model sampling) is "
        "transcribed in this script",
        "node_defaults (LanPaint_KSampler)": {
            **NODE,
            "MinStepFrac": MIN_STEP_FRAC,
            "EarlyStop": EARLY_STOP,
            "EarlyStopThreshold": 0.0,
            "cfg_BIG": "unused (no classifier-free guidance)",
        },
        "outer_sampler": "euler (ComfyUI k-diffusion sample_euler, s_churn 0)",
        "respacing": STEPS,
        "network": "../shared/golden/uncond32 (this project's UNet, equal to guided-diffusion's)",
        "seeding": "torch.manual_seed(seed) (prepare_noise), then the initial noise "
        "torch.randn(shape, generator=global generator); all later draws torch.randn_like "
        "from the same global generator",
        "threads": 1,
        "dtype": "float32",
        "inner_steps": [o["n_steps"] for o in outer],
        "model_calls": len(calls),
        "num_draws": len(draws) + 1,
    }
    (out / "conf.json").write_text(json.dumps(description, indent=1) + "\n")
    print(f"wrote {out}: {len(draws) + 1} draws, {len(calls)} network calls")


if __name__ == "__main__":
    main()
