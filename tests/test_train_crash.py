"""Training killed with SIGKILL resumes from its last checkpoint and finishes the same schedule
(epochs, steps, learning-rate schedule) as an uninterrupted run; Ctrl-C (SIGINT) saves a
checkpoint first and --resume continues from it; checkpoints are written atomically, so a kill
while one is saved leaves the previous one whole."""

from __future__ import annotations

import csv
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fakelens.cli.main import main

pytestmark = pytest.mark.slow

SETTINGS = ["--set", "train.epochs=3", "--set", "train.val_every_n_epochs=1", "--set", "train.batch_size=2",
            "--set", "train.num_workers=0", "--set", "train.progress_bar=false", "--set", "data.clip_frames=4",
            "--set", "model.num_frames=4", "--set", "model.image_size=32", "--set", "model.audio_frames=48",
            "--set", "train.log_every_n_steps=1"]


@pytest.fixture(scope="module")
def cache(tiny_synth, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("crash") / "cache"
    assert main(["preprocess", str(tiny_synth), "--out", str(out), "--frames", "8", "--size", "32", "--detector",
                 "haar", "--no-progress"]) == 0
    return out


def train_args(cache: Path, run: Path) -> list[str]:
    return ["train", "--config", "configs/demo.yaml", "--out", str(run), "--set", f"data.cache={cache}", *SETTINGS]


@pytest.fixture(scope="module")
def reference(cache, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("ref") / "run"
    assert main(train_args(cache, run)) == 0
    return run


def launch(cache: Path, run: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "fakelens.cli.main", *train_args(cache, run), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def wait_for(proc: subprocess.Popen, ready, timeout: float = 300.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None and not ready():
        time.sleep(0.02)
    assert proc.poll() is None, f"training ended before the signal:\n{proc.stderr.read().decode()[-3000:]}"
    assert ready(), "timed out waiting for the training to get there"


def ckpt_state(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def lr_by_launch(run: Path) -> list[list[float]]:
    """The learning rates logged at the optimizer steps of each launch of the run, in order."""
    out = []
    for f in sorted((run / "logs" / "csv").glob("version_*/metrics.csv")):
        with open(f, newline="") as fh:
            out.append([float(v) for row in csv.DictReader(fh) for k, v in row.items() if k.startswith("lr-") and v])
    return out


def assert_same_schedule(run: Path, reference: Path) -> None:
    got, want = json.loads((run / "metrics.json").read_text()), json.loads((reference / "metrics.json").read_text())
    assert (got["epochs"], got["global_step"]) == (want["epochs"], want["global_step"])
    assert ckpt_state(run / "checkpoints" / "last.ckpt")["global_step"] == want["global_step"]
    (ref,) = lr_by_launch(reference)
    launches = lr_by_launch(run)
    assert len(launches) == 2 and ref
    for lrs in launches:  # each launch walked a stretch of the same one-cycle schedule ...
        assert any(lrs == pytest.approx(ref[i:i + len(lrs)], rel=1e-9) for i in range(len(ref) - len(lrs) + 1)), \
            (lrs, ref)
    assert launches[-1][-1] == pytest.approx(ref[-1], rel=1e-9)  # ... and the resumed one ran it to its end
    assert launches[0][0] == pytest.approx(ref[0], rel=1e-9)
    # ... and nothing lost or trained twice: the weights and the optimizer's moments of the run that
    # was stopped and resumed are those of the uninterrupted one (the data order and each step's
    # random state depend on the seed and the epoch only)
    a, b = ckpt_state(run / "checkpoints" / "last.ckpt"), ckpt_state(reference / "checkpoints" / "last.ckpt")
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for k, v in b["state_dict"].items():
        if v.is_floating_point():
            torch.testing.assert_close(a["state_dict"][k], v, atol=1e-6, rtol=1e-5, msg=k)
    (opt_a,), (opt_b,) = a["optimizer_states"], b["optimizer_states"]
    for i, st in opt_b["state"].items():
        for name, v in st.items():
            if torch.is_tensor(v) and v.is_floating_point():
                torch.testing.assert_close(opt_a["state"][i][name], v, atol=1e-6, rtol=1e-5)


def test_sigkill_then_resume_finishes_the_same_schedule(cache, reference, tmp_path):
    run = tmp_path / "run"
    last = run / "checkpoints" / "last.ckpt"
    proc = launch(cache, run)
    try:
        wait_for(proc, lambda: last.is_file())  # killed after the first epoch's checkpoint, anywhere after it
        time.sleep(0.3)
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    assert ckpt_state(last)["epoch"] >= 0  # whole: atomic writes never leave half a checkpoint
    assert main([*train_args(cache, run), "--resume"]) == 0
    assert_same_schedule(run, reference)
    assert not [p.name for p in last.parent.iterdir() if p.name.startswith(".")]  # the killed writer's temporaries
    assert "resuming" in (run / "train.log").read_text()


@pytest.mark.parametrize("presses", [1, 2])
def test_ctrl_c_saves_a_checkpoint_and_resume_continues_from_it(cache, reference, tmp_path, presses):
    """Ctrl-C stops at the end of the epoch it was pressed in, with that epoch's checkpoint (a
    checkpoint taken where the signal lands, mid-epoch or mid-validation, used to resume into
    another schedule: the interrupted epoch's first batches trained again); a second Ctrl-C stops at
    once and leaves the last finished epoch's checkpoint. Either way --resume ends as an
    uninterrupted run, wherever the signals land."""
    run = tmp_path / "run"
    log = run / "train.log"
    proc = launch(cache, run)
    try:
        wait_for(proc, lambda: log.is_file() and re.search(r"epoch\s+1/3", log.read_text()) is not None)
        proc.send_signal(signal.SIGINT)
        if presses == 2:
            wait_for(proc, lambda: "Ctrl-C: stopping at the end of this epoch" in log.read_text(), timeout=60)
            proc.send_signal(signal.SIGINT)
        status = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read().decode()
    assert status == 130, err[-3000:]
    text = log.read_text()
    assert "--resume" in err and "Ctrl-C: stopping at the end of this epoch" in text
    saved = ckpt_state(run / "checkpoints" / "last.ckpt")
    steps_per_epoch = json.loads((reference / "metrics.json").read_text())["global_step"] // 3
    if presses == 1:  # the end of epoch 2, where the signal fell
        assert "interrupted at the end of epoch 2" in text and saved["global_step"] == 2 * steps_per_epoch
    else:  # epoch 1's (or epoch 2's, if it ended before the second press)
        assert "interrupted" in text and saved["global_step"] in (steps_per_epoch, 2 * steps_per_epoch)
    assert main([*train_args(cache, run), "--resume"]) == 0
    assert_same_schedule(run, reference)


def test_a_kill_while_a_checkpoint_is_written_keeps_the_previous_one(tmp_path, monkeypatch):
    """The checkpoint writer goes through a temporary file: a death (here an interrupt) between
    the write and the rename leaves the previous file as it was, and no temporary behind."""
    import fakelens.atomic as atomic
    from fakelens.train.checkpoint_io import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 1, "w": torch.ones(3)}, path)

    def dies_before_the_rename(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", dies_before_the_rename)
    with pytest.raises(KeyboardInterrupt):
        io.save_checkpoint({"global_step": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert ckpt_state(path)["global_step"] == 1 and [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]
