"""`fit`: one training run with PyTorch Lightning, writing a run folder.

run_dir/
  config.yaml        the resolved TrainConfig (re-loadable with load_train_config)
  cache_config.json  the preprocessing parameters of the training cache (predict uses the same)
  checkpoints/       best.ckpt (best by train.monitor: val_auc / val_logloss over the video scores, or
                     val_ap over the proposals, that predict would give, see fakelens.train.module),
                     last.ckpt (for --resume); a localizer's checkpoints also hold the encoder weights
                     of its features folder
  logs/              csv/version_N/metrics.csv and tensorboard/version_N/ events (N = launch)
  metrics.json       best score, epochs, steps, wall time, training-set prior, sizes

Multi-GPU / multi-node: set train.strategy=ddp, train.devices, train.num_nodes; Lightning launches
the processes itself, or picks up the environment of `torchrun`.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from fakelens.atomic import atomic_write_text
from fakelens.config import save_config, to_dict
from fakelens.errors import ConfigError, FakelensError
from fakelens.train.config import CONFIG_NAME, TrainConfig
from fakelens.words import counted

CACHE_CONFIG_NAME = "cache_config.json"  # preprocessing parameters, reused by `fakelens predict`
METRICS_NAME = "metrics.json"
LEFT_OUT_NAME = "left_out.json"  # videos of the training/validation splits the dataset could not use, by reason
BEST_NAME = "best"
LAST_NAME = "last"


@dataclass
class FitResult:
    """What `fit` returns (also written to metrics.json)."""

    run_dir: Path
    best_checkpoint: Path | None
    last_checkpoint: Path | None
    metrics: dict[str, Any]


def dataset_labels(dataset: Any) -> list[int]:
    """0/1 video labels of a dataset: its `labels` attribute when it has one (cheap), else each item's."""
    labels = getattr(dataset, "labels", None)
    if labels is None:
        labels = [dataset[i]["label"] for i in range(len(dataset))]
    return [int(round(float(v))) for v in labels]


def audio_width(dataset: Any) -> int | None:
    """Mel frames per audio input of a cache dataset (inference cuts windows of the same length)."""
    while hasattr(dataset, "base"):
        dataset = dataset.base
    width = getattr(dataset, "width", None)
    return None if width is None else int(width)


def _is_rank_zero() -> bool:
    from lightning.fabric.utilities.rank_zero import rank_zero_only

    return getattr(rank_zero_only, "rank", 0) == 0


def _devices(value: str) -> Any:
    v = str(value).strip()
    if v == "auto":
        return "auto"
    if "," in v:
        return [int(x) for x in v.split(",") if x.strip()]
    try:
        return int(v)
    except ValueError:
        raise ConfigError(f"train.devices must be 'auto', a count or a comma-separated list, got {value!r}") from None


def _precision(cfg: TrainConfig) -> tuple[str, str | None]:
    """(the precision to train at, a note line or None): fp16 autocast does not exist on CPU, so
    bf16 there, said as one line of the run's log (not a Python warning with its source line)."""
    import torch

    p = cfg.train.precision
    on_cpu = cfg.train.accelerator == "cpu" or (cfg.train.accelerator == "auto" and not torch.cuda.is_available())
    if p == "16-mixed" and on_cpu:
        return "bf16-mixed", "note: train.precision 16-mixed needs a GPU: using bf16-mixed on the CPU"
    return p, None


def loader_workers(cfg: TrainConfig) -> tuple[TrainConfig, str | None]:
    """(cfg with train.num_workers at most the CPUs this process may use, a note line or None): a
    recipe's 8 workers on a 2-CPU laptop only contend for the cores (torch warns twice, once per
    loader); the run's config.yaml keeps the recipe's value, so a bigger machine gets it back."""
    from fakelens.train.smoke import cpu_count

    asked, cpus = cfg.train.num_workers, cpu_count()
    if asked <= cpus:
        return cfg, None
    capped = dataclasses.replace(cfg, train=dataclasses.replace(cfg.train, num_workers=cpus))
    return capped, (f"note: train.num_workers {asked} > {cpus} CPU{'s' if cpus > 1 else ''}: using {cpus} data "
                    "loader workers")


