"""Training and validation datasets over a preprocessing cache, as the run config says.

Validation is the cache's `data.val_split` (a name the cache does not have is an error listing
the splits it has); with data.val_split='' (DFDC ships no validation split) it is carved out of
the training split by original and stratified by the label the model learns (the visual label
for a face-only dataset: fakelens.data.dataset.learned_label) with fakelens.data.splits.split_by_group,
so no identity appears on both sides and both classes are on each side.

The validation dataset yields every clip of every validation video, cut as `fakelens predict`
cuts them (fakelens.data.dataset.AllClips), so validation scores videos as predict does.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from torch.utils.data import Dataset

from fakelens.errors import ConfigError, FakelensError
from fakelens.train.config import TrainConfig


class LabeledSubset(Dataset):
    """A subset of a cache dataset that keeps `labels` and `records` (for samplers and class weights)."""

    def __init__(self, base: Any, indices: Sequence[int]):
        self.base = base
        self.indices = list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.base[self.indices[i]]

    @property
    def labels(self) -> np.ndarray:
        return np.asarray(self.base.labels)[self.indices]  # (N,)

    @property
    def records(self) -> list[Any]:
        return [self.base.records[i] for i in self.indices]


class OneClipVideos(Dataset):
    """A validation dataset whose items are whole videos (a dataset given to `fit` directly):
    item i is video i's only clip, tagged `video_index` = i and `clip_index` = 0 for validation."""

    def __init__(self, base: Any):
        self.base = base

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return {**self.base[i], "video_index": i, "clip_index": 0}

    @property
    def labels(self) -> Any:
        return getattr(self.base, "labels", None)


def validation_dataset(dataset: Any) -> Any:
    """The validation dataset as DetectorModule needs it: AllClips as it is, any other dataset
    with one clip per video (its items tagged by OneClipVideos)."""
    from fakelens.data.dataset import AllClips

    return dataset if isinstance(dataset, AllClips) else OneClipVideos(dataset)


def limit_videos(dataset: Any, n: int) -> Any:
    """The validation `dataset` (AllClips, a LabeledSubset or a dataset listing its `labels`) kept to
    `n` of its videos (train.limit_val_videos; 0 or at least its size: as it is), each whole: fakes
    and reals taken in turn in the dataset's order, so any n >= 2 scores both classes when it has
    them (a count of batches, limit_val_batches, may end inside the first video)."""
    from itertools import zip_longest

    from fakelens.data.dataset import AllClips

    labels = getattr(dataset, "labels", None)
    if n <= 0 or labels is None or len(labels) <= n:
        return dataset
    y = np.asarray(labels, np.float64).round()  # (V,)
    turns = zip_longest(np.flatnonzero(y == 1).tolist(), np.flatnonzero(y != 1).tolist())
    picked = sorted([i for pair in turns for i in pair if i is not None][:n])
    if isinstance(dataset, AllClips):
        return AllClips(dataset.base, [dataset.videos[j] for j in picked])
    if isinstance(dataset, LabeledSubset):
        return LabeledSubset(dataset.base, [dataset.indices[j] for j in picked])
    return LabeledSubset(dataset, picked)


def dataset_kwargs(cfg: TrainConfig) -> dict[str, Any]:
    """Keyword arguments of the configured cache dataset class."""
    d = cfg.data
    if d.dataset in ("clips", "av"):
        kw: dict[str, Any] = {"clip_frames": d.clip_frames, "face_diff_threshold": d.face_diff_threshold,
                              "face_equal_threshold": d.face_equal_threshold, "max_faces": d.max_faces}
        if d.dataset == "av" and d.audio_seconds is not None:
            kw["audio_seconds"] = d.audio_seconds
        return kw
    if d.dataset == "audio":
        return {"window_seconds": d.audio_seconds} if d.audio_seconds is not None else {}
    if d.dataset == "frames":
        return {"face_diff_threshold": d.face_diff_threshold, "face_equal_threshold": d.face_equal_threshold,
                "max_faces": d.max_faces}
    if d.dataset == "features":
        return {"max_steps": d.max_steps}
    raise ConfigError(f"data.dataset {d.dataset!r} has no mapping of its options")


