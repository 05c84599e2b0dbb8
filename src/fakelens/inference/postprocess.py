"""Per-frame P(fake) over time -> temporal proposals [confidence, start_s, end_s].

Each sampled frame's score stands for a cell of the timeline on the label grid (`frame_cells`):
frame k of a video is shown during [k/fps, (k+1)/fps), the interval `frame_labels` marks fake.
With every frame sampled, a sample's cell runs from its own time to the next sample's, so perfect
frame scores give back a fake segment exactly (AP = 1 at every IoU threshold). With sampled
frames (`--fps 5`), the cells of two samples meet in the middle of the frames between them that
nobody saw: the unbiased estimate of where a change seen between them happened. Contiguous steps
(the audio encoder's) have cells of their own length (`step_cells`), and several timelines (the
frames' and the audio steps') are combined on the union of their boundaries (`union_cells`), never
by stretching one stream's cell to the other's. Runs of consecutive cells scoring above a
threshold become proposals (confidence = mean score of the run over its time; NaN cells, where
nothing was scored, break runs); several thresholds give nested candidates of different lengths,
and a named suppression (NMS, soft-NMS, none) removes the duplicates.

A learned localizer gives, per point of its temporal pyramid, a confidence and the distances to
the start and end of the fake segment it lies in: `decode_points` turns them into seconds,
`window_starts` / `own_span` cut a long video into overlapping windows whose candidates are
pooled (each window keeps the points of its own part) before the suppression, and
`select_proposals` clips to the duration, suppresses (soft-NMS by default) and keeps the top N,
sorted by confidence, never empty. Suppressions run on arrays (`Candidates`), so thousands of
candidates per video cost milliseconds.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from fakelens.errors import InvalidValueError
from fakelens.registry import Registry
from fakelens.types import Proposal

DEFAULT_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

SuppressFn = Callable[[list[Proposal], float], list[Proposal]]
SUPPRESSIONS: Registry[SuppressFn] = Registry("proposal suppression")


def _check_times(times: np.ndarray, duration: float | None) -> np.ndarray:
    t = np.asarray(times, dtype=np.float64).reshape(-1)  # (T,)
    if t.size == 0:
        raise InvalidValueError("no frame times")
    if not np.isfinite(t).all() or t[0] < 0:
        raise InvalidValueError("frame times must be finite seconds >= 0")
    if np.any(np.diff(t) <= 0):
        raise InvalidValueError("frame times must be strictly increasing")
    if duration is not None and not (0 <= duration < np.inf):
        raise InvalidValueError(f"duration must be a finite number >= 0, got {duration!r}")
    return t


def frame_cells(times: np.ndarray, duration: float | None = None,
                frame_seconds: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(T,) sampled frame times (s, increasing) -> (T,) cell starts and (T,) cell ends in seconds:
    the part of the timeline each sampled frame's score stands for.

    Frame k is shown during [k / fps, (k + 1) / fps) (`frame_seconds` = 1 / fps; None: the median
    interval between the samples, i.e. every frame sampled). A sample at t_a is shown until
    e_a = min(t_a + frame_seconds, t_b), t_b the next sample. When frames between two samples were
    not sampled (`--fps 5` on a 25 fps video: 4 of 5), the change a detector sees between a and b
    happened at one of the unseen frame boundaries e_a ... t_b, each as likely: the unbiased
    estimate is their mean, the midpoint (e_a + t_b) / 2, which is where the cells of a and b meet
    (each unseen frame is judged by its nearest sample; with every frame sampled, e_a = t_b and
    cell a is [t_a, t_b), the label grid itself). The first cell starts where a sample before the
    first would have stood for (the sampling interval earlier, same rule), at 0 s when that is
    before the video; the last cell ends likewise where the next sample would have taken over,
    at `duration` when that is past it (without `duration`: at the last frame's end). One sample
    alone: [t, t + frame_seconds (1 s when unknown)), or [t, duration). A last sample at or past
    `duration` gets a 1 us sliver, so that no cell ends past the video. A perfect detector
    therefore gives back a segment exactly on densely sampled frames and with boundaries unbiased
    (error within half the unseen gap) on sampled ones."""
    t = _check_times(times, duration)
    if frame_seconds is not None and not (0 < frame_seconds < np.inf):
        raise InvalidValueError(f"frame duration must be a finite number > 0, got {frame_seconds!r}")
    if t.size == 1:
        f = float(frame_seconds) if frame_seconds is not None else 1.0
        last = t[0] + f
        if duration is not None:
            last = float(duration) if float(duration) > t[0] else t[0] + 1e-6
        return t.copy(), np.array([max(last, float(np.nextafter(t[0], np.inf)))])
    step = float(np.median(np.diff(t)))  # the sampling interval
    f = float(frame_seconds) if frame_seconds is not None else step
    shown = np.minimum(t + f, np.concatenate([t[1:], [np.inf]]))  # (T,) end of each sample's own frame
    bounds = (shown[:-1] + t[1:]) / 2  # (T-1,) midpoints of the unseen gaps (t_b when there is none)
    bounds = np.clip(bounds, t[:-1], t[1:])  # rounding never moves a boundary past a sample
    prev = t[0] - step  # where the sampling would have taken the sample before the first
    first = 0.0 if prev <= 0 else max(0.0, min(t[0], (min(prev + f, t[0]) + t[0]) / 2))
    nxt = t[-1] + step  # where the sampling would have taken the next sample
    if duration is None:
        last = float(shown[-1])
    elif float(duration) > t[-1]:
        last = float(duration) if nxt >= float(duration) else min(float(duration), float(shown[-1] + nxt) / 2)
    else:  # a sample at or past the stated end: a sliver of a cell, not past the video
        last = t[-1] + 1e-6
    last = max(last, float(np.nextafter(t[-1], np.inf)))  # past 2**53 s, t + step rounds back to t
    starts = np.concatenate([[first], bounds])  # (T,)
    ends = np.concatenate([bounds, [last]])  # (T,)
    return starts, ends


