"""What the local web page accepts: upload size, video duration and resolution caps, and the
container checked by probing the bytes (never by the client's file name or content type)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakelens.errors import FakelensError

# FFmpeg demuxer names (container.format.name is a comma-separated list of aliases) of the
# video containers accepted; images (png_pipe, image2, ...) and audio-only formats are not.
VIDEO_CONTAINERS = frozenset({"mov", "mp4", "m4a", "3gp", "3g2", "mj2", "matroska", "webm", "avi", "mpegts",
                              "mpeg", "flv", "asf", "ogg", "mxf"})


@dataclass
class Limits:
    """Caps on one upload (`fakelens serve --max-upload-mb ... --max-duration ... --max-side ...`)."""

    max_upload_mb: float = 200.0  # request body, multipart overhead included
    max_duration: float = 600.0  # seconds of video
    max_side: int = 4096  # pixels, the longer displayed side (4K UHD passes, 8K is refused)
    max_queue: int = 4  # received uploads waiting while one video is analysed; more get 503
    read_timeout: float = 30.0  # seconds an upload may send nothing before it is dropped (408)
    upload_timeout: float = 600.0  # seconds the whole upload body may take (408)

    def __post_init__(self) -> None:
        if (self.max_upload_mb <= 0 or self.max_duration <= 0 or self.max_side < 16 or self.max_queue < 0
                or self.read_timeout <= 0 or self.upload_timeout <= 0):
            raise FakelensError(f"bad web limits: upload {self.max_upload_mb} MB, duration {self.max_duration} s, "
                                f"side {self.max_side} px, queue {self.max_queue}")

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)


class UploadRejected(FakelensError):
    """An upload the server refuses, with the HTTP status that says why."""

    def __init__(self, status: int, message: str):
        self.status = status
        super().__init__(message)


def check_upload(path: str | Path, limits: Limits) -> Any:
    """Probe an uploaded file: 415 when it is not a video container fakelens accepts, 422 when it is
    a corrupt video or over the duration/resolution caps; returns its fakelens.io.video.VideoInfo."""
    from fakelens.errors import MediaError
    from fakelens.io.video import open_media, probe, sniff_container

    path = Path(path)
    try:
        with open_media(path) as container:
            names = set(container.format.name.split(","))
            long_name = container.format.long_name or container.format.name
            has_video = bool(container.streams.video)
    except MediaError as e:
        if sniff_container(path) is None:
            raise UploadRejected(415, "not a video file (FFmpeg recognises no media container in it)") from e
        raise UploadRejected(422, f"corrupt video: {e.cause}") from e
    if not names & VIDEO_CONTAINERS:
        raise UploadRejected(415, f"{long_name} is not a video container (accepted: mp4/mov, mkv/webm, avi, "
                                  "mpeg-ts, flv, ...)")
    if not has_video:
        raise UploadRejected(415, f"the {long_name} file has no video stream")
    try:
        info = probe(path)
    except MediaError as e:
        raise UploadRejected(422, f"corrupt video: {e.cause}") from e
    if info.duration > limits.max_duration:
        raise UploadRejected(422, f"video is {info.duration:.1f} s long; this server analyses at most "
                                  f"{limits.max_duration:g} s")
    if max(info.width, info.height) > limits.max_side:
        raise UploadRejected(422, f"video is {info.width}x{info.height}; this server analyses at most "
                                  f"{limits.max_side} px on the longer side")
    return info


__all__ = ["Limits", "UploadRejected", "VIDEO_CONTAINERS", "check_upload"]