def cache_splits(cache: Path) -> dict[str, int]:
    """Videos with cached arrays per split of a cache (rows without a split count as "(none)")."""
    from collections import Counter

    from fakelens.data.cache import read_index

    return dict(sorted(Counter(str(row.get("split") or "(none)") for row in read_index(cache) if row.get("npz"))
                       .items()))


def resolve_split(name: str, splits: dict[str, int], key: str, cache: Path) -> str:
    """The cache's name for split `name`: itself, else the validation-like split it stands for
    (`val` and a cache made when LAV-DF's `dev` was kept as such); a ConfigError listing the
    splits there are otherwise (a missing val split used to carve validation out of train silently)."""
    from fakelens.data.splits import canonical_split

    if name in splits:
        return name
    same = [s for s in splits if canonical_split(s) == canonical_split(name)]
    if same:
        return same[0]
    have = ", ".join(f"{s} ({n} videos)" for s, n in splits.items()) or "none"
    hint = (f"; set {key} to one of them, or data.val_split='' to carve validation out of the training "
            "split by original (data.val_fraction)" if key == "data.val_split"
            else f"; set {key} to one of them, or data.train_split='' to train on every video")
    raise ConfigError(f"{key} is {name!r} but the cache {cache} has no such split (its splits: {have}){hint}")


NO_SPLIT = "(none)"  # cache_splits' name for the rows without a split


def training_splits(cfg: TrainConfig, splits: dict[str, int] | None = None) -> tuple[Any, str | None]:
    """(train split, validation split) of the cache as the datasets filter them: None for the
    train split = every video of the cache (data.train_split='', or a cache with no splits at all,
    e.g. real/ + fake/ folders); None for the validation split = carved out of the training videos
    (data.val_split='', or a cache with no splits). Other names must be splits of the cache."""
    d = cfg.data
    cache = Path(d.cache)
    splits = cache_splits(cache) if splits is None else splits
    if set(splits) <= {NO_SPLIT}:  # nothing to choose between: train on all, carve validation
        return None, None
    train = resolve_split(d.train_split, splits, "data.train_split", cache) if d.train_split else None
    val = resolve_split(d.val_split, splits, "data.val_split", cache) if d.val_split else None
    if train is None and val is not None:  # every video but the validation split's (no leak)
        others = tuple(s for s in splits if s not in (val, NO_SPLIT))
        if not others:
            raise ConfigError(f"data.train_split='' with data.val_split={val!r}: the cache {cache} has no other "
                              "split to train on; set data.val_split='' to carve validation out of every video")
        return others, val  # type: ignore[return-value]
    return train, val


def validation_source(cfg: TrainConfig) -> str:
    """Where validation comes from, in words, for messages: a cache split or the carve."""
    d = cfg.data
    train, val = training_splits(cfg) if d.cache and (Path(d.cache) / "index.jsonl").is_file() else (
        d.train_split or None, d.val_split or None)
    if val:
        return f"split {val!r} of the cache"
    of = (f"split {train!r}" if isinstance(train, str) else f"splits {', '.join(train)}") if train else ("every video of the cache (it has no splits)" if d.val_split
                                           else "every video of the cache")
    grouped = "by original and stratified" if _names_originals(cfg, train) else (
        "stratified")
    text = (f"carved out of {of}: data.val_fraction {d.val_fraction}, data.split_seed "
            f"{d.split_seed}, {grouped} by label{_stratum_label(cfg)}")
    if grouped == "stratified":
        text += ("; the dataset names no originals, so each video is a group of its own (a fake and the real "
                 "video it was made from can fall on both sides)")
    return text


def _names_originals(cfg: TrainConfig, train: Any) -> bool:
    """Whether a training video of the cache names the original it was made from (DFDC, AV-1M):
    the carve then keeps a fake with its original; True when the cache cannot be read (said as before)."""
    from fakelens.data.cache import read_index

    cache = Path(cfg.data.cache) if cfg.data.cache else None
    if cache is None or not (cache / "index.jsonl").is_file():
        return True
    splits = {train} if isinstance(train, str) else set(train) if train else None
    return any(row.get("original") for row in read_index(cache)
               if row.get("npz") and (splits is None or row.get("split") in splits))


