"""The preprocessing cache (face crops + log-mels per video) and the resumable job that fills it.

Training reads small uint8 tensors from here instead of decoding 1080p video again.

Layout of a cache folder CACHE/:
    config.json            the `CacheConfig` used (sampling, crop, detector, mel parameters), created
                           atomically with an exclusive create: of two runs started together with
                           other parameters exactly one wins, the other is refused. A run with other
                           parameters is refused unless force=True (--force), which empties the cache.
    videos/<safe_id>.npz   one per decodable video (fakelens.data.arrays: compressed, the face crops
                           in chunks of CHUNK_FRAMES frames so a clip is read without the rest, and
                           the parameters it was made with, checked on every load), arrays:
                             faces     (F, T, S, S, 3) uint8  crops of the F <= max_faces face tracks, the one
                                                              with the most detections first (F=0: no face)
                             times     (T,) float64           seconds of the sampled frames
                             indices   (T,) int64             video frame indices of the sampled frames
                             boxes     (F, T, 4) float32      face boxes x1 y1 x2 y2 in original pixels
                             found     (F, T) bool            the face is there: detected, or interpolated inside
                                                              its track (False: outside the track, where its last
                                                              box is held, or the full-frame fallback); models,
                                                              losses and aggregations see found frames only
                             detection (F, T) float32         the detector's confidence where the track was
                                                              detected on that frame, 0 where not (interpolated)
                             face_diff (F, T) float32         a fake compared with its original (max_faces > 1 and
                                                              the record names an `original` that is found): mean
                                                              absolute difference of the two crops at the same
                                                              box and time, grey levels (fakelens.features.originals);
                                                              NaN where not found or not compared
                             crop_boxes (F, T, 4) float32     crop mode roi only: the box each crop was cut
                                                              around (one per track and clip window)
                             mel       (n_mels, M) float16    natural-log mel power (M=0: no audio)
                             mel_times (M,) float64           seconds of the mel frame centres
                             fps, duration, width, height     () scalars of the video
    rows/<safe_id>.json    the video's index row, written after its npz: its presence means "done".
    shards/index-I-of-N.jsonl, shards/config-I-of-N.json, shards/scope-I-of-N.json
                           the rows, the parameters and the part of the dataset (its split or all) of
                           shard I, written when shard I finishes; `--merge` refuses shards made with
                           other parameters than config.json or over different parts.
    index.jsonl            one row per video of the dataset, sorted by id (assembled at the end of a
                           run or by merge; rows of videos gone from the dataset -- from its metadata,
                           or missing on disk with --allow-missing -- are dropped; a run over one
                           --split keeps the rows of the other splits and drops only its own):
                             id, status ("ok" | "no_face" | "no_audio" | "decode_error"), message,
                             label, split, segments, visual_segments, audio_segments, modality,
                             original, source, path, npz (relative to CACHE, null on decode_error),
                             fallback, has_face, has_audio, fps, duration,
                             faces [{runs: [[start, stop], ...] sampled-frame positions where the face is
                             found, found, detection (mean confidence where detected), diff (the track's
                             difference from the original, fakelens.features.originals.face_difference, or
                             null)}, ...] one per face track, original_compared (why not, when it was not),
                             file {size, mtime_ns, hash, sha1}: the source video as it was read,
                             params (digest of config.json), npz_bytes (size of the npz written),
                             counts {frames, detect_runs (full-frame detections), detected (frames
                             with a face), refined (frames where faces were followed), found,
                             tracks, mel_frames},
                             timings {probe, decode (waiting for frames: decoding overlaps
                             detection), detect, track, crop, audio, write, total} seconds.
Status priority: decode_error > no_face > no_audio > ok (a faceless silent video is "no_face",
has_audio tells the rest).

When a row is reused: a re-run recomputes a video unless its row was made with these parameters,
its npz has the size written, and its source file is unchanged, as `verify` checks it:
  "stat" (default)  same size and mtime_ns; when only the mtime changed (a copied dataset), the
                    same fast hash (SHA-1 of the size and 3 x 64 KiB samples: start, middle, end)
  "hash"            same size and always the same fast hash: catches a rewrite that kept size
                    and mtime, unless it changed bytes outside the three samples only
  "full"            same size and the same SHA-1 of the whole file (reads every video once more:
                    as slow as copying the dataset; catches any change). Rows made before the
                    whole-file hash was recorded are recomputed. A row whose label fields (label, split, segments, modality, path, ...) differ from
the dataset's record is rewritten from the record without recomputing the crops. Videos that
failed (decode_error) are retried on every run; force=True recomputes every video.

Kill-and-restart safety: every file is written to a temporary name beside it, fsynced and renamed;
a video's row is written only after its npz, so a row means a complete npz. A restart redoes
what has no valid row and assembles index.jsonl from rows sorted by id, so a killed-and-restarted
job ends with the same cache as an uninterrupted one (rows differ only in timings). Temporary
files of dead writers are removed (fakelens.atomic.remove_stale_temporaries), never those of a
concurrent shard still writing. Worker processes exit when their parent dies. A full disk or a
folder that cannot be written stops the job with an OutputError naming the folder; what was
finished stays, and the same command resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

import numpy as np

from fakelens.atomic import (atomic_create_text, atomic_output, atomic_write_text, ensure_writable,
                             remove_stale_temporaries)
from fakelens.data.arrays import (CHUNK_FRAMES, ChunkedArray, check_params, file_size, open_arrays, read_params,
                                  save_arrays)
from fakelens.errors import ConfigError, FakelensError, FormatError, MediaError, OutputError
from fakelens.features.media import (  # re-exported: a cache records the media config of its features
    CACHE_VERSION, MEL_DTYPE, SAMPLINGS, MediaConfig, VideoFeatures, cache_version_change, compute_features,
    release_large_allocations, sampling_for)

from fakelens.types import Label, Modality, VideoRecord, segments_from_pairs

CacheConfig = MediaConfig  # the parameters a cache was made with are the media config of its features
STATUSES = ("ok", "no_face", "no_audio", "decode_error")
VERIFY = ("stat", "hash", "full")
HASH_BLOCK = 64 * 1024  # bytes of each of the 3 samples (start, middle, end) of the fast file hash
RECORD_FIELDS = ("id", "path", "label", "split", "segments", "visual_segments", "audio_segments", "modality",
                 "original", "source")


# ------------------------------------------------------------------------------------ names, paths


def safe_id(video_id: str) -> str:
    """A file-name-safe, collision-free name for an id (ids contain '/' in some datasets)."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", video_id).strip("._")[:80] or "video"
    return f"{slug}-{hashlib.sha1(video_id.encode('utf-8')).hexdigest()[:10]}"


