"""A cache never serves stale or mixed entries: rows are reused only for an unchanged source file
and parameters, labels refresh without recomputing crops, failures are retried, --force
recomputes, parameters cannot mix (exclusive create, shard merge, per-npz record), and a full
or unwritable output folder is a clear error that leaves the cache consistent."""

from __future__ import annotations

import errno
import json
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fakelens.cli.main import main
from fakelens.data.cache import CacheConfig, load_npz, preprocess, read_index, safe_id
from fakelens.errors import ConfigError, FakelensError, FormatError, OutputError

pytestmark = pytest.mark.slow
FAST = ["--frames", "4", "--size", "32", "--detector", "haar", "--no-progress"]


def _run(data: Path, out: Path, capsys, *extra: str) -> dict:
    capsys.readouterr()
    assert main(["preprocess", str(data), "--out", str(out), *FAST, *extra, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def _mtimes(cache: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in (cache / "videos").iterdir()}


@pytest.fixture
def data(tiny_synth, tmp_path) -> Path:
    return Path(shutil.copytree(tiny_synth, tmp_path / "data"))


def test_relabelled_fake_refreshes_the_row_without_recomputing(data, tmp_path, capsys):
    out = tmp_path / "c"
    first = _run(data, out, capsys)
    assert first["processed"] == 8
    before = _mtimes(out)
    meta_path = data / "train_metadata.json"
    meta = json.loads(meta_path.read_text())
    fake = next(e for e in meta if e["modify_type"] != "real")
    fake.update(modify_type="real", fake_segments=[], visual_fake_segments=[], audio_fake_segments=[])
    meta_path.write_text(json.dumps(meta))
    summary = _run(data, out, capsys)
    assert summary["processed"] == 0 and summary["skipped"] == 8 and summary["relabelled"] == 1
    row = {r["id"]: r for r in read_index(out)}[fake["file"]]
    assert row["label"] == "real" and row["segments"] == [] and row["audio_segments"] == []
    assert row["modality"] == "none"
    assert _mtimes(out) == before  # crops not recomputed
    rec_row = json.loads((out / "rows" / f"{safe_id(fake['file'])}.json").read_text())
    assert rec_row["label"] == "real"  # the row file itself, which a later merge or run reads
    from fakelens.data.dataset import ClipDataset

    ds = ClipDataset(out, clip_frames=4, random=False)
    item = ds[[r.id for r in ds.records].index(fake["file"])]
    assert item["video_label"] == 0.0 and item["frame_labels"].sum() == 0  # what training reads


def _drop_from_metadata(data: Path, video_id: str) -> None:
    meta_path = data / f"{video_id.split('/')[0]}_metadata.json"
    meta = json.loads(meta_path.read_text())
    meta_path.write_text(json.dumps([e for e in meta if e["file"] != video_id]))


def test_videos_gone_from_the_dataset_leave_the_index(data, tmp_path, capsys):
    """Rows of videos no longer in the dataset used to stay in index.jsonl and be trained on."""
    from fakelens.data.dataset import ClipDataset

    out = tmp_path / "c"
    assert _run(data, out, capsys)["processed"] == 8
    _drop_from_metadata(data, "train/000002.mp4")  # gone from the metadata
    (data / "train" / "000003.mp4").unlink()  # listed, missing on disk
    summary = _run(data, out, capsys, "--allow-missing")
    assert summary["removed"] == 2 and summary["missing_on_disk"] == ["train/000003.mp4"]
    ids = {r["id"] for r in read_index(out)}
    assert len(ids) == 6 and not ids & {"train/000002.mp4", "train/000003.mp4"}
    assert {r.id for r in ClipDataset(out, clip_frames=4, random=False).records} == ids  # what training reads

    # A run over one split covers only that split: the other splits' rows stay, its own are pruned.
    _drop_from_metadata(data, "val/000005.mp4")
    summary = _run(data, out, capsys, "--allow-missing", "--split", "train")
    assert summary["removed"] == 0 and {r["id"] for r in read_index(out)} == ids
    summary = _run(data, out, capsys, "--split", "val")
    assert summary["removed"] == 1 and {r["id"] for r in read_index(out)} == ids - {"val/000005.mp4"}

    # Shards then merge: the same.
    _drop_from_metadata(data, "test/000007.mp4")
    for shard in ("0/2", "1/2"):
        _run(data, out, capsys, "--allow-missing", "--shard", shard)
    capsys.readouterr()
    assert main(["preprocess", "--out", str(out), "--merge", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["removed"] == 1
    assert {r["id"] for r in read_index(out)} == ids - {"val/000005.mp4", "test/000007.mp4"}


def test_shards_over_different_splits_are_not_merged(data, tmp_path, capsys):
    out = tmp_path / "c"
    _run(data, out, capsys, "--split", "train", "--shard", "0/2")
    _run(data, out, capsys, "--split", "val", "--shard", "1/2")
    assert main(["preprocess", "--out", str(out), "--merge"]) == 2
    err = capsys.readouterr().err
    assert "cover different parts of the dataset" in err and "split 'val'" in err


def test_changed_touched_and_damaged_sources(data, tmp_path, capsys):
    out = tmp_path / "c"
    _run(data, out, capsys)
    a, b = data / "train" / "000001.mp4", data / "train" / "000003.mp4"
    npz_b = load_npz(out, {"id": "train/000003.mp4", "npz": f"videos/{safe_id('train/000003.mp4')}.npz",
                           "status": "ok"})
    shutil.copyfile(b, a)  # another video under the same name: recomputed
    summary = _run(data, out, capsys)
    assert summary["processed"] == 1 and summary["changed"] == 1
    row = {r["id"]: r for r in read_index(out)}["train/000001.mp4"]
    np.testing.assert_array_equal(load_npz(out, row)["faces"], npz_b["faces"])
    assert row["file"]["size"] == b.stat().st_size

    later = time.time() + 100
    os.utime(a, (later, later))  # same content, new mtime (a copy, a touch): the fast hash says reuse
    summary = _run(data, out, capsys)
    assert summary["processed"] == 0
    row = {r["id"]: r for r in read_index(out)}["train/000001.mp4"]
    assert row["file"]["mtime_ns"] == a.stat().st_mtime_ns  # recorded, so the hash is not read again

    name = safe_id("train/000002.mp4")
    (out / "videos" / f"{name}.npz").write_bytes(b"")  # e.g. a power loss before the npz data reached the disk
    summary = _run(data, out, capsys)
    assert summary["processed"] == 1 and summary["changed"] == 1
    row = {r["id"]: r for r in read_index(out)}["train/000002.mp4"]
    assert load_npz(out, row)["faces"].shape == (1, 4, 32, 32, 3)


def test_verify_hash_catches_a_change_that_kept_size_and_mtime(data, tmp_path, capsys):
    out = tmp_path / "c"
    _run(data, out, capsys)
    a = data / "train" / "000001.mp4"
    st = a.stat()
    raw = bytearray(a.read_bytes())
    raw[-10] ^= 0xFF
    a.write_bytes(bytes(raw))
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _run(data, out, capsys)["processed"] == 0  # stat alone cannot see it
    assert _run(data, out, capsys, "--verify", "hash")["processed"] == 1


def test_verify_full_catches_a_change_outside_the_fast_hash_samples(tmp_path, capsys):
    """The fast hash reads 3 x 64 KiB: a byte changed elsewhere, size and mtime kept, passed
    `--verify hash`; `--verify full` hashes the whole file."""
    from fakelens.io.encode import write_video

    root = tmp_path / "data"
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (240, 320, 3), dtype=np.uint8) for _ in range(12)]  # noise: a large file
    video = root / "real" / "noisy.mp4"
    write_video(video, frames, 8.0)
    size = video.stat().st_size
    assert size > 400 * 1024, size  # room for a byte no sample covers
    out = tmp_path / "c"
    assert _run(root, out, capsys)["processed"] == 1
    st = video.stat()
    raw = bytearray(video.read_bytes())
    raw[size // 4] ^= 0xFF  # after the first sample, before the middle one
    video.write_bytes(bytes(raw))
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert _run(root, out, capsys)["processed"] == 0
    assert _run(root, out, capsys, "--verify", "hash")["processed"] == 0  # the samples cannot see it
    summary = _run(root, out, capsys, "--verify", "full")
    assert summary["processed"] == 1 and summary["changed"] == 1
    row = read_index(out)[0]
    import hashlib

    assert row["file"]["sha1"] == hashlib.sha1(video.read_bytes()).hexdigest()
    assert _run(root, out, capsys, "--verify", "full")["processed"] == 0  # unchanged now: reused


def test_repaired_file_is_retried(tmp_path, capsys):
    from fakelens.io.encode import write_video

    root = tmp_path / "data"
    frames = [np.full((48, 64, 3), 40 + 10 * i, np.uint8) for i in range(8)]
    write_video(root / "real" / "good.mp4", frames, 8.0)
    good = (root / "real" / "good.mp4").read_bytes()
    (root / "fake" / "broken.mp4").parent.mkdir(parents=True)
    (root / "fake" / "broken.mp4").write_bytes(good[: len(good) // 3])
    out = tmp_path / "c"
    cmd = ["--frames", "4", "--size", "32", "--detector", "full_frame", "--no-progress"]
    capsys.readouterr()
    assert main(["preprocess", str(root), "--out", str(out), *cmd, "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["by_status"]["decode_error"] == 1
    assert main(["preprocess", str(root), "--out", str(out), *cmd, "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["retried"] == 1 and again["processed"] == 1 and again["by_status"]["decode_error"] == 1
    (root / "fake" / "broken.mp4").write_bytes(good)  # repaired
    assert main(["preprocess", str(root), "--out", str(out), *cmd, "--json"]) == 0
    fixed = json.loads(capsys.readouterr().out)
    assert fixed["by_status"]["decode_error"] == 0 and fixed["retried"] == 1
    row = {r["id"]: r for r in read_index(out)}["fake/broken.mp4"]
    assert row["status"] == "no_audio" and row["npz"] and load_npz(out, row)["faces"].shape[1] == 4
    # and back: a video that decoded before and is broken now keeps no stale arrays
    (root / "fake" / "broken.mp4").write_bytes(good[:100])
    assert main(["preprocess", str(root), "--out", str(out), *cmd, "--json"]) == 0
    row = {r["id"]: r for r in read_index(out)}["fake/broken.mp4"]
    assert row["status"] == "decode_error" and not (out / "videos" / f"{safe_id('fake/broken.mp4')}.npz").exists()


def test_force_recomputes_with_unchanged_parameters(data, tmp_path, capsys):
    out = tmp_path / "c"
    _run(data, out, capsys)
    before = _mtimes(out)
    summary = _run(data, out, capsys, "--force")
    assert summary["processed"] == 8 and summary["skipped"] == 0
    after = _mtimes(out)
    assert after.keys() == before.keys() and all(after[k] != before[k] for k in before)


def test_runs_started_together_with_other_sizes_one_wins(tmp_path, monkeypatch):
    """Two runs that both find no config.json: one creates it, the other is refused (it used to be
    both: a merged cache said size 32 while some npz held 48x48 crops)."""
    real_fsync = os.fsync

    def slow_fsync(fd):  # both runs pass the "no config yet" point before either has written
        time.sleep(0.05)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    for trial in range(3):
        out = tmp_path / f"c{trial}"
        barrier = threading.Barrier(2)
        results: dict[int, object] = {}

        def start(size: int) -> None:
            barrier.wait()
            try:
                preprocess([], out, CacheConfig(size=size, detector="haar"), progress=False)
                results[size] = "ok"
            except ConfigError as e:
                results[size] = e

        threads = [threading.Thread(target=start, args=(s,)) for s in (32, 48)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        won = [s for s, r in results.items() if r == "ok"]
        lost = [r for r in results.values() if isinstance(r, ConfigError)]
        assert len(won) == 1 and len(lost) == 1, results
        assert json.loads((out / "config.json").read_text())["size"] == won[0]
        assert "other parameters" in str(lost[0]) and "size" in str(lost[0])


def test_merge_compares_every_shards_parameters(data, tmp_path, capsys):
    out, other = tmp_path / "c", tmp_path / "other"
    assert main(["preprocess", str(data), "--out", str(out), *FAST, "--shard", "0/2"]) == 0
    assert main(["preprocess", str(data), "--out", str(other), *FAST, "--size", "48", "--shard", "1/2"]) == 0
    for sub in ("shards", "videos", "rows"):  # shard 1 ran elsewhere with other parameters; its files copied in
        for p in (other / sub).iterdir():
            shutil.copy(p, out / sub / p.name)
    capsys.readouterr()
    assert main(["preprocess", "--out", str(out), "--merge"]) == 2
    err = capsys.readouterr().err
    assert "shard 1 of 2 was made with other parameters" in err and "size: 32 -> 48" in err
    assert not (out / "index.jsonl").exists()

    # A shard whose parameter record was made to match but whose rows were not: caught by the rows.
    (out / "shards" / "config-1-of-2.json").write_text((out / "config.json").read_text())
    assert main(["preprocess", "--out", str(out), "--merge"]) == 2
    assert "made with other parameters than config.json" in capsys.readouterr().err


def test_an_npz_from_other_parameters_is_refused_on_load(data, tmp_path, capsys):
    out, other = tmp_path / "c", tmp_path / "other"
    _run(data, out, capsys)
    _run(data, other, capsys, "--size", "48")
    row = read_index(out)[0]
    shutil.copy(other / row["npz"], out / row["npz"])  # mixed in by hand
    with pytest.raises(FormatError, match="size: 48 here, 32 in the cache"):
        load_npz(out, row)
    from fakelens.data.dataset import ClipDataset

    with pytest.raises(FormatError, match="other parameters"):
        ClipDataset(out, clip_frames=4, random=False)[0]


def test_disk_full_is_a_clear_error_and_the_cache_stays_consistent(data, tmp_path, capsys, monkeypatch):
    import fakelens.data.arrays as arrays

    out = tmp_path / "c"
    records = __import__("fakelens.data.formats", fromlist=["load_dataset"]).load_dataset(data).records
    cfg = CacheConfig(n_frames=4, size=32, detector="haar")
    preprocess(records[:3], out, cfg, progress=False)
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    real = np.savez_compressed
    calls = {"n": 0}

    def fills_up(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(*args, **kwargs)

    monkeypatch.setattr(arrays.np, "savez_compressed", fills_up)
    with pytest.raises(OutputError) as e:
        preprocess(records, out, cfg, progress=False)
    msg = str(e.value)
    assert str(out / "videos") in msg and "no space left" in msg and "resumes" in msg
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert {p: after[p] for p in before} == before  # nothing already written changed
    new = set(after) - set(before)
    assert {p.parent.name for p in new} <= {"videos", "rows"} and not any(p.name.startswith(".") for p in new)
    assert len([p for p in new if p.parent.name == "rows"]) == 1  # the video before the failure; its npz too
    monkeypatch.setattr(arrays.np, "savez_compressed", real)
    summary = preprocess(records, out, cfg, progress=False)  # the same command resumes
    assert summary.processed == 4 and len(read_index(out)) == 8

    monkeypatch.setattr(arrays.np, "savez_compressed",
                        lambda *a, **k: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
    assert main(["preprocess", str(data), "--out", str(tmp_path / "c2"), *FAST]) == 2
    err = capsys.readouterr().err
    assert "cannot write here: no space left on the device (ENOSPC)" in err and "Traceback" not in err


def test_an_output_folder_under_a_file_is_a_clear_error(data, tmp_path, capsys):
    (tmp_path / "f").write_text("x")
    assert main(["preprocess", str(data), "--out", str(tmp_path / "f" / "cache"), *FAST]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "f") in err and "a file, not a folder" in err and "Traceback" not in err


def test_workers_exit_when_the_parent_is_killed(data, tmp_path):
    """Preprocess workers used to idle forever (holding ~1 GB each) after a SIGKILL of the parent."""
    import signal
    import subprocess
    import sys

    out = tmp_path / "c"
    cmd = [sys.executable, "-m", "fakelens.cli.main", "preprocess", str(data), "--out", str(out), *FAST,
           "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def spawned_children() -> list[int]:
        kids = []
        for d in Path("/proc").iterdir():
            if d.name.isdigit():
                try:
                    if (int((d / "stat").read_text().rsplit(")", 1)[1].split()[1]) == proc.pid
                            and b"spawn_main" in (d / "cmdline").read_bytes()):
                        kids.append(int(d.name))
                except (OSError, IndexError, ValueError):
                    pass
        return kids

    deadline = time.monotonic() + 120
    workers: list[int] = []
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            workers = spawned_children()
            if len(workers) == 2:
                break
            time.sleep(0.05)
        assert len(workers) == 2, "the workers did not start"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()
    deadline = time.monotonic() + 15

    def running(pid: int) -> bool:
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"  # zombies are gone
        except (OSError, IndexError):
            return False

    alive = workers
    while alive and time.monotonic() < deadline:
        alive = [w for w in alive if running(w)]
        time.sleep(0.1)
    for w in alive:
        os.kill(w, signal.SIGKILL)
    assert not alive, f"workers {alive} outlived their killed parent"