def _loggers(log_dir: Path) -> list[Any]:
    from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

    # One version folder per launch (version_0, version_1 after --resume ...): nothing is overwritten.
    loggers: list[Any] = [CSVLogger(str(log_dir), name="csv")]
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        try:
            import tensorboardX  # noqa: F401
        except ImportError:
            warnings.warn("TensorBoard logging is off (install tensorboard); CSV logs are still written",
                          stacklevel=2)
            return loggers
    loggers.append(TensorBoardLogger(str(log_dir), name="tensorboard", default_hp_metric=False))
    return loggers


def rank_seed(seed: int, rank: int, epoch: int) -> int:
    """The seed of one rank's main process for one epoch (distinct per rank and per epoch)."""
    import numpy as np

    return int(np.random.SeedSequence([seed, rank, epoch]).generate_state(1)[0])


def _rank_seeder(base_seed: int) -> Any:
    """A callback reseeding each rank's main process at every training epoch under DDP.

    seed_everything gives every rank the same seed: with num_workers=0 the items are drawn in the
    main process, so every rank drew the same clip starts and augmentations. DataLoader workers
    are already seeded per rank by Lightning (from the worker id and the global rank)."""
    from lightning.pytorch.callbacks import Callback

    class RankSeeder(Callback):
        def on_train_epoch_start(self, trainer, pl_module) -> None:
            if trainer.world_size > 1:
                import random

                import numpy as np
                import torch

                s = rank_seed(base_seed, trainer.global_rank, trainer.current_epoch)
                torch.manual_seed(s)
                np.random.seed(s % 2**32)
                random.seed(s)

    return RankSeeder()


def _epoch_order_guard() -> Any:
    """A callback making a resumed run draw the order of the epoch it continues with.

    Lightning builds the training loader's iterator before it restores the epoch counters from
    the checkpoint; with loader workers that iterator draws its first indices at once, so the
    EpochSampler drew epoch 0's order. At train start the epoch is known: if the sampler drew
    another, it is set and the (persistent-worker) iterator restarted in place, its stale
    prefetched items dropped, before the first batch is taken."""
    from lightning.pytorch.callbacks import Callback

    from fakelens.train.sampling import EpochSampler

    class EpochOrderGuard(Callback):
        def on_train_start(self, trainer, pl_module) -> None:
            loader = trainer.train_dataloader
            sampler = getattr(loader, "sampler", None)
            epoch = int(trainer.current_epoch)
            if isinstance(sampler, EpochSampler) and sampler.drawn_epoch not in (None, epoch):
                sampler.set_epoch(epoch)
                if getattr(loader, "_iterator", None) is not None:
                    iter(loader)  # persistent workers: the same iterator, reset to the new order

    return EpochOrderGuard()


class _EpochEndStop(KeyboardInterrupt):
    """The Ctrl-C deferred to the end of an epoch (fakelens.train.engine.CtrlC)."""


class CtrlC:
    """Ctrl-C (SIGINT) during training stops the run at the end of the current epoch, where its
    checkpoint continues exactly: a checkpoint taken mid-epoch (or mid-validation) cannot, since
    Lightning restarts the data loader of an interrupted epoch from its first batch (the same
    batches trained twice, a different schedule) and a validation from its middle. A second
    Ctrl-C stops at once; last.ckpt then stays the last finished epoch's. Installed only where
    SIGINT has Python's default handler, in the main thread; the previous handler is restored."""

    def __init__(self, log: Any):
        self.log, self.pressed, self.previous = log, False, None

    def __enter__(self) -> "CtrlC":
        import signal
        import threading

        if threading.current_thread() is threading.main_thread() and \
                signal.getsignal(signal.SIGINT) is signal.default_int_handler:
            self.previous = signal.signal(signal.SIGINT, self._pressed)
        return self

    def _pressed(self, signum: int, frame: Any) -> None:
        import signal

        if self.pressed:  # the second Ctrl-C: now
            raise KeyboardInterrupt
        self.pressed = True
        signal.signal(signal.SIGINT, self._pressed)
        self.log.line("Ctrl-C: stopping at the end of this epoch (its checkpoint is saved then); Ctrl-C again "
                      "to stop now (the epoch's steps are lost: --resume starts it again)")

    def __exit__(self, *exc: Any) -> None:
        import signal

        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
            self.previous = None


