"""inference.evidence and inference.explain on untrained runs (plumbing, not what a model learned):
the evidence is the Prediction of the one pipeline, Grad-CAM explains exactly the scores the
Prediction holds, and what could not be analysed becomes a note."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.inference.evidence import Analyser
from fakelens.inference.pipeline import Predictor

pytest.importorskip("captum")


def _video(tiny_synth, split="test", index=0):
    return sorted((tiny_synth / split).glob("*.mp4"))[index]


def _codes(ev):
    return [n.code for n in ev.notes]


def test_evidence_is_the_pipelines_prediction_and_saliency_explains_its_scores(tiny_synth, untrained_run):
    from fakelens.inference.explain import face_saliency, saliency_layer

    run = untrained_run("av_tiny")
    predictor = Predictor(run, device="cpu")
    video = _video(tiny_synth)
    ev = Analyser(predictor).analyse(video)
    assert ev.status == "ok", ev.error
    feats = predictor.features(video)
    pred, _ = predictor.predict_features(video.name, feats)
    assert ev.prediction.score == pytest.approx(pred.score)
    np.testing.assert_allclose(ev.prediction.frame_scores, pred.frame_scores)
    assert [(p.start, p.end) for p in ev.prediction.proposals] == [(p.start, p.end) for p in pred.proposals]
    # most and least suspicious crop of the one face, ranked by the Prediction's own frame scores
    assert [c.kind for c in ev.crops] == ["most suspicious", "least suspicious"]
    assert ev.crops[0].score == pytest.approx(pred.frame_scores.max())
    assert ev.crops[1].score == pytest.approx(pred.frame_scores.min())
    for c in ev.crops:
        assert c.image.shape == (32, 32, 3) and c.saliency.shape == (32, 32)
        assert 0.0 <= c.saliency.min() and c.saliency.max() <= 1.0
    # Grad-CAM explains the very output the Prediction scored at those frames
    positions = [c.position for c in ev.crops]
    sal = face_saliency(run, feats, 0, positions)
    np.testing.assert_allclose(sal.scores, [c.score for c in ev.crops], atol=1e-5)
    assert "frame_logits" in sal.target
    # the explained layer still has a spatial map (a 32-px crop is 1x1 after the stride-32 stage)
    import torch

    sides = {}
    name, layer = saliency_layer(run.model, {"video": torch.rand(1, 4, 3, 32, 32), "audio": torch.zeros(1, 1, 80, 48)})

    def hook(module, inputs, out):
        sides["side"] = min(out.shape[-2:])

    layer.register_forward_hook(hook)
    run.model(video=torch.rand(1, 4, 3, 32, 32), audio=torch.zeros(1, 1, 80, 48))
    assert sides["side"] >= 7 and not name.startswith("audio") and ev.saliency["layer"] == name
    assert ev.audio_span is not None and ev.mel is not None
    # the audio before the first sampled frame is in no clip's span: said; the 4-frame clips span
    # more than the 48 columns of the audio window: their audio was resampled into it, and said
    assert _codes(ev) in (["sampled_frames", "audio_resampled"],
                          ["sampled_frames", "audio_coverage", "audio_resampled"])
    assert all("not heard: 0.00-" in n.message and "windows spanned" in n.message
               for n in ev.notes if n.code == "audio_coverage")


def test_a_model_without_an_audio_branch_and_a_short_video_are_stated(tiny_synth, untrained_run):
    ev = Analyser(Predictor(untrained_run("frame_tiny", n_frames=6, clip_frames=8), device="cpu")).analyse(
        _video(tiny_synth))
    assert ev.status == "ok", ev.error
    assert "no_audio_branch" in _codes(ev) and "short_video" in _codes(ev)
    assert ev.mel is None and ev.audio_span is None and ev.prediction.audio_scores is None
    assert len(ev.prediction.frame_scores) == 6  # the padding of the 8-frame clip is not scored
    # the padding is recorded in the Prediction (predict's --predictions) and counted in the note, once
    assert (ev.prediction.extras["real_frames"], ev.prediction.extras["padded_frames"]) == (6.0, 2.0)
    assert ev.prediction.fallback.startswith("padded clip: 6 real frames and 2 padded")
    assert "(6 real, 2 padded)" in next(n.message for n in ev.notes if n.code == "short_video")
    assert "fallback" not in _codes(ev)


def test_an_audio_model_has_no_face_evidence(tiny_synth, untrained_run):
    ev = Analyser(Predictor(untrained_run("audio_tiny"), device="cpu")).analyse(_video(tiny_synth))
    assert ev.status == "ok", ev.error
    assert "no_visual_branch" in _codes(ev) and ev.crops == [] and ev.faces == []
    assert ev.mel is not None and ev.audio_span is not None


def test_frames_without_a_face_are_stated_and_never_shown_as_crops(tiny_synth, untrained_run, monkeypatch):
    predictor = Predictor(untrained_run("av_tiny"), device="cpu")
    real_features = predictor.features

    def features_losing_the_face(path):
        feats = real_features(path)
        feats.clip.found[0, 1:4] = False  # as if the detector lost the face there (the crop is held)
        return feats

    monkeypatch.setattr(predictor, "features", features_losing_the_face)
    ev = Analyser(predictor).analyse(_video(tiny_synth))
    note = next(n for n in ev.notes if n.code == "no_face_frames")
    assert "3 of 6 sampled frames" in note.message and note.level == "warning"
    assert all(c.position not in (1, 2, 3) for c in ev.crops)
    assert ev.face_found[0].tolist() == [True, False, False, False, True, True]


def test_silent_and_missing_audio_are_stated(tmp_path, untrained_run):
    from fakelens.io.encode import write_video

    frames = [np.full((64, 64, 3), 90 + i, np.uint8) for i in range(20)]
    silent = write_video(tmp_path / "silent.mp4", frames, 10.0, audio=np.zeros(32000, np.float32),
                         sample_rate=16000, codec="h264")
    mute = write_video(tmp_path / "mute.mp4", frames, 10.0, codec="h264")
    av = Analyser(Predictor(untrained_run("av_tiny"), device="cpu"))
    ev = av.analyse(silent)
    assert ev.status == "ok", ev.error
    assert "silent_audio" in _codes(ev)
    one = av.analyse(mute)  # an audio-visual model scores it from its visual head, and says so
    assert one.status == "ok" and one.prediction.streams == "visual only", one.error
    assert "visual stream alone" in next(n for n in one.notes if n.code == "streams").message
    assert one.media["has_audio"] is False  # probed, shown in the report
    visual = Analyser(Predictor(untrained_run("frame_tiny"), device="cpu")).analyse(mute)
    note = next(n for n in visual.notes if n.code == "no_audio_branch")
    assert "no audio stream either" in note.message


def test_every_track_found_is_shown_and_tracks_not_scored_are_said(tiny_synth, untrained_run, monkeypatch):
    """Review of issue 12, item 2: a second face track the model did not score gets a crop marked
    'not scored' and a note; the scored face's frame_times hold only frames where it was found."""
    predictor = Predictor(untrained_run("av_tiny"), device="cpu")
    predictor.max_faces = 1  # data.max_faces=1: every track is found, the main one scored
    real_features = predictor.features

    def features_with_a_second_person(path):
        feats = real_features(path)
        c = feats.clip
        c.faces = np.concatenate([c.faces, c.faces[:1]])  # (2, T, S, S, 3)
        c.boxes = np.concatenate([c.boxes, c.boxes[:1] + 5])
        c.found = np.concatenate([c.found, c.found[:1]])
        if c.detection is not None:  # every track's detection confidence (cache version 4)
            c.detection = np.concatenate([c.detection, c.detection[:1]])
        c.found[1, 3:] = False
        c.found[0, 2] = False  # the first face lost at frame 2 (its crop held there)
        return feats

    monkeypatch.setattr(predictor, "features", features_with_a_second_person)
    ev = Analyser(predictor).analyse(_video(tiny_synth))
    assert ev.status == "ok", ev.error
    assert [(c.face, c.kind) for c in ev.crops][-1] == (1, "not scored") and ev.crops[-1].score is None
    assert ev.crops[-1].position < 3  # shown at a frame where that face was found
    note = next(n for n in ev.notes if n.code == "faces_not_scored")
    assert "2 face tracks were found but only 1 scored" in note.message
    # the frame where the face was lost is not scored at all (never a held crop)
    pred = ev.prediction  # every sampled frame on its timeline, NaN where no face was scored
    assert np.array_equal(pred.frame_times, ev.sampled_times) and np.isnan(pred.frame_scores[2])
    assert len(ev.faces) == 1 and np.array_equal(ev.faces[0].frame_times, pred.frame_times[np.isfinite(pred.frame_scores)])
    assert not np.isclose(ev.faces[0].frame_times, ev.sampled_times[2]).any()


