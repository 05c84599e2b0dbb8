"""`extract_faces`: sampled frames of a video -> tracked, square face crops with their boxes and times.

The preprocessing job and the inference pipeline both call this one function, so training and
prediction see identical crops. Steps: decode the wanted frames once (fakelens.io.video), as
RGB copies downscaled to `detect_max_side` in libswscale plus unconverted full-resolution frames
(`FullFrame`); detect on the copies (optionally only every k-th sampled frame; the tracker
interpolates between), map boxes back to full resolution, track, and crop squares of `margin` x
the face box, converting only the crops to RGB.

A video without any face is never skipped silently: status "no_face" with no crops, or,
with fallback="full_frame", the whole (letterboxed) frame as crop and `fallback` set.
Memory stays bounded: when the wanted frames would not fit in `max_frames_bytes`, they are
read twice (detect pass, then crop pass), one chunk at a time; `every`-k-th-frame sampling
(dense or long videos) streams the video twice, holding one batch of small frames.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from fakelens.faces.detectors import FaceDetector, build_detector, scale_boxes
from fakelens.faces.tracking import track_faces

FALLBACKS = ("none", "full_frame")
# Frames per detector call: MTCNN's peak memory grows with the batch (~90 MB for 32 320x240
# frames), its speed barely does.
DETECT_BATCH = 8


@dataclass
class FaceClip:
    """Face crops of one video over time; F face tracks (main first), T sampled frames, S crop side."""

    faces: np.ndarray  # (F, T, S, S, 3) uint8 RGB crops; F = 0 when no face and no fallback
    times: np.ndarray  # (T,) float64 seconds of the sampled frames
    indices: np.ndarray  # (T,) int64 video frame indices of the sampled frames
    boxes: np.ndarray  # (F, T, 4) float32 x1, y1, x2, y2 in original (displayed) pixels, before margin
    found: np.ndarray  # (F, T) bool: box detected or interpolated inside the track (False = held/fallback)
    status: str  # "ok" (a face track exists) or "no_face"
    fallback: str | None = None  # "full_frame" when the fallback produced the crops
    n_tracks: int = 0  # tracks before keeping the main ones
    n_detected: int = 0  # sampled frames on which the detector found at least one face
    n_detect_runs: int = 0  # sampled frames the detector ran on
    fps: float = 0.0
    duration: float = 0.0
    width: int = 0
    height: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step

    @property
    def main(self) -> np.ndarray:
        """(T, S, S, 3) crops of the main track (raises when there is none)."""
        if len(self.faces) == 0:
            raise ValueError(f"no face track (status {self.status})")
        return self.faces[0]


def crop_square(frame: np.ndarray, box: Sequence[float], margin: float, size: int) -> np.ndarray:
    """Square crop of side max(w, h) * margin centred on `box`, zero-padded outside the frame -> (size, size, 3)."""
    h, w = frame.shape[:2]
    return _crop_square_from(lambda x0, y0, x1, y1: frame[y0:y1, x0:x1], h, w, box, margin, size)


def _crop_square_from(region, h: int, w: int, box: Sequence[float], margin: float, size: int) -> np.ndarray:
    """`crop_square` of an (h, w) frame given only `region(x0, y0, x1, y1)` -> (y1 - y0, x1 - x0, 3)
    RGB pixels inside it (a `FullFrame.crop`: only the crop is ever converted)."""
    import cv2

    x1, y1, x2, y2 = (float(v) for v in box[:4])
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    side = max(x2 - x1, y2 - y1, 1.0) * margin
    a = int(round(cx - side / 2))
    b = int(round(cy - side / 2))
    s = max(1, int(round(side)))
    crop = np.zeros((s, s, 3), np.uint8)  # (s, s, 3) zero padding outside the frame
    fx0, fy0, fx1, fy1 = max(a, 0), max(b, 0), min(a + s, w), min(b + s, h)
    if fx1 > fx0 and fy1 > fy0:
        crop[fy0 - b : fy1 - b, fx0 - a : fx1 - a] = region(fx0, fy0, fx1, fy1)
    interp = cv2.INTER_AREA if s > size else cv2.INTER_LINEAR
    return cv2.resize(crop, (size, size), interpolation=interp)  # (size, size, 3)


def _detect_mask(n: int, every: int) -> np.ndarray:
    """(n,) bool: run the detector on every `every`-th sampled frame and on the last one."""
    mask = np.zeros(n, bool)
    mask[:: max(1, every)] = True
    if n:
        mask[-1] = True
    return mask


def extract_faces(
    path: str | Path,
    times: Sequence[float] | np.ndarray | None = None,
    *,
    n_frames: int | None = None,
    every: int | None = None,
    detector: str | FaceDetector = "mtcnn",
    size: int = 224,
    margin: float = 1.3,
    max_faces: int = 1,
    detect_max_side: int | None = 640,
    detect_every: int = 1,
    fallback: str = "none",
    smooth_seconds: float = 0.1,
    max_gap: int = 5,
    info=None,
    max_frames_bytes: int = 1024**3,
) -> FaceClip:
    """Face crops of `path` at `times` (seconds), at `n_frames` evenly spaced frames, or at
    `every` k-th frame (streamed: for long videos and dense sampling).

    `detector` is a registered name or a built detector (reuse one across videos: MTCNN takes
    ~1 s to build). Raises MediaError when the video cannot be decoded.
    """
    from fakelens.io.video import probe, read_frames, sample_times

    if fallback not in FALLBACKS:
        raise ValueError(f"unknown fallback {fallback!r}; choose from {FALLBACKS}")
    if sum(x is not None for x in (times, n_frames, every)) != 1:
        raise ValueError("give exactly one of times, n_frames or every")
    det = build_detector(detector) if isinstance(detector, str) else detector
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    info = info if info is not None else probe(path)
    timings["probe"] = time.perf_counter() - t0
    opts = dict(size=size, margin=margin, max_faces=max_faces, detect_every=detect_every, fallback=fallback,
                smooth_seconds=smooth_seconds, max_gap=max_gap)
    if every is not None:
        return _extract_streaming(path, info, det, every, detect_max_side, timings, **opts)
    want = sample_times(info, n_frames) if n_frames is not None else np.asarray(times, np.float64)  # (T,)
    n = len(want)
    mask = _detect_mask(n, detect_every)
    # Each wanted frame is held as yuv420p planes (1.5 bytes per pixel, `FullFrame`) plus a small
    # RGB copy for detection; chunks of frames bound that to max_frames_bytes.
    frame_bytes = 2 * info.width * info.height
    chunk = max(1, max_frames_bytes // max(frame_bytes, 1))
    small_side = detect_max_side if detect_max_side and max(info.width, info.height) > detect_max_side else None

    dets: list[np.ndarray | None] = [None] * n
    timings["decode"] = timings["detect"] = timings["crop"] = 0.0
    kept = None
    f_times = np.zeros(n)
    f_indices = np.zeros(n, np.int64)
    # Pass 1 (the only decode when everything fits): small RGB copies for detection made in
    # libswscale, full-resolution frames kept unconverted for the crops.
    for start in range(0, n, chunk):
        t1 = time.perf_counter()
        fr = read_frames(path, want[start : start + chunk], info=info, max_side=small_side, keep_full=True)
        timings["decode"] += time.perf_counter() - t1
        f_times[start : start + len(fr)] = fr.times
        f_indices[start : start + len(fr)] = fr.indices
        t1 = time.perf_counter()
        sel = np.flatnonzero(mask[start : start + len(fr)])
        for b in range(0, len(sel), DETECT_BATCH):  # small batches: the detector's peak memory grows with them
            part = sel[b : b + DETECT_BATCH]
            for j, d in zip(part, scale_boxes(det.detect(fr.frames[part]), fr.scale)):
                dets[start + j] = d
        timings["detect"] += time.perf_counter() - t1
        if n <= chunk:
            kept = fr.full  # (T,) FullFrame: kept for cropping, no second decode
        del fr
    n_detected = sum(1 for d in dets if d is not None and len(d))

    boxes, found, n_tracks, used_fallback, crop_margin = _track(dets, f_times, info, timings, **opts)
    faces = np.zeros((len(boxes), n, size, size, 3), np.uint8)  # (F, T, S, S, 3)
    if len(boxes):
        # Pass 2: crops from the kept frames, or from a second decode when they did not fit.
        for start in range(0, n, chunk):
            if kept is not None:
                full = kept
            else:
                t1 = time.perf_counter()
                full = read_frames(path, want[start : start + chunk], info=info, max_side=32,  # only .full used
                                   keep_full=True).full
                timings["decode"] += time.perf_counter() - t1
            t1 = time.perf_counter()
            for j, ff in enumerate(full):
                h, w = ff.shape
                for f in range(len(boxes)):
                    faces[f, start + j] = _crop_square_from(ff.crop, h, w, boxes[f, start + j], crop_margin, size)
            timings["crop"] += time.perf_counter() - t1
    return FaceClip(faces=faces, times=f_times, indices=f_indices, boxes=boxes, found=found,
                    status="no_face" if n_tracks == 0 else "ok", fallback=used_fallback, n_tracks=n_tracks,
                    n_detected=n_detected, n_detect_runs=int(mask.sum()), fps=info.fps, duration=info.duration,
                    width=info.width, height=info.height, timings=timings)


def _track(dets: list[np.ndarray | None], times: np.ndarray, info, timings: dict[str, float], *, margin: float,
           max_faces: int, fallback: str, smooth_seconds: float, max_gap: int, **_) -> tuple:
    """Tracks -> (boxes (F, T, 4), found (F, T), n_tracks, fallback used, crop margin)."""
    t1 = time.perf_counter()
    boxes, found, n_tracks = track_faces(dets, times, max_faces=max_faces, smooth_seconds=smooth_seconds,
                                         max_gap=max_gap)  # (F, T, 4), (F, T)
    timings["track"] = time.perf_counter() - t1
    if len(boxes) == 0 and fallback == "full_frame":
        n = len(times)
        boxes = np.tile(np.array([0, 0, info.width, info.height], np.float32), (1, n, 1))  # (1, T, 4)
        return boxes, np.zeros((1, n), bool), n_tracks, "full_frame", 1.0  # letterbox the whole frame
    return boxes, found, n_tracks, None, margin


def _extract_streaming(path, info, det: FaceDetector, every: int, detect_max_side: int | None,
                       timings: dict[str, float], *, size: int, detect_every: int, **opts) -> FaceClip:
    """Every `every`-th frame in two streamed passes (detect on libswscale-downscaled frames, then crop):
    memory holds one batch of small frames, never the video."""
    from fakelens.errors import MediaError
    from fakelens.io.video import iter_frames

    small = detect_max_side if detect_max_side and max(info.width, info.height) > detect_max_side else None
    times: list[float] = []
    dets: list[np.ndarray | None] = []
    batch: list[tuple[int, np.ndarray]] = []
    timings["detect"] = 0.0
    last: tuple[int, np.ndarray] | None = None
    scale = 1.0

    def flush() -> None:
        t1 = time.perf_counter()
        found = scale_boxes(det.detect(np.stack([img for _, img in batch])), scale)
        for (k, _), d in zip(batch, found):
            dets[k] = d
        batch.clear()
        timings["detect"] += time.perf_counter() - t1

    t0 = time.perf_counter()
    for k, (t, img) in enumerate(iter_frames(path, max_side=small, every=every)):
        scale = img.shape[1] / info.width
        times.append(t)
        dets.append(None)
        last = (k, img)
        if k % max(1, detect_every) == 0:
            batch.append((k, img))
            if len(batch) >= 8:
                flush()
    if last is not None and dets[last[0]] is None and all(k != last[0] for k, _ in batch):
        batch.append(last)
    if batch:
        flush()
    timings["decode"] = time.perf_counter() - t0 - timings["detect"]
    n = len(times)
    if n == 0:
        raise MediaError(path, "no frame could be decoded")
    f_times = np.asarray(times, np.float64)  # (T,)
    boxes, found, n_tracks, used_fallback, crop_margin = _track(dets, f_times, info, timings, **opts)
    faces = np.zeros((len(boxes), n, size, size, 3), np.uint8)  # (F, T, S, S, 3)
    timings["crop"] = 0.0
    if len(boxes):
        t0 = time.perf_counter()
        k = -1
        for k, (_, img) in enumerate(iter_frames(path, every=every)):
            if k >= n:
                break
            t1 = time.perf_counter()
            for f in range(len(boxes)):
                faces[f, k] = crop_square(img, boxes[f, k], crop_margin, size)
            timings["crop"] += time.perf_counter() - t1
        if k + 1 < n:
            raise MediaError(path, f"second decoding pass gave {k + 1} frames, the first {n}")
        timings["decode"] += time.perf_counter() - t0 - timings["crop"]
    return FaceClip(faces=faces, times=f_times, indices=np.round(f_times * info.fps).astype(np.int64),
                    boxes=boxes, found=found, status="no_face" if n_tracks == 0 else "ok",
                    fallback=used_fallback, n_tracks=n_tracks,
                    n_detected=sum(1 for d in dets if d is not None and len(d)),
                    n_detect_runs=sum(d is not None for d in dets), fps=info.fps, duration=info.duration,
                    width=info.width, height=info.height, timings=timings)
