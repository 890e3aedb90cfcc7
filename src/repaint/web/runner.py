"""The web app's jobs: one worker thread runs them in order, and nothing is kept forever.

A job holds its decoded upload only until it has run; its results (PNG bytes and sidecars)
stay until they are older than `keep_s` or until all kept results together pass
`max_bytes`, oldest first. An evicted job's id is remembered (a bounded record) so that
asking for it says "evicted" (HTTP 410) instead of "never existed". The queue is bounded
too: a full queue refuses new work instead of holding every upload.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import io
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from repaint.errors import RepaintError
from repaint.request import InpaintRequest
from repaint.results import Progress
from repaint.sidecar import model_source, sample_outputs

PREVIEW_EVERY_S = 0.5
FINISHED = ("done", "cancelled", "failed")
REMEMBERED = 10_000  # ids of evicted jobs kept to answer 410


class Cancelled(Exception):
    """Raised from the sampler's callback to stop a run."""


class QueueFull(Exception):
    """More jobs are waiting than the server accepts."""


@dataclass
class WebJob:
    id: str
    image: np.ndarray | None  # uint8 (H, W, 3); dropped once the job has run
    keep: np.ndarray | None  # bool (H, W), True = known
    model: str
    request: InpaintRequest  # with a concrete seed
    name: str = ""  # what seeds derive from: the job's id, or the job it branches from
    parent: str | None = None  # the job this one branches from or was made from
    state: str = "queued"  # queued, running, done, cancelled, failed
    step: int = 0
    total: int = 0
    started: float = 0.0
    finished: float = 0.0
    error: str | None = None
    preview: bytes | None = None  # the predicted image, live
    preview_x: bytes | None = None  # x_t, live
    frames: list[tuple[int, int, bytes, bytes]] = field(default_factory=list)
    """(reverse step, level reached, x_t PNG, predicted x0 PNG) of sample 0, every few steps"""
    results: list[tuple[bytes, dict[str, Any]]] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    last_preview: float = 0.0

    @property
    def bytes(self) -> int:
        held = sum(len(png) for png, _ in self.results) + len(self.preview or b"")
        held += len(self.preview_x or b"") + sum(len(x) + len(x0) for _, _, x, x0 in self.frames)
        for array in (self.image, self.keep):
            held += 0 if array is None else array.nbytes
        return held

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
            "seed": self.request.seed,
            "parent": self.parent,
            "branch_at": self.request.branch_at,
            "frames": [{"step": step, "level": level} for step, level, _, _ in self.frames],
        }


