"""The local web page (`fakelens serve`): a FastAPI app with an upload page, `POST /api/detect`
returning the report JSON (the same document `fakelens detect` writes as report.json), and the
OpenAPI docs at /docs.

Safety, for a server that takes files from a browser:
- the request body is capped (`Limits.max_upload_mb`, FastAPI's `max_body_size`: 413 before the
  whole body is read), must keep arriving (408 when no part of it comes for `Limits.read_timeout`
  seconds or the whole takes over `Limits.upload_timeout`) and the video is probed (not trusted by name or content type): 415 for a
  file that is not a video container, 422 for a corrupt one or one over the duration/resolution caps;
- the upload is written to a fresh temporary folder under a server-chosen name and the folder is
  removed whatever happens; the client's file name is only ever shown, never used as a path;
- one video is analysed at a time (the model, its detector and Grad-CAM hooks are shared) and at
  most `Limits.max_queue` received uploads wait; one more gets 503 with Retry-After at once. Only
  uploads whose body has arrived are counted, so stalled or slow uploads never lock others out;
- requests must name this server in their Host header (`allowed_hosts`, loopback names by
  default): a page on another site cannot reach it through DNS rebinding;
- the API docs at /docs are served from the swagger-ui files of the `swagger-ui-bundle` package
  (no CDN: nothing is fetched from a third party); without that package /docs is off and the
  schema stays at /openapi.json.
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


LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")
SWAGGER_FILES = ("swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png")


class AdmissionGate:
    """ASGI middleware in front of `POST /api/detect`: a declared Content-Length over the upload
    limit is answered 413 at once (a chunked body without Content-Length is cut at the limit by
    FastAPI's max_body_size), and the body must keep coming: 408 when no part of it arrives for
    `read_timeout` seconds or it is not all there after `upload_timeout`. How many uploads wait
    for the model is counted by the endpoint once their body has arrived (`create_app`)."""

    def __init__(self, app: Any, max_bytes: int, max_mb: float, read_timeout: float = 30.0,
                 upload_timeout: float = 600.0):
        self.app = app
        self.max_bytes = max_bytes
        self.max_mb = max_mb
        self.read_timeout = float(read_timeout)
        self.upload_timeout = float(upload_timeout)

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
        import anyio
        from fastapi import HTTPException

        deadline = anyio.current_time() + self.upload_timeout
        body_done = False

        async def timed_receive() -> dict:
            nonlocal body_done
            if body_done:  # after the body: a disconnect may wait as long as the analysis takes
                return await receive()
            wait = min(self.read_timeout, deadline - anyio.current_time())
            with anyio.move_on_after(max(wait, 0.0)) as scope_:
                message = await receive()
            if scope_.cancelled_caught:
                # FastAPI re-raises an HTTPException from reading the body as it is (not a 400)
                raise HTTPException(408, detail=(
                    f"the upload stalled: no data for {self.read_timeout:g} s" if wait >= self.read_timeout
                    else f"the upload took longer than {self.upload_timeout:g} s"), headers={"Connection": "close"})
            if message.get("type") != "http.request" or not message.get("more_body", False):
                body_done = True
            return message

        await self.app(scope, timed_receive, send)


def display_name(filename: str | None) -> str:
    """The client's file name reduced to something safe to show (never used on disk)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip()[:200]
    return name or "upload"


def create_app(analyser: Any, limits: Limits | None = None, tmp_dir: str | Path | None = None,
               allowed_hosts: tuple[str, ...] | list[str] | None = None) -> Any:
    """The FastAPI app around one `inference.evidence.Analyser` (one loaded run). `allowed_hosts`:
    the names the Host header may carry (default the loopback names; `fakelens serve` adds the
    address it binds)."""
    import anyio
    from fastapi import FastAPI, File, Query, UploadFile
    from fastapi.exception_handlers import http_exception_handler
    from fastapi.responses import HTMLResponse, JSONResponse
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from fakelens import __version__

    limits = limits or Limits()
    tmp_root = None if tmp_dir is None else str(tmp_dir)
    state: dict[str, Any] = {"limiter": None, "admitted": 0}  # admitted: analysed or waiting (event loop only)
    capacity = 1 + limits.max_queue
    app = FastAPI(title="fakelens", version=__version__, docs_url=None, redoc_url=None,
                  description="Local deepfake forensics: upload a video, get the verdict, the suspicious "
                              "segments and the evidence. Nothing leaves this machine.")
    app.state.uploads = state  # read by tests and health checks: uploads analysed or waiting
    _add_offline_docs(app)

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
        from fakelens.report.document import report_document
        from fakelens.report.html import data_uri

        ev = analyser.analyse(path, name=name)
        ev.path = None  # the server's temporary path means nothing to the client
        if want_images or want_html:
            rendered = render(ev)
            body: dict[str, Any] = {"report": rendered.document}
            if want_images:
                body["images"] = {k.removesuffix(".png"): data_uri(v) for k, v in rendered.images.items()}
            if want_html:
                body["html"] = rendered.html
        else:  # the document alone: no pictures drawn that nobody asked for
            body = {"report": report_document(ev)}
        if ev.status != "ok":
            body["detail"] = f"{name}: {ev.error}"
            return 422, body
        return 200, body

    def _no_room(name: str, e: OSError, folder: str) -> JSONResponse:
        """507 when the server's temporary folder is full or read-only (its problem, said as such)."""
        from fakelens.atomic import output_error

        err = output_error(e, folder)
        if err is None:
            raise e
        return JSONResponse({"detail": f"{name}: the server cannot store the upload ({err.cause})"}, status_code=507)

    @app.post(DETECT_PATH, max_body_size=limits.max_upload_bytes,
              summary="analyse one video: verdict, segments, per-frame and audio scores, notes",
              responses={413: {"description": "upload over the size limit"},
                         415: {"description": "not a video container"},
                         507: {"description": "the server's temporary folder is full or cannot be written"},
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
        try:
            work = tempfile.mkdtemp(prefix="fakelens-upload-", dir=tmp_root)
        except OSError as e:
            return _no_room(name, e, tmp_root or tempfile.gettempdir())
        try:
            path = Path(work) / "upload"  # server-chosen name: the client's never touches the disk

            def save() -> None:
                file.file.seek(0)
                with open(path, "wb") as f:
                    shutil.copyfileobj(file.file, f, length=1 << 20)

            try:
                await anyio.to_thread.run_sync(save)
            except OSError as e:
                return _no_room(name, e, work)
            if state["admitted"] >= capacity:  # counted once the body is here: stalled uploads hold no place
                return JSONResponse({"detail": f"the server is busy ({state['admitted']} videos analysed or "
                                               "waiting); try again in a minute"}, status_code=503,
                                    headers={"Retry-After": "30"})
            state["admitted"] += 1
            try:
                if path.stat().st_size == 0:
                    return JSONResponse({"detail": f"{name}: the uploaded file is empty"}, status_code=422)
                try:
                    await anyio.to_thread.run_sync(check_upload, path, limits)
                except UploadRejected as e:
                    return JSONResponse({"detail": f"{name}: {e}"}, status_code=e.status)
                status, body = await anyio.to_thread.run_sync(analyse, path, name, images, html,
                                                              limiter=state["limiter"])
            finally:
                state["admitted"] -= 1
            return JSONResponse(body, status_code=status)
        finally:
            await file.close()
            shutil.rmtree(work, ignore_errors=True)

    app.add_middleware(AdmissionGate, max_bytes=limits.max_upload_bytes, max_mb=limits.max_upload_mb,
                       read_timeout=limits.read_timeout, upload_timeout=limits.upload_timeout)
    from starlette.middleware.trustedhost import TrustedHostMiddleware

    # added last = outermost: a request for another host name is refused before anything else
    app.add_middleware(TrustedHostMiddleware, allowed_hosts=list(dict.fromkeys(allowed_hosts or LOOPBACK_HOSTS)),
                       www_redirect=False)
    return app


def _add_offline_docs(app: Any) -> None:
    """/docs from the swagger-ui files the `swagger-ui-bundle` package ships (served by this app,
    nothing from a CDN; the online validator badge off); without the package, no /docs."""
    try:
        from swagger_ui_bundle import swagger_ui_path
    except ImportError:
        return
    from fastapi import HTTPException
    from fastapi.openapi.docs import get_swagger_ui_html
    from fastapi.responses import Response

    types = {".js": "text/javascript", ".css": "text/css", ".png": "image/png"}

    @app.get("/docs", include_in_schema=False)
    def docs() -> Any:
        return get_swagger_ui_html(openapi_url=app.openapi_url, title="fakelens API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def docs_asset(name: str) -> Any:
        if name not in SWAGGER_FILES:  # a fixed list: no client path ever reaches the disk
            raise HTTPException(404, detail="not found")
        data = (swagger_ui_path / name).read_bytes()
        return Response(data, media_type=types[Path(name).suffix], headers={"Cache-Control": "max-age=86400"})


__all__ = ["AdmissionGate", "DETECT_PATH", "LOOPBACK_HOSTS", "create_app", "display_name"]
