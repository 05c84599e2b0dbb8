"""Torch Datasets over a preprocessing cache (fakelens.data.cache): frames, clips, audio windows, both.

Every item is a dict; tensors are made here, shapes below (S = crop side, T = clip frames,
M = mel bands, W = mel frames). Labels are float32 scalars: 1 = fake, 0 = real, -1 = unknown
(unlabeled test videos). Per-frame labels come from the record's fake segments with the official
frame convention (`VideoRecord.frame_labels` at the sampled frames' video indices); a fake video
without segments is fake in every frame. Per-stream labels (visual_*, audio_*) use
`visual_segments` / `audio_segments` where the dataset has them, else the video's modality; where
the dataset does not say which stream of a fake was manipulated (Modality.UNKNOWN: DFDC, CSV,
folders) they are -1 = unknown, and the task's `unknown_stream` rule decides what trains on them
(fakelens.tasks: the video label, or left out). An audio window's `label` is its audio label.

  FrameDataset  one frame per item, `frames_per_video` items per video, a random frame each epoch:
      the keys of ClipDataset with T = 1 (video (1, 3, S, S), label = that frame's label, ...)
  ClipDataset   T consecutive sampled frames per video (random start when random=True; in a
      cache of clip windows (sampling "windows") a clip lies inside one window, T dividing its length):
      video (T, 3, S, S), frame_labels (T,) fake in any stream, visual_frame_labels (T,) face
      fake (an audio-only fake is 0 here), label (clip: any fake frame), video_label,
      visual_label, audio_label, times (T,), found (T,) bool, mask (T,) bool (False = padding),
      counted (T,) bool (the frames per-frame aggregation counts: see `tile_clips`), id
  AudioDataset  a window of W mel frames per video:
      audio (1, M, W), audio_frame_labels (W,) audio-fake per mel frame, label (window), video_label,
      audio_times (W,), audio_mask (W,) (False = padding past the end of the audio), id
  AVDataset     a face clip and the mel window that starts at its first frame:
      everything of ClipDataset plus audio (1, M, W), audio_frame_labels (W,), audio_times (W,)

Images are float32 in [0, 1] (uint8 with as_uint8=True, cheaper to collate). `transform(item)
-> item` runs last (augmentations). Random choices use torch's generator, so DataLoader worker
seeding and torch.manual_seed make them reproducible.

`tile_clips` / `tile_windows` say how a whole video is cut into model inputs; `fakelens predict`
(fakelens.inference.pipeline) and validation (`AllClips`, one item per clip of every video) both
call them, so a validation score is the score predict gives.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from fakelens.data.cache import load_config, load_npz, open_npz, read_index, record_from_row
from fakelens.errors import ConfigError, FakelensError
from fakelens.registry import Registry
from fakelens.types import Modality, Segment, VideoRecord, frame_labels

Transform = Callable[[dict[str, Any]], dict[str, Any]]
UNKNOWN = -1.0


def _video_label(rec: VideoRecord) -> float:
    return float(rec.label.as_int) if rec.has_label else UNKNOWN


UNKNOWN_STREAM = "unknown stream"  # _stream_segments: the dataset does not say whether this stream is fake


def _stream_segments(rec: VideoRecord, stream: str) -> tuple[Segment, ...] | None | str:
    """Fake segments of one stream; None means 'the whole video is fake in this stream',
    UNKNOWN_STREAM that the dataset does not say whether this stream of a fake is manipulated."""
    own = rec.visual_segments if stream == "visual" else rec.audio_segments
    if own:
        return own
    if not rec.is_fake:
        return ()
    if not rec.modality.known or rec.modality is Modality.NONE:  # a fake of unstated (or unset) modality
        return UNKNOWN_STREAM
    if not getattr(rec.modality, stream):
        return ()
    if rec.visual_segments or rec.audio_segments:  # per-stream segments given, none for this stream
        return ()
    return rec.segments if rec.segments else None


def _labels_at_indices(segments: tuple[Segment, ...] | None | str, rec: VideoRecord, fps: float,
                       indices: np.ndarray) -> np.ndarray:
    """(T,) float32 0/1 at video frame `indices`, or -1 when the label is unknown."""
    if not rec.has_label or isinstance(segments, str):  # unlabelled, or UNKNOWN_STREAM
        return np.full(len(indices), UNKNOWN, np.float32)
    if segments is None:
        return np.ones(len(indices), np.float32)
    n = int(indices.max()) + 1 if len(indices) else 0
    return frame_labels(segments, fps, n)[indices].astype(np.float32)  # (T,)


def _labels_at_times(segments: tuple[Segment, ...] | None | str, rec: VideoRecord, times: np.ndarray) -> np.ndarray:
    """(W,) float32 0/1 for instants `times` (start <= t < end), or -1 when the label is unknown."""
    if not rec.has_label or isinstance(segments, str):  # unlabelled, or UNKNOWN_STREAM
        return np.full(len(times), UNKNOWN, np.float32)
    if segments is None:
        return np.ones(len(times), np.float32)
    out = np.zeros(len(times), np.float32)  # (W,)
    for s in segments:
        out[(times >= s.start) & (times < s.end)] = 1.0
    return out


def _any(labels: np.ndarray) -> float:
    return UNKNOWN if len(labels) and labels[0] == UNKNOWN else float(labels.max(initial=0.0))


class CacheDataset(Dataset):
    """Rows of a cache index filtered by split/status and by what the item needs (face, audio)."""

    need_face = False
    need_audio = False

    def __init__(self, cache_dir: str | Path, split: str | Sequence[str] | None = None, *,
                 statuses: Sequence[str] | None = None, labeled_only: bool = False,
                 transform: Transform | None = None, as_uint8: bool = False):
        self.cache_dir = Path(cache_dir)
        self.config = load_config(self.cache_dir)
        splits = {split} if isinstance(split, str) else (set(split) if split is not None else None)
        rows = []
        # Videos of the asked split(s) this dataset cannot use, by reason (reported by training).
        self.left_out: dict[str, list[str]] = {}
        for row in read_index(self.cache_dir):
            if splits is not None and row.get("split") not in splits:
                continue
            reason = None
            if row["status"] == "decode_error" or not row.get("npz"):
                reason = "could not be decoded"
            elif statuses is not None and row["status"] not in statuses:
                reason = f"status {row['status']}"
            elif self.need_face and not row.get("has_face"):
                reason = "no face found (the model needs face crops)"
            elif self.need_audio and not row.get("has_audio"):
                reason = "no audio track (the model needs audio)"
            elif labeled_only and row["label"] == "unknown":
                reason = "unlabelled"
            if reason is not None:
                self.left_out.setdefault(reason, []).append(row["id"])
                continue
            rows.append(row)
        if not rows:
            raise FakelensError(f"{self.cache_dir}: no cached videos match (split={split}, statuses={statuses}, "
                                f"needs face={self.need_face}, audio={self.need_audio})")
        self.rows = rows
        self.records = [record_from_row(r) for r in rows]
        self.transform = transform
        self.as_uint8 = as_uint8

    keys: tuple[str, ...] = ("faces", "times", "indices", "found", "fps")  # npz members an item needs

    def _load(self, v: int) -> dict[str, Any]:
        """The npz members of video v an item needs; "faces" is lazy (fakelens.data.arrays.ChunkedArray):
        `z["faces"][f, pick]` decompresses only the chunks holding those frames."""
        return open_npz(self.cache_dir, self.rows[v], self.keys)

    def _images(self, faces: np.ndarray) -> torch.Tensor:
        """(..., S, S, 3) uint8 -> (..., 3, S, S) uint8 or float32 in [0, 1]."""
        t = torch.from_numpy(np.ascontiguousarray(faces)).movedim(-1, -3)
        return t.contiguous() if self.as_uint8 else t.float().div_(255.0)

    def _finish(self, item: dict[str, Any]) -> dict[str, Any]:
        return self.transform(item) if self.transform is not None else item

    @property
    def labels(self) -> np.ndarray:
        """(V,) video labels of the rows (1 fake, 0 real, -1 unknown), for samplers and class weights."""
        return np.array([_video_label(r) for r in self.records], np.float32)

    def _count(self, v: int, count: str, key: str) -> int:
        """Length of a cached array of video v: the index row's `counts[count]`, else read from the npz."""
        n = (self.rows[v].get("counts") or {}).get(count)
        return int(n) if n is not None else len(load_npz(self.cache_dir, self.rows[v], (key,))[key])

    label_keys: tuple[str, ...] = ()  # npz members the targets of an item are computed from
    items_per_video = 1  # items of each video in an epoch

    def label_arrays(self, v: int) -> dict[str, Any]:
        """The arrays `census_labels` needs for video v: read from the cache when its labels vary in
        time (it has fake segments), else made from the index row (times evenly spread over the
        duration), since labels that are constant over the video do not depend on them."""
        rec, row = self.records[v], self.rows[v]
        counts = row.get("counts") or {}
        if not (rec.segments or rec.visual_segments or rec.audio_segments) and row.get("duration") and \
                all(counts.get(c) is not None for c in ("frames", "mel_frames")):
            n, duration = int(counts["frames"]), float(row["duration"])
            hop = self.config.hop_seconds if self.config is not None else 0.01
            return {"times": np.arange(n) * duration / max(1, n), "indices": np.arange(n),
                    "fps": float(row.get("fps") or max(1, n) / duration),
                    "mel_times": np.arange(int(counts["mel_frames"])) * hop}
        return load_npz(self.cache_dir, row, self.label_keys)

    def census_labels(self, v: int, z: dict[str, Any], per_video: int) -> list[dict[str, Any]]:
        """The targets (and masks) of up to `per_video` training items of video v, their random
        choices (clip start, window start) evenly spaced over their range, as the items hold them."""
        raise FakelensError(f"{type(self).__name__} does not list its targets")

    def n_tiles(self, v: int) -> int:
        """How many inputs `fakelens predict` cuts video v into (see `tile`)."""
        raise FakelensError(f"{type(self).__name__} gives no whole-video tiling: predict never feeds its items")

    def tile(self, v: int, k: int, z: dict[str, np.ndarray]) -> dict[str, Any]:
        """Item of the k-th input predict cuts video v into (z: its loaded npz), without `transform`."""
        raise FakelensError(f"{type(self).__name__} gives no whole-video tiling: predict never feeds its items")


