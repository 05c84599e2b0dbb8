"""How a run holds up under degradations: `fakelens robustness RUN DATA`.

For each condition (the clean videos, then each perturbation of fakelens.io.perturb at each of its
severities) every labelled video is scored by the one inference pipeline (Predictor over
fakelens.features.media) and the run's scores give AUC, accuracy at 0.5, log loss and average
precision; for a localization run (a localizer over dense features, AV-Deepfake1M task 2) its
proposals give AP@IoU 0.5 and 0.75 and AR@10 against the labelled fake segments, the metrics
`fakelens evaluate` computes on its task-2 submission. Media perturbations write a perturbed
copy of each video once, under OUT/media/NAME/SEVERITY/ (atomically: a copy that exists is whole and is reused); attacks on the
model's inputs (FGSM, PGD) perturb the face crops inside the pipeline
(fakelens.inference.adversarial). The faces are found once per video for every condition that
leaves the frames alone (the clean videos, the attacks, the audio-only perturbations and the audio
removed: their tracks are the clean run's, `same_frames`; a localizer's dense features too); a
perturbation of the pixels finds them again, as a real pipeline would. A video that cannot be scored under a condition (a face lost
in the blur) gets the run's training prior and is counted (`failed`), so every row ranks the same
videos; one scored from a single stream is counted too (`one_stream`).

Each finished condition is saved in OUT/conditions/ with the checkpoint it was scored with: a
run killed and started again does only the conditions left. The attacks perturb face crops:
with the default perturbations they are left out (and said) for a run whose model sees none (a
localizer over dense features, an audio-only model); asked for by name they are refused before
any work.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from fakelens.errors import FakelensError
from fakelens.io.perturb import PERTURBATIONS, output_suffix, perturb_file
from fakelens.types import Label, VideoRecord

CLEAN = "none"
COLUMNS = ("perturbation", "stream", "severity", "unit", "videos", "auc", "accuracy", "log_loss", "ap",
           "ap_iou50", "ap_iou75", "ar10", "failed", "one_stream", "seconds")
AP_IOUS = (0.5, 0.75)  # the localization columns: AP at these IoU thresholds ...
AR_N = 10  # ... and AR@10 (averaged over IoU 0.5:0.05:0.95, as AV-Deepfake1M and LAV-DF do)


@dataclass
class Row:
    """One condition's result (a CSV row)."""

    perturbation: str
    stream: str
    severity: float | None
    unit: str
    videos: int
    auc: float
    accuracy: float
    log_loss: float
    ap: float
    ap_iou50: float  # localization runs only (nan otherwise): AP@IoU 0.5 of the proposals
    ap_iou75: float  # AP@IoU 0.75
    ar10: float  # AR@10
    failed: int
    one_stream: int
    seconds: float

    def cells(self) -> list[Any]:
        return [getattr(self, c) for c in COLUMNS]


def parse_perturb(specs: Sequence[str] | None) -> list[tuple[str, tuple[float, ...]]]:
    """["blur", "noise=5,20"] -> [("blur", its default severities), ("noise", (5.0, 20.0))]; None or
    empty: every registered perturbation at its default severities."""
    if not specs:
        return [(n, PERTURBATIONS.get(n).severities) for n in PERTURBATIONS.names()]
    out = []
    for spec in specs:
        name, _, levels = spec.partition("=")
        p = PERTURBATIONS.get(name.strip())  # an unknown name: an error with the names
        if not levels:
            out.append((p.name, p.severities))
            continue
        try:
            values = tuple(float(v) for v in levels.split(",") if v.strip())
        except ValueError as e:
            raise FakelensError(f"--perturb {spec!r}: severities must be numbers, comma-separated") from e
        if not values or not all(math.isfinite(v) for v in values):
            raise FakelensError(f"--perturb {spec!r}: give one or more finite severities")
        out.append((p.name, values))
    return out


def labelled(records: Sequence[VideoRecord]) -> list[VideoRecord]:
    """The records with a known label and a file (robustness is measured against labels)."""
    keep = [r for r in records if r.label is not Label.UNKNOWN and r.path is not None]
    if not keep:
        raise FakelensError("robustness needs labelled videos: none of these has a real/fake label")
    return keep


