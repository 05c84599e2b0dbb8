"""Write videos (with optional audio) through PyAV: the synthetic generator and test fixtures use it.

`codec="ffv1"` (in .mkv) is lossless, for tests that check pixel values; `"h264"` + AAC in .mp4
looks like the real datasets.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Iterable, Sequence

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
    times: Sequence[float] | None = None,
    pix_fmt: str | None = None,
) -> Path:
    """Encode `frames` (each uint8 RGB (H, W, 3)) at `fps`, plus float32 `audio` in [-1, 1]: mono
    (S,), or (C, S) for C channels (C = 2: stereo).

    The file is written atomically. `audio_codec` defaults to what the container usually holds
    (AAC in mp4/mov/3gp/flv/MPEG-TS, Opus in webm, MP2 in mpg/wmv) and FLAC otherwise.
    `rotation` (clockwise degrees a player must turn the stored frames, as the old `rotate` tag)
    is stored as display-matrix side data, as phones do; `fakelens.io.video.probe` reads it back.
    `gop` puts a keyframe every `gop` frames (the encoder's default when None). `times` gives
    each frame's presentation time in seconds (ascending; a variable frame rate), stored on a
    millisecond clock; `fps` is then only the nominal rate written in the header. `pix_fmt`
    overrides the codec's usual pixel format (e.g. "yuv444p" or 10-bit "yuv420p10le" for H.264).
    The container follows the extension (mp4 m4v mov mkv webm avi ts m2ts mts mpg flv 3gp wmv).
    """
    import av

    path = Path(path)
    if rotation % 90:
        raise ValueError(f"rotation must be a multiple of 90 degrees, got {rotation}")
    rate = Fraction(fps).limit_denominator(1001)
    if audio_codec is None:
        audio_codec = _AUDIO_CODECS.get(path.suffix.lower(), "flac")
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
            fmt = pix_fmt or _PIX_FMT.get(codec, "yuv420p")
            even = fmt.startswith(("yuv420", "nv12"))  # chroma halved both ways: even sides
            vstream.width = w - (w % 2) if even else w
            vstream.height = h - (h % 2) if even else h
            vstream.pix_fmt = fmt
            if codec in ("h264", "libx264"):
                options = {"crf": str(crf), "preset": "veryfast"}
                if gop is not None:
                    # gop_size alone gives x264 keyint gop-1 here; pin it and disable scene cuts.
                    options["x264-params"] = f"keyint={gop}:min-keyint={gop}:scenecut=0"
                vstream.options = options
            if gop is not None:
                vstream.codec_context.gop_size = int(gop)
            if times is not None:
                vstream.codec_context.time_base = _MS
                vstream.time_base = _MS
            if rotation % 360:
                # FFmpeg 8 ignores the legacy `rotate` tag; PyAV 18 writes the display matrix.
                # PyAV's angle is counter-clockwise, `rotation` is clockwise (as the old tag was).
                vstream.set_display_rotation(-(rotation % 360))
            if audio is not None:
                audio = np.asarray(audio, dtype=np.float32)
                astream = container.add_stream(audio_codec, rate=sample_rate)
                astream.layout = _layout(1 if audio.ndim == 1 else audio.shape[0])

            stamps = iter(times) if times is not None else None
            last: list[int] = []

            def encode(img: np.ndarray) -> None:
                img = np.ascontiguousarray(img[: vstream.height, : vstream.width])
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                if stamps is not None:
                    t = next(stamps, None)
                    if t is None:
                        raise ValueError(f"{path}: fewer times than frames")
                    pts = int(round(float(t) * 1000))
                    if last and pts <= last[0]:
                        raise ValueError(f"{path}: frame times must ascend by >= 1 ms, got {t} after {last[0] / 1000}")
                    last[:] = [pts]
                    frame.pts, frame.time_base = pts, _MS
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


_MS = Fraction(1, 1000)
_AUDIO_CODECS = {ext: "aac" for ext in (".mp4", ".m4v", ".mov", ".3gp", ".flv", ".ts", ".m2ts", ".mts")}
_AUDIO_CODECS.update({".webm": "libopus", ".mpg": "mp2", ".mpeg": "mp2", ".wmv": "mp2", ".asf": "mp2"})
_FORMATS = {".mp4": "mp4", ".m4v": "mp4", ".mkv": "matroska", ".avi": "avi", ".webm": "webm", ".mov": "mov",
            ".ts": "mpegts", ".m2ts": "mpegts", ".mts": "mpegts", ".mpg": "mpeg", ".mpeg": "mpeg",
            ".flv": "flv", ".3gp": "3gp", ".wmv": "asf", ".asf": "asf"}


def _container_format(path: Path) -> str | None:
    return _FORMATS.get(path.suffix.lower())


def _layout(channels: int) -> str:
    names = {1: "mono", 2: "stereo", 6: "5.1"}
    if channels not in names:
        raise ValueError(f"audio with {channels} channels: give 1 (S,), 2 or 6 (C, S)")
    return names[channels]


def _encode_audio(container, astream, audio: np.ndarray, sample_rate: int) -> None:
    import av

    audio = np.clip(audio, -1.0, 1.0)
    audio = audio[None] if audio.ndim == 1 else audio  # (C, S)
    layout = _layout(len(audio))
    chunk = astream.codec_context.frame_size or 1024
    pts = 0
    for i in range(0, audio.shape[1], chunk):
        block = np.ascontiguousarray(audio[:, i : i + chunk].T)  # (n, C) packed
        frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="flt", layout=layout)
        frame.sample_rate = sample_rate
        frame.pts = pts
        pts += len(block)  # samples
        for packet in astream.encode(frame):
            container.mux(packet)
    for packet in astream.encode():
        container.mux(packet)

