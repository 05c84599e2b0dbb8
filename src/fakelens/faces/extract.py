"""`extract_faces`: sampled frames of a video -> tracked, square face crops with their boxes and times.

The preprocessing job and the inference pipeline both call this one function, so training and
prediction see identical crops. Steps:
1. one decode pass over the wanted frames (fakelens.io.video), in a background thread so that
   detection overlaps decoding; each frame comes as an RGB copy downscaled to `detect_max_side`
   in libswscale, plus, when they fit in `max_frames_bytes`, its unconverted full-resolution
   planes (`FullFrame`);
2. `FaceFinder` on the small copies, in time order: the full-frame detector on every
   `detect_every`-th sampled frame and wherever no face is being followed; in between, each face
   of the previous frame is re-detected near its box (`detector.refine`, ~15x cheaper for MTCNN);
3. boxes mapped back to full resolution, tracked (interpolated, smoothed, main tracks kept),
   tracks split at shot cuts (fakelens.faces.shots, a histogram test on the small copies);
4. square crops of `margin` x the face box, converting only the crops to RGB (from the kept
   frames, or from a second streamed pass when they did not fit).

`find_faces` does steps 1-3 and returns `FaceTracks`, whose `iter_crops(k)` cuts the crops in
chunks of k frames (dense features of long videos hold one chunk); `extract_faces` cuts them all
into a `FaceClip`. With `find_every=k` faces are looked for on every k-th sampled frame only and
the tracker interpolates the boxes in between (dense sampling of every frame).

A video without any face is never skipped silently: status "no_face" with no crops, or,
with fallback="full_frame", the whole (letterboxed) frame as crop and `fallback` set.
Memory stays bounded: the passes stream, holding a few small frames; only the full-resolution
frames of short videos are kept between the passes.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from fakelens.faces.detectors import FaceDetector, build_detector, nms, scale_boxes
from fakelens.faces.shots import ShotCuts
from fakelens.faces.tracking import box_iou, face_histograms, track_faces

FALLBACKS = ("none", "full_frame")
# Default `detect_every`: full-frame detections on every 8th sampled frame (every 2.5 s of a 10 s
# clip sampled 32 times) find faces that enter; `refine` follows the known ones in between.
DETECT_EVERY = 8
# Small faces (`FaceFinder`): where nothing is found on the `detect_max_side` copy, look on a copy
# UPSCALE times as large, on at most UPSCALE_TRIES frames of a video while nothing has been found.
UPSCALE = 2.0
UPSCALE_TRIES = 4
# Faces found under SMALL_FACE x the detector's smallest face (MTCNN: 30 px on the 640-px copy, 90 px
# of a 1080p frame) are near its limit: smaller people beside them may be missed, so the second
# pass runs on such frames too.
SMALL_FACE = 1.5
_EMPTY = np.zeros((0, 5), np.float32)


@dataclass
class FaceClip:
    """Face crops of one video over time; F face tracks (main first), T sampled frames, S crop side."""

    faces: np.ndarray  # (F, T, S, S, 3) uint8 RGB crops; F = 0 when no face and no fallback
    times: np.ndarray  # (T,) float64 seconds of the sampled frames
    indices: np.ndarray  # (T,) int64 video frame indices of the sampled frames
    boxes: np.ndarray  # (F, T, 4) float32 x1, y1, x2, y2 in original (displayed) pixels, before margin
    found: np.ndarray  # (F, T) bool: box detected or interpolated inside the track (False = held/fallback)
    status: str  # "ok" (a face track exists) or "no_face"
    detection: np.ndarray | None = None  # (F, T) float32 detector confidence where the track was detected, 0 elsewhere
    fallback: str | None = None  # "full_frame" when the fallback produced the crops
    n_tracks: int = 0  # tracks before keeping the main ones
    n_detected: int = 0  # sampled frames with at least one face detected (full or refined)
    n_detect_runs: int = 0  # sampled frames the full-frame detector ran on
    n_refined: int = 0  # sampled frames where known faces were followed with `detector.refine`
    n_upscaled: int = 0  # full detections on a copy larger than detect_max_side (small faces: `FaceFinder`)
    detect_side: int = 0  # long side (px) of the largest copy faces were looked for on
    fps: float = 0.0
    duration: float = 0.0
    width: int = 0
    height: int = 0
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step; "decode" = waiting for frames
    crop_boxes: np.ndarray | None = None  # (F, T, 4) boxes the crops were cut around when not `boxes` (crop mode roi)
    margin: float = 1.3  # crop side / box side the crops were cut with (1.0 for the full-frame fallback)

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


class FaceFinder:
    """Faces in the sampled frames of one video, given one frame at a time in time order.

    The full-frame `detector.detect` runs on every `detect_every`-th frame and on every frame
    where no face is being followed (until one is found, so a faceless video costs a detection
    per frame); on the other frames each face found on the previous frame is re-detected near its
    box (`detector.refine`), and a frame where any of them is lost gets a full detection at once,
    whatever the other faces do (a followed false positive never hides a lost face until the
    next keyframe). On full-detection frames the refined faces are kept too (NMS), which helps
    recall on dark faces.

    Small faces: the frames come as copies downscaled to `detect_max_side` (640 px: MTCNN's
    smallest face, 20 px there, is 60 px of a 1080p frame and 120 px of a 4K one). When a full
    detection finds no face, or only faces under SMALL_FACE x the detector's smallest, and the
    frame's full resolution is at hand (`full`), a second pass looks on a copy UPSCALE times as
    large (capped at the full frame: 1280 px, faces from ~30 px at 1080p, ~60 px at 4K); once it
    finds a face the video's faces are small, and every later frame is searched and followed on
    copies of that size. Until then at most `upscale_tries` frames get the second pass (a
    faceless video costs that many larger detections, not one per frame). Boxes are returned in
    the pixels of the small copy given.
    """

    def __init__(self, detector: FaceDetector, detect_every: int = DETECT_EVERY, upscale: float = UPSCALE,
                 upscale_tries: int = UPSCALE_TRIES):
        if int(detect_every) < 1:
            raise ValueError(f"detect_every must be >= 1, got {detect_every}")
        if upscale < 1 or upscale_tries < 0:
            raise ValueError(f"upscale must be >= 1 and upscale_tries >= 0, got {upscale} and {upscale_tries}")
        self.detector = detector
        self.every = int(detect_every)
        self.upscale = float(upscale)
        self.tries = int(upscale_tries)
        self.scale = 1.0  # size of the copies searched / the small copies given (UPSCALE once small faces are found)
        self.prev = _EMPTY  # faces of the previous frame, in the small copy's pixels
        self.n_frames = 0
        self.n_full = 0  # frames the full-frame detector ran on
        self.n_refined = 0  # frames where faces were followed by refine
        self.n_upscaled = 0  # full detections on a larger copy (second passes and small-face videos)
        self.side = 0  # long side in pixels of the largest copy faces were looked for on
        # one larger pass on the first full detection that finds only faces of a usual size: a small
        # face beside a large one (a second person further away, DFDC's small dark fake beside a
        # large real face) is missed on the small copy, and the no-face / small-face test never fires
        self.wider = self.tries > 0  # upscale_tries=0: no larger copies at all

    def __call__(self, frame: np.ndarray, full=None) -> np.ndarray:
        """(H, W, 3) uint8 RGB small copy (and its `FullFrame`, or None) -> (K, 5) x1, y1, x2, y2,
        score in the small copy's pixels."""
        keyframe = self.n_frames % self.every == 0
        self.n_frames += 1
        image, r = self._image(frame, full, self.scale)
        self.side = max(self.side, max(image.shape[:2]))
        found = _EMPTY
        lost = False
        if len(self.prev):
            found = self.detector.refine(image, self.prev[:, :4] * r) if r != 1 else self.detector.refine(
                image, self.prev)  # (K', 5)
            self.n_refined += 1
            lost = len(found) < len(self.prev)  # a followed face was not found near its box
        if keyframe or lost or len(found) == 0:
            full_det = self.detector.detect(image[None])[0]  # (K, 5)
            self.n_full += 1
            self.n_upscaled += r != 1
            found = nms(np.concatenate([found, full_det]), 0.5) if len(found) and len(full_det) else (
                full_det if len(full_det) else found)
            if r == 1 and self.tries > 0 and full is not None and self._small(found):
                found, r = self._second_pass(frame, full, found)
            elif r == 1 and self.wider and full is not None and len(found):
                self.wider = False
                found, r = self._second_pass(frame, full, found, only_new=True)
        found = _unscale(found, r)
        self.prev = found
        return found

    def follow(self, frame: np.ndarray, full, boxes: np.ndarray) -> np.ndarray:
        """Faces near `boxes` (K, 4+) (small-copy pixels) in another frame of this video, on a
        copy of the size faces are searched on now -> (K', 5) small-copy pixels."""
        image, r = self._image(frame, full, self.scale)
        b = np.asarray(boxes, np.float32).reshape(-1, 5)
        return _unscale(self.detector.refine(image, b[:, :4] * r if r != 1 else b), r)

    def _small(self, found: np.ndarray) -> bool:
        """Whether faces may be missed for being small: none found, or one found under
        SMALL_FACE x the detector's smallest face (its neighbours may be smaller still)."""
        if len(found) == 0:
            return True
        least = getattr(self.detector, "min_face_size", None)
        side = np.minimum(found[:, 2] - found[:, 0], found[:, 3] - found[:, 1])  # (K,)
        return least is not None and bool((side < SMALL_FACE * least).any())

    def _second_pass(self, frame: np.ndarray, full, found: np.ndarray,
                     only_new: bool = False) -> tuple[np.ndarray, float]:
        """No face, or small ones, on the small copy (`found`, its pixels): look on an UPSCALE times
        larger copy; if faces are there, the video's later frames are searched at that size.
        `only_new`: faces of a usual size were found; switch to the larger copy only when it shows
        a face none of them covers (IoU < 0.3).
        -> (the faces of both passes in the larger copy's pixels, its scale), or (`found`, 1)."""
        image, r = self._image(frame, full, self.upscale)
        if r == 1:
            self.tries = 0  # the small copy is the full frame: no larger one to look on
            self.wider = False
            return found, 1.0
        if not only_new:
            self.tries -= 1
        self.n_upscaled += 1
        self.side = max(self.side, max(image.shape[:2]))
        more = self.detector.detect(image[None])[0]  # (K, 5) larger-copy pixels
        if len(more) == 0:
            return found, 1.0
        if only_new and len(found) and not (box_iou(more[:, :4], _unscale(found, 1 / r)[:, :4]).max(axis=1) < 0.3).any():
            return found, 1.0  # the same faces: the small copy sees them all
        self.scale = r
        self.tries = 0
        both = np.concatenate([_unscale(found, 1 / r), more]) if len(found) else more
        return nms(both.astype(np.float32), 0.5), r

    def _image(self, frame: np.ndarray, full, scale: float) -> tuple[np.ndarray, float]:
        """The frame at `scale` times the small copy's size (at most its full resolution) and the
        scale it has; the small copy itself (scale 1) when no larger one can be made."""
        if scale == 1 or full is None:
            return frame, 1.0
        fh, fw = full.shape
        h, w = frame.shape[:2]
        r = min(scale, fw / w, fh / h)
        if r <= 1.001:
            return frame, 1.0
        import cv2

        rgb = full.crop(0, 0, fw, fh)  # (fh, fw, 3): converted only on frames searched at this size
        tw, th = int(round(w * r)), int(round(h * r))
        if (tw, th) != (fw, fh):
            rgb = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)  # (th, tw, 3)
        return rgb, tw / w


