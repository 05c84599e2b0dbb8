"""Property-based tests (hypothesis) of the pure functions under the scorers and the timeline:
classification metrics, AP@IoU / AR@N, segments -> frame labels and proposal post-processing.

Valid inputs keep the metrics' invariants (AUC of reversed scores = 1 - AUC and AUC = the share
of correctly ordered fake/real pairs, AP and AR in [0, 1], AR monotone in N, log loss >= 0, ...)
and agree with plain-Python references of METRICS.md's rules; invalid inputs (NaN, one class,
labels other than 0/1, times going backwards) raise a FakelensError, never anything else.
Each bug these tests found has its minimal example pinned with @example."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from fakelens.errors import FakelensError
from fakelens.metrics.classification import (
    auc,
    classification_report,
    eer,
    log_loss,
    threshold_metrics,
    tpr_at_fpr,
)
from fakelens.metrics.localization import AR_IOU_THRESHOLDS, ap_at_iou, ar_at_n, localization_report
from fakelens.types import Label, Segment, VideoRecord, frame_labels

FUZZ = settings(max_examples=int(os.environ.get("FAKELENS_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

finite = st.floats(-1e6, 1e6, allow_nan=False)
probs = st.floats(0.0, 1.0, allow_nan=False)
anything = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-3, 3)


@st.composite
def labelled(draw, values=finite, min_size=2):
    """(labels, scores) with both classes present."""
    n = draw(st.integers(min_size, 30))
    y = draw(st.lists(st.integers(0, 1), min_size=n, max_size=n).filter(lambda v: 0 < sum(v) < len(v)))
    s = draw(st.lists(values, min_size=n, max_size=n))
    return np.asarray(y), np.asarray(s, np.float64)


def pairwise_auc(y: np.ndarray, s: np.ndarray) -> float:
    """AUC as the share of (fake, real) pairs in the right order, ties counting one half."""
    pos, neg = s[y == 1], s[y == 0]
    wins = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    return float(wins / (len(pos) * len(neg)))


# ----------------------------------------------------------------------------------- classification


@FUZZ
@given(data=labelled())
def test_auc_invariants(data):
    y, s = data
    a = auc(y, s)
    assert 0.0 <= a <= 1.0
    assert a == pytest.approx(pairwise_auc(y, s), abs=1e-12)
    assert auc(y, -s) == pytest.approx(1.0 - a, abs=1e-12)
    assert auc(1 - y, s) == pytest.approx(1.0 - a, abs=1e-12)
    assert auc(y, 2 * s) == a  # an increasing map (exact in floating point) keeps the order


@FUZZ
@given(data=labelled(probs))
@example(data=(np.array([0, 1]), np.array([0.0, 0.0])))
def test_log_loss_eer_tpr_and_counts(data):
    y, p = data
    ll = log_loss(y, p)
    assert ll >= 0.0 and math.isfinite(ll)
    assert log_loss(y, y.astype(float)) < 1e-12  # certain and right
    e = eer(y, p)
    assert 0.0 <= e.eer <= 1.0
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tprs = [tpr_at_fpr(y, p, f).tpr for f in (0.0, 1e-3, 0.1, 0.5, 1.0)]
    assert all(0.0 <= t <= 1.0 for t in tprs) and tprs == sorted(tprs) and tprs[-1] == 1.0
    m = threshold_metrics(y, p, 0.5)
    assert m.tp + m.fp + m.tn + m.fn == len(y) and 0.0 <= m.accuracy <= 1.0
    for v in (m.precision, m.recall, m.f1):
        assert math.isnan(v) or 0.0 <= v <= 1.0


@FUZZ
@given(y=st.lists(st.integers(-1, 2) | st.floats(0, 1), max_size=8), s=st.lists(anything, max_size=8),
       fpr=st.floats(-1, 2) | st.just(math.nan))
@example(y=[0, 1], s=[0.5, float("nan")], fpr=1e-3)
@example(y=[0, 2], s=[0.1, 0.2], fpr=1e-3)
@example(y=[1, 1], s=[0.1, 0.2], fpr=1e-3)
def test_classification_on_anything_raises_only_fakelens_errors(y, s, fpr):
    import warnings

    for fn in (lambda: classification_report(y, s), lambda: auc(y, s), lambda: log_loss(y, s), lambda: eer(y, s),
               lambda: tpr_at_fpr(y, s, fpr), lambda: threshold_metrics(y, s)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                fn()
            except FakelensError as e:
                assert str(e)


# ----------------------------------------------------------------------------------- localization


@st.composite
def localization_data(draw, valid=True):
    """({id: [(conf, start, end), ...]}, {id: [Segment, ...]}) over a few videos of <= 10 s."""
    n = draw(st.integers(1, 5))
    ids = [f"v{i}.mp4" for i in range(n)]
    gt, props = {}, {}
    point = st.floats(0, 10, allow_nan=False).map(lambda x: round(x, 2))
    for i in ids:
        segs = []
        for a, b in draw(st.lists(st.tuples(point, point), max_size=3)):
            if a != b:
                segs.append(Segment(min(a, b), max(a, b)))
        gt[i] = segs
        rows = []
        for c, a, b in draw(st.lists(st.tuples(probs if valid else finite, point if valid else finite,
                                                point if valid else finite), max_size=6)):
            if valid and a == b:
                continue
            rows.append((c, min(a, b), max(a, b)) if valid else (c, a, b))
        props[i] = sorted(rows, key=lambda r: -r[0]) if valid else rows
    return props, gt


def _iou32(ps, pe, gs, ge) -> np.float32:
    """The scorers' IoU in float32, operation by operation."""
    ps, pe, gs, ge = (np.float32(v) for v in (ps, pe, gs, ge))
    inter = max(np.float32(min(pe, ge) - max(ps, gs)), np.float32(0))
    union = np.float32(max(pe, ge) - min(ps, gs))
    return np.float32(inter / union) if union > 0 else np.float32(0)


