"""How one video's arrays are stored in the cache: one compressed npz, big per-frame arrays in chunks.

A training item needs one clip (or one frame) of a video, not its whole face array: members
named in `CHUNKED` (the face crops, (F, T, S, S, 3)) are stored as separate npz members of
`chunk_frames` frames each along their time axis, `faces@0`, `faces@1`, ... Each member of an
npz is compressed and read on its own, so a loader decompresses only the chunks covering the
frames it asks for (`load_faces`, or the lazy `ChunkedArray` that `open_arrays` returns).
Every other member (times, boxes, found, mel, ... whatever keys the writer gives) is stored
whole. Two more members describe the file:
    __layout__   JSON {key: {"axis", "shape", "dtype", "chunk"}} of the chunked members
    __params__   JSON of the parameters (the cache's MediaConfig) the arrays were made with
A reader compares `__params__` with the parameters it expects (the cache's config.json): an npz
made with other parameters, or by a fakelens before cache version 3, is a FormatError, never
silently mixed into a batch.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from fakelens.errors import FormatError

CHUNK_FRAMES = 8  # frames per stored chunk: a clip of 8 frames reads one or two chunks, a frame one
CHUNKED = {"faces": 1}  # member -> time axis of the arrays stored in chunks
LAYOUT, PARAMS = "__layout__", "__params__"


def _json_member(obj: Any) -> np.ndarray:
    return np.frombuffer(json.dumps(obj, sort_keys=True).encode("utf-8"), np.uint8)  # (bytes,) no pickle


def save_arrays(path: str | Path, arrays: Mapping[str, np.ndarray], params: Mapping[str, Any],
                chunk_frames: int = CHUNK_FRAMES) -> None:
    """Write `arrays` to the npz `path` (any keys; those in CHUNKED in chunks of `chunk_frames`)."""
    if chunk_frames < 1:
        raise ValueError(f"chunk_frames must be >= 1, got {chunk_frames}")
    members: dict[str, np.ndarray] = {}
    layout: dict[str, dict[str, Any]] = {}
    for key, value in arrays.items():
        if "@" in key or key in (LAYOUT, PARAMS):
            raise ValueError(f"array key {key!r} is reserved ('@' marks chunks)")
        a = np.asarray(value)
        axis = CHUNKED.get(key)
        if axis is None or a.ndim <= axis:
            members[key] = a
            continue
        n = a.shape[axis]
        for c, start in enumerate(range(0, n, chunk_frames)):
            index = [slice(None)] * a.ndim
            index[axis] = slice(start, min(n, start + chunk_frames))
            members[f"{key}@{c}"] = np.ascontiguousarray(a[tuple(index)])
        layout[key] = {"axis": axis, "shape": list(a.shape), "dtype": a.dtype.str, "chunk": chunk_frames}
    members[LAYOUT] = _json_member(layout)
    members[PARAMS] = _json_member(dict(params))
    np.savez_compressed(path, **members)


class ChunkedArray:
    """A chunked npz member read lazily: `shape`/`dtype` are known, `a[f, frames]` (ints or slices
    on the other axes, anything numpy takes on the time axis) decompresses only the chunks the
    frames fall in; `np.asarray(a)` reads it all. Each read opens the file and closes it."""

    def __init__(self, path: Path, key: str, spec: Mapping[str, Any]):
        self.path = Path(path)
        self.key = key
        self.axis = int(spec["axis"])
        self.shape = tuple(int(s) for s in spec["shape"])
        self.dtype = np.dtype(spec["dtype"])
        self.chunk = int(spec["chunk"])

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"ChunkedArray({self.path.name}:{self.key}, shape={self.shape}, chunk={self.chunk})"

    def _read(self, chunks: Iterable[int]) -> list[np.ndarray]:
        try:
            with np.load(self.path) as z:
                return [z[f"{self.key}@{c}"] for c in chunks]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as e:
            raise FormatError(self.path, f"cannot read {self.key!r} ({type(e).__name__}: {e}); the cache file is "
                              "damaged: re-run `fakelens preprocess` (it redoes damaged videos)") from e

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        n = self.shape[self.axis]
        if n == 0:
            out = np.zeros(self.shape, self.dtype)
        else:
            out = np.concatenate(self._read(range(-(-n // self.chunk))), axis=self.axis)
        return out if dtype is None else out.astype(dtype)

    def __getitem__(self, index: Any) -> np.ndarray:
        index = index if isinstance(index, tuple) else (index,)
        if any(i is Ellipsis or i is None for i in index) or len(index) > self.ndim:
            raise IndexError(f"{self!r}: index with ints/slices and one time index, got {index!r}")
        index = index + (slice(None),) * (self.ndim - len(index))
        for d, i in enumerate(index):
            if d != self.axis and not isinstance(i, (slice, int, np.integer)):
                raise IndexError(f"{self!r}: only the time axis ({self.axis}) takes arrays, got {i!r} on axis {d}")
        n = self.shape[self.axis]
        wanted = np.arange(n)[index[self.axis]]  # frame positions (scalar for an int index)
        flat = np.atleast_1d(wanted)
        chunks = np.unique(flat // self.chunk) if flat.size else np.zeros(0, np.int64)
        # The other axes first on each chunk: (F, chunk, ...) -> the asked face(s) only.
        pre = tuple(i for d, i in enumerate(index) if d < self.axis)
        parts = [p[pre] if pre else p for p in self._read(chunks.tolist())]
        axis = self.axis - sum(isinstance(i, (int, np.integer)) for i in pre)
        if parts:
            part = np.concatenate(parts, axis=axis)
        else:
            shape = list(np.zeros(self.shape[: self.axis], np.int8)[pre].shape) + [0] + list(self.shape[self.axis + 1:])
            part = np.zeros(shape, self.dtype)
        starts = np.zeros(int(chunks.max()) + 1 if len(chunks) else 0, np.int64)
        starts[chunks] = np.cumsum([0] + [p.shape[axis] for p in parts[:-1]])  # offset of each chunk in part
        local = starts[flat // self.chunk] + flat % self.chunk
        local_index = local[0] if np.ndim(wanted) == 0 else local
        post = tuple(index[self.axis + 1:])
        return part[(slice(None),) * axis + (local_index,) + post]


def _decode_json(z: Any, name: str, path: Path) -> Any:
    return json.loads(z[name].tobytes().decode("utf-8"))


def open_arrays(path: str | Path, keys: Iterable[str] | None = None, expect: Mapping[str, Any] | None = None,
                lazy: bool = True) -> dict[str, Any]:
    """Arrays of one stored npz: all (keys=None) or `keys`. Chunked members are `ChunkedArray`s
    (lazy=True) or read whole; the others are read now. With `expect`, the parameters recorded in
    the file must equal it (FormatError otherwise)."""
    path = Path(path)
    try:
        with np.load(path) as z:
            files = set(z.files)
            if expect is not None:
                check_params(path, _decode_json(z, PARAMS, path) if PARAMS in files else None, expect)
            layout = _decode_json(z, LAYOUT, path) if LAYOUT in files else {}
            names = [f for f in z.files if "@" not in f and f not in (LAYOUT, PARAMS)] + list(layout)
            out: dict[str, Any] = {}
            for key in (names if keys is None else keys):
                if key in layout:
                    out[key] = ChunkedArray(path, key, layout[key])
                elif key in files and "@" not in key:
                    out[key] = z[key]
                else:
                    raise FormatError(path, f"no array {key!r} in the cached file (it has {sorted(names)})")
    except FormatError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError, json.JSONDecodeError) as e:
        raise FormatError(path, f"cannot read the cached arrays ({type(e).__name__}: {e}); the file is damaged "
                          "or half-written: re-run `fakelens preprocess` (it redoes damaged videos)") from e
    if not lazy:
        out = {k: np.asarray(v) if isinstance(v, ChunkedArray) else v for k, v in out.items()}
    return out


def read_params(path: str | Path) -> dict[str, Any] | None:
    """The parameters recorded in a stored npz (None when it has none: made before cache version 3)."""
    with np.load(path) as z:
        return _decode_json(z, PARAMS, Path(path)) if PARAMS in z.files else None


def check_params(path: Path, found: Mapping[str, Any] | None, expect: Mapping[str, Any]) -> None:
    """FormatError unless the parameters recorded in an npz are the expected ones."""
    if found is None:
        raise FormatError(path, "records no preprocessing parameters (made by a fakelens before cache version 3); "
                          "re-run `fakelens preprocess --force` on this cache")
    if dict(found) != dict(expect):
        diff = ", ".join(f"{k}: {found.get(k)!r} here, {expect.get(k)!r} in the cache"
                         for k in sorted(set(found) | set(expect)) if found.get(k) != expect.get(k))
        raise FormatError(path, f"made with other parameters than its cache ({diff}); the cache mixes runs: "
                          "re-run `fakelens preprocess --force`")


def file_size(path: str | Path) -> int | None:
    try:
        return os.stat(path).st_size
    except FileNotFoundError:
        return None
