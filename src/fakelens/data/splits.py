"""Group-aware train/validation splits: a fake and its original never straddle train and val.

DFDC ships no validation split and many fakes share one original; splitting per video would leak
the original's face and background into validation and inflate the score.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

from fakelens.errors import ConfigError
from fakelens.types import VideoRecord


def original_group(record: VideoRecord) -> str:
    """Default group key: the original a fake was made from, or the video itself (a real one)."""
    return record.original or record.id


def split_by_group(
    records: Sequence[VideoRecord],
    val_fraction: float,
    seed: int = 0,
    group: Callable[[VideoRecord], str] = original_group,
) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Split records into (train, val) by whole groups, val holding about `val_fraction` of the videos.

    Deterministic for a given seed and set of records (groups are sorted, then shuffled with the
    seed, then added to val while that brings its size closer to the target). Both parts keep the
    input order. Both are non-empty whenever there are at least two groups.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    members: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        members.setdefault(group(rec), []).append(i)
    if len(members) < 2:
        raise ConfigError(f"cannot split {len(records)} videos into train and val: they form "
                          f"{len(members)} group(s) (fakes are kept with their original)")
    keys = sorted(members)
    random.Random(seed).shuffle(keys)
    target = val_fraction * len(records)
    val_keys: set[str] = set()
    n_val = 0
    for key in keys:
        size = len(members[key])
        if abs(n_val + size - target) < abs(n_val - target):
            val_keys.add(key)
            n_val += size
    if not val_keys:  # every group is larger than twice the target: take the first one
        val_keys.add(keys[0])
    if len(val_keys) == len(keys):  # never leave train empty
        val_keys.discard(keys[-1])
    in_val = {i for key in val_keys for i in members[key]}
    train = [r for i, r in enumerate(records) if i not in in_val]
    val = [r for i, r in enumerate(records) if i in in_val]
    return train, val
