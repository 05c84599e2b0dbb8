"""Two-process DDP on CPU (gloo) on tiny random data, launched with torchrun as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import sys

    import numpy as np
    import torch
    from torch.utils.data import Dataset

    from fakelens.train.config import load_train_config
    from fakelens.train.engine import fit


    class RandomVideos(Dataset):
        def __init__(self, n, seed):
            g = torch.Generator().manual_seed(seed)
            self.labels = np.array([i % 2 for i in range(n)], np.float32)
            self.videos = torch.rand(n, 2, 3, 16, 16, generator=g)
            self.videos[self.labels == 1, :, :, 4:10, 4:10] = 1.0

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            return {"video": self.videos[i], "label": torch.tensor(self.labels[i])}


    cfg = load_train_config(None, [
        "model.name=frame_tiny", "model.image_size=16", "model.num_frames=2", "model.pooling=mean",
        "train.epochs=1", "train.batch_size=2", "train.num_workers=0", "train.progress_bar=false",
        "train.accelerator=cpu", "train.devices=2", "train.strategy=ddp", "train.log_every_n_steps=1",
    ])
    # 5 validation videos on 2 ranks: the distributed sampler repeats one; validation counts it once.
    res = fit(cfg, sys.argv[1], train_dataset=RandomVideos(8, 0), val_dataset=RandomVideos(5, 1))
    print("RANK_DONE", torch.distributed.get_rank(), res.metrics["world_size"], res.metrics["global_step"])
''')


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT)
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(run)],
        capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    done = sorted(line for line in proc.stdout.splitlines() if line.startswith("RANK_DONE"))
    # Both ranks finished; 8 samples / (2 ranks x batch 2) = 2 optimizer steps each.
    assert done == ["RANK_DONE 0 2 2", "RANK_DONE 1 2 2"], proc.stdout[-2000:]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["world_size"] == 2 and metrics["n_val"] == 5
    assert metrics["last_epoch_metrics"]["val_videos"] == 5  # gathered from both ranks, the repeat dropped
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "checkpoints" / "best.ckpt").is_file()
