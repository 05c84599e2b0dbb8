"""Per-frame P(fake) over time -> temporal proposals [confidence, start_s, end_s].

Each sampled frame at time t_i stands for a cell of the timeline on the label grid: frame k of a
video is shown during [k/fps, (k+1)/fps), the interval `frame_labels` marks fake, so a sample's
cell runs from its own time to the next sample's (the last one for one sampling interval, capped
at the video duration). Perfect frame scores therefore give back a fake segment on the frame grid
exactly (AP = 1 at every IoU threshold). Runs of consecutive cells scoring above a threshold become
proposals (confidence = mean score of the run); several thresholds give nested candidates of
different lengths, and a named suppression (NMS, soft-NMS, none) removes the duplicates.

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


def frame_cells(times: np.ndarray, duration: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(T,) sample times (s, increasing) -> (T,) cell starts and (T,) cell ends in seconds: cell i is
    [t_i, t_(i+1)), the last [t_(T-1), t_(T-1) + the median interval) capped at `duration` (one
    sample alone: 1 s, or up to `duration`; a last sample at or past `duration`: 1 us, so that no
    cell ends past the video)."""
    t = np.asarray(times, dtype=np.float64).reshape(-1)  # (T,)
    if t.size == 0:
        raise InvalidValueError("no frame times")
    if not np.isfinite(t).all() or t[0] < 0:
        raise InvalidValueError("frame times must be finite seconds >= 0")
    if np.any(np.diff(t) <= 0):
        raise InvalidValueError("frame times must be strictly increasing")
    if duration is not None and not (0 <= duration < np.inf):
        raise InvalidValueError(f"duration must be a finite number >= 0, got {duration!r}")
    step = float(np.median(np.diff(t))) if t.size > 1 else 1.0
    last = t[-1] + step
    if duration is not None and float(duration) > t[-1]:
        last = min(last, float(duration)) if t.size > 1 else float(duration)
    elif duration is not None:  # a sample at or past the stated end: a sliver of a cell, not past the video
        last = t[-1] + 1e-6
    last = max(last, float(np.nextafter(t[-1], np.inf)))  # past 2**53 s, t + step rounds back to t
    starts = t.copy()  # (T,)
    ends = np.concatenate([t[1:], [last]])  # (T,)
    return starts, ends


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
                          min_duration: float = 0.0) -> tuple[Proposal, ...]:
    """Temporal proposals from (T,) per-frame P(fake) at (T,) sample times (seconds).

    Never empty: when no run passes the lowest threshold, the single most suspicious cell is the
    proposal (a valid, low-confidence answer; the official scorer rejects empty lists).
    """
    s = np.asarray(scores, dtype=np.float64).reshape(-1)  # (T,)
    starts, ends = frame_cells(times, duration)
    if s.shape != starts.shape:
        raise InvalidValueError(f"{s.size} scores for {starts.size} frame times")
    if not np.all(np.isfinite(s)):
        raise InvalidValueError("frame scores must be finite")
    # keyed by the run's first and last cell: several thresholds giving the same run count once
    candidates: dict[tuple[int, int], float] = {}
    for thr in thresholds:
        for a, b in _runs(s > thr):
            if float(ends[b]) - float(starts[a]) < min_duration:
                continue
            conf = float(s[a:b + 1].mean())
            candidates[(a, b)] = max(conf, candidates.get((a, b), 0.0))
    props = [Proposal(c, float(starts[a]), float(ends[b])) for (a, b), c in candidates.items()]
    if not props:
        i = int(np.argmax(s))
        props = [Proposal(float(s[i]), float(starts[i]), float(ends[i]))]
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


__all__ = ["SUPPRESSIONS", "DEFAULT_THRESHOLDS", "Candidates", "frame_cells", "iou", "nms", "soft_nms",
           "no_suppression", "proposals_from_scores", "decode_points", "encode_segments", "window_starts", "own_span",
           "select_proposals"]
