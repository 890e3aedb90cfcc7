"""DDNM, DPS, CoPaint and CoPaint-TT against vectors recorded from CoPaint's reference
(`../shared/golden/samplers/README.md`), and their invariants on small random networks.

The vectors were recorded with one CPU thread; with one thread, on a CPU whose float32
convolutions round as the recording machine's did, our network gives the reference's bits,
so the golden tests run single-threaded and every array matches. Elsewhere (two threads, or
another CPU: an Intel Xeon with AVX-512 here moves the network's epsilon by 3e-6) the
gradient steps of DPS and CoPaint, which jump where a pixel of x0 starts or stops being
clipped, amplify that difference: about 160x per teacher-forced step, and to O(1) by the
end of a free run. So the `drift` fixture measures the network's epsilon against the
recording first; where it is 0 every tolerance is the README's, otherwise the gradient
samplers' tolerances grow by `GAIN` times the drift and their free runs are compared by
structure (steps, costs, draws) rather than values, as the README says of CoPaint.
"""

from __future__ import annotations

import inspect
import itertools
import json
from functools import partial

import numpy as np
import pytest
import torch

from repaint.config import load_reference_config
from repaint.diffusion import GaussianDiffusion, q_step
from repaint.errors import RepaintError
from repaint.prior import create_prior
from repaint.samplers import SAMPLERS, get_spec
from repaint.samplers.common import SamplerStep
from repaint.samplers.copaint import copaint, copaint_step, ddim_times, optimise_xt
from repaint.samplers.ddnm import ddnm, ddnm_step
from repaint.samplers.dps import dps, dps_step
from repaint.schedule import JumpSchedule

CPU = torch.device("cpu")


RECORDED = ["copaint", "copaint-tt", "ddnm", "dps"]  # the samplers of CoPaint's reference


def planned_evaluations(name, times):
    """The spec's planned (network calls, backward passes) with the sampler's defaults."""
    spec = get_spec(name)
    return spec.cost_function()(times, None, **spec.defaults())


def function(name):
    return get_spec(name).load()


STATE = 1e-4  # README: states after a step, teacher-forced
EPS = 1e-5  # the network's epsilon from the same input
RELATIVE = 1e-5  # DPS's distance and CoPaint's objectives
GAIN = 400  # the gradient samplers' amplification allowed per unit of network drift


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


def load(golden_dir, name):
    folder = golden_dir / "samplers" / name
    golden = dict(np.load(folder / "golden.npz"))
    return golden, json.loads((folder / "conf.json").read_text())


def setup(prior, golden):
    diffusion = prior.diffusion(len(golden["timestep_map"]))
    assert diffusion.timestep_map == golden["timestep_map"].tolist()
    np.testing.assert_allclose(diffusion.alphas_cumprod, golden["alphas_cumprod"], rtol=1e-12)
    image, keep = torch.from_numpy(golden["gt"]), torch.from_numpy(golden["gt_keep_mask"])
    return diffusion, diffusion.tables(CPU), image, keep


def draws(golden, event):
    return torch.from_numpy(golden["noise"][golden["noise_event"] == event])


def max_error(ours, theirs):
    return float((ours.reshape(theirs.shape) - torch.from_numpy(theirs)).abs().max())


def x0_tolerance(golden, t, drift=0.0):
    """README: x0 = x / sqrt(abar) amplifies input differences up to 157x at t = T."""
    return STATE + GAIN * drift + EPS / np.sqrt(golden["alphas_cumprod"][t])


def close(actual, expected, tolerance, drift, scale=None) -> bool:
    """Within `tolerance` everywhere under the recording's arithmetic. Under another, a pixel
    whose x0 crosses the clamp takes another gradient, and that gradient goes back through
    the network to every pixel: at one step of CoPaint here the optimised x moved by 3e-4 on
    average and 1.7e-2 at most, its x0 (x / sqrt(abar): `scale`) by 2.6e-3 and 0.28 (a
    pixel left the clamp), and the next state by 1.7e-3 and 5.7e-2 (the other steps: 2e-7
    and 4e-6). So there the check is 5e-3 on average (times `scale` for x0) and, for
    states, 0.1 at most: far inside the 0.5 by which an unrelated sample differs."""
    error = (torch.as_tensor(actual).float() - torch.as_tensor(expected).float()).abs()
    if drift == 0:
        return float(error.max()) < tolerance
    if scale is not None:
        return float(error.mean()) < 5e-3 * scale
    return float(error.mean()) < 5e-3 and float(error.max()) < 0.1


