"""A missing stream degrades the verdict, it does not void it: modality dropout hides one stream
of some training clips (task.modality_dropout) and leaves out the losses that need it; an
audio-visual model scores a video without audio from its visual head and one without a face
from its audio head, and says so (Prediction.streams, predict's --predictions and failures
report, the detect report)."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from fakelens.tasks import TaskConfig, build_task


def _batch(b=8, t=4, w=20):
    g = torch.Generator().manual_seed(0)
    return {"video": torch.rand(b, t, 3, 8, 8, generator=g), "audio": torch.rand(b, 1, 6, w, generator=g),
            "label": torch.tensor([0, 1] * (b // 2), dtype=torch.float32),
            "visual_label": torch.tensor([0, 1, 0, 0] * (b // 4), dtype=torch.float32),
            "audio_label": torch.tensor([0, 0, 0, 1] * (b // 4), dtype=torch.float32),
            "mask": torch.ones(b, t, dtype=torch.bool)}


def test_modality_dropout_hides_one_stream_and_its_losses():
    task = build_task(TaskConfig(name="av", modality_dropout=0.6, visual_weight=1.0, audio_weight=1.0))
    torch.manual_seed(3)
    batch = task.drop_modalities(_batch())
    vd, ad = batch["video_dropped"], batch["audio_dropped"]
    assert vd.any() and ad.any() and not (vd & ad).any() and (~(vd | ad)).any()
    assert not batch["mask"][vd].any() and batch["mask"][~vd].all()  # the faces of those clips hidden
    assert not batch["audio_mask"][ad].any() and batch["audio_mask"][~ad].all()
    heads = {k: torch.zeros(8, requires_grad=True) for k in ("logit", "visual_logit", "audio_logit")}
    loss, _ = task.loss(heads, batch)
    loss.backward()
    g = {k: v.grad != 0 for k, v in heads.items()}
    assert torch.equal(g["logit"], ~(vd | ad))  # the fake head needs both streams
    assert torch.equal(g["visual_logit"], ~vd) and torch.equal(g["audio_logit"], ~ad)  # each head its own
    # off: the batch unchanged
    assert build_task(TaskConfig(name="av")).drop_modalities(_batch()).keys() == _batch().keys()


def test_modality_dropout_config_is_checked():
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        TaskConfig(name="av", modality_dropout=1.0)
    # a recipe's task section reused for one stream: nothing to hide, the batch as it is
    task = build_task(TaskConfig(name="classification", modality_dropout=0.2))
    assert task.drop_modalities(_batch()).keys() == _batch().keys()


def _features(make_video, untrained_run, audio: bool, face: bool):
    from fakelens.features.media import compute_features
    from fakelens.faces.detectors import build_detector

    run = untrained_run()
    path = make_video("v.mp4", n_frames=12, fps=10, size=(48, 48), audio_seconds=1.2 if audio else None)
    feats = compute_features(path, run.cache, build_detector("full_frame"))
    if not face:  # what a video where the detector finds nobody gives: no face track
        empty = dataclasses.replace(feats.clip, faces=feats.clip.faces[:0], boxes=feats.clip.boxes[:0],
                                    found=feats.clip.found[:0], status="no_face")
        feats = dataclasses.replace(feats, clip=empty)
    return run, feats


@pytest.mark.parametrize("audio,face,streams,head", [(True, True, "audio-visual", "logit"),
                                                     (False, True, "visual only", "visual_logit"),
                                                     (True, False, "audio only", "audio_logit")])
def test_one_stream_is_scored_by_its_own_head(make_video, untrained_run, audio, face, streams, head):
    from fakelens.inference.pipeline import Predictor

    run, feats = _features(make_video, untrained_run, audio, face)
    pr = Predictor(run, device="cpu")
    pred, _ = pr.predict_features("v", feats)
    assert pred.streams == streams
    clips = pr._clips(feats, streams)
    out = pr._run_model(clips)
    assert pred.score == pytest.approx(float(out[head].max()))  # the run's aggregation: max over clips
    if streams == "visual only":
        assert pred.audio_scores is None and "audio_score" not in pred.extras and len(pred.frame_scores) == len(feats.clip.times)
        # every sampled frame: a score where the face was found (and scored), NaN where it was not
        np.testing.assert_array_equal(pred.frame_times, feats.clip.times)
        np.testing.assert_array_equal(np.isfinite(pred.frame_scores), feats.clip.found[0])
        np.testing.assert_allclose(pred.frame_scores[feats.clip.found[0]], pred.faces[0].frame_scores)
        assert not any(c["audio_mask"].any() for c in clips)  # the blank audio is masked out entirely
    if streams == "audio only":
        assert pred.frame_scores is None and "visual_score" not in pred.extras and len(pred.audio_scores) > 0
        assert not any(c["mask"].any() for c in clips)
        assert all(0 <= p.start < p.end <= 1.3 for p in pred.proposals)  # localized on the audio timeline


def test_without_a_face_or_audio_nothing_is_scored(make_video, untrained_run):
    from fakelens.inference.pipeline import Predictor, _NoFace

    run, feats = _features(make_video, untrained_run, audio=False, face=False)
    with pytest.raises(_NoFace, match="no face found in any sampled frame.*no audio.*nothing to score"):
        Predictor(run, device="cpu").predict_features("v", feats)


def test_mid_fusion_without_modality_dropout_does_not_pretend(make_video, untrained_run):
    """Its heads attend to both streams and never saw one alone: no one-stream score."""
    from fakelens.errors import MediaError
    from fakelens.inference.pipeline import Predictor

    run, feats = _features(make_video, untrained_run, audio=False, face=True)
    cfg = dataclasses.replace(run.cfg, model=dataclasses.replace(run.cfg.model, fusion="mid"),
                              task=dataclasses.replace(run.cfg.task, modality_dropout=0.0))
    with pytest.raises(MediaError, match="the model needs audio"):
        Predictor(dataclasses.replace(run, cfg=cfg), device="cpu").predict_features("v", feats)
    cfg = dataclasses.replace(cfg, task=dataclasses.replace(cfg.task, modality_dropout=0.3))
    pred, _ = Predictor(dataclasses.replace(run, cfg=cfg), device="cpu").predict_features("v", feats)
    assert pred.streams == "visual only"


@pytest.mark.slow
def test_predict_and_detect_record_the_streams(detect_run, tmp_path, capsys):
    """The trained demo-recipe model on a test video with its audio removed: scored, and said so."""
    from fakelens.cli.main import main
    from fakelens.io.encode import write_video
    from fakelens.io.video import iter_frames

    meta = json.loads((detect_run["data"] / "test_metadata.json").read_text())
    src = detect_run["data"] / meta[0]["file"]
    data = tmp_path / "data" / "real"
    data.mkdir(parents=True)
    write_video(data / "mute.mp4", [rgb for _, rgb in iter_frames(src)], 25.0)
    out = tmp_path / "prediction.txt"
    assert main(["predict", str(detect_run["run"]), str(tmp_path / "data"), "--format", "avdf1m-task1", "--out",
                 str(out), "--predictions", str(tmp_path / "all.json"), "--no-progress"]) == 0
    assert "scored from one stream" in capsys.readouterr().out
    (pred,) = json.loads((tmp_path / "all.json").read_text())
    assert pred["streams"] == "visual only" and pred["audio_scores"] is None
    report = json.loads(out.with_name(out.name + ".failures.json").read_text())
    assert report["n_failed"] == 0 and report["one_stream"][0]["id"] == "real/mute.mp4"
    assert main(["detect", str(data / "mute.mp4"), "--model", str(detect_run["run"]), "--out", str(tmp_path / "r"),
                 "--no-saliency"]) == 0
    doc = json.loads((tmp_path / "r" / "mute" / "report.json").read_text())
    assert doc["verdict"]["streams"] == "visual only"
    assert any(n["code"] == "streams" and "visual stream alone" in n["message"] for n in doc["notes"])


def test_a_head_training_left_out_does_not_score_alone(make_video, untrained_run):
    """A per-stream term disabled in training (its labels held one class, e.g. DFDC's unknown
    streams): that head is untrained, so a video without audio is not scored from it."""
    from fakelens.errors import MediaError
    from fakelens.inference.pipeline import Predictor

    run, feats = _features(make_video, untrained_run, audio=False, face=True)
    run = dataclasses.replace(run, task=build_task(run.cfg.task, disabled=["visual"]))
    with pytest.raises(MediaError, match="the model needs audio"):
        Predictor(run, device="cpu").predict_features("v", feats)
