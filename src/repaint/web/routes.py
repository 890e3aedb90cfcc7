"""The web app's routes: the page and its files, and the JSON API. Each route is a thin call
into the one `Service` (a FastAPI dependency); errors are typed and the app maps them to
HTTP statuses."""

from __future__ import annotations

import json
from importlib import resources
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response

from repaint.errors import NotFound
from repaint.web.runner import download_name
from repaint.web.service import Service

STATIC = resources.files("repaint.web").joinpath("static")
ASSETS = {  # everything the page loads: served by the package, no other host
    "style.css": "text/css",
    "app.js": "text/javascript",
    "editor.js": "text/javascript",
    "runs.js": "text/javascript",
    "favicon.svg": "image/svg+xml",
}

router = APIRouter()


def service_of(request: Request) -> Service:
    return request.app.state.service


Served = Annotated[Service, Depends(service_of)]


@router.get("/", response_class=HTMLResponse)
def index() -> str:
    return STATIC.joinpath("index.html").read_text()


@router.get("/static/{name}")
def static(name: str) -> Response:
    """The page's own files, by name from a fixed list: no paths, nothing else."""
    if name not in ASSETS:
        raise NotFound("no such file")
    body = STATIC.joinpath(name).read_bytes()
    return Response(body, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})


@router.get("/api/config")
def config(service: Served) -> dict[str, Any]:
    return service.config()


@router.post("/api/evaluations")
def evaluations(params: dict[str, Any], service: Served) -> dict[str, int]:
    return service.evaluations(params)


@router.post("/api/estimate")
def estimate(options: dict[str, Any], service: Served) -> dict[str, Any]:
    return service.estimate(options)


@router.post("/api/jobs")
async def submit(
    service: Served,
    image: Annotated[UploadFile, File()],
    mask: Annotated[UploadFile, File()],
    options: Annotated[str, Form()] = "{}",
) -> dict[str, Any]:
    image_bytes = await image.read(service.limit + 1)
    mask_bytes = await mask.read(service.limit + 1)
    job = await run_in_threadpool(service.prepare, options, image_bytes, mask_bytes)
    return service.submit(job)


@router.get("/api/jobs/{job_id}")
def status(job_id: str, service: Served) -> dict[str, Any]:
    job = service.find(job_id)
    return job.status(service.runner.position(job))


@router.post("/api/jobs/{job_id}/cancel")
def cancel(job_id: str, service: Served) -> dict[str, Any]:
    job = service.find(job_id)
    job.cancel.set()
    return job.status(service.runner.position(job))


@router.get("/api/jobs/{job_id}/preview.png")
def preview(job_id: str, service: Served, kind: str = "x0") -> Response:
    job = service.find(job_id)
    body = job.preview_x if kind == "x_t" else job.preview
    if body is None:
        raise NotFound("no preview yet")
    return Response(body, media_type="image/png", headers={"Cache-Control": "no-store"})


@router.get("/api/jobs/{job_id}/frames/{index}.png")
def recorded_frame(job_id: str, index: int, service: Served, kind: str = "x0") -> Response:
    job = service.find(job_id)
    if not 0 <= index < len(job.frames):
        raise NotFound("no such frame")
    _, _, x, x0 = job.frames[index]
    return Response(x if kind == "x_t" else x0, media_type="image/png")


@router.get("/api/jobs/{job_id}/results/{sample}.{extension}")
def result(job_id: str, sample: int, extension: str, service: Served) -> Response:
    job = service.find(job_id)
    if not 0 <= sample < len(job.results) or extension not in ("png", "json"):
        raise NotFound("no such result")
    png, sidecar = job.results[sample]
    if extension == "png":
        body, media = png, "image/png"
    else:
        body, media = json.dumps(sidecar, indent=2), "application/json"
    filename = download_name(job.id, sample, extension)
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(body, media_type=media, headers=disposition)
