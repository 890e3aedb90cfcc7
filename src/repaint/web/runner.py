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
from repaint.inpainter import Progress
from repaint.io import to_uint8
from repaint.request import InpaintRequest
from repaint.sidecar import make_sidecar, model_source

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
    request: InpaintRequest
    state: str = "queued"  # queued, running, done, cancelled, failed
    step: int = 0
    total: int = 0
    started: float = 0.0
    finished: float = 0.0
    error: str | None = None
    preview: bytes | None = None
    results: list[tuple[bytes, dict[str, Any]]] = field(default_factory=list)
    cancel: threading.Event = field(default_factory=threading.Event)
    last_preview: float = 0.0

    @property
    def bytes(self) -> int:
        held = sum(len(png) for png, _ in self.results) + len(self.preview or b"")
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
        self.models: dict[str, Any] = {}
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
                job.preview = png(to_uint8(event.step.pred_x0[0]))

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
            job.results.append((png(np.asarray(image)), sidecar))


def give_back_memory() -> None:
    """Return freed heap pages to the system. glibc keeps what large decodes freed in its
    arenas (each worker thread has its own), so without this the resident size stays at its
    peak after every upload is gone; elsewhere this does nothing."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def download_name(job_id: str, sample: int, extension: str) -> str:
    return f"repaint_{job_id}_{sample}.{extension}"


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()
