"""`repaint serve`: a small web app to paint a mask, run RePaint (or any sampler) and watch
it, one run at a time per device.

FastAPI serves one static page (`static/index.html`) and a JSON API (`repaint.web.routes`)
over one `Service` (`repaint.web.service`: models, queue, estimates). The form's options are
checked by a schema generated from the request's field table and then by `InpaintRequest`,
so every bad field is a 400 naming `options.<field>`; uploads are limited while they are read
(`repaint.web.limits`), decoded with Pillow off the event loop, and never saved under a name
from the browser: results stay in memory (see `repaint.web.runner`, which also evicts them)
and are offered as `repaint_<job>_<sample>.png` with their sidecar JSON. Errors are typed;
their type, never their text, decides the HTTP status.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from repaint.errors import Busy, FieldError, Gone, NotFound, RepaintError, TooLarge
from repaint.presets import DEFAULT_PRESET
from repaint.web.form import one_line, web_name
from repaint.web.limits import LimitBody
from repaint.web.routes import router
from repaint.web.service import Service

FORM_OVERHEAD = 64 * 2**10  # multipart headers and the options field, besides two files
STATUS = {TooLarge: 413, NotFound: 404, Gone: 410, Busy: 503}  # any other RepaintError: 400


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
    load: Callable[..., Any] | None = None,
    confirm_s: float = 180.0,
) -> FastAPI:
    """The FastAPI app. `models` are the names offered (default: the locally available
    registered models plus `model`); `load(name, dtype=, compile=, channels_last=)` builds an
    inpainter. A request may cost at most `max_evaluations` model evaluations (schedule x
    samples, per window); results are kept `keep_s` seconds and `max_results_mb` in all; at
    most `max_queued` runs wait."""
    service = Service(
        model=model,
        models=models,
        device=device,
        max_upload_mb=max_upload_mb,
        default_preset=default_preset,
        max_evaluations=max_evaluations,
        keep_s=keep_s,
        max_results_mb=max_results_mb,
        max_queued=max_queued,
        load=load,
        confirm_s=confirm_s,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await run_in_threadpool(service.runner.close)  # the worker stops before the process ends

    app = FastAPI(title="repaint", docs_url=None, redoc_url=None, lifespan=lifespan)
    app.add_middleware(LimitBody, limit=2 * service.limit + FORM_OVERHEAD)
    app.state.service, app.state.runner = service, service.runner
    app.add_exception_handler(RepaintError, user_error)
    app.add_exception_handler(RequestValidationError, bad_field)
    app.include_router(router)
    return app


async def user_error(request: Any, error: RepaintError) -> JSONResponse:
    status = next((code for kind, code in STATUS.items() if isinstance(error, kind)), 400)
    message = error.worded(web_name) if isinstance(error, FieldError) else str(error)
    return JSONResponse({"error": message}, status_code=status)


async def bad_field(request: Any, error: RequestValidationError) -> JSONResponse:
    return JSONResponse({"error": one_line(error, "request")}, status_code=400)
