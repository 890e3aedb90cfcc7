"""Gaussian diffusion: beta schedules, respacing and the posterior of one reverse step.

Everything is computed once in float64 (NumPy) as guided-diffusion does, then moved to the
device as float32 tables (`DiffusionTables`) so the sampling loop only indexes tensors.
The order of operations in `predict_x0`, `posterior_mean` and `log_variance` follows the
reference so that float32 results agree with it to rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np
import torch
from torch import Tensor

from repaint.errors import RepaintError


class MeanType(Enum):
    """What the network's first three output channels predict."""

    EPSILON = "epsilon"
    X0 = "x0"


class VarianceType(Enum):
    """How the reverse-step variance is obtained."""

    LEARNED_RANGE = "learned_range"  # 3 extra channels interpolate between the two bounds
    FIXED_SMALL = "fixed_small"  # the true posterior variance
    FIXED_LARGE = "fixed_large"  # beta_t (with the posterior value at t=0)


def linear_betas(num_steps: int) -> np.ndarray:
    """Ho et al.'s linear schedule, scaled so any step count spans the same noise range."""
    scale = 1000 / num_steps
    return np.linspace(scale * 0.0001, scale * 0.02, num_steps, dtype=np.float64)


def cosine_betas(num_steps: int, max_beta: float = 0.999) -> np.ndarray:
    """Nichol & Dhariwal's cosine schedule: betas from a squared-cosine alpha_bar."""

    def alpha_bar(t: float) -> float:
        return math.cos((t + 0.008) / 1.008 * math.pi / 2) ** 2

    return np.array(
        [
            min(1 - alpha_bar((i + 1) / num_steps) / alpha_bar(i / num_steps), max_beta)
            for i in range(num_steps)
        ],
        dtype=np.float64,
    )


BETA_SCHEDULES = {"linear": linear_betas, "cosine": cosine_betas}


def named_betas(name: str, num_steps: int) -> np.ndarray:
    if name not in BETA_SCHEDULES:
        raise RepaintError(
            f"noise_schedule: unknown schedule {name!r}; use one of {sorted(BETA_SCHEDULES)}"
        )
    return BETA_SCHEDULES[name](num_steps)


def space_timesteps(num_steps: int, respacing: str | int | list[int]) -> list[int]:
    """The original steps kept by `timestep_respacing`, sorted ascending.

    `"250"` keeps 250 evenly spread steps; `"10,15,20"` splits the process into three equal
    sections and keeps that many steps of each; `"ddimN"` uses the DDIM paper's fixed
    stride. Rounding and edge cases follow guided-diffusion exactly.
    """
    if isinstance(respacing, str):
        respacing = respacing.strip()
        if respacing.startswith("ddim"):
            try:
                wanted = int(respacing[len("ddim") :])
            except ValueError:
                raise RepaintError(
                    f"timestep_respacing: {respacing!r} is not 'ddimN' with an integer N"
                ) from None
            for stride in range(1, num_steps):
                if len(range(0, num_steps, stride)) == wanted:
                    return list(range(0, num_steps, stride))
            raise RepaintError(
                f"timestep_respacing: no integer stride gives {wanted} steps out of {num_steps}"
            )
        if not respacing:
            return list(range(num_steps))
        try:
            sections = [int(part) for part in respacing.split(",")]
        except ValueError:
            raise RepaintError(
                f"timestep_respacing: {respacing!r} is not a comma-separated list of integers"
            ) from None
    elif isinstance(respacing, int):
        sections = [respacing]
    else:
        sections = list(respacing)
    if any(count < 1 for count in sections):
        raise RepaintError(f"timestep_respacing: step counts must be positive, got {sections}")

    if len(sections) == 1 and sections[0] > num_steps:
        # The reference falls back to (float) linspace here; keep its integer part.
        return sorted({int(s) for s in np.linspace(0, num_steps, sections[0])})

    size_per, extra = divmod(num_steps, len(sections))
    kept: list[int] = []
    start = 0
    for i, count in enumerate(sections):
        size = size_per + (1 if i < extra else 0)
        if size < count:
            raise RepaintError(
                f"timestep_respacing: cannot take {count} steps from a section of {size}"
            )
        stride = 1 if count <= 1 else (size - 1) / (count - 1)
        kept.extend(start + round(stride * j) for j in range(count))
        start += size
    return sorted(set(kept))


