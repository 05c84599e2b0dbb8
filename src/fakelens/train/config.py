"""The typed training config (one per run, saved as run_dir/config.yaml): data, model, task, optim,
train and augment sections. Loaded with fakelens.config.load_config: defaults < YAML < --set.

Importing this module imports no torch, and neither does loading a config: a wrong key, type,
range or name (model, backbone, task, optimizer, augmentation: static lists, fakelens.names and
fakelens.models.names) is reported in well under a second; `check_data_source` refuses a missing
cache as fast."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from fakelens.config import load_config
from fakelens.features.originals import FACE_DIFF_THRESHOLD, FACE_EQUAL_THRESHOLD
from fakelens.models.config import ModelConfig
from fakelens.registry import check_registered, deferred_name_checks
from fakelens.tasks.config import TaskConfig

CONFIG_NAME = "config.yaml"  # the resolved config of a run, in its folder (fakelens.train.engine)


@dataclass
class DataConfig:
    """Where the training samples come from: a cache written by `fakelens preprocess`."""

    cache: str = ""  # cache directory (relative paths resolve against the working directory)
    # The dataset layout the recipe is made for ("" = any): `train --smoke` without data.cache
    # synthesizes its tiny set in this layout (fakelens.train.smoke.smoke_layout), so a recipe's
    # splits, validation carve and labels are those of its own data
    format: Literal["", "avdeepfake1m", "csv", "dfdc", "folders", "lavdf"] = ""
    dataset: str = "clips"  # a CACHE_DATASETS entry giving the model's inputs: clips | audio | av | frames | features
    # Splits of the cache (an unknown name is an error). train_split "" = every video of the cache;
    # val_split "" = carve validation out of the training videos. A cache without splits (real/ +
    # fake/ folders) trains on every video with a carved validation, whatever these say.
    train_split: str = "train"
    val_split: str = "val"
    val_fraction: float = 0.15  # used when carving validation out of train
    split_seed: int = 0
    balance: Literal["none", "pos_weight", "sampler"] = "pos_weight"  # class balance by loss or sampler
    clip_frames: int = 8  # clips / av: consecutive cached frames per sample
    audio_seconds: float | None = None  # audio / av: mel window length (None = the dataset's default)
    max_steps: int = 0  # features: train on random windows of this many steps of longer videos (0 = whole videos)
    # A face of a fake compared with its original (preprocess --max-faces > 1 and DFDC's `original`) is
    # fake when its crops differ by more than this many grey levels (fakelens.features.originals)
    face_diff_threshold: float = FACE_DIFF_THRESHOLD
    # ... and equal to the original (untouched) within this many (between the two: not told); a fake
    # none of whose faces differs, every face equal, is trained with every face real (an audio-only fake)
    face_equal_threshold: float = FACE_EQUAL_THRESHOLD
    # Face tracks per video trained on and scored, the main ones first (None: every track the cache
    # keeps, `fakelens preprocess --max-faces N`): several for DFDC-style data, 1 for single-speaker sets
    max_faces: int | None = None
    # The cache the recipe's model is made for ("" = any): its frame sampling (preprocess --frames N,
    # --fps R, --all, --windows K) and crop kind (--crop tracked | roi); train refuses a cache made
    # otherwise (a 3D ROI model on evenly spaced tracked crops trains, but not what it is made for),
    # and `train --smoke` without data.cache preprocesses its tiny set so
    sampling: Literal["", "frames", "fps", "all", "windows"] = ""
    crop: Literal["", "tracked", "roi"] = ""

    def __post_init__(self) -> None:
        if self.crop == "roi" and self.sampling not in ("", "windows"):
            raise ValueError(f"data.crop roi cuts one region per clip window: it needs data.sampling windows "
                             f"(preprocess --windows K), got data.sampling {self.sampling}")
        if not 0 < self.val_fraction < 1:
            raise ValueError(f"data.val_fraction must be in (0, 1), got {self.val_fraction}")
        if self.clip_frames < 1:
            raise ValueError(f"data.clip_frames must be >= 1, got {self.clip_frames}")
        if self.max_faces is not None and self.max_faces < 1:
            raise ValueError(f"data.max_faces must be >= 1 (or null: every face the cache keeps), got {self.max_faces}")
        check_registered("fakelens.data.dataset", "CACHE_DATASETS", self.dataset)
        if not self.face_diff_threshold > 0:
            raise ValueError(f"data.face_diff_threshold must be > 0 grey levels, got {self.face_diff_threshold}")
        if not 0 < self.face_equal_threshold <= self.face_diff_threshold:
            raise ValueError(f"data.face_equal_threshold must be in (0, data.face_diff_threshold="
                             f"{self.face_diff_threshold:g}] grey levels, got {self.face_equal_threshold}")


@dataclass
class AugmentConfig:
    """The `augment` section of a recipe: which named augmentations run, with their knobs
    (fakelens.train.augment implements them)."""

    video: list[str] = field(default_factory=list)  # VIDEO_AUGMENTS names, applied in this order
    audio: list[str] = field(default_factory=list)  # AUDIO_AUGMENTS names, applied in this order
    p: float = 0.5  # probability of each listed augmentation
    jpeg_quality: tuple[int, int] = (30, 95)
    downscale: tuple[float, float] = (0.25, 0.75)  # resize factor range before scaling back up
    blur_sigma: tuple[float, float] = (0.1, 2.0)
    noise_std: float = 0.03
    color_jitter: float = 0.2  # brightness/contrast/saturation strength (hue = strength / 4)
    erase_scale: tuple[float, float] = (0.02, 0.2)  # cutout area fraction
    crop_scale: tuple[float, float] = (0.7, 1.0)  # random resized crop area fraction
    mix: str = "none"  # batch mixing: none | mixup | cutmix
    mix_alpha: float = 0.4
    spec_time_mask: float = 0.1  # SpecAugment: max fraction of time steps masked
    spec_freq_mask: float = 0.15  # SpecAugment: max fraction of mel bins masked
    spec_masks: int = 2  # number of time and of frequency masks
    gain: float = 0.1  # max +/- shift of the normalised log-mel (a gain in dB, scaled)
    audio_noise_std: float = 0.02

    def __post_init__(self) -> None:
        for name in self.video:
            check_registered("fakelens.train.augment", "VIDEO_AUGMENTS", name)
        for name in self.audio:
            check_registered("fakelens.train.augment", "AUDIO_AUGMENTS", name)
        if self.mix not in ("none", "mixup", "cutmix"):
            raise ValueError(f"augment.mix must be none, mixup or cutmix, got {self.mix!r}")
        if not 0 <= self.p <= 1:
            raise ValueError(f"augment.p must be in [0, 1], got {self.p}")


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule (AdamW + one-cycle by default)."""

    name: str = "adamw"  # an OPTIMIZERS entry: adamw | adam | sgd
    lr: float = 3e-4
    weight_decay: float = 0.01
    betas: tuple[float, float] = (0.9, 0.999)
    momentum: float = 0.9  # sgd only
    scheduler: str = "onecycle"  # a SCHEDULERS entry: onecycle | cosine | step | constant
    warmup_fraction: float = 0.1  # one-cycle: fraction of the steps spent warming up
    step_epochs: int = 10  # step: decay every this many epochs
    gamma: float = 0.1  # step: decay factor
    min_lr_ratio: float = 0.01  # cosine: final lr = lr * min_lr_ratio

    def __post_init__(self) -> None:  # an unknown name fails here (and in --dry-run), not at the first step
        check_registered("fakelens.train.module", "OPTIMIZERS", self.name)
        check_registered("fakelens.train.module", "SCHEDULERS", self.scheduler)


