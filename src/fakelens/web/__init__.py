"""The local web page of `fakelens serve`: upload a video, get its forensic report (needs the
[web] extra: fastapi, uvicorn, python-multipart). `create_app` builds the FastAPI app."""

from __future__ import annotations


def create_app(*args, **kwargs):
    """fakelens.web.app.create_app, imported on use (FastAPI is an optional dependency)."""
    from fakelens.web.app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["create_app"]
