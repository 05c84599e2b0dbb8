"""DFDC (Deepfake Detection Challenge): `metadata.json` per part folder, `sample_submission.csv` for test.

Layouts read:
- a part folder `dfdc_train_part_N/` holding `metadata.json` = {"abc.mp4": {"label": "FAKE"|"REAL",
  "split": "train", "original": "xyz.mp4"|null}, ...} and the videos beside it;
- a parent folder whose immediate sub-folders are such parts (all parts read at once; a
  `metadata.json` in the parent itself is read too);
- a test folder with `sample_submission.csv` (`filename,label`): unlabeled records (Label.UNKNOWN),
  `expected_ids` = its rows; videos in `test_videos/` beside the CSV if that folder exists (the
  Kaggle layout), else beside the CSV;
- a single `metadata.json` or `.csv` file. A `filename,label` CSV not named sample_submission.csv is
  read as labels (0/1 or REAL/FAKE).

DFDC labels are whole-video: a fake has no segments (every frame counts as fake). The metadata does
not say which stream was manipulated (some DFDC fakes have swapped audio), so fakes get
Modality.UNKNOWN and the dataset notes it.
"""

from __future__ import annotations

from pathlib import Path

from fakelens.data.formats.base import (
    FORMATS,
    FormatReader,
    RecordCollector,
    csv_header,
    first_dir,
    get_str,
    json_kind,
    load_json,
    read_csv,
    rel_source,
    subdirs,
)
from fakelens.errors import FormatError
from fakelens.types import Label, VideoRecord

METADATA = "metadata.json"
SAMPLE_SUBMISSION = "sample_submission.csv"
TEST_SPLIT = "test"
_LABELS = {"real": Label.REAL, "fake": Label.FAKE, "0": Label.REAL, "1": Label.FAKE}
MODALITY_NOTE = "DFDC metadata does not say which stream was manipulated: the stream of every fake is unknown"


def _is_metadata(path: Path) -> bool:
    kind, head = json_kind(path) if path.is_file() else (None, "")
    return kind == "object" and '"label"' in head


def _is_label_csv(path: Path) -> bool:
    return path.suffix.lower() == ".csv" and path.is_file() and csv_header(path) == ["filename", "label"]


@FORMATS.register("dfdc")
class DfdcReader(FormatReader):
    """DFDC part folders / metadata.json / sample_submission.csv."""

    name = "dfdc"
    looks_for = ('metadata.json holding {"name.mp4": {"label": "REAL"|"FAKE", ...}} (here or in '
                 "sub-folders such as dfdc_train_part_*/), or sample_submission.csv (filename,label)")

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            return (path.suffix.lower() == ".json" and _is_metadata(path)) or _is_label_csv(path)
        return bool(_parts(path)) or _is_label_csv(path / SAMPLE_SUBMISSION)

    @classmethod
    def read(cls, path: Path, out: RecordCollector) -> None:
        if path.is_file():
            if path.suffix.lower() == ".csv":
                _read_csv(path, out)
            else:
                _read_metadata(path, out)
            return
        parts = _parts(path)
        sample = path / SAMPLE_SUBMISSION
        if not parts and not sample.is_file():
            raise FormatError(path, f"no DFDC {METADATA} (here or in sub-folders) and no {SAMPLE_SUBMISSION}")
        for meta in parts:
            _read_metadata(meta, out)
        if sample.is_file():
            _read_csv(sample, out)


def _parts(folder: Path) -> list[Path]:
    """DFDC metadata files of a folder and of its immediate sub-folders (the train parts), sorted."""
    found = [folder / METADATA] if _is_metadata(folder / METADATA) else []
    found.extend(s / METADATA for s in subdirs(folder) if _is_metadata(s / METADATA))
    return found


def _read_metadata(path: Path, out: RecordCollector) -> None:
    data = load_json(path)
    if not isinstance(data, dict):
        raise FormatError(path, f"a DFDC metadata.json is an object {{filename: {{label, ...}}}}, "
                          f"got a JSON {type(data).__name__}")
    out.add_source(path)
    folder = path.parent
    source = rel_source(path, out.root)
    for name, entry in data.items():
        item = f"key {name!r}"
        if not name.strip():
            raise FormatError(path, "empty file name", item=item)
        if not isinstance(entry, dict):
            raise FormatError(path, f"expected an object, got {type(entry).__name__}", item=item)
        if "label" not in entry:
            raise FormatError(path, "missing required key label", item=item)
        raw = entry["label"]
        label = _LABELS.get(str(raw).strip().lower()) if isinstance(raw, str) else None
        if label is None:
            raise FormatError(path, f"unknown label {raw!r} (expected REAL or FAKE)", item=item)
        split = get_str(entry, "split", path, item, optional=True)
        original = get_str(entry, "original", path, item, optional=True)
        rec = VideoRecord(
            id=name,
            path=folder / name,
            label=label,
            modality=out.unstated_modality(label, MODALITY_NOTE),
            split=split,
            original=original,
            source=source,
        )
        out.add(rec, path, item=item)


def _read_csv(path: Path, out: RecordCollector) -> None:
    """sample_submission.csv -> unlabeled expected ids; any other filename,label CSV -> labels."""
    template = path.name.lower() == SAMPLE_SUBMISSION
    _, rows = read_csv(path, ["filename", "label"])
    folder = first_dir(path.parent, ["test_videos"]) or path.parent
    out.add_source(path)
    source = rel_source(path, out.root)
    for line, row in rows:
        name = row["filename"]
        if not name:
            raise FormatError(path, "empty filename", line=line)
        if template:
            label = Label.UNKNOWN  # the template's label column is a placeholder score, not a label
        else:
            label = _LABELS.get(row["label"].lower())
            if label is None:
                raise FormatError(path, f"unknown label {row['label']!r} (expected 0/1 or REAL/FAKE)", line=line)
        rec = VideoRecord(
            id=name,
            path=folder / name,
            label=label,
            modality=out.unstated_modality(label, MODALITY_NOTE),
            split=TEST_SPLIT,
            source=source,
        )
        out.add(rec, path, line=line, expected=template)
