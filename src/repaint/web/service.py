"""What the web app does, apart from HTTP: the models it offers, the one run queue, the
page's options turned into requests, costs and estimates, uploads decoded within limits.
The routes (`repaint.web.routes`) call one `Service`; its errors are typed (`TooLarge`,
`NotFound`, `Gone`, `Busy`, else a `RepaintError`), and the app maps the types to HTTP
statuses."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image

from repaint.checkpoints import list_models
from repaint.checkpoints.hub import cached_models, takes_a_prompt
from repaint.costs import request_costs
from repaint.errors import Busy, Gone, NotFound, RepaintError, TooLarge
from repaint.io import load_rgb, open_image
from repaint.loading import load_inpainter
from repaint.masks import load_mask
from repaint.presets import DEFAULT_PRESET, PRESETS
from repaint.request import InpaintRequest
from repaint.samplers import SAMPLERS
from repaint.schedule import JumpSchedule
from repaint.web.form import parse_options
from repaint.web.runner import QueueFull, Runner, WebJob

MAX_SAMPLES = 8


class Service:
    """One server's models, queue and limits (see `create_app` for the settings)."""

    def __init__(
        self,
        *,
        model: str = "digits",
        models: list[str] | None = None,
        device: str = "auto",
        max_upload_mb: float = 10.0,
        default_preset: str = DEFAULT_PRESET,
        max_evaluations: int = 100_000,
        keep_s: float = 3600.0,
        max_results_mb: float = 512.0,
        max_queued: int = 16,
        load: Callable[..., Any] | None = None,
        confirm_s: float = 180.0,
    ) -> None:
        self.model = model
        self.offered = models or list(
            dict.fromkeys(
                [
                    model,
                    *(row["name"] for row in list_models() if row["downloaded"]),
                    *cached_models(),
                ]
            )
        )
        self.runner = Runner(
            load or (lambda name, **options: load_inpainter(name, device=device, **options)),
            keep_s=keep_s,
            max_bytes=int(max_results_mb * 2**20),
            max_queued=max_queued,
        )
        self.max_upload_mb, self.limit = max_upload_mb, int(max_upload_mb * 2**20)
        self.default_preset, self.max_evaluations, self.confirm_s = (
            default_preset,
            max_evaluations,
            confirm_s,
        )

    def config(self) -> dict[str, Any]:
        return {
            "models": self.offered,
            "model": self.model,
            "presets": {
                name: {**preset.schedule.params(), "evaluations": preset.reverse_steps}
                for name, preset in PRESETS.items()
            },
            "preset": self.default_preset,
            "samplers": {name: spec.summary for name, spec in SAMPLERS.items()},
            "prompted": [name for name in self.offered if takes_a_prompt(name)],
            "max_upload_mb": self.max_upload_mb,
            "max_samples": MAX_SAMPLES,
            "max_evaluations": self.max_evaluations,
        }

    def options(self, raw: str | dict[str, Any]) -> tuple[str, InpaintRequest, str | None, str]:
        """The page's options with the model checked: (model, request, parent, mask mode)."""
        model, request, parent, mask_mode = parse_options(raw)
        model = model or self.model
        if model not in self.offered:
            raise RepaintError(
                f"options.model: {model!r} is not available here; choose one of {self.offered}"
            )
        return model, request, parent, mask_mode

    def evaluations(self, params: dict[str, Any]) -> dict[str, int]:
        """Model evaluations of the page's schedule and sampler: of each sample (or branch),
        of the part branched samples share, and of all samples of one window."""
        params = dict(params)
        fields = {key: params.pop(key) for key in ("sampler", "sampler_options", "branch_at",
                                                   "num_samples") if key in params}  # fmt: skip
        JumpSchedule.from_params(params).counts(limit=self.max_evaluations)  # long: refused fast
        request = InpaintRequest(schedule=params, **fields)
        costs = request_costs(request)
        return {
            "evaluations": costs.each,
            "shared": costs.shared,
            "total": costs.total(request.num_samples),
        }

    def cost(self, request: InpaintRequest, model: str | None = None) -> int:
        """Model evaluations per window (with the model's own diffusion once it is loaded),
        refused over this server's limit."""
        diffusion = None
        if model is not None:
            diffusion = self.runner.model(model, request).prior.diffusion(request.jump_schedule.t_T)
        total = request_costs(request, diffusion).total(request.num_samples)
        if total > self.max_evaluations:
            raise RepaintError(
                f"options: {total:,} model evaluations per window, more than this server's "
                f"limit of {self.max_evaluations:,}; choose a cheaper schedule or fewer samples"
            )
        return total

    def estimate(self, options: dict[str, Any]) -> dict[str, Any]:
        """Model evaluations per window and the time they take on this server's device, from
        one timed network call of the model (loaded if need be); `confirm` says the page
        should ask before running something this long."""
        model, request, _, _ = self.options(options)
        self.cost(request)
        inpainter = self.runner.model(model, request)
        inpainter.check(request)  # what this model cannot do, said before running
        evaluations = self.cost(request, model)
        seconds_each = self.runner.seconds_per_evaluation(model, request)
        seconds = None if seconds_each is None else evaluations * seconds_each
        return {
            "evaluations": evaluations,
            "seconds": seconds,
            "confirm": seconds is not None and seconds > self.confirm_s,
            "device": str(inpainter.device),
        }

    def decode(self, data: bytes, what: str) -> np.ndarray:
        if len(data) > self.limit:
            raise TooLarge(f"the {what} is larger than the {self.max_upload_mb:g} MB limit")
        if not data:
            raise RepaintError(f"the {what} is empty")
        try:
            return load_rgb(open_image(data, name=f"the {what}"), what)
        except TooLarge:
            raise
        except RepaintError:
            raise RepaintError(f"the {what} is not a decodable image") from None

    def prepare(self, options: str, image: bytes, painted: bytes) -> WebJob:
        """Everything that may take time, in a worker thread: checks, counting, decoding."""
        model, request, parent, mask_mode = self.options(options)
        self.cost(request)
        self.runner.model(model, request).check(request)
        seed_name = None
        if request.branch_at is not None:  # the run of `parent`, branched at a level
            if parent is None:
                raise RepaintError("options.branch_at: branch from a job: give its id as parent")
            origin = self.find(parent.split("/")[0])
            seed_name = origin.name or origin.id
        if request.seed is None:  # a concrete seed now, so the page can branch from the run
            request = request.with_seed(secrets.randbelow(2**63))
        rgb = self.decode(image, "image")
        keep = load_mask(
            Image.fromarray(self.decode(painted, "mask")),
            mode=mask_mode,
            size=(rgb.shape[1], rgb.shape[0]),
            name="mask",
        )
        if keep.all() and request.extend is None:
            raise RepaintError("the mask is empty: paint the area to fill first, or extend")
        job_id = uuid.uuid4().hex[:12]
        job = WebJob(job_id, rgb, keep, model, request, name=seed_name or job_id, parent=parent)
        job.total = request.jump_schedule.reverse_steps
        return job

    def submit(self, job: WebJob) -> dict[str, Any]:
        try:
            position = self.runner.submit(job)
        except QueueFull as error:
            raise Busy(str(error)) from None
        return {"id": job.id, "position": position}

    def find(self, job_id: str) -> WebJob:
        job = self.runner.find(job_id)
        if job is not None:
            return job
        if self.runner.was_evicted(job_id):
            raise Gone(f"job {job_id} finished long ago and was evicted; run it again")
        raise NotFound("no such job")
