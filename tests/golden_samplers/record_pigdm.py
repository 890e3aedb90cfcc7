"""Record PiGDM golden vectors from the implementation in NVlabs/RED-diff (`algos/pgdm.py`).

Run with a Python that has torch, numpy, omegaconf and hydra-core (not the project's venv;
see README.md), one CPU thread:

    python tests/golden_samplers/record_pigdm.py /path/to/RED-diff-checkout \
        ../shared/golden/uncond32 tests/golden_samplers/pigdm --commit <hash>

RED-diff's `main.py` needs hydra's run directory, torch.distributed and CUDA, so this
script does its few lines of set-up itself, in its order, with the authors' classes:
`create_model` (their guided-diffusion copy) with the model keys of `conf.yml` and the
checkpoint, `Diffusion(**linear1000)`, `ClassifierGuidanceModel` without classifier,
`Inpainting2` (their `in2_*` inpainting operator) over the golden mask, and `PGDM` with
`_configs/algo/pgdm.yaml` and the settings of their inpainting script (`sample_batch.sh`:
`deg=in2_20ff`, `eta=1.0`, `grad_term_weight=1.0`, `sigma_y=0.0`). `PGDM.sample` runs
unchanged. What is patched:

- CUDA: `Tensor.cuda` and `Tensor.to('cuda')` stay on the CPU;
- `algos.pgdm.build_degredation_model` returns the `Inpainting2` built here (theirs loads a
  256 x 256 mask file and cannot resize it to 32 x 32);
- `torch.randn_like`: records every draw; the measurement noise of `main.py`
  (`y_0 + randn * sigma_y * 2`, zero here) is drawn first, then the global generator is
  seeded immediately before `PGDM.sample`;
- a forward hook on the UNet and `sys.settrace` on `PGDM.sample` record the network's
  timestep and epsilon and the locals of every step.

Stubbed imports (plotting and checkpoint download only): matplotlib, requests, tqdm, gdown.
"""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import numpy as np
import torch
import yaml

SEED = 7
NUM_STEPS = 10
MODEL_KEYS = [
    "image_size", "num_channels", "num_res_blocks", "channel_mult", "learn_sigma",
    "class_cond", "use_checkpoint", "attention_resolutions", "num_heads", "num_head_channels",
    "num_heads_upsample", "use_scale_shift_norm", "dropout", "resblock_updown", "use_fp16",
    "use_new_attention_order",
]  # fmt: skip


def stub_modules() -> None:
    for name in ("matplotlib", "matplotlib.pyplot", "requests", "tqdm", "gdown"):
        stub = types.ModuleType(name)
        stub.get = stub.tqdm = None
        sys.modules[name] = stub


def stay_on_cpu() -> None:
    to = torch.Tensor.to

    def on_cpu(self, *args, **kwargs):
        args = tuple("cpu" if a == "cuda" else a for a in args)
        if kwargs.get("device") == "cuda":
            kwargs["device"] = "cpu"
        return to(self, *args, **kwargs)

    torch.Tensor.to = on_cpu
    torch.Tensor.cuda = lambda self, *args, **kwargs: self


