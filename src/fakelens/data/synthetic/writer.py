"""Writing a dataset: render every plan in worker processes, then the label files and the manifest,
each atomically; resumable after an interruption."""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from fakelens.atomic import atomic_write_text
from fakelens.config import to_dict
from fakelens.data.synthetic.config import SPLITS, SynthConfig
from fakelens.data.synthetic.layouts import _MODIFY_TYPE, MANIFEST, _output_files, _write_metadata, identity_name
from fakelens.data.synthetic.plan import VideoPlan, plan_videos
from fakelens.data.synthetic.render import Rendering
from fakelens.data.synthetic.sprites import _TEXTURES, _astronaut, _lfw, _texture
from fakelens.errors import FakelensError
from fakelens.types import Modality

PENDING = ".synthetic_pending.json"
_VERSION = 1


def _fingerprint(config: SynthConfig) -> str:
    d = to_dict(config)
    d.pop("workers")
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _write_one(job: tuple[VideoPlan, str, int]) -> tuple[int, float]:
    """Render and encode one video (runs in a worker process), frame by frame. Returns (index, seconds)."""
    from fakelens.io.encode import write_video

    plan, root, crf = job
    src = plan.source
    start = time.perf_counter()
    path = Path(root) / plan.file
    try:
        video = Rendering(plan)
        frames = video.frames()
        if src.rotation:  # stored turned back; the display matrix tells players to turn it upright
            frames = (np.ascontiguousarray(np.rot90(f, src.rotation // 90)) for f in frames)
        write_video(path, frames, _rate(src.fps), audio=video.audio if src.audio else None,
                    sample_rate=src.sample_rate, codec="h264", crf=crf, rotation=src.rotation,
                    times=src.frame_times or None)
    except FakelensError:
        raise
    except Exception as e:  # name the file; the traceback stays attached as the cause
        raise FakelensError(f"{path}: synthesizing failed: {type(e).__name__}: {e}") from e
    return plan.index, time.perf_counter() - start


def _rate(fps: float) -> Fraction:
    """The container's frame rate: 30000/1001 for 29.97..., exact for 25 or 12.5."""
    return Fraction(fps).limit_denominator(1001)


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)

@dataclass
class GenerateResult:
    """What `generate` did: counts per split and modality, timing."""

    root: Path
    plans: list[VideoPlan]
    written: int
    skipped: int
    seconds: float
    per_video_seconds: list[float] = field(default_factory=list)


def generate(out_dir: str | Path, config: SynthConfig, progress: bool = True, overwrite: bool = False) -> Path:
    """Write the dataset described by `config` into `out_dir` and return the directory.

    With `config.workers` != 1 the videos are rendered in worker processes: forked when this
    process runs a single thread, spawned otherwise (then a calling script needs the usual
    `if __name__ == "__main__":` guard, as always with multiprocessing).
    """
    return generate_dataset(out_dir, config, progress=progress, overwrite=overwrite).root


def generate_dataset(out_dir: str | Path, config: SynthConfig, progress: bool = True,
                     overwrite: bool = False) -> GenerateResult:
    """`generate`, returning what was done (for the CLI summary).

    Videos are rendered in parallel (`config.workers` processes); the metadata, face boxes,
    label files and finally the manifest are written after every video exists, each atomically.
    """
    started = time.perf_counter()
    config.validate()
    root = Path(out_dir)
    plans = plan_videos(config)
    fp = _fingerprint(config)
    manifest, pending = root / MANIFEST, root / PENDING
    previous: list[str] = []
    if manifest.exists():
        if not overwrite:
            raise FakelensError(f"{root}: already holds a complete synthetic dataset ({MANIFEST}); "
                                "use --overwrite (overwrite=True) to regenerate it")
        previous = _read_json(manifest).get("files", [])
    elif pending.exists():
        info = _read_json(pending)
        previous = info.get("files", [])
        if info.get("fingerprint") != fp and not overwrite:
            raise FakelensError(f"{root}: holds an unfinished synthetic dataset made with another config "
                                f"({PENDING}); use --overwrite to replace it")
    elif root.exists() and any(root.iterdir()) and not overwrite:
        raise FakelensError(f"{root}: directory is not empty and holds no synthetic dataset; "
                            "choose an empty directory or use --overwrite")
    root.mkdir(parents=True, exist_ok=True)
    files = _output_files(plans, config.layout)
    if manifest.exists():
        manifest.unlink()  # the dataset is incomplete from now until the new manifest is written
    atomic_write_text(pending, json.dumps({"fingerprint": fp, "files": sorted(set(files) | set(previous))}))
    if overwrite:
        for stale in set(previous) - set(files):
            (root / stale).unlink(missing_ok=True)
    todo = [p for p in plans if overwrite or not (root / p.file).exists()]
    times = _run_jobs([(p, str(root), config.crf) for p in todo], config.workers, progress, len(plans))
    _write_metadata(root, plans, config)
    atomic_write_text(manifest, json.dumps(_manifest(plans, config, files), indent=1))
    pending.unlink(missing_ok=True)
    return GenerateResult(root, plans, len(todo), len(plans) - len(todo), time.perf_counter() - started, times)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FakelensError(f"{path}: cannot read: {e}") from None
    if not isinstance(data, dict):
        raise FakelensError(f"{path}: expected a JSON object")
    return data


def _warm_assets() -> None:
    """Load the scikit-image photos once (forked workers then share them instead of reloading)."""
    _astronaut()
    _lfw()
    for name in _TEXTURES:
        _texture(name)


def _pool_context():
    """fork when this process runs no other Python thread (fast start, shared assets, no re-import of
    __main__); spawn otherwise, since forking while another thread may hold a lock can deadlock.
    OpenCV's native thread pool is quiesced around the fork instead (`_opencv_single_threaded`)."""
    import multiprocessing
    import threading

    # tqdm's monitor is a sleeping daemon thread that forked children never use: it does not count
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and t.name != "tqdm_monitor"]
    if "fork" in multiprocessing.get_all_start_methods() and not others:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


@contextmanager
def _opencv_single_threaded(active: bool) -> Iterator[None]:
    """OpenCV at one thread while workers are forked, its thread count restored afterwards.

    A child forked while OpenCV's pool threads wait on their condition variables inherits those
    conditions without the threads, and deadlocks in its first cv2.setNumThreads (seen after any
    large cv2 call in the parent, e.g. rendering a 1080p frame); one thread means no pool to inherit.
    """
    if not active:
        yield
        return
    import cv2

    before = cv2.getNumThreads()
    cv2.setNumThreads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(before)


def _run_jobs(jobs: list, workers: int, progress: bool, total: int) -> list[float]:
    from fakelens.progress import progress as tqdm

    workers = workers or (os.cpu_count() or 1)
    workers = max(1, min(workers, len(jobs)))
    times: list[float] = []
    if workers == 1:
        _worker_init()
        with tqdm(total=total, initial=total - len(jobs), disable=not progress, unit="video",
                  desc="synthesizing") as bar:
            for job in jobs:
                times.append(_write_one(job)[1])
                bar.update(1)
        return times
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = _pool_context()  # decided before tqdm starts its monitor thread
    forking = ctx.get_start_method() == "fork"
    if forking:
        _warm_assets()
    with _opencv_single_threaded(forking), ProcessPoolExecutor(workers, mp_context=ctx,
                                                                initializer=_worker_init) as pool:
        futures = [pool.submit(_write_one, job) for job in jobs]
        with tqdm(total=total, initial=total - len(jobs), disable=not progress, unit="video",
                  desc="synthesizing") as bar:
            try:
                for fut in as_completed(futures):
                    times.append(fut.result()[1])
                    bar.update(1)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    return times

def _manifest(plans: Sequence[VideoPlan], config: SynthConfig, files: list[str]) -> dict:
    made_with = to_dict(config)
    made_with.pop("workers")  # how it was run, not what was made: the bytes do not depend on it
    return {
        "generator": "fakelens.data.synthetic",
        "version": _VERSION,
        "config": made_with,
        "files": files,
        "videos": [_video_entry(p) for p in plans],
    }


def _video_entry(p: VideoPlan) -> dict:
    src, fake = p.source, p.fake
    swap = fake is not None and fake.modality.visual and fake.visual_method == "face_swap"
    return {
        "file": p.file, "split": p.split, "original": p.original, "modify_type": _MODIFY_TYPE[p.modality],
        "identity": identity_name(src.identity),
        "donor": identity_name(fake.donor) if swap else None,
        "visual_method": fake.visual_method if fake else None,
        "audio_method": fake.audio_method if fake else None,
        "segments": [s.to_list() for s in p.segments],
        "visual_segments": [s.to_list() for s in p.visual_segments],
        "audio_segments": [s.to_list() for s in p.audio_segments],
        "scene": src.scene,
        "persons": [{"identity": identity_name(q.identity), "place": q.place, "start": q.start, "end": q.end,
                     "leaves": q.leaves} for q in src.persons],
        "fake_person": fake.target if fake else None,
        "fps": src.fps, "frames": src.n_frames, "duration": round(src.duration, 6),
        "size": list(src.size), "rotation": src.rotation, "audio": src.audio,
        "variable_frame_rate": bool(src.frame_times),
    }


def summarize(plans: Sequence[VideoPlan]) -> list[dict]:
    """Counts per split: videos, reals, fakes per modality, seconds of video and of fake segments."""
    rows = []
    for split in SPLITS:
        items = [p for p in plans if p.split == split]
        if not items:
            continue
        count = {m: sum(p.modality is m for p in items) for m in Modality}
        rows.append({"split": split, "videos": len(items), "real": count[Modality.NONE],
                     "visual": count[Modality.VISUAL], "audio": count[Modality.AUDIO], "both": count[Modality.BOTH],
                     "seconds": round(sum(p.source.duration for p in items), 1),
                     "fake_seconds": round(sum(s.duration for p in items for s in p.segments), 1)})
    return rows