def test_head_values_use_the_verdicts_aggregation_and_the_note_says_all_frames(tmp_path, untrained_run):
    """Review items 3 and 12: visual/audio head values are aggregated as the verdict is (not a mean
    while the verdict is a max); a video whose every frame was sampled is not said to skip frames."""
    from fakelens.inference.aggregate import aggregate
    from fakelens.io.encode import write_video

    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (64, 64, 3), dtype=np.uint8) for _ in range(6)]
    video = write_video(tmp_path / "six.mp4", frames, 6.0, audio=rng.normal(0, 0.1, 16000).astype(np.float32),
                        sample_rate=16000, codec="h264")
    run = untrained_run("av_tiny")
    predictor = Predictor(run, device="cpu", no_face="full_frame")
    feats = predictor.features(video)
    pred, _, clips, _ = predictor.score_features("six.mp4", feats)
    probs = predictor._run_model(clips)
    for head, key in (("visual_logit", "visual_score"), ("audio_logit", "audio_score")):
        if head in probs:
            assert pred.extras[key] == pytest.approx(aggregate(predictor.aggregate_name, probs[head]))
    ev = Analyser(predictor, saliency=False).analyse(video)
    sampled = next(n for n in ev.notes if n.code == "sampled_frames").message
    if len(ev.sampled_times) >= ev.media["n_frames"]:
        assert "all 6 frames" in sampled and "not analysed" not in sampled


