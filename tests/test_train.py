"""Training engine on random tensors: run folder, checkpoints, resume, budget refusal, NaN guard,
precision, optimizers and schedules, augmentations, class balance, and every recipe in configs/."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import Dataset

from fakelens.config import from_dict, to_dict
from fakelens.errors import BudgetError, ConfigError, FakelensError
from fakelens.train.augment import AUDIO_AUGMENTS, VIDEO_AUGMENTS, AugmentConfig, BatchMix, SampleAugment
from fakelens.train.config import TrainConfig, load_train_config

CONFIGS = sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml"))


class RandomVideos(Dataset):
    """Tiny random face clips; fakes carry a bright square so a small CNN can learn them."""

    def __init__(self, n: int = 16, t: int = 4, size: int = 32, seed: int = 0, nan_at: int | None = None):
        g = torch.Generator().manual_seed(seed)
        self.labels = np.array([i % 2 for i in range(n)], np.float32)
        self.videos = torch.rand(n, t, 3, size, size, generator=g) * 0.5  # (N, T, 3, S, S)
        self.videos[self.labels == 1, :, :, 8:20, 8:20] = 1.0
        if nan_at is not None:
            self.videos[nan_at] = float("nan")

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> dict:
        return {"video": self.videos[i], "label": torch.tensor(self.labels[i]), "id": f"v{i}",
                "frame_labels": torch.full((self.videos.shape[1],), float(self.labels[i]))}


def tiny_cfg(**train) -> TrainConfig:
    overrides = ["model.name=frame_tiny", "model.image_size=32", "model.num_frames=4", "model.pooling=mean",
                 "train.epochs=2", "train.batch_size=4", "train.num_workers=0", "train.progress_bar=false",
                 "train.accelerator=cpu", "train.devices=1", "train.log_every_n_steps=1", "optim.lr=3e-3"]
    overrides += [f"train.{k}={v}" for k, v in train.items()]
    return load_train_config(None, overrides)


def test_fit_writes_the_run_folder_and_resumes(tmp_path):
    from fakelens.train.engine import fit

    run = tmp_path / "run"
    res = fit(tiny_cfg(), run, train_dataset=RandomVideos(16), val_dataset=RandomVideos(8, seed=1))
    assert (run / "config.yaml").is_file()
    assert (run / "checkpoints" / "best.ckpt").is_file() and (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / "logs" / "csv" / "version_0" / "metrics.csv").is_file()
    assert list((run / "logs" / "tensorboard" / "version_0").glob("events.out.tfevents.*"))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["monitor"] == "val_auc" and 0 <= metrics["best_score"] <= 1
    assert metrics["prior"] == 0.5 and metrics["global_step"] == 8 and metrics["best_checkpoint"] == "checkpoints/best.ckpt"
    assert res.best_checkpoint == run / "checkpoints" / "best.ckpt"
    # The saved config reloads to the same resolved config (model fields filled in).
    saved = load_train_config(run / "config.yaml")
    assert saved.model.backbone == "tinycnn" and saved.train.epochs == 2
    # The checkpoint alone rebuilds the model: config, prior and weights inside.
    ckpt = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    assert ckpt["hyper_parameters"]["prior"] == 0.5
    assert ckpt["hyper_parameters"]["config"]["model"]["name"] == "frame_tiny"
    # last.ckpt is the latest epoch even when best.ckpt is an earlier one.
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["global_step"] == metrics["global_step"]
    # A second fit into the same folder is refused; --resume continues from last.ckpt.
    with pytest.raises(FakelensError, match="--resume"):
        fit(tiny_cfg(), run, train_dataset=RandomVideos(16), val_dataset=RandomVideos(8, seed=1))
    res2 = fit(tiny_cfg(epochs=3), run, resume=True, train_dataset=RandomVideos(16), val_dataset=RandomVideos(8, seed=1))
    assert res2.metrics["global_step"] == 12 and res2.metrics["resumed"]
    assert (run / "logs" / "csv" / "version_1" / "metrics.csv").is_file()  # the first logs are kept
    with pytest.raises(FakelensError, match="no last checkpoint"):
        fit(tiny_cfg(), tmp_path / "other", resume=True, train_dataset=RandomVideos(16), val_dataset=RandomVideos(8))


def test_budget_refuses_large_models_before_training(tmp_path):
    from fakelens.train.engine import fit

    with pytest.raises(BudgetError, match="budget"):
        fit(tiny_cfg(max_params=1000), tmp_path / "run", train_dataset=RandomVideos(8), val_dataset=RandomVideos(4))
    assert not (tmp_path / "run").exists()


def test_nonfinite_loss_skips_or_stops(tmp_path):
    from fakelens.train.engine import fit
    from fakelens.train.module import NonFiniteLossError

    cfg = tiny_cfg(epochs=1, nonfinite="stop", monitor="val_logloss")
    with pytest.raises(NonFiniteLossError, match="non-finite training loss"):
        fit(cfg, tmp_path / "stop", train_dataset=RandomVideos(8, nan_at=3), val_dataset=RandomVideos(4, seed=1))
    cfg = tiny_cfg(epochs=1, nonfinite="skip", monitor="val_logloss")
    res = fit(cfg, tmp_path / "skip", train_dataset=RandomVideos(8, nan_at=3), val_dataset=RandomVideos(4, seed=1))
    # The step with the NaN video was skipped: weights, normalisation statistics and scores stay finite.
    assert res.metrics["last_epoch_metrics"]["train_skipped"] == 1.0
    assert np.isfinite(res.metrics["best_score"])
    state = torch.load(res.best_checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())


def test_bf16_mixed_on_cpu_and_balanced_sampler(tmp_path):
    from fakelens.train.engine import fit

    cfg = tiny_cfg(epochs=1, precision="bf16-mixed")
    cfg.data.balance = "sampler"
    res = fit(cfg, tmp_path / "run", train_dataset=RandomVideos(8), val_dataset=RandomVideos(4, seed=1))
    assert res.metrics["pos_weight"] is None and np.isfinite(res.metrics["best_score"])


def test_balanced_sampler_draws_both_classes_equally():
    from fakelens.train.engine import make_loaders

    cfg = tiny_cfg()
    cfg.data.balance = "sampler"
    labels = [1] * 50 + [0] * 10  # DFDC-like 5:1
    ds = torch.utils.data.TensorDataset(torch.tensor(labels))
    train, _ = make_loaders(cfg, ds, ds, labels)
    drawn = torch.cat([b[0] for b in train]).float()
    assert 0.35 < drawn.mean().item() < 0.65


@pytest.mark.parametrize("opt", ["adamw", "adam", "sgd"])
@pytest.mark.parametrize("sched", ["onecycle", "cosine", "step", "constant"])
def test_every_optimizer_and_schedule(opt, sched):
    from fakelens.train.module import OPTIMIZERS, SCHEDULERS, build_optimization

    assert opt in OPTIMIZERS and sched in SCHEDULERS
    cfg = tiny_cfg()
    cfg.optim.name, cfg.optim.scheduler, cfg.optim.step_epochs = opt, sched, 1
    w = torch.nn.Parameter(torch.ones(3))
    out = build_optimization([w], cfg.optim, total_steps=10, epochs=2)
    optimizer = out if isinstance(out, torch.optim.Optimizer) else out["optimizer"]
    lrs = []
    for _ in range(5):
        optimizer.zero_grad()
        (w ** 2).sum().backward()
        optimizer.step()
        if not isinstance(out, torch.optim.Optimizer):
            out["lr_scheduler"]["scheduler"].step()
        lrs.append(optimizer.param_groups[0]["lr"])
    assert w.detach().abs().sum() < 3  # it optimizes
    if sched == "constant":
        assert len(set(lrs)) == 1
    else:
        assert len(set(lrs)) > 1


def test_config_unknown_keys_and_bad_values():
    with pytest.raises(ConfigError, match="did you mean 'train.epochs'"):
        load_train_config(None, ["train.epoch=3"])
    with pytest.raises(ConfigError, match="precision"):
        load_train_config(None, ["train.precision=fp8"])
    with pytest.raises(KeyError, match="hflip"):
        load_train_config(None, ["augment.video=[hflp]"])


def test_lightning_precision_aliases_are_read_as_lightning_reads_them():
    """--set train.precision=16 (or bf16, Lightning's own spellings) was refused as "'16' is not one
    of ['32', 'bf16-mixed', '16-mixed']"; YAML's `precision: 16` (a number) too."""
    for given, meant in (("16", "16-mixed"), ("bf16", "bf16-mixed"), ("32-true", "32"), ("32", "32"),
                         ("16-mixed", "16-mixed")):
        assert load_train_config(None, [f"train.precision={given}"]).train.precision == meant
    assert from_dict(TrainConfig, {"train": {"precision": 16}}).train.precision == "16-mixed"


def test_a_bad_value_is_blamed_on_the_set_that_gave_it(tmp_path):
    """A wrong --set value was reported as the recipe's ("configs/demo.yaml: train.epochs ..."),
    sending the user to a file that is fine; a wrong value in the file still names the file."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("train:\n  epochs: 3\n")
    for override, said in (("train.epochs=0", "train.epochs and train.batch_size must be >= 1"),
                           ("train.precision=fp8", "train.precision: 'fp8' is not one of"),
                           ("train.epochz=2", "unknown config key 'train.epochz'")):
        with pytest.raises(ConfigError) as e:
            load_train_config(recipe, ["train.lr=1", override] if "lr" in override else [override])
        assert str(e.value).startswith(f"--set {override}: {said}"), str(e.value)
    recipe.write_text("train:\n  epochs: 0\n")
    with pytest.raises(ConfigError) as e:
        load_train_config(recipe, ["train.batch_size=4"])
    assert str(e.value) == f"{recipe}: train.epochs and train.batch_size must be >= 1"
    # a check across keys names the --set it met (before: 'r.yaml: data.crop roi ...', a file that is fine alone)
    recipe.write_text("data:\n  sampling: windows\n  crop: roi\n")
    with pytest.raises(ConfigError) as e:
        load_train_config(recipe, ["data.sampling=fps"])
    assert str(e.value).startswith(f"{recipe} with --set data.sampling=fps: data.crop roi cuts one region"), str(e.value)


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_every_recipe_loads_and_builds_its_model(path):
    from fakelens.models import create_model, example_inputs

    cfg = load_train_config(path)
    if cfg.data.dataset == "features":  # widths of the dense features: train fills them from the features folder
        cfg = load_train_config(path, ["model.feature_dim=192", "model.audio_feature_dim=80"])
    with torch.device("meta"):  # pretrained=False: tests never download weights
        model = create_model(cfg.model, pretrained=False, audio_pretrained=None)
    assert set(model.input_names) <= ({"visual_features", "audio_features"} if cfg.data.dataset == "features"
                                      else {"video", "audio"})
    assert example_inputs(model)
    assert to_dict(cfg)["model"]["name"] == cfg.model.name
    # The recipe's task matches what the model returns.
    if cfg.task.name == "av":
        assert cfg.model.name.startswith("av")


def _video(t=4, size=24) -> torch.Tensor:
    frame = torch.rand(1, 3, size, size)
    return frame.repeat(t, 1, 1, 1)  # (T, 3, S, S): identical frames


@pytest.mark.parametrize("name", VIDEO_AUGMENTS.names())
def test_every_video_augmentation_keeps_shape_range_and_frame_consistency(name):
    torch.manual_seed(0)
    aug = SampleAugment(AugmentConfig(video=[name], p=1.0))
    video = _video()
    out = aug({"video": video, "label": torch.tensor(1.0)})
    v = out["video"]
    assert v.shape == video.shape and v.dtype == torch.float32
    assert 0 <= v.min() and v.max() <= 1
    assert out["label"] == 1.0
    if name != "noise":  # noise is random per pixel by nature; every other op is the same on all frames
        assert torch.allclose(v, v[:1].expand_as(v), atol=1e-6), f"{name} differs across the frames of one video"
    if name not in ("hflip",):
        assert not torch.equal(v, video)


@pytest.mark.parametrize("name", AUDIO_AUGMENTS.names())
def test_every_audio_augmentation(name):
    torch.manual_seed(0)
    mel = torch.randn(1, 16, 50) - 4.0  # (1, n_mels, F)
    out = SampleAugment(AugmentConfig(audio=[name], p=1.0, spec_time_mask=0.3, spec_freq_mask=0.3))({"audio": mel})
    assert out["audio"].shape == mel.shape and torch.isfinite(out["audio"]).all()
    assert not torch.equal(out["audio"], mel)


@pytest.mark.parametrize("mode", ["mixup", "cutmix"])
def test_batch_mix_gives_soft_labels(mode):
    torch.manual_seed(0)
    batch = {"video": torch.rand(4, 3, 3, 16, 16), "label": torch.tensor([1.0, 0.0, 1.0, 0.0]),
             "frame_labels": torch.tensor([[1.0, 1, 1], [0, 0, 0], [1, 1, 1], [0, 0, 0]]), "id": ["a", "b", "c", "d"]}
    out = BatchMix(mode, alpha=1.0)(batch)
    assert out["video"].shape == batch["video"].shape and type(out["video"]) is torch.Tensor
    assert out["label"].shape == (4,) and out["frame_labels"].shape == (4, 3)
    assert ((0 <= out["label"]) & (out["label"] <= 1)).all()
    assert not torch.equal(out["label"], batch["label"])  # neighbours of opposite class got mixed
    assert torch.allclose(out["frame_labels"][:, 0], out["label"])
    assert out["id"] == batch["id"]


def test_more_workers_than_cpus_and_16_mixed_on_a_cpu_are_one_note_line_each(tmp_path, capfd):
    """A recipe's num_workers over the CPUs printed torch's DataLoader UserWarning twice (with its
    source lines), and 16-mixed on a CPU a Python warning with file:line; now each is one `note:`
    line of the run's log, the workers are capped, and config.yaml keeps the recipe's value."""
    import warnings

    from fakelens.train.engine import fit
    from fakelens.train.smoke import cpu_count

    cpus = cpu_count()
    run = tmp_path / "run"
    capfd.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = fit(tiny_cfg(epochs=1, num_workers=cpus + 1, precision="16-mixed"), run,
                  train_dataset=RandomVideos(8), val_dataset=RandomVideos(4, seed=1))
    err = capfd.readouterr().err
    said = f"note: train.num_workers {cpus + 1} > {cpus} CPU{'s' if cpus > 1 else ''}: using {cpus} data loader workers"
    assert said in err and said in res.metrics["notes"] and said in (run / "train.log").read_text()
    assert "note: train.precision 16-mixed needs a GPU: using bf16-mixed on the CPU" in err
    assert "worker processes in total" not in err and "UserWarning" not in err
    assert not [w for w in caught if "worker" in str(w.message) or "16-mixed" in str(w.message)]
    assert load_train_config(run / "config.yaml").train.num_workers == cpus + 1


class ThreadProbe(RandomVideos):
    """RandomVideos that records torch's intra-op thread count whenever an item is read (num_workers
    0: in the training process, inside trainer.fit)."""

    def __init__(self, n: int, seed: int = 0):
        super().__init__(n, seed=seed)
        self.seen: set[int] = set()

    def __getitem__(self, i: int) -> dict:
        self.seen.add(torch.get_num_threads())
        return super().__getitem__(i)


def test_train_cpu_threads_is_the_thread_count_of_training_and_is_restored_after(tmp_path, capfd):
    """train.cpu_threads: the demo localizer's epochs took 18-142 s with torch's default 2 threads on
    2 busy cores against 4-15 s with 1; the recipe's value is what training runs with (0 = torch's
    default, left alone), the start line says it, and the caller's thread count comes back after."""
    from fakelens.train.engine import fit

    before = torch.get_num_threads()
    want = 2 if before != 2 else 1
    train, val = ThreadProbe(8), ThreadProbe(4, seed=1)
    fit(tiny_cfg(epochs=1, cpu_threads=want), tmp_path / "run", train_dataset=train, val_dataset=val)
    assert train.seen == {want} and val.seen == {want}
    assert torch.get_num_threads() == before
    assert f"on cpu ({want} torch thread{'s' if want != 1 else ''})" in capfd.readouterr().err.splitlines()[0]
    default = ThreadProbe(8)
    fit(tiny_cfg(epochs=1), tmp_path / "default", train_dataset=default, val_dataset=ThreadProbe(4, seed=1))
    assert default.seen == {before}
    with pytest.raises(ConfigError, match="cpu_threads must be >= 0"):
        load_train_config(None, ["train.cpu_threads=-1"])
