"""Peak memory of `predict --workers 2` is flat in the number of videos.

Generates 100 short clips (1 s, 25 fps, 128x128 h264) and a run with random weights whose cache
parameters make big features (32 frames of 224x224 crops, 4.8 MB per video, the full-frame
detector so the benchmark measures the pipeline, not MTCNN). In a fresh subprocess each, the
Predictor scores the first 10 and all 100 videos with 2 feature workers; the parent's peak RSS
(ru_maxrss) is compared. Goal: <= 0.5 MB more per extra video (holding every video's features
until the end grew ~4.7 MB per video). For reference, the same run with an unbounded window
(every job submitted at once, as before).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

N_VIDEOS, SMALL, FRAMES, SIZE, WORKERS, GOAL_MB_PER_VIDEO = 100, 10, 32, 224, 2, 0.5

CHILD = r'''
import json, resource, sys
from pathlib import Path
import torch
torch.set_num_threads(1)
import fakelens.inference.pipeline as pipeline
from fakelens.inference.pipeline import Predictor, load_run
from fakelens.types import Label, VideoRecord

run, videos, n, unbounded = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4] == "1"
if unbounded:
    pipeline.WINDOW_PER_WORKER = 10 ** 6
records = [VideoRecord(p.name, p, Label.UNKNOWN) for p in sorted(videos.glob("*.mp4"))[:n]]
res = Predictor(load_run(run), device="cpu", batch_size=8).predict(records, workers=int(sys.argv[5]))
assert len(res.predictions) == n and not res.failures, res.failures[:3]
print(json.dumps({"peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
'''


def _make_run(root: Path) -> Path:
    import torch

    from fakelens.config import to_dict
    from fakelens.data.cache import CacheConfig
    from fakelens.models import create_model, resolve_config
    from fakelens.train.config import load_train_config

    cfg = load_train_config(None, ["model.name=frame_tiny", f"model.image_size={SIZE}", "model.num_frames=8",
                                   "data.clip_frames=8", "model.pooling=mean"])
    cfg.model = resolve_config(cfg.model)
    net = create_model(cfg.model)
    ckpt = {"hyper_parameters": {"config": to_dict(cfg), "prior": 0.5, "pos_weight": None, "audio_width": None,
                                 "cache_config": CacheConfig(n_frames=FRAMES, size=SIZE, detector="full_frame").to_dict()},
            "state_dict": {f"model.{k}": v for k, v in net.state_dict().items()}}
    (root / "run" / "checkpoints").mkdir(parents=True)
    torch.save(ckpt, root / "run" / "checkpoints" / "best.ckpt")
    return root / "run"


def _make_videos(folder: Path) -> None:
    import numpy as np

    from fakelens.io.encode import write_video

    rng = np.random.default_rng(0)
    for i in range(N_VIDEOS):
        base = rng.integers(0, 255, (16, 16, 3), dtype=np.uint8).repeat(8, 0).repeat(8, 1)  # (128, 128, 3)
        frames = [np.roll(base, 2 * t, axis=1) for t in range(25)]
        write_video(folder / f"{i:03d}.mp4", frames, 25.0)


def _peak(run: Path, videos: Path, n: int, unbounded: bool) -> float:
    out = subprocess.run([sys.executable, "-c", CHILD, str(run), str(videos), str(n), "1" if unbounded else "0",
                          str(WORKERS)], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "videos").mkdir()
        _make_videos(root / "videos")
        run = _make_run(root)
        small = _peak(run, root / "videos", SMALL, False)
        large = _peak(run, root / "videos", N_VIDEOS, False)
        unbounded = _peak(run, root / "videos", N_VIDEOS, True)
    per_video = (large - small) / (N_VIDEOS - SMALL)
    print(f"predict --workers {WORKERS}, {FRAMES} frames of {SIZE}x{SIZE} crops per video "
          f"({FRAMES * SIZE * SIZE * 3 / 1e6:.1f} MB of features each); parent peak RSS:")
    print(f"  {SMALL:3d} videos  {small:7.0f} MB")
    print(f"  {N_VIDEOS:3d} videos  {large:7.0f} MB  ({large / small:.2f}x; {per_video:+.2f} MB per extra video, "
          f"goal <= {GOAL_MB_PER_VIDEO} MB: {'OK' if per_video <= GOAL_MB_PER_VIDEO else 'MISSED'})")
    print(f"  {N_VIDEOS:3d} videos, unbounded window (every job submitted at once): {unbounded:7.0f} MB "
          f"({unbounded / large:.2f}x the bounded run)")


if __name__ == "__main__":
    main()
