"""How much of a detector's score the file alone gives away: a side-feature baseline.

Fakes made by re-encoding a manipulated copy can differ from reals in file size, bitrate or
duration (editing adds detail the encoder pays for; a pipeline may trim). A logistic regression
on those three numbers, fitted on the training split and scored on the test split, says how far
a model could get without looking at a face or listening to a voice; a detector's AUC means
something only next to it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from fakelens.errors import FakelensError
from fakelens.types import VideoRecord

SIDE_FEATURES = ("file_size", "bitrate", "duration")  # bytes, bits per second, seconds


def side_features(records: Sequence[VideoRecord]) -> np.ndarray:
    """(N, 3) float64: file size (bytes), bitrate (bits/s) and duration (s) of each record's file."""
    from fakelens.io.video import probe

    out = np.empty((len(records), len(SIDE_FEATURES)), np.float64)  # (N, 3)
    for i, rec in enumerate(records):
        if rec.path is None:
            raise FakelensError(f"{rec.id}: no video file, so no side features")
        try:
            size = os.path.getsize(rec.path)
        except OSError as e:
            raise FakelensError(f"{rec.path}: cannot read: {e.strerror or e}") from None
        duration = probe(rec.path).duration
        if not duration or not math.isfinite(duration) or duration <= 0:
            raise FakelensError(f"{rec.path}: no duration, so no bitrate")
        out[i] = (size, size * 8 / duration, duration)
    return out


@dataclass
class SideBaseline:
    """The baseline's test AUC, and each feature's alone (oriented as on the training split)."""

    auc: float
    feature_auc: dict[str, float]
    n_train: int
    n_test: int
    coef: dict[str, float] = field(default_factory=dict)  # logistic weights of the standardised log features


def side_baseline(train_x: np.ndarray, train_y: Sequence[int], test_x: np.ndarray,
                  test_y: Sequence[int]) -> SideBaseline:
    """Fit a logistic regression on log(train_x) (standardised) and score test_x: arrays (N, 3)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from fakelens.metrics.classification import auc

    train_y, test_y = np.asarray(train_y, int), np.asarray(test_y, int)
    for name, y in (("training", train_y), ("test", test_y)):
        if len(set(y.tolist())) < 2:
            raise FakelensError(f"side-feature baseline: the {name} split needs real and fake videos "
                                f"(it has {len(y)} videos, all {'fake' if y.all() else 'real'})")
    model = make_pipeline(StandardScaler(), LogisticRegression())
    model.fit(np.log(train_x), train_y)
    scores = model.predict_proba(np.log(test_x))[:, 1]
    per_feature = {}
    for j, name in enumerate(SIDE_FEATURES):
        sign = 1.0 if auc(train_y, train_x[:, j]) >= 0.5 else -1.0  # the direction learned on train
        per_feature[name] = float(auc(test_y, sign * test_x[:, j]))
    weights = model[-1].coef_[0]
    return SideBaseline(float(auc(test_y, scores)), per_feature, len(train_y), len(test_y),
                        {n: float(w) for n, w in zip(SIDE_FEATURES, weights)})
