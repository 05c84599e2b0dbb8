"""Model speed on CPU (2 threads) and budget counting without allocation.

1. One training step (forward + backward + AdamW) on a batch of 8 videos x 8 frames x 112^2:
   the demo's `frame_tiny` (tinycnn from scratch) against larger timm backbones, and the
   resulting compute time of an epoch over 150 synthetic videos.
2. `check_budget` on a 300M-parameter config: built on the meta device vs materialised on CPU.
"""

from __future__ import annotations

import time
from typing import Callable

import torch

from fakelens.models import create_model, example_inputs

BATCH, FRAMES, SIZE, STEPS, VIDEOS = 8, 8, 112, 5, 150
BACKBONES = ["tinycnn", "tinycnn_wide", "resnet10t", "efficientnet_b0"]


def best(fn: Callable[[], object], repeats: int) -> float:
    """Best wall time (s) of `repeats` runs after one warm-up: the least disturbed by other processes."""
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def train_step_time(backbone: str) -> tuple[float, float, int]:
    """(train step s, eval forward s, parameters) of frame_tiny with `backbone`."""
    torch.manual_seed(0)
    model = create_model("frame_tiny", backbone=backbone, num_frames=FRAMES, image_size=SIZE)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    inputs = example_inputs(model, batch=BATCH)  # video (8, 8, 3, 112, 112)
    target = (torch.arange(BATCH) % 2).float()

    def step() -> None:
        model.train()
        out = model(**inputs)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out["logit"], target)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def forward() -> None:
        model.eval()
        with torch.no_grad():
            model(**inputs)

    repeats = STEPS if backbone.startswith("tiny") else 2
    return best(step, repeats), best(forward, repeats), sum(p.numel() for p in model.parameters())


def budget_time() -> tuple[float, float, int]:
    """(meta check s, CPU build + count s, params) for vit_large (304M parameters, over budget)."""
    from fakelens.errors import BudgetError
    from fakelens.train.budget import check_budget, count_params

    cfg = {"name": "frame", "backbone": "vit_large_patch16_224"}
    t = time.perf_counter()
    try:
        check_budget(cfg)
        raise AssertionError("vit_large should be over the 200M budget")
    except BudgetError:
        meta = time.perf_counter() - t
    t = time.perf_counter()
    params, _ = count_params(create_model(cfg))
    cpu = time.perf_counter() - t
    return meta, cpu, params


def main() -> None:
    torch.set_num_threads(2)
    print(f"training step, batch {BATCH} videos x {FRAMES} frames x {SIZE}^2, {torch.get_num_threads()} threads")
    print(f"{'backbone':16s} {'params':>8s} {'train step':>11s} {'eval fwd':>9s} {f'epoch/{VIDEOS} videos':>18s}")
    base = None
    for name in BACKBONES:
        step, fwd, params = train_step_time(name)
        base = base or step
        epoch = step * VIDEOS / BATCH
        print(f"{name:16s} {params / 1e6:7.2f}M {step:10.3f}s {fwd:8.3f}s {epoch:17.1f}s   x{step / base:.1f} vs tinycnn")
    meta, cpu, params = budget_time()
    print(f"budget check of vit_large_patch16_224 ({params / 1e6:.0f}M params): meta {meta:.2f}s, "
          f"CPU build {cpu:.2f}s (x{cpu / meta:.1f})")


if __name__ == "__main__":
    main()
