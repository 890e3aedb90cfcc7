"""`repaint serve`: a small web app to paint a mask, run RePaint and watch it, one run at a
time per device.

FastAPI serves one static page (`static/index.html`) and a JSON API. Uploads are read into
memory, size-limited and decoded with Pillow before anything runs; names sent by the browser
are never used, on disk or elsewhere: results are kept in memory and offered for download as
`repaint_<job>_<sample>.png` with their sidecar JSON. A single worker thread runs the queued
jobs in order; the sampler's per-step callback updates the progress, encodes a preview of the
predicted image every few steps, and stops the run within one step when it is cancelled.
"""

from __future__ import annotations

import io
import json
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Annotated, Any

import numpy as np
from fastapi import FastAPI, File, Form, HTTPException, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from PIL import Image

from repaint.checkpoints import list_models
from repaint.errors import RepaintError
from repaint.inpainter import Progress
from repaint.io import load_rgb, to_uint8
from repaint.loading import load_inpainter
from repaint.masks import load_mask
from repaint.presets import DEFAULT_PRESET, PRESETS
from repaint.request import InpaintRequest
from repaint.schedule import JumpSchedule
from repaint.sidecar import make_sidecar, model_source

MAX_SAMPLES = 8
PREVIEW_EVERY_S = 0.5


class Cancelled(Exception):
    """Raised from the sampler's callback to stop a run."""


@dataclass
class WebJob:
    id: str
    image: np.ndarray  # uint8 (H, W, 3)
    keep: np.ndarray  # bool (H, W), True = known
    model: str
    request: InpaintRequest
    state: str = "queued"  # queued, running, done, cancelled, failed
    step: int = 0
    total: int = 0
    started: float = 0.0
    error: str | None = None
    preview: bytes | None = None
    results: list[tuple[bytes, dict[str, Any]]] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    last_preview: float = 0.0

    def status(self, position: int | None) -> dict[str, Any]:
        elapsed = time.monotonic() - self.started if self.started else 0.0
        eta = elapsed / self.step * (self.total - self.step) if self.step else None
        return {
            "id": self.id,
            "state": self.state,
            "position": position,
            "step": self.step,
            "total": self.total,
            "eta_s": None if eta is None else round(eta, 1),
            "error": self.error,
            "results": len(self.results),
            "has_preview": self.preview is not None,
        }


class Runner:
    """Runs jobs one at a time on one device, in the order they came."""

    def __init__(self, load: Callable[[str], Any]) -> None:
        self.load = load
        self.jobs: dict[str, WebJob] = {}
        self.waiting: list[str] = []
        self.queue: queue.Queue[str] = queue.Queue()
        self.lock = threading.Lock()
        self.models: dict[str, Any] = {}
        threading.Thread(target=self._work, daemon=True, name="repaint-runner").start()

    def submit(self, job: WebJob) -> int:
        with self.lock:
            self.jobs[job.id] = job
            self.waiting.append(job.id)
            position = len(self.waiting)
        self.queue.put(job.id)
        return position

    def position(self, job: WebJob) -> int | None:
        with self.lock:
            return self.waiting.index(job.id) + 1 if job.id in self.waiting else None

    def _work(self) -> None:
        while True:
            job = self.jobs[self.queue.get()]
            with self.lock:
                self.waiting.remove(job.id)
            if job.cancel.is_set():
                job.state = "cancelled"
                continue
            job.state, job.started = "running", time.monotonic()
            try:
                self._run(job)
                job.state = "done"
            except Cancelled:
                job.state = "cancelled"
            except RepaintError as error:
                job.state, job.error = "failed", str(error)
            except Exception as error:  # keep serving; the page shows what happened
                job.state, job.error = "failed", f"{type(error).__name__}: {error}"

    def _model(self, name: str):
        if name not in self.models:
            self.models[name] = self.load(name)
        return self.models[name]

    def _run(self, job: WebJob) -> None:
        inpainter = self._model(job.model)

        def on_step(event: Progress) -> None:
            if job.cancel.is_set():
                raise Cancelled
            job.total = event.step.total * event.batches
            job.step = event.batch * event.step.total + event.step.index + 1
            now = time.monotonic()
            if now - job.last_preview >= PREVIEW_EVERY_S or job.step == job.total:
                job.last_preview = now
                job.preview = _png(to_uint8(event.step.pred_x0[0]))

        result = inpainter(job.image, job.keep, job.request, name=job.id, callback=on_step)
        source = model_source(inpainter, job.model)
        for sample, image in enumerate(result.images):
            sidecar = make_sidecar(
                result,
                source,
                sample=sample,
                name=job.id,
                output=download_name(job.id, sample, "png"),
                inputs={"input": "upload", "mask": "painted in the browser"},
                device=str(inpainter.device),
            )
            job.results.append((_png(np.asarray(image)), sidecar))


