"""Video-score submissions: DFDC `filename,label`, CSV competition `video_name,score`,
AV-Deepfake1M Task 1 `000001.mp4;0.9128` lines without a header, and the plain score files
`fakelens predict` writes for video files and folders (`scores`: CSV `file,score`; `scores-json`:
`{"file": score}`). One row per video, score = P(fake).

Scores are written with Python's shortest round-trip repr, so reading gives back the same floats.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from fakelens.errors import FormatError, SubmissionError
from fakelens.submission.base import (SUBMISSION_FORMATS, Submission, SubmissionFormat, check_score, line_id_problem,
                                      line_of_key, report)


def _parse_score(text: str, path: Path, line: int, item: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise SubmissionError(path, f"score {text!r} is not a number", line, item) from None
    return check_score(value, path, line, item)


def _finish(path: Path, fmt: str, ids: list[str], scores: list[float], lines: list[int | None],
            errors: list[SubmissionError] | None = None,
            rejected: list[tuple[str, int | None]] | None = None) -> Submission:
    """The Submission of the rows read; `rejected`: (id, line) of rows left out as errors (so that
    a check against the expected ids does not call them missing as well). An id on two rows is an
    error whether or not one of them was rejected (a bad score does not hide the repeat)."""
    rejected = list(rejected or ())
    rows = [(line, name, i) for i, (name, line) in enumerate(zip(ids, lines))]
    rows += [(line, name, None) for name, line in rejected]
    rows.sort(key=lambda r: (r[0] is None, r[0] or 0))  # file order (a row without a line last)
    seen: dict[str, int | None] = {}
    keep = []
    for line, name, i in rows:
        if name in seen:
            first = f" (first at line {seen[name]})" if seen[name] is not None else ""
            report(SubmissionError(path, f"id {name!r} appears twice{first}", line), errors)
            continue
        seen[name] = line
        if i is not None:
            keep.append(i)
    keep.sort()
    if not ids and not errors:
        raise SubmissionError(path, "no rows")
    ids, scores, lines = [ids[i] for i in keep], [scores[i] for i in keep], [lines[i] for i in keep]
    return Submission(path, fmt, ids, scores=np.asarray(scores, dtype=np.float64), lines=lines,  # (V,)
                      rejected={name for name, _ in rejected} - set(ids))


def _read_text(path: Path) -> str:
    """The file as text, line endings as written (the csv module parses quoted ones itself)."""
    try:
        with open(path, encoding="utf-8-sig", newline="") as f:
            return f.read()
    except UnicodeDecodeError as e:
        raise FormatError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    except OSError as e:
        raise FormatError(path, f"cannot read: {e.strerror or e}") from None


class _HeaderCsv(SubmissionFormat):
    """A two-column CSV with a fixed header: id, score."""

    header: ClassVar[tuple[str, str]]

    @classmethod
    def id_problem(cls, name: str) -> str | None:
        return super().id_problem(name) or line_id_problem(name)

    @classmethod
    def detect(cls, path: Path, head: str) -> bool:
        first = head.splitlines()[0] if head else ""
        return [c.strip().strip('"').lower() for c in first.split(",")] == list(cls.header)

    @classmethod
    def read(cls, path: Path, strict: bool = True, errors: list[SubmissionError] | None = None) -> Submission:
        text = _read_text(path)
        reader = csv.reader(io.StringIO(text, newline=""), strict=True)
        ids: list[str] = []
        scores: list[float] = []
        lines: list[int | None] = []
        rejected: list[tuple[str, int | None]] = []
        try:
            header = next(reader, None)
            if header is None or [c.strip().lower() for c in header] != list(cls.header):
                raise SubmissionError(path, f"the header must be {','.join(cls.header)}, got "
                                      f"{','.join(header) if header else 'nothing'}", 1)
            for row in reader:
                line = reader.line_num
                if not row or all(not c.strip() for c in row):
                    continue
                name = row[0].strip()
                try:
                    if len(row) != 2:
                        raise SubmissionError(path, f"expected 2 cells ({','.join(cls.header)}), got {len(row)}",
                                              line)
                    if not name:
                        raise SubmissionError(path, f"empty {cls.header[0]}", line)
                    score = _parse_score(row[1].strip(), path, line, repr(name))
                except SubmissionError as e:
                    report(e, errors)
                    if name and len(row) == 2:  # a bad score: the id is known (and not missing)
                        rejected.append((name, line))
                    continue
                ids.append(name)
                scores.append(score)
                lines.append(line)
        except csv.Error as e:
            raise SubmissionError(path, f"malformed CSV: {e}", reader.line_num) from None
        return _finish(path, cls.name, ids, scores, lines, errors, rejected)

    @classmethod
    def render(cls, ids: Sequence[str], values: Sequence[Any]) -> bytes:
        buf = io.StringIO(newline="")
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(cls.header)
        w.writerows((name, repr(float(v))) for name, v in zip(ids, values))
        return buf.getvalue().encode("utf-8")


@SUBMISSION_FORMATS.register("dfdc")
class DfdcSubmission(_HeaderCsv):
    name = "dfdc"
    description = "DFDC submission.csv with header filename,label (label = P(fake))"
    default_filename = "submission.csv"
    header = ("filename", "label")


@SUBMISSION_FORMATS.register("csv")
class CsvCompetitionSubmission(_HeaderCsv):
    name = "csv"
    description = "CSV competition submission.csv with header video_name,score"
    default_filename = "submission.csv"
    header = ("video_name", "score")


_TASK1_LINE = re.compile(r"^[^;\n]+;[^;\n]+$")


@SUBMISSION_FORMATS.register("avdf1m-task1")
class Avdf1mTask1Submission(SubmissionFormat):
    name = "avdf1m-task1"
    description = "AV-Deepfake1M Task 1 prediction.txt, lines like 000001.mp4;0.9128, no header"
    default_filename = "prediction.txt"

    @classmethod
    def id_problem(cls, name: str) -> str | None:
        problem = super().id_problem(name) or line_id_problem(name)
        if problem is None and ";" in name:
            problem = "it holds ';', the separator of 'file;score' lines"
        return problem

    @classmethod
    def detect(cls, path: Path, head: str) -> bool:
        """A first line `file;score`. One that opens like a JSON object counts only when its score
        is a number: a one-line Task 2 prediction.json whose first id holds ';' (`{"a;b.mp4":
        [[0.9, 1.0, 2.0]]}`) is not a Task 1 line."""
        first = head.splitlines()[0].strip() if head else ""
        if first.startswith("{"):
            return task1_scored_line(head)
        return bool(_TASK1_LINE.match(first)) or (path.suffix.lower() == ".txt" and not head.strip())

    @classmethod
    def read(cls, path: Path, strict: bool = True, errors: list[SubmissionError] | None = None) -> Submission:
        ids: list[str] = []
        scores: list[float] = []
        lines: list[int | None] = []
        rejected: list[tuple[str, int | None]] = []
        for line, raw in enumerate(_read_text(path).splitlines(), start=1):
            text = raw.strip()
            if not text:
                continue
            parts = text.split(";")
            name = parts[0].strip()
            try:
                if len(parts) != 2 or not name:
                    raise SubmissionError(path, f"expected 'file;score', got {text[:80]!r}", line)
                score = _parse_score(parts[1].strip(), path, line, repr(name))
            except SubmissionError as e:
                report(e, errors)
                if name and len(parts) == 2:  # a bad score: the id is known (and not missing)
                    rejected.append((name, line))
                continue
            ids.append(name)
            scores.append(score)
            lines.append(line)
        return _finish(path, cls.name, ids, scores, lines, errors, rejected)

    @classmethod
    def render(cls, ids: Sequence[str], values: Sequence[Any]) -> bytes:
        for name in ids:
            problem = cls.id_problem(name)
            if problem is not None:
                raise SubmissionError(cls.default_filename, f"id {name!r}: {problem}")
        return "".join(f"{name};{float(v)!r}\n" for name, v in zip(ids, values)).encode("utf-8")


@SUBMISSION_FORMATS.register("scores")
class ScoresCsv(_HeaderCsv):
    name = "scores"
    description = "plain scores per file: CSV with header file,score (P(fake)), predict's default for videos"
    default_filename = "scores.csv"
    header = ("file", "score")


SCORES_JSON_HEAD = re.compile(r'^\{\s*"(?:[^"\\]|\\.)*"\s*:\s*[-+0-9.]')  # {"a.mp4": 0.9...: a number, not a list


@SUBMISSION_FORMATS.register("scores-json")
class ScoresJson(SubmissionFormat):
    name = "scores-json"
    description = 'plain scores per file: JSON {"file": score} (P(fake))'
    default_filename = "scores.json"

    @classmethod
    def detect(cls, path: Path, head: str) -> bool:  # a Task 1 line of an id opening with '{' is not JSON
        return bool(SCORES_JSON_HEAD.match(head)) and not task1_scored_line(head)

    @classmethod
    def read(cls, path: Path, strict: bool = True, errors: list[SubmissionError] | None = None) -> Submission:
        text = _read_text(path)
        objects: list[list[tuple[str, Any]]] = []  # the key/value pairs of each object, inner ones first

        def pairs(items: list[tuple[str, Any]]) -> dict:  # keeps repeated keys, which a dict would drop
            objects.append(items)
            return dict(items)

        try:
            data = json.loads(text, object_pairs_hook=pairs)
        except json.JSONDecodeError as e:
            raise FormatError(path, f"malformed JSON: {e.msg} (column {e.colno})", line=e.lineno) from None
        if not isinstance(data, dict):
            raise SubmissionError(path, f'expected a JSON object {{"file": score, ...}}, got a JSON '
                                  f"{type(data).__name__}")
        ids: list[str] = []
        scores: list[float] = []
        lines: list[int | None] = []
        rejected: list[tuple[str, int | None]] = []
        for name, value in objects[-1]:  # the outermost object is parsed last
            line = line_of_key(text, name)
            try:
                if not name:
                    raise SubmissionError(path, "empty file name", line)
                score = check_score(value, path, line, repr(name))
            except SubmissionError as e:
                report(e, errors)
                if name:
                    rejected.append((name, line))
                continue
            ids.append(name)
            scores.append(score)
            lines.append(line)
        return _finish(path, cls.name, ids, scores, lines, errors, rejected)

    @classmethod
    def render(cls, ids: Sequence[str], values: Sequence[Any]) -> bytes:
        return (json.dumps({name: float(v) for name, v in zip(ids, values)}, indent=1) + "\n").encode("utf-8")


def task1_scored_line(head: str) -> bool:
    """Whether the first line is a Task 1 `file;score` line with a numeric score (`{;0.5`, an id
    that opens like a JSON object): no JSON submission's first line ends in `;number`."""
    first = head.splitlines()[0].strip() if head else ""
    if not _TASK1_LINE.match(first):
        return False
    try:
        float(first.rsplit(";", 1)[1])
    except ValueError:
        return False
    return True
