"""Checkpoint registry, resumable verified downloads (against a local server), and --model
resolution."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from repaint.checkpoints import (
    DIGITS,
    MIRROR_ENV,
    MODELS,
    ModelSpec,
    checkpoint_path,
    download,
    download_url,
    format_model_table,
    is_downloaded,
    list_models,
    repaint_home,
    resolve_model,
    verify,
)
from repaint.errors import RepaintError

PAYLOAD = os.urandom(6000)
PAYLOAD_SHA256 = hashlib.sha256(PAYLOAD).hexdigest()


class Server:
    """What the local file server does; tests change `mode` and read `ranges`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.mode = "range"  # "range" | "ignore-range" | "truncate" | "html"
        self.ranges: list[str | None] = []


def _handler(server: Server) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = 5  # a stuck client cannot hold the server

        def do_GET(self) -> None:
            requested = self.headers.get("Range")
            server.ranges.append(requested)
            if self.path != "/model.pt":
                self.send_error(404)
                return
            start = 0
            match = re.fullmatch(r"bytes=(\d+)-", requested or "")
            if match and server.mode != "ignore-range":
                start = int(match.group(1))
                if start >= len(PAYLOAD):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(PAYLOAD)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header(
                    "Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}"
                )
            else:
                self.send_response(200)
            body = PAYLOAD[start:]
            kind = "text/html" if server.mode == "html" else "application/octet-stream"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if server.mode == "truncate":  # half of it, then drop the connection
                self.wfile.write(body[: len(body) // 2])
                self.close_connection = True
                return
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    state = Server(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = _handler(state)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own REPAINT_HOME and no mirror."""
    monkeypatch.setenv("REPAINT_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    return tmp_path / "home"


def spec_for(server: Server, sha256: str | None = PAYLOAD_SHA256, path: str = "/model.pt"):
    return ModelSpec(
        name="tiny",
        description="test payload",
        filename="tiny.pt",
        url=server.url + path,
        sha256=sha256,
        size_bytes=len(PAYLOAD),
        licence="MIT",
        source="http://example.invalid",
        domain="test bytes",
        photo=False,
        settings={"image_size": 32, "num_channels": 32, "num_res_blocks": 1},
    )


def part_of(path: Path) -> Path:
    return path.with_name(path.name + ".part")


# ------------------------------------------------------------------------------ locations


def test_repaint_home_order(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    assert repaint_home() == tmp_path / "home"
    monkeypatch.delenv("REPAINT_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert repaint_home() == tmp_path / "xdg" / "repaint"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert repaint_home() == tmp_path / "user" / ".cache" / "repaint"


def test_checkpoint_path_under_home(home: Path) -> None:
    assert checkpoint_path(MODELS["celeba256"]) == home / "checkpoints" / "celeba256_250000.pt"
    local = dataclasses.replace(MODELS["celeba256"], url=None, local_path=Path("/pkg/d.pt"))
    assert checkpoint_path(local) == Path("/pkg/d.pt")


# ------------------------------------------------------------------------------ downloads


def test_complete_download(server: Server) -> None:
    path = download(spec_for(server), progress=False)
    assert path.read_bytes() == PAYLOAD
    assert not part_of(path).exists()
    assert not path.with_name("tiny.pt.sha256").exists()  # a published hash needs no record
    assert server.ranges == [None]
    assert download(spec_for(server)) == path  # already there: no second request
    assert len(server.ranges) == 1


def test_interrupted_download_resumes_with_range(server: Server) -> None:
    spec = spec_for(server)
    server.mode = "truncate"
    with pytest.raises(RepaintError, match="run the same command again to resume") as error:
        download(spec, progress=False)
    assert spec.url in str(error.value)
    final = checkpoint_path(spec)
    assert not final.exists()
    assert part_of(final).read_bytes() == PAYLOAD[: len(PAYLOAD) // 2]

    server.mode = "range"
    assert download(spec, progress=False).read_bytes() == PAYLOAD
    assert server.ranges == [None, f"bytes={len(PAYLOAD) // 2}-"]
    assert not part_of(final).exists()


def test_server_ignoring_range_restarts(server: Server) -> None:
    spec = spec_for(server)
    final = checkpoint_path(spec)
    final.parent.mkdir(parents=True)
    part_of(final).write_bytes(b"x" * 1000)  # junk that must not end up in the file
    server.mode = "ignore-range"
    assert download(spec, progress=False).read_bytes() == PAYLOAD
    assert server.ranges == ["bytes=1000-"]


def test_complete_part_answered_416_is_verified(server: Server) -> None:
    spec = spec_for(server)
    final = checkpoint_path(spec)
    final.parent.mkdir(parents=True)
    part_of(final).write_bytes(PAYLOAD)
    assert download(spec, progress=False).read_bytes() == PAYLOAD
    assert server.ranges == [f"bytes={len(PAYLOAD)}-"]


def test_hash_mismatch_leaves_no_file(server: Server) -> None:
    spec = spec_for(server, sha256="0" * 64)
    with pytest.raises(RepaintError, match="SHA-256 mismatch") as error:
        download(spec, progress=False)
    assert f"expected {'0' * 64}, got {PAYLOAD_SHA256}" in str(error.value)
    assert "partial file was removed" in str(error.value)
    final = checkpoint_path(spec)
    assert not final.exists() and not part_of(final).exists()


def test_unpublished_hash_is_recorded_then_checked(server: Server) -> None:
    spec = spec_for(server, sha256=None)
    path = download(spec, progress=False)
    sidecar = path.with_name("tiny.pt.sha256")
    assert sidecar.read_text() == f"{PAYLOAD_SHA256}  tiny.pt\n"
    assert verify(spec) == PAYLOAD_SHA256

    path.write_bytes(PAYLOAD[::-1])  # damaged later: same size, other bytes
    with pytest.raises(RepaintError, match=r"SHA-256 mismatch.*--force"):
        verify(spec)
    assert download(spec, progress=False, force=True).read_bytes() == PAYLOAD
    assert verify(spec) == PAYLOAD_SHA256


def test_unpublished_hash_rejects_wrong_size(server: Server) -> None:
    spec = dataclasses.replace(spec_for(server, sha256=None), size_bytes=100 * len(PAYLOAD))
    with pytest.raises(RepaintError, match="expected about"):
        download(spec, progress=False)
    assert not checkpoint_path(spec).exists() and not part_of(checkpoint_path(spec)).exists()


def test_html_page_is_refused(server: Server) -> None:
    server.mode = "html"
    with pytest.raises(RepaintError, match="web page"):
        download(spec_for(server, sha256=None), progress=False)
    assert not checkpoint_path(spec_for(server)).exists()


def test_http_error_names_url(server: Server) -> None:
    spec = spec_for(server, path="/missing.pt")
    with pytest.raises(RepaintError, match=r"missing\.pt failed \(the server answered HTTP 404"):
        download(spec, progress=False)


def test_network_error_keeps_part(server: Server) -> None:
    spec = spec_for(server)
    final = checkpoint_path(spec)
    final.parent.mkdir(parents=True)
    part_of(final).write_bytes(PAYLOAD[:100])
    closed = dataclasses.replace(spec, url="http://127.0.0.1:1/model.pt")  # nothing listens
    with pytest.raises(RepaintError, match="run the same command again to resume") as error:
        download(closed, progress=False)
    assert "127.0.0.1:1/model.pt" in str(error.value)
    assert part_of(final).read_bytes() == PAYLOAD[:100]
    assert download(spec, progress=False).read_bytes() == PAYLOAD  # and it resumes
    assert server.ranges == ["bytes=100-"]


def test_mirror_env_replaces_url(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = dataclasses.replace(spec_for(server), filename="model.pt", url="http://unreachable/x")
    monkeypatch.setenv(MIRROR_ENV, server.url + "/")
    assert download_url(spec) == server.url + "/model.pt"
    assert download(spec, progress=False).read_bytes() == PAYLOAD


def test_download_fetches_classifier_too(server: Server) -> None:
    classifier = dataclasses.replace(spec_for(server), name="clf", filename="clf.pt")
    spec = dataclasses.replace(spec_for(server), classifier=classifier, classifier_scale=1.0)
    download(spec, progress=False)
    assert checkpoint_path(classifier).read_bytes() == PAYLOAD
    assert is_downloaded(spec)


def test_bundled_model_needs_no_download(tmp_path: Path) -> None:
    bundled = tmp_path / "digits.pt"
    bundled.write_bytes(PAYLOAD)
    spec = dataclasses.replace(MODELS["celeba256"], name="digits", url=None, local_path=bundled)
    assert is_downloaded(spec)
    assert download(spec) == bundled
    assert not bundled.with_name("digits.pt.sha256").exists()  # nothing written beside it


# ------------------------------------------------------------------------------ registry


def test_registry_entries() -> None:
    assert set(MODELS) == {"digits", "celeba256", "places256", "imagenet256"}
    assert MODELS["digits"].url is None and MODELS["digits"].local_path is not None
    inet = MODELS["imagenet256"]
    assert inet.config["class_cond"] is True and inet.classifier_scale == 1.0
    assert inet.classifier is not None
    assert inet.classifier.url.endswith("/jul-2021/256x256_classifier.pt")
    assert MODELS["celeba256"].config["class_cond"] is False
    for name in ("celeba256", "places256", "imagenet256"):
        assert MODELS[name].config["image_size"] == 256
        assert MODELS[name].config["use_fp16"] is False
        assert str(MODELS[name].url).startswith("https://")


def test_registry_domains() -> None:
    assert MODELS["digits"].domain == "32x32 greyscale handwritten digits"
    assert not MODELS["digits"].photo
    assert MODELS["celeba256"].domain == "256x256 face photos (CelebA-HQ)"
    assert MODELS["places256"].domain == "256x256 scene photos (Places2)"
    assert MODELS["imagenet256"].domain == "256x256 ImageNet photos"
    assert all(MODELS[name].photo for name in ("celeba256", "places256", "imagenet256"))


def test_config_file_is_read_on_first_use(tmp_path: Path) -> None:
    assert DIGITS.config["image_size"] == 32 and "trained" not in DIGITS.config
    conf = tmp_path / "tiny.yml"
    spec = dataclasses.replace(MODELS["celeba256"], settings={"dropout": 0.1}, config_file=conf)
    conf.write_text(yaml.safe_dump({**NET, "dropout": 0.0, "trained": {"steps": 1}}))
    assert spec.config == {**NET, "dropout": 0.1}  # the file, less `trained`, under settings
    conf.write_text("image_size: 8\n")
    assert spec.config["image_size"] == 64  # read once
    missing = dataclasses.replace(spec, config_file=tmp_path / "absent.yml")
    with pytest.raises(RepaintError, match=r"absent\.yml: no such config file"):
        missing.config  # noqa: B018


def test_list_models_reports_downloads(home: Path) -> None:
    rows = {row["name"]: row for row in list_models()}
    assert rows["digits"]["downloaded"]  # embedded in the package
    assert not any(row["downloaded"] for name, row in rows.items() if name != "digits")
    assert rows["celeba256"]["size"] == "2.1 GB"
    assert rows["celeba256"]["licence"] == "CC BY-NC-SA 4.0"

    fake = checkpoint_path(MODELS["celeba256"])
    fake.parent.mkdir(parents=True)
    fake.write_bytes(b"weights")
    checkpoint_path(MODELS["imagenet256"]).write_bytes(b"weights")  # classifier still missing
    rows = {row["name"]: row for row in list_models()}
    assert rows["celeba256"]["downloaded"] and rows["celeba256"]["path"] == str(fake)
    assert not rows["imagenet256"]["downloaded"] and not rows["places256"]["downloaded"]

    table = format_model_table(rows.values()).splitlines()
    assert table[0].split() == ["NAME", "SIZE", "DOWNLOADED", "LICENCE", "DESCRIPTION"]
    lines = {line.split()[0]: line for line in table[1:]}
    assert set(lines) == {"digits", "celeba256", "places256", "imagenet256"}
    assert " yes " in lines["celeba256"] and " yes " in lines["digits"]


# ------------------------------------------------------------------------------ --model


def test_registry_name_not_downloaded() -> None:
    with pytest.raises(RepaintError, match=r"run `repaint download celeba256` \(2\.1 GB\)"):
        resolve_model("celeba256")


def test_registry_name_resolves_once_present(home: Path) -> None:
    for spec in (MODELS["imagenet256"], MODELS["imagenet256"].classifier):
        checkpoint_path(spec).parent.mkdir(parents=True, exist_ok=True)
        checkpoint_path(spec).write_bytes(b"weights")
    resolved = resolve_model("imagenet256")
    assert resolved.checkpoint == home / "checkpoints" / "256x256_diffusion.pt"
    assert resolved.config["class_cond"] is True and resolved.config["num_channels"] == 256
    assert resolved.classifier is not None and resolved.classifier.scale == 1.0
    assert resolved.classifier.config["classifier_depth"] == 2
    assert resolved.sha256 == hashlib.sha256(b"weights").hexdigest()


def test_unknown_name_lists_known_models() -> None:
    with pytest.raises(RepaintError, match="unknown model 'celeba'") as error:
        resolve_model("celeba")
    assert "celeba256, digits, imagenet256, places256" in str(error.value)


def write_checkpoint(folder: Path, name: str = "mine.pt") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(b"weights")
    return folder / name


NET = {"image_size": 64, "num_channels": 64, "num_res_blocks": 1, "attention_resolutions": "16"}


def test_path_with_model_config(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path / "ckpt")
    conf = tmp_path / "conf.yml"
    conf.write_text(yaml.safe_dump({**NET, "learn_sigma": True, "name": "x", "data": {}}))
    resolved = resolve_model(str(checkpoint), conf)
    assert resolved.checkpoint == checkpoint and resolved.name == "mine"
    assert resolved.config["learn_sigma"] is True and resolved.config["image_size"] == 64
    assert resolved.config["noise_schedule"] == "linear"  # reference default filled in
    assert "name" not in resolved.config and "data" not in resolved.config
    assert resolved.classifier is None


@pytest.mark.parametrize("sidecar", ["mine.yml", "mine.yaml", "mine.pt.yml"])
def test_path_with_sidecar_yaml(tmp_path: Path, sidecar: str) -> None:
    checkpoint = write_checkpoint(tmp_path / "ckpt")
    write_checkpoint(tmp_path / "ckpt" / "clf", "classifier.pt")
    conf = {**NET, "classifier_path": "clf/classifier.pt", "classifier_scale": 2.0}
    (tmp_path / "ckpt" / sidecar).write_text(yaml.safe_dump(conf))
    resolved = resolve_model(str(checkpoint))
    assert resolved.classifier is not None
    assert resolved.classifier.path == tmp_path / "ckpt" / "clf" / "classifier.pt"
    assert resolved.classifier.scale == 2.0
    assert resolved.classifier.config["image_size"] == 64


def test_path_without_config(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path)
    with pytest.raises(RepaintError, match=r"--model-config conf\.yml") as error:
        resolve_model(str(checkpoint))
    assert str(checkpoint) in str(error.value)


def test_missing_path(tmp_path: Path) -> None:
    with pytest.raises(RepaintError, match="no such checkpoint file") as error:
        resolve_model(str(tmp_path / "absent.pt"))
    assert "absent.pt" in str(error.value)


def test_config_missing_network_key(tmp_path: Path) -> None:
    checkpoint = write_checkpoint(tmp_path)
    (tmp_path / "mine.yml").write_text(yaml.safe_dump({"image_size": 64}))
    with pytest.raises(RepaintError, match=r"mine\.yml: required model key 'num_channels'"):
        resolve_model(str(checkpoint))