def localization_metrics(proposals: dict[str, Sequence[Any]], records: Sequence[VideoRecord]) -> dict[str, float]:
    """AP@IoU 0.5 / 0.75 and AR@10 of `proposals` ({id: [Proposal, ...]}, every record's id; an
    empty list for a video not scored) against the records' fake segments
    (fakelens.metrics.localization, the rules of `fakelens evaluate`); nan where the records hold
    no fake segment."""
    from fakelens.metrics.localization import ap_at_iou, ar_at_n

    if not any(r.segments for r in records):
        return {"ap_iou50": float("nan"), "ap_iou75": float("nan"), "ar10": float("nan")}
    # each video's proposals by confidence, as the task-2 writer orders them (AR@N takes the first N)
    ordered = {r.id: sorted(proposals.get(r.id, ()), key=lambda p: -p.confidence) for r in records}
    ap = ap_at_iou(ordered, records, AP_IOUS)
    ar = ar_at_n(ordered, records, (AR_N,))
    return {"ap_iou50": float(ap[0.5]), "ap_iou75": float(ap[0.75]), "ar10": float(ar[AR_N])}


def score_row(name: str, severity: float | None, labels: np.ndarray, scores: np.ndarray, failed: int,
              one_stream: int, seconds: float, localization: dict[str, float] | None = None) -> Row:
    """The metrics of one condition (nan where undefined: one class only; the localization
    columns of a classification run)."""
    from fakelens.metrics.classification import auc, log_loss, threshold_metrics

    p = PERTURBATIONS.get(name) if name != CLEAN else None
    both = len(set(labels.tolist())) == 2
    a = auc(labels, scores) if both else float("nan")
    ap = _average_precision(labels, scores) if both else float("nan")
    acc = float(threshold_metrics(labels, scores, 0.5).accuracy)
    loc = localization or {}
    nan = float("nan")
    return Row(name, p.stream if p else "-", severity, p.unit if p else "-", int(len(labels)), float(a), acc,
               float(log_loss(labels, scores)), float(ap), loc.get("ap_iou50", nan), loc.get("ap_iou75", nan),
               loc.get("ar10", nan), failed, one_stream, round(seconds, 2))


def crop_input(predictor: Any) -> bool:
    """Whether the run's model scores face crops (what FGSM / PGD perturb)."""
    return "video" in tuple(predictor.inputs) and not getattr(predictor, "dense", False)


def applicable(conditions: Sequence[tuple[str, tuple[float, ...]]], predictor: Any, *, explicit: bool,
               log: Callable[[str], None] = lambda line: None) -> list[tuple[str, tuple[float, ...]]]:
    """The conditions the run can be put through: attacks on face crops need a model that sees
    them. Named by the user (`explicit`), such an attack is a FakelensError before any work;
    among the defaults it is left out and the log says so."""
    if crop_input(predictor):
        return list(conditions)
    attacks = [n for n, _ in conditions if PERTURBATIONS.get(n).stream == "model"]
    if not attacks:
        return list(conditions)
    why = (f"model {predictor.run.cfg.model.name!r} sees no face crops"
           + (" (a localizer over dense features)" if getattr(predictor, "dense", False) else ""))
    if explicit:
        raise FakelensError(f"--perturb {', '.join(attacks)}: these attacks perturb face crops and {why}")
    log(f"{', '.join(attacks)}: left out, {why}")
    return [(n, s) for n, s in conditions if n not in attacks]


def same_frames(name: str) -> bool:
    """Whether condition `name` leaves the videos' frames as they are before the faces are found
    (the clean videos, an attack on the model's crops, a perturbation of the audio or of the
    container alone), so the clean faces' tracks hold for it."""
    return name == CLEAN or PERTURBATIONS.get(name).stream != "video"


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, scores))


