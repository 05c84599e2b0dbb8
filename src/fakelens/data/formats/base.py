"""What every format reader shares: the `Dataset` it returns, the `FORMATS` registry, detection and
loading, and the strict parsing helpers that turn bad input into a `FormatError` naming file, row and problem.

Readers parse once into `VideoRecord`s; nothing downstream looks at raw JSON keys or CSV cells.
"""

from __future__ import annotations

import csv
import gc
import json
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

from fakelens.errors import FormatError
from fakelens.registry import Registry
from fakelens.types import Label, Modality, Segment, VideoRecord

from fakelens.io.video import VIDEO_EXTENSIONS, is_video_file  # noqa: F401  (re-exported)

# How messages name what a folder scan looks for.
VIDEOS_LOOKED_FOR = "video files (any container FFmpeg opens; .mp4 .mov .mkv .webm .avi .ts ... without opening)"
MAX_LISTED = 5  # how many offending ids an error message lists before "... and N more"


@dataclass
class Dataset:
    """What a reader returns: the records of one dataset (optionally one split of it).

    `missing`: ids listed in the labels whose video is not on disk (only with allow_missing=True;
    their records are left out). `expected_ids`: for unlabeled test sets, the ids a submission must
    contain, in listing order, missing videos included; None when nothing unlabeled was read.
    `sources`: the label files / folders read. `notes`: assumptions the reader made (e.g. the
    modality of fakes whose labels do not say it), reported by `fakelens data inspect`.
    """

    root: Path
    format: str
    records: list[VideoRecord]
    missing: list[str] = field(default_factory=list)
    expected_ids: list[str] | None = None
    sources: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    def by_id(self) -> dict[str, VideoRecord]:
        return {r.id: r for r in self.records}

    def splits(self) -> list[str]:
        """Sorted split names present in the records (records without a split are not counted)."""
        return sorted({r.split for r in self.records if r.split is not None})


class FormatReader:
    """A dataset format: `detect` is a cheap look at names and file heads, `read` parses fully.

    `path` is a dataset folder or a single label/metadata file. `read` adds records to the
    collector, which enforces unique ids, the split filter and the on-disk check.
    """

    name: ClassVar[str]
    looks_for: ClassVar[str]  # one line, shown when no format matches

    @classmethod
    def detect(cls, path: Path) -> bool:
        raise NotImplementedError

    @classmethod
    def read(cls, path: Path, out: "RecordCollector") -> None:
        raise NotImplementedError


FORMATS: Registry[type[FormatReader]] = Registry("dataset format")


# --------------------------------------------------------------------------------------- collecting


def entry_item(index: int, file: object | None = None) -> str:
    """How errors name an entry of a JSON list: its index and, when known, its file."""
    return f"entry [{index}]" + (f" ({file!r})" if isinstance(file, str) else "")


