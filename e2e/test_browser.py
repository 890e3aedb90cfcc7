"""The web app end to end in a real browser: Debian's Chromium driven by Playwright against
`repaint serve` on 127.0.0.1 with the embedded digits model and short schedules, at a
desktop size (1280x800, mouse) and a phone size (390x844, touch).

Run with `make test-e2e`. Screenshots go to $REPAINT_SCREENSHOTS (docs/screenshots in `make
screenshots`), else to the test's temporary folder.
"""

from __future__ import annotations

import io
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
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
LIMIT = 20_000  # --max-evaluations of the test server
DONE = "document.querySelector('#status').textContent === 'Done.'"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server():
    port = free_port()
    command = [sys.executable, "-m", "repaint", "serve", "--port", str(port), "--device", "cpu"]
    command += ["--max-evaluations", str(LIMIT), "--confirm-seconds", "5"]
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
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


def open_page(browser, server, **context):
    """A page of the app; dialogs are accepted (and kept in `page.dialogs`) unless a test
    says otherwise, and every request must stay on the server."""
    page = browser.new_context(accept_downloads=True, **context).new_page()
    page.dialogs, page.foreign = [], []

    def on_dialog(dialog):
        page.dialogs.append(dialog.message)
        dialog.dismiss() if getattr(page, "dismiss", False) else dialog.accept()

    page.on("dialog", on_dialog)
    page.on(
        "request",
        lambda request: (
            None
            if request.url.startswith((server, "data:", "blob:"))
            else page.foreign.append(request.url)
        ),
    )
    page.goto(server)
    try:
        page.wait_for_function(
            "document.querySelector('#evaluations').textContent !== '-'", timeout=90_000
        )
    except Exception as error:  # say what the page said
        raise AssertionError(f"page not ready: {page.text_content('#error')!r}") from error
    return page


@pytest.fixture()
def page(browser, server):
    page = open_page(browser, server, viewport=DESKTOP)
    yield page
    assert page.foreign == [], page.foreign  # every asset served by the package
    page.context.close()


@pytest.fixture()
def phone(browser, server):
    page = open_page(browser, server, viewport=PHONE, has_touch=True, is_mobile=True)
    yield page
    assert page.foreign == [], page.foreign
    page.context.close()


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


def open_image(page, path: Path) -> None:
    page.set_input_files("#image-file", str(path))
    page.wait_for_function("document.querySelector('#photo').width === 32")


def set_schedule(page, t_T: int, jump_length: int, jump_n_sample: int) -> None:
    for key, value in (
        ("t_T", t_T),
        ("jump_length", jump_length),
        ("jump_n_sample", jump_n_sample),
    ):
        page.fill(f"#{key}", str(value))
        page.dispatch_event(f"#{key}", "change")


def stroke(page, y: float = 0.5, start: float = 0.2) -> None:
    """A mouse stroke across the image (fractions of the shown image)."""
    page.locator("#viewport").scroll_into_view_if_needed()
    box = page.locator("#mask").bounding_box()
    row = box["y"] + box["height"] * y
    page.mouse.move(box["x"] + box["width"] * start, row)
    page.mouse.down()
    for step in range(1, 11):
        page.mouse.move(box["x"] + box["width"] * (start + 0.05 * step), row - step * 2)
    page.mouse.up()


def touch_stroke(page, y: float = 0.5) -> None:
    """A one-finger drag across the image, as Chromium gets it from a touch screen."""
    page.locator("#viewport").evaluate("el => el.scrollIntoView({ block: 'center' })")
    box = page.locator("#mask").bounding_box()
    cdp = page.context.new_cdp_session(page)
    row = box["y"] + box["height"] * y
    xs = [box["x"] + box["width"] * (0.2 + 0.06 * step) for step in range(11)]
    cdp.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": xs[0], "y": row}]}
    )
    for x in xs[1:]:
        cdp.send(
            "Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": row}]}
        )
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def pinch(page, spread: float) -> None:
    """Two fingers on the image moving apart by `spread` CSS pixels each."""
    page.locator("#viewport").evaluate("el => el.scrollIntoView({ block: 'center' })")
    box = page.locator("#viewport").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    cdp = page.context.new_cdp_session(page)

    def points(d: float) -> list[dict]:
        return [{"x": cx - 20 - d, "y": cy, "id": 0}, {"x": cx + 20 + d, "y": cy, "id": 1}]

    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": points(0)})
    for step in range(1, 9):
        touch = {"type": "touchMove", "touchPoints": points(spread * step / 8)}
        cdp.send("Input.dispatchTouchEvent", touch)
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})


def painted_pixels(page) -> np.ndarray:
    """Where the page's mask canvas is painted, as the page will send it."""
    size, alpha = page.evaluate(
        """() => { const c = document.querySelector('#mask');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return [[c.height, c.width], Array.from(d.filter((_, i) => i % 4 === 3))]; }"""
    )
    return np.array(alpha, dtype=np.uint8).reshape(size) > 127


