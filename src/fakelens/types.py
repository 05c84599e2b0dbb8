"""Core types shared by every stage: what a video is, its label, its fake segments, a prediction.

Times are seconds everywhere. Format readers produce `VideoRecord`s; nothing downstream reads raw JSON.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from fakelens.errors import InvalidValueError


class Label(str, Enum):
    """Video-level label. UNKNOWN is a test video whose label is not shipped."""

    REAL = "real"
    FAKE = "fake"
    UNKNOWN = "unknown"

    @property
    def as_int(self) -> int:
        """1 = fake, 0 = real; raises for UNKNOWN."""
        if self is Label.UNKNOWN:
            raise ValueError("label is unknown")
        return int(self is Label.FAKE)


class Modality(str, Enum):
    """Which stream of a video was manipulated. UNKNOWN: a fake whose dataset does not say
    (DFDC, CSV labels, real/fake folders); its per-stream labels are unknown, not "visual"."""

    NONE = "none"
    VISUAL = "visual"
    AUDIO = "audio"
    BOTH = "both"
    UNKNOWN = "unknown"

    @classmethod
    def from_flags(cls, visual: bool, audio: bool) -> "Modality":
        if visual and audio:
            return cls.BOTH
        if visual:
            return cls.VISUAL
        if audio:
            return cls.AUDIO
        return cls.NONE

    @property
    def visual(self) -> bool:
        """The visual stream is known to be manipulated."""
        return self in (Modality.VISUAL, Modality.BOTH)

    @property
    def audio(self) -> bool:
        """The audio stream is known to be manipulated."""
        return self in (Modality.AUDIO, Modality.BOTH)

    @property
    def known(self) -> bool:
        """The dataset says which streams were manipulated (NONE: neither)."""
        return self is not Modality.UNKNOWN


@dataclass(frozen=True, order=True)
class Segment:
    """A time interval [start, end) in seconds."""

    start: float
    end: float

    def __post_init__(self) -> None:
        if not (math.isfinite(self.start) and math.isfinite(self.end)):
            raise InvalidValueError(f"segment bounds must be finite, got [{self.start}, {self.end}]")
        if self.start < 0 or self.end <= self.start:
            raise InvalidValueError(f"segment needs 0 <= start < end, got [{self.start}, {self.end}]")

    @property
    def duration(self) -> float:
        return self.end - self.start

    def iou(self, other: "Segment") -> float:
        """Temporal IoU with the official definition: overlap / (max end - min start)."""
        inter = max(0.0, min(self.end, other.end) - max(self.start, other.start))
        union = max(self.end, other.end) - min(self.start, other.start)
        return inter / union if union > 0 else 0.0

    def to_list(self) -> list[float]:
        return [self.start, self.end]


# Tolerance of `frame_index`, in seconds: a time on the frame grid (k / fps) must give frame k
# although k / fps * fps is often k - 1e-15 in floating point (1.16 * 25), and although label
# files and submissions write times with 6 decimals: at 30000/1001 fps, round(k / fps, 6) is up
# to 5e-7 s below the grid (a third of the boundaries of a 10 s video), so 1e-6 s absorbs that
# rounding. Expressed in frames (1e-6 * fps: 3e-5 frame at 29.97 fps), at most 0.01 frame.
FRAME_GRID_TOLERANCE_S = 1e-6


def frame_index(t: float, fps: float) -> int:
    """The frame whose display interval [k / fps, (k + 1) / fps) holds time t: floor(t * fps),
    tolerant of floating-point error and 6-decimal rounding on the grid itself (see
    FRAME_GRID_TOLERANCE_S). The label rule of every per-frame label (`frame_labels`,
    `segment_steps`); renderers of labelled media use it too."""
    return int(math.floor(t * fps + min(FRAME_GRID_TOLERANCE_S * fps, 0.01)))


def frame_labels(segments: Iterable[Segment], fps: float, n_frames: int) -> np.ndarray:
    """Per-frame 0/1 labels: frames frame_index(start) to frame_index(end) (exclusive) are fake,
    i.e. int(start*fps) to int(end*fps) with segments on the frame grid read exactly.

    Returns an int64 array of shape (n_frames,).
    """
    if isinstance(fps, bool) or not isinstance(fps, (int, float, np.number)) or not (0 < fps < math.inf):
        raise InvalidValueError(f"frame rate must be a finite number > 0, got {fps!r}")
    if isinstance(n_frames, bool) or not isinstance(n_frames, (int, np.integer)) or n_frames < 0:
        raise InvalidValueError(f"frame count must be an integer >= 0, got {n_frames!r}")
    labels = np.zeros(n_frames, dtype=np.int64)  # (n_frames,)
    for seg in segments:
        # clamped to the video before int(): a segment ending at 1e308 s covers the rest of it, no overflow
        end = n_frames / fps
        a = max(0, frame_index(min(seg.start, end), fps))
        b = min(n_frames, frame_index(min(seg.end, end), fps))
        if b > a:
            labels[a:b] = 1
    return labels


def segment_steps(segments: Iterable["Segment | Sequence[float]"], fps: float, step_frames: int = 1,
                  first_frame: int = 0) -> np.ndarray:
    """Segments in seconds -> (S, 2) float64 edges in steps of a dense-feature grid, by the rule of
    `frame_labels` (`frame_index`): frames frame_index(start) to frame_index(end), exclusive, i.e.
    int(start*fps) to int(end*fps) with times on the frame grid read exactly, in steps of
    `step_frames` frames counted from frame `first_frame` (step j covers frames
    [first + j*k, first + (j+1)*k), i.e. seconds [(first + j*k)/fps, (first + (j+1)*k)/fps)).
    One row per segment, in order; a segment that covers no frame (inside one frame, as
    frame_labels marks none there) has end == start: no step is fake for it."""
    rows = []
    for seg in segments:
        start, end = (seg.start, seg.end) if isinstance(seg, Segment) else (float(seg[0]), float(seg[1]))
        a = frame_index(start, fps)
        b = max(frame_index(end, fps), a)
        rows.append(((a - first_frame) / step_frames, (b - first_frame) / step_frames))
    return np.asarray(rows, np.float64).reshape(-1, 2)  # (S, 2)


@dataclass(frozen=True)
class VideoRecord:
    """One video of a dataset, as every format reader produces it.

    `segments` are the fake time segments of any modality; `visual_segments` and
    `audio_segments` are the per-modality ones where the dataset ships them.
    """

    id: str
    path: Path | None
    label: Label
    segments: tuple[Segment, ...] = ()
    modality: Modality = Modality.NONE
    split: str | None = None
    original: str | None = None
    source: str = ""
    visual_segments: tuple[Segment, ...] = ()
    audio_segments: tuple[Segment, ...] = ()
    duration: float | None = None
    fps: float | None = None
    n_frames: int | None = None
    audio_model: str | None = None

    @property
    def is_fake(self) -> bool:
        return self.label is Label.FAKE

    @property
    def has_label(self) -> bool:
        return self.label is not Label.UNKNOWN

    def frame_labels(self, fps: float, n_frames: int) -> np.ndarray:
        """0/1 per frame from the fake segments; for a fake video without segments every frame is fake."""
        if self.is_fake and not self.segments:
            return np.ones(n_frames, dtype=np.int64)  # (n_frames,)
        return frame_labels(self.segments, fps, n_frames)


@dataclass(frozen=True, order=True)
class Proposal:
    """A temporal localization proposal: a fake segment with a confidence."""

    confidence: float
    start: float
    end: float

    def to_list(self) -> list[float]:
        return [self.confidence, self.start, self.end]


@dataclass
class FaceScore:
    """One face track of a video as the pipeline scored it (`Prediction.faces`).

    `index` is the track's position in the features (0 = the track with the most detections).
    Arrays cover only the sampled frames where this face was found (`found` in the cache):
    frames without the face are never scored.
    """

    index: int
    score: float  # P(fake) of this face: the run's aggregation over its own frames / clips
    frame_times: np.ndarray  # (T_f,) seconds
    frame_scores: np.ndarray | None = None  # (T_f,) P(fake) per frame (None: the model gives clip scores only)
    boxes: np.ndarray | None = None  # (T_f, 4) x1, y1, x2, y2 in displayed pixels
    detection: float | None = None  # mean detector confidence over the track


@dataclass
class Prediction:
    """What the inference pipeline returns for one video.

    `score` is P(fake) for the whole video. `frame_times`/`frame_scores` are the per-frame (or
    per-window) fakeness over time: for a face model, every sampled frame of the features with the
    highest P(fake) of the faces scored there, NaN where none was (no face found in that frame,
    see `faces` for each track's own frames). `fallback` names the documented fallback used, if any
    (e.g. "no_face: full frame"); it is None for a normal prediction. `faces` holds every
    scored face track and `face_aggregate` how their scores made `score` (e.g. "max"); `streams`
    says what the score rests on: "audio-visual", "visual only" or "audio only".
    """

    id: str
    score: float
    proposals: tuple[Proposal, ...] = ()
    frame_times: np.ndarray | None = None  # (T,) seconds
    frame_scores: np.ndarray | None = None  # (T,) P(fake) per frame, NaN: no face scored there
    audio_times: np.ndarray | None = None  # (A,) seconds
    audio_scores: np.ndarray | None = None  # (A,) P(fake) per audio window
    fallback: str | None = None
    extras: dict[str, float] = field(default_factory=dict)
    faces: tuple[FaceScore, ...] = ()
    face_aggregate: str | None = None
    streams: str | None = None


def segments_from_pairs(pairs: Sequence[Sequence[float]]) -> tuple[Segment, ...]:
    """[[start, end], ...] -> sorted tuple of Segments (InvalidValueError, a ValueError, on a bad pair)."""
    out = []
    for pair in pairs:
        if not isinstance(pair, (list, tuple, np.ndarray)) or len(pair) != 2 or not all(
                isinstance(v, (int, float, np.number)) and not isinstance(v, bool) for v in pair):
            raise InvalidValueError(f"a segment is [start, end] in seconds, got {pair!r}")
        out.append(Segment(float(pair[0]), float(pair[1])))
    return tuple(sorted(out))
