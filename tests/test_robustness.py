"""`fakelens robustness`: every registered perturbation changes what it says and nothing else, at
the strength its severity says, the same on every run; FGSM / PGD stay in their eps ball and push
the score away from the label; the command writes its CSV, plot and Markdown table on a trained
run and resumes from the conditions it finished."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from fakelens.io.perturb import PERTURBATIONS, output_suffix, perturb_file

SR = 16000
MEDIA = [n for n in PERTURBATIONS.names() if PERTURBATIONS.get(n).stream != "model"]


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A 1-s, 10-fps textured video with a 440 Hz tone plus a little broadband sound (H.264/AAC)."""
    from fakelens.io.encode import write_video

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:48, 0:64]
    frames = []
    for i in range(10):
        base = 128 + 60 * np.sin(xx / 3.0 + i) * np.cos(yy / 4.0)  # (48, 64) fine detail for blur/JPEG to remove
        frames.append(np.clip(np.stack([base, 255 - base, base * 0.5 + 40], -1), 0, 255).astype(np.uint8))
    t = np.arange(SR) / SR
    audio = (0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(SR)).astype(np.float32)
    return write_video(tmp_path_factory.mktemp("src") / "src.mp4", frames, 10.0, audio=audio, sample_rate=SR)


def _frames(path: Path) -> np.ndarray:
    from fakelens.io.video import iter_frames

    return np.stack([rgb for _, rgb in iter_frames(path)]).astype(np.float32)  # (T, H, W, 3)


def _audio(path: Path) -> np.ndarray:
    from fakelens.io.audio import read_audio

    return read_audio(path, SR)


def _make(source: Path, tmp: Path, name: str, severity: float, seed: int = 0) -> Path:
    return perturb_file(source, tmp / f"{name}-{severity:g}-{seed}{output_suffix(name)}", name, severity, seed)


@pytest.mark.parametrize("name", MEDIA)
def test_each_perturbation_changes_its_stream_only(source, tmp_path, name):
    from fakelens.io.video import probe

    p = PERTURBATIONS.get(name)
    out = _make(source, tmp_path, name, p.severities[-1])
    info, ref = probe(out), probe(source)
    assert info.n_frames == ref.n_frames and abs(info.duration - ref.duration) < 0.05
    assert info.has_audio == (p.stream != "container")
    f0, f1 = _frames(source), _frames(out)
    if p.stream in ("audio", "container"):
        np.testing.assert_array_equal(f1, f0)  # lossless: the pixels as decoded
    else:
        assert np.abs(f1 - f0).mean() > 1.0, "the frames did not change"
    if p.stream == "video":
        a0, a1 = _audio(source), _audio(out)
        n = min(len(a0), len(a1))
        if name == "h264_crf":  # AAC again: the same sound
            assert np.corrcoef(a0[:n], a1[:n])[0, 1] > 0.95
        else:
            np.testing.assert_allclose(a1[:n], a0[:n], atol=1e-3)  # FLAC: the samples kept
    if p.stream == "audio":
        a0, a1 = _audio(source), _audio(out)
        n = min(len(a0), len(a1))
        assert np.abs(a1[:n] - a0[:n]).mean() > 1e-3, "the audio did not change"


@pytest.mark.parametrize("name", [n for n in MEDIA if len(PERTURBATIONS.get(n).severities) > 1 and n != "contrast"])
def test_severity_orders_the_damage(source, tmp_path, name):
    """The mildest and the harshest level: the harshest moves its stream further from the source."""
    p = PERTURBATIONS.get(name)
    lo, hi = _make(source, tmp_path, name, p.severities[0]), _make(source, tmp_path, name, p.severities[-1])
    if p.stream == "video":
        f0 = _frames(source)
        d_lo, d_hi = np.abs(_frames(lo) - f0).mean(), np.abs(_frames(hi) - f0).mean()
    else:
        a0 = _audio(source)
        a_lo, a_hi = _audio(lo), _audio(hi)
        n = min(len(a0), len(a_lo), len(a_hi))
        d_lo, d_hi = np.abs(a_lo[:n] - a0[:n]).mean(), np.abs(a_hi[:n] - a0[:n]).mean()
    assert d_hi > d_lo, (d_lo, d_hi)


def test_noise_has_the_asked_strength_and_is_seeded(source, tmp_path):
    f0 = _frames(source)
    a = _frames(_make(source, tmp_path, "noise", 20.0))
    assert np.std(a - f0) == pytest.approx(20.0, rel=0.15)  # a little clipping at 0 / 255
    np.testing.assert_array_equal(_frames(_make(source, tmp_path, "noise", 20.0, seed=0)), a)  # the same copy again
    assert not np.array_equal(_frames(_make(source, tmp_path, "noise", 20.0, seed=1)), a)
    a0 = _audio(source)
    for snr in (20.0, 0.0):
        noisy = _audio(_make(source, tmp_path, "audio_noise", snr))
        n = min(len(a0), len(noisy))
        measured = 10 * np.log10(np.mean(a0[:n] ** 2) / np.mean((noisy[:n] - a0[:n]) ** 2))
        assert measured == pytest.approx(snr, abs=1.0)


