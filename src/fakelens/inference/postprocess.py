"""Per-frame P(fake) over time -> temporal proposals [confidence, start_s, end_s].

Each sampled frame at time t_i stands for a cell of the timeline: from the midpoint with the
previous sample to the midpoint with the next one, the first cell starting at 0 and the last
ending at the video duration. Runs of consecutive cells scoring above a threshold become
proposals (confidence = mean score of the run); several thresholds give nested candidates of
different lengths, and a named suppression (NMS, soft-NMS, none) removes the duplicates.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from fakelens.registry import Registry
from fakelens.types import Proposal

DEFAULT_THRESHOLDS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)

SuppressFn = Callable[[list[Proposal], float], list[Proposal]]
SUPPRESSIONS: Registry[SuppressFn] = Registry("proposal suppression")


def frame_cells(times: np.ndarray, duration: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(T,) sample times (s, increasing) -> (T,) cell starts and (T,) cell ends in seconds."""
    t = np.asarray(times, dtype=np.float64).reshape(-1)  # (T,)
    if t.size == 0:
        raise ValueError("no frame times")
    if np.any(np.diff(t) <= 0):
        raise ValueError("frame times must be strictly increasing")
    mids = (t[1:] + t[:-1]) / 2  # (T-1,)
    half = float(np.median(np.diff(t))) / 2 if t.size > 1 else 0.5
    first = 0.0 if duration is not None else max(0.0, t[0] - half)
    last = float(duration) if duration is not None else t[-1] + half
    last = max(last, t[-1] + 1e-6)
    starts = np.concatenate([[first], mids])  # (T,)
    ends = np.concatenate([mids, [last]])  # (T,)
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


@SUPPRESSIONS.register("none")
def no_suppression(proposals: list[Proposal], iou_threshold: float) -> list[Proposal]:
    """Keep every candidate (sorted by confidence)."""
    return sorted(proposals, key=lambda p: -p.confidence)


@SUPPRESSIONS.register("nms")
def nms(proposals: list[Proposal], iou_threshold: float) -> list[Proposal]:
    """Greedy NMS: keep the most confident, drop candidates overlapping it with IoU > threshold."""
    remaining = sorted(proposals, key=lambda p: -p.confidence)
    kept: list[Proposal] = []
    while remaining:
        best = remaining.pop(0)
        kept.append(best)
        remaining = [p for p in remaining if iou(best, p) <= iou_threshold]
    return kept


SOFT_NMS_SIGMA = 0.5


@SUPPRESSIONS.register("soft_nms")
def soft_nms(proposals: list[Proposal], iou_threshold: float, sigma: float = SOFT_NMS_SIGMA) -> list[Proposal]:
    """Gaussian soft-NMS: overlapping candidates are kept with confidence * exp(-IoU^2 / sigma)
    (only overlaps above `iou_threshold` decay), so AR at many proposals still benefits."""
    remaining = list(proposals)
    kept: list[Proposal] = []
    while remaining:
        i = max(range(len(remaining)), key=lambda j: remaining[j].confidence)
        best = remaining.pop(i)
        kept.append(best)
        decayed = []
        for p in remaining:
            o = iou(best, p)
            conf = p.confidence * float(np.exp(-(o * o) / sigma)) if o > iou_threshold else p.confidence
            decayed.append(Proposal(conf, p.start, p.end))
        remaining = decayed
    return sorted(kept, key=lambda p: -p.confidence)


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
        raise ValueError(f"{s.size} scores for {starts.size} frame times")
    if not np.all(np.isfinite(s)):
        raise ValueError("frame scores must be finite")
    candidates: dict[tuple[float, float], float] = {}
    for thr in thresholds:
        for a, b in _runs(s > thr):
            seg = (round(float(starts[a]), 6), round(float(ends[b]), 6))
            if seg[1] - seg[0] < min_duration:
                continue
            conf = float(s[a:b + 1].mean())
            candidates[seg] = max(conf, candidates.get(seg, 0.0))
    props = [Proposal(c, st, en) for (st, en), c in candidates.items()]
    if not props:
        i = int(np.argmax(s))
        props = [Proposal(float(s[i]), float(starts[i]), float(ends[i]))]
    kept = SUPPRESSIONS.get(suppression)(props, iou_threshold)
    return tuple(kept[:max_proposals])


__all__ = ["SUPPRESSIONS", "DEFAULT_THRESHOLDS", "frame_cells", "iou", "nms", "soft_nms", "no_suppression",
           "proposals_from_scores"]
