"""Face preprocessing speed and memory: fakelens `extract_faces` vs decode-only vs the DFDC-winner recipe.

On a generated 10 s 1920x1080 25 fps h264 clip with a dark moving face (the astronaut), times:
  decode-only        every frame decoded, nothing converted (the floor for any pipeline),
  reference          every frame decoded to full RGB, 32 evenly spaced kept, halved with cv2,
                     MTCNN (same detector) on the 32 halves, crops (the DFDC-winner recipe),
  fakelens           extract_faces(n_frames=32) with the defaults: one decode pass in a background
                     thread keeping the 32 frames as 640-px RGB copies made in libswscale plus
                     their unconverted yuv420p planes; MTCNN on every 8th sampled frame and the
                     face followed by MTCNN's R-net + O-net near its last box in between
                     (`FaceFinder`); tracking; RGB conversion of the crops only. Also with
                     detect_every 1 (full MTCNN on all 32 frames), 4 and 32.
Goals: fakelens <= 0.5x reference and <= 2x decode-only. Then the cache loader's throughput,
and the peak RSS (RUSAGE_CHILDREN of a subprocess) of preprocessing a 10-minute 320x240 video
(goal <= 1 GB).
"""

from __future__ import annotations

import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_decode import best, full_decode
from fakelens.faces.detectors import build_detector
from fakelens.faces.extract import DETECT_EVERY, crop_square, extract_faces
from fakelens.faces.tracking import box_iou
from fakelens.io.encode import write_video
from fakelens.io.video import open_media, probe, sample_times

SECONDS, FPS, N = 10, 25, 32
ASTRONAUT_FACE = np.array([181, 62, 268, 172], np.float32)  # MTCNN box in skimage.data.astronaut()