class RobustnessJob:
    """Scores `records` with `predictor` under each condition, caching perturbed media and each
    finished condition under `out`."""

    def __init__(self, predictor: Any, records: Sequence[VideoRecord], out: str | Path, *, seed: int = 0,
                 workers: int = 0, progress: bool = False, log: Callable[[str], None] | None = None,
                 reuse_faces: bool = True):
        from fakelens.atomic import ensure_writable
        from fakelens.inference.journal import file_stamp

        self.predictor = predictor
        self.records = labelled(records)
        # a localizer's proposals are scored against the fake segments (AP@IoU, AR)
        self.localization = bool(getattr(predictor, "dense", False)) and any(r.segments for r in self.records)
        self.out = ensure_writable(out)
        self.seed, self.workers, self.progress = int(seed), int(workers), progress
        # Face tracks found under the first condition that leaves each video's frames alone (the
        # clean videos, an attack on the crops, an audio-only perturbation: `same_frames`), reused
        # by the others; a perturbation of the pixels finds the faces again, as a real pipeline would.
        self.reuse_faces = bool(reuse_faces)
        self.tracks: dict[str, Any] = {}
        self.log = log or (lambda line: None)
        self.stamp = {"checkpoint": str(Path(predictor.run.checkpoint).resolve()),
                      "checkpoint_file": file_stamp(predictor.run.checkpoint), "seed": self.seed,
                      "videos": [r.id for r in self.records],
                      # each video's file and label: AV-1M-style ids (000001.mp4) repeat across datasets
                      "sources": [[str(Path(r.path).resolve()) if r.path else None, file_stamp(r.path),
                                   r.label.as_int] for r in self.records]}
        if self.localization:  # its AP@IoU / AR rows are measured against the fake segments
            self.stamp["segments"] = [[[float(g.start), float(g.end)] for g in r.segments] for r in self.records]

    def run(self, conditions: Sequence[tuple[str, tuple[float, ...]]]) -> list[Row]:
        rows = [self.condition(CLEAN, None)]
        for name, severities in conditions:
            for s in severities:
                rows.append(self.condition(name, float(s)))
        return rows

    def _saved(self, name: str, severity: float | None) -> Path:
        return self.out / "conditions" / (f"{name}.json" if severity is None else f"{name}@{severity:g}.json")

    def condition(self, name: str, severity: float | None) -> Row:
        from fakelens.atomic import atomic_write_text

        saved = self._saved(name, severity)
        if saved.is_file():
            try:
                doc = json.loads(saved.read_text(encoding="utf-8"))
                if doc.get("stamp") == self.stamp:
                    row = dict(doc["row"])
                    if not self.localization:  # saved before the localization columns: none to miss
                        row = {"ap_iou50": math.nan, "ap_iou75": math.nan, "ar10": math.nan, **row}
                    found = Row(**row)  # a localization run's row without them: TypeError, scored again
                    self.log(f"{name} {'' if severity is None else f'{severity:g} '}: done by an earlier run")
                    return found
            except (OSError, ValueError, TypeError):
                pass  # unreadable or of another version: scored again
        t0 = time.perf_counter()
        labels, scores, failed, one, proposals = self._score(name, severity)
        loc = localization_metrics(proposals, self.records) if self.localization else None
        row = score_row(name, severity, labels, scores, failed, one, time.perf_counter() - t0, loc)
        saved.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(saved, json.dumps({"stamp": self.stamp, "row": dataclasses.asdict(row),
                                             "scores": scores.tolist()}) + "\n")
        extra = (f", AP@0.5 {row.ap_iou50:.4f}, AP@0.75 {row.ap_iou75:.4f}, AR@{AR_N} {row.ar10:.4f}"
                 if self.localization else "")
        self.log(f"{name} {'' if severity is None else f'{severity:g} '}: AUC {row.auc:.4f}, accuracy "
                 f"{row.accuracy:.4f}{extra} ({row.failed} failed, {row.one_stream} from one stream)")
        return row

    def _score(self, name: str, severity: float | None) -> tuple[np.ndarray, np.ndarray, int, int, dict]:
        from fakelens.inference.pipeline import one_stream

        pr = self.predictor
        records = list(self.records)
        broken: set[str] = set()
        if name != CLEAN and PERTURBATIONS.get(name).stream != "model":
            records, broken = self._perturbed(name, float(severity))
        transform = None
        if name != CLEAN and PERTURBATIONS.get(name).stream == "model":
            from fakelens.inference.adversarial import ClipAttack

            transform = ClipAttack(pr, name, float(severity) / 255.0, self.seed)  # eps in 1/255 of the pixel range
        pr.clip_transform = transform
        if self.reuse_faces and same_frames(name):
            pr.record_tracks = pr.known_tracks = self.tracks
        try:
            todo = [r for r in records if r.id not in broken]
            result = pr.predict(todo, on_error="prior", workers=self.workers, progress=self.progress)
        finally:
            pr.clip_transform = None
            pr.record_tracks = pr.known_tracks = None
        by_id = {p.id: p.score for p in result.predictions}
        scores = np.array([by_id.get(r.id, pr.run.prior) for r in self.records], np.float64)  # (N,)
        labels = np.array([r.label.as_int for r in self.records], np.int64)  # (N,)
        proposals = {p.id: list(p.proposals) for p in result.predictions}  # a video not scored: none
        return (labels, scores, len(result.failures) + len(broken), len(one_stream(result.predictions, pr.inputs)),
                proposals)

    def _perturbed(self, name: str, severity: float) -> tuple[list[VideoRecord], set[str]]:
        """The records pointing at their perturbed copies (made now where missing), and the ids of
        videos whose copy could not be made (an unreadable source)."""
        from fakelens.atomic import remove_stale_temporaries
        from fakelens.errors import MediaError

        folder = self.out / "media" / name / f"{severity:g}"
        remove_stale_temporaries(folder)  # the copy a killed run was writing (a whole video each)
        out, broken = [], set()
        items = list(enumerate(self.records))
        if self.progress:
            from fakelens.progress import progress

            items = progress(items, desc=f"{name} {severity:g}", unit="video", leave=False)
        for i, rec in items:
            dst = folder / f"{i:06d}_{Path(rec.path).stem[:80]}_{_source_key(rec, self.seed)}{output_suffix(name)}"
            if not dst.is_file():
                try:
                    perturb_file(rec.path, dst, name, severity, self.seed)
                except (MediaError, ValueError) as e:
                    self.log(f"{rec.id}: cannot be perturbed ({e}); given the prior")
                    broken.add(rec.id)
            out.append(dataclasses.replace(rec, path=dst))
        return out, broken


