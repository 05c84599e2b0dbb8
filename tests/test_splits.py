"""Group-aware splits: fakes never straddle train/val with their original; deterministic; near the fraction."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fakelens.data.formats import load_dataset
from fakelens.data.splits import original_group, split_by_group
from fakelens.errors import ConfigError
from fakelens.types import Label, VideoRecord


def dfdc_like(n_originals: int = 60, seed: int = 1) -> list[VideoRecord]:
    """Originals with 0-5 fakes each, shuffled like a DFDC metadata.json."""
    rng = random.Random(seed)
    records = []
    for i in range(n_originals):
        real = f"real{i:03d}.mp4"
        records.append(VideoRecord(real, None, Label.REAL))
        records += [VideoRecord(f"fake{i:03d}_{k}.mp4", None, Label.FAKE, original=real)
                    for k in range(rng.randint(0, 5))]
    rng.shuffle(records)
    return records


@pytest.mark.parametrize("fraction", [0.1, 0.2, 0.5])
def test_no_group_leaks_and_fraction(fraction):
    records = dfdc_like()
    train, val = split_by_group(records, fraction, seed=3)
    assert {original_group(r) for r in train}.isdisjoint(original_group(r) for r in val)
    assert sorted(r.id for r in train + val) == sorted(r.id for r in records)
    largest = 6  # an original and 5 fakes
    assert abs(len(val) - fraction * len(records)) <= largest / 2
    # input order is kept inside each part
    order = {r.id: i for i, r in enumerate(records)}
    assert [order[r.id] for r in val] == sorted(order[r.id] for r in val)


def test_deterministic_and_seeded():
    records = dfdc_like()
    a = split_by_group(records, 0.2, seed=0)
    assert a == split_by_group(records, 0.2, seed=0)
    # membership depends on the set of records, not their order
    assert {r.id for r in split_by_group(list(reversed(records)), 0.2, seed=0)[1]} == {r.id for r in a[1]}
    assert {r.id for r in split_by_group(records, 0.2, seed=1)[1]} != {r.id for r in a[1]}


def test_custom_group_and_small_inputs():
    records = [VideoRecord(f"{spk}_{k}.mp4", None, Label.REAL) for spk in "abcd" for k in range(3)]
    train, val = split_by_group(records, 0.01, seed=0, group=lambda r: r.id.split("_")[0])
    assert len(val) == 3 and len(train) == 9  # at least one group in val
    with pytest.raises(ConfigError, match="1 group"):
        split_by_group(records[:3], 0.5, group=lambda r: r.id.split("_")[0])
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ConfigError, match="val_fraction"):
            split_by_group(records, bad)


def test_on_dfdc_fixture():
    ds = load_dataset(Path(__file__).parent / "data" / "formats" / "dfdc")
    train, val = split_by_group(ds.records, 0.5, seed=0)
    groups = [{original_group(r) for r in part} for part in (train, val)]
    assert groups[0].isdisjoint(groups[1]) and train and val
