"""What every submission format shares: the `Submission` a reader returns, the format registry,
detection, id validation against an expected list, and `write_submission` / `read_submission`.

    write_submission("dfdc", "submission.csv", predictions, expected_ids)   # validates, then writes atomically
    sub = read_submission("prediction.json")                              # format detected
    check_submission(sub, expected_ids)                                   # missing / extra ids -> SubmissionError
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Collection, Mapping, Sequence, Union

import numpy as np

from fakelens.errors import FakelensError, FormatError, SubmissionError
from fakelens.metrics.localization import PackedProposals
from fakelens.registry import Registry
from fakelens.types import Prediction, Proposal
from fakelens.words import counted

MAX_LISTED = 5

# What writers accept: Prediction objects, {id: score} for score formats, {id: [Proposal | (c, s, e)]}
# for the proposal format.
Predictions = Union[Sequence[Prediction], Mapping[str, float], Mapping[str, Sequence[Any]]]


@dataclass
class Submission:
    """A parsed submission file. Score formats fill `scores`; the proposal format fills `proposals`.

    `ids` are in file order; `lines[i]` is the line of ids[i] (1-based; None where unknown).
    `notes`: things that are legal but worth reporting (unsorted or empty proposal lists, non-strict read).
    """

    path: Path
    format: str
    ids: list[str]
    scores: np.ndarray | None = None  # (V,) float64, P(fake)
    proposals: PackedProposals | None = None
    lines: list[int | None] | None = None
    notes: list[str] = field(default_factory=list)
    rejected: set[str] = field(default_factory=set)  # ids with rows left out as errors (read with errors=[...])

    def __len__(self) -> int:
        return len(self.ids)

    def score_dict(self) -> dict[str, float]:
        if self.scores is None:
            raise FakelensError(f"{self.path}: a {self.format} file holds proposals, not video scores")
        return dict(zip(self.ids, self.scores.tolist()))

    def line_of(self, video_id: str) -> int | None:
        if self.lines is None:
            return None
        return self.lines[self.ids.index(video_id)]


class SubmissionFormat:
    """One challenge's file layout: `detect` sniffs a file, `read` parses and checks it, `write` emits it."""

    name: ClassVar[str]
    description: ClassVar[str]
    default_filename: ClassVar[str]
    has_proposals: ClassVar[bool] = False

    @classmethod
    def detect(cls, path: Path, head: str) -> bool:
        raise NotImplementedError

    @classmethod
    def read(cls, path: Path, strict: bool = True, errors: list[SubmissionError] | None = None) -> Submission:
        """Parse `path`. A bad row or entry raises SubmissionError; with `errors` (a list) every
        one is appended there and left out instead. A file that cannot be parsed at all raises."""
        raise NotImplementedError

    @classmethod
    def render(cls, ids: Sequence[str], values: Sequence[Any]) -> bytes:
        """The file content for validated ids and values (scores, or lists of Proposals)."""
        raise NotImplementedError

    @classmethod
    def id_problem(cls, name: str) -> str | None:
        """Why this format cannot hold `name` so that its reader gives it back unchanged, or None.
        Writers refuse such ids (SubmissionError) rather than write what reads back different."""
        if not isinstance(name, str) or not name:
            return "ids must be non-empty strings"
        if any(0xD800 <= ord(c) <= 0xDFFF for c in name):
            return "it holds a lone surrogate, which is not text a file can store (UTF-8)"
        return None


# Characters a line-based reader would cut at, strip or drop: controls (\r \n \t \x0c \x85 ...),
# format characters (a byte-order mark), line and paragraph separators (\u2028 \u2029).
_NOT_IN_LINES = ("Cc", "Cf", "Zl", "Zp", "Cs")


def line_id_problem(name: str) -> str | None:
    """id_problem of the line-based formats (CSV rows, `file;score` lines): no surrounding
    whitespace (readers strip cells), no control, format or line-separator characters."""
    import unicodedata

    if name != name.strip():
        return "it starts or ends with whitespace, which readers strip"
    bad = next((c for c in name if unicodedata.category(c) in _NOT_IN_LINES), None)
    if bad is not None:
        return (f"it holds the control or line-separator character {bad!r} "
                f"(U+{ord(bad):04X}), which line-based readers split or drop")
    return None


SUBMISSION_FORMATS: Registry[type[SubmissionFormat]] = Registry("submission format")