def _source_key(rec: VideoRecord, seed: int) -> str:
    """A short key of a perturbed copy's source (its file, size, mtime) and the seed: a copy made
    from another video of the same id (another dataset), an edited file or another --seed is
    not reused."""
    import hashlib

    from fakelens.inference.journal import file_stamp

    ident = json.dumps([str(Path(rec.path).resolve()), file_stamp(rec.path), int(seed)])
    return hashlib.sha1(ident.encode("utf-8")).hexdigest()[:10]


def write_csv(rows: Sequence[Row], path: str | Path) -> Path:
    """The table as CSV (atomically)."""
    import csv
    import io

    from fakelens.atomic import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow(["" if v is None else (f"{v:.6g}" if isinstance(v, float) else v) for v in r.cells()])
    atomic_write_text(Path(path), buf.getvalue())
    return Path(path)


def has_localization(rows: Sequence[Row]) -> bool:
    """Whether the rows carry the localization columns (a localization run's)."""
    return any(math.isfinite(r.ap_iou50) for r in rows)


def table_columns(rows: Sequence[Row]) -> list[str]:
    """The table's headers (Markdown, and the terminal's first table with no rows given): AP@IoU and AR
    only for a localization run."""
    loc = ["AP@0.5", "AP@0.75", f"AR@{AR_N}"] if has_localization(rows) else []
    return ["perturbation", "severity", "AUC", "accuracy", "log loss", "AP", *loc, "failed", "one stream"]


def terminal_tables(rows: Sequence[Row], videos: int) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The terminal's tables (title, headers, cells): the scores' columns, and for a localization run
    its AP@IoU / AR columns as a second table, each narrow enough for an 80-column terminal (the
    eleven columns in one had every number cut to '0.7…' there)."""
    out = [(f"robustness ({videos} videos)", table_columns([]), [table_cells(r, False) for r in rows])]
    if has_localization(rows):
        out.append((f"localization ({videos} videos)", ["perturbation", "severity", "AP@0.5", "AP@0.75", f"AR@{AR_N}"],
                    [[*table_cells(r, False)[:2], r.ap_iou50, r.ap_iou75, r.ar10] for r in rows]))
    return out


def table_cells(r: Row, loc: bool) -> list[Any]:
    sev = "-" if r.severity is None else f"{r.severity:g} {r.unit}"
    return [r.perturbation, sev, r.auc, r.accuracy, r.log_loss, r.ap,
            *([r.ap_iou50, r.ap_iou75, r.ar10] if loc else []), r.failed, r.one_stream]


def markdown_table(rows: Sequence[Row]) -> str:
    """The table in Markdown (for the docs)."""
    loc = has_localization(rows)
    head = table_columns(rows)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [f"{c:.3f}" if isinstance(c, float) else str(c) for c in table_cells(r, loc)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)
