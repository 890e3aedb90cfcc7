"""The web app end to end in a real browser: Debian's Chromium driven by Playwright against
`repaint serve` on 127.0.0.1 with the embedded digits model and a short schedule.

Run with `make test-e2e`. Screenshots go to $REPAINT_SCREENSHOTS (docs/ in `make
screenshots`), else to the test's temporary folder.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from repaint.datasets import load_digits

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "repaint", "serve", "--port", str(port), "--device", "cpu"],
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(200):
        try:
            urllib.request.urlopen(url + "/api/config", timeout=1)
            break
        except OSError:
            if process.poll() is not None:
                raise RuntimeError(process.stderr.read()) from None
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test-e2e` installs Debian's chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield browser
        browser.close()


@pytest.fixture()
def page(browser, server):
    page = browser.new_page(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    page.goto(server)
    page.wait_for_function("document.querySelector('#model').options.length > 0")
    yield page
    page.close()


@pytest.fixture()
def digit(tmp_path) -> tuple[Path, np.ndarray]:
    images, _ = load_digits("test", 32)
    path = tmp_path / "digit.png"
    Image.fromarray(images[3]).save(path)
    return path, np.asarray(Image.open(path).convert("RGB"))


def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("REPAINT_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def set_schedule(page, t_T: int, jump_length: int, jump_n_sample: int) -> None:
    for key, value in (
        ("t_T", t_T),
        ("jump_length", jump_length),
        ("jump_n_sample", jump_n_sample),
    ):
        page.fill(f"#{key}", str(value))
        page.dispatch_event(f"#{key}", "change")


def paint_stroke(page) -> None:
    box = page.locator("#mask").bounding_box()
    y = box["y"] + box["height"] * 0.5
    page.mouse.move(box["x"] + box["width"] * 0.2, y)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (0.2 + 0.06 * step), y - step * 3)
    page.mouse.up()


def painted_pixels(page) -> np.ndarray:
    """Where the page's mask canvas is painted, as the page will send it."""
    alpha = page.evaluate(
        """() => { const c = document.querySelector('#mask');
        return Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data
        .filter((_, i) => i % 4 === 3)); }"""
    )
    return np.array(alpha, dtype=np.uint8).reshape(32, 32) > 127


def test_paint_run_download(page, digit, tmp_path):
    path, original = digit
    page.set_input_files("#image-file", str(path))
    page.wait_for_function("document.querySelector('#photo').width === 32")
    paint_stroke(page)
    fill = painted_pixels(page)
    assert 20 < fill.sum() < 600
    set_schedule(page, 20, 5, 3)
    page.wait_for_function("document.querySelector('#evaluations').textContent === '50'")
    page.fill("#seed", "3")
    page.screenshot(path=str(shots(tmp_path) / "web_painted.png"))
    page.click("#run")
    page.wait_for_selector("a.download", timeout=120_000)
    page.wait_for_function("document.querySelector('#status').textContent === 'Done.'")
    page.screenshot(path=str(shots(tmp_path) / "web_result.png"))
    with page.expect_download() as download:
        page.click("a.download")
    saved = tmp_path / "result.png"
    download.value.save_as(saved)
    assert download.value.suggested_filename.startswith("repaint_")
    result = np.asarray(Image.open(saved).convert("RGB"))
    assert result.shape == original.shape
    assert (result[~fill] == original[~fill]).all()  # every pixel not painted is identical
    assert (result[fill] != original[fill]).any()  # and the painted area changed


def test_cancel_then_run_again(page, digit, tmp_path):
    path, _ = digit
    page.set_input_files("#image-file", str(path))
    page.wait_for_function("document.querySelector('#photo').width === 32")
    paint_stroke(page)
    page.select_option("#preset", "paper")
    set_schedule(page, 100, 10, 10)  # 910 evaluations: long enough to cancel midway
    page.wait_for_function("document.querySelector('#evaluations').textContent === '910'")
    page.click("#run")
    page.wait_for_function(  # well into the run, with a preview of the predicted image
        """() => { const m = document.querySelector('#status').textContent.match(/^Step (\\d+)/);
        return m && Number(m[1]) > 500 && document.querySelector('#preview').naturalWidth > 0; }""",
        timeout=60_000,
    )
    page.screenshot(path=str(shots(tmp_path) / "web_running.png"))
    page.click("#cancel")
    page.wait_for_function(
        "document.querySelector('#status').textContent === 'Cancelled.'", timeout=10_000
    )
    stopped_at = int(page.evaluate("document.querySelector('#progress').value"))
    assert 500 < stopped_at < 910
    set_schedule(page, 8, 3, 2)
    page.click("#run")
    page.wait_for_function(
        "document.querySelector('#status').textContent === 'Done.'", timeout=120_000
    )
    assert page.locator("a.download").count() >= 1
