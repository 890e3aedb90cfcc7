"""DiffPIR, PiGDM and LanPaint against vectors recorded from their authors' code
(`tests/golden_samplers/README.md`), and their invariants on small random networks.

Recorded on one thread of an Intel Xeon (AVX-512, no AMX). With one thread, on a CPU whose
float32 arithmetic rounds as the recording machine's did, every array is reproduced bit for
bit (`torch.equal`), so these tests pin one thread as `test_samplers_golden.py` does. Another
CPU rounds differently: on an AMD EPYC the network's first epsilon moves by 3e-6 and a square
root of the tables by one float32 step, and the runs carry that along (to 2.4e-4 at the end
of LanPaint's, 79 times the first step's). So the `drift` fixture measures this CPU against
the recording first: where it is 0 every comparison is exact; otherwise each array must lie
within `GAIN` times the drift (relative to its size), five times the largest growth seen.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from repaint.config import load_reference_config
from repaint.diffusion import GaussianDiffusion
from repaint.prior import create_prior
from repaint.samplers.common import SamplerStep
from repaint.samplers.diffpir import (
    channels_last_noise,
    diffpir,
    diffpir_diffusion,
    diffpir_step,
    quad_levels,
    reference_tables,
)
from repaint.samplers.diffpir import planned_cost as diffpir_cost
from repaint.samplers.lanpaint import lanpaint, lanpaint_step, sigmas
from repaint.samplers.lanpaint import planned_cost as lanpaint_cost
from repaint.samplers.pigdm import pigdm, pigdm_step, reference_alphas
from repaint.samplers.pigdm import planned_cost as pigdm_cost
from repaint.schedule import JumpSchedule

CPU = torch.device("cpu")
OURS = Path(__file__).parent / "golden_samplers"


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def prior(golden_dir):
    folder = golden_dir / "uncond32"
    return create_prior(
        load_reference_config(folder / "conf.yml"), checkpoint=folder / "model.pt", device=CPU
    )


def load(name):
    golden = dict(np.load(OURS / name / "golden.npz"))
    return golden, json.loads((OURS / name / "conf.json").read_text())


def tensor(golden, key, i=None):
    value = golden[key] if i is None else golden[key][i : i + 1]
    return torch.from_numpy(np.ascontiguousarray(value))


GAIN = 400
ULP = 2.0**-23  # one float32 step at 1: the least drift a differing CPU can show
ROUNDING = 1e-4  # a drift above this is no CPU's rounding (3e-6 measured) but a bug


def assert_equal(ours, golden, key, i=None, *, drift=0.0):
    """Bit for bit where this CPU computes as the recording's did (`drift` 0), otherwise
    within GAIN x drift, relative to the array's size where that exceeds 1."""
    theirs = tensor(golden, key, i)
    ours = ours.reshape(theirs.shape)
    error = float((ours - theirs).abs().max())
    if drift == 0:
        assert torch.equal(ours, theirs), f"{key}[{i}]: {error}"
    else:
        bound = GAIN * max(drift, ULP) * max(1.0, float(theirs.abs().max()))
        assert error <= bound, f"{key}[{i}]: {error} > {bound} (drift {drift})"


@pytest.fixture(scope="module")
def drift(prior) -> float:
    """How far this CPU is from the recording machine: the largest difference of DiffPIR's
    tables and of the network's epsilon at its first recorded step (0: the same bits)."""
    golden, conf = load("diffpir")
    diffusion, image, keep = diffpir_setup(prior, golden)
    ref, levels = reference_tables(diffusion, CPU), sorted(golden["levels"].tolist())
    step = diffpir_teacher_forced(prior, diffusion, image, keep, golden, conf, 0)
    pairs = [(ref.sqrt_abar, golden["sqrt_alphas_cumprod"][levels]),
             (ref.sqrt_1m_abar, golden["sqrt_1m_alphas_cumprod"][levels]),
             (step.eps, golden["model_eps"][:1])]  # fmt: skip
    value = max(float((ours.reshape(theirs.shape) - torch.from_numpy(theirs)).abs().max())
                for ours, theirs in pairs)  # fmt: skip
    assert value < ROUNDING, f"{value}: more than another CPU's rounding, so a real difference"
    return value


def assert_table(ours, theirs, drift):
    """A table is one float32 operation deep: exact, or within two float32 steps where this
    CPU rounds otherwise (whatever the network's drift)."""
    theirs = torch.from_numpy(theirs)
    if drift == 0:
        assert torch.equal(ours, theirs)
    else:
        torch.testing.assert_close(ours, theirs, rtol=2 * ULP, atol=0)


