"""The side-feature baseline (`fakelens baseline`): logistic regression on file size, bitrate and
duration, fitted on train and scored on test."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakelens.cli.main import main
from fakelens.data.side_features import side_baseline, side_features
from fakelens.errors import FakelensError


def _features(rng, n, size_scale):
    size = rng.uniform(1e5, 2e5, n) * size_scale
    duration = rng.uniform(3, 4, n)
    return np.stack([size, size * 8 / duration, duration], 1)  # (n, 3)


def test_a_telling_file_size_is_found_and_noise_is_not():
    rng = np.random.default_rng(0)
    y = np.array([0] * 40 + [1] * 40)
    telling = np.concatenate([_features(rng, 40, 1.0), _features(rng, 40, 2.5)])  # fakes are bigger files
    result = side_baseline(telling, y, telling[::-1].copy(), y[::-1])
    assert result.auc == 1.0 and result.feature_auc["file_size"] == 1.0 and result.coef["file_size"] > 0
    noise_train = np.concatenate([_features(rng, 40, 1.0), _features(rng, 40, 1.0)])
    noise_test = np.concatenate([_features(rng, 200, 1.0), _features(rng, 200, 1.0)])
    result = side_baseline(noise_train, y, noise_test, np.array([0] * 200 + [1] * 200))
    assert abs(result.auc - 0.5) < 0.1


def test_one_class_split_is_refused():
    rng = np.random.default_rng(1)
    x = _features(rng, 6, 1.0)
    with pytest.raises(FakelensError, match="training split needs real and fake"):
        side_baseline(x, [1] * 6, x, [0, 1] * 3)


def test_side_features_read_the_files(tiny_synth):
    from fakelens.data.formats import load_dataset

    records = load_dataset(tiny_synth, split="train").records
    x = side_features(records)
    assert x.shape == (len(records), 3)
    for rec, (size, bitrate, duration) in zip(records, x):
        assert size == rec.path.stat().st_size
        assert duration == pytest.approx(rec.n_frames / 25, abs=0.05)
        assert bitrate == pytest.approx(size * 8 / duration)


def test_cli_prints_the_baseline_auc(tiny_synth, capsys):
    assert main(["baseline", str(tiny_synth), "--split", "test", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert 0 <= out["auc"] <= 1 and out["n_test"] == 2 and out["n_train"] == 4
    assert set(out["feature_auc"]) == {"file_size", "bitrate", "duration"}
    assert main(["baseline", str(tiny_synth), "--split", "test"]) == 0
    assert "side-feature baseline" in capsys.readouterr().out


def test_cli_takes_dfdc_test_labels(tmp_path, capsys):
    from fakelens.data.synthetic import generate, preset

    root = generate(tmp_path / "dfdc", preset("tiny", layout="dfdc", size=(64, 64), duration=(1.0, 1.0)),
                    progress=False)
    assert main(["baseline", str(root), "--split", "test"]) == 2
    assert "--test-labels" in capsys.readouterr().err
    assert main(["baseline", str(root), "--test-labels", str(root / "labels.csv"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n_test"] == 2
