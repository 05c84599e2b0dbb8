"""Torch datasets over a preprocessing cache: documented item shapes, labels from segments, loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fakelens.data.cache import CacheConfig, load_npz, preprocess, read_index
from fakelens.data.dataset import CACHE_DATASETS, PER_VIDEO_KEYS, AudioDataset, AVDataset, ClipDataset, FrameDataset
from fakelens.types import frame_labels, segments_from_pairs

T = 8  # sampled frames per video in the test cache


def _face(item: dict, f: int = 0) -> dict:
    """Face slot f of a training item (per-face keys have a leading face axis)."""
    return {k: v[f] if isinstance(v, torch.Tensor) and k not in PER_VIDEO_KEYS else v for k, v in item.items()}


@pytest.fixture(scope="module")
def cache(tiny_synth, tmp_path_factory) -> Path:
    from fakelens.data.formats import load_dataset

    out = tmp_path_factory.mktemp("cache") / "c"
    preprocess(load_dataset(tiny_synth).records, out, CacheConfig(n_frames=T, size=32, detector="haar"), progress=False)
    return out


@pytest.fixture(scope="module")
def meta(tiny_synth) -> dict:
    return {e["file"]: e for s in ("train", "val", "test") for e in json.loads((tiny_synth / f"{s}_metadata.json").read_text())}


def _expected(meta_entry: dict, key: str, indices: np.ndarray) -> np.ndarray:
    segs = segments_from_pairs(meta_entry[key])
    return frame_labels(segs, 25.0, int(indices.max()) + 1)[indices].astype(np.float32)


@pytest.fixture(scope="module")
def features_folder(tiny_synth, tmp_path_factory) -> Path:
    """The tiny set's dense features (`fakelens features`: every frame, random-init tinycnn, log-mel)."""
    from fakelens.data.formats import load_dataset
    from fakelens.features.media import MediaConfig
    from fakelens.inference.dense import run_features

    out = tmp_path_factory.mktemp("feats") / "f"
    run_features("tinycnn", load_dataset(tiny_synth).records, out, progress=False,
                 media=MediaConfig(sampling="all", size=32, detector="full_frame", max_faces=1))
    return out


@pytest.mark.parametrize("name", CACHE_DATASETS.names())
def test_every_dataset_builds_and_batches(name, cache, request):
    folder = request.getfixturevalue("features_folder") if name == "features" else cache  # whole videos of features
    ds = CACHE_DATASETS.get(name)(folder)
    loader = torch.utils.data.DataLoader(ds, batch_size=3, shuffle=False, collate_fn=getattr(ds, "collate", None))
    batch = next(iter(loader))
    faces = () if name in ("audio", "features") else (1,)  # one face slot per item: the cache keeps one face
    assert batch["label"].shape == (3, *faces) and batch["label"].dtype == torch.float32
    assert len(batch["id"]) == 3
    if faces:
        assert batch["face_mask"].shape == (3, 1) and batch["face_mask"].all() and batch["video_label"].shape == (3,)


def test_frame_dataset(cache, meta):
    ds = FrameDataset(cache, frames_per_video=3, random=False)
    assert len(ds) == 8 * 3
    item = _face(ds[4])  # second video, second frame: a one-frame clip
    assert item["video"].shape == (1, 3, 32, 32) and item["video"].dtype == torch.float32
    assert 0.0 <= item["video"].min() and item["video"].max() <= 1.0
    assert item["mask"].tolist() == [True] and item["times"].shape == (1,)
    row = ds.rows[1]
    z = load_npz(cache, row)
    n = z["faces"].shape[1]
    t = min(n - 1, int(1.5 * n / 3))  # evenly spaced: frame (j + 0.5) * n / k for j = 1, k = 3
    assert item["times"][0] == pytest.approx(float(z["times"][t]))
    np.testing.assert_allclose(item["video"][0].permute(1, 2, 0).numpy() * 255, z["faces"][0, t], atol=1e-3)
    assert item["video_label"] == (1.0 if meta[row["id"]]["modify_type"] != "real" else 0.0)
    frame_label = _expected(meta[row["id"]], "fake_segments", z["indices"][t : t + 1])[0]
    assert item["frame_labels"].tolist() == [frame_label] and item["label"] == frame_label
    with pytest.raises(ValueError, match="frames_per_video"):
        FrameDataset(cache, frames_per_video=0)
    raw = FrameDataset(cache, as_uint8=True)[0]["video"]
    assert raw.dtype == torch.uint8 and raw.shape == (1, 1, 3, 32, 32)  # (F, T, 3, S, S)