@pytest.fixture(scope="module")
def drift(golden_dir, prior) -> float:
    """How far this CPU's network is from the recording's: the largest difference of the
    epsilon at DPS's first recorded step (0: the same arithmetic, bit for bit)."""
    golden, _ = load(golden_dir, "dps")
    x = torch.from_numpy(golden["noise"][0])
    t = torch.tensor([int(golden["reverse_model_t"][0])])
    with torch.no_grad():
        eps = prior.denoise(x, t, None)[:, :3]
    return max_error(eps, golden["reverse_eps"][0])


@pytest.mark.parametrize("name", ["ddnm", "dps", "copaint", "copaint_tt"])
def test_recorded_noise_is_the_seeded_generator_and_the_time_list_is_ours(golden_dir, name):
    golden, conf = load(golden_dir, name)
    generator = torch.Generator().manual_seed(int(golden["seed"]))
    for k, recorded in enumerate(golden["noise"]):
        assert torch.equal(
            torch.randn(recorded.shape, generator=generator), torch.from_numpy(recorded)
        ), k
    times = golden["times"].tolist()
    if name in ("ddnm", "dps"):
        assert JumpSchedule.from_params(conf[name]["schedule_jump_params"]).times() == times
    else:
        params = conf["ddim"]["schedule_params"]
        t_T, steps = params["ddpm_num_steps"], params["num_inference_steps"]
        if params["use_timetravel"]:
            jumps = JumpSchedule(
                t_T, jump_length=params["jump_length"], jump_n_sample=params["jump_n_sample"]
            )
            assert jumps.times()[:-1] == times
        else:
            assert ddim_times(steps, t_T) == times == [22, 20, 18, 15, 12, 10, 8, 5, 2, 0]


@pytest.mark.parametrize("name", ["ddnm", "dps"])
def test_ddnm_and_dps_every_step_teacher_forced(golden_dir, prior, drift, name):
    golden, conf = load(golden_dir, name)
    state = STATE + (GAIN * drift if name == "dps" else 0.0)
    diffusion, tables, image, keep = setup(prior, golden)
    if name == "dps":  # y = m * gt + sigma * (the second draw)
        sigma = conf["dps"]["measurement_noise_sigma"]
        measurement = image * keep + torch.from_numpy(golden["noise"][1]) * sigma
        step = partial(dps_step, prior.denoise, diffusion, tables, measurement, keep)
        hyper = {"step_size": conf["dps"]["step_size"], "eta": conf["dps"]["eta"]}
    else:
        step = partial(ddnm_step, prior.denoise, diffusion, tables, image, keep)
        hyper = {"eta": conf["ddnm"]["eta"]}
    x = torch.from_numpy(golden["noise"][0])
    for i, (t, s) in enumerate(zip(golden["reverse_t"], golden["reverse_t_next"], strict=True)):
        noise = draws(golden, i)[0]  # the posterior draw (DPS's second one is unused)
        out = step(x, int(t), int(s), noise, **hyper)
        if name == "ddnm":
            # the projection puts the ground truth on known pixels (to rounding)
            known = keep.expand_as(image) > 0.5
            assert float((out.pred_x0 - image)[known].abs().max()) < 1e-6
        else:
            assert max_error(out.pre_guidance, golden["dps_pre_guidance"][i]) < state
            relative = RELATIVE + GAIN * drift
            np.testing.assert_allclose(float(out.distance[0]), golden["dps_norm"][i], rtol=relative)
        assert max_error(out.eps, golden["reverse_eps"][i]) < EPS
        assert max_error(out.pred_x0, golden["reverse_pred_xstart"][i]) < x0_tolerance(
            golden, t, drift if name == "dps" else 0.0
        )
        assert max_error(out.x, golden["reverse_samples"][i]) < state, i
        x = torch.from_numpy(golden["reverse_samples"][i])[None]


