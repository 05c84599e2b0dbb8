"""predict over many videos: a bounded window of feature jobs released in order, clips of several
videos batched together on the device, and the --device option."""

from __future__ import annotations

import gc
import weakref
from concurrent.futures import Future

import numpy as np
import pytest
import torch

import fakelens.inference.pipeline as pipeline
from fakelens.errors import ConfigError
from fakelens.inference.device import resolve_device
from fakelens.inference.pipeline import WINDOW_PER_WORKER, Predictor, load_run
from fakelens.types import Label, VideoRecord
from tests.test_inference import _checkpoint, _features


class _FakePool:
    """Stands in for the worker pool: each job is a hand-made features object (no decoding), made
    when the job is submitted; counts what was submitted and tracks which results are still alive."""

    instances: list["_FakePool"] = []

    def __init__(self, max_workers, **kwargs):
        self.max_workers = max_workers
        self.submitted = 0
        self.alive: list[weakref.ref] = []
        _FakePool.instances.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.shutdown()

    def shutdown(self, wait=True, cancel_futures=False):
        pass

    def submit(self, fn, path, cache_dict):
        self.submitted += 1
        feats = _features(t=int(path.split("-")[1]))
        self.alive.append(weakref.ref(feats))
        fut: Future = Future()
        fut.set_result(feats)
        return fut

    def n_alive(self, bound: int | None = None) -> int:
        """Results still alive. Counted first without a collection (an upper bound: what only a cycle
        keeps is counted too); gc.collect (~0.5-2 s with torch loaded) only when that is over `bound`."""
        alive = sum(r() is not None for r in self.alive)
        if bound is not None and alive <= bound:
            return alive
        gc.collect()
        return sum(r() is not None for r in self.alive)


@pytest.fixture
def fake_pool(monkeypatch):
    _FakePool.instances.clear()
    monkeypatch.setattr(pipeline, "ProcessPoolExecutor", _FakePool)
    return _FakePool


def _records(n: int, frames: int = 10) -> list[VideoRecord]:
    return [VideoRecord(f"v{i}", f"video{i}-{frames}-.mp4", Label.UNKNOWN) for i in range(n)]


def test_feature_jobs_stay_in_a_bounded_window(tmp_path, fake_pool):
    """All futures used to be submitted at once and kept: RSS grew ~4.7 MB per video."""
    run, _ = _checkpoint(tmp_path)
    predictor = Predictor(load_run(run), device="cpu")
    window = 2 * WINDOW_PER_WORKER
    consumed = 0
    worst = 0
    for rec, feats, _ in predictor._iter_features(_records(100), workers=2):
        consumed += 1
        pool = fake_pool.instances[0]
        worst = max(worst, pool.submitted - consumed)  # submitted, not yet consumed
        assert rec.id == f"v{consumed - 1}"  # in input order
        del feats
        assert pool.n_alive(window + 1) <= window + 1  # consumed results are released
    assert consumed == 100 and worst <= window


def test_predict_holds_a_bounded_number_of_videos(tmp_path, fake_pool, monkeypatch):
    run, _ = _checkpoint(tmp_path)
    predictor = Predictor(load_run(run), device="cpu", batch_size=4)
    peak = {"alive": 0}
    real_forward = predictor._forward

    def forward(clips):
        peak["alive"] = max(peak["alive"], fake_pool.instances[0].n_alive(2 * WINDOW_PER_WORKER + 3))
        return real_forward(clips)

    monkeypatch.setattr(predictor, "_forward", forward)
    res = predictor.predict(_records(40), workers=2)
    assert [p.id for p in res.predictions] == [f"v{i}" for i in range(40)]
    # the window (4) + the videos whose clips wait for a full batch (10 frames = 3 clips of 4)
    assert 0 < peak["alive"] <= 2 * WINDOW_PER_WORKER + 3


def test_clips_of_several_videos_share_a_batch(tmp_path, monkeypatch):
    run, _ = _checkpoint(tmp_path)
    predictor = Predictor(load_run(run), device="cpu", batch_size=8)
    feats = {f"v{i}": _features(t=t) for i, t in enumerate((10, 4, 13, 2))}  # 3 + 1 + 4 + 1 clips of 4 frames
    expected = {k: predictor.predict_features(k, f)[0] for k, f in feats.items()}
    sizes: list[int] = []
    real_forward = predictor._forward
    monkeypatch.setattr(predictor, "_forward", lambda clips: (sizes.append(len(clips)), real_forward(clips))[1])
    monkeypatch.setattr(predictor, "_iter_features",
                        lambda records, workers: ((r, feats[r.id], 0.0) for r in records))
    records = [VideoRecord(k, None, Label.UNKNOWN) for k in feats]
    res = predictor.predict(records)
    assert sizes == [8, 1]  # per video it was [3, 1, 4, 1]
    assert [p.id for p in res.predictions] == list(feats)
    for p in res.predictions:
        e = expected[p.id]
        assert p.score == pytest.approx(e.score, abs=1e-6)
        np.testing.assert_allclose(p.frame_scores, e.frame_scores, atol=1e-6)
        np.testing.assert_allclose(p.frame_times, e.frame_times)
        assert p.extras["clips"] == e.extras["clips"] and p.extras["t_model"] > 0


