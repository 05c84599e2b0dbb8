"""`fakelens features` end to end on the tiny synthetic set: the folder it writes, kill + resume,
shards + merge, a stated fps, refused parameter changes; faceless, silent and corrupt videos."""

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
from fakelens.data.cache import load_npz, read_index, safe_id
from tests.test_preprocess import assert_same_cache, edge_cases  # noqa: F401  (a fixture)

pytestmark = pytest.mark.slow

FAST = ["--size", "32", "--detector", "haar", "--no-progress"]  # Haar: deterministic and cheap


def features(data: Path, out: Path, *extra: str) -> int:
    return main(["features", "tinycnn", str(data), "--out", str(out), *FAST, *extra])


@pytest.fixture(scope="module")
def reference(tiny_synth, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("feats") / "f"
    assert features(tiny_synth, out) == 0
    return out


def test_features_folder_holds_dense_arrays_and_no_crops(reference, tiny_synth):
    from fakelens.data.features import FeatureDataset, step_inputs

    rows = read_index(reference)
    assert len(rows) == 8 and {r["status"] for r in rows} == {"ok"}
    cfg = json.loads((reference / "config.json").read_text())
    assert cfg["kind"] == "features" and cfg["media"]["sampling"] == "all" and cfg["media"]["find_every"] == 4
    assert cfg["encoder"]["visual"]["backbone"] == "tinycnn" and cfg["encoder"]["audio"]["kind"] == "logmel"
    assert (reference / "encoder.pt").is_file()
    for r in rows:
        z = load_npz(reference, r)
        assert "faces" not in z
        t = len(z["times"])
        assert t == r["counts"]["frames"] and abs(t - r["duration"] * 25) <= 1  # every frame of 25 fps
        assert z["visual"].shape == (t, 192) and z["visual"].dtype == np.float16
        assert z["audio"].shape[1] == 80 and z["audio"].dtype == np.float16
        assert abs(len(z["audio_times"]) * 0.04 - r["duration"]) < 0.1  # 40 ms log-mel steps
        np.testing.assert_array_equal(z["indices"], np.arange(t))
        # Haar misses the first frame of train/000001 (and of its fake): found from frame 0 all the
        # same, the face of the next search followed back (find_every=4; before: 0.88, frames 0-3 lost)
        assert z["found"].mean() > 0.9 and int(z["step_frames"]) == 1
        x = step_inputs(z)
        assert x.audio.shape == (t, 80) and x.audio_mask.mean() > 0.95
    ds = FeatureDataset(reference, "train")
    item = ds[0]
    assert item["visual_features"].shape[1] == 192 and item["audio_features"].shape[1] == 80


def _stop_after(out: Path, rows: int, sig: int, cmd: list[str]) -> subprocess.Popen:
    """Start the features job `cmd` and send it `sig` once `rows` videos are finished."""
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            if (out / "rows").is_dir() and len(list((out / "rows").glob("*.json"))) >= rows:
                break
            time.sleep(0.005)
        assert proc.poll() is None, proc.stderr.read().decode()
        proc.send_signal(sig)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc


def _whole(out: Path) -> int:
    """Every finished video's arrays on disk load whole (nothing half-written is left to be read);
    the number of finished videos."""
    finished = sorted((out / "rows").glob("*.json"))
    for f in finished:
        row = json.loads(f.read_text())
        z = load_npz(out, row)
        assert z["visual"].shape[0] == len(z["times"]) == row["counts"]["frames"]
    return len(finished)


def test_killed_and_interrupted_features_job_restarted_equals_uninterrupted(reference, tiny_synth, tmp_path):
    """SIGKILL after 2 videos, then Ctrl-C (SIGINT) after 2 more: each time what is on disk is
    whole, Ctrl-C exits 130 saying so, and the restarted job ends equal to an uninterrupted one."""
    out = tmp_path / "f"
    cmd = [sys.executable, "-m", "fakelens.cli.main", "features", "tinycnn", str(tiny_synth), "--out", str(out), *FAST]
    _stop_after(out, 2, signal.SIGKILL, cmd)
    done = _whole(out)
    assert 2 <= done < 8 and not (out / "index.jsonl").exists()
    proc = _stop_after(out, done + 2, signal.SIGINT, cmd)
    err = proc.stderr.read().decode()
    assert proc.returncode == 130 and "fakelens: interrupted" in err and "Traceback" not in err, err[-3000:]
    done_now = _whole(out)
    assert done + 2 <= done_now < 8 and not (out / "index.jsonl").exists()
    assert not [p for p in out.rglob(".*") if p.is_file()], "temporaries of the interrupted writes left behind"
    assert features(tiny_synth, out) == 0
    assert_same_cache(out, reference)


def test_shards_then_merge_equal_a_single_run(reference, tiny_synth, tmp_path):
    out = tmp_path / "f"
    for i in range(2):  # shard 0 in two worker processes: the same files as in this process
        assert features(tiny_synth, out, "--shard", f"{i}/2", *(["--workers", "2"] if i == 0 else [])) == 0
    assert main(["features", "--out", str(out), "--merge", "--no-progress"]) == 0
    for p in (out / "shards").iterdir():  # the shard indexes are the only extra files
        p.unlink()
    (out / "shards").rmdir()
    assert_same_cache(out, reference)


def test_a_stated_fps_samples_every_kth_frame(tiny_synth, tmp_path):
    """A --fps grid of k = 5 frames a step: step j is frames [5j, 5j + 5) and its frame is the
    middle one, 5j + 2, so the visual frame, the audio averaged into the step and the step's
    target (tested at its centre) stand for the same instant. Features version 1 took frame 5j,
    80 ms (2 frames) before the other two."""
    from fakelens.data.features import step_inputs

    out = tmp_path / "f"
    assert features(tiny_synth, out, "--fps", "5", "--split", "test") == 0
    rows = read_index(out)
    assert len(rows) == 2
    for r in rows:
        z = load_npz(out, r)
        k = int(z["step_frames"])
        assert k == 5 and float(z["fps"]) == 25.0  # 25 fps video, 5 steps a second
        n = len(z["indices"])
        np.testing.assert_array_equal(z["indices"], np.arange(n) * 5 + 2)
        assert int(z["first_frame"]) == 0
        np.testing.assert_allclose(z["times"], z["indices"] / 25.0, atol=1e-3)
        x = step_inputs(z)
        assert x.step_seconds == pytest.approx(0.2) and x.audio.shape[0] == n
        assert x.audio_mask.all()  # 40 ms log-mel steps averaged into each 200 ms step
        np.testing.assert_allclose(x.times, np.arange(n) * 0.2, atol=1e-9)  # the cells did not move
        centres = x.times + x.step_seconds / 2  # where step_labels tests a step's target
        frame_centres = (z["indices"] + 0.5) / 25.0  # frame f shows [f / fps, (f + 1) / fps)
        np.testing.assert_allclose(frame_centres, centres, atol=1e-9)
        at = np.asarray(z["audio_times"])
        bins = np.floor((at - x.origin) / x.step_seconds).astype(int)
        audio_centres = np.array([at[bins == j].mean() for j in range(n) if (bins == j).sum() == 5])
        assert len(audio_centres) >= n - 1
        assert np.abs(audio_centres - centres[:len(audio_centres)]).max() < 0.011  # within one audio step


def test_features_of_an_older_fakelens_are_refused_by_train_and_features(tiny_synth, tmp_path, capsys):
    """A folder of features version 1 (its --fps grids' frames at each step's start) is not
    trained on nor resumed into: both name the version and what changed."""
    out = tmp_path / "f"
    assert features(tiny_synth, out, "--fps", "5", "--split", "test") == 0
    cfg = json.loads((out / "config.json").read_text())
    cfg["version"] = 1
    (out / "config.json").write_text(json.dumps(cfg))
    capsys.readouterr()
    assert main(["train", "--config", "configs/demo_localizer.yaml", "--out", str(tmp_path / "loc"), "--set",
                 f"data.cache={out}", "--set", "data.train_split=test", "--set", "data.val_split=", "--set", "train.epochs=1"]) == 2
    err = capsys.readouterr().err
    assert "features made by an older fakelens (features version 1; this fakelens makes version 2" in err
    assert "step's middle frame" in err and "--force" in err
    assert features(tiny_synth, out, "--fps", "5", "--split", "test") == 2
    assert "made by an older fakelens" in capsys.readouterr().err


def test_a_stated_fps_that_does_not_divide_the_video_rate_is_said(tiny_synth, tmp_path, capsys):
    out = tmp_path / "f"
    assert features(tiny_synth, out, "--fps", "10", "--split", "test") == 0
    assert int(load_npz(out, read_index(out)[0])["step_frames"]) == 2  # every 2nd frame of 25 fps
    assert "--fps 10 on 2 video(s) at 25 fps takes one frame in 2: 12.5 steps/s, not 10" in capsys.readouterr().out


def test_one_split_after_another_keeps_both(tiny_synth, tmp_path):
    """--split val after --split test (as make demo runs train then val): the index holds both
    splits' rows (a --split run prunes only its own split)."""
    out = tmp_path / "f"
    assert features(tiny_synth, out, "--split", "test") == 0
    assert features(tiny_synth, out, "--split", "val") == 0
    assert sorted(r["split"] for r in read_index(out)) == ["test", "test", "val", "val"]


def test_other_encoder_or_sampling_is_refused(reference, tiny_synth, capsys):
    assert features(tiny_synth, reference, "--seed", "1") == 2
    assert "other parameters" in capsys.readouterr().err
    assert features(tiny_synth, reference, "--fps", "5") == 2
    assert "sample_fps" in capsys.readouterr().err
    assert main(["features", "tinycnn", str(tiny_synth), "--out", str(reference), "--audio", "nonsense_net"]) == 2


def test_faceless_silent_and_corrupt_videos_are_recorded(edge_cases, tmp_path, capsys):
    """No audio, no face, an undecodable file: each a status in the index, the job goes on."""
    from fakelens.data.features import FeatureDataset, step_inputs

    out = tmp_path / "f"
    assert main(["features", "tinycnn", str(edge_cases), "--out", str(out), "--size", "32", "--no-progress",
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["by_status"] == {"ok": 1, "no_face": 1, "no_audio": 1, "decode_error": 1}
    rows = {r["id"]: r for r in read_index(out)}
    ok = load_npz(out, rows["real/face.mp4"])
    assert ok["found"].all() and len(ok["times"]) == 10 and np.abs(ok["visual"]).sum() > 0
    silent = rows["real/silent.mp4"]
    assert silent["has_face"] and not silent["has_audio"] and "no audio stream" in silent["message"]
    z = load_npz(out, silent)
    assert z["audio"].shape == (0, 80) and z["visual"].shape == (10, 192)
    x = step_inputs(z)
    assert x.audio.shape == (10, 80) and not x.audio_mask.any() and x.visual_mask.all()
    noface = rows["fake/noface.mp4"]
    assert noface["status"] == "no_face" and not noface["has_face"] and noface["has_audio"]
    z = load_npz(out, noface)
    assert not z["found"].any() and not np.abs(z["visual"].astype(np.float32)).any()  # masked, not filled
    x = step_inputs(z)
    assert not x.visual_mask.any() and x.audio_mask.mean() > 0.8
    bad = rows["fake/corrupt.mp4"]
    assert bad["status"] == "decode_error" and bad["npz"] is None and "corrupt.mp4" in bad["message"]
    assert not (out / "videos" / f"{safe_id('fake/corrupt.mp4')}.npz").exists()
    ds = FeatureDataset(out)  # the three decoded videos train; the corrupt one is left out
    assert sorted(r.id for r in ds.records) == ["fake/noface.mp4", "real/face.mp4", "real/silent.mp4"]
    assert ds.left_out == {"could not be decoded": ["fake/corrupt.mp4"]}  # named in the run's left_out.json
    assert main(["features", "tinycnn", str(edge_cases), "--out", str(out), "--size", "32", "--no-progress",
                 "--json"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["skipped"] + again["processed"] == 4 and again["by_status"] == summary["by_status"]
    # a video with neither a face nor audio (its row as the job writes it): every step masked in both
    # streams, refused by predict ("nothing to localize from"), so training leaves it out too, named
    index = out / "index.jsonl"
    lines = [json.loads(line) for line in index.read_text().splitlines()]
    for r in lines:
        if r["id"] == "fake/noface.mp4":
            r["has_audio"] = False
    index.write_text("".join(json.dumps(r) + "\n" for r in lines))
    ds = FeatureDataset(out)
    assert sorted(r.id for r in ds.records) == ["real/face.mp4", "real/silent.mp4"]
    assert ds.left_out["neither a face nor audio (nothing to localize from)"] == ["fake/noface.mp4"]


def test_training_checks_a_features_folder_version(reference, tmp_path, capsys):
    """check_cache reads a features folder as one (its own version and remedy); an older one is refused."""
    import shutil

    from fakelens.data.cache import check_cache

    folder = tmp_path / "f"
    shutil.copytree(reference, folder)
    check_cache(folder)  # a fresh folder passes
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "version": 0}))
    assert main(["train", "--config", "configs/demo_localizer.yaml", "--out", str(tmp_path / "run"),
                 "--set", f"data.cache={folder}"]) == 2
    err = capsys.readouterr().err
    assert "older fakelens" in err and "fakelens features RUN_OR_ENCODER DATA" in err


def test_stored_features_of_unmerged_shards_are_refused_naming_the_merge(tiny_synth, tmp_path):
    """`predict --features` on a folder whose shards were never merged (no index.jsonl) named
    `fakelens preprocess`; it names `fakelens features ... --merge` (and an unfinished job's rerun)."""
    from fakelens.data.cache import load_config
    from fakelens.errors import FakelensError
    from fakelens.inference.dense import StoredFeatures

    out = tmp_path / "f"
    assert features(tiny_synth, out, "--split", "test", "--shard", "0/2") == 0
    assert not (out / "index.jsonl").exists()
    with pytest.raises(FakelensError) as e:
        StoredFeatures(out, load_config(out))
    assert f"fakelens features --out {out} --merge" in str(e.value) and "preprocess" not in str(e.value)
    (out / "shards").rename(tmp_path / "elsewhere")  # an interrupted job: rows, no shard indexes
    with pytest.raises(FakelensError, match="the features job did not finish"):
        StoredFeatures(out, load_config(out))


def test_a_video_stored_features_could_not_decode_fails_with_the_jobs_message_once(edge_cases, tmp_path):
    """`predict --features` on a video the features job could not decode: the failure reads as
    predicting from the media would ('PATH: cause'); it was prefixed with the id again
    ('fake/corrupt.mp4: /.../corrupt.mp4: ...', then the failure list's own 'fake/corrupt.mp4: ')."""
    from fakelens.data.cache import load_config, record_from_row
    from fakelens.errors import MediaError
    from fakelens.inference.dense import StoredFeatures

    out = tmp_path / "f"
    assert main(["features", "tinycnn", str(edge_cases), "--out", str(out), "--size", "32", "--no-progress"]) == 0
    row = next(r for r in read_index(out) if r["id"] == "fake/corrupt.mp4")
    stored = StoredFeatures(out, load_config(out))
    with pytest.raises(MediaError) as e:
        stored.load(record_from_row(row))
    assert str(e.value) == row["message"] and str(e.value).count("corrupt.mp4") == 1, str(e.value)
