"""Probe videos and decode frames at given times with PyAV: the one decode path of fakelens.

Times are seconds from the first video frame (the stream's start time is subtracted), so frame k
of a constant-rate video is shown during [k / fps, (k + 1) / fps). Frames come back as uint8 RGB
rotated for display (phones store a display matrix instead of rotating pixels), optionally
downscaled inside libswscale while converting, never after.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import threading
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from fakelens.errors import MediaError

# A requested time may overshoot [0, duration] by this much (float rounding) and is clamped.
TIME_TOLERANCE = 1e-3
# Frame times are compared with this slack, far below any frame interval, far above float error.
_EPS = 1e-6
# `probe` demuxes the video packets (no decoding) to learn every frame's presentation time, and
# the exact frame count mkv/webm do not store; this reads the whole file, so only below this
# size. Above it n_frames may be estimated as round(duration * fps) and frame positions are
# estimated from times (round(t * fps)), which is exact only at a constant frame rate.
COUNT_MAX_BYTES = 256 * 1024 * 1024
# The "auto" strategy (see `choose_strategy`) compares decoded-frame counts. A sequential pass
# decodes every frame up to the last wanted one; each seek re-decodes from the keyframe before
# its target, and pays a fixed overhead (flush, seek, no frame threading) of SEEK_OVERHEAD_FRAMES
# frames' worth. FACTS.md: for 32 samples of a 10 s clip one pass is 4-7x faster than 32 seeks.
SEEK_OVERHEAD_FRAMES = 4
# Frames decoded after a seek cost this much more than in the frame-threaded sequential pass.
SEEK_FRAME_FACTOR = 1.5
# Without a usable keyframe index (mkv/webm load their cues lazily) a seek is assumed to cost
# this many frames: about half of x264's default 250-frame GOP, plus the overhead.
SEEK_COST_FRAMES = 150
STRATEGIES = ("auto", "sequential", "seek")

# First bytes of containers, to tell "truncated/corrupt media" from "not a media file".
_MAGIC = (
    (4, b"ftyp", "MP4/MOV"),
    (4, b"moov", "MP4/MOV"),
    (4, b"mdat", "MP4/MOV"),
    (4, b"free", "MP4/MOV"),
    (4, b"wide", "MP4/MOV"),
    (0, b"\x1a\x45\xdf\xa3", "Matroska/WebM"),
    (0, b"RIFF", "RIFF (AVI/WAV)"),
    (0, b"OggS", "Ogg"),
    (0, b"FLV", "FLV"),
    (0, b"fLaC", "FLAC"),
    (0, b"ID3", "MP3"),
    (0, b"\x00\x00\x01\xba", "MPEG-PS"),
    (0, b"\x47", "MPEG-TS"),
)


@dataclass(frozen=True)
class VideoInfo:
    """What `probe` learns about a video: timing, displayed size, rotation, audio presence."""

    path: Path
    duration: float  # seconds (video stream)
    fps: float
    n_frames: int
    width: int  # as displayed, i.e. after rotation
    height: int
    rotation: int  # clockwise degrees to apply for display: 0/90/180/270 (the old `rotate` tag)
    has_audio: bool
    audio_rate: int | None
    codec: str
    start_time: float = 0.0  # seconds: pts of the first frame, subtracted from every frame time
    n_frames_estimated: bool = False  # True when n_frames = round(duration * fps), not counted
    # (n_frames,) float64 ascending presentation times (seconds) of every frame, from the demux
    # pass of `probe` (None above COUNT_MAX_BYTES or without packet timestamps)
    frame_times: np.ndarray | None = field(default=None, compare=False, repr=False)

    def frame_time(self, index):
        """Time (seconds) of frame `index` (int or array): its own presentation time when known,
        else index / fps (a constant frame rate assumed)."""
        if self.frame_times is not None and len(self.frame_times):
            return self.frame_times[np.clip(np.asarray(index), 0, len(self.frame_times) - 1)]
        return index / self.fps

    def frame_index(self, times) -> np.ndarray:
        """Position in the stream (0 = first frame) of the frames whose presentation times are
        `times` (seconds, as decoding returns them): the nearest known frame time; round(t * fps)
        when the frame times are unknown. (N,) int64."""
        t = np.asarray(times, np.float64).reshape(-1)  # (N,)
        ft = self.frame_times
        if ft is None or len(ft) == 0:
            return np.round(t * self.fps).astype(np.int64)
        j = np.clip(np.searchsorted(ft, t), 1, max(1, len(ft) - 1))  # (N,) first frame time >= t
        if len(ft) == 1:
            return np.zeros(len(t), np.int64)
        before = np.abs(t - ft[j - 1]) <= np.abs(ft[j] - t)
        return np.where(before, j - 1, j).astype(np.int64)


# A conversion whose source and result have at most this many pixels runs in one swscale thread
# (the pixels do not depend on the thread count): for a 64x64 crop a context with the automatic
# count (a pool of threads) costs 0.07 ms against 0.02 ms with one thread, for a 224x224 frame
# 0.08 against 0.05 ms; a 1080p frame takes 2.1 ms with one thread, 1.1 with two.
ONE_THREAD_PIXELS = 512 * 512
_local = threading.local()


def _reformatter(threads: int):
    """This thread's VideoReformatter for conversions with `threads` swscale threads (0: the
    automatic count). Reused, it keeps its SwsContext while the size and format stay the same
    (and re-makes it only when they change), where VideoFrame.to_ndarray makes one per frame.
    PyAV's reformatter must not be used by two threads at once, so each thread has its own."""
    cache = getattr(_local, "reformatters", None)
    if cache is None:
        cache = _local.reformatters = {}
    if threads not in cache:
        import av.video.reformatter

        cache[threads] = av.video.reformatter.VideoReformatter()
    return cache[threads]