def save_on_interrupt(path: Path, log: Any, ctrl_c: CtrlC | None = None) -> Any:
    """A callback that stops the run at the end of the epoch in which Ctrl-C was pressed (`ctrl_c`)
    and saves `path` (last.ckpt) there, so that --resume continues from that epoch's end (the
    same schedule as an uninterrupted run). An immediate interrupt (a second Ctrl-C) leaves
    last.ckpt as the last finished epoch wrote it. A Checkpoint subclass: Lightning runs it with
    the checkpoint callbacks, after them, so the epoch's own checkpoints are written first."""
    from lightning.pytorch.callbacks import Checkpoint

    class SaveOnInterrupt(Checkpoint):
        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if ctrl_c is not None and ctrl_c.pressed and trainer.current_epoch + 1 < (trainer.max_epochs or 0):
                raise _EpochEndStop  # (in the last epoch the run just ends)

        def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
            if isinstance(exception, _EpochEndStop):
                trainer.save_checkpoint(str(path))
                log.line(f"interrupted at the end of epoch {trainer.current_epoch + 1}, step {trainer.global_step}: "
                         f"checkpoint saved to {path}; continue with --resume")
            elif isinstance(exception, KeyboardInterrupt):
                kept = f"{path} is the last finished epoch's" if path.is_file() else "no epoch finished, nothing saved"
                log.line(f"interrupted in epoch {trainer.current_epoch + 1}, step {trainer.global_step}: {kept}; "
                         "continue with --resume")

    return SaveOnInterrupt()


def make_loaders(cfg: TrainConfig, train_ds: Any, val_ds: Any, train_labels: Sequence[int]):
    """Train loader (shuffled, or class-balanced draws) and validation loader. The training order
    and every item's random choices derive from (train.seed, epoch) only (fakelens.train.sampling),
    so a resumed run sees what the uninterrupted one would have."""
    from torch.utils.data import DataLoader

    from fakelens.train.sampling import EpochSampler, SeededItems

    t = cfg.train
    common = dict(batch_size=t.batch_size, num_workers=t.num_workers, persistent_workers=t.num_workers > 0,
                  pin_memory=False)
    weights = None
    if cfg.data.balance == "sampler":
        n_fake = sum(train_labels)
        n_real = len(train_labels) - n_fake
        # Each class gets half of the draws: weight 1/(2 n_class) per video.
        weights = [0.5 / n_fake if y else 0.5 / n_real for y in train_labels]
        per_video = len(train_ds) // max(1, len(weights))
        if len(train_ds) != len(weights) and per_video * len(weights) == len(train_ds):
            weights = [w / per_video for w in weights for _ in range(per_video)]  # items of a video in a row
    sampler = EpochSampler(len(train_ds), t.seed, weights)
    from fakelens.train.data import collate_fn

    train = DataLoader(SeededItems(train_ds), sampler=sampler, drop_last=len(train_ds) > t.batch_size,
                       collate_fn=collate_fn(train_ds), **common)
    val = DataLoader(val_ds, shuffle=False, collate_fn=collate_fn(val_ds), **common)
    return train, val


def fit(cfg: TrainConfig, run_dir: str | Path, resume: bool = False, train_dataset: Any = None,
        val_dataset: Any = None, verbose: bool = False, notes: Sequence[str] = ()) -> FitResult:
    """Train `cfg` into `run_dir`. Datasets come from cfg.data unless given (tests, notebooks).

    Refuses models over train.max_params before building anything heavy, and a one-class
    validation set before the first step. With `resume`, training continues from
    run_dir/checkpoints/last.ckpt (optimizer, scheduler, epoch and callbacks restored).
    Prints one line per epoch (fakelens.train.progress; also RUN/train.log), after `notes` (lines
    the caller wants in the log, e.g. what --smoke changed); third-party noise only if `verbose`.
    """
    import lightning  # noqa: F401  (imported before quieting: it sets its loggers' levels on import)

    from fakelens.train.progress import quiet_third_party

    with quiet_third_party(verbose):
        return _fit(cfg, Path(run_dir), resume, train_dataset, val_dataset, verbose, notes)


