"""A DFDC fake whose original on disk is shorter than the fake (a truncated download, or another
cut of the source) is not compared on the frames the original covers alone: a fake manipulated
only after the original's end differed from it by the re-encoding alone on the frames before,
so every face was 'within data.face_equal_threshold' and a face-only model trained the fake with
every face real (issue 10 review, rev10b)."""

from __future__ import annotations

import json

import av
import numpy as np
import pytest

from fakelens.data.cache import CacheConfig, preprocess, read_index

pytestmark = pytest.mark.slow
SIZE = (216, 384)


def _frames(path):
    with av.open(str(path)) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


def test_a_fake_is_not_judged_equal_on_a_shorter_original(tmp_path):
    from fakelens.atomic import atomic_write_text
    from fakelens.data.dataset import ClipDataset
    from fakelens.data.formats import load_dataset
    from fakelens.data.synthetic.scenes import write_dfdc_people
    from fakelens.io.encode import write_video
    from fakelens.io.video import probe

    truth = write_dfdc_people(tmp_path, n_originals=1, size=SIZE, face=70.0)
    folder = truth.folder
    real, fake = _frames(folder / "real000.mp4"), _frames(folder / "fake000.mp4")
    fps = probe(folder / "real000.mp4").fps
    half = len(real) // 2
    # late000: untouched for its first half, person 0 swapped in the second; its original cut after
    # the first half (short000), so only untouched frames of the fake can be compared
    write_video(folder / "late000.mp4", real[:half] + fake[half:], fps)
    write_video(folder / "short000.mp4", real[:half], fps)
    meta = json.loads((folder / "metadata.json").read_text())
    meta["late000.mp4"] = {"label": "FAKE", "split": "train", "original": "short000.mp4"}
    meta["short000.mp4"] = {"label": "REAL", "split": "train", "original": None}
    atomic_write_text(folder / "metadata.json", json.dumps(meta))
    records = load_dataset(folder).records
    cache = tmp_path / "cache"
    preprocess(records, cache, CacheConfig(n_frames=8, size=32, detector="mtcnn", max_faces=2), progress=False)
    rows = {r["id"]: r for r in read_index(cache)}
    row = rows["late000.mp4"]
    assert len(row["faces"]) == 2, row["faces"]
    ds = ClipDataset(cache, clip_frames=2, random=False)
    v = next(i for i, r in enumerate(ds.rows) if r["id"] == "late000.mp4")
    labels = ds.face_labels(v).tolist()
    # never 'every face real': the fake part of the video was not compared
    assert labels != [0.0, 0.0], (labels, row["faces"], row["original_compared"])
    assert row["original_compared"] != "yes" and "shorter" in row["original_compared"], row["original_compared"]
    assert not any("late000.mp4" in ids for ids in ds.face_label_notes.values())


def test_preprocess_says_which_fakes_were_not_compared_with_their_original(tmp_path, capsys):
    from fakelens.cli.main import main

    data = tmp_path / "data"
    assert main(["data", "synth", str(data), "--preset", "tiny", "--layout", "dfdc", "--quiet"]) == 0
    metas = sorted(data.glob("*/metadata.json"))
    fakes = [(m.parent, v["original"]) for m in metas for v in json.loads(m.read_text()).values()
             if v["label"] == "FAKE" and v.get("original")]
    folder, original = fakes[0]
    (folder / original).unlink()  # a download without that original
    capsys.readouterr()
    assert main(["preprocess", str(data), "--out", str(tmp_path / "cache"), "--frames", "4", "--size", "32",
                 "--detector", "full_frame", "--workers", "0", "--no-progress", "--allow-missing"]) == 0
    out = capsys.readouterr().out
    assert "note: 1 fake(s) not compared with their original" in out, out
    assert "not found (1)" in out, out
    # every original there: no note
    assert main(["data", "synth", str(tmp_path / "whole"), "--preset", "tiny", "--layout", "dfdc", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["preprocess", str(tmp_path / "whole"), "--out", str(tmp_path / "cache2"), "--frames", "4",
                 "--size", "32", "--detector", "full_frame", "--workers", "0", "--no-progress"]) == 0
    assert "not compared with their original" not in capsys.readouterr().out