def test_a_file_that_is_not_a_fakelens_checkpoint_is_said_plainly(tmp_path):
    """Review item 10: torch's weights_only advice (load it unsafely) never reaches the user."""
    import torch

    from fakelens.errors import FakelensError
    from fakelens.inference.pipeline import load_run

    text = tmp_path / "notes.ckpt"
    text.write_text("this is not a checkpoint")
    module = tmp_path / "module.pt"
    torch.save(torch.nn.Linear(2, 2), module)
    for path in (text, module):
        with pytest.raises(FakelensError) as err:
            load_run(path)
        msg = str(err.value)
        assert "not a fakelens checkpoint" in msg and "weights_only=False" not in msg and "\n" not in msg


def test_a_clip_level_model_gets_crops_ranked_by_clip_and_saliency(tiny_synth, untrained_run, monkeypatch):
    """Review of issue 12, item 8: a 3D clip model (no per-frame scores) got no crops and no
    saliency; now crops are ranked by the clip's P(fake) and Grad-CAM explains that clip."""
    import torch

    from fakelens.inference.explain import face_saliency
    from fakelens.models import create_model
    from fakelens.train.config import load_train_config

    run = untrained_run("frame_tiny", n_frames=8, clip_frames=4)
    cfg = load_train_config("configs/demo.yaml", ["model.name=clip3d", "model.image_size=32", "model.num_frames=4",
                                                  "data.clip_frames=4", "task.name=classification",
                                                  "model.pretrained=false"])
    torch.manual_seed(0)
    import dataclasses

    run = dataclasses.replace(run, cfg=cfg, model=create_model(cfg.model).eval())
    predictor = Predictor(run, device="cpu")
    video = _video(tiny_synth)
    ev = Analyser(predictor).analyse(video)
    assert ev.status == "ok", ev.error
    feats = predictor.features(video)
    _, _, clips, probs = predictor.score_features(video.name, feats)
    clip_p = probs["video_logit"]  # (K,)
    kinds = [c.kind for c in ev.crops]
    assert kinds == ["most suspicious", "least suspicious"]
    assert ev.crops[0].score == pytest.approx(clip_p.max()) and ev.crops[1].score == pytest.approx(clip_p.min())
    assert all(c.saliency is not None for c in ev.crops) and "clip" in ev.saliency["target"]
    sal = face_saliency(run, feats, 0, [c.position for c in ev.crops])
    np.testing.assert_allclose(sal.scores, [c.score for c in ev.crops], atol=1e-5)
    assert "clip_ranked" in _codes(ev) and "no_frame_scores" not in _codes(ev)


