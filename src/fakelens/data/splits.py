"""Group-aware train/validation splits: a fake and its original never straddle train and val.

DFDC ships no validation split and many fakes share one original; splitting per video would leak
the original's face and background into validation and inflate the score.
"""

from __future__ import annotations

import random
from typing import Callable, Sequence

from fakelens.errors import ConfigError
from fakelens.types import Label, VideoRecord


VALIDATION_NAMES = ("val", "valid", "validation", "dev")  # what datasets call their validation split


def canonical_split(name: str | None) -> str | None:
    """The project's name of a split: every validation-like name (LAV-DF's `dev`, the CSV
    competition's `validation`) is "val", as AV-Deepfake1M names it; other names are kept."""
    return "val" if name is not None and name.lower() in VALIDATION_NAMES else name


def original_group(record: VideoRecord) -> str:
    """Default group key: the original a fake was made from, or the video itself (a real one)."""
    return record.original or record.id


def split_by_group(
    records: Sequence[VideoRecord],
    val_fraction: float,
    seed: int = 0,
    group: Callable[[VideoRecord], str] = original_group,
    label: Callable[[VideoRecord], Label] | None = None,
) -> tuple[list[VideoRecord], list[VideoRecord]]:
    """Split records into (train, val) by whole groups, stratified by label: val holds about
    `val_fraction` of the real videos and of the fake ones. `label`: the label to stratify by,
    the one the model learns (fakelens.data.dataset.learned_label: to a face model an audio-only
    fake is real, and a carve by video label could leave training only such fakes); default the
    video label.

    Deterministic for a given seed and set of records: groups are sorted, shuffled with the seed
    and put in strata by their majority label (mostly real, mostly fake, even); each stratum gives
    val about `val_fraction` of its videos (within half its largest group). A class found in two
    or more groups gets at least one video on each side (so a small DFDC part does not end with
    an all-fake validation set); a class in a single group stays in train. Both parts keep the
    input order and are non-empty whenever there are two groups.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ConfigError(f"val_fraction must be in (0, 1), got {val_fraction}")
    label_of = label or (lambda rec: rec.label)
    members: dict[str, list[int]] = {}
    for i, rec in enumerate(records):
        members.setdefault(group(rec), []).append(i)
    if len(members) < 2:
        raise ConfigError(f"cannot split {len(records)} videos into train and val: they form "
                          f"{len(members)} group(s) (fakes are kept with their original)")
    keys = sorted(members)
    random.Random(seed).shuffle(keys)

    def counts(key: str) -> tuple[int, int]:  # (real, fake) videos of a group
        labels = [label_of(records[i]) for i in members[key]]
        return sum(lab is Label.REAL for lab in labels), sum(lab is Label.FAKE for lab in labels)

    per = {k: counts(k) for k in keys}
    total = [sum(c[j] for c in per.values()) for j in (0, 1)]
    spread = [sum(1 for c in per.values() if c[j]) for j in (0, 1)]  # groups holding each class

    val_keys: list[str] = []
    n = [0, 0, 0]  # val's real, fake, unlabelled counts

    def size(key: str) -> tuple[int, int, int]:
        r, f = per[key]
        return r, f, len(members[key]) - r - f

    def keeps_train(m: Sequence[int]) -> bool:  # train keeps every class it had, and some video
        return all(m[j] < total[j] or total[j] == 0 for j in (0, 1)) and sum(m) < len(records)

    # Stratified by label within the grouping: groups are ranked by their share of fakes (all-real
    # originals, originals with a few fakes, ...); each stratum gives val about val_fraction of its
    # videos, taking its groups in the seeded order while that brings val closer to the target.
    strata: dict[str, list[str]] = {}
    for key in keys:
        r, f = per[key]
        strata.setdefault("real" if r > f else "fake" if f > r else "even", []).append(key)
    for name in sorted(strata):
        group_keys = strata[name]
        want = val_fraction * sum(len(members[k]) for k in group_keys)
        got = 0
        for key in group_keys:
            grown = [a + b for a, b in zip(n, size(key))]
            if abs(got + len(members[key]) - want) < abs(got - want) and keeps_train(grown):
                val_keys.append(key)
                n = grown
                got += len(members[key])
    for j in (0, 1):  # a class spread over groups but missing from val: its smallest group joins
        if spread[j] >= 2 and n[j] == 0:
            for key in sorted((k for k in keys if k not in val_keys and per[k][j]), key=lambda k: len(members[k])):
                grown = [a + b for a, b in zip(n, size(key))]
                if keeps_train(grown):
                    val_keys.append(key)
                    n = grown
                    break
    if not val_keys:  # every group is larger than twice the target: the smallest that keeps train whole
        key = min((k for k in keys if keeps_train(size(k))), key=lambda k: len(members[k]), default=keys[0])
        val_keys.append(key)
    if len(val_keys) == len(keys):  # never leave train empty
        val_keys.pop()
    in_val = {i for key in val_keys for i in members[key]}
    train = [r for i, r in enumerate(records) if i not in in_val]
    val = [r for i, r in enumerate(records) if i in in_val]
    return train, val


def class_counts(records: Sequence[VideoRecord]) -> tuple[int, int]:
    """(real, fake) videos among records (unlabelled ones are in neither)."""
    return (sum(r.label is Label.REAL for r in records), sum(r.label is Label.FAKE for r in records))