def reference_ap(props, gt, t) -> float:
    """METRICS.md's AP@t, written as plainly as it reads."""
    n_gt = sum(len(v) for v in gt.values())
    pooled = []  # (confidence, order, is_tp)
    order = 0
    for vid in gt:
        rows = props[vid]
        taken = set()
        for g in gt[vid]:
            for j, (c, s, e) in enumerate(rows):
                if j not in taken and _iou32(s, e, g.start, g.end) > np.float32(t):
                    taken.add(j)
                    break
        for j, (c, s, e) in enumerate(rows):
            pooled.append((np.float32(c), order, j in taken))
            order += 1
    pooled.sort(key=lambda r: (-r[0], r[1]))
    tp = np.asarray([r[2] for r in pooled], bool)
    if len(tp) == 0:
        return 0.0
    cum = np.cumsum(tp)
    precision = cum / np.arange(1, len(tp) + 1)
    total = 0.0
    for i in range(1, len(tp)):
        if tp[i]:
            total += precision[i:].max() / n_gt
    return total


def reference_ar(props, gt, n) -> float:
    recalls = []
    for t in AR_IOU_THRESHOLDS:
        tp = fn = 0
        for vid, segs in gt.items():
            rows = props[vid][:n]
            if not rows:
                continue
            for g in segs:
                if any(_iou32(s, e, g.start, g.end) > np.float32(t) for _, s, e in rows):
                    tp += 1
                else:
                    fn += 1
        recalls.append(tp / (tp + fn) if tp + fn else 0.0)
    return float(np.mean(recalls))


@FUZZ
@given(data=localization_data())
def test_ap_ar_invariants_and_references(data):
    props, gt = data
    assume(any(gt.values()))
    ths = (0.1, 0.5, 0.75, 0.95)
    ap = ap_at_iou(props, gt, ths)
    for t in ths:
        assert 0.0 <= ap[t] <= 1.0 + 1e-12
        assert ap[t] == pytest.approx(reference_ap(props, gt, t), abs=1e-9)
    ns = [1, 2, 3, 5, 100]
    ar = ar_at_n(props, gt, ns)
    values = [ar[n] for n in ns]
    assert all(0.0 <= v <= 1.0 for v in values) and values == sorted(values)
    for n in ns:
        assert ar[n] == pytest.approx(reference_ar(props, gt, n), abs=1e-9)
    rep = localization_report(props, gt)
    assert 0.0 <= rep["score"] <= 0.5 + 0.5 + 1e-9  # sum(4 AP)/8 + sum(5 AR)/10 <= 1


@FUZZ
@given(data=localization_data(valid=False), preset=st.sampled_from(["avdf1m", "lavdf"]))
def test_localization_on_anything_raises_only_fakelens_errors(data, preset):
    props, gt = data
    try:
        localization_report(props, gt, preset)
    except FakelensError as e:
        assert str(e)


