"""Dense per-step features (what `fakelens features` stores) and the training Dataset over them.

A features folder FEATS/ is a cache (fakelens.data.cache: the same rows, index, shards, reuse
and merge rules) whose config.json is a `FeatureConfig`: the media parameters of the faces and
log-mels (every frame, or a stated fps), and the record of the encoders that turned them into
features (names, widths, strides and a digest of their weights; the weights themselves are
FEATS/encoder.pt, copied into every run trained on the folder). Per video, videos/<safe_id>.npz:
    visual       (T, Dv) float16  visual encoder output per sampled frame (zeros where no face)
    times        (T,) float64     seconds of the sampled frames
    indices      (T,) int64       their video frame indices
    found        (T,) bool        the main face was found there (False: masked, never scored)
    boxes        (T, 4) float32   main face box, displayed pixels
    audio        (A, Da) float16  audio encoder output per audio step (A = 0 without audio)
    audio_times  (A,) float64     seconds of the audio steps' centres
    step_frames  () int64         video frames per step (1 = every frame)
    first_frame  () int64         the video frame where step 0's cell starts (its sampled frame is
                                  the middle one of the step's k frames: first_frame + (k - 1) // 2)
    fps, duration, width, height  () scalars of the video
No face crops are kept (~100 KB a video instead of megabytes).

`step_inputs` puts both streams on the visual step grid (step j = frames [f0 + j k, f0 + (j + 1) k),
seconds [(f0 + j k) / fps, (f0 + (j + 1) k) / fps), f0 = first_frame): audio steps are averaged
into the steps their centres fall in, interpolated where a step holds none, and a step's target
is tested at its centre (step_labels). Its visual frame is the middle one of its k frames (frame
f0 + j k + (k - 1) // 2), so on a --fps grid the three stand for the same instant (to half a
frame for an even k); features version 1 took the cell's first frame, (k - 1) / 2 frames early.
Training items and `fakelens predict` both call it, so a localizer sees at inference what it was
trained on.

The grid counts frames: its seconds are frame / fps. A variable-frame-rate video's frames are not
1 / fps apart (a phone's 30-then-10 fps: frame 60 shown at 2.0 s, 60 / 20.96 = 2.86 s on the grid),
so where the sampled frames' `times` leave the grid by more than half a frame, `StepWarp` maps
real seconds onto the grid (segments before the frame rule, audio times before the averaging)
and the grid's seconds back to real ones (proposals and step times, fakelens.inference.localize).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from fakelens.errors import ConfigError, FakelensError
from fakelens.features.media import MediaConfig, changes_after
from fakelens.types import Modality, VideoRecord, segment_steps

FEATURES_KIND = "features"
FEATURES_VERSION = 2  # 2: a step's frame is the middle one of its k frames (1: the first; the same for k = 1)
FEATURES_CHANGES = {2: "its --fps grids took each step's frame at the step's start, (k - 1) / 2 frames before "
                       "the instant its audio and target stand for (the step's centre); this fakelens takes the "
                       "step's middle frame"}
FEATURE_DTYPE = np.float16
UNKNOWN = -1.0


@dataclass
class FeatureConfig:
    """What made a features folder: media parameters and the encoders' record (config.json)."""

    media: MediaConfig = field(default_factory=lambda: MediaConfig(sampling="all", find_every=4))
    encoder: dict[str, Any] = field(default_factory=dict)  # {"visual": {...}, "audio": {...}, "digest": ...}
    kind: str = FEATURES_KIND
    version: int = FEATURES_VERSION

    def __post_init__(self) -> None:
        if isinstance(self.media, Mapping):
            self.media = MediaConfig(**self.media)
        if self.kind != FEATURES_KIND:
            raise ConfigError(f"not a features config (kind {self.kind!r})")
        if self.media.sampling not in ("all", "fps"):
            raise ConfigError(f"dense features sample every frame or a stated fps, not {self.media.sampling!r}")

    @property
    def visual_dim(self) -> int:
        return int((self.encoder.get("visual") or {}).get("dim", 0))

    @property
    def audio_dim(self) -> int:
        return int((self.encoder.get("audio") or {}).get("dim", 0))

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "version": self.version, "media": self.media.to_dict(), "encoder": self.encoder}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "FeatureConfig":
        try:
            return cls(media=MediaConfig(**data["media"]), encoder=dict(data.get("encoder") or {}),
                       kind=data.get("kind", FEATURES_KIND), version=int(data.get("version", 0)))
        except (KeyError, TypeError) as e:
            raise ConfigError(f"not a fakelens features config ({e})") from None