def test_failures_keep_their_place_among_batched_videos(tmp_path, monkeypatch):
    run, _ = _checkpoint(tmp_path)
    predictor = Predictor(load_run(run), device="cpu", batch_size=16)
    feats = {"a": _features(t=5), "noface": _features(faces=False), "b": _features(t=6)}
    monkeypatch.setattr(predictor, "_iter_features",
                        lambda records, workers: ((r, feats[r.id], 0.0) for r in records))
    records = [VideoRecord(k, None, Label.UNKNOWN) for k in feats]
    res = predictor.predict(records, on_error="prior")
    assert [p.id for p in res.predictions] == ["a", "noface", "b"]
    assert res.predictions[1].fallback == pipeline.PRIOR_FALLBACK and [f.id for f in res.failures] == ["noface"]


def test_device_strings(monkeypatch):
    assert resolve_device("cpu") == torch.device("cpu")
    for bad in ("gpu", "cuda:x", "cpu:1", "cuda:-1", "", "tpu"):
        with pytest.raises(ConfigError, match="--device must be"):
            resolve_device(bad)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="no CUDA GPU"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("auto") == torch.device("cuda", 0)
    assert resolve_device("CUDA") == torch.device("cuda", 0)
    assert resolve_device("cuda:1") == torch.device("cuda", 1)
    assert resolve_device(torch.device("cuda", 1)) == torch.device("cuda", 1)
    with pytest.raises(ConfigError, match="only 2 CUDA GPUs"):
        resolve_device("cuda:2")


def test_predictor_puts_the_model_on_its_device(tmp_path):
    run, _ = _checkpoint(tmp_path)
    predictor = Predictor(load_run(run), device="cpu")
    assert predictor.device == torch.device("cpu")
    assert all(p.device == predictor.device for p in predictor.run.model.parameters())
    with pytest.raises(ConfigError):
        Predictor(load_run(run), device="npu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no GPU here: the CUDA path runs where one is lent")
def test_cuda_predictions_match_the_cpu(tmp_path):
    run, _ = _checkpoint(tmp_path)
    feats = _features(t=10)
    cpu, _ = Predictor(load_run(run), device="cpu").predict_features("v", feats)
    gpu_predictor = Predictor(load_run(run), device="cuda")
    assert next(gpu_predictor.run.model.parameters()).is_cuda
    gpu, _ = gpu_predictor.predict_features("v", feats)
    np.testing.assert_allclose(gpu.frame_scores, cpu.frame_scores, atol=1e-4)


def test_predict_output_folder_problems_fail_before_any_work(tmp_path, capsys, monkeypatch):
    import errno

    from fakelens.cli.main import main

    run, _ = _checkpoint(tmp_path)
    (tmp_path / "f").write_text("x")
    assert main(["predict", str(run), str(tmp_path / "no-data"), "--format", "dfdc",
                 "--out", str(tmp_path / "f" / "submission.csv"), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "f") in err and "a file, not a folder" in err and "Traceback" not in err
    assert main(["predict", str(run), str(tmp_path), "--format", "dfdc", "--out", str(tmp_path / "s.csv"),
                 "--device", "tpu"]) == 2
    assert "--device must be" in capsys.readouterr().err

    # A disk that fills up while the submission is written: a clear error, the old submission kept.
    import fakelens.atomic as atomic
    from fakelens.submission import write_submission

    out = tmp_path / "sub" / "submission.csv"
    write_submission("dfdc", out, {"a.mp4": 0.5}, ["a.mp4"])
    before = out.read_bytes()
    monkeypatch.setattr(atomic, "_write_temp", lambda path, data: (_ for _ in ()).throw(
        OSError(errno.ENOSPC, "No space left on device")))
    with pytest.raises(atomic.OutputError, match=r"sub: cannot write here: no space left"):
        write_submission("dfdc", out, {"a.mp4": 0.9}, ["a.mp4"])
    assert out.read_bytes() == before
