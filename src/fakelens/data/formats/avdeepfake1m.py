"""AV-Deepfake1M (and the synthetic generator, which writes the same layout).

Layout read (a folder, or one of its files given alone):
- `<split>_metadata.json` (train, val, and test when labelled): a list of objects with `file`
  ("lrs3/.../real.mp4" or "000001.mp4"), `modify_type` (real | visual_modified | audio_modified |
  both_modified) and `fake_segments` [[start_s, end_s], ...] (required), and optionally `original`,
  `split`, `audio_model`, `visual_fake_segments`, `audio_fake_segments`, `video_frames`,
  `audio_frames`. Other keys are ignored.
- `<split>_files.txt` (one file name per line) or a `.json` list of file names: an unlabeled test
  set -> Label.UNKNOWN records, `expected_ids` in listed order. When the same split also has a
  `<split>_metadata.json` (labels released later, or the synthetic generator), the labels win
  and the list is not read (noted).
`file` is relative to `<root>/<split>/` (the official layout; `<split>` from the label file's name)
or to `<root>` (the synthetic generator writes "train/000001.mp4"): decided once per label file
by where its first videos are (see `_video_dir`). With split=..., only the label files of that
split are read (the train metadata is large).

Record id = the `file` value. The frame rate is 25 fps; duration = video_frames / 25 when present.
A video is fake iff it has a fake segment; `modify_type` must agree with the segments.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from fakelens.data.formats.base import (
    FORMATS,
    FormatReader,
    RecordCollector,
    entry_item,
    get_number,
    get_str,
    json_kind,
    load_json,
    parse_segments,
    rel_source,
    require_keys,
)
from fakelens.errors import FormatError
from fakelens.types import Label, Modality, VideoRecord

FPS = 25.0
_METADATA_RE = re.compile(r"^(?P<split>[A-Za-z0-9]+)_metadata\.json$")
_LIST_RE = re.compile(r"^(?P<split>[A-Za-z0-9]+)_files\.(txt|json)$")
_MODIFY = {
    "real": Modality.NONE,
    "visual_modified": Modality.VISUAL,
    "audio_modified": Modality.AUDIO,
    "both_modified": Modality.BOTH,
}
REQUIRED = ("file", "modify_type", "fake_segments")


def _is_metadata(path: Path) -> bool:
    kind, head = json_kind(path)
    if kind == "empty_list":  # `[]` named as AV-1M names its files: read, so that the error says it is empty
        return _METADATA_RE.match(path.name) is not None or _LIST_RE.match(path.name) is not None
    if kind == "list_objects":
        return '"fake_periods"' not in head and ('"modify_type"' in head or '"fake_segments"' in head)
    return kind == "list_strings"


def _is_listing(path: Path) -> bool:
    """An AV-1M label file: a metadata list or a test file list."""
    if not path.is_file():
        return False
    name = path.name
    if path.suffix.lower() == ".txt":
        return _LIST_RE.match(name) is not None
    return path.suffix.lower() == ".json" and _is_metadata(path)


def _split_of(path: Path) -> str | None:
    """The split a file's name gives (`val_metadata.json` -> "val"), None for other names."""
    m = _METADATA_RE.match(path.name) or _LIST_RE.match(path.name)
    return m.group("split") if m else None


def _listings(folder: Path) -> list[Path]:
    try:
        children = sorted(folder.iterdir())
    except OSError as e:
        raise FormatError(folder, f"cannot list folder: {e.strerror or e}") from None
    return [p for p in children if (_METADATA_RE.match(p.name) or _LIST_RE.match(p.name)) and _is_listing(p)]


@FORMATS.register("avdeepfake1m")
class AVDeepfake1MReader(FormatReader):
    """AV-Deepfake1M <split>_metadata.json lists and <split>_files.txt test lists."""

    name = "avdeepfake1m"
    looks_for = ("<split>_metadata.json lists of {file, modify_type, fake_segments, ...} "
                 "and/or <split>_files.txt test file lists (AV-Deepfake1M)")

    @classmethod
    def detect(cls, path: Path) -> bool:
        if path.is_file():
            return _is_listing(path)
        return bool(_listings(path))

    @classmethod
    def read(cls, path: Path, out: RecordCollector) -> None:
        files = [path] if path.is_file() else _listings(path)
        if not files:
            raise FormatError(path, "no AV-Deepfake1M <split>_metadata.json or <split>_files.txt here")
        # a split with labels (e.g. test_metadata.json once released) supersedes its bare file list
        labelled = {_split_of(f) for f in files if _METADATA_RE.match(f.name) and json_kind(f)[0] == "list_objects"}
        for f in files:
            split = _split_of(f)
            if not path.is_file() and not out.wants(split):
                out.skipped(split)
                continue
            if len(files) > 1 and _LIST_RE.match(f.name) and split in labelled:
                out.note(f"{f.name} not read: {split}_metadata.json has the labels of split {split!r}")
                continue
            if f.suffix.lower() == ".txt":
                names = [(i + 1, line.strip()) for i, line in enumerate(_read_lines(f)) if line.strip()]
                video_dir = _video_dir(f.parent, split or "test", [n for _, n in names[:20]])
                _add_unlabeled(f, names, split or "test", video_dir, out, lines=True)
                continue
            data = load_json(f)
            if not isinstance(data, list):
                raise FormatError(f, f"expected a JSON list of entries, got a JSON {type(data).__name__}")
            if data and all(isinstance(x, str) for x in data):
                video_dir = _video_dir(f.parent, split or "test", data[:20])
                _add_unlabeled(f, list(enumerate(data)), split or "test", video_dir, out, lines=False)
                continue
            video_dir = _video_dir(f.parent, split, [e.get("file") for e in data[:20] if isinstance(e, dict)])
            out.add_source(f)
            source = rel_source(f, out.root)
            for i, entry in enumerate(data):
                out.add(*_parse_entry(entry, i, f, split, video_dir, source))