def stale_features(version: Any) -> str:
    """Why features of `version` are not this fakelens' (FEATURES_VERSION): for refusals."""
    if isinstance(version, int) and version < FEATURES_VERSION:
        why = "; ".join(change for _, change in changes_after(FEATURES_CHANGES, version, FEATURES_VERSION))
        return (f"features made by an older fakelens (features version {version}; this fakelens makes version "
                f"{FEATURES_VERSION}" + (f": {why}" if why else "") + ")")
    return f"features of another fakelens (features version {version!r}; this fakelens makes version {FEATURES_VERSION})"


def is_features_config(data: Mapping[str, Any]) -> bool:
    return isinstance(data, Mapping) and data.get("kind") == FEATURES_KIND


# ------------------------------------------------------------------------------------ the step grid


@dataclass(frozen=True)
class StepWarp:
    """Real seconds <-> grid seconds (frame / fps) of a variable-frame-rate video, piecewise linear
    through its sampled frames (grid (T,) and real (T,) seconds, both increasing), continued past
    the first and the last at the rate of their neighbours."""

    grid: np.ndarray
    real: np.ndarray

    @staticmethod
    def _map(t: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        t = np.asarray(t, np.float64)
        out = np.interp(t, a, b)
        if len(a) > 1:
            lo, hi = (b[1] - b[0]) / (a[1] - a[0]), (b[-1] - b[-2]) / (a[-1] - a[-2])
            out = np.where(t < a[0], b[0] + (t - a[0]) * lo, np.where(t > a[-1], b[-1] + (t - a[-1]) * hi, out))
        else:
            out = b[0] + (t - a[0])
        return out

    def to_grid(self, t: np.ndarray) -> np.ndarray:
        return self._map(t, self.real, self.grid)

    def to_real(self, t: np.ndarray) -> np.ndarray:
        return self._map(t, self.grid, self.real)


def step_warp(times: np.ndarray, frames: np.ndarray, fps: float) -> StepWarp | None:
    """The StepWarp of sampled frames at real `times` (T,) with video frame indices `frames` (T,),
    None when every one is within half a frame of frame / fps (a constant frame rate)."""
    real = np.asarray(times, np.float64).reshape(-1)
    grid = np.asarray(frames, np.float64).reshape(-1) / float(fps)
    if len(real) != len(grid) or len(real) == 0 or np.abs(real - grid).max() <= 0.5 / float(fps):
        return None
    if np.any(np.diff(real) <= 0) or np.any(np.diff(grid) <= 0):
        return None  # not a usable map: the grid's seconds stand
    return StepWarp(grid, real)


def grid_segments(rec: VideoRecord, warp: StepWarp | None) -> list[tuple[float, float]]:
    """The record's fake segments in grid seconds (unchanged at a constant frame rate)."""
    if warp is None:
        return [(s.start, s.end) for s in rec.segments]
    return [(float(a), float(b)) for a, b in zip(warp.to_grid([s.start for s in rec.segments]),
                                                 warp.to_grid([s.end for s in rec.segments]))]


@dataclass
class StepInputs:
    """One video on its step grid, as the localizer takes it (no batch dim). `warp`: real seconds
    <-> grid seconds of a variable-frame-rate video (None at a constant rate)."""

    visual: np.ndarray  # (T, Dv) float32
    audio: np.ndarray  # (T, Da) float32, aligned to the visual steps
    visual_mask: np.ndarray  # (T,) bool: a face was found at this step
    audio_mask: np.ndarray  # (T,) bool: audio exists at this step
    indices: np.ndarray  # (T,) int64 video frame index of each step's first frame
    fps: float
    step_frames: int
    duration: float
    warp: StepWarp | None = None

    @property
    def n_steps(self) -> int:
        return len(self.visual)

    @classmethod
    def from_batch(cls, batch: Mapping[str, Any], i: int) -> "StepInputs":
        """Video i of a collated batch of `make_item`s, its padding cut off."""
        n = int(batch["mask"][i].sum())
        k = int(batch["step_frames"][i])
        first = int(batch["first_frame"][i])
        warp = None
        if "frame_times" in batch:  # the real seconds of the steps' sampled frames (make_item)
            real = batch["frame_times"][i, :n].double().cpu().numpy()
            warp = step_warp(real, batch["frame_indices"][i, :n].cpu().numpy(), float(batch["fps"][i]))
        return cls(visual=batch["visual_features"][i, :n].float().cpu().numpy(),
                   audio=batch["audio_features"][i, :n].float().cpu().numpy(),
                   visual_mask=batch["visual_mask"][i, :n].cpu().numpy(),
                   audio_mask=batch["audio_mask"][i, :n].cpu().numpy(),
                   indices=first + k * np.arange(n), fps=float(batch["fps"][i]), step_frames=k,
                   duration=float(batch["duration"][i]), warp=warp)

    @property
    def step_seconds(self) -> float:
        return self.step_frames / self.fps

    @property
    def origin(self) -> float:
        """Seconds where step 0 starts (the first sampled frame's cell)."""
        return float(self.indices[0]) / self.fps if len(self.indices) else 0.0

    @property
    def times(self) -> np.ndarray:
        """(T,) seconds where each step starts."""
        return self.origin + np.arange(self.n_steps) * self.step_seconds


def align_to_steps(values: np.ndarray, times: np.ndarray, origin: float, step: float, n: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """(A, D) values at (A,) increasing times -> (n, D) float32 on the grid of n steps of `step`
    seconds from `origin`: the mean of the values whose time falls in a step, linearly
    interpolated at the step's centre where none does; mask (n,) is True between the first and
    the last value (half a value spacing beyond them)."""
    out = np.zeros((n, values.shape[1] if values.ndim == 2 else 0), np.float32)  # (n, D)
    mask = np.zeros(n, bool)
    if len(times) == 0 or n == 0 or out.shape[1] == 0:
        return out, mask
    v = np.asarray(values, np.float32)
    t = np.asarray(times, np.float64)
    bins = np.floor((t - origin) / step).astype(np.int64)
    inside = (bins >= 0) & (bins < n)
    sums = np.zeros_like(out, dtype=np.float64)
    counts = np.zeros(n, np.int64)
    np.add.at(sums, bins[inside], v[inside])
    np.add.at(counts, bins[inside], 1)
    hit = counts > 0
    out[hit] = (sums[hit] / counts[hit, None]).astype(np.float32)
    centres = origin + (np.arange(n) + 0.5) * step
    if (~hit).any():
        j = np.clip(np.searchsorted(t, centres[~hit]), 1, max(1, len(t) - 1))
        if len(t) == 1:
            out[~hit] = v[0]
        else:
            t0, t1 = t[j - 1], t[j]
            w = np.clip((centres[~hit] - t0) / np.maximum(t1 - t0, 1e-12), 0.0, 1.0)[:, None]
            out[~hit] = (1 - w) * v[j - 1] + w * v[j]
    half = float(np.median(np.diff(t))) / 2 if len(t) > 1 else step / 2
    mask = (centres >= t[0] - half - 1e-9) & (centres <= t[-1] + half + 1e-9)
    return out, mask


def step_inputs(z: Mapping[str, Any]) -> StepInputs:
    """A video's stored dense arrays (the npz members above) -> `StepInputs`."""
    visual = np.asarray(z["visual"], np.float32)  # (T, Dv)
    indices = np.asarray(z["indices"], np.int64)  # (T,) the sampled frames
    fps = float(z["fps"])
    k = int(z["step_frames"])
    # where step 0's cell starts (arrays without first_frame: their first sampled frame)
    first = int(z["first_frame"]) if "first_frame" in z else (int(indices[0]) if len(indices) else 0)
    cells = first + k * np.arange(len(visual), dtype=np.int64)  # (T,) each step's first frame
    origin = first / fps
    # a variable frame rate: the audio's real seconds onto the grid of the frames it goes with
    warp = step_warp(z["times"], indices, fps) if "times" in z else None
    audio_times = np.asarray(z["audio_times"], np.float64)
    if warp is not None:
        audio_times = warp.to_grid(audio_times)
    audio, amask = align_to_steps(np.asarray(z["audio"]), audio_times, origin, k / fps, len(visual))
    return StepInputs(visual=visual, audio=audio, visual_mask=np.asarray(z["found"], bool), audio_mask=amask,
                      indices=cells, fps=fps, step_frames=k, duration=float(z["duration"]), warp=warp)


# ------------------------------------------------------------------------------------ targets


def _overlaps(seg, others) -> bool:
    return any(min(seg.end, o.end) > max(seg.start, o.start) for o in others)


def segment_modality(rec: VideoRecord) -> np.ndarray:
    """(S, 2) float32 visual-fake / audio-fake of each fake segment: from the per-stream segments
    when the dataset gives them, else the video's modality; -1 when unknown."""
    out = np.full((len(rec.segments), 2), UNKNOWN, np.float32)
    for i, seg in enumerate(rec.segments):
        if rec.visual_segments or rec.audio_segments:
            out[i] = (float(_overlaps(seg, rec.visual_segments)), float(_overlaps(seg, rec.audio_segments)))
        elif rec.modality is not Modality.NONE:
            out[i] = (float(rec.modality.visual), float(rec.modality.audio))
    return out


def step_labels(rec: VideoRecord, x: StepInputs) -> np.ndarray:
    """(T,) float32 per-step labels: 1 inside a fake segment (by its first frame, the frame rule of
    fakelens.types.frame_labels), 0 outside, all 1 for a fake video without segments, -1 unknown."""
    if not rec.has_label:
        return np.full(x.n_steps, UNKNOWN, np.float32)
    if rec.is_fake and not rec.segments:
        return np.ones(x.n_steps, np.float32)
    first = int(x.indices[0]) if len(x.indices) else 0
    edges = segment_steps(grid_segments(rec, x.warp), x.fps, x.step_frames, first)
    j = np.arange(x.n_steps)[:, None] + 0.5  # (T, 1) step centres
    return ((j > edges[None, :, 0]) & (j < edges[None, :, 1])).any(axis=1).astype(np.float32)


# ------------------------------------------------------------------------------------ the Dataset


class FeatureDataset(Dataset):
    """Whole videos of a features folder, one item each (the localizer trains on full videos of
    any length; `collate` pads a batch and masks the padding). With `max_steps` > 0, training
    takes a random window of that many steps from longer videos (segments cut to it).

    Item: visual_features (T, Dv), audio_features (T, Da) float32, mask (T,) all True,
    visual_mask (T,), audio_mask (T,) bool, frame_labels (T,), segments (S, 2) step edges,
    segment_modality (S, 2), n_segments, label / video_label (), step_seconds, origin, duration (),
    offset () the window's first step, fps, step_frames, first_frame (), segments_seconds (G, 2)
    the video's ground truth in seconds (padded with -1 in a batch), frame_times (T,) real seconds
    and frame_indices (T,) of each step's sampled frame (a variable frame rate's warp), id."""

    def __init__(self, cache_dir: str | Path, split: str | Sequence[str] | None = None, *,
                 labeled_only: bool = False, transform: Any = None, random: bool = True, max_steps: int = 0,
                 statuses: Sequence[str] | None = None):
        from fakelens.data.cache import load_config, read_index, record_from_row

        self.cache_dir = Path(cache_dir)
        self.config = load_config(self.cache_dir)
        if not isinstance(self.config, FeatureConfig):
            raise FakelensError(f"{self.cache_dir}: not a features folder (made by `fakelens preprocess`?); "
                                "make one with `fakelens features RUN_OR_ENCODER DATA --out FEATS`")
        splits = {split} if isinstance(split, str) else (set(split) if split is not None else None)
        self.rows = []
        # Videos of the asked split(s) left out, by reason (training reports them: left_out.json).
        self.left_out: dict[str, list[str]] = {}
        for r in read_index(self.cache_dir):
            if splits is not None and r.get("split") not in splits:
                continue
            reason = None
            if not r.get("npz") or r["status"] == "decode_error":
                reason = "could not be decoded"
            elif statuses is not None and r["status"] not in statuses:
                reason = f"status {r['status']}"
            elif not r.get("has_face") and not r.get("fallback") and not r.get("has_audio"):
                # every step masked in both streams: predict refuses such a video (nothing to localize from)
                reason = "neither a face nor audio (nothing to localize from)"
            elif labeled_only and r["label"] == "unknown":
                reason = "unlabelled"
            if reason is not None:
                self.left_out.setdefault(reason, []).append(r["id"])
                continue
            self.rows.append(r)
        if not self.rows:
            raise FakelensError(f"{self.cache_dir}: no videos with features match (split={split})")
        self.records = [record_from_row(r) for r in self.rows]
        self.transform = transform
        self.random = random
        self.max_steps = int(max_steps)

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def labels(self) -> np.ndarray:
        return np.array([float(r.label.as_int) if r.has_label else UNKNOWN for r in self.records], np.float32)

    def load(self, v: int) -> StepInputs:
        from fakelens.data.cache import load_npz

        return step_inputs(load_npz(self.cache_dir, self.rows[v]))

    def __getitem__(self, v: int) -> dict[str, Any]:
        rec = self.records[v]
        x = self.load(v)
        item = make_item(rec, x, self._window(x.n_steps))
        return self.transform(item) if self.transform is not None else item

    def _window(self, n: int) -> tuple[int, int]:
        if self.max_steps <= 0 or n <= self.max_steps:
            return 0, n
        a = int(torch.randint(n - self.max_steps + 1, ()).item()) if self.random else 0
        return a, a + self.max_steps



def make_item(rec: VideoRecord, x: StepInputs, window: tuple[int, int] | None = None) -> dict[str, Any]:
    """The training/validation item of one video (see FeatureDataset), optionally steps [a, b) only."""
    a, b = window if window is not None else (0, x.n_steps)
    first = int(x.indices[0]) if len(x.indices) else 0
    edges = segment_steps(grid_segments(rec, x.warp), x.fps, x.step_frames, first) - a
    # segments that cover a frame inside the window, cut to it (one covering no frame is no target)
    keep = (edges[:, 1] > 0) & (edges[:, 0] < b - a) & (edges[:, 1] > edges[:, 0])
    edges = np.clip(edges[keep], 0, b - a)
    mod = segment_modality(rec)[keep]
    labels = step_labels(rec, x)[a:b]
    video = float(rec.label.as_int) if rec.has_label else UNKNOWN
    # each step's sampled frame and its real seconds (StepInputs.from_batch rebuilds the warp)
    frames = x.indices[a:b] + (x.step_frames - 1) // 2
    real = frames / x.fps if x.warp is None else x.warp.to_real(frames / x.fps)
    return {
        "visual_features": torch.from_numpy(x.visual[a:b]),  # (T, Dv)
        "audio_features": torch.from_numpy(x.audio[a:b]),  # (T, Da)
        "mask": torch.ones(b - a, dtype=torch.bool),  # (T,)
        "visual_mask": torch.from_numpy(x.visual_mask[a:b]),  # (T,)
        "audio_mask": torch.from_numpy(x.audio_mask[a:b]),  # (T,)
        "frame_labels": torch.from_numpy(labels),  # (T,)
        "segments": torch.from_numpy(edges.astype(np.float32)),  # (S, 2) in steps
        "segment_modality": torch.from_numpy(mod),  # (S, 2)
        "n_segments": torch.tensor(len(edges)),
        "label": torch.tensor(_window_label(rec, video, len(edges), (a, b) != (0, x.n_steps))),
        "video_label": torch.tensor(video),
        "step_seconds": torch.tensor(x.step_seconds, dtype=torch.float64),
        "origin": torch.tensor(x.origin + a * x.step_seconds, dtype=torch.float64),
        "duration": torch.tensor(x.duration, dtype=torch.float64),
        "offset": torch.tensor(a),
        "fps": torch.tensor(x.fps, dtype=torch.float64),
        "step_frames": torch.tensor(x.step_frames),
        "first_frame": torch.tensor(int(x.indices[0]) + a * x.step_frames if len(x.indices) else 0),
        "segments_seconds": torch.tensor([s.to_list() for s in rec.segments], dtype=torch.float64).reshape(-1, 2),
        "frame_times": torch.from_numpy(np.asarray(real, np.float64)),  # (T,)
        "frame_indices": torch.from_numpy(np.asarray(frames, np.int64)),  # (T,)
        "id": rec.id,
    }


def _window_label(rec: VideoRecord, video: float, n_segments: int, cut: bool) -> float:
    """The label of an item: the video's, or for a window of a fake video with known segments,
    whether a segment reaches into it."""
    if not cut or video != 1.0 or not rec.segments:
        return video
    return 1.0 if n_segments else 0.0


def collate_steps(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Pad a list of items to the longest (T) and the most segments (S >= 1): padding steps have
    mask False, padding segments lie beyond n_segments; other values are stacked, ids listed."""
    t = max(int(it["mask"].shape[0]) for it in items)
    s = max([1] + [int(it["segments"].shape[0]) for it in items if "segments" in it])
    out: dict[str, Any] = {}
    for key in items[0]:
        vals = [it[key] for it in items]
        if key in ("visual_features", "audio_features", "mask", "visual_mask", "audio_mask", "frame_labels",
                   "frame_times", "frame_indices"):
            padded = []
            for v in vals:
                pad = t - v.shape[0]
                fill = -1.0 if key == "frame_labels" else 0
                padded.append(torch.cat([v, v.new_full((pad,) + tuple(v.shape[1:]), fill)]) if pad else v)
            out[key] = torch.stack(padded)  # (B, T, ...)
        elif key in ("segments", "segment_modality", "segments_seconds"):
            width = max(v.shape[0] for v in vals) if key == "segments_seconds" else s
            padded = [torch.cat([v, v.new_full((max(1, width) - v.shape[0], 2), -1.0)]) for v in vals]
            out[key] = torch.stack(padded)  # (B, S, 2)
        elif isinstance(vals[0], torch.Tensor):
            out[key] = torch.stack(vals)
        else:
            out[key] = list(vals)
    return out


FeatureDataset.collate = staticmethod(collate_steps)  # DataLoader collate_fn of the features dataset
