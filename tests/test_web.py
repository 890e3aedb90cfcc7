"""The web app's API (`repaint serve`) through FastAPI's test client, on the digits model."""

from __future__ import annotations

import io
import json
import tempfile
import time

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi")
pytest.importorskip("multipart")
from fastapi.testclient import TestClient

from repaint.web.app import create_app

SHORT = {"t_T": 8, "jump_length": 3, "jump_n_sample": 2}  # 14 evaluations


@pytest.fixture(scope="module")
def client():
    with TestClient(
        create_app(model="digits", models=["digits"], device="cpu", max_upload_mb=0.05)
    ) as c:
        yield c


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def inputs():
    image = np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8)
    painted = np.zeros((32, 32), dtype=np.uint8)
    painted[10:20, 5:25] = 255  # white = fill, as the page sends it
    return image, painted


def submit(client, image, painted, filename="photo.png", **options):
    options = {"model": "digits", "preset": "fast", "schedule": SHORT, "seed": 1, **options}
    return client.post(
        "/api/jobs",
        files={
            "image": (filename, png(image), "image/png"),
            "mask": ("mask.png", png(painted), "image/png"),
        },
        data={"options": json.dumps(options)},
    )


def wait(client, job_id, states=("done", "cancelled", "failed"), timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.get(f"/api/jobs/{job_id}").json()
        if status["state"] in states:
            return status
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} still {status}")


def test_page_and_config(client):
    assert "<canvas" in client.get("/").text
    config = client.get("/api/config").json()
    assert config["models"] == ["digits"] and config["presets"]["paper"]["evaluations"] == 2410
    cost = client.post("/api/evaluations", json=SHORT).json()
    assert cost == {"evaluations": 14, "shared": 0, "total": 14}
    assert "t_T" in client.post("/api/evaluations", json={"t_T": 0}).json()["error"]


def test_run_changes_only_the_painted_area(client):
    image, painted = inputs()
    job = submit(client, image, painted, num_samples=2).json()
    status = wait(client, job["id"])
    assert status["state"] == "done" and status["step"] == status["total"] == 14
    assert client.get(f"/api/jobs/{job['id']}/preview.png").headers["content-type"] == "image/png"
    for sample in range(2):
        response = client.get(f"/api/jobs/{job['id']}/results/{sample}.png")
        name = f"repaint_{job['id']}_{sample}.png"
        assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
        result = np.asarray(Image.open(io.BytesIO(response.content)))
        fill = painted > 0
        assert (result[~fill] == image[~fill]).all() and (result[fill] != image[fill]).any()
        sidecar = client.get(f"/api/jobs/{job['id']}/results/{sample}.json").json()
        assert sidecar["options"]["seed"] == 1 and sidecar["schedule"]["t_T"] == 8


def test_cancel_stops_the_run_and_the_next_one_runs(client):
    image, painted = inputs()
    long = submit(client, image, painted, schedule=None, preset="paper").json()
    queued = submit(client, image, painted).json()
    assert queued["position"] >= 1
    wait(client, long["id"], states=("running",))
    assert client.get(f"/api/jobs/{queued['id']}").json()["position"] == 1
    client.post(f"/api/jobs/{long['id']}/cancel")
    cancelled = wait(client, long["id"])
    assert cancelled["state"] == "cancelled" and cancelled["step"] < 2410
    assert wait(client, queued["id"])["state"] == "done"


def test_uploads_are_checked_and_names_never_used(client, tmp_path, monkeypatch):
    # The server runs three folders below a root we watch whole, its temporary files there
    # too: a name like ../../evil.png, written relative to either, lands inside the root.
    cwd, scratch = tmp_path / "a" / "b" / "cwd", tmp_path / "a" / "b" / "tmp"
    cwd.mkdir(parents=True)
    scratch.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    for folder in (cwd, scratch):
        assert tmp_path in (folder / "../../evil.png").resolve().parents
    before = sorted(tmp_path.rglob("*"))
    image, painted = inputs()
    big = np.random.default_rng(1).integers(0, 256, (200, 200, 3), dtype=np.uint8)
    too_big = submit(client, big, painted)
    assert too_big.status_code == 413 and "0.05 MB limit" in too_big.json()["error"]
    broken = client.post(
        "/api/jobs",
        files={"image": ("x.png", b"not an image", "image/png"), "mask": ("m.png", png(painted))},
        data={"options": "{}"},
    )
    assert broken.status_code == 400 and "not a decodable image" in broken.json()["error"]
    empty = submit(client, image, np.zeros_like(painted))
    assert empty.status_code == 400 and "mask is empty" in empty.json()["error"]
    other = submit(client, image, painted, model="celeba256")
    assert other.status_code == 400 and "not available" in other.json()["error"]
    job = submit(client, image, painted, filename="../../evil.png").json()
    wait(client, job["id"])
    # nothing written, least of all ../../evil.png, here or in the folders above
    assert before == [tmp_path / path for path in ("a", "a/b", "a/b/cwd", "a/b/tmp")]
    assert sorted(tmp_path.rglob("*")) == before