def test_i3d_saliency_of_a_frame_is_its_own_time_steps_map(tiny_synth, untrained_run, monkeypatch):
    """Review of issue 15, item 2: i3d's 2D layers run over T' = C/2 time steps; every frame of a
    clip got time step 0's Grad-CAM map. Frame j now gets step j * T' // C. Grad-CAM itself is
    replaced by a map that is k everywhere at time step k (an untrained net's maps are all zero
    after the ReLU), so the test reads which step each frame was given."""
    import dataclasses

    import captum.attr
    import torch

    from fakelens.inference.explain import face_saliency
    from fakelens.models import create_model
    from fakelens.train.config import load_train_config

    run = untrained_run("frame_tiny", n_frames=8, clip_frames=4)
    cfg = load_train_config("configs/demo.yaml", ["model.name=i3d", "model.backbone=resnet50", "model.image_size=32",
                                                  "model.num_frames=4", "data.clip_frames=4",
                                                  "task.name=classification", "model.pretrained=false"])
    torch.manual_seed(0)
    run = dataclasses.replace(run, cfg=cfg, model=create_model(cfg.model).eval())
    steps = {}

    class StepCam:
        def __init__(self, forward, layer):
            self.forward, self.layer = forward, layer

        def attribute(self, inputs, relu_attributions=True):
            out = {}
            def keep(mod, i, o):
                out["shape"] = o.shape

            hook = self.layer.register_forward_hook(keep)
            self.forward(*inputs)
            hook.remove()
            t, _, h, w = out["shape"]  # a 2D layer of i3d: (B*T', C, h, w)
            steps["t"] = t
            return 1.0 + torch.arange(t, dtype=torch.float32).view(t, 1, 1, 1).expand(t, 1, h, w)  # (T',1,h,w)

    monkeypatch.setattr(captum.attr, "LayerGradCam", StepCam)
    feats = Predictor(run, device="cpu").features(_video(tiny_synth))
    sal = face_saliency(run, feats, 0, [0, 1, 2, 3])
    assert sal.layer and not isinstance(run.model.get_submodule(sal.layer), torch.nn.Conv3d)
    assert steps["t"] == 2  # T' = C / 2
    # each map's peak before normalising: 1 + the time step the frame was given
    assert np.allclose(sal.peaks, [1, 1, 2, 2]), sal.peaks


def test_audio_column_is_the_hop_unless_the_clip_was_resampled_into_the_window(tmp_path, untrained_run):
    """pipeline.audio_column_seconds: a window holding its clip's mel frames as they are spans one
    hop per column; a 10-s video sampled at 6 frames cuts clips of ~6.7 s into the 48-column
    window, one column every ~0.14 s: the evidence keeps that and says the audio was resampled
    (the coverage note said the model heard 92% of the track)."""
    from fakelens.inference.pipeline import audio_column_seconds

    hop = 0.01
    plain = [{"audio_times": 1.0 + hop * np.arange(48), "audio_mask": np.arange(48) < 30}]
    assert audio_column_seconds(plain) == pytest.approx(hop)
    assert audio_column_seconds([{"audio_times": np.zeros(48), "audio_mask": np.zeros(48, bool)}]) is None
    assert audio_column_seconds([]) is None
    from fakelens.io.encode import write_video

    t = np.arange(160_000) / 16_000
    path = write_video(tmp_path / "long.mkv", [np.full((48, 64, 3), 90, np.uint8)] * 100, 10.0,
                       audio=(0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), sample_rate=16_000, codec="ffv1")
    ev = Analyser(Predictor(untrained_run("av_tiny"), device="cpu"), saliency=False).analyse(path)
    assert ev.status == "ok", ev.error
    assert ev.audio_column > 0.1
    note = next(n for n in ev.notes if n.code == "audio_resampled")
    assert note.level == "warning" and "about 7% of the mel frames" in note.message
    assert all("the model heard" not in n.message for n in ev.notes)


