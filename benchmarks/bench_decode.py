"""Decode speed on a 10 s 1280x720 30 fps h264 + AAC clip: full decode vs sampling N frames.

Checks the FACTS.md claim behind read_frames' "auto" rule: one sequential pass converting only
the wanted frames beats one seek per frame for 32 samples of a short clip.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from fakelens.io.audio import read_audio
from fakelens.io.encode import write_video
from fakelens.io.video import choose_strategy, open_media, probe, read_frames, sample_times

SECONDS, FPS, HEIGHT, WIDTH, N_SAMPLES, REPEATS = 10, 30, 720, 1280, 32, 3


def moving_frames(n: int, h: int, w: int, seed: int = 0) -> Iterator[np.ndarray]:
    """Scrolling smooth texture plus a moving disc: real motion and detail for the encoder."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (h // 16 + 2, (w + 4 * n) // 16 + 2, 3)).astype(np.uint8)
    texture = np.kron(coarse, np.ones((16, 16, 1), np.uint8))  # (H', W', 3) blocky texture
    yy, xx = np.mgrid[:h, :w]
    for i in range(n):
        img = texture[:h, 4 * i : 4 * i + w].copy()  # (H, W, 3), scrolls 4 px per frame
        cx, cy = (w // 4 + 20 * i) % w, h // 2 + int(h / 4 * np.sin(i / 10))
        img[(xx - cx) ** 2 + (yy - cy) ** 2 < 80**2] = (250, 220, 40)
        yield img


def best(fn: Callable[[], object], repeats: int = REPEATS) -> float:
    """Best wall time (seconds) of `repeats` runs, the least disturbed by other processes
    (a single run when it takes over 2 s: slow enough to be measured once)."""
    times: list[float] = []
    while len(times) < repeats and (not times or times[0] < 2.0):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def full_decode(path: Path, rgb: bool) -> int:
    """Decode every frame (frame threading as read_frames' sequential pass), optionally to RGB."""
    n = 0
    with open_media(path) as container:
        vs = container.streams.video[0]
        vs.thread_type = "AUTO"
        for frame in container.decode(vs):
            if rgb:
                frame.to_ndarray(format="rgb24")  # (H, W, 3)
            n += 1
    return n


def auto_choice(path: Path, info, n: int) -> str:
    """What read_frames' "auto" strategy picks for n evenly spaced frames."""
    with open_media(path) as container:
        return choose_strategy(info, sample_times(info, n), container.streams.video[0])


def bench_clip(path: Path, label: str) -> None:
    """Time full decodes and N-frame sampling on one clip; print seconds and ratios."""
    info = probe(path)
    rows: list[tuple[str, float]] = [("probe", best(lambda: probe(path)))]
    rows.append(("full decode (no RGB)", best(lambda: full_decode(path, rgb=False))))
    rows.append(("full decode + RGB", best(lambda: full_decode(path, rgb=True))))
    for n in (N_SAMPLES, 2):
        for strategy in ("sequential", "seek", "auto"):
            rows.append((f"{n} frames, {strategy}",
                         best(lambda s=strategy, n=n: read_frames(path, n=n, strategy=s, info=info))))
    rows.append((f"{N_SAMPLES} frames, sequential, max_side=320",
                 best(lambda: read_frames(path, n=N_SAMPLES, max_side=320, strategy="sequential", info=info))))
    if info.has_audio:
        rows.append(("audio decode -> 16 kHz mono", best(lambda: read_audio(path))))

    d = dict(rows)
    full = d["full decode (no RGB)"]
    print(f"\n{label}: {path.stat().st_size / 1e6:.1f} MB, {info.n_frames} frames")
    print(f"{'task':<40} {'seconds':>8} {'/ full decode':>14}")
    for name, sec in rows:
        print(f"{name:<40} {sec:8.3f} {sec / full:14.2f}")
    print(f"full decode: {info.n_frames / full:.0f} fps decode-only, "
          f"{info.n_frames / d['full decode + RGB']:.0f} fps with RGB")
    for n in (N_SAMPLES, 2):
        seq, seek, auto = (d[f"{n} frames, {s}"] for s in ("sequential", "seek", "auto"))
        print(f"{n} frames / full decode: sequential {seq / full:.2f}, seek {seek / full:.2f}, "
              f"auto {auto / full:.2f}; seek / sequential {seek / seq:.2f}; "
              f"auto picks {auto_choice(path, info, n)}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = np.arange(SECONDS * 16000) / 16000
        audio = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 0.5 * t)) / 2).astype(np.float32)
        clips = [("x264 default GOP (250)", None), ("phone-like GOP 30", 30)]
        for label, gop in clips:
            path = Path(tmp) / f"bench_gop{gop}.mp4"
            t0 = time.perf_counter()
            write_video(path, moving_frames(SECONDS * FPS, HEIGHT, WIDTH), FPS, audio=audio, gop=gop)
            print(f"generated {SECONDS} s {WIDTH}x{HEIGHT} {FPS} fps h264 + AAC ({label}) "
                  f"in {time.perf_counter() - t0:.1f} s")
            bench_clip(path, label)


if __name__ == "__main__":
    main()
