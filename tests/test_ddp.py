"""Two-process DDP on CPU (gloo) on tiny random data, launched with torchrun as a user would: with
num_workers=0 (items drawn in each rank's main process) and num_workers=2 (in DataLoader workers),
every rank must draw its own random numbers (clip starts, augmentations)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent('''
    import os
    import sys
    from pathlib import Path

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
            self.log = None

        def __len__(self):
            return len(self.labels)

        def __getitem__(self, i):
            draw = int(torch.randint(10**9, ()).item())  # what a random clip start or augmentation draws
            if self.log is not None:
                with open(self.log / f"draws-{os.environ['RANK']}-{os.getpid()}.txt", "a") as f:
                    f.write(f"{draw}\\n")
            return {"video": self.videos[i], "label": torch.tensor(self.labels[i])}


    for workers in (0, 2):
        cfg = load_train_config(None, [
            "model.name=frame_tiny", "model.image_size=16", "model.num_frames=2", "model.pooling=mean",
            "train.epochs=2", "train.batch_size=2", f"train.num_workers={workers}", "train.progress_bar=false",
            "train.accelerator=cpu", "train.devices=2", "train.strategy=ddp", "train.log_every_n_steps=1",
        ])
        out = Path(sys.argv[1]) / f"workers{workers}"
        train = RandomVideos(8, 0)
        train.log = out / "draws"
        train.log.mkdir(parents=True, exist_ok=True)
        # 5 validation videos on 2 ranks: the distributed sampler repeats one; validation counts it once.
        res = fit(cfg, out / "run", train_dataset=train, val_dataset=RandomVideos(5, 1))
        print("RANK_DONE", workers, torch.distributed.get_rank(), res.metrics["world_size"], res.metrics["global_step"],
              flush=True)
''')


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path):
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
         str(tmp_path)], capture_output=True, text=True, timeout=240, env=env, cwd=tmp_path)
    assert proc.returncode == 0, "stderr:\n" + proc.stderr[-4000:] + "\nstdout:\n" + proc.stdout[-1500:]
    # the two ranks share one pipe: find the markers anywhere, lines may interleave
    done = sorted(re.findall(r"RANK_DONE \d+ \d+ \d+ \d+", proc.stdout))
    # Both ranks finished; 8 samples / (2 ranks x batch 2) = 2 optimizer steps per epoch, 2 epochs.
    assert done == [f"RANK_DONE {w} {r} 2 4" for w in (0, 2) for r in (0, 1)], proc.stdout[-2000:]
    for workers in (0, 2):
        run = tmp_path / f"workers{workers}" / "run"
        metrics = json.loads((run / "metrics.json").read_text())
        assert metrics["world_size"] == 2 and metrics["n_val"] == 5
        assert metrics["last_epoch_metrics"]["val_videos"] == 5  # gathered from both ranks, the repeat dropped
        assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "checkpoints" / "best.ckpt").is_file()
        draws: dict[str, list[int]] = {"0": [], "1": []}
        for f in (tmp_path / f"workers{workers}" / "draws").iterdir():
            draws[f.name.split("-")[1]] += [int(x) for x in f.read_text().split()]
        assert len(draws["0"]) == len(draws["1"]) == 8, draws  # 4 items per rank and epoch
        # each rank its own numbers (they used to be equal with num_workers=0), and each epoch new ones
        assert not set(draws["0"]) & set(draws["1"]), (workers, draws)
        assert len(set(draws["0"])) == 8, (workers, draws)
