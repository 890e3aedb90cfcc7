"""`repaint serve`: a small web app to paint a mask, run RePaint and watch it, one run at a
time per device.

FastAPI serves one static page (`static/index.html`) and a JSON API. The form's options are
checked by a schema and then by `InpaintRequest`, so every bad field is a 400 naming it;
uploads are limited while they are read (the declared length, then the bytes streamed),
decoded with Pillow off the event loop, and never saved under a name from the browser:
results stay in memory (see `repaint.web.runner`, which also evicts them) and are offered as
`repaint_<job>_<sample>.png` with their sidecar JSON.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import uuid
from collections.abc import Callable
from importlib import resources
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from repaint.checkpoints import list_models
from repaint.checkpoints.hub import cached_models, takes_a_prompt
from repaint.choices import SAMPLER_CHOICES
from repaint.costs import request_costs
from repaint.errors import RepaintError
from repaint.io import load_rgb, open_image
from repaint.loading import load_inpainter
from repaint.masks import load_mask
from repaint.presets import DEFAULT_PRESET, PRESETS
from repaint.request import InpaintRequest
from repaint.schedule import JumpSchedule
from repaint.web.runner import QueueFull, Runner, WebJob, download_name

MAX_SAMPLES = 8
STATIC = resources.files("repaint.web").joinpath("static")
ASSETS = {  # everything the page loads: served by the package, no other host
    "style.css": "text/css",
    "app.js": "text/javascript",
    "editor.js": "text/javascript",
    "runs.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}
FORM_OVERHEAD = 64 * 2**10  # multipart headers and the options field, besides two files


class FormOptions(BaseModel):
    """The page's options field (JSON). Unknown keys are refused."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    preset: str = DEFAULT_PRESET
    schedule: dict[str, int] | None = None
    eta: float | str | None = None
    sampler: str = "repaint"
    seed: int | None = None
    num_samples: int = Field(default=1, ge=1, le=MAX_SAMPLES)
    extend: list[int] | int | None = None  # pixels (left, top, right, bottom) to add
    prompt: str | None = Field(default=None, max_length=2000)
    negative_prompt: str = Field(default="", max_length=2000)
    branch_at: int | None = None  # with `parent`: branch from that job's run at this level
    parent: str | None = Field(default=None, max_length=64)  # the job this one comes from

    @field_validator("seed", "prompt", mode="before")
    @classmethod
    def blank(cls, value: Any) -> Any:
        return None if isinstance(value, str) and not value.strip() else value


def one_line(error: ValidationError | RequestValidationError, where: str) -> str:
    """The first problem of a validation error, naming the field."""
    first = error.errors()[0]
    field = ".".join(str(part) for part in first["loc"] if part != "body") or where
    return f"{where}.{field}: {first['msg']}" if not field.startswith(where) else field


def parse_options(
    raw: str, models: list[str], default_model: str
) -> tuple[str, InpaintRequest, str | None]:
    """The form's JSON options -> (model name, request, parent job id); anything odd is a
    RepaintError."""
    try:
        options = FormOptions.model_validate_json(raw or "{}")
    except ValidationError as error:
        raise RepaintError(one_line(error, "options")) from None
    model = options.model or default_model
    if model not in models:
        raise RepaintError(
            f"options.model: {model!r} is not available here; choose one of {models}"
        )
    fields = options.model_dump(exclude={"model", "parent"})
    # the painted mask (white = fill) arrives as a keep-mask
    return model, InpaintRequest(**fields, mask_mode="keep"), options.parent