# DiffPIR ------------------------------------------------------------------------------


def diffpir_setup(prior, golden):
    diffusion = diffpir_diffusion(prior.diffusion(1000), len(golden["levels"]))
    image = 2 * tensor(golden, "y") - 1  # their known values: 2 y - 1 in float32
    keep = tensor(golden, "mask")[:, :1].contiguous()
    return diffusion, image, keep


def test_diffpir_levels_tables_and_draws_are_the_authors(prior, drift):
    golden, conf = load("diffpir")
    diffusion, _, _ = diffpir_setup(prior, golden)
    levels = golden["levels"].tolist()
    assert quad_levels(len(levels)) == levels == conf["levels (1000-step indices visited)"]
    assert diffusion.timestep_map == sorted(levels)
    ref = reference_tables(diffusion, CPU)
    assert ref.exact
    assert_table(ref.sqrt_abar, golden["sqrt_alphas_cumprod"][sorted(levels)], drift)
    assert_table(ref.sqrt_1m_abar, golden["sqrt_1m_alphas_cumprod"][sorted(levels)], drift)
    assert_table(ref.beta, golden["betas"][sorted(levels)], drift)
    generator = torch.Generator().manual_seed(int(golden["seed"]))
    randn = channels_last_noise(generator, (1, 3, 32, 32), CPU)
    for k in range(len(golden["noise"])):
        assert_equal(randn(), golden, "noise", k)


def diffpir_teacher_forced(prior, diffusion, image, keep, golden, conf, i):
    """Our step i from their recorded input x and draws."""
    tables, ref = diffusion.tables(CPU), reference_tables(diffusion, CPU)
    t, s = golden["reverse_t"][i], golden["reverse_t_next"][i]
    level_t, level_s = (diffusion.timestep_map.index(int(v)) for v in (t, s))
    draws = tensor(golden, "noise")[golden["noise_event"] == i]  # posterior (unused), z1, z2
    hyper = conf["hyperparameters"]
    return diffpir_step(
        prior.denoise, diffusion, tables, ref, image, keep, tensor(golden, "model_x", i),
        level_t, level_s, draws[1], draws[2], lam=hyper["lambda_"], zeta=hyper["zeta"],
        eta=hyper["eta"], sigma=conf["sigma (noise level of y)"],
        guidance_scale=hyper["guidance_scale"],
    )  # fmt: skip


def test_diffpir_every_step_teacher_forced(prior, drift):
    golden, conf = load("diffpir")
    diffusion, image, keep = diffpir_setup(prior, golden)
    for i in range(len(golden["reverse_t"])):
        step = diffpir_teacher_forced(prior, diffusion, image, keep, golden, conf, i)
        assert_equal(step.eps, golden, "model_eps", i, drift=drift)
        assert_equal(step.net_x0, golden, "model_x0", i, drift=drift)
        assert_equal(step.pred_x0, golden, "reverse_x0_data", i, drift=drift)
        assert_equal(step.x, golden, "reverse_samples", i, drift=drift)


def test_diffpir_end_to_end(prior, drift):
    golden, conf = load("diffpir")
    diffusion, image, keep = diffpir_setup(prior, golden)
    times = list(range(diffusion.num_timesteps - 1, -1, -1))
    generator, steps = torch.Generator().manual_seed(int(golden["seed"])), []
    out = diffpir(prior.denoise, diffusion, image, keep, times, generator=generator,
                  callback=steps.append)  # fmt: skip
    assert_equal(out, golden, "final_sample", drift=drift)
    for i, step in enumerate(steps):
        assert_equal(step.x, golden, "reverse_samples", i, drift=drift)
    assert (steps[-1].forward, steps[-1].backward) == diffpir_cost(times)
    assert steps[-1].forward == conf["model_calls"] - 1  # their discarded call at level 0
    expected = torch.Generator().manual_seed(int(golden["seed"]))
    randn = channels_last_noise(expected, (1, 3, 32, 32), CPU)
    for _ in golden["noise"]:  # the last one: their discarded call's draw
        randn()
    assert torch.equal(generator.get_state(), expected.get_state())


# PiGDM --------------------------------------------------------------------------------


def test_pigdm_tables_and_draws_are_the_authors(prior, drift):
    golden, conf = load("pigdm")
    diffusion = prior.diffusion(f"ddim{len(conf['ts'])}")
    assert diffusion.timestep_map == conf["ts"]
    index = np.concatenate([[0], np.array(conf["ts"]) + 1])
    assert_table(reference_alphas(diffusion, CPU), golden["alphas"][index], drift)
    generator = torch.Generator().manual_seed(int(golden["seed"]))
    for k in range(len(golden["noise"])):
        assert_equal(torch.randn((1, 3, 32, 32), generator=generator), golden, "noise", k)


