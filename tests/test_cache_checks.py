"""Training checks the cache before its first step: a cache of another CACHE_VERSION, rows or npz
files made with other parameters are a clear FakelensError naming the cache and what to do (they
used to give a traceback inside a DataLoader worker once training had started); a FakelensError
raised in a loader worker anyway reaches the user as itself; equal parameters of other number
types (224 and 224.0) are the same parameters."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fakelens.data.arrays import open_arrays, save_arrays
from fakelens.data.cache import CacheConfig, check_cache, params_digest, preprocess, read_index
from fakelens.errors import FakelensError, FormatError, MediaError
from fakelens.train.config import load_train_config

pytestmark = pytest.mark.slow
CFG = dict(sampling="frames", n_frames=4, size=32, detector="haar")


@pytest.fixture(scope="module")
def built_cache(tiny_synth, tmp_path_factory) -> Path:
    from fakelens.data.formats import load_dataset

    cache = tmp_path_factory.mktemp("checked") / "cache"
    preprocess(load_dataset(tiny_synth).records, cache, CacheConfig(**CFG), progress=False)
    return cache


@pytest.fixture
def cache(built_cache, tmp_path) -> Path:
    return Path(shutil.copytree(built_cache, tmp_path / "cache"))


def _train_cfg(cache: Path):
    return load_train_config(None, [
        f"data.cache={cache}", "data.clip_frames=4", "model.name=frame_tiny", "model.image_size=32",
        "model.num_frames=4", "train.epochs=1", "train.batch_size=2", "train.num_workers=1",
        "train.progress_bar=false", "train.accelerator=cpu", "train.devices=1"])


def _fit_refused(cache: Path, tmp_path: Path, error: type, match: str) -> str:
    from fakelens.train.engine import fit

    run = tmp_path / "run"
    with pytest.raises(error, match=match) as e:
        fit(_train_cfg(cache), run)
    assert not (run / "checkpoints").exists()  # refused before the first step
    return str(e.value)


def test_the_cache_trains(cache, tmp_path):
    """The checks pass on a good cache (the refusals below are about what was changed)."""
    from fakelens.train.engine import fit

    assert check_cache(cache) == CacheConfig(**CFG)
    res = fit(_train_cfg(cache), tmp_path / "run")
    assert res.best_checkpoint is not None and res.best_checkpoint.is_file()


def test_a_cache_of_an_older_version_is_refused_before_training(cache, tmp_path):
    conf = json.loads((cache / "config.json").read_text())
    (cache / "config.json").write_text(json.dumps({**conf, "version": conf["version"] - 1}))
    text = _fit_refused(cache, tmp_path, FakelensError, "made by an older fakelens")
    assert str(cache) in text and f"cache version {conf['version'] - 1}" in text and "--force" in text


def test_an_npz_made_with_other_parameters_is_refused_before_training(cache, tmp_path):
    row = next(r for r in read_index(cache) if r.get("npz") and r["split"] == "train")
    npz = cache / row["npz"]
    arrays = open_arrays(npz, lazy=False)
    save_arrays(npz, arrays, {**CacheConfig(**CFG).to_dict(), "margin": 1.5})  # another run's file
    text = _fit_refused(cache, tmp_path, FormatError, "made with other parameters than its cache")
    assert str(npz) in text and "margin: 1.5 here, 1.3 in the cache" in text and "--force" in text


def test_rows_made_with_other_parameters_are_refused_before_training(cache, tmp_path):
    rows = read_index(cache)
    rows[2]["params"] = "0123456789abcdef"
    (cache / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    text = _fit_refused(cache, tmp_path, FakelensError, "were made with other parameters than the cache's config")
    assert "1 of" in text and str(cache) in text


def test_a_fakelens_error_in_a_loader_worker_reaches_the_user_as_itself(tmp_path):
    """torch re-raises a worker's MediaError as RuntimeError('Caught MediaError in DataLoader worker
    process 0. Original Traceback ...'): the CLI printed a traceback."""
    from fakelens.train.engine import fit
    from tests.test_train import RandomVideos, tiny_cfg

    class Broken(RandomVideos):
        def __getitem__(self, i: int) -> dict:
            if i == 3:
                raise MediaError("clips/v3.mp4", "truncated: no frame after 1.2 s")
            return super().__getitem__(i)

    with pytest.raises(FakelensError) as e:
        fit(tiny_cfg(epochs=1, num_workers=1), tmp_path / "run", train_dataset=Broken(8), val_dataset=RandomVideos(4))
    assert str(e.value) == "clips/v3.mp4: truncated: no frame after 1.2 s (raised in data loader worker 0)"


def test_worker_error_ignores_other_exceptions():
    from fakelens.train.data import worker_error

    assert worker_error(RuntimeError("Caught ValueError in DataLoader worker process 0.\nOriginal Traceback "
                                     "(most recent call last):\nValueError: x\n")) is None
    assert worker_error(ValueError("plain")) is None


def test_equal_parameters_of_other_number_types_are_the_same(tiny_synth, tmp_path):
    """A cache made with size 32.0 (a YAML or JSON value) re-run with size 32: every row was
    recomputed, and a run checked against it was refused, because the digests differed."""
    from fakelens.data.formats import load_dataset

    assert params_digest({"size": 224.0, "margin": 1.3}) == params_digest({"size": 224, "margin": 1.3})
    assert params_digest({"sample_fps": 5, "margin": 2}) == params_digest({"sample_fps": 5.0, "margin": 2.0})
    assert params_digest({"size": 224.5}) != params_digest({"size": 224})
    # a correctly typed config keeps the digest it had (existing caches stay valid)
    import hashlib

    d = CacheConfig().to_dict()
    assert params_digest(d) == hashlib.sha1(json.dumps(d, sort_keys=True).encode("utf-8")).hexdigest()[:16]
    assert params_digest(CacheConfig(**{**CFG, "size": 32.0})) == params_digest(CacheConfig(**CFG))
    records = load_dataset(tiny_synth, split="val").records
    preprocess(records, tmp_path / "c", CacheConfig(**{**CFG, "size": 32.0}), progress=False, split="val")
    again = preprocess(records, tmp_path / "c", CacheConfig(**CFG), progress=False, split="val")
    assert again.skipped == len(records) and again.processed == 0
    check_cache(tmp_path / "c")