@pytest.mark.parametrize(("name", "tolerance"), [("ddnm", 1e-4), ("dps", 1e-2)])
def test_ddnm_and_dps_free_running_reproduce_the_final_sample(
    golden_dir, prior, drift, name, tolerance
):
    golden, conf = load(golden_dir, name)
    compare = name == "ddnm" or drift == 0  # DPS's free run is chaotic across arithmetics
    diffusion, _, image, keep = setup(prior, golden)
    schedule = JumpSchedule.from_params(conf[name]["schedule_jump_params"])
    hyper = {"eta": conf[name]["eta"]}
    if name == "dps":
        hyper.update(
            step_size=conf["dps"]["step_size"],
            measurement_sigma=conf["dps"]["measurement_noise_sigma"],
        )
    steps = []
    generator = torch.Generator().manual_seed(int(golden["seed"]))
    sampler = partial(function(name), prior.denoise, diffusion, image, keep, schedule)
    final = sampler(generator=generator, callback=steps.append, **hyper)
    assert max_error(final, golden["final_sample"]) < tolerance or not compare
    assert [step.t for step in steps] == golden["reverse_t"].tolist()
    assert [(step.index, step.total) for step in steps] == [(i, 15) for i in range(15)]
    assert (steps[-1].forward, steps[-1].backward) == planned_evaluations(name, schedule)
    assert steps[-1].forward == conf["num_model_steps"]
    for step, x in zip(steps, golden["reverse_samples"], strict=True):
        assert max_error(step.x, x) < tolerance or not compare
    assert max_error(steps[0].x, golden["reverse_samples"][0]) < STATE + GAIN * drift
    assert_consumed(generator, golden)


def assert_consumed(generator, golden):
    """The run drew exactly the reference's number of (1, 3, 32, 32) normals."""
    expected = torch.Generator().manual_seed(int(golden["seed"]))
    for _ in golden["noise"]:
        torch.randn((1, 3, 32, 32), generator=expected)
    assert torch.equal(generator.get_state(), expected.get_state())


def check_optimisation(golden, prefix, i, opt, t, drift):
    """One CoPaint optimisation (`reverse_*` or `update_*` record i) against the reference."""
    relative = RELATIVE + GAIN * drift
    assert close(opt.x, golden[f"{prefix}_x_opt"][i][None], STATE, drift)
    scale = 1 / np.sqrt(golden["alphas_cumprod"][t])
    expected = golden[f"{prefix}_pred_xstart"][i][None]
    assert close(opt.pred_x0, expected, x0_tolerance(golden, t), drift, scale)
    np.testing.assert_array_equal(
        opt.rejections[:, 0].numpy(), golden[f"{prefix}_opt_rejections"][i]
    )
    np.testing.assert_allclose(
        opt.objectives[:, 0].double().numpy(), golden[f"{prefix}_opt_objective"][i], rtol=relative
    )
    np.testing.assert_allclose(
        opt.grad_norms[:, 0].double().numpy(), golden[f"{prefix}_opt_grad_norm"][i], rtol=relative
    )
    np.testing.assert_allclose(opt.lrs[:, 0].numpy(), golden[f"{prefix}_opt_lr"][i], rtol=1e-12)
    np.testing.assert_allclose(
        float(opt.final_loss[0]), golden[f"{prefix}_final_loss"][i], rtol=relative
    )
    assert opt.forward == golden[f"{prefix}_model_calls"][i]
    assert opt.backward == golden[f"{prefix}_opt_objective"].shape[1]


