"""The preprocessing cache (face crops + log-mels per video) and the resumable job that fills it.

Training reads small uint8 tensors from here instead of decoding 1080p video again.

Layout of a cache folder CACHE/:
    config.json            the `CacheConfig` used (sampling, crop, detector, mel parameters). A run
                           with other parameters is refused unless force=True (--force), which
                           empties the cache first.
    videos/<safe_id>.npz   one per decodable video (np.savez_compressed), arrays:
                             faces     (F, T, S, S, 3) uint8  crops of the F main face tracks (F=0: no face)
                             times     (T,) float64           seconds of the sampled frames
                             indices   (T,) int64             video frame indices of the sampled frames
                             boxes     (F, T, 4) float32      face boxes x1 y1 x2 y2 in original pixels
                             found     (F, T) bool            box detected/interpolated (False: held or fallback)
                             mel       (n_mels, M) float16    natural-log mel power (M=0: no audio)
                             mel_times (M,) float64           seconds of the mel frame centres
                             fps, duration, width, height     () scalars of the video
    rows/<safe_id>.json    the video's index row, written after its npz: its presence means "done".
    shards/index-I-of-N.jsonl  the rows of shard I, written when shard I finishes.
    index.jsonl            one row per video, sorted by id (assembled at the end of a run or by merge):
                             id, status ("ok" | "no_face" | "no_audio" | "decode_error"), message,
                             label, split, segments, visual_segments, audio_segments, modality,
                             original, source, path, npz (relative to CACHE, null on decode_error),
                             fallback, has_face, has_audio, fps, duration,
                             counts {frames, detect_runs (full-frame detections), detected (frames
                             with a face), refined (frames where faces were followed), found,
                             tracks, mel_frames},
                             timings {probe, decode (waiting for frames: decoding overlaps
                             detection), detect, track, crop, audio, write, total} seconds.
Status priority: decode_error > no_face > no_audio > ok (a faceless silent video is "no_face",
has_audio tells the rest).

Kill-and-restart safety: every file is written to a temporary name beside it and renamed; a
video's row is written only after its npz, so a row means a complete npz. A restart skips the
ids that have a row (and npz), redoes the others, and assembles index.jsonl from rows sorted
by id, so a killed-and-restarted job ends with the same cache as an uninterrupted one (rows
differ only in timings). Leftover temporary files (dot-names) are removed by non-shard runs
and by merge; shard runs leave them, as other shards may be writing beside them.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from fakelens.atomic import atomic_output, atomic_write_text
from fakelens.errors import ConfigError, FakelensError, MediaError
from fakelens.features.media import (  # re-exported: a cache records the media config of its features
    CACHE_VERSION, MEL_DTYPE, SAMPLINGS, MediaConfig, VideoFeatures, compute_features, release_large_allocations,
    sampling_for)

from fakelens.types import Label, Modality, VideoRecord, segments_from_pairs

CacheConfig = MediaConfig  # the parameters a cache was made with are the media config of its features
STATUSES = ("ok", "no_face", "no_audio", "decode_error")


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


def process_video(rec: VideoRecord, cache_dir: Path, cfg: CacheConfig, detector=None) -> dict[str, Any]:
    """Preprocess one video into CACHE/videos/<safe_id>.npz, then write its row; returns the row."""
    cache_dir = Path(cache_dir)
    t0 = time.perf_counter()
    row = _record_fields(rec)
    name = safe_id(rec.id)
    row.update(status="ok", message="", npz=None, fallback=None, has_face=False, has_audio=False,
               fps=None, duration=None, counts={}, timings={})
    try:
        if rec.path is None:
            raise MediaError(rec.id, "the dataset lists no file for this video")
        feats = compute_features(rec.path, cfg, detector)
    except MediaError as e:
        row.update(status="decode_error", message=str(e))
    else:
        clip = feats.clip
        t1 = time.perf_counter()
        rel = f"videos/{name}.npz"
        with atomic_output(cache_dir / rel) as tmp:
            np.savez_compressed(
                tmp, faces=clip.faces, times=clip.times, indices=clip.indices, boxes=clip.boxes,
                found=clip.found, mel=feats.mel.astype(MEL_DTYPE), mel_times=feats.mel_times,
                fps=np.float64(clip.fps), duration=np.float64(clip.duration),
                width=np.int64(clip.width), height=np.int64(clip.height))
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
            counts={"frames": int(len(clip.times)), "detect_runs": clip.n_detect_runs,
                    "detected": clip.n_detected, "refined": clip.n_refined,
                    "found": int(clip.found[0].sum()) if len(clip.found) and not clip.fallback else 0,
                    "tracks": clip.n_tracks, "mel_frames": int(feats.mel.shape[1])},
            timings={k: round(v, 4) for k, v in feats.timings.items()},
        )
    row["timings"]["total"] = round(time.perf_counter() - t0, 4)
    atomic_write_text(cache_dir / "rows" / f"{name}.json", json.dumps(row, sort_keys=True))
    return row


# ------------------------------------------------------------------------------------ the job


@dataclass
class PreprocessSummary:
    """What a run did: counts by status, errors by cause, where the index is."""

    total: int
    skipped: int  # already done by an earlier run
    processed: int
    by_status: dict[str, int]
    errors: dict[str, int]  # decode_error causes -> count
    seconds: float
    index: Path | None
    shard: tuple[int, int] | None = None


def load_config(cache_dir: Path) -> CacheConfig | None:
    """The CacheConfig stored in CACHE/config.json, or None for a new cache."""
    path = Path(cache_dir) / "config.json"
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text())
        return CacheConfig(**data)
    except (json.JSONDecodeError, TypeError) as e:
        raise ConfigError(f"{path}: not a fakelens cache config ({e})") from e


def _prepare(cache_dir: Path, cfg: CacheConfig, force: bool) -> None:
    """Create the cache folder, or check that an existing one was made with the same parameters."""
    old = load_config(cache_dir)
    if old is not None and old != cfg:
        if not force:
            diff = {k: (v, cfg.to_dict()[k]) for k, v in old.to_dict().items() if cfg.to_dict()[k] != v}
            raise ConfigError(
                f"{cache_dir}: cache was made with other parameters ("
                + ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in diff.items())
                + "); use another --out, or --force to empty it and start again")
        for pattern in ("rows/*.json", "videos/*.npz", "shards/*.jsonl", "index.jsonl"):
            for p in cache_dir.glob(pattern):
                p.unlink()
    (cache_dir / "videos").mkdir(parents=True, exist_ok=True)
    (cache_dir / "rows").mkdir(exist_ok=True)
    if old != cfg:
        atomic_write_text(cache_dir / "config.json", json.dumps(cfg.to_dict(), indent=2, sort_keys=True))


def _remove_temporaries(cache_dir: Path) -> None:
    """Remove temporary files a killed run left (atomic writes use dot-names beside the target)."""
    for sub in ("videos", "rows", "shards", "."):
        d = cache_dir / sub
        if d.is_dir():
            for p in d.glob(".*"):
                if p.is_file():
                    p.unlink()


def _done_row(cache_dir: Path, video_id: str) -> dict[str, Any] | None:
    """The row of a finished video (its npz present), else None."""
    path = cache_dir / "rows" / f"{safe_id(video_id)}.json"
    if not path.exists():
        return None
    row = json.loads(path.read_text())
    if row.get("id") != video_id or (row.get("npz") and not (cache_dir / row["npz"]).exists()):
        return None
    return row


def read_index(cache_dir: str | Path) -> list[dict[str, Any]]:
    """Rows of CACHE/index.jsonl (FormatError naming the line when one is malformed)."""
    from fakelens.errors import FormatError

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


def _write_index(cache_dir: Path, rows: list[dict[str, Any]]) -> Path:
    """index.jsonl = earlier index rows updated with these rows, sorted by id."""
    merged: dict[str, dict[str, Any]] = {}
    if (cache_dir / "index.jsonl").exists():
        merged.update({r["id"]: r for r in read_index(cache_dir)})
    merged.update({r["id"]: r for r in rows})
    _write_jsonl(cache_dir / "index.jsonl", merged.values())
    return cache_dir / "index.jsonl"


def _summary(rows: list[dict[str, Any]], skipped: int, seconds: float, index: Path | None,
             shard: tuple[int, int] | None) -> PreprocessSummary:
    by_status = {s: 0 for s in STATUSES}
    by_status.update(Counter(r["status"] for r in rows))
    errors = Counter(_cause(r["message"]) for r in rows if r["status"] == "decode_error")
    return PreprocessSummary(total=len(rows), skipped=skipped, processed=len(rows) - skipped,
                             by_status=by_status, errors=dict(errors), seconds=seconds, index=index, shard=shard)


def _cause(message: str) -> str:
    """The cause part of 'path: cause' with details in parentheses dropped, to group errors."""
    cause = message.split(": ", 1)[-1]
    return re.sub(r"\s*\([^()]*\)\s*$", "", cause)[:80]


_WORKER_DETECTOR = None


def _worker_init(cfg_dict: dict[str, Any]) -> None:
    """Each worker process: one torch/OpenCV thread, its own detector built once."""
    global _WORKER_DETECTOR
    import cv2
    import torch

    from fakelens.faces.detectors import build_detector

    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    _WORKER_DETECTOR = build_detector(CacheConfig(**cfg_dict).detector)


def _worker_run(rec: VideoRecord, cache_dir: str, cfg_dict: dict[str, Any]) -> dict[str, Any]:
    return process_video(rec, Path(cache_dir), CacheConfig(**cfg_dict), _WORKER_DETECTOR)


def preprocess(records: list[VideoRecord], cache_dir: str | Path, cfg: CacheConfig = CacheConfig(), *,
               workers: int = 0, shard: tuple[int, int] | None = None, force: bool = False,
               progress: bool = True, on_row: Callable[[dict[str, Any]], None] | None = None) -> PreprocessSummary:
    """Preprocess `records` into `cache_dir`, skipping finished ones; returns the summary.

    workers <= 1 runs in this process; more uses spawned worker processes (one torch thread
    each). shard=(I, N) keeps the ids with shard_of(id, N) == I and writes shards/index-I-of-N.jsonl
    instead of index.jsonl (combine with `merge_shards`).
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    cache_dir = Path(cache_dir)
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        dup = next(i for i, c in Counter(ids).items() if c > 1)
        raise FakelensError(f"duplicate video id {dup!r} in the records to preprocess")
    if shard is not None:
        records = [r for r in records if shard_of(r.id, shard[1]) == shard[0]]
    _prepare(cache_dir, cfg, force)
    if shard is None:
        _remove_temporaries(cache_dir)
    records = sorted(records, key=lambda r: r.id)
    rows: list[dict[str, Any]] = []
    todo: list[VideoRecord] = []
    for rec in records:
        row = _done_row(cache_dir, rec.id)
        if row is None:
            todo.append(rec)
        else:
            rows.append(row)
    skipped = len(rows)
    bar = tqdm(total=len(records), initial=skipped, unit="video", desc="preprocess", disable=not progress,
               dynamic_ncols=True)
    try:
        if workers <= 1:
            detector = None
            if todo:
                from fakelens.faces.detectors import build_detector

                detector = build_detector(cfg.detector)
            for rec in todo:
                row = process_video(rec, cache_dir, cfg, detector)
                rows.append(row)
                bar.update(1)
                if on_row is not None:
                    on_row(row)
        elif todo:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            cfg_dict = cfg.to_dict()
            with ProcessPoolExecutor(max_workers=workers, mp_context=mp.get_context("spawn"),
                                     initializer=_worker_init, initargs=(cfg_dict,)) as pool:
                futures = [pool.submit(_worker_run, rec, str(cache_dir), cfg_dict) for rec in todo]
                for fut in as_completed(futures):
                    row = fut.result()
                    rows.append(row)
                    bar.update(1)
                    if on_row is not None:
                        on_row(row)
    finally:
        bar.close()
    if shard is None:
        index = _write_index(cache_dir, rows)
    else:
        index = cache_dir / "shards" / f"index-{shard[0]}-of-{shard[1]}.jsonl"
        _write_jsonl(index, rows)
    return _summary(rows, skipped, time.perf_counter() - t0, index, shard)