def face_frames(n: int, h: int, w: int, face_scale: float, dark: float = 0.55):
    """Dark textured background with the astronaut's head moving across; yields (frame, true face box)."""
    import cv2
    from skimage.data import astronaut

    head = astronaut()[0:330, 90:370]  # (330, 280, 3) head and shoulders
    head = cv2.resize(head, None, fx=face_scale, fy=face_scale, interpolation=cv2.INTER_AREA)
    hh, hw = head.shape[:2]
    rng = np.random.default_rng(0)
    coarse = rng.integers(20, 90, (h // 32 + 2, w // 32 + 2, 3)).astype(np.uint8)
    bg = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_LINEAR)  # (H, W, 3) smooth dark texture
    for i in range(n):
        # a talking head: drifts a quarter of the free width in the clip, sways with a ~4 s period
        x = int((w - hw) * (0.35 + 0.25 * i / max(1, n - 1)))
        y = int((h - hh) * (0.5 + 0.1 * np.sin(2 * np.pi * i / (4 * FPS))))
        img = bg.copy()
        img[y : y + hh, x : x + hw] = head
        img = (img.astype(np.float32) * dark).astype(np.uint8)
        box = (ASTRONAUT_FACE - np.array([90, 0, 90, 0], np.float32)) * face_scale + np.array([x, y, x, y], np.float32)
        yield img, box


def make_clip(path: Path, seconds: float, h: int, w: int, face_scale: float, audio: bool = True) -> np.ndarray:
    """Write the clip; returns the true face boxes (n_frames, 4)."""
    n = int(seconds * FPS)
    boxes: list[np.ndarray] = []

    def frames():
        for img, box in face_frames(n, h, w, face_scale):
            boxes.append(box)
            yield img

    wave = None
    if audio:
        t = np.arange(int(seconds * 16000)) / 16000
        wave = (0.2 * np.sin(2 * np.pi * 180 * t)).astype(np.float32)
    write_video(path, frames(), FPS, audio=wave)
    return np.stack(boxes)


def reference_pipeline(path: Path, detector, n: int = N) -> np.ndarray:
    """Full RGB decode of every frame, keep n evenly spaced, MTCNN at half resolution, crops."""
    import cv2

    info = probe(path)
    want = set(np.round(sample_times(info, n) * info.fps).astype(int).tolist())
    kept = []
    with open_media(path) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        for i, frame in enumerate(container.decode(vs)):
            rgb = frame.to_ndarray(format="rgb24")  # (H, W, 3): every frame converted
            if i in want:
                kept.append(rgb)
    frames = np.stack(kept)  # (n, H, W, 3)
    h, w = frames.shape[1:3]
    half = np.stack([cv2.resize(f, (w // 2, h // 2), interpolation=cv2.INTER_AREA) for f in frames])
    dets = detector.detect(half)
    crops = [crop_square(f, d[0, :4] * 2, 1.3, 224) for f, d in zip(frames, dets) if len(d)]
    return np.stack(crops) if crops else np.zeros((0, 224, 224, 3), np.uint8)


def _quality(clip, truth: np.ndarray) -> str:
    if not len(clip.boxes):
        return "no face"
    ious = np.array([box_iou(clip.boxes[0, t][None], truth[i][None])[0, 0] for t, i in enumerate(clip.indices)])
    return f"IoU>=0.5 in {(ious >= 0.5).mean():.0%}, mean IoU {ious.mean():.2f}"


def bench_1080p(tmp: Path) -> None:
    path = tmp / "face_1080p.mp4"
    t0 = time.perf_counter()
    truth = make_clip(path, SECONDS, 1080, 1920, face_scale=1.0)
    print(f"generated {SECONDS} s 1920x1080 {FPS} fps h264 + AAC, face ~90x110 px, "
          f"in {time.perf_counter() - t0:.1f} s")
    info = probe(path)
    det = build_detector("mtcnn")
    extract_faces(path, n_frames=2, detector=det, info=info)  # warm-up (first MTCNN call)
    decode = best(lambda: full_decode(path, rgb=False))
    ref = best(lambda: reference_pipeline(path, det), repeats=2)
    rows = [("decode-only (all frames, no RGB)", decode, ""), ("reference: all RGB + MTCNN half-res x32", ref, "")]
    for every in (DETECT_EVERY, 1, 4, 32):
        clips = []
        sec = best(lambda e=every: clips.append(extract_faces(path, n_frames=N, detector=det, info=info,
                                                              detect_every=e)), repeats=3)
        c = clips[-1]
        steps = ", ".join(f"{k} {v:.2f}" for k, v in c.timings.items() if v >= 0.01)
        name = f"fakelens x32, detect_every={every}" + (" (default)" if every == DETECT_EVERY else "")
        rows.append((name, sec, f"{_quality(c, truth)}; {c.n_detect_runs} full detections; {steps}"))
    print(f"\n{'task':<46} {'seconds':>8} {'/decode':>8} {'/ref':>6}  notes")
    for name, sec, note in rows:
        print(f"{name:<46} {sec:8.3f} {sec / decode:8.2f} {sec / ref:6.2f}  {note}")
    print("goals: fakelens (default) <= 0.50 x reference and <= 2.00 x decode-only; 'decode' in the notes is "
          "the time spent waiting for frames, since detection runs while the next frames decode")


def bench_loader(tmp: Path) -> None:
    """Items per second from a cache of 32 x 224^2 face crops per video (npz, compressed uint8)."""
    import torch

    from fakelens.data.cache import CacheConfig, preprocess
    from fakelens.data.dataset import ClipDataset, FrameDataset
    from fakelens.types import Label, VideoRecord

    src = tmp / "face_720p.mp4"
    make_clip(src, 4, 720, 1280, face_scale=1.5)
    recs = [VideoRecord(id=f"v{i}", path=src, label=Label.REAL) for i in range(4)]
    cache = tmp / "cache"
    t0 = time.perf_counter()
    preprocess(recs, cache, CacheConfig(n_frames=N), progress=False)
    per_video = (time.perf_counter() - t0) / len(recs)
    npz = next((cache / "videos").glob("*.npz"))
    print(f"\ncache: {per_video:.2f} s per 4 s 720p video, {npz.stat().st_size / 1e6:.2f} MB per npz "
          f"(raw crops {N * 224 * 224 * 3 / 1e6:.1f} MB)")
    for name, ds in (("FrameDataset (1 frame)", FrameDataset(cache, frames_per_video=8)),
                     ("ClipDataset (16 frames)", ClipDataset(cache, clip_frames=16)),
                     ("ClipDataset uint8 (16 frames)", ClipDataset(cache, clip_frames=16, as_uint8=True))):
        loader = torch.utils.data.DataLoader(ds, batch_size=4, num_workers=0)
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < 1.5:
            for batch in loader:
                n += len(batch["id"])
        sec = time.perf_counter() - t0
        print(f"loader {name:<32} {n / sec:8.1f} items/s  (one process)")


_RSS_CHILD = """
import sys, time
from fakelens.data.cache import CacheConfig, compute_features
from fakelens.faces.detectors import build_detector
det = build_detector("mtcnn")  # imports torch, torchvision, facenet: the fixed part of the peak
if sys.argv[2] != "baseline":
    cfg = CacheConfig(**eval(sys.argv[2]))
    t0 = time.perf_counter()
    f = compute_features(sys.argv[1], cfg, det)
    print(f"{f.clip.status}, faces {tuple(f.clip.faces.shape)}, mel {tuple(f.mel.shape)}, "
          f"{time.perf_counter() - t0:.1f} s; ", end="")
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM")]  # peak RSS since exec
print(f"own VmHWM {int(hwm[0].split()[1]) / 1024:.0f} MB" if hwm else "")
"""


def bench_rss(tmp: Path) -> None:
    """Peak RSS of preprocessing a 10-minute 320x240 video in a subprocess (RUSAGE_CHILDREN).

    Cases run from the smallest expected peak up, since RUSAGE_CHILDREN keeps the maximum; run
    before the other benches, since a forked child's ru_maxrss starts at its parent's RSS.
    The child also prints its own VmHWM (peak since exec), which has neither caveat.
    """
    path = tmp / "long_10min.mp4"
    t0 = time.perf_counter()
    make_clip(path, 600, 240, 320, face_scale=0.45)
    print(f"\ngenerated 10 min 320x240 {FPS} fps h264 + AAC in {time.perf_counter() - t0:.1f} s")
    cases = (("baseline: imports + MTCNN", "baseline"),
             ("32 frames", repr({"n_frames": 32})),
             ("1 frame/s = 600 (stream)", repr({"sampling": "fps", "sample_fps": 1.0})))
    base = None
    for label, cfg in cases:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        out = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(path), cfg], capture_output=True,
                             text=True, check=True)
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # MiB, max over children so far
        base = peak if base is None else base
        note = "" if peak * 1024 > before else " (not above an earlier child's peak)"
        extra = f"  (+{peak - base:.0f} MB over baseline)" if cfg != "baseline" else ""
        print(f"peak RSS {label:<28} {peak:7.0f} MB{extra}{note}  goal <= 1024 MB  {out.stdout.strip()}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench_rss(Path(tmp))
        bench_1080p(Path(tmp))
        bench_loader(Path(tmp))


if __name__ == "__main__":
    main()