def _stratum_label(cfg: TrainConfig) -> str:
    """Which label the carve stratifies by, for messages: '' (the video label), or the stream's
    label a dataset of one stream learns (' (the visual label: what data.dataset=clips learns)')."""
    from fakelens.data.dataset import CACHE_DATASETS

    stream = getattr(CACHE_DATASETS.get(cfg.data.dataset), "learned_stream", None)
    return f" (the {stream} label: what data.dataset={cfg.data.dataset} learns)" if stream else ""


def build_datasets(cfg: TrainConfig) -> tuple[Any, Any]:
    """(train, val) datasets: train with random clips and the configured augmentations; val is
    AllClips, every clip of every validation video, no augmentation, with the inputs predict
    builds for this run: the same clip length and the training set's audio window (an AV
    dataset's default window depends on its videos, and predict uses the training one). A run
    on single frames (`frames`) validates on clips of `data.clip_frames` frames, which is what
    predict feeds its (clip-taking) model."""
    from fakelens.data.dataset import CACHE_DATASETS, AllClips, ClipDataset
    from fakelens.train.augment import SampleAugment

    d = cfg.data
    if not d.cache:
        raise ConfigError("data.cache is not set: preprocess a dataset with `fakelens preprocess DATA --out CACHE` "
                          "and pass --set data.cache=CACHE")
    cache = Path(d.cache)
    if not (cache / "index.jsonl").is_file():
        raise FakelensError(f"{cache}: not a finished preprocessing cache (no index.jsonl)")
    from fakelens.data.cache import check_cache

    check_cache(cache, [])  # its version, before any dataset reads its rows
    from fakelens.data.cache import load_config

    cc = load_config(cache)
    if cc is not None and _clips_span_windows(cfg, cc):  # the dataset would refuse this alone: say every misfit
        raise refusal_error(cache, cache_refusals(cfg, cc))
    cls = CACHE_DATASETS.get(d.dataset)
    kw = dataset_kwargs(cfg)
    augment = SampleAugment(cfg.augment)
    transform = augment if augment.active else None
    train_split, val_split = training_splits(cfg)
    carve = val_split is None
    train = cls(cache, train_split, labeled_only=True, transform=transform, random=True, **kw)
    val_cls, val_kw = cls, dict(kw)
    if d.dataset == "frames":
        val_cls, val_kw = ClipDataset, {"clip_frames": d.clip_frames, "face_diff_threshold": d.face_diff_threshold,
                                        "face_equal_threshold": d.face_equal_threshold, "max_faces": d.max_faces}
    if d.dataset == "av":
        val_kw["audio_seconds"] = train.audio_seconds
    whole = d.dataset == "features"  # items are whole videos, scored as predict scores them (windows)
    if whole:
        val_kw["max_steps"] = 0
    if not carve:
        val = val_cls(cache, val_split, labeled_only=True, random=False, **val_kw)
        check_cache(cache, [*train.rows, *val.rows])  # in this process, not in a loader worker mid-epoch
        return train, val if whole else AllClips(val)
    from fakelens.data.splits import split_by_group

    val_base = val_cls(cache, train_split, labeled_only=True, random=False, **val_kw)
    check_cache(cache, train.rows)
    from fakelens.data.dataset import learned_label

    stream = getattr(train, "learned_stream", None)  # stratified by the label the model learns
    train_recs, val_recs = split_by_group(train.records, d.val_fraction, d.split_seed,
                                          label=lambda rec: learned_label(rec, stream))
    val_ids = {r.id for r in val_recs}
    train_idx = [i for i, r in enumerate(train.records) if r.id not in val_ids]
    val_idx = [i for i, r in enumerate(val_base.records) if r.id in val_ids]
    return LabeledSubset(train, train_idx), LabeledSubset(val_base, val_idx) if whole else AllClips(val_base, val_idx)


def model_from_data(cfg: TrainConfig) -> TrainConfig:
    """The run config with what the data decides about the model: the feature widths of a
    localizer over a features folder (model.feature_dim / audio_feature_dim; given ones must match)."""
    import dataclasses

    if cfg.data.dataset != "features" or not cfg.data.cache:
        return cfg
    from fakelens.data.cache import load_config
    from fakelens.data.features import FeatureConfig

    fc = load_config(Path(cfg.data.cache))
    if not isinstance(fc, FeatureConfig):
        raise FakelensError(f"{cfg.data.cache}: data.dataset=features needs a folder made by `fakelens features`")
    m = cfg.model
    for key, value in (("feature_dim", fc.visual_dim), ("audio_feature_dim", fc.audio_dim)):
        given = getattr(m, key)
        if given is not None and given != value:
            raise ConfigError(f"model.{key}={given} but the features in {cfg.data.cache} are {value} wide")
    return dataclasses.replace(cfg, model=dataclasses.replace(m, feature_dim=fc.visual_dim,
                                                              audio_feature_dim=fc.audio_dim))