def _training_data(cfg: TrainConfig, train_dataset: Any, val_dataset: Any,
                   notes: Sequence[str]) -> tuple[TrainConfig, Any, Any, list[str], bool]:
    """The datasets a run trains and validates on, as `fit` and `dry_run` both build and check
    them: (cfg with the model's input sizes matched to the data, train, val, notes + what was
    adapted, whether the datasets were given). Refuses a cache made for another input, an empty
    split and a split of one class (FakelensError / ConfigError)."""
    given = train_dataset is not None and val_dataset is not None
    notes = list(notes)
    if not given:
        from fakelens.train.data import build_datasets, match_inputs

        train_dataset, val_dataset = build_datasets(cfg)
        cfg, adapted = match_inputs(cfg, train_dataset)  # refuses a cache made for another input
        notes += adapted
    train_labels = dataset_labels(train_dataset)
    val_labels = dataset_labels(val_dataset)
    n_fake, n_val_fake = sum(train_labels), sum(val_labels)
    if len(train_labels) == 0 or len(val_labels) == 0:
        raise FakelensError(f"empty split: {len(train_labels)} training and {len(val_labels)} validation videos")
    if n_fake in (0, len(train_labels)):
        raise FakelensError(f"the training split holds only {'fake' if n_fake else 'real'} videos "
                            f"({len(train_labels) - n_fake} real, {n_fake} fake); training needs both classes")
    if n_val_fake in (0, len(val_labels)):
        raise FakelensError(one_class_validation(cfg, len(val_labels), n_val_fake, given=given,
                                                 missing_groups=_groups_of_class(train_dataset, not n_val_fake)))
    if 0 < cfg.train.limit_val_videos < len(val_labels):
        from fakelens.train.data import limit_videos

        val_dataset = limit_videos(val_dataset, cfg.train.limit_val_videos)
        kept = dataset_labels(val_dataset)
        notes.append(f"validation: {len(kept)} of the {len(val_labels)} validation videos ({sum(kept)} fake), each "
                     f"scored whole (train.limit_val_videos={cfg.train.limit_val_videos})")
    return cfg, train_dataset, val_dataset, notes, given