def _sws_threads(*pixels: int) -> int:
    """swscale threads for a conversion between images of these pixel counts: 1 when all are
    small (ONE_THREAD_PIXELS), else 0 (the automatic count)."""
    return 1 if max(pixels) <= ONE_THREAD_PIXELS else 0


def _to_rgb(frame, reformatter=None, **resize) -> np.ndarray:
    """A PyAV frame -> (h, w, 3) uint8 RGB in libswscale, in its stored orientation; `resize`:
    width, height, interpolation. With the swscale threads `_sws_threads` gives the source and
    result sizes, by `reformatter` (one kept for a stream of frames) or this thread's."""
    threads = _sws_threads(frame.width * frame.height,
                           resize.get("width", frame.width) * resize.get("height", frame.height))
    r = reformatter if reformatter is not None else _reformatter(threads)
    return r.reformat(frame, format="rgb24", threads=threads, **resize).to_ndarray()


class FullFrame:
    """One decoded frame kept at full resolution without converting it: its yuv420p planes (1.5
    bytes per pixel), turned into RGB only inside the regions `crop` asks for. Frames in other
    pixel formats (or of odd size) are kept as full RGB instead. Coordinates are displayed pixels.
    """

    def __init__(self, frame, rotation: int):
        self.rotation = rotation
        cw, ch = frame.width, frame.height
        self.coded_hw = (ch, cw)
        self.planes: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.rgb: np.ndarray | None = None
        if frame.format.name == "yuv420p" and cw % 2 == 0 and ch % 2 == 0:
            sizes = ((ch, cw), (ch // 2, cw // 2), (ch // 2, cw // 2))
            self.planes = tuple(  # Y (ch, cw), U and V (ch / 2, cw / 2) uint8, stored orientation
                np.frombuffer(p, np.uint8).reshape(h, p.line_size)[:, :w].copy()
                for p, (h, w) in zip(frame.planes, sizes)
            )
            self.colorspace, self.color_range = frame.colorspace, frame.color_range
        else:  # the decode thread's reformatter: a whole frame, the same size all along
            self.rgb = _to_rgb(frame)  # (ch, cw, 3) stored orientation

    @property
    def shape(self) -> tuple[int, int]:
        """Displayed (H, W)."""
        h, w = self.coded_hw
        return (w, h) if self.rotation in (90, 270) else (h, w)

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.planes) if self.planes is not None else self.rgb.nbytes

    def _coded_rect(self, x0: int, y0: int, x1: int, y1: int) -> tuple[int, int, int, int]:
        """Displayed [x0, x1) x [y0, y1) -> the same pixels' rectangle in stored orientation."""
        ch, cw = self.coded_hw
        if self.rotation == 90:  # stored (x, y) is displayed (ch - 1 - y, x)
            return y0, ch - x1, y1, ch - x0
        if self.rotation == 180:
            return cw - x1, ch - y1, cw - x0, ch - y0
        if self.rotation == 270:  # stored (x, y) is displayed (y, cw - 1 - x)
            return cw - y1, x0, cw - y0, x1
        return x0, y0, x1, y1

    def crop(self, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
        """(y1 - y0, x1 - x0, 3) uint8 RGB of displayed pixels [x0, x1) x [y0, y1) (inside the frame).

        Converted by libswscale exactly like a whole frame; chroma at the crop's edge may differ by
        a rounding step since the conversion sees only the (even-aligned) crop.
        """
        import av

        h, w = self.shape
        if not (0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h):
            raise ValueError(f"crop [{x0}, {x1}) x [{y0}, {y1}) is not inside the {w}x{h} frame")
        a0, b0, a1, b1 = self._coded_rect(x0, y0, x1, y1)
        if self.planes is not None:
            e0, f0 = a0 // 2 * 2, b0 // 2 * 2  # yuv420p: chroma covers 2x2 pixels, align to it
            e1, f1 = a1 + a1 % 2, b1 + b1 % 2
            y, u, v = self.planes
            # the crop's planes written straight into a new frame's buffers (the frame
            # VideoFrame.from_ndarray would build, less the packed copy it is built from)
            frame = av.VideoFrame(e1 - e0, f1 - f0, "yuv420p")
            regions = (y[f0:f1, e0:e1], u[f0 // 2 : f1 // 2, e0 // 2 : e1 // 2], v[f0 // 2 : f1 // 2, e0 // 2 : e1 // 2])
            for plane, src in zip(frame.planes, regions):  # Y (f1-f0, e1-e0), U and V half that
                rows, cols = src.shape
                np.frombuffer(plane, np.uint8).reshape(rows, plane.line_size)[:, :cols] = src
            frame.colorspace, frame.color_range = self.colorspace, self.color_range
            # One swscale thread for a face-sized crop (a thread pool costs more than it saves),
            # the automatic count for large frames (the larger copies the face finder searches).
            rgb = _to_rgb(frame)[b0 - f0 : b1 - f0, a0 - e0 : a1 - e0]  # (b1-b0, a1-a0, 3)
        else:
            rgb = self.rgb[b0:b1, a0:a1]
        k = -(self.rotation // 90)
        return np.ascontiguousarray(np.rot90(rgb, k) if k % 4 else rgb)  # (y1 - y0, x1 - x0, 3)


@dataclass
class Frames:
    """Decoded frames with where they came from."""

    frames: np.ndarray  # (N, H, W, 3) uint8 RGB, rotation applied
    times: np.ndarray  # (N,) float64 seconds: actual presentation times of the returned frames
    indices: np.ndarray  # (N,) int64 frame positions in the stream (`VideoInfo.frame_index`)
    scale: float  # returned width / displayed width (1.0 if not resized)
    strategy: str = ""  # "sequential" or "seek": how they were decoded ("auto" resolved)
    full: list[FullFrame] | None = None  # (N,) full-resolution handles, with read_frames(keep_full=True)

    def __len__(self) -> int:
        return len(self.frames)


# --------------------------------------------------------------------------------------------
# Opening files and turning PyAV failures into MediaError


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError(path, "file does not exist")
    if not path.is_file():
        raise MediaError(path, "is not a regular file")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)")


def _sniff(path: Path) -> str | None:
    """Container family guessed from the first bytes, or None when they look like no media."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError:
        return None
    for offset, magic, name in _MAGIC:
        if head[offset : offset + len(magic)] == magic:
            return name
    return None


def sniff_container(path: str | Path) -> str | None:
    """The container family a file's first bytes announce ("MP4/MOV", "Matroska/WebM", ...), or
    None when they look like no media: tells a corrupt video from a file that is not one."""
    return _sniff(Path(path))


def _describe(path: Path, exc: BaseException) -> str:
    """A human cause for a PyAV/FFmpeg failure."""
    import av

    detail = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    if isinstance(exc, av.error.InvalidDataError) or "Invalid data" in detail:
        kind = _sniff(path)
        if kind is None:
            return f"not a media file FFmpeg can read ({detail})"
        return f"looks like a media file ({kind}) but is truncated or corrupt ({detail})"
    if isinstance(exc, EOFError):
        return "unexpected end of file: truncated or corrupt"
    return f"cannot be decoded: truncated or corrupt ({type(exc).__name__}: {detail})"


@contextlib.contextmanager
def media_errors(path: str | Path) -> Iterator[None]:
    """Turn PyAV/FFmpeg exceptions raised inside the block into MediaError(path, cause)."""
    import av

    try:
        yield
    except MediaError:
        raise
    except (av.error.FFmpegError, EOFError, OSError) as exc:
        raise MediaError(path, _describe(Path(path), exc)) from exc


@contextlib.contextmanager
def open_media(path: str | Path):
    """Open `path` for reading with PyAV after checking it exists and is not empty.

    Yields the input container; any PyAV error inside the block becomes a MediaError.
    """
    import av

    path = Path(path)
    _check_file(path)
    with media_errors(path):
        # Damaged tags must not stop decoding: undecodable metadata text is replaced, not raised.
        container = av.open(str(path), mode="r", metadata_errors="replace")
        try:
            yield container
        finally:
            container.close()


def _video_stream(container, path: Path):
    if not container.streams.video:
        raise MediaError(path, "has no video stream")
    return container.streams.video[0]


# --------------------------------------------------------------------------------------------
# Recognising videos


# Containers of the video files met in datasets: recognised by their extension alone (a broken
# one is reported when it is decoded). Any other file is opened to see what it is
# (`is_video_file`), except the extensions of what is certainly not a video (NOT_VIDEO_EXTENSIONS).
VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".ts", ".m2ts", ".mts", ".mpg", ".mpeg", ".m2v",
    ".vob", ".3gp", ".3g2", ".flv", ".f4v", ".wmv", ".asf", ".ogv", ".mxf", ".dv", ".y4m", ".divx",
    ".rm", ".rmvb", ".nut",
)
NOT_VIDEO_EXTENSIONS: tuple[str, ...] = (
    ".json", ".jsonl", ".csv", ".tsv", ".txt", ".md", ".yaml", ".yml", ".xml", ".html", ".log", ".pdf",
    ".py", ".sh", ".npz", ".npy", ".pt", ".pth", ".ckpt", ".safetensors", ".pkl", ".zip", ".tar", ".gz",
    ".bz2", ".xz", ".7z", ".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".heic",
    ".wav", ".mp3", ".flac", ".aac", ".m4a", ".ogg", ".opus", ".wma", ".srt", ".vtt", ".ass", ".sub",
    ".idx", ".tmp", ".part", ".db", ".sqlite", ".parquet", ".arrow",
)
# FFmpeg demuxers that read still images: a picture is not a video, whatever its extension.
_IMAGE_DEMUXERS = ("image2", "_pipe", "gif", "apng", "webp")


def is_video_file(path: str | Path) -> bool:
    """True when `path` is a video: a known video extension (VIDEO_EXTENSIONS, a hint that needs
    no opening), or any other regular file (not NOT_VIDEO_EXTENSIONS) that PyAV opens and finds
    a video stream in that is not a still image. Hidden files are never videos."""
    path = Path(path)
    if path.name.startswith("."):
        return False
    ext = path.suffix.lower()
    if ext in VIDEO_EXTENSIONS:
        return True
    if ext in NOT_VIDEO_EXTENSIONS:
        return False
    import av

    try:
        if not path.is_file() or path.stat().st_size == 0:
            return False
        with av.open(str(path), mode="r") as container:
            fmt = container.format.name or ""
            if any(k in fmt for k in _IMAGE_DEMUXERS):
                return False
            return bool(container.streams.video)
    except (av.error.FFmpegError, OSError, EOFError, UnicodeDecodeError):
        return False


# --------------------------------------------------------------------------------------------
# Probe


def _parse_hms(value: str) -> float | None:
    """'HH:MM:SS.nnnnnnnnn' (Matroska DURATION tag) -> seconds."""
    try:
        h, m, s = value.strip().split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        return None


def _display_rotation(frame) -> int:
    """Clockwise degrees to rotate `frame` for display, from its display matrix.

    PyAV's `frame.rotation` is av_display_rotation_get (counter-clockwise); FFmpeg's own
    autorotate uses its negation, which is also what the legacy `rotate` tag stored.
    """
    rot = frame.rotation
    if rot is None or (isinstance(rot, float) and math.isnan(rot)):
        return 0
    return int(round(-rot / 90.0)) * 90 % 360


def probe(path: str | Path) -> VideoInfo:
    """Read a video's timing, displayed size, rotation and audio presence.

    Decodes the first frame (rotation lives in its display matrix, and a file that cannot decode
    one frame fails here). mkv/webm store no frame count: packets are counted when the file is
    below COUNT_MAX_BYTES (a demux pass, no decoding), else n_frames = round(duration * fps) and
    `n_frames_estimated` is set. A file whose packets stop well before its stated duration is
    reported as truncated.
    """
    path = Path(path)
    with open_media(path) as container:
        vs = _video_stream(container, path)
        tb = vs.time_base
        rate = vs.average_rate or vs.guessed_rate or vs.base_rate
        if not rate or rate <= 0:
            raise MediaError(path, "video stream has no frame rate")
        fps = float(rate)
        start = float(vs.start_time * tb) if vs.start_time is not None and tb else 0.0

        duration = None
        if vs.duration is not None and tb:
            duration = float(vs.duration * tb)
        if not duration and "DURATION" in vs.metadata:
            duration = _parse_hms(vs.metadata["DURATION"])
        if not duration and vs.frames:
            duration = vs.frames / fps
        if not duration and container.duration:
            duration = container.duration / 1_000_000 - start
        if not duration or duration <= 0:
            raise MediaError(path, "cannot determine the video duration")

        vs.thread_type = "SLICE"  # one frame: skip the frame-threading pipeline start-up
        first = next(container.decode(vs), None)
        if first is None:
            raise MediaError(path, "video stream has no decodable frame: truncated or corrupt")
        rotation = _display_rotation(first)
        coded_w, coded_h = first.width, first.height
        codec = vs.codec_context.name

        estimated = False
        n_frames = int(vs.frames or 0)
        frame_times = None
        if path.stat().st_size <= COUNT_MAX_BYTES:
            container.seek(0)
            counted, end, pts = _count_packets(container, vs)
            if n_frames <= 0:
                n_frames = counted
                if end is not None and end - start < duration - max(0.5, 2.0 / fps):
                    raise MediaError(
                        path,
                        f"truncated: the header says {duration:.3f} s of video but packets stop "
                        f"at {end - start:.3f} s",
                    )
            if pts is not None and len(pts) == n_frames:
                frame_times = np.sort(pts) - start  # (n_frames,) presentation order
            if end is not None and end - start > duration:
                # mp4 states a stream's duration from its decode timestamps: with B-frames and a
                # variable frame rate the last frames are shown after it (a phone's VFR mp4: last
                # frame at 2.161 s, stated duration 2.067 s), and their own times were refused
                duration = end - start
        elif n_frames <= 0:
            n_frames, estimated = max(1, round(duration * fps)), True

        audio = container.streams.audio
        audio_rate = int(audio[0].codec_context.sample_rate or audio[0].rate or 0) if audio else None
    if rotation in (90, 270):
        coded_w, coded_h = coded_h, coded_w
    return VideoInfo(
        path=path, duration=duration, fps=fps, n_frames=n_frames, width=coded_w, height=coded_h,
        rotation=rotation, has_audio=bool(audio), audio_rate=audio_rate or None, codec=codec,
        start_time=start, n_frames_estimated=estimated, frame_times=frame_times,
    )


def _count_packets(container, vs) -> tuple[int, float | None, np.ndarray | None]:
    """Video packets without decoding: their number, the end time (seconds) of the last one, and
    every packet's presentation time in seconds (None when a packet has no pts)."""
    n, end = 0, None
    tb = vs.time_base
    pts: list[float] | None = []
    for packet in container.demux(vs):
        if packet.size == 0 or packet.is_discard:  # the flush packet; edit-list discards
            continue
        n += 1
        if packet.pts is not None and tb:
            t = float(packet.pts * tb)
            if pts is not None:
                pts.append(t)
            t += float((packet.duration or 0) * tb)
            end = t if end is None else max(end, t)
        else:
            pts = None
    return n, end, None if pts is None else np.asarray(pts, np.float64)


# --------------------------------------------------------------------------------------------
# Times


def sample_times(info: VideoInfo, n: int) -> np.ndarray:
    """(n,) times of n evenly spaced frames: the frame at the centre of each of n equal chunks
    of the stream's frames.

    n >= n_frames gives every frame once. Times are the frames' own presentation times when
    `probe` read them (variable frame rate: still every frame once), else index / fps.
    """
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    if n >= info.n_frames:
        idx = np.arange(info.n_frames)  # (n_frames,)
    else:
        idx = np.floor((np.arange(n) + 0.5) * info.n_frames / n).astype(np.int64)  # (n,)
    if info.frame_times is not None and len(info.frame_times) == info.n_frames:
        return info.frame_times[idx].astype(np.float64)  # (n,) seconds
    return idx / info.fps  # (n,) seconds


def check_times(info: VideoInfo, times: Sequence[float] | np.ndarray) -> np.ndarray:
    """Times as a float64 array, tiny overshoot clamped into [0, duration], else MediaError."""
    t = np.asarray(times, dtype=np.float64).reshape(-1)  # (N,)
    if not np.all(np.isfinite(t)):
        raise MediaError(info.path, f"requested times must be finite numbers, got {t[~np.isfinite(t)][:3]}")
    bad = (t < -TIME_TOLERANCE) | (t > info.duration + TIME_TOLERANCE)
    if bad.any():
        raise MediaError(
            info.path,
            f"requested time {t[bad][0]:.3f} s is outside the video [0, {info.duration:.3f}] s",
        )
    return np.clip(t, 0.0, info.duration)


# --------------------------------------------------------------------------------------------
# Decoding


def _output_size(
    info_hw: tuple[int, int], size: tuple[int, int] | None, max_side: int | None
) -> tuple[int, int, float]:
    """(out_h, out_w, scale) for displayed size `info_hw` = (H, W) and the requested resize."""
    h, w = info_hw
    if size is not None and max_side is not None:
        raise ValueError("give size or max_side, not both")
    if size is not None:
        oh, ow = int(size[0]), int(size[1])
        if oh <= 0 or ow <= 0:
            raise ValueError(f"size must be positive (H, W), got {size}")
        return oh, ow, ow / w
    if max_side is not None:
        if max_side <= 0:
            raise ValueError(f"max_side must be positive, got {max_side}")
        if max(h, w) > max_side:
            f = max_side / max(h, w)
            oh, ow = max(1, round(h * f)), max(1, round(w * f))
            return oh, ow, ow / w
    return h, w, 1.0


class _Converter:
    """Frame -> (H, W, 3) uint8 RGB for display: resize in libswscale, then rotate."""

    def __init__(self, rotation: int, out_h: int, out_w: int):
        self.k = -(rotation // 90)  # np.rot90 turns counter-clockwise; rotation is clockwise
        # libswscale works on the stored (coded) orientation: swap for quarter turns.
        self.cw, self.ch = (out_h, out_w) if rotation in (90, 270) else (out_w, out_h)
        # One reformatter for all the frames: its SwsContext (and swscale's thread pool) is
        # kept while the frames' size and format stay the same, where frame.to_ndarray makes a
        # new one per frame (224x224 h264, iter_frames_every: 0.53 -> 0.12-0.15 ms per frame
        # decoded and converted, one swscale thread; decoding alone 0.09-0.12).
        # A converter belongs to one decoding generator, so to one thread at a time.
        import av.video.reformatter

        self.reformatter = av.video.reformatter.VideoReformatter()

    def __call__(self, frame) -> np.ndarray:
        if frame.width == self.cw and frame.height == self.ch:
            rgb = _to_rgb(frame, self.reformatter)  # (h, w, 3) stored orientation
        else:
            # area averaging for downscales: no aliasing, and faster than the bilinear default
            # (1.4 vs 1.9 ms for 1080p -> 640x360)
            down = self.cw < frame.width and self.ch < frame.height
            rgb = _to_rgb(frame, self.reformatter, width=self.cw, height=self.ch,
                          interpolation="AREA" if down else None)
        if self.k % 4:
            rgb = np.ascontiguousarray(np.rot90(rgb, self.k))  # (H, W, 3) displayed
        return rgb


def _set_threads(vs, mode: str) -> None:
    # Frame threading speeds up a long sequential pass but makes every seek pay its pipeline
    # start-up (FACTS.md), so seeks use slice threading only.
    vs.thread_type = "AUTO" if mode == "sequential" else "SLICE"


def _frame_time(frame, vs, start: float, last: float | None, fps: float) -> float:
    if frame.pts is not None:
        return float(frame.pts * vs.time_base) - start
    return 0.0 if last is None else last + 1.0 / fps


def choose_strategy(info: VideoInfo, times: Sequence[float] | np.ndarray, stream=None) -> str:
    """The "auto" rule: "seek" when it should decode fewer frames than one sequential pass.

    With the demuxer's keyframe index (`stream.index_entries` of an open PyAV video stream,
    complete for mp4/mov) the frames each strategy decodes are counted: sequential = every frame
    up to the last wanted one; seek = for each wanted frame the distance from its keyframe, times
    SEEK_FRAME_FACTOR, plus SEEK_OVERHEAD_FRAMES per seek. Without an index (mkv/webm load cues
    lazily): seek iff len(times) * SEEK_COST_FRAMES < n_frames (long videos or few samples).
    """
    t = np.unique(np.asarray(times, dtype=np.float64))  # (U,) sorted
    if len(t) == 0:
        return "sequential"
    entries = stream.index_entries if stream is not None else None
    if entries is None or len(entries) < 0.9 * info.n_frames or not stream.time_base:
        return "seek" if len(t) * SEEK_COST_FRAMES < info.n_frames else "sequential"
    ts = [int((x + info.start_time) / stream.time_base) for x in t]
    pos = np.array([entries.search_timestamp(x, backward=True, any_frame=True) for x in ts])  # (U,)
    key = np.array([entries.search_timestamp(x, backward=True, any_frame=False) for x in ts])  # (U,)
    pos, key = np.maximum(pos, 0), np.maximum(key, 0)  # before the first entry: from the start
    sequential = pos.max() + 2  # one frame past the last target shows it is the last <= t
    seek = SEEK_FRAME_FACTOR * (pos - key + 2).sum() + SEEK_OVERHEAD_FRAMES * len(t)
    return "seek" if seek < sequential else "sequential"


def read_frames(
    path: str | Path,
    times: Sequence[float] | np.ndarray | None = None,
    *,
    n: int | None = None,
    size: tuple[int, int] | None = None,
    max_side: int | None = None,
    strategy: str = "auto",
    info: VideoInfo | None = None,
    keep_full: bool = False,
) -> Frames:
    """Frames displayed at `times` (seconds), or at `n` evenly spaced times (`sample_times`).

    For each time the frame whose presentation time is nearest is returned (a frame matches t
    within half its interval, ties to the earlier frame): requested frame times match their frame
    even where the container rounds timestamps (mkv/webm store milliseconds: 29.97 fps frames
    are up to 0.5 ms off their nominal k / fps) or the frame rate varies. Output order follows `times`. `size=(H, W)` or `max_side`
    downscales during the RGB conversion. `strategy`: "sequential" decodes once and converts only
    wanted frames; "seek" seeks to each wanted time and decodes forward from the keyframe;
    "auto" picks the one expected to decode fewer frames (`choose_strategy`).
    `keep_full=True` also keeps each frame at full resolution, unconverted (`Frames.full`, a
    `FullFrame` per frame): detect on small `frames`, then convert only the crops (`FullFrame.crop`).
    To work on each frame while the next ones decode, use `iter_frames_at`.
    """
    if (times is None) == (n is None):
        raise ValueError("give exactly one of times or n")
    info = info if info is not None else probe(path)
    req = sample_times(info, n) if n is not None else check_times(info, times)  # (N,)
    out_h, out_w, scale = _output_size((info.height, info.width), size, max_side)
    uniq = np.unique(req)  # sorted (U,)
    used: dict[str, str] = {}
    picked = list(_iter_picked(path, info, uniq, out_h, out_w, strategy, keep_full, used))  # (U,)
    pos = np.searchsorted(uniq, req)  # (N,) request -> unique slot
    u_times = np.asarray([t for t, _, _ in picked], dtype=np.float64)  # (U,)
    frames = (np.stack([rgb for _, rgb, _ in picked])[pos] if picked
              else np.zeros((0, out_h, out_w, 3), np.uint8))  # (N, H, W, 3)
    f_times = u_times[pos] if len(u_times) else np.zeros(0)  # (N,)
    indices = info.frame_index(f_times)  # (N,) positions in the stream
    full = [picked[p][2] for p in pos] if keep_full else None  # (N,) shared for repeated frames
    return Frames(frames=frames, times=f_times, indices=indices, scale=scale, strategy=used.get("strategy", ""),
                  full=full)


def iter_frames_at(
    path: str | Path,
    times: Sequence[float] | np.ndarray,
    *,
    size: tuple[int, int] | None = None,
    max_side: int | None = None,
    strategy: str = "auto",
    info: VideoInfo | None = None,
    keep_full: bool = False,
) -> Iterator[tuple[float, np.ndarray, FullFrame | None]]:
    """`read_frames` one frame at a time: for each of the sorted unique `times`, yields
    (presentation time in seconds, (H, W, 3) uint8 RGB, FullFrame or None) as soon as it is
    decoded. Nothing is kept: memory holds one frame. Wrap it in `fakelens.io.prefetch.background`
    to decode in a thread while the caller works on the frames (PyAV releases the GIL).
    """
    info = info if info is not None else probe(path)
    uniq = np.unique(check_times(info, times))  # sorted (U,)
    out_h, out_w, _ = _output_size((info.height, info.width), size, max_side)
    yield from _iter_picked(path, info, uniq, out_h, out_w, strategy, keep_full, {})


def _iter_picked(path: str | Path, info: VideoInfo, uniq: np.ndarray, out_h: int, out_w: int, strategy: str,
                 keep_full: bool, used: dict[str, str]) -> Iterator[tuple[float, np.ndarray, FullFrame | None]]:
    """(time, RGB, FullFrame or None) for each sorted unique time in `uniq`, converting each
    distinct frame once; `used["strategy"]` is set to the strategy "auto" resolved to."""
    path = Path(path)
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; choose from {STRATEGIES}")
    convert = _Converter(info.rotation, out_h, out_w)
    with open_media(path) as container:
        vs = _video_stream(container, path)
        if strategy == "auto":
            strategy = choose_strategy(info, uniq, vs)
        used["strategy"] = strategy
        _set_threads(vs, strategy)
        walk = _walk_sequential if strategy == "sequential" else _walk_seek
        last: tuple[float, np.ndarray, FullFrame | None] | None = None
        for t_frame, frame in walk(container, vs, info, uniq):
            if last is None or last[0] != t_frame:  # targets ascend: a repeated frame is the last one
                full = FullFrame(frame, info.rotation) if keep_full else None
                last = (t_frame, convert(frame), full)  # (H, W, 3), full resolution
            yield last


def _truncated(info: VideoInfo, t: float, last: float | None) -> MediaError:
    where = "no frame" if last is None else f"the last frame at {last:.3f} s"
    return MediaError(
        info.path, f"truncated or corrupt: frame for {t:.3f} s requested but decoding ended with {where}"
    )


def _assign_forward(frames_iter, vs, info: VideoInfo, targets: list[float]) -> Iterator[tuple[float, object]]:
    """Walk decoded frames, yielding (time, frame) nearest to each target (ascending times).

    A target goes to the previous frame while it lies at most half-way to the next one (the
    midpoint of two presentation times: half a frame of tolerance on either side, whatever the
    local frame interval). Consumes targets from the front; stops decoding once the last target
    is settled.
    """
    prev = None
    prev_t = None
    for frame in frames_iter:
        t_f = _frame_time(frame, vs, info.start_time, prev_t, info.fps)
        if prev is not None:
            mid = (prev_t + t_f) / 2
            while targets and targets[0] <= mid + _EPS:
                targets.pop(0)
                yield prev_t, prev
        prev, prev_t = frame, t_f
        if not targets:
            break
    # Decoding ended: remaining targets are shown the last frame, unless the stream stopped
    # clearly short of them (more than 1.5 frame intervals before the target): a truncated file.
    while targets:
        t = targets[0]
        if prev is None or t - prev_t > 1.5 / info.fps + _EPS:
            raise _truncated(info, t, prev_t)
        targets.pop(0)
        yield prev_t, prev


def _walk_sequential(container, vs, info: VideoInfo, uniq: np.ndarray) -> Iterator[tuple[float, object]]:
    """One decode pass from the start, stopping after the last wanted time."""
    yield from _assign_forward(container.decode(vs), vs, info, [float(t) for t in uniq])


def _walk_seek(container, vs, info: VideoInfo, uniq: np.ndarray) -> Iterator[tuple[float, object]]:
    """One seek per wanted time (to the keyframe before it), then decode forward to it.

    The demuxer may land after the wanted time (a sparse index), or, in containers seeked by
    bytes (MPEG-TS, MPEG-PS), after the last keyframe, where nothing decodes: then it seeks
    further back (1 s, 2 s, 4 s ... before), down to the start of the file.
    A seek to the start that still lands late is decoded forward from there (frames before the
    landing are then shown the first decoded frame: only a file whose first frames cannot be
    decoded does that).
    """
    tb = vs.time_base
    for t in uniq:
        t = float(t)
        back = 0.0
        while True:
            target = max(0.0, t - back)
            # At the start, seek before it: byte-seeking demuxers can land after their first
            # keyframe even for a seek to the first timestamp exactly.
            offset = (int(Fraction(target + info.start_time).limit_denominator(10**9) / tb) if target > 0
                      else min(0, int(info.start_time / tb)) - 1)
            container.seek(offset, stream=vs, backward=True, any_frame=False)
            frames_iter = container.decode(vs)
            first = next(frames_iter, None)
            if first is None:
                if target <= 0.0:
                    raise _truncated(info, t, None)
                back = max(1.0, 2 * back)
                continue
            t0 = _frame_time(first, vs, info.start_time, None, info.fps)
            if t0 > t + _EPS and t0 > _EPS and target > 0.0:
                back = max(1.0, 2 * back)
                continue
            break
        yield from _assign_forward(itertools.chain([first], frames_iter), vs, info, [t])


def iter_frames(
    path: str | Path,
    *,
    max_side: int | None = None,
    size: tuple[int, int] | None = None,
    every: int = 1,
) -> Iterator[tuple[float, np.ndarray]]:
    """Stream (time in seconds, (H, W, 3) uint8 RGB) for every `every`-th frame, in order.

    Memory stays bounded: one frame is converted at a time.
    """
    for t, rgb, _ in iter_frames_every(path, max_side=max_side, size=size, every=every):
        yield t, rgb


def iter_frames_every(
    path: str | Path,
    *,
    max_side: int | None = None,
    size: tuple[int, int] | None = None,
    every: int = 1,
    convert_every: int = 1,
    keep_full: bool = False,
    info: VideoInfo | None = None,
    centred: bool = False,
) -> Iterator[tuple[float, np.ndarray | None, FullFrame | None]]:
    """Every `every`-th frame in order as (time in seconds, RGB or None, FullFrame or None): only
    every `convert_every`-th of those frames is converted to (H, W, 3) uint8 RGB (the others give
    None: dense sampling converts just the frames a face detector looks at), and with `keep_full`
    each comes with its unconverted full-resolution `FullFrame` (for crops). One frame is held at
    a time unless the caller keeps the FullFrames.

    The video is cut into runs of `every` frames from its first: one frame a run, the run's first
    (frames 0, k, 2k, ...), or with `centred` its middle one (frame (k - 1) // 2 of the run, the
    earlier of the two middle frames for an even k: frames 2, 7, 12, ... for k = 5), so that the
    frame stands for the instant at the run's centre; a last run too short to reach its middle
    frame gives its last frame (a video shorter than one run still gives one).
    """
    path = Path(path)
    if every < 1 or convert_every < 1:
        raise ValueError(f"every and convert_every must be >= 1, got {every} and {convert_every}")
    info = info if info is not None else probe(path)
    out_h, out_w, _ = _output_size((info.height, info.width), size, max_side)
    convert = _Converter(info.rotation, out_h, out_w)
    phase = (every - 1) // 2 if centred else 0  # the frame of each run that is sampled
    with open_media(path) as container:
        vs = _video_stream(container, path)
        _set_threads(vs, "sequential")
        last = None
        k = 0
        waiting = None  # (time, frame): the latest frame of a run whose sampled frame has not come yet

        def emit(t, frame):
            nonlocal k
            rgb = convert(frame) if k % convert_every == 0 else None
            k += 1
            return t, rgb, (FullFrame(frame, info.rotation) if keep_full else None)

        for i, frame in enumerate(container.decode(vs)):
            last = _frame_time(frame, vs, info.start_time, last, info.fps)
            if i % every != phase:
                if i % every < phase:
                    waiting = (last, frame)
                continue
            waiting = None
            yield emit(last, frame)
        if waiting is not None:  # the last run ended before its middle frame
            yield emit(*waiting)
