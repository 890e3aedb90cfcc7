"""Does `repaint serve` give its memory back? A burst of large uploads, then eviction.

Starts the app in this process (FastAPI's test client, the digits model on the CPU),
measures the resident set size when idle (model loaded, one small job run), submits a burst
of jobs with 5000x5000 PNGs (about 80 KB each, 75 MB each once decoded), waits for them,
lets them age out, and measures again. Prints one JSON line; exits 1 if the memory did not
come back within `--tolerance-mb` of the idle size.

    python benchmarks/web_memory.py --jobs 4
"""

from __future__ import annotations

import argparse
import gc
import io
import json
import sys
import time

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from repaint.web.app import create_app

SHORT = {"t_T": 4, "jump_length": 2, "jump_n_sample": 1}


def rss_mb() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS in /proc/self/status (Linux only)")


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def run_job(client: TestClient, image: bytes, mask: bytes) -> str:
    response = client.post(
        "/api/jobs",
        files={"image": ("i.png", image, "image/png"), "mask": ("m.png", mask, "image/png")},
        data={"options": json.dumps({"schedule": SHORT, "seed": 0})},
    )
    response.raise_for_status()
    return response.json()["id"]


def wait(client: TestClient, job_id: str) -> None:
    while True:
        response = client.get(f"/api/jobs/{job_id}")
        if response.status_code == 410 or response.json()["state"] in ("done", "failed"):
            return
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=4)
    parser.add_argument("--side", type=int, default=5000)
    parser.add_argument("--keep-s", type=float, default=2.0)
    parser.add_argument("--tolerance-mb", type=float, default=50.0)
    args = parser.parse_args(argv)

    big = np.full((args.side, args.side, 3), 200, dtype=np.uint8)
    painted = np.zeros((args.side, args.side), dtype=np.uint8)
    painted[100:120, 100:120] = 255  # one small hole: one window at the model's size
    image_bytes, mask_bytes = png(big), png(painted)
    del big, painted
    small_image = png(np.full((32, 32, 3), 200, dtype=np.uint8))
    small_mask = png(np.pad(np.full((8, 8), 255, dtype=np.uint8), 12))

    app = create_app(
        model="digits", models=["digits"], device="cpu", max_upload_mb=1, keep_s=args.keep_s
    )
    with TestClient(app) as client:
        wait(client, run_job(client, small_image, small_mask))  # model loaded, worker warm
        time.sleep(args.keep_s + 0.5)
        app.state.runner.collect()
        gc.collect()
        idle = rss_mb()
        ids = [run_job(client, image_bytes, mask_bytes) for _ in range(args.jobs)]
        peak = rss_mb()
        for job_id in ids:
            wait(client, job_id)
        peak = max(peak, rss_mb())
        time.sleep(args.keep_s + 0.5)
        app.state.runner.collect()
        gc.collect()
        after = rss_mb()
        held = app.state.runner.held_bytes()
    report = {
        "jobs": args.jobs,
        "upload_kb": round(len(image_bytes) / 1024, 1),
        "decoded_mb_each": round(args.side * args.side * 3 / 2**20, 1),
        "idle_mb": round(idle, 1),
        "peak_mb": round(peak, 1),
        "after_eviction_mb": round(after, 1),
        "held_bytes_after": held,
    }
    print(json.dumps(report))
    return 0 if after - idle <= args.tolerance_mb and held == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
