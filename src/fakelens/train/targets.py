"""What a run trains on, counted before it trains: every target of the task (`Task.targets()`),
its positives, negatives and unknown values over the training set's items, the class weight it
gets and whether it trains at all.

The counts are those of the labels the loss sees: each video's training items (clips, frames,
audio windows) at their random choices evenly spaced over their range (`census_labels` of the
cache datasets, the same label code as the items), after the task's `unknown_stream` rule
(fakelens.tasks.classification.resolve_unknown), so `pos_weight` of each term balances what it
really trains on (clip labels, not video labels) and a target that holds one class is caught
before the first step. Up to `MAX_VIDEOS` videos are read (evenly chosen; counts scaled to the
split), and videos whose labels do not vary in time are counted from their index row alone.

A target whose labels hold one class while its weight is > 0 is refused, naming the target and
the likely cause; except that under `task.unknown_stream: auto` a per-stream term left with one
class because the dataset does not say which stream of its fakes was manipulated is disabled,
and the run says so (log line, metrics.json "targets").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from fakelens.errors import ConfigError

MAX_VIDEOS = 2000  # videos read for the counts (the rest are estimated from them)
PER_VIDEO = 8  # training items per video counted (random choices evenly spaced)

# The config field of each term's weight (what to set to 0 to drop it).
WEIGHT_FIELD = {"visual": "task.visual_weight", "audio": "task.audio_weight", "mil_frame": "task.mil_weight",
                "mil_time": "task.mil_weight", "time": "task.audio_frame_weight", "frame": "task.frame_weight",
                "reg": "task.reg_weight", "modality": "task.modality_weight"}  # the last two: localization


@dataclass
class TargetCount:
    """The labels one target trains on over an epoch of the training set (expected counts of
    items, or of frames / mel frames for dense targets); `unknown` counts the values the dataset
    left unknown before the rule, `ignored` those left out of the loss after it."""

    term: str
    name: str
    weight: float
    rule: str
    positives: float = 0.0
    negatives: float = 0.0
    unknown: float = 0.0
    ignored: float = 0.0
    pos_weight: float | None = None
    status: str = "trains"

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.name, "term": self.term, "positives": round(self.positives, 3),
                "negatives": round(self.negatives, 3), "unknown": round(self.unknown, 3),
                "unknown_as": self.rule, "weight": self.weight, "pos_weight": self.pos_weight, "status": self.status}


@dataclass
class TargetPlan:
    """What a run trains: the counts per target, the per-term class weights, the disabled terms,
    and the lines the run prints and logs about them."""

    counts: list[TargetCount]
    videos_counted: int
    videos: int
    pos_weights: dict[str, float] = field(default_factory=dict)
    disabled: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # why training would be refused
    notes: list[str] = field(default_factory=list)  # what the run adapts to the data (dry run)

    def lines(self) -> list[str]:
        out = []
        for c in self.counts:
            extra = f", pos_weight {c.pos_weight:.3f}" if c.pos_weight is not None else ""
            unknown = ""
            if c.unknown:
                unknown = (f", {c.unknown:.0f} unknown-stream values trained on the video label" if c.rule == "video_label"
                           else f", {c.unknown:.0f} unknown-stream values left out")
            whole = all(_whole(x) for x in (c.positives, c.negatives))
            expected = "" if whole else " expected per epoch (the items' labels over their random choices)"
            out.append(f"target {c.name}: {_count(c.positives)} positive / {_count(c.negatives)} negative{expected}"
                       f"{unknown}, weight {c.weight:g}{extra}: {c.status}")
        if self.videos_counted < self.videos:
            out.append(f"targets counted on {self.videos_counted} of {self.videos} training videos, scaled")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"videos_counted": self.videos_counted, "videos": self.videos, "notes": list(self.notes),
                "targets": [c.to_dict() for c in self.counts], "disabled": list(self.disabled),
                "pos_weights": dict(self.pos_weights)}


def _whole(x: float) -> bool:
    return abs(x - round(x)) < 1e-6


def _count(x: float) -> str:
    """A target count in a line: an integer as one ("1", not "1.0"), an expected count to 0.1."""
    return f"{round(x)}" if _whole(x) else f"{x:.1f}"


def _unwrap(dataset: Any) -> tuple[Any, list[int]]:
    """(cache dataset, its video indices) behind a training dataset (LabeledSubset, or itself)."""
    if hasattr(dataset, "census_labels") and hasattr(dataset, "label_arrays"):
        return dataset, list(range(len(dataset.rows)))
    base = getattr(dataset, "base", None)
    if base is not None and hasattr(dataset, "indices") and hasattr(base, "census_labels"):
        return base, [int(i) for i in dataset.indices]
    return None, []


def _item_labels(dataset: Any, max_videos: int, keys: Sequence[str] = ()) -> tuple[list[tuple[float, list[dict[str, Any]]]], int, int]:
    """[(weight of each item, item label dicts)] per counted video, videos counted, videos. `keys`:
    the batch keys the targets read; a dataset that is not a cache dataset but lists its `labels`
    is counted from them without loading an item when the targets read only `label`."""
    base, videos = _unwrap(dataset)
    if base is not None:
        chosen = videos if len(videos) <= max_videos else [
            videos[int(i)] for i in np.linspace(0, len(videos) - 1, max_videos).round().astype(int)]
        per_epoch = float(getattr(base, "items_per_video", 1))
        out = []
        for v in chosen:
            items = base.census_labels(v, base.label_arrays(v), PER_VIDEO)
            out.append((per_epoch / max(1, len(items)), items))
        return out, len(chosen), len(videos)
    labels = getattr(dataset, "labels", None)
    if labels is not None and set(keys) <= {"label"}:  # given to fit with its labels: no item loaded
        return [(1.0, [{"label": float(y)}]) for y in labels], len(labels), len(labels)
    # Any other dataset (given to fit directly): its items, without disturbing the random state.
    import torch

    n = len(dataset)
    idx = list(range(n)) if n <= max_videos else np.linspace(0, n - 1, max_videos).round().astype(int).tolist()
    out = []
    with torch.random.fork_rng(devices=[]):
        for i in idx:
            item = dataset[i]
            out.append((1.0, [{k: v.numpy() if hasattr(v, "numpy") else v for k, v in item.items()
                               if not isinstance(v, str)}]))
    return out, len(idx), n


def _to_steps(raw: np.ndarray, resolved: np.ndarray, valid: np.ndarray,
              stride: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-mel-frame labels (W,) -> the per-step labels the dense audio term trains on (the task's
    own pooling, fakelens.tasks.classification._labels_to_steps): (raw, resolved, valid) per step,
    -1 where a step holds no known label (raw: before the unknown-stream rule)."""
    import torch

    from fakelens.tasks.classification import _labels_to_steps

    steps = -(-raw.size // stride)
    ok = torch.from_numpy(valid)[None]

    def pooled(values: np.ndarray) -> np.ndarray:
        v = torch.from_numpy(values)[None]
        lab, known = _labels_to_steps(v, ok & (v >= 0), stride, steps)  # (1, F'), (1, F')
        return torch.where(known, lab, torch.full_like(lab, -1.0))[0].numpy()

    any_valid = _labels_to_steps(torch.zeros(1, raw.size), ok, stride, steps)[1][0].numpy()  # (F',)
    return pooled(raw), pooled(resolved), any_valid


def count_targets(dataset: Any, task: Any, max_videos: int = MAX_VIDEOS) -> tuple[list[TargetCount], int, int]:
    """Positives / negatives / unknown of every target of `task` over `dataset`'s training items."""
    import torch

    from fakelens.tasks.classification import resolve_unknown

    targets = task.targets()
    counts = [TargetCount(t.term, t.name, t.weight, t.unknown) for t in targets]
    per_video, counted, total = _item_labels(dataset, max_videos, [t.key for t in targets])
    for weight, items in per_video:
        for item in items:
            for t, c in zip(targets, counts):
                if t.key not in item:
                    continue
                raw = np.asarray(item[t.key], np.float32).reshape(-1)  # (n,)
                valid = np.ones_like(raw, bool)
                if t.mask_key is not None and t.mask_key in item and np.size(item[t.mask_key]) == raw.size:
                    valid = np.asarray(item[t.mask_key], bool).reshape(-1)
                batch = {t.key: torch.from_numpy(raw)[None]}
                if "video_label" in item:
                    batch["video_label"] = torch.tensor([float(item["video_label"])])
                resolved = resolve_unknown(t, batch)[0].numpy()
                if t.term == "time" and getattr(task, "time_stride", None):  # the loss sees audio steps
                    raw, resolved, valid = _to_steps(raw, resolved, valid, int(task.time_stride))
                c.unknown += weight * float(((raw < 0) & valid).sum())
                c.ignored += weight * float(((resolved < 0) & valid).sum())
                c.positives += weight * float(((resolved >= 0.5) & valid).sum())
                c.negatives += weight * float(((resolved >= 0) & (resolved < 0.5) & valid).sum())
    scale = total / max(1, counted)
    for c in counts:
        c.positives, c.negatives, c.unknown, c.ignored = (x * scale for x in (c.positives, c.negatives, c.unknown,
                                                                               c.ignored))
    return counts, counted, total


# The stream each per-stream term learns (the others: any stream of the video).
TERM_STREAM = {"audio": "audio", "mil_time": "audio", "time": "audio", "visual": "visual", "mil_frame": "visual"}


def _stream(c: TargetCount) -> str | None:
    """The stream a target learns (None: the video's label, any stream)."""
    if c.term in TERM_STREAM:
        return TERM_STREAM[c.term]
    return next((s for s in ("visual", "audio") if c.name.startswith(s)), None)  # e.g. visual_frame_labels


def _records(dataset: Any) -> list[Any]:
    """The VideoRecords a training dataset lists (empty when it lists none)."""
    try:
        return list(getattr(dataset, "records", None) or [])
    except TypeError:
        return []


def fake_videos(dataset: Any, stream: str | None = None) -> int | None:
    """Fake videos of the training `dataset` (its `records`), those whose `stream` is stated as
    manipulated when a stream is given; None when the dataset lists no records."""
    records = _records(dataset)
    if not records:
        return None
    if stream is None:
        return sum(bool(r.is_fake) for r in records)
    own = "visual_segments" if stream == "visual" else "audio_segments"
    return sum(bool(r.is_fake and (getattr(r, own, ()) or getattr(r.modality, stream, False))) for r in records)


def learned_stream(dataset: Any) -> str | None:
    """The one stream a training dataset's items carry ("visual": face crops, "audio": the voice),
    None when they carry both or the dataset does not say (fakelens.data.dataset.learned_label)."""
    base, _ = _unwrap(dataset)
    return getattr(base if base is not None else dataset, "learned_stream", None)


def other_stream_fakes(dataset: Any, stream: str) -> tuple[int, list[str]] | None:
    """(fake videos of the training `dataset` that may be fake in `stream`, ids of the fakes whose
    `stream` the dataset says is untouched: audio-only fakes to a face model); None without records."""
    from fakelens.data.dataset import _stream_segments

    records = _records(dataset)
    if not records:
        return None
    fakes = [r for r in records if r.is_fake]
    other = [r.id for r in fakes if _stream_segments(r, stream) == ()]
    return len(fakes) - len(other), other


def _other_stream(stream: str, ids: list[str], drop: str) -> str:
    """Why the target of a model of one `stream` is all real when every fake of the training split
    is of the other stream (`ids`), and what to change."""
    other = "audio" if stream == "visual" else "visual"
    shown = ", ".join(ids[:5]) + (f", ... ({len(ids)} in all)" if len(ids) > 5 else "")
    sees = ("face crops only (data.dataset=clips / frames)" if stream == "visual" else "the audio only")
    many = len(ids) > 1
    what = (f"{len(ids)} fake video{'s' if many else ''} of the training split "
            f"{'are all' if many else 'is an' if other == 'audio' else 'is a'} {other}-only fake{'s' if many else ''} ({shown})")
    return (f"every label is negative (real): the {what}, and the model sees {sees}, where "
            f"{'they are' if many else 'it is'} real; a cache with "
            f"frames sampled more densely cannot change that. Train on data whose training split holds "
            f"{stream} fakes (a carved validation, data.val_split='', keeps them in training), or a recipe whose "
            f"model gets both streams (data.dataset=av, e.g. configs/demo.yaml), or {drop}")


def _cause(c: TargetCount, cfg: Any, fakes: int | None = None, stream: str | None = None,
           other: list[str] | None = None) -> str:
    """Why a target holds one class, and what to change; `fakes`: the fake videos of the training
    split in the target's stream (fake_videos), to tell a split without fakes from training items
    that miss every fake segment (a cache sampled too sparsely for the segments); `other`: the
    ids of fakes the dataset says are untouched in the target's `stream` (other_stream_fakes)."""
    field_name = WEIGHT_FIELD.get(c.term)
    drop = f"set {field_name}=0" if field_name else "check the training split's labels"
    if c.positives <= 0 and c.negatives <= 0:
        return f"no training item has a known label for it; {drop}"
    one = "negative (real)" if c.positives <= 0 else "positive (fake)"
    if c.ignored > 0:
        return (f"every known label is {one}: the {c.ignored:.0f} values of fakes whose stream the dataset does not "
                f"state are left out (task.unknown_stream={cfg.unknown_stream}); set task.unknown_stream=video_label "
                f"to train them on the video label, or {drop}")
    if c.positives <= 0 and stream and other and not fakes:
        return _other_stream(stream, other, drop)
    if c.positives <= 0:
        stream = _stream(c) or stream
        # fake videos there are, but no item of theirs falls inside a fake segment (not the
        # localizer's modality term: its labels are which stream a segment is, not where)
        if fakes and c.term != "modality":
            kind = f"{fakes} fake video{'s' if fakes > 1 else ''}" + (f" with a {stream} fake" if stream else "")
            return (f"every label is {one}, although the training split holds {kind}: none of the training items "
                    "taken from them (clips of the cache's sampled frames or mel frames) falls inside a fake "
                    "segment, so the cache samples too few frames for its fake segments; preprocess with more "
                    f"frames per video (a higher --fps, or --frames N), or {drop}")
        what = f"no {stream} fake" if stream else "no fake"
        return f"every label is {one}: the training split holds {what} for it; {drop}, or train on data that has some"
    return f"every label is {one}: the training split holds no real item for it; {drop}"


def plan_targets(dataset: Any, task: Any, balance: str, max_videos: int = MAX_VIDEOS) -> TargetPlan:
    """Count the targets of `task` on the training `dataset` and decide what trains: a per-term
    pos_weight (n_negative / n_positive) when `balance` is "pos_weight", terms disabled under the
    "auto" unknown-stream rule, and the problems that refuse training."""
    cfg = task.cfg
    counts, counted, total = count_targets(dataset, task, max_videos)
    plan = TargetPlan(counts, counted, total)
    for c in counts:
        if c.positives > 0 and c.negatives > 0:
            if balance == "pos_weight":
                c.pos_weight = c.negatives / c.positives
                plan.pos_weights[c.term] = c.pos_weight
            continue
        if cfg.unknown_stream == "auto" and c.term != "video" and c.ignored > 0:
            c.status = (f"disabled (weight {c.weight:g} -> 0): the stream of the fakes is unknown, "
                        f"the known labels are all {'real' if c.positives <= 0 else 'fake'}")
            c.weight = 0.0
            plan.disabled.append(c.term)
            continue
        c.status = "REFUSED"
        fakes, stream, other = None, None, None
        if c.positives <= 0:
            # the stream this target learns: its own (a per-stream head), else the one the items carry
            stream = _stream(c) or learned_stream(dataset)
            fakes = fake_videos(dataset, _stream(c))
            # a model of one stream (not a per-stream head of a model that gets both): fakes of the other
            split = other_stream_fakes(dataset, stream) if stream and not _stream(c) else None
            if split is not None:
                fakes, other = split
        plan.problems.append(f"target {c.name} has weight {c.weight:g} but {_cause(c, cfg, fakes, stream, other)}")
    return plan


def check_plan(plan: TargetPlan) -> None:
    """Refuse a run whose targets cannot train (ConfigError naming each target and the cause)."""
    if plan.problems:
        raise ConfigError("cannot train: " + "; ".join(plan.problems))


# How a row of the table names a target whose batch key another target of the task also reads
# (the av task trains visual_label / audio_label twice: its stream head and the pooled MIL term).
ROW_SUFFIX = {"visual": "head_v", "audio": "head_a", "mil_frame": "MIL", "mil_time": "MIL"}


def row_name(c: TargetCount, shared: bool) -> str:
    """The table's name of a target: its batch key, and when another target reads the same key,
    which part of the model it trains (`visual_label (head_v)` / `visual_label (MIL)`)."""
    key = c.name.split(" (")[0]
    return f"{key} ({ROW_SUFFIX.get(c.term, c.term)})" if shared else key


def short_count(x: float) -> str:
    """A count in at most 7 characters (the table holds 80 columns): 1234.5, 98.8k, 1234.5M; a whole
    one as an integer (1, as the target lines say, not 1.0)."""
    if abs(x) >= 1e6:
        return f"{x / 1e6:.1f}M"
    if abs(x) >= 1e4:
        return f"{x / 1e3:.1f}k"
    return _count(x)


def table_rows(plan: TargetPlan) -> list[list[Any]]:
    """Rows of the `target | positives | negatives | unknown | weight | pos_weight | status` table:
    a target by its batch key (with the part it trains where two targets share a key, `row_name`),
    its status in a word (trains, disabled, REFUSED); `remarks` says why and what its unknown
    values train as."""
    keys = [c.name.split(" (")[0] for c in plan.counts]
    rows = []
    for c, key in zip(plan.counts, keys):
        status = "REFUSED" if c.status == "REFUSED" else c.status.split(" ")[0]
        rows.append([row_name(c, keys.count(key) > 1), short_count(c.positives), short_count(c.negatives),
                     short_count(c.unknown), f"{c.weight:g}", "" if c.pos_weight is None else f"{c.pos_weight:.3f}",
                     status])
    return rows


def remarks(plan: TargetPlan) -> list[str]:
    """One line per target of the table whose labels include unknowns or that does not train as
    asked: what it is, what its unknown values train as, why it is disabled."""
    out = []
    for c in plan.counts:
        parts = []
        if c.unknown:
            parts.append(f"{c.unknown:.0f} unknown-stream values "
                         + ("trained on the video label" if c.rule == "video_label" else "left out"))
        if c.status.startswith("disabled"):
            parts.append(c.status)
        if parts:
            out.append(f"{c.name}: " + "; ".join(parts))
    return out


TABLE_COLUMNS: Sequence[str] = ("target", "positives", "negatives", "unknown", "weight", "pos_weight", "status")