def test_pigdm_every_step_teacher_forced(prior, drift):
    golden, conf = load("pigdm")
    diffusion = prior.diffusion(f"ddim{len(conf['ts'])}")
    tables, alphas = diffusion.tables(CPU), reference_alphas(diffusion, CPU)
    image, keep = tensor(golden, "gt"), tensor(golden, "gt_keep_mask")[:, :1].contiguous()
    x = tensor(golden, "x_T")
    for i, (t, s) in enumerate(zip(golden["reverse_t"], golden["reverse_t_next"], strict=True)):
        level_t = diffusion.timestep_map.index(int(t))
        level_s = -1 if s < 0 else diffusion.timestep_map.index(int(s))
        step = pigdm_step(
            prior.denoise, diffusion, tables, alphas, image, keep, x, level_t, level_s,
            tensor(golden, "noise", i + 1), eta=conf["algo"]["eta"],
            grad_term_weight=conf["algo"]["grad_term_weight"],
        )  # fmt: skip
        assert_equal(step.eps, golden, "reverse_eps", i, drift=drift)
        assert_equal(step.raw_x0, golden, "reverse_x0_raw", i, drift=drift)
        assert_equal(step.pred_x0, golden, "reverse_pred_xstart", i, drift=drift)
        assert_equal(step.guidance, golden, "reverse_grad", i, drift=drift)
        assert_equal(step.x, golden, "reverse_samples", i, drift=drift)
        x = tensor(golden, "reverse_samples", i)


def test_pigdm_end_to_end(prior, drift):
    golden, conf = load("pigdm")
    diffusion = prior.diffusion(f"ddim{len(conf['ts'])}")
    image, keep = tensor(golden, "gt"), tensor(golden, "gt_keep_mask")[:, :1].contiguous()
    times = JumpSchedule(diffusion.num_timesteps, jump_length=1, jump_n_sample=1)
    generator, steps = torch.Generator().manual_seed(int(golden["seed"])), []
    out = pigdm(prior.denoise, diffusion, image, keep, times, generator=generator,
                callback=steps.append)  # fmt: skip
    assert_equal(out, golden, "final_sample", drift=drift)
    for i, step in enumerate(steps):
        assert_equal(step.x, golden, "reverse_samples", i, drift=drift)
    assert (steps[-1].forward, steps[-1].backward) == pigdm_cost(times)
    assert steps[-1].forward == conf["model_calls"] == conf["backward_passes"]
    assert_consumed(generator, golden)


def assert_consumed(generator, golden, shape=(1, 3, 32, 32)):
    expected = torch.Generator().manual_seed(int(golden["seed"]))
    for _ in golden["noise"]:
        torch.randn(shape, generator=expected)
    assert torch.equal(generator.get_state(), expected.get_state())


# LanPaint -----------------------------------------------------------------------------


def lanpaint_setup(prior, golden):
    diffusion = prior.diffusion(len(golden["levels"]))
    assert diffusion.timestep_map == golden["timestep_map"].tolist()
    return diffusion, tensor(golden, "gt"), tensor(golden, "gt_keep_mask")


def test_lanpaint_every_denoising_step_teacher_forced(prior, drift):
    golden, conf = load("lanpaint")
    diffusion, image, keep = lanpaint_setup(prior, golden)
    table, tables = sigmas(diffusion, CPU), diffusion.tables(CPU)
    assert_table(table[1:].flip(0), golden["sigmas"][:-1], drift)
    noise = tensor(golden, "noise")
    z = noise[0]
    node = conf["node_defaults (LanPaint_KSampler)"]
    for i, level in enumerate(golden["levels"].tolist()):
        draws = iter(noise[golden["noise_event"] == i])
        step = lanpaint_step(
            prior.denoise, diffusion, tables, image * keep, keep, z,
            tensor(golden, "outer_x_in", i), level, table[level + 1].view(1),
            table[level].view(1), int(golden["inner_steps"][i]), lambda d=draws: next(d),
            lam=node["Lambda"], step_size=node["StepSize"], beta=node["Beta"],
            min_step_frac=node["MinStepFrac"],
        )  # fmt: skip
        assert_equal(step.pred_x0, golden, "outer_denoised", i, drift=drift)
        assert_equal(step.x, golden, "outer_x_out", i, drift=drift)
        assert step.calls == 1 + int(golden["inner_steps"][i])
        assert next(draws, None) is None