def _fit(cfg: TrainConfig, run_dir: Path, resume: bool, train_dataset: Any, val_dataset: Any, verbose: bool,
         notes: Sequence[str]) -> FitResult:
    import lightning as L
    from lightning.pytorch.callbacks import EarlyStopping, LearningRateMonitor, ModelCheckpoint

    from fakelens.train.budget import check_budget
    from fakelens.train.checkpoint_io import AtomicCheckpointIO
    from fakelens.train.module import DetectorModule
    from fakelens.train.progress import RunLog, epoch_report, progress_bar, terminal_attached

    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / f"{LAST_NAME}.ckpt"
    if resume and not last.is_file():
        raise FakelensError(f"{last}: no last checkpoint to resume from")
    if not resume and last.is_file():
        raise FakelensError(f"{run_dir}: already holds a trained run; use --resume or another --out")

    if resume:
        from fakelens.atomic import remove_stale_temporaries
        from fakelens.train.data import check_resumed_cache

        check_resumed_cache(run_dir, cfg)  # before anything heavy: a rebuilt cache is refused
        remove_stale_temporaries(ckpt_dir)  # a checkpoint a killed run was writing
    from fakelens.models import resolve_config

    L.seed_everything(cfg.train.seed, workers=True, verbose=False)
    from fakelens.train.data import feature_encoder_state, model_from_data

    cfg = model_from_data(cfg)  # e.g. the feature widths of a localizer
    cfg = dataclasses.replace(cfg, model=resolve_config(cfg.model))  # the run saves concrete values
    n_params = check_budget(cfg.model, cfg.train.max_params)

    cfg, train_dataset, val_dataset, notes, given = _training_data(cfg, train_dataset, val_dataset, notes)
    train_labels = dataset_labels(train_dataset)
    val_labels = dataset_labels(val_dataset)
    n_fake, n_val_fake = sum(train_labels), sum(val_labels)
    prior = n_fake / len(train_labels)  # P(fake) in the training set, the --on-error prior fallback
    from fakelens.tasks import build_task
    from fakelens.train.targets import check_plan, plan_targets

    # What each term of the loss trains on, counted on the training items: class weights from the
    # labels the loss sees, terms without both classes refused (or disabled, see train.targets).
    targets = plan_targets(train_dataset, build_task(cfg.task, time_stride=cfg.model.audio_time_stride),
                           cfg.data.balance)
    check_plan(targets)
    pos_weight = targets.pos_weights.get("video")

    from fakelens.train.data import cache_config_dict

    cache_config = cache_config_dict(cfg)
    module = DetectorModule(to_dict(cfg), prior=prior, pos_weight=pos_weight, cache_config=cache_config,
                            audio_width=audio_width(train_dataset), pos_weights=targets.pos_weights,
                            disabled=targets.disabled,
                            feature_encoder=feature_encoder_state(cfg))
    left_out = left_out_videos(cfg, train_dataset, val_dataset) if not given else {}
    padding = _padding(cfg, train_dataset) if not given else {}
    log = RunLog(run_dir if _is_rank_zero() else None, echo=_is_rank_zero())
    if _is_rank_zero():
        from fakelens.atomic import ensure_writable

        ensure_writable(run_dir)  # a full or unwritable folder fails here, before any training step
        save_config(cfg, run_dir / CONFIG_NAME)
        if cache_config is not None and not (resume and (run_dir / CACHE_CONFIG_NAME).is_file()):
            # a resumed run keeps its own record (checked equal to the cache above), never rewritten
            atomic_write_text(run_dir / CACHE_CONFIG_NAME, json.dumps(cache_config, indent=2) + "\n")
        atomic_write_text(run_dir / LEFT_OUT_NAME, json.dumps(left_out, indent=2) + "\n")

    mode = "max" if cfg.train.monitor in ("val_auc", "val_ap") else "min"
    checkpoint = ModelCheckpoint(dirpath=str(ckpt_dir), filename=BEST_NAME, monitor=cfg.train.monitor, mode=mode,
                                 save_top_k=1, enable_version_counter=False, auto_insert_metric_name=False)
    # Lightning's save_last=True only refreshes last.ckpt when best.ckpt changes; --resume needs the
    # latest epoch, so a monitor-less checkpoint overwrites last.ckpt at every validation.
    latest = ModelCheckpoint(dirpath=str(ckpt_dir), filename=LAST_NAME, monitor=None, save_top_k=1,
                             enable_version_counter=False, auto_insert_metric_name=False)
    callbacks: list[Any] = [LearningRateMonitor(logging_interval="step"), checkpoint, latest,
                            epoch_report(log, checkpoint, cfg.train.epochs),  # the report after the checkpoints
                            _rank_seeder(cfg.train.seed), _epoch_order_guard(),
                            save_on_interrupt(last, log, ctrl_c := CtrlC(log))]
    if cfg.train.patience > 0:
        callbacks.append(_early_stopping(EarlyStopping, monitor=cfg.train.monitor, mode=mode,
                                         patience=cfg.train.patience, check_finite=True))
    t = cfg.train
    precision, precision_note = _precision(cfg)
    loader_cfg, workers_note = loader_workers(cfg)
    notes = [*notes, *(n for n in (precision_note, workers_note) if n)]
    bar = t.progress_bar and terminal_attached()  # a bar only where a terminal is attached
    if bar:
        callbacks.append(progress_bar())
    trainer = L.Trainer(
        default_root_dir=str(run_dir), max_epochs=t.epochs, accelerator=t.accelerator, devices=_devices(t.devices),
        strategy=t.strategy, num_nodes=t.num_nodes, precision=precision,
        gradient_clip_val=t.grad_clip if t.grad_clip > 0 else None, accumulate_grad_batches=t.accumulate_grad_batches,
        callbacks=callbacks, logger=_loggers(run_dir / "logs"), log_every_n_steps=t.log_every_n_steps,
        check_val_every_n_epoch=t.val_every_n_epochs, enable_progress_bar=bar,
        limit_train_batches=_limit(t.limit_train_batches), limit_val_batches=_limit(t.limit_val_batches),
        deterministic=t.deterministic, num_sanity_val_steps=0, enable_model_summary=verbose,
        plugins=[AtomicCheckpointIO()],  # temp + fsync + rename in the run folder, not a copy from /tmp
    )
    for line in [*notes, *start_lines(cfg, n_params, train_labels, val_labels, left_out, trainer, run_dir, given,
                                      resume), *targets.lines()]:
        log.line(line)
    from fakelens.train.data import validation_dataset

    # Validation scores whole videos as predict does: items carry their video and clip index.
    train_loader, val_loader = make_loaders(loader_cfg, train_dataset, validation_dataset(val_dataset), train_labels)
    started = time.perf_counter()
    from fakelens.workers import torch_threads

    try:
        with ctrl_c, torch_threads(t.cpu_threads):
            trainer.fit(module, train_loader, val_loader, ckpt_path=str(last) if resume else None)
    except OSError as e:  # a checkpoint or log write on a full / unwritable disk: say where, no traceback
        from fakelens.atomic import output_error

        target = e.filename2 or e.filename  # a move or copy: filename is its source (e.g. in /tmp)
        err = output_error(e, Path(target).parent if target else run_dir)
        if err is None:
            raise
        raise err from e
    except SystemExit:
        if trainer.interrupted:  # Lightning turns Ctrl-C into sys.exit(1) after its callbacks ran
            raise KeyboardInterrupt from None
        raise
    except Exception as e:  # a FakelensError in a data loader worker arrives as torch's wrapper
        from fakelens.train.data import worker_error

        err = worker_error(e)
        if err is None:
            raise
        raise err from None
    wall = time.perf_counter() - started

    best = Path(checkpoint.best_model_path) if checkpoint.best_model_path else None
    last_path = last if last.is_file() else None
    score = checkpoint.best_model_score
    score = float(score) if score is not None and math.isfinite(float(score)) else None
    metrics = {
        "monitor": t.monitor,
        "best_score": score,
        "best_checkpoint": str(best.relative_to(run_dir)) if best and best.is_relative_to(run_dir) else (
            str(best) if best else None),
        "last_epoch_metrics": {k: float(v) for k, v in trainer.callback_metrics.items()
                               if math.isfinite(float(v))},
        "epochs": int(trainer.current_epoch),
        "global_step": int(trainer.global_step),
        "wall_seconds": round(wall, 3),
        "params": n_params,
        "prior": prior,
        "pos_weight": pos_weight,
        "targets": targets.to_dict(),
        "n_train": len(train_labels),
        "n_train_fake": n_fake,
        "n_val": len(val_labels),
        "n_val_fake": n_val_fake,
        "world_size": int(trainer.world_size),
        "resumed": resume,
        "left_out": {split: {why: len(ids) for why, ids in reasons.items()} for split, reasons in left_out.items()},
        "padding": padding,  # how much of the training inputs is padding (masked): train.data.audio_padding
        "notes": list(notes),  # what the log said before training: smoke's changes, the inputs matched
    }
    if trainer.is_global_zero:
        _write_metrics(run_dir / METRICS_NAME, metrics)
        best_text = (f"best {t.monitor} {score:.4f} ({metrics['best_checkpoint']})" if score is not None
                     else f"no finite {t.monitor} at any validation")
        log.line(f"done: {counted(metrics['epochs'], 'epoch')}, {counted(metrics['global_step'], 'step')} in {wall:.1f} s; "
                 f"{best_text}")
    return FitResult(run_dir, best, last_path, metrics)