def test_contrast_scales_the_spread_and_shifts_the_brightness(source, tmp_path):
    f0 = _frames(source)
    for factor in (0.5, 1.5):
        f = _frames(_make(source, tmp_path, "contrast", factor))
        inside = (f > 2) & (f < 253)  # not clipped
        ref = (f0 - 128) * factor + 128 + (factor - 1) * 64
        assert np.abs(f - ref)[inside].mean() < 2.0  # within H.264's rounding of the source
        assert (f.mean() > f0.mean()) == (factor > 1)


def test_resampling_removes_what_the_low_rate_cannot_hold(source, tmp_path):
    out = _audio(_make(source, tmp_path, "audio_resample", 4000.0))
    spec = np.abs(np.fft.rfft(out[:SR]))
    freqs = np.fft.rfftfreq(SR, 1 / SR)
    src = np.abs(np.fft.rfft(_audio(source)[:SR]))
    high = freqs > 2500  # above the 2 kHz Nyquist of 4000 Hz
    assert spec[high].sum() < 0.05 * src[high].sum()
    assert spec[np.argmin(np.abs(freqs - 440))] > 0.8 * src[np.argmin(np.abs(freqs - 440))]  # the tone stays


def test_parse_perturb_and_its_errors():
    from fakelens.errors import FakelensError
    from fakelens.inference.robustness import parse_perturb

    assert parse_perturb(["blur", "noise=5,20"]) == [("blur", PERTURBATIONS.get("blur").severities),
                                                      ("noise", (5.0, 20.0))]
    assert [n for n, _ in parse_perturb(None)] == PERTURBATIONS.names()
    with pytest.raises(FakelensError, match="blurr"):
        parse_perturb(["blurr"])
    with pytest.raises(FakelensError, match="severities must be numbers"):
        parse_perturb(["noise=a"])
    with pytest.raises(FakelensError, match="finite"):
        parse_perturb(["noise=nan"])
    with pytest.raises(FakelensError, match="not a media file"):
        perturb_file("x.mp4", "y.mkv", "fgsm", 1.0)


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
@pytest.mark.parametrize("label", ["real", "fake"])
def test_attacks_stay_in_the_ball_and_push_the_score_away_from_the_label(make_video, untrained_run, attack, label):
    import torch

    from fakelens.features.media import compute_features
    from fakelens.faces.detectors import build_detector
    from fakelens.inference.adversarial import ClipAttack
    from fakelens.inference.pipeline import Predictor
    from fakelens.types import Label, VideoRecord

    run = untrained_run()
    path = make_video("v.mp4", n_frames=12, fps=10, size=(48, 48), audio_seconds=1.2)
    feats = compute_features(path, run.cache, build_detector("full_frame"))
    pr = Predictor(run, device="cpu")
    rec = VideoRecord(id="v.mp4", path=path, label=Label(label))
    clips = pr._prepare(rec.id, feats)
    eps = 8 / 255
    adv = ClipAttack(pr, attack, eps)(rec, clips)
    for c, a in zip(clips, adv):
        d = (a["video"] - c["video"]).abs()
        assert float(d.max()) <= eps + 1e-6 and float(d.max()) > eps / 2
        assert float(a["video"].min()) >= 0 and float(a["video"].max()) <= 1
        assert torch.equal(a["audio"], c["audio"])  # the other inputs untouched
    assert not run.model.training  # left in eval mode: the scores below are deterministic
    before = pr._run_model(clips)["video_logit"]
    after = pr._run_model(adv)["video_logit"]
    if label == "fake":
        assert (after < before).all(), (before, after)
    else:
        assert (after > before).all(), (before, after)
    again = ClipAttack(pr, attack, eps)(rec, clips)
    assert all(torch.equal(a["video"], b["video"]) for a, b in zip(adv, again))  # seeded


