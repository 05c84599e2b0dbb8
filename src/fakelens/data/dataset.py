"""Torch Datasets over a preprocessing cache (fakelens.data.cache): frames, clips, audio windows, both.

Every item is a dict; tensors are made here, shapes below (S = crop side, T = clip frames,
M = mel bands, W = mel frames). Labels are float32 scalars: 1 = fake, 0 = real, -1 = unknown
(unlabeled test videos). Per-frame labels come from the record's fake segments with the official
frame convention (`VideoRecord.frame_labels` at the sampled frames' video indices); a fake video
without segments is fake in every frame. Per-modality labels use `visual_segments` /
`audio_segments` where the dataset has them, else the video's modality (a fake of unknown
modality counts for both streams).

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


def _stream_segments(rec: VideoRecord, stream: str) -> tuple[Segment, ...] | None:
    """Fake segments of one stream; None means 'the whole video is fake in this stream'."""
    own = rec.visual_segments if stream == "visual" else rec.audio_segments
    if own:
        return own
    if not rec.is_fake:
        return ()
    touched = rec.modality is Modality.NONE or getattr(rec.modality, stream)
    if not touched:
        return ()
    if rec.visual_segments or rec.audio_segments:  # per-stream segments given, none for this stream
        return ()
    return rec.segments if rec.segments else None


def _labels_at_indices(segments: tuple[Segment, ...] | None, rec: VideoRecord, fps: float,
                       indices: np.ndarray) -> np.ndarray:
    """(T,) float32 0/1 at video frame `indices`, or -1 when the label is unknown."""
    if not rec.has_label:
        return np.full(len(indices), UNKNOWN, np.float32)
    if segments is None:
        return np.ones(len(indices), np.float32)
    n = int(indices.max()) + 1 if len(indices) else 0
    return frame_labels(segments, fps, n)[indices].astype(np.float32)  # (T,)


def _labels_at_times(segments: tuple[Segment, ...] | None, rec: VideoRecord, times: np.ndarray) -> np.ndarray:
    """(W,) float32 0/1 for instants `times` (start <= t < end), or -1 when the label is unknown."""
    if not rec.has_label:
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
        rec = self.records[v]
        lab = _frame_fields(rec, float(z["fps"]), z["indices"][pick])
        fl = lab["frame_labels"]
        return {
            "video": self._images(z["faces"][0, pick]),  # (T, 3, S, S)
            "frame_labels": torch.from_numpy(fl),  # (T,) fake in any stream
            "visual_frame_labels": torch.from_numpy(lab["visual"]),  # (T,) the face is fake
            "label": _scalar(_any(fl[mask])),
            "video_label": _scalar(_video_label(rec)),
            "visual_label": _scalar(_any(lab["visual"][mask])),
            "audio_label": _scalar(_any(lab["audio"][mask])),
            "times": torch.from_numpy(z["times"][pick].astype(np.float32)),  # (T,)
            "found": torch.from_numpy(z["found"][0, pick]),  # (T,)
            "mask": torch.from_numpy(mask),  # (T,)
            "counted": torch.from_numpy(mask if counted is None else counted),  # (T,)
            "id": rec.id,
        }

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

    def n_tiles(self, v: int) -> int:
        raise FakelensError("FrameDataset gives no whole-video tiling: validate on AllClips(ClipDataset)")

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
        rec = self.records[v]
        fl = _labels_at_times(_stream_segments(rec, "audio"), rec, times)
        return {
            "audio": torch.from_numpy(mel)[None],  # (1, M, W)
            "audio_frame_labels": torch.from_numpy(fl),  # (W,)
            "label": _scalar(_any(fl[mask])),
            "video_label": _scalar(_video_label(rec)),
            "audio_times": torch.from_numpy(times.astype(np.float32)),  # (W,)
            "audio_mask": torch.from_numpy(mask),  # (W,)
            "id": rec.id,
        }


class AVDataset(ClipDataset):
    """A face clip plus the mel window starting at its first frame.

    The window has a fixed W = audio_seconds / hop frames so items batch; by default
    audio_seconds = clip_frames x the median sampled-frame interval of the dataset.
    """

    need_face = True
    need_audio = True
    keys = CacheDataset.keys + AudioDataset.keys

    def __init__(self, cache_dir: str | Path, split: str | Sequence[str] | None = None, *,
                 clip_frames: int = 16, audio_seconds: float | None = None, random: bool = True, **kwargs):
        super().__init__(cache_dir, split, clip_frames=clip_frames, random=random, **kwargs)
        if audio_seconds is None:
            dts = [r["duration"] / max(1, r["counts"]["frames"]) for r in self.rows]
            audio_seconds = clip_frames * float(np.median(dts))
        hop = self.config.hop_seconds if self.config is not None else 0.01
        self.audio_seconds = float(audio_seconds)
        self.width = max(1, int(round(audio_seconds / hop)))  # W

    def _clip_at(self, v: int, z: dict[str, np.ndarray], pick: np.ndarray, mask: np.ndarray,
                 counted: np.ndarray | None = None) -> dict[str, Any]:
        item = super()._clip_at(v, z, pick, mask, counted)
        # The window starts at the clip's first frame time in float64, as predict starts it.
        mel, times, amask = mel_window(z, float(z["times"][pick[0]]), self.width)
        rec = self.records[v]
        item["audio"] = torch.from_numpy(mel)[None]  # (1, M, W)
        item["audio_frame_labels"] = torch.from_numpy(_labels_at_times(_stream_segments(rec, "audio"), rec, times))
        item["audio_times"] = torch.from_numpy(times.astype(np.float32))  # (W,)
        item["audio_mask"] = torch.from_numpy(amask)  # (W,)
        return item


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