@dataclass(frozen=True)
class DiffusionTables:
    """Per-step float32 coefficients on one device, indexed by the respaced step t."""

    timestep_map: Tensor  # int64: respaced t -> original step fed to the networks
    betas: Tensor
    alphas_cumprod: Tensor
    alphas_cumprod_prev: Tensor  # alpha_bar of the next lower level (1 below level 0)
    sqrt_alphas_cumprod: Tensor
    sqrt_one_minus_alphas_cumprod: Tensor
    sqrt_recip_alphas_cumprod: Tensor
    sqrt_recipm1_alphas_cumprod: Tensor
    posterior_mean_coef1: Tensor
    posterior_mean_coef2: Tensor
    min_log_variance: Tensor  # log of the posterior variance (clipped at t=0)
    max_log_variance: Tensor  # log beta_t
    fixed_log_variance: Tensor  # the log variance for FIXED_SMALL/FIXED_LARGE models
    sqrt_betas: Tensor
    sqrt_one_minus_betas: Tensor


class GaussianDiffusion:
    """A (possibly respaced) discrete diffusion process and its reverse-step posterior."""

    def __init__(
        self,
        betas: np.ndarray,
        timestep_map: list[int] | None = None,
        mean_type: MeanType = MeanType.EPSILON,
        variance_type: VarianceType = VarianceType.LEARNED_RANGE,
    ) -> None:
        betas = np.asarray(betas, dtype=np.float64)
        if betas.ndim != 1 or not ((betas > 0) & (betas <= 1)).all():
            raise RepaintError("betas must be a 1-D array with values in (0, 1]")
        self.betas = betas
        self.num_timesteps = len(betas)
        self.timestep_map = (
            list(timestep_map) if timestep_map is not None else list(range(len(betas)))
        )
        self.mean_type = mean_type
        self.variance_type = variance_type

        alphas_cumprod = np.cumprod(1.0 - betas)
        alphas_cumprod_prev = np.append(1.0, alphas_cumprod[:-1])
        posterior_variance = betas * (1.0 - alphas_cumprod_prev) / (1.0 - alphas_cumprod)
        # The posterior variance is 0 at t=0; its log is clipped to the value at t=1.
        posterior_log_variance = np.log(np.append(posterior_variance[1], posterior_variance[1:]))
        if variance_type is VarianceType.FIXED_LARGE:
            fixed_log_variance = np.log(np.append(posterior_variance[1], betas[1:]))
        else:
            fixed_log_variance = posterior_log_variance

        self._arrays = {
            "betas": betas,
            "alphas_cumprod": alphas_cumprod,
            "alphas_cumprod_prev": alphas_cumprod_prev,
            "sqrt_alphas_cumprod": np.sqrt(alphas_cumprod),
            "sqrt_one_minus_alphas_cumprod": np.sqrt(1.0 - alphas_cumprod),
            "sqrt_recip_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod),
            "sqrt_recipm1_alphas_cumprod": np.sqrt(1.0 / alphas_cumprod - 1),
            "posterior_mean_coef1": betas * np.sqrt(alphas_cumprod_prev) / (1.0 - alphas_cumprod),
            "posterior_mean_coef2": (1.0 - alphas_cumprod_prev)
            * np.sqrt(1.0 - betas)
            / (1.0 - alphas_cumprod),
            "min_log_variance": posterior_log_variance,
            "max_log_variance": np.log(betas),
            "fixed_log_variance": fixed_log_variance,
        }
        self.alphas_cumprod = alphas_cumprod

    @classmethod
    def from_config(
        cls,
        *,
        steps: int = 1000,
        noise_schedule: str = "linear",
        timestep_respacing: str | int | list[int] = "",
        learn_sigma: bool = False,
        sigma_small: bool = False,
        predict_xstart: bool = False,
        betas: np.ndarray | None = None,
    ) -> GaussianDiffusion:
        """Build a respaced process from guided-diffusion's hyper-parameters; explicit
        training `betas` (e.g. a diffusers scheduler's) replace `steps`/`noise_schedule`."""
        base = named_betas(noise_schedule, steps) if betas is None else np.asarray(betas, float)
        steps = len(base)
        if not ((base > 0) & (base <= 1)).all():
            raise RepaintError(
                f"diffusion_steps: {steps} steps of the {noise_schedule} schedule give betas "
                "outside (0, 1]; use more steps (the published models use 1000)"
            )
        kept = set(space_timesteps(steps, timestep_respacing or str(steps)))
        if len(kept) < 2:
            raise RepaintError(
                f"timestep_respacing {timestep_respacing!r} (--t-T): a diffusion needs at least "
                "2 steps; use t_T >= 2"
            )
        # Respacing keeps alpha_bar at the kept steps and derives the betas between them.
        alphas_cumprod = np.cumprod(1.0 - base)
        betas, timestep_map, last = [], [], 1.0
        for step, alpha_bar in enumerate(alphas_cumprod):
            if step in kept:
                betas.append(1 - alpha_bar / last)
                last = alpha_bar
                timestep_map.append(step)
        if learn_sigma:
            variance_type = VarianceType.LEARNED_RANGE
        else:
            variance_type = VarianceType.FIXED_SMALL if sigma_small else VarianceType.FIXED_LARGE
        return cls(
            np.array(betas),
            timestep_map,
            MeanType.X0 if predict_xstart else MeanType.EPSILON,
            variance_type,
        )

    @property
    def out_channels_per_input(self) -> int:
        """2 when the network also predicts the variance (6 channels for RGB), else 1."""
        return 2 if self.variance_type is VarianceType.LEARNED_RANGE else 1

    def tables(self, device: torch.device | str = "cpu") -> DiffusionTables:
        """The coefficients as float32 tensors on `device`, built once per run."""

        def f32(name: str) -> Tensor:
            return torch.from_numpy(self._arrays[name]).to(device=device, dtype=torch.float32)

        betas = f32("betas")
        alphas_cumprod = f32("alphas_cumprod")
        return DiffusionTables(
            timestep_map=torch.tensor(self.timestep_map, dtype=torch.int64, device=device),
            betas=betas,
            alphas_cumprod=alphas_cumprod,
            alphas_cumprod_prev=f32("alphas_cumprod_prev"),
            # float32 square roots of float32 values, as the reference computes these two
            sqrt_alphas_cumprod=torch.sqrt(alphas_cumprod),
            sqrt_one_minus_alphas_cumprod=torch.sqrt(1 - alphas_cumprod),
            sqrt_recip_alphas_cumprod=f32("sqrt_recip_alphas_cumprod"),
            sqrt_recipm1_alphas_cumprod=f32("sqrt_recipm1_alphas_cumprod"),
            posterior_mean_coef1=f32("posterior_mean_coef1"),
            posterior_mean_coef2=f32("posterior_mean_coef2"),
            min_log_variance=f32("min_log_variance"),
            max_log_variance=f32("max_log_variance"),
            fixed_log_variance=f32("fixed_log_variance"),
            sqrt_betas=torch.sqrt(betas),
            sqrt_one_minus_betas=torch.sqrt(1 - betas),
        )


