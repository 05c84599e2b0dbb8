"""Temporal localization per minute of video on CPU: decode + faces, encoder, head, post-processing.

On a generated 60 s 224x224 25 fps h264 + AAC clip (AV-Deepfake1M's shape) with a moving face:
  decode-only      every frame decoded, nothing converted (the floor); "with RGB" beside it: every
                   frame also converted to RGB as fakelens converts (fakelens.io.video.iter_frames);
  decode + faces   every frame decoded, the face looked for on every 4th (MTCNN, followed between
                   full detections), the boxes of every frame tracked (interpolated, smoothed)
                   = fakelens.inference.dense.dense_features without its crop, log-mel and encoder time;
  crops            every frame's face crop cut (64 px, the demo's);
  encoder          the frozen visual encoder on every crop, in chunks of 64 (the demo's tinycnn at
                   64 px; efficientnet_b0 at 224 px printed beside it as frames/s), and the log-mel
                   audio steps;
  head             the localizer's forward over the 1500 steps (the demo recipe and the
                   avdf1m_task2 recipe's sizes);
  post-processing  decoding the pyramid's points to seconds, soft-NMS, top 100.
Goals: decode + faces <= 3x decode-only; head + post-processing <= 5% of the total (demo sizes).
The decode + faces ratio is also printed for a 20 s 1280x720 clip (real footage's usual size).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from benchmarks.bench_decode import best, full_decode
from benchmarks.bench_preprocess import make_clip

SECONDS, SIZE = 60, 224
HD_SECONDS, HD = 20, (720, 1280)


def _localizer(dim: int, layers: int, levels: int, fusion: str, dv: int, da: int):
    from fakelens.models import create_model

    return create_model("localizer", feature_dim=dv, audio_feature_dim=da, temporal_dim=dim, temporal_layers=layers,
                        levels=levels, fusion=fusion).eval()


def rgb_decode(path: Path) -> int:
    """Every frame decoded and converted to RGB as fakelens does (fakelens.io.video.iter_frames)."""
    from fakelens.io.video import iter_frames

    return sum(1 for _ in iter_frames(path))


def faces_seconds(path: Path, cfg, enc, det, repeats: int = 2):
    """(best wall time of dense_features without its crop, log-mel and encoder time, crop time, the DenseVideo)."""
    from fakelens.inference.dense import dense_features

    runs = []

    def one():
        t0 = time.perf_counter()
        dv = dense_features(path, cfg, enc, det)
        tm = dv.timings
        wall = time.perf_counter() - t0
        runs.append((wall - tm["visual_encoder"] - tm["audio_encoder"] - tm["crop"] - tm["audio"], tm["crop"], dv))

    for _ in range(repeats):
        one()
    return min(runs, key=lambda r: r[0])


def main() -> None:
    from fakelens.data.features import FeatureConfig, step_inputs
    from fakelens.faces.detectors import build_detector
    from fakelens.features.media import MediaConfig
    from fakelens.inference.dense import build_encoder, dense_features
    from fakelens.inference.localize import finish, forward_items, window_items
    from fakelens.train.config import PredictConfig

    torch.set_num_threads(2)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "minute.mp4"
        t0 = time.perf_counter()
        make_clip(path, SECONDS, SIZE, SIZE, face_scale=0.45)
        n_frames = SECONDS * 25
        print(f"generated {SECONDS} s {SIZE}x{SIZE} 25 fps h264 + AAC ({n_frames} frames) in "
              f"{time.perf_counter() - t0:.1f} s")
        media = MediaConfig(sampling="all", find_every=4, size=64, max_faces=1)
        enc, media = build_encoder("tinycnn", media=media)
        cfg = FeatureConfig(media=media, encoder=enc.record())
        det = build_detector("mtcnn")
        dense_features(path, cfg, enc, det)  # warm-up (first MTCNN call, encoder allocations)
        decode = best(lambda: full_decode(path, rgb=False))
        decode_rgb = best(lambda: rgb_decode(path))
        faces, crop, dv = faces_seconds(path, cfg, enc, det)
        tm = dv.timings
        encoder = tm["visual_encoder"] + tm["audio_encoder"] + tm["audio"]
        print(f"faces found in {dv.counts['found']} of {dv.counts['frames']} frames; "
              f"{dv.counts['detect_runs']} full detections, {dv.counts['refined']} follow-ups; steps: "
              + ", ".join(f"{k} {v:.2f}" for k, v in tm.items() if v >= 0.01))

        crops = np.random.default_rng(0).integers(0, 255, (64, 224, 224, 3), dtype=np.uint8)
        big, _ = build_encoder("efficientnet_b0", media=MediaConfig(sampling="all"))
        big.encode_crops(crops[:4])
        t_big = best(lambda: big.encode_crops(crops), repeats=2)

        x = step_inputs(dv.arrays)
        predict = PredictConfig(iou_threshold=0.0)
        heads = {}
        for name, model in (("demo (64 wide, 2 layers, 5 levels, mid)", _localizer(64, 2, 5, "mid", x.visual.shape[1],
                                                                                   x.audio.shape[1])),
                            ("avdf1m_task2 (256, 4, 6, mid)", _localizer(256, 4, 6, "mid", x.visual.shape[1],
                                                                          x.audio.shape[1]))):
            items = window_items(x, predict.window_steps, predict.window_overlap)
            outs: list = []
            heads[name] = (best(lambda: outs.append(forward_items(model, items)), repeats=3), items, outs)
        items, outs = heads["demo (64 wide, 2 layers, 5 levels, mid)"][1:]
        post = best(lambda: finish(x, items, outs[-1], predict), repeats=5)
        n_props = len(finish(x, items, outs[-1], predict).proposals)

        head = heads["demo (64 wide, 2 layers, 5 levels, mid)"][0]
        hd_path = Path(tmp) / "hd.mp4"
        make_clip(hd_path, HD_SECONDS, HD[0], HD[1], face_scale=1.5)  # a ~130 px face
        hd_decode = best(lambda: full_decode(hd_path, rgb=False))
        hd_faces, _, hd_dv = faces_seconds(hd_path, cfg, enc, det, repeats=1)

        total = faces + crop + encoder + head + post
        print(f"\nper minute of video ({n_frames} frames, {len(x.visual)} steps, {n_props} proposals):")
        print(f"{'stage':<52} {'seconds':>8} {'share':>7}  notes")
        rows = [("decode-only (all frames, no RGB)", decode, f"{n_frames / decode:.0f} frames/s; with RGB "
                 f"{decode_rgb:.3f} s, {n_frames / decode_rgb:.0f} frames/s"),
                ("decode + faces (every frame's box, find_every 4)", faces,
                 f"{faces / decode:.2f} x decode-only, {faces / decode_rgb:.2f} x with RGB, "
                 f"{n_frames / faces:.0f} frames/s"),
                ("crops (every frame's, 64 px)", crop, f"{n_frames / max(crop, 1e-9):.0f} frames/s"),
                ("encoder: tinycnn 64 px + log-mel", encoder, f"{n_frames / max(encoder, 1e-9):.0f} frames/s; "
                 f"efficientnet_b0 224 px: {len(crops) / t_big:.0f} frames/s"),
                ("head: localizer demo sizes", head, ""),
                ("post-processing: decode + soft-NMS + top 100", post, "")]
        for name, sec, note in rows:
            share = f"{sec / total:7.1%}" if name != rows[0][0] else "       "
            print(f"{name:<52} {sec:8.3f} {share}  {note}")
        hd_frames = hd_dv.counts["frames"]
        print(f"{HD[1]}x{HD[0]}, {HD_SECONDS} s ({hd_frames} frames): decode-only {hd_decode:.3f} s, decode + faces "
              f"{hd_faces:.3f} s = {hd_faces / hd_decode:.2f} x ({hd_dv.counts['detect_runs']} full detections, "
              f"{hd_dv.counts['refined']} follow-ups)")
        for name, (sec, _, _) in heads.items():
            print(f"  head {name:<46} {sec:8.3f}")
        ratio = faces / decode
        share = (head + post) / total
        print(f"goal decode + faces <= 3.00 x decode-only ({SIZE}x{SIZE}): {ratio:.2f} {'OK' if ratio <= 3 else 'MISSED'}")
        print(f"goal head + post-processing <= 5% of the total: {share:.1%} {'OK' if share <= 0.05 else 'MISSED'}")


if __name__ == "__main__":
    main()
