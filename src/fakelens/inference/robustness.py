"""How a run holds up under degradations: `fakelens robustness RUN DATA`.

For each condition (the clean videos, then each perturbation of fakelens.io.perturb at each of its
severities) every labelled video is scored by the one inference pipeline (Predictor over
fakelens.features.media) and the run's scores give AUC, accuracy at 0.5, log loss and average
precision. Media perturbations write a perturbed copy of each video once, under
OUT/media/NAME/SEVERITY/ (atomically: a copy that exists is whole and is reused); attacks on the
model's inputs (FGSM, PGD) perturb the face crops inside the pipeline
(fakelens.inference.adversarial). A video that cannot be scored under a condition (a face lost
in the blur) gets the run's training prior and is counted (`failed`), so every row ranks the same
videos; one scored from a single stream is counted too (`one_stream`).

Each finished condition is saved in OUT/conditions/ with the checkpoint it was scored with: a
run killed and started again does only the conditions left.
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
COLUMNS = ("perturbation", "stream", "severity", "unit", "videos", "auc", "accuracy", "log_loss", "ap", "failed",
           "one_stream", "seconds")


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


def score_row(name: str, severity: float | None, labels: np.ndarray, scores: np.ndarray, failed: int,
              one_stream: int, seconds: float) -> Row:
    """The metrics of one condition (nan where undefined: one class only)."""
    from fakelens.metrics.classification import auc, log_loss, threshold_metrics

    p = PERTURBATIONS.get(name) if name != CLEAN else None
    both = len(set(labels.tolist())) == 2
    a = auc(labels, scores) if both else float("nan")
    ap = _average_precision(labels, scores) if both else float("nan")
    acc = float(threshold_metrics(labels, scores, 0.5).accuracy)
    return Row(name, p.stream if p else "-", severity, p.unit if p else "-", int(len(labels)), float(a), acc,
               float(log_loss(labels, scores)), float(ap), failed, one_stream,
               round(seconds, 2))


def _average_precision(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import average_precision_score

    return float(average_precision_score(labels, scores))


class RobustnessJob:
    """Scores `records` with `predictor` under each condition, caching perturbed media and each
    finished condition under `out`."""

    def __init__(self, predictor: Any, records: Sequence[VideoRecord], out: str | Path, *, seed: int = 0,
                 workers: int = 0, progress: bool = False, log: Callable[[str], None] | None = None):
        from fakelens.atomic import ensure_writable
        from fakelens.inference.journal import file_stamp

        self.predictor = predictor
        self.records = labelled(records)
        self.out = ensure_writable(out)
        self.seed, self.workers, self.progress = int(seed), int(workers), progress
        self.log = log or (lambda line: None)
        self.stamp = {"checkpoint": str(Path(predictor.run.checkpoint).resolve()),
                      "checkpoint_file": file_stamp(predictor.run.checkpoint), "seed": self.seed,
                      "videos": [r.id for r in self.records]}

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
                    self.log(f"{name} {'' if severity is None else f'{severity:g} '}: done by an earlier run")
                    return Row(**doc["row"])
            except (OSError, ValueError, TypeError):
                pass  # unreadable or of another version: scored again
        t0 = time.perf_counter()
        labels, scores, failed, one = self._score(name, severity)
        row = score_row(name, severity, labels, scores, failed, one, time.perf_counter() - t0)
        saved.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(saved, json.dumps({"stamp": self.stamp, "row": dataclasses.asdict(row),
                                             "scores": scores.tolist()}) + "\n")
        self.log(f"{name} {'' if severity is None else f'{severity:g} '}: AUC {row.auc:.4f}, accuracy "
                 f"{row.accuracy:.4f} ({row.failed} failed, {row.one_stream} from one stream)")
        return row

    def _score(self, name: str, severity: float | None) -> tuple[np.ndarray, np.ndarray, int, int]:
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
        try:
            todo = [r for r in records if r.id not in broken]
            result = pr.predict(todo, on_error="prior", workers=self.workers, progress=self.progress)
        finally:
            pr.clip_transform = None
        by_id = {p.id: p.score for p in result.predictions}
        scores = np.array([by_id.get(r.id, pr.run.prior) for r in self.records], np.float64)  # (N,)
        labels = np.array([r.label.as_int for r in self.records], np.int64)  # (N,)
        return labels, scores, len(result.failures) + len(broken), len(one_stream(result.predictions, pr.inputs))

    def _perturbed(self, name: str, severity: float) -> tuple[list[VideoRecord], set[str]]:
        """The records pointing at their perturbed copies (made now where missing), and the ids of
        videos whose copy could not be made (an unreadable source)."""
        from fakelens.errors import MediaError

        folder = self.out / "media" / name / f"{severity:g}"
        out, broken = [], set()
        items = list(enumerate(self.records))
        if self.progress:
            from tqdm import tqdm

            items = tqdm(items, desc=f"{name} {severity:g}", unit="video", leave=False)
        for i, rec in items:
            dst = folder / f"{i:06d}_{Path(rec.path).stem[:80]}{output_suffix(name)}"
            if not dst.is_file():
                try:
                    perturb_file(rec.path, dst, name, severity, self.seed)
                except (MediaError, ValueError) as e:
                    self.log(f"{rec.id}: cannot be perturbed ({e}); given the prior")
                    broken.add(rec.id)
            out.append(dataclasses.replace(rec, path=dst))
        return out, broken


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


def markdown_table(rows: Sequence[Row]) -> str:
    """The table in Markdown (for the docs)."""
    head = "| perturbation | severity | AUC | accuracy | log loss | AP | failed | one stream |"
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        sev = "-" if r.severity is None else f"{r.severity:g} {r.unit}"
        lines.append(f"| {r.perturbation} | {sev} | {r.auc:.3f} | {r.accuracy:.3f} | {r.log_loss:.3f} | {r.ap:.3f} "
                     f"| {r.failed} | {r.one_stream} |")
    return "\n".join(lines)