def feature_encoder_state(cfg: TrainConfig) -> dict[str, Any] | None:
    """The encoder weights of a features folder (FEATS/encoder.pt), kept in the run's checkpoints
    so `predict` turns raw videos into the same features; None for other caches."""
    if cfg.data.dataset != "features" or not cfg.data.cache:
        return None
    import torch

    from fakelens.data.cache import load_config

    path = Path(cfg.data.cache) / "encoder.pt"
    digest = (load_config(Path(cfg.data.cache)).encoder or {}).get("digest")
    from fakelens.inference.dense import load_encoder

    load_encoder(path, digest)  # checked: the weights config.json records
    return torch.load(path, map_location="cpu", weights_only=True)


def collate_fn(dataset: Any) -> Any:
    """The collate function of a (wrapped) cache dataset, None for the default one."""
    while not hasattr(dataset, "collate") and hasattr(dataset, "base"):
        dataset = dataset.base
    return getattr(dataset, "collate", None)


_WORKER_ERROR = re.compile(r"^Caught (?P<name>\w+) in DataLoader worker process (?P<worker>\d+)\.\n")


def worker_error(e: BaseException) -> FakelensError | None:
    """The FakelensError a DataLoader worker raised, from the exception torch re-raises for it in
    this process (a RuntimeError, or the error type built from the worker's whole traceback: only
    the type and the formatted traceback cross the process boundary), else None. Its message is
    the worker's message, so the CLI prints it as it prints any FakelensError."""
    text = str(e)
    m = _WORKER_ERROR.match(text)
    if m is None:
        return None
    name = m.group("name")
    types, todo = set(), [FakelensError]
    while todo:
        cls = todo.pop()
        types.add(cls.__name__)
        todo.extend(cls.__subclasses__())
    if name not in types:
        return None
    last = None
    for last in re.finditer(rf"^(?:[\w.]+\.)?{name}: ", text, flags=re.MULTILINE):
        pass
    if last is None:
        return None
    return FakelensError(f"{text[last.end():].strip()} (raised in data loader worker {m.group('worker')})")


def cache_config_dict(cfg: TrainConfig) -> dict[str, Any] | None:
    """The preprocessing parameters of the run's cache (saved with the run: inference reuses them)."""
    if not cfg.data.cache:
        return None
    from fakelens.data.cache import load_config

    cc = load_config(Path(cfg.data.cache))
    return None if cc is None else cc.to_dict()


def check_resumed_cache(run_dir: str | Path, cfg: TrainConfig) -> dict[str, Any] | None:
    """On --resume: the run's own record of the preprocessing parameters it trained on
    (run_dir/cache_config.json) must match its cache today; a cache rebuilt with other parameters
    would feed the resumed epochs other inputs, and predict would then use the wrong ones.
    Returns the recorded parameters (None when the run has none)."""
    import json

    path = Path(run_dir) / "cache_config.json"
    if not path.is_file():
        return None
    try:
        recorded = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise FakelensError(f"{path}: not JSON ({e}); the run's record of its cache parameters is damaged") from None
    current = cache_config_dict(cfg)
    if current is not None and current != recorded:
        diff = ", ".join(f"{k}: {recorded.get(k)!r} -> {current.get(k)!r}" for k in sorted(set(recorded) | set(current))
                         if recorded.get(k) != current.get(k))
        raise FakelensError(
            f"{cfg.data.cache}: the cache was rebuilt with other parameters since run {run_dir} started ({diff}); "
            f"resuming would train on other inputs than the checkpoint saw. Rebuild the cache with the run's "
            f"parameters ({path}), or start a new run with another --out")
    return recorded


