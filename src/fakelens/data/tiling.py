"""How a video is cut into model inputs: clips of sampled face frames, per face track, and audio windows.

Validation (fakelens.data.dataset.AllClips) and `fakelens predict` (fakelens.inference.pipeline)
both call these, so a validation score is the score predict gives. No torch here: the cache
records each face's runs of found frames with the same functions.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class ClipTiling(NamedTuple):
    """How a video of n sampled frames is cut into K clips of C frames (see `tile_clips`)."""

    picks: np.ndarray  # (K, C) int64 frame positions
    mask: np.ndarray  # (K, C) bool, False = padding (only in a video shorter than one clip)
    counted: np.ndarray  # (K, C) bool, True where a frame is counted by per-frame aggregation and
    #                      timelines: not padding, and not already in an earlier clip of the tiling


def tile_clips(n: int, clip_frames: int) -> ClipTiling:
    """How a video of n sampled frames is cut into model clips, by training validation and predict
    alike: consecutive clips of C = clip_frames frames from frame 0, the last one ending at the
    last frame (overlapping the one before when n is not a multiple of C), so every clip holds
    real frames only and a video's scores do not depend on whether n is a multiple of C. Only a
    video shorter than one clip is padded (with its last frame, masked). K = ceil(n / C) clips,
    K = 0 when n = 0; `counted` marks each frame once (the overlap counts in the earlier clip)."""
    if clip_frames < 1:
        raise ValueError(f"clip_frames must be >= 1, got {clip_frames}")
    n = max(0, int(n))
    k = -(-n // clip_frames)
    starts = np.minimum(np.arange(k) * clip_frames, max(0, n - clip_frames))  # (K,)
    wanted = starts[:, None] + np.arange(clip_frames)[None, :]  # (K, C)
    mask = wanted < n
    counted = mask & (wanted >= (np.arange(k) * clip_frames)[:, None])
    return ClipTiling(np.minimum(wanted, max(0, n - 1)).astype(np.int64), mask, counted)


def face_frames(found: np.ndarray, fallback: bool = False) -> np.ndarray:
    """(F, T) bool: the sampled frames each face track is scored (and trained) on: where the face
    was found (detected, or interpolated inside its track); a full-frame fallback "face" (no face
    anywhere, fallback asked for) on every frame. Nothing else is ever fed to a model."""
    found = np.asarray(found, bool)
    return np.ones_like(found) if fallback else found


def face_runs(frames: np.ndarray, window: int | None = None) -> np.ndarray:
    """(R, 2) [start, stop) of the runs of consecutive True sampled frames of one face (`frames`
    (T,) bool), each run split at the clip windows of `window` frames (sampling "windows"), so
    that a clip never spans a gap in the face or two windows."""
    f = np.concatenate([[False], np.asarray(frames, bool), [False]])
    edges = np.flatnonzero(f[1:] != f[:-1])  # alternating starts and stops
    runs = edges.reshape(-1, 2)  # (R, 2)
    if window is None or len(runs) == 0:
        return runs.astype(np.int64)
    out = []
    for a, b in runs:
        cut = np.arange((a // window + 1) * window, b, window)
        bounds = np.concatenate([[a], cut, [b]])
        out.extend(zip(bounds[:-1], bounds[1:]))
    return np.asarray(out, np.int64).reshape(-1, 2)


def tile_face(frames: np.ndarray, clip_frames: int, window: int | None = None) -> ClipTiling:
    """How one face track is cut into model clips, by validation and predict alike: each run of
    its frames (`face_runs`) tiled by `tile_clips` (consecutive clips, the last one ending at the
    run's last frame; only a run shorter than a clip is padded, masked). A track present for part
    of the video is scored on its own frames only; no clip holds a frame without the face."""
    parts = []
    for a, b in face_runs(frames, window):
        t = tile_clips(int(b - a), clip_frames)
        parts.append(ClipTiling(t.picks + a, t.mask, t.counted))
    if not parts:
        empty = np.zeros((0, clip_frames), np.int64)
        return ClipTiling(empty, empty.astype(bool), empty.astype(bool))
    return ClipTiling(*(np.concatenate([getattr(p, k) for p in parts]) for k in ClipTiling._fields))


def tile_windows(n: int, width: int) -> np.ndarray:
    """Start mel frames (K,) of the audio windows an audio-only model gets: 0, W, 2W, ..., the last
    one ending at the last mel frame (overlapping the one before) so that no window is padded
    unless the audio is shorter than one window; at least one window, K = max(1, ceil(n / W))."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    k = max(1, -(-max(0, int(n)) // width))
    return np.minimum(np.arange(k) * width, max(0, int(n) - width))  # (K,)