def photo_pixels(page) -> np.ndarray:
    size, rgb = page.evaluate(
        """() => { const c = document.querySelector('#photo');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        return [[c.height, c.width], Array.from(d.filter((_, i) => i % 4 !== 3))]; }"""
    )
    return np.array(rgb, dtype=np.uint8).reshape(*size, 3)


def results(page) -> list[np.ndarray]:
    """Every result image in the gallery, newest first, fetched as the page links them."""
    urls = page.eval_on_selector_all(".card a.download", "links => links.map(a => a.href)")
    return [
        np.asarray(Image.open(io.BytesIO(page.request.get(url).body())).convert("RGB"))
        for url in urls
    ]


def run_and_wait(page) -> None:
    page.click("#run")
    page.wait_for_function(DONE, timeout=120_000)


def test_paint_run_compare_download(page, digit, tmp_path):
    path, original = digit
    open_image(page, path)
    assert page.locator("#photo").bounding_box()["width"] > 300  # fitted to the window
    stroke(page)
    fill = painted_pixels(page)
    assert 20 < fill.sum() < 600
    set_schedule(page, 20, 5, 3)
    page.wait_for_function("document.querySelector('#evaluations').textContent === '50'")
    assert "on cpu" in page.text_content("#estimate")
    page.fill("#seed", "3")
    page.screenshot(path=str(shots(tmp_path) / "web_painted.png"))
    run_and_wait(page)
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
    after = page.locator(".card .after").first
    page.locator(".card .split").first.fill("100")
    assert "100%" in after.evaluate("img => img.style.clipPath")
    box = page.locator(".card .compare").first.bounding_box()
    page.mouse.move(box["x"] + 5, box["y"] + 5)
    page.mouse.down()  # press and hold: the input
    assert after.evaluate("img => getComputedStyle(img).visibility") == "hidden"
    page.mouse.up()
    assert after.evaluate("img => getComputedStyle(img).visibility") == "visible"


def test_undo_redo_and_zoom(page, digit):
    path, _ = digit
    open_image(page, path)
    stroke(page, y=0.3)
    first = painted_pixels(page)
    stroke(page, y=0.7)
    both = painted_pixels(page)
    assert first.sum() > 0 and both.sum() > first.sum()
    page.locator("#viewport").focus()
    page.keyboard.press("Control+z")
    assert np.array_equal(painted_pixels(page), first)
    page.keyboard.press("Control+Shift+z")
    assert np.array_equal(painted_pixels(page), both)
    page.click("#undo")
    page.click("#undo")
    assert painted_pixels(page).sum() == 0 and page.is_disabled("#undo")
    page.click("#redo")
    assert np.array_equal(painted_pixels(page), first)
    page.click("#invert")
    assert np.array_equal(painted_pixels(page), ~first)
    fitted = page.locator("#mask").bounding_box()["width"]
    page.click("#zoom-in")
    assert page.locator("#mask").bounding_box()["width"] > fitted * 1.2
    page.click("#actual")
    assert abs(page.locator("#mask").bounding_box()["width"] - 32) < 1
    assert page.text_content("#zoom") == "100%"
    box = page.locator("#viewport").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)  # wheel: zoom in at the pointer
    assert page.locator("#mask").bounding_box()["width"] > 40
    page.keyboard.press("f")
    assert abs(page.locator("#mask").bounding_box()["width"] - fitted) < 1


def test_cancel_then_run_again(page, digit, tmp_path):
    path, _ = digit
    open_image(page, path)
    stroke(page)
    page.select_option("#preset", "paper")
    set_schedule(page, 100, 10, 10)  # 910 evaluations: long enough to cancel midway
    page.wait_for_function("document.querySelector('#evaluations').textContent === '910'")
    page.click("#run")
    page.wait_for_function(  # well into the run, with both live images
        """() => { const m = document.querySelector('#status').textContent.match(/^Step (\\d+)/);
        return m && Number(m[1]) > 500 && document.querySelector('#preview').naturalWidth > 0
          && document.querySelector('#preview-x').naturalWidth > 0; }""",
        timeout=60_000,
    )
    assert page.dialogs and "Run it?" in page.dialogs[0]  # over --confirm-seconds 5: asked
    page.screenshot(path=str(shots(tmp_path) / "web_running.png"))
    page.click("#cancel")
    page.wait_for_function(
        "document.querySelector('#status').textContent === 'Cancelled.'", timeout=10_000
    )
    stopped_at = int(page.evaluate("document.querySelector('#progress').value"))
    assert 500 < stopped_at < 910
    set_schedule(page, 8, 3, 2)
    run_and_wait(page)
    assert page.locator("a.download").count() >= 1