def test_serve_without_the_extra_names_it(monkeypatch, capsys):
    import sys

    from repaint.cli import main

    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve", "--port", "1"]) == 2
    assert "pip install 'repaint-diffusion[web]'" in capsys.readouterr().err


# ---- the failure contract ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"num_samples": "abc"}, "options.num_samples"),
        ({"num_samples": 0}, "options.num_samples"),
        ({"num_samples": 9}, "options.num_samples"),
        ({"seed": "abc"}, "options.seed"),
        ({"schedule": {"t_T": "x"}}, "options.schedule.t_T"),
        ({"schedule": "abc"}, "options.schedule"),
        ({"speed": 3}, "options.speed"),
        ({"preset": "slow"}, "options.preset"),
        ({"eta": 5}, "options.eta"),
        ({"schedule": {"t_T": 10**9}}, "more than"),
        ({"schedule": {"t_T": 1}}, "options.schedule.t_T"),
    ],
)
def test_bad_form_fields_are_400_naming_the_field(client, options, field):
    image, painted = inputs()
    response = submit(client, image, painted, **options)
    assert response.status_code == 400, response.text
    message = response.json()["error"]
    assert field in message and "\n" not in message


def test_a_huge_schedule_is_refused_at_once_and_the_server_keeps_answering(client):
    import threading

    image, painted = inputs()
    answers = []
    thread = threading.Thread(
        target=lambda: answers.append(submit(client, image, painted, schedule={"t_T": 10**9}))
    )
    thread.start()
    assert client.get("/api/config").status_code == 200  # not blocked meanwhile
    thread.join(timeout=30)
    assert answers and answers[0].status_code == 400
    refused = client.post("/api/evaluations", json={"t_T": 10**9, "jump_length": 10})
    assert refused.status_code == 400 and "more than" in refused.json()["error"]
    odd = client.post("/api/evaluations", json={"t_T": "x"})
    assert odd.status_code == 400 and "t_T" in odd.json()["error"]


def test_the_upload_limit_applies_while_reading(client):
    declared = client.post(
        "/api/jobs",
        content=b"x" * 1000,
        headers={
            "content-type": "multipart/form-data; boundary=b",
            "content-length": str(300 * 2**20),
        },
    )
    assert declared.status_code == 413 and "request limit" in declared.json()["error"]

    head = b'--b\r\nContent-Disposition: form-data; name="image"; filename="x.png"\r\n\r\n'

    def chunks():  # a well-formed part that goes on past the limit, with no declared length
        yield head
        for _ in range(64):
            yield b"y" * 8192

    streamed = client.post(
        "/api/jobs", content=chunks(), headers={"content-type": "multipart/form-data; boundary=b"}
    )
    assert streamed.status_code == 413


def test_a_bomb_upload_is_refused_in_one_line(client):
    _, painted = inputs()
    bomb = bytearray(png(np.zeros((1, 1), dtype=np.uint8)))
    bomb[16:24] = (100_000).to_bytes(4, "big") * 2  # IHDR width and height
    import zlib

    bomb[29:33] = zlib.crc32(bytes(bomb[12:29])).to_bytes(4, "big")
    response = client.post(
        "/api/jobs",
        files={"image": ("b.png", bytes(bomb), "image/png"), "mask": ("m.png", png(painted))},
        data={"options": json.dumps({"schedule": SHORT})},
    )
    assert response.status_code == 413 and "pixels" in response.json()["error"]


def test_finished_jobs_are_evicted_by_age_and_by_bytes_and_say_410():
    image, painted = inputs()
    app = create_app(model="digits", models=["digits"], device="cpu", keep_s=0.2, max_queued=2)
    with TestClient(app) as c:
        job = submit(c, image, painted).json()
        wait(c, job["id"])
        held = app.state.runner.find(job["id"])
        assert held is not None and held.image is None and held.keep is None  # upload freed
        time.sleep(0.3)
        gone = c.get(f"/api/jobs/{job['id']}")
        assert gone.status_code == 410 and "evicted" in gone.json()["error"]
        assert c.get(f"/api/jobs/{job['id']}/results/0.png").status_code == 410
        assert c.get("/api/jobs/nosuchjob").status_code == 404
        assert app.state.runner.held_bytes() == 0
    app = create_app(model="digits", models=["digits"], device="cpu", max_results_mb=0.0001)
    with TestClient(app) as c:  # results of 100 bytes at most: each is evicted once finished
        first = submit(c, image, painted).json()
        deadline = time.monotonic() + 60
        while not app.state.runner.was_evicted(first["id"]) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert c.get(f"/api/jobs/{first['id']}").status_code == 410
        assert app.state.runner.held_bytes() == 0