class RecordCollector:
    """Accumulates a reader's records: rejects duplicate ids, applies the split filter, then checks files."""

    def __init__(self, root: Path, fmt: str, split: str | None = None):
        self.root = root
        self.format = fmt
        self.split = split
        self.records: list[VideoRecord] = []
        self.expected: list[str] | None = None
        self.sources: list[Path] = []
        self.notes: list[str] = []
        self._label_source: dict[str, Path] = {}  # id -> label file it came from (for missing-file errors)
        self._where: dict[str, tuple[Path, int | None, str | None]] = {}
        self.splits_seen: set[str | None] = set()

    def wants(self, split: str | None) -> bool:
        """True if records of this split are kept (validation-like names match each other: `dev`
        asks for LAV-DF's split read as "val"). A reader skipping a whole label file because of it
        must say so with `skipped(split)`, so that an empty result can name the splits there are."""
        from fakelens.data.splits import canonical_split

        return self.split is None or split == self.split or canonical_split(split) == canonical_split(self.split)

    def skipped(self, split: str | None) -> None:
        self.splits_seen.add(split)

    def add_source(self, path: Path) -> None:
        if path not in self.sources:
            self.sources.append(path)

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def unstated_modality(self, label: Label, note: str) -> Modality:
        """For formats that only say real/fake: which stream of a fake was manipulated is UNKNOWN
        (training then follows `task.unknown_stream`), and `note` says so once in the notes."""
        if label is not Label.FAKE:
            return Modality.NONE
        self.note(note)
        return Modality.UNKNOWN

    def add(self, rec: VideoRecord, src: Path, line: int | None = None, item: str | None = None,
            expected: bool = False) -> None:
        """Add one record read from `src` at `line`/`item`; `expected` marks an unlabeled test entry."""
        first = self._where.get(rec.id)
        if first is not None:
            where = _where_text(*first)
            raise FormatError(src, f"duplicate id {rec.id!r}, first listed at {where}", line, item)
        self._where[rec.id] = (src, line, item)
        self.splits_seen.add(rec.split)
        if not self.wants(rec.split):
            return
        self.records.append(rec)
        self._label_source[rec.id] = src
        if expected:
            if self.expected is None:
                self.expected = []
            self.expected.append(rec.id)

    def finish(self, *, allow_missing: bool, check_files: bool) -> Dataset:
        """Check the files exist (unless check_files=False) and build the Dataset."""
        if not self.records:
            if self.split is not None:
                seen = sorted(s for s in self.splits_seen if s is not None)
                raise FormatError(self.root, f"no videos with split {self.split!r} "
                                  f"(splits present: {', '.join(seen) or 'none'})")
            where = self.sources[0] if len(self.sources) == 1 else self.root
            raise FormatError(where, f"no videos listed ({self.format} format)")
        missing: list[VideoRecord] = []
        if check_files:
            missing = [r for r in self.records if r.path is not None and not os.path.isfile(r.path)]
        records = self.records
        if missing:
            if not allow_missing:
                first = missing[0]
                listed = ", ".join(str(r.path) for r in missing[:MAX_LISTED])
                more = f" and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
                raise FormatError(
                    self._label_source[first.id],
                    f"{len(missing)} of {len(self.records)} listed videos are missing on disk: {listed}{more}. "
                    "Pass allow_missing=True (CLI: --allow-missing) to skip them.",
                )
            gone = {r.id for r in missing}
            records = [r for r in self.records if r.id not in gone]
        return Dataset(
            root=self.root,
            format=self.format,
            records=records,
            missing=[r.id for r in missing],
            expected_ids=self.expected,
            sources=self.sources,
            notes=self.notes,
        )


def _where_text(src: Path, line: int | None, item: str | None) -> str:
    text = str(src)
    if line is not None:
        text += f", line {line}"
    if item is not None:
        text += f", {item}"
    return text


# --------------------------------------------------------------------------------------- detection


def json_head(path: Path, n: int = 65536) -> str:
    """The first `n` characters of a file, BOM and leading whitespace removed ('' if unreadable)."""
    try:
        with open(path, "r", encoding="utf-8-sig", errors="replace") as f:
            return f.read(n).lstrip()
    except OSError:
        return ""


def json_kind(path: Path) -> tuple[str | None, str]:
    """Sniff a JSON file without parsing it all: ('object' | 'list_objects' | 'list_strings' |
    'empty_list' | None, head text)."""
    head = json_head(path)
    if head.startswith("{"):
        return "object", head
    if head.startswith("["):
        rest = head[1:].lstrip()
        kind = {"{": "list_objects", '"': "list_strings", "]": "empty_list"}.get(rest[:1])
        return kind, head
    return None, head


def csv_header(path: Path) -> list[str] | None:
    """The first line of a text file as lower-case, stripped comma-separated cells (None if unreadable)."""
    try:
        with open(path, "r", encoding="utf-8-sig", errors="replace", newline="") as f:
            line = f.readline(4096)
    except OSError:
        return None
    return [c.strip().strip('"').lower() for c in line.strip().split(",")]


def is_video(path: Path) -> bool:
    """A video file: decided by probing what PyAV opens, the extension a hint only
    (fakelens.io.video.is_video_file)."""
    return is_video_file(path)


def find_videos(folder: Path) -> list[Path]:
    """Every video under `folder` (recursive, hidden files skipped), sorted. Files of a known
    video extension are taken by name; others are opened (`is_video`). The files a folder's
    record of predict's own outputs (`own_outputs`) lists are none: a CSV that an older predict
    wrote as sub.mp4 is not scanned as a video."""
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        mine = own_outputs(Path(dirpath)) if OWN_OUTPUTS in filenames else set()
        out.extend(p for p in (Path(dirpath) / f for f in filenames if f not in mine) if is_video(p))
    return sorted(out)


def subdirs(folder: Path) -> list[Path]:
    """Sub-folders (hidden ones skipped), sorted; scandir's cached entry types keep this cheap in
    folders of 100k videos."""
    try:
        with os.scandir(folder) as it:
            return sorted(Path(e.path) for e in it if not e.name.startswith(".") and e.is_dir())
    except OSError as e:
        raise FormatError(folder, f"cannot list folder: {e.strerror or e}") from None