def shard_of(video_id: str, n_shards: int) -> int:
    """Deterministic shard of an id: its SHA-1 modulo n_shards (same on every machine)."""
    return int(hashlib.sha1(video_id.encode("utf-8")).hexdigest(), 16) % n_shards


def parse_shard(text: str) -> tuple[int, int]:
    """'I/N' -> (I, N) with 0 <= I < N."""
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", text)
    if not m or not 0 <= int(m.group(1)) < int(m.group(2)):
        raise ConfigError(f"--shard must be I/N with 0 <= I < N, got {text!r}")
    return int(m.group(1)), int(m.group(2))


def _normal(params: dict[str, Any]) -> dict[str, Any]:
    """Parameters as the digest sees them: each number of the type its CacheConfig field declares
    (a size of 224.0 read from a YAML or JSON file is the int size 224, a sample_fps of 5 the float
    5.0), so equal values give equal digests and correctly typed ones keep the digest they had."""
    import dataclasses

    kinds = {f.name: str(f.type).split("|")[0].strip() for f in dataclasses.fields(CacheConfig)}
    out = dict(params)
    for k, v in params.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            continue
        if kinds.get(k) == "int" and isinstance(v, float) and v.is_integer():
            out[k] = int(v)
        elif kinds.get(k) == "float" and isinstance(v, int):
            out[k] = float(v)
    return out


def params_digest(cfg: CacheConfig | dict[str, Any]) -> str:
    """A short digest of a cache's parameters, recorded in every row (compared at reuse and merge).
    Equal parameters give equal digests whatever their number types (224 and 224.0 are one size)."""
    d = cfg if isinstance(cfg, dict) else cfg.to_dict()
    return hashlib.sha1(json.dumps(_normal(d), sort_keys=True).encode("utf-8")).hexdigest()[:16]


def file_identity(path: str | Path, with_hash: bool = True) -> dict[str, Any] | None:
    """{size, mtime_ns, hash, sha1} of a source file (hash: SHA-1 of its size and three 64 KiB
    samples, at the start, middle and end: cheap on a 1 GB video, and it tells a copied file from
    a changed one; sha1: of the whole file, for --verify full); None when the file cannot be read."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    out: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if with_hash:
        out["hash"] = fast_hash(path, st.st_size)
        out["sha1"] = full_hash(path)
    return out


def full_hash(path: str | Path) -> str | None:
    """SHA-1 of a whole file (hex), None when it cannot be read."""
    h = hashlib.sha1()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return None
    return h.hexdigest()


def fast_hash(path: str | Path, size: int | None = None) -> str | None:
    try:
        size = os.stat(path).st_size if size is None else size
        h = hashlib.sha1(str(size).encode())
        with open(path, "rb") as f:
            for offset in sorted({0, max(0, size // 2 - HASH_BLOCK // 2), max(0, size - HASH_BLOCK)}):
                f.seek(offset)
                h.update(f.read(HASH_BLOCK))
        return h.hexdigest()[:20]
    except OSError:
        return None


# ------------------------------------------------------------------------------------ one video


def _record_fields(rec: VideoRecord) -> dict[str, Any]:
    return {
        "id": rec.id,
        "path": None if rec.path is None else str(rec.path),
        "label": rec.label.value,
        "split": rec.split,
        "segments": [s.to_list() for s in rec.segments],
        "visual_segments": [s.to_list() for s in rec.visual_segments],
        "audio_segments": [s.to_list() for s in rec.audio_segments],
        "modality": rec.modality.value,
        "original": rec.original,
        "source": rec.source,
    }


def record_from_row(row: dict[str, Any]) -> VideoRecord:
    """The VideoRecord an index row was made from (path as recorded; fps/duration of the video)."""
    return VideoRecord(
        id=row["id"], path=None if row.get("path") is None else Path(row["path"]), label=Label(row["label"]),
        segments=segments_from_pairs(row.get("segments", [])), modality=Modality(row.get("modality", "none")),
        split=row.get("split"), original=row.get("original"), source=row.get("source", ""),
        visual_segments=segments_from_pairs(row.get("visual_segments", [])),
        audio_segments=segments_from_pairs(row.get("audio_segments", [])),
        duration=row.get("duration"), fps=row.get("fps"),
    )


def video_arrays(feats: VideoFeatures, face_diff: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The arrays stored for one video (see the layout above; any keys: fakelens.data.arrays)."""
    clip = feats.clip
    n_faces, n = clip.found.shape
    detection = clip.detection if clip.detection is not None else np.zeros((n_faces, n), np.float32)
    diff = face_diff if face_diff is not None else np.full((n_faces, n), np.nan, np.float32)
    out = {"faces": clip.faces, "times": clip.times, "indices": clip.indices, "boxes": clip.boxes,
           "found": clip.found, "detection": np.asarray(detection, np.float32), "face_diff": np.asarray(diff, np.float32),
           "mel": feats.mel.astype(MEL_DTYPE), "mel_times": feats.mel_times,
           "fps": np.float64(clip.fps), "duration": np.float64(clip.duration),
           "width": np.int64(clip.width), "height": np.int64(clip.height)}
    if clip.crop_boxes is not None:  # crop mode roi: the region each crop was cut around
        out["crop_boxes"] = clip.crop_boxes
    return out


