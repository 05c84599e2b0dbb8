"""Temporal localization per minute of video on CPU: decode + faces, encoder, head, post-processing.

On a generated 60 s 224x224 25 fps h264 + AAC clip (AV-Deepfake1M's shape) with a moving face:
  decode-only      every frame decoded, nothing converted (the floor);
  decode + faces   every frame decoded, the face looked for on every 4th (MTCNN, followed between
                   full detections), boxes interpolated, every frame's crop cut (64 px, the demo's)
                   = fakelens.inference.dense.dense_features without its encoder time;
  encoder          the frozen visual encoder on every crop, in chunks of 64 (the demo's tinycnn at
                   64 px; efficientnet_b0 at 224 px printed beside it as frames/s), and the log-mel
                   audio steps;
  head             the localizer's forward over the 1500 steps (the demo recipe and the
                   avdf1m_task2 recipe's sizes);
  post-processing  decoding the pyramid's points to seconds, soft-NMS, top 100.
Goals: decode + faces <= 3x decode-only; head + post-processing <= 5% of the total (demo sizes).
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


def _localizer(dim: int, layers: int, levels: int, fusion: str, dv: int, da: int):
    from fakelens.models import create_model

    return create_model("localizer", feature_dim=dv, audio_feature_dim=da, temporal_dim=dim, temporal_layers=layers,
                        levels=levels, fusion=fusion).eval()


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
        runs = []
        wall = best(lambda: runs.append(dense_features(path, cfg, enc, det)), repeats=2)
        dv = runs[-1]
        tm = dv.timings
        encoder = tm["visual_encoder"] + tm["audio_encoder"]
        faces = wall - encoder
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
        total = faces + encoder + head + post
        print(f"\nper minute of video ({n_frames} frames, {len(x.visual)} steps, {n_props} proposals):")
        print(f"{'stage':<52} {'seconds':>8} {'share':>7}  notes")
        rows = [("decode-only (all frames, no RGB)", decode, f"{n_frames / decode:.0f} frames/s"),
                ("decode + faces (every frame's crop, find_every 4)", faces,
                 f"{faces / decode:.2f} x decode-only, {n_frames / faces:.0f} frames/s"),
                ("encoder: tinycnn 64 px + log-mel", encoder, f"{n_frames / max(encoder, 1e-9):.0f} frames/s; "
                 f"efficientnet_b0 224 px: {len(crops) / t_big:.0f} frames/s"),
                ("head: localizer demo sizes", head, ""),
                ("post-processing: decode + soft-NMS + top 100", post, "")]
        for name, sec, note in rows:
            share = f"{sec / total:7.1%}" if name != rows[0][0] else "       "
            print(f"{name:<52} {sec:8.3f} {share}  {note}")
        for name, (sec, _, _) in heads.items():
            print(f"  head {name:<46} {sec:8.3f}")
        ratio = faces / decode
        share = (head + post) / total
        print(f"goal decode + faces <= 3.00 x decode-only: {ratio:.2f} {'OK' if ratio <= 3 else 'MISSED'}")
        print(f"goal head + post-processing <= 5% of the total: {share:.1%} {'OK' if share <= 0.05 else 'MISSED'}")


if __name__ == "__main__":
    main()