def test_audio_shorter_than_the_models_window_is_recorded_in_the_prediction(tiny_synth, untrained_run):
    import dataclasses

    run = dataclasses.replace(untrained_run("audio_tiny"), audio_width=400)  # a 4-s window, ~1.2 s of audio
    ev = Analyser(Predictor(run, device="cpu")).analyse(_video(tiny_synth))
    assert ev.status == "ok", ev.error
    pred = ev.prediction
    heard = ev.mel.shape[1] * 0.01
    assert pred.extras["audio_window_seconds"] == pytest.approx(4.0)
    assert pred.extras["audio_seconds"] == pytest.approx(heard) and heard < 4.0
    assert pred.fallback.startswith(f"padded audio: {heard:.2f} s of audio padded with masked silence")
    # the report says it once, in its short_audio note, not again as a generic fallback note
    assert "short_audio" in _codes(ev) and "fallback" not in _codes(ev)
    # a window the track fills: nothing recorded
    ev = Analyser(Predictor(untrained_run("audio_tiny"), device="cpu")).analyse(_video(tiny_synth))
    assert ev.prediction.fallback is None and "audio_seconds" not in ev.prediction.extras


def test_clips_after_the_audio_tracks_end_are_recorded_in_the_prediction(tmp_path, untrained_run):
    """2 s of audio in a 10-s video: the audio fills the model's window, but the later clips begin
    after the track ends and are scored with their audio masked out. The prediction says so (it
    used to say 'audio-visual' with no fallback); the same video with all its audio records nothing."""
    from fakelens.inference.pipeline import AUDIO_ENDS_FALLBACK
    from fakelens.io.encode import write_video
    from fakelens.types import Label, VideoRecord

    t = np.arange(160_000) / 16_000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)  # 10 s
    frames = [np.full((48, 64, 3), 60 + i, np.uint8) for i in range(100)]  # 10 s at 10 fps
    early = write_video(tmp_path / "early.mkv", frames, 10.0, audio=tone[:32_000], sample_rate=16_000, codec="ffv1")
    whole = write_video(tmp_path / "whole.mkv", frames, 10.0, audio=tone, sample_rate=16_000, codec="ffv1")
    pr = Predictor(untrained_run("av_tiny"), device="cpu")
    result = pr.predict([VideoRecord(id=p.name, path=p, label=Label.REAL) for p in (early, whole)])
    assert not result.failures, result.failures
    cut, full = result.predictions
    assert cut.streams == "audio-visual" and cut.fallback is not None
    said = next(f for f in cut.fallback.split("; ") if f.startswith(AUDIO_ENDS_FALLBACK + ":"))
    assert said.startswith(f"{AUDIO_ENDS_FALLBACK}: the audio track ends at 2.0") and "of the 10.00-s video" in said
    n = int(cut.extras["clips"])
    silent = int(cut.extras["clips_without_audio"])
    assert 1 <= silent < n and f"{silent} of {n} clips had none of it" in said
    assert said.endswith("(the visual stream alone)")  # a face's or the full frame's (--no-face full_frame)
    assert cut.extras["audio_seconds"] == pytest.approx(2.0, abs=0.05)
    assert cut.extras["video_seconds"] == pytest.approx(10.0, abs=0.05)
    assert AUDIO_ENDS_FALLBACK not in (full.fallback or "") and "clips_without_audio" not in full.extras
    ev = Analyser(pr, saliency=False).analyse(early)  # the report says it too
    assert any(n.code == "fallback" and AUDIO_ENDS_FALLBACK in n.message for n in ev.notes), ev.notes