PRECISIONS = ("32", "bf16-mixed", "16-mixed")
# what Lightning also accepts for them (its "16" and "bf16" are the mixed modes)
PRECISION_ALIASES = {"16": "16-mixed", "bf16": "bf16-mixed", "32-true": "32", "fp32": "32"}


@dataclass
class RunConfig:
    """The `train` section: how long, how precise, on which devices, what to monitor."""

    epochs: int = 10
    batch_size: int = 8
    # 32 | bf16-mixed | 16-mixed; Lightning's aliases are read as it reads them (16, bf16, 32-true)
    precision: str = "32"
    grad_clip: float = 1.0  # max gradient norm (0 = off)
    accumulate_grad_batches: int = 1
    seed: int = 0
    max_params: int = 200_000_000  # budget check before training: larger models are refused
    # over video scores computed as predict computes them; val_ap: mean AP@{0.5,0.75,0.95} of the
    # proposals predict writes (localization runs)
    monitor: Literal["val_auc", "val_logloss", "val_ap"] = "val_auc"
    patience: int = 5  # early stopping after this many validations without improvement (0 = off)
    accelerator: str = "auto"  # auto | cpu | gpu
    devices: str = "auto"  # "auto", a count ("2") or a list ("0,1")
    strategy: str = "auto"  # auto | ddp | ...  (multi-node: also set num_nodes and launch with torchrun)
    num_nodes: int = 1
    num_workers: int = 2
    # torch's intra-op CPU threads while training (0 = torch's default: OMP_NUM_THREADS, else one per
    # core). Small models on a busy machine lose to 1: the demo localizer's epochs took 18-142 s with
    # 2 threads against 4-15 s with 1 on 2 cores shared with other jobs, 3 epochs of demo.yaml 191 s
    # against 19 s (both demo recipes set 1)
    cpu_threads: int = 0
    nonfinite: Literal["skip", "stop"] = "skip"  # what a non-finite loss does
    max_nonfinite: int = 20  # stop after this many skipped steps in a row
    limit_train_batches: float = 1.0  # fraction (<= 1) or count (> 1) of batches per epoch
    limit_val_batches: float = 1.0
    # validate on at most this many videos, each scored whole, fakes and reals taken in turn (so a
    # short check still scores both classes; limit_val_batches may cut a video); 0 = every video
    limit_val_videos: int = 0
    log_every_n_steps: int = 10
    val_every_n_epochs: int = 1
    progress_bar: bool = True  # a bar where a terminal is attached (one line per epoch is always printed)
    deterministic: bool = False

    def __post_init__(self) -> None:
        self.precision = PRECISION_ALIASES.get(self.precision.lower(), self.precision)
        if self.precision not in PRECISIONS:
            raise ValueError(f"train.precision: {self.precision!r} is not one of {list(PRECISIONS)} (or "
                             f"Lightning's {', '.join(PRECISION_ALIASES)})")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("train.epochs and train.batch_size must be >= 1")
        if self.max_params < 1:
            raise ValueError(f"train.max_params must be >= 1, got {self.max_params}")
        if self.cpu_threads < 0:
            raise ValueError(f"train.cpu_threads must be >= 0 (0 = torch's default), got {self.cpu_threads}")
        if self.limit_val_videos < 0:
            raise ValueError(f"train.limit_val_videos must be >= 0 (0 = every video), got {self.limit_val_videos}")


