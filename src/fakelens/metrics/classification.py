"""Video-level classification metrics (label 1 = fake, score = P(fake)), as METRICS.md defines them.

AUC and the ROC curve come from scikit-learn (trapezoid over unique thresholds, ties included);
TPR@FPR, EER, clipped log loss and the threshold counts are written here because scikit-learn
lacks them or computes them differently (its log_loss no longer takes eps).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from fakelens.errors import FakelensError
from fakelens.words import counted

ArrayLike = Sequence[float] | np.ndarray


class FewNegativesWarning(UserWarning):
    """TPR@FPR rests on zero false positives: too few real videos for the asked FPR."""


def _check(labels: ArrayLike, scores: ArrayLike, what: str = "scores") -> tuple[np.ndarray, np.ndarray]:
    """(labels int64 (N,), scores float64 (N,)) after checking shapes, 0/1 labels and finite scores."""
    y = np.asarray(labels)
    s = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or s.ndim != 1 or len(y) != len(s):
        raise FakelensError(f"labels and {what} must be 1-D of the same length, got shapes {y.shape} and {s.shape}")
    if len(y) == 0:
        raise FakelensError("no videos to score")
    if not np.isin(y, (0, 1)).all():
        raise FakelensError(f"labels must be 0 (real) or 1 (fake), got values {np.unique(y)[:5].tolist()}")
    bad = np.flatnonzero(~np.isfinite(s))
    if len(bad):
        raise FakelensError(f"{len(bad)} {what} are not finite (first at index {bad[0]}: {s[bad[0]]})")
    return y.astype(np.int64), s


def _both_classes(y: np.ndarray, metric: str) -> None:
    n_pos = int(y.sum())
    if n_pos == 0 or n_pos == len(y):
        only = "fake" if n_pos else "real"
        raise FakelensError(f"{metric} is undefined: all {len(y)} videos are {only} (it needs both classes)")


@dataclass(frozen=True)
class RocCurve:
    """ROC points sorted by threshold (descending), every threshold kept."""

    fpr: np.ndarray  # (K,)
    tpr: np.ndarray  # (K,)
    thresholds: np.ndarray  # (K,) first one is +inf (no video called fake)


def roc_curve(labels: ArrayLike, scores: ArrayLike) -> RocCurve:
    """The ROC curve over every distinct score (scikit-learn, drop_intermediate=False)."""
    from sklearn.metrics import roc_curve as sk_roc

    y, s = _check(labels, scores)
    _both_classes(y, "the ROC curve")
    fpr, tpr, thr = sk_roc(y, s, drop_intermediate=False)
    return RocCurve(fpr, tpr, thr)


def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """ROC AUC as scikit-learn's roc_auc_score (ties: trapezoid over unique thresholds)."""
    from sklearn.metrics import roc_auc_score

    y, s = _check(labels, scores)
    _both_classes(y, "AUC")
    return float(roc_auc_score(y, s))


@dataclass(frozen=True)
class TprAtFpr:
    """TPR at a maximum FPR. zero_fp_only: n_negatives * fpr < 1, so the value is the TPR with no false
    positive at all (with FPR 1e-3 that is fewer than 1,000 real videos): read it with care."""

    tpr: float
    fpr: float  # the asked maximum FPR
    threshold: float  # videos with score >= threshold are called fake at that point
    n_negatives: int
    n_positives: int
    zero_fp_only: bool

    @property
    def warning(self) -> str | None:
        if not self.zero_fp_only:
            return None
        if self.fpr == 0:
            return f"TPR@FPR=0 allows no false positive at all, whatever the number of real videos ({self.n_negatives})"
        return (f"TPR@FPR={self.fpr:g} rests on zero false positives: only {counted(self.n_negatives, 'real video')} "
                f"(at least {math.ceil(1 / self.fpr)} are needed for one false positive to be allowed)")


def tpr_at_fpr(labels: ArrayLike, scores: ArrayLike, fpr: float = 1e-3) -> TprAtFpr:
    """The largest TPR on the ROC curve whose FPR <= `fpr`; warns (FewNegativesWarning) when the
    negatives are too few for one false positive to be allowed."""
    if not 0.0 <= fpr <= 1.0:
        raise FakelensError(f"fpr must be in [0, 1], got {fpr}")
    curve = roc_curve(labels, scores)
    y = np.asarray(labels)
    n_neg = int((y == 0).sum())
    ok = curve.fpr <= fpr + 1e-12 * max(1.0, fpr)  # fpr values are k / n_neg
    i = int(np.flatnonzero(ok)[np.argmax(curve.tpr[ok])])
    out = TprAtFpr(float(curve.tpr[i]), fpr, float(curve.thresholds[i]), n_neg, len(y) - n_neg,
                   zero_fp_only=n_neg * fpr < 1)
    if out.warning:
        warnings.warn(out.warning, FewNegativesWarning, stacklevel=2)
    return out


