"""The inference pipeline: checkpoint loading, clip batching, scores per frame/clip, levels, failures,
no-face handling and the prior fallback, on hand-made features (no decoding) and one tiny video."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakelens.config import to_dict
from fakelens.data.cache import CacheConfig, VideoFeatures
from fakelens.errors import ConfigError, FakelensError
from fakelens.faces.extract import FaceClip
from fakelens.inference.pipeline import PRIOR_FALLBACK, Predictor, failures_report, load_run, resolve_checkpoint
from fakelens.train.config import load_train_config
from fakelens.types import VideoRecord, Label


def _checkpoint(tmp_path, model="frame_tiny", dataset="clips", audio_width=None, **predict):
    """A checkpoint in the layout `fakelens train` writes (Lightning's keys), with random weights."""
    from fakelens.models import create_model, resolve_config

    overrides = [f"model.name={model}", "model.image_size=32", "model.num_frames=4", "data.clip_frames=4",
                 f"data.dataset={dataset}", "model.pooling=mean"]
    if model.startswith("av"):
        overrides += ["task.name=av", "model.audio_frames=40"]
    overrides += [f"predict.{k}={v}" for k, v in predict.items()]
    cfg = load_train_config(None, overrides)
    cfg.model = resolve_config(cfg.model)
    torch.manual_seed(0)
    net = create_model(cfg.model)
    ckpt = {"hyper_parameters": {"config": to_dict(cfg), "prior": 0.3, "pos_weight": None, "audio_width": audio_width,
                                 "cache_config": CacheConfig(n_frames=10, size=32, detector="full_frame").to_dict()},
            "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}}
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    torch.save(ckpt, run / "checkpoints" / "best.ckpt")
    return run, net


def _features(t=10, size=32, faces=True, mel_frames=100, seconds=2.0):
    rng = np.random.default_rng(0)
    times = np.linspace(0, seconds, t, endpoint=False)  # (T,)
    n_faces = 1 if faces else 0
    clip = FaceClip(faces=rng.integers(0, 255, (n_faces, t, size, size, 3), dtype=np.uint8),
                    times=times, indices=np.arange(t), boxes=np.zeros((n_faces, t, 4), np.float32),
                    found=np.ones((n_faces, t), bool), status="ok" if faces else "no_face", fps=t / seconds,
                    duration=seconds, width=size, height=size)
    mel = (rng.normal(size=(80, mel_frames)) - 4).astype(np.float32)  # (n_mels, M)
    mel_times = (np.arange(mel_frames) + 0.5) * seconds / mel_frames  # (M,)
    return VideoFeatures(clip=clip, mel=mel, mel_times=mel_times, has_audio=mel_frames > 0)


def test_load_run_rebuilds_the_exact_model(tmp_path):
    run, net = _checkpoint(tmp_path)
    loaded = load_run(run)
    assert loaded.checkpoint == resolve_checkpoint(run) == run / "checkpoints" / "best.ckpt"
    assert loaded.prior == 0.3 and loaded.cache.size == 32 and not loaded.model.training
    for (k, a), (_, b) in zip(sorted(net.state_dict().items()), sorted(loaded.model.state_dict().items())):
        assert torch.equal(a, b), k
    with pytest.raises(FakelensError, match="no checkpoints"):
        load_run(tmp_path)
    with pytest.raises(FakelensError, match="no such run"):
        load_run(tmp_path / "missing")


def test_frame_model_scores_every_frame_and_aggregates(tmp_path):
    run, net = _checkpoint(tmp_path, aggregate="max")
    predictor = Predictor(load_run(run), batch_size=2)
    feats = _features(t=10)
    pred, _ = predictor.predict_features("v1", feats)
    # 10 frames in clips of 4: three clips, the last padded; padding frames are dropped.
    assert pred.extras["clips"] == 3
    assert pred.frame_scores.shape == (10,) and np.allclose(pred.frame_times, feats.clip.times)
    assert pred.score == pytest.approx(pred.frame_scores.max())  # the run's predict.aggregate
    # Same numbers as the model on the first clip directly.
    video = torch.from_numpy(feats.clip.faces[0, :4]).permute(0, 3, 1, 2).float()[None] / 255
    with torch.no_grad():
        direct = torch.sigmoid(net.eval()(video=video)["frame_logits"])[0].numpy()
    assert np.allclose(pred.frame_scores[:4], direct, atol=1e-5)
    assert pred.proposals and all(0 <= p.start < p.end <= 2.0 for p in pred.proposals)
    # Overriding the strategy and the level.
    mean_pred, _ = Predictor(load_run(run), aggregate_name="mean").predict_features("v1", feats)
    assert mean_pred.score == pytest.approx(pred.frame_scores.mean(), abs=1e-6)
    clip_pred, _ = Predictor(load_run(run), level="clips", aggregate_name="mean").predict_features("v1", feats)
    assert 0 < clip_pred.score < 1
    with pytest.raises(KeyError, match="confident_mean"):
        Predictor(load_run(run), aggregate_name="confident")


def test_av_model_gives_frame_and_audio_scores(tmp_path):
    run, _ = _checkpoint(tmp_path, model="av_tiny", dataset="av", audio_width=40, level="clips")
    pred, _ = Predictor(load_run(run)).predict_features("v", _features(t=8, mel_frames=100))
    assert pred.frame_scores.shape == (8,)
    assert pred.audio_scores is not None and len(pred.audio_scores) == len(pred.audio_times) > 0
    assert np.all(np.diff(pred.audio_times) > 0)
    assert {"visual_score", "audio_score"} <= set(pred.extras)
    # no audio: the late-fusion model's visual head alone scores it, and the Prediction says so
    mute, _ = Predictor(load_run(run)).predict_features("v", _features(t=8, mel_frames=0))
    assert mute.streams == "visual only" and mute.audio_scores is None and mute.frame_scores.shape == (8,)


def test_frames_level_needs_frame_scores(tmp_path):
    run, _ = _checkpoint(tmp_path, model="clip3d", level="frames")
    cfg_run = load_run(run)
    with pytest.raises(ConfigError, match="level 'clips'"):
        Predictor(cfg_run).predict_features("v", _features(t=4))


def test_failures_are_listed_and_the_prior_only_on_request(tmp_path, make_video):
    run, _ = _checkpoint(tmp_path)
    predictor = Predictor(load_run(run))
    good = make_video("good.mkv", n_frames=12, fps=10, size=(32, 32))
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00\x00\x00\x18ftypmp42 not really a video")
    records = [VideoRecord("good", good, Label.UNKNOWN), VideoRecord("broken", broken, Label.UNKNOWN),
               VideoRecord("missing", tmp_path / "nope.mp4", Label.UNKNOWN)]
    res = predictor.predict(records, on_error="raise")
    assert [p.id for p in res.predictions] == ["good"]
    assert [f.id for f in res.failures] == ["broken", "missing"]
    assert all(f.reason and f.fallback is None for f in res.failures)
    assert res.timings["model"] > 0 and res.timings["decode"] > 0
    res = predictor.predict(records, on_error="prior")
    assert [p.id for p in res.predictions] == ["good", "broken", "missing"]
    assert [p.score for p in res.predictions[1:]] == [0.3, 0.3]
    assert all(p.fallback == PRIOR_FALLBACK for p in res.predictions[1:])
    assert res.predictions[0].fallback is None
    report = failures_report(res, 0.3)
    assert report["n_failed"] == 2 and report["fallback"]["score"] == 0.3


def test_no_face_is_an_error_unless_the_full_frame_is_asked_for(tmp_path):
    run, _ = _checkpoint(tmp_path)
    with pytest.raises(FakelensError, match="no face"):
        Predictor(load_run(run)).predict_features("v", _features(faces=False))
    p = Predictor(load_run(run), no_face="full_frame")
    assert p.cache_cfg.fallback == "full_frame"
    feats = _features()
    feats.clip.fallback = "full_frame"
    pred, _ = p.predict_features("v", feats)
    assert pred.fallback == "no_face: full frame"

