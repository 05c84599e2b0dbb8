"""Clip windows and crop modes: which frames make a clip, and which box each frame's crop is cut around.

A stage between face tracking (fakelens.faces: boxes per sampled frame) and cropping; it only
plans boxes, the crops are cut by `FaceTracks.iter_crops` as for any other crop.

Sampling "windows" (MediaConfig.sampling): `n_windows` windows of `window_frames`
consecutive frames at the video's own frame rate, their starts evenly spaced over the video,
stored one after the other (window k = sampled positions [k*W, (k+1)*W)). A video shorter than
one window is one window of all its frames. A 3D CNN reads motion from frame to frame, which
frames sampled a third of a second apart do not show.

Crop modes by name (MediaConfig.crop, `preprocess --crop`):
- "tracked": each frame cut around its own (smoothed) face box, the crop moving with the face;
- "roi": one region per face track and window, the box enclosing every box of the
  track inside the window before smoothing (as detected, interpolated between detections: the
  region holds the face on every frame), clipped to the frame (a detector's box may reach past the edge,
  where there are no pixels), so the crop stands still and the face moves inside it (the DFDC
  5th-place 3D-CNN recipe: natural motion, no crop jitter). Cut as any crop: a square of side
  margin x the box's longer side, centred on it (zero pixels where the square leaves the
  frame), so a still face gets the tracked crop.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from fakelens.registry import Registry

# mode(boxes (F, T, 4), windows (K, 2), frame (width, height) or None) -> crop boxes (F, T, 4),
# or None = the tracked boxes
CropPlan = Callable[[np.ndarray, np.ndarray, "tuple[int, int] | None"], "np.ndarray | None"]
CROP_MODES: Registry[CropPlan] = Registry("crop mode")


def window_frame_indices(n_frames: int, window_frames: int, n_windows: int) -> np.ndarray:
    """(K, W') video frame indices of the clip windows of a video of `n_frames` frames: K <=
    n_windows windows of W' = window_frames consecutive frames, starts evenly spaced from the
    first frame to the last full window (duplicates dropped: a short video has fewer windows);
    a video shorter than one window is one window of all its frames (W' = n_frames)."""
    if window_frames < 1 or n_windows < 1:
        raise ValueError(f"window_frames and n_windows must be >= 1, got {window_frames}, {n_windows}")
    if n_frames < 1:
        return np.zeros((0, window_frames), np.int64)
    if n_frames <= window_frames:
        return np.arange(n_frames, dtype=np.int64)[None, :]  # (1, n_frames)
    last = n_frames - window_frames
    starts = np.unique(np.round(np.linspace(0, last, n_windows)).astype(np.int64)) if n_windows > 1 else \
        np.array([last // 2], np.int64)  # one window: the middle of the video
    return starts[:, None] + np.arange(window_frames, dtype=np.int64)[None, :]  # (K, W)


def window_spans(n_positions: int, window_frames: int) -> np.ndarray:
    """(K, 2) [start, stop) sampled-frame positions of the windows stored one after the other:
    window k is positions [k*W, (k+1)*W), the last one possibly shorter (a short video)."""
    if window_frames < 1:
        raise ValueError(f"window_frames must be >= 1, got {window_frames}")
    starts = np.arange(0, max(0, n_positions), window_frames, dtype=np.int64)  # (K,)
    return np.stack([starts, np.minimum(starts + window_frames, n_positions)], axis=1).reshape(-1, 2)  # (K, 2)


def enclosing_boxes(boxes: np.ndarray, spans: np.ndarray, frame: tuple[int, int] | None = None) -> np.ndarray:
    """Per face track and window, the box enclosing all its boxes in the window, given to every
    frame of the window: boxes (F, T, 4) x1 y1 x2 y2 -> (F, T, 4); with `frame` = (width,
    height) (pixels, as the boxes) the box is clipped to the frame."""
    boxes = np.asarray(boxes, np.float32)
    out = boxes.copy()  # (F, T, 4); positions outside every span keep their own box
    for a, b in np.asarray(spans, np.int64).reshape(-1, 2):
        if b <= a:
            continue
        part = boxes[:, a:b]  # (F, L, 4)
        union = np.concatenate([part[..., :2].min(axis=1), part[..., 2:].max(axis=1)], axis=-1)  # (F, 4)
        if frame is not None and frame[0] > 0 and frame[1] > 0:
            w, h = frame
            union = np.clip(union, 0, np.array([w, h, w, h], np.float32))  # (F, 4) inside the frame
        out[:, a:b] = union[:, None, :]
    return out


@CROP_MODES.register("tracked")
def _tracked(boxes: np.ndarray, spans: np.ndarray, frame: tuple[int, int] | None = None) -> np.ndarray | None:
    return None  # every frame around its own tracked box


@CROP_MODES.register("roi")
def _roi(boxes: np.ndarray, spans: np.ndarray, frame: tuple[int, int] | None = None) -> np.ndarray | None:
    return enclosing_boxes(boxes, spans, frame)


def crop_boxes(mode: str, boxes: np.ndarray, spans: np.ndarray,
               frame: tuple[int, int] | None = None) -> np.ndarray | None:
    """The boxes the crops of `mode` are cut around, (F, T, 4), or None for the tracked boxes;
    `frame` = (width, height) of the video in the boxes' pixels (None: unknown, not clipped)."""
    return CROP_MODES.get(mode)(boxes, spans, frame)
