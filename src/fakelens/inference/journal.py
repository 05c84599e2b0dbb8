"""Resumable prediction: every finished video's Prediction is appended to a journal beside the
submission (`OUT.progress.jsonl`), so that `fakelens predict` killed at any point (SIGKILL, a
power cut, Ctrl-C) and run again scores only the videos it had not finished.

The first line records what the predictions depend on (the checkpoint file, the inference
settings, the preprocessing parameters); a journal written with anything else is set aside and
prediction starts over. Each later line is one video: its id, its source file's size and mtime
(a changed file is scored again) and its Prediction, floats written exactly (repr). Lines are
flushed and fsynced one by one; a line cut by a crash is dropped when the journal is read back.
Failed videos are not journaled: they are tried again. The journal is removed once the
submission is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from fakelens.atomic import atomic_write_text
from fakelens.types import FaceScore, Prediction, Proposal, VideoRecord

SUFFIX = ".progress.jsonl"
VERSION = 1
_ARRAYS = ("frame_times", "frame_scores", "audio_times", "audio_scores")
_FACE_ARRAYS = ("frame_times", "frame_scores", "boxes")


def journal_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + SUFFIX)


def _array(a: np.ndarray | None) -> Any:
    if a is None:
        return None
    a = np.asarray(a)
    return {"dtype": str(a.dtype), "shape": list(a.shape), "data": a.reshape(-1).tolist()}


def _unarray(v: Any) -> np.ndarray | None:
    if v is None:
        return None
    return np.asarray(v["data"], dtype=v["dtype"]).reshape(v["shape"])


def prediction_to_dict(p: Prediction) -> dict[str, Any]:
    """A Prediction as JSON-ready values that `prediction_from_dict` turns back into an equal one
    (float64 values by repr, arrays with their dtype and shape)."""
    return {
        "id": p.id, "score": float(p.score), "proposals": [q.to_list() for q in p.proposals],
        **{k: _array(getattr(p, k)) for k in _ARRAYS},
        "fallback": p.fallback, "extras": {k: float(v) for k, v in p.extras.items()},
        "faces": [{"index": f.index, "score": float(f.score), "detection": f.detection,
                   **{k: _array(getattr(f, k)) for k in _FACE_ARRAYS}} for f in p.faces],
        "face_aggregate": p.face_aggregate, "streams": p.streams,
    }


def prediction_from_dict(d: dict[str, Any]) -> Prediction:
    return Prediction(
        id=d["id"], score=d["score"], proposals=tuple(Proposal(*q) for q in d["proposals"]),
        **{k: _unarray(d[k]) for k in _ARRAYS},
        fallback=d["fallback"], extras=dict(d["extras"]),
        faces=tuple(FaceScore(index=f["index"], score=f["score"], detection=f["detection"],
                              **{k: _unarray(f[k]) for k in _FACE_ARRAYS}) for f in d["faces"]),
        face_aggregate=d["face_aggregate"], streams=d["streams"],
    )


def file_stamp(path: str | Path | None) -> dict[str, int] | None:
    """What identifies a source file's version cheaply: size and mtime (None if absent)."""
    if path is None:
        return None
    try:
        st = os.stat(path)
    except OSError:
        return None
    return {"size": int(st.st_size), "mtime_ns": int(st.st_mtime_ns)}


class PredictJournal:
    """The journal of one prediction job. `done` holds the Predictions it already has (by id)."""

    def __init__(self, path: Path, header: dict[str, Any]):
        self.path = path
        self.header = {"fakelens_predict_journal": VERSION, **header}
        self.done: dict[str, tuple[dict[str, int] | None, Prediction]] = {}
        self.notes: list[str] = []
        self._file = None

    @classmethod
    def open(cls, out: str | Path, header: dict[str, Any]) -> "PredictJournal":
        """The journal of the job writing `out`: its finished videos when it was written with the
        same `header`, else a fresh one (the old one set aside, said in `notes`)."""
        j = cls(journal_path(out), json.loads(json.dumps(header)))
        lines = j._read()
        if lines is None:
            j._rewrite([])
            return j
        first, rest = lines[0] if lines else None, lines[1:]
        if first != j.header:
            aside = j.path.with_name(j.path.name + ".old")
            os.replace(j.path, aside)
            j.notes.append(f"{j.path.name} was written with another checkpoint or other settings: set aside as "
                           f"{aside.name}, every video is scored again")
            j._rewrite([])
            return j
        for row in rest:
            j.done[row["id"]] = (row.get("file"), prediction_from_dict(row["prediction"]))
        j._rewrite(rest)  # drops a line cut by a crash, so that appends start on a clean line
        return j

    def _read(self) -> list[dict[str, Any]] | None:
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        rows = []
        for line in text.splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                break  # the last line, cut by a crash: everything before it is whole
        return rows

    def _rewrite(self, rows: list[dict[str, Any]]) -> None:
        text = "".join(json.dumps(r) + "\n" for r in [self.header, *rows])
        atomic_write_text(self.path, text)
        self._file = open(self.path, "a", encoding="utf-8")

    def finished(self, rec: VideoRecord) -> Prediction | None:
        """The journaled Prediction of `rec` if its source file is the one scored then."""
        got = self.done.get(rec.id)
        if got is None or got[0] != file_stamp(rec.path):
            return None
        return got[1]

    def add(self, rec: VideoRecord, pred: Prediction) -> None:
        """Append one finished video, durably (flushed and fsynced before returning)."""
        row = {"id": rec.id, "file": file_stamp(rec.path), "prediction": prediction_to_dict(pred)}
        assert self._file is not None
        self._file.write(json.dumps(row) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.done[rec.id] = (row["file"], pred)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def remove(self) -> None:
        """The job is done: the journal goes (and any journal set aside before)."""
        self.close()
        for p in (self.path, self.path.with_name(self.path.name + ".old")):
            p.unlink(missing_ok=True)


def split_done(journal: PredictJournal, records: Iterable[VideoRecord]) -> tuple[dict[str, Prediction],
                                                                                 list[VideoRecord]]:
    """({id: journaled Prediction}, the records still to score), in input order."""
    done, todo = {}, []
    for rec in records:
        pred = journal.finished(rec)
        if pred is None:
            todo.append(rec)
        else:
            done[rec.id] = pred
    return done, todo


__all__ = ["PredictJournal", "SUFFIX", "file_stamp", "journal_path", "prediction_from_dict", "prediction_to_dict",
           "split_done"]
