"""Write videos (with optional audio) through PyAV: the synthetic generator and test fixtures use it.

`codec="ffv1"` (in .mkv) is lossless, for tests that check pixel values; `"h264"` + AAC in .mp4
looks like the real datasets.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable

import numpy as np

from fakelens.atomic import atomic_output

_PIX_FMT = {"h264": "yuv420p", "libx264": "yuv420p", "mpeg4": "yuv420p", "ffv1": "bgr0",
            "png": "rgb24", "libvpx-vp9": "yuv420p"}


def write_video(
    path: str | Path,
    frames: Iterable[np.ndarray],
    fps: float,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    codec: str = "h264",
    audio_codec: str | None = None,
    crf: int = 23,
    rotation: int = 0,
    gop: int | None = None,
) -> Path:
    """Encode `frames` (each uint8 RGB (H, W, 3)) at `fps`, plus mono float32 `audio` in [-1, 1].

    The file is written atomically. `audio_codec` defaults to AAC for mp4 and FLAC otherwise.
    `rotation` (clockwise degrees a player must turn the stored frames, as the old `rotate` tag)
    is stored as display-matrix side data, as phones do; `fakelens.io.video.probe` reads it back.
    `gop` puts a keyframe every `gop` frames (the encoder's default when None).
    """
    import av

    path = Path(path)
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    rate = Fraction(fps).limit_denominator(1001)
    if audio_codec is None:
        audio_codec = "aac" if path.suffix.lower() in (".mp4", ".m4v", ".mov") else "flac"
    with atomic_output(path) as tmp:
        with av.open(str(tmp), mode="w", format=_container_format(path)) as container:
            vstream = None
            astream = None
            frames = iter(frames)
            first = next(frames, None)
            if first is None:
                raise ValueError(f"{path}: no frames to write")
            h, w = first.shape[:2]
            vstream = container.add_stream(codec, rate=rate)
            vstream.width = w - (w % 2) if _PIX_FMT.get(codec, "yuv420p") == "yuv420p" else w
            vstream.height = h - (h % 2) if _PIX_FMT.get(codec, "yuv420p") == "yuv420p" else h
            vstream.pix_fmt = _PIX_FMT.get(codec, "yuv420p")
            if codec in ("h264", "libx264"):
                options = {"crf": str(crf), "preset": "veryfast"}
                if gop is not None:
                    # gop_size alone gives x264 keyint gop-1 here; pin it and disable scene cuts.
                    options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
                vstream.options = options
            if gop is not None:
                vstream.codec_context.gop_size = int(gop)
            if rotation % 360:
                # FFmpeg 8 ignores the legacy `rotate` tag; PyAV 18 writes the display matrix.
                # PyAV's angle is counter-clockwise, `rotation` is clockwise (as the old tag was).
                vstream.set_display_rotation(-(rotation % 360))
            if audio is not None:
                astream = container.add_stream(audio_codec, rate=sample_rate)
                astream.layout = "mono"

            def encode(img: np.ndarray) -> None:
                img = np.ascontiguousarray(img[: vstream.height, : vstream.width])
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                for packet in vstream.encode(frame):
                    container.mux(packet)

            encode(first)
            for img in frames:
                encode(img)
            for packet in vstream.encode():
                container.mux(packet)
            if astream is not None and audio is not None:
                _encode_audio(container, astream, np.asarray(audio, dtype=np.float32), sample_rate)
    return path


def _container_format(path: Path) -> str | None:
    return {".mp4": "mp4", ".mkv": "matroska", ".avi": "avi", ".webm": "webm", ".mov": "mov"}.get(
        path.suffix.lower()
    )


def _encode_audio(container, astream, audio: np.ndarray, sample_rate: int) -> None:
    import av

    audio = np.clip(audio, -1.0, 1.0)
    chunk = astream.codec_context.frame_size or 1024
    pts = 0
    for i in range(0, len(audio), chunk):
        block = audio[i : i + chunk]
        frame = av.AudioFrame.from_ndarray(block[None, :].astype(np.float32), format="flt", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = pts
        pts += len(block)
        for packet in astream.encode(frame):
            container.mux(packet)
    for packet in astream.encode():
        container.mux(packet)

