"""Validation scores videos as `fakelens predict` does: the val_logloss / val_auc a training run
logs equal the metrics of Predictor on the same videos with the same checkpoint, for every
input kind (clips, audio-visual, audio windows), both levels and several aggregations; and the
per-video aggregation drops the distributed sampler's repeated items."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fakelens.train.config import load_train_config

pytestmark = pytest.mark.slow

FRAMES = 8  # cached frames per video; clips of 3 -> 3 clips per video, the last one padded


@pytest.fixture(scope="module")
def cache(tiny_synth, tmp_path_factory) -> Path:
    from fakelens.data.cache import CacheConfig, preprocess
    from fakelens.data.formats import load_dataset

    out = tmp_path_factory.mktemp("valcache") / "c"
    preprocess(load_dataset(tiny_synth).records, out, CacheConfig(n_frames=FRAMES, size=32, detector="full_frame"),
               progress=False)
    return out


RECIPES = {
    "clips-max": ["data.dataset=clips", "model.name=frame_tiny", "predict.level=clips", "predict.aggregate=max"],
    "clips-frames-mean": ["data.dataset=clips", "model.name=frame_tiny", "predict.level=frames",
                          "predict.aggregate=mean"],
    # trains a 2D CNN on single frames (one-frame clips), validates and predicts on clips
    # (batches of 2: batch norm needs more than one value per channel, and a batch of one frame has one)
    "frames-frames-max": ["data.dataset=frames", "model.name=frame_tiny", "predict.level=frames",
                          "predict.aggregate=max", "train.batch_size=2"],
    "av-mean": ["data.dataset=av", "model.name=av_tiny", "task.name=av", "task.frame_weight=1.0",
                "model.audio_frames=40", "predict.level=clips", "predict.aggregate=mean"],
    "audio-max": ["data.dataset=audio", "model.name=audio_tiny", "data.audio_seconds=0.4", "model.audio_frames=40",
                  "predict.level=clips", "predict.aggregate=max"],
}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_logged_validation_metrics_are_the_predict_metrics(cache, tiny_synth, tmp_path, recipe):
    from fakelens.data.formats import load_dataset
    from fakelens.inference.pipeline import Predictor, load_run
    from fakelens.metrics import auc, log_loss
    from fakelens.train.engine import fit

    # 12 steps at a high lr: enough for the clips of one video to score apart (an untrained tiny
    # model gives every clip the same score, and any tiling would pass).
    overrides = [f"data.cache={cache}", "data.clip_frames=3", "model.pooling=mean", "train.epochs=3",
                 "train.batch_size=1", "train.num_workers=0", "train.progress_bar=false", "train.accelerator=cpu",
                 "train.devices=1", "train.log_every_n_steps=1", "train.monitor=val_logloss", "optim.lr=1e-2"]
    if not recipe.startswith("audio"):
        overrides += ["model.image_size=32", "model.num_frames=3"]
    cfg = load_train_config(None, overrides + RECIPES[recipe])
    res = fit(cfg, tmp_path / "run")
    logged = json.loads((tmp_path / "run" / "metrics.json").read_text())["last_epoch_metrics"]

    # The last epoch's logged metrics and last.ckpt hold the same weights.
    records = [r for r in load_dataset(tiny_synth).records if r.split == "val"]
    result = Predictor(load_run(res.last_checkpoint)).predict(records)
    assert not result.failures
    y = np.array([r.label.as_int for r in records])
    s = np.array([p.score for p in result.predictions])
    assert 0 < y.sum() < len(y)
    assert logged["val_videos"] == len(records)
    assert logged["val_logloss"] == pytest.approx(log_loss(y, s), abs=1e-4)
    assert logged["val_auc"] == pytest.approx(auc(y, s), abs=1e-4)
    assert all(p.extras["clips"] >= 3 for p in result.predictions)  # the video score aggregates clips


def test_video_scores_deduplicates_and_aggregates_per_video():
    from fakelens.train.module import video_scores

    # Rows as two ranks return them: video 1 clip 0 is repeated (the sampler's padding), order mixed.
    video = np.array([1, 0, 1, 0, 1, 1])
    clip = np.array([0, 1, 1, 0, 2, 0])
    score = np.array([0.2, 0.9, 0.4, 0.1, 0.6, 0.99])  # the repeat carries another number: it must be ignored
    label = np.array([1.0, 0.0, 1.0, 0.0, 1.0, 1.0])
    s, y = video_scores(video, clip, score, label, "max", "clips")
    assert s.tolist() == [0.9, 0.6] and y.tolist() == [0.0, 1.0]
    s, _ = video_scores(video, clip, score, label, "mean", "clips")
    assert s == pytest.approx([0.5, 0.4])
    frames = np.array([[0.1, 0.2], [0.3, 0.9], [0.5, 0.5], [0.7, 0.8], [0.4, 0.0], [0.5, 0.5]])  # (N, T)
    masks = np.array([[1, 1], [1, 0], [1, 1], [1, 1], [1, 0], [1, 1]], np.float32)  # padding in the last clips
    s, _ = video_scores(video, clip, score, label, "max", "frames", frames, masks)
    assert s.tolist() == [0.8, 0.5]  # video 0: 0.7, 0.8, 0.3 (0.9 is padding); video 1: 0.1, 0.2, 0.5, 0.5, 0.4
    from fakelens.errors import ConfigError

    with pytest.raises(ConfigError, match="level 'clips'"):
        video_scores(video, clip, score, label, "max", "frames")


def test_frames_level_without_frame_scores_is_refused_before_training(cache, tmp_path):
    from fakelens.errors import ConfigError
    from fakelens.train.engine import fit

    cfg = load_train_config(None, [f"data.cache={cache}", "data.dataset=audio", "model.name=audio_tiny",
                                   "predict.level=frames", "train.epochs=1", "train.num_workers=0",
                                   "train.progress_bar=false", "train.accelerator=cpu", "train.devices=1"])
    with pytest.raises(ConfigError, match="predict.level=clips"):
        fit(cfg, tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_predict_features_equal_the_cached_features(cache, tiny_synth):
    """Validation reads the cache, predict recomputes features from the file: they must agree
    exactly (faces, times, and log-mels rounded as the cache stores them)."""
    from fakelens.data.cache import compute_features, load_config, load_npz, read_index

    row = next(r for r in read_index(cache) if r["split"] == "val" and r["has_audio"])
    z = load_npz(cache, row)
    feats = compute_features(row["path"], load_config(cache))
    np.testing.assert_array_equal(feats.clip.faces, z["faces"])
    np.testing.assert_array_equal(feats.clip.times, z["times"])
    np.testing.assert_array_equal(feats.mel_times, z["mel_times"])
    assert feats.mel.dtype == np.float32
    np.testing.assert_array_equal(feats.mel, z["mel"].astype(np.float32))


def test_limit_val_videos_keeps_whole_videos_of_both_classes():
    """train.limit_val_videos=N validates on N whole videos, fakes and reals in turn (the smoke run's
    2: a fake and a real one), where a count of batches could end inside the first video; clips of
    a kept video are all kept, in order; 0 or N >= the videos keeps the dataset as it is."""
    import numpy as np

    from fakelens.train.data import LabeledSubset, limit_videos

    class Listed:
        labels = np.array([0, 0, 0, 1, 1, 0, 1], np.float32)  # (V,)

        def __len__(self):
            return 7

        def __getitem__(self, i):
            return {"label": float(self.labels[i]), "i": i}

    ds = Listed()
    two = limit_videos(ds, 2)
    assert sorted(two.labels.tolist()) == [0, 1] and [two[k]["i"] for k in range(len(two))] == [0, 3]
    assert limit_videos(ds, 4).indices == [0, 1, 3, 4] and limit_videos(ds, 0) is ds and limit_videos(ds, 7) is ds
    sub = LabeledSubset(ds, [1, 2, 4, 6])  # a carved validation set: indices into its base
    assert limit_videos(sub, 2).indices == [1, 4]


def test_limit_val_videos_keeps_every_clip_of_the_videos_it_keeps(cache):
    """On validation's AllClips (every clip of every video, as predict cuts them): the videos kept
    are whole, both classes, each with all its clips."""
    from fakelens.data.dataset import AllClips, ClipDataset
    from fakelens.train.data import limit_videos

    clips = AllClips(ClipDataset(cache, "train", labeled_only=True, random=False, clip_frames=3))
    two = limit_videos(clips, 2)
    assert isinstance(two, AllClips) and sorted(two.labels.tolist()) == [0, 1]
    per_video = {v: clips.base.n_tiles(v) for v in two.videos}
    assert len(two) == sum(per_video.values()) and {two[k]["video_index"] for k in range(len(two))} == {0, 1}


def test_a_validation_split_left_unread_by_the_carve_is_named(layout_cache, tmp_path):
    """DFDC metadata may say "split": "val"; the DFDC recipes carve validation out of train
    (data.val_split=''), so those videos were silently never read. They are named in left_out.json
    with the setting that would use them; validating on them leaves nothing unsaid."""
    from fakelens.data.cache import read_index
    from fakelens.data.dataset import ClipDataset
    from fakelens.train.data import build_datasets
    from fakelens.train.engine import left_out_videos

    _, cache = layout_cache("dfdc")
    val_ids = sorted(r["id"] for r in read_index(cache) if r.get("split") == "val")
    assert len(val_ids) == 2
    base = [f"data.cache={cache}", "data.dataset=clips", "data.clip_frames=4", "model.num_frames=4",
            "model.image_size=32", "model.name=frame_tiny"]
    cfg = load_train_config(None, [*base, "data.val_split="])
    train, val = build_datasets(cfg)
    left = left_out_videos(cfg, train, val)
    [(why, ids)] = left["val"].items()
    assert sorted(ids) == val_ids and "data.val_split=val" in why and "carves validation out of split 'train'" in why
    cfg = load_train_config(None, [*base, "data.val_split=val"])
    train, val = build_datasets(cfg)
    assert "val" not in left_out_videos(cfg, train, val)
    assert isinstance(val.base, ClipDataset) and sorted(r.id for r in val.base.records) == val_ids
