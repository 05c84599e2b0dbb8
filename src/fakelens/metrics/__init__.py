"""Stateless metrics over arrays: video classification (AUC, TPR@FPR, log loss, EER, ...) and temporal
localization with the official AV-Deepfake1M / LAV-DF semantics (AP@IoU, AR@N, challenge score)."""

from __future__ import annotations

from fakelens.metrics.classification import (
    Eer,
    FewNegativesWarning,
    RocCurve,
    ThresholdMetrics,
    TprAtFpr,
    auc,
    classification_report,
    eer,
    log_loss,
    roc_curve,
    threshold_metrics,
    tpr_at_fpr,
)
from fakelens.metrics.localization import (
    AP_THRESHOLDS_AVDF1M,
    AP_THRESHOLDS_LAVDF,
    AR_IOU_THRESHOLDS,
    AR_N_AVDF1M,
    AR_N_LAVDF,
    PackedProposals,
    PackedSegments,
    ap_at_iou,
    ap_curves,
    ar_at_n,
    av1m_score,
    lavdf_metrics,
    localization_report,
    pack_proposals,
    pack_segments,
)

__all__ = [
    "AP_THRESHOLDS_AVDF1M", "AP_THRESHOLDS_LAVDF", "AR_IOU_THRESHOLDS", "AR_N_AVDF1M", "AR_N_LAVDF",
    "Eer", "FewNegativesWarning", "PackedProposals", "PackedSegments", "RocCurve", "ThresholdMetrics",
    "TprAtFpr", "ap_at_iou", "ap_curves", "ar_at_n", "auc", "av1m_score", "classification_report", "eer",
    "lavdf_metrics", "localization_report", "log_loss", "pack_proposals", "pack_segments", "roc_curve",
    "threshold_metrics", "tpr_at_fpr",
]
