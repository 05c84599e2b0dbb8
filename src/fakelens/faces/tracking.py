"""Follow faces over time: link per-frame detections into tracks, fill gaps, smooth, keep the main ones.

Input is one detection array per sampled frame ((K, 5) x1, y1, x2, y2, score) or None where the
detector did not run (detect-every-k), plus the frames' times in seconds. Linking is greedy
per frame with an optimal assignment (IoU, or centre distance to the last box or to the box
moved at the track's velocity, allowing more distance after longer gaps); a track ends
after `max_gap` frames on which the detector ran and missed it, and at a shot cut; linked boxes
keep a continuous size and, when appearances are given (a colour histogram of each detected
face, `face_histogram`), a similar appearance: a different person at the same place, of the
same size, is another track; tracks that continue one another in the same shot are joined, and
so are tracks whose detections interleave at the same place and size (pieces of one face). Boxes are then interpolated linearly in time inside a track's span,
smoothed with a Gaussian in seconds (a local linear fit: no lag at a run's ends), and held (found=False)
outside it; the unsmoothed boxes are kept too (`FaceTrackSet.raw`). The main track is
the one with the most detections, then the largest.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple, Sequence

import numpy as np


@dataclass
class Track:
    """Detections of one face: sample indices (L,), boxes (L, 4) x1 y1 x2 y2, scores (L,), and the
    appearance of each detection (L,) (a normalised colour histogram, or None when not given)."""

    indices: list[int]
    boxes: list[np.ndarray]
    scores: list[float]
    misses: int = 0
    looks: list[np.ndarray | None] = field(default_factory=list)

    def look(self, last: bool = True) -> np.ndarray | None:
        """The track's appearance near its end (its start with last=False): the mean of its
        APPEARANCE_MEMORY nearest histograms, None without any."""
        have = [h for h in (self.looks[::-1] if last else self.looks) if h is not None][:APPEARANCE_MEMORY]
        return np.mean(have, axis=0) if have else None

    @property
    def first(self) -> int:
        return self.indices[0]

    @property
    def last(self) -> int:
        return self.indices[-1]

    @property
    def mean_area(self) -> float:
        b = np.asarray(self.boxes)  # (L, 4)
        return float(np.mean((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])))

    def __len__(self) -> int:
        return len(self.indices)

    def predict(self, t: float, times: np.ndarray, backward: bool = False) -> np.ndarray:
        """(4,) box at time t, moved at the velocity of the last (first, if backward) two detections."""
        k = (0, 1) if backward else (-1, -2)
        box = np.asarray(self.boxes[k[0]], np.float64)
        if len(self) < 2:
            return box
        t0, t1 = times[self.indices[k[0]]], times[self.indices[k[1]]]
        if t0 == t1:
            return box
        v = (box - np.asarray(self.boxes[k[1]], np.float64)) / (t0 - t1)  # (4,) px per second
        shift = v[:2] + v[2:]  # centre velocity * 2
        return box + np.concatenate([shift, shift]) / 2 * (t - t0)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of boxes a (A, 4) and b (B, 4) -> (A, B)."""
    a = np.asarray(a, np.float64).reshape(-1, 4)
    b = np.asarray(b, np.float64).reshape(-1, 4)
    x1 = np.maximum(a[:, None, 0], b[None, :, 0])
    y1 = np.maximum(a[:, None, 1], b[None, :, 1])
    x2 = np.minimum(a[:, None, 2], b[None, :, 2])
    y2 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)  # (A, B)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _centre_distance(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Centre distance of a (A, 4) to b (B, 4), in units of the size of each box in a -> (A, B)."""
    ca = (a[:, :2] + a[:, 2:4]) / 2
    cb = (b[:, :2] + b[:, 2:4]) / 2
    size = np.sqrt(np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-6))  # (A,)
    return np.linalg.norm(ca[:, None, :] - cb[None, :, :], axis=-1) / size[:, None]


# Size continuity: a face's side (sqrt of its box area) changes by less than this factor between
# two detections linked into one track; a cut from one person to another at the same place
# (side 103 -> 191 px) is two tracks.
MAX_SIZE_RATIO = 1.5


