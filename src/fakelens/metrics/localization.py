"""Temporal localization metrics with the official AV-Deepfake1M / LAV-DF semantics (AP@IoU, AR@N).

Semantics (METRICS.md, checked against the official `avdeepfake1m` scorer to 1e-5):
- IoU = overlap / (max end - min start); a match needs IoU strictly greater than the threshold.
- AP@t: per video, each ground-truth segment in file order takes the first proposal in row order
  with IoU > t that no earlier segment took; proposals of all videos are pooled (real videos' are
  false positives), sorted by confidence (stable), and AP sums Δrecall × the best precision at
  that recall or beyond; the stretch from recall 0 to the first point is not counted.
- AR@N: per video the first N rows; a segment is recalled at t when a kept proposal has IoU > t;
  recall pooled over videos, averaged over t in 0.5:0.05:0.95. Videos with no ground truth or
  with an empty proposal list contribute nothing.
Like the official scorer, boundaries, confidences and IoUs are float32 (so ties and IoUs exactly
at a threshold resolve as it does); the precision/recall curve is summed in float64.

Everything is vectorised over (segment, proposal) pairs: an AV-1M-sized test set (10^5 videos,
100 proposals each) scores in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import attrgetter
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from fakelens.errors import FakelensError
from fakelens.types import Proposal, Segment, VideoRecord

AP_THRESHOLDS_AVDF1M: tuple[float, ...] = (0.5, 0.75, 0.9, 0.95)
AR_N_AVDF1M: tuple[int, ...] = (50, 30, 20, 10, 5)
AP_THRESHOLDS_LAVDF: tuple[float, ...] = (0.5, 0.75, 0.95)
AR_N_LAVDF: tuple[int, ...] = (100, 50, 20, 10)
# 0.5:0.05:0.95 written out: np.arange would give 0.6000000000000001 and friends.
AR_IOU_THRESHOLDS: tuple[float, ...] = (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95)
PRESETS: dict[str, tuple[tuple[float, ...], tuple[int, ...]]] = {
    "avdf1m": (AP_THRESHOLDS_AVDF1M, AR_N_AVDF1M),
    "lavdf": (AP_THRESHOLDS_LAVDF, AR_N_LAVDF),
}
MAX_LISTED = 5


@dataclass(frozen=True)
class PackedProposals:
    """Proposals of many videos in one array: video i owns rows[offsets[i]:offsets[i+1]] in file row order."""

    ids: list[str]  # (V,)
    offsets: np.ndarray  # (V+1,) int64
    rows: np.ndarray  # (P, 3) float64: confidence, start_s, end_s (metrics compute in float32)

    def __post_init__(self) -> None:
        if len(self.offsets) != len(self.ids) + 1 or self.rows.ndim != 2 or self.rows.shape[1] != 3:
            raise ValueError("PackedProposals needs len(offsets) == len(ids) + 1 and rows of shape (P, 3)")

    def counts(self) -> np.ndarray:
        return np.diff(self.offsets)  # (V,)

    def index(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.ids)}

    def to_dict(self) -> dict[str, tuple[Proposal, ...]]:
        """{id: (Proposal, ...)} (slow for millions of rows; for tests and small files)."""
        rows = self.rows.tolist()
        return {name: tuple(Proposal(*rows[j]) for j in range(self.offsets[i], self.offsets[i + 1]))
                for i, name in enumerate(self.ids)}


@dataclass(frozen=True)
class PackedSegments:
    """Ground-truth segments of many videos: video i owns rows[offsets[i]:offsets[i+1]] in file order."""

    ids: list[str]  # (V,)
    offsets: np.ndarray  # (V+1,) int64
    rows: np.ndarray  # (G, 2) float64: start_s, end_s


def _offsets(counts: np.ndarray) -> np.ndarray:
    out = np.zeros(len(counts) + 1, dtype=np.int64)  # (V+1,)
    np.cumsum(counts, out=out[1:])
    return out


def pack_proposals(proposals: Mapping[str, Sequence[Proposal | Sequence[float]]]) -> PackedProposals:
    """{id: [Proposal | (confidence, start, end), ...]} -> PackedProposals (row order kept)."""
    ids = list(proposals)
    counts = np.fromiter((len(v) for v in proposals.values()), dtype=np.int64, count=len(ids))
    flat: list[float] = []
    for name, rows in proposals.items():
        for p in rows:
            if isinstance(p, Proposal):
                flat.extend((p.confidence, p.start, p.end))
            else:
                if len(p) != 3:
                    raise FakelensError(f"proposal of {name!r} must be (confidence, start, end), got {p!r}")
                flat.extend(p)
    rows_arr = np.asarray(flat, dtype=np.float64).reshape(-1, 3)  # (P, 3)
    return PackedProposals(ids, _offsets(counts), rows_arr)


def pack_segments(ground_truth: Mapping[str, Sequence[Segment | Sequence[float]]] | Sequence[VideoRecord]
                  ) -> PackedSegments:
    """Ground truth as {id: [Segment | (start, end), ...]} or VideoRecords -> PackedSegments (order kept)."""
    if isinstance(ground_truth, Mapping):
        ids = list(ground_truth)
        seg_lists = list(ground_truth.values())
    else:
        ids = [r.id for r in ground_truth]
        seg_lists = [r.segments for r in ground_truth]
    counts = np.fromiter(map(len, seg_lists), dtype=np.int64, count=len(ids))  # (V,)
    segs = [s for group in seg_lists for s in group]
    if all(type(s) is Segment for s in segs):  # the common case (VideoRecords): no per-pair tuples
        rows = np.empty((len(segs), 2), dtype=np.float64)  # (G, 2)
        rows[:, 0] = np.fromiter(map(_START, segs), dtype=np.float64, count=len(segs))
        rows[:, 1] = np.fromiter(map(_END, segs), dtype=np.float64, count=len(segs))
    else:
        rows = np.asarray([(s.start, s.end) if isinstance(s, Segment) else (s[0], s[1]) for s in segs],
                          dtype=np.float64).reshape(-1, 2)  # (G, 2)
    return PackedSegments(ids, _offsets(counts), rows)


_START, _END = attrgetter("start"), attrgetter("end")


def _as_packed(proposals: PackedProposals | Mapping, ground_truth: PackedSegments | Mapping | Sequence
               ) -> tuple[PackedProposals, PackedSegments]:
    """Both sides packed, the proposals re-ordered to the ground truth's video order.

    Every ground-truth video needs an entry (FakelensError naming the missing ones); proposals for
    videos absent from the ground truth are ignored, as the official scorer does.
    """
    gt = ground_truth if isinstance(ground_truth, PackedSegments) else pack_segments(ground_truth)
    pp = proposals if isinstance(proposals, PackedProposals) else pack_proposals(proposals)
    if pp.ids == gt.ids:
        return pp, gt
    where = pp.index()
    idx = np.fromiter((where.get(name, -1) for name in gt.ids), dtype=np.int64, count=len(gt.ids))
    missing = np.flatnonzero(idx < 0)
    if len(missing):
        names = ", ".join(repr(gt.ids[i]) for i in missing[:MAX_LISTED])
        more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        raise FakelensError(f"{len(missing)} of {len(gt.ids)} labelled videos have no prediction: {names}{more}")
    counts = pp.counts()[idx]
    starts = pp.offsets[idx]
    offsets = _offsets(counts)
    # rows of video k (in gt order) = pp.rows[starts[k] : starts[k] + counts[k]]
    take = np.repeat(starts - offsets[:-1], counts) + np.arange(offsets[-1])
    return PackedProposals(list(gt.ids), offsets, pp.rows[take]), gt


@dataclass
class _Pairs:
    """Every (ground-truth segment, proposal) pair of the same video, segment-major, proposals in row order."""

    gt: np.ndarray  # (K,) int64 index into segment rows
    prop: np.ndarray  # (K,) int64 index into proposal rows
    local: np.ndarray  # (K,) int64 row number of the proposal inside its video
    iou: np.ndarray  # (K,) float32
    start: np.ndarray  # (G+1,) int64: pairs of segment g are [start[g], start[g+1])


def _pairs(pp: PackedProposals, gt: PackedSegments, max_rows: int | None = None) -> _Pairs:
    n_props = pp.counts()  # (V,)
    if max_rows is not None:
        n_props = np.minimum(n_props, max_rows)
    n_gt = np.diff(gt.offsets)  # (V,)
    video_of_gt = np.repeat(np.arange(len(n_gt)), n_gt)  # (G,)
    per_gt = n_props[video_of_gt]  # (G,) pairs per segment
    start = _offsets(per_gt)  # (G+1,)
    k = int(start[-1])
    idx = np.int32 if max(k, len(pp.rows)) < 2**31 else np.int64
    pair_gt = np.repeat(np.arange(len(per_gt), dtype=idx), per_gt)  # (K,)
    first_row = pp.offsets[:-1][video_of_gt].astype(idx)  # (G,) the segment's video's first proposal row
    prop = np.arange(k, dtype=idx) + np.repeat(first_row - start[:-1].astype(idx), per_gt)  # (K,)
    local = prop - np.repeat(first_row, per_gt)  # (K,)
    # float32 throughout, as the official scorer
    ps = pp.rows[:, 1].astype(np.float32)[prop]  # (K,)
    pe = pp.rows[:, 2].astype(np.float32)[prop]
    gs = np.repeat(gt.rows[:, 0].astype(np.float32), per_gt)  # (K,)
    ge = np.repeat(gt.rows[:, 1].astype(np.float32), per_gt)
    inter = np.minimum(pe, ge)
    inter -= np.maximum(ps, gs)
    np.maximum(inter, np.float32(0), out=inter)
    union = np.maximum(pe, ge)
    union -= np.minimum(ps, gs)
    with np.errstate(divide="ignore", invalid="ignore"):
        inter /= union  # IoU (K,) float32
    return _Pairs(pair_gt, prop, local, inter, start)


def _true_positives(pairs: _Pairs, gt: PackedSegments, n_rows: int, threshold: float) -> np.ndarray:
    """(P,) bool: proposals matched by the greedy per-video walk over segments in file order."""
    hit = pairs.iou > np.float32(threshold)  # (K,)
    hp = np.flatnonzero(hit)
    g_of = pairs.gt[hp]
    first = np.ones(len(hp), dtype=bool)
    first[1:] = g_of[1:] != g_of[:-1]
    chosen = pairs.prop[hp[first]]  # each segment's first hit, ignoring what earlier segments took
    is_tp = np.zeros(n_rows, dtype=bool)  # (P,)
    is_tp[chosen] = True
    # Where two segments of a video share their first hit, the greedy walk differs: redo those
    # videos exactly (only overlapping segments or thresholds below 0.5 can cause it).
    dup = np.bincount(chosen, minlength=n_rows) > 1 if len(chosen) else np.zeros(0, dtype=bool)
    if dup.any():
        n_gt = np.diff(gt.offsets)
        video_of_gt = np.repeat(np.arange(len(n_gt)), n_gt)
        seg_of_chosen = g_of[first]
        for v in np.unique(video_of_gt[seg_of_chosen[dup[chosen]]]):
            segs = range(gt.offsets[v], gt.offsets[v + 1])
            is_tp[pairs.prop[pairs.start[segs[0]]:pairs.start[segs[-1] + 1]]] = False
            taken: set[int] = set()
            for s in segs:
                lo = pairs.start[s]
                for j in np.flatnonzero(hit[lo:pairs.start[s + 1]]):
                    j = int(j)
                    if j not in taken:
                        taken.add(j)
                        is_tp[pairs.prop[lo + j]] = True
                        break
    return is_tp


def _ap_from_sorted(tp_sorted: np.ndarray, n_gt: int) -> float:
    """The official curve rule on proposals already sorted by confidence (descending)."""
    if len(tp_sorted) == 0:
        return 0.0
    cum = np.cumsum(tp_sorted, dtype=np.float64)  # (P,)
    precision = cum / np.arange(1, len(cum) + 1)
    best_beyond = np.maximum.accumulate(precision[::-1])[::-1]  # max precision at rank >= i
    # Δrecall is 1/n_gt at each true positive; rank 0 (recall 0 -> first point) is not counted.
    return float(best_beyond[1:][tp_sorted[1:]].sum() / n_gt)


def _confidence_order(conf: np.ndarray) -> np.ndarray:
    """Row order by float32 confidence, descending, ties in row order: the same permutation as
    np.argsort(-conf32, kind="stable"), computed as two 16-bit radix sorts (about twice as fast)."""
    neg = -conf.astype(np.float32) + np.float32(0.0)  # (P,) -0.0 becomes +0.0: equal floats get equal keys
    if not np.isfinite(neg).all():  # NaN order differs between floats and their bits
        return np.argsort(neg, kind="stable")
    bits = neg.view(np.uint32)
    key = np.where(bits >> 31 == 1, ~bits, bits | np.uint32(0x80000000))  # (P,) unsigned order = float order
    order = np.argsort((key & np.uint32(0xFFFF)).astype(np.uint16), kind="stable")  # (P,) radix sort, low half
    return order[np.argsort((key >> 16).astype(np.uint16)[order], kind="stable")]  # then the high half


def _check_thresholds(thresholds: Sequence[float]) -> list[float]:
    out = [float(t) for t in thresholds]
    if not out or any(not (0.0 <= t < 1.0) for t in out):
        raise FakelensError(f"IoU thresholds must be in [0, 1), got {list(thresholds)!r}")
    return out


def ap_at_iou(proposals: PackedProposals | Mapping[str, Sequence[Proposal]],
              ground_truth: PackedSegments | Mapping[str, Sequence[Segment]] | Sequence[VideoRecord],
              thresholds: Sequence[float] = AP_THRESHOLDS_AVDF1M) -> dict[float, float]:
    """{threshold: AP} with the official AV-Deepfake1M rule (see the module docstring)."""
    ths = _check_thresholds(thresholds)
    pp, gt = _as_packed(proposals, ground_truth)
    return _ap(pp, gt, _pairs(pp, gt), ths)


def _ap(pp: PackedProposals, gt: PackedSegments, pairs: _Pairs, ths: list[float]) -> dict[float, float]:
    n_gt = len(gt.rows)
    if n_gt == 0:
        raise FakelensError("AP is undefined: the ground truth has no fake segment")
    order = _confidence_order(pp.rows[:, 0])  # (P,) pooled, confidence descending
    return {t: _ap_from_sorted(_true_positives(pairs, gt, len(pp.rows), t)[order], n_gt) for t in ths}


def ap_curves(proposals: PackedProposals | Mapping, ground_truth: PackedSegments | Mapping | Sequence,
              thresholds: Sequence[float] = AP_THRESHOLDS_AVDF1M) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """{threshold: (recall, precision)} over the pooled, confidence-sorted proposals (for plots)."""
    ths = _check_thresholds(thresholds)
    pp, gt = _as_packed(proposals, ground_truth)
    if len(gt.rows) == 0:
        raise FakelensError("precision/recall is undefined: the ground truth has no fake segment")
    pairs = _pairs(pp, gt)
    order = _confidence_order(pp.rows[:, 0])
    out = {}
    for t in ths:
        cum = np.cumsum(_true_positives(pairs, gt, len(pp.rows), t)[order], dtype=np.float64)  # (P,)
        out[t] = (cum / len(gt.rows), cum / np.arange(1, len(cum) + 1))
    return out


def ar_at_n(proposals: PackedProposals | Mapping[str, Sequence[Proposal]],
            ground_truth: PackedSegments | Mapping[str, Sequence[Segment]] | Sequence[VideoRecord],
            n_proposals: Sequence[int] = AR_N_AVDF1M,
            thresholds: Sequence[float] = AR_IOU_THRESHOLDS) -> dict[int, float]:
    """{N: AR@N}: recall of the first N rows per video, pooled, averaged over IoU thresholds."""
    ths = _check_thresholds(thresholds)
    ns = [int(n) for n in n_proposals]
    if not ns or min(ns) < 1:
        raise FakelensError(f"AR needs proposal counts >= 1, got {list(n_proposals)!r}")
    pp, gt = _as_packed(proposals, ground_truth)
    return _ar(_pairs(pp, gt, max_rows=max(ns)), ns, ths)


def _ar(pairs: _Pairs, ns: list[int], ths: list[float]) -> dict[int, float]:
    # Segments of videos with an empty proposal list have no pairs and count nowhere (official).
    has_pairs = np.diff(pairs.start) > 0  # (G,)
    n_counted = int(has_pairs.sum())
    heads = pairs.start[:-1][has_pairs]
    th = np.asarray(ths, dtype=np.float32)
    out = {}
    for n in ns:
        if n_counted == 0:
            out[n] = 0.0
            continue
        iou_n = np.where(pairs.local < n, pairs.iou, np.float32(-1))  # (K,)
        best = np.maximum.reduceat(iou_n, heads)  # (G_counted,) best IoU among the first n rows
        recalled = (best[:, None] > th[None, :]).sum(axis=0)  # (T,)
        out[n] = float(np.mean(recalled / n_counted))
    return out


def av1m_score(ap: Mapping[float, float], ar: Mapping[int, float]) -> float:
    """AV-Deepfake1M challenge score: sum(AP over its 4 thresholds)/8 + sum(AR over its 5 N)/10."""
    missing = [t for t in AP_THRESHOLDS_AVDF1M if t not in ap] + [n for n in AR_N_AVDF1M if n not in ar]
    if missing:
        raise FakelensError(f"the AV-1M score needs AP@{list(AP_THRESHOLDS_AVDF1M)} and "
                            f"AR@{list(AR_N_AVDF1M)}; missing {missing}")
    return sum(ap[t] for t in AP_THRESHOLDS_AVDF1M) / 8 + sum(ar[n] for n in AR_N_AVDF1M) / 10


def localization_report(proposals: PackedProposals | Mapping, ground_truth: PackedSegments | Mapping | Sequence,
                        preset: str = "avdf1m") -> dict[str, Any]:
    """AP and AR at a challenge's defaults ("avdf1m" adds the challenge score, "lavdf")."""
    if preset not in PRESETS:
        raise FakelensError(f"unknown localization preset {preset!r} (choose {', '.join(PRESETS)})")
    ap_t, ar_n = PRESETS[preset]
    pp, gt = _as_packed(proposals, ground_truth)
    out: dict[str, Any] = {"preset": preset, "videos": len(gt.ids), "segments": int(len(gt.rows)),
                           "proposals": int(len(pp.rows)),
                           "ap": {}, "ar": {}}
    pairs = _pairs(pp, gt)  # shared: AR masks rows beyond N itself
    out["ap"] = _ap(pp, gt, pairs, list(ap_t))
    out["ar"] = _ar(pairs, list(ar_n), list(AR_IOU_THRESHOLDS))
    if preset == "avdf1m":
        out["score"] = av1m_score(out["ap"], out["ar"])
    return out


def lavdf_metrics(proposals: PackedProposals | Mapping, ground_truth: PackedSegments | Mapping | Sequence
                  ) -> dict[str, Any]:
    """LAV-DF defaults: AP at {0.5, 0.75, 0.95}, AR at {100, 50, 20, 10}."""
    return localization_report(proposals, ground_truth, "lavdf")


def load_official_scorer() -> Any | None:
    """The official AV-Deepfake1M Rust scorer (`avdeepfake1m._evaluation`, with `ap_ar_1d(...)`) if the
    `avdeepfake1m` package is installed, else None. Only for parity tests and benchmarks.

    The extension module is loaded alone: importing the package would import torch, pandas and
    torchmetrics. Install it with `pip install --no-deps avdeepfake1m==0.0.4` (extra `[oracle]`).
    """
    import importlib.util

    spec = importlib.util.find_spec("avdeepfake1m")
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        for so in sorted(Path(folder).glob("_evaluation*.so")) + sorted(Path(folder).glob("_evaluation*.pyd")):
            ext = importlib.util.spec_from_file_location("avdeepfake1m._evaluation", so)
            if ext is None or ext.loader is None:
                continue
            module = importlib.util.module_from_spec(ext)
            ext.loader.exec_module(module)
            return module
    return None
