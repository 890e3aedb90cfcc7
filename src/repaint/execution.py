"""How every request runs, whatever the model family and the door: its work laid out as
items (images x windows x samples, and the shared starts of branched samples), items of one
shape batched within the memory budget, each batch run by the request's sampler as its spec
says, and the results pasted back into the images.

Every item draws from its own generator, seeded by the run seed, the image's name, the
sample and the window (`derive_seed`), so a result never depends on what it was batched
with: a folder's images share batches and give the pixels they give one by one, and any
output is made again from its sidecar.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from repaint.costs import Costs, request_costs, sampler_levels
from repaint.device import derive_seed, make_generator
from repaint.io import to_uint8
from repaint.prior import DiffusionPrior, draw_labels
from repaint.regions import Window
from repaint.request import InpaintRequest
from repaint.results import Frame, Hooks, InpaintResult, Plan, Progress, frame_due
from repaint.samplers import call_sampler, get_spec
from repaint.samplers.common import Step
from repaint.samplers.repaint import SamplerState, continue_with


@dataclass
class Layout:
    """One image laid out for the model by its family: the canvas the samples are pasted
    into, its windows, each window's model-space input (image (C, h, w), keep (1, h, w))
    from a sample's canvas, and how a window's result (in pixels) goes back into a canvas.
    An `ordered` layout runs its windows one after another, each seeing what the earlier
    ones generated (extension); the others run all their windows at once."""

    name: str
    canvas: np.ndarray
    fit: str
    windows: list[Window]
    input: Callable[[int, np.ndarray], tuple[Tensor, Tensor]]
    paste: Callable[[np.ndarray, int, Tensor], None]
    ordered: bool = False


@dataclass(frozen=True)
class Item:
    image: int  # its layout
    window: int
    sample: int  # -1: the shared start of branched samples
    seed: int
    inputs: tuple[Tensor, Tensor]
    start: Tensor | None = None  # a branch starts from the shared run's sample...
    label: Tensor | None = None  # ...and keeps its class label


def round_items(
    layouts: list[Layout],
    request: InpaintRequest,
    number: int,
    canvases: list[list[np.ndarray]],
) -> tuple[list[Item], list[Item]]:
    """(shared starts, samples) of round `number`: every window of the unordered layouts in
    round 0, window `number` of the ordered ones. The shared start of branched samples is
    sample 0's own run (so a plain run can be branched later from where it stood); each
    branch then draws from its own stream."""
    seed, level = request.seed, request.branch_at
    shared, samples = [], []
    for i, layout in enumerate(layouts):
        windows = [number] if layout.ordered else range(len(layout.windows)) if not number else []
        for w in windows:
            if w >= len(layout.windows):
                continue
            if level is not None:
                inputs = layout.input(w, canvases[i][0])
                shared.append(Item(i, w, -1, derive_seed(seed, layout.name, 0, w), inputs))
            for k in range(request.num_samples):
                stream = k if level is None else f"branch-{k}"
                inputs = layout.input(w, canvases[i][k])
                samples.append(Item(i, w, k, derive_seed(seed, layout.name, stream, w), inputs))
    return shared, samples


def batches(work: list[Item], budget: Callable[[tuple[int, ...]], int]) -> list[list[Item]]:
    """Items in order, in batches of items of one input shape, as many as `budget` allows
    for that shape."""
    groups: dict[tuple[int, ...], list[Item]] = {}
    for item in work:
        groups.setdefault(tuple(item.inputs[0].shape), []).append(item)
    return [
        group[i : i + budget(shape)]
        for shape, group in groups.items()
        for i in range(0, len(group), budget(shape))
    ]


class Execution:
    """One request over several laid-out images: plan, batches, the sampler, assembly."""

    def __init__(
        self,
        prior: DiffusionPrior,
        to_pixels: Callable[[Tensor], Tensor],
        request: InpaintRequest,
        hooks: Hooks,
        budget: Callable[[tuple[int, ...]], int],
        time_call: Callable[[int, tuple[int, ...]], float | None],
    ) -> None:
        self.prior, self.to_pixels, self.request, self.hooks = prior, to_pixels, request, hooks
        self.budget, self.time_call = budget, time_call
        self.spec = get_spec(request.sampler)
        self.diffusion = prior.diffusion(request.jump_schedule.t_T)

    def costs(self) -> Costs:
        return request_costs(self.request, self.diffusion)

    def run(self, layouts: list[Layout]) -> list[InpaintResult]:
        request, samples = self.request, self.request.num_samples
        canvases = [[layout.canvas.copy() for _ in range(samples)] for layout in layouts]
        rounds = max(len(layout.windows) if layout.ordered else 1 for layout in layouts)
        costs = self.costs()
        self.frames = [[[] for _ in range(samples)] for _ in layouts]
        self.number = 0
        taken = [[0, 0] for _ in layouts]  # (shared, sample) batches each image took part in
        for number in range(rounds):
            shared, work = round_items(layouts, request, number, canvases)
            shared_batches, work_batches = batches(shared, self.budget), batches(work, self.budget)
            if not number:
                self.total = (len(shared_batches) + len(work_batches)) * rounds
                if self.hooks.on_plan is not None:
                    plan = self._plan(layouts, costs, shared_batches, work_batches)
                    self.hooks.on_plan(plan if rounds == 1 else self._ordered(plan, layouts))
            starts: dict[tuple[int, int], tuple[Tensor, Tensor | None]] = {}
            state = None
            for chunk in shared_batches:
                state, labels = self._sample(chunk, until=request.branch_at)
                for row, item in enumerate(chunk):
                    label = None if labels is None else labels[row]
                    starts[item.image, item.window] = (state.x[row], label)
            for chunk in work_batches:
                chunk = [dataclasses.replace(item, **self._start(starts, item)) for item in chunk]
                result, _ = self._sample(chunk, shared=state)
                for item, pixels in zip(chunk, self.to_pixels(result).float().cpu(), strict=True):
                    layouts[item.image].paste(
                        canvases[item.image][item.sample], item.window, pixels
                    )
            for kind, chunks in enumerate((shared_batches, work_batches)):
                for chunk in chunks:
                    for image in {item.image for item in chunk}:
                        taken[image][kind] += 1
        return [
            InpaintResult(
                images=[Image.fromarray(canvas) for canvas in canvases[i]],
                request=request,
                fit=layout.fit,
                windows=layout.windows,
                model_evaluations=len(layout.windows) * costs.total(samples),
                network_calls=taken[i][0] * costs.shared + taken[i][1] * costs.each,
                frames=self.frames[i] if self.hooks.record else [],
            )
            for i, layout in enumerate(layouts)
        ]

    @staticmethod
    def _start(starts: dict, item: Item) -> dict[str, Tensor | None]:
        if (item.image, item.window) not in starts:
            return {}
        start, label = starts[item.image, item.window]
        return {"start": start, "label": label}

    def _sample(
        self,
        chunk: list[Item],
        *,
        until: int | None = None,
        shared: SamplerState | None = None,
    ) -> tuple[Tensor | SamplerState, Tensor | None]:
        """One batch through the request's sampler: the whole run, the shared part down to
        `until` (a state), or branches from the `shared` state."""
        request, prior, spec = self.request, self.prior, self.spec
        device = prior.device
        generators = [make_generator(item.seed, device) for item in chunk]
        labels = None
        if chunk[0].label is not None:
            labels = torch.stack([item.label for item in chunk])
        elif prior.uses_labels:
            labels = draw_labels(generators, len(chunk), device, request.class_label)
        denoiser, guidance = prior.conditioned(request, labels)
        schedule = request.jump_schedule if shared is None else request.branch_jump_schedule
        levels, state = sampler_levels(spec, schedule), None
        if shared is not None:
            branch = continue_with(shared, schedule, [g.get_state() for g in generators])
            state = dataclasses.replace(branch, x=torch.stack([item.start for item in chunk]))
            levels = branch.times  # the branch's own time list
        result = call_sampler(
            spec,
            denoiser,
            self.diffusion,
            torch.stack([item.inputs[0] for item in chunk]).to(device),
            torch.stack([item.inputs[1] for item in chunk]).to(device),
            levels,
            generator=generators,
            callback=lambda step: self._on_step(step, chunk),
            options=request.sampler_options,
            eta=request.sampler_eta,
            guidance=guidance,
            clip_denoised=prior.clip_denoised,
            until=until,
            state=state,
        )
        self.number += 1
        return result, labels

    def _on_step(self, step: Step, chunk: list[Item]) -> None:
        recorded = None
        if self.hooks.record and frame_due(step):
            for row, item in enumerate(chunk):
                if item.window:
                    continue
                pair = self._frame(step, row)
                recorded = recorded or pair
                targets = [item.sample] if item.sample >= 0 else range(self.request.num_samples)
                for sample in targets:
                    self.frames[item.image][sample].append(np.concatenate(pair, axis=1))
        if self.hooks.callback is not None:
            self.hooks.callback(
                Progress(
                    step,
                    self.number,
                    self.total,
                    chunk[0].image,
                    recorded,
                    lambda: self._frame(step, 0),  # made only when the door asks for it
                    len(chunk),
                )
            )

    def _frame(self, step: Step, row: int) -> Frame:
        """Row `row` of a step in pixels: x_t and the predicted clean image."""
        x, x0 = (self.to_pixels(t[row : row + 1])[0] for t in (step.x, step.pred_x0))
        return Frame(to_uint8(x), to_uint8(x0))

    def _plan(
        self,
        layouts: list[Layout],
        costs: Costs,
        shared_batches: list[list[Item]],
        work_batches: list[list[Item]],
    ) -> Plan:
        """The cost, with a network call timed at the first batch's shape (not under
        torch.compile, whose first call compiles)."""
        seconds = None
        if not self.request.compile and work_batches:
            first = work_batches[0]
            seconds = self.time_call(len(first), tuple(first[0].inputs[0].shape))
        return Plan(
            windows=sum(len(layout.windows) for layout in layouts),
            samples=self.request.num_samples,
            evaluations_each=costs.each,
            batches=len(work_batches),
            seconds_per_call=seconds,
            shared_evaluations=costs.shared,
            shared_batches=len(shared_batches),
            images=len(layouts),
            exact=costs.exact,
        )

    @staticmethod
    def _ordered(plan: Plan, layouts: list[Layout]) -> Plan:
        """A plan timed at round 0, for every round of the ordered layouts."""
        rounds = sum(len(layout.windows) for layout in layouts)
        return dataclasses.replace(plan, windows=rounds, batches=plan.batches * rounds)
