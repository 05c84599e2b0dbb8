"""Temporal localization end to end on the tiny synthetic set: features from a trained run ->
`train` a localizer -> `predict` task-2 proposals -> `evaluate` -> `submission check`; `detect`
renders its proposals; a classification run keeps the threshold baseline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakelens.cli.main import main
from fakelens.data.cache import load_npz, read_index

pytestmark = pytest.mark.slow



@pytest.fixture(scope="module")
def localizer(tiny_synth, tmp_path_factory):
    """A tiny AV run (the encoder), its dense features, a localizer trained on them."""
    root = tmp_path_factory.mktemp("loc")
    cache, run, feats, loc = root / "cache", root / "run", root / "feats", root / "loc"
    assert main(["preprocess", str(tiny_synth), "--out", str(cache), "--frames", "4", "--size", "32",
                 "--detector", "haar", "--no-progress"]) == 0
    assert main(["train", "--config", "configs/demo.yaml", "--out", str(run), "--set", f"data.cache={cache}",
                 "--set", "train.epochs=1", "--set", "train.num_workers=0", "--set", "train.progress_bar=false",
                 "--set", "data.clip_frames=4", "--set", "model.num_frames=4", "--set", "model.image_size=32"]) == 0
    assert main(["features", str(run), str(tiny_synth), "--out", str(feats), "--no-progress"]) == 0
    assert main(["train", "--config", "configs/demo_localizer.yaml", "--out", str(loc), "--set", f"data.cache={feats}",
                 "--set", "train.epochs=2", "--set", "train.num_workers=0", "--set", "model.temporal_dim=16"]) == 0
    return {"root": root, "run": run, "feats": feats, "loc": loc}


def test_features_of_a_run_use_its_encoders_and_crops(localizer):
    cfg = json.loads((localizer["feats"] / "config.json").read_text())
    assert cfg["media"]["size"] == 32 and cfg["media"]["detector"] == "haar"  # the run's cache crops
    assert cfg["encoder"]["visual"]["backbone"] == "tinycnn" and cfg["encoder"]["audio"]["kind"] == "cnn"
    row = read_index(localizer["feats"])[0]
    z = load_npz(localizer["feats"], row)
    assert z["visual"].shape[1] == 192 and z["audio"].shape[1] == 192  # av_tiny: tinycnn for both streams
    metrics = json.loads((localizer["loc"] / "metrics.json").read_text())
    assert metrics["monitor"] == "val_ap" and metrics["best_score"] is not None


def test_localizer_predicts_a_valid_task2_submission_and_is_scored(localizer, tiny_synth, capsys):
    out = localizer["root"] / "prediction.json"
    assert main(["predict", str(localizer["loc"]), str(tiny_synth), "--split", "test", "--format", "avdf1m-task2",
                 "--out", str(out), "--no-progress", "--predictions", str(out) + ".full.json"]) == 0
    capsys.readouterr()
    subs = json.loads(out.read_text())
    assert len(subs) == 2 and all(1 <= len(v) <= 100 for v in subs.values())
    for rows in subs.values():
        conf = [r[0] for r in rows]
        assert conf == sorted(conf, reverse=True) and all(0 <= s < e <= 1.7 for _, s, e in rows)
    assert main(["submission", "check", str(out), "--expect", str(tiny_synth / "test_metadata.json")]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--labels", str(tiny_synth), "--split", "test", "--json"]) == 0
    loc = json.loads(capsys.readouterr().out)["localization"]
    assert set(loc["ap"]) == {"0.5", "0.75", "0.9", "0.95"} and "score" in loc
    assert set(loc["ar"]) == {"50", "30", "20", "10", "5"}
    full = json.loads(Path(str(out) + ".full.json").read_text())
    assert full[0]["streams"] == "audio-visual" and len(full[0]["frame_times"]) > 25  # every frame scored
    for pred in full:  # the modality head's answer (visual / audio fake), on the proposals' scale
        assert 0 < pred["extras"]["visual_score"] <= 1 and 0 < pred["extras"]["audio_score"] <= 1
        assert pred["extras"]["visual_score"] <= max(r[0] for r in subs[pred["id"]]) + 1e-9


def test_thresholds_of_a_localizers_own_step_scores_are_a_named_baseline(localizer, tiny_synth, capsys):
    """`predict --proposals thresholds` on a localizer run: its per-step scores thresholded (the
    fair baseline of make demo), a valid submission other than the learned boundaries'."""
    learned, dense = localizer["root"] / "learned.json", localizer["root"] / "dense_thresholds.json"
    for out, extra in ((learned, []), (dense, ["--proposals", "thresholds"])):
        assert main(["predict", str(localizer["loc"]), str(tiny_synth), "--split", "test", "--format", "avdf1m-task2",
                     "--out", str(out), "--no-progress", *extra]) == 0
        assert main(["submission", "check", str(out), "--expect", str(tiny_synth / "test_metadata.json")]) == 0
    capsys.readouterr()
    a, b = json.loads(learned.read_text()), json.loads(dense.read_text())
    assert a.keys() == b.keys() and a != b
    with pytest.raises(SystemExit):  # a method by name only
        main(["predict", str(localizer["loc"]), str(tiny_synth), "--proposals", "peaks"])