class LimitBody:
    """ASGI middleware: a request body over `limit` bytes is refused with 413 as soon as its
    declared length or the bytes received so far say so, before it is spooled anywhere."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            return await self._refuse(scope, send)
        received, refused = 0, False

        async def counted():
            nonlocal received, refused
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit and not refused:
                refused = True  # answer now; whatever the app says after is dropped
                await self._refuse(scope, send)
                raise _TooLarge
            return message

        async def unless_refused(message) -> None:
            if not refused:
                await send(message)

        with contextlib.suppress(_TooLarge):  # the 413 has been sent
            await self.app(scope, counted, unless_refused)

    async def _refuse(self, scope, send) -> None:
        mb = self.limit / 2**20
        response = JSONResponse(
            {"detail": f"the upload is larger than the {mb:.2f} MB request limit"}, 413
        )
        await response(scope, None, send)


class _TooLarge(Exception):
    pass


def create_app(
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
    load: Callable[[str], Any] | None = None,
    confirm_s: float = 180.0,
):
    """The FastAPI app. `models` are the names offered (default: the locally available
    registered models plus `model`); `load` builds an inpainter from a name. A request may
    cost at most `max_evaluations` model evaluations (schedule x samples, per window);
    results are kept `keep_s` seconds and `max_results_mb` in all; at most `max_queued`
    runs wait."""
    offered = models or list(
        dict.fromkeys(
            [
                model,
                *(row["name"] for row in list_models() if row["downloaded"]),
                *cached_models(),
            ]
        )
    )
    runner = Runner(
        load or (lambda name: load_inpainter(name, device=device)),
        keep_s=keep_s,
        max_bytes=int(max_results_mb * 2**20),
        max_queued=max_queued,
    )
    limit = int(max_upload_mb * 2**20)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(runner.close)  # the worker stops before the process ends

    app = FastAPI(title="repaint", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.add_middleware(LimitBody, limit=2 * limit + FORM_OVERHEAD)
    app.state.runner = runner

    @app.exception_handler(RepaintError)
    async def user_error(request, error: RepaintError):
        return JSONResponse({"error": str(error)}, status_code=400)

    @app.exception_handler(RequestValidationError)
    async def bad_field(request, error: RequestValidationError):
        return JSONResponse({"error": one_line(error, "request")}, status_code=400)

    def find(job_id: str) -> WebJob:
        job = runner.find(job_id)
        if job is not None:
            return job
        if runner.was_evicted(job_id):
            raise HTTPException(
                410, f"job {job_id} finished long ago and was evicted; run it again"
            )
        raise HTTPException(404, "no such job")

    def decode(data: bytes, what: str) -> np.ndarray:
        if len(data) > limit:
            raise HTTPException(413, f"the {what} is larger than the {max_upload_mb:g} MB limit")
        if not data:
            raise HTTPException(400, f"the {what} is empty")
        try:
            return load_rgb(open_image(data, name=f"the {what}"), what)
        except RepaintError as error:
            if "pixels" in str(error):
                raise HTTPException(413, str(error)) from None
            raise HTTPException(400, f"the {what} is not a decodable image") from None

    def cost(request: InpaintRequest) -> int:
        """Model evaluations per window, refused over this server's limit."""
        shared, each = request_costs(request)
        total = shared + each * request.num_samples
        if total > max_evaluations:
            raise RepaintError(
                f"options: {total:,} model evaluations per window, more than this server's "
                f"limit of {max_evaluations:,}; choose a cheaper schedule or fewer samples"
            )
        return total

    def prepare(options: str, image: bytes, painted: bytes) -> WebJob:
        """Everything that may take time, in a worker thread: checks, counting, decoding."""
        name, request, parent = parse_options(options, offered, model)
        cost(request)
        runner.model(name).check(request)
        seed_name = None
        if request.branch_at is not None:  # the run of `parent`, branched at a level
            if parent is None:
                raise RepaintError("options.branch_at: branch from a job: give its id as parent")
            origin = find(parent.split("/")[0])  # 404, or 410 when it is gone
            seed_name = origin.name or origin.id
        if request.seed is None:  # a concrete seed now, so the page can branch from the run
            request = request.with_seed(secrets.randbelow(2**63))
        rgb = decode(image, "image")
        painted_rgb = decode(painted, "mask")
        keep = load_mask(
            Image.fromarray(painted_rgb),
            mode="fill",
            size=(rgb.shape[1], rgb.shape[0]),
            name="mask",
        )
        if keep.all() and request.extend is None:
            raise RepaintError("the mask is empty: paint the area to fill first, or extend")
        job_id = uuid.uuid4().hex[:12]
        job = WebJob(job_id, rgb, keep, name, request, name=seed_name or job_id, parent=parent)
        job.total = request.jump_schedule.reverse_steps
        return job

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return STATIC.joinpath("index.html").read_text()

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        """The page's own files, by name from a fixed list: no paths, nothing else."""
        if name not in ASSETS:
            raise HTTPException(404, "no such file")
        body = STATIC.joinpath(name).read_bytes()
        return Response(body, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})

    @app.get("/api/config")
    def config() -> dict[str, Any]:
        return {
            "models": offered,
            "model": model,
            "presets": {
                name: {**preset.schedule.params(), "evaluations": preset.reverse_steps}
                for name, preset in PRESETS.items()
            },
            "preset": default_preset,
            "samplers": SAMPLER_CHOICES,
            "prompted": [name for name in offered if takes_a_prompt(name)],
            "max_upload_mb": max_upload_mb,
            "max_samples": MAX_SAMPLES,
            "max_evaluations": max_evaluations,
        }

    @app.post("/api/evaluations")
    def evaluations(params: dict[str, Any]) -> dict[str, int]:
        params = dict(params)
        sampler = params.pop("sampler", "repaint")
        schedule = JumpSchedule.from_params(params)
        reverse_steps = schedule.counts(limit=max_evaluations)[0]
        if sampler == "repaint":
            return {"evaluations": reverse_steps}
        request = InpaintRequest(schedule=schedule, sampler=sampler)
        return {"evaluations": request_costs(request)[1]}

    @app.post("/api/estimate")
    def estimate(options: dict[str, Any]) -> dict[str, Any]:
        """Model evaluations per window and the time they take on this server's device, from
        one timed network call of the model (loaded if need be); `confirm` says the page
        should ask before running something this long."""
        name, request, _ = parse_options(json.dumps(options), offered, model)
        evaluations = cost(request)
        runner.model(name).check(request)  # what this model cannot do, said before running
        seconds_each = runner.seconds_per_evaluation(name)
        seconds = None if seconds_each is None else evaluations * seconds_each
        return {
            "evaluations": evaluations,
            "seconds": seconds,
            "confirm": seconds is not None and seconds > confirm_s,
            "device": runner.device_of(name),
        }

    @app.post("/api/jobs")
    async def submit(
        image: Annotated[UploadFile, File()],
        mask: Annotated[UploadFile, File()],
        options: Annotated[str, Form()] = "{}",
    ) -> dict[str, Any]:
        image_bytes = await image.read(limit + 1)
        mask_bytes = await mask.read(limit + 1)
        job = await run_in_threadpool(prepare, options, image_bytes, mask_bytes)
        try:
            position = runner.submit(job)
        except QueueFull as error:
            raise HTTPException(503, str(error)) from None
        return {"id": job.id, "position": position}

    @app.get("/api/jobs/{job_id}")
    def status(job_id: str) -> dict[str, Any]:
        job = find(job_id)
        return job.status(runner.position(job))

    @app.post("/api/jobs/{job_id}/cancel")
    def cancel(job_id: str) -> dict[str, Any]:
        job = find(job_id)
        job.cancel.set()
        return job.status(runner.position(job))

    @app.get("/api/jobs/{job_id}/preview.png")
    def preview(job_id: str, kind: str = "x0") -> Response:
        job = find(job_id)
        body = job.preview_x if kind == "x_t" else job.preview
        if body is None:
            raise HTTPException(404, "no preview yet")
        return Response(body, media_type="image/png", headers={"Cache-Control": "no-store"})

    @app.get("/api/jobs/{job_id}/frames/{index}.png")
    def recorded_frame(job_id: str, index: int, kind: str = "x0") -> Response:
        job = find(job_id)
        if not 0 <= index < len(job.frames):
            raise HTTPException(404, "no such frame")
        _, _, x, x0 = job.frames[index]
        return Response(x if kind == "x_t" else x0, media_type="image/png")

    @app.get("/api/jobs/{job_id}/results/{sample}.{extension}")
    def result(job_id: str, sample: int, extension: str) -> Response:
        job = find(job_id)
        if not 0 <= sample < len(job.results) or extension not in ("png", "json"):
            raise HTTPException(404, "no such result")
        png, sidecar = job.results[sample]
        body, media = (
            (png, "image/png")
            if extension == "png"
            else (json.dumps(sidecar, indent=2), "application/json")
        )
        filename = download_name(job.id, sample, extension)
        return Response(
            body,
            media_type=media,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )

    return app