def test_lanpaint_end_to_end(prior, drift):
    golden, conf = load("lanpaint")
    diffusion, image, keep = lanpaint_setup(prior, golden)
    times = list(range(diffusion.num_timesteps - 1, -1, -1))
    generator, steps = torch.Generator().manual_seed(int(golden["seed"])), []
    out = lanpaint(prior.denoise, diffusion, image, keep, times, generator=generator,
                   callback=steps.append)  # fmt: skip
    assert_equal(out, golden, "final_sample", drift=drift)
    assert steps[-1].forward == conf["model_calls"] == lanpaint_cost(times, diffusion)[0]
    assert [s.t for s in steps] == golden["levels"].tolist()
    assert_consumed(generator, golden)


# Invariants on small random networks ----------------------------------------------------

DIFFUSION = GaussianDiffusion.from_config(steps=1000, timestep_respacing="12", learn_sigma=True)
SCHEDULE = JumpSchedule(t_T=12, jump_length=3, jump_n_sample=2)
SAMPLERS = {"diffpir": diffpir, "pigdm": pigdm, "lanpaint": lanpaint}


def conv_denoiser(seed: int = 0, scale: float = 0.2):
    """One 3x3 convolution to eps and variance channels, image by image (so a batch gives
    each image's bits alone)."""
    net = torch.nn.Conv2d(3, 6, 3, padding=1)
    with torch.no_grad():
        generator = torch.Generator().manual_seed(seed)
        for parameter in net.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator) * scale)

    def denoise(x, timesteps, labels):
        out = torch.cat([net(image[None]) for image in x])
        return out + scale * (timesteps.float() / 1000).view(-1, 1, 1, 1)

    return denoise


