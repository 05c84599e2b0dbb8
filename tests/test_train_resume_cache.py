"""A resumed run keeps its own record of the cache parameters it trained on: a cache rebuilt with
other parameters is refused, and the run's cache_config.json is never overwritten; a run folder
that cannot be written fails before training."""

from __future__ import annotations

import json

import pytest

from fakelens.data.cache import CacheConfig
from fakelens.errors import FakelensError, OutputError
from fakelens.train.config import load_train_config
from fakelens.train.engine import fit


def _setup(tmp_path, run_size: int, cache_size: int):
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "config.json").write_text(json.dumps(CacheConfig(size=cache_size).to_dict()))
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "last.ckpt").write_bytes(b"not used: refused before")
    record = json.dumps(CacheConfig(size=run_size).to_dict(), indent=2) + "\n"
    (run / "cache_config.json").write_text(record)
    cfg = load_train_config(None, [f"data.cache={cache}", "train.progress_bar=false"])
    return cfg, run, record


def test_resume_refuses_a_cache_rebuilt_with_other_parameters(tmp_path):
    cfg, run, record = _setup(tmp_path, run_size=64, cache_size=112)
    with pytest.raises(FakelensError, match=r"rebuilt with other parameters.*size: 64 -> 112"):
        fit(cfg, run, resume=True)
    assert (run / "cache_config.json").read_text() == record


def test_resume_with_the_same_cache_passes_the_check(tmp_path):
    cfg, run, record = _setup(tmp_path, run_size=64, cache_size=64)
    with pytest.raises(FakelensError, match="not a finished preprocessing cache"):  # the next check: no index
        fit(cfg, run, resume=True)
    assert (run / "cache_config.json").read_text() == record


def test_an_unwritable_run_folder_fails_before_training(tmp_path):
    from tests.test_train import RandomVideos, tiny_cfg

    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="a file, not a folder"):
        fit(tiny_cfg(), tmp_path / "f" / "run", train_dataset=RandomVideos(8), val_dataset=RandomVideos(4))


def test_a_disk_full_during_training_names_the_folder(tmp_path, monkeypatch):
    import errno

    import torch

    from tests.test_train import RandomVideos, tiny_cfg

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)  # the first checkpoint write
    with pytest.raises(OutputError, match=r"cannot write here: no space left on the device \(ENOSPC\)") as e:
        fit(tiny_cfg(epochs=1), tmp_path / "run", train_dataset=RandomVideos(8), val_dataset=RandomVideos(4))
    assert str(tmp_path / "run") in str(e.value)
    assert (tmp_path / "run" / "config.yaml").is_file()  # what was written before stays


FULL_DISK_FIT = r"""
import json, sys
from pathlib import Path
import torch
from fakelens.errors import OutputError
from fakelens.train.engine import fit
from tests.test_train import RandomVideos, tiny_cfg

run = Path(sys.argv[1]) / "run"
out = {"error": None}
try:
    fit(tiny_cfg(epochs=2), run, train_dataset=RandomVideos(16), val_dataset=RandomVideos(8, seed=1))
except OutputError as e:
    out.update(error=str(e), folder=e.folder)
except Exception as e:
    out.update(error=f"{type(e).__name__}: {e}", other=True)
files = {}
for p in sorted((run / "checkpoints").iterdir()):
    try:
        torch.load(p, map_location="cpu", weights_only=False)
        files[p.name] = "loads"
    except Exception as e:
        files[p.name] = f"damaged: {type(e).__name__}"
out["files"] = files
print(json.dumps(out))
"""


@pytest.mark.slow
def test_a_really_full_run_disk_keeps_whole_checkpoints_and_names_the_run(tmp_path):
    """A 15 MiB disk takes the first 10 MB checkpoint (best.ckpt) but not the second. Before:
    Lightning wrote last.ckpt in /tmp and copied it over, leaving a truncated last.ckpt and an
    error naming /tmp. Now: temp + fsync + rename in the run folder, the error names it."""
    from tests.fulldisk import run_on_small_disk

    disk = tmp_path / "disk"
    out = run_on_small_disk(disk, "15m", FULL_DISK_FIT)
    assert not out.get("other"), out
    assert out["folder"] == str(disk / "run" / "checkpoints"), out
    assert "no space left on the device (ENOSPC)" in out["error"] and "/tmp" not in out["error"].replace(str(tmp_path), "")
    assert out["files"] == {"best.ckpt": "loads"}, out  # no truncated checkpoint, no temporary left