def face_summaries(clip: Any, face_diff: np.ndarray | None) -> list[dict[str, Any]]:
    """The index row's `faces`: per face track its found runs, found count, mean detection and difference."""
    from fakelens.data.tiling import face_frames, face_runs
    from fakelens.features.originals import face_difference

    frames = face_frames(clip.found, bool(clip.fallback))  # (F, T)
    out = []
    for f in range(len(frames)):
        det = np.asarray(clip.detection[f], np.float64) if clip.detection is not None else np.zeros(0)
        diff = face_difference(face_diff[f]) if face_diff is not None else None
        out.append({"runs": face_runs(frames[f]).tolist(), "found": int(np.asarray(clip.found[f]).sum()),
                    "detection": round(float(det[det > 0].mean()), 4) if (det > 0).any() else None,
                    "diff": None if diff is None else round(diff, 3)})
    return out


def process_video(rec: VideoRecord, cache_dir: Path, cfg: CacheConfig, detector=None,
                  original: Path | None = None) -> dict[str, Any]:
    """Preprocess one video into CACHE/videos/<safe_id>.npz, then write its row; returns the row.
    `original`: the real video a fake was made from; each face track is compared with it
    (fakelens.features.originals, `_compare_original`), so training knows which face is the fake
    one, and whether any is."""
    cache_dir = Path(cache_dir)
    t0 = time.perf_counter()
    row = _record_fields(rec)
    name = safe_id(rec.id)
    params = cfg.to_dict()
    row.update(status="ok", message="", npz=None, fallback=None, has_face=False, has_audio=False,
               fps=None, duration=None, counts={}, timings={}, params=params_digest(params), npz_bytes=None,
               file=None if rec.path is None else file_identity(rec.path))  # before reading: a later change shows
    try:
        if rec.path is None:
            raise MediaError(rec.id, "the dataset lists no file for this video")
        feats = compute_features(rec.path, cfg, detector)
    except MediaError as e:
        row.update(status="decode_error", message=str(e))
    else:
        clip = feats.clip
        face_diff, compared = _compare_original(rec, feats, cfg, original)
        t1 = time.perf_counter()
        rel = f"videos/{name}.npz"
        with atomic_output(cache_dir / rel) as tmp:
            save_arrays(tmp, video_arrays(feats, face_diff), params)
        feats.timings["write"] = time.perf_counter() - t1
        messages = []
        if clip.status == "no_face":
            messages.append("no face found in any sampled frame"
                            + ("; full-frame fallback used" if clip.fallback else ""))
        if not feats.has_audio:
            messages.append(feats.audio_message)
        status = "no_face" if clip.status == "no_face" else ("ok" if feats.has_audio else "no_audio")
        row.update(
            status=status, message="; ".join(messages), npz=rel, fallback=clip.fallback,
            has_face=bool(len(clip.faces)), has_audio=feats.has_audio, fps=clip.fps, duration=clip.duration,
            npz_bytes=file_size(cache_dir / rel),
            counts={"frames": int(len(clip.times)), "detect_runs": clip.n_detect_runs,
                    "detected": clip.n_detected, "refined": clip.n_refined,
                    "found": int(clip.found[0].sum()) if len(clip.found) and not clip.fallback else 0,
                    "tracks": clip.n_tracks, "mel_frames": int(feats.mel.shape[1])},
            timings={k: round(v, 4) for k, v in feats.timings.items()},
            faces=face_summaries(clip, face_diff), original_compared=compared,
        )
    row["timings"]["total"] = round(time.perf_counter() - t0, 4)
    atomic_write_text(cache_dir / "rows" / f"{name}.json", json.dumps(row, sort_keys=True))
    if row["npz"] is None:  # a video that decoded before and fails now keeps no stale arrays
        (cache_dir / "videos" / f"{name}.npz").unlink(missing_ok=True)
    return row