@pytest.mark.parametrize("name", ["copaint", "copaint_tt"])
def test_copaint_every_event_teacher_forced(golden_dir, prior, drift, name):
    golden, conf = load(golden_dir, name)
    diffusion, tables, image, keep = setup(prior, golden)
    hyper = {"iterations": conf["optimize_xt"]["num_iteration_optimize_xt (G)"]}
    optimise = partial(optimise_xt, prior.denoise, diffusion, tables, image, keep, **hyper)
    step = partial(copaint_step, prior.denoise, diffusion, tables, image, keep, **hyper)
    seen = dict.fromkeys(("reverse", "update", "undo"), 0)
    x = torch.from_numpy(golden["noise"][0])
    for event, description in enumerate(golden["events"]):
        kind, levels = description.split(" ")
        i, seen[kind] = seen[kind], seen[kind] + 1
        (noise,) = draws(golden, event)  # reverse: DDIM noise; update: the discarded one
        if kind == "undo":
            t, s = map(int, levels.split("->"))
            assert (t, s) == (golden["undo_t"][i], golden["undo_t_next"][i])
            assert max_error(q_step(tables, x, s, noise), golden["undo_samples"][i]) < STATE
            x = torch.from_numpy(golden["undo_samples"][i])[None]
        elif kind == "update":
            t = int(levels)
            lr, coef = float(golden["update_lr_xt"][i]), float(golden["update_coef_xt_reg"][i])
            opt = optimise(x, t, lr=lr, coef=coef)
            check_optimisation(golden, "update", i, opt, t, drift)
            x = torch.from_numpy(golden["update_x_opt"][i])[None]
        else:
            t, s = map(int, levels.split("->"))
            lr, coef = float(golden["reverse_lr_xt"][i]), float(golden["reverse_coef_xt_reg"][i])
            x_s, opt = step(x, t, s, noise, lr=lr, coef=coef, ddim_sigma=conf["ddim"]["ddim_sigma"])
            check_optimisation(golden, "reverse", i, opt, t, drift)
            assert close(x_s, golden["reverse_samples"][i][None], STATE, drift)
            x = torch.from_numpy(golden["reverse_samples"][i])[None]
    assert seen["reverse"] == len(golden["reverse_t"])
    assert seen["undo"] == len(golden.get("undo_t", []))


@pytest.mark.parametrize("name", ["copaint", "copaint_tt"])
def test_copaint_free_running_draws_and_carries_as_the_reference(golden_dir, prior, drift, name):
    """End to end the runs are not comparable (README) unless bit-identical: checked are the
    first step (its input is the first draw), the cost and the draws consumed; and when the
    run is bit-identical to the reference (single-threaded here it is, which also shows the
    lr/coef carried between steps are the reference's), its network calls."""
    golden, conf = load(golden_dir, name)
    diffusion, _, image, keep = setup(prior, golden)
    params = conf["ddim"]["schedule_params"]
    if params["use_timetravel"]:
        times = JumpSchedule(
            params["ddpm_num_steps"],
            jump_length=params["jump_length"],
            jump_n_sample=params["jump_n_sample"],
        )
    else:
        times = ddim_times(params["num_inference_steps"], params["ddpm_num_steps"])
    steps = []
    generator = torch.Generator().manual_seed(int(golden["seed"]))
    copaint(
        prior.denoise, diffusion, image, keep, times, generator=generator, callback=steps.append
    )
    assert [step.t for step in steps] == golden["reverse_t"].tolist()
    assert max_error(steps[0].x, golden["reverse_samples"][0]) < STATE + GAIN * drift
    forward, backward = planned_evaluations(name.replace("_", "-"), times)
    assert backward == steps[-1].backward and forward <= steps[-1].forward
    if max_error(steps[-1].x, golden["reverse_samples"][-1]) == 0:  # bit-identical here
        calls = (
            golden["reverse_model_calls"].sum()
            + golden.get("update_model_calls", np.zeros(1)).sum()
        )
        assert steps[-1].forward == calls
    assert_consumed(generator, golden)


# Invariants, on small random networks -------------------------------------------------

DIFFUSION = GaussianDiffusion.from_config(steps=1000, timestep_respacing="12", learn_sigma=True)
SCHEDULE = JumpSchedule(t_T=12, jump_length=3, jump_n_sample=2)


def conv_denoiser(seed: int = 0, scale: float = 0.2):
    """A differentiable stand-in for a UNet: one 3x3 convolution to eps and variance
    channels, plus a term in the timestep. It runs image by image, so a batch gives each
    image's bits alone (a batched convolution may round differently)."""
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


