"""fakelens.report renders what it is given: a hand-built Evidence (two faces, audio, segments,
notes) becomes a report.json that validates against the schema, two PNGs and a self-contained
page showing every face; a failed video gets a report saying why; the schema check can fail."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import numpy as np
import pytest

from fakelens.inference.evidence import Crop, Evidence, Note, Span, display_segments
from fakelens.report import render, write_report
from fakelens.report.document import load_schema, validate_report
from fakelens.types import FaceScore, Prediction, Proposal

pytest.importorskip("jsonschema")


def _png_size(data: bytes) -> tuple[int, int]:
    from PIL import Image

    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def _evidence(n_faces: int = 2, name: str = "clip.mp4") -> Evidence:
    rng = np.random.default_rng(0)
    times = np.linspace(0.1, 3.9, 20)  # (T,)
    faces = []
    for f in range(n_faces):
        scores = np.clip(0.1 + 0.8 * ((times > 1.0) & (times < 2.0)) * (f == 1) + 0.02 * f, 0, 1)  # (T,)
        faces.append(FaceScore(index=f, score=float(scores.max()), frame_times=times, frame_scores=scores,
                               boxes=np.tile(np.array([10 + 40 * f, 10, 40 + 40 * f, 50], np.float32), (20, 1)),
                               detection=0.99 - 0.1 * f))
    audio_t = np.arange(0.05, 4.0, 0.08)
    audio_s = np.where((audio_t > 2.5) & (audio_t < 3.0), 0.9, 0.05)
    pred = Prediction(id=name, score=0.9, proposals=(Proposal(0.9, 1.0, 2.0), Proposal(0.6, 1.2, 1.8),
                                                     Proposal(0.55, 2.5, 3.0), Proposal(0.2, 3.2, 3.5)),
                      frame_times=times, frame_scores=faces[-1].frame_scores, audio_times=audio_t,
                      audio_scores=audio_s, extras={"clips": 5.0, "visual_score": 0.8, "audio_score": 0.4},
                      faces=tuple(faces), face_aggregate="max", streams="audio-visual")
    found = np.ones((n_faces, 20), bool)
    found[0, 3:5] = False
    crops = []
    for f in range(n_faces):
        for kind, i in (("most suspicious", 12), ("least suspicious", 0)):
            crops.append(Crop(face=f, kind=kind, time=float(times[i]), position=i,
                              score=float(faces[f].frame_scores[i]),
                              image=rng.integers(0, 255, (32, 32, 3), dtype=np.uint8), box=(1.0, 2.0, 30.0, 31.0),
                              saliency=rng.random((32, 32)).astype(np.float32), saliency_peak=0.3))
    mel_times = np.arange(400) * 0.01
    return Evidence(
        name=name, status="ok", path="/videos/" + name, prediction=pred,
        media={"duration": 4.0, "fps": 25.0, "n_frames": 100, "width": 96, "height": 64, "rotation": 0,
               "codec": "h264", "has_audio": True, "audio_rate": 16000, "size_bytes": 12345},
        sampled_times=times, face_found=found, faces=faces, crops=crops,
        mel=rng.normal(size=(80, 400)).astype(np.float32), mel_times=mel_times, audio_span=Span(2.5, 3.0, 0.9),
        segments=display_segments(pred.proposals, 0.5), top_proposal=pred.proposals[0], threshold=0.5,
        notes=[Note("no_face_frames", "warning", "no face found in 2 of 20 sampled frames"),
               Note("sampled_frames", "info", "the model saw 20 sampled frames")],
        model={"checkpoint": "run/checkpoints/best.ckpt", "name": "av_tiny", "inputs": ["video", "audio"],
               "aggregate": "max", "level": "clips"},
        settings={"threshold": 0.5}, saliency={"method": "Grad-CAM", "layer": "visual.backbone.layer1", "target": "t"},
        timings={"total": 1.5, "model": 0.2})


def test_display_segments_keep_confident_non_overlapping_proposals_in_time_order():
    props = (Proposal(0.55, 2.5, 3.0), Proposal(0.9, 1.0, 2.0), Proposal(0.6, 1.2, 1.8), Proposal(0.2, 3.2, 3.5),
             Proposal(0.7, 2.0, 2.4))
    segs = display_segments(props, 0.5)
    assert [(s.start, s.end) for s in segs] == [(1.0, 2.0), (2.0, 2.4), (2.5, 3.0)]  # touching is not overlapping
    assert display_segments(props, 0.95) == []


def test_a_prediction_with_two_faces_renders_every_face(tmp_path):
    ev = _evidence(n_faces=2)
    rendered = render(ev)
    doc = rendered.document
    validate_report(doc)
    assert [f["index"] for f in doc["faces"]] == [0, 1] and doc["face_aggregate"] == "max"
    assert len(doc["crops"]) == 4 and {c["face"] for c in doc["crops"]} == {0, 1}
    assert doc["verdict"] == {"label": "fake", "p_fake": 0.9, "threshold": 0.5,
                              "aggregate": "max of 2 faces' scores: face 1 decided (0.920; face 0: 0.100); "
                                           "each face's score: max over clips of its own frames",
                              "visual_p_fake": 0.8, "audio_p_fake": 0.4, "heads_aggregate": "max over clips",
                              "streams": "audio-visual", "fallback": None}
    assert [(s["start"], s["end"]) for s in doc["segments"]] == [(1.0, 2.0), (2.5, 3.0)]
    assert len(doc["proposals"]) == 4
    assert doc["sampled_frames"]["face_found"][0][3] is False
    assert doc["audio"]["most_suspicious_span"] == {"start": 2.5, "end": 3.0, "confidence": 0.9}
    # one row of crops per face: two faces draw a taller crops.png than one
    w2, h2 = _png_size(rendered.images["crops.png"])
    _, h1 = _png_size(render(_evidence(n_faces=1)).images["crops.png"])
    assert h2 > h1 and w2 == 1000
    _png_size(rendered.images["timeline.png"])
    page = rendered.html
    assert page.count("<tr><td>") >= 2 + 2  # two segment rows and two face rows
    assert re.search(r"<td>1</td><td>0\.920</td>", page)  # face 1's row with its score
    files = write_report(rendered, tmp_path / "clip")
    assert sorted(p.name for p in files.values()) == ["crops.png", "report.html", "report.json", "timeline.png"]
    validate_report(json.loads((tmp_path / "clip" / "report.json").read_text()))


def test_the_page_is_self_contained_and_escapes_what_it_shows():
    ev = _evidence(name='<img src=x onerror="alert(1)">.mp4')
    ev.notes.append(Note("fallback", "warning", "<script>alert(2)</script>"))
    page = render(ev).html
    assert "<script" not in page and "onerror=\"alert" not in page
    assert "&lt;img src=x" in page and "&lt;script&gt;" in page
    refs = re.findall(r'(?:src|href)="([^"]*)"', page)
    assert refs and all(r.startswith("data:image/png;base64,") for r in refs)
    assert "http://" not in page and "https://" not in page


def test_a_failed_video_gets_a_report_saying_why(tmp_path):
    out = tmp_path / "bad"
    write_report(render(_evidence()), out)  # an older, successful report in the same folder
    ev = Evidence(name="bad.mp4", status="failed", error="bad.mp4: not a media file FFmpeg can read",
                  path="bad.mp4", model={"checkpoint": "c", "name": "av_tiny", "inputs": ["video", "audio"]},
                  settings={"threshold": 0.5}, timings={"total": 0.01})
    rendered = render(ev)
    validate_report(rendered.document)
    assert rendered.document["verdict"]["label"] is None and rendered.document["verdict"]["p_fake"] is None
    files = write_report(rendered, out)
    assert sorted(files) == ["report.html", "report.json"]
    assert not (out / "timeline.png").exists() and not (out / "crops.png").exists()  # no stale evidence left
    page = (out / "report.html").read_text()
    assert "NOT ANALYSED" in page and "not a media file FFmpeg can read" in page


def test_the_schema_check_rejects_broken_documents():
    from fakelens.errors import FormatError

    doc = render(_evidence()).document
    bad = json.loads(json.dumps(doc))
    bad["verdict"]["p_fake"] = 1.5
    with pytest.raises(FormatError, match="verdict/p_fake"):
        validate_report(bad)
    bad = json.loads(json.dumps(doc))
    del bad["segments"]
    with pytest.raises(FormatError, match="segments"):
        validate_report(bad)
    bad = json.loads(json.dumps(doc))
    bad["notes"].append({"code": "made_up", "level": "warning", "message": "x"})
    with pytest.raises(FormatError):
        validate_report(bad)
    assert load_schema()["$id"] == doc["schema"]


def test_report_folders_never_collide_or_escape_the_output(tmp_path):
    from fakelens.cli.detect import find_videos, report_dirs
    from fakelens.errors import FakelensError

    out = tmp_path / "out"
    dirs = report_dirs([tmp_path / "a" / "clip.mp4", tmp_path / "b" / "clip.mp4", tmp_path / "..mp4",
                        tmp_path / "clip.mov"], out)
    assert [d.name for d in dirs] == ["clip", "clip-2", "video", "clip-3"]
    assert all(d.parent == out for d in dirs)
    (tmp_path / "in" / "x").mkdir(parents=True)
    (tmp_path / "in" / "x" / "B.MP4").write_bytes(b"")
    (tmp_path / "in" / "a.mkv").write_bytes(b"")
    (tmp_path / "in" / "readme.txt").write_text("")
    assert [p.name for p in find_videos([str(tmp_path / "in")])] == ["a.mkv", "B.MP4"]
    with pytest.raises(FakelensError, match="no such file"):
        find_videos([str(tmp_path / "missing.mp4")])
    (tmp_path / "empty").mkdir()
    with pytest.raises(FakelensError, match="no video files"):
        find_videos([str(tmp_path / "empty")])


def test_audio_never_heard_is_blank_on_the_timeline_greyed_and_stated():
    """Review of issue 12, item 1: the audio line may not bridge audio the model did not score, the
    report says how much of the track was heard, and the log-mel greys the rest."""
    from types import SimpleNamespace

    from fakelens.inference.evidence import Analyser
    from fakelens.inference.pipeline import heard_spans
    from fakelens.report.plots import audio_line, unheard

    def clip(t0, n, width=10, hop=0.01):  # a clip's audio window: n valid columns of `width`
        return {"audio_times": t0 + hop * np.arange(width), "audio_mask": np.arange(width) < n}

    heard = heard_spans([clip(2.0, 10), clip(0.0, 10), clip(0.1, 5), clip(1.0, 0)])
    assert heard == [(0.0, pytest.approx(0.15)), (2.0, pytest.approx(2.1))]
    ev = _evidence(n_faces=1)
    ev.audio_heard = [(0.0, 1.0), (2.5, 3.2)]
    t, y = audio_line(ev.prediction.audio_times, ev.prediction.audio_scores, ev.audio_heard, 4.0)
    finite = np.isfinite(t)
    assert np.isnan(t).any() and not ((t[finite] > 1.0 + 1e-9) & (t[finite] < 2.5 - 1e-9)).any()
    assert t[finite].max() <= 3.2 + 1e-9  # nothing drawn after the last heard moment
    assert unheard(ev.audio_heard, 0.0, 4.0) == [(1.0, 2.5), (3.2, 4.0)]
    notes = Analyser._coverage(ev, SimpleNamespace(mel_times=ev.mel_times))
    assert [n.code for n in notes] == ["audio_coverage"] and notes[0].level == "warning"
    assert "heard 1.70 s of the 4.00 s" in notes[0].message and "1.00-2.50, 3.20-4.00 s" in notes[0].message
    ev.notes += notes
    doc = render(ev).document
    validate_report(doc)
    assert doc["audio"]["heard"] == [[0.0, 1.0], [2.5, 3.2]]
    ev.audio_heard = [(0.0, 4.0)]  # all heard: nothing to say
    assert Analyser._coverage(ev, SimpleNamespace(mel_times=ev.mel_times)) == []


def test_audio_resampled_into_the_window_is_stated_not_called_heard():
    """Clips longer than the model's audio window had their audio resampled into it (one column
    every 50 ms of a 10-ms-hop track): the coverage note says what the windows spanned, not what
    was heard, and a note says the audio was resampled and how much of it reached the model."""
    from types import SimpleNamespace

    from fakelens.inference.evidence import Analyser

    ev = _evidence(n_faces=1)
    ev.audio_heard = [(0.0, 1.0), (2.5, 3.2)]
    ev.audio_column = 0.05
    notes = Analyser._coverage(ev, SimpleNamespace(mel_times=ev.mel_times))
    assert [n.code for n in notes] == ["audio_coverage", "audio_resampled"]
    assert "windows spanned 1.70 s of the 4.00 s" in notes[0].message and "heard 1.70" not in notes[0].message
    assert notes[1].level == "warning" and "every 50 ms instead of every 10 ms" in notes[1].message
    assert "about 20% of the mel frames" in notes[1].message
    ev.notes += notes
    doc = render(ev).document
    validate_report(doc)  # the schema knows the code
    assert doc["audio"]["column_seconds"] == pytest.approx(0.05)
    assert "audio_resampled" in load_schema()["properties"]["notes"]["description"]
    ev.audio_heard = [(0.0, 4.0)]  # every moment spanned: the resampling is still said
    assert [n.code for n in Analyser._coverage(ev, SimpleNamespace(mel_times=ev.mel_times))] == ["audio_resampled"]
    ev.audio_column = 0.01  # the windows hold the mel frames as they are: heard, nothing to say
    assert Analyser._coverage(ev, SimpleNamespace(mel_times=ev.mel_times)) == []


def test_saliency_overlay_stays_in_the_displayable_range():
    """Review item 9: a white crop under a saturated map passed 1.0 (matplotlib warned and clipped)."""
    from fakelens.report.plots import _overlay

    rng = np.random.default_rng(0)
    sal = rng.random((64, 64)).astype(np.float32)
    out = _overlay(np.full((64, 64, 3), 255, np.uint8), sal)
    assert out.min() >= 0.0 and out.max() <= 1.0


def test_a_track_found_but_not_scored_is_shown_marked_and_renders(recwarn):
    """Review item 2: a second track without a score still gets its crop (marked not scored, no
    score in report.json) and its own no-face markers on the timeline."""
    ev = _evidence(n_faces=1)
    ev.face_found = np.ones((2, 20), bool)
    ev.face_found[1, 10:] = False  # the second person leaves
    ev.crops.append(Crop(face=1, kind="not scored", time=0.5, position=2, score=None,
                         image=np.zeros((32, 32, 3), np.uint8), box=(1.0, 2.0, 30.0, 31.0)))
    rendered = render(ev)
    validate_report(rendered.document)
    assert rendered.document["crops"][-1] == {"face": 1, "kind": "not scored", "time": 0.5, "score": None,
                                              "box": [1.0, 2.0, 30.0, 31.0], "saliency_peak": None}
    assert not [w for w in recwarn if "Clipping input data" in str(w.message)]


def test_the_verdict_says_how_several_faces_made_the_score(capsys):
    """With two faces the verdict read "max over clips" (report.json, the page, detect's panel,
    predict's table), as if one face had been scored; it names the face aggregation, how many
    faces, and the face that decided. One face: unchanged."""
    from rich.console import Console

    from fakelens.cli.detect import _print_one
    from fakelens.cli.predict import _print_scores
    from fakelens.inference.pipeline import PredictResult
    from fakelens.report.document import faces_text

    ev = _evidence(n_faces=2)
    rendered = render(ev)
    said = "max of 2 faces' scores: face 1 decided (0.920; face 0: 0.100)"
    assert rendered.document["verdict"]["aggregate"].startswith(said)
    assert said.replace("'", "&#x27;") in rendered.html
    console = Console(record=True, width=400)
    _print_one(console, ev, Path("reports/clip"))
    assert said in console.export_text()
    one = render(_evidence(n_faces=1)).document["verdict"]["aggregate"]
    assert one == "max over clips"
    faces = ev.prediction.faces
    assert faces_text(faces, "main") == ("the main face's score: face 0 decided (0.100) of 2 faces scored "
                                         "(face 1: 0.920)")
    assert faces_text(faces, "mean") == "mean of 2 faces' scores (face 1: 0.920, face 0: 0.100)"
    assert "on 20 frames" in faces_text(faces, "frames_weighted")
    assert faces_text(faces[:1], "max") is None
    _print_scores(PredictResult(predictions=[ev.prediction]), as_json=False)
    assert "face 1 decided" in capsys.readouterr().out
    # a frame-level run: "each face's score: max over its own frames" (read "over frames of its own frames")
    ev.model["level"] = "frames"
    assert render(ev).document["verdict"]["aggregate"].endswith("; each face's score: max over its own frames")


def test_the_faces_table_says_when_each_face_was_scored():
    """The report's faces table gave each face's frame count and first box but not when it was seen:
    a face present for part of the video showed as if scored throughout."""
    import dataclasses

    ev = _evidence(n_faces=2)
    late = ev.faces[1]
    ev.faces[1] = dataclasses.replace(late, frame_times=late.frame_times[10:], frame_scores=late.frame_scores[10:],
                                      boxes=late.boxes[10:])
    html = render(ev).html
    assert "<th>seen (s)</th>" in html
    assert "<td>0.10-3.90</td>" in html and f"<td>{ev.faces[1].frame_times[0]:.2f}-3.90</td>" in html