def dry_run(cfg: TrainConfig, train_dataset: Any = None, val_dataset: Any = None) -> Any:
    """What `fakelens train --dry-run` shows: the datasets built and checked as `fit` builds them
    (a cache made for another input, an empty or one-class split: the same errors) and the task's
    targets counted on the training items (fakelens.train.targets.TargetPlan, its `notes` what
    was adapted to the data), without training; the model only on the meta device, for the
    budget check `fit` makes (train.max_params: BudgetError). A plan with `problems` is one `fit`
    refuses."""
    from fakelens.models import resolve_config
    from fakelens.tasks import build_task
    from fakelens.train.budget import check_budget
    from fakelens.train.data import model_from_data
    from fakelens.train.targets import plan_targets

    cfg = model_from_data(cfg)  # e.g. the feature widths of a localizer, as fit builds it
    cfg = dataclasses.replace(cfg, model=resolve_config(cfg.model))
    check_budget(cfg.model, cfg.train.max_params)  # over the budget: refused as train refuses it
    cfg, train_dataset, val_dataset, notes, given = _training_data(cfg, train_dataset, val_dataset, ())
    plan = plan_targets(train_dataset, build_task(cfg.task, time_stride=cfg.model.audio_time_stride), cfg.data.balance)
    # which videos train and validate (a carve's fakes on both sides): what a check of a carve wants
    plan.notes = [*notes, data_line(cfg, dataset_labels(train_dataset), dataset_labels(val_dataset), given)]
    return plan


def _padding(cfg: TrainConfig, train_dataset: Any) -> dict[str, Any]:
    """{"audio": fakelens.train.data.audio_padding} for a run on audio, else {}."""
    from fakelens.data.cache import load_config
    from fakelens.models import MODELS
    from fakelens.train.data import audio_padding

    cc = load_config(Path(cfg.data.cache)) if cfg.data.cache else None
    if cc is None or "audio" not in MODELS.get(cfg.model.name).inputs or not hasattr(cc, "hop_seconds"):
        return {}
    pad = audio_padding(train_dataset, audio_width(train_dataset), cc.hop_seconds)
    return {"audio": pad} if pad is not None else {}


ALL_VIDEOS = "(all videos)"  # the left_out.json key of videos read without a split (a cache without splits)
KEPT = "kept, labelled by face: "  # a left_out.json reason of videos trained on, their faces labelled otherwise


