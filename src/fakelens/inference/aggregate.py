"""Named strategies that turn per-frame (or per-clip) P(fake) into one video score.

Chosen by name (`fakelens predict --aggregate NAME`), as the DFDC winners chose theirs by argument.
Every strategy takes a (T,) array of probabilities in [0, 1] and returns a float in [0, 1].
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from fakelens.errors import ConfigError
from fakelens.registry import Registry

AggregateFn = Callable[[np.ndarray], float]
AGGREGATIONS: Registry[AggregateFn] = Registry("aggregation")


def _check(scores: np.ndarray) -> np.ndarray:
    s = np.asarray(scores, dtype=np.float64).reshape(-1)  # (T,)
    if s.size == 0:
        raise ValueError("cannot aggregate an empty list of scores")
    if not np.all(np.isfinite(s)) or s.min() < 0 or s.max() > 1:
        raise ValueError(f"scores must be finite probabilities in [0, 1], got range [{s.min()}, {s.max()}]")
    return s


@AGGREGATIONS.register("mean")
def mean(scores: np.ndarray) -> float:
    """Mean P(fake) over frames."""
    return float(_check(scores).mean())


@AGGREGATIONS.register("max")
def max_(scores: np.ndarray) -> float:
    """Most suspicious frame: catches short fakes, but one false alarm makes a whole video fake."""
    return float(_check(scores).max())


@AGGREGATIONS.register("median")
def median(scores: np.ndarray) -> float:
    """Median P(fake): robust to a few outlier frames (e.g. a bad face crop)."""
    return float(np.median(_check(scores)))


TOPK_FRACTION = 0.25


@AGGREGATIONS.register("topk_mean")
def topk_mean(scores: np.ndarray, fraction: float = TOPK_FRACTION) -> float:
    """Mean of the ceil(fraction * T) highest scores (at least one): between max and mean."""
    s = _check(scores)
    k = max(1, math.ceil(fraction * s.size))
    return float(np.sort(s)[-k:].mean())


# The confident-mean rule of the DFDC winner (Seferbekov), with its published constants: it ran on
# 32 frames per video.
CONFIDENT_FAKE = 0.8  # a frame scoring above this is confidently fake
CONFIDENT_REAL = 0.2  # a frame scoring below this is confidently real
MIN_FAKE_FRACTION = 0.4  # more than floor(this x frames) confident fakes are needed (the rule's n // 2.5) ...
MIN_FAKE_FRAMES = 11  # ... and more than this many: a floor on the count, whatever the number of frames
MIN_REAL_FRACTION = 0.9  # more than this fraction of the frames confidently real


@AGGREGATIONS.register("confident_mean")
def confident_mean(scores: np.ndarray, fake_threshold: float = CONFIDENT_FAKE,
                   real_threshold: float = CONFIDENT_REAL, min_fake_fraction: float = MIN_FAKE_FRACTION,
                   min_fake_frames: int = MIN_FAKE_FRAMES, min_real_fraction: float = MIN_REAL_FRACTION) -> float:
    """Confident-mean, the DFDC winner's rule as published (stated here in our own words):

    1. count the frames scoring above `fake_threshold` (confidently fake); if there are more than
       floor(min_fake_fraction x T) of them AND more than `min_fake_frames` (11: a floor on the
       count itself, so a handful of confident frames never decides a video), the score is the
       mean of those frames: a fake face looks fake in many frames, and the uncertain ones (blur,
       profile views) would only pull it towards 0.5;
    2. else, if more than min_real_fraction x T frames score below `real_threshold`, the mean of
       those confidently real frames;
    3. otherwise the plain mean of all frames.
    With fewer than min_fake_frames + 1 frames the first branch never fires: 10 frames, five at
    0.9 and five at 0.1, score 0.5.
    """
    s = _check(scores)
    fake = s[s > fake_threshold]
    if fake.size > math.floor(min_fake_fraction * s.size + 1e-9) and fake.size > min_fake_frames:
        return float(fake.mean())
    real = s[s < real_threshold]
    if real.size > min_real_fraction * s.size:
        return float(real.mean())
    return float(s.mean())


def aggregate(name: str, scores: np.ndarray) -> float:
    """Video score from per-frame probabilities with the named strategy."""
    return AGGREGATIONS.get(name)(scores)


LEVELS = ("frames", "clips")


def video_score(name: str, level: str, clip_scores: np.ndarray, frame_scores: np.ndarray | None = None,
                frame_masks: np.ndarray | None = None, model: str = "the model") -> float:
    """One video's score from its K clips, as `fakelens predict` and validation both compute it:
    level "clips" aggregates the (K,) clip P(fake); level "frames" aggregates the per-frame P(fake)
    (K, C) of the frames that are not padding (frame_masks (K, C), None = no padding)."""
    if level == "clips":
        return aggregate(name, clip_scores)
    if level != "frames":
        raise ConfigError(f"level must be one of {LEVELS}, got {level!r}")
    if frame_scores is None:
        raise ConfigError(f"{model} gives no per-frame scores: use level 'clips'")
    frames = np.asarray(frame_scores)
    return aggregate(name, frames[np.asarray(frame_masks, bool)] if frame_masks is not None else frames)


# ------------------------------------------------------------------------------------ over faces
# A video with several people is scored face by face (each track on its own frames, with the
# aggregation above), then the faces' scores make the video's by a named face aggregation
# (`predict.face_aggregate`, `fakelens predict --face-aggregate`). Each takes the (F,) face
# P(fake) and the (F,) number of frames each face was scored on.

FaceAggregateFn = Callable[[np.ndarray, np.ndarray], float]
FACE_AGGREGATIONS: Registry[FaceAggregateFn] = Registry("face aggregation")


def _check_faces(scores: np.ndarray, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = _check(scores)
    n = np.asarray(frames, np.float64).reshape(-1)
    if n.shape != s.shape or np.any(n < 0):
        raise ValueError(f"face frame counts {n.tolist()} do not fit {s.size} face scores")
    return s, n


@FACE_AGGREGATIONS.register("max")
def face_max(scores: np.ndarray, frames: np.ndarray) -> float:
    """The most suspicious face: a video is fake when any person in it is (DFDC: often one of two)."""
    return float(_check_faces(scores, frames)[0].max())


@FACE_AGGREGATIONS.register("mean")
def face_mean(scores: np.ndarray, frames: np.ndarray) -> float:
    """Mean over faces: every person counts the same, however long on screen."""
    return float(_check_faces(scores, frames)[0].mean())


@FACE_AGGREGATIONS.register("frames_weighted")
def face_frames_weighted(scores: np.ndarray, frames: np.ndarray) -> float:
    """Mean over faces weighted by the frames each was scored on: a face seen briefly counts less."""
    s, n = _check_faces(scores, frames)
    return float((s * n).sum() / n.sum()) if n.sum() > 0 else float(s.mean())


@FACE_AGGREGATIONS.register("main")
def face_main(scores: np.ndarray, frames: np.ndarray) -> float:
    """The main face only (the track with the most detections, listed first): single-speaker data."""
    return float(_check_faces(scores, frames)[0][0])


def faces_score(name: str, scores: np.ndarray, frames: np.ndarray) -> float:
    """A video's score from its faces' scores (F,) and frame counts (F,), by the named face aggregation."""
    return FACE_AGGREGATIONS.get(name)(np.asarray(scores, np.float64), np.asarray(frames, np.float64))


__all__ = ["AGGREGATIONS", "FACE_AGGREGATIONS", "LEVELS", "aggregate", "faces_score", "video_score", "mean", "max_",
           "median", "topk_mean", "confident_mean", "face_max", "face_mean", "face_frames_weighted", "face_main"]
