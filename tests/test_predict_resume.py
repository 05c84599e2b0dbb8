"""`fakelens predict` is resumable: each scored video is journaled beside the submission, a run
killed with SIGKILL at several points and started again ends with the same submission (and
--predictions file) as an uninterrupted run, scoring only what was not finished; the journal
drops a line cut by the kill, sets aside a journal of another checkpoint or other settings,
scores a changed video again, and is removed once the submission is written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fakelens.cli.main import main
from fakelens.inference.journal import PredictJournal, journal_path, prediction_from_dict, prediction_to_dict
from fakelens.types import FaceScore, Label, Prediction, Proposal, VideoRecord


def _prediction(i: int = 0) -> Prediction:
    t = np.linspace(0, 1, 5)
    return Prediction(id=f"v{i}.mp4", score=0.1 + i / 10, proposals=(Proposal(0.9, 0.0, 0.5), Proposal(0.2, 0.5, 1.0)),
                      frame_times=t, frame_scores=np.float32([0.1, 0.2, 0.3, 0.4, 1 / 3]), audio_times=None,
                      audio_scores=np.zeros(0, np.float32), fallback=None, extras={"clips": 2.0},
                      faces=(FaceScore(0, 0.5, t, np.float32([0.1] * 5), np.ones((5, 4), np.float32), 0.99),),
                      face_aggregate="max", streams="audio-visual")


def _same(a: Prediction, b: Prediction) -> None:
    assert a.id == b.id and a.score == b.score and a.proposals == b.proposals and a.extras == b.extras
    for k in ("frame_times", "frame_scores", "audio_times", "audio_scores"):
        x, y = getattr(a, k), getattr(b, k)
        assert (x is None and y is None) or (x.dtype == y.dtype and np.array_equal(x, y))
    assert [f.index for f in a.faces] == [f.index for f in b.faces]
    np.testing.assert_array_equal(a.faces[0].boxes, b.faces[0].boxes)
    assert (a.fallback, a.face_aggregate, a.streams) == (b.fallback, b.face_aggregate, b.streams)


def test_predictions_round_trip_exactly():
    p = _prediction()
    _same(prediction_from_dict(json.loads(json.dumps(prediction_to_dict(p)))), p)


def test_journal_resumes_drops_a_torn_line_and_refuses_other_settings(tmp_path):
    videos = []
    for i in range(3):
        v = tmp_path / f"v{i}.mp4"
        v.write_bytes(b"x" * (i + 1))
        videos.append(VideoRecord(id=v.name, path=v, label=Label.UNKNOWN))
    out = tmp_path / "prediction.txt"
    j = PredictJournal.open(out, {"checkpoint": "a"})
    j.add(videos[0], _prediction(0))
    j.add(videos[1], _prediction(1))
    j.close()
    with open(journal_path(out), "a") as f:
        f.write('{"id": "v2.mp4", "file": {"size": 3, "mti')  # the kill cut this line
    j = PredictJournal.open(out, {"checkpoint": "a"})
    assert sorted(j.done) == ["v0.mp4", "v1.mp4"]
    _same(j.finished(videos[1]), _prediction(1))
    assert j.finished(videos[2]) is None
    j.add(videos[2], _prediction(2))  # appended on a clean line
    j.close()
    videos[0].path.write_bytes(b"changed")  # a video replaced since: scored again
    j = PredictJournal.open(out, {"checkpoint": "a"})
    assert j.finished(videos[0]) is None and j.finished(videos[2]) is not None
    j.close()
    j = PredictJournal.open(out, {"checkpoint": "b"})  # another model: nothing reused, the old journal set aside
    assert not j.done and "set aside" in j.notes[0] and journal_path(out).with_suffix(".jsonl.old").is_file()
    j.remove()
    assert not list(tmp_path.glob("*.progress.jsonl*"))


def _without_timings(path: Path) -> list[dict]:
    preds = json.loads(path.read_text())
    for p in preds:
        p["extras"] = {k: v for k, v in p["extras"].items() if not k.startswith("t_")}
    return preds


@pytest.mark.slow
def test_killed_predict_resumes_to_the_same_submission(detect_run, tmp_path, capsys):
    run, data = detect_run["run"], detect_run["data"]

    def args(out: Path) -> list[str]:
        # batch size 1: each clip alone through the model, so a resumed run's numbers are bit-identical
        return ["predict", str(run), str(data), "--format", "avdf1m-task2", "--out", str(out), "--batch-size", "1",
                "--predictions", str(out.with_suffix(".all.json")), "--no-progress"]

    ref = tmp_path / "ref" / "prediction.json"
    assert main(args(ref)) == 0
    out = tmp_path / "resumed" / "prediction.json"
    journal = journal_path(out)
    for lines in (2, 5):  # killed after 1, then after 4 finished videos (the header is line 1)
        proc = subprocess.Popen([sys.executable, "-m", "fakelens.cli.main", *args(out)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 300
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if journal.is_file() and journal.read_text().count("\n") >= lines:
                    break
                time.sleep(0.01)
            assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.wait()
        assert not out.exists()  # never half a submission
    n_done = journal.read_text().count("\n") - 1
    assert n_done >= 4
    capsys.readouterr()
    assert main([*args(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resumed"] == n_done  # only the rest was scored
    assert out.read_bytes() == ref.read_bytes()
    assert _without_timings(out.with_suffix(".all.json")) == _without_timings(ref.with_suffix(".all.json"))
    assert not journal.exists() and not [p for p in out.parent.iterdir() if p.name.startswith(".")]
