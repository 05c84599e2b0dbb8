"""The web API (`fakelens serve`) through FastAPI's TestClient: a good video, a corrupt one, the
wrong type, oversize uploads (declared and chunked), duration/resolution caps, a video the model
cannot analyse, the bounded queue (one analysis at a time, 503 when full), temporary files
always removed and the client's file name never used on disk."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest

pytestmark = pytest.mark.slow
pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def analyser(detect_run):
    from fakelens.inference.evidence import Analyser
    from fakelens.inference.pipeline import Predictor, load_run

    return Analyser(Predictor(load_run(detect_run["run"]), device="cpu"), saliency=False)


@pytest.fixture
def make_client(analyser, tmp_path):
    from fastapi.testclient import TestClient

    from fakelens.web.app import create_app
    from fakelens.web.limits import Limits

    uploads = tmp_path / "uploads"
    uploads.mkdir()
    clients = []

    def _make(analyser_=None, **limits):
        client = TestClient(create_app(analyser_ or analyser, Limits(**limits), tmp_dir=uploads),
                            base_url="http://localhost")
        client.__enter__()
        clients.append(client)
        return client

    yield _make, uploads
    for c in clients:
        c.__exit__(None, None, None)


def _video(detect_run, fake=True):
    meta = json.loads((detect_run["data"] / "test_metadata.json").read_text())
    m = next(m for m in meta if bool(m["fake_segments"]) == fake)
    return (detect_run["data"] / m["file"]).read_bytes()


def _post(client, data, name="clip.mp4", params="", **kw):
    return client.post("/api/detect" + params, files={"file": (name, data, "video/mp4")}, **kw)


def test_a_good_video_gives_the_report_json(detect_run, make_client):
    from fakelens.report.document import validate_report

    make, uploads = make_client
    client = make()
    r = _post(client, _video(detect_run), name="../../../etc/evil.mp4", params="?images=true&html=true")
    assert r.status_code == 200, r.text
    body = r.json()
    validate_report(body["report"])
    rep = body["report"]
    assert rep["status"] == "ok" and rep["verdict"]["label"] in ("fake", "real")
    assert rep["video"]["name"] == "evil.mp4" and rep["video"]["path"] is None  # shown, never a path
    assert body["images"]["timeline"].startswith("data:image/png;base64,")
    assert body["images"]["crops"].startswith("data:image/png;base64,")
    assert body["html"].startswith("<!DOCTYPE html>") and "evil.mp4" in body["html"]
    import fakelens.report.plots as plots

    drawn = []
    with pytest.MonkeyPatch.context() as mp:  # a plain request draws no picture (none is returned)
        for name in ("timeline_png", "crops_png"):
            mp.setattr(plots, name, lambda ev, _name=name: drawn.append(_name))
        plain = _post(client, _video(detect_run)).json()
    assert set(plain) == {"report"} and plain["report"]["verdict"] == rep["verdict"] and not drawn
    assert list(uploads.iterdir()) == []  # temporary files always removed
    # the page, its model info, and the OpenAPI docs
    page = client.get("/").text
    assert 'type="file"' in page and "drop" in page and "/api/detect" in page
    info = client.get("/api/info").json()
    assert info["model"]["name"] == "av_tiny" and info["limits"]["max_upload_mb"] == 200.0
    docs = client.get("/docs")
    assert docs.status_code == 200 and "swagger-ui" in docs.text
    assert "/api/detect" in client.get("/openapi.json").json()["paths"]


def test_corrupt_wrong_type_and_empty_uploads_are_refused(detect_run, make_client, tmp_path):
    import av

    make, uploads = make_client
    client = make()
    good = _video(detect_run)
    r = _post(client, good[: len(good) // 3])
    assert r.status_code == 422 and "corrupt" in r.json()["detail"]
    r = _post(client, b"just some text, named like a video\n" * 50)
    assert r.status_code == 415 and "not a video file" in r.json()["detail"]
    from PIL import Image

    png = tmp_path / "img.png"
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(png)
    r = _post(client, png.read_bytes(), name="photo.mp4")
    assert r.status_code == 415 and "not a video container" in r.json()["detail"]
    wav = tmp_path / "sound.wav"
    with av.open(str(wav), "w") as c:  # an audio-only file, named .mp4 by the client
        s = c.add_stream("pcm_s16le", rate=16000, layout="mono")
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1600), np.int16), format="s16", layout="mono")
        frame.sample_rate = 16000
        for p in s.encode(frame):
            c.mux(p)
    r = _post(client, wav.read_bytes())
    assert r.status_code == 415, r.text
    r = _post(client, b"")
    assert r.status_code == 422 and "empty" in r.json()["detail"]
    assert list(uploads.iterdir()) == []


def test_oversize_uploads_and_the_duration_and_size_caps(detect_run, make_client):
    make, uploads = make_client
    good = _video(detect_run)
    small = make(max_upload_mb=0.01)
    r = _post(small, good + b"\0" * 20000)
    assert r.status_code == 413 and "0.01 MB" in r.json()["detail"]
    # a chunked body declares no length: cut while it streams in
    boundary = "fakelensboundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.mp4\"\r\n"
            "Content-Type: video/mp4\r\n\r\n").encode()

    def chunks():
        yield head
        for _ in range(40):
            yield b"\0" * 1024
        yield f"\r\n--{boundary}--\r\n".encode()

    r = small.post("/api/detect", content=chunks(),
                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert r.status_code == 413
    short = make(max_duration=0.5)
    r = _post(short, good)
    assert r.status_code == 422 and "analyses at most 0.5 s" in r.json()["detail"]
    narrow = make(max_side=64)
    r = _post(narrow, good)
    assert r.status_code == 422 and "at most 64 px" in r.json()["detail"]
    assert list(uploads.iterdir()) == []


def test_a_video_the_model_cannot_analyse_says_why(make_client, tmp_path):
    from fakelens.io.encode import write_video

    make, _ = make_client
    blank = write_video(tmp_path / "blank.mp4", [np.full((64, 64, 3), 100, np.uint8)] * 10, 10.0, codec="h264")
    r = _post(make(), blank.read_bytes())
    body = r.json()
    assert r.status_code == 422 and "no face found in any sampled frame" in body["detail"]
    assert body["report"]["status"] == "failed" and body["report"]["video"]["media"]["has_audio"] is False


class _Blocking:
    """The real analyser, made to wait for a signal before each analysis (to hold the queue)."""

    def __init__(self, inner):
        self.inner = inner
        self.threshold = inner.threshold
        self.started = threading.Semaphore(0)
        self.release = threading.Event()
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def model_info(self):
        return self.inner.model_info()

    def analyse(self, path, name=None):
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        self.started.release()
        self.release.wait(60)
        try:
            return self.inner.analyse(path, name=name)
        finally:
            with self.lock:
                self.running -= 1


def test_a_full_queue_answers_503_and_analyses_run_one_at_a_time(detect_run, analyser, make_client):
    make, uploads = make_client
    good = _video(detect_run)
    blocking = _Blocking(analyser)
    client = make(blocking, max_queue=1)  # one analysed + one waiting
    results = {}

    def post(key):
        results[key] = _post(client, good)

    first = threading.Thread(target=post, args=("first",))
    first.start()
    assert blocking.started.acquire(timeout=60)  # the first is being analysed
    second = threading.Thread(target=post, args=("second",))
    second.start()
    for _ in range(400):  # wait until the second is in the queue (its upload received)
        if client.app.state.uploads["admitted"] == 2:
            break
        threading.Event().wait(0.05)
    assert len(list(uploads.iterdir())) == 2 and client.app.state.uploads["admitted"] == 2
    third = _post(client, good)
    assert third.status_code == 503 and third.headers["Retry-After"] == "30"
    assert "busy" in third.json()["detail"]
    blocking.release.set()
    first.join(60)
    second.join(60)
    assert results["first"].status_code == 200 and results["second"].status_code == 200
    assert blocking.most == 1  # never two analyses at once
    assert _post(client, good).status_code == 200  # and the server is still up
    assert list(uploads.iterdir()) == []


def test_docs_are_served_from_this_server_only(make_client):
    """Review of issue 12, item 6: /docs loaded swagger-ui from cdn.jsdelivr.net; now every file
    it needs comes from this server (swagger-ui-bundle), and no page names a third-party URL."""
    import re

    from fakelens.web.app import SWAGGER_FILES

    make, _ = make_client
    client = make()
    docs = client.get("/docs").text
    urls = re.findall(r"""(?:src|href|url)\s*[:=]\s*['"]([^'"]+)['"]""", docs)
    assert urls and all(u.startswith("/") for u in urls), urls
    assert "cdn" not in docs and "validatorUrl" in docs
    for name in SWAGGER_FILES:
        r = client.get(f"/docs/assets/{name}")
        assert r.status_code == 200 and len(r.content) > 100
    assert client.get("/docs/assets/..%2F..%2Fpyproject.toml").status_code == 404
    assert client.get("/docs/assets/index.html").status_code == 404
    page = client.get("/").text
    assert not re.search(r"https?://", page)


def test_a_request_for_another_host_name_is_refused(analyser, tmp_path):
    """Review item 13: DNS rebinding. A page on evil.example resolving to 127.0.0.1 sends
    Host: evil.example; only the names the server was bound to are answered."""
    from fastapi.testclient import TestClient

    from fakelens.web.app import create_app

    app = create_app(analyser, tmp_dir=tmp_path)
    with TestClient(app, base_url="http://localhost:8000") as client:
        assert client.get("/api/info").status_code == 200
        assert client.get("/api/info", headers={"host": "127.0.0.1:8000"}).status_code == 200
        assert client.get("/api/info", headers={"host": "[::1]:8000"}).status_code == 200
        assert client.get("/api/info", headers={"host": "evil.example:8000"}).status_code == 400
        assert client.post("/api/detect", headers={"host": "evil.example"}, files={"file": ("a.mp4", b"x")}
                           ).status_code == 400
    wider = create_app(analyser, tmp_dir=tmp_path, allowed_hosts=["127.0.0.1", "box.lan"])
    with TestClient(wider, base_url="http://box.lan") as client:
        assert client.get("/api/info").status_code == 200
        assert client.get("/api/info", headers={"host": "localhost"}).status_code == 400


def test_stalled_uploads_hold_no_place_and_are_dropped(detect_run, analyser, tmp_path):
    """Review item 5: requests were admitted before their body arrived, so stalled uploads filled
    the queue for ever (no read timeout). Now a stalled upload gets 408 after read_timeout and
    does not keep a good upload out, even with no queue at all."""
    import anyio
    import httpx

    from fakelens.web.app import create_app
    from fakelens.web.limits import Limits

    app = create_app(analyser, Limits(max_queue=0, read_timeout=1.5), tmp_dir=tmp_path)
    good = _video(detect_run)
    sent: list[dict] = []

    async def stalled() -> None:
        first = True

        async def receive():
            nonlocal first
            if first:
                first = False
                return {"type": "http.request", "body": b"--xx\r\n", "more_body": True}
            await anyio.sleep(3600)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/api/detect", "raw_path": b"/api/detect", "query_string": b"",
                 "root_path": "", "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 8000),
                 "headers": [(b"host", b"localhost"), (b"content-type", b"multipart/form-data; boundary=xx"),
                             (b"content-length", b"100000")]}
        await app(scope, receive, send)

    async def main() -> int:
        with anyio.fail_after(120):  # the old gate kept stalled uploads (and this test) waiting for ever
            return await both()

    async def both() -> int:
        async with anyio.create_task_group() as tg:
            tg.start_soon(stalled)
            tg.start_soon(stalled)
            await anyio.sleep(0.2)
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
                r = await client.post("/api/detect", files={"file": ("clip.mp4", good, "video/mp4")})
        return r.status_code

    status = anyio.run(main)
    assert status == 200
    starts = [m for m in sent if m["type"] == "http.response.start"]
    assert [m["status"] for m in starts] == [408, 408]
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert b"stalled" in body
    assert list(tmp_path.iterdir()) == []
