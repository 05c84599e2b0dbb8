"""The DFDC 3D-CNN inputs and models: ROI clip windows against tracked crops, and 3D forward time on CPU.

1. On a generated 10 s 1920x1080 25 fps h264 clip with a dark moving face (bench_preprocess's),
   `compute_features` with MTCNN (defaults: 640-px detection copies, full detection every 8th
   frame, refine between):
     tracked x32     32 evenly spaced frames, per-frame tracked crops (the 2D recipes' cache);
     roi 4x16        4 windows of 16 consecutive frames, one still region per window;
     roi 4x32        4 windows of 32 (the dfdc_3d_roi recipe);
     roi 4x32 fe4    the same, faces looked for on every 4th frame only (find_every=4);
   at 224 px (and roi 4x32 at 112 px): preprocessing seconds per video and npz bytes per video
   (compressed, as the cache writes it). Goals: roi npz bytes per stored frame <= 1.25 x
   tracked's (consecutive frames of a still region should not compress worse than scattered
   moving crops), and roi 4x32 at 224 px <= 4 x tracked x32's time (it decodes and follows
   the face on 4x the frames).
2. Forward time per clip (batches of 2 clips, 16 x 112^2, 2 threads, eval, no grad) of every 3D
   model of the recipe, with its MACs (torch.utils.flop_counter). Batches of 2, as predict and
   training batch clips: with one clip PyTorch's CPU rule for oneDNN (N*C*D*H > 20480, tuned for
   2D) sends the small late-stage 3D convolutions to the 2-3x slower slow_conv3d. Goals: each clip3d model's time per
   GMAC <= 2.5 x r3d_18's; each i3d's <= 2 x that of its own 2D backbone run as `frame` on the
   same 16 frames (i3d runs the frames folded into the batch and unfolds them around each
   convolution: that must not cost more than the arithmetic; a 2D CNN's small layers run fewer
   MACs per second than r3d_18's big 3D convolutions, so the fair reference is the 2D network).
Timings on a loaded machine are indicative only; re-measure on a quiet one.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.bench_decode import best
from benchmarks.bench_preprocess import FPS, SECONDS, make_clip

CASES = [  # name, MediaConfig overrides
    ("tracked x32", {"sampling": "frames", "n_frames": 32}),
    ("roi 4x16", {"sampling": "windows", "n_windows": 4, "window_frames": 16, "crop": "roi"}),
    ("roi 4x32", {"sampling": "windows", "n_windows": 4, "window_frames": 32, "crop": "roi"}),
    ("roi 4x32 fe4", {"sampling": "windows", "n_windows": 4, "window_frames": 32, "crop": "roi", "find_every": 4}),
    ("roi 4x32 112px", {"sampling": "windows", "n_windows": 4, "window_frames": 32, "crop": "roi", "size": 112}),
]
BATCH = 2  # clips per forward
MODELS_3D = [  # label, model config
    ("clip3d r3d_18", {"name": "clip3d", "backbone": "r3d_18"}),
    ("clip3d r3d_34", {"name": "clip3d", "backbone": "r3d_34"}),
    ("clip3d mc3_18", {"name": "clip3d", "backbone": "mc3_18"}),
    ("clip3d mc3_34", {"name": "clip3d", "backbone": "mc3_34"}),
    ("clip3d r2plus1d_18", {"name": "clip3d", "backbone": "r2plus1d_18"}),
    ("clip3d r2plus1d_34", {"name": "clip3d", "backbone": "r2plus1d_34"}),
    ("i3d resnet50", {"name": "i3d", "backbone": "resnet50"}),
    ("i3d inception_v3", {"name": "i3d", "backbone": "inception_v3"}),
    ("frame resnet50", {"name": "frame", "backbone": "resnet50", "pooling": "mean"}),  # 2D references
    ("frame inception_v3", {"name": "frame", "backbone": "inception_v3", "pooling": "mean"}),
]


def npz_bytes(feats, cfg, folder: Path) -> int:
    """Size of the npz the cache writes for these features."""
    from fakelens.data.arrays import save_arrays
    from fakelens.data.cache import video_arrays

    path = folder / "v.npz"
    save_arrays(path, video_arrays(feats), cfg.to_dict())
    return path.stat().st_size


def bench_cache(tmp: Path) -> None:
    from fakelens.faces.detectors import build_detector
    from fakelens.features.media import MediaConfig, compute_features

    path = tmp / "face_1080p.mp4"
    make_clip(path, SECONDS, 1080, 1920, face_scale=1.0)
    det = build_detector("mtcnn")
    compute_features(path, MediaConfig(n_frames=2), det)  # warm-up
    print(f"{SECONDS} s 1920x1080 {FPS} fps h264, MTCNN; per video:")
    print(f"{'crops':<16} {'frames':>6} {'seconds':>8} {'MB npz':>7} {'KB/frame':>9} {'raw MB':>7}")
    results = {}
    for name, over in CASES:
        cfg = MediaConfig(**over)
        feats = []
        sec = best(lambda: feats.append(compute_features(path, cfg, det)), repeats=2)
        f = feats[-1]
        n = f.clip.faces.shape[1]
        size = npz_bytes(f, cfg, tmp)
        raw = f.clip.faces.nbytes
        results[name] = (sec, size, n)
        print(f"{name:<16} {n:6d} {sec:8.2f} {size / 1e6:7.2f} {size / n / 1e3:9.1f} {raw / 1e6:7.2f}")
    t_sec, t_size, t_n = results["tracked x32"]
    for name in ("roi 4x16", "roi 4x32"):
        sec, size, n = results[name]
        per_frame = (size / n) / (t_size / t_n)
        print(f"{name}: bytes per frame x{per_frame:.2f} tracked's (goal <= 1.25) "
              f"{'OK' if per_frame <= 1.25 else 'MISSED'}; time x{sec / t_sec:.2f} tracked x32's")
    sec = results["roi 4x32"][0]
    ratio = sec / t_sec
    print(f"roi 4x32 preprocessing time x{ratio:.2f} tracked x32's (goal <= 4.00) {'OK' if ratio <= 4 else 'MISSED'}")
    print("the cache holds n_windows x window_frames frames per video whatever the video's length: "
          f"roi 4x32 at 224 px stays near {results['roi 4x32'][1] / 1e6:.1f} MB for a 10 s or a 10 min video")


def bench_forward() -> None:
    import torch

    from fakelens.models import create_model, example_inputs
    from fakelens.train.budget import count_config

    torch.set_num_threads(2)
    print(f"\nforward per clip, batches of {BATCH} clips of 16 x 112^2, {torch.get_num_threads()} threads, eval, no grad")
    print(f"{'model':<20} {'params':>8} {'GMACs':>7} {'ms/clip':>8} {'ms/GMAC':>8}")
    rows = {}
    for label, cfg in MODELS_3D:
        cfg = {**cfg, "num_frames": 16, "image_size": 112}
        torch.manual_seed(0)
        model = create_model(cfg).eval()
        inputs = example_inputs(model, batch=BATCH)
        macs = count_config(cfg).macs / 1e9  # per clip

        def fwd() -> None:
            with torch.no_grad():
                model(**inputs)

        sec = best(fwd, repeats=2) / BATCH  # per clip
        per = sec * 1e3 / macs
        rows[label] = per
        params = sum(p.numel() for p in model.parameters())
        print(f"{label:<20} {params / 1e6:7.1f}M {macs:7.1f} {sec * 1e3:8.0f} {per:8.1f}")
        del model
    for label, per in rows.items():
        if label.startswith("clip3d") and label != "clip3d r3d_18":
            r = per / rows["clip3d r3d_18"]
            print(f"{label}: time per GMAC x{r:.2f} r3d_18's (goal <= 2.5) {'OK' if r <= 2.5 else 'MISSED'}")
        elif label.startswith("i3d"):
            ref = "frame " + label.split()[1]
            r = per / rows[ref]
            print(f"{label}: time per GMAC x{r:.2f} its 2D backbone's ({ref}, goal <= 2.0) "
                  f"{'OK' if r <= 2.0 else 'MISSED'}")


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        bench_cache(Path(tmp))
    bench_forward()


if __name__ == "__main__":
    main()
