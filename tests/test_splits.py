"""Group-aware splits: fakes never straddle train/val with their original; deterministic; near the fraction."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from fakelens.data.formats import load_dataset
from fakelens.data.splits import class_counts, original_group, split_by_group
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
    # Stratified: each stratum (mostly-real groups: lone originals; mostly-fake groups: an original
    # and up to 5 fakes) is within half its largest group of its share.
    assert abs(len(val) - fraction * len(records)) <= 0.5 * 1 + 0.5 * 6
    # input order is kept inside each part
    order = {r.id: i for i, r in enumerate(records)}
    assert [order[r.id] for r in val] == sorted(order[r.id] for r in val)


@pytest.mark.parametrize("seed", range(8))
def test_a_small_dfdc_part_gets_both_classes_on_both_sides(seed):
    """2 fakes whose originals are in another part and 2 reals: the old carve (by group, not
    stratified) gave an all-fake validation set for seeds 0-3, and training crashed after an epoch."""
    records = [VideoRecord("fake_a.mp4", None, Label.FAKE, original="elsewhere_a.mp4"),
               VideoRecord("real_b.mp4", None, Label.REAL),
               VideoRecord("fake_c.mp4", None, Label.FAKE, original="elsewhere_c.mp4"),
               VideoRecord("real_d.mp4", None, Label.REAL)]
    train, val = split_by_group(records, 0.15, seed=seed)
    assert class_counts(train) == (1, 1) and class_counts(val) == (1, 1)


def test_the_carve_is_stratified_by_label():
    """Val's share of fakes follows the data's (DFDC-like groups, many seeds and fractions)."""
    worst = 0.0
    for seed in range(12):
        records = dfdc_like(seed=seed + 1)
        real, fake = class_counts(records)
        for fraction in (0.1, 0.2, 0.5):
            train, val = split_by_group(records, fraction, seed=seed)
            r, f = class_counts(val)
            worst = max(worst, abs(f / (r + f) - fake / (real + fake)))
            assert r and f and all(class_counts(train))
    assert worst < 0.07  # unstratified: up to 0.14


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


def test_the_carve_is_stratified_by_the_label_the_model_learns():
    """A face model learns the visual label: to it an audio-only fake is real. Stratified by the
    video label the carve put the one visual fake's group into validation for some seeds, leaving
    training only the audio-only fake (every visual label real: refused); by the learned label the
    visual fake stays in training for every seed, and two visual-fake groups give one to each side."""
    from fakelens.data.dataset import learned_label
    from fakelens.types import Modality, Segment

    seg = (Segment(0.2, 0.8),)

    def fake(name: str, original: str, modality: Modality) -> VideoRecord:
        own = {"visual_segments": seg} if modality is Modality.VISUAL else {"audio_segments": seg}
        return VideoRecord(name, None, Label.FAKE, original=original, modality=modality, segments=seg, **own)

    records = [VideoRecord("a.mp4", None, Label.REAL), fake("a_face.mp4", "a.mp4", Modality.VISUAL),
               VideoRecord("b.mp4", None, Label.REAL), fake("b_voice.mp4", "b.mp4", Modality.AUDIO)]
    visual = lambda r: learned_label(r, "visual")  # noqa: E731
    assert [visual(r) for r in records] == [Label.REAL, Label.FAKE, Label.REAL, Label.REAL]
    assert learned_label(records[3], "audio") is Label.FAKE and learned_label(records[3], None) is Label.FAKE
    by_video = [split_by_group(records, 0.1, seed=s)[0] for s in range(8)]
    assert any("a_face.mp4" not in {r.id for r in train} for train in by_video)  # the old carve's failure
    for seed in range(8):
        train, val = split_by_group(records, 0.1, seed=seed, label=visual)
        assert "a_face.mp4" in {r.id for r in train} and val
    more = records + [VideoRecord("c.mp4", None, Label.REAL), fake("c_face.mp4", "c.mp4", Modality.VISUAL)]
    for seed in range(8):
        train, val = split_by_group(more, 0.1, seed=seed, label=visual)
        assert any(visual(r) is Label.FAKE for r in train) and any(visual(r) is Label.FAKE for r in val)
