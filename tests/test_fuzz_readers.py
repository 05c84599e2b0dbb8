"""Property-based tests (hypothesis) of every reader: dataset metadata (DFDC, AV-Deepfake1M, LAV-DF),
CSV labels, real/fake folders, and every submission reader. Whatever the file holds, a reader
returns well-formed records or raises the project's own error (a FakelensError naming the file);
never a KeyError, TypeError, OSError or JSONDecodeError from inside.

The inputs mix plausible structure (the keys and values each format uses) with arbitrary JSON,
text and bytes, so that hypothesis reaches the checks behind the first one. Each bug these tests
found has its minimal example pinned below with @example."""

from __future__ import annotations

import json
import math
import os
import tempfile
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fakelens.data.formats import FORMATS, load_dataset
from fakelens.data.formats.base import detect_format
from fakelens.errors import FakelensError
from fakelens.submission import SUBMISSION_FORMATS, check_submission, expected_ids_from, read_submission
from fakelens.types import Label, Modality, Segment, VideoRecord

# FAKELENS_FUZZ_EXAMPLES=2000 searches deeper (the suite keeps a cheap default).
FUZZ = settings(max_examples=int(os.environ.get("FAKELENS_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])

# ----------------------------------------------------------------------------------- building blocks

scalars = (st.none() | st.booleans() | st.integers(-10**6, 10**6) | st.floats(allow_nan=True, allow_infinity=True)
           | st.text(max_size=8))
json_values = st.recursive(scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=6), c,
                                                                                           max_size=3), max_leaves=8)
# File names: ordinary, nested, escaping, absolute, over the 255-byte limit, with a NUL, unicode, blank.
names = st.sampled_from(["a.mp4", "000001.mp4", "train/000002.mp4", "../up.mp4", "/abs/x.mp4", "x" * 300 + ".mp4",
                         "nul\x00.mp4", "é ü.mp4", "-lead.mp4", "", " ", "dir/", ".", "a.MP4"]) | st.text(max_size=10)
numbers = st.floats(allow_nan=True, allow_infinity=True) | st.integers(-5, 10**4) | st.floats(0, 20)
pairs = st.lists(numbers, min_size=0, max_size=3)
segment_lists = st.lists(pairs, max_size=3) | st.just([[0.2, 0.8]]) | json_values


def entry(keys: dict) -> st.SearchStrategy:
    """A JSON object holding some of `keys` (plausible values) and maybe an arbitrary extra key."""
    return st.fixed_dictionaries({}, optional={**keys, "extra": json_values})


def dump(value) -> str:
    """JSON text as other tools write it (NaN and Infinity tokens included: Python's json reads them)."""
    return json.dumps(value, allow_nan=True)


@contextmanager
def folder():
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def check_dataset(ds) -> None:
    """What every reader's Dataset promises."""
    ids = [r.id for r in ds.records]
    assert len(ids) == len(set(ids))
    for r in ds.records:
        assert isinstance(r, VideoRecord) and isinstance(r.id, str) and r.id.strip()
        assert isinstance(r.label, Label) and isinstance(r.modality, Modality)
        for seg in (*r.segments, *r.visual_segments, *r.audio_segments):
            assert isinstance(seg, Segment) and math.isfinite(seg.end) and 0 <= seg.start < seg.end
        if r.label is Label.REAL:
            assert not r.segments
    if ds.expected_ids is not None:
        assert len(ds.expected_ids) == len(set(ds.expected_ids))


def read(path: Path, fmt: str | None, **kw) -> None:
    """load_dataset must give a valid Dataset or a FakelensError; nothing else."""
    try:
        ds = load_dataset(path, format=fmt, **kw)
    except FakelensError as e:
        assert str(e)
        return
    check_dataset(ds)


read_options = st.fixed_dictionaries({"check_files": st.booleans(), "allow_missing": st.booleans(),
                                      "split": st.sampled_from([None, "train", "val", "test", "dev"])})

# ----------------------------------------------------------------------------------- DFDC

dfdc_entry = entry({"label": st.sampled_from(["REAL", "FAKE", "fake", "0", "1", "", "maybe"]) | json_values,
                    "split": st.sampled_from(["train", "val", "test"]) | json_values,
                    "original": names | json_values})
dfdc_metadata = st.dictionaries(names, dfdc_entry | json_values, max_size=4) | json_values


@FUZZ
@given(meta=dfdc_metadata, opts=read_options, make_files=st.booleans())
@example(meta={"a.mp4": {"label": "FAKE", "original": "x" * 300 + ".mp4"}},
         opts={"check_files": True, "allow_missing": False, "split": None}, make_files=False)
def test_dfdc_metadata(meta, opts, make_files):
    with folder() as root:
        part = root / "dfdc_train_part_0"
        part.mkdir()
        (part / "metadata.json").write_text(dump(meta))
        if make_files and isinstance(meta, dict):
            touch_safe(part, meta)
        read(part / "metadata.json", "dfdc", **opts)
        read(root, None, **opts)


def touch_safe(base: Path, listed) -> None:
    """Create empty files for the listed names the file system can hold (others stay missing)."""
    for name in listed:
        if not isinstance(name, str):
            continue
        try:
            p = (base / name).resolve()
            if base.resolve() in p.parents:
                p.parent.mkdir(parents=True, exist_ok=True)
                p.touch()
        except (OSError, ValueError):
            pass


# ----------------------------------------------------------------------------------- AV-Deepfake1M

av1m_entry = entry({
    "file": names | json_values,
    "modify_type": st.sampled_from(["real", "visual_modified", "audio_modified", "both_modified", "both-modified",
                                    "other"]) | json_values,
    "fake_segments": segment_lists, "visual_fake_segments": segment_lists, "audio_fake_segments": segment_lists,
    "video_frames": numbers | json_values, "audio_frames": numbers, "split": json_values, "original": json_values,
    "audio_model": json_values})
av1m_metadata = st.lists(av1m_entry, max_size=4) | st.lists(names, max_size=4) | json_values


@FUZZ
@given(meta=av1m_metadata, split=st.sampled_from(["train", "val", "test"]), opts=read_options,
       listing=st.none() | st.lists(names, max_size=4), make_split_dir=st.booleans())
@example(meta=[{"file": "x" * 300 + ".mp4", "modify_type": "real", "fake_segments": []}], split="train",
         opts={"check_files": False, "allow_missing": False, "split": None}, listing=None, make_split_dir=True)
@example(meta=[{"file": "a.mp4", "modify_type": "visual_modified", "fake_segments": [[0.0, 1e308]]}], split="train",
         opts={"check_files": False, "allow_missing": False, "split": None}, listing=None, make_split_dir=False)
def test_avdeepfake1m_metadata(meta, split, opts, listing, make_split_dir):
    with folder() as root:
        (root / f"{split}_metadata.json").write_text(dump(meta))
        if listing is not None:
            (root / "test_files.txt").write_text("\n".join(n.replace("\n", " ") for n in listing), errors="replace")
        if make_split_dir:
            (root / split).mkdir()
        read(root / f"{split}_metadata.json", "avdeepfake1m", **opts)
        read(root, None, **opts)


# ----------------------------------------------------------------------------------- LAV-DF

lavdf_entry = entry({
    "file": names | json_values, "fake_periods": segment_lists, "visual_fake_periods": segment_lists,
    "audio_fake_periods": segment_lists, "modify_video": st.booleans() | json_values,
    "modify_audio": st.booleans() | json_values, "n_fakes": numbers | json_values,
    "duration": numbers | json_values, "video_frames": numbers | json_values,
    "split": st.sampled_from(["train", "dev", "test"]) | json_values, "original": json_values})
lavdf_metadata = st.lists(lavdf_entry, max_size=4) | json_values


@FUZZ
@given(meta=lavdf_metadata, opts=read_options, min_name=st.booleans())
def test_lavdf_metadata(meta, opts, min_name):
    with folder() as root:
        name = "metadata.min.json" if min_name else "metadata.json"
        (root / name).write_text(dump(meta))
        read(root / name, "lavdf", **opts)
        read(root, None, **opts)


# ----------------------------------------------------------------------------------- CSV labels

cells = st.text(max_size=8) | st.sampled_from(["0", "1", " 1 ", "2", "fake", "", '"', '""', "a,b", "a\nb", "-1"])
headers = st.sampled_from([["video_name", "target"], ["Video_Name", "Target "], ["video_name"],
                           ["video_name", "target", "extra"], ["filename", "label"], ["name", "y"], []])


@st.composite
def csv_texts(draw, header_strategy=headers):
    header = draw(header_strategy)
    rows = draw(st.lists(st.lists(cells, min_size=0, max_size=4), max_size=5))
    sep = draw(st.sampled_from([",", ";", "\t"]))
    eol = draw(st.sampled_from(["\n", "\r\n", "\r"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    body = eol.join(sep.join(r) for r in [header, *rows])
    return bom + body + draw(st.sampled_from(["", eol]))


@FUZZ
@given(text=csv_texts(), stem=st.sampled_from(["train_labels", "validation_labels", "valset_label", "test_labels"]),
       suffix=st.sampled_from([".csv", ".txt"]), opts=read_options, raw=st.none() | st.binary(max_size=64))
@example(text="video_name,target\nx,1\n", stem="train_labels", suffix=".csv",
         opts={"check_files": True, "allow_missing": True, "split": None}, raw=b"video_name,target\n\xff\xfe,1\n")
def test_csv_labels(text, stem, suffix, opts, raw):
    with folder() as root:
        path = root / (stem + suffix)
        if raw is not None:
            path.write_bytes(raw)
        else:
            path.write_text(text, encoding="utf-8", newline="")
        read(path, "csv", **opts)
        read(root, None, **opts)


@FUZZ
@given(text=csv_texts(st.sampled_from([["filename", "label"], ["filename", "label", "x"], ["filename"]])),
       name=st.sampled_from(["sample_submission.csv", "labels.csv"]), opts=read_options)
def test_dfdc_csv(text, name, opts):
    with folder() as root:
        path = root / name
        path.write_text(text, encoding="utf-8", newline="")
        read(path, "dfdc", **opts)
        read(root, None, **opts)


# ----------------------------------------------------------------------------------- folders

file_names = st.text(st.characters(blacklist_characters="/\x00", blacklist_categories=("Cs",)), min_size=1,
                     max_size=12).filter(lambda s: s not in (".", ".."))


@FUZZ
@given(layout=st.lists(st.tuples(st.sampled_from(["real", "fake", "REAL", "train/real", "val/fake", "x/y/fake",
                                                  "other"]),
                                 file_names, st.sampled_from([".mp4", ".MOV", ".txt", ""])), max_size=6),
       fmt=st.sampled_from([None, "folders", "csv"]), split=st.sampled_from([None, "train", "val"]))
def test_folders(layout, fmt, split):
    with folder() as root:
        for sub, name, ext in layout:
            d = root / sub
            d.mkdir(parents=True, exist_ok=True)
            try:
                (d / (name + ext)).touch()
            except OSError:  # a name this file system refuses (too long in bytes): not the reader's input
                pass
        read(root, fmt, split=split)


# ----------------------------------------------------------------------------------- any file, any format


@FUZZ
@given(data=st.binary(max_size=200) | st.text(max_size=200).map(str.encode),
       name=st.sampled_from(["metadata.json", "train_metadata.json", "metadata.min.json", "train_labels.csv",
                             "test_files.txt", "sample_submission.csv", "prediction.json", "x.mp4"]),
       fmt=st.sampled_from([None, *FORMATS.names()]))
def test_any_bytes_as_any_label_file(data, name, fmt):
    with folder() as root:
        (root / name).write_bytes(data)
        read(root / name, fmt, check_files=False)
        read(root, fmt, check_files=False)
        try:
            detect_format(root)
        except FakelensError:
            pass


# ----------------------------------------------------------------------------------- submissions

score_texts = st.sampled_from(["0.5", "1", "0", "nan", "inf", "-0.1", "1.5", "1e-3", "", "x", " 0.2 "]) | st.text(
    max_size=5)
sub_ids = names.map(lambda s: s.replace("\x00", "")) | st.text(max_size=8)


@st.composite
def score_files(draw):
    kind = draw(st.sampled_from(["dfdc", "csv", "task1"]))
    rows = draw(st.lists(st.tuples(sub_ids, score_texts), max_size=5))
    eol = draw(st.sampled_from(["\n", "\r\n"]))
    bom = draw(st.sampled_from(["", "\ufeff"]))
    if kind == "task1":
        return bom + eol.join(f"{i};{s}" for i, s in rows)
    header = draw(st.sampled_from([{"dfdc": "filename,label", "csv": "video_name,score"}[kind], "a,b", ""]))
    quote = draw(st.booleans())
    lines = [f'"{i}",{s}' if quote else f"{i},{s}" for i, s in rows]
    return bom + eol.join([header, *lines])


proposal_values = (st.lists(st.lists(numbers | json_values, max_size=4), max_size=3)
                   | st.lists(st.tuples(st.floats(0, 1), st.floats(0, 5), st.floats(5.01, 9)).map(list), max_size=3)
                   | json_values)


@st.composite
def proposal_files(draw):
    how = draw(st.sampled_from(["json", "compact", "raw", "truncated"]))
    value = draw(st.dictionaries(sub_ids, proposal_values, max_size=4) | json_values)
    if how == "raw":
        return draw(st.text(alphabet='{}[]":,0123456789.eE+- \n\\abu', max_size=60))
    text = dump(value) if how == "json" else json.dumps(value, separators=(",", ":"), allow_nan=True)
    if how == "truncated":
        text = text[: draw(st.integers(0, len(text)))]
    return text


@FUZZ
@given(text=score_files() | proposal_files(), fmt=st.sampled_from([None, *SUBMISSION_FORMATS.names()]),
       strict=st.booleans(), expected=st.none() | st.lists(st.sampled_from(["a.mp4", "000001.mp4", "x"]),
                                                            unique=True, max_size=3),
       suffix=st.sampled_from([".csv", ".txt", ".json"]), raw=st.none() | st.binary(max_size=40))
@example(text='{"a\\q": [[0.5, 0.0, 1.0]]}', fmt=None, strict=True, expected=None, suffix=".json", raw=None)
@example(text="", fmt="avdf1m-task2", strict=True, expected=None, suffix=".json", raw=b'{"\xff": [[0.5, 0, 1]]}')
def test_submission_readers(text, fmt, strict, expected, suffix, raw):
    with folder() as root:
        path = root / f"pred{suffix}"
        if raw is not None:
            path.write_bytes(raw)
        else:
            path.write_text(text, encoding="utf-8", errors="surrogatepass", newline="")
        try:
            sub = read_submission(path, fmt, strict=strict)
        except FakelensError as e:
            assert str(e)
            return
        assert len(sub.ids) == len(set(sub.ids))
        if sub.scores is not None:
            assert len(sub.scores) == len(sub.ids)
            assert all(0.0 <= s <= 1.0 for s in sub.scores.tolist())
        else:
            rows = sub.proposals.rows
            assert len(sub.proposals.offsets) == len(sub.ids) + 1
            assert ((rows[:, 0] >= 0) & (rows[:, 0] <= 1) & (rows[:, 1] >= 0) & (rows[:, 1] < rows[:, 2])).all()
        try:
            check_submission(sub, expected, strict=strict)
        except FakelensError as e:
            assert str(e)


@FUZZ
@given(text=proposal_files())
@example(text='{"a\x01": [[0.5, 0.0, 1.0]]}')  # a raw control character in a key: not JSON
def test_fast_proposal_parser_agrees_with_json(text):
    """The vectorised parser of prediction.json gives exactly what `json` gives, or hands over to it."""
    from fakelens.submission.proposals import fast_parse

    raw = text.encode("utf-8", "surrogatepass")
    try:
        expected = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        expected = None
    got = fast_parse(raw)
    if got is None:
        return
    assert expected is not None, f"fast_parse accepted what json rejects: {text!r}"
    ids, counts, values = got
    assert ids == list(expected)
    flat = [float(x) for rows in expected.values() for row in rows for x in row]
    assert values.reshape(-1).tolist() == pytest.approx(flat, nan_ok=True, rel=0, abs=0)
    assert counts.tolist() == [len(v) for v in expected.values()]


@FUZZ
@given(data=st.binary(max_size=120) | csv_texts().map(str.encode) | proposal_files().map(
    lambda t: t.encode("utf-8", "surrogatepass")),
       name=st.sampled_from(["sample_submission.csv", "ids.txt", "test_files.txt", "x.json", "labels.csv"]))
def test_expected_ids_from_anything(data, name):
    with folder() as root:
        (root / name).write_bytes(data)
        for source in (root / name, root):
            try:
                ids = expected_ids_from(source)
            except FakelensError:
                continue
            assert all(isinstance(i, str) for i in ids)