def match_inputs(cfg: TrainConfig, train_dataset: Any) -> tuple[TrainConfig, list[str]]:
    """Compare the recipe with what the cache holds, before training: (the config with the model's
    counted input sizes set to the data's, one line per change).

    Refused (one ConfigError listing every mismatch, each with both values and the fixes): crops
    of another size than model.image_size (the recipe's 380 px model would train on 64 px crops),
    a fixed-count cache holding fewer frames than data.clip_frames (every clip padded), a frame
    sampling or crop kind other than the recipe's data.sampling / data.crop (a 3D ROI model on
    evenly spaced tracked crops), audio windows of padding only. Adapted and said:
    model.num_frames (the model is fed clips of data.clip_frames frames), model.audio_frames and
    model.n_mels (the audio window and mel bands the data has), which only size the input the
    parameter/FLOP counts use.
    """
    import dataclasses

    from fakelens.data.cache import load_config
    from fakelens.models import MODELS

    if not cfg.data.cache:
        return cfg, []
    cache = Path(cfg.data.cache)
    cc = load_config(cache)
    if cc is None:
        return cfg, []
    m, d = cfg.model, cfg.data
    inputs = MODELS.get(m.name).inputs
    changes: dict[str, Any] = {}
    notes: list[str] = []
    refused: list[str] = []  # every mismatch, said at once (not one per run)
    if "video" in inputs:
        refused += cache_refusals(cfg, cc)
        rows = _rows_of(train_dataset)
        if cc.sampling != "frames" and rows:
            short = [r for r in rows if (r.get("counts") or {}).get("frames", d.clip_frames) < d.clip_frames]
            if len(short) == len(rows):
                most = max(int((r.get("counts") or {}).get("frames", 0)) for r in rows)
                refused.append(
                    f"every training video of the cache {cache} has fewer sampled frames than data.clip_frames "
                    f"({d.clip_frames}): at most {most} ({_sampling_words(cc)}); every clip would be padded: "
                    f"--set data.clip_frames={most} or fewer, or preprocess with more frames per video")
            if short:
                notes.append(f"{len(short)} of {len(rows)} training videos have fewer than data.clip_frames "
                             f"({d.clip_frames}) sampled frames: their clips are padded (masked)")
        if d.max_faces is not None and cc.max_faces < d.max_faces:
            notes.append(f"data.max_faces is {d.max_faces} but the cache {cache} keeps {cc.max_faces} face track(s) "
                         f"per video: preprocess with --max-faces {d.max_faces} to train on and score every person")
        n = d.clip_frames  # training clips, and the clips validation and predict feed (frames datasets too)
        from fakelens.models.names import min_frames

        least = min_frames(m.name)
        if n < least:
            notes.append(f"data.clip_frames is {n} but model {m.name!r} convolves over time with kernels of {least} "
                         f"frames: on clips this short they see padding more than frames; clips of {least} frames "
                         "or more train what the recipe is made for")
        if m.num_frames != n:
            changes["num_frames"] = n
            notes.append(f"model.num_frames {m.num_frames} -> {n}: the model is fed clips of data.clip_frames frames")
    if "audio" in inputs:
        from fakelens.train.engine import audio_width

        width = audio_width(train_dataset)
        pad = audio_padding(train_dataset, width, cc.hop_seconds)
        if pad is not None and pad["videos_with_audio"] == 0:  # every window would be padding alone
            refused.append(
                f"the audio window is {width} mel frames ({pad['window_seconds']:.2f} s) but none of the "
                f"{pad['videos']} training videos of the cache {cache} has a mel frame of audio: every window would "
                "be padding only; preprocess videos with audio, or train a visual-only recipe")
        if pad is not None and pad["videos_short"]:  # windows past the end of the audio are padded (masked)
            every = "every training video has" if pad["videos_short"] == pad["videos"] else (
                f"{pad['videos_short']} of {pad['videos']} training videos have")
            notes.append(f"the audio window is {width} mel frames ({pad['window_seconds']:.2f} s) but {every} less "
                         f"audio (shortest {pad['shortest_seconds']:.2f} s; on average "
                         f"{100 * pad['padded_share']:.0f}% of a window is padding): their windows are padded "
                         "(masked); a shorter data.audio_seconds pads less")
        if width is not None and width != m.audio_frames:
            changes["audio_frames"] = width
            notes.append(f"model.audio_frames {m.audio_frames} -> {width}: the data's audio window is {width} mel "
                         f"frames ({width * cc.hop_seconds:.2f} s)")
        if cc.n_mels != m.n_mels:
            changes["n_mels"] = cc.n_mels
            notes.append(f"model.n_mels {m.n_mels} -> {cc.n_mels}: the cache's log-mels have {cc.n_mels} bands")
    if refused:
        raise refusal_error(cache, refused)
    if changes:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(m, **changes))
    return cfg, notes