def test_detect_renders_a_localizer_runs_proposals(localizer, tiny_synth, capsys):
    meta = json.loads((tiny_synth / "test_metadata.json").read_text())
    fake = tiny_synth / next(m["file"] for m in meta if m["fake_segments"])
    out = localizer["root"] / "reports"
    assert main(["detect", str(fake), "--model", str(localizer["loc"]), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["failed"] == 0
    doc = json.loads((out / fake.stem / "report.json").read_text())
    assert doc["status"] == "ok" and 1 <= len(doc["proposals"]) <= 100
    assert doc["model"]["name"] == "localizer" and (out / fake.stem / "timeline.png").is_file()


def test_classification_runs_keep_the_threshold_baseline(localizer, tiny_synth, capsys):
    out = localizer["root"] / "baseline.json"
    assert main(["predict", str(localizer["run"]), str(tiny_synth), "--split", "test", "--format", "avdf1m-task2",
                 "--out", str(out), "--no-progress"]) == 0
    assert main(["submission", "check", str(out), "--expect", str(tiny_synth / "test_metadata.json")]) == 0


def test_a_silent_video_is_localized_from_its_face_alone(localizer, tiny_synth, tmp_path, capsys):
    """No audio stream: the audio steps are masked (the model's learned missing-stream vector), the
    video is still localized and its report says "visual only"."""
    import av

    from fakelens.io.encode import write_video

    meta = json.loads((tiny_synth / "test_metadata.json").read_text())
    fake = tiny_synth / next(m["file"] for m in meta if m["fake_segments"])
    with av.open(str(fake)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    silent = tmp_path / "silent.mp4"
    write_video(silent, frames, 25.0)
    out = tmp_path / "reports"
    assert main(["detect", str(silent), "--model", str(localizer["loc"]), "--out", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["failed"] == 0
    doc = json.loads((out / "silent" / "report.json").read_text())
    assert doc["status"] == "ok" and doc["verdict"]["streams"] == "visual only" and 1 <= len(doc["proposals"]) <= 100
    assert all(0 <= p["start"] < p["end"] <= len(frames) / 25.0 + 1e-6 for p in doc["proposals"])
    codes = {n["code"]: n["message"] for n in doc["notes"]}  # by the localizer's own inputs, not "video"/"audio"
    assert "no_visual_branch" not in codes and "no_audio_branch" not in codes, codes
    assert "no audio stream" in codes["no_audio"] and codes["streams"].startswith("no usable audio")
    assert codes["sampled_frames"] == f"the model saw all {len(frames)} frames of the video"
    assert doc["verdict"]["visual_p_fake"] is not None and doc["verdict"]["audio_p_fake"] is None  # nothing heard


def test_no_face_full_frame_is_used_by_a_localizer_and_reported(localizer, tiny_synth, tmp_path, capsys):
    """A video without a face: by default scored from its audio ("audio only"); with --no-face
    full_frame the whole frame's features are what the model sees (not encoded and then masked),
    the score changes and the report says so."""
    import numpy as np

    from fakelens.io.audio import read_audio
    from fakelens.io.encode import write_video

    meta = json.loads((tiny_synth / "test_metadata.json").read_text())
    fake = tiny_synth / next(m["file"] for m in meta if m["fake_segments"])
    rng = np.random.default_rng(0)
    blank = [np.full((64, 64, 3), 40, np.uint8) + rng.integers(0, 8, (64, 64, 3), dtype=np.uint8) for _ in range(40)]
    noface = tmp_path / "noface.mp4"
    write_video(noface, blank, 25.0, audio=read_audio(fake, sample_rate=16000)[:16000 * 40 // 25])
    docs = {}
    for how in ("error", "full_frame"):
        out = tmp_path / how
        assert main(["detect", str(noface), "--model", str(localizer["loc"]), "--out", str(out), "--json",
                     "--no-face", how, "--no-saliency"]) == 0
        capsys.readouterr()
        docs[how] = json.loads((out / "noface" / "report.json").read_text())
    plain, full = docs["error"]["verdict"], docs["full_frame"]["verdict"]
    assert plain["streams"] == "audio only" and plain["fallback"] is None
    assert plain["visual_p_fake"] is None and plain["audio_p_fake"] is not None  # no face seen
    # (its 1.36 s of audio ends before its 1.6 s of frames: the last steps' audio masked, recorded too)
    assert full["streams"] == "audio-visual" and full["fallback"].split("; ")[0] == "no_face: full frame"
    assert full["p_fake"] != plain["p_fake"]  # the whole frame's features were seen
    codes = {n["code"] for n in docs["full_frame"]["notes"]}
    assert "full_frame_fallback" in codes and "no_visual_branch" not in codes and "streams" not in codes
    assert {n["code"] for n in docs["error"]["notes"]} >= {"streams"}


def test_lavdf_layout_trains_predicts_and_scores_with_lavdf_defaults(tmp_path, capsys):
    """LAV-DF as it ships (metadata.json with fake_periods, dev as validation): features with a
    named backbone, the lavdf recipe (--smoke), predict --format lavdf, evaluate at LAV-DF's
    thresholds; every test video gets proposals inside its duration."""
    data, feats, run, pred = tmp_path / "lavdf", tmp_path / "feats", tmp_path / "run", tmp_path / "prediction.json"
    assert main(["data", "synth", str(data), "--preset", "tiny", "--layout", "lavdf", "--quiet"]) == 0
    assert main(["features", "tinycnn", str(data), "--out", str(feats), "--size", "32", "--detector", "haar",
                 "--no-progress"]) == 0
    assert main(["train", "--config", "configs/lavdf.yaml", "--smoke", "--out", str(run),
                 "--set", f"data.cache={feats}"]) == 0
    assert main(["predict", str(run), str(data), "--split", "test", "--format", "lavdf", "--out", str(pred),
                 "--no-progress"]) == 0
    meta = {m["file"]: m for m in json.loads((data / "metadata.json").read_text())}
    subs = json.loads(pred.read_text())
    assert set(subs) == {f for f, m in meta.items() if m["split"] == "test"}
    for f, rows in subs.items():
        assert 1 <= len(rows) <= 100 and all(0 <= s < e <= meta[f]["duration"] + 1e-6 for _, s, e in rows)
    capsys.readouterr()
    assert main(["evaluate", str(pred), "--labels", str(data), "--split", "test", "--json"]) == 0
    loc = json.loads(capsys.readouterr().out)["localization"]
    assert set(loc["ap"]) == {"0.5", "0.75", "0.95"} and set(loc["ar"]) == {"100", "50", "20", "10"}


def test_robustness_of_a_localizer_gives_ap_at_iou_as_evaluate_does(localizer, tiny_synth, tmp_path, capsys):
    """`fakelens robustness` on a task-2 localizer: AP@IoU 0.5 / 0.75 and AR@10 of its proposals
    under each condition (the clean ones equal `evaluate`'s on its task-2 submission); the attacks
    on face crops, which a localizer over dense features has none of, are refused by name."""
    import csv

    out = tmp_path / "rb"
    args = ["robustness", str(localizer["loc"]), str(tiny_synth), "--split", "test", "--out", str(out),
            "--no-progress"]
    assert main([*args, "--perturb", "blur=3"]) == 0
    assert "AP@0.5" in capsys.readouterr().err  # each condition's line
    with open(out / "robustness.csv", newline="") as f:
        rows = {r["perturbation"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"none", "blur"}
    for r in rows.values():
        assert all(0.0 <= float(r[k]) <= 1.0 for k in ("ap_iou50", "ap_iou75", "ar10")), r
    assert "| AP@0.5 | AP@0.75 | AR@10 |" in (out / "robustness.md").read_text()
    sub = tmp_path / "prediction.json"
    assert main(["predict", str(localizer["loc"]), str(tiny_synth), "--split", "test", "--format", "avdf1m-task2",
                 "--out", str(sub), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(sub), "--labels", str(tiny_synth), "--split", "test", "--json"]) == 0
    loc = json.loads(capsys.readouterr().out)["localization"]
    clean = rows["none"]
    assert float(clean["ap_iou50"]) == pytest.approx(loc["ap"]["0.5"], abs=1e-6)
    assert float(clean["ap_iou75"]) == pytest.approx(loc["ap"]["0.75"], abs=1e-6)
    assert float(clean["ar10"]) == pytest.approx(loc["ar"]["10"], abs=1e-6)
    assert main([*args, "--perturb", "fgsm=2"]) == 2
    assert "perturb face crops" in capsys.readouterr().err


def test_predict_from_stored_features_equals_predict_from_the_media(localizer, tiny_synth, capsys):
    """`predict --features FEATS` reads the dense features `fakelens features` stored (the fixture's
    folder holds every split) instead of decoding the videos again: the same proposals, learned
    boundaries and thresholds alike."""
    root = localizer["root"]
    for extra in ([], ["--proposals", "thresholds"]):
        media, stored = root / "from_media.json", root / "from_features.json"
        assert main(["predict", str(localizer["loc"]), str(tiny_synth), "--split", "test", "--format", "avdf1m-task2",
                     "--out", str(media), "--no-progress", *extra]) == 0
        assert main(["predict", str(localizer["loc"]), str(tiny_synth), "--split", "test", "--format", "avdf1m-task2",
                     "--out", str(stored), "--no-progress", "--features", str(localizer["feats"]), *extra]) == 0
        a, b = json.loads(media.read_text()), json.loads(stored.read_text())
        assert len(a) == 2 and a == b, extra
    capsys.readouterr()


def test_predict_refuses_stored_features_it_cannot_use(localizer, tiny_synth, capsys):
    """Features of another encoder (a backbone name: other weights), of other settings (--fps 5),
    without the videos asked for (another split), or given to a classification run: refused,
    naming both sides, before any video is scored."""
    root = localizer["root"]
    other, sampled, val = root / "feats_other", root / "feats_fps5", root / "feats_val"
    assert main(["features", "tinycnn", str(tiny_synth), "--split", "test", "--size", "32", "--detector", "haar",
                 "--audio", "logmel", "--out", str(other), "--no-progress"]) == 0
    assert main(["features", str(localizer["run"]), str(tiny_synth), "--split", "test", "--fps", "5",
                 "--out", str(sampled), "--no-progress"]) == 0
    assert main(["features", str(localizer["run"]), str(tiny_synth), "--split", "val", "--out", str(val),
                 "--no-progress"]) == 0
    capsys.readouterr()
    theirs = json.loads((localizer["feats"] / "config.json").read_text())["encoder"]["digest"]
    mine = json.loads((other / "config.json").read_text())["encoder"]["digest"]

    def refused(run, feats):
        out = root / "refused.json"
        assert main(["predict", str(run), str(tiny_synth), "--split", "test", "--format", "avdf1m-task2",
                     "--out", str(out), "--no-progress", "--features", str(feats)]) == 2
        assert not out.exists()
        return capsys.readouterr().err

    err = refused(localizer["loc"], other)
    assert "another encoder" in err and mine in err and theirs in err
    err = refused(localizer["loc"], sampled)
    assert "media.sampling 'fps' in the folder, 'all' in the run" in err
    err = refused(localizer["loc"], val)
    assert "no features of 2 of the 2 videos" in err and "--split SPLIT" in err
    err = refused(localizer["run"], localizer["feats"])
    assert "stored dense features serve localizer runs" in err
    err = refused(localizer["loc"], root / "nowhere")
    assert "no such folder" in err


def test_predict_refuses_stored_features_of_a_video_file_changed_since(localizer, tiny_synth, tmp_path, capsys):
    """A copy of the set (the same files, times kept) is predicted from the stored features; a
    video touched but not changed still is (its content hash is the same); one rewritten at the
    same size, or grown, is refused by name, before any video is scored, with the command that
    makes its features again."""
    import os
    import shutil

    from fakelens.data.formats import load_inputs

    data = tmp_path / "tiny"
    shutil.copytree(tiny_synth, data)  # copy2: sizes and modification times kept
    rows = {r["id"]: r for r in read_index(localizer["feats"])}
    out = tmp_path / "pred.json"

    def predict():
        code = main(["predict", str(localizer["loc"]), str(data), "--split", "test", "--format", "avdf1m-task2",
                     "--out", str(out), "--no-progress", "--features", str(localizer["feats"])])
        return code, capsys.readouterr().err

    assert predict()[0] == 0 and len(json.loads(out.read_text())) == 2
    out.unlink()
    recs = load_inputs([str(data)], split="test").records
    assert len(recs) == 2 and all(r.id in rows for r in recs)
    video = Path(recs[0].path)
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched: same bytes, newer time
    assert predict()[0] == 0
    out.unlink()

    raw = bytearray(video.read_bytes())
    raw[-1] ^= 0xFF  # rewritten: same size, another last byte
    video.write_bytes(bytes(raw))
    code, err = predict()
    assert code == 2 and not out.exists()
    assert "1 video file(s) changed since their features were made" in err and recs[0].id in err
    assert recs[1].id not in err and "fakelens features RUN DATA --split SPLIT" in err

    video.write_bytes(bytes(raw) + b"\0" * 16)  # grown
    code, err = predict()
    assert code == 2 and not out.exists() and recs[0].id in err and "changed since" in err


def test_robustness_of_a_localizer_finds_faces_once_for_the_audio_conditions(localizer, tiny_synth, tmp_path,
                                                                               detect_passes):
    """A localizer's audio-only conditions reuse the clean run's face tracks, as a frame model's do:
    one detection pass per video for the clean and audio rows, the same proposals and scores as
    finding the faces again; a pixel perturbation (blur) finds them again."""
    from fakelens.data.formats import load_dataset
    from fakelens.inference.pipeline import Predictor, load_run
    from fakelens.inference.robustness import RobustnessJob

    calls = detect_passes
    records = list(load_dataset(tiny_synth, split="test").records)
    conditions = [("audio_noise", (10.0,)), ("audio_removed", (1.0,))]
    n = len(records)
    pr = Predictor(load_run(localizer["loc"]), device="cpu")
    assert pr.dense
    rows = RobustnessJob(pr, records, tmp_path / "reuse").run(conditions)
    assert len(calls) == n  # once per video, for the three conditions
    calls.clear()
    old = RobustnessJob(Predictor(load_run(localizer["loc"]), device="cpu"), records, tmp_path / "old",
                        reuse_faces=False).run(conditions)
    assert len(calls) == 3 * n
    for a, b in zip(rows, old):
        assert (a.perturbation, a.auc, a.ap_iou50, a.ap_iou75, a.ar10) == \
               (b.perturbation, b.auc, b.ap_iou50, b.ap_iou75, b.ar10)
    for name in ("none", "audio_noise@10", "audio_removed@1"):
        new_s = json.loads((tmp_path / "reuse" / "conditions" / f"{name}.json").read_text())["scores"]
        old_s = json.loads((tmp_path / "old" / "conditions" / f"{name}.json").read_text())["scores"]
        assert new_s == old_s, name
    calls.clear()
    RobustnessJob(pr, records, tmp_path / "reuse").run([("blur", (2.0,))])
    assert len(calls) == n  # blur moves the pixels: found again


def test_features_of_an_older_fakelens_are_refused_where_their_frames_differ(localizer, tiny_synth, tmp_path,
                                                                                capsys):
    """Features version 1 took a --fps grid's frame at each step's start (version 2: its middle
    frame). A folder of version 1 is refused by predict --features, naming what changed; a
    localizer trained on version 1 features of every frame (the same frames in both) still
    predicts, one trained on a --fps grid of them is refused."""
    import shutil

    import torch

    from fakelens.inference.runs import resolve_checkpoint

    out = tmp_path / "pred.json"

    def predict(run, *extra):
        code = main(["predict", str(run), str(tiny_synth), "--split", "test", "--format", "avdf1m-task2",
                     "--out", str(out), "--no-progress", *extra])
        return code, capsys.readouterr().err

    old = tmp_path / "feats_v1"
    shutil.copytree(localizer["feats"], old)
    cfg = json.loads((old / "config.json").read_text())
    cfg["version"] = 1
    (old / "config.json").write_text(json.dumps(cfg))
    code, err = predict(localizer["loc"], "--features", str(old))
    assert code == 2 and not out.exists()
    assert "features made by an older fakelens (features version 1" in err and "step's middle frame" in err

    def run_of(version, **media):
        run = tmp_path / f"loc_v{version}_{'_'.join(media) or 'all'}"
        shutil.copytree(localizer["loc"], run)
        path = resolve_checkpoint(run)
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
        ckpt["hyper_parameters"]["cache_config"]["version"] = version
        ckpt["hyper_parameters"]["cache_config"]["media"].update(media)
        torch.save(ckpt, path)
        return run

    assert predict(run_of(1), "--features", str(localizer["feats"]))[0] == 0  # every frame: the same frames
    out.unlink()
    code, err = predict(run_of(1, sampling="fps", sample_fps=5.0))
    assert code == 2 and not out.exists()
    assert "a localizer trained on features made by an older fakelens (features version 1" in err
    assert "train it again" in err


def test_a_localizers_video_score_is_its_highest_step_score_and_other_aggregations_are_refused(
        localizer, tiny_synth, capsys):
    """Task 1 from a localizer: each video's score is the maximum of its per-step scores, and the
    predict table says so; `--aggregate mean` or `--level clips` were ignored (the score stayed the
    maximum while the table said 'mean over frames'): they are refused, naming what is done."""
    root = localizer["root"]
    out, preds = root / "task1.txt", root / "task1_predictions.json"
    base = ["predict", str(localizer["loc"]), str(tiny_synth), "--split", "test", "--format", "avdf1m-task1",
            "--features", str(localizer["feats"]), "--out", str(out), "--no-progress"]
    capsys.readouterr()
    assert main([*base, "--predictions", str(preds)]) == 0
    assert "max over steps" in capsys.readouterr().out
    scores = dict(line.split(";") for line in out.read_text().split())
    rows = json.loads(preds.read_text())
    assert len(rows) == 2 and all(float(scores[p["id"]]) == p["score"] == max(p["frame_scores"]) for p in rows)
    for extra, named in ((["--aggregate", "mean"], "aggregation 'mean'"), (["--level", "clips"], "level 'clips'")):
        assert main([*base, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert "a localizer's video score is the maximum of its per-step scores" in err and named in err, err


def test_robustness_of_a_localizer_scores_again_when_the_fake_segments_change(localizer, tiny_synth, tmp_path):
    """A localization run's saved rows hold AP@IoU / AR against the fake segments of that time: the
    same videos, labels and files with corrected segments are scored again (they were 'done by an
    earlier run', with the old segments' AP)."""
    import dataclasses

    from fakelens.data.formats import load_dataset
    from fakelens.inference.pipeline import Predictor, load_run
    from fakelens.inference.robustness import RobustnessJob
    from fakelens.types import Segment

    records = list(load_dataset(tiny_synth, split="test").records)
    fake = next(i for i, r in enumerate(records) if r.segments)
    pr = Predictor(load_run(localizer["loc"]), device="cpu")
    said: list[str] = []
    first = RobustnessJob(pr, records, tmp_path / "out", log=said.append).run([])
    RobustnessJob(pr, records, tmp_path / "out", log=said.append).run([])
    assert sum("done by an earlier run" in line for line in said) == 1  # the same segments: reused
    moved = list(records)
    end = max(g.end for g in records[fake].segments)
    moved[fake] = dataclasses.replace(records[fake], segments=(Segment(end + 0.05, end + 0.1),))  # nothing proposed there
    said.clear()
    again = RobustnessJob(pr, moved, tmp_path / "out", log=said.append).run([])
    assert not any("done by an earlier run" in line for line in said), said
    fresh = RobustnessJob(pr, moved, tmp_path / "fresh").run([])
    assert (again[0].ap_iou50, again[0].ar10) == (fresh[0].ap_iou50, fresh[0].ar10)
    assert again[0].auc == first[0].auc  # the same scores; only what they are measured against moved


def test_a_localizers_steps_after_the_audio_tracks_end_are_recorded(localizer, tiny_synth, tmp_path):
    """A test video with its audio cut to its first 0.5 s: the localizer's later steps have their audio
    masked out, and the prediction and the report say so (it said 'audio-visual' with no fallback);
    the whole video records nothing."""
    from fakelens.inference.evidence import Analyser
    from fakelens.inference.pipeline import AUDIO_ENDS_FALLBACK, Predictor, load_run
    from fakelens.io.audio import read_audio
    from fakelens.io.encode import write_video
    from fakelens.io.video import iter_frames, probe
    from fakelens.types import Label, VideoRecord

    src = sorted((tiny_synth / "test").glob("*.mp4"))[0]
    info = probe(src)
    audio = read_audio(src, 16_000)
    assert len(audio) / 16_000 >= info.duration - 0.01  # the source's track is whole
    cut = write_video(tmp_path / "cut.mp4", [rgb for _, rgb in iter_frames(src)], info.fps, audio=audio[:8000],
                      sample_rate=16_000)
    pr = Predictor(load_run(localizer["loc"]), device="cpu")
    assert pr.dense
    res = pr.predict([VideoRecord(id=p.name, path=p, label=Label.REAL) for p in (cut, src)])
    assert not res.failures, res.failures
    short, whole = res.predictions
    assert short.streams == "audio-visual"
    said = next(f for f in (short.fallback or "").split("; ") if f.startswith(AUDIO_ENDS_FALLBACK + ":"))
    assert f"of the {info.duration:.2f}-s video" in said, said
    assert 0.4 <= short.extras["audio_seconds"] <= 0.7 and short.extras["steps_without_audio"] >= 10
    assert AUDIO_ENDS_FALLBACK not in (whole.fallback or "") and "steps_without_audio" not in whole.extras
    ev = Analyser(pr, saliency=False).analyse(cut)  # detect's report says it too
    assert any(n.code == "fallback" and AUDIO_ENDS_FALLBACK in n.message for n in ev.notes), ev.notes
