"""Classification metrics on small cases computed by hand (ties, one class, few negatives)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fakelens.errors import FakelensError
from fakelens.metrics import (
    FewNegativesWarning,
    auc,
    classification_report,
    eer,
    log_loss,
    roc_curve,
    threshold_metrics,
    tpr_at_fpr,
)


def test_auc_by_hand():
    # pairs (neg, pos): (0.1,0.35) ok, (0.1,0.8) ok, (0.4,0.35) wrong, (0.4,0.8) ok -> 3/4
    assert auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)


def test_auc_ties_count_half():
    assert auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)
    # pos 0.5 ties neg 0.5 (1/2) and beats neg 0.2 (1) -> 1.5 / 2
    assert auc([0, 0, 1], [0.2, 0.5, 0.5]) == pytest.approx(0.75)


@pytest.mark.parametrize("labels", [[1, 1, 1], [0, 0]])
def test_auc_one_class_is_an_error(labels):
    with pytest.raises(FakelensError, match="undefined.*both classes"):
        auc(labels, [0.5] * len(labels))


def test_bad_inputs():
    with pytest.raises(FakelensError, match="same length"):
        auc([0, 1], [0.5])
    with pytest.raises(FakelensError, match="0 \\(real\\) or 1"):
        auc([0, 2], [0.5, 0.5])
    with pytest.raises(FakelensError, match="not finite"):
        auc([0, 1], [0.5, float("nan")])


def test_roc_curve_keeps_every_threshold():
    # thresholds inf, 0.8, 0.4, 0.35, 0.1
    c = roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    assert c.fpr.tolist() == [0, 0, 0.5, 0.5, 1]
    assert c.tpr.tolist() == [0, 0.5, 0.5, 1, 1]


def test_tpr_at_fpr_by_hand():
    y = [0, 0, 0, 0, 1, 1, 1, 1]
    s = [0.1, 0.2, 0.3, 0.9, 0.95, 0.85, 0.5, 0.05]
    # FPR <= 0.25 allows one negative (the 0.9) above the threshold
    r = tpr_at_fpr(y, s, fpr=0.25)
    assert r.tpr == pytest.approx(0.75)  # threshold 0.5: positives 0.95, 0.85, 0.5; negatives 0.9 -> FPR 1/4
    assert (r.n_negatives, r.n_positives, r.zero_fp_only) == (4, 4, False)
    with pytest.warns(FewNegativesWarning, match="zero false positives: only 4 real videos"):
        r0 = tpr_at_fpr(y, s, fpr=1e-3)
    assert r0.tpr == pytest.approx(0.25) and r0.zero_fp_only  # only 0.95 above the 0.9 negative


def test_tpr_at_fpr_enough_negatives_no_warning(recwarn):
    rng = np.random.default_rng(0)
    y = np.r_[np.zeros(2000, int), np.ones(50, int)]
    s = np.r_[rng.random(2000) * 0.9, np.full(50, 0.95)]
    r = tpr_at_fpr(y, s, fpr=1e-3)
    assert r.tpr == 1.0 and not r.zero_fp_only and r.warning is None
    assert not [w for w in recwarn if issubclass(w.category, FewNegativesWarning)]


def test_log_loss_by_hand_and_clipping():
    expected = -(math.log(0.8) + math.log(1 - 0.3)) / 2
    assert log_loss([1, 0], [0.8, 0.3]) == pytest.approx(expected)
    # p = 1 for a real video: clipped to 1 - 1e-15, not infinite
    assert log_loss([0], [1.0]) == pytest.approx(-math.log(1e-15), rel=1e-3)
    assert log_loss([0], [1.0], eps=1e-3) == pytest.approx(-math.log(1e-3))
    with pytest.raises(FakelensError, match="probabilities"):
        log_loss([0], [1.5])


def test_eer_by_hand():
    # perfectly separable -> 0
    assert eer([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]).eer == pytest.approx(0.0)
    # 2 neg, 2 pos, one crossing: s: n 0.1, p 0.2, n 0.3, p 0.4 -> ROC (0,0) (0,.5) (.5,.5) (.5,1) (1,1)
    # FNR = 1 - TPR: at (0,.5) FNR .5 > FPR 0; at (.5,.5) FNR .5 = FPR .5 -> EER 0.5
    assert eer([0, 1, 0, 1], [0.1, 0.2, 0.3, 0.4]).eer == pytest.approx(0.5)
    # interpolated: 3 neg 1 pos, pos second highest: points (0,0) (1/3,0) (1/3,1) ...
    # FNR-FPR: 1, 2/3, -1/3 -> crossing between (1/3,0) and (1/3,1): FPR 1/3
    assert eer([0, 1, 0, 0], [0.9, 0.8, 0.2, 0.1]).eer == pytest.approx(1 / 3)


def test_threshold_metrics_counts():
    m = threshold_metrics([0, 0, 1, 1, 1], [0.1, 0.6, 0.5, 0.7, 0.2], threshold=0.5)
    assert (m.tp, m.fp, m.tn, m.fn) == (2, 1, 1, 1)
    assert m.accuracy == pytest.approx(3 / 5) and m.precision == pytest.approx(2 / 3)
    assert m.recall == pytest.approx(2 / 3) and m.f1 == pytest.approx(2 / 3)
    none = threshold_metrics([0, 1], [0.1, 0.2], threshold=0.9)
    assert math.isnan(none.precision) and none.recall == 0


def test_report_lists_what_applies():
    rep = classification_report([0, 1, 1], [0.2, 0.7, 0.9])
    assert {"auc", "tpr_at_fpr", "eer", "log_loss", "at_threshold"} <= set(rep)
    assert any("zero false positives" in n for n in rep["notes"])
    one = classification_report([1, 1], [0.2, 0.7])
    assert "auc" not in one and "log_loss" in one and "skipped" in one["notes"][0]
    logits = classification_report([0, 1], [-2.0, 3.0])
    assert "log_loss" not in logits and logits["auc"] == 1.0