def run(name, seeds=(0, 1), image=None, keep=None, **kwargs):
    if image is None:
        image, keep = inputs(len(seeds))
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    times = ddim_times(6, 12) if name == "copaint" else SCHEDULE
    run_sampler = function(name)
    return run_sampler(
        conv_denoiser(), DIFFUSION, image, keep, times, generator=generators, **kwargs
    )


def levels_down(times):
    return sum(1 for t, s in itertools.pairwise(t for t in times if t >= 0) if s < t)


@pytest.mark.parametrize("name", RECORDED)
def test_shape_range_determinism_and_batch_independence(name):
    first, again = run(name), run(name)
    assert first.shape == (2, 3, 8, 8) and first.abs().max() <= 1
    assert torch.equal(first, again)
    assert not torch.equal(run(name, seeds=(0, 2))[1], first[1])
    image, keep = inputs(2)
    assert torch.equal(run(name, seeds=(1,), image=image[1:], keep=keep[1:])[0], first[1])


@pytest.mark.parametrize("name", RECORDED)
def test_paste_puts_the_known_pixels_exactly(name):
    image, keep = inputs(2)
    raw, pasted = run(name), run(name, paste=True)
    known = keep.expand_as(image) > 0.5
    assert torch.equal(pasted[known], image[known])
    assert torch.equal(pasted[~known], raw[~known])
    assert not torch.equal(raw[known], image[known])  # the reference's output is not pasted


@pytest.mark.parametrize("name", RECORDED)
def test_callbacks_count_steps_and_network_work(name):
    steps = []
    run(name, callback=steps.append)
    times = ddim_times(6, 12) if name == "copaint" else SCHEDULE.times()
    down = levels_down(times)
    assert all(isinstance(step, SamplerStep) for step in steps)
    assert [(step.index, step.total) for step in steps] == [(i, down) for i in range(down)]
    forward, backward = planned_evaluations(name, times)
    assert steps[-1].backward == backward and steps[-1].forward >= forward
    assert steps[-1].evaluations == steps[-1].forward + steps[-1].backward
    if name in ("ddnm", "dps"):
        assert steps[-1].forward == forward


@pytest.mark.parametrize("name", ["ddnm", "dps", "copaint-tt"])
def test_time_travel_draws_one_normal_per_level_up(name):
    """x_T, then per step down 1 (DDNM, CoPaint) or 2 (DPS), per level up 1, plus DPS's
    measurement and CoPaint-TT's discarded DDIM step before each jump."""
    generator = torch.Generator().manual_seed(3)
    image, keep = inputs(1)
    function(name)(conv_denoiser(), DIFFUSION, image, keep, SCHEDULE, generator=generator)
    pairs = list(itertools.pairwise(SCHEDULE.times()[:-1]))
    down, up = levels_down(SCHEDULE.times()), sum(1 for t, s in pairs if s > t)
    jumps = sum(1 for a, b in itertools.pairwise(pairs) if a[1] < a[0] and b[1] > b[0])
    count = {"ddnm": 1 + down + up, "dps": 2 + 2 * down + up, "copaint-tt": 1 + down + jumps + up}
    expected = torch.Generator().manual_seed(3)
    for _ in range(count[name]):
        torch.randn((1, 3, 8, 8), generator=expected)
    assert torch.equal(generator.get_state(), expected.get_state())


def test_ddnm_projection_keeps_the_known_region_of_x0():
    image, keep = inputs(2)
    tables = DIFFUSION.tables(CPU)
    x, noise = torch.randn(2, 3, 8, 8), torch.randn(2, 3, 8, 8)
    out = ddnm_step(conv_denoiser(), DIFFUSION, tables, image, keep, x, 5, 4, noise)
    known = keep.expand_as(image) > 0.5
    torch.testing.assert_close(out.pred_x0[known], image[known], atol=1e-6, rtol=0)
    abar = tables.alphas_cumprod[5]
    x0 = ((x - out.eps * (1 - abar).sqrt()) / abar.sqrt()).clamp(-1, 1)
    assert torch.equal(out.pred_x0[~known], x0[~known])


