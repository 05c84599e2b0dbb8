"""How a video's arrays are stored (fakelens.data.arrays): chunked face crops read without the
rest, any keys, recorded parameters checked on load; and what a training item decompresses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakelens.data.arrays import ChunkedArray, open_arrays, read_params, save_arrays
from fakelens.errors import FormatError

PARAMS = {"size": 8, "n_frames": 20, "version": 3}


def _arrays(f=2, t=20, s=4, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"faces": rng.integers(0, 255, (f, t, s, s, 3), dtype=np.uint8),  # (F, T, S, S, 3)
            "times": np.arange(t) / 25.0, "found": rng.random((f, t)) > 0.3,
            "confidence": rng.random((f, t)).astype(np.float32),  # a key the writer has never heard of
            "mel": rng.random((5, 7)).astype(np.float16), "fps": np.float64(25.0)}


class _Reads:
    """Records the npz members decompressed (NpzFile.__getitem__)."""

    def __init__(self, monkeypatch):
        self.members: list[str] = []
        real = np.lib.npyio.NpzFile.__getitem__

        def getitem(z, key):
            self.members.append(key)
            return real(z, key)

        monkeypatch.setattr(np.lib.npyio.NpzFile, "__getitem__", getitem)


def test_round_trip_of_any_keys(tmp_path):
    a = _arrays()
    save_arrays(tmp_path / "v.npz", a, PARAMS, chunk_frames=8)
    back = open_arrays(tmp_path / "v.npz", expect=PARAMS, lazy=False)
    assert set(back) == set(a)
    for k in a:
        np.testing.assert_array_equal(back[k], a[k], err_msg=k)
        assert back[k].dtype == a[k].dtype
    assert read_params(tmp_path / "v.npz") == PARAMS
    lazy = open_arrays(tmp_path / "v.npz")["faces"]
    assert isinstance(lazy, ChunkedArray) and lazy.shape == a["faces"].shape and lazy.dtype == np.uint8


def test_a_clip_decompresses_only_its_chunks(tmp_path, monkeypatch):
    a = _arrays(t=32)
    save_arrays(tmp_path / "v.npz", a, PARAMS, chunk_frames=8)
    faces = open_arrays(tmp_path / "v.npz", ("faces",))["faces"]
    reads = _Reads(monkeypatch)
    np.testing.assert_array_equal(faces[0, np.arange(10, 14)], a["faces"][0, 10:14])
    assert reads.members == ["faces@1"]
    reads.members.clear()
    np.testing.assert_array_equal(faces[1, [6, 7, 8, 9]], a["faces"][1, [6, 7, 8, 9]])  # across a chunk border
    assert reads.members == ["faces@0", "faces@1"]
    reads.members.clear()
    np.testing.assert_array_equal(faces[0, [31, 0]], a["faces"][0, [31, 0]])  # sparse frames: two chunks, not four
    assert sorted(reads.members) == ["faces@0", "faces@3"]


@settings(max_examples=60, deadline=None)
@given(f=st.integers(0, 3), t=st.integers(0, 19), chunk=st.integers(1, 9), data=st.data())
def test_lazy_indexing_equals_numpy(tmp_path_factory, f, t, chunk, data):
    a = np.arange(f * t * 2 * 3, dtype=np.int32).reshape(f, t, 2, 3)  # (F, T, 2, 3)
    path = tmp_path_factory.mktemp("z") / "v.npz"
    save_arrays(path, {"faces": a}, PARAMS, chunk_frames=chunk)
    lazy = open_arrays(path)["faces"]
    np.testing.assert_array_equal(np.asarray(lazy), a)
    if f == 0:
        return
    face = data.draw(st.one_of(st.integers(-f, f - 1), st.just(slice(None)), st.just(slice(0, f, 2))))
    if t == 0:
        time_index = st.just(slice(None))
    else:
        time_index = st.one_of(st.integers(-t, t - 1), st.lists(st.integers(0, t - 1), max_size=12).map(np.array),
                               st.builds(slice, st.integers(0, t), st.integers(0, t), st.sampled_from([None, 1, 2, 3])),
                               st.lists(st.booleans(), min_size=t, max_size=t).map(np.array))
    ti = data.draw(time_index)
    if isinstance(ti, np.ndarray) and ti.dtype != bool:
        ti = ti.astype(np.int64)
    np.testing.assert_array_equal(lazy[face, ti], a[face, ti])
    np.testing.assert_array_equal(lazy[face, ti, 1], a[face, ti, 1])


def test_parameters_are_checked_on_load(tmp_path):
    save_arrays(tmp_path / "v.npz", _arrays(), {**PARAMS, "size": 48})
    with pytest.raises(FormatError, match=r"other parameters.*size: 48 here, 8 in the cache"):
        open_arrays(tmp_path / "v.npz", expect=PARAMS)
    np.savez_compressed(tmp_path / "old.npz", faces=np.zeros((1, 2, 4, 4, 3), np.uint8))  # before cache version 3
    with pytest.raises(FormatError, match="records no preprocessing parameters"):
        open_arrays(tmp_path / "old.npz", expect=PARAMS)
    (tmp_path / "empty.npz").write_bytes(b"")  # a power loss before the data reached the disk
    with pytest.raises(FormatError, match="damaged"):
        open_arrays(tmp_path / "empty.npz", expect=PARAMS)


def test_reserved_keys_are_refused(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        save_arrays(tmp_path / "v.npz", {"faces@1": np.zeros(1)}, PARAMS)


@pytest.fixture(scope="module")
def cache(tiny_synth, tmp_path_factory) -> Path:
    from fakelens.data.cache import CacheConfig, preprocess
    from fakelens.data.formats import load_dataset

    out = tmp_path_factory.mktemp("cache") / "c"
    preprocess(load_dataset(tiny_synth).records, out, CacheConfig(n_frames=24, size=32, detector="haar"),
               progress=False)
    return out


def test_a_training_item_reads_only_its_clip(cache, monkeypatch):
    """25 ms per item went to decompressing all faces of the video for the one clip used."""
    from fakelens.data.dataset import AllClips, ClipDataset, FrameDataset

    ds = ClipDataset(cache, clip_frames=8, random=True)
    reads = _Reads(monkeypatch)
    item = ds[0]
    faces = [m for m in reads.members if m.startswith("faces")]
    assert item["video"].shape == (1, 8, 3, 32, 32)  # (F, T, 3, S, S): the cache keeps one face
    assert "faces" not in faces and 1 <= len(faces) <= 2, faces  # 24 frames = 3 chunks; a clip touches <= 2
    reads.members.clear()
    FrameDataset(cache, random=True)[3]
    assert len([m for m in reads.members if m.startswith("faces")]) == 1
    reads.members.clear()
    val = AllClips(ClipDataset(cache, clip_frames=8, random=False))
    for i in range(len(val)):
        val[i]
    faces = [m for m in reads.members if m.startswith("faces")]
    # each clip decompresses only the chunks its frames fall in (a clip of a face's run of frames
    # that starts off a chunk boundary touches two), never the whole video
    from fakelens.data.arrays import CHUNK_FRAMES

    base = val.base
    touched = sum(len(np.unique(t.picks[k][t.mask[k]] // CHUNK_FRAMES))
                  for v in range(len(val.records)) for _, t in base.face_tilings(v) for k in range(len(t.picks)))
    assert len(faces) == touched and len(val) <= touched <= 2 * len(val)


def test_load_faces_api(cache):
    from fakelens.data.cache import load_faces, load_npz, read_index

    row = read_index(cache)[0]
    full = load_npz(cache, row)["faces"]
    assert full.shape == (1, 24, 32, 32, 3)
    np.testing.assert_array_equal(load_faces(cache, row, face=0, frames=[3, 17]), full[0, [3, 17]])
    np.testing.assert_array_equal(load_faces(cache, row), full[0])
    np.testing.assert_array_equal(load_faces(cache, row, frames=slice(8, 16)), full[0, 8:16])