def _scalar(x: float) -> torch.Tensor:
    return torch.tensor(x, dtype=torch.float32)


class ClipTiling(NamedTuple):
    """How a video of n sampled frames is cut into K clips of C frames (see `tile_clips`)."""

    picks: np.ndarray  # (K, C) int64 frame positions
    mask: np.ndarray  # (K, C) bool, False = padding (only in a video shorter than one clip)
    counted: np.ndarray  # (K, C) bool, True where a frame is counted by per-frame aggregation and
    #                      timelines: not padding, and not already in an earlier clip of the tiling


def tile_clips(n: int, clip_frames: int) -> ClipTiling:
    """How a video of n sampled frames is cut into model clips, by training validation and predict
    alike: consecutive clips of C = clip_frames frames from frame 0, the last one ending at the
    last frame (overlapping the one before when n is not a multiple of C), so every clip holds
    real frames only and a video's scores do not depend on whether n is a multiple of C. Only a
    video shorter than one clip is padded (with its last frame, masked). K = ceil(n / C) clips,
    K = 0 when n = 0; `counted` marks each frame once (the overlap counts in the earlier clip)."""
    if clip_frames < 1:
        raise ValueError(f"clip_frames must be >= 1, got {clip_frames}")
    n = max(0, int(n))
    k = -(-n // clip_frames)
    starts = np.minimum(np.arange(k) * clip_frames, max(0, n - clip_frames))  # (K,)
    wanted = starts[:, None] + np.arange(clip_frames)[None, :]  # (K, C)
    mask = wanted < n
    counted = mask & (wanted >= (np.arange(k) * clip_frames)[:, None])
    return ClipTiling(np.minimum(wanted, max(0, n - 1)).astype(np.int64), mask, counted)


def tile_windows(n: int, width: int) -> np.ndarray:
    """Start mel frames (K,) of the audio windows an audio-only model gets: 0, W, 2W, ..., the last
    one ending at the last mel frame (overlapping the one before) so that no window is padded
    unless the audio is shorter than one window; at least one window, K = max(1, ceil(n / W))."""
    if width < 1:
        raise ValueError(f"width must be >= 1, got {width}")
    k = max(1, -(-max(0, int(n)) // width))
    return np.minimum(np.arange(k) * width, max(0, int(n) - width))  # (K,)


def _frame_fields(rec: VideoRecord, fps: float, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame labels (any stream, visual, audio) at video frame indices, each (T,)."""
    return {
        "frame_labels": _labels_at_indices(rec.segments if rec.segments else None if rec.is_fake else (),
                                           rec, fps, indices),
        "visual": _labels_at_indices(_stream_segments(rec, "visual"), rec, fps, indices),
        "audio": _labels_at_indices(_stream_segments(rec, "audio"), rec, fps, indices),
    }


class ClipDataset(CacheDataset):
    """T consecutive sampled face frames per video; shorter videos are padded with their last frame."""

    need_face = True

    def __init__(self, cache_dir: str | Path, split: str | Sequence[str] | None = None, *,
                 clip_frames: int = 16, random: bool = True, **kwargs):
        super().__init__(cache_dir, split, **kwargs)
        self.clip_frames = int(clip_frames)
        self.random = random
        # Frames of one clip window in a cache sampled in windows (fakelens.features.crops), else None.
        self.window = self.config.window_frames if self.config is not None and self.config.sampling == "windows" \
            else None
        if self.window is not None and self.window % self.clip_frames:
            raise ConfigError(
                f"{self.cache_dir}: data.clip_frames={self.clip_frames} must divide the cache's clip windows of "
                f"{self.window} consecutive frames, so that no clip spans two windows (other moments of the "
                f"video, and with crop 'roi' other regions); e.g. data.clip_frames={self.window}")

    def __len__(self) -> int:
        return len(self.rows)

    def _start(self, n: int) -> int:
        first = 0
        if self.window is not None:  # a window (random, or the middle one), then a start inside it
            k = -(-n // self.window)
            w = int(torch.randint(k, ()).item()) if self.random else k // 2
            first, n = w * self.window, min(self.window, n - w * self.window)
        span = max(0, n - self.clip_frames)
        return first + (int(torch.randint(span + 1, ()).item()) if self.random else span // 2)

    def _clip(self, v: int, z: dict[str, np.ndarray]) -> dict[str, Any]:
        """The training clip (random start) or the centre clip (random=False) of video v; a video
        shorter than the clip is padded with its last frame, masked (as `tile_clips` pads it)."""
        n = z["faces"].shape[1]
        s = self._start(n)
        wanted = np.arange(s, s + self.clip_frames)  # (T,)
        return self._clip_at(v, z, np.minimum(wanted, n - 1), wanted < n)

    def n_tiles(self, v: int) -> int:
        return -(-self._count(v, "frames", "times") // self.clip_frames)

    def tile(self, v: int, k: int, z: dict[str, np.ndarray]) -> dict[str, Any]:
        tiling = tile_clips(z["faces"].shape[1], self.clip_frames)  # (K, T) each
        return self._clip_at(v, z, tiling.picks[k], tiling.mask[k], tiling.counted[k])

    def _clip_at(self, v: int, z: dict[str, np.ndarray], pick: np.ndarray, mask: np.ndarray,
                 counted: np.ndarray | None = None) -> dict[str, Any]:
        """Item of the frames at positions pick (T,); mask (T,) is False on padding; counted (T,)
        marks the frames per-frame aggregation counts (default: the unpadded ones)."""
        item = {k: torch.from_numpy(val) if isinstance(val, np.ndarray) else _scalar(val)
                for k, val in self._labels(v, z, pick, mask).items()}
        item.update({
            "video": self._images(z["faces"][0, pick]),  # (T, 3, S, S)
            "times": torch.from_numpy(z["times"][pick].astype(np.float32)),  # (T,)
            "found": torch.from_numpy(z["found"][0, pick]),  # (T,)
            "mask": torch.from_numpy(mask),  # (T,)
            "counted": torch.from_numpy(mask if counted is None else counted),  # (T,)
            "id": self.records[v].id,
        })
        return item

    def _labels(self, v: int, z: dict[str, np.ndarray], pick: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
        """The targets of the clip of frames `pick` (T,) (numpy arrays and floats): what an item
        holds besides its inputs, also counted by fakelens.train.targets without loading pixels."""
        rec = self.records[v]
        lab = _frame_fields(rec, float(z["fps"]), z["indices"][pick])
        fl = lab["frame_labels"]
        return {
            "frame_labels": fl,  # (T,) fake in any stream
            "visual_frame_labels": lab["visual"],  # (T,) the face is fake (-1: unknown)
            "label": _any(fl[mask]),
            "video_label": _video_label(rec),
            "visual_label": _any(lab["visual"][mask]),
            "audio_label": _any(lab["audio"][mask]),
        }

    label_keys: tuple[str, ...] = ("times", "indices", "fps")  # npz members `_labels` reads

    def census_labels(self, v: int, z: dict[str, np.ndarray], per_video: int) -> list[dict[str, Any]]:
        """Targets (and masks) of up to `per_video` training clips of video v (`census_picks`),
        as its items hold them: what fakelens.train.targets counts without loading pixels."""
        n = len(z["times"])
        return [{**self._labels(v, z, pick, mask), "mask": mask} for pick, mask in self.census_picks(n, per_video)]

    def census_picks(self, n: int, per_video: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(pick, mask) of up to `per_video` training clips of a video of n frames, their starts
        evenly spaced over the random start's range: what `fakelens.train.targets` counts."""
        if self.window is None:
            spans = [(0, n)]
        else:  # a clip lies inside one window (`_start`): a few starts in each
            spans = [(a, min(n, a + self.window)) for a in range(0, n, self.window)]
        starts_list = []
        for a, b in spans:
            span = max(0, b - a - self.clip_frames)
            k = min(max(1, per_video // len(spans)), span + 1)
            starts_list.append(a + np.unique(np.linspace(0, span, k).round().astype(int)))
        starts = np.concatenate(starts_list)
        out = []
        for s in starts:
            wanted = np.arange(s, s + self.clip_frames)
            out.append((np.minimum(wanted, n - 1), wanted < n))
        return out

    def __getitem__(self, v: int) -> dict[str, Any]:
        return self._finish(self._clip(v, self._load(v)))


class FrameDataset(ClipDataset):
    """Single face frames as one-frame clips (DFDC-winner style training of a 2D CNN on frames):
    `frames_per_video` items per video, each a random frame (evenly spaced with random=False),
    with ClipDataset's keys at T = 1, so the frame models (2D CNN + temporal pooling) and the
    video augmentations take them as they are.

    It has no whole-video tiling of its own: predict feeds the model clips of `data.clip_frames`
    frames, so a run training on frames validates on `AllClips(ClipDataset)`
    (fakelens.train.data.build_datasets)."""

    def __init__(self, cache_dir: str | Path, split: str | Sequence[str] | None = None, *,
                 frames_per_video: int = 1, random: bool = True, **kwargs):
        super().__init__(cache_dir, split, clip_frames=1, random=random, **kwargs)
        self.k = int(frames_per_video)
        if self.k < 1:
            raise ValueError(f"frames_per_video must be >= 1, got {frames_per_video}")

    def __len__(self) -> int:
        return len(self.rows) * self.k

    @property
    def items_per_video(self) -> int:  # type: ignore[override]
        return self.k

    def n_tiles(self, v: int) -> int:
        raise FakelensError("FrameDataset gives no whole-video tiling: validate on AllClips(ClipDataset)")

    def census_picks(self, n: int, per_video: int) -> list[tuple[np.ndarray, np.ndarray]]:
        frames = np.unique(np.linspace(0, n - 1, min(per_video, n)).round().astype(int))
        return [(np.array([t]), np.array([True])) for t in frames]

    def __getitem__(self, i: int) -> dict[str, Any]:
        v, j = divmod(i, self.k)
        z = self._load(v)
        n = z["faces"].shape[1]
        t = int(torch.randint(n, ()).item()) if self.random else min(n - 1, int((j + 0.5) * n / self.k))
        return self._finish(self._clip_at(v, z, np.array([t]), np.array([True])))  # T = 1


def mel_window(z: dict[str, np.ndarray], start_time: float, width: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mel frames from the first centre >= start_time: (M, W) float32 padded with the floor, times (W,), mask (W,)."""
    from fakelens.audio.features import LOG_FLOOR

    mel, mt = z["mel"], z["mel_times"]
    hop = float(mt[1] - mt[0]) if len(mt) > 1 else 0.01
    a = int(np.searchsorted(mt, start_time - 1e-9))
    out = np.full((mel.shape[0], width), np.log(LOG_FLOOR), np.float32)  # (M, W)
    piece = mel[:, a : a + width].astype(np.float32)
    out[:, : piece.shape[1]] = piece
    times = (mt[a] if a < len(mt) else start_time) + hop * np.arange(width)  # (W,)
    mask = np.arange(width) < piece.shape[1]
    return out, times, mask


def clip_audio_window(z: dict[str, np.ndarray], t_first: float, t_end: float, width: int,
                      with_mel: bool = True) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """The mel frames of a clip shown during [t_first, t_end) (its first frame's time to its last
    frame's plus one sampling interval), as a model input of a fixed W = `width` mel frames:
    shorter spans (or audio that ends early) are padded and masked (mask False); a longer span
    is resampled to W columns over the same time (linear in time, per mel bin), its `times` the
    columns' true times, so labels and step times stay in seconds. Returns (M, W) float32 (None
    without `with_mel`), times (W,) float64 and mask (W,) bool. Training, validation and predict
    cut every audio-visual clip's audio with this one rule."""
    from fakelens.audio.features import LOG_FLOOR

    mt = z["mel_times"]
    hop = float(mt[1] - mt[0]) if len(mt) > 1 else 0.01
    a = int(np.searchsorted(mt, t_first - 1e-9))
    b = max(a, int(np.searchsorted(mt, t_end - 1e-9)))
    n = b - a
    if n <= width:
        times = (mt[a] if a < len(mt) else t_first) + hop * np.arange(width)  # (W,)
        mask = np.arange(width) < n
        if not with_mel:
            return None, times, mask
        out = np.full((z["mel"].shape[0], width), np.log(LOG_FLOOR), np.float32)  # (M, W)
        out[:, :n] = z["mel"][:, a:b]
        return out, times, mask
    times = np.linspace(float(mt[a]), float(mt[b - 1]), width)  # (W,) the span, resampled
    mask = np.ones(width, bool)
    if not with_mel:
        return None, times, mask
    piece = z["mel"][:, a:b].astype(np.float32)  # (M, n)
    out = np.stack([np.interp(times, mt[a:b], row) for row in piece]).astype(np.float32)  # (M, W)
    return out, times, mask


def sampling_interval(times: np.ndarray, fps: float) -> float:
    """The interval (s) a sampled frame stands for: the median gap between the video's sampled
    frames, 1 / fps for a single frame."""
    return float(np.median(np.diff(times))) if len(times) > 1 else 1.0 / max(float(fps), 1e-6)


def clip_span(times: np.ndarray, pick: np.ndarray, mask: np.ndarray, fps: float) -> tuple[float, float]:
    """[start, end) seconds a clip of frames `pick` (mask: its real ones) of a video sampled at
    `times` is shown for: its first frame's time to its last real frame's plus one interval."""
    last = pick[mask][-1] if mask.any() else pick[0]
    return float(times[pick[0]]), float(times[last]) + sampling_interval(times, fps)


class AudioDataset(CacheDataset):
    """Windows of `window_seconds` of log-mel per video (random start when random=True)."""

    need_audio = True
    keys = ("mel", "mel_times")

    def __init__(self, cache_dir: str | Path, split: str | Sequence[str] | None = None, *,
                 window_seconds: float = 1.0, random: bool = True, **kwargs):
        super().__init__(cache_dir, split, **kwargs)
        hop = self.config.hop_seconds if self.config is not None else 0.01
        self.width = max(1, int(round(window_seconds / hop)))  # W
        self.random = random

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, v: int) -> dict[str, Any]:
        z = self._load(v)
        mt = z["mel_times"]
        span = max(0, len(mt) - self.width)
        a = int(torch.randint(span + 1, ()).item()) if self.random else span // 2
        return self._finish(self._window(v, z, a))

    def n_tiles(self, v: int) -> int:
        return len(tile_windows(self._count(v, "mel_frames", "mel_times"), self.width))

    def tile(self, v: int, k: int, z: dict[str, np.ndarray]) -> dict[str, Any]:
        return self._window(v, z, int(tile_windows(len(z["mel_times"]), self.width)[k]))

    def _window(self, v: int, z: dict[str, np.ndarray], a: int) -> dict[str, Any]:
        """Item of the W mel frames from mel frame a (padded past the end of the audio, masked)."""
        mel, times, mask = mel_window(z, float(z["mel_times"][a]), self.width)
        item = {k: torch.from_numpy(val) if isinstance(val, np.ndarray) else _scalar(val)
                for k, val in self._window_labels(v, times, mask).items()}
        item.update({
            "audio": torch.from_numpy(mel)[None],  # (1, M, W)
            "audio_times": torch.from_numpy(times.astype(np.float32)),  # (W,)
            "audio_mask": torch.from_numpy(mask),  # (W,)
            "id": self.records[v].id,
        })
        return item

    def _window_labels(self, v: int, times: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
        """The targets of a window of mel frames at `times` (W,): `label` is its audio label."""
        rec = self.records[v]
        fl = _labels_at_times(_stream_segments(rec, "audio"), rec, times)
        return {"audio_frame_labels": fl, "label": _any(fl[mask]), "audio_label": _any(fl[mask]),
                "video_label": _video_label(rec)}

    label_keys = ("mel_times",)

    def census_labels(self, v: int, z: dict[str, np.ndarray], per_video: int) -> list[dict[str, Any]]:
        """Targets (and masks) of up to `per_video` training windows of video v, their starts evenly
        spaced over the random start's range (fakelens.train.targets)."""
        mt = z["mel_times"]
        span = max(0, len(mt) - self.width)
        out = []
        for a in np.unique(np.linspace(0, span, min(per_video, span + 1)).round().astype(int)):
            _, times, mask = mel_window({"mel": np.zeros((0, len(mt)), np.float32), "mel_times": mt},
                                        float(mt[a]) if len(mt) else 0.0, self.width)
            out.append({**self._window_labels(v, times, mask), "audio_mask": mask})
        return out


MAX_SPAN_OVER_MEDIAN = 1.5  # AVDataset's default audio window: at most this many median clip spans


def _row_interval(row: dict[str, Any]) -> float:
    """A cached video's sampling interval (s) from its index row: duration / sampled frames, rounded
    up to whole video frames when the fps is known (sampled indices are whole frames apart)."""
    dt = float(row["duration"]) / max(1, int(row["counts"]["frames"]))
    fps = row.get("fps")
    return math.ceil(dt * float(fps) - 1e-6) / float(fps) if fps else dt


class AVDataset(ClipDataset):
    """A face clip plus its audio: the mel frames of the time the clip is shown for, from its first
    frame's time to its last frame's plus one sampling interval (`clip_audio_window`), so the
    audio fed and its labels (`audio_frame_labels`, `audio_label`) are the clip's own on every
    video. The window has a fixed W = audio_seconds / hop mel frames so items batch; by default
    audio_seconds = the longest clip span of the dataset's videos (clip_frames x its sampled-frame
    interval), at most MAX_SPAN_OVER_MEDIAN x the median one. A clip shown for less is padded and
    masked (`audio_mask`); one shown for longer (a video sampled sparser than any in training, or
    an outlier) is resampled to W, its `audio_times` the true times.
    """

    need_face = True
    need_audio = True
    keys = CacheDataset.keys + AudioDataset.keys
    label_keys = ClipDataset.label_keys + ("mel_times",)

    def __init__(self, cache_dir: str | Path, split: str | Sequence[str] | None = None, *,
                 clip_frames: int = 16, audio_seconds: float | None = None, random: bool = True, **kwargs):
        super().__init__(cache_dir, split, clip_frames=clip_frames, random=random, **kwargs)
        hop = self.config.hop_seconds if self.config is not None else 0.01
        if audio_seconds is None:
            # a cache sampled in windows holds consecutive frames: one video frame apart
            spans = clip_frames * np.array([1.0 / float(r["fps"]) if self.window is not None and r.get("fps")
                                            else _row_interval(r) for r in self.rows])
            # one mel frame of slack: a span of L seconds holds round(L / hop) or one more frame centres
            audio_seconds = float(min(spans.max(), MAX_SPAN_OVER_MEDIAN * np.median(spans))) + hop
        self.audio_seconds = float(audio_seconds)
        self.width = max(1, int(round(audio_seconds / hop)))  # W

    def _clip_at(self, v: int, z: dict[str, np.ndarray], pick: np.ndarray, mask: np.ndarray,
                 counted: np.ndarray | None = None) -> dict[str, Any]:
        item = super()._clip_at(v, z, pick, mask, counted)
        t0, t1 = clip_span(z["times"], pick, mask, float(z["fps"]))  # float64, as predict computes it
        mel, _, _ = clip_audio_window(z, t0, t1, self.width)
        item["audio"] = torch.from_numpy(mel)[None]  # (1, M, W)
        return item

    def _labels(self, v: int, z: dict[str, np.ndarray], pick: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
        out = super()._labels(v, z, pick, mask)
        rec = self.records[v]
        t0, t1 = clip_span(z["times"], pick, mask, float(z["fps"]))
        _, times, amask = clip_audio_window(z, t0, t1, self.width, with_mel=False)
        afl = _labels_at_times(_stream_segments(rec, "audio"), rec, times)
        out.update(audio_frame_labels=afl,  # (W,) per mel frame fed
                   audio_label=_any(afl[amask]),  # the audio fed is fake somewhere
                   audio_times=times.astype(np.float32),  # (W,)
                   audio_mask=amask)  # (W,)
        return out


class AllClips(Dataset):
    """Every input `fakelens predict` cuts each video into, one item each, for validation that
    scores whole videos as predict does: the clips of `tile_clips` for clip and AV datasets (AV
    clips with the mel window at each clip's first frame), the windows of `tile_windows` for
    audio. `base` must be deterministic (random=False); `videos` picks some of its videos.

    Items are the base's items plus `video_index` (position in `videos`) and `clip_index`. len()
    counts clips, while `labels` and `records` are per video (V,). The last loaded video is kept,
    so consecutive clips of one video read its npz once; memory holds one video at a time."""

    def __init__(self, base: CacheDataset, videos: Sequence[int] | None = None):
        if getattr(base, "random", False):
            raise ValueError("AllClips needs a deterministic base dataset (random=False)")
        self.base = base
        self.videos = list(range(len(base.rows))) if videos is None else [int(v) for v in videos]
        self.index = [(j, k) for j, v in enumerate(self.videos) for k in range(base.n_tiles(v))]  # (video, clip)
        self._loaded: tuple[int, dict[str, np.ndarray]] | None = None

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int) -> dict[str, Any]:
        j, k = self.index[i]
        v = self.videos[j]
        if self._loaded is None or self._loaded[0] != v:
            self._loaded = (v, self.base._load(v))
        item = self.base.tile(v, k, self._loaded[1])
        item["video_index"] = j
        item["clip_index"] = k
        return self.base._finish(item)

    @property
    def labels(self) -> np.ndarray:
        """(V,) video labels of the chosen videos (not one per item)."""
        return np.asarray(self.base.labels)[self.videos]

    @property
    def records(self) -> list[VideoRecord]:
        return [self.base.records[v] for v in self.videos]


CACHE_DATASETS: Registry[type[CacheDataset]] = Registry("cache dataset")
for _name, _cls in (("frames", FrameDataset), ("clips", ClipDataset), ("audio", AudioDataset), ("av", AVDataset)):
    CACHE_DATASETS.register(_name)(_cls)


def _register_features() -> None:
    from fakelens.data.features import FeatureDataset  # whole videos of dense features (fakelens features)

    CACHE_DATASETS.register("features")(FeatureDataset)  # type: ignore[arg-type]


_register_features()