def test_clip_labels_come_from_segments(cache, meta):
    ds = ClipDataset(cache, clip_frames=T, random=False)
    mixed = 0
    for i in range(len(ds)):
        item = _face(ds[i])
        mask = item["mask"].numpy()
        assert item["video"].shape == (T, 3, 32, 32) and mask.any()
        # the clip lies on the face's frames: padding (masked) only where the face was not found
        found = load_npz(cache, ds.rows[i], ("found",))["found"][0]
        assert mask.sum() == min(T, found.sum()) and mask[0] and (mask.all() or not found.all())
        m = meta[item["id"]]
        idx = np.round(item["times"].numpy() * 25).astype(np.int64)
        # a face-only model's frame labels are the visual stream's (AV-Deepfake1M says which stream is
        # fake; an audio-only fake's face is real to a model that cannot hear)
        fl = _expected(m, "visual_fake_segments", idx)
        np.testing.assert_array_equal(item["frame_labels"].numpy(), fl)
        assert item["label"] == fl[mask].max()
        assert item["visual_label"] == _expected(m, "visual_fake_segments", idx)[mask].max()
        assert item["audio_label"] == _expected(m, "audio_fake_segments", idx)[mask].max()
        assert item["video_label"] == float(m["modify_type"] != "real")
        mixed += 0 < fl.sum() < T
    assert mixed >= 1  # some clip holds real and fake frames: labels really are per frame


def test_per_stream_frame_labels_keep_audio_fakes_off_the_face(cache, meta):
    """visual_frame_labels follow the visual segments only: an audio-only fake's faces are real."""
    ds = AVDataset(cache, clip_frames=T, random=False)
    audio_only = 0
    for i in range(len(ds)):
        item = _face(ds[i])
        m = meta[item["id"]]
        idx = np.round(item["times"].numpy() * 25).astype(np.int64)
        np.testing.assert_array_equal(item["visual_frame_labels"].numpy(), _expected(m, "visual_fake_segments", idx))
        # the audio-visual model hears the voice: its frame labels are fake in any stream
        np.testing.assert_array_equal(item["frame_labels"].numpy(), _expected(m, "fake_segments", idx))
        if m["audio_fake_segments"] and not m["visual_fake_segments"]:
            audio_only += 1
            assert item["visual_frame_labels"].sum() == 0 and item["audio_frame_labels"].max() == 1
    assert audio_only >= 1  # the tiny preset holds an audio-only fake
    assert ClipDataset(cache, clip_frames=T, random=False)[0]["visual_frame_labels"].shape == (1, T)


def test_short_videos_are_padded_and_masked(cache):
    item = _face(ClipDataset(cache, clip_frames=T + 3, random=False)[0])
    assert item["video"].shape == (T + 3, 3, 32, 32)
    assert item["mask"].tolist() == [True] * T + [False] * 3
    assert torch.equal(item["video"][-1], item["video"][T - 1])


def test_audio_windows_and_labels(cache, meta):
    ds = AudioDataset(cache, window_seconds=0.5, random=False)
    for i in range(len(ds)):
        item = ds[i]
        assert item["audio"].shape == (1, 80, 50) and item["audio"].dtype == torch.float32
        times = item["audio_times"].numpy()
        np.testing.assert_allclose(np.diff(times), 0.01, atol=1e-5)
        segs = segments_from_pairs(meta[item["id"]]["audio_fake_segments"])
        want = np.array([any(s.start <= t < s.end for s in segs) for t in times], np.float32)
        edge = np.array([any(min(abs(t - s.start), abs(t - s.end)) < 1e-4 for s in segs) for t in times])
        np.testing.assert_array_equal(item["audio_frame_labels"].numpy()[~edge], want[~edge])  # float32 times
        assert item["label"] == want.max()


def test_av_items_are_aligned(cache):
    ds = AVDataset(cache, clip_frames=4, random=True)
    torch.manual_seed(0)
    item = _face(ds[2])
    assert item["video"].shape == (4, 3, 32, 32) and item["audio"].shape == (1, 80, ds.width)
    assert abs(float(item["audio_times"][0]) - float(item["times"][0])) <= 0.01
    span = float(item["times"][-1] - item["times"][0])
    assert ds.width * 0.01 >= span  # the window covers the clip
    torch.manual_seed(0)
    again = _face(ds[2])
    assert torch.equal(item["times"], again["times"])  # seeded through torch


