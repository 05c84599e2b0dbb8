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
      video (T, 3, S, S), frame_labels (T,) fake in the face where the dataset says which stream
      is fake (a model without audio cannot see a voice: an audio-only fake's frames are 0), in any
      stream where it does not, visual_frame_labels (T,) face fake (an audio-only fake is 0 here),
      label (clip: any fake frame of frame_labels), video_label (the official one),
      visual_label, audio_label, times (T,), found (T,) bool, mask (T,) bool (False = padding),
      counted (T,) bool (the frames per-frame aggregation counts: see `tile_clips`), id
  AudioDataset  a window of W mel frames per video:
      audio (1, M, W), audio_frame_labels (W,) audio-fake per mel frame, label (window), video_label,
      audio_times (W,), audio_mask (W,) (False = padding past the end of the audio), id
  AVDataset     a face clip and the mel window that starts at its first frame:
      everything of ClipDataset plus audio (1, M, W), audio_frame_labels (W,), audio_times (W,);
      its frame_labels and label are fake in any stream (the model hears the voice)

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
from fakelens.data.tiling import ClipTiling, face_frames, face_runs, tile_clips, tile_face, tile_windows
from fakelens.errors import ConfigError, FakelensError
from fakelens.features.media import CACHE_VERSION, cache_version_change
from fakelens.registry import Registry
from fakelens.types import Label, Modality, Segment, VideoRecord, frame_labels

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


def learned_label(rec: VideoRecord, stream: str | None) -> Label:
    """The video label a model learning one `stream` ("visual": face crops only, "audio": the
    voice only; None: any stream) trains on: a fake whose `stream` the dataset says is untouched
    (an audio-only fake to a face model) is real to it; a fake of unstated stream keeps its label."""
    if stream is None or not rec.is_fake or _stream_segments(rec, stream) != ():
        return rec.label
    return Label.REAL


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
    learned_stream: str | None = None  # the one stream its items carry (learned_label), None: both or any

    def __init__(self, cache_dir: str | Path, split: str | Sequence[str] | None = None, *,
                 statuses: Sequence[str] | None = None, labeled_only: bool = False,
                 transform: Transform | None = None, as_uint8: bool = False):
        self.cache_dir = Path(cache_dir)
        self.config = load_config(self.cache_dir)
        if self.config is not None and self.config.version != CACHE_VERSION:
            changed = cache_version_change(self.config.version)
            raise ConfigError(
                f"{self.cache_dir}: cache version {self.config.version}, this fakelens reads version {CACHE_VERSION} "
                f"({changed or 'its crops, faces and labels differ'}); re-run "
                "`fakelens preprocess` into another --out, or with --force to rebuild this one")
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
            elif (self.need_face and not row.get("fallback") and row.get("faces") is not None
                  and not any(f.get("found") for f in row["faces"])):
                reason = "no frame with a found face (the model needs face crops)"
            elif self.need_audio and not row.get("has_audio"):
                reason = "no audio track (the model needs audio)"
            elif labeled_only and row["label"] == "unknown":
                reason = "unlabelled"
            if reason is not None:
                self.left_out.setdefault(reason, []).append(row["id"])
                continue
            rows.append(row)
        if not rows:
            asked = "" if splits is None else f" of split {' + '.join(sorted(map(repr, splits)))}"
            if self.left_out:  # each video of the split left out: say why, in counts
                from fakelens.words import counted

                why = "; ".join(f"{reason}: {counted(len(ids), 'video')}" for reason, ids in self.left_out.items())
                hint = (" (a test split's labels are not public: train and validate on labelled splits, "
                        "data.train_split / data.val_split)") if set(self.left_out) == {"unlabelled"} else ""
                raise FakelensError(f"{self.cache_dir}: no cached video{asked} can be used: {why}{hint}")
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


def _frame_fields(rec: VideoRecord, fps: float, indices: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame labels (any stream, visual, audio) at video frame indices, each (T,)."""
    return {
        "frame_labels": _labels_at_indices(rec.segments if rec.segments else None if rec.is_fake else (),
                                           rec, fps, indices),
        "visual": _labels_at_indices(_stream_segments(rec, "visual"), rec, fps, indices),
        "audio": _labels_at_indices(_stream_segments(rec, "audio"), rec, fps, indices),
    }


def _any_known(labels: np.ndarray) -> float:
    """Clip label from per-frame labels that may hold -1 (unknown): 1 if any frame is fake, else
    -1 if any is unknown, else 0."""
    if len(labels) and labels.max() >= 1:
        return 1.0
    return UNKNOWN if len(labels) and labels.min() < 0 else 0.0


def seen_labels(lab: dict[str, np.ndarray]) -> np.ndarray:
    """(T,) what a model that sees the faces but not the audio can be taught at each frame: the
    visual label where the dataset states it, else (stream unknown, -1) the any-stream label."""
    return np.where(lab["visual"] >= 0, lab["visual"], lab["frame_labels"]).astype(np.float32)


def face_instance_labels(lab: dict[str, np.ndarray], face_label: float, hears: bool) -> dict[str, np.ndarray]:
    """The per-frame labels of one face of a video: `lab` (`_frame_fields`: the video's labels,
    any stream / visual / audio, each (T,), -1 = unknown) as they apply to a face that is fake or
    whose video's labels apply (face_label 1: `lab` itself), real (0: its face stream is real) or
    not known to be the fake one (-1: where the video is fake, this face's labels are unknown).
    `hears`: the model also gets the audio, so `frame_labels` (fake in any stream) keeps the
    audio's fakeness; a visual-only model's are the face's own: its VISUAL labels where the dataset
    states them (an audio-only fake of AV-Deepfake1M / LAV-DF shows an untouched face: real), the
    video's (any stream) where it does not (DFDC, CSV, folders: -1 visual labels)."""
    if len(lab["frame_labels"]) and (lab["frame_labels"] < 0).all():
        return lab  # an unlabelled video's (unknown everywhere)
    if face_label >= 1:
        if hears:
            return lab  # the video's labels
        return {**lab, "frame_labels": seen_labels(lab)}
    fake = lab["frame_labels"] > 0  # (T,) the video is fake there (in some stream)
    if face_label == 0:
        visual = np.zeros_like(lab["visual"], dtype=np.float32)
        elsewhere = visual  # nothing of this face is fake: the frame is fake only through the audio
    else:
        visual = np.where(lab["visual"] > 0, UNKNOWN, lab["visual"]).astype(np.float32)
        elsewhere = np.where(fake, UNKNOWN, 0.0).astype(np.float32)  # fake somewhere, maybe not in this face
        if not hears:
            elsewhere = np.where(lab["visual"] == 0, 0.0, elsewhere).astype(np.float32)  # its face stream is real
    if hears:
        audio = lab["audio"]
        frames = np.where(audio > 0, 1.0, np.where((audio < 0) & fake, UNKNOWN, elsewhere))
    else:
        frames = elsewhere
    return {"frame_labels": np.asarray(frames, np.float32), "visual": visual, "audio": lab["audio"]}


class ClipDataset(CacheDataset):
    """Every face track of a video, each as T consecutive sampled frames of its own (training), or
    one clip of one face per item (validation through AllClips; see the module docstring)."""

    need_face = True
    keys = CacheDataset.keys + ("face_diff",)
    hears = False  # items carry no audio: a face's clip label is its own stream's
    learned_stream = "visual"

    def __init__(self, cache_dir: str | Path, split: str | Sequence[str] | None = None, *,
                 clip_frames: int = 16, random: bool = True, face_diff_threshold: float | None = None,
                 face_equal_threshold: float | None = None, max_faces: int | None = None, **kwargs):
        from fakelens.features.originals import FACE_DIFF_THRESHOLD, FACE_EQUAL_THRESHOLD

        super().__init__(cache_dir, split, **kwargs)
        self.clip_frames = int(clip_frames)
        self.random = random
        self.face_diff_threshold = float(FACE_DIFF_THRESHOLD if face_diff_threshold is None else face_diff_threshold)
        # a compared face within this many grey levels of its original is that original's (untouched)
        self.face_equal_threshold = float(min(FACE_EQUAL_THRESHOLD, self.face_diff_threshold)
                                          if face_equal_threshold is None else face_equal_threshold)
        if not 0 < self.face_equal_threshold <= self.face_diff_threshold:
            raise ValueError(f"face_equal_threshold must be in (0, face_diff_threshold={self.face_diff_threshold}], "
                             f"got {self.face_equal_threshold}")
        # Frames of one clip window in a cache sampled in windows (fakelens.features.crops), else None.
        self.window = self.config.window_frames if self.config is not None and self.config.sampling == "windows" \
            else None
        if self.window is not None and self.window % self.clip_frames:
            raise ConfigError(
                f"{self.cache_dir}: data.clip_frames={self.clip_frames} must divide the cache's clip windows of "
                f"{self.window} consecutive frames, so that no clip spans two windows (other moments of the "
                f"video, and with crop 'roi' other regions); e.g. data.clip_frames={self.window}")
        # Face slots of a training item: the cache's max_faces (every video's items batch together),
        # at most `max_faces` (data.max_faces: the main tracks first)
        kept = max([self.config.max_faces if self.config is not None else 1] + [len(r.get("faces") or ()) for r in self.rows])
        if max_faces is not None and max_faces < 1:
            raise ValueError(f"max_faces must be >= 1, got {max_faces}")
        self.max_faces = kept if max_faces is None else min(kept, int(max_faces))
        self._tilings: dict[int, list[tuple[int, ClipTiling]]] = {}
        # Videos whose faces are labelled otherwise than their video label says, by reason (training
        # reports them beside the left-out ones: left_out.json); not left out
        self.face_label_notes: dict[str, list[str]] = {}
        for v in range(len(self.rows)):
            why = self._face_labels(v)[1]
            if why is not None:
                self.face_label_notes.setdefault(why, []).append(self.rows[v]["id"])

    def __len__(self) -> int:
        return len(self.rows)

    # ------------------------------------------------------------------ faces of a video

    def face_frames(self, v: int) -> np.ndarray:
        """(F, T) bool: the frames each face track of video v is trained and scored on (from its
        index row's runs; `fakelens.data.tiling.face_frames`)."""
        row = self.rows[v]
        faces = row.get("faces")
        n = int((row.get("counts") or {}).get("frames", 0))
        if faces is None:  # a row without face summaries: read the npz
            z = load_npz(self.cache_dir, row, ("found",))
            return face_frames(z["found"], bool(row.get("fallback")))[:self.max_faces]
        out = np.zeros((len(faces), n), bool)  # (F, T)
        for f, face in enumerate(faces):
            for a, b in face.get("runs", ()):
                out[f, a:b] = True
        return out[:self.max_faces]

    def face_labels(self, v: int) -> np.ndarray:
        """(F,) float32 per face track of video v: 1 fake, 0 real, -1 not known. A real video's faces
        are real, and so are an audio-only fake's for a model that does not hear (`hears`). A fake
        compared with its original (index row `faces[f].diff`, every face): a face differing by
        more than `face_diff_threshold` is fake, one within `face_equal_threshold` real (between
        the two: not known); when no face differs and every face is within `face_equal_threshold`,
        every face is real to a model that does not hear (an audio-only fake, or a swapped face the
        cache did not keep: nothing fake for a face to show; `face_label_notes` names them), and
        the video's labels apply to each face for one that hears (the fake is in the audio). Not compared: a fake with one face
        track, that face (MIL over one face); otherwise not known (training pools such faces: MIL
        over the video's faces)."""
        return self._face_labels(v)[0]

    def _face_labels(self, v: int) -> tuple[np.ndarray, str | None]:
        """(face_labels(v), why the faces are labelled otherwise than the video, or None)."""
        rec = self.records[v]
        faces = self.rows[v].get("faces") or [{}] * max(1, int(bool(self.rows[v].get("has_face"))))
        if not rec.has_label:
            return np.full(len(faces), UNKNOWN, np.float32), None
        if not rec.is_fake or (not self.hears and _stream_segments(rec, "visual") == ()):
            # a real video; or, to a model that does not hear, a fake whose faces the dataset says
            # are untouched (an audio-only fake): its faces are real
            return np.zeros(len(faces), np.float32), None
        diffs = [f.get("diff") for f in faces]
        if faces and all(d is not None for d in diffs):
            d = np.asarray(diffs, np.float64)
            fake, equal = d > self.face_diff_threshold, d <= self.face_equal_threshold
            if fake.any():  # a face that differs is fake; one equal to the original real
                return np.where(fake, 1.0, np.where(equal, 0.0, UNKNOWN)).astype(np.float32), None
            if equal.all() and self.hears:  # the fake is in what the faces do not show: the audio
                return np.ones(len(faces), np.float32), None
            if equal.all():
                return np.zeros(len(faces), np.float32), (
                    f"a fake none of whose {len(faces)} face(s) differs from its original by more than "
                    f"data.face_equal_threshold={self.face_equal_threshold:g} grey levels (most: {d.max():.2f}): "
                    "every face trained as real (not left out; a fake in the audio only, or the swapped face "
                    "not among the faces the cache kept)")
        return (np.ones(1, np.float32) if len(faces) == 1 else np.full(len(faces), UNKNOWN, np.float32)), None

    def face_tilings(self, v: int) -> list[tuple[int, ClipTiling]]:
        """(face, its clips) of video v, as predict cuts them (`tile_face`), faces in order."""
        if v not in self._tilings:
            frames = self.face_frames(v)
            self._tilings[v] = [(f, tile_face(frames[f], self.clip_frames, self.window)) for f in range(len(frames))]
        return self._tilings[v]

    def _random_clip(self, frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(pick (T,), mask (T,)) of a training clip of one face: a run of its frames (`face_runs`,
        chosen with probability by length; the longest with random=False), a start inside it
        (random, or centred); a run shorter than the clip is padded with its last frame, masked."""
        runs = face_runs(frames, self.window)  # (R, 2)
        lengths = (runs[:, 1] - runs[:, 0]).astype(np.float64)
        if self.random:
            r = int(torch.multinomial(torch.from_numpy(lengths), 1).item()) if len(runs) > 1 else 0
        else:
            r = int(np.argmax(lengths))
        a, b = (int(x) for x in runs[r])
        span = max(0, b - a - self.clip_frames)
        s = a + (int(torch.randint(span + 1, ()).item()) if self.random else span // 2)
        wanted = np.arange(s, s + self.clip_frames)  # (T,)
        return np.minimum(wanted, b - 1), wanted < b

    def _bag(self, v: int, z: dict[str, Any], choose: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]
             ) -> dict[str, Any]:
        """Training item of video v: one clip per face track (`choose(frames) -> (pick, mask)`), each
        transformed on its own, stacked over max_faces face slots (absent slots zero, face_mask False)."""
        frames = face_frames(z["found"], bool(self.rows[v].get("fallback")))[:self.max_faces]  # (F, T)
        labels = self.face_labels(v)
        items, if_fake = [], []
        for f in range(len(frames)):
            if not frames[f].any():
                continue
            pick, mask = choose(frames[f])
            items.append(self._finish(self._face_clip(v, z, f, pick, mask, face_label=float(labels[f]))))
            found = np.asarray(z["found"][f, pick], bool) | bool(self.rows[v].get("fallback"))
            if_fake.append(float(self._labels(v, z, pick, mask & found, face_label=1.0)["label"]))
        if not items:
            raise FakelensError(f"{self.records[v].id}: no face track with a found frame (status "
                                f"{self.rows[v]['status']}); re-run `fakelens preprocess`")
        return stack_faces(items, self.max_faces, bag_label=max(if_fake))

    # ------------------------------------------------------------------ items

    def n_tiles(self, v: int) -> int:
        return sum(len(t.picks) for _, t in self.face_tilings(v))

    def tile(self, v: int, k: int, z: dict[str, np.ndarray]) -> dict[str, Any]:
        """The k-th clip predict scores of video v (faces in order, each face's clips in order),
        tagged with its `face_index`."""
        labels = self.face_labels(v)
        for f, tiling in self.face_tilings(v):
            if k < len(tiling.picks):
                item = self._face_clip(v, z, f, tiling.picks[k], tiling.mask[k], tiling.counted[k],
                                       face_label=float(labels[f]))
                item["face_index"] = f
                return item
            k -= len(tiling.picks)
        raise IndexError(f"video {v} has {self.n_tiles(v)} clips")

    def _face_clip(self, v: int, z: dict[str, np.ndarray], f: int, pick: np.ndarray, mask: np.ndarray,
                   counted: np.ndarray | None = None, *, face_label: float = 1.0) -> dict[str, Any]:
        """Item of face track f at sampled-frame positions pick (T,); mask (T,) False on padding;
        counted (T,) the frames per-frame aggregation counts (default: the unpadded ones); the
        item's mask keeps the frames where this face was found only, and its labels are the ones
        that apply to this face (`face_instance_labels`)."""
        found = np.asarray(z["found"][f, pick], bool) | bool(self.rows[v].get("fallback"))
        valid = np.asarray(mask, bool) & found  # (T,) frames with this face, not padding
        item = {k: torch.from_numpy(val) if isinstance(val, np.ndarray) else _scalar(val)
                for k, val in self._labels(v, z, pick, valid, face_label=face_label).items()}
        item.update({
            "video": self._images(z["faces"][f, pick]),  # (T, 3, S, S)
            "times": torch.from_numpy(z["times"][pick].astype(np.float32)),  # (T,)
            "found": torch.from_numpy(found),  # (T,)
            "mask": torch.from_numpy(valid),  # (T,)
            "counted": torch.from_numpy((valid if counted is None else np.asarray(counted, bool)) & found),  # (T,)
            "id": self.records[v].id,
        })
        return item

    def _labels(self, v: int, z: dict[str, np.ndarray], pick: np.ndarray, mask: np.ndarray,
                face_label: float = 1.0) -> dict[str, Any]:
        """The targets of the clip of frames `pick` (T,) of a face whose own label is `face_label`
        (`face_labels`; 1: the video's labels apply) (numpy arrays and floats): what an item holds
        besides its inputs, also counted by fakelens.train.targets without loading pixels."""
        rec = self.records[v]
        lab = face_instance_labels(_frame_fields(rec, float(z["fps"]), z["indices"][pick]), face_label, self.hears)
        fl = lab["frame_labels"]
        return {
            "frame_labels": fl,  # (T,) fake in a stream the model gets (visual-only: the face's; -1: unknown)
            "visual_frame_labels": lab["visual"],  # (T,) this face is fake (-1: unknown)
            "label": _any_known(fl[mask]),
            "video_label": _video_label(rec),
            "face_label": float(face_label),
            "visual_label": _any_known(lab["visual"][mask]),
            "audio_label": _any(lab["audio"][mask]),
        }

    label_keys: tuple[str, ...] = ("times", "indices", "fps")  # npz members `_labels` reads

    def census_labels(self, v: int, z: dict[str, np.ndarray], per_video: int) -> list[dict[str, Any]]:
        """Targets (and masks) of training clips of video v, as its items hold them: per face track
        up to `per_video` clips of its found frames (`run_picks`), with the face's own labels, and
        for a video whose faces' labels are not known one bag label per clip (the MIL term over
        faces): what fakelens.train.targets counts without loading pixels."""
        frames = self.face_frames(v)  # (F, T)
        labels = self.face_labels(v)
        out: list[dict[str, Any]] = []
        bag = []
        for f in range(len(frames)):
            runs = face_runs(frames[f], self.window)
            for a, b in runs:
                for pick, mask in self.run_picks(int(a), int(b), max(1, per_video // len(runs))):
                    item = {**self._labels(v, z, pick, mask, face_label=float(labels[f])), "mask": mask}
                    if labels[f] < 0:  # as fakelens.tasks.faces.fold_faces trains it: no video label
                        item["video_label"] = UNKNOWN
                        bag.append(self._labels(v, z, pick, mask, face_label=1.0)["label"])
                    out.append(item)
        if bag:  # the MIL term: one video label per item
            out.append({"label": float(max(bag)), "video_label": _video_label(self.records[v])})
        return out

    def run_picks(self, a: int, b: int, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """(pick, mask) of up to k training clips inside the run [a, b) of a face's frames, their
        starts evenly spaced over the random start's range (`_random_clip`)."""
        span = max(0, b - a - self.clip_frames)
        out = []
        for s in a + np.unique(np.linspace(0, span, min(k, span + 1)).round().astype(int)):
            wanted = np.arange(s, s + self.clip_frames)
            out.append((np.minimum(wanted, b - 1), wanted < b))
        return out

    def __getitem__(self, v: int) -> dict[str, Any]:
        return self._bag(v, self._load(v), self._random_clip)


PER_VIDEO_KEYS = ("id", "video_label", "bag_label", "face_mask")  # a training item's keys without a face axis


def stack_faces(items: Sequence[dict[str, Any]], max_faces: int, bag_label: float) -> dict[str, Any]:
    """Per-face items of one video -> one item with a face axis of `max_faces` slots on every
    per-face key (absent slots zero), plus face_mask (F,) bool and bag_label (1 when a fake face
    is among them, as far as the video's label says)."""
    if not items or len(items) > max_faces:
        raise ValueError(f"{len(items)} face items for {max_faces} face slots")
    first = items[0]
    out: dict[str, Any] = {"id": first["id"], "video_label": first["video_label"]}
    for key, value in first.items():
        if key in out:
            continue
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"per-face item key {key!r} is not a tensor ({type(value).__name__})")
        pad = [torch.zeros_like(value)] * (max_faces - len(items))
        out[key] = torch.stack([it[key] for it in items] + pad)  # (F, ...)
    out["face_mask"] = torch.arange(max_faces) < len(items)  # (F,)
    out["bag_label"] = _scalar(bag_label)
    return out


class FrameDataset(ClipDataset):
    """Single face frames as one-frame clips (DFDC-winner style training of a 2D CNN on frames):
    `frames_per_video` items per video, each holding one frame of every face track (a random one
    of its frames; evenly spaced with random=False), with ClipDataset's keys at T = 1, so the
    frame models (2D CNN + temporal pooling) and the video augmentations take them as they are.

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

    def run_picks(self, a: int, b: int, k: int) -> list[tuple[np.ndarray, np.ndarray]]:
        frames = a + np.unique(np.linspace(0, b - a - 1, min(k, b - a)).round().astype(int))
        return [(np.array([t]), np.array([True])) for t in frames]

    def __getitem__(self, i: int) -> dict[str, Any]:
        v, j = divmod(i, self.k)

        def one_frame(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            have = np.flatnonzero(frames)
            t = have[int(torch.randint(len(have), ()).item())] if self.random else \
                have[min(len(have) - 1, int((j + 0.5) * len(have) / self.k))]
            return np.array([t]), np.array([True])  # T = 1

        return self._bag(v, self._load(v), one_frame)


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
    learned_stream = "audio"
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
    keys = ClipDataset.keys + AudioDataset.keys
    label_keys = ClipDataset.label_keys + ("mel_times",)
    hears = True
    learned_stream = None

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

    def _face_clip(self, v: int, z: dict[str, np.ndarray], f: int, pick: np.ndarray, mask: np.ndarray,
                   counted: np.ndarray | None = None, *, face_label: float = 1.0) -> dict[str, Any]:
        item = super()._face_clip(v, z, f, pick, mask, counted, face_label=face_label)
        valid = item["mask"].numpy()
        t0, t1 = clip_span(z["times"], pick, valid, float(z["fps"]))  # float64, as predict computes it
        mel, _, _ = clip_audio_window(z, t0, t1, self.width)
        item["audio"] = torch.from_numpy(mel)[None]  # (1, M, W)
        return item

    def _labels(self, v: int, z: dict[str, np.ndarray], pick: np.ndarray, mask: np.ndarray,
                face_label: float = 1.0) -> dict[str, Any]:
        out = super()._labels(v, z, pick, mask, face_label=face_label)
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