def _compare_original(rec: VideoRecord, feats: VideoFeatures, cfg: CacheConfig,
                      original: Path | None) -> tuple[np.ndarray | None, str | None]:
    """(face_diff (F, T) or None, what happened): the fake's face tracks against its original's
    pixels. A fake whose dataset does not say which stream is fake (DFDC) is compared even with
    one face kept: that face may be untouched (a fake in the audio only, or the swapped person
    not kept), which only the comparison tells; a fake of stated modality (AV-Deepfake1M, LAV-DF)
    only with max_faces > 1 (which of several faces). The outcome is "yes", or why not; a failed
    comparison is recorded, never fatal (the video keeps its video label)."""
    from fakelens.features.originals import original_differences

    if not rec.is_fake or not rec.original or not len(feats.clip.faces) or feats.clip.fallback:
        return None, None
    if cfg.max_faces < 2 and rec.modality.known and rec.modality is not Modality.NONE:
        return None, None
    if original is None:
        return None, f"original {rec.original!r} not found"
    t0 = time.perf_counter()
    try:
        diff = original_differences(feats.clip, original)
    except (MediaError, ValueError) as e:
        return None, f"original {rec.original!r} not compared: {e}"
    feats.timings["original"] = time.perf_counter() - t0
    return diff, "yes"


def resolve_originals(records: Sequence[VideoRecord]) -> dict[str, Path]:
    """id -> path of the original video each fake names: a record of that id, else a file of that
    name beside the fake (DFDC names it by file name in the same part folder)."""
    paths = {r.id: r.path for r in records if r.path is not None}
    out: dict[str, Path] = {}
    for r in records:
        if not r.is_fake or not r.original:
            continue
        p = paths.get(r.original)
        if p is None and r.path is not None:
            beside = Path(r.path).parent / r.original
            p = beside if beside.is_file() else None
        if p is not None:
            out[r.id] = Path(p)
    return out


# ------------------------------------------------------------------------------------ the job


@dataclass
class PreprocessSummary:
    """What a run did: counts by status, errors by cause, where the index is."""

    total: int
    skipped: int  # reused from an earlier run (relabelled ones included)
    processed: int
    by_status: dict[str, int]
    errors: dict[str, int]  # decode_error causes -> count
    seconds: float
    index: Path | None
    shard: tuple[int, int] | None = None
    relabelled: int = 0  # reused rows whose label fields were refreshed from the dataset
    changed: int = 0  # recomputed because the source file changed (or the row was incomplete)
    retried: int = 0  # recomputed because they had failed (decode_error) before
    removed: int = 0  # index rows dropped: their videos are no longer in the dataset (or its split)


def load_config(cache_dir: str | Path) -> CacheConfig | None:
    """The parameters a cache was made with (CACHE/config.json), or None for a new cache.

    This is the cache's record of its parameters: training compares the model's input size with
    `load_config(cache).size`, and a run keeps a copy (run/cache_config.json)."""
    path = Path(cache_dir) / "config.json"
    if not path.exists():
        return None
    try:
        return config_from_dict(json.loads(path.read_text()))
    except (json.JSONDecodeError, TypeError, ConfigError) as e:
        raise ConfigError(f"{path}: not a fakelens cache config ({e})") from e


def config_from_dict(data: dict[str, Any]) -> Any:
    """The parameters of a cache from its config.json: a CacheConfig (face crops + log-mels), or a
    fakelens.data.features.FeatureConfig for a folder of dense features (kind "features")."""
    from fakelens.data.features import FeatureConfig, is_features_config

    if is_features_config(data):
        return FeatureConfig.from_dict(data)
    return CacheConfig(**data)


def _diff(old: CacheConfig, new: CacheConfig) -> str:
    a, b = old.to_dict(), new.to_dict()
    return ", ".join(f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k))


def _prepare(cache_dir: Path, cfg: CacheConfig, force: bool) -> None:
    """Create the cache folder and its parameter record, or check an existing record.

    config.json is created exclusively (fakelens.atomic.atomic_create_text): when two runs with
    other parameters start together, one creates it and the other is refused here."""
    ensure_writable(cache_dir)
    text = json.dumps(cfg.to_dict(), indent=2, sort_keys=True)
    if not atomic_create_text(cache_dir / "config.json", text):
        old = load_config(cache_dir)
        if old != cfg:
            if not force:
                older = " (made by an older fakelens)" if old is not None and old.version != cfg.version else ""
                raise ConfigError(
                    f"{cache_dir}: cache was made with other parameters{older} ({_diff(old, cfg)}); "
                    "use another --out, or --force to empty it and start again")
            for pattern in ("rows/*.json", "videos/*.npz", "shards/*", "index.jsonl"):
                for p in cache_dir.glob(pattern):
                    p.unlink()
            atomic_write_text(cache_dir / "config.json", text)
    (cache_dir / "videos").mkdir(parents=True, exist_ok=True)
    (cache_dir / "rows").mkdir(exist_ok=True)


def _remove_temporaries(cache_dir: Path) -> None:
    """Remove the temporary files killed writers left (only theirs: a concurrent shard's live
    temporaries carry its pid and are kept)."""
    for sub in ("videos", "rows", "shards", "."):
        remove_stale_temporaries(cache_dir / sub)


def _read_row(cache_dir: Path, video_id: str) -> dict[str, Any] | None:
    path = cache_dir / "rows" / f"{safe_id(video_id)}.json"
    try:
        row = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # a damaged row (power loss on a file system without ordered data): redo the video
    return row if row.get("id") == video_id else None