def log_loss(labels: ArrayLike, probs: ArrayLike, eps: float = 1e-15) -> float:
    """Mean binary cross-entropy (natural log), probabilities clipped to [eps, 1 - eps] (DFDC)."""
    y, p = _check(labels, probs, "probabilities")
    if (p < 0).any() or (p > 1).any():
        raise FakelensError("log loss needs probabilities in [0, 1]; got values outside")
    p = np.clip(p, eps, 1 - eps)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


@dataclass(frozen=True)
class Eer:
    """Equal error rate: where FPR = FNR on the ROC curve (linear interpolation), and the threshold there."""

    eer: float
    threshold: float


def eer(labels: ArrayLike, scores: ArrayLike) -> Eer:
    """The equal error rate, interpolated between the two ROC points around FPR = FNR."""
    c = roc_curve(labels, scores)
    fnr = 1.0 - c.tpr
    diff = fnr - c.fpr  # decreasing from 1 (threshold +inf) to -1
    i = int(np.flatnonzero(diff <= 0)[0])
    if diff[i] == 0 or i == 0:
        thr = c.thresholds[i]
        return Eer(float(c.fpr[i]), float(thr))
    # between points i-1 (diff > 0) and i (diff < 0)
    w = diff[i - 1] / (diff[i - 1] - diff[i])
    rate = c.fpr[i - 1] + w * (c.fpr[i] - c.fpr[i - 1])
    t0 = c.thresholds[i - 1] if np.isfinite(c.thresholds[i - 1]) else c.thresholds[i]
    return Eer(float(rate), float(t0 + w * (c.thresholds[i] - t0)))


@dataclass(frozen=True)
class ThresholdMetrics:
    """Counts and rates when videos with score >= threshold are called fake. Undefined rates are nan."""

    threshold: float
    tp: int
    fp: int
    tn: int
    fn: int
    accuracy: float
    precision: float
    recall: float
    f1: float


def threshold_metrics(labels: ArrayLike, scores: ArrayLike, threshold: float = 0.5) -> ThresholdMetrics:
    """Accuracy, precision, recall and F1 at a threshold (score >= threshold -> fake)."""
    y, s = _check(labels, scores)
    pred = s >= threshold
    tp = int((pred & (y == 1)).sum())
    fp = int((pred & (y == 0)).sum())
    fn = int((~pred & (y == 1)).sum())
    tn = len(y) - tp - fp - fn
    precision = tp / (tp + fp) if tp + fp else math.nan
    recall = tp / (tp + fn) if tp + fn else math.nan
    f1 = 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else math.nan
    return ThresholdMetrics(threshold, tp, fp, tn, fn, (tp + tn) / len(y), precision, recall, f1)


def classification_report(labels: ArrayLike, scores: ArrayLike, fpr: float = 1e-3, threshold: float = 0.5
                          ) -> dict[str, Any]:
    """Every metric that applies: with both classes AUC, TPR@FPR, EER; always log loss (scores in
    [0, 1]) and the threshold counts. `notes` lists what was skipped and why."""
    y, s = _check(labels, scores)
    n_pos = int(y.sum())
    out: dict[str, Any] = {"videos": len(y), "fake": n_pos, "real": len(y) - n_pos, "notes": []}
    if 0 < n_pos < len(y):
        out["auc"] = auc(y, s)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FewNegativesWarning)
            t = tpr_at_fpr(y, s, fpr)
        out["tpr_at_fpr"] = t
        if t.warning:
            out["notes"].append(t.warning)
        out["eer"] = eer(y, s).eer
    else:
        out["notes"].append(f"AUC, TPR@FPR and EER skipped: all videos are {'fake' if n_pos else 'real'}")
    if ((s >= 0) & (s <= 1)).all():
        out["log_loss"] = log_loss(y, s)
    else:
        out["notes"].append("log loss skipped: scores are not probabilities in [0, 1]")
    m = threshold_metrics(y, s, threshold)
    out["at_threshold"] = m
    if math.isnan(m.precision):
        out["notes"].append(f"precision @ {threshold:g} is undefined: no video scores >= {threshold:g}, so none is "
                            "called fake (precision = true fakes / videos called fake)")
    if math.isnan(m.recall):
        out["notes"].append(f"recall @ {threshold:g} is undefined: there are no fake videos")
    if math.isnan(m.f1):
        out["notes"].append(f"F1 @ {threshold:g} is undefined: no fake videos and none called fake")
    return out
