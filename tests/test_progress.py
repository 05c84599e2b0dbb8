"""Progress in a log: a redirected long job (preprocess > log 2>&1) wrote tqdm's carriage-return
redraws into the file; now plain lines, few of them, the last one the total."""

from __future__ import annotations

import io
import sys

import fakelens.progress as progress_mod
from fakelens.progress import progress


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_a_log_gets_whole_lines_not_redraws(monkeypatch):
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    for _ in progress(range(500), desc="work"):
        pass
    text = log.getvalue()
    assert "\r" not in text and text.endswith("\n")
    lines = text.splitlines()
    assert len(lines) <= 3 and lines[-1].startswith("work: 100%") and "500/500" in lines[-1]  # not 500 redraws
    monkeypatch.setattr(progress_mod, "LOG_INTERVAL", 0.0)  # a line at every update, each whole
    log.seek(0), log.truncate()
    with progress(total=3, desc="x", unit="video", initial=1) as bar:
        bar.update(1)
        bar.update(1)
    assert [ln.split("|")[-1].split()[0] for ln in log.getvalue().splitlines()] == ["1/3", "2/3", "3/3", "3/3"]


def test_a_terminal_gets_the_live_bar(monkeypatch):
    tty = _Tty()
    monkeypatch.setattr(sys, "stderr", tty)
    for _ in progress(range(3), desc="work"):
        pass
    assert "\r" in tty.getvalue()


def test_preprocess_into_a_log_writes_lines(tiny_synth, tmp_path, capfd):
    from fakelens.cli.main import main

    assert main(["preprocess", str(tiny_synth), "--out", str(tmp_path / "c"), "--frames", "2", "--size", "32",
                 "--detector", "full_frame"]) == 0
    err = capfd.readouterr().err
    assert "\r" not in err and "preprocess: 100%" in err


def test_a_short_job_in_a_log_is_one_line(monkeypatch):
    """Before: predict of 2 videos into a log printed the bar at 0 ('predict:   0%| | 0/2') before
    any work, and then its total: two lines for a job of seconds. Now only the total."""
    log = io.StringIO()
    monkeypatch.setattr(sys, "stderr", log)
    for _ in progress(range(2), desc="predict"):
        pass
    lines = log.getvalue().splitlines()
    assert len(lines) == 1 and lines[0].startswith("predict: 100%") and "2/2" in lines[0]
    log.seek(0), log.truncate()
    with progress(total=2, desc="predict", disable=True) as bar:  # --no-progress: nothing
        bar.update(2)
    assert log.getvalue() == ""