def _reuse(cache_dir: Path, rec: VideoRecord, digest: str, verify: str) -> tuple[dict[str, Any] | None, str]:
    """(the row to reuse or None, why): "new", "failed", "changed" (recompute) or "same", "relabel"."""
    row = _read_row(cache_dir, rec.id)
    if row is None:
        return None, "new"
    if row.get("status") == "decode_error":
        return None, "failed"
    if row.get("params") != digest:
        return None, "changed"
    if row.get("npz") and file_size(cache_dir / row["npz"]) != row.get("npz_bytes"):
        return None, "changed"  # missing, or not the npz the row was written after
    recorded = row.get("file")
    if rec.path is None or not recorded:
        return None, "changed"
    now = file_identity(rec.path, with_hash=False)
    if now is None or not same_file(rec.path, recorded, now, verify):
        return None, "changed"
    refresh = {}
    if now["mtime_ns"] != recorded.get("mtime_ns"):  # copied or touched, same content
        refresh["file"] = {**recorded, "mtime_ns": now["mtime_ns"]}
    fields = _record_fields(rec)
    refresh.update({k: v for k, v in fields.items() if row.get(k) != v})
    if not refresh:
        return row, "same"
    row = {**row, **refresh}
    atomic_write_text(cache_dir / "rows" / f"{safe_id(rec.id)}.json", json.dumps(row, sort_keys=True))
    return row, "relabel" if set(refresh) - {"file"} else "same"


def same_file(path: str | Path, recorded: dict[str, Any], now: dict[str, Any], verify: str = "auto") -> bool:
    """Whether `path`, stat'ed as `now` (file_identity without hash), is still the file `recorded`
    (a row's "file"): the same size, and the same mtime or else the same sampled content hash
    (a copy or a touch keeps it); verify "hash" always compares that hash, "full" every byte (a row
    made before sha1 was recorded cannot say: changed)."""
    if now["size"] != recorded.get("size"):
        return False
    if verify == "full":
        h = full_hash(path)
        return h is not None and h == recorded.get("sha1")
    if verify == "hash" or now["mtime_ns"] != recorded.get("mtime_ns"):
        h = fast_hash(path, now["size"])
        return h is not None and h == recorded.get("hash")
    return True