def step_cells(times: np.ndarray, step_seconds: float | None = None,
               duration: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(A,) start times of contiguous score steps (audio steps: each covers its own mel frames,
    `step_seconds` long; None: the median interval) -> (A,) cell starts and ends: each step from
    its time for its own length, cut where the next starts (overlapping windows) and at
    `duration`. Unlike sampled frames, a hole between steps (audio not heard) belongs to no step."""
    t = _check_times(times, duration)
    if step_seconds is None:
        step_seconds = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    if not (0 < step_seconds < np.inf):
        raise InvalidValueError(f"step duration must be a finite number > 0, got {step_seconds!r}")
    ends = np.minimum(t + float(step_seconds), np.concatenate([t[1:], [np.inf]]))  # (A,)
    if duration is not None:
        ends = np.minimum(ends, float(duration))
    ends = np.maximum(ends, np.nextafter(t, np.inf))  # a step at or past the end: a sliver, never empty
    return t.copy(), ends


def union_cells(*timelines: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Several score timelines, each (starts, ends, scores) of cells (NaN: not scored) -> one on
    the union of their boundaries: (N,) starts, ends and at each piece the highest score of the
    cells covering it (NaN where none does). No cell is stretched to another's grid: a 0.08 s
    audio step stays 0.08 s inside a 0.2 s frame cell."""
    parts = [(np.asarray(a, np.float64).reshape(-1), np.asarray(b, np.float64).reshape(-1),
              np.asarray(s, np.float64).reshape(-1)) for a, b, s in timelines if len(a)]
    if not parts:
        raise InvalidValueError("no timeline to combine")
    edges = np.unique(np.concatenate([np.concatenate([a, b]) for a, b, _ in parts]))  # (E,)
    edges = edges[np.concatenate([[True], np.diff(edges) > 1e-9])]  # float noise of the same boundary once
    starts, ends = edges[:-1], edges[1:]  # (N,)
    mid = (starts + ends) / 2
    best = np.full(len(mid), np.nan)
    for a, b, s in parts:
        i = np.searchsorted(a, mid, side="right") - 1  # the cell starting last before the piece's middle
        ok = (i >= 0) & (mid < b[np.clip(i, 0, None)])
        v = np.where(ok, s[np.clip(i, 0, None)], np.nan)
        best = np.fmax(best, v)  # NaN only where neither has a score
    return starts, ends, best


def _runs(above: np.ndarray) -> list[tuple[int, int]]:
    """Index ranges [a, b] (inclusive) of consecutive True values."""
    padded = np.concatenate([[False], above, [False]]).astype(np.int8)
    edges = np.flatnonzero(np.diff(padded))  # rising at even positions, falling at odd ones
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def iou(a: Proposal, b: Proposal) -> float:
    """Temporal IoU with the official definition: overlap / (max end - min start)."""
    inter = max(0.0, min(a.end, b.end) - max(a.start, b.start))
    union = max(a.end, b.end) - min(a.start, b.start)
    return inter / union if union > 0 else 0.0


@dataclass
class Candidates:
    """Scored segments before suppression: (N,) float64 confidence, start and end in seconds."""

    confidence: np.ndarray
    start: np.ndarray
    end: np.ndarray

    def __post_init__(self) -> None:
        self.confidence = np.asarray(self.confidence, np.float64).reshape(-1)
        self.start = np.asarray(self.start, np.float64).reshape(-1)
        self.end = np.asarray(self.end, np.float64).reshape(-1)
        if not self.confidence.shape == self.start.shape == self.end.shape:
            raise InvalidValueError(f"candidates need as many confidences, starts and ends, got "
                             f"{self.confidence.shape}, {self.start.shape}, {self.end.shape}")

    def __len__(self) -> int:
        return len(self.confidence)

    @classmethod
    def of(cls, proposals: Sequence[Proposal]) -> "Candidates":
        return cls(np.array([p.confidence for p in proposals], np.float64), np.array([p.start for p in proposals]),
                   np.array([p.end for p in proposals]))

    @classmethod
    def concat(cls, parts: Sequence["Candidates"]) -> "Candidates":
        if not parts:
            return cls(np.zeros(0), np.zeros(0), np.zeros(0))
        return cls(np.concatenate([p.confidence for p in parts]), np.concatenate([p.start for p in parts]),
                   np.concatenate([p.end for p in parts]))

    def take(self, index: np.ndarray) -> "Candidates":
        return Candidates(self.confidence[index], self.start[index], self.end[index])

    def proposals(self) -> list[Proposal]:
        return [Proposal(float(c), float(a), float(b)) for c, a, b in zip(self.confidence, self.start, self.end)]


def _ious(start: float, end: float, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """(N,) IoU of one segment with N segments (the official definition)."""
    inter = np.clip(np.minimum(end, ends) - np.maximum(start, starts), 0.0, None)
    union = np.maximum(end, ends) - np.minimum(start, starts)
    return np.where(union > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def _on_candidates(fn: Callable[..., Candidates]) -> SuppressFn:
    """A suppression written on `Candidates`, also callable on a list of Proposals (returns a list)."""

    @functools.wraps(fn)
    def run(proposals, iou_threshold: float, **kwargs):
        if isinstance(proposals, Candidates):
            return fn(proposals, iou_threshold, **kwargs)
        return fn(Candidates.of(list(proposals)), iou_threshold, **kwargs).proposals()

    return run


def _by_confidence(c: Candidates) -> np.ndarray:
    """Indices by decreasing confidence, ties in input order."""
    return np.argsort(-c.confidence, kind="stable")


@SUPPRESSIONS.register("none")
@_on_candidates
def no_suppression(c: Candidates, iou_threshold: float, max_keep: int | None = None, **_) -> Candidates:
    """Keep every candidate (sorted by confidence)."""
    return c.take(_by_confidence(c)[:max_keep])


@SUPPRESSIONS.register("nms")
@_on_candidates
def nms(c: Candidates, iou_threshold: float, max_keep: int | None = None, **_) -> Candidates:
    """Greedy NMS: keep the most confident, drop candidates overlapping it with IoU > threshold."""
    order = _by_confidence(c)
    st, en = c.start[order], c.end[order]
    alive = np.ones(len(order), bool)
    kept: list[int] = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        kept.append(i)
        if max_keep is not None and len(kept) >= max_keep:
            break
        alive[i + 1:] &= _ious(st[i], en[i], st[i + 1:], en[i + 1:]) <= iou_threshold
    return c.take(order[np.asarray(kept, np.int64)])


SOFT_NMS_SIGMA = 0.5


@SUPPRESSIONS.register("soft_nms")
@_on_candidates
def soft_nms(c: Candidates, iou_threshold: float, sigma: float = SOFT_NMS_SIGMA,
             max_keep: int | None = None, **_) -> Candidates:
    """Gaussian soft-NMS: overlapping candidates are kept with confidence * exp(-IoU^2 / sigma)
    (only overlaps above `iou_threshold` decay), so AR at many proposals still benefits. The
    candidates are picked in decreasing (decayed) confidence, so stopping after `max_keep`
    gives the top of the full result."""
    conf = c.confidence.copy()
    st, en = c.start, c.end
    left = np.ones(len(conf), bool)
    picked: list[int] = []
    out_conf: list[float] = []
    limit = len(conf) if max_keep is None else min(len(conf), max_keep)
    while len(picked) < limit:
        masked = np.where(left, conf, -np.inf)
        i = int(np.argmax(masked))  # first of the ties: input order
        picked.append(i)
        out_conf.append(float(conf[i]))
        left[i] = False
        o = _ious(st[i], en[i], st, en)
        decay = left & (o > iou_threshold)
        conf[decay] *= np.exp(-(o[decay] ** 2) / sigma)
    idx = np.asarray(picked, np.int64)
    return Candidates(np.asarray(out_conf, np.float64), st[idx], en[idx])


def proposals_from_scores(times: np.ndarray, scores: np.ndarray, duration: float | None = None,
                          thresholds: Sequence[float] = DEFAULT_THRESHOLDS, suppression: str = "soft_nms",
                          iou_threshold: float = 0.3, max_proposals: int = 100,
                          min_duration: float = 0.0, frame_seconds: float | None = None) -> tuple[Proposal, ...]:
    """Temporal proposals from (T,) per-frame P(fake) at (T,) sampled frame times (seconds), each
    standing for its `frame_cells` (`frame_seconds` = 1 / fps of the video: sampled frames'
    cells meet in the middle of the unseen gaps); see `proposals_from_cells`."""
    starts, ends = frame_cells(times, duration, frame_seconds)
    return proposals_from_cells(starts, ends, scores, thresholds=thresholds, suppression=suppression,
                                iou_threshold=iou_threshold, max_proposals=max_proposals, min_duration=min_duration)


def proposals_from_cells(starts: np.ndarray, ends: np.ndarray, scores: np.ndarray,
                         thresholds: Sequence[float] = DEFAULT_THRESHOLDS, suppression: str = "soft_nms",
                         iou_threshold: float = 0.3, max_proposals: int = 100,
                         min_duration: float = 0.0) -> tuple[Proposal, ...]:
    """Temporal proposals from (N,) cells [starts, ends) in time order and their (N,) P(fake):
    runs of consecutive cells above each threshold, confidence the run's mean score over its
    time. NaN marks a cell nobody scored (no face found there): it is above no threshold, so a
    run never bridges it.

    Never empty: when no run passes the lowest threshold, the single most suspicious cell is the
    proposal (a valid, low-confidence answer; the official scorer rejects empty lists), the whole
    timeline at confidence 0 when no cell was scored.
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)  # (N,)
    starts = np.asarray(starts, np.float64).reshape(-1)
    ends = np.asarray(ends, np.float64).reshape(-1)
    if s.shape != starts.shape or s.shape != ends.shape:
        raise InvalidValueError(f"{s.size} scores for {starts.size} cells")
    if s.size == 0:
        raise InvalidValueError("no cells to make proposals from")
    if np.isinf(s).any():
        raise InvalidValueError("frame scores must be finite (NaN: not scored)")
    scored = ~np.isnan(s)
    width = ends - starts  # (N,)
    # keyed by the run's first and last cell: several thresholds giving the same run count once
    candidates: dict[tuple[int, int], float] = {}
    for thr in thresholds:
        for a, b in _runs(scored & (np.where(scored, s, -np.inf) > thr)):
            if float(ends[b]) - float(starts[a]) < min_duration:
                continue
            w = width[a:b + 1]
            conf = float(np.sum(s[a:b + 1] * w) / np.sum(w)) if np.sum(w) > 0 else float(s[a:b + 1].mean())
            candidates[(a, b)] = max(conf, candidates.get((a, b), 0.0))
    props = [Proposal(c, float(starts[a]), float(ends[b])) for (a, b), c in candidates.items()]
    if not props and scored.any():
        i = int(np.nanargmax(s))
        props = [Proposal(float(s[i]), float(starts[i]), float(ends[i]))]
    elif not props:
        props = [Proposal(0.0, float(starts[0]), float(ends[-1]))]
    kept = SUPPRESSIONS.get(suppression)(props, iou_threshold)
    return tuple(kept[:max_proposals])


# ------------------------------------------------------------------------------------ learned localizers


def decode_points(centres: np.ndarray, strides: np.ndarray, offsets: np.ndarray, step_seconds: float,
                  origin: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Pyramid points -> segments in seconds. centres (N,) are positions in level-0 steps (step j
    spans [j, j + 1)), strides (N,) each point's level stride in steps, offsets (N, 2) the
    predicted distances to the start and the end in units of the point's stride; step j starts
    at origin + j * step_seconds. Returns (N,) starts and (N,) ends."""
    c = np.asarray(centres, np.float64).reshape(-1)
    s = np.asarray(strides, np.float64).reshape(-1)
    o = np.asarray(offsets, np.float64).reshape(-1, 2)
    return origin + (c - o[:, 0] * s) * step_seconds, origin + (c + o[:, 1] * s) * step_seconds


def encode_segments(centres: np.ndarray, strides: np.ndarray, start_steps: np.ndarray,
                    end_steps: np.ndarray) -> np.ndarray:
    """The inverse of `decode_points` in steps: (N,) point centres and strides and (N,) segment
    edges (level-0 steps) -> (N, 2) distances to the start and the end in stride units."""
    s = np.asarray(strides, np.float64)
    c = np.asarray(centres, np.float64)
    return np.stack([(c - np.asarray(start_steps, np.float64)) / s, (np.asarray(end_steps, np.float64) - c) / s],
                    axis=-1)


def window_starts(n_steps: int, window: int, overlap: int) -> np.ndarray:
    """(K,) first steps of the windows covering n_steps: every window - overlap steps, the last one
    ending at n_steps (so every window is full when n_steps >= window); one window when it fits."""
    if window < 1 or not 0 <= overlap < window:
        raise InvalidValueError(f"need window >= 1 and 0 <= overlap < window, got {window} and {overlap}")
    if n_steps <= window:
        return np.zeros(1, np.int64)
    hop = window - overlap
    starts = list(range(0, n_steps - window, hop)) + [n_steps - window]
    return np.unique(np.asarray(starts, np.int64))


def own_span(k: int, starts: np.ndarray, window: int, n_steps: int) -> tuple[float, float]:
    """The part [lo, hi) (in steps) of the timeline window k answers for: from the middle of its
    overlap with the previous window to the middle of its overlap with the next (the video's
    start and end for the first and last), so pooled windows give each point exactly once."""
    a = float(starts[k])
    lo = 0.0 if k == 0 else (a + float(starts[k - 1]) + window) / 2
    hi = float(n_steps) if k == len(starts) - 1 else (float(starts[k + 1]) + a + window) / 2
    return lo, hi


def select_proposals(candidates: Candidates, duration: float, suppression: str = "soft_nms",
                     iou_threshold: float = 0.0, max_proposals: int = 100, sigma: float = SOFT_NMS_SIGMA,
                     pre_topk: int = 2000, min_duration: float = 1e-3) -> tuple[Proposal, ...]:
    """Candidates in seconds -> at most `max_proposals` proposals sorted by confidence: clipped to
    [0, duration], segments shorter than `min_duration` dropped, the `pre_topk` most confident
    suppressed by name. Never empty: without a usable candidate the whole video at the best
    candidate's confidence (0 when there is none) is the proposal (the official scorer rejects
    empty lists)."""
    if duration <= 0:
        raise InvalidValueError(f"duration must be > 0, got {duration}")
    c = candidates
    st = np.clip(c.start, 0.0, duration)
    en = np.clip(c.end, 0.0, duration)
    ok = (en - st >= min_duration) & np.isfinite(c.confidence)
    best = float(np.clip(c.confidence[np.isfinite(c.confidence)].max(initial=0.0), 0.0, 1.0))
    c = Candidates(np.clip(c.confidence[ok], 0.0, 1.0), st[ok], en[ok])
    if len(c) == 0:
        return (Proposal(best, 0.0, float(duration)),)
    c = c.take(_by_confidence(c)[:pre_topk])
    kept = SUPPRESSIONS.get(suppression)(c, iou_threshold, sigma=sigma, max_keep=max_proposals)
    kept = kept.take(_by_confidence(kept)[:max_proposals])
    return tuple(kept.proposals())


__all__ = ["SUPPRESSIONS", "DEFAULT_THRESHOLDS", "Candidates", "frame_cells", "step_cells", "union_cells", "iou", "nms", "soft_nms",
           "no_suppression", "proposals_from_scores", "proposals_from_cells", "decode_points", "encode_segments", "window_starts", "own_span",
           "select_proposals"]
