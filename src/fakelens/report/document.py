"""Evidence -> report.json: every number of one video's report, as a JSON document that validates
against the documented schema (report.schema.json beside this module, `SCHEMA_ID`).

The document renders what fakelens.inference.evidence gathered; it computes nothing. Arrays are
lists of finite floats (times in seconds, scores P(fake) in [0, 1]); what a model or a video
lacks is null, never a made-up value.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
from importlib import resources
from typing import Any

SCHEMA_ID = "fakelens.report/1"
SCHEMA_FILE = "report.schema.json"


def heads_aggregate(model: dict[str, Any]) -> str:
    """How the visual / audio heads' scores were made one value: over clips by the run's
    aggregation, or (a localizer) the highest P(point fake) * P(stream fake | fake) over its points."""
    if model.get("name") == "localizer":
        return "max of P(fake) x P(stream) over points"
    return f"{model.get('aggregate')} over clips"


def _floats(a: Any) -> list[float] | None:
    if a is None:
        return None
    return [float(x) for x in (a.tolist() if hasattr(a, "tolist") else a)]


def _num(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _proposal(p: Any) -> dict[str, float]:
    return {"start": float(p.start), "end": float(p.end), "confidence": float(p.confidence)}


# Faces named in a verdict: beyond this many, the rest are counted only.
MAX_FACES_NAMED = 4


def faces_text(faces: Any, face_aggregate: str | None) -> str | None:
    """How several faces' scores made the video's (Prediction.faces, .face_aggregate), naming the
    face that decided where one did: "max of 2 faces' scores: face 1 decided (0.920; face 0:
    0.123)". None for one face or none (its score is the video's)."""
    if len(faces) < 2 or not face_aggregate:
        return None
    n = len(faces)
    ranked = sorted(faces, key=lambda f: -float(f.score))

    def listed(fs: Any, frames: bool = False) -> str:
        named = [f"face {f.index}: {float(f.score):.3f}" + (f" on {len(f.frame_times)} frames" if frames else "")
                 for f in fs[:MAX_FACES_NAMED]]
        more = len(fs) - MAX_FACES_NAMED
        return ", ".join(named) + (f" and {more} more" if more > 0 else "")

    if face_aggregate == "max":
        top = ranked[0]
        return f"max of {n} faces' scores: face {top.index} decided ({float(top.score):.3f}; {listed(ranked[1:])})"
    if face_aggregate == "main":
        main = faces[0]
        return (f"the main face's score: face {main.index} decided ({float(main.score):.3f}) of {n} faces scored "
                f"({listed([f for f in ranked if f is not main])})")
    if face_aggregate == "frames_weighted":
        return f"mean of {n} faces' scores weighted by the frames each was scored on ({listed(ranked, True)})"
    return f"{face_aggregate} of {n} faces' scores ({listed(ranked)})"


def aggregate_text(model: dict[str, Any], pred: Any = None) -> str | None:
    """How p_fake was made: the run's aggregation over clips (of each face's own frames), then,
    with several faces, how their scores made the video's (`faces_text`)."""
    if not model.get("aggregate"):
        return None
    level = model.get("level", "clips")
    clips = f"{model['aggregate']} over {level}"
    several = faces_text(pred.faces, pred.face_aggregate) if pred is not None else None
    own = "its own frames" if level == "frames" else f"{level} of its own frames"  # not "frames of its own frames"
    return clips if several is None else f"{several}; each face's score: {model['aggregate']} over {own}"


