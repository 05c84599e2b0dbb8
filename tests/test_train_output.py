"""What a training run tells its user: one line per epoch, no third-party noise (unless verbose), a
one-class validation set refused before the first step, and a metric undefined on one validation
logged as such instead of crashing the run."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest

from fakelens.errors import FakelensError
from test_train import RandomVideos, tiny_cfg

NOISE = ("GPU available", "TPU available", "Tip:", "litlogger", "litmodels", "LeafSpec", "does not have many workers",
         "smaller than the logging interval", "Trainable params", "LOCAL_RANK")


class OrderedVideos(RandomVideos):
    """RandomVideos whose first half is fake and second half real (batches in order are one-class)."""

    def __init__(self, n: int, seed: int = 0):
        super().__init__(n, seed=seed)
        self.labels = np.array([1.0] * (n // 2) + [0.0] * (n - n // 2), np.float32)


def test_one_line_per_epoch_and_no_third_party_noise(tmp_path, capfd):
    from fakelens.train.engine import fit

    run = tmp_path / "run"
    fit(tiny_cfg(epochs=3), run, train_dataset=RandomVideos(16), val_dataset=RandomVideos(8, seed=1))
    out, err = capfd.readouterr()
    for noise in NOISE:
        assert noise not in out + err, noise
    lines = [line for line in err.splitlines() if line.startswith("epoch ")]
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"], err
    for line in lines:
        assert "train_loss" in line and "val_auc" in line and "val_logloss" in line and " s  " in line
    assert "new best val_auc, saved" in lines[0]  # the first validation always keeps a checkpoint
    assert err.splitlines()[0].startswith("training model 'frame_tiny'") and "done: 3 epochs" in err
    log = (run / "train.log").read_text()
    assert [line for line in log.splitlines() if line.startswith("epoch ")] == lines
    # --verbose shows what Lightning has to say (its banners go to its logger, which pytest may
    # capture; the model summary is printed).
    fit(tiny_cfg(epochs=1), tmp_path / "verbose", train_dataset=RandomVideos(8), val_dataset=RandomVideos(4, seed=1),
        verbose=True)
    out, err = capfd.readouterr()
    assert "Trainable params" in out + err


@pytest.mark.parametrize("monitor", ["val_logloss", "val_auc"])
def test_one_class_validation_is_refused_before_the_first_step(tmp_path, monitor):
    """Before: with val_logloss (the DFDC recipes' monitor) training ran an epoch, then crashed with
    no checkpoint. Now the counts and what to change come before any step."""
    from fakelens.train.engine import fit

    all_real = RandomVideos(4, seed=1)
    all_real.labels[:] = 0
    with pytest.raises(FakelensError, match=r"holds 4 videos, all real \(4 real, 0 fake\)") as e:
        fit(tiny_cfg(monitor=monitor), tmp_path / "run", train_dataset=RandomVideos(8), val_dataset=all_real)
    assert "both classes" in str(e.value)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_one_class_carve_message_says_what_to_change():
    from fakelens.train.engine import one_class_validation
    from fakelens.train.config import load_train_config

    carved = load_train_config(None, ["data.val_split=", "data.val_fraction=0.1"])
    text = one_class_validation(carved, 3, 3)
    assert "all fake (0 real, 3 fake)" in text and "data.val_fraction (now 0.1)" in text
    assert "stratified by label" in text
    # The missing class in one group only: no val_fraction helps, so none is suggested (before: "raise
    # data.val_fraction", which cannot move a group that holds every real video).
    one = one_class_validation(carved, 3, 3, missing_groups=1)
    assert "raise data.val_fraction" not in one and "no data.val_fraction can carve a real video" in one
    assert "Add real videos of other originals" in one and "data.val_split" in one
    split = one_class_validation(load_train_config(None, []), 2, 0)
    assert "split 'val' of the cache" in split and "data.val_split=''" in split


def test_a_metric_undefined_on_one_validation_is_logged_not_fatal(tmp_path, capfd):
    """limit_val_batches=0.5 scores only the first (all-fake) batch: val AUC is undefined at every
    validation. Before: a FakelensError after the first epoch, and the run lost. Now NaN is logged,
    a note says why, early stopping ignores that validation and the checkpoint is kept."""
    from fakelens.train.engine import fit

    cfg = tiny_cfg(epochs=2, monitor="val_auc", patience=1, limit_val_batches=0.5)
    res = fit(cfg, tmp_path / "run", train_dataset=RandomVideos(16), val_dataset=OrderedVideos(8, seed=1))
    assert res.metrics["epochs"] == 2 and res.best_checkpoint is not None and res.best_checkpoint.is_file()
    assert res.metrics["best_score"] is None  # no finite val_auc at any validation
    err = capfd.readouterr().err
    assert "val_auc undefined" in err and "hold only fake ones" in err and "the run goes on" in err
    with open(tmp_path / "run" / "logs" / "csv" / "version_0" / "metrics.csv") as f:
        rows = [r for r in csv.DictReader(f) if r.get("val_auc")]
    assert rows and all(math.isnan(float(r["val_auc"])) for r in rows)
    assert all(math.isfinite(float(r["val_logloss"])) for r in rows)


def test_a_progress_bar_only_where_a_terminal_is_attached(tmp_path, capfd, monkeypatch):
    """Before: the demo recipe turned the bar off (two silent minutes in `make demo`), and a bar on
    would be drawn into logs and pipes too. Now the recipes ask for one and it is drawn only where
    a terminal is attached; the epoch lines come in either case."""
    from pathlib import Path

    import fakelens.train.progress as progress
    from fakelens.train.config import load_train_config
    from fakelens.train.engine import fit

    recipes = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))
    assert recipes and all(load_train_config(r).train.progress_bar for r in recipes)
    for attached in (False, True):
        monkeypatch.setattr(progress, "terminal_attached", lambda attached=attached: attached)
        fit(tiny_cfg(epochs=1, progress_bar="true"), tmp_path / str(attached), train_dataset=RandomVideos(8),
            val_dataset=RandomVideos(4, seed=1))
        out, err = capfd.readouterr()
        assert ("it/s]" in out + err or "s/it]" in out + err) is attached, (attached, out, err)
        assert ("train_loss_step=" in out + err and "epoch 1/1: 100%" in out + err) is attached
        assert [line.split()[1] for line in err.splitlines() if line.startswith("epoch ")] == ["1/1"]


def test_an_audio_window_longer_than_every_video_is_said(layout_cache):
    """Before: a data.audio_seconds longer than every video's audio padded every window, silently."""
    from fakelens.train.config import load_train_config
    from fakelens.train.data import build_datasets, match_inputs

    _, cache = layout_cache("avdeepfake1m")  # 1 s videos
    base = ["model.name=audio_tiny", "data.dataset=audio", f"data.cache={cache}"]
    cfg = load_train_config(None, [*base, "data.audio_seconds=3.0"])
    _, notes = match_inputs(cfg, build_datasets(cfg)[0])
    said = [n for n in notes if "the audio window is" in n]
    assert len(said) == 1 and "every training video has less audio" in said[0] and "padded (masked)" in said[0]
    cfg = load_train_config(None, [*base, "data.audio_seconds=0.5"])
    assert not any("the audio window is" in n for n in match_inputs(cfg, build_datasets(cfg)[0])[1])


def test_audio_windows_with_no_real_audio_left_are_refused_with_the_numbers(layout_cache):
    """Every training video's audio cut to no mel frame: each window would be padding only; refused
    (before: trained on padding). The padding of a run is recorded (metrics.json "padding")."""
    import pytest

    from fakelens.errors import ConfigError
    from fakelens.train.config import load_train_config
    from fakelens.train.data import audio_padding, build_datasets, match_inputs

    _, cache = layout_cache("avdeepfake1m")
    cfg = load_train_config(None, ["model.name=audio_tiny", "data.dataset=audio", f"data.cache={cache}",
                                   "data.audio_seconds=3.0"])
    train = build_datasets(cfg)[0]
    pad = audio_padding(train, train.width, 0.01)
    assert (pad["window_mel_frames"], pad["videos_short"], pad["videos_with_audio"]) == (300, len(train.rows),
                                                                                         len(train.rows))
    assert 0.6 < pad["padded_share"] < 0.7  # 1 s of audio in 3 s windows
    for row in train.rows:
        row["counts"] = {**row["counts"], "mel_frames": 0}
    with pytest.raises(ConfigError, match=rf"300 mel frames \(3.00 s\) but none of the {len(train.rows)} training "
                                          "videos .* has a mel frame of audio"):
        match_inputs(cfg, train)


def test_left_out_videos_are_named_by_the_split_read_not_a_question_mark(tmp_path):
    """A cache without splits (real/ + fake/ folders) reported its left-out videos under split '?'."""
    import json
    from types import SimpleNamespace

    from fakelens.train.config import DataConfig, TrainConfig
    from fakelens.train.engine import ALL_VIDEOS, left_out_videos, start_lines

    def cache(splits):
        root = tmp_path / "-".join(map(str, splits))
        root.mkdir()
        rows = [{"id": f"{s}/{i}.mp4", "split": s, "npz": f"{i}.npz", "status": "ok"} for i, s in enumerate(splits)]
        (root / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(root)

    silent = {"no audio track (the model needs audio)": ["real/3.mp4"]}
    train = SimpleNamespace(left_out=silent, rows=[{"id": "real/1.mp4", "split": None}])
    val = SimpleNamespace(left_out=silent, rows=[{"id": "fake/2.mp4", "split": None}])
    cfg = TrainConfig(data=DataConfig(cache=cache([None, None])))
    left = left_out_videos(cfg, train, val)
    assert left == {ALL_VIDEOS: silent}
    trainer = SimpleNamespace(strategy=SimpleNamespace(root_device="cpu"), world_size=1, precision="32-true")
    lines = start_lines(cfg, 1000, [0, 1], [0, 1], left, trainer, tmp_path / "run", True, False)
    assert any(line.startswith("left out of every video of the cache: 1 video (1 no audio track") for line in lines)
    # a cache with splits: each dataset under the split it read; data.train_split='' under the splits it spans (sorted)
    cfg = TrainConfig(data=DataConfig(cache=cache(["train", "val", "test"])))
    assert set(left_out_videos(cfg, train, SimpleNamespace(left_out={"unlabelled": ["val/1.mp4"]}))) == {"train", "val"}
    cfg = TrainConfig(data=DataConfig(cache=cfg.data.cache, train_split=""))
    assert set(left_out_videos(cfg, train, SimpleNamespace(left_out={}))) == {"test+train"}