def first_dir(base: Path, names: Sequence[str]) -> Path | None:
    """The first of base/name that is a folder, or None."""
    for name in names:
        if (base / name).is_dir():
            return base / name
    return None


def rel_source(path: Path, root: Path) -> str:
    """A record's `source`: the label file or folder it came from, relative to the dataset root."""
    try:
        return path.relative_to(root).as_posix() or path.name
    except ValueError:
        return path.name


def detect_format(path: str | Path) -> str:
    """The name of the one registered format that `path` (a dataset folder or a label file) matches.

    Raises a FormatError listing what every format looks for when none matches, and the candidates
    when several do (then pass format=... / --format).
    """
    path = Path(path)
    if not path.exists():
        raise FormatError(path, "does not exist")
    matches = [name for name in FORMATS.names() if FORMATS.get(name).detect(path)]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise FormatError(path, f"matches several dataset formats ({', '.join(matches)}); "
                          "choose one with format=... (CLI: --format)")
    looked = "\n".join(f"  - {name}: {FORMATS.get(name).looks_for}" for name in FORMATS.names())
    what = "folder" if path.is_dir() else "file"
    raise FormatError(path, f"this {what} matches no known dataset format. Looked for:\n{looked}"
                      + _label_like_files(path))


def _label_like_files(path: Path) -> str:
    """What the label-looking files here start with (a CSV's header, a JSON's first characters), to
    show why none of them was recognised; '' when there is none."""
    try:
        files = [path] if path.is_file() else _label_candidates(path, (".csv", ".txt", ".json"))
    except OSError:
        return ""
    lines = []
    for f in files[:MAX_LISTED]:
        head = json_head(f, 200)
        first = head.splitlines()[0] if head else ""
        shown = first[:80] + ("..." if len(first) > 80 else "")
        lines.append(f"  - {f.name}: {'empty' if not head else 'starts with ' + repr(shown)}")
    older = "" if path.is_file() else "; a prediction an older fakelens wrote here is one too: move it out of the folder"
    return (f"\nLabel-like files found here (none has the header or keys above{older}):\n"
            + "\n".join(lines)) if lines else ""


def load_dataset(path: str | Path, format: str | None = None, *, allow_missing: bool = False,
                 split: str | None = None, check_files: bool = True) -> Dataset:
    """Read a dataset folder or a single label/metadata file into VideoRecords.

    format: a name in FORMATS (auto-detected when None). split: keep only that split.
    check_files=False reads labels only (videos need not exist: e.g. ground truth for scoring).
    allow_missing=True skips listed videos absent on disk and reports them in Dataset.missing.
    """
    path = Path(path)
    if not path.exists():
        raise FormatError(path, "does not exist")
    fmt = format or detect_format(path)
    reader = FORMATS.get(fmt)
    root = path if path.is_dir() else path.parent
    out = RecordCollector(root, fmt, split)
    with _gc_paused():
        reader.read(path, out)
    return out.finish(allow_missing=allow_missing, check_files=check_files)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while parsing: building ~1M small objects (AV-Deepfake1M
    train metadata) otherwise triggers repeated full collections, about a quarter of the CPU time."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# --------------------------------------------------------------------------------------- parsing


def load_json(path: Path) -> Any:
    """json.load with malformed input turned into a FormatError naming the line."""
    try:
        with open(path, "r", encoding="utf-8-sig") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise FormatError(path, f"malformed JSON: {e.msg} (column {e.colno})", line=e.lineno) from None
    except UnicodeDecodeError as e:
        raise FormatError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise FormatError(path, f"cannot read: {e.strerror or e}") from None