def left_out_videos(cfg: TrainConfig, train_dataset: Any, val_dataset: Any) -> dict[str, dict[str, list[str]]]:
    """{split: {reason: [ids]}}: the videos of the training and validation splits that the
    datasets left out (no audio for an audio model, no face, decode errors, unlabelled). The key
    is the split the dataset read (as training_splits resolves it: "train+test" for several),
    ALL_VIDEOS for every video of a cache without splits (or data.train_split=''). Videos kept but
    whose faces are labelled otherwise than the video (a fake no face of which differs from its
    original: ClipDataset.face_label_notes) are named too, their reason starting with KEPT."""
    from fakelens.train.data import training_splits

    asked = training_splits(cfg) if cfg.data.cache and (Path(cfg.data.cache) / "index.jsonl").is_file() else None
    out: dict[str, dict[str, list[str]]] = {}
    for i, ds in enumerate((train_dataset, val_dataset)):
        while not hasattr(ds, "left_out") and hasattr(ds, "base"):
            ds = ds.base
        reasons = getattr(ds, "left_out", None) or {}
        if not reasons and not getattr(ds, "face_label_notes", None):
            continue
        if asked is not None:  # validation carved out of the training videos reads the training split
            split = asked[1] if i == 1 and asked[1] is not None else asked[0]
        else:
            rows = getattr(ds, "rows", None)
            split = rows[0].get("split") if rows else None
        name = split if isinstance(split, str) and split else ("+".join(split) if split else ALL_VIDEOS)
        out.setdefault(name, {}).update(reasons)
        relabelled = getattr(ds, "face_label_notes", None) or {}  # kept, but its faces labelled otherwise
        out.setdefault(name, {}).update({f"{KEPT}{why}": ids for why, ids in relabelled.items()})
    if asked is not None and asked[1] is None and asked[0] is not None:
        out.update(unused_validation_splits(cfg, asked[0]))
    return out


def unused_validation_splits(cfg: TrainConfig, train_split: Any) -> dict[str, dict[str, list[str]]]:
    """{split: {reason: [ids]}} for the labelled videos of a validation-like split of the cache
    (val, dev, validation: DFDC metadata whose "split" says val, LAV-DF's dev) that a run carving
    validation out of the training split (data.val_split='') never reads: said, not dropped unsaid."""
    from fakelens.data.cache import read_index
    from fakelens.data.splits import canonical_split

    trained = {train_split} if isinstance(train_split, str) else set(train_split)
    of = f"split {train_split!r}" if isinstance(train_split, str) else f"splits {', '.join(train_split)}"
    out: dict[str, dict[str, list[str]]] = {}
    for row in read_index(Path(cfg.data.cache)):
        split = row.get("split")
        if (row.get("npz") and isinstance(split, str) and split not in trained and canonical_split(split) == "val"
                and row.get("label") in ("real", "fake")):
            why = (f"not used: data.val_split='' carves validation out of {of} (set data.val_split={split} "
                   "to validate on these videos)")
            out.setdefault(split, {}).setdefault(why, []).append(str(row["id"]))
    return out


def _left_out_of(split: str) -> str:
    """Words for the videos a split key of left_out_videos names."""
    if split == ALL_VIDEOS:
        return "every video of the cache"
    return f"splits {', '.join(split.split('+'))}" if "+" in split else f"split {split!r}"


def data_line(cfg: TrainConfig, train_labels: Sequence[int], val_labels: Sequence[int], given: bool) -> str:
    """The 'data:' line of a run (and of --dry-run): videos trained and validated on, their fakes,
    and where validation comes from (a split, or the carve and how it is made)."""
    if given:
        source = "the validation dataset given"
    else:
        from fakelens.train.data import validation_source

        source = validation_source(cfg)
    return (f"data: {counted(len(train_labels), 'training video')} ({sum(train_labels)} fake); "
            f"{counted(len(val_labels), 'validation video')} ({sum(val_labels)} fake), {source}")


