"""AV-Deepfake1M Task 2 / LAV-DF temporal localization submissions: one JSON object
{"000001.mp4": [[confidence, start_s, end_s], ...], ...}, rows sorted by confidence.

An AV-1M-sized file (10^5 videos x 100 rows, ~120 MB) is too slow for `json` (seconds of Python
objects), so the reader first tries a vectorised numpy parse that checks the exact layout; anything
it does not recognise goes through `json` for a precise error message.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from fakelens.errors import FormatError, SubmissionError
from fakelens.metrics.localization import PackedProposals, _offsets
from fakelens.submission.base import (SUBMISSION_FORMATS, Submission, SubmissionFormat, _unsorted, check_proposal,
                                      line_of_key, report)

_KEY = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:')
_CONTROL = re.compile(rb"[\x00-\x1f]")
_NUMBER_CHARS = b"0123456789.eE+-"
_NUM_TABLE = bytes(1 if c in _NUMBER_CHARS else 0 for c in range(256))  # bytes.translate: 1 in numbers
_ALLOWED = _NUMBER_CHARS + b"[], \t\r\n"  # what may remain once keys and the outer braces are blanked
_CHUNK = 1 << 20  # bytes per vectorised step: temporaries stay in cache


_POW10 = 10.0 ** np.arange(23)  # exact doubles


def _parse_numbers(a: np.ndarray, st: np.ndarray, en: np.ndarray) -> np.ndarray | None:
    """Parse the JSON number tokens a[st[i]:en[i]] of one chunk -> (T,) float64, or None when a
    token is not a JSON number (grammar -?(0|[1-9]d*)(.d+)?([eE][+-]?d+)?).

    A state machine runs over all tokens at once, one character column per step. mantissa * or /
    10^|exp| is one correctly rounded operation when the mantissa has <= 15 digits and |exp| <= 22,
    i.e. the same double as float() (Clinger's fast path); other tokens use float().
    """
    t = len(st)
    lens = en - st  # (T,)
    mant = np.zeros(t, dtype=np.int64)
    sig = np.zeros(t, dtype=np.int16)  # significant mantissa digits
    nfrac = np.zeros(t, dtype=np.int16)  # mantissa digits after the point
    nint = np.zeros(t, dtype=np.int16)  # digits before the point
    ned = np.zeros(t, dtype=np.int16)  # exponent digits
    expv = np.zeros(t, dtype=np.int32)
    phase = np.zeros(t, dtype=np.int8)  # 0 integer part, 1 fraction, 2 exponent
    neg = np.zeros(t, dtype=bool)
    eneg = np.zeros(t, dtype=bool)
    lead0 = np.zeros(t, dtype=bool)
    bad = np.zeros(t, dtype=bool)
    prev = np.zeros(t, dtype=np.uint8)
    last = len(a) - 1
    for k in range(int(lens.max()) if t else 0):
        c = np.where(lens > k, a[np.minimum(st + k, last)], np.uint8(32))  # (T,) column k, blank past the end
        d = c - np.uint8(48)
        isd = d < 10
        ph0 = phase == 0
        ph1 = phase == 1
        md = isd & (ph0 | ph1)
        grow = md & ((mant != 0) | (d != 0))
        mant = np.where(grow & (sig < 18), mant * 10 + d, mant)
        sig += grow
        nfrac += md & ph1
        lead0 |= md & ph0 & (nint == 0) & (d == 0)
        nint += md & ph0
        ed = isd & (phase == 2)
        expv = np.where(ed, np.minimum(expv * 10 + d, 99999), expv)
        ned += ed
        dot = c == 46
        ee = (c == 101) | (c == 69)
        minus = c == 45
        after_e = (prev == 101) | (prev == 69)
        bad |= dot & ~(ph0 & (nint > 0))
        bad |= ee & ~((ph0 & (nint > 0)) | (ph1 & (nfrac > 0)))
        bad |= minus & ~((k == 0) | after_e)
        bad |= (c == 43) & ~after_e
        neg |= minus & (k == 0)
        eneg |= minus & after_e
        phase = np.where(dot, np.int8(1), np.where(ee, np.int8(2), phase))
        prev = c
    bad |= (nint == 0) | ((phase == 1) & (nfrac == 0)) | ((phase == 2) & (ned == 0)) | (lead0 & (nint > 1))
    if bad.any():
        return None
    e = np.where(eneg, -expv, expv) - nfrac
    ae = np.minimum(np.abs(e), 22)
    m = mant.astype(np.float64)
    val = np.where(e >= 0, m * _POW10[ae], m / _POW10[ae])  # (T,)
    for i in np.flatnonzero((sig > 15) | (np.abs(e) > 22)):
        val[i] = abs(float(a[st[i]:en[i]].tobytes()))
    return np.where(neg, -val, val)


def _parse_plain_numbers(a: np.ndarray, st: np.ndarray, en: np.ndarray) -> np.ndarray | None:
    """`_parse_numbers` with a shortcut for the usual tokens, digits with at most one inner point
    and at most 15 digits ("0.1234", "12"): a few array operations per character column give the
    same double (mantissa / 10^fraction digits); the other tokens go through `_parse_numbers`
    (None when one is not a JSON number)."""
    t = len(st)
    if t == 0:
        return np.zeros(0)
    lens = en - st  # (T,)
    last = len(a) - 1
    mant = np.zeros(t, dtype=np.int64)  # (T,) wraps for > 18 digits: such tokens are not plain
    nfrac = np.zeros(t, dtype=np.int32)  # (T,) digits after the point
    ndig = np.zeros(t, dtype=np.int32)  # (T,)
    ndots = np.zeros(t, dtype=np.int32)  # (T,)
    seen_dot = np.zeros(t, dtype=bool)
    other = np.zeros(t, dtype=bool)  # an e, E, + or - somewhere
    for k in range(int(lens.max())):
        inside = lens > k
        c = a[np.minimum(st + k, last)]  # (T,) column k
        d = c - np.uint8(48)
        isd = (d < 10) & inside
        mant = np.where(isd, mant * 10 + d, mant)
        ndig += isd
        nfrac += isd & seen_dot
        isdot = (c == 46) & inside
        seen_dot |= isdot
        ndots += isdot
        other |= inside & ~isd & ~isdot
    first, lastc, second = a[st], a[en - 1], a[np.minimum(st + 1, last)]
    plain = (~other & (ndots <= 1) & (first != 46) & (lastc != 46) & (ndig <= 15)
             & ~((first == 48) & (lens > 1) & (second != 46)))  # (T,)
    val = mant.astype(np.float64) / _POW10[np.minimum(nfrac, 22)]  # (T,)
    rest = np.flatnonzero(~plain)
    if len(rest):
        rest_vals = _parse_numbers(a, st[rest], en[rest])
        if rest_vals is None:
            return None
        val[rest] = rest_vals
    return val


def fast_parse(raw: bytes) -> tuple[list[str], np.ndarray, np.ndarray] | None:
    """{"id": [[c, s, e], ...], ...} -> (ids, rows per id (V,), values (P, 3) float64), or None
    when the text is not exactly that layout (the caller then parses with json for the error)."""
    text = raw.lstrip()
    lead = len(raw) - len(text)
    text = text.rstrip()
    if not (text.startswith(b"{") and text.endswith(b"}")):
        return None
    buf = bytearray(raw)
    keys = list(_KEY.finditer(raw))
    names = []
    for m in keys:
        name = m.group(1)
        if _CONTROL.search(name):
            return None  # JSON strings hold no raw control characters: json gives the error
        try:
            names.append(json.loads(b'"' + name + b'"') if b"\\" in name else name.decode("utf-8"))
        except ValueError:  # a bad escape or bytes that are not UTF-8: json gives the error
            return None
        buf[m.start():m.end()] = b" " * (m.end() - m.start())
    if len(set(names)) != len(names):
        return None
    buf[lead] = 32  # outer braces
    buf[lead + len(text) - 1] = 32
    if buf.translate(None, _ALLOWED):
        return None
    arr = np.frombuffer(buf, dtype=np.uint8)
    isnum = np.frombuffer(buf.translate(_NUM_TABLE), dtype=np.int8)  # (n,) 1 inside number tokens
    # Numbers and '[' positions, chunk by chunk, cut where no token is split.
    starts_l, lens_l, vals_l, skel_l, open_l = [], [], [], [], []
    pos = 0
    n = len(arr)
    while pos < n:
        end = min(pos + _CHUNK, n)
        while end < n and isnum[end - 1] and isnum[end]:
            end += 1
        a = arr[pos:end]
        edge = np.diff(isnum[pos:end], prepend=np.int8(0), append=np.int8(0))
        st = np.flatnonzero(edge == 1)
        vals = _parse_plain_numbers(a, st, np.flatnonzero(edge == -1))
        if vals is None:
            return None
        vals_l.append(vals)
        # skeleton: structural characters with each number as 'n', whitespace dropped
        opening = a == 91
        struct = opening | (a == 93) | (a == 44)
        struct[st] = True
        sk = a[struct].copy()
        sk[(sk != 91) & (sk != 93) & (sk != 44)] = ord("n")
        skel_l.append(sk)
        open_l.append(np.flatnonzero(opening) + pos)
        pos = end
    values = np.concatenate(vals_l) if vals_l else np.zeros(0)
    opens = np.concatenate(open_l) if open_l else np.zeros(0, dtype=np.int64)
    # rows of video i = '[' between its key and the next key, minus its outer list
    bounds = np.array([m.end() for m in keys] + [n], dtype=np.int64)
    brackets = np.diff(np.searchsorted(opens, bounds))  # (V,)
    if len(keys) and brackets.min() < 1:
        return None
    counts = brackets - 1
    block = {k: b"[" + b",".join([b"[n,n,n]"] * k) + b"]" for k in set(counts.tolist())}  # one per row count
    expected = b",".join(map(block.__getitem__, counts.tolist()))
    skeleton = np.concatenate(skel_l).tobytes() if skel_l else b""
    if skeleton != expected or len(values) != 3 * int(counts.sum()):
        return None
    return names, counts, values.reshape(-1, 3)  # (P, 3)


def _slow_parse(path: Path, raw: bytes, errors: list[SubmissionError] | None = None
                ) -> tuple[list[str], np.ndarray, np.ndarray, set[str]]:
    """json-based parse with a precise error for whatever `fast_parse` did not accept (with
    `errors`, every bad entry or row is listed there and left out; their ids are returned last)."""
    rejected: set[str] = set()
    def pairs_hook(pairs: list[tuple[str, Any]]) -> dict:
        out: dict[str, Any] = {}
        for k, v in pairs:
            if k in out:
                report(SubmissionError(path, f"id {k!r} appears twice", line_of_key(raw, k)), errors)
                continue
            out[k] = v
        return out

    try:
        data = json.loads(raw.decode("utf-8-sig"), object_pairs_hook=pairs_hook)
    except json.JSONDecodeError as e:
        raise FormatError(path, f"malformed JSON: {e.msg} (column {e.colno})", line=e.lineno) from None
    except UnicodeDecodeError as e:
        raise FormatError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    if not isinstance(data, dict):
        raise SubmissionError(path, f"expected a JSON object {{file: [[confidence, start, end], ...]}}, "
                              f"got a JSON {type(data).__name__}")
    ids, counts, flat = [], [], []
    for name, rows in data.items():
        line = line_of_key(raw, name)
        if not isinstance(rows, list):
            report(SubmissionError(path, f"value must be a list of [confidence, start, end], got {rows!r:.80}",
                                   line, repr(name)), errors)
            rejected.add(name)
            continue
        good = []
        for k, row in enumerate(rows):
            item = f"{name!r} row {k}"
            try:
                if not isinstance(row, list) or len(row) != 3:
                    raise SubmissionError(path, f"expected [confidence, start, end], got {row!r:.80}", line, item)
                good.append(check_proposal(*row, path, line, item).to_list())
            except SubmissionError as e:
                report(e, errors)
                rejected.add(name)
        flat += good
        ids.append(name)
        counts.append(len(good))
    return ids, np.asarray(counts, dtype=np.int64), np.asarray(flat, dtype=np.float64).reshape(-1, 3), rejected


def _validate(path: Path, raw: bytes, ids: list[str], counts: np.ndarray, values: np.ndarray,
              errors: list[SubmissionError] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised value checks; an offending row is reported with its file, line and id (the first
    raises; with `errors`, every one is listed there) -> (counts, values) without the bad rows."""
    c, s, e = values[:, 0], values[:, 1], values[:, 2]
    ok = np.isfinite(values).all(axis=1) & (c >= 0) & (c <= 1) & (s >= 0) & (s < e)  # (P,)
    bad = np.flatnonzero(~ok)
    ends = np.cumsum(counts)
    for j in bad.tolist():
        v = int(np.searchsorted(ends, j, side="right"))
        k = j - int(counts[:v].sum())
        name = ids[v]
        try:
            check_proposal(*values[j].tolist(), path, line_of_key(raw, name), f"{name!r} row {k}")
            raise SubmissionError(path, f"invalid row {values[j].tolist()}", line_of_key(raw, name),
                                  f"{name!r} row {k}")
        except SubmissionError as err:
            report(err, errors)
    if not len(bad):
        return counts, values
    video = np.searchsorted(ends, bad, side="right")  # (B,) the video of each bad row
    return counts - np.bincount(video, minlength=len(counts)), values[ok]


@SUBMISSION_FORMATS.register("avdf1m-task2")
class Avdf1mTask2Submission(SubmissionFormat):
    name = "avdf1m-task2"
    description = 'AV-Deepfake1M Task 2 / LAV-DF prediction.json {"file": [[confidence, start, end], ...]}'
    default_filename = "prediction.json"
    has_proposals = True

    @classmethod
    def detect(cls, path: Path, head: str) -> bool:
        from fakelens.submission.scores import SCORES_JSON_HEAD, task1_scored_line

        if SCORES_JSON_HEAD.match(head):  # {"file": 0.9}: plain scores, not proposals
            return False
        if task1_scored_line(head):  # `{;0.5`: a Task 1 line whose id opens with '{'
            return False
        return head.startswith("{") or (path.suffix.lower() == ".json" and not head.startswith("["))

    @classmethod
    def read(cls, path: Path, strict: bool = True, errors: list[SubmissionError] | None = None) -> Submission:
        try:
            raw = path.read_bytes()
        except OSError as e:
            raise FormatError(path, f"cannot read: {e.strerror or e}") from None
        if raw.startswith(b"\xef\xbb\xbf"):
            raw = raw[3:]
        parsed = fast_parse(raw)
        ids, counts, values, rejected = (*parsed, set()) if parsed is not None else _slow_parse(path, raw, errors)
        kept, values = _validate(path, raw, ids, counts, values, errors)
        rejected |= {ids[i] for i in np.flatnonzero(kept < counts)}
        counts = kept
        pp = PackedProposals(ids, _offsets(counts), values)
        sub = Submission(path, cls.name, ids, proposals=pp, rejected=rejected)
        empty = int((counts == 0).sum())
        if empty:
            sub.notes.append(f"{empty} files have an empty proposal list (they count as missed segments "
                             "in AP and are left out of AR, as in the official scorer)")
        unsorted = _unsorted(pp)
        if unsorted:
            sub.notes.append(f"{len(unsorted)} files have proposals not sorted by confidence; AR@N uses the "
                             f"first N rows as written (e.g. {unsorted[0]!r})")
        return sub

    @classmethod
    def render(cls, ids: Sequence[str], values: Sequence[Any]) -> bytes:
        out = {name: [p.to_list() for p in props] for name, props in zip(ids, values)}
        return json.dumps(out, separators=(",", ":")).encode("utf-8")


@SUBMISSION_FORMATS.register("lavdf")
class LavdfSubmission(Avdf1mTask2Submission):
    """LAV-DF uses the same prediction.json layout as AV-Deepfake1M Task 2."""

    name = "lavdf"