def read_csv(path: Path, required: Sequence[str]) -> tuple[list[str], Iterator[tuple[int, dict[str, str]]]]:
    """Open a CSV with a header holding `required` columns (case-insensitive, extra columns ignored).

    Returns (header, rows) where rows yields (line number, {lower-case column: stripped cell});
    rows with a wrong number of cells, bad quoting and blank headers are FormatErrors with the line.
    """
    try:
        f = open(path, "r", encoding="utf-8-sig", newline="")
    except OSError as e:
        raise FormatError(path, f"cannot read: {e.strerror or e}") from None
    reader = csv.reader(f, strict=True)
    try:
        header = next(reader, None)
    except (csv.Error, UnicodeDecodeError) as e:
        f.close()
        raise FormatError(path, f"malformed CSV header: {e}", line=1) from None
    if not header:
        f.close()
        raise FormatError(path, f"empty file; expected a header {','.join(required)}", line=1)
    cols = [c.strip().lower() for c in header]
    absent = [c for c in required if c not in cols]
    if absent:
        f.close()
        raise FormatError(path, f"missing column(s) {', '.join(absent)}; header is {','.join(header)} "
                          f"(expected {','.join(required)})", line=1)

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with f:
            while True:
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except (csv.Error, UnicodeDecodeError) as e:
                    raise FormatError(path, f"malformed CSV: {e}", line=reader.line_num) from None
                if not row or all(not c.strip() for c in row):
                    continue
                if len(row) != len(cols):
                    raise FormatError(path, f"row has {len(row)} cells, the header has {len(cols)}",
                                      line=reader.line_num)
                yield reader.line_num, {c: v.strip() for c, v in zip(cols, row)}

    return cols, rows()


def require_keys(entry: Any, keys: Sequence[str], src: Path, item: str) -> dict:
    """The entry as a dict holding every key in `keys`, else a FormatError naming the absent ones."""
    if not isinstance(entry, dict):
        raise FormatError(src, f"expected an object, got {type(entry).__name__}", item=item)
    absent = [k for k in keys if k not in entry]
    if absent:
        raise FormatError(src, f"missing required key(s) {', '.join(absent)}", item=item)
    return entry


def get_str(entry: dict, key: str, src: Path, item: str, *, optional: bool = False) -> str | None:
    """A non-empty string value (None allowed for optional keys, absent or null)."""
    value = entry.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, str) or (not value.strip() and not optional):
        raise FormatError(src, f"{key!r} must be a non-empty string, got {value!r}", item=item)
    return value.strip() or None


def get_bool(entry: dict, key: str, src: Path, item: str) -> bool:
    value = entry.get(key)
    if not isinstance(value, bool):
        raise FormatError(src, f"{key!r} must be true or false, got {value!r}", item=item)
    return value


def get_number(entry: dict, key: str, src: Path, item: str, *, integer: bool = False,
               positive: bool = True) -> float | int | None:
    """An optional finite number (None if absent/null); integer=True accepts integral floats."""
    value = entry.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise FormatError(src, f"{key!r} must be a number, got {value!r}", item=item)
    if integer:
        if float(value) != int(value):
            raise FormatError(src, f"{key!r} must be an integer, got {value!r}", item=item)
        value = int(value)
    if positive and value <= 0:
        raise FormatError(src, f"{key!r} must be > 0, got {value!r}", item=item)
    return value


def parse_segments(value: Any, key: str, src: Path, item: str, *, duration: float | None,
                   fps: float) -> tuple[Segment, ...]:
    """[[start, end], ...] in seconds -> Segments in file order (the official scorer walks ground truth
    in that order). Rejects start >= end, negative starts and ends beyond `duration` by more than one
    frame (1/fps s). Written for speed: AV-Deepfake1M lists three segment lists per video, 1M videos."""
    if not isinstance(value, list):
        raise FormatError(src, f"{key!r} must be a list of [start, end] pairs, got {value!r}", item=item)
    if not value:
        return ()
    limit = None if duration is None else duration + 1.0 / fps + 1e-9
    out = []
    for k, pair in enumerate(value):
        if type(pair) is not list or len(pair) != 2 or type(pair[0]) not in _NUMBER or type(pair[1]) not in _NUMBER:
            _bad_segment(src, item, key, k, pair, "a segment is [start, end] in seconds")
        start, end = float(pair[0]), float(pair[1])
        if not (start < end):  # also catches NaN
            _bad_segment(src, item, key, k, pair, "start >= end" if start == start and end == end
                         else "bounds must be finite")
        if start < 0:
            _bad_segment(src, item, key, k, pair, "negative start")
        if end == math.inf:
            _bad_segment(src, item, key, k, pair, "bounds must be finite")
        if limit is not None and end > limit:
            _bad_segment(src, item, key, k, pair, f"ends beyond the video duration {duration:.3f} s "
                         f"(tolerance one frame, {1.0 / fps:.3f} s)")
        out.append(Segment(start, end))
    return tuple(out)


_NUMBER = (int, float)  # exact types: bool is rejected


