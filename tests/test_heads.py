"""Heads a run never trained are never scored (issue 17, review 2, item 3), and explain explains
the clip predict scored (item 5).

An untrained head (loss weight 0 in the recipe, or disabled because its training labels held one
class, e.g. the visual head of an av model on DFDC) answers ~0.5 for every input: its outputs are
left out of predict's scores, timeline, proposals and extras and of detect's crop ranking, and the
run says why. The checkpoint records which outputs were trained; an older one is read from its
config and disabled terms."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fakelens.errors import ConfigError
from fakelens.inference.pipeline import Predictor, load_run
from fakelens.types import VideoRecord

ALL_AV = ["audio_logit", "frame_logits", "logit", "time_logits", "visual_logit"]


@pytest.mark.parametrize("model,task,disabled,expected", [
    # demo.yaml: visual and audio heads (head_v also gives the per-frame logits, head_a the per-step ones)
    ("av_tiny", {"name": "av"}, (), ALL_AV),
    # on DFDC the per-stream terms are disabled (stream unknown): only the fake head trains
    ("av_tiny", {"name": "av", "frame_weight": 1.0, "audio_frame_weight": 0.5}, ("visual", "audio", "frame", "time"),
     ["logit"]),
    ("av_tiny", {"name": "av", "visual_weight": 0.0}, (), ["audio_logit", "logit", "time_logits"]),
    ("av_tiny", {"name": "av", "visual_weight": 0.0, "mil_weight": 0.5}, (), ALL_AV),
    # a frame model: logit and frame_logits are one linear head (the DFDC winners' per-frame scores)
    ("frame_tiny", {"name": "classification"}, (), ["frame_logits", "logit"]),
    ("frame_tiny", {"name": "mil"}, (), ["frame_logits", "logit"]),
    ("audio_tiny", {"name": "classification"}, (), ["logit", "time_logits"]),
    ("clip3d", {"name": "classification"}, (), ["logit"]),
])
def test_trained_outputs_follow_the_heads_the_loss_reaches(model, task, disabled, expected):
    from fakelens.models import create_model
    from fakelens.tasks import TaskConfig, build_task
    from fakelens.tasks.classification import trained_outputs

    heads = create_model(model, pretrained=False).output_heads
    assert sorted(trained_outputs(build_task(TaskConfig(**task), disabled=disabled), heads)) == expected


def _checkpoint(tmp_path, untrained_run, disabled, record):
    """A checkpoint of an av_tiny run whose `disabled` terms never trained, with the trained-outputs
    record (`record`) or without it (a checkpoint written before the record existed)."""
    from fakelens.config import to_dict
    from fakelens.tasks import build_task
    from fakelens.tasks.classification import trained_outputs

    run = untrained_run("av_tiny", n_frames=8)
    ckpt = {"hyper_parameters": {"config": to_dict(run.cfg), "cache_config": to_dict(run.cache), "prior": 0.5,
                                 "disabled": list(disabled), "audio_width": run.audio_width},
            "state_dict": {f"model.{k}": v for k, v in run.model.state_dict().items()}}
    if record:
        ckpt["trained_outputs"] = sorted(trained_outputs(build_task(run.cfg.task, disabled=disabled),
                                                         run.model.output_heads))
    path = tmp_path / f"run-{'-'.join(disabled) or 'all'}-{record}.ckpt"
    torch.save(ckpt, path)
    return path


@pytest.mark.parametrize("record", [True, False])
def test_untrained_heads_are_absent_from_predict_and_detect(tmp_path, untrained_run, tiny_synth, record):
    from fakelens.inference.evidence import Analyser

    video = sorted((tiny_synth / "test").glob("*.mp4"))[0]
    rec = [VideoRecord(id=video.name, path=video, label=None)]
    trained = Predictor(load_run(_checkpoint(tmp_path, untrained_run, (), record)), device="cpu")
    full = trained.predict(rec).predictions[0]
    assert full.frame_scores is not None and "visual_score" in full.extras and not trained.notes  # the control

    # demo.yaml on DFDC: the stream of the fakes is unknown, every per-stream term is disabled
    run = load_run(_checkpoint(tmp_path, untrained_run, ("visual", "audio", "frame", "time"), record))
    assert run.trained_outputs == frozenset({"logit"})
    predictor = Predictor(run, device="cpu")
    pred = predictor.predict(rec).predictions[0]
    assert pred.score == pytest.approx(full.score)  # the fake head's verdict, unchanged
    assert pred.frame_scores is None and pred.audio_scores is None
    assert not {"visual_score", "audio_score"} & set(pred.extras)
    assert all(f.frame_scores is None for f in pred.faces)
    # proposals stand on the clip scores (the timeline: one value per clip), and the run says why
    assert pred.proposals and any("no per-frame or per-audio-step scores" in n for n in predictor.notes)
    assert any(n.startswith("per-frame scores left out") and "visual disabled" in n for n in predictor.notes)
    with pytest.raises(ConfigError, match="never trained the head"):
        Predictor(run, level="frames", device="cpu")
    # detect ranks the crops by the clip scores, not by the untrained head's frame scores, and says so
    ev = Analyser(predictor, saliency=False).analyse(video)
    assert ev.status == "ok", ev.error
    codes = [n.code for n in ev.notes]
    assert "clip_ranked" in codes and "untrained_head" in codes
    clip_scores = predictor._run_model(predictor._prepare("v", predictor.features(video)))["video_logit"]
    ranked = [c.score for c in ev.crops if c.score is not None]
    assert ranked and all(np.isclose(clip_scores, s, atol=1e-6).any() for s in ranked), (ranked, clip_scores)


def test_every_checkpoint_records_the_outputs_its_run_trained():
    from fakelens.config import to_dict
    from fakelens.train.config import load_train_config
    from fakelens.train.module import DetectorModule

    cfg = load_train_config("configs/demo.yaml", ["model.image_size=32", "model.num_frames=4", "data.clip_frames=4",
                                                  "model.audio_frames=48"])
    ckpt: dict = {}
    DetectorModule(to_dict(cfg), prior=0.5, disabled=["visual", "audio", "frame", "time"]).on_save_checkpoint(ckpt)
    assert ckpt["trained_outputs"] == ["logit"]
    DetectorModule(to_dict(cfg), prior=0.5).on_save_checkpoint(ckpt)
    assert ckpt["trained_outputs"] == ALL_AV


def test_the_explained_clip_scores_what_predict_scored(tiny_synth, untrained_run):
    """explain.py builds its inputs through the predictor's own clips (the clip's own span of audio,
    its audio mask and times): with mid fusion (the audio moves the frame scores) the explained
    frame's P(fake) is the Prediction's at that frame."""
    import dataclasses

    from fakelens.inference.explain import face_saliency
    from fakelens.models import create_model

    pytest.importorskip("captum")
    run = untrained_run("av_tiny", n_frames=8)
    torch.manual_seed(0)
    run.cfg.model = dataclasses.replace(run.cfg.model, fusion="mid")
    run.model = create_model(run.cfg.model).eval()
    predictor = Predictor(run, device="cpu")
    video = sorted((tiny_synth / "test").glob("*.mp4"))[0]
    feats = predictor.features(video)
    pred, _ = predictor.predict_features(video.name, feats)
    face = pred.faces[0]
    positions = np.searchsorted(np.asarray(feats.clip.times), face.frame_times)
    sal = face_saliency(run, feats, face.index, positions.tolist())
    assert "frame_logits" in sal.target
    np.testing.assert_allclose(sal.scores, face.frame_scores, atol=1e-5)