def test_a_long_run_asks_first_and_one_over_the_limit_is_refused(page, digit):
    path, _ = digit
    open_image(page, path)
    stroke(page)
    set_schedule(page, 100, 10, 10)
    page.wait_for_function("document.querySelector('#evaluations').textContent === '910'")
    page.dismiss = True
    with page.expect_event("dialog"):  # asked once the estimate is back, however slow
        page.click("#run")
    page.wait_for_timeout(500)  # time for a run that must not start
    assert len(page.dialogs) == 1 and page.text_content("#status").startswith("Image")  # not run
    set_schedule(page, 300, 10, 10)
    page.fill("#samples", "8")  # 8 x 2,890 = 23,120 > 20,000
    page.dispatch_event("#samples", "change")
    page.wait_for_function("document.querySelector('#error').textContent.includes('limit')")
    assert f"limit of {LIMIT:,}" in page.text_content("#error")


# Holds back the server's answer to every cost request for one sample, as a busy server or
# network may, and counts the answers it has let through.
SLOW_ESTIMATES = """
window.heldBack = 0;
const realFetch = window.fetch;
window.fetch = async (url, init) => {
  const response = await realFetch(url, init);
  if (String(url).endsWith("/api/estimate") && JSON.parse(init.body).num_samples === 1) {
    await new Promise((done) => setTimeout(done, 1500));
    window.heldBack += 1;
  }
  return response;
};
"""


def test_a_late_answer_for_older_settings_does_not_hide_the_refusal(page, digit):
    """Answers can arrive out of order: the cost shown is that of the settings last chosen."""
    page.add_init_script(SLOW_ESTIMATES)
    page.reload()
    path, _ = digit
    open_image(page, path)
    page.wait_for_function("window.heldBack >= 1")  # the first estimate, on loading
    set_schedule(page, 300, 10, 10)  # three slow answers for 1 sample: 2,890 evaluations
    page.fill("#samples", "8")  # a fast refusal: 23,120 > 20,000
    page.dispatch_event("#samples", "change")
    page.wait_for_function("window.heldBack >= 4", timeout=10_000)
    assert f"limit of {LIMIT:,}" in page.text_content("#error")
    assert page.text_content("#evaluations") == "-"


def test_branch_three_variations_then_use_a_result_as_input(page, digit, tmp_path):
    path, original = digit
    open_image(page, path)
    stroke(page)
    fill = painted_pixels(page)
    set_schedule(page, 20, 5, 3)
    page.fill("#seed", "5")
    run_and_wait(page)
    frames = int(page.get_attribute("#scrubber", "max")) + 1
    assert frames > 10
    page.locator("#scrubber").fill(str(frames // 3))
    page.dispatch_event("#scrubber", "input")
    level = int(page.text_content("#frame-label").split("level ")[1].split(":")[0])
    page.fill("#branches", "3")
    page.click("#branch")
    page.wait_for_function(
        "document.querySelectorAll('#gallery .group')[0]?.querySelectorAll('.card').length === 3"
        " && document.querySelector('#status').textContent === 'Done.'",
        timeout=120_000,
    )
    group = page.locator("#gallery .group").first
    assert f"at level {level}" in group.get_attribute("aria-label")
    page.screenshot(path=str(shots(tmp_path) / "web_branches.png"), full_page=True)
    outputs = results(page)
    assert len(outputs) == 4
    assert len({out.tobytes() for out in outputs[:3]}) == 3  # three different variations
    for out in outputs:
        assert (out[~fill] == original[~fill]).all()
    page.locator(".card .use").first.click()
    page.wait_for_function("document.querySelector('#status').textContent.startsWith('Editing')")
    assert np.array_equal(photo_pixels(page), outputs[0])
    stroke(page, y=0.25)
    second = painted_pixels(page)
    run_and_wait(page)
    again = results(page)[0]
    assert (again[~second] == outputs[0][~second]).all()
    assert "from " in page.locator(".card .meta").first.text_content()


def test_a_phone_paints_by_touch_and_runs(phone, digit, tmp_path):
    path, original = digit
    assert phone.evaluate("window.innerWidth") == PHONE["width"]  # the viewport meta tag
    assert phone.locator("#viewport").evaluate("el => getComputedStyle(el).touchAction") == "none"
    open_image(phone, path)
    phone.locator("#viewport").evaluate("el => el.scrollIntoView({ block: 'center' })")
    scrolled = phone.evaluate("window.scrollY")
    touch_stroke(phone)
    fill = painted_pixels(phone)
    assert fill.sum() > 20 and phone.evaluate("window.scrollY") == scrolled  # painted, no scroll
    phone.click("#undo")
    assert painted_pixels(phone).sum() == 0
    phone.click("#redo")
    assert np.array_equal(painted_pixels(phone), fill)
    fitted = phone.locator("#mask").bounding_box()["width"]
    pinch(phone, spread=80)  # two fingers apart: zoom in, nothing painted
    assert phone.locator("#mask").bounding_box()["width"] > fitted * 1.3
    assert np.array_equal(painted_pixels(phone), fill)
    phone.click("#fit")
    set_schedule(phone, 20, 5, 3)
    phone.locator(".workspace").scroll_into_view_if_needed()
    phone.screenshot(path=str(shots(tmp_path) / "web_phone.png"))
    run_and_wait(phone)
    out = results(phone)[0]
    assert (out[~fill] == original[~fill]).all() and (out[fill] != original[fill]).any()