def _bad_segment(src: Path, item: str, key: str, k: int, pair: Any, problem: str) -> None:
    raise FormatError(src, f"{key}[{k}] = {pair!r}: {problem}", item=item)


def load_inputs(paths: Sequence[str | Path], format: str | None = None, split: str | None = None) -> Dataset:
    """What `predict` scores: one dataset (a folder or label file of a known format, or any path
    with `format` given), or video files and folders of videos, read as unlabelled videos
    (format "videos"; ids: a folder's videos by their path inside it, a file by its name, both
    under the folder's name when several paths are given), every one expected in a submission."""
    paths = [Path(p) for p in paths]
    if not paths:
        raise FormatError(".", "no input given")
    if len(paths) == 1 and (format is not None or not _bare_videos(paths[0])):
        return load_dataset(paths[0], format=format, split=split)
    if format is not None:
        raise FormatError(paths[0], f"a dataset format ({format}) applies to one dataset; {len(paths)} paths given")
    if split is not None:
        raise FormatError(paths[0], "video files and folders of videos have no splits; drop --split")
    records: list[VideoRecord] = []
    where: dict[str, Path] = {}
    for p in paths:
        if p.is_dir():
            videos = find_videos(p)
            if not videos:
                raise FormatError(p, f"holds no videos ({' '.join(VIDEO_EXTENSIONS)}) and is no known dataset")
            prefix = f"{p.name}/" if len(paths) > 1 else ""
            items = [(prefix + v.relative_to(p).as_posix(), v) for v in videos]
        elif p.is_file():
            if not is_video(p):
                raise FormatError(p, f"neither a video ({' '.join(VIDEO_EXTENSIONS)}) nor a dataset of a known format")
            items = [(p.name, p)]
        else:
            raise FormatError(p, "does not exist")
        for vid, v in items:
            if vid in where:
                raise FormatError(v, f"two inputs have the id {vid!r} (also {where[vid]}); give their folders instead")
            where[vid] = v
            records.append(VideoRecord(id=vid, path=v, label=Label.UNKNOWN))
    return Dataset(root=paths[0] if len(paths) == 1 else Path("."), format="videos", records=records,
                   expected_ids=[r.id for r in records], sources=paths)


OWN_OUTPUTS = ".fakelens-outputs.json"  # in a folder of videos: the files fakelens predict wrote there


def own_outputs(folder: Path) -> set[str]:
    """The names of the files `fakelens predict` wrote into `folder` (a submission, its failures
    report, --predictions), as `note_own_outputs` recorded them; empty when none is recorded."""
    try:
        names = json.loads((folder / OWN_OUTPUTS).read_text(encoding="utf-8")).get("files", [])
    except (OSError, ValueError, AttributeError):
        return set()  # none recorded (or unreadable): such files are then refused as label files
    return {n for n in names if isinstance(n, str)}


def note_own_outputs(paths: Sequence[str | Path], inputs: Sequence[str | Path]) -> None:
    """Record the outputs that lie at the top of an input folder of videos, so that predicting
    that folder again scores its videos rather than refusing it for holding unknown label files."""
    from fakelens.atomic import atomic_write_text

    folders = {Path(p).resolve() for p in inputs if Path(p).is_dir()}
    by_folder: dict[Path, set[str]] = {}
    for p in map(Path, paths):
        if p.parent.resolve() in folders:
            by_folder.setdefault(p.parent, set()).add(p.name)
    for folder, names in by_folder.items():
        names |= own_outputs(folder)
        atomic_write_text(folder / OWN_OUTPUTS, json.dumps({"written_by": "fakelens predict",
                                                            "files": sorted(names)}, indent=1) + "\n")


def _label_candidates(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files at the top of `folder` that may be label files (by suffix), sorted: hidden files
    and the outputs `fakelens predict` wrote there before (`own_outputs`) are none."""
    mine = own_outputs(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in suffixes
                  and p.name not in mine and not p.name.startswith("."))


def _bare_videos(path: Path) -> bool:
    """A video file, or a folder of videos that matches no dataset format."""
    if path.is_file():
        return is_video(path)
    if not path.is_dir():
        return False
    try:
        detect_format(path)
    except FormatError as e:
        if "matches several" in e.problem:
            raise
        # label files at the top that no format reads: a dataset with a problem (a misnamed CSV
        # column, a broken header), said so, rather than its videos scored as if unlabelled
        if _label_candidates(path, (".csv", ".json")):
            raise
        return bool(find_videos(path))
    return False