def test_split_filter_transform_and_labels(cache):
    train = FrameDataset(cache, "train", transform=lambda it: {**it, "flipped": it["video"].flip(-1)})
    assert len(train) == 4 and {r["split"] for r in train.rows} == {"train"}
    item = train[0]  # the transform runs on each face's clip, before the faces are stacked
    assert torch.equal(item["flipped"], item["video"].flip(-1))
    assert set(train.labels.tolist()) <= {0.0, 1.0}
    with pytest.raises(Exception, match="no cached videos"):
        FrameDataset(cache, "nonexistent")


def test_rows_without_faces_or_audio_are_left_out(cache, tmp_path):
    import shutil

    out = tmp_path / "c"
    shutil.copytree(cache, out)
    rows = read_index(out)
    rows[0]["has_audio"] = False
    rows[1]["has_face"] = False
    (out / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert len(AudioDataset(out)) == 7 and len(ClipDataset(out)) == 7 and len(AVDataset(out)) == 6


def test_tile_clips_ends_the_last_clip_at_the_last_frame():
    from fakelens.data.dataset import tile_clips

    picks, masks, counted = tile_clips(10, 4)
    assert picks.shape == masks.shape == counted.shape == (3, 4)  # ceil(10 / 4) clips
    assert picks.tolist() == [[0, 1, 2, 3], [4, 5, 6, 7], [6, 7, 8, 9]]  # the last clip overlaps, no padding
    assert masks.all()
    assert counted.tolist() == [[True] * 4, [True] * 4, [False, False, True, True]]  # frames 6, 7 counted once
    picks, masks, counted = tile_clips(8, 4)  # exact fit
    assert picks.shape == (2, 4) and masks.all() and counted.all() and picks[-1, -1] == 7
    picks, masks, counted = tile_clips(2, 5)  # shorter than one clip: the only padded case
    assert picks.tolist() == [[0, 1, 1, 1, 1]] and masks.tolist() == [[True, True, False, False, False]]
    assert counted.tolist() == masks.tolist()
    picks, masks, counted = tile_clips(0, 4)
    assert picks.shape == (0, 4) and masks.shape == (0, 4)
    for n, c in ((23, 6), (17, 8), (9, 8), (8, 8), (1, 3), (31, 1)):
        t = tile_clips(n, c)
        assert sorted(t.picks[t.counted].tolist()) == list(range(n))  # every frame counted exactly once
        assert (t.picks[t.mask] < n).all() and (t.mask.all() or n < c)
    with pytest.raises(ValueError):
        tile_clips(5, 0)


def test_tile_windows_cover_the_mel_frames():
    from fakelens.data.dataset import tile_windows

    assert tile_windows(100, 40).tolist() == [0, 40, 60]  # the last window ends at the last mel frame
    assert tile_windows(80, 40).tolist() == [0, 40]
    assert tile_windows(30, 40).tolist() == [0]  # shorter than one window: padded (and masked)
    assert tile_windows(0, 40).tolist() == [0]  # always one window
    with pytest.raises(ValueError):
        tile_windows(10, 0)


@pytest.mark.parametrize("name,kw", [("clips", {"clip_frames": 3}), ("av", {"clip_frames": 3}),
                                     ("audio", {"window_seconds": 0.4})])
def test_all_clips_yields_every_clip_of_every_video(cache, name, kw):
    """Validation (AllClips) feeds the model exactly the clips predict cuts: every face track tiled
    over its OWN found frames (`tile_face`, as Predictor._clips), not `tile_clips` over every sampled
    frame, so a frame without that face is never fed nor scored (with a face lost in the last
    sampled frame, tile_clips' last clip would hold it: [F, T, T] counted against [F, F, T]); every
    found frame is counted exactly once; audio windows as `tile_windows` cuts them."""
    from fakelens.data.dataset import AllClips, clip_audio_window, clip_span, mel_window, tile_face, tile_windows
    from fakelens.data.tiling import face_frames

    base = CACHE_DATASETS.get(name)(cache, "val", random=False, **kw)
    ds = AllClips(base)
    assert len(ds.labels) == len(ds.records) == len(base.rows)
    z = [load_npz(cache, row) for row in base.rows]
    if name == "audio":
        starts = [tile_windows(len(zz["mel_times"]), base.width) for zz in z]
        assert len(ds) == sum(len(s) for s in starts) > len(base.rows)
    else:
        found = [face_frames(zz["found"], bool(row.get("fallback"))) for zz, row in zip(z, base.rows)]
        tiles = [[(f, tile_face(fr[f], 3)) for f in range(len(fr))] for fr in found]  # per video: (face, tiling)
        clips = [[(f, t.picks[k], t.mask[k], t.counted[k]) for f, t in tv for k in range(len(t.picks))] for tv in tiles]
        assert len(ds) == sum(len(c) for c in clips) >= len(base.rows)
        assert any(not fr.all() for fr in found)  # the case at stake: a face missing from some sampled frames
    seen: dict[tuple[int, int], list[int]] = {}
    for i in range(len(ds)):
        item = ds[i]
        j, k = item["video_index"], item["clip_index"]
        assert item["id"] == base.records[j].id and item["video_label"] == base.labels[j]
        if name == "audio":
            mel, _, mask = mel_window(z[j], float(z[j]["mel_times"][starts[j][k]]), base.width)
            assert torch.equal(item["audio"][0], torch.from_numpy(mel)) and item["audio_mask"].tolist() == mask.tolist()
            continue
        f, pick, mask, counted = clips[j][k]
        assert int(item["face_index"]) == f
        assert item["mask"].tolist() == mask.tolist() and item["counted"].tolist() == counted.tolist()
        assert item["found"][item["mask"]].all()  # no frame without the face is fed unmasked, nor counted
        seen.setdefault((j, f), []).extend(pick[counted].tolist())
        np.testing.assert_array_equal(item["times"].numpy(), z[j]["times"][pick].astype(np.float32))
        assert torch.equal(item["video"], torch.from_numpy(z[j]["faces"][f, pick]).permute(0, 3, 1, 2).float() / 255)
        if name == "av":  # the audio of the clip's own span, as predict cuts it
            t0, t1 = clip_span(z[j]["times"], pick, mask, float(z[j]["fps"]))
            mel, _, amask = clip_audio_window(z[j], t0, t1, base.width)
            assert torch.equal(item["audio"][0], torch.from_numpy(mel)) and item["audio_mask"].tolist() == amask.tolist()
    if name != "audio":  # every found frame of every face counted exactly once
        for (j, f), frames in seen.items():
            assert sorted(frames) == np.flatnonzero(found[j][f]).tolist()
    sub = AllClips(base, [1])
    assert {sub[i]["id"] for i in range(len(sub))} == {base.records[1].id} and sub.labels.tolist() == [base.labels[1]]
    with pytest.raises(ValueError, match="deterministic"):
        AllClips(CACHE_DATASETS.get(name)(cache, "val", random=True, **kw))
    if name == "clips":
        with pytest.raises(Exception, match="no whole-video tiling"):
            AllClips(FrameDataset(cache, "val", random=False))


def test_old_caches_are_refused_and_faceless_rows_left_out(cache, tmp_path):
    """A cache of an older version (one face, no detection confidence) is refused with the way out;
    a video whose face tracks have no found frame is left out, with its reason counted."""
    import json
    import shutil

    old = tmp_path / "old"
    shutil.copytree(cache, old)
    cfg = json.loads((old / "config.json").read_text())
    (old / "config.json").write_text(json.dumps({**cfg, "version": 3}))
    with pytest.raises(Exception, match=r"cache version 3, this fakelens reads version \d+.*preprocess"):
        ClipDataset(old)

    lost = tmp_path / "lost"
    shutil.copytree(cache, lost)
    rows = read_index(lost)
    rows[0]["faces"] = [{**f, "found": 0, "runs": []} for f in rows[0]["faces"]]
    (lost / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    ds = ClipDataset(lost)
    assert rows[0]["id"] not in [r["id"] for r in ds.rows]
    assert ds.left_out == {"no frame with a found face (the model needs face crops)": [rows[0]["id"]]}
    assert AudioDataset(lost).left_out == {}  # an audio model still gets it


def test_a_split_none_of_whose_videos_can_be_used_says_why_in_counts(layout_cache):
    """Before: `train --set data.val_split=test` on DFDC (the test videos are unlabelled) said
    "no cached videos match (split=test, statuses=None, needs face=True, audio=False)": the
    dataset's arguments, not the reason. Now the reasons of the videos left out, counted."""
    from fakelens.data.dataset import ClipDataset
    from fakelens.errors import FakelensError

    _, cache = layout_cache("dfdc")
    with pytest.raises(FakelensError) as e:
        ClipDataset(cache, "test", labeled_only=True, clip_frames=4)
    said = str(e.value)
    assert "no cached video of split 'test' can be used: unlabelled: 2 videos" in said, said
    assert "a test split's labels are not public" in said and "statuses=None" not in said
