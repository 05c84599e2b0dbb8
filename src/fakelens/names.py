"""The names held by registries of torch modules (tasks, poolings, augmentations, optimizers,
schedulers, cache datasets), as static lists: fakelens.registry.check_registered checks a config's
names against them without importing the module, so a wrong name is reported in well under a
second, before torch or Lightning load. Plain data: this core module imports nothing above it.

tests/test_names.py checks every list against its real registry: an entry added there and not
here fails the suite. Model and backbone names: fakelens.models.names.
"""

from __future__ import annotations

# {(module, registry attribute): (the Registry's kind, its names)}: what check_registered
# checks without importing the module.
REGISTRY_NAMES: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("fakelens.tasks.classification", "TASKS"): ("task", ("av", "classification", "localization", "mil")),
    ("fakelens.tasks.pooling", "POOLINGS"): ("MIL pooling", ("lse", "max", "mean", "topk_mean")),
    ("fakelens.train.augment", "VIDEO_AUGMENTS"): (
        "video augmentation", ("blur", "color_jitter", "crop", "cutout", "downscale", "hflip", "jpeg", "noise")),
    ("fakelens.train.augment", "AUDIO_AUGMENTS"): ("audio augmentation", ("freq_mask", "gain", "noise", "time_mask")),
    ("fakelens.train.module", "OPTIMIZERS"): ("optimizer", ("adam", "adamw", "sgd")),
    ("fakelens.train.module", "SCHEDULERS"): ("lr scheduler", ("constant", "cosine", "onecycle", "step")),
    ("fakelens.data.dataset", "CACHE_DATASETS"): ("cache dataset", ("audio", "av", "clips", "features", "frames")),
}