@dataclass
class PredictConfig:
    """How `fakelens predict` turns model outputs into a video score and proposals (defaults of its flags).
    Validation during training scores videos with the same `level` and `aggregate`."""

    level: Literal["frames", "clips"] = "frames"  # aggregate per-frame scores, or per-clip scores
    aggregate: str = "mean"  # an AGGREGATIONS entry: mean | max | median | topk_mean | confident_mean
    face_aggregate: str = "max"  # a FACE_AGGREGATIONS entry making the video score from its faces' scores:
                                 # max | mean | frames_weighted | main
    suppression: str = "soft_nms"  # proposal suppression: nms | soft_nms | none
    iou_threshold: float = 0.3
    thresholds: list[float] = field(default_factory=lambda: [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    max_proposals: int = 100
    no_face: Literal["error", "full_frame"] = "error"  # a video without a face: fail, or score the full frame
    # Localizer runs (fakelens.inference.localize): proposals from the boundary head or, the
    # baseline, from thresholds on the per-step scores; long videos in overlapping windows.
    proposals: Literal["auto", "boundaries", "thresholds"] = "auto"  # auto: boundaries for localizers
    soft_nms_sigma: float = 0.5
    pre_topk: int = 2000  # most confident candidates kept before the suppression
    window_steps: int = 2048  # steps per model input; longer videos are cut into windows
    window_overlap: int = 256  # steps shared by consecutive windows

    def __post_init__(self) -> None:
        from fakelens.inference.aggregate import AGGREGATIONS, FACE_AGGREGATIONS
        from fakelens.inference.postprocess import SUPPRESSIONS

        AGGREGATIONS.get(self.aggregate)
        FACE_AGGREGATIONS.get(self.face_aggregate)
        SUPPRESSIONS.get(self.suppression)
        if self.window_steps < 1 or not 0 <= self.window_overlap < self.window_steps:
            raise ValueError(f"predict.window_steps must be >= 1 and 0 <= window_overlap < window_steps, got "
                             f"{self.window_steps} and {self.window_overlap}")
        if self.soft_nms_sigma <= 0 or self.pre_topk < 1 or self.max_proposals < 1:
            raise ValueError("predict.soft_nms_sigma must be > 0, pre_topk and max_proposals >= 1")


@dataclass
class TrainConfig:
    """A whole training recipe (configs/*.yaml)."""

    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    task: TaskConfig = field(default_factory=TaskConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: RunConfig = field(default_factory=RunConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    predict: PredictConfig = field(default_factory=PredictConfig)


def load_train_config(path: str | Path | None, overrides: list[str] | None = None, *,
                      light: bool = False) -> TrainConfig:
    """Defaults < YAML recipe < `key=value` overrides; unknown keys are ConfigErrors.

    light=True checks keys, types and ranges without importing torch (names of tasks and
    augmentations, registered in torch modules, are then left to the full load)."""
    from fakelens.models.names import check_model_names

    if light:
        with deferred_name_checks():
            cfg = load_config(TrainConfig, path, overrides)
    else:
        cfg = load_config(TrainConfig, path, overrides)
    check_model_names(cfg.model)  # model and backbone names against static lists: no torch, no timm
    return cfg


def check_data_source(cfg: TrainConfig) -> None:
    """Refuse a recipe whose data.cache is unset or not a finished cache (ConfigError /
    FakelensError), without importing torch: `fakelens train` says so in well under a second."""
    from fakelens.errors import ConfigError, FakelensError

    if not cfg.data.cache:
        raise ConfigError("data.cache is not set: preprocess a dataset with `fakelens preprocess DATA --out CACHE` "
                          "and pass --set data.cache=CACHE (or check the recipe first with --smoke)")
    cache = Path(cfg.data.cache)
    if not (cache / "index.jsonl").is_file():
        what = "does not exist" if not cache.exists() else "is not a finished preprocessing cache (no index.jsonl)"
        raise FakelensError(f"{cache}: {what}; data.cache must be a folder `fakelens preprocess` (or "
                            "`fakelens features` for data.dataset=features) wrote")