def read_index(cache_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of CACHE/index.jsonl (FormatError naming the line when one is malformed)."""
    path = Path(cache_dir) / "index.jsonl"
    if not path.exists():
        raise FormatError(path, "no index: run `fakelens preprocess` (or `--merge` after shards) first")
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise FormatError(path, f"not JSON ({e})", line=i) from e
    return rows


def _write_jsonl(path: Path, rows: Iterable[dict[str, Any]]) -> None:
    rows = sorted(rows, key=lambda r: r["id"])
    atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))


ALL_SPLITS = "*"  # the scope of a run over the whole dataset (no --split)


def _in_scope(row: dict[str, Any], scope: str) -> bool:
    """Whether an index row belongs to the part of the dataset a run covered (`scope`: a split
    name, validation-like names matching each other, or ALL_SPLITS)."""
    from fakelens.data.splits import canonical_split

    return scope == ALL_SPLITS or canonical_split(row.get("split")) == canonical_split(scope)


def _write_index(cache_dir: Path, rows: list[dict[str, Any]], scope: str = ALL_SPLITS) -> tuple[Path, int]:
    """index.jsonl = these rows (every video of the dataset's `scope`, as this run found it) and
    the earlier index rows outside the scope (other splits, preprocessed by other runs); rows of
    the scope whose video is no longer in the dataset (gone from the metadata, or missing on disk
    with --allow-missing) are dropped, so training never reads them. Returns (index, dropped)."""
    merged: dict[str, dict[str, Any]] = {}
    ids = {r["id"] for r in rows}
    dropped = 0
    if (cache_dir / "index.jsonl").exists():
        for r in read_index(cache_dir):
            if r["id"] in ids or not _in_scope(r, scope):
                merged[r["id"]] = r
            else:
                dropped += 1
    merged.update({r["id"]: r for r in rows})
    _write_jsonl(cache_dir / "index.jsonl", merged.values())
    return cache_dir / "index.jsonl", dropped


def _summary(rows: list[dict[str, Any]], skipped: int, seconds: float, index: Path | None,
             shard: tuple[int, int] | None, reasons: Counter | None = None, removed: int = 0) -> PreprocessSummary:
    by_status = {s: 0 for s in STATUSES}
    by_status.update(Counter(r["status"] for r in rows))
    errors = Counter(_cause(r["message"]) for r in rows if r["status"] == "decode_error")
    reasons = reasons or Counter()
    return PreprocessSummary(total=len(rows), skipped=skipped, processed=len(rows) - skipped,
                             by_status=by_status, errors=dict(errors), seconds=seconds, index=index, shard=shard,
                             relabelled=reasons["relabel"], changed=reasons["changed"], retried=reasons["failed"],
                             removed=removed)


def _cause(message: str) -> str:
    """The cause part of 'path: cause' with details in parentheses dropped, to group errors."""
    cause = message.split(": ", 1)[-1]
    return re.sub(r"\s*\([^()]*\)\s*$", "", cause)[:80]


class CacheJob:
    """What a cache job computes per video: `preprocess` (this class: face crops + log-mels into
    npz files) or another job run by the same machinery (rows, reuse, shards, merge, workers),
    e.g. the dense features of fakelens.inference.dense. Instances are pickled to the workers."""

    desc = "preprocess"  # progress bar label
    # id -> the original video of each fake (`resolve_originals`; set by `preprocess`)
    originals: dict[str, Path] | None = None

    def setup(self, cfg: Any) -> Any:
        """Built once per process before its first video (the face detector, an encoder)."""
        from fakelens.faces.detectors import build_detector

        return build_detector(cfg.detector)

    def process(self, rec: VideoRecord, cache_dir: Path, cfg: Any, state: Any) -> dict[str, Any]:
        """Compute one video into the cache and write its row (after its arrays); returns the row."""
        return process_video(rec, cache_dir, cfg, state, (self.originals or {}).get(rec.id))


_WORKER_STATE: Any = None


def _worker_init(job: CacheJob, cfg_dict: dict[str, Any], parent_pid: int | None = None) -> None:
    """Each worker process: exits with its parent, one torch/OpenCV thread, the job's state built once."""
    global _WORKER_STATE
    if parent_pid is not None:
        from fakelens.workers import die_with_parent

        die_with_parent(parent_pid)
    import cv2
    import torch

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _WORKER_STATE = job.setup(config_from_dict(cfg_dict))


def _worker_run(job: CacheJob, rec: VideoRecord, cache_dir: str, cfg_dict: dict[str, Any]) -> dict[str, Any]:
    return job.process(rec, Path(cache_dir), config_from_dict(cfg_dict), _WORKER_STATE)


WINDOW_PER_WORKER = 2  # videos submitted per worker process ahead of their results


def preprocess(records: list[VideoRecord], cache_dir: str | Path, cfg: CacheConfig = CacheConfig(), *,
               workers: int = 0, shard: tuple[int, int] | None = None, force: bool = False,
               verify: str = "stat", progress: bool = True, split: str | None = None,
               on_row: Callable[[dict[str, Any]], None] | None = None, job: CacheJob | None = None) -> PreprocessSummary:
    """Preprocess `records` into `cache_dir`, reusing valid rows (see "When a row is reused");
    returns the summary. force=True recomputes every video.

    `records` are the whole dataset, or with `split` every video of that split (the dataset
    loaded with split=...): the index then keeps the earlier rows of the other splits. Earlier
    rows of the covered part whose video is not in `records` any more are dropped from the index.

    workers <= 1 runs in this process; more uses spawned worker processes (one torch thread
    each, a bounded window of videos in flight). shard=(I, N) keeps the ids with
    shard_of(id, N) == I and writes shards/index-I-of-N.jsonl and shards/config-I-of-N.json
    instead of index.jsonl (combine with `merge_shards`). `job` computes each video (default: face
    crops and log-mels; fakelens.inference.dense.FeaturesJob: dense features, with cfg its
    FeatureConfig).
    """
    from fakelens.progress import progress as progress_bar

    job = job or CacheJob()
    t0 = time.perf_counter()
    cache_dir = Path(cache_dir)
    if verify not in VERIFY:
        raise ConfigError(f"verify must be one of {VERIFY}, got {verify!r}")
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        dup = next(i for i, c in Counter(ids).items() if c > 1)
        raise FakelensError(f"duplicate video id {dup!r} in the records to preprocess")
    if type(job) is CacheJob:  # fakes compared face by face with their original (`_compare_original`)
        job.originals = resolve_originals(records)
    if shard is not None:
        records = [r for r in records if shard_of(r.id, shard[1]) == shard[0]]
    _prepare(cache_dir, cfg, force)
    _remove_temporaries(cache_dir)
    records = sorted(records, key=lambda r: r.id)
    digest = params_digest(cfg)
    rows: list[dict[str, Any]] = []
    todo: list[VideoRecord] = []
    reasons: Counter = Counter()
    for rec in records:
        row, why = (None, "forced") if force else _reuse(cache_dir, rec, digest, verify)
        reasons[why] += 1
        if row is None:
            todo.append(rec)
        else:
            rows.append(row)
    skipped = len(rows)
    bar = progress_bar(total=len(records), initial=skipped, unit="video", desc=job.desc, disable=not progress)

    def done(row: dict[str, Any]) -> None:
        rows.append(row)
        bar.update(1)
        if on_row is not None:
            on_row(row)

    try:
        if workers <= 1:
            state = job.setup(cfg) if todo else None
            for rec in todo:
                done(job.process(rec, cache_dir, cfg, state))
        elif todo:
            _run_workers(job, todo, cache_dir, cfg, workers, done)
    except OutputError as e:
        raise OutputError(e.folder, f"{e.cause}; preprocessing stopped with {len(rows)} of {len(records)} videos "
                          "done (kept: the same command resumes)") from e
    finally:
        bar.close()
    scope = ALL_SPLITS if split is None else split
    removed = 0
    if shard is None:
        index, removed = _write_index(cache_dir, rows, scope)
    else:
        index = cache_dir / "shards" / f"index-{shard[0]}-of-{shard[1]}.jsonl"
        atomic_write_text(cache_dir / "shards" / f"config-{shard[0]}-of-{shard[1]}.json",
                          json.dumps(cfg.to_dict(), indent=2, sort_keys=True))
        atomic_write_text(cache_dir / "shards" / f"scope-{shard[0]}-of-{shard[1]}.json",
                          json.dumps({"split": scope}))
        _write_jsonl(index, rows)
    return _summary(rows, skipped, time.perf_counter() - t0, index, shard, reasons, removed)


def _run_workers(job: CacheJob, todo: Sequence[VideoRecord], cache_dir: Path, cfg: Any, workers: int,
                 done: Callable[[dict[str, Any]], None]) -> None:
    """job.process over `todo` in spawned worker processes, WINDOW_PER_WORKER videos each in flight."""
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor

    from fakelens.workers import unordered_window

    cfg_dict = cfg.to_dict()
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                               initargs=(job, cfg_dict, os.getpid()))
    try:
        submit = lambda rec: pool.submit(_worker_run, job, rec, str(cache_dir), cfg_dict)  # noqa: E731
        for _, fut in unordered_window(submit, todo, workers * WINDOW_PER_WORKER):
            done(fut.result())
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)  # the running videos finish; nothing new starts
        raise
    pool.shutdown(wait=True)