class Runner:
    """Runs jobs one at a time on one device, in the order they came."""

    def __init__(
        self,
        load: Callable[[str], Any],
        *,
        keep_s: float = 3600.0,
        max_bytes: int = 512 * 2**20,
        max_queued: int = 16,
    ) -> None:
        self.load = load
        self.keep_s, self.max_bytes, self.max_queued = keep_s, max_bytes, max_queued
        self.jobs: OrderedDict[str, WebJob] = OrderedDict()  # in submission order
        self.evicted: OrderedDict[str, None] = OrderedDict()
        self.waiting: list[str] = []
        self.queue: queue.Queue[str | None] = queue.Queue()  # None: stop
        self.lock = threading.Lock()
        self.models: dict[tuple[str, str, bool, bool], Any] = {}
        self.timings: dict[tuple[str, str, bool, bool], float | None] = {}
        self.loading = threading.Lock()
        self.thread = threading.Thread(target=self._work, daemon=True, name="repaint-runner")
        self.thread.start()

    def close(self, timeout: float = 60.0) -> None:
        """Cancel every job and stop the worker (within a step), so no thread is left inside
        the network when the process exits."""
        with self.lock:
            for job in self.jobs.values():
                job.cancel.set()
        self.queue.put(None)
        self.thread.join(timeout)

    def submit(self, job: WebJob) -> int:
        self.collect()
        with self.lock:
            if len(self.waiting) >= self.max_queued:
                raise QueueFull(f"{len(self.waiting)} runs are waiting; try again later")
            self.jobs[job.id] = job
            self.waiting.append(job.id)
            position = len(self.waiting)
        self.queue.put(job.id)
        return position

    def find(self, job_id: str) -> WebJob | None:
        """The job, or None; `was_evicted` tells the two kinds of None apart."""
        self.collect()
        with self.lock:
            return self.jobs.get(job_id)

    def was_evicted(self, job_id: str) -> bool:
        with self.lock:
            return job_id in self.evicted

    def position(self, job: WebJob) -> int | None:
        with self.lock:
            return self.waiting.index(job.id) + 1 if job.id in self.waiting else None

    def held_bytes(self) -> int:
        with self.lock:
            return sum(job.bytes for job in self.jobs.values())

    def collect(self, now: float | None = None) -> None:
        """Evict finished jobs past their age, then the oldest until under the byte budget."""
        now = time.monotonic() if now is None else now
        evicted = False
        with self.lock:
            finished = [job for job in self.jobs.values() if job.state in FINISHED]
            total = sum(job.bytes for job in self.jobs.values())
            for job in finished:  # oldest first
                if now - job.finished > self.keep_s or total > self.max_bytes:
                    total -= job.bytes
                    self._evict(job.id)
                    evicted = True
        if evicted:
            give_back_memory()

    def _evict(self, job_id: str) -> None:
        del self.jobs[job_id]
        self.evicted[job_id] = None
        while len(self.evicted) > REMEMBERED:
            self.evicted.popitem(last=False)

    def _work(self) -> None:
        while (job_id := self.queue.get()) is not None:
            job = self.jobs[job_id]
            with self.lock:
                self.waiting.remove(job.id)
            if job.cancel.is_set():
                self._finish(job, "cancelled")
                continue
            job.state, job.started = "running", time.monotonic()
            try:
                self._run(job)
                self._finish(job, "done")
            except Cancelled:
                self._finish(job, "cancelled")
            except RepaintError as error:
                self._finish(job, "failed", str(error))
            except Exception as error:  # keep serving; the page shows what happened
                self._finish(job, "failed", f"{type(error).__name__}: {error}")

    def _finish(self, job: WebJob, state: str, error: str | None = None) -> None:
        job.image = job.keep = None  # the upload is not needed any more
        job.error, job.finished, job.state = error, time.monotonic(), state
        self.collect()

    def seconds_per_evaluation(self, name: str, request: InpaintRequest) -> float | None:
        """One timed network call of model `name` on this server's device (cached), for the
        page's estimate; None where the model cannot say before it sees the image."""
        key = (name, *loading(request))
        with self.lock:
            known = self.timings.get(key, ...)
        if known is not ...:
            return known
        seconds = self.model(name, request).time_evaluation()
        with self.lock:
            self.timings[key] = seconds
        return seconds

    def model(self, name: str, request: InpaintRequest | None = None):
        """Model `name` loaded as `request` asks (precision, compile, layout), once."""
        key = (name, *loading(request))
        with self.loading:  # the worker and an estimate may ask for the same model at once
            if key not in self.models:
                dtype, compile, channels_last = key[1:]
                self.models[key] = self.load(
                    name, dtype=dtype, compile=compile, channels_last=channels_last
                )
            return self.models[key]

    def _run(self, job: WebJob) -> None:
        inpainter = self.model(job.model, job.request)

        def on_step(event: Progress) -> None:
            if job.cancel.is_set():
                raise Cancelled
            step = event.step
            job.total = step.total * event.batches
            job.step = event.batch * step.total + step.index + 1
            if event.frame is not None and event.batch == 0:
                x, x0 = png(event.frame.x), png(event.frame.x0)
                job.frames.append((step.index + 1, step.t - 1, x, x0))
            now = time.monotonic()
            if event.pixels and (
                now - job.last_preview >= PREVIEW_EVERY_S or job.step == job.total
            ):
                job.last_preview = now
                preview = event.pixels()
                job.preview, job.preview_x = png(preview.x0), png(preview.x)

        name = job.name or job.id
        result = inpainter(
            job.image, job.keep, job.request, name=name, callback=on_step, record=True
        )
        for _, image, sidecar in sample_outputs(
            result,
            model_source(inpainter, job.model),
            name=job.id,
            filename=lambda sample: download_name(job.id, sample, "png"),
            inputs={"input": "upload", "mask": "painted in the browser"},
            device=str(inpainter.device),
        ):
            job.results.append((png(image), sidecar))


def give_back_memory() -> None:
    """Return freed heap pages to the system. glibc keeps what large decodes freed in its
    arenas (each worker thread has its own), so without this the resident size stays at its
    peak after every upload is gone; elsewhere this does nothing."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def loading(request: InpaintRequest | None) -> tuple[str, bool, bool]:
    """The request fields a model is loaded with."""
    if request is None:
        return ("fp32", False, False)
    return (request.dtype, request.compile, request.channels_last)


def download_name(job_id: str, sample: int, extension: str) -> str:
    return f"repaint_{job_id}_{sample}.{extension}"


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