def at(table: Tensor, t: int | Tensor) -> Tensor:
    """`table[t]` for one level, or per-sample values shaped (N, 1, 1, 1) for a batch of
    levels (training draws one level per image)."""
    return table[t] if isinstance(t, int) else table[t].view(-1, 1, 1, 1)


@dataclass(frozen=True)
class Posterior:
    """p(x_{t-1} | x_t) of one reverse step and the x0 prediction it is built from."""

    mean: Tensor
    log_variance: Tensor
    pred_x0: Tensor


def p_mean_variance(
    diffusion: GaussianDiffusion,
    tables: DiffusionTables,
    model_output: Tensor,
    x: Tensor,
    t: int | Tensor,
    clip_denoised: bool = True,
) -> Posterior:
    """Turn a network output at respaced step(s) `t` into the reverse-step Gaussian."""
    channels = x.shape[1]
    if model_output.shape[1] != channels * diffusion.out_channels_per_input:
        raise RepaintError(
            f"the model returns {model_output.shape[1]} channels but the diffusion expects "
            f"{channels * diffusion.out_channels_per_input} (learn_sigma mismatch?)"
        )
    model_output = model_output.float()
    if diffusion.variance_type is VarianceType.LEARNED_RANGE:
        prediction, variance_values = model_output.split(channels, dim=1)
        frac = (variance_values + 1) / 2
        log_variance = frac * at(tables.max_log_variance, t) + (1 - frac) * at(
            tables.min_log_variance, t
        )
    else:
        prediction = model_output
        log_variance = at(tables.fixed_log_variance, t).expand_as(x)

    if diffusion.mean_type is MeanType.EPSILON:
        pred_x0 = (
            at(tables.sqrt_recip_alphas_cumprod, t) * x
            - at(tables.sqrt_recipm1_alphas_cumprod, t) * prediction
        )
    else:
        pred_x0 = prediction
    if clip_denoised:
        pred_x0 = pred_x0.clamp(-1, 1)
    mean = at(tables.posterior_mean_coef1, t) * pred_x0 + at(tables.posterior_mean_coef2, t) * x
    return Posterior(mean=mean, log_variance=log_variance, pred_x0=pred_x0)