def _shard_configs(shards: Path, n: int) -> dict[int, dict[str, Any] | None]:
    out: dict[int, dict[str, Any] | None] = {}
    for i in range(n):
        p = shards / f"config-{i}-of-{n}.json"
        try:
            out[i] = json.loads(p.read_text())
        except FileNotFoundError:
            out[i] = None
        except json.JSONDecodeError as e:
            raise FormatError(p, f"not JSON ({e})") from None
    return out


def _shard_scope(shards: Path, n: int) -> str:
    """The part of the dataset the N shards covered (shards/scope-I-of-N.json: one split or
    ALL_SPLITS), the same for all of them, else a FakelensError."""
    scopes: dict[int, str] = {}
    for i in range(n):
        p = shards / f"scope-{i}-of-{n}.json"
        try:
            scopes[i] = json.loads(p.read_text())["split"]
        except FileNotFoundError:
            raise FakelensError(f"{shards}: shard {i} of {n} records no dataset scope (scope-{i}-of-{n}.json, "
                                f"written by this fakelens); re-run it with --shard {i}/{n}") from None
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise FormatError(p, f"not a shard scope ({e})") from None
    if len(set(scopes.values())) > 1:
        said = ", ".join(f"shard {i}: {'all splits' if s == ALL_SPLITS else 'split ' + repr(s)}"
                         for i, s in scopes.items())
        raise FakelensError(f"{shards}: the shards cover different parts of the dataset ({said}); "
                            "re-run them all with the same --split (or none)")
    return scopes[0]


def merge_shards(cache_dir: str | Path) -> PreprocessSummary:
    """Combine shards/index-I-of-N.jsonl (all N present, all made with the cache's parameters
    and over the same part of the dataset) into index.jsonl, dropping earlier rows of that part
    whose video is no longer in the dataset; returns the summary."""
    t0 = time.perf_counter()
    cache_dir = Path(cache_dir)
    files = sorted((cache_dir / "shards").glob("index-*-of-*.jsonl"))
    if not files:
        raise FakelensError(f"{cache_dir / 'shards'}: no shard indexes to merge (run with --shard I/N first)")
    found: dict[int, set[int]] = {}
    for f in files:
        m = re.fullmatch(r"index-(\d+)-of-(\d+)\.jsonl", f.name)
        if m:
            found.setdefault(int(m.group(2)), set()).add(int(m.group(1)))
    if len(found) != 1:
        raise FakelensError(f"{cache_dir / 'shards'}: shard indexes of different shard counts "
                            f"{sorted(found)}; remove the stale ones")
    (n, have), = found.items()
    missing = sorted(set(range(n)) - have)
    if missing:
        raise FakelensError(f"{cache_dir / 'shards'}: shards {missing} of {n} have not finished "
                            "(run them with --shard I/N, then merge)")
    cfg = load_config(cache_dir)
    if cfg is None:
        raise FakelensError(f"{cache_dir}: no config.json (copy it from a shard's cache folder)")
    for i, shard_cfg in _shard_configs(cache_dir / "shards", n).items():
        if shard_cfg is None:
            raise FakelensError(f"{cache_dir / 'shards'}: shard {i} of {n} records no parameters "
                                f"(config-{i}-of-{n}.json); re-run it with --shard {i}/{n}")
        try:
            other = config_from_dict(shard_cfg)
        except (TypeError, ConfigError) as e:
            raise FormatError(cache_dir / "shards" / f"config-{i}-of-{n}.json", f"not a cache config ({e})") from None
        if other != cfg:
            raise FakelensError(f"{cache_dir}: shard {i} of {n} was made with other parameters than config.json "
                                f"({_diff(cfg, other)}); re-run it with these parameters (--force) before merging")
    scope = _shard_scope(cache_dir / "shards", n)
    digest = params_digest(cfg)
    rows: list[dict[str, Any]] = []
    for i in range(n):
        path = cache_dir / "shards" / f"index-{i}-of-{n}.jsonl"
        for k, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip():
                row = json.loads(line)
                if row.get("params") != digest:
                    raise FormatError(path, f"row {row.get('id')!r} was made with other parameters than "
                                      "config.json; re-run the shard", line=k)
                rows.append(row)
    absent = [r["id"] for r in rows if r.get("npz") and not (cache_dir / r["npz"]).exists()]
    if absent:
        raise FakelensError(f"{cache_dir}: npz files of {len(absent)} videos are missing (e.g. {absent[0]!r}); "
                            "copy every shard's videos/ folder into this cache")
    _remove_temporaries(cache_dir)
    index, removed = _write_index(cache_dir, rows, scope)
    return _summary(rows, len(rows), time.perf_counter() - t0, index, None, removed=removed)


# ------------------------------------------------------------------------------------ reading


_PARAMS_CACHE: dict[Path, tuple[int, int, dict[str, Any]]] = {}