def report(error: SubmissionError, errors: list[SubmissionError] | None) -> None:
    """Raise `error`, or list it in `errors` when the caller collects them all (submission check)."""
    if errors is None:
        raise error
    errors.append(error)


def line_of_key(text: str | bytes, name: str) -> int | None:
    """The line of a JSON file on which the key `name` first appears (None if it cannot be found)."""
    key = json.dumps(name)
    needle, newline = (key.encode("utf-8"), b"\n") if isinstance(text, bytes) else (key, "\n")
    pos = text.find(needle)  # type: ignore[arg-type]
    return text.count(newline, 0, pos) + 1 if pos >= 0 else None  # type: ignore[arg-type]


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(repr(x) for x in items[:MAX_LISTED])
    return shown + (f" and {len(items) - MAX_LISTED} more" if len(items) > MAX_LISTED else "")


def check_score(value: Any, path: Path | str, line: int | None, item: str) -> float:
    """A finite probability in [0, 1], else a SubmissionError naming where."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise SubmissionError(path, f"score must be a number, got {value!r}", line, item)
    v = float(value)
    if not math.isfinite(v) or not 0.0 <= v <= 1.0:
        raise SubmissionError(path, f"score must be a finite number in [0, 1], got {value!r}", line, item)
    return v


def check_ids(ids: Sequence[str], expected: Sequence[str], path: Path | str,
              lines: Sequence[int | None] | None = None, errors: list[SubmissionError] | None = None,
              rejected: Collection[str] = ()) -> None:
    """Every expected id exactly once, nothing else; one SubmissionError listing every kind of
    problem (appended to `errors` instead of raised when given). `rejected`: ids whose rows were
    left out as errors already reported: present for this check (neither missing nor silently
    accepted when they are not expected)."""
    seen: dict[str, int] = {}
    problems = []
    for i, name in enumerate(ids):
        if name in seen:
            where = f" (line {lines[i]})" if lines is not None and lines[i] is not None else ""
            report(SubmissionError(path, f"id {name!r} appears twice{where}", lines[seen[name]] if lines else None),
                   errors)
            continue
        seen[name] = i
    want = list(dict.fromkeys(expected))
    if len(want) != len(expected):
        raise FakelensError("the expected id list itself has duplicates")
    want_set = set(want)
    left_out = [x for x in sorted(rejected) if x not in seen]
    missing = [x for x in want if x not in seen and x not in rejected]
    extra = [x for x in [*ids, *left_out] if x not in want_set]
    if missing:
        problems.append(f"{len(missing)} of {len(want)} expected ids missing: {_listed(missing)}")
    if extra:
        first = seen.get(extra[0])
        line = lines[first] if first is not None and lines is not None else None
        at = f" (first at line {line})" if line is not None else ""
        problems.append(f"{counted(len(extra), 'id')} not expected{at}: {_listed(extra)}")
    if errors is not None:
        errors += [SubmissionError(path, problem) for problem in problems]
    elif problems:
        raise SubmissionError(path, "; ".join(problems))


def check_submission(sub: Submission, expected_ids: Sequence[str] | None, strict: bool = True,
                     errors: list[SubmissionError] | None = None) -> None:
    """The organisers' checks on a read submission: ids against the expected list, and (strict)
    no empty or unsorted proposal list. Raises SubmissionError, or appends every problem to
    `errors` when given."""
    if expected_ids is not None:
        check_ids(sub.ids, expected_ids, sub.path, sub.lines, errors, sub.rejected)
    if strict and sub.proposals is not None:
        pp = sub.proposals
        counts = pp.counts()
        empty = [pp.ids[i] for i in np.flatnonzero(counts == 0) if pp.ids[i] not in sub.rejected]
        if empty:
            report(SubmissionError(sub.path, f"{len(empty)} files have an empty proposal list (the official "
                                   f"scorer needs at least one): {_listed(empty)}"), errors)
        unsorted = _unsorted(pp)
        if unsorted:
            report(SubmissionError(sub.path, f"{len(unsorted)} files have proposals not sorted by confidence "
                                   f"(AR@N takes the first N rows): {_listed(unsorted)}"), errors)


def _unsorted(pp: PackedProposals) -> list[str]:
    """Ids whose proposal confidences increase somewhere along their rows."""
    conf = pp.rows[:, 0]
    rises = np.flatnonzero(conf[1:] > conf[:-1]) + 1  # row i rises above row i-1
    # a rise only counts inside one video: row i must not be the first row of its video
    video = np.searchsorted(pp.offsets, rises, side="right") - 1
    bad = np.unique(video[rises != pp.offsets[video]])
    return [pp.ids[i] for i in bad]


def detect_submission_format(path: str | Path) -> str:
    """The submission format of an existing file, from its extension and first line."""
    path = Path(path)
    if not path.is_file():
        raise FormatError(path, "does not exist" if not path.exists() else "is not a file")
    try:
        with open(path, "r", encoding="utf-8-sig", errors="replace") as f:
            head = f.read(4096).lstrip()
    except OSError as e:
        raise FormatError(path, f"cannot read: {e.strerror or e}") from None
    matches = [n for n in SUBMISSION_FORMATS.names()
               if n not in ALIASES and SUBMISSION_FORMATS.get(n).detect(path, head)]
    if len(matches) == 1:
        return matches[0]
    looked = "; ".join(f"{n}: {SUBMISSION_FORMATS.get(n).description}" for n in SUBMISSION_FORMATS.names()
                       if n not in ALIASES)
    if not matches:
        first = head.splitlines()[0][:80] if head.strip() else ""
        seen = f"its first line is {first!r}" if first else "it is empty"
        raise FormatError(path, f"not a known submission format: {seen} (looked for {looked})")
    raise FormatError(path, f"matches several submission formats ({', '.join(matches)}); pass the format")


ALIASES = {"lavdf": "avdf1m-task2"}


def read_submission(path: str | Path, fmt: str | None = None, strict: bool = True,
                    errors: list[SubmissionError] | None = None) -> Submission:
    """Parse a submission file (format detected when None), checking every value.

    Always errors (SubmissionError/FormatError with file, line, cause): malformed lines, duplicate
    ids, scores not finite in [0, 1], segments without 0 <= start < end. strict=True also rejects
    empty or unsorted proposal lists (allowed by the scorer, so `evaluate` reads with strict=False
    and reports them as notes). With `errors` (a list), every such problem is appended there and
    the offending rows left out (`submission check` lists them all); a file that cannot be parsed
    at all still raises.
    """
    path = Path(path)
    name = fmt or detect_submission_format(path)
    reader = SUBMISSION_FORMATS.get(name)
    if not path.is_file():
        raise FormatError(path, "does not exist" if not path.exists() else "is not a file")
    sub = reader.read(path, strict=strict, errors=errors)
    if strict:
        check_submission(sub, None, strict=True, errors=errors)
    return sub


def _values_for(fmt: type[SubmissionFormat], predictions: Predictions, path: Path,
                fallback_proposal: Proposal | None, report: "WriteReport") -> dict[str, Any]:
    """{id: score} or {id: [Proposal, ...] sorted by confidence} from any accepted input."""
    out: dict[str, Any] = {}
    if isinstance(predictions, Mapping):
        items = list(predictions.items())
    else:
        items = []
        for p in predictions:
            if not isinstance(p, Prediction):
                raise FakelensError(f"predictions must be Prediction objects or a mapping, got {type(p).__name__}")
            items.append((p.id, p.proposals if fmt.has_proposals else p.score))
    for name, value in items:
        problem = fmt.id_problem(name)
        if problem is not None:
            raise SubmissionError(path, f"id {name!r} cannot be written in the {fmt.name} format: {problem}")
        if name in out:
            raise SubmissionError(path, f"id {name!r} is given twice")
        item = f"id {name!r}"
        if not fmt.has_proposals:
            out[name] = check_score(value, path, None, item)
            continue
        props = []
        for k, p in enumerate(value):
            if isinstance(p, Proposal):
                c, s, e = p.confidence, p.start, p.end
            else:
                if len(p) != 3:
                    raise SubmissionError(path, f"proposal {k} must be (confidence, start, end), got {p!r}", item=item)
                c, s, e = p
            props.append(check_proposal(c, s, e, path, None, f"{item}, proposal {k}"))
        if not props:
            if fallback_proposal is None:
                raise SubmissionError(path, "empty proposal list (the official scorer needs at least one per "
                                      "file); pass fallback_proposal=... to fill such files explicitly", item=item)
            props = [check_proposal(*fallback_proposal.to_list(), path, None, f"{item}, fallback_proposal")]
            report.fallback_ids.append(name)
        props.sort(key=lambda p: -p.confidence)  # stable: equal confidences keep their order
        out[name] = props
    return out


def check_proposal(c: Any, s: Any, e: Any, path: Path | str, line: int | None, item: str) -> Proposal:
    """A Proposal with a confidence in [0, 1] and 0 <= start < end (finite), else a SubmissionError."""
    conf = check_score(c, path, line, item + " confidence")
    for v in (s, e):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.floating, np.integer)) or not math.isfinite(v):
            raise SubmissionError(path, f"segment bounds must be finite numbers, got [{s!r}, {e!r}]", line, item)
    if not 0 <= s < e:
        raise SubmissionError(path, f"segment needs 0 <= start < end, got [{s!r}, {e!r}]", line, item)
    return Proposal(conf, float(s), float(e))


@dataclass
class WriteReport:
    """What `write_submission` wrote: the file, its format, the row count and ids that used the fallback."""

    path: Path
    format: str
    n: int
    fallback_ids: list[str] = field(default_factory=list)


def write_submission(fmt: str, path: str | Path, predictions: Predictions, expected_ids: Sequence[str],
                     *, fallback_proposal: Proposal | None = None) -> WriteReport:
    """Validate, then atomically write a submission file in format `fmt` (see SUBMISSION_FORMATS).

    predictions: Prediction objects (uses .score, or .proposals for "avdf1m-task2"/"lavdf"), or a
    mapping {id: score} / {id: [Proposal | (confidence, start, end), ...]}.
    expected_ids: the ids the organisers expect, in the order rows are written (e.g. from
    `expected_ids_from(sample_submission.csv)`); every one must be predicted once, nothing else.
    Checks: scores finite in [0, 1]; proposals with 0 <= start < end, sorted by confidence here; an
    empty proposal list is an error unless `fallback_proposal` is given (e.g. Proposal(0.0, 0.0, 0.04)),
    which is then written for those files and listed in the returned report's `fallback_ids`.
    """
    from fakelens.atomic import atomic_write_bytes

    path = Path(path)
    writer = SUBMISSION_FORMATS.get(fmt)
    report = WriteReport(path, fmt, len(expected_ids))
    values = _values_for(writer, predictions, path, fallback_proposal, report)
    check_ids(list(values), expected_ids, path)
    ids = list(expected_ids)
    atomic_write_bytes(path, writer.render(ids, [values[i] for i in ids]))
    return report


def expected_ids_from(source: str | Path, split: str | None = None) -> list[str]:
    """The ids a submission must hold, from sample_submission.csv (or any submission-shaped file),
    a dataset metadata/label file, a dataset folder, or a plain folder of videos (relative paths).

    Unlabelled test listings give their `expected_ids`; labelled ones give every record id. `split`
    keeps a dataset's videos of that split (LAV-DF's metadata.json lists train, dev and test); a
    source without splits (a folder of videos, a sample submission) cannot take one (ConfigError).
    """
    from fakelens.data.formats import detect_format, load_dataset
    from fakelens.data.formats.base import find_videos
    from fakelens.errors import ConfigError

    source = Path(source)
    if not source.exists():
        raise FormatError(source, "does not exist")
    try:
        detect_format(source)
    except FormatError:
        if split is not None:
            raise ConfigError(f"--split {split}: {source} is not a dataset with splits (a folder of videos or a "
                              "sample submission lists the expected ids itself); leave --split out, or give the "
                              "dataset's labels as --expect") from None
        if source.is_dir():
            videos = find_videos(source)
            if not videos:
                raise FormatError(source, "neither a known dataset nor a folder holding videos") from None
            return [v.relative_to(source).as_posix() for v in videos]
        try:
            return read_submission(source, strict=False).ids
        except FormatError:
            pass
        raise
    ds = load_dataset(source, check_files=False, split=split)
    return list(ds.expected_ids) if ds.expected_ids else [r.id for r in ds.records]


def dataset_submission_format(detected: str, source: str | Path) -> str:
    """The submission format a file detected as `detected` is named by, given the dataset it is
    checked against: a prediction.json against LAV-DF labels is a LAV-DF submission (the layout is
    AV-Deepfake1M Task 2's; ALIASES), not 'avdf1m-task2'."""
    from fakelens.data.formats import detect_format

    if detected not in ALIASES.values():
        return detected
    try:
        dataset = detect_format(source)
    except FormatError:
        return detected
    return dataset if ALIASES.get(dataset) == detected else detected