def load_png(path: Path) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(path).convert("RGB"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("checkout", type=Path)
    parser.add_argument("golden", type=Path, help="the uncond32 folder")
    parser.add_argument("out", type=Path)
    parser.add_argument("--commit", default="unknown", help="upstream commit of the checkout")
    args = parser.parse_args()
    torch.set_num_threads(1)
    checkout, golden, out = args.checkout.resolve(), args.golden.resolve(), args.out.resolve()
    conf = yaml.safe_load((golden / "conf.yml").read_text())

    stub_modules()
    stay_on_cpu()
    sys.path.insert(0, str(checkout))
    import algos.pgdm as pgdm_module  # the authors' modules
    from models.classifier_guidance_model import ClassifierGuidanceModel
    from models.diffusion import Diffusion
    from models.guided_diffusion.script_util import create_model
    from omegaconf import OmegaConf
    from utils.degredations import Inpainting2
    from utils.functions import get_timesteps, preprocess

    algo = OmegaConf.load(checkout / "_configs" / "algo" / "pgdm.yaml")
    algo.update({"deg": "in2_20ff", "eta": 1.0, "grad_term_weight": 1.0, "sigma_y": 0.0})
    exp = OmegaConf.load(checkout / "_configs" / "exp" / "default.yaml")
    exp.update({"num_steps": NUM_STEPS, "seed": SEED})
    cfg = OmegaConf.create(
        {
            "algo": algo,
            "exp": exp,
            "diffusion": OmegaConf.load(checkout / "_configs" / "diffusion" / "linear1000.yaml"),
            "dataset": {"image_size": conf["image_size"], "channels": 3},
        }
    )

    model = create_model(**{key: conf[key] for key in MODEL_KEYS})
    model.load_state_dict(torch.load(golden / "model.pt", map_location="cpu"))
    model.eval()
    network: list[dict] = []

    def hook(module, inputs, output):
        network.append({"t": int(inputs[1][0]), "eps": output[:, :3].detach().numpy().copy()})

    model.register_forward_hook(hook)
    diffusion = Diffusion(**cfg.diffusion)
    cg_model = ClassifierGuidanceModel(model, None, diffusion, cfg)

    image = torch.from_numpy(load_png(golden / "gts" / "img.png")).permute(2, 0, 1)[None]
    x = preprocess(image.float() / 255.0)  # their loader: ToTensor, then x * 2 - 1
    keep = torch.from_numpy(load_png(golden / "masks" / "img.png") > 127).permute(2, 0, 1)
    H = Inpainting2(3, conf["image_size"], keep.reshape(1, -1), "cpu")
    pgdm_module.build_degredation_model = lambda cfg: H
    sampler = pgdm_module.PGDM(cg_model, cfg)

    draws: list[tuple[np.ndarray, str]] = []
    original_randn_like = torch.randn_like

    def randn_like(tensor, *a, **k):
        value = original_randn_like(tensor, *a, **k)
        layout = "nhwc" if tensor.dim() == 4 and tensor.stride()[1] == 1 else "nchw"
        draws.append((value.detach().numpy().copy(), f"line {sys._getframe(1).f_lineno} {layout}"))
        return value

    torch.randn_like = randn_like
    H.set_indices(torch.tensor([0]))
    y_0 = H.H(x)  # main.py
    y_0 = y_0 + torch.randn_like(y_0) * cfg.algo.sigma_y * 2
    measurement_draws = len(draws)
    ts = get_timesteps(cfg)

    source = (checkout / "algos" / "pgdm.py").read_text().splitlines()

    def line_of(text: str) -> int:
        (number,) = [i + 1 for i, line in enumerate(source) if line.strip().startswith(text)]
        return number

    after_model = line_of("mat = (H.H_pinv(y_0) - H.H_pinv(H.H(x0_pred)))")
    after_step = line_of("xt_s.append(xs.detach().cpu())")
    steps: list[dict] = []

    def numpy(value):
        return value.detach().numpy().copy() if torch.is_tensor(value) else value

    def tracer(frame, event, arg):
        if frame.f_code.co_name != "sample" or "pgdm" not in frame.f_code.co_filename:
            return None

        def local(frame, event, arg):
            if event == "line" and frame.f_lineno == after_model:
                f = frame.f_locals
                steps.append(
                    {"t": int(f["ti"]), "s": int(f["si"]), "x_in": numpy(f["xt"]),
                     "eps": numpy(f["et"]), "x0_raw": numpy(f["x0_pred"])}
                )  # fmt: skip
            elif event == "line" and frame.f_lineno == after_step:
                f = frame.f_locals
                steps[-1].update(
                    x0=numpy(f["x0_pred"]), grad=numpy(f["grad_term"]), coeff=numpy(f["coeff"]),
                    c1=numpy(f["c1"]), c2=numpy(f["c2"]), x_out=numpy(f["xs"]),
                    alpha_t=numpy(f["alpha_t"]), alpha_s=numpy(f["alpha_s"]),
                )  # fmt: skip
            return local

        return local

    torch.manual_seed(SEED)
    sys.settrace(tracer)
    try:
        xt_s, _ = sampler.sample(x, None, ts, y_0=y_0)
    finally:
        sys.settrace(None)
    sampled = draws[measurement_draws:]
    kinds = ["x_T"] + ["ddim"] * (len(sampled) - 1)
    arrays = {
        "seed": np.array(SEED),
        "noise": np.stack([d for d, _ in sampled]),
        "noise_kind": np.array(kinds),
        "noise_event": np.arange(len(sampled)) - 1,
        "ts": np.array(ts),
        "alphas": diffusion.alphas.numpy(),
        "gt": x.numpy(),
        "gt_keep_mask": keep[None].float().numpy(),
        "y_0": y_0.numpy(),
        "x_T": numpy(xt_s[-1]),
        "model_t": np.array([n["t"] for n in network]),
        "reverse_t": np.array([s["t"] for s in steps]),
        "reverse_t_next": np.array([s["s"] for s in steps]),
        "reverse_eps": np.concatenate([s["eps"] for s in steps]),
        "reverse_x0_raw": np.concatenate([s["x0_raw"] for s in steps]),
        "reverse_pred_xstart": np.concatenate([s["x0"] for s in steps]),
        "reverse_grad": np.concatenate([s["grad"] for s in steps]),
        "reverse_coeff": np.array([float(s["coeff"].reshape(-1)[0]) for s in steps]),
        "reverse_c1": np.array([float(s["c1"].reshape(-1)[0]) for s in steps]),
        "reverse_c2": np.array([float(s["c2"].reshape(-1)[0]) for s in steps]),
        "reverse_samples": np.concatenate([s["x_out"] for s in steps]),
        "final_state": numpy(xt_s[0]),
        "final_sample": np.clip(numpy(xt_s[0]), -1, 1),
    }
    pairs = zip(steps[1:], steps, strict=False)
    assert all(np.array_equal(s["x_in"], p["x_out"]) for s, p in pairs)
    out.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(out / "golden.npz", **arrays)
    description = {
        "reference": f"NVlabs/RED-diff@{args.commit}",
        "entry_point": "algos/pgdm.py: PGDM.sample (PGDM.initialize), "
        "models/classifier_guidance_model.py: ClassifierGuidanceModel.__call__",
        "algo": OmegaConf.to_container(cfg.algo),
        "exp": {"num_steps": NUM_STEPS, "start_step": exp.start_step, "end_step": exp.end_step},
        "diffusion": OmegaConf.to_container(cfg.diffusion),
        "checkpoint": "../shared/golden/uncond32/model.pt with the model keys of its conf.yml",
        "seeding": "the measurement noise (times sigma_y = 0) is drawn first; then "
        "torch.manual_seed(seed) immediately before PGDM.sample; all draws from the global "
        "CPU generator (torch.randn_like)",
        "threads": 1,
        "dtype": "float32",
        "ts": list(ts),
        "model_calls": len(network),
        "backward_passes": len(steps),
        "draw_kinds": kinds,
        "draw_lines": [where for _, where in sampled],
    }
    (out / "conf.json").write_text(json.dumps(description, indent=1) + "\n")
    print(f"wrote {out}: {len(sampled)} draws, {len(network)} network calls")


if __name__ == "__main__":
    main()