def cache_params(cache_dir: str | Path) -> dict[str, Any]:
    """config.json of a cache as a dict (re-read when the file changes), what every npz must record."""
    path = Path(cache_dir).resolve() / "config.json"
    try:
        st = path.stat()
    except FileNotFoundError:
        raise FormatError(path, "missing: not a fakelens cache (run `fakelens preprocess`)") from None
    hit = _PARAMS_CACHE.get(path)
    if hit is None or hit[:2] != (st.st_mtime_ns, st.st_size):
        cfg = load_config(path.parent)
        assert cfg is not None
        hit = (st.st_mtime_ns, st.st_size, cfg.to_dict())
        _PARAMS_CACHE[path] = hit
    return hit[2]


NPZ_CHECKS = 64  # npz files whose recorded parameters check_cache reads (evenly spread over the rows)


def check_cache(cache_dir: str | Path, rows: Sequence[dict[str, Any]] | None = None) -> CacheConfig:
    """Check, before a job reads it, that this fakelens can use a cache: its config.json is of
    this CACHE_VERSION, every row in `rows` (the videos the job will read; None: the whole
    index) was made with its parameters, and so are the npz files of NPZ_CHECKS of them (each
    npz is checked again when it is loaded). A FakelensError naming the cache and the remedy
    (re-run preprocess, --force) otherwise; returns the cache's parameters."""
    cache_dir = Path(cache_dir)
    path = cache_dir / "config.json"
    rebuild = f"re-run `fakelens preprocess DATA --out {cache_dir} --force` to rebuild it"
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        raise FormatError(path, "missing: not a fakelens cache (run `fakelens preprocess DATA --out CACHE`)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise FormatError(path, f"not JSON ({e}); {rebuild}") from None
    version = raw.get("version") if isinstance(raw, dict) else None
    from fakelens.data.features import FEATURES_VERSION, is_features_config, stale_features

    expected = CACHE_VERSION
    if isinstance(raw, dict) and is_features_config(raw):  # a folder of dense features (`fakelens features`)
        expected = FEATURES_VERSION
        rebuild = f"re-run `fakelens features RUN_OR_ENCODER DATA --out {cache_dir} --force` to rebuild it"
        if version != expected:
            raise FakelensError(f"{cache_dir}: {stale_features(version)}: {rebuild}")
    if version != expected:
        age = ("an older" if isinstance(version, int) and version < expected else
               "a newer" if isinstance(version, int) else "another")
        changed = cache_version_change(version) if expected == CACHE_VERSION else ""
        raise FakelensError(f"{cache_dir}: the cache was made by {age} fakelens (cache version {version}; this "
                            f"fakelens reads version {expected}, whose crops and features differ"
                            f"{'; ' + changed if changed else ''}): {rebuild}")
    cfg = load_config(cache_dir)
    assert cfg is not None
    rows = [r for r in (read_index(cache_dir) if rows is None else rows) if r.get("npz")]
    digest = params_digest(cfg)
    other = [r for r in rows if r.get("params") != digest]
    if other:
        raise FakelensError(f"{cache_dir}: {len(other)} of {len(rows)} videos (e.g. {other[0]['id']!r}) were made "
                            f"with other parameters than the cache's config.json; the cache mixes runs: {rebuild}")
    expect = cache_params(cache_dir)
    step = max(1, len(rows) / NPZ_CHECKS)
    for row in [rows[int(i * step)] for i in range(min(NPZ_CHECKS, len(rows)))]:
        npz = cache_dir / row["npz"]
        try:
            found = read_params(npz)
        except FileNotFoundError:
            raise FakelensError(f"{npz}: missing (the index lists it for {row['id']!r}); re-run "
                                f"`fakelens preprocess DATA --out {cache_dir}` (it redoes missing videos)") from None
        except (OSError, ValueError, zipfile.BadZipFile, EOFError, json.JSONDecodeError) as e:
            raise FormatError(npz, f"cannot read the cached arrays ({type(e).__name__}: {e}); re-run "
                              f"`fakelens preprocess DATA --out {cache_dir}` (it redoes damaged videos)") from None
        check_params(npz, found, expect)
    return cfg


def _npz_path(cache_dir: str | Path, row: dict[str, Any]) -> Path:
    if not row.get("npz"):
        raise FakelensError(f"{row['id']}: no cached arrays (status {row['status']}: {row.get('message')})")
    return Path(cache_dir) / row["npz"]


def open_npz(cache_dir: str | Path, row: dict[str, Any], keys: Iterable[str] | None = None) -> dict[str, Any]:
    """Arrays of a video's npz, checked against the cache's parameters: the face crops as a lazy
    `ChunkedArray` (indexing it reads only the chunks of the frames asked for), the rest read."""
    return open_arrays(_npz_path(cache_dir, row), keys, expect=cache_params(cache_dir), lazy=True)


def load_npz(cache_dir: str | Path, row: dict[str, Any], keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Arrays of a video's npz (see the layout above): all, or only `keys` (each member is
    decompressed separately, so an audio loader never pays for the face crops); checked against
    the cache's parameters."""
    return open_arrays(_npz_path(cache_dir, row), keys, expect=cache_params(cache_dir), lazy=False)


def load_faces(cache_dir: str | Path, row: dict[str, Any], face: int = 0,
               frames: Sequence[int] | np.ndarray | slice | None = None) -> np.ndarray:
    """(len(frames), S, S, 3) uint8 crops of face track `face` at sampled-frame positions
    `frames` (all when None), decompressing only the chunks those frames are stored in."""
    faces = open_npz(cache_dir, row, ("faces",))["faces"]
    index = slice(None) if frames is None else (frames if isinstance(frames, slice) else np.asarray(frames))
    return faces[face, index] if isinstance(faces, ChunkedArray) else np.asarray(faces)[face, index]