def test_dps_guidance_is_the_analytic_gradient_and_lowers_the_error():
    """With a zero epsilon x0 = x / sqrt(abar) (unclipped here), so the gradient of
    ||y - m x0|| is -m (y - m x0) / (sqrt(abar) ||y - m x0||); with a network, a small
    step along the guidance lowers the error."""
    image, keep = inputs(1)
    tables, t = DIFFUSION.tables(CPU), 6
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 8, 8, generator=generator) * 0.25 * tables.sqrt_alphas_cumprod[t]
    noise = torch.randn(1, 3, 8, 8, generator=generator)

    def guided(denoiser, x, step_size=1.0):
        y = image * keep
        return dps_step(
            denoiser, DIFFUSION, tables, y, keep, x, t, t - 1, noise, step_size=step_size
        )

    out = guided(lambda x, t, y: torch.zeros(1, 6, 8, 8), x, step_size=0.5)
    assert out.pred_x0.abs().max() < 1
    residual = image * keep - keep * x * tables.sqrt_recip_alphas_cumprod[t]
    gradient = -keep * residual * tables.sqrt_recip_alphas_cumprod[t] / residual.norm()
    torch.testing.assert_close((out.pre_guidance - out.x) / 0.5, gradient, atol=1e-5, rtol=1e-5)
    denoiser = conv_denoiser(scale=0.02)
    before = guided(denoiser, x)
    assert (before.pred_x0.abs() < 1).any()  # unclipped pixels, which get a gradient
    after = guided(denoiser, x - 1e-3 * (before.pre_guidance - before.x))
    assert float(after.distance) < float(before.distance)


@pytest.mark.parametrize("reevaluate", [True, False])
def test_copaint_accepted_steps_never_raise_the_objective(reevaluate):
    image, keep = inputs(2)
    tables, denoiser, t, coef = DIFFUSION.tables(CPU), conv_denoiser(), 3, 0.01
    x = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(5))
    opt = optimise_xt(
        denoiser, DIFFUSION, tables, image, keep, x, t, lr=50.0, coef=coef, iterations=4,
        reevaluate=reevaluate,
    )  # fmt: skip
    assert opt.rejections.sum() > 0  # the large rate forces cuts
    assert (opt.objectives[1:] <= opt.objectives[:-1]).all()
    eps = denoiser(opt.x, tables.timestep_map[t].expand(2), None)[:, :3]
    x0 = tables.sqrt_recip_alphas_cumprod[t] * opt.x - tables.sqrt_recipm1_alphas_cumprod[t] * eps
    data = ((image * keep - x0.clamp(-1, 1) * keep) ** 2).flatten(1).sum(1)
    assert (data + coef * ((x - opt.x) ** 2).flatten(1).sum(1) <= opt.objectives[-1]).all()
    assert (opt.lrs[1:] <= opt.lrs[:-1]).all()  # cuts carry over to the later iterations
    assert opt.forward == 1 + (2 if reevaluate else 1) * 4 + int(opt.rejections.amax(1).sum())


def test_reevaluate_false_gives_the_same_sample_for_fewer_calls():
    samples, calls = {}, {}
    for reevaluate in (True, False):
        steps = []
        samples[reevaluate] = run("copaint-tt", reevaluate=reevaluate, callback=steps.append)
        calls[reevaluate] = steps[-1].forward
    assert torch.equal(samples[True], samples[False])
    assert calls[False] < calls[True]


def test_registry_defaults_are_the_functions_defaults():
    assert {"repaint", "ddnm", "dps", "copaint", "copaint-tt"} <= set(SAMPLERS)
    for name, spec in SAMPLERS.items():
        parameters = inspect.signature(spec.load()).parameters
        for key, value in spec.defaults().items():
            assert parameters[key].default == value, (name, key)


def test_time_lists_are_checked_against_the_diffusion():
    image, keep = inputs(1)
    generator = torch.Generator().manual_seed(0)
    with pytest.raises(RepaintError, match="respace"):
        ddnm(conv_denoiser(), DIFFUSION, image, keep, JumpSchedule(t_T=20), generator=generator)
    with pytest.raises(RepaintError, match="one level"):
        dps(conv_denoiser(), DIFFUSION, image, keep, [5, 3, 5, 0], generator=generator)
    assert ddim_times(4, 10) == [8, 5, 2, 0]  # 2.5 -> 2 and 7.5 -> 8: half to even