def _size_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """max(side_a / side_b, side_b / side_a) for boxes a (A, 4) and b (B, 4) -> (A, B), side = sqrt(area)."""
    sa = np.sqrt(np.maximum((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), 1e-6))  # (A,)
    sb = np.sqrt(np.maximum((b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), 1e-6))  # (B,)
    r = sa[:, None] / sb[None, :]
    return np.maximum(r, 1.0 / r)


# Appearance: two hue-saturation histograms per detected face: of the inner face (the middle 60% of
# the box's width, 15-85% of its height: skin, eyes, mouth) and of the ring around it (a box 1.8
# times as large, minus the face box: hair, ears, neck, collar, some background), each compared by
# the Bhattacharyya distance (0 = same colours, 1 = disjoint). Hue and saturation only: both are
# unchanged by a gain on the pixels, so a room dimming by 30% or an exposure jump keeps the look
# (with the value channel binned too, a 15% dimming moved the astronaut photo's face by 0.36).
# Two detections are other people when BOTH distances exceed MAX_APPEARANCE_DISTANCE: a cut to
# another person of the same size at the same spot, with a similar background (no shot cut
# seen), splits the track, while a face swapped inside an unchanged head (a deepfake, changing
# only the inner face: ring distance 0.00) or a change of light does not. Measured on synthetic
# two-person scenes (fakelens.data.synthetic.scenes, 90-px faces, 12 seeds): the same person
# over 2 s <= 0.05, dimmed by 30% <= 0.03; two people min(inner, ring) 0.11-0.63 (10 of 12
# pairs above 0.25: people of similar skin and clothes colours stay apart only by size,
# position and shot cuts).
APPEARANCE_BINS = (12, 4)  # H, S
APPEARANCE_MEMORY = 5  # a track's appearance: the mean histograms of its last (first) few detections
MAX_APPEARANCE_DISTANCE = 0.25
_RING = 1.8  # side of the ring's outer box / the face box's


def _hsv_histogram(region: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    import cv2

    hsv = cv2.cvtColor(np.ascontiguousarray(region), cv2.COLOR_RGB2HSV)  # (h, w, 3)
    hist = cv2.calcHist([hsv], [0, 1], mask, list(APPEARANCE_BINS), [0, 180, 0, 256]).reshape(-1)
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)  # (48,)


def face_histogram(frame: np.ndarray, box: Sequence[float]) -> np.ndarray | None:
    """(H, W, 3) uint8 RGB frame, box x1 y1 x2 y2 in its pixels -> (2, 48) float32 HS histograms
    (inner face, ring around it), each summing to 1; None when the face is under 16 pixels."""
    x1, y1, x2, y2 = (float(v) for v in box[:4])
    w, h = x2 - x1, y2 - y1
    fh, fw = frame.shape[:2]
    a, b = max(0, int(round(x1 + 0.2 * w))), min(fw, int(round(x2 - 0.2 * w)))
    c, d = max(0, int(round(y1 + 0.15 * h))), min(fh, int(round(y2 - 0.15 * h)))
    if (b - a) * (d - c) < 16:
        return None
    inner = _hsv_histogram(frame[c:d, a:b])
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    r0, r1 = max(0, int(round(cx - _RING * w / 2))), min(fw, int(round(cx + _RING * w / 2)))
    q0, q1 = max(0, int(round(cy - _RING * h / 2))), min(fh, int(round(cy + _RING * h / 2)))
    mask = np.full((q1 - q0, r1 - r0), 255, np.uint8)  # (h', w') the ring: all but the face box
    mask[max(0, int(round(y1)) - q0):max(0, int(round(y2)) - q0), max(0, int(round(x1)) - r0):max(0, int(round(x2)) - r0)] = 0
    ring = _hsv_histogram(frame[q0:q1, r0:r1], mask) if mask.any() else inner
    return np.stack([inner, ring])  # (2, 48)


def face_histograms(frame: np.ndarray, dets: np.ndarray) -> list[np.ndarray | None]:
    """The appearance of each detection (K, 4+) in `frame` (`face_histogram`), in order."""
    d = np.asarray(dets, np.float64)
    return [face_histogram(frame, row[:4]) for row in d.reshape(len(d), -1)] if d.size else []


