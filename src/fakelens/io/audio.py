"""Decode a media file's audio track to mono float32 at a chosen rate with PyAV.

Mono is the mean of the channels, without gain and without clipping (libswresample's own mono
downmix is 0.707 (L + R), 3 dB louder than a mono source of the same content, and clipped), so a
stereo and a mono copy of one recording give the same waveform and log-mel level. Sources with
more than two channels are first downmixed to stereo by libswresample's standard matrix (centre
and surrounds at -3 dB), then averaged.

Sample i of the result is at time i / sample_rate seconds on the same clock as the video frames
(origin = the first video frame when there is a video stream), so audio and frames line up.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fakelens.errors import MediaError
from fakelens.io.video import TIME_TOLERANCE, _parse_hms, open_media


def has_audio(path: str | Path) -> bool:
    """True when the file has at least one audio stream."""
    with open_media(path) as container:
        return bool(container.streams.audio)


def _stream_seconds(stream, value) -> float | None:
    if value is None or not stream.time_base:
        return None
    return float(value * stream.time_base)


def read_audio(
    path: str | Path,
    sample_rate: int = 16000,
    start: float | None = None,
    end: float | None = None,
) -> np.ndarray:
    """(S,) float32 mono samples at `sample_rate` (the mean of the channels, see above), optionally
    only [start, end) seconds. Values are not clipped: a lossy codec's overshoot past +-1 is kept.

    Codec padding past the stream's stated duration is cut (AAC pads its last frame).
    """
    import av

    path = Path(path)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    with open_media(path) as container:
        if not container.streams.audio:
            raise MediaError(path, "has no audio stream")
        stream = container.streams.audio[0]
        a_start = _stream_seconds(stream, stream.start_time) or 0.0
        origin = a_start
        if container.streams.video:
            v = container.streams.video[0]
            v_start = _stream_seconds(v, v.start_time)
            origin = v_start if v_start is not None else a_start
        duration = _stream_seconds(stream, stream.duration)
        if duration is None and "DURATION" in stream.metadata:
            duration = _parse_hms(stream.metadata["DURATION"])
        if duration is None and container.duration:
            duration = container.duration / 1_000_000 - a_start
        end_time = a_start - origin + duration if duration else None  # on the output clock

        lo = 0.0 if start is None else float(start)
        hi = end_time if end is None else float(end)
        if lo < -TIME_TOLERANCE:
            raise MediaError(path, f"audio start {lo:.3f} s is negative")
        if end_time is not None and hi is not None and hi > end_time + TIME_TOLERANCE:
            raise MediaError(path, f"audio end {hi:.3f} s is past the audio's end ({end_time:.3f} s)")
        if hi is not None and hi <= lo:
            raise MediaError(path, f"audio range [{lo:.3f}, {hi:.3f}] s is empty")
        lo = max(lo, 0.0)

        resampler = None  # made at the first frame, when the channel layout is known
        # One growing buffer instead of a list of chunks and their concatenation: the peak stays
        # ~1x the result (10 min at 16 kHz = 38 MB) rather than 3-4x.
        span = (hi if hi is not None else (end_time or 0.0)) - lo
        samples = _Buffer(int((max(span, 0.0) + 2 * 0.05 + 1.0) * sample_rate))
        first_time: float | None = None  # output-clock time of the first kept input sample
        margin = 0.05  # seconds kept on each side so the resampler's edges fall outside the cut
        for frame in container.decode(stream):
            t0 = (float(frame.pts * frame.time_base) if frame.pts is not None else None)
            if t0 is not None:
                t0 -= origin
                t1 = t0 + frame.samples / frame.sample_rate
                if t1 < lo - margin:
                    continue
                if hi is not None and t0 > hi + margin:
                    break
            if first_time is None:
                first_time = t0 if t0 is not None else a_start - origin
            if resampler is None:
                channels = frame.layout.nb_channels
                layout = frame.layout.name if channels <= 2 else "stereo"
                resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
            for out in resampler.resample(frame):
                samples.append(_mean_channels(out))
        for out in resampler.resample(None) if resampler is not None else ():
            samples.append(_mean_channels(out))

    samples = samples.array()  # (S,) float32, a view of the buffer
    first_time = first_time or 0.0
    # The decoded run starts at first_time on the output clock: cut [lo, hi) out of it, padding
    # with silence where the audio starts after lo (a late audio track).
    i0 = round((lo - first_time) * sample_rate)
    if i0 < 0:
        samples = np.concatenate([np.zeros(-i0, np.float32), samples])
        i0 = 0
    n = len(samples) - i0 if hi is None else round((hi - lo) * sample_rate)
    return samples[i0 : i0 + n]  # (S,)


def _mean_channels(frame) -> np.ndarray:
    """A planar float frame -> (samples,) float32 mean of its channels."""
    x = frame.to_ndarray()  # (C, samples) fltp
    return x[0] if len(x) == 1 else x.mean(axis=0, dtype=np.float32)


class _Buffer:
    """A float32 array filled by appending, grown by doubling when the initial guess is short."""

    def __init__(self, capacity: int):
        self.data = np.empty(max(capacity, 1024), np.float32)  # (capacity,)
        self.n = 0

    def append(self, x: np.ndarray) -> None:
        if self.n + len(x) > len(self.data):
            grown = np.empty(max(2 * len(self.data), self.n + len(x)), np.float32)
            grown[: self.n] = self.data[: self.n]
            self.data = grown
        self.data[self.n : self.n + len(x)] = x
        self.n += len(x)

    def array(self) -> np.ndarray:
        return self.data[: self.n]  # (n,) view
