"""A full disk or an output folder that cannot be written, on every output of predict and detect
and on the web server's temporary folder: a clear error naming the folder (no traceback), given
before any work where it can be, and what was already written there untouched. (The cache and
the run folder: tests/test_cache_reuse.py, tests/test_train_resume_cache.py; the atomic writes
themselves: tests/test_atomic.py.) Works as root: a path under a regular file cannot be written
whatever the permissions, and a full disk is an ENOSPC raised by the write."""

from __future__ import annotations

import errno
import json

import pytest

import fakelens.atomic as atomic
from fakelens.cli.main import main

pytestmark = pytest.mark.slow


def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def _test_video(detect_run):
    meta = json.loads((detect_run["data"] / "test_metadata.json").read_text())
    return detect_run["data"] / meta[0]["file"]


def test_predict_outputs_under_a_file_fail_before_any_work(detect_run, tmp_path, capsys, monkeypatch):
    (tmp_path / "f").write_text("a file where a folder should be")
    called = []
    monkeypatch.setattr("fakelens.inference.pipeline.load_run", lambda *a, **k: called.append(1))
    for extra in (["--out", str(tmp_path / "f" / "prediction.txt")],
                  ["--out", str(tmp_path / "ok.txt"), "--predictions", str(tmp_path / "f" / "all.json")]):
        assert main(["predict", str(detect_run["run"]), str(detect_run["data"]), "--format", "avdf1m-task1",
                     *extra]) == 2
        err = capsys.readouterr().err
        assert f"{tmp_path / 'f'}: cannot write here: a parent of it is a file" in err and "Traceback" not in err
    assert not called  # refused before the model was even loaded


def test_detect_report_folder_under_a_file_or_full(detect_run, tmp_path, capsys, monkeypatch):
    video = _test_video(detect_run)
    (tmp_path / "f").write_text("x")
    assert main(["detect", str(video), "--model", str(detect_run["run"]), "--out", str(tmp_path / "f" / "r"),
                 "--no-saliency"]) == 2
    err = capsys.readouterr().err
    assert "cannot write here: a parent of it is a file" in err and "Traceback" not in err

    out = tmp_path / "reports"
    assert main(["detect", str(video), "--model", str(detect_run["run"]), "--out", str(out), "--no-saliency"]) == 0
    report = out / video.stem / "report.json"
    before = report.read_bytes()
    capsys.readouterr()
    monkeypatch.setattr(atomic, "_write_temp", lambda path, data: _full())  # the disk fills up meanwhile
    assert main(["detect", str(video), "--model", str(detect_run["run"]), "--out", str(out), "--no-saliency"]) == 2
    err = capsys.readouterr().err
    assert f"{out / video.stem}: cannot write here: no space left on the device (ENOSPC)" in err
    assert "Traceback" not in err and report.read_bytes() == before  # the earlier report is untouched
    assert not [p for p in report.parent.iterdir() if p.name.startswith(".")]


def test_web_server_out_of_room_is_507(detect_run, tmp_path, monkeypatch):
    pytest.importorskip("fastapi")
    import shutil

    from fastapi.testclient import TestClient

    from fakelens.inference.evidence import Analyser
    from fakelens.inference.pipeline import Predictor, load_run
    from fakelens.web.app import create_app

    analyser = Analyser(Predictor(load_run(detect_run["run"]), device="cpu"), saliency=False)
    client = TestClient(create_app(analyser, tmp_dir=tmp_path / "uploads"), base_url="http://localhost")
    (tmp_path / "uploads").mkdir()
    monkeypatch.setattr(shutil, "copyfileobj", _full)
    r = client.post("/api/detect", files={"file": ("clip.mp4", _test_video(detect_run).read_bytes(), "video/mp4")})
    assert r.status_code == 507 and "clip.mp4: the server cannot store the upload (no space left" in r.json()["detail"]
    assert list((tmp_path / "uploads").iterdir()) == []  # the partial upload removed
    monkeypatch.undo()
    (tmp_path / "uploads").rmdir()
    (tmp_path / "uploads").write_text("a file where the temporary folder should be")
    r = client.post("/api/detect", files={"file": ("clip.mp4", b"x" * 100, "video/mp4")})
    assert r.status_code == 507 and "cannot store the upload" in r.json()["detail"]