def download_name(job_id: str, sample: int, extension: str) -> str:
    return f"repaint_{job_id}_{sample}.{extension}"


def _png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def parse_options(raw: str, models: list[str], default_model: str) -> tuple[str, InpaintRequest]:
    """The form's JSON options -> (model name, request); anything odd is a RepaintError."""
    try:
        data = json.loads(raw or "{}")
    except json.JSONDecodeError:
        raise RepaintError("options: not valid JSON") from None
    if not isinstance(data, dict):
        raise RepaintError("options: expected a JSON object")
    model = str(data.pop("model", None) or default_model)
    if model not in models:
        raise RepaintError(f"model {model!r} is not available here; choose one of {models}")
    seed = data.get("seed")
    if isinstance(seed, str):  # the form's number field
        try:
            data["seed"] = int(seed) if seed.strip() else None
        except ValueError:
            raise RepaintError(f"--seed: expected a whole number, got {seed!r}") from None
    data.setdefault("preset", DEFAULT_PRESET)
    data["mask_mode"] = "keep"  # the painted mask (white = fill) arrives as a keep-mask
    request = InpaintRequest.from_dict(data)
    if request.num_samples > MAX_SAMPLES:
        raise RepaintError(f"--num-samples: choose 1 to {MAX_SAMPLES} in the web app")
    return model, request


def create_app(
    *,
    model: str = "digits",
    models: list[str] | None = None,
    device: str = "auto",
    max_upload_mb: float = 10.0,
    default_preset: str = DEFAULT_PRESET,
    load: Callable[[str], Any] | None = None,
):
    """The FastAPI app. `models` are the names offered (default: the locally available
    registered models plus `model`); `load` builds an inpainter from a name."""
    offered = models or list(
        dict.fromkeys([model, *(row["name"] for row in list_models() if row["downloaded"])])
    )
    runner = Runner(load or (lambda name: load_inpainter(name, device=device)))
    limit = int(max_upload_mb * 2**20)
    app = FastAPI(title="repaint", docs_url=None, redoc_url=None)

    @app.exception_handler(RepaintError)
    async def user_error(request, error: RepaintError):
        return JSONResponse({"error": str(error)}, status_code=400)

    def find(job_id: str) -> WebJob:
        if job_id not in runner.jobs:
            raise HTTPException(404, "no such job")
        return runner.jobs[job_id]

    async def read_upload(upload: UploadFile, what: str) -> np.ndarray:
        data = await upload.read(limit + 1)
        if len(data) > limit:
            raise HTTPException(413, f"the {what} is larger than the {max_upload_mb:g} MB limit")
        if not data:
            raise HTTPException(400, f"the {what} is empty")
        try:
            return load_rgb(Image.open(io.BytesIO(data)), what)
        except (RepaintError, OSError, ValueError, Image.DecompressionBombError):
            raise HTTPException(400, f"the {what} is not a decodable image") from None

    @app.get("/", response_class=HTMLResponse)
    def index() -> str:
        return resources.files("repaint.web").joinpath("static/index.html").read_text()

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
            "max_upload_mb": max_upload_mb,
            "max_samples": MAX_SAMPLES,
        }

    @app.post("/api/evaluations")
    def evaluations(params: dict[str, int]) -> dict[str, int]:
        try:
            return {"evaluations": JumpSchedule.from_params(params).reverse_steps}
        except (TypeError, ValueError) as error:
            raise RepaintError(f"schedule: {error}") from None

    @app.post("/api/jobs")
    async def submit(
        image: Annotated[UploadFile, File()],
        mask: Annotated[UploadFile, File()],
        options: Annotated[str, Form()] = "{}",
    ) -> dict[str, Any]:
        name, run_options = parse_options(options, offered, model)
        rgb = await read_upload(image, "image")
        painted = await read_upload(mask, "mask")
        keep = load_mask(
            Image.fromarray(painted), mode="fill", size=(rgb.shape[1], rgb.shape[0]), name="mask"
        )
        if keep.all():
            raise RepaintError("the mask is empty: paint the area to fill first")
        job = WebJob(uuid.uuid4().hex[:12], rgb, keep, name, run_options)
        job.total = run_options.jump_schedule.reverse_steps
        position = runner.submit(job)
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
    def preview(job_id: str) -> Response:
        job = find(job_id)
        if job.preview is None:
            raise HTTPException(404, "no preview yet")
        return Response(job.preview, media_type="image/png", headers={"Cache-Control": "no-store"})

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