def report_document(ev: Any) -> dict[str, Any]:
    """The report.json document of one analysed video (an inference.evidence.Evidence)."""
    from fakelens import __version__

    pred = ev.prediction
    extras = dict(pred.extras) if pred is not None else {}
    doc: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "fakelens_version": __version__,
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "status": ev.status,
        "error": ev.error,
        "video": {"name": ev.name, "path": ev.path, "media": dict(ev.media) or None},
        "verdict": {
            "label": ev.verdict,
            "p_fake": _num(pred.score) if pred is not None else None,
            "threshold": float(ev.threshold),
            "aggregate": aggregate_text(ev.model, pred),
            "visual_p_fake": _num(extras.get("visual_score")),
            "audio_p_fake": _num(extras.get("audio_score")),
            "heads_aggregate": (heads_aggregate(ev.model) if ev.model.get("aggregate") and (
                extras.get("visual_score") is not None or extras.get("audio_score") is not None) else None),
            "streams": pred.streams if pred is not None else None,
            "fallback": pred.fallback if pred is not None else None,
        },
        "segments": [_proposal(p) for p in ev.segments],
        "top_proposal": _proposal(ev.top_proposal) if ev.top_proposal is not None else None,
        "proposals": [_proposal(p) for p in pred.proposals] if pred is not None else [],
        "frames": None,
        "sampled_frames": None,
        "audio": None,
        "faces": [],
        "face_aggregate": pred.face_aggregate if pred is not None else None,
        "crops": [],
        "saliency": dict(ev.saliency) if ev.saliency else None,
        "notes": [{"code": n.code, "level": n.level, "message": n.message} for n in ev.notes],
        "model": ev.model,
        "settings": ev.settings,
        "timings": {k: float(v) for k, v in ev.timings.items()},
        "extras": {k: float(v) for k, v in extras.items() if _num(v) is not None},
    }
    if pred is not None and pred.frame_times is not None:
        scores = _floats(pred.frame_scores)  # null where no face was scored in that sampled frame
        doc["frames"] = {"times": _floats(pred.frame_times),
                         "scores": None if scores is None else [v if math.isfinite(v) else None for v in scores]}
    if ev.sampled_times is not None:
        found = ev.face_found if ev.face_found is not None else []
        doc["sampled_frames"] = {"times": _floats(ev.sampled_times),
                                 "face_found": [[bool(x) for x in row] for row in found]}
    if pred is not None and (pred.audio_times is not None or ev.mel is not None):
        span = ev.audio_span
        doc["audio"] = {
            "times": _floats(pred.audio_times) if pred.audio_times is not None else None,
            "scores": _floats(pred.audio_scores) if pred.audio_scores is not None else None,
            "most_suspicious_span": None if span is None else {"start": span.start, "end": span.end,
                                                                "confidence": span.score},
            "mel_frames": None if ev.mel is None else int(ev.mel.shape[1]),
            "heard": None if ev.audio_heard is None else [[float(a), float(b)] for a, b in ev.audio_heard],
            "column_seconds": _num(ev.audio_column),
        }
    for f in ev.faces:
        doc["faces"].append({
            "index": int(f.index), "score": float(f.score), "detection": _num(f.detection),
            "frame_times": _floats(f.frame_times) or [],
            "frame_scores": _floats(f.frame_scores),
            "boxes": None if f.boxes is None else [[float(v) for v in b] for b in f.boxes],
        })
    for c in ev.crops:
        doc["crops"].append({"face": int(c.face), "kind": c.kind, "time": float(c.time), "score": _num(c.score),
                             "box": None if c.box is None else [float(v) for v in c.box],
                             "saliency_peak": _num(c.saliency_peak)})
    return doc


def load_schema() -> dict[str, Any]:
    """The report.json JSON Schema (draft 2020-12) shipped with fakelens."""
    return json.loads(resources.files("fakelens.report").joinpath(SCHEMA_FILE).read_text(encoding="utf-8"))


def validate_report(doc: dict[str, Any]) -> None:
    """Raise FormatError naming the first place where `doc` breaks the schema (needs jsonschema,
    in the [dev] and [web] extras)."""
    from fakelens.errors import FormatError, MissingDependencyError

    try:
        import jsonschema
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise MissingDependencyError("validating a report needs jsonschema: pip install 'fakelens[dev]'") from e
    validator = jsonschema.Draft202012Validator(load_schema())
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "(top level)"
        raise FormatError("report.json", f"{err.message} (at {where}; {len(errors)} error(s))")


__all__ = ["SCHEMA_ID", "faces_text", "load_schema", "report_document", "validate_report"]