def start_lines(cfg: TrainConfig, n_params: int, train_labels: Sequence[int], val_labels: Sequence[int],
                left_out: dict[str, dict[str, list[str]]], trainer: Any, run_dir: Path, given: bool,
                resume: bool) -> list[str]:
    """What a run says before its first epoch: model, device, data, left-out videos, run folder."""
    import torch

    from fakelens.train.budget import human

    device = str(trainer.strategy.root_device)
    if torch.device(device).type == "cpu":
        threads = cfg.train.cpu_threads or torch.get_num_threads()  # what fit runs with (train.cpu_threads)
        device += f" ({threads} torch thread{'s' if threads != 1 else ''})"
    world = f" x {trainer.world_size} processes" if trainer.world_size > 1 else ""
    lines = [f"{'resuming' if resume else 'training'} model {cfg.model.name!r} ({human(n_params)} parameters) on "
             f"{device}{world}, precision {trainer.precision}, {counted(cfg.train.epochs, 'epoch')}, monitor {cfg.train.monitor}"]
    lines.append(data_line(cfg, train_labels, val_labels, given))
    for split, all_reasons in left_out.items():
        for kept in (False, True):
            reasons = {r[len(KEPT):] if kept else r: ids for r, ids in all_reasons.items() if r.startswith(KEPT) == kept}
            if not reasons:
                continue
            total = sum(len(ids) for ids in reasons.values())
            why = "; ".join(f"{len(ids)} {reason}" for reason, ids in reasons.items())
            head = f"face labels of {_left_out_of(split)}" if kept else f"left out of {_left_out_of(split)}"
            lines.append(f"{head}: {counted(total, 'video')} ({why}); ids in {run_dir / LEFT_OUT_NAME}")
    lines.append(f"run folder: {run_dir}")
    return lines


def _early_stopping(base: type, **kwargs: Any) -> Any:
    """Lightning's EarlyStopping, except that a validation whose monitored metric is undefined
    (DetectorModule.undefined_metrics: AUC over one class) neither counts nor stops the run."""

    class UndefinedAwareEarlyStopping(base):  # type: ignore[misc, valid-type]
        # Lightning checks at the end of validation or of the training epoch, whichever applies.
        def on_validation_end(self, trainer: Any, pl_module: Any) -> None:
            if self.monitor not in getattr(pl_module, "undefined_metrics", {}):
                super().on_validation_end(trainer, pl_module)

        def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
            if self.monitor not in getattr(pl_module, "undefined_metrics", {}):
                super().on_train_epoch_end(trainer, pl_module)

    return UndefinedAwareEarlyStopping(**kwargs)


def _groups_of_class(dataset: Any, fake: bool) -> int | None:
    """How many groups (originals, fakelens.data.splits.original_group) of `dataset`'s videos hold
    the class (fake or real); None for a dataset without records."""
    from fakelens.data.splits import original_group
    from fakelens.types import Label

    records = getattr(dataset, "records", None)
    if records is None:
        return None
    want = Label.FAKE if fake else Label.REAL
    return len({original_group(r) for r in records if r.label is want})


def one_class_validation(cfg: TrainConfig, n: int, n_fake: int, given: bool = False,
                         missing_groups: int | None = None) -> str:
    """Why a one-class validation set is refused before the first step, with its counts and what
    to change: video AUC is undefined on it and log loss would rank a constant guess first.
    `missing_groups`: the groups (originals) of the training videos holding the class validation
    lacks; when it is one, a carve cannot move it (groups are never split), so raising
    data.val_fraction is not suggested."""
    from fakelens.train.data import validation_source

    only = "fake" if n_fake else "real"
    where = "the validation dataset given" if given else f"validation ({validation_source(cfg)})"
    text = (f"{where} holds {counted(n, 'video')}, all {only} ({n - n_fake} real, {n_fake} fake): video AUC is undefined "
            "and log loss would reward a constant score, so no checkpoint could be chosen on it. ")
    if given:
        return text + "Give a validation dataset with both classes."
    if cfg.data.val_split:
        return text + ("Point data.val_split at a split with both classes, or set data.val_split='' to carve "
                       "validation out of the training split (by original, stratified by label).")
    missing = "real" if n_fake else "fake"
    if missing_groups is not None and missing_groups <= 1:
        return text + (f"Every {missing} training video comes from one original"
                       " (fakes are kept with their original, so no identity is on both sides): no "
                       f"data.val_fraction can carve a {missing} video into validation. Add {missing} videos of "
                       f"other originals (or other real people), or give a validation split with both classes as "
                       "data.val_split.")
    return text + (f"The training split has too few groups of the missing class to give both sides one: raise "
                   f"data.val_fraction (now {cfg.data.val_fraction}), or give a validation split with both "
                   "classes as data.val_split.")


def _limit(v: float) -> float | int:
    return int(v) if v > 1 else float(v)


def _write_metrics(path: Path, metrics: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(metrics, indent=2) + "\n")

