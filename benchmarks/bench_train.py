"""Training throughput vs data-loader throughput, measured in one run (goal: loader >= 3x the step).

A small cache is built on the fly (the tiny synthetic preset, upsampled to the demo's clip and crop
sizes by sampling more frames, preprocessed with the cheap full-frame detector), then:
  train step   samples/s of forward + loss + backward + AdamW step of the demo recipe's model
               (av_tiny, 8 frames at 64 px + 4 s of log-mel), batches already in memory;
  data loader  samples/s of the demo recipe's AVDataset + DataLoader (train.num_workers workers,
               hflip augmentation), nothing else running.
If the loader is not >= 3x faster than the step, training waits on data.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch

BATCHES = 8


def _cache(root: Path) -> Path:
    from fakelens.data.cache import CacheConfig, preprocess
    from fakelens.data.formats import load_dataset
    from fakelens.data.synthetic import generate, preset

    data = generate(root / "data", preset("tiny", n_videos=16), progress=False)
    cache = root / "cache"
    preprocess(load_dataset(data).records, cache, CacheConfig(n_frames=8, size=64, detector="full_frame"),
               progress=False)
    return cache


def main() -> None:
    from fakelens.train.config import load_train_config
    from fakelens.train.data import build_datasets
    from fakelens.train.engine import make_loaders
    from fakelens.train.module import DetectorModule
    from fakelens.config import to_dict

    with tempfile.TemporaryDirectory() as tmp:
        cache = _cache(Path(tmp))
        cfg = load_train_config(Path(__file__).resolve().parent.parent / "configs" / "demo.yaml",
                                [f"data.cache={cache}", "data.val_split="])
        train_ds, val_ds = build_datasets(cfg)
        labels = [int(v) for v in train_ds.labels]
        loader, _ = make_loaders(cfg, train_ds, val_ds, labels)
        bs = cfg.train.batch_size

        # Data loader alone: several passes (the dataset is small), first batch excluded (worker start).
        it_batches, n, t0 = 0, 0, None
        while it_batches < BATCHES * 4:
            for batch in loader:
                if t0 is None:
                    t0 = time.perf_counter()
                    continue
                n += int(batch["label"].shape[0])
                it_batches += 1
        load_rate = n / (time.perf_counter() - t0)

        # Training step alone, on one batch kept in memory.
        module = DetectorModule(to_dict(cfg), prior=0.5)
        module.train()
        opt = torch.optim.AdamW(module.model.parameters(), lr=1e-3)
        batch = next(iter(loader))
        inputs = {k: batch[k] for k in module.input_keys}

        def step() -> None:
            opt.zero_grad()
            loss, _ = module.task.loss(module.model(**inputs), batch)
            loss.backward()
            opt.step()

        step()  # warm-up
        t1 = time.perf_counter()
        for _ in range(BATCHES):
            step()
        step_rate = BATCHES * batch["label"].shape[0] / (time.perf_counter() - t1)

    print(f"model {cfg.model.name}, batch {bs}, {cfg.data.clip_frames} frames at {cfg.model.image_size} px, "
          f"torch threads {torch.get_num_threads()}, loader workers {cfg.train.num_workers}")
    print(f"train step : {step_rate:8.1f} samples/s")
    print(f"data loader: {load_rate:8.1f} samples/s")
    ratio = load_rate / step_rate
    print(f"loader / step = {ratio:.1f}x (goal >= 3x): {'OK' if ratio >= 3 else 'MISSED'}")


if __name__ == "__main__":
    main()
