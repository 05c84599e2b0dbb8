"""Submission writers and readers: round trips for every registered format, and every bad case
giving a clear error with the file, line and cause."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fakelens.errors import FormatError, SubmissionError
from fakelens.submission import (
    SUBMISSION_FORMATS,
    check_submission,
    detect_submission_format,
    expected_ids_from,
    read_submission,
    write_submission,
)
from fakelens.submission.proposals import _slow_parse, fast_parse
from fakelens.types import Prediction, Proposal

IDS = ["000001.mp4", "000002.mp4", "sub/dir,with comma.mp4"]
SCORES = {"000001.mp4": 0.9128, "000002.mp4": 1 / 3, "sub/dir,with comma.mp4": 0.0}
PROPS = {
    "000001.mp4": [Proposal(0.2, 1.0, 2.5), Proposal(0.9, 0.04, 0.5)],  # unsorted on purpose
    "000002.mp4": [(0.5, 0.0, 1.0)],
    "sub/dir,with comma.mp4": [Proposal(1.0, 3.0, 3.04)],
}


@pytest.mark.parametrize("fmt", SUBMISSION_FORMATS.names())
def test_round_trip_every_format(tmp_path, fmt):
    cls = SUBMISSION_FORMATS.get(fmt)
    path = tmp_path / cls.default_filename
    ids = IDS if fmt != "avdf1m-task1" else IDS[:2]  # no ';' issue but keep ids simple
    if cls.has_proposals:
        preds = [Prediction(i, 0.5, proposals=tuple(Proposal(*p) if not isinstance(p, Proposal) else p
                                                     for p in PROPS[i])) for i in ids]
    else:
        preds = [Prediction(i, SCORES[i]) for i in ids]
    report = write_submission(fmt, path, preds, ids)
    assert report.n == len(ids) and not report.fallback_ids
    detected = detect_submission_format(path)
    assert SUBMISSION_FORMATS.get(detected).has_proposals == cls.has_proposals
    sub = read_submission(path)  # strict: sorted, non-empty
    assert sub.ids == ids
    check_submission(sub, ids)
    if cls.has_proposals:
        got = sub.proposals.to_dict()
        for i in ids:
            want = sorted((p if isinstance(p, Proposal) else Proposal(*p) for p in PROPS[i]), key=lambda p: -p.confidence)
            assert list(got[i]) == want  # exact floats, sorted by confidence
    else:
        assert sub.score_dict() == {i: SCORES[i] for i in ids}  # repr round-trips exactly


def test_layouts_are_the_official_ones(tmp_path):
    write_submission("dfdc", tmp_path / "a.csv", {"x.mp4": 0.25}, ["x.mp4"])
    assert (tmp_path / "a.csv").read_text() == "filename,label\nx.mp4,0.25\n"
    write_submission("csv", tmp_path / "b.csv", {"x.mp4": 0.25}, ["x.mp4"])
    assert (tmp_path / "b.csv").read_text() == "video_name,score\nx.mp4,0.25\n"
    write_submission("avdf1m-task1", tmp_path / "p.txt", {"000001.mp4": 0.9128}, ["000001.mp4"])
    assert (tmp_path / "p.txt").read_text() == "000001.mp4;0.9128\n"
    write_submission("avdf1m-task2", tmp_path / "p.json", {"000001.mp4": [(0.9, 1.2, 2.4)]}, ["000001.mp4"])
    assert json.loads((tmp_path / "p.json").read_text()) == {"000001.mp4": [[0.9, 1.2, 2.4]]}


def test_rows_follow_the_expected_order(tmp_path):
    write_submission("dfdc", tmp_path / "s.csv", {"b.mp4": 0.1, "a.mp4": 0.2}, ["b.mp4", "a.mp4"])
    assert read_submission(tmp_path / "s.csv").ids == ["b.mp4", "a.mp4"]


@pytest.mark.parametrize("preds,expected,match", [
    ({"a.mp4": 0.5}, ["a.mp4", "b.mp4"], "1 of 2 expected ids missing: 'b.mp4'"),
    ({"a.mp4": 0.5, "c.mp4": 0.5}, ["a.mp4"], "1 id not expected: 'c.mp4'"),
    ({"a.mp4": float("nan")}, ["a.mp4"], "finite number in \\[0, 1\\]"),
    ({"a.mp4": 1.5}, ["a.mp4"], "finite number in \\[0, 1\\], got 1.5"),
    ({"a.mp4": -0.1}, ["a.mp4"], "in \\[0, 1\\]"),
    ({"a.mp4": "0.5"}, ["a.mp4"], "must be a number"),
])
def test_score_writer_refuses(tmp_path, preds, expected, match):
    path = tmp_path / "submission.csv"
    with pytest.raises(SubmissionError, match=match):
        write_submission("dfdc", path, preds, expected)
    assert not path.exists()  # nothing half-written


def test_duplicate_prediction_objects(tmp_path):
    with pytest.raises(SubmissionError, match="given twice"):
        write_submission("csv", tmp_path / "s.csv", [Prediction("a", 0.1), Prediction("a", 0.2)], ["a"])


@pytest.mark.parametrize("props,match", [
    ([(0.5, 2.0, 2.0)], "0 <= start < end"),
    ([(0.5, -1.0, 2.0)], "0 <= start < end"),
    ([(0.5, 1.0, float("inf"))], "finite"),
    ([(1.2, 1.0, 2.0)], "confidence"),
    ([(0.5, 1.0)], "\\(confidence, start, end\\)"),
    ([], "empty proposal list"),
])
def test_proposal_writer_refuses(tmp_path, props, match):
    with pytest.raises(SubmissionError, match=match):
        write_submission("avdf1m-task2", tmp_path / "p.json", {"a.mp4": props}, ["a.mp4"])


def test_empty_list_fallback_is_explicit_and_reported(tmp_path):
    path = tmp_path / "p.json"
    rep = write_submission("lavdf", path, {"a.mp4": [], "b.mp4": [(0.3, 0.0, 1.0)]}, ["a.mp4", "b.mp4"],
                           fallback_proposal=Proposal(0.0, 0.0, 0.04))
    assert rep.fallback_ids == ["a.mp4"]
    assert json.loads(path.read_text())["a.mp4"] == [[0.0, 0.0, 0.04]]


def _write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


@pytest.mark.parametrize("name,text,match,line", [
    ("s.csv", "filename,label\na.mp4,0.5\nb.mp4,abc\n", "score 'abc' is not a number", 3),
    ("s.csv", "filename,label\na.mp4,0.5\na.mp4,0.1\n", "'a.mp4' appears twice \\(first at line 2\\)", 3),
    ("s.csv", "filename,label\na.mp4,0.5,1\n", "expected 2 cells", 2),
    ("s.csv", "filename,label\na.mp4,nan\n", "finite number", 2),
    ("s.csv", "filename,label\n,0.5\n", "empty filename", 2),
    ("s.csv", "video_name,score\nx.mp4,2\n", "in \\[0, 1\\]", 2),
    ("p.txt", "000001.mp4;0.5\n000002.mp4 0.5\n", "expected 'file;score'", 2),
    ("p.txt", "000001.mp4;0.5\n000002.mp4;inf\n", "finite number", 2),
    ("p.json", '{"a.mp4": [[0.5, 1.0, 2.0]],\n "b.mp4": [[0.5, 3.0, 2.0]]}', "'b.mp4' row 0.*0 <= start < end", 2),
    ("p.json", '{"a.mp4": [[0.5, 1.0, 2.0]],\n "a.mp4": [[0.5, 1.0, 2.0]]}', "'a.mp4' appears twice", 1),
    ("p.json", '{"a.mp4": [[0.5, 1.0, 2.0]],\n "b.mp4": [[0.5, 1.0]]}', "expected \\[confidence, start, end\\]", 2),
    ("p.json", '{"a.mp4": [[0.5, 1.0, 2.0]],\n "b.mp4": [[NaN, 1.0, 2.0]]}', "finite number", 2),
    ("p.json", '{"a.mp4": [[0.5, 1.0, 2.0]]\n "b.mp4": []}', "malformed JSON", 2),
    ("p.json", '{"a.mp4": [[1.5, 1.0, 2.0]]}', "confidence.*\\[0, 1\\]", 1),
    ("p.json", '{"a.mp4": [[0.5, "1", 2.0]]}', "finite numbers", 1),
])
def test_reader_errors_name_file_line_and_cause(tmp_path, name, text, match, line):
    p = _write(tmp_path, name, text)
    with pytest.raises(FormatError, match=match) as e:
        read_submission(p)
    assert e.value.path == str(p) and e.value.line == line


def test_bad_header_and_unknown_format(tmp_path):
    p = _write(tmp_path, "s.csv", "name,prob\na.mp4,0.5\n")
    with pytest.raises(FormatError, match="not a known submission format"):
        read_submission(p)
    with pytest.raises(SubmissionError, match="header must be filename,label"):
        read_submission(p, "dfdc")


def test_strict_reading_rejects_unsorted_and_empty_lists(tmp_path):
    p = _write(tmp_path, "p.json", '{"a.mp4": [[0.1, 1.0, 2.0], [0.9, 1.0, 2.0]], "b.mp4": []}')
    with pytest.raises(SubmissionError, match="empty proposal list.*'b.mp4'"):
        read_submission(p)
    sub = read_submission(p, strict=False)
    assert len(sub.notes) == 2 and "not sorted" in sub.notes[1]
    q = _write(tmp_path, "q.json", '{"a.mp4": [[0.1, 1.0, 2.0], [0.9, 1.0, 2.0]]}')
    with pytest.raises(SubmissionError, match="not sorted by confidence.*'a.mp4'"):
        read_submission(q)


def test_check_against_expected_ids(tmp_path):
    p = _write(tmp_path, "p.txt", "a.mp4;0.5\nc.mp4;0.5\n")
    sub = read_submission(p)
    with pytest.raises(SubmissionError, match="1 of 2 expected ids missing: 'b.mp4'; 1 id not expected "
                                              "\\(first at line 2\\): 'c.mp4'"):
        check_submission(sub, ["a.mp4", "b.mp4"])


@pytest.mark.parametrize("text", [
    '{"a": [[0.5, 1, 2], [1e-05, 2.5E+1, 3.0e2]], "b\\"q": [], "c": [[-0.0, 0, 12345678901234567890]]}',
    '  {\n "x" : [ [ 0.123456789012345678 , 1.5 , 2 ] ] ,\n "y":[[1,2,3]]\n}\n',
    "{}",
])
def test_fast_parser_agrees_with_json(text):
    raw = text.encode()
    fast = fast_parse(raw)
    assert fast is not None
    slow_ids, slow_counts, slow_vals = _slow_parse_unchecked(raw)
    assert fast[0] == slow_ids and fast[1].tolist() == slow_counts
    assert fast[2].tolist() == slow_vals  # bit-identical floats


def _slow_parse_unchecked(raw):
    data = json.loads(raw)
    return list(data), [len(v) for v in data.values()], [list(map(float, r)) for v in data.values() for r in v]


@pytest.mark.parametrize("text", [
    '{"a": [[01, 1, 2]]}', '{"a": [[1., 1, 2]]}', '{"a": [[.5, 1, 2]]}', '{"a": [[1e, 1, 2]]}',
    '{"a": [[--1, 1, 2]]}', '{"a": [[+1, 1, 2]]}', '{"a": [[1-2, 1, 2]]}', '{"a": [[1, 2]]}',
    '{"a": [[1, 2, 3, 4]]}', '{"a": [1, 2, 3]}', '{"a": [[1, 2, 3]] "b": []}', '{"a": [[1, 2, 3],]}',
    '{"a": [[1, 2, null]]}', '{"a": {"b": 1}}', '[]', '{"a": [[1.2.3, 1, 2]]}',
])
def test_fast_parser_declines_what_is_not_the_layout(text):
    assert fast_parse(text.encode()) is None


def test_slow_path_still_reads_valid_files_fast_path_declines(tmp_path):
    p = _write(tmp_path, "p.json", '{"a.mp4": [[0.5, 1.0, 2.0]], "b.mp4": [[0.25, 0, 1E0]]}')
    sub = read_submission(p)
    assert sub.proposals.to_dict()["b.mp4"][0] == Proposal(0.25, 0.0, 1.0)
    ids, counts, vals, rejected = _slow_parse(p, p.read_bytes())
    assert rejected == set()
    assert ids == ["a.mp4", "b.mp4"] and counts.tolist() == [1, 1]


def test_expected_ids_from_sources(tmp_path):
    sample = _write(tmp_path, "sample_submission.csv", "filename,label\nb.mp4,0.5\na.mp4,0.5\n")
    assert expected_ids_from(sample) == ["b.mp4", "a.mp4"]
    meta = tmp_path / "meta" / "test_metadata.json"
    meta.parent.mkdir()
    meta.write_text(json.dumps([{"file": "000001.mp4", "modify_type": "real", "fake_segments": []},
                                {"file": "000002.mp4", "modify_type": "both_modified", "fake_segments": [[1, 2]]}]))
    assert expected_ids_from(meta) == ["000001.mp4", "000002.mp4"]
    videos = tmp_path / "vids"
    (videos / "x").mkdir(parents=True)
    (videos / "b.mp4").write_bytes(b"")
    (videos / "x" / "a.mp4").write_bytes(b"")
    assert expected_ids_from(videos) == ["b.mp4", "x/a.mp4"]
    with pytest.raises(FormatError, match="does not exist"):
        expected_ids_from(tmp_path / "nope.csv")


def test_large_file_reads_through_the_fast_path(tmp_path):
    rng = np.random.default_rng(0)
    data = {f"{i:06d}.mp4": sorted(([float(c), float(s), float(s + 1)] for c, s in rng.random((20, 2))),
                                   key=lambda r: -r[0]) for i in range(300)}
    p = _write(tmp_path, "p.json", json.dumps(data))
    assert fast_parse(p.read_bytes()) is not None
    sub = read_submission(p)
    assert sub.proposals.rows.tolist() == [r for v in data.values() for r in v]


def test_fast_proposal_parser_is_bit_identical_to_json_on_awkward_numbers():
    import json as _json

    import numpy as np

    from fakelens.submission.proposals import fast_parse

    rng = np.random.default_rng(1)
    tokens = ["0", "1", "0.5", "0.9128", "12.5", "3.25", "1e-3", "2E2", "0.000001", "123456789012345",
              "1234567890.12345", "0.1234567890123456789", "7", "1.0", "0.30000000000000004"]
    for _ in range(100):
        data = {}
        for v in range(int(rng.integers(1, 6))):
            rows = []
            for _ in range(int(rng.integers(1, 5))):
                rows.append([rng.choice(tokens) for _ in range(3)])
            data[f"{v:06d}.mp4"] = rows
        text = "{" + ", ".join(f'"{k}": [' + ", ".join("[" + ", ".join(r) + "]" for r in rows) + "]"
                               for k, rows in data.items()) + "}"
        reference = _json.loads(text)
        parsed = fast_parse(text.encode())
        assert parsed is not None, text  # plain layout: the fast path must take it
        ids, counts, values = parsed
        assert ids == list(reference)
        flat = np.array([x for k in ids for row in reference[k] for x in row], np.float64)
        assert counts.tolist() == [len(reference[k]) for k in ids]
        assert np.array_equal(values.reshape(-1), flat)


@pytest.mark.parametrize("name,text", [
    ("scores.csv", "file,score\na.mp4,0.25\nb.mp4,1.5\nc.mp4,x\na.mp4,0.5\nz.mp4,0.1\n"),
    ("scores.json", '{\n "a.mp4": 0.25,\n "b.mp4": 1.5,\n "c.mp4": "x",\n "a.mp4": 0.5,\n "z.mp4": 0.1\n}\n'),
    ("prediction.txt", "a.mp4;0.25\nb.mp4;1.5\nc.mp4;x\na.mp4;0.5\nz.mp4;0.1\n"),
])
def test_score_files_list_each_problem_once(tmp_path, name, text):
    """Every problem of a score file, each once with its line: a row left out for its score is
    neither "missing" nor accepted when it is not expected; a repeated JSON key is not dropped."""
    path = _write(tmp_path, name, text)
    errors: list[SubmissionError] = []
    sub = read_submission(path, errors=errors)
    check_submission(sub, ["a.mp4", "b.mp4", "c.mp4", "d.mp4"], errors=errors)
    text = [str(e) for e in errors]
    assert len(text) == 5, text
    first = 1 if name.endswith(".txt") else 2  # the line of the first row: Task 1 files have no header
    assert f"line {first + 1}, 'b.mp4': score must be a finite number in [0, 1], got 1.5" in text[0]
    assert f"line {first + 2}, 'c.mp4'" in text[1] and f"id 'a.mp4' appears twice (first at line {first})" in text[2]
    assert text[3].endswith("1 of 4 expected ids missing: 'd.mp4'")
    assert text[4].endswith(f"1 id not expected (first at line {first + 4}): 'z.mp4'")
    assert sub.score_dict() == {"a.mp4": 0.25, "z.mp4": 0.1}


def test_scores_json_is_told_from_proposals_and_reads_only_its_top_level(tmp_path):
    assert detect_submission_format(_write(tmp_path, "a.json", '{"a.mp4": 0.5}')) == "scores-json"
    assert detect_submission_format(_write(tmp_path, "b.json", '{"a.mp4": [[0.5, 0, 1]]}')) == "avdf1m-task2"
    errors: list[SubmissionError] = []
    sub = read_submission(_write(tmp_path, "c.json", '{"a.mp4": 0.5, "b.mp4": {"c.mp4": 0.2}}'), fmt="scores-json",
                          errors=errors)
    assert sub.ids == ["a.mp4"] and sub.rejected == {"b.mp4"}  # the inner key is not a file
    assert len(errors) == 1 and "'b.mp4': score must be a number, got {'c.mp4': 0.2}" in str(errors[0])
    with pytest.raises(SubmissionError, match=r"expected a JSON object"):
        read_submission(_write(tmp_path, "d.json", "[0.5]"), fmt="scores-json")


@pytest.mark.parametrize("name,text,line", [
    ("s.csv", "filename,label\na.mp4,high\nb.mp4,0.2\na.mp4,0.5\n", 4),  # the bad copy first
    ("s.csv", "filename,label\na.mp4,0.5\nb.mp4,0.2\na.mp4,high\n", 4),  # the bad copy last
    ("p.txt", "000001.mp4;0.5\n000002.mp4;0.2\n000001.mp4;inf\n", 3),
])
def test_a_duplicate_id_is_found_when_one_copy_has_a_bad_score(tmp_path, name, text, line):
    """Before: the row with the bad score was left out before the duplicate check, so the repeated
    id was never reported."""
    errors: list[SubmissionError] = []
    sub = read_submission(_write(tmp_path, name, text), errors=errors)
    twice = [e for e in errors if "appears twice" in str(e)]
    assert len(twice) == 1 and twice[0].line == line and "first at line" in str(twice[0])
    assert len(errors) == 2 and len(sub.ids) == len(set(sub.ids))