def _bhattacharyya(a: np.ndarray, b: np.ndarray) -> float:
    bc = float(np.sum(np.sqrt(np.maximum(a, 0).astype(np.float64) * np.maximum(b, 0).astype(np.float64))))
    return float(np.sqrt(max(0.0, 1.0 - min(bc, 1.0))))


def appearance_distance(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """(inner face, ring) Bhattacharyya distances of two appearances (`face_histogram`), in [0, 1]."""
    return _bhattacharyya(a[0], b[0]), _bhattacharyya(a[1], b[1])


def other_person(a: np.ndarray | None, b: np.ndarray | None, max_distance: float = MAX_APPEARANCE_DISTANCE) -> bool:
    """True when two appearances are of different people: both the inner face and the ring around
    it differ by more than `max_distance` (False when either is unknown)."""
    if a is None or b is None:
        return False
    return min(appearance_distance(a, b)) > max_distance


def _look_allowed(tracks_looks: Sequence[np.ndarray | None], det_looks: Sequence[np.ndarray | None],
                  max_distance: float) -> np.ndarray:
    """(A, B) bool: appearance does not forbid linking track a to detection b."""
    return np.array([[not other_person(ta, db, max_distance) for db in det_looks] for ta in tracks_looks],
                    bool).reshape(len(tracks_looks), len(det_looks))


def _matchable(a: np.ndarray, b: np.ndarray, iou_threshold: float,
               centre_threshold: float | np.ndarray,
               max_size_ratio: float = MAX_SIZE_RATIO) -> tuple[np.ndarray, np.ndarray]:
    """(cost (A, B), allowed (A, B)): pairs linked when IoU or relative centre distance is close
    enough and the face size is continuous (side ratio <= `max_size_ratio`).

    `centre_threshold` is in face sizes, a scalar or one per box of a (A,).
    """
    iou = box_iou(a, b)
    dist = _centre_distance(a, b)
    allowed = ((iou >= iou_threshold) | (dist <= np.reshape(centre_threshold, (-1, 1)))) & (
        _size_ratio(a, b) <= max_size_ratio)
    cost = (1.0 - iou) + dist
    return cost, allowed


def _best_of(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Element-wise lowest cost and any-allowed over several (cost, allowed) candidates."""
    cost = np.minimum.reduce([c for c, _ in pairs])
    allowed = np.logical_or.reduce([a for _, a in pairs])
    return cost, allowed


def link_detections(dets: list[np.ndarray | None], times: np.ndarray | None = None, *, min_score: float = 0.0,
                    iou_threshold: float = 0.3, centre_threshold: float = 1.0, max_speed: float = 1.0,
                    max_gap: int = 5, shots: np.ndarray | None = None,
                    looks: Sequence[Sequence[np.ndarray | None] | None] | None = None,
                    max_look_distance: float = MAX_APPEARANCE_DISTANCE) -> list[Track]:
    """Link per-frame detections (None = detector not run on that frame) into tracks.

    A detection may match a track's last box or that box moved at the track's velocity to the
    frame's time (`times`, seconds; default the frame index). Centres may be `centre_threshold`
    face sizes apart plus `max_speed` face sizes per second since the track's last detection,
    so sparsely sampled (or detect-every-k) motion stays one track; the face's size must be
    continuous (MAX_SIZE_RATIO). `shots` (T,) int gives each frame's shot (fakelens.faces.shots):
    every track ends at a shot cut, and tracks of different shots are never joined. `looks` gives
    each frame's detections their appearance (`face_histograms`; None: not known): a detection
    is linked to a track only when their appearances are within `max_look_distance`.
    """
    from scipy.optimize import linear_sum_assignment

    times = np.arange(len(dets), dtype=np.float64) if times is None else np.asarray(times, np.float64)
    shots = np.zeros(len(dets), np.int64) if shots is None else np.asarray(shots, np.int64)
    active: list[Track] = []
    done: list[Track] = []
    for i, d in enumerate(dets):
        if d is None:
            continue
        if active and shots[i] != shots[active[0].last]:  # a cut: no face continues across it
            done += active
            active = []
        d = np.asarray(d, np.float32).reshape(-1, 5)
        keep = d[:, 4] >= min_score
        d_looks = list(looks[i]) if looks is not None and looks[i] is not None else [None] * len(keep)
        if len(d_looks) != len(keep):
            raise ValueError(f"frame {i}: {len(keep)} detections but {len(d_looks)} appearances")
        d_looks = [h for h, k in zip(d_looks, keep) if k]
        d = d[keep]
        matched_t: set[int] = set()
        matched_d: set[int] = set()
        if active and len(d):
            last = np.stack([t.boxes[-1] for t in active])  # (A, 4)
            moved = np.stack([t.predict(times[i], times) for t in active])  # (A, 4)
            reach = centre_threshold + max_speed * np.array([times[i] - times[t.last] for t in active])  # (A,)
            cost, allowed = _best_of([_matchable(last, d[:, :4], iou_threshold, reach),
                                      _matchable(moved, d[:, :4], iou_threshold, reach)])
            allowed &= _look_allowed([t.look() for t in active], d_looks, max_look_distance)
            rows, cols = linear_sum_assignment(np.where(allowed, cost, 1e6))
            for r, c in zip(rows, cols):
                if allowed[r, c]:
                    t = active[r]
                    t.indices.append(i)
                    t.boxes.append(d[c, :4].copy())
                    t.scores.append(float(d[c, 4]))
                    t.looks.append(d_looks[c])
                    t.misses = 0
                    matched_t.add(r)
                    matched_d.add(c)
        still: list[Track] = []
        for r, t in enumerate(active):
            if r not in matched_t:
                t.misses += 1
            (done if t.misses > max_gap else still).append(t)
        active = still
        for c in range(len(d)):
            if c not in matched_d:
                active.append(Track([i], [d[c, :4].copy()], [float(d[c, 4])], looks=[d_looks[c]]))
    return _join_tracks(done + active, times, iou_threshold, centre_threshold, max_speed, shots, max_look_distance)


def _join_tracks(tracks: list[Track], times: np.ndarray, iou_threshold: float, centre_threshold: float,
                 max_speed: float, shots: np.ndarray, max_look_distance: float = MAX_APPEARANCE_DISTANCE
                 ) -> list[Track]:
    """Join tracks of one face: where one ends before the other starts at about the same place (a
    long miss), or where their detections interleave on different frames at the same place and
    size (the face fitted two ways by the detector, or a duplicate detection that started a second
    track: `_interleave`)."""
    tracks = sorted(tracks, key=lambda t: (t.first, t.last))
    out: list[Track] = []
    for t in tracks:
        best = None
        for o in out:
            look = _look_allowed([o.look(last=True)], [t.look(last=False)], max_look_distance)[0, 0]
            if not look:
                continue
            if o.last < t.first and shots[o.last] == shots[t.first]:
                end, start = o.boxes[-1][None], t.boxes[0][None]
                forward = o.predict(times[t.first], times)[None]
                backward = t.predict(times[o.last], times, backward=True)[None]
                reach = centre_threshold + max_speed * (times[t.first] - times[o.last])
                _, allowed = _best_of([_matchable(end, start, iou_threshold, reach),
                                       _matchable(forward, start, iou_threshold, reach),
                                       _matchable(end, backward, iou_threshold, reach)])
                if allowed[0, 0] and (best is None or o.last > best.last):
                    best = o
            elif o.last >= t.first and _interleave(o, t, times, iou_threshold, centre_threshold, max_speed, shots):
                best = o  # pieces of one face: preferred to a track that merely ended before
                break
        if best is None:
            out.append(t)
        else:
            _merge_into(best, t)
    return out


def _interleave(a: Track, b: Track, times: np.ndarray, iou_threshold: float, centre_threshold: float,
                max_speed: float, shots: np.ndarray) -> bool:
    """Whether tracks a and b, whose spans overlap, are pieces of one face: never detected on the
    same frame, all in one shot, and wherever the detections of the two follow one another in
    time the boxes link (IoU or centre distance, continuous size) as consecutive detections of
    one track do. Two people in one picture are detected on the same frames: never joined."""
    if not set(a.indices).isdisjoint(b.indices):
        return False
    seq = sorted([(i, k, 0) for k, i in enumerate(a.indices)] + [(i, k, 1) for k, i in enumerate(b.indices)])
    if len({int(shots[i]) for i, _, _ in seq}) > 1:
        return False
    boxes = (a.boxes, b.boxes)
    for (i, k, s), (j, m, u) in zip(seq, seq[1:]):
        if s == u:
            continue
        reach = centre_threshold + max_speed * (times[j] - times[i])
        _, allowed = _matchable(np.asarray(boxes[s][k])[None], np.asarray(boxes[u][m])[None], iou_threshold, reach)
        if not allowed[0, 0]:
            return False
    return True


def _merge_into(into: Track, t: Track) -> None:
    """Add t's detections to `into`, in frame order (each keeps its box, score and appearance)."""
    def looks(tr: Track) -> list:
        return list(tr.looks) + [None] * (len(tr.indices) - len(tr.looks))

    rows = sorted(zip(into.indices + t.indices, into.boxes + t.boxes, into.scores + t.scores,
                      looks(into) + looks(t)), key=lambda r: r[0])
    into.indices = [r[0] for r in rows]
    into.boxes = [r[1] for r in rows]
    into.scores = [r[2] for r in rows]
    into.looks = [r[3] for r in rows]


# A track other than the main one is kept only with at least this many detections: a one-frame
# false positive (a pattern in the background) is not a second person to score.
MIN_OTHER_DETECTIONS = 2


def select_tracks(tracks: list[Track], max_faces: int = 1) -> list[Track]:
    """The main tracks: most detections first, then largest mean area; tracks after the first
    need MIN_OTHER_DETECTIONS detections."""
    ranked = sorted(tracks, key=lambda t: (len(t), t.mean_area), reverse=True)
    return [t for k, t in enumerate(ranked) if k == 0 or len(t) >= MIN_OTHER_DETECTIONS][:max_faces]


def track_boxes(track: Track, times: np.ndarray, *, smooth_seconds: float = 0.1) -> tuple[np.ndarray, np.ndarray]:
    """Boxes of a track at every sampled time: (T, 4) float32 and found (T,) bool.

    Inside the track's span boxes are interpolated linearly in time (centre and size) and
    smoothed with a Gaussian of `smooth_seconds`; outside it the nearest box is held, found=False.
    """
    times = np.asarray(times, np.float64)  # (T,)
    idx = np.asarray(track.indices)
    b = np.asarray(track.boxes, np.float64)  # (L, 4)
    params = np.stack([(b[:, 0] + b[:, 2]) / 2, (b[:, 1] + b[:, 3]) / 2,
                       b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)  # (L, 4) cx, cy, w, h
    t_det = times[idx]
    interp = np.stack([np.interp(times, t_det, params[:, k]) for k in range(4)], axis=1)  # (T, 4)
    found = np.zeros(len(times), bool)  # (T,)
    found[track.first : track.last + 1] = True
    if smooth_seconds > 0 and found.sum() > 1:
        span = np.flatnonzero(found)
        interp[span] = gaussian_smooth(times[span], interp[span], smooth_seconds)
    boxes = np.stack([interp[:, 0] - interp[:, 2] / 2, interp[:, 1] - interp[:, 3] / 2,
                      interp[:, 0] + interp[:, 2] / 2, interp[:, 1] + interp[:, 3] / 2], axis=1)
    return boxes.astype(np.float32), found


SMOOTH_BLOCK = 256  # rows of the smoothing weights computed at once (memory ~ block x window)


def gaussian_smooth(times: np.ndarray, values: np.ndarray, sigma: float) -> np.ndarray:
    """(S, D) values at increasing (S,) times smoothed with a Gaussian of `sigma` seconds: at each
    time, a straight line fitted to its neighbours by Gaussian-weighted least squares, evaluated
    there (local linear regression). Inside a run of evenly spaced times it is the Gaussian mean;
    at a run's ends (a track's first and last frames, a clip window's edges, a gap) the mean of
    the neighbours on one side would lag a moving face by ~0.8 sigma of its motion (a face
    crossing at 20 px/frame: 63 px), the fitted line does not lag a steady motion. A time with
    no neighbour to fit a slope to gets the weighted mean. Weights beyond 5 sigma (below 4e-6)
    are left out, so a dense 10-minute track costs blocks of rows against a few neighbours, not
    an (S, S) matrix."""
    values = np.asarray(values, np.float64)
    out = np.empty_like(values)  # (S, D)
    reach = 5.0 * sigma
    for a in range(0, len(times), SMOOTH_BLOCK):
        b = min(len(times), a + SMOOTH_BLOCK)
        lo = int(np.searchsorted(times, times[a] - reach, side="left"))
        hi = int(np.searchsorted(times, times[b - 1] + reach, side="right"))
        d = (times[None, lo:hi] - times[a:b, None]) / sigma  # (block, window) offsets in sigmas
        w = np.exp(-0.5 * d**2)  # (block, window)
        s0, s1, s2 = w.sum(axis=1), (w * d).sum(axis=1), (w * d**2).sum(axis=1)  # (block,)
        y0, y1 = w @ values[lo:hi], (w * d) @ values[lo:hi]  # (block, D)
        det = s0 * s2 - s1**2  # (block,)
        line = det > 1e-6 * s0**2  # a slope can be fitted
        safe = np.where(line, det, 1.0)
        fitted = (s2[:, None] * y0 - s1[:, None] * y1) / safe[:, None]  # (block, D) intercept at offset 0
        out[a:b] = np.where(line[:, None], fitted, y0 / s0[:, None])
    return out


class FaceTrackSet(NamedTuple):
    """The kept face tracks of a video's sampled frames (`track_faces`)."""

    boxes: np.ndarray  # (F, T, 4) float32 x1 y1 x2 y2
    found: np.ndarray  # (F, T) bool: inside the track's span (detected or interpolated)
    n_tracks: int  # tracks linked before keeping the main ones
    detection: np.ndarray  # (F, T) float32 detector confidence of the track's detection there, 0 where none
    raw: np.ndarray  # (F, T, 4) float32 the boxes before smoothing (detected, or interpolated between detections)


def track_faces(dets: list[np.ndarray | None], times: np.ndarray, *, max_faces: int = 1,
                min_score: float = 0.0, iou_threshold: float = 0.3, centre_threshold: float = 1.0,
                max_speed: float = 1.0, max_gap: int = 5, smooth_seconds: float = 0.1,
                shots: np.ndarray | None = None,
                looks: Sequence[Sequence[np.ndarray | None] | None] | None = None,
                max_look_distance: float = MAX_APPEARANCE_DISTANCE) -> FaceTrackSet:
    """Detections per frame -> the F <= max_faces main tracks' boxes (F, T, 4), found (F, T),
    the number of tracks, each track's detection confidence per frame (F, T) and its boxes
    before smoothing (F, T, 4: what a crop that must hold the face on every frame encloses)."""
    tracks = link_detections(dets, times, min_score=min_score, iou_threshold=iou_threshold,
                             centre_threshold=centre_threshold, max_speed=max_speed, max_gap=max_gap, shots=shots,
                             looks=looks, max_look_distance=max_look_distance)
    main = select_tracks(tracks, max_faces)
    t = len(times)
    boxes = np.zeros((len(main), t, 4), np.float32)  # (F, T, 4)
    found = np.zeros((len(main), t), bool)  # (F, T)
    detection = np.zeros((len(main), t), np.float32)  # (F, T)
    raw = np.zeros((len(main), t, 4), np.float32)  # (F, T, 4)
    for f, tr in enumerate(main):
        boxes[f], found[f] = track_boxes(tr, times, smooth_seconds=smooth_seconds)
        raw[f] = boxes[f] if smooth_seconds <= 0 else track_boxes(tr, times, smooth_seconds=0)[0]
        detection[f, np.asarray(tr.indices)] = np.asarray(tr.scores, np.float32)
    return FaceTrackSet(boxes, found, len(tracks), detection, raw)
