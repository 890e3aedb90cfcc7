"""Record DiffPIR golden vectors from its authors' code (yuanzhi-zhu/DiffPIR).

Run with a Python that has torch, numpy, pyyaml and opencv (not the project's venv; see
README.md), one CPU thread:

    python tests/golden_samplers/record_diffpir.py /path/to/DiffPIR-checkout \
        ../shared/golden/uncond32 tests/golden_samplers/diffpir

It runs the authors' `main_ddpir.py` (`main()` with `--opt` pointing at a config written
here from their `configs/inpaint.yaml`) on the uncond32 checkpoint, the golden image and
its mask, and records what happens through these wrappers only:

- `torch.randn_like`: every draw, tagged by the line that made it; the global generator is
  seeded immediately before the first draw of the sampler (the model is built and the
  data loader has drawn its worker seed by then);
- `utils_model.create_argparser`: the model keys of `conf.yml` replace the authors' FFHQ
  model keys (the diffusion keys stay theirs: 1000 steps, no respacing);
- `utils_model.model_fn` and a forward hook on the UNet: the network's input, timestep,
  epsilon channels and the clipped x0 it returns;
- `sys.settrace` on `test_rho`: the locals at fixed lines of the loop (the state before
  each network call and after each update, the data-step x0 and the final state).

Imports that only the other tasks use are stubbed (scipy, hdf5storage, motionblur,
torchvision, matplotlib): deblurring and super-resolution code paths are never entered.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np
import torch
import yaml

SEED = 20
ITER_NUM = 12
MODEL_KEYS = [
    "image_size", "num_channels", "num_res_blocks", "num_heads", "num_heads_upsample",
    "num_head_channels", "attention_resolutions", "channel_mult", "dropout", "class_cond",
    "use_checkpoint", "use_scale_shift_norm", "resblock_updown", "use_fp16",
    "use_new_attention_order", "learn_sigma", "diffusion_steps", "noise_schedule",
]  # fmt: skip


def stub_modules() -> None:
    """Modules that main_ddpir.py imports for deblurring / SR / plotting only."""

    def module(name: str, **attributes) -> None:
        stub = types.ModuleType(name)
        stub.__dict__.update(attributes)
        sys.modules[name] = stub

    module("hdf5storage")
    module("scipy", fftpack=None, ndimage=None)
    module("scipy.fftpack")
    module("scipy.ndimage")
    module("scipy.signal", convolve2d=None)
    module("scipy.interpolate", interp2d=None)
    module("motionblur")
    module("motionblur.motionblur", Kernel=None)
    module("torchvision")
    module("torchvision.utils", make_grid=None)
    module("matplotlib")
    module("matplotlib.pyplot")


def git_commit(checkout: Path, given: str | None) -> str:
    """The checkout's commit (`--commit` for an exported tree without .git)."""
    if given:
        return given
    try:
        return subprocess.run(
            ["git", "-C", str(checkout), "rev-parse", "HEAD"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkout", type=Path)
    parser.add_argument("golden", type=Path, help="the uncond32 folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--commit", help="upstream commit of the checkout, if it has no .git")
    args = parser.parse_args()
    torch.set_num_threads(1)
    checkout, golden = args.checkout.resolve(), args.golden.resolve()
    out = args.out.resolve()
    conf = yaml.safe_load((golden / "conf.yml").read_text())

    stub_modules()
    sys.path.insert(0, str(checkout))
    os.chdir(checkout)
    import main_ddpir  # the authors' script
    from utils import utils_model

    work = Path(tempfile.mkdtemp(prefix="diffpir_"))
    (work / "model_zoo").mkdir()
    (work / "testsets" / "golden").mkdir(parents=True)
    os.symlink(golden / "model.pt", work / "model_zoo" / "uncond32.pt")
    os.symlink(golden / "gts" / "img.png", work / "testsets" / "golden" / "img.png")
    options = yaml.safe_load((checkout / "configs" / "inpaint.yaml").read_text())
    options.update(
        seed=SEED, model_name="uncond32", testset_name="golden", cwd=str(work),
        iter_num=ITER_NUM, batch_size=1, calc_LPIPS=False, save_L=False, save_E=False,
        load_mask=True, mask_path=str(golden / "masks" / "img.png"),
    )  # fmt: skip
    (work / "inpaint.yaml").write_text(yaml.safe_dump(options))

    # -- the model keys of conf.yml instead of the FFHQ ones -------------------------------
    original_argparser = utils_model.create_argparser

    def create_argparser(model_config):
        parser = original_argparser(model_config)
        parser.set_defaults(**{key: conf[key] for key in MODEL_KEYS})
        return parser

    utils_model.create_argparser = create_argparser

    # -- every draw ------------------------------------------------------------------------
    draws: list[tuple[np.ndarray, str, int]] = []
    original_randn_like = torch.randn_like

    def randn_like(tensor, *a, **k):
        if not draws:
            torch.manual_seed(SEED)
        caller = sys._getframe(1)
        value = original_randn_like(tensor, *a, **k)
        where = f"{Path(caller.f_code.co_filename).name}:{caller.f_lineno}"
        layout = "nhwc" if tensor.dim() == 4 and tensor.stride()[1] == 1 else "nchw"
        draws.append((value.detach().numpy().copy(), f"{where} {layout}", len(events)))
        return value

    torch.randn_like = randn_like

    # -- the network -----------------------------------------------------------------------
    calls: list[dict] = []
    original_model_fn = utils_model.model_fn

    def model_fn(x, noise_level, model_diffusion, **kwargs):
        if not getattr(model_diffusion, "_recording", False):
            model_diffusion._recording = True

            def hook(module, inputs, output):
                calls[-1]["t"] = int(inputs[1][0])
                calls[-1]["eps"] = output[:, :3].detach().numpy().copy()

            model_diffusion.register_forward_hook(hook)
        calls.append({"x": x.detach().numpy().copy(), "noise_level": float(noise_level)})
        result = original_model_fn(x, noise_level, model_diffusion, **kwargs)
        calls[-1]["x0"] = result.detach().numpy().copy()
        return result

    utils_model.model_fn = model_fn

    # -- locals of the loop ----------------------------------------------------------------
    source = (checkout / "main_ddpir.py").read_text().splitlines()

    def line_of(text: str) -> int:
        (number,) = [i + 1 for i, line in enumerate(source) if line.strip().startswith(text)]
        return number

    loop_start = line_of("for i in range(len(seq)):")
    step_start = next(  # the first statement of the `for u` loop
        i + 1
        for i, line in enumerate(source)
        if line.strip() == 'if config.task == "inpaint":' and line.startswith(" " * 20)
    )
    after_update = line_of("if u < config.iter_num_U-1 and seq[i] != seq[-1]:")
    after_loop = line_of("x_0 = (x/2+0.5)")
    final = line_of("img_E = util.tensor2uint_batch(x_0)")
    events: list[dict] = []
    seen: dict = {}

    def numpy(value):
        return value.detach().numpy().copy() if torch.is_tensor(value) else value

    def tracer(frame, event, arg):
        if frame.f_code.co_name != "test_rho":
            return None

        def local(frame, event, arg):
            if event != "line":
                return local
            f = frame.f_locals
            if frame.f_lineno == loop_start and "tables" not in seen:
                seen["tables"] = {
                    "seq": list(f["seq"]),
                    "rhos": numpy(f["rhos"]),
                    "sigmas": numpy(f["sigmas"]),
                    "sigma_ks": numpy(f["sigma_ks"]),
                    "betas": numpy(f["betas"]),
                    "alphas_cumprod": numpy(f["alphas_cumprod"]),
                    "sqrt_alphas_cumprod": numpy(f["sqrt_alphas_cumprod"]),
                    "sqrt_1m_alphas_cumprod": numpy(f["sqrt_1m_alphas_cumprod"]),
                    "y": numpy(f["y"]),
                    "mask": numpy(f["mask"]),
                    "x_T": numpy(f["x"]),
                }
            elif frame.f_lineno == step_start:
                events.append({"i": f["i"], "u": f["u"], "t": int(f["t_i"]), "x_in": numpy(f["x"])})
            elif frame.f_lineno == after_update:
                step = events[-1]
                step["x0_data"] = numpy(f["x0"])
                step["x_out"] = numpy(f["x"])
                if f["seq"][f["i"]] != f["seq"][-1]:
                    step["t_next"] = int(f["t_im1"])
                    step["eps_hat"] = numpy(f["eps"])
            elif frame.f_lineno == after_loop:
                events[-1]["x_after"] = numpy(f["x"])
            elif frame.f_lineno == final:
                seen["x_0"] = numpy(f["x_0"])
            return local

        return local

    sys.argv = ["main_ddpir.py", "--opt", str(work / "inpaint.yaml")]
    sys.settrace(tracer)
    try:
        main_ddpir.main()
    finally:
        sys.settrace(None)
    write(out, git_commit(checkout, args.commit), options, conf, events, calls, draws, seen)


def write(out, commit, options, conf, events, calls, draws, seen) -> None:
    tables = seen["tables"]
    kinds = []
    for k, (_, where, _) in enumerate(draws):
        if where.startswith("gaussian_diffusion.py"):
            kinds.append("p_sample_unused")
        elif k == 0:
            kinds.append("x_T")
        elif kinds[-1] == "ddim_unused":
            kinds.append("zeta")
        else:
            kinds.append("ddim_unused")
    assert len(calls) == len(events) == ITER_NUM
    steps = [e for e in events if "t_next" in e]
    arrays = {
        "seed": np.array(SEED),
        "noise": np.stack([d for d, _, _ in draws]),
        "noise_kind": np.array(kinds),
        "noise_event": np.array([e for _, _, e in draws]) - 1,
        "seq": np.array(tables["seq"]),
        "levels": np.array([e["t"] for e in events]),
        "betas": tables["betas"],
        "alphas_cumprod": tables["alphas_cumprod"],
        "sqrt_alphas_cumprod": tables["sqrt_alphas_cumprod"],
        "sqrt_1m_alphas_cumprod": tables["sqrt_1m_alphas_cumprod"],
        "rhos": tables["rhos"],
        "y": tables["y"],
        "mask": tables["mask"],
        "x_T": tables["x_T"],
        "model_t": np.array([c["t"] for c in calls]),
        "model_x": np.concatenate([c["x"] for c in calls]),
        "model_eps": np.concatenate([c["eps"] for c in calls]),
        "model_x0": np.concatenate([c["x0"] for c in calls]),
        "reverse_t": np.array([e["t"] for e in steps]),
        "reverse_t_next": np.array([e["t_next"] for e in steps]),
        "reverse_x0_data": np.concatenate([e["x0_data"] for e in steps]),
        "reverse_eps_hat": np.concatenate([e["eps_hat"] for e in steps]),
        "reverse_samples": np.concatenate([e["x_out"] for e in steps]),
        "final_state": events[-1]["x_after"],
        "final_sample": np.clip(events[-1]["x_after"], -1, 1),
        "x_0": seen["x_0"],
    }
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "golden.npz", **arrays)
    keys = ["noise_level_img", "lambda_", "zeta", "eta", "guidance_scale", "iter_num",
            "iter_num_U", "skip_type", "sub_1_analytic", "model_output_type", "generate_mode",
            "num_train_timesteps", "beta_start", "beta_end", "noise_init_img", "seed"]  # fmt: skip
    description = {
        "reference": f"yuanzhi-zhu/DiffPIR@{commit}",
        "entry_point": "main_ddpir.py: main() -> test_rho (task inpaint, generate_mode DiffPIR)",
        "base_config": "configs/inpaint.yaml (values below override it)",
        "hyperparameters": {key: options[key] for key in keys},
        "sigma (noise level of y)": max(0.001, options["noise_level_img"] / 255.0),
        "model": {key: conf[key] for key in ["image_size", "num_channels", "learn_sigma"]},
        "checkpoint": "../shared/golden/uncond32/model.pt with the model keys of its conf.yml",
        "seeding": "torch.manual_seed(seed) immediately before the first draw of the sampler; "
        "all draws from the global CPU generator (torch.randn_like)",
        "threads": 1,
        "dtype": "float32",
        "levels (1000-step indices visited)": [e["t"] for e in events],
        "model_calls": len(calls),
        "draw_kinds": kinds,
        "draw_lines": [where for _, where, _ in draws],
    }
    (out / "conf.json").write_text(json.dumps(description, indent=1) + "\n")
    print(f"wrote {out}: {len(draws)} draws, {len(calls)} network calls")


if __name__ == "__main__":
    main()
