"""`fakelens preprocess` end to end: statuses, npz contents, ground-truth faces, kill + resume,
shards + merge, parameter mismatch, worker processes, faceless / silent / corrupt videos."""

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
from fakelens.data.cache import CacheConfig, load_npz, read_index, safe_id, shard_of
from fakelens.data.formats import FORMATS
from fakelens.faces.tracking import box_iou

pytestmark = pytest.mark.slow


def fast(frames: int = 6) -> list[str]:
    """Settings for the equality tests: Haar is deterministic and ~10x cheaper than MTCNN here."""
    return ["--frames", str(frames), "--detector", "haar", "--no-progress"]


FAST = fast()


@pytest.fixture(scope="module")
def mtcnn_cache(tiny_synth, tmp_path_factory) -> Path:
    """The tiny set preprocessed with the default detector, through the CLI."""
    out = tmp_path_factory.mktemp("cache") / "c"
    assert main(["preprocess", str(tiny_synth), "--out", str(out), "--frames", "6", "--size", "64",
                 "--no-progress"]) == 0
    return out


def _strip(row: dict) -> dict:
    return {k: v for k, v in row.items() if k != "timings"}


def assert_same_cache(a: Path, b: Path) -> None:
    """Same files, same index rows (timings aside), same arrays in every npz."""
    files_a = sorted(str(p.relative_to(a)) for p in a.rglob("*") if p.is_file())
    files_b = sorted(str(p.relative_to(b)) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b
    rows_a, rows_b = read_index(a), read_index(b)
    assert [_strip(r) for r in rows_a] == [_strip(r) for r in rows_b]
    assert json.loads((a / "config.json").read_text()) == json.loads((b / "config.json").read_text())
    for ra in rows_a:
        if ra["npz"]:
            za, zb = load_npz(a, ra), load_npz(b, ra)
            assert za.keys() == zb.keys()
            for k in za:
                np.testing.assert_array_equal(za[k], zb[k], err_msg=f"{ra['id']}: {k}")


@pytest.fixture(scope="module")
def reference(tiny_synth, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("ref") / "c"
    assert main(["preprocess", str(tiny_synth), "--out", str(out), *FAST]) == 0
    return out


def test_cli_end_to_end_statuses_and_npz(mtcnn_cache, tiny_synth):
    rows = read_index(mtcnn_cache)
    meta = {e["file"]: e for s in ("train", "val", "test") for e in json.loads((tiny_synth / f"{s}_metadata.json").read_text())}
    assert [r["id"] for r in rows] == sorted(meta)
    assert {r["status"] for r in rows} == {"ok"}
    cfg = json.loads((mtcnn_cache / "config.json").read_text())
    assert cfg["detector"] == "mtcnn" and cfg["n_frames"] == 6 and cfg["size"] == 64
    for r in rows:
        assert r["npz"] == f"videos/{safe_id(r['id'])}.npz" and (mtcnn_cache / r["npz"]).exists()
        assert (r["label"] == "fake") == (meta[r["id"]]["modify_type"] != "real")
        assert r["counts"]["frames"] == 6 and r["counts"]["mel_frames"] > 100 and r["has_audio"]
        assert set(r["timings"]) >= {"decode", "detect", "audio", "total"}
        z = load_npz(mtcnn_cache, r)
        assert z["faces"].shape == (1, 6, 64, 64, 3) and z["faces"].dtype == np.uint8
        assert z["boxes"].shape == (1, 6, 4) and z["found"].shape == (1, 6)
        assert z["mel"].shape[0] == 80 and z["mel"].dtype == np.float16 and np.isfinite(z["mel"]).all()
        assert z["mel"].shape[1] == len(z["mel_times"]) == r["counts"]["mel_frames"]
        assert float(z["fps"]) == 25.0 and abs(float(z["duration"]) - z["mel_times"][-1]) < 0.05
        np.testing.assert_allclose(z["times"], z["indices"] / 25.0)


def test_default_detector_finds_the_synthetic_faces(mtcnn_cache, tiny_synth):
    boxes = {}
    for s in ("train", "val", "test"):
        boxes.update(json.loads((tiny_synth / f"{s}_face_boxes.json").read_text()))
    ious = []
    for r in read_index(mtcnn_cache):
        z = load_npz(mtcnn_cache, r)
        truth = np.asarray(boxes[r["id"]]["boxes"], np.float32)  # (n_frames, 4)
        for t, idx in enumerate(z["indices"]):
            ious.append(box_iou(z["boxes"][0, t][None], truth[idx][None])[0, 0])
    ious = np.asarray(ious)
    assert (ious >= 0.5).mean() >= 0.95, f"IoU>=0.5 in {(ious >= 0.5).mean():.1%} of {len(ious)} frames"


def test_rerun_skips_finished_videos(reference, tiny_synth, capsys):
    before = {p: p.stat().st_mtime_ns for p in (reference / "videos").iterdir()}
    assert main(["preprocess", str(tiny_synth), "--out", str(reference), *FAST, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["skipped"] == 8 and summary["processed"] == 0 and summary["by_status"]["ok"] == 8
    assert {p: p.stat().st_mtime_ns for p in (reference / "videos").iterdir()} == before


def test_killed_job_restarted_equals_uninterrupted(reference, tiny_synth, tmp_path):
    """Killed (SIGKILL) at several points of one job, restarted each time: before any video is
    finished, then after 2 and 4; every entry on disk stays whole and the end equals one run."""
    out = tmp_path / "c"
    cmd = [sys.executable, "-m", "fakelens.cli.main", "preprocess", str(tiny_synth), "--out", str(out), *FAST]
    done = 0
    for rows in (0, 2, 4):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                n = len(list((out / "rows").glob("*.json"))) if (out / "rows").is_dir() else 0
                if (out / "config.json").is_file() and n >= max(rows, done + (rows > 0)):
                    break
                time.sleep(0.005)
            assert proc.poll() is None, proc.stderr.read().decode()
            os.kill(proc.pid, signal.SIGKILL)  # between two videos or inside one
        finally:
            proc.wait()
        finished = sorted((out / "rows").glob("*.json")) if (out / "rows").is_dir() else []
        done = len(finished)
        assert done < 8 and not (out / "index.jsonl").exists()
        for f in finished:  # whatever the kill interrupted, what is on disk is whole
            row = json.loads(f.read_text())
            if row["npz"]:
                assert set(load_npz(out, row)) >= {"faces", "mel"}
    assert main(["preprocess", str(tiny_synth), "--out", str(out), *FAST]) == 0
    assert_same_cache(out, reference)


def test_crash_between_npz_and_row_and_leftover_temporaries(reference, tiny_synth, tmp_path, monkeypatch):
    import fakelens.data.cache as cache

    from fakelens import atomic

    out = tmp_path / "c"
    real = cache.atomic_write_text
    calls = {"rows": 0}
    killed = subprocess.Popen([sys.executable, "-c", "pass"])
    killed.wait()  # a writer that is gone: its temporaries are stale

    def dying_write(path, text):
        if Path(path).parent.name == "rows":
            calls["rows"] += 1
            if calls["rows"] == 4:  # the 4th video's npz is written, its row is not
                (Path(path).parent / f".{Path(path).name}.{atomic._HOST}~{killed.pid}~x.tmp").write_text("x")
                raise KeyboardInterrupt
        return real(path, text)

    monkeypatch.setattr(cache, "atomic_write_text", dying_write)
    with pytest.raises(KeyboardInterrupt):
        cache.preprocess(_records(tiny_synth), out, _fast_cfg(), progress=False)
    assert len(list((out / "rows").glob("*.json"))) == 3 and len(list((out / "videos").glob("*.npz"))) == 4
    monkeypatch.setattr(cache, "atomic_write_text", real)
    assert main(["preprocess", str(tiny_synth), "--out", str(out), *FAST]) == 0
    assert_same_cache(out, reference)


def _records(tiny_synth):
    from fakelens.data.formats import load_dataset

    return load_dataset(tiny_synth).records


def _fast_cfg() -> CacheConfig:
    return CacheConfig(n_frames=6, detector="haar")


def test_shards_then_merge_equal_a_single_run(reference, tiny_synth, tmp_path):
    out = tmp_path / "c"
    assert main(["preprocess", str(tiny_synth), "--out", str(out), *FAST, "--shard", "1/2"]) == 0
    assert main(["preprocess", "--out", str(out), "--merge"]) == 2  # shard 0 missing: loud error
    assert not (out / "index.jsonl").exists()
    assert main(["preprocess", str(tiny_synth), "--out", str(out), *FAST, "--shard", "0/2"]) == 0
    ids = {r.id for r in _records(tiny_synth)}
    shard1 = [json.loads(x)["id"] for x in (out / "shards" / "index-1-of-2.jsonl").read_text().splitlines()]
    assert shard1 and set(shard1) == {i for i in ids if shard_of(i, 2) == 1}
    assert main(["preprocess", "--out", str(out), "--merge"]) == 0
    assert sorted(p.name for p in (out / "shards").iterdir()) == [
        "config-0-of-2.json", "config-1-of-2.json", "index-0-of-2.jsonl", "index-1-of-2.jsonl",
        "scope-0-of-2.json", "scope-1-of-2.json"]
    for p in (out / "shards").iterdir():
        p.unlink()
    (out / "shards").rmdir()
    assert_same_cache(out, reference)


def test_workers_give_the_same_cache(reference, tiny_synth, tmp_path):
    out = tmp_path / "c"
    assert main(["preprocess", str(tiny_synth), "--out", str(out), *FAST, "--workers", "2"]) == 0
    assert_same_cache(out, reference)


def test_other_parameters_are_refused_unless_forced(reference, tiny_synth, tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["preprocess", str(tiny_synth), "--out", str(out), *FAST]) == 0
    assert main(["preprocess", str(tiny_synth), "--out", str(out), *FAST, "--size", "112"]) == 2
    assert "size: 224 -> 112" in capsys.readouterr().err
    assert main(["preprocess", str(tiny_synth), "--out", str(out), *FAST, "--size", "112", "--force"]) == 0
    rows = read_index(out)
    assert len(rows) == 8 and load_npz(out, rows[0])["faces"].shape[2:] == (112, 112, 3)


@pytest.fixture(scope="module")
def edge_cases(tmp_path_factory) -> Path:
    """A folders-format dataset: a face with sound, a face without audio, no face, a corrupt file."""
    from skimage.data import astronaut

    from fakelens.io.encode import write_video

    root = tmp_path_factory.mktemp("edge")
    face = astronaut()[20:240, 130:320]  # (220, 190, 3)
    frames = []
    for i in range(10):
        f = np.full((240, 320, 3), 50, np.uint8)
        f[10:230, 40 + 4 * i : 230 + 4 * i] = face
        frames.append(f)
    blank = [np.full((240, 320, 3), 20 + 5 * i, np.uint8) for i in range(10)]
    tone = (0.3 * np.sin(2 * np.pi * 440 * np.arange(16000) / 16000)).astype(np.float32)
    write_video(root / "real" / "face.mp4", frames, 10.0, audio=tone)
    write_video(root / "real" / "silent.mp4", frames, 10.0)
    write_video(root / "fake" / "noface.mp4", blank, 10.0, audio=tone)
    good = (root / "real" / "face.mp4").read_bytes()
    (root / "fake" / "corrupt.mp4").write_bytes(good[: len(good) // 3])
    return root


def test_faceless_silent_and_corrupt_videos(edge_cases, tmp_path, capsys):
    out = tmp_path / "c"
    assert main(["preprocess", str(edge_cases), "--out", str(out), "--frames", "4", "--no-progress"]) == 0
    table = capsys.readouterr().out
    assert "decode_error" in table and "no_face" in table
    rows = {r["id"]: r for r in read_index(out)}
    assert rows["real/face.mp4"]["status"] == "ok" and rows["real/face.mp4"]["counts"]["found"] == 4
    silent = rows["real/silent.mp4"]
    assert silent["status"] == "no_audio" and silent["has_face"] and "no audio stream" in silent["message"]
    assert load_npz(out, silent)["mel"].shape == (80, 0)
    noface = rows["fake/noface.mp4"]
    assert noface["status"] == "no_face" and not noface["has_face"] and noface["fallback"] is None
    assert noface["has_audio"] and load_npz(out, noface)["faces"].shape == (0, 4, 224, 224, 3)
    bad = rows["fake/corrupt.mp4"]
    assert bad["status"] == "decode_error" and bad["npz"] is None
    assert "corrupt.mp4" in bad["message"] and ("truncated" in bad["message"] or "corrupt" in bad["message"])

    fb = tmp_path / "fb"
    assert main(["preprocess", str(edge_cases), "--out", str(fb), "--frames", "4", "--no-progress",
                 "--full-frame-fallback", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["by_status"] == {"ok": 1, "no_face": 1, "no_audio": 1, "decode_error": 1}
    noface = {r["id"]: r for r in read_index(fb)}["fake/noface.mp4"]
    assert noface["status"] == "no_face" and noface["fallback"] == "full_frame" and noface["has_face"]
    assert "fallback" in noface["message"]
    z = load_npz(fb, noface)
    assert z["faces"].shape == (1, 4, 224, 224, 3) and not z["found"].any()


def test_merge_without_shards_and_missing_data_fail_loudly(tmp_path, capsys):
    assert main(["preprocess", "--out", str(tmp_path / "c"), "--merge"]) == 2
    assert "no shard indexes" in capsys.readouterr().err
    assert main(["preprocess", "--out", str(tmp_path / "c")]) == 2
    assert main(["preprocess", str(tmp_path), "--out", str(tmp_path / "c"), "--shard", "2/2"]) == 2


@pytest.mark.parametrize("fmt", FORMATS.names())
def test_every_supported_format(fmt, tiny_synth, tmp_path):
    """The format fixtures (empty placeholder videos) with a real tiny_synth video in every placeholder."""
    import shutil

    from fakelens.data.formats import load_dataset

    root = Path(shutil.copytree(Path(__file__).parent / "data" / "formats" / fmt, tmp_path / fmt))
    video = (tiny_synth / "train" / "000001.mp4").read_bytes()
    for p in root.rglob("*"):
        if p.is_file() and p.stat().st_size == 0:
            p.write_bytes(video)
    out = tmp_path / "c"
    assert main(["preprocess", str(root), "--out", str(out), "--frames", "2", "--detector", "haar",
                 "--no-progress"]) == 0
    rows = read_index(out)
    assert [r["id"] for r in rows] == sorted(r.id for r in load_dataset(root).records)
    assert {r["status"] for r in rows} == {"ok"}


def test_release_large_allocations_sets_the_glibc_threshold():
    from fakelens.data.cache import release_large_allocations

    import platform

    assert release_large_allocations() is (platform.libc_ver()[0] == "glibc")