@pytest.mark.slow
def test_robustness_command_on_a_trained_run(detect_run, tmp_path, capsys):
    from fakelens.cli.main import main

    out = tmp_path / "rb"
    args = ["robustness", str(detect_run["run"]), str(detect_run["data"]), "--split", "test", "--out", str(out),
            "--perturb", "blur=3", "--perturb", "audio_removed", "--perturb", "fgsm=8", "--no-progress"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "robustness" in text and "fgsm" in text
    with open(out / "robustness.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["perturbation"], r["severity"]) for r in rows] == [("none", ""), ("blur", "3"), ("audio_removed", "1"),
                                                                   ("fgsm", "8")]
    n = int(rows[0]["videos"])
    meta = json.loads((detect_run["data"] / "test_metadata.json").read_text())
    assert n == len(meta)
    by = {r["perturbation"]: r for r in rows}
    assert int(by["audio_removed"]["one_stream"]) == n and int(by["audio_removed"]["failed"]) == 0  # visual only
    assert int(by["none"]["one_stream"]) == 0
    assert float(by["fgsm"]["log_loss"]) > float(by["none"]["log_loss"])  # the attack raises every video's loss
    assert (out / "robustness.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| fgsm | 8 eps (/255) |" in (out / "robustness.md").read_text()
    assert len(list((out / "media" / "blur" / "3").iterdir())) == n  # the perturbed copies, kept
    before = (out / "robustness.csv").read_text()
    assert main(args) == 0  # again: every condition done by the earlier run
    assert capsys.readouterr().err.count("done by an earlier run") == 4
    assert (out / "robustness.csv").read_text() == before


def test_conditions_that_leave_the_frames_alone_find_each_videos_faces_once(tiny_synth, untrained_run, tmp_path,
                                                                            detect_passes):
    """The clean videos, an attack on the crops and the audio-only perturbations reuse the clean
    run's face tracks (one detection pass per video for all of them, the same scores as finding the
    faces again); a pixel perturbation (blur) finds them again."""
    from fakelens.data.formats import load_dataset
    from fakelens.inference.pipeline import Predictor
    from fakelens.inference.robustness import RobustnessJob

    calls = detect_passes
    records = list(load_dataset(tiny_synth, split="test").records)
    conditions = [("fgsm", (8.0,)), ("audio_noise", (10.0,)), ("audio_removed", (1.0,))]
    n = len(records)
    pr = Predictor(untrained_run(), device="cpu")
    rows = RobustnessJob(pr, records, tmp_path / "reuse").run(conditions)
    assert len(calls) == n  # once per video, for the four conditions
    assert pr.known_tracks is None and pr.record_tracks is None  # the job leaves the predictor as it was
    calls.clear()
    old = RobustnessJob(Predictor(untrained_run(), device="cpu"), records, tmp_path / "old",
                        reuse_faces=False).run(conditions)
    assert len(calls) == 4 * n  # the old path: every condition found every face again
    for a, b in zip(rows, old):
        assert (a.perturbation, a.auc, a.log_loss, a.one_stream) == (b.perturbation, b.auc, b.log_loss, b.one_stream)
    for name in ("none", "fgsm@8", "audio_noise@10", "audio_removed@1"):
        new_s = json.loads((tmp_path / "reuse" / "conditions" / f"{name}.json").read_text())["scores"]
        old_s = json.loads((tmp_path / "old" / "conditions" / f"{name}.json").read_text())["scores"]
        assert new_s == old_s, name
    calls.clear()
    job = RobustnessJob(pr, records, tmp_path / "reuse")
    job.run([("blur", (2.0,))])  # the clean row done by the earlier run; blur moves the pixels: found again
    assert len(calls) == n


def test_an_out_folder_of_another_dataset_with_the_same_ids_is_scored_again(tiny_synth, untrained_run, tmp_path):
    """AV-1M-style ids (000001.mp4) repeat across datasets: a condition saved for other files of the
    same ids, or another --seed's perturbed copies, is not reused."""
    import dataclasses
    import shutil

    from fakelens.data.formats import load_dataset
    from fakelens.inference.pipeline import Predictor
    from fakelens.inference.robustness import RobustnessJob, _source_key

    records = list(load_dataset(tiny_synth, split="test").records)
    other = tmp_path / "other"
    other.mkdir()
    swapped = []  # the same ids, each pointing at the other video's file (and keeping its label)
    for rec, src in zip(records, reversed(records)):
        dst = other / Path(rec.path).name
        shutil.copy(src.path, dst)
        swapped.append(dataclasses.replace(rec, path=dst))
    pr = Predictor(untrained_run(), device="cpu")
    said: list[str] = []
    RobustnessJob(pr, records, tmp_path / "out", log=said.append).run([("noise", (10.0,))])
    RobustnessJob(pr, records, tmp_path / "out", log=said.append).run([("noise", (10.0,))])
    assert sum("done by an earlier run" in line for line in said) == 2  # the same videos: reused
    said.clear()
    RobustnessJob(pr, swapped, tmp_path / "out", log=said.append).run([("noise", (10.0,))])
    assert not any("done by an earlier run" in line for line in said), said
    assert _source_key(records[0], 0) != _source_key(records[0], 1)  # another seed: another copy
    assert _source_key(records[0], 0) != _source_key(swapped[0], 0)  # another file: another copy


def test_a_variable_frame_rate_copy_keeps_its_frame_times_when_the_source_is_too_big_to_count(tmp_path,
                                                                                              monkeypatch):
    """probe reads no frame times from a file above COUNT_MAX_BYTES (256 MiB: a few minutes of phone
    video, which is variable-frame-rate): its perturbed copy was written at the average rate, each
    frame moved off its time (the audio out of sync, and the clean run's face tracks taken for the
    copy's frames at times where the source shows other frames). Its frames keep their decoded times."""
    from fakelens.io import video as video_io
    from fakelens.io.encode import write_video

    rng = np.random.default_rng(0)
    gaps = np.r_[np.full(10, 1 / 30), np.full(10, 1 / 8)]  # 30 fps, then 8 fps
    times = np.round(np.r_[0.0, np.cumsum(gaps)[:-1]], 3)  # (20,)
    frames = [rng.integers(0, 255, (32, 32, 3), dtype=np.uint8) for _ in times]
    t = np.arange(int(1.6 * SR)) / SR
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    src = write_video(tmp_path / "vfr.mkv", frames, 16.0, audio=audio, sample_rate=SR, codec="ffv1", times=times)
    want = video_io.probe(src).frame_times  # (20,)
    assert want is not None and np.allclose(want, times, atol=1.5e-3)
    monkeypatch.setattr(video_io, "COUNT_MAX_BYTES", 0)  # as for a file too big to count
    assert video_io.probe(src).frame_times is None
    dst = perturb_file(src, tmp_path / "copy.mkv", "audio_noise", 10.0)
    monkeypatch.undo()
    got = video_io.probe(dst).frame_times
    assert got is not None and len(got) == len(want)
    assert np.allclose(got, want, atol=1.5e-3), np.abs(got - want).max()


def test_a_localization_runs_terminal_tables_and_plot_show_ap_and_ar(monkeypatch, capsys):
    """An 80-column terminal (a pipe) showed the eleven columns of a localization run's table with
    every number cut ('0.7…'); its AP@IoU / AR are a second table there, whole. The plot draws AR@10
    beside AP@0.5, and the clean AP@0.5 as a reference line."""
    from fakelens.cli.output import print_table
    from fakelens.inference.robustness import Row, terminal_tables
    from fakelens.report import robustness as plot

    def row(name, sev, ap, ar):
        return Row(name, "audio" if sev else "-", sev, "SNR (dB)" if sev else "-", 6, 0.5 + ap / 3, 0.6667,
                   1.9864, 0.6667, ap, ap / 2, ar, 0, 0, 1.0)

    rows = [row("none", None, 0.7500, 0.6500), row("audio_noise", 20.0, 0.0029, 0.0125),
            row("audio_noise", 0.0, 0.3125, 0.4375)]
    monkeypatch.setenv("COLUMNS", "80")
    for title, head, cells in terminal_tables(rows, 6):
        print_table(title, head, cells)
    out = capsys.readouterr().out
    for r in rows:  # every number whole
        for v in (r.auc, r.ap_iou50, r.ap_iou75, r.ar10):
            assert f"{v:.4f}" in out, (v, out)
    figs = []
    monkeypatch.setattr(plot, "_png", lambda fig: figs.append(fig) or b"")
    plot.robustness_png(rows)
    labels = figs[0].axes[0].get_legend_handles_labels()[1]
    assert {"AP@IoU 0.5", "AR@10", "AP@IoU 0.5, clean"} <= set(labels), labels


def test_a_killed_runs_half_written_copy_is_removed(tiny_synth, untrained_run, tmp_path):
    """A run killed while it wrote a perturbed copy left the copy's temporary (a whole video's size)
    in OUT/media for good; the next run removes it, and only a dead writer's."""
    import os
    import subprocess
    import sys

    from fakelens.atomic import _temp_prefix
    from fakelens.data.formats import load_dataset
    from fakelens.inference.pipeline import Predictor
    from fakelens.inference.robustness import RobustnessJob

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    folder = tmp_path / "out" / "media" / "noise" / "10"
    folder.mkdir(parents=True)
    left = folder / (_temp_prefix("000000_000007_abc.mkv").replace(f"~{os.getpid()}~", f"~{pid}~") + "x1.mkv")
    mine = folder / (_temp_prefix("000001_000008_abc.mkv") + "x2.mkv")  # a live writer's (this process)
    left.write_bytes(b"\0" * 1024)
    mine.write_bytes(b"\0" * 1024)
    records = list(load_dataset(tiny_synth, split="test").records)
    job = RobustnessJob(Predictor(untrained_run(), device="cpu"), records, tmp_path / "out")
    copies, broken = job._perturbed("noise", 10.0)
    assert not broken and all(Path(r.path).is_file() for r in copies)
    assert not left.exists() and mine.exists()