def merge_shards(cache_dir: str | Path) -> PreprocessSummary:
    """Combine shards/index-I-of-N.jsonl (all N present) into index.jsonl; returns the summary."""
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
    rows: list[dict[str, Any]] = []
    for i in range(n):
        path = cache_dir / "shards" / f"index-{i}-of-{n}.jsonl"
        rows += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    absent = [r["id"] for r in rows if r.get("npz") and not (cache_dir / r["npz"]).exists()]
    if absent:
        raise FakelensError(f"{cache_dir}: npz files of {len(absent)} videos are missing (e.g. {absent[0]!r}); "
                            "copy every shard's videos/ folder into this cache")
    _remove_temporaries(cache_dir)
    index = _write_index(cache_dir, rows)
    return _summary(rows, len(rows), time.perf_counter() - t0, index, None)


def load_npz(cache_dir: str | Path, row: dict[str, Any], keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Arrays of a video's npz (see the layout above): all, or only `keys` (each member is
    decompressed separately, so an audio loader never pays for the face crops)."""
    if not row.get("npz"):
        raise FakelensError(f"{row['id']}: no cached arrays (status {row['status']}: {row.get('message')})")
    path = Path(cache_dir) / row["npz"]
    with np.load(path) as z:
        return {k: z[k] for k in (z.files if keys is None else keys)}
