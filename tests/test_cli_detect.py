"""`fakelens detect` as a user runs it, with a small model trained from scratch (conftest
`detect_run`): the held-out fake gets the higher verdict and a segment on its true fake span,
every file is written and report.json validates; folders, bad videos, bad checkpoints; and
footage that looks real (a 1080p portrait clip without audio, a rotated phone clip)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from fakelens.cli.main import main
from fakelens.report import REPORT_FILES
from fakelens.report.document import validate_report

pytestmark = pytest.mark.slow
pytest.importorskip("jsonschema")


def _test_pair(data):
    """(fake path, real path, the fake's segments) of the tiny preset's test split."""
    meta = json.loads((data / "test_metadata.json").read_text())
    fake = next(m for m in meta if m["fake_segments"])
    real = next(m for m in meta if m["file"] == fake["original"])
    return data / fake["file"], data / real["file"], fake["fake_segments"]


def _report(folder):
    doc = json.loads((folder / "report.json").read_text())
    validate_report(doc)
    return doc


def test_detect_ranks_the_fake_above_the_real_and_finds_its_segment(detect_run, tmp_path, capsys):
    fake, real, truth = _test_pair(detect_run["data"])
    out = tmp_path / "reports"
    assert main(["detect", str(fake), str(real), "--model", str(detect_run["run"]), "--out", str(out),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["videos"] == 2 and summary["failed"] == 0
    docs = {}
    for video in (fake, real):
        folder = out / video.stem
        assert sorted(p.name for p in folder.iterdir()) == sorted(REPORT_FILES)
        docs[video] = _report(folder)
    f, r = docs[fake], docs[real]
    assert f["verdict"]["p_fake"] > r["verdict"]["p_fake"]
    assert f["verdict"]["label"] == "fake"
    top = max(f["segments"] or [f["top_proposal"]], key=lambda s: s["confidence"])
    assert any(min(top["end"], e) > max(top["start"], s) for s, e in truth), (top, truth)
    # every number is there: per-frame and per-step scores with times, faces found, model, timings
    assert len(f["frames"]["times"]) == len(f["frames"]["scores"]) == 12
    assert len(f["audio"]["times"]) == len(f["audio"]["scores"]) > 0
    assert len(f["sampled_frames"]["face_found"][0]) == 12
    assert f["verdict"]["visual_p_fake"] is not None and f["verdict"]["audio_p_fake"] is not None
    assert f["model"]["name"] == "av_tiny" and f["model"]["checkpoint"].endswith(".ckpt")
    assert f["timings"]["total"] > 0 and f["fakelens_version"]
    assert {c["kind"] for c in f["crops"]} == {"most suspicious", "least suspicious"}
    assert f["saliency"]["method"].startswith("Grad-CAM")
    # the page is one self-contained file with both pictures embedded
    page = (out / fake.stem / "report.html").read_text()
    assert len(re.findall(r'src="data:image/png;base64,', page)) == 2 and "http" not in page
    # the same numbers as `fakelens predict` (one pipeline)
    preds = tmp_path / "predictions.json"
    assert main(["predict", str(detect_run["run"]), str(detect_run["data"]), "--split", "test", "--format",
                 "avdf1m-task1", "--out", str(tmp_path / "p.txt"), "--predictions", str(preds), "--json"]) == 0
    capsys.readouterr()
    by_id = {p["id"]: p for p in json.loads(preds.read_text())}
    assert by_id[f"test/{fake.name}"]["score"] == pytest.approx(f["verdict"]["p_fake"], abs=1e-6)
    assert by_id[f"test/{real.name}"]["score"] == pytest.approx(r["verdict"]["p_fake"], abs=1e-6)


def test_a_folder_and_a_bad_video_the_others_still_get_their_reports(detect_run, tmp_path, capsys):
    folder = tmp_path / "in"
    (folder / "a").mkdir(parents=True)
    (folder / "b").mkdir()
    fake, real, _ = _test_pair(detect_run["data"])
    (folder / "a" / "clip.mp4").write_bytes(fake.read_bytes())
    (folder / "b" / "clip.mp4").write_bytes(real.read_bytes())  # same stem: its own folder
    (folder / "b" / "broken.mp4").write_bytes(fake.read_bytes()[:3000])
    (folder / "notes.txt").write_text("not a video")
    out = tmp_path / "out"
    assert main(["detect", str(folder), "--model", str(detect_run["run"]), "--out", str(out), "--no-saliency"]) == 1
    text = capsys.readouterr().out
    assert "1 of 3 videos could not be analysed" in text and "broken.mp4" in text
    assert sorted(p.name for p in out.iterdir()) == ["broken", "clip", "clip-2"]
    assert _report(out / "clip")["status"] == "ok" and _report(out / "clip-2")["status"] == "ok"
    bad = _report(out / "broken")
    assert bad["status"] == "failed" and "truncated or corrupt" in bad["error"]
    assert "NOT ANALYSED" in (out / "broken" / "report.html").read_text()


def test_a_file_that_is_not_a_fakelens_checkpoint_is_a_clear_error(detect_run, tmp_path, capsys):
    import torch

    fake, _, _ = _test_pair(detect_run["data"])
    garbage = tmp_path / "garbage.ckpt"
    garbage.write_bytes(b"PK\x03\x04 definitely not a checkpoint")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"state_dict": {"w": torch.zeros(1)}}, foreign)
    for path, message in ((garbage, "not a fakelens checkpoint, or a damaged one"), (foreign, "not a fakelens checkpoint"),
                          (tmp_path / "nowhere", "no such run folder or checkpoint")):
        assert main(["detect", str(fake), "--model", str(path), "--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert message in err and str(path) in err and "Traceback" not in err
    # a run folder and its checkpoint file give the same verdict
    a, b = tmp_path / "a", tmp_path / "b"
    assert main(["detect", str(fake), "--model", str(detect_run["run"]), "--out", str(a), "--no-saliency"]) == 0
    assert main(["detect", str(fake), "--model", str(detect_run["run"] / "checkpoints" / "best.ckpt"),
                 "--out", str(b), "--no-saliency"]) == 0
    out = capsys.readouterr().out
    assert "P(fake)" in out and "report:" in out
    assert _report(a / fake.stem)["verdict"]["p_fake"] == _report(b / fake.stem)["verdict"]["p_fake"]


def _phone_footage(src, tmp_path):
    """From a synthetic talking head: a 1080x1920 portrait clip without audio (the face enlarged on
    a plain backdrop) and a 96x96 clip stored rotated by 90 degrees with its audio, as phones do."""
    from fakelens.io.audio import read_audio
    from fakelens.io.encode import write_video
    from fakelens.io.video import probe, read_frames

    import cv2

    info = probe(src)
    frames = read_frames(src, n=info.n_frames).frames  # (N, 96, 96, 3)
    portrait = []
    for fr in frames:
        canvas = np.full((1920, 1080, 3), 60, np.uint8)
        canvas[700:1240, 270:810] = cv2.resize(fr, (540, 540), interpolation=cv2.INTER_LINEAR)
        portrait.append(canvas)
    tall = write_video(tmp_path / "portrait_1080p.mp4", portrait, info.fps, codec="h264")
    stored = [np.ascontiguousarray(np.rot90(fr, k=1)) for fr in frames]  # displayed after a 90 deg turn
    rotated = write_video(tmp_path / "rotated.mp4", stored, info.fps, audio=read_audio(src), codec="h264",
                          rotation=90)
    return tall, rotated


def test_real_looking_footage_gets_an_honest_report(detect_run, tmp_path, capsys):
    fake, real, _ = _test_pair(detect_run["data"])
    tall, rotated = _phone_footage(real, tmp_path)
    out = tmp_path / "out"
    code = main(["detect", str(tall), str(rotated), "--model", str(detect_run["run"]), "--out", str(out), "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["failed"] == 0
    # the audio-visual model (modality dropout) scores a clip without audio from its visual head: said
    doc = _report(out / "portrait_1080p")
    assert doc["status"] == "ok" and doc["verdict"]["streams"] == "visual only"
    assert any(n["code"] == "streams" and "visual stream alone" in n["message"] for n in doc["notes"])
    assert doc["video"]["media"]["width"] == 1080 and doc["video"]["media"]["height"] == 1920
    assert doc["verdict"]["p_fake"] is not None
    # the rotated clip is analysed upright, the same as the original it was made from
    rot = _report(out / "rotated")
    assert rot["status"] == "ok" and rot["video"]["media"]["rotation"] == 90
    assert all(rot["sampled_frames"]["face_found"][0])
    ref = tmp_path / "ref"
    assert main(["detect", str(real), "--model", str(detect_run["run"]), "--out", str(ref), "--json"]) == 0
    capsys.readouterr()
    orig = _report(ref / real.stem)
    assert rot["verdict"]["p_fake"] == pytest.approx(orig["verdict"]["p_fake"], abs=0.1)


def test_an_unwritable_out_fails_before_any_work_naming_the_folder(tmp_path, capsys):
    """Review of issue 12, item 4: --out under a file was a NotADirectoryError traceback after the
    first video; now an OutputError naming the folder, before the model is even loaded."""
    from fakelens.io.encode import write_video

    video = write_video(tmp_path / "v.mp4", [np.full((32, 32, 3), 90, np.uint8)] * 4, 4.0, codec="h264")
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    rc = main(["detect", str(video), "--model", str(tmp_path / "no-such-run"), "--out", str(blocker / "reports")])
    err = capsys.readouterr().err
    assert rc == 2 and str(blocker / "reports") in err and "Traceback" not in err
    assert "no such run" not in err  # refused before the model was looked at


def test_detect_finds_videos_as_every_other_command_does(tmp_path):
    """Review item 7: one finder (fakelens.data.formats.base.find_videos): AppleDouble files and
    hidden folders skipped, a video without an extension found by probing."""
    from fakelens.cli.detect import find_videos
    from fakelens.data.formats.base import find_videos as base_find
    from fakelens.io.encode import write_video

    frames = [np.full((32, 32, 3), 90 + i, np.uint8) for i in range(4)]
    write_video(tmp_path / "a.mp4", frames, 4.0, codec="h264")
    (tmp_path / "._a.mp4").write_bytes(b"\x00\x05\x16\x07 AppleDouble resource fork")
    (tmp_path / ".cache").mkdir()
    write_video(tmp_path / ".cache" / "b.mp4", frames, 4.0, codec="h264")
    plain = write_video(tmp_path / "c.mp4", frames, 4.0, codec="h264")
    plain.rename(tmp_path / "c_noext")
    (tmp_path / "notes.txt").write_text("not a video")
    found = find_videos([str(tmp_path)])
    assert [p.name for p in found] == ["a.mp4", "c_noext"] and found == base_find(tmp_path)