def cache_refusals(cfg: TrainConfig, cc: Any) -> list[str]:
    """What makes a cache of face crops (its CacheConfig `cc`) unfit for the recipe, from the two
    configs alone, one line each with both values and the fixes: another crop size than
    model.image_size, another frame sampling or crop kind than data.sampling / data.crop, a
    fixed-count cache of fewer frames than data.clip_frames, clip windows that data.clip_frames
    does not divide (a clip would span two windows). match_inputs says them with the refusals
    that need the videos; build_datasets says them before a dataset refuses the last alone."""
    m, d = cfg.model, cfg.data
    cache = Path(d.cache)
    refused: list[str] = []
    if m.image_size is not None and m.image_size != cc.size:
        refused.append(
            f"the cache {cache} holds {cc.size} px face crops (preprocessed with --size {cc.size}) but "
            f"model.image_size is {m.image_size}: preprocess with --size {m.image_size}, or --set "
            f"model.image_size={cc.size} to train on {cc.size} px crops")
    if d.sampling and cc.sampling != d.sampling:
        refused.append(
            f"the cache {cache} samples {_sampling_words(cc)} (preprocessed with {_sampling_flags(cc)}) but "
            f"the recipe's data.sampling is {d.sampling}: preprocess with "
            + (f"--windows K --window-frames {d.clip_frames} (data.clip_frames, or a multiple of it)" if d.sampling == "windows"
               else _SAMPLING_FLAGS[d.sampling]) + ", or "
            f"--set data.sampling={cc.sampling} to train this recipe on it")
    if d.crop and cc.crop != d.crop:
        refused.append(
            f"the cache {cache} holds {cc.crop} crops (preprocessed with --crop {cc.crop}) but the recipe's "
            f"data.crop is {d.crop}: preprocess with --crop {d.crop}"
            + (" (with --windows K)" if d.crop == "roi" else "") + f", or --set data.crop={cc.crop} to train "
            "this recipe on them")
    if cc.sampling == "frames" and cc.n_frames < d.clip_frames:
        refused.append(
            f"the cache {cache} holds {cc.n_frames} frames per video (preprocessed with --frames {cc.n_frames}) "
            f"but data.clip_frames is {d.clip_frames}: every clip would be padded with copies of the last "
            f"frame; preprocess with --frames {d.clip_frames} or more, or --set data.clip_frames={cc.n_frames} "
            f"--set model.num_frames={cc.n_frames}")
    if _clips_span_windows(cfg, cc):
        refused.append(
            f"the cache {cache} holds clip windows of {cc.window_frames} consecutive frames (preprocessed with "
            f"{_sampling_flags(cc)}) but data.clip_frames is {d.clip_frames}, which does not divide them: a clip "
            f"would span two windows (other moments of the video"
            + (", and other regions" if cc.crop == "roi" else "") + f"); --set data.clip_frames="
            f"{cc.window_frames} (or a divisor of it), or preprocess with --window-frames a multiple of "
            f"{d.clip_frames}")
    return refused


def _clips_span_windows(cfg: TrainConfig, cc: Any) -> bool:
    """Whether data.clip_frames does not divide the cache's clip windows (a clip dataset refuses)."""
    d = cfg.data
    return (getattr(cc, "sampling", None) == "windows" and d.dataset in ("clips", "av", "frames")
            and d.clip_frames >= 1 and bool(cc.window_frames % d.clip_frames))


def refusal_error(cache: Any, refused: list[str]) -> ConfigError:
    """One ConfigError saying every way a cache does not fit the recipe."""
    if len(refused) == 1:
        return ConfigError(refused[0])
    return ConfigError(f"the cache {cache} does not fit the recipe in {len(refused)} ways:\n"
                       + "\n".join(f"  {i}. {why.replace(f'the cache {cache} ', 'it ', 1)}"  # named once, above
                                    for i, why in enumerate(refused, 1)))


# How `fakelens preprocess` is asked for each frame sampling (MediaConfig.sampling)
_SAMPLING_FLAGS = {"frames": "--frames N", "fps": "--fps R", "all": "--all",
                   "windows": "--windows K --window-frames W"}


