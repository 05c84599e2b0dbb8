"""Every submission writer round-trips every id it accepts through its own reader, or refuses the
id with a clear error (property-based: hypothesis). Ids used to come back changed (leading spaces
stripped) or unreadable (\\r, \\x0c, \\x85, \\u2028 written unquoted)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fakelens.errors import SubmissionError
from fakelens.submission import SUBMISSION_FORMATS, read_submission, write_submission
from fakelens.types import Proposal

FORMATS = SUBMISSION_FORMATS.names()
ids_any = st.lists(st.text(min_size=1, max_size=12), min_size=1, max_size=6, unique=True)
SAFE = st.text(alphabet=st.characters(whitelist_categories=("L", "N"), whitelist_characters="-_./ ,'\"#()"),
               min_size=1, max_size=12).filter(lambda s: s.strip() == s)
ids_safe = st.lists(SAFE, min_size=1, max_size=6, unique=True)
scores = st.floats(0.0, 1.0, allow_nan=False)


def _values(fmt: str, ids: list[str], data) -> dict:
    if SUBMISSION_FORMATS.get(fmt).has_proposals:
        out = {}
        for i in ids:
            rows = data.draw(st.lists(st.tuples(scores, st.floats(0, 50), st.floats(0.01, 5)), min_size=1, max_size=3))
            out[i] = sorted([Proposal(c, s, s + d) for c, s, d in rows], key=lambda p: -p.confidence)
        return out
    return {i: data.draw(scores) for i in ids}


def _round_trip(fmt: str, ids: list[str], data, tmp_path_factory) -> bool:
    """True when written and read back identically; False when the writer refused an id (checked)."""
    path = tmp_path_factory.mktemp("sub") / SUBMISSION_FORMATS.get(fmt).default_filename
    values = _values(fmt, ids, data)
    writer = SUBMISSION_FORMATS.get(fmt)
    refused = [i for i in ids if writer.id_problem(i) is not None]
    try:
        write_submission(fmt, path, values, ids)
    except SubmissionError as e:
        assert refused, f"{fmt} refused acceptable ids {ids!r}: {e}"
        assert repr(refused[0]) in str(e) or any(repr(i) in str(e) for i in refused), str(e)
        assert not path.exists()
        return False
    assert not refused, f"{fmt} wrote ids its own check refuses: {refused!r}"
    sub = read_submission(path, fmt)
    assert sub.ids == ids
    if writer.has_proposals:
        for k, i in enumerate(ids):
            rows = sub.proposals.rows[sub.proposals.offsets[k]:sub.proposals.offsets[k + 1]].tolist()
            assert rows == [p.to_list() for p in values[i]]
    else:
        assert sub.scores.tolist() == [values[i] for i in ids]
    return True


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=ids_any, data=st.data())
def test_any_id_round_trips_or_is_refused(fmt, ids, data, tmp_path_factory):
    _round_trip(fmt, ids, data, tmp_path_factory)


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=60, deadline=None)
@given(ids=ids_safe, data=st.data())
def test_ordinary_ids_are_always_accepted(fmt, ids, data, tmp_path_factory):
    if fmt == "avdf1m-task1":
        ids = [i for i in ids if ";" not in i] or ["a"]
    assert _round_trip(fmt, ids, data, tmp_path_factory)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("bad", [" lead.mp4", "trail.mp4 ", "a\rb.mp4", "a\x0cb.mp4", "a\x85b.mp4",
                                 "a\u2028b.mp4", "a\nb.mp4", "\ufeffbom.mp4", "surrogate\ud800.mp4"])
def test_the_reported_ids(fmt, bad, tmp_path):
    writer = SUBMISSION_FORMATS.get(fmt)
    path = tmp_path / writer.default_filename
    values = {bad: [Proposal(0.5, 0.0, 1.0)]} if writer.has_proposals else {bad: 0.5}
    try:
        write_submission(fmt, path, values, [bad])
    except SubmissionError as e:
        assert repr(bad) in str(e)
        return
    assert read_submission(path, fmt).ids == [bad]


@pytest.mark.parametrize("fmt", FORMATS)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ids=ids_any, data=st.data())
def test_the_written_format_is_detected_whatever_the_ids(fmt, ids, data, tmp_path_factory):
    """A Task 2 prediction.json with an id holding ';' (one line, `{"a;b.mp4":[[...]]}`) also
    looked like a Task 1 `file;score` line: reading it without --format was refused as ambiguous."""
    from fakelens.submission.base import ALIASES, detect_submission_format

    path = tmp_path_factory.mktemp("sub") / SUBMISSION_FORMATS.get(fmt).default_filename
    if any(SUBMISSION_FORMATS.get(fmt).id_problem(i) is not None for i in ids):
        return
    write_submission(fmt, path, _values(fmt, ids, data), ids)
    assert detect_submission_format(path) == ALIASES.get(fmt, fmt)
    assert read_submission(path).ids == ids


@pytest.mark.parametrize("name", ["a;b.mp4", "x;0.5", ";", "clip;1.mp4;2"])
def test_a_task2_id_with_a_semicolon_is_read_as_task2(name, tmp_path):
    path = tmp_path / "prediction.json"
    write_submission("avdf1m-task2", path, {name: [Proposal(0.9, 1.0, 2.0)]}, [name])
    sub = read_submission(path)
    assert sub.format == "avdf1m-task2" and sub.ids == [name]


@pytest.mark.parametrize("ids", [["{"], ['{"a'], ["{a", "b"], ['{"x":1}']])
def test_a_task1_id_opening_like_json_is_read_as_task1(ids, tmp_path):
    """`{;0.5` is a Task 1 line of the id '{', not a Task 2 or scores-json object (hypothesis found it)."""
    from fakelens.submission.base import detect_submission_format

    path = tmp_path / "prediction.txt"
    write_submission("avdf1m-task1", path, {i: 0.5 for i in ids}, ids)
    assert detect_submission_format(path) == "avdf1m-task1" and read_submission(path).ids == ids