def test_perfect_proposals_recall_everything():
    gt = {"a": [Segment(1.0, 2.0)], "b": [Segment(0.5, 3.0), Segment(4.0, 5.0)], "c": []}
    props = {"a": [(0.9, 1.0, 2.0)], "b": [(0.8, 0.5, 3.0), (0.7, 4.0, 5.0)], "c": [(0.1, 0.0, 1.0)]}
    ar = ar_at_n(props, gt, [1, 2])
    assert ar[2] == 1.0 and ar[1] == pytest.approx(2 / 3)
    # the official curve rule leaves out the stretch to the first point: 2 of the 3 recall steps count
    assert ap_at_iou(props, gt, [0.5])[0.5] == pytest.approx(2 / 3)


# ----------------------------------------------------------------------------------- frame labels

def _segments(lo: float, hi: float, n: int):
    return st.lists(st.tuples(st.floats(lo, hi), st.floats(lo, hi)).filter(lambda p: p[0] != p[1]).map(
        lambda p: Segment(min(p), max(p))), max_size=n)


segments = _segments(0.0, 1e3, 4) | _segments(0.0, 1e308, 2)


def reference_frame_labels(segs, fps, n):
    out = [0] * n
    for s in segs:
        for i in range(n):
            if s.start * fps < math.inf and math.floor(s.start * fps) <= i and (
                    s.end * fps == math.inf or i < math.floor(s.end * fps)):
                out[i] = 1
    return out


@FUZZ
@given(segs=segments, fps=st.floats(0.1, 240) | st.sampled_from([25.0, 29.97, 30000 / 1001]),
       n=st.integers(0, 300))
@example(segs=[Segment(0.0, 1e308)], fps=25.0, n=10)
def test_frame_labels_match_the_official_convention(segs, fps, n):
    labels = frame_labels(segs, fps, n)
    assert labels.shape == (n,) and labels.dtype == np.int64 and set(np.unique(labels)) <= {0, 1}
    assert labels.tolist() == reference_frame_labels(segs, fps, n)
    rec = VideoRecord(id="v", path=None, label=Label.FAKE if segs else Label.REAL, segments=tuple(segs))
    assert rec.frame_labels(fps, n).tolist() == (labels.tolist() if segs else [0] * n)


@FUZZ
@given(pairs=st.lists(st.lists(anything, max_size=3), max_size=3), fps=anything, n=st.integers(-2, 50))
@example(pairs=[[0.0, 1.0]], fps=float("nan"), n=5)
@example(pairs=[[0.0, 1.0]], fps=float("inf"), n=5)
@example(pairs=[[0.0, 1.0]], fps=25.0, n=-1)
@example(pairs=[[0.0]], fps=25.0, n=5)
def test_segments_and_frame_labels_raise_only_fakelens_errors(pairs, fps, n):
    from fakelens.types import segments_from_pairs

    try:
        segs = segments_from_pairs(pairs)
        frame_labels(segs, fps, n)
    except FakelensError as e:
        assert str(e)


# ----------------------------------------------------------------------------------- proposals


@st.composite
def timelines(draw):
    n = draw(st.integers(1, 40))
    steps = draw(st.lists(st.floats(1e-3, 2.0), min_size=n, max_size=n))
    t = np.cumsum(steps) - steps[0] / 2  # (n,) strictly increasing from >= 0
    s = np.asarray(draw(st.lists(probs, min_size=n, max_size=n)))
    duration = draw(st.none() | st.floats(0, 5).map(lambda extra: float(t[-1]) + extra))
    return t, s, duration


@FUZZ
@given(tl=timelines(), suppression=st.sampled_from(["nms", "soft_nms", "none"]),
       iou=st.floats(0, 0.95), max_proposals=st.integers(1, 20),
       thresholds=st.lists(probs, min_size=1, max_size=5))
@example(tl=(np.array([1.0]), np.array([1.0]), 1.23456789), suppression="nms", iou=0.0, max_proposals=1,
         thresholds=[0.5])  # ends were rounded to 1e-6 s, past the video's end
