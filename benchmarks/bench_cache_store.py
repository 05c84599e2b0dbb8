"""What a training item costs to read from the cache: whole-array npz (before) vs chunked faces.

32 face crops of 224x224 (the astronaut's head drifting over a dark texture, cut as preprocessing
cuts them, evenly spaced over a 10 s 25 fps clip) stored (a) as one compressed `faces` member, as
the cache did before version 3, and (b) with fakelens.data.arrays.save_arrays (chunks of 8
frames). Times reading one random 8-frame clip and one random frame, best of REPEATS.
Goals: the chunked file no more than 5% bigger; a clip read >= 2x faster.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

N, SIZE, CLIP, REPEATS = 32, 224, 8, 30


def _crops() -> np.ndarray:
    from benchmarks.bench_preprocess import face_frames
    from fakelens.faces.extract import crop_square

    keep = set(np.linspace(0, 249, N).round().astype(int).tolist())
    out = [crop_square(img, box, 1.3, SIZE) for i, (img, box) in enumerate(face_frames(250, 720, 1280, 0.6))
           if i in keep]
    return np.stack(out)[None]  # (1, T, S, S, 3)


def _best(fn) -> float:
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    from fakelens.data.arrays import open_arrays, save_arrays

    faces = _crops()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        old, new = Path(tmp) / "old.npz", Path(tmp) / "new.npz"
        np.savez_compressed(old, faces=faces, times=np.arange(N) / 25.0)
        save_arrays(new, {"faces": faces, "times": np.arange(N) / 25.0}, {"size": SIZE})

        def old_clip():
            s = int(rng.integers(N - CLIP + 1))
            with np.load(old) as z:
                return z["faces"][0, s : s + CLIP]

        def new_clip():
            s = int(rng.integers(N - CLIP + 1))
            return open_arrays(new, ("faces",))["faces"][0, np.arange(s, s + CLIP)]

        def old_frame():
            with np.load(old) as z:
                return z["faces"][0, int(rng.integers(N))]

        def new_frame():
            return open_arrays(new, ("faces",))["faces"][0, int(rng.integers(N))]

        sizes = old.stat().st_size, new.stat().st_size
        t = {k: _best(f) for k, f in (("old_clip", old_clip), ("new_clip", new_clip), ("old_frame", old_frame),
                                       ("new_frame", new_frame))}
    raw = faces.nbytes
    print(f"{N} crops of {SIZE}x{SIZE} ({raw / 1e6:.1f} MB raw) per video:")
    grow = sizes[1] / sizes[0]
    print(f"  bytes per video: whole {sizes[0] / 1e6:.2f} MB, chunked {sizes[1] / 1e6:.2f} MB ({grow:.3f}x, "
          f"goal <= 1.05x: {'OK' if grow <= 1.05 else 'MISSED'})")
    speed = t["old_clip"] / t["new_clip"]
    print(f"  one {CLIP}-frame clip: whole {t['old_clip'] * 1e3:.1f} ms, chunked {t['new_clip'] * 1e3:.1f} ms "
          f"({speed:.1f}x faster, goal >= 2x: {'OK' if speed >= 2 else 'MISSED'})")
    print(f"  one frame: whole {t['old_frame'] * 1e3:.1f} ms, chunked {t['new_frame'] * 1e3:.1f} ms "
          f"({t['old_frame'] / t['new_frame']:.1f}x faster)")


if __name__ == "__main__":
    main()
