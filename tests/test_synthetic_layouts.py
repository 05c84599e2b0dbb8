"""The synthetic generator's dataset layouts, each read back by its own format reader: every video's
label, split, original and segments are what the generator planned."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fakelens.data.formats import detect_format, load_dataset
from fakelens.data.synthetic import generate, plan_videos, preset
from fakelens.data.synthetic.config import LAYOUTS
from fakelens.data.synthetic.layouts import DFDC_SOURCES_PER_PART, LAYOUT_WRITERS
from fakelens.errors import ConfigError
from fakelens.types import Label, Modality

FAST = dict(size=(64, 64), duration=(1.0, 1.0))


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """layout -> (root, plans): the tiny preset written in that layout (generated once per layout)."""
    cache: dict[str, tuple[Path, list]] = {}

    def get(layout: str):
        if layout not in cache:
            config = preset("tiny", layout=layout, **FAST)
            root = generate(tmp_path_factory.mktemp(layout) / "data", config, progress=False)
            cache[layout] = (root, plan_videos(config))
        return cache[layout]

    return get


def test_every_layout_name_has_a_writer():
    assert sorted(LAYOUTS) == LAYOUT_WRITERS.names()


@pytest.mark.parametrize("layout", LAYOUTS)
def test_layout_is_detected_as_its_format_and_lists_every_video(written, layout):
    root, plans = written(layout)
    assert detect_format(root) == layout
    ds = load_dataset(root)
    assert {r.path.resolve() for r in ds.records} == {(root / p.file).resolve() for p in plans}
    assert all((root / p.file).is_file() for p in plans)
    manifest = json.loads((root / "synthetic.json").read_text())
    assert all((root / f).is_file() for f in manifest["files"])


def test_dfdc_layout_round_trips(written):
    root, plans = written("dfdc")
    by_name = {Path(p.file).name: p for p in plans}
    ds = load_dataset(root)
    assert ds.format == "dfdc"
    for rec in ds.records:
        p = by_name[rec.id]
        if p.split == "test":  # sample_submission.csv: the videos to score, no labels
            assert rec.label is Label.UNKNOWN and rec.path.parent.name == "test_videos"
            continue
        assert rec.label is (Label.FAKE if p.fake else Label.REAL)
        assert rec.split == p.split
        assert rec.original == (Path(p.original).name if p.original else None)
        if p.fake:  # a fake sits in its original's part folder, as in DFDC
            assert (rec.path.parent / rec.original).is_file()
    test = [p for p in plans if p.split == "test"]
    assert ds.expected_ids == sorted(Path(p.file).name for p in test)
    sample = (root / "sample_submission.csv").read_text().splitlines()
    assert sample[0] == "filename,label" and all(row.endswith(",0.5") for row in sample[1:])
    # the test ground truth, as DFDC released it for its public test set
    truth = load_dataset(root / "labels.csv")
    assert {r.id: (r.label, r.split) for r in truth.records} == {
        Path(p.file).name: (Label.FAKE if p.fake else Label.REAL, "test") for p in test}
    assert all(r.path.is_file() for r in truth.records)
    meta = json.loads((root / "dfdc_train_part_0" / "metadata.json").read_text())
    for name, entry in meta.items():
        assert len(name) == 14 and name[:10].isalpha() and name[:10].islower()
        assert set(entry) == {"label", "split", "original"} and entry["label"] in ("REAL", "FAKE")
        assert (entry["original"] is None) == (entry["label"] == "REAL")


def test_dfdc_parts_group_each_real_with_its_fakes():
    plans = plan_videos(preset("demo", layout="dfdc"))
    by_file = {p.file: p for p in plans}
    parts = {Path(p.file).parent.name for p in plans if p.split != "test"}
    n_train_reals = sum(p.split == "train" and p.fake is None for p in plans)
    assert len(parts) >= 2 and n_train_reals > DFDC_SOURCES_PER_PART
    for p in plans:
        if p.fake is not None:
            assert Path(p.original).parent == Path(p.file).parent and by_file[p.original].fake is None
        reals_here = [q for q in plans if Path(q.file).parent == Path(p.file).parent and q.fake is None]
        if p.split != "test":
            assert len(reals_here) <= DFDC_SOURCES_PER_PART
            assert {q.split for q in plans if Path(q.file).parent == Path(p.file).parent} == {p.split}
    names = [Path(p.file).name for p in plans]
    assert len(set(names)) == len(names)
    assert sorted(names) != names  # random names: the order reveals nothing


def test_lavdf_layout_round_trips(written):
    root, plans = written("lavdf")
    by_file = {p.file: p for p in plans}
    ds = load_dataset(root)
    assert ds.format == "lavdf"
    assert {r.id for r in ds.records} == set(by_file)
    for rec in ds.records:
        p = by_file[rec.id]
        assert rec.split == p.split  # LAV-DF's dev split (its folder, dev/) is read as val
        assert rec.path.parent.name == {"val": "dev"}.get(p.split, p.split)
        assert rec.label is (Label.FAKE if p.fake else Label.REAL)
        assert rec.modality is p.modality and rec.original == p.original
        assert rec.segments == p.segments and rec.n_frames == p.source.n_frames
        assert rec.duration == pytest.approx(p.source.duration)
    entries = json.loads((root / "metadata.json").read_text())
    keys = {"file", "n_fakes", "fake_periods", "duration", "original", "modify_video", "modify_audio", "split",
            "video_frames", "audio_channels", "audio_frames"}
    assert all(set(e) == keys for e in entries)
    assert {e["split"] for e in entries} == {"train", "dev", "test"}
    both = [e for e in entries if by_file[e["file"]].modality is Modality.BOTH]
    assert both and all(e["modify_video"] and e["modify_audio"] for e in both)


def test_csv_and_avdeepfake1m_round_trip_labels(written):
    for layout in ("csv", "avdeepfake1m"):
        root, plans = written(layout)
        by_path = {(root / p.file).resolve(): p for p in plans}
        for rec in load_dataset(root).records:
            p = by_path[rec.path.resolve()]
            assert rec.split == p.split and rec.is_fake == (p.fake is not None)


@pytest.mark.parametrize("layout", ["avdeepfake1m", "lavdf"])
def test_25_fps_layouts_refuse_other_frame_rates(layout):
    with pytest.raises(ConfigError, match="25 fps"):
        preset("tiny", layout=layout, fps=30, sample_rate=16200)


def test_cli_synth_dfdc_then_inspect(tmp_path, capsys):
    from fakelens.cli.main import main

    out = tmp_path / "dfdc"
    args = ["--preset", "tiny", "--size", "64", "--duration", "1", "--quiet", "--layout", "dfdc"]
    assert main(["data", "synth", str(out), *args]) == 0
    assert (out / "sample_submission.csv").is_file() and (out / "dfdc_train_part_0" / "metadata.json").is_file()
    capsys.readouterr()
    assert main(["data", "inspect", str(out), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["format"] == "dfdc" and summary["videos"] == 8