def test_proposals_from_scores(tl, suppression, iou, max_proposals, thresholds):
    from fakelens.inference.postprocess import proposals_from_scores

    t, s, duration = tl
    props = proposals_from_scores(t, s, duration=duration, thresholds=thresholds, suppression=suppression,
                                  iou_threshold=iou, max_proposals=max_proposals)
    assert 1 <= len(props) <= max_proposals
    conf = [p.confidence for p in props]
    assert conf == sorted(conf, reverse=True)
    for p in props:
        assert 0.0 <= p.confidence <= 1.0 and 0.0 <= p.start < p.end
        if duration is not None:
            assert p.end <= max(duration, t[-1] + 1e-6) + 1e-9
    if suppression == "nms":
        from fakelens.inference.postprocess import iou as seg_iou

        for i in range(len(props)):
            for j in range(i + 1, len(props)):
                assert seg_iou(props[i], props[j]) <= iou + 1e-12


@FUZZ
@given(times=st.lists(anything, max_size=6), scores=st.lists(anything, max_size=6),
       duration=st.none() | anything)
@example(times=[], scores=[], duration=None)
@example(times=[1.0, 0.5], scores=[0.2, 0.3], duration=None)
@example(times=[0.0, 1.0], scores=[0.2, float("nan")], duration=2.0)
@example(times=[-1.0], scores=[0.0], duration=None)
@example(times=[9007199254740992.0], scores=[0.0], duration=None)  # t + 1 s rounds back to t
def test_proposals_from_anything_raise_only_fakelens_errors(times, scores, duration):
    from fakelens.inference.postprocess import proposals_from_scores

    try:
        props = proposals_from_scores(np.asarray(times, np.float64), np.asarray(scores, np.float64), duration)
    except FakelensError as e:
        assert str(e)
        return
    assert props and all(0.0 <= p.start < p.end for p in props)


@FUZZ
@given(n=st.integers(0, 50), conf=st.lists(st.floats(-1, 2) | st.just(float("nan")), max_size=50),
       duration=st.floats(0.01, 20), suppression=st.sampled_from(["nms", "soft_nms", "none"]),
       max_proposals=st.integers(1, 10), data=st.data())
def test_select_proposals(n, conf, duration, suppression, max_proposals, data):
    from fakelens.inference.postprocess import Candidates, select_proposals

    k = len(conf)
    start = np.asarray(data.draw(st.lists(st.floats(-5, 25), min_size=k, max_size=k)))
    length = np.asarray(data.draw(st.lists(st.floats(-1, 10), min_size=k, max_size=k)))
    props = select_proposals(Candidates(np.asarray(conf, np.float64), start, start + length), duration,
                             suppression=suppression, max_proposals=max_proposals)
    assert 1 <= len(props) <= max_proposals
    c = [p.confidence for p in props]
    assert c == sorted(c, reverse=True)
    for p in props:
        assert 0.0 <= p.confidence <= 1.0 and 0.0 <= p.start < p.end <= duration


@FUZZ
@given(n_steps=st.integers(0, 500), window=st.integers(1, 64), data=st.data())
def test_windows_cover_the_timeline_once(n_steps, window, data):
    from fakelens.inference.postprocess import own_span, window_starts

    overlap = data.draw(st.integers(0, window - 1))
    starts = window_starts(n_steps, window, overlap)
    assert starts[0] == 0 and (np.diff(starts) > 0).all()
    if n_steps >= window:
        assert starts[-1] + window == n_steps and (np.diff(starts) <= window - overlap).all()
    spans = [own_span(k, starts, window, max(n_steps, 1)) for k in range(len(starts))]
    assert spans[0][0] == 0.0 and spans[-1][1] == float(max(n_steps, 1))
    for (lo, hi), (lo2, _) in zip(spans, spans[1:]):
        assert hi == lo2 and lo <= hi


@FUZZ
@given(k=st.integers(1, 20), data=st.data())
def test_decode_inverts_encode(k, data):
    from fakelens.inference.postprocess import decode_points, encode_segments

    centres = np.asarray(data.draw(st.lists(st.floats(0, 100), min_size=k, max_size=k)))
    strides = np.asarray(data.draw(st.lists(st.sampled_from([1, 2, 4, 8]), min_size=k, max_size=k)), np.float64)
    a = np.asarray(data.draw(st.lists(st.floats(-50, 150), min_size=k, max_size=k)))
    b = a + np.asarray(data.draw(st.lists(st.floats(0.01, 50), min_size=k, max_size=k)))
    st_s, en_s = decode_points(centres, strides, encode_segments(centres, strides, a, b), 0.04)
    np.testing.assert_allclose(st_s, a * 0.04, atol=1e-9)
    np.testing.assert_allclose(en_s, b * 0.04, atol=1e-9)
