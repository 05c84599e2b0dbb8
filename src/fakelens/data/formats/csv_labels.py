"""CSV labels (the multimedia deepfake competition): `video_name,target` files, 1 = fake.

Label files: any `.csv` or `.txt` at the top of the folder whose header is `video_name,target`
(e.g. `train_labels.csv`, `validation_labels.csv`, `trainset_label.txt`), or one such file given
alone. The split is the file name without its `_label(s)` suffix and a trailing "set", with
validation-like names (val, valid, validation, dev) given as "val", as AV-Deepfake1M names it
(`train_labels.csv` -> "train", `validation_labels.csv` and `valset_label.txt` -> "val").

Where the videos are, searched once per label file, first match wins:
1. a folder beside the label file named after the split: `<split>/`, `<split>set/`, and for
   validation-like splits (val, valid, validation, dev) any of those names (+ "set");
2. otherwise beside the label file itself.

Unlabeled test videos: a `test/` (or `testset/`) folder beside the label files, when no label file
has split "test", is read as Label.UNKNOWN records with `expected_ids` = their paths relative to
that folder. A folder holding videos and no label file at all, read with format="csv"
(CLI: --format csv), is such a test set itself (auto-detection does not claim bare video folders).
The labels do not say which stream was manipulated: fakes get Modality.UNKNOWN, noted.
"""

from __future__ import annotations

import re
from pathlib import Path

from fakelens.data.formats.base import (
    FORMATS,
    VIDEOS_LOOKED_FOR,
    FormatReader,
    RecordCollector,
    csv_header,
    find_videos,
    first_dir,
    read_csv,
    rel_source,
)
from fakelens.errors import FormatError
from fakelens.types import Label, VideoRecord

HEADER = ["video_name", "target"]
VAL_ALIASES = ("val", "valid", "validation", "dev")
TEST_DIRS = ("test", "testset")
_SUFFIX_RE = re.compile(r"[_\-.]?labels?$", re.IGNORECASE)
MODALITY_NOTE = "CSV labels do not say which stream was manipulated: the stream of every fake is unknown"


def _has_label_columns(header: list[str] | None) -> bool:
    """Both label columns, in any order and beside any others (the reader reads cells by name)."""
    return bool(header) and set(HEADER) <= set(header)


def _is_label_file(path: Path) -> bool:
    return path.suffix.lower() in (".csv", ".txt") and path.is_file() and _has_label_columns(csv_header(path))


def _label_files(folder: Path) -> list[Path]:
    try:
        return sorted(p for p in folder.iterdir() if not p.name.startswith(".") and _is_label_file(p))
    except OSError as e:
        raise FormatError(folder, f"cannot list folder: {e.strerror or e}") from None


def split_of(label_file: Path) -> str:
    """`train_labels.csv` -> "train", `validation_labels.csv` / `valset_label.txt` -> "val"."""
    stem = _SUFFIX_RE.sub("", label_file.stem) or label_file.stem
    if stem.lower().endswith("set") and len(stem) > 3:
        stem = stem[:-3]
    return "val" if stem.lower() in VAL_ALIASES else stem


def video_dir(label_file: Path, split: str) -> Path:
    """Where a label file's videos are (see the module docstring for the search order)."""
    names = [split, split + "set"]
    if split.lower() in VAL_ALIASES:
        names += [n + s for n in VAL_ALIASES for s in ("", "set")]
    return first_dir(label_file.parent, names) or label_file.parent


@FORMATS.register("csv")
class CsvLabelsReader(FormatReader):
    """video_name,target label files (+ an optional unlabeled test folder)."""

    name = "csv"
    looks_for = ("a .csv/.txt label file with header video_name,target (e.g. train_labels.csv), videos in "
                 "train/ valid/ validation/ or beside it (a bare folder of videos: `predict` scores it as it "
                 "is; `data inspect` reads it as a CSV test set with --format csv)")

    @classmethod
    def detect(cls, path: Path) -> bool:
        return _is_label_file(path) if path.is_file() else bool(_label_files(path))

    @classmethod
    def read(cls, path: Path, out: RecordCollector) -> None:
        files = [path] if path.is_file() else _label_files(path)
        if path.is_dir():  # with label files found, one named *label(s) with another header is refused too
            _refuse_wrong_headers(path, named_only=bool(files))
        for f in files:
            _read_labels(f, out)
        if path.is_file():
            return
        test_dir = path if not files else first_dir(path, TEST_DIRS)  # no label file: a bare test folder
        if test_dir is None or "test" in {split_of(f) for f in files}:
            return
        if not out.wants("test"):
            out.skipped("test")
            return
        videos = find_videos(test_dir)
        if videos:
            _add_test_videos(test_dir, videos, out)
        elif not files:
            raise FormatError(path, "no label file (header video_name,target) and no videos "
                              f"(looked for {VIDEOS_LOOKED_FOR}, recursively)")
        else:
            out.note(f"{rel_source(test_dir, out.root)}/ holds no videos: no unlabeled test set read")


def _refuse_wrong_headers(folder: Path, named_only: bool = False) -> None:
    """A folder read as CSV labels whose label-like files (any .csv, a .txt named *label*) have
    another header: an error naming the header found, not a silent "unlabelled test videos".
    `named_only` (other label files were found): only files named like label files (`*_label(s)`,
    e.g. validation_labels.csv) count, so a split is never dropped silently while other CSVs
    beside the labels (a sample submission) are left alone."""
    for f in sorted(folder.iterdir()):
        if f.name.startswith(".") or not f.is_file() or f.suffix.lower() not in (".csv", ".txt"):
            continue
        named = bool(_SUFFIX_RE.search(f.stem))
        if named_only and not named:
            continue
        if f.suffix.lower() == ".csv" or "label" in f.name.lower():
            found = csv_header(f)
            if found and not _has_label_columns(found):
                raise FormatError(f, f"header is {','.join(found)!r} but CSV labels need the columns "
                                  f"{','.join(HEADER)} (1 = fake); rename the columns, or give --format for "
                                  "another dataset format", line=1)


def _read_labels(path: Path, out: RecordCollector) -> None:
    split = split_of(path)
    if not out.wants(split):
        out.skipped(split)
        return
    _, rows = read_csv(path, HEADER)
    folder = video_dir(path, split)
    out.add_source(path)
    source = rel_source(path, out.root)
    for line, row in rows:
        name = row["video_name"]
        if not name:
            raise FormatError(path, "empty video_name", line=line)
        target = row["target"]
        if target not in ("0", "1"):
            raise FormatError(path, f"unknown target {target!r} for {name!r} (expected 0 = real or 1 = fake)",
                              line=line)
        label = Label.FAKE if target == "1" else Label.REAL
        rec = VideoRecord(id=name, path=folder / name, label=label,
                          modality=out.unstated_modality(label, MODALITY_NOTE),
                          split=split, source=source)
        out.add(rec, path, line=line)


def _add_test_videos(folder: Path, videos: list[Path], out: RecordCollector) -> None:
    """Unlabeled test records, id = path relative to the test folder, all expected in a submission."""
    out.add_source(folder)
    source = rel_source(folder, out.root)
    for v in videos:
        rec = VideoRecord(id=v.relative_to(folder).as_posix(), path=v, label=Label.UNKNOWN, split="test",
                          source=source)
        out.add(rec, v, expected=True)