def q_sample(tables: DiffusionTables, x0: Tensor, t: int | Tensor, noise: Tensor) -> Tensor:
    """Noise a clean image to level t: sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) noise."""
    return (
        at(tables.sqrt_alphas_cumprod, t) * x0 + at(tables.sqrt_one_minus_alphas_cumprod, t) * noise
    )


def q_step(tables: DiffusionTables, x: Tensor, t: int, noise: Tensor) -> Tensor:
    """One forward step into level t: sqrt(1 - beta_t) x + sqrt(beta_t) noise."""
    return tables.sqrt_one_minus_betas[t] * x + tables.sqrt_betas[t] * noise


def eps_from_x0(tables: DiffusionTables, x: Tensor, t: int, pred_x0: Tensor) -> Tensor:
    """The noise that takes `pred_x0` to `x` at level t."""
    return (tables.sqrt_recip_alphas_cumprod[t] * x - pred_x0) / tables.sqrt_recipm1_alphas_cumprod[
        t
    ]


def ddim_step(
    tables: DiffusionTables, x: Tensor, t: int, pred_x0: Tensor, eta: float, noise: Tensor
) -> Tensor:
    """Song et al.'s DDIM step x_t -> x_{t-1} from an x0 prediction (guided-diffusion's form).

    `eta` = 0 is deterministic; `eta` = 1 draws with the posterior variance, i.e. an
    ancestral DDPM step with fixed-small variance.
    """
    alpha_bar, alpha_bar_prev = tables.alphas_cumprod[t], tables.alphas_cumprod_prev[t]
    eps = eps_from_x0(tables, x, t, pred_x0)
    sigma = (
        eta
        * torch.sqrt((1 - alpha_bar_prev) / (1 - alpha_bar))
        * torch.sqrt(1 - alpha_bar / alpha_bar_prev)
    )
    mean = pred_x0 * torch.sqrt(alpha_bar_prev) + torch.sqrt(1 - alpha_bar_prev - sigma**2) * eps
    return mean if t == 0 else mean + sigma * noise
