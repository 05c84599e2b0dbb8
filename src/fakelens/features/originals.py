"""Which face of a fake is fake: compare each face track of a fake with its original video at the
same place and time.

DFDC ships, for every fake, the name of the real video it was made from (`original`), but one
label per video: of two people, which one was swapped is not said. The DFDC winners found out by
comparing a fake's frames with its original's: the swapped face differs, everything else only by
the re-encoding. Here each face track of the fake is cut from the original's frames at the same
sampled times with the same boxes (the fake's own, so both crops cover the same pixels), and the
per-frame difference is the mean absolute difference of the two crops after a small blur (which
removes most of the compression noise), in grey levels 0-255, on the frames where the face was
found (NaN elsewhere). `face_difference` summarises a track by a high quantile of its frames, so
a swap covering a tenth of the frames still shows; the dataset calls a face fake when that value
exceeds `data.face_diff_threshold` (fakelens.data.dataset), so the threshold is a training
setting, not a reason to recompute the cache.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

DIFF_BLUR = 1.0  # Gaussian sigma (crop pixels) applied to both crops before the difference
DIFF_QUANTILE = 0.9  # a track's difference: this quantile of its found frames' differences
# Default `data.face_diff_threshold` (grey levels): measured on two-person synthetic DFDC-layout
# videos (h264 crf 20, 64-px crops) the untouched face of a fake differs from its original by
# 0.6-1.6, a swapped face by 9-16; real DFDC re-encodes differ by a few grey levels.
FACE_DIFF_THRESHOLD = 5.0
# Default `data.face_equal_threshold`: a face within this many grey levels of its original is
# untouched, and a fake ALL of whose faces are within it is trained with every face real by a
# face-only model, so it must stay under every manipulated face's difference. Measured (DIFF_QUANTILE
# of the found frames, h264 crf 23): on the scenes preset and the DFDC-layout single-person set at
# 216x384 with MTCNN crops, default 224 px: face swaps 5.7-23.5, reenactments 4.0-9.7 (4.0-4.3 at
# strength 0.3), untouched faces of fakes 0.0-2.8 (up to 2.8 beside a changed face: the change
# moves the encoder's bits), audio-only fakes 0.0; at 64-px crops swaps 7.7-22, reenactments
# 5.0-8.8, untouched 0.0-1.7; on full-frame 32-px crops of the tiny preset's 96-px frames (the face
# a small part of the crop) reenactments 1.3-2.0 and swaps 2.7-3.8. At 2 (the earlier default) those
# reenacted fakes were trained as real; at 1 no manipulated face measured is, at the cost of
# untouched faces between 1 and 5 being not told (one face: the video's label; several: MIL)
# rather than real. Between the two thresholds a face is not told.
FACE_EQUAL_THRESHOLD = 1.0


def original_differences(clip: Any, original: str | Path) -> np.ndarray:
    """(F, T) float32 per face track and sampled frame of `clip` (a fake's FaceClip): the mean
    absolute difference (grey levels) between its crop and the crop cut from `original` at the
    same time around the same box; NaN where the face was not found. Raises MediaError when the
    original cannot be decoded, ValueError when its frame size differs from the fake's or it ends before
    the fake's sampled faces (more than two frames short)."""
    import cv2

    from fakelens.faces.extract import _crop_square_from
    from fakelens.io.video import iter_frames_at, probe

    n_faces, n = clip.faces.shape[:2]
    out = np.full((n_faces, n), np.nan, np.float32)  # (F, T)
    if n_faces == 0 or n == 0 or clip.fallback:
        return out
    info = probe(original)
    if (info.width, info.height) != (clip.width, clip.height):
        raise ValueError(f"the original is {info.width}x{info.height}, the fake {clip.width}x{clip.height}")
    times = np.asarray(clip.times, np.float64)  # (T,)
    found = np.asarray(clip.found, bool)  # (F, T)
    cut = clip.boxes if clip.crop_boxes is None else clip.crop_boxes  # (F, T, 4)
    size = clip.faces.shape[2]
    margin = clip_margin(clip)
    wanted = np.unique(times[found.any(axis=0)])
    if len(wanted) == 0:
        return out
    # an original that ends before the fake's faces do (a truncated file, another cut) cannot tell
    # an untouched face: a fake manipulated after its end would differ on the frames before by the
    # re-encoding alone, every face 'equal', and be trained as real. A frame or two short (the
    # encoders' rounding of the last frame) is compared on the frames it has.
    slack = 2.0 / info.fps if info.fps else 0.1
    if wanted[-1] > info.duration + slack:
        raise ValueError(f"the original is shorter than the fake: it ends at {info.duration:.2f} s, the fake's "
                         f"faces are sampled to {wanted[-1]:.2f} s")
    wanted = wanted[wanted < info.duration]
    by_time = {float(t): j for j, t in enumerate(times)}
    for t, _, ff in iter_frames_at(original, wanted, info=info, max_side=32, keep_full=True):
        j = _nearest(times, t, by_time)
        h, w = ff.shape
        for f in np.flatnonzero(found[:, j]):
            theirs = _crop_square_from(ff.crop, h, w, cut[f, j], margin, size).astype(np.float32)
            ours = clip.faces[f, j].astype(np.float32)
            a = cv2.GaussianBlur(ours, (0, 0), DIFF_BLUR)
            b = cv2.GaussianBlur(theirs, (0, 0), DIFF_BLUR)
            out[f, j] = float(np.abs(a - b).mean())
    return out


def _nearest(times: np.ndarray, t: float, by_time: dict[float, int]) -> int:
    j = by_time.get(float(t))
    return int(np.argmin(np.abs(times - t))) if j is None else j


def clip_margin(clip: Any) -> float:
    """The margin the clip's crops were cut with (recorded on the clip; 1.3 by default)."""
    return float(getattr(clip, "margin", None) or 1.3)


def face_difference(diffs: np.ndarray) -> float | None:
    """A face track's difference from its original: the DIFF_QUANTILE of its finite per-frame
    differences (T,), None when it has none (not compared)."""
    d = np.asarray(diffs, np.float64)
    d = d[np.isfinite(d)]
    return float(np.quantile(d, DIFF_QUANTILE)) if len(d) else None


__all__ = ["DIFF_BLUR", "DIFF_QUANTILE", "FACE_DIFF_THRESHOLD", "FACE_EQUAL_THRESHOLD", "clip_margin", "face_difference",
           "original_differences"]
