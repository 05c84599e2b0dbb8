"""AP/AR with the official AV-Deepfake1M semantics on small cases computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.errors import FakelensError
from fakelens.metrics import (
    AR_IOU_THRESHOLDS,
    ap_at_iou,
    ap_curves,
    ar_at_n,
    av1m_score,
    lavdf_metrics,
    localization_report,
    pack_proposals,
    pack_segments,
)
from fakelens.types import Label, Proposal, Segment, VideoRecord

# video A: two fake segments; proposals in row order: a false positive, then one exact match each
A_GT = [(0.0, 2.0), (4.0, 6.0)]
A_PROPS = [(0.9, 10.0, 11.0), (0.8, 0.0, 2.0), (0.7, 4.0, 6.0)]


def test_ap_by_hand_first_point_not_counted():
    # ranks: FP p=0, TP p=1/2, TP p=2/3 -> AP = (2/3 + 2/3) / 2 (best precision at that recall or beyond)
    ap = ap_at_iou({"a": A_PROPS}, {"a": A_GT}, [0.5])
    assert ap[0.5] == pytest.approx(2 / 3)
    # a single true positive ranked first: the stretch from recall 0 to the first point is not counted
    assert ap_at_iou({"a": [(0.9, 0.0, 2.0)]}, {"a": [(0.0, 2.0)]}, [0.5])[0.5] == 0.0


def test_real_video_proposals_are_false_positives():
    # real video b's proposal outranks everything: FP, FP, TP p=1/3, TP p=1/2 -> (1/2 + 1/2) / 2
    ap = ap_at_iou({"a": A_PROPS, "b": [(0.95, 1.0, 2.0)]}, {"a": A_GT, "b": []}, [0.5])
    assert ap[0.5] == pytest.approx(0.5)


def test_iou_exactly_at_threshold_is_not_a_match():
    gt = {"v": [(0.0, 2.0)]}
    props = {"v": [(0.9, 0.0, 1.0)]}  # IoU = 1 / 2 exactly
    assert ar_at_n(props, gt, [1], [0.5])[1] == 0.0
    assert ar_at_n(props, gt, [1], [0.45])[1] == 1.0
    # AP: FP first, then the half-overlap proposal
    props2 = {"v": [(0.9, 5.0, 6.0), (0.8, 0.0, 1.0)]}
    assert ap_at_iou(props2, gt, [0.5, 0.45]) == {0.5: 0.0, 0.45: pytest.approx(0.5)}


def test_greedy_walk_in_row_order_with_overlapping_segments():
    # seg0 [0,4], seg1 [0,3]; row0 [0,3]: IoU .75 with seg0, 1.0 with seg1; row1 [0,5]: .8 and .6
    gt = {"v": [(0.0, 4.0), (0.0, 3.0)]}
    props = {"v": [(0.6, 0.0, 3.0), (0.9, 0.0, 5.0)]}
    # t=0.7: seg0 takes row0 (first in row order), seg1 finds only row1 (.6): one TP = row0.
    # sorted: row1 FP, row0 TP p=1/2 -> AP = 1/2 * 1/2 (two segments)
    assert ap_at_iou(props, gt, [0.7])[0.7] == pytest.approx(0.25)
    # t=0.5: seg0 takes row0, seg1 takes row1 (.6 > .5): both TP -> 1/2 * (1 [row0 p=1 at rank 1]) = 1/2
    assert ap_at_iou(props, gt, [0.5])[0.5] == pytest.approx(0.5)


def test_confidence_ties_keep_ground_truth_order():
    # equal confidences: stable sort in ground-truth (metadata) order
    props = {"x": [(0.5, 7.0, 8.0)], "y": [(0.5, 0.0, 1.0)]}
    assert ap_at_iou(props, {"x": [], "y": [(0.0, 1.0)]}, [0.5])[0.5] == pytest.approx(0.5)  # FP then TP
    assert ap_at_iou(props, {"y": [(0.0, 1.0)], "x": []}, [0.5])[0.5] == 0.0  # TP first: not counted


def test_empty_proposal_list():
    gt = {"a": A_GT, "c": [(0.0, 1.0)]}
    props = {"a": A_PROPS, "c": []}
    # AP: c's segment stays in the recall denominator -> (2/3 + 2/3) / 3
    assert ap_at_iou(props, gt, [0.5])[0.5] == pytest.approx(4 / 9)
    # AR: c contributes nothing (official); a: N=1 only the FP, N=2 seg0, N=3 both
    ar = ar_at_n(props, gt, [1, 2, 3])
    assert ar == {1: 0.0, 2: pytest.approx(0.5), 3: pytest.approx(1.0)}
    assert ar_at_n({"c": []}, {"c": [(0.0, 1.0)]}, [5]) == {5: 0.0}


def test_ar_uses_first_rows_in_file_order_and_averages_thresholds():
    gt = {"v": [(0.0, 10.0)]}
    # row0 matches with IoU 0.72 (recalled at t in 0.5..0.7: 5 of 10 thresholds), row1 exactly
    props = {"v": [(0.1, 0.0, 7.2), (0.9, 0.0, 10.0)]}
    ar = ar_at_n(props, gt, [1, 2])
    assert ar[1] == pytest.approx(0.5)
    assert ar[2] == pytest.approx(1.0)
    assert len(AR_IOU_THRESHOLDS) == 10


def test_real_videos_do_not_count_in_ar():
    gt = {"a": [(0.0, 1.0)], "r": []}
    props = {"a": [(0.9, 0.0, 1.0)], "r": [(0.9, 0.0, 1.0)]}
    assert ar_at_n(props, gt, [1])[1] == 1.0


def test_inputs_as_types_and_records():
    recs = [VideoRecord("a", None, Label.FAKE, segments=(Segment(0.0, 2.0), Segment(4.0, 6.0))),
            VideoRecord("b", None, Label.REAL)]
    props = {"a": [Proposal(*p) for p in A_PROPS], "b": [Proposal(0.95, 1.0, 2.0)]}
    assert ap_at_iou(props, recs, [0.5])[0.5] == pytest.approx(0.5)
    packed = pack_proposals(props)
    assert packed.to_dict()["a"][1] == Proposal(0.8, 0.0, 2.0)
    assert ap_at_iou(packed, pack_segments(recs), [0.5])[0.5] == pytest.approx(0.5)


def test_prediction_order_does_not_matter_and_extras_are_ignored():
    gt = {"a": A_GT, "b": []}
    p1 = {"a": A_PROPS, "b": [(0.95, 1.0, 2.0)], "zzz": [(1.0, 0.0, 1.0)]}
    p2 = {"b": [(0.95, 1.0, 2.0)], "a": A_PROPS}
    assert ap_at_iou(p1, gt) == ap_at_iou(p2, gt)
    assert ar_at_n(p1, gt) == ar_at_n(p2, gt)


def test_missing_prediction_is_named():
    with pytest.raises(FakelensError, match="1 of 2 labelled videos have no prediction: 'b'"):
        ap_at_iou({"a": A_PROPS}, {"a": A_GT, "b": []})


def test_no_ground_truth_segment_makes_ap_undefined():
    with pytest.raises(FakelensError, match="AP is undefined"):
        ap_at_iou({"r": [(0.5, 0.0, 1.0)]}, {"r": []})


def test_bad_parameters():
    with pytest.raises(FakelensError, match="thresholds"):
        ap_at_iou({"a": A_PROPS}, {"a": A_GT}, [1.0])
    with pytest.raises(FakelensError, match=">= 1"):
        ar_at_n({"a": A_PROPS}, {"a": A_GT}, [0])


def test_challenge_score_and_presets():
    ap = {0.5: 0.8, 0.75: 0.6, 0.9: 0.4, 0.95: 0.2}
    ar = {50: 0.9, 30: 0.8, 20: 0.7, 10: 0.6, 5: 0.5}
    assert av1m_score(ap, ar) == pytest.approx(2.0 / 8 + 3.5 / 10)
    with pytest.raises(FakelensError, match="missing"):
        av1m_score({0.5: 1.0}, ar)
    rep = localization_report({"a": A_PROPS}, {"a": A_GT})
    assert set(rep["ap"]) == {0.5, 0.75, 0.9, 0.95} and set(rep["ar"]) == {50, 30, 20, 10, 5}
    assert rep["score"] == pytest.approx(av1m_score(rep["ap"], rep["ar"]))
    lav = lavdf_metrics({"a": A_PROPS}, {"a": A_GT})
    assert set(lav["ap"]) == {0.5, 0.75, 0.95} and set(lav["ar"]) == {100, 50, 20, 10} and "score" not in lav


def test_ap_curves_end_at_the_pooled_recall():
    curves = ap_curves({"a": A_PROPS}, {"a": A_GT}, [0.5])
    rec, prec = curves[0.5]
    assert rec.tolist() == [0.0, 0.5, 1.0]
    assert prec == pytest.approx([0.0, 0.5, 2 / 3])


def test_vectorised_matches_a_plain_loop_on_random_data():
    """The vectorised greedy walk against a direct transcription of the rule (many overlaps, low t)."""
    rng = np.random.default_rng(3)
    gt, props = {}, {}
    for i in range(60):
        segs = sorted((float(a), float(a + rng.uniform(0.5, 3))) for a in rng.uniform(0, 5, rng.integers(0, 4)))
        gt[f"v{i}"] = segs
        props[f"v{i}"] = [(float(rng.choice([0.2, 0.5, 0.8])), float(s), float(s + rng.uniform(0.3, 3)))
                          for s in rng.uniform(0, 6, rng.integers(0, 12))]

    def iou(p, g):
        inter = max(0.0, min(p[2], g[1]) - max(p[1], g[0]))
        return np.float32(inter) / np.float32(max(p[2], g[1]) - min(p[1], g[0]))

    for t in (0.1, 0.3, 0.5, 0.7):
        conf, tp = [], []
        for v in gt:
            taken = set()
            for g in gt[v]:
                for j, p in enumerate(props[v]):
                    if j not in taken and iou(p, g) > t:
                        taken.add(j)
                        break
            conf += [p[0] for p in props[v]]
            tp += [j in taken for j in range(len(props[v]))]
        order = np.argsort(-np.asarray(conf), kind="stable")
        tps = np.asarray(tp)[order]
        n_gt = sum(len(s) for s in gt.values())
        prec = np.cumsum(tps) / np.arange(1, len(tps) + 1)
        expected = sum(max(prec[i:]) for i in range(1, len(tps)) if tps[i]) / n_gt
        assert ap_at_iou(props, gt, [t])[t] == pytest.approx(expected, abs=1e-9)


def test_confidence_order_matches_stable_argsort_on_edge_values():
    from fakelens.metrics.localization import _confidence_order

    rng = np.random.default_rng(0)
    specials = np.array([0.0, -0.0, 1.0, 1e-30, -1e-30, 3e38, -3e38, 0.5, 0.5, 1e-45], np.float32)
    for case in range(200):
        n = int(rng.integers(1, 60))
        conf = np.concatenate([rng.choice(specials, n // 2), rng.random(n - n // 2).astype(np.float32)])
        conf = conf[rng.permutation(len(conf))]
        if case % 10 == 0:
            conf[rng.integers(len(conf))] = np.nan
        if case % 15 == 0:
            conf[rng.integers(len(conf))] = -np.inf
        expected = np.argsort(-conf.astype(np.float32) + np.float32(0.0), kind="stable")
        assert np.array_equal(_confidence_order(conf), expected), conf
