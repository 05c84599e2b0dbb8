"""Parity with the official AV-Deepfake1M scorer (`avdeepfake1m` 0.0.4, Rust) on random files.

Skipped when the package is not installed: `pip install --no-deps avdeepfake1m==0.0.4`
(pyproject extra `[oracle]`). Only its extension module is loaded (no torch/pandas import).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakelens.cli.evaluate import evaluate
from fakelens.metrics.localization import AR_IOU_THRESHOLDS, load_official_scorer
from fakelens.submission import read_submission

pytestmark = pytest.mark.oracle

AP_T = [0.1, 0.3, 0.5, 0.75, 0.9, 0.95]
AR_N = [100, 50, 30, 20, 10, 5, 1]


@pytest.fixture(scope="module")
def official():
    module = load_official_scorer()
    if module is None:
        pytest.skip("the official scorer is not installed: pip install --no-deps avdeepfake1m==0.0.4 "
                    "(or the [oracle] extra)")
    return module


def _random_files(tmp_path, seed: int, n_videos: int = 400, decimals: int | None = None):
    """AV-1M-style metadata and a prediction.json: real and fake videos, overlapping segments,
    tied confidences, and (with `decimals`) rounded bounds so that IoUs land exactly on thresholds."""
    rng = np.random.default_rng(seed)
    r = (lambda x: round(float(x), decimals)) if decimals is not None else float
    meta, preds = [], {}
    for i in range(n_videos):
        name = f"{i:06d}.mp4"
        segs = []
        for _ in range(int(rng.integers(0, 4))):
            a = r(rng.uniform(0, 8))
            segs.append([a, r(a + rng.uniform(0.2, 3) + 0.01)])
        segs.sort()
        meta.append({"file": name, "modify_type": "visual_modified" if segs else "real", "split": "test",
                     "fake_segments": segs})
        n = int(rng.integers(1, 120))
        conf = rng.choice([0.25, 0.5, 0.75], n) if i % 4 == 0 else rng.random(n)
        start = rng.uniform(0, 9, n)
        rows = [[r(c), r(s), r(s + rng.uniform(0.1, 3) + 0.01)] for c, s in zip(conf, start)]
        if i % 5 == 0:  # some files sorted by confidence, most not (AR takes rows as written)
            rows.sort(key=lambda x: -x[0])
        preds[name] = rows
    labels = tmp_path / f"test_metadata_{seed}.json"
    pred = tmp_path / f"prediction_{seed}.json"
    labels.write_text(json.dumps(meta))
    pred.write_text(json.dumps(preds))
    return pred, labels


@pytest.mark.parametrize("seed,decimals", [(0, None), (1, 1), (2, 2)])
def test_parity_with_official_scorer(official, tmp_path, seed, decimals):
    pred, labels = _random_files(tmp_path, seed, decimals=decimals)
    ref = official.ap_ar_1d(str(pred), str(labels), "file", "fake_segments", 1.0, AP_T, AR_N, list(AR_IOU_THRESHOLDS))
    from fakelens.data.formats import load_dataset
    from fakelens.metrics import ap_at_iou, ar_at_n

    records = load_dataset(labels, check_files=False).records
    sub = read_submission(pred, strict=False)
    ap = ap_at_iou(sub.proposals, records, AP_T)
    ar = ar_at_n(sub.proposals, records, AR_N)
    ref_ap = {round(k, 4): v for k, v in ref["ap"].items()}  # the official keys are float32
    for t in AP_T:
        assert ap[t] == pytest.approx(ref_ap[round(t, 4)], abs=1e-5), f"AP@{t}"
    for n in AR_N:
        assert ar[n] == pytest.approx(ref["ar"][n], abs=1e-5), f"AR@{n}"
    assert max(ap.values()) > 0 and max(ar.values()) > 0  # the case is not trivially zero


def test_file_level_score_matches(official, tmp_path):
    pred, labels = _random_files(tmp_path, 7, n_videos=200)
    ours = evaluate(pred, labels)["localization"]  # the path `fakelens evaluate` runs
    ref = official.ap_ar_1d(str(pred), str(labels), "file", "fake_segments", 1.0, [0.5, 0.75, 0.9, 0.95],
                            [50, 30, 20, 10, 5], list(AR_IOU_THRESHOLDS))
    ref_score = sum(ref["ap"].values()) / 8 + sum(ref["ar"].values()) / 10
    assert ours["score"] == pytest.approx(ref_score, abs=1e-5)