def _unscale(dets: np.ndarray, r: float) -> np.ndarray:
    """(K, 5) detections on a copy `r` times the small copy's size -> the small copy's pixels."""
    if r == 1 or len(dets) == 0:
        return dets
    d = dets.astype(np.float32).copy()
    d[:, :4] /= r
    return d


@dataclass
class FaceTracks:
    """The face tracks of one video's sampled frames before cropping: everything a `FaceClip`
    holds but the crops, which `iter_crops` cuts in chunks of frames (memory holds one chunk,
    whatever the video's length) and `to_clip` cuts all at once. Made by `find_faces`; the crops
    can be cut once (the full-resolution frames are streamed, or released as they are used)."""

    times: np.ndarray  # (T,) float64 seconds of the sampled frames
    indices: np.ndarray  # (T,) int64 video frame indices of the sampled frames
    boxes: np.ndarray  # (F, T, 4) float32 x1, y1, x2, y2 in displayed pixels, before margin
    found: np.ndarray  # (F, T) bool: box detected or interpolated inside the track
    status: str  # "ok" or "no_face"
    size: int  # crop side in pixels
    margin: float  # crop side / box side used for the crops (1.0 for the full-frame fallback)
    fallback: str | None = None
    n_tracks: int = 0
    n_detected: int = 0
    n_detect_runs: int = 0
    n_refined: int = 0
    n_upscaled: int = 0
    detect_side: int = 0
    fps: float = 0.0
    duration: float = 0.0
    width: int = 0
    height: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    detection: np.ndarray | None = None  # (F, T) float32 detector confidence where the track was detected, 0 elsewhere
    # (F, T, 4) boxes to cut the crops around instead of `boxes` (a crop plan: fakelens.features.crops)
    crop_boxes: np.ndarray | None = None
    # (F, T, 4) the track's boxes before smoothing (detected or interpolated): what the "roi" crop
    # plan encloses, so its region holds the face on every frame (None: `boxes`)
    raw_boxes: np.ndarray | None = None
    path: Path | None = None
    _frames: Callable[[], Iterable] | None = field(default=None, repr=False)  # FullFrames of the distinct frames
    _pos: np.ndarray | None = field(default=None, repr=False)  # (T,) sampled frame -> distinct frame
    _used: bool = field(default=False, repr=False)
    _requested: np.ndarray | None = field(default=None, repr=False)  # (U,) the distinct times asked for
    _every: int | None = field(default=None, repr=False)  # or every this many frames (dense sampling)
    _centred: bool = field(default=False, repr=False)  # those the middle frame of each run (iter_frames_every)

    @property
    def n_faces(self) -> int:
        return int(self.boxes.shape[0])

    def iter_crops(self, chunk_frames: int = 64) -> Iterator[tuple[int, np.ndarray]]:
        """(first sampled-frame position, (F, k, S, S, 3) uint8 RGB crops of k <= chunk_frames
        consecutive sampled frames), in time order; nothing when there is no face track.
        timings["crop"] accumulates the time spent cutting (decoding of a second pass included)."""
        from fakelens.errors import MediaError

        if chunk_frames < 1:
            raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
        if self._used:
            raise RuntimeError("the crops of these face tracks were already cut (find_faces again)")
        self._used = True
        n, n_faces, s = len(self.times), self.n_faces, self.size
        self.timings.setdefault("crop", 0.0)
        if n_faces == 0 or n == 0:
            return
        pos = self._pos if self._pos is not None else np.arange(n)
        n_unique = int(pos.max()) + 1
        slots: list[list[int]] = [[] for _ in range(n_unique)]
        for j, p in enumerate(pos):
            slots[p].append(j)
        n_chunks = -(-n // chunk_frames)
        pending: dict[int, tuple[np.ndarray, list[int]]] = {}  # chunk -> (crops, frames left to fill)
        emit = 0
        t0 = time.perf_counter()
        k = -1
        cut = self.boxes if self.crop_boxes is None else self.crop_boxes  # (F, T, 4)
        for k, ff in enumerate(self._frames()):
            if k >= n_unique:
                break
            h, w = ff.shape
            for j in slots[k]:
                c = j // chunk_frames
                if c not in pending:
                    length = min(chunk_frames, n - c * chunk_frames)
                    pending[c] = (np.zeros((n_faces, length, s, s, 3), np.uint8), [length])  # (F, k, S, S, 3)
                buf, left = pending[c]
                for f in range(n_faces):
                    buf[f, j - c * chunk_frames] = _crop_square_from(ff.crop, h, w, cut[f, j], self.margin, s)
                left[0] -= 1
            while emit < n_chunks and emit in pending and pending[emit][1][0] == 0:
                buf, _ = pending.pop(emit)
                self.timings["crop"] += time.perf_counter() - t0
                yield emit * chunk_frames, buf
                t0 = time.perf_counter()
                emit += 1
        self.timings["crop"] += time.perf_counter() - t0
        if emit < n_chunks:
            raise MediaError(self.path or "video", f"second decoding pass gave {k + 1} frames, the first {n_unique}")

    def known(self) -> KnownTracks:
        """These tracks without their frames: `reuse_tracks` cuts the same crops from another copy
        of the video whose frames are the same pictures, without looking for the faces again."""
        skip = ("timings", "path", "_frames", "_used", "crop_boxes")
        return KnownTracks({f.name: (np.array(v) if isinstance(v := getattr(self, f.name), np.ndarray) else v)
                            for f in dataclasses.fields(self) if f.name not in skip})

    def to_clip(self) -> FaceClip:
        """All the crops at once: the `FaceClip` of these tracks."""
        n = len(self.times)
        faces = np.zeros((self.n_faces, n, self.size, self.size, 3), np.uint8)  # (F, T, S, S, 3)
        for a, chunk in self.iter_crops(max(1, n)):
            faces[:, a:a + chunk.shape[1]] = chunk
        return FaceClip(faces=faces, times=self.times, indices=self.indices, boxes=self.boxes, found=self.found,
                        status=self.status, detection=self.detection, fallback=self.fallback, n_tracks=self.n_tracks,
                        n_detected=self.n_detected, n_detect_runs=self.n_detect_runs, n_refined=self.n_refined,
                        n_upscaled=self.n_upscaled, detect_side=self.detect_side, fps=self.fps,
                        duration=self.duration, width=self.width, height=self.height,
                        timings=self.timings, crop_boxes=self.crop_boxes, margin=self.margin)


@dataclass
class KnownTracks:
    """The face tracks found in one video, without its frames (`FaceTracks.known`): small arrays
    (boxes, masks, times), picklable to a worker process."""

    fields: dict  # FaceTracks' own fields but the frames, crops, timings and path


def reuse_tracks(path: str | Path, known: KnownTracks, info, *, times: Sequence[float] | np.ndarray | None = None,
                 n_frames: int | None = None, every: int | None = None, centred: bool = False
                 ) -> FaceTracks | None:
    """`known` tracks as the face tracks of `path` (probed as `info`, sampled as find_faces would
    with `times` / `n_frames` / `every` and `centred`) when its sampled frames are the very frames they were found
    on (same frame size, count, rate and sampled times: e.g. a copy whose audio alone changed);
    the crops are cut from this file's frames and no face is looked for. None when the frames
    differ: find the faces again."""
    from fakelens.io.video import check_times, sample_times

    k = known.fields
    if (int(info.width), int(info.height)) != (k["width"], k["height"]) or float(info.fps) != k["fps"] \
            or abs(float(info.duration) - k["duration"]) > 1e-6:
        return None
    if every is not None:
        if k["_every"] != int(every) or bool(k.get("_centred", False)) != bool(centred):
            return None
        uniq, pos = None, None
    else:
        if k["_requested"] is None or (n_frames is None) == (times is None):
            return None
        want = sample_times(info, n_frames) if n_frames is not None else check_times(info, times)  # (T,)
        uniq = np.unique(want)  # (U,)
        pos = np.searchsorted(uniq, want)  # (T,)
        if not (np.array_equal(uniq, k["_requested"]) and np.array_equal(pos, k["_pos"])):
            return None
    fields = {name: (np.array(v) if isinstance(v, np.ndarray) else v) for name, v in k.items()}
    return FaceTracks(**fields, timings={}, path=Path(path), _frames=_frames_pass(path, info, uniq, every, centred))


def _frames_pass(path: str | Path, info, uniq: np.ndarray | None, every: int | None, centred: bool = False
                 ) -> Callable[[], Iterator]:
    """A streamed pass over the full-resolution frames the crops are cut from (one frame held at a
    time): the distinct sampled times `uniq`, or every `every`-th frame (`centred`: the middle one
    of each run, as iter_frames_every says)."""
    from fakelens.io.video import iter_frames_at, iter_frames_every

    if every is None:
        def frames() -> Iterator:
            for _, _, ff in iter_frames_at(path, uniq, info=info, max_side=32, keep_full=True, strategy="auto"):
                yield ff
    else:
        def frames() -> Iterator:
            for _, _, ff in iter_frames_every(path, every=every, convert_every=1 << 62, keep_full=True, info=info,
                                              max_side=32, centred=centred):
                yield ff
    return frames


def extract_faces(path: str | Path, times: Sequence[float] | np.ndarray | None = None, **kwargs) -> FaceClip:
    """Face crops of `path` at `times` (seconds), at `n_frames` evenly spaced frames, or at
    every `every`-th frame: `find_faces(...).to_clip()` (same arguments)."""
    return find_faces(path, times, **kwargs).to_clip()


def find_faces(
    path: str | Path,
    times: Sequence[float] | np.ndarray | None = None,
    *,
    n_frames: int | None = None,
    every: int | None = None,
    centred: bool = False,
    detector: str | FaceDetector = "mtcnn",
    size: int = 224,
    margin: float = 1.3,
    max_faces: int = 1,
    detect_max_side: int | None = 640,
    detect_every: int = DETECT_EVERY,
    find_every: int = 1,
    fallback: str = "none",
    smooth_seconds: float = 0.1,
    max_gap: int = 5,
    info=None,
    max_frames_bytes: int = 1024**3,
    upscale_tries: int = UPSCALE_TRIES,
) -> FaceTracks:
    """Face tracks of `path` at `times` (seconds), at `n_frames` evenly spaced frames, or at
    every `every`-th frame (long videos and dense sampling; `centred`: the middle frame of each
    run of `every`, fakelens.io.video.iter_frames_every); the crops are cut afterwards
    (`FaceTracks.iter_crops` in chunks, or `to_clip`).

    `detector` is a registered name or a built detector (reuse one across videos: MTCNN takes
    ~1 s to build). `detect_every=1` runs the full-frame detector on every frame the faces are
    looked for; larger values follow faces with `detector.refine` in between (`FaceFinder`).
    `find_every=k` looks for faces on every k-th sampled frame only (dense sampling: a face
    moves little in 1/25 s) and the tracker interpolates the boxes in between; a face found
    after a search that found none is followed back through the frames in between.
    `upscale_tries` frames may get the small-face second pass on a larger copy while nothing is
    found (`FaceFinder`; 0: never); it looks on each frame's full resolution as it is decoded,
    also when the frames are not kept for the crops (more than `max_frames_bytes`: the crops are
    then cut in a second decoding pass). Raises MediaError when the video
    cannot be decoded.
    """
    from fakelens.errors import MediaError
    from fakelens.io.video import check_times, iter_frames_at, iter_frames_every, probe, sample_times

    if fallback not in FALLBACKS:
        raise ValueError(f"unknown fallback {fallback!r}; choose from {FALLBACKS}")
    if sum(x is not None for x in (times, n_frames, every)) != 1:
        raise ValueError("give exactly one of times, n_frames or every")
    if int(find_every) < 1:
        raise ValueError(f"find_every must be >= 1, got {find_every}")
    find_every = int(find_every)
    det = build_detector(detector) if isinstance(detector, str) else detector
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    info = info if info is not None else probe(path)
    timings["probe"] = time.perf_counter() - t0
    opts = dict(margin=margin, max_faces=max_faces, fallback=fallback,
                smooth_seconds=smooth_seconds, max_gap=max_gap)
    small_side = detect_max_side if detect_max_side and max(info.width, info.height) > detect_max_side else None
    frame_bytes = 2 * info.width * info.height  # yuv420p planes are 1.5 bytes per pixel, with slack
    if every is not None:
        if int(every) < 1:
            raise ValueError(f"every must be >= 1, got {every}")
        every = int(every)
        # The full-resolution frames are kept for the crops when they fit; otherwise the crop
        # pass decodes the video again, holding one frame at a time.
        keep_full = -(-max(1, info.n_frames) // every) * frame_bytes <= max_frames_bytes
        # Every frame's small copy is made (faces missed on a searched frame are followed back through them).
        # Each comes with its full-resolution frame even when they are not kept for the crops (a
        # long video): the small-face second pass (FaceFinder) looks on it, then it is released.
        first = iter_frames_every(path, max_side=small_side, every=every, convert_every=1,
                                  keep_full=keep_full or bool(small_side), info=info, centred=centred)
    else:
        want = sample_times(info, n_frames) if n_frames is not None else check_times(info, times)  # (T,)
        uniq = np.unique(want)  # (U,) sorted
        keep_full = len(uniq) * frame_bytes <= max_frames_bytes
        # The full-resolution frames come along for the small-face second pass (FaceFinder) even
        # when they are not kept for the crops: a few frames are sampled, each held briefly.
        first = iter_frames_at(path, uniq, info=info, max_side=small_side, keep_full=keep_full or bool(small_side))
    finder = FaceFinder(det, detect_every, upscale_tries=upscale_tries)
    cuts = ShotCuts()
    u_times, u_dets, fulls, u_looks = _detect_pass(first, finder, info, timings, cuts, find_every, keep_full)
    if every is not None:
        if len(u_times) == 0:
            raise MediaError(path, "no frame could be decoded")
        pos = np.arange(len(u_times))
    else:
        pos = np.searchsorted(uniq, want)  # (T,) request -> unique slot
    u_times = np.asarray(u_times, np.float64)  # (U,) ascending
    f_times = u_times[pos] if len(u_times) else np.zeros(0)  # (T,)
    # Track over the distinct frames in time order, then give each request its frame's boxes.
    boxes, found, detection, n_tracks, used_fallback, crop_margin, raw = _track(
        u_dets, u_times, info, timings, shots=np.asarray(cuts.shots, np.int64), looks=u_looks, **opts)
    boxes, found, detection, raw = boxes[:, pos], found[:, pos], detection[:, pos], raw[:, pos]  # (F, T, 4), (F, T), (F, T), (F, T, 4)

    def kept() -> Iterator:
        for k in range(len(fulls)):  # each full frame is released once its crops are cut
            ff, fulls[k] = fulls[k], None
            yield ff

    # else a second streamed pass, holding one full-resolution frame at a time
    frames = kept if keep_full else _frames_pass(path, info, None if every is not None else uniq, every, centred)
    return FaceTracks(times=f_times, indices=info.frame_index(f_times), boxes=boxes, found=found,
                      detection=detection, raw_boxes=raw, status="no_face" if n_tracks == 0 else "ok", size=int(size),
                      margin=crop_margin,
                      fallback=used_fallback, n_tracks=n_tracks,
                      n_detected=sum(1 for p in pos if u_dets[p] is not None and len(u_dets[p])),
                      n_detect_runs=finder.n_full, n_refined=finder.n_refined, n_upscaled=finder.n_upscaled,
                      detect_side=finder.side, fps=info.fps,
                      duration=info.duration, width=info.width, height=info.height, timings=timings,
                      path=Path(path), _frames=frames, _pos=None if every is not None else pos,
                      _requested=None if every is not None else uniq, _every=every,
                      _centred=bool(centred) and every is not None)


def _detect_pass(frames: Iterable, finder: FaceFinder, info, timings: dict[str, float],
                 cuts: ShotCuts | None = None, find_every: int = 1, keep_full: bool = True
                 ) -> tuple[list, list, list, list]:
    """Run `finder` (and the shot-cut test `cuts`) on every `find_every`-th of the (time, small
    RGB, FullFrame or None) items decoded in a background thread -> times, detections in
    full-resolution pixels (None on frames not searched), FullFrames (None unless `keep_full`),
    and each detection's appearance (fakelens.faces.tracking.face_histograms on the small copy).

    With find_every > 1, when a search finds no face and the next one does, the faces found are
    followed back (`FaceFinder.follow`, a refine near their boxes) through the frames in between
    and the searched frame that missed them, within the shot, until lost: a face missed once by
    the detector (or entering the picture) is found from the frame it is seen on, not up to
    find_every - 1 frames later. timings["decode"] is the time spent waiting for frames (decoding
    not hidden behind detection), timings["detect"] the rest."""
    from fakelens.io.prefetch import background

    u_times: list[float] = []
    u_dets: list[np.ndarray | None] = []
    u_looks: list = []
    fulls: list = []
    held: list[tuple[int, np.ndarray, object]] = []  # (position, small, full) since the last search
    t0 = time.perf_counter()
    detect = 0.0
    prev: tuple[int, np.ndarray, object] | None = None  # the last searched frame: (position, small, full)
    for k, (t, small, full) in enumerate(background(frames)):
        t1 = time.perf_counter()
        u_times.append(t)
        fulls.append(full if keep_full else None)
        u_dets.append(None)  # None: faces not looked for on this frame (the tracker interpolates)
        u_looks.append(None)
        if small is None or k % find_every:
            if small is not None and find_every > 1:
                held.append((k, small, full))
            if cuts is not None:
                cuts(small)
            detect += time.perf_counter() - t1
            continue
        scale = small.shape[1] / info.width
        found = finder(small, full)  # (K, 5) small-copy pixels
        u_looks[k] = face_histograms(small, found)
        u_dets[k] = scale_boxes([found], scale)[0]
        shot = cuts(small) if cuts is not None else 0
        if find_every > 1 and len(found) and prev is not None and len(u_dets[prev[0]]) == 0:
            _follow_back(finder, [prev] + held, found, shot, cuts, u_dets, u_looks, scale)
        held = []
        prev = (k, small, full)
        detect += time.perf_counter() - t1
    timings["decode"] = time.perf_counter() - t0 - detect
    timings["detect"] = detect
    return u_times, u_dets, fulls, u_looks


def _follow_back(finder: FaceFinder, frames: list, found: np.ndarray, shot: int, cuts: ShotCuts | None,
                 u_dets: list, u_looks: list, scale: float) -> None:
    """Follow `found` (K, 5) small-copy pixels back through `frames` [(position, small, full)],
    latest first, in the same shot, until every face is lost; each frame followed gets the
    faces found on it as its detections (full-resolution pixels) and their appearances."""
    boxes = found
    for k, small, full in reversed(frames):
        if cuts is not None and cuts.shots[k] != shot:
            return
        boxes = finder.follow(small, full, boxes)  # (K', 5)
        if len(boxes) == 0:
            return
        u_dets[k] = scale_boxes([boxes], scale)[0]
        u_looks[k] = face_histograms(small, boxes)


def _track(dets: list[np.ndarray | None], times: np.ndarray, info, timings: dict[str, float], *, margin: float,
           max_faces: int, fallback: str, smooth_seconds: float, max_gap: int,
           shots: np.ndarray | None = None, looks: list | None = None) -> tuple:
    """Tracks (split at shot cuts, linked by position, size and appearance) -> (boxes (F, T, 4),
    found (F, T), detection (F, T), n_tracks, fallback used, crop margin, boxes before smoothing (F, T, 4))."""
    t1 = time.perf_counter()
    boxes, found, n_tracks, detection, raw = track_faces(dets, times, max_faces=max_faces, smooth_seconds=smooth_seconds,
                                                    max_gap=max_gap, shots=shots, looks=looks)  # (F, T, 4), (F, T)
    looked = [i for i, d in enumerate(dets) if d is not None]
    if looked and looked[-1] + 1 < len(dets):
        # Frames after the last one searched (find_every > 1): a face found there is still there.
        last = looked[-1]
        found[:, last + 1:] = found[:, last:last + 1]
    timings["track"] = time.perf_counter() - t1
    if len(boxes) == 0 and fallback == "full_frame":
        n = len(times)
        boxes = np.tile(np.array([0, 0, info.width, info.height], np.float32), (1, n, 1))  # (1, T, 4)
        # letterbox the whole frame
        return boxes, np.zeros((1, n), bool), np.zeros((1, n), np.float32), n_tracks, "full_frame", 1.0, boxes
    return boxes, found, detection, n_tracks, None, margin, raw
