"""Every face scored on its own frames (issue 10): frames without a face never reach a model, a
track present for part of the video is scored there only, each track is a FaceScore and the
video score a named aggregation over faces; validation scores videos exactly so."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch import nn

from fakelens.data.tiling import face_frames, face_runs, tile_face
from fakelens.faces.extract import FaceClip
from fakelens.features.media import MediaConfig, VideoFeatures


class _BrightnessModel(nn.Module):
    """A controlled scorer: each frame's fake logit is a fixed function of its mean brightness,
    the clip logit the mean over the frames the mask keeps (as the frame models pool)."""

    input_names = ("video",)
    optional_input_names = ("mask",)

    def forward(self, video: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        b, t = video.shape[:2]
        m = torch.ones(b, t, dtype=torch.bool) if mask is None else mask.bool()
        frame = video.flatten(2).mean(dim=2) * 8 - 4  # (B, T)
        logit = (frame * m).sum(dim=1) / m.sum(dim=1).clamp_min(1)
        return {"logit": logit, "frame_logits": frame, "frame_mask": m}


def _predictor(clip_frames=4, level="frames", aggregate="mean", face_aggregate="max", sampling="frames"):
    from fakelens.inference.pipeline import LoadedRun, Predictor
    from fakelens.tasks import TaskConfig, build_task
    from fakelens.train.config import load_train_config

    cfg = load_train_config(None, ["model.name=frame_tiny", f"data.clip_frames={clip_frames}",
                                   f"predict.level={level}", f"predict.aggregate={aggregate}",
                                   f"predict.face_aggregate={face_aggregate}"])
    cache = MediaConfig(detector="full_frame", sampling=sampling, window_frames=4)
    run = LoadedRun(cfg=cfg, cache=cache, model=_BrightnessModel(), task=build_task(TaskConfig()), prior=0.5,
                    checkpoint=None, audio_width=None)
    return Predictor(run, device="cpu")


def _features(brightness: np.ndarray, found: np.ndarray, seconds: float = 10.0, seed: int = 0) -> VideoFeatures:
    """Crops of uniform `brightness` (F, T) in [0, 1] with a little noise, `found` (F, T)."""
    rng = np.random.default_rng(seed)
    f, t = brightness.shape
    faces = np.clip(brightness[..., None, None, None] * 255 + rng.normal(0, 2, (f, t, 16, 16, 3)), 0, 255)
    times = np.arange(t) * seconds / t  # (T,)
    boxes = np.tile(np.array([10, 20, 60, 80], np.float32), (f, t, 1)) + np.arange(f)[:, None, None] * 100
    det = np.where(found, 0.99, 0.0).astype(np.float32)
    clip = FaceClip(faces=faces.astype(np.uint8), times=times, indices=np.arange(t), boxes=boxes, found=found,
                    status="ok", detection=det, fps=t / seconds, duration=seconds, width=320, height=240)
    return VideoFeatures(clip=clip, mel=np.zeros((80, 0), np.float32), mel_times=np.zeros(0), has_audio=False)


def test_face_runs_and_tiles_cover_each_face_frame_once():
    frames = np.array([0, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 0], bool)
    assert face_runs(frames).tolist() == [[1, 6], [8, 11]]
    assert face_runs(frames, window=4).tolist() == [[1, 4], [4, 6], [8, 11]]  # never across a window
    t = tile_face(frames, 4)
    assert t.picks.tolist() == [[1, 2, 3, 4], [2, 3, 4, 5], [8, 9, 10, 10]]  # the last run padded
    assert t.mask.tolist()[2] == [True, True, True, False]
    assert sorted(t.picks[t.counted].tolist()) == np.flatnonzero(frames).tolist()  # each face frame once
    assert frames[t.picks[t.mask]].all()  # no clip holds a frame without the face
    assert tile_face(np.zeros(5, bool), 4).picks.shape == (0, 4)
    assert face_frames(np.zeros((1, 3), bool), fallback=True).all()  # the full-frame fallback is scored everywhere


def test_a_person_leaving_after_5_s_is_scored_on_their_own_frames_only():
    """Issue 10 item 3: 10 s sampled 20 times, the face found for the first 5 s; the background
    crops after that are never scored: frame scores only at found frames, and replacing them by
    noise changes nothing."""
    found = (np.arange(20) < 10)[None]  # (1, 20): t < 5 s
    bright = np.full((1, 20), 0.3)
    bright[0, 10:] = 0.9  # the background after the person left looks very "fake" to this scorer
    pred = _predictor(clip_frames=4)
    p, _ = pred.predict_features("v", _features(bright, found))
    # the timeline has every sampled frame; those without the face are explicitly unscored (NaN)
    assert len(p.frame_times) == 20 and np.array_equal(np.isfinite(p.frame_scores), found[0])
    assert p.faces[0].frame_times.max() < 5.0 and len(p.faces[0].frame_times) == 10
    np.testing.assert_allclose(p.faces[0].frame_times, p.frame_times[found[0]])
    np.testing.assert_allclose(p.faces[0].frame_scores, p.frame_scores[found[0]])
    assert all(q.end <= 5.0 + 1e-9 for q in p.proposals)  # no proposal on frames nobody scored
    assert p.score < 0.5  # the face's frames only: 0.3 brightness -> P(fake) ~ 0.17
    noisy = _features(bright, found)
    noisy.clip.faces[0, 10:] = np.random.default_rng(1).integers(0, 255, noisy.clip.faces[0, 10:].shape, dtype=np.uint8)
    q, _ = pred.predict_features("v", noisy)
    assert q.score == p.score
    np.testing.assert_array_equal(q.frame_scores, p.frame_scores)
    # a clip with no found frame is not scored at all; a clip-level run scores the 5 s too
    clips = pred._clips(_features(bright, found))
    assert all(found[0, c["positions"][c["mask"]]].all() for c in clips)
    c, _ = _predictor(clip_frames=4, level="clips").predict_features("v", noisy)
    assert c.score == pytest.approx(q.score, abs=0.05)


def test_every_face_track_is_scored_and_the_video_score_is_the_face_aggregation():
    """Two people: face 0 real-looking for the whole video, face 1 (present 2 s of 10 s, e.g. a
    second person walking through) fake-looking. The video is scored on both; max over faces
    flags it, mean over faces less so, `main` gives face 0's score."""
    found = np.ones((2, 20), bool)
    found[1, :16] = False  # face 1 only in the last 2 s
    bright = np.stack([np.full(20, 0.3), np.full(20, 0.8)])
    feats = _features(bright, found)
    p, _ = _predictor().predict_features("v", feats)
    assert [f.index for f in p.faces] == [0, 1] and p.face_aggregate == "max"
    f0, f1 = p.faces
    assert len(f0.frame_times) == 20 and f1.frame_times.min() >= 8.0 and len(f1.frame_times) == 4
    assert f1.score > 0.8 > 0.2 > f0.score
    assert p.score == pytest.approx(f1.score)  # max over faces
    np.testing.assert_allclose(f1.boxes, feats.clip.boxes[1, 16:])  # where that face was
    assert f1.detection == pytest.approx(0.99)
    # the timeline at each moment: the most suspicious face there
    assert p.frame_scores[p.frame_times >= 8.0].min() > 0.8 and p.frame_scores[p.frame_times < 8.0].max() < 0.2
    mean, _ = _predictor(face_aggregate="mean").predict_features("v", feats)
    assert mean.score == pytest.approx((f0.score + f1.score) / 2)
    weighted, _ = _predictor(face_aggregate="frames_weighted").predict_features("v", feats)
    assert weighted.score == pytest.approx((20 * f0.score + 4 * f1.score) / 24)
    main, _ = _predictor(face_aggregate="main").predict_features("v", feats)
    assert main.score == pytest.approx(f0.score)