def inputs(batch: int = 2, size: int = 8):
    generator = torch.Generator().manual_seed(7)
    image = torch.rand(batch, 3, size, size, generator=generator) * 2 - 1
    keep = torch.zeros(batch, 1, size, size)
    keep[..., : size // 2] = 1
    return image, keep


def run(name, seeds=(0, 1), image=None, keep=None, times=SCHEDULE, **kwargs):
    if image is None:
        image, keep = inputs(len(seeds))
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    function = SAMPLERS[name]
    return function(conv_denoiser(), DIFFUSION, image, keep, times, generator=generators, **kwargs)


def cost(name, times):
    if name == "lanpaint":
        return lanpaint_cost(times, DIFFUSION)
    return {"diffpir": diffpir_cost, "pigdm": pigdm_cost}[name](times)


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_shape_range_determinism_and_batch_independence(name):
    first, again = run(name), run(name)
    assert first.shape == (2, 3, 8, 8) and first.abs().max() <= 1
    assert torch.equal(first, again)
    assert not torch.equal(run(name, seeds=(0, 2))[1], first[1])
    image, keep = inputs(2)
    assert torch.equal(run(name, seeds=(1,), image=image[1:], keep=keep[1:])[0], first[1])


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_paste_puts_the_known_pixels_exactly(name):
    image, keep = inputs(2)
    raw, pasted = run(name), run(name, paste=True)
    known = keep.expand_as(image) > 0.5
    assert torch.equal(pasted[known], image[known])
    assert torch.equal(pasted[~known], raw[~known])


@pytest.mark.parametrize("name", sorted(SAMPLERS))
@pytest.mark.parametrize("times", [SCHEDULE, list(range(11, -1, -1))], ids=["jumps", "plain"])
def test_callbacks_count_steps_and_the_planned_cost(name, times):
    steps = []
    run(name, callback=steps.append, times=times)
    levels = [t for t in (times.times() if isinstance(times, JumpSchedule) else times) if t >= 0]
    down = sum(1 for t, s in itertools.pairwise([*levels, -1]) if s < t)
    if name == "diffpir":
        down -= 1  # DiffPIR stops at level 0
    assert all(isinstance(step, SamplerStep) for step in steps)
    assert [(step.index, step.total) for step in steps] == [(i, down) for i in range(down)]
    assert (steps[-1].forward, steps[-1].backward) == cost(name, times)


def test_pigdm_keeps_the_known_region_of_x0_and_guides_only_the_hole():
    image, keep = inputs(2)
    tables, alphas = DIFFUSION.tables(CPU), reference_alphas(DIFFUSION, CPU)
    x, noise = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    step = pigdm_step(conv_denoiser(), DIFFUSION, tables, alphas, image, keep, x, 6, 5, noise)
    known = keep.expand_as(image) > 0.5
    assert torch.equal(step.pred_x0[known], image[known])
    assert torch.equal(step.pred_x0[~known], step.raw_x0[~known])
    assert (step.guidance[known] == 0).all() and (step.guidance[~known] != 0).any()


def test_diffpir_data_step_is_the_closed_form_proximal_point():
    """x0h minimises ||m (y - x)||^2 + rho ||x - x0||^2: y on known pixels up to
    rho / (1 + rho), x0 in the hole."""
    image, keep = inputs(1)
    diffusion = diffpir_diffusion(GaussianDiffusion.from_config(steps=1000, learn_sigma=True), 6)
    tables, ref = diffusion.tables(CPU), reference_tables(diffusion, CPU)
    x = torch.randn(1, 3, 8, 8)
    noise = [torch.randn(1, 3, 8, 8) for _ in range(2)]
    step = diffpir_step(conv_denoiser(), diffusion, tables, ref, image, keep, x, 3, 2, *noise)
    rho = 0.001**2 / (ref.sqrt_1m_abar[3] / ref.sqrt_abar[3]) ** 2
    expected = (keep * image + rho * step.net_x0) / (keep + rho)
    torch.testing.assert_close(step.pred_x0, expected, rtol=1e-6, atol=1e-6)
    known = keep.expand_as(image) > 0.5
    torch.testing.assert_close(step.pred_x0[~known], step.net_x0[~known], rtol=0, atol=1e-6)


def test_lanpaint_without_thinking_is_the_replacement_sampler():
    """No Langevin steps (n_steps 0) and a zero step size both reduce LanPaint to Euler
    steps of the probability-flow ODE with the known region replaced by y + sigma z."""
    image, keep = inputs(1)
    times = list(range(11, -1, -1))
    none = run("lanpaint", seeds=(0,), image=image, keep=keep, times=times, n_steps=0)
    frozen = run("lanpaint", seeds=(0,), image=image, keep=keep, times=times, step_size=0.0)
    assert torch.equal(none, frozen)
    denoise, table, tables = conv_denoiser(), sigmas(DIFFUSION, CPU), DIFFUSION.tables(CPU)
    z = torch.randn((1, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    y = image * keep
    x = y + z * (1 + table[12] ** 2) ** 0.5
    for t in times:
        sigma, sigma_next = table[t + 1], table[t]
        x = x * (1 - keep) + (y + sigma * z) * keep
        eps = denoise(x / (1 + sigma**2) ** 0.5, tables.timestep_map[t].view(1), None)[:, :3]
        x0 = (x - sigma * eps) * (1 - keep) + y * keep
        x = x0 + (x - x0) * sigma_next / sigma
    torch.testing.assert_close(none, x.clamp(-1, 1), rtol=0, atol=1e-5)


def test_lanpaint_one_inner_step_is_one_exact_ornstein_uhlenbeck_step():
    """LanPaint-1 at one level: x_t moves to exp(-A dt) x_t + (1 - exp(-A dt)) C / A plus
    noise of variance (1 - exp(-2 A dt)) / A, with the BiG score's A and C."""
    image, keep = inputs(1)
    denoise, table, tables = conv_denoiser(), sigmas(DIFFUSION, CPU), DIFFUSION.tables(CPU)
    t, lam, size = 7, 5.0, 0.2
    sigma = table[t + 1].view(1)
    y, z, x = image * keep, torch.randn(1, 3, 8, 8), torch.randn(1, 3, 8, 8) * 3
    w = torch.randn(1, 3, 8, 8)
    step = lanpaint_step(denoise, DIFFUSION, tables, y, keep, z, x, t, sigma, table[t].view(1),
                         1, lambda: w, lam=lam, step_size=size)  # fmt: skip
    abar = 1 / (1 + sigma**2)

    def x0_of(x_t):
        x_ve = x_t / abar.sqrt()
        eps = denoise(x_ve * abar.sqrt(), tables.timestep_map[t].view(1), None)[:, :3]
        return x_ve - sigma * eps

    x_t = (x * (1 - keep) + (y + sigma * z) * keep) * abar.sqrt()
    x0 = x0_of(x_t)
    target = x0 * (1 - keep) + ((1 + lam) * y - lam * x0) * keep  # x_t + BiG score
    A = (1 + lam * keep) / (1 - abar)
    C = (abar.sqrt() * target - x_t) / (1 - abar) + A * x_t
    decay = torch.exp(-A * size)
    moved = decay * x_t + (1 - decay) * C / A + w * ((1 - decay**2) / A).sqrt()
    x_ve = moved / abar.sqrt()
    out = x0_of(moved) * (1 - keep) + y * keep
    expected = x_ve + (x_ve - out) / sigma * (table[t] - sigma)
    torch.testing.assert_close(step.x, expected, rtol=1e-4, atol=1e-4)
    assert step.calls == 2
