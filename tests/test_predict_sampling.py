"""predict's own sampling rate (--fps) and the features time it reports."""

from __future__ import annotations

import dataclasses
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import fakelens.inference.pipeline as pipeline
from fakelens.errors import ConfigError
from fakelens.inference.pipeline import Predictor, journal_header
from fakelens.types import Label, VideoRecord
from tests.test_inference import _features


def test_sample_fps_scores_frames_over_the_whole_video(untrained_run, make_video):
    """A run cached at 6 frames a video, asked for 5 fps on a 4 s video: 20 frames scored, 0.2 s
    apart over all of it (its own sampling would have scored 6 frames 0.67 s apart)."""
    path = make_video("long.mkv", n_frames=40, fps=10.0, size=(48, 64), audio_seconds=4.0)
    run = untrained_run("av_tiny", n_frames=6, size=32, clip_frames=4)
    own = Predictor(run, device="cpu", level="frames")
    dense = Predictor(run, device="cpu", level="frames", sample_fps=5.0)
    assert dense.cache_cfg.sampling == "fps" and dense.cache_cfg.sample_fps == 5.0
    assert own.cache_cfg.sampling == run.cache.sampling  # nothing changes without it
    t_own = own.features(path).clip.times
    t_dense = dense.features(path).clip.times
    assert len(t_own) == 6
    assert len(t_dense) == 20
    np.testing.assert_allclose(np.diff(t_dense), 0.2, atol=1e-6)
    # what the model scores are those frames (the ones with a face: the detector's found mask)
    p_dense = dense.predict([VideoRecord("v", path, Label.UNKNOWN)]).predictions[0]
    assert len(p_dense.faces[0].frame_times) and set(p_dense.faces[0].frame_times) <= set(t_dense)
    # a resumed submission never mixes the two samplings: the journal header records it
    assert journal_header(run, dense)["media"] != journal_header(run, own)["media"]


def test_sample_fps_is_refused_for_localizers_and_non_positive_rates(untrained_run):
    run = untrained_run("av_tiny")
    with pytest.raises(ConfigError, match="> 0"):
        Predictor(run, device="cpu", sample_fps=0.0)
    localizer = dataclasses.replace(run, features=object())  # a run over dense features
    with pytest.raises(ConfigError, match="localizer"):
        Predictor(localizer, device="cpu", sample_fps=5.0)


class _ThreadPool(ThreadPoolExecutor):
    """The worker pool in threads (no process start, no per-process torch settings)."""

    def __init__(self, max_workers, initializer=None, initargs=(), mp_context=None):
        super().__init__(max_workers=max_workers)


def _slow_job(path, cfg):
    time.sleep(0.3)
    return _features(t=8)


def test_features_time_is_the_wall_time_waited_not_the_latency_in_the_window(untrained_run, monkeypatch):
    """With workers the features are computed a window ahead: each video's latency (submission
    to result) counts the time it queued behind the others, so their sum was ~3x the wall time
    of the whole predict (the demo's localizer: 'features_wall 329 s' in an 89 s predict)."""
    monkeypatch.setattr(pipeline, "ProcessPoolExecutor", _ThreadPool)
    monkeypatch.setattr(pipeline, "_features_job", _slow_job)
    predictor = Predictor(untrained_run("av_tiny", n_frames=8, size=32, clip_frames=4), device="cpu")
    records = [VideoRecord(f"v{i}", f"v{i}.mp4", Label.UNKNOWN) for i in range(12)]
    t0 = time.perf_counter()
    res = predictor.predict(records, workers=2)
    wall = time.perf_counter() - t0
    assert len(res.predictions) == 12
    # the old sum of latencies: ~12 x 0.6 s (each job queued behind another) against a wall of ~1.8 s
    assert 0.0 < res.timings["features_wall"] <= wall
