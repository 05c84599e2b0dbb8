"""Follow faces over time: link per-frame detections into tracks, fill gaps, smooth, keep the main ones.

Input is one detection array per sampled frame ((K, 5) x1, y1, x2, y2, score) or None where the
detector did not run (detect-every-k), plus the frames' times in seconds. Linking is greedy
per frame with an optimal assignment (IoU, or centre distance to the last box or to the box
moved at the track's velocity, allowing more distance after longer gaps); a track ends
after `max_gap` frames on which the detector ran and missed it, and at a shot cut; linked boxes
keep a continuous size (a different person at the same place is another track); tracks that
continue one another in the same shot are joined. Boxes are then interpolated linearly in time inside a track's span,
smoothed with a Gaussian in seconds, and held (found=False) outside it. The main track is
the one with the most detections, then the largest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Track:
    """Detections of one face: sample indices (L,), boxes (L, 4) x1 y1 x2 y2, scores (L,)."""

    indices: list[int]
    boxes: list[np.ndarray]
    scores: list[float]
    misses: int = 0

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
                    max_gap: int = 5, shots: np.ndarray | None = None) -> list[Track]:
    """Link per-frame detections (None = detector not run on that frame) into tracks.

    A detection may match a track's last box or that box moved at the track's velocity to the
    frame's time (`times`, seconds; default the frame index). Centres may be `centre_threshold`
    face sizes apart plus `max_speed` face sizes per second since the track's last detection,
    so sparsely sampled (or detect-every-k) motion stays one track; the face's size must be
    continuous (MAX_SIZE_RATIO). `shots` (T,) int gives each frame's shot (fakelens.faces.shots):
    every track ends at a shot cut, and tracks of different shots are never joined.
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
        d = d[d[:, 4] >= min_score]
        matched_t: set[int] = set()
        matched_d: set[int] = set()
        if active and len(d):
            last = np.stack([t.boxes[-1] for t in active])  # (A, 4)
            moved = np.stack([t.predict(times[i], times) for t in active])  # (A, 4)
            reach = centre_threshold + max_speed * np.array([times[i] - times[t.last] for t in active])  # (A,)
            cost, allowed = _best_of([_matchable(last, d[:, :4], iou_threshold, reach),
                                      _matchable(moved, d[:, :4], iou_threshold, reach)])
            rows, cols = linear_sum_assignment(np.where(allowed, cost, 1e6))
            for r, c in zip(rows, cols):
                if allowed[r, c]:
                    t = active[r]
                    t.indices.append(i)
                    t.boxes.append(d[c, :4].copy())
                    t.scores.append(float(d[c, 4]))
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
                active.append(Track([i], [d[c, :4].copy()], [float(d[c, 4])]))
    return _join_tracks(done + active, times, iou_threshold, centre_threshold, max_speed, shots)


def _join_tracks(tracks: list[Track], times: np.ndarray, iou_threshold: float, centre_threshold: float,
                 max_speed: float, shots: np.ndarray) -> list[Track]:
    """Join tracks where one ends before the other starts at about the same place (a long miss)."""
    tracks = sorted(tracks, key=lambda t: (t.first, t.last))
    out: list[Track] = []
    for t in tracks:
        best = None
        for o in out:
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
        if best is None:
            out.append(t)
        else:
            best.indices += t.indices
            best.boxes += t.boxes
            best.scores += t.scores
    return out


def select_tracks(tracks: list[Track], max_faces: int = 1) -> list[Track]:
    """The main tracks: most detections first, then largest mean area."""
    return sorted(tracks, key=lambda t: (len(t), t.mean_area), reverse=True)[:max_faces]


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
    """(S, D) values at increasing (S,) times smoothed with a Gaussian of `sigma` seconds, each row
    normalised over its neighbours; weights beyond 5 sigma (below 4e-6) are left out, so a dense
    10-minute track costs blocks of rows against a few neighbours, not an (S, S) matrix."""
    out = np.empty_like(values, dtype=np.float64)  # (S, D)
    reach = 5.0 * sigma
    for a in range(0, len(times), SMOOTH_BLOCK):
        b = min(len(times), a + SMOOTH_BLOCK)
        lo = int(np.searchsorted(times, times[a] - reach, side="left"))
        hi = int(np.searchsorted(times, times[b - 1] + reach, side="right"))
        w = np.exp(-0.5 * ((times[a:b, None] - times[None, lo:hi]) / sigma) ** 2)  # (block, window)
        w /= w.sum(axis=1, keepdims=True)
        out[a:b] = w @ values[lo:hi]
    return out


def track_faces(dets: list[np.ndarray | None], times: np.ndarray, *, max_faces: int = 1,
                min_score: float = 0.0, iou_threshold: float = 0.3, centre_threshold: float = 1.0,
                max_speed: float = 1.0, max_gap: int = 5, smooth_seconds: float = 0.1,
                shots: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, int]:
    """Detections per frame -> boxes (F, T, 4), found (F, T) of the F <= max_faces main tracks, n_tracks."""
    tracks = link_detections(dets, times, min_score=min_score, iou_threshold=iou_threshold,
                             centre_threshold=centre_threshold, max_speed=max_speed, max_gap=max_gap, shots=shots)
    main = select_tracks(tracks, max_faces)
    t = len(times)
    boxes = np.zeros((len(main), t, 4), np.float32)  # (F, T, 4)
    found = np.zeros((len(main), t), bool)  # (F, T)
    for f, tr in enumerate(main):
        boxes[f], found[f] = track_boxes(tr, times, smooth_seconds=smooth_seconds)
    return boxes, found, len(tracks)