def test_per_face_scores_are_in_the_predictions_json():
    from fakelens.cli.output import _jsonable

    found = np.ones((2, 8), bool)
    p, _ = _predictor().predict_features("v", _features(np.stack([np.full(8, 0.3), np.full(8, 0.7)]), found))
    doc = json.loads(json.dumps(_jsonable([p])))[0]
    assert doc["face_aggregate"] == "max" and [f["index"] for f in doc["faces"]] == [0, 1]
    assert len(doc["faces"][1]["frame_scores"]) == 8 and len(doc["faces"][1]["boxes"]) == 8
    assert doc["score"] == pytest.approx(max(f["score"] for f in doc["faces"]))


def test_windows_sampling_never_cuts_a_clip_across_two_windows():
    found = np.ones((1, 12), bool)
    found[0, 5] = False
    clips = _predictor(clip_frames=2, sampling="windows")._clips(_features(np.full((1, 12), 0.5), found))
    for c in clips:
        pos = c["positions"][c["mask"]]
        assert len(set(pos // 4)) == 1 and found[0, pos].all()  # one window of 4, face frames only


def test_validation_scores_faces_as_predict_does():
    """video_scores (validation) groups a video's clips by face and aggregates over faces as predict."""
    from fakelens.train.module import video_scores

    found = np.ones((2, 12), bool)
    found[1, :6] = False
    feats = _features(np.stack([np.full(12, 0.35), np.full(12, 0.75)]), found)
    for face_aggregate in ("max", "mean", "frames_weighted"):
        pred = _predictor(face_aggregate=face_aggregate)
        clips = pred._clips(feats)
        probs = pred._run_model(clips)
        p = pred._finish("v", feats, clips, probs)
        n = len(clips)
        masks = np.stack([c["counted"] for c in clips]) & probs["frame_mask"]
        s, _ = video_scores(np.zeros(n, np.int64), np.arange(n), probs["video_logit"], np.ones(n), "mean", "frames",
                            probs["frame_logits"], masks.astype(np.float32), faces=np.array([c["face"] for c in clips]),
                            face_aggregate=face_aggregate)
        assert s[0] == pytest.approx(p.score, abs=1e-9), face_aggregate