def test_a_full_queue_and_an_expensive_request_are_refused():
    image, painted = inputs()
    app = create_app(model="digits", models=["digits"], device="cpu", max_queued=1)
    with TestClient(app) as c:
        long = submit(c, image, painted, schedule=None, preset="paper").json()
        wait(c, long["id"], states=("running",))
        assert submit(c, image, painted).status_code == 200
        full = submit(c, image, painted)
        assert full.status_code == 503 and "waiting" in full.json()["error"]
        c.post(f"/api/jobs/{long['id']}/cancel")
    app = create_app(model="digits", models=["digits"], device="cpu", max_evaluations=1000)
    with TestClient(app) as c:
        costly = submit(c, image, painted, schedule=None, preset="paper")
        assert costly.status_code == 400 and "limit of 1,000" in costly.json()["error"]


def test_shutdown_cancels_the_run_and_stops_the_worker():
    """A worker thread left inside the network when the process exits aborts it."""
    image, painted = inputs()
    app = create_app(model="digits", models=["digits"], device="cpu")
    with TestClient(app) as c:
        long = submit(c, image, painted, schedule=None, preset="paper").json()
        wait(c, long["id"], states=("running",))
    runner = app.state.runner
    assert not runner.thread.is_alive() and runner.jobs[long["id"]].state == "cancelled"


def test_extend_a_texture_with_a_model_from_the_page_list(client):
    """The page's model list offers `digits`; extending a 32 px tile to 96x64 with it
    keeps the tile bit for bit, and the sidecar records the extension."""
    model = client.get("/api/config").json()["models"][0]
    image, _ = inputs()
    nothing_painted = np.zeros((32, 32), dtype=np.uint8)
    job = submit(client, image, nothing_painted, model=model, extend=[32, 16, 32, 16]).json()
    status = wait(client, job["id"])
    assert status["state"] == "done" and status["step"] == status["total"]
    result = np.asarray(
        Image.open(io.BytesIO(client.get(f"/api/jobs/{job['id']}/results/0.png").content))
    )
    assert result.shape == (64, 96, 3) and np.array_equal(result[16:48, 32:64], image)
    sidecar = client.get(f"/api/jobs/{job['id']}/results/0.json").json()
    assert sidecar["options"]["extend"] == [32, 16, 32, 16] and sidecar["fit"] == "extend"
    refused = submit(client, image, nothing_painted, extend=[1, 2]).json()
    assert "options.extend: expected LEFT,TOP,RIGHT,BOTTOM" in refused["error"]
    assert "paint the area" in submit(client, image, nothing_painted).json()["error"]


def test_the_model_list_offers_cached_hub_models_and_knows_which_take_a_prompt(
    tmp_path, monkeypatch
):
    """Diffusers models in the Hugging Face cache are offered; a Stable-Diffusion-shaped
    one gets the page's prompt fields, a pixel DDPM and the registry models do not."""
    pytest.importorskip("huggingface_hub")
    import repaint.web.service as web_service
    from repaint.checkpoints.hub import cached_models, takes_a_prompt

    cache = tmp_path / "hub"
    layouts = {
        "org/sd-tiny": {
            "model_index.json": "{}",
            "unet/config.json": '{"_class_name": "UNet2DConditionModel"}',
            "vae/config.json": "{}",
        },
        "org/ddpm-tiny": {"config.json": '{"_class_name": "UNet2DModel"}'},
        "org/not-a-diffuser": {"README.md": "hello"},
    }
    for repo, files in layouts.items():
        folder = cache / f"models--{repo.replace('/', '--')}"
        (folder / "refs").mkdir(parents=True)
        (folder / "refs" / "main").write_text("abc")
        for name, text in files.items():
            path = folder / "snapshots" / "abc" / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    assert cached_models(cache) == ["hf:org/ddpm-tiny", "hf:org/sd-tiny"]
    assert takes_a_prompt("hf:org/sd-tiny", cache)
    assert not takes_a_prompt("hf:org/ddpm-tiny", cache) and not takes_a_prompt("digits", cache)
    assert not takes_a_prompt("hf:org/not-cached", cache)
    monkeypatch.setattr(web_service, "cached_models", lambda: cached_models(cache))
    monkeypatch.setattr(web_service, "takes_a_prompt", lambda name: takes_a_prompt(name, cache))
    with TestClient(create_app(model="digits", device="cpu")) as c:
        config = c.get("/api/config").json()
    assert {"digits", "hf:org/ddpm-tiny", "hf:org/sd-tiny"} <= set(config["models"])
    assert config["prompted"] == ["hf:org/sd-tiny"]


def test_branching_needs_a_parent_that_exists(client):
    """A branch request names the job it branches from; without one, or with one the
    server does not hold, it is refused before any work with the field named."""
    image, painted = inputs()
    no_parent = submit(client, image, painted, branch_at=3, num_samples=2)
    assert no_parent.status_code == 400 and "options.branch_at" in no_parent.json()["error"]
    unknown = submit(client, image, painted, branch_at=3, num_samples=2, parent="nosuchjob")
    assert unknown.status_code == 404
    too_long = submit(client, image, painted, prompt="x" * 2001)
    assert too_long.status_code == 400 and "options.prompt" in too_long.json()["error"]