def _sampling_words(cc: Any) -> str:
    """A cache's frame sampling in words."""
    return {"frames": f"{cc.n_frames} frames evenly spaced over each video",
            "fps": f"{cc.sample_fps:g} frames per second",
            "all": "every frame",
            "windows": f"{cc.n_windows} windows of {cc.window_frames} consecutive frames"}.get(cc.sampling, cc.sampling)


def _sampling_flags(cc: Any) -> str:
    """The preprocess flags that made a cache's frame sampling."""
    return {"frames": f"--frames {cc.n_frames}", "fps": f"--fps {cc.sample_fps:g}", "all": "--all",
            "windows": f"--windows {cc.n_windows} --window-frames {cc.window_frames}"}.get(cc.sampling, cc.sampling)


def audio_padding(train_dataset: Any, width: int | None, hop_seconds: float) -> dict[str, Any] | None:
    """How much of the training audio windows is padding, from the cache's per-video mel frame
    counts (None without a window or counts): the window, the videos with less audio than it, the
    shortest audio, the mean share of a window that is padding. The run records it in
    metrics.json ("padding"), match_inputs says it and refuses a cache leaving no real audio."""
    rows = _rows_of(train_dataset)
    mels = [(r.get("counts") or {}).get("mel_frames") for r in rows]
    mels = [int(n) for n in mels if n is not None]
    if width is None or not mels:
        return None
    short = [n for n in mels if n < width]
    return {"window_mel_frames": int(width), "window_seconds": round(width * hop_seconds, 6), "videos": len(mels),
            "videos_short": len(short), "videos_with_audio": sum(1 for n in mels if n > 0),
            "shortest_seconds": round(min(mels) * hop_seconds, 6),
            "padded_share": round(sum(max(0, width - n) for n in mels) / (width * len(mels)), 6)}


def _rows_of(dataset: Any) -> list[dict[str, Any]]:
    """Index rows of the videos a (possibly wrapped) cache dataset uses."""
    indices = None
    while not hasattr(dataset, "rows") and hasattr(dataset, "base"):
        indices = getattr(dataset, "indices", indices)
        dataset = dataset.base
    rows = list(getattr(dataset, "rows", []))
    return [rows[i] for i in indices] if indices is not None else rows


def recipe_inputs(cfg: TrainConfig) -> tuple[Any, list[str]]:
    """The model config with its counted input sizes set to what the recipe feeds it, and one line
    per change, for `fakelens model info --config RECIPE`: with a cache (data.cache), exactly what
    `fit` adapts (match_inputs, on the training dataset); without one, the clip length and the
    audio window the data section fixes (an AV window that depends on the videos is said)."""
    import dataclasses

    from fakelens.models import MODELS

    m, d = cfg.model, cfg.data
    if d.cache and (Path(d.cache) / "index.jsonl").is_file():
        train, _ = build_datasets(cfg)
        try:
            adapted, notes = match_inputs(cfg, train)
        except ConfigError as e:
            return m, [f"train would refuse this recipe on its cache: {e}"]
        return adapted.model, notes
    inputs = MODELS.get(m.name).inputs
    changes: dict[str, Any] = {}
    notes: list[str] = []
    if "video" in inputs and m.num_frames != d.clip_frames:
        changes["num_frames"] = d.clip_frames
        notes.append(f"model.num_frames {m.num_frames} -> {d.clip_frames}: the model is fed clips of "
                     "data.clip_frames frames")
    if "audio" in inputs:
        seconds = d.audio_seconds if d.audio_seconds is not None else (1.0 if d.dataset == "audio" else None)
        if seconds is None:
            notes.append(f"audio counted at model.audio_frames ({m.audio_frames} mel frames): the data's window "
                         "(data.clip_frames x the videos' frame interval) is known with a cache (--set data.cache=...)")
        else:
            width = max(1, int(round(seconds / 0.010)))  # the default 10 ms hop of the log-mels
            if width != m.audio_frames:
                changes["audio_frames"] = width
                notes.append(f"model.audio_frames {m.audio_frames} -> {width}: the data's audio window is "
                             f"{seconds:g} s")
    return (dataclasses.replace(m, **changes) if changes else m), notes
