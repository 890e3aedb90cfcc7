"""The samplers this package ships, one spec each (see `registry`). Defaults are the
authors' (their CelebA-HQ or inpainting settings); docs/samplers.md compares them."""

from __future__ import annotations

from repaint.samplers.registry import LATENT, PIXEL, Option, SamplerSpec, register

_COPAINT = {
    "lr": Option(0.02, "step size of the optimisation of x_t", 0, strictly_above=True),
    "lr_decay": Option(1.012, "the step size's decay per step down", 0, strictly_above=True),
    "coef": Option(1e-4, "weight of staying near the sampled x_t", 0),
    "coef_decay": Option(1.01, "that weight's decay per step down", 0, strictly_above=True),
    "iterations": Option(2, "gradient steps per level (G)", 1, 100),
    "ddim_sigma": Option(0.0, "noise of the DDIM step (0: deterministic)", 0, 1),
    "adaptive": Option(True, "cut the step size by 0.8 until the objective falls"),
}

register(
    SamplerSpec(
        name="repaint",
        summary="RePaint (Lugmayr et al. 2022): resample with the known pixels noised in (default)",
        function="repaint.samplers.repaint:sample",
        cost="repaint.samplers.repaint:planned_cost",
        reference="andreas128/RePaint",
        branches=True,
        takes_eta=True,
        guided=True,
        clip_denoised=True,
        families=(PIXEL, LATENT),
    )
)
register(
    SamplerSpec(
        name="ddnm",
        summary="DDNM (Wang et al. 2023): null-space projection of the predicted image; time "
        "travel on the schedule's jumps",
        function="repaint.samplers.ddnm:ddnm",
        cost="repaint.samplers.ddnm:planned_cost",
        reference="UCSB-NLP-Chang/CoPaint (guided_diffusion/ddnm.py)",
        options={
            "eta": Option(0.85, "share of fresh noise in each step", 0, 1),
            "sigma_y": Option(0.0, "noise level of the known pixels (DDNM+)", 0),
        },
        clip_denoised=True,
        families=(PIXEL, LATENT),
    )
)
register(
    SamplerSpec(
        name="dps",
        summary="DPS (Chung et al. 2023): the gradient of the known pixels' error through the "
        "network at every step",
        function="repaint.samplers.dps:dps",
        cost="repaint.samplers.dps:planned_cost",
        reference="UCSB-NLP-Chang/CoPaint (guided_diffusion/dps.py)",
        options={
            "step_size": Option(1.0, "zeta, the gradient step (0.5 for ImageNet)", 0, None, True),
            "eta": Option(1.0, "stochasticity of the step", 0, 1),
            "measurement_sigma": Option(1e-4, "noise added to the measurement", 0),
        },
        gradients=True,
    )
)
register(
    SamplerSpec(
        name="copaint",
        summary="CoPaint (Zhang et al. 2023): optimise x_t so the predicted image keeps the "
        "known pixels; straight down from t_T, no jumps",
        function="repaint.samplers.copaint:copaint",
        cost="repaint.samplers.copaint:planned_cost",
        reference="UCSB-NLP-Chang/CoPaint (guided_diffusion/ddim.py)",
        options=dict(_COPAINT),
        walk="straight",
        gradients=True,
        cost_is_exact=False,
    )
)
register(
    SamplerSpec(
        name="copaint-tt",
        summary="CoPaint-TT: CoPaint with time travel on the schedule's jumps",
        function="repaint.samplers.copaint:copaint",
        cost="repaint.samplers.copaint:planned_cost",
        reference="UCSB-NLP-Chang/CoPaint (guided_diffusion/ddim.py, use_timetravel)",
        options={
            **_COPAINT,
            "optimize_before_time_travel": Option(True, "optimise x_t before each jump up"),
        },
        gradients=True,
        cost_is_exact=False,
    )
)
register(
    SamplerSpec(
        name="diffpir",
        summary="DiffPIR (Zhu et al. 2023): a closed-form data step on the predicted image, "
        "then fresh noise (zeta)",
        function="repaint.samplers.diffpir:diffpir",
        cost="repaint.samplers.diffpir:planned_cost",
        reference="yuanzhi-zhu/DiffPIR",
        options={
            "lam": Option(1.0, "lambda, the data term's weight", 0, None, True),
            "zeta": Option(1.0, "share of fresh noise in the re-noising", 0, 1),
            "eta": Option(0.0, "DDIM stochasticity of the re-noising", 0, 1),
            "sigma": Option(0.001, "noise level of the known pixels", 0, None, True),
            "guidance_scale": Option(1.0, "scale of the data step", 0),
        },
    )
)
register(
    SamplerSpec(
        name="pigdm",
        summary="ΠGDM (Song et al. 2023): pseudo-inverse guidance, a vector-Jacobian product "
        "through the network at every step",
        function="repaint.samplers.pigdm:pigdm",
        cost="repaint.samplers.pigdm:planned_cost",
        reference="NVlabs/RED-diff (algos/pgdm.py)",
        options={
            "eta": Option(1.0, "DDIM stochasticity", 0, 1),
            "grad_term_weight": Option(1.0, "weight of the guidance term", 0),
        },
        gradients=True,
    )
)
register(
    SamplerSpec(
        name="lanpaint",
        summary="LanPaint (Zheng et al. 2025): Langevin steps towards the inpainting posterior "
        "before each denoising step (LanPaint-k)",
        function="repaint.samplers.lanpaint:lanpaint",
        cost="repaint.samplers.lanpaint:planned_cost",
        reference="scraed/LanPaint (a ComfyUI node; reproduced, see docs/samplers.md)",
        options={
            "n_steps": Option(5, "Langevin steps per denoising step (k)", 0, 100),
            "lam": Option(5.0, "lambda, the weight of the known pixels' guidance", 0),
            "step_size": Option(0.2, "Langevin step size", 0),
            "beta": Option(1.0, "step size factor on the known pixels", 0, None, True),
            "min_step_frac": Option(1.0, "noise share below which fewer steps are taken", 0, 1),
            "early_stop": Option(1, "last denoising steps without Langevin steps", 0),
        },
    )
)