def _video_dir(parent: Path, split: str | None, first_files: list[object]) -> Path:
    """Where one label file's videos are: `<parent>/<split>/` (official layout: `file` is relative to
    the split folder) or `<parent>/` (the synthetic generator: `file` = "train/000001.mp4").

    Decided once per label file, by the first listed videos found on disk; when none is (labels
    only, or all missing): the parent if the names start with "<split>/", else the split folder if
    it exists, else the parent.
    """
    if not split or not (parent / split).is_dir():
        return parent
    names = [n for n in first_files if isinstance(n, str) and n.strip()]
    for name in names:
        for base in (parent / split, parent):
            if os.path.isfile(base / name.strip()):  # never raises: a name too long for the disk is absent
                return base
    if names and names[0].strip().startswith(split + "/"):
        return parent
    return parent / split


def _read_lines(path: Path) -> list[str]:
    try:
        return path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise FormatError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise FormatError(path, f"cannot read: {e.strerror or e}") from None


def _add_unlabeled(f: Path, names: list[tuple[int, object]], split: str, video_dir: Path,
                   out: RecordCollector, lines: bool) -> None:
    out.add_source(f)
    source = rel_source(f, out.root)
    for pos, name in names:
        line, item = (pos, None) if lines else (None, entry_item(pos))
        if not isinstance(name, str) or not name.strip():
            raise FormatError(f, f"expected a file name, got {name!r}", line=line, item=item)
        rec = VideoRecord(id=name.strip(), path=video_dir / name.strip(), label=Label.UNKNOWN,
                          split=split, source=source, fps=FPS)
        out.add(rec, f, line=line, item=item, expected=True)


def _parse_entry(entry: object, i: int, f: Path, split: str | None, video_dir: Path,
                 source: str) -> tuple[VideoRecord, Path, None, str]:
    item = entry_item(i, entry.get("file") if isinstance(entry, dict) else None)
    entry = require_keys(entry, REQUIRED, f, item)
    file = get_str(entry, "file", f, item)
    raw_type = entry["modify_type"]
    # the official toolkit spells it both ways ("both_modified" in metadata, "both-modified" in code)
    modality = _MODIFY.get(raw_type.replace("-", "_")) if isinstance(raw_type, str) else None
    if modality is None:
        raise FormatError(f, f"unknown modify_type {raw_type!r} (expected {', '.join(_MODIFY)})", item=item)
    n_frames = get_number(entry, "video_frames", f, item, integer=True)
    duration = n_frames / FPS if n_frames is not None else None
    segments = parse_segments(entry["fake_segments"], "fake_segments", f, item, duration=duration, fps=FPS)
    per = {}
    for key in ("visual_fake_segments", "audio_fake_segments"):
        value = entry.get(key)
        per[key] = () if value is None else parse_segments(value, key, f, item, duration=duration, fps=FPS)
    if (modality is Modality.NONE) != (not segments):
        problem = (f"modify_type is 'real' but fake_segments lists {len(segments)} segment(s)" if segments
                   else f"modify_type is {raw_type!r} but fake_segments is empty")
        raise FormatError(f, problem, item=item)
    if per["visual_fake_segments"] and not modality.visual:
        raise FormatError(f, f"modify_type is {raw_type!r} but visual_fake_segments is not empty", item=item)
    if per["audio_fake_segments"] and not modality.audio:
        raise FormatError(f, f"modify_type is {raw_type!r} but audio_fake_segments is not empty", item=item)
    rec = VideoRecord(
        id=file,
        path=video_dir / file,
        label=Label.FAKE if segments else Label.REAL,
        segments=segments,
        modality=modality,
        split=get_str(entry, "split", f, item, optional=True) or split,
        original=get_str(entry, "original", f, item, optional=True),
        source=source,
        visual_segments=per["visual_fake_segments"],
        audio_segments=per["audio_fake_segments"],
        duration=duration,
        fps=FPS,
        n_frames=n_frames,
        audio_model=get_str(entry, "audio_model", f, item, optional=True),
    )
    return rec, f, None, item
