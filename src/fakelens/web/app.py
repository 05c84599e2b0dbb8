"""The local web page (`fakelens serve`): a FastAPI app with an upload page, `POST /api/detect`
returning the report JSON (the same document `fakelens detect` writes as report.json), and the
OpenAPI docs at /docs.

Safety, for a server that takes files from a browser:
- the request body is capped (`Limits.max_upload_mb`, FastAPI's `max_body_size`: 413 before the
  whole body is read) and the video is probed (not trusted by name or content type): 415 for a
  file that is not a video container, 422 for a corrupt one or one over the duration/resolution caps;
- the upload is written to a fresh temporary folder under a server-chosen name and the folder is
  removed whatever happens; the client's file name is only ever shown, never used as a path;
- one video is analysed at a time (the model, its detector and Grad-CAM hooks are shared) and at
  most `Limits.max_queue` requests wait; a request beyond that gets 503 with Retry-After at once,
  before its body is read, so the server stays up under load.
"""

# No `from __future__ import annotations`: FastAPI reads the endpoint annotations at runtime, and
# they name classes imported inside create_app (FastAPI is an optional dependency).

import re
import shutil
import tempfile
from importlib import resources
from pathlib import Path
from typing import Any

from fakelens.web.limits import Limits, UploadRejected, check_upload

DETECT_PATH = "/api/detect"


class AdmissionGate:
    """ASGI middleware in front of `POST /api/detect`: a declared Content-Length over the upload
    limit is answered 413 at once, and at most `capacity` requests are in the server together (one
    being analysed, the rest queued); one more is answered 503. Both before the body is read.
    (A chunked body without Content-Length is cut at the limit by FastAPI's max_body_size.)"""

    def __init__(self, app: Any, capacity: int, max_bytes: int, max_mb: float):
        self.app = app
        self.capacity = capacity
        self.max_bytes = max_bytes
        self.max_mb = max_mb
        self.active = 0  # touched only on the event loop thread

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != DETECT_PATH or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        from starlette.datastructures import Headers
        from starlette.responses import JSONResponse

        length = Headers(scope=scope).get("content-length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            response = JSONResponse({"detail": f"upload of {int(length) / 2**20:.1f} MB is larger than this "
                                               f"server's limit of {self.max_mb:g} MB"}, status_code=413,
                                    headers={"Connection": "close"})
            await response(scope, receive, send)
            return
        if self.active >= self.capacity:
            response = JSONResponse({"detail": f"the server is busy ({self.active} videos analysed or waiting); "
                                               "try again in a minute"}, status_code=503,
                                    headers={"Retry-After": "30"})
            await response(scope, receive, send)
            return
        self.active += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.active -= 1


def display_name(filename: str | None) -> str:
    """The client's file name reduced to something safe to show (never used on disk)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()[:200]
    return name or "upload"


def create_app(analyser: Any, limits: Limits | None = None, tmp_dir: str | Path | None = None) -> Any:
    """The FastAPI app around one `inference.evidence.Analyser` (one loaded run)."""
    import anyio
    from fastapi import FastAPI, File, Query, UploadFile
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from fakelens import __version__

    limits = limits or Limits()
    tmp_root = None if tmp_dir is None else str(tmp_dir)
    state: dict[str, Any] = {"limiter": None}
    app = FastAPI(title="fakelens", version=__version__,
                  description="Local deepfake forensics: upload a video, get the verdict, the suspicious "
                              "segments and the evidence. Nothing leaves this machine.")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request, exc):  # a clearer 413 than "Content Too Large"
        if exc.status_code == 413:
            return JSONResponse({"detail": f"upload larger than this server's limit of "
                                           f"{limits.max_upload_mb:g} MB"}, status_code=413)
        return await http_exception_handler(request, exc)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def index() -> str:
        return resources.files("fakelens.web").joinpath("static/index.html").read_text(encoding="utf-8")

    @app.get("/api/info", summary="the model this server runs and its limits")
    def info() -> dict[str, Any]:
        m = analyser.model_info()
        return {"fakelens_version": __version__,
                "model": {k: m[k] for k in ("name", "inputs", "checkpoint", "aggregate", "level")},
                "threshold": analyser.threshold,
                "limits": {"max_upload_mb": limits.max_upload_mb, "max_duration_s": limits.max_duration,
                           "max_side_px": limits.max_side, "max_queue": limits.max_queue}}

    def analyse(path: Path, name: str, want_images: bool, want_html: bool) -> tuple[int, dict[str, Any]]:
        from fakelens.report import render
        from fakelens.report.html import data_uri

        ev = analyser.analyse(path, name=name)
        ev.path = None  # the server's temporary path means nothing to the client
        rendered = render(ev)
        body: dict[str, Any] = {"report": rendered.document}
        if want_images:
            body["images"] = {k.removesuffix(".png"): data_uri(v) for k, v in rendered.images.items()}
        if want_html:
            body["html"] = rendered.html
        if ev.status != "ok":
            body["detail"] = f"{name}: {ev.error}"
            return 422, body
        return 200, body

    @app.post(DETECT_PATH, max_body_size=limits.max_upload_bytes,
              summary="analyse one video: verdict, segments, per-frame and audio scores, notes",
              responses={413: {"description": "upload over the size limit"},
                         415: {"description": "not a video container"},
                         422: {"description": "corrupt video, over the duration/resolution caps, or not analysable "
                                              "by this model (the reason, and a report saying so)"},
                         503: {"description": "queue full; retry later"}})
    async def detect(file: UploadFile = File(..., description="the video (any name; the content is probed)"),
                     images: bool = Query(False, description="also return timeline and crops as PNG data URIs"),
                     html: bool = Query(False, description="also return the self-contained report.html")
                     ) -> JSONResponse:
        name = display_name(file.filename)
        if state["limiter"] is None:
            state["limiter"] = anyio.CapacityLimiter(1)
        work = tempfile.mkdtemp(prefix="fakelens-upload-", dir=tmp_root)
        try:
            path = Path(work) / "upload"  # server-chosen name: the client's never touches the disk

            def save() -> None:
                file.file.seek(0)
                with open(path, "wb") as f:
                    shutil.copyfileobj(file.file, f, length=1 << 20)

            await anyio.to_thread.run_sync(save)
            if path.stat().st_size == 0:
                return JSONResponse({"detail": f"{name}: the uploaded file is empty"}, status_code=422)
            try:
                await anyio.to_thread.run_sync(check_upload, path, limits)
            except UploadRejected as e:
                return JSONResponse({"detail": f"{name}: {e}"}, status_code=e.status)
            status, body = await anyio.to_thread.run_sync(analyse, path, name, images, html,
                                                          limiter=state["limiter"])
            return JSONResponse(body, status_code=status)
        finally:
            await file.close()
            shutil.rmtree(work, ignore_errors=True)

    # Outside every other user middleware: it must answer before a body is read.
    app.add_middleware(AdmissionGate, capacity=1 + limits.max_queue, max_bytes=limits.max_upload_bytes,
                       max_mb=limits.max_upload_mb)
    return app


__all__ = ["AdmissionGate", "DETECT_PATH", "create_app", "display_name"]
