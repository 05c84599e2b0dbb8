"""The one media -> features path: decode -> faces (detect, track) -> crops, and audio -> log-mel.

`compute_features` is what `fakelens preprocess` stores in the cache and what `predict` (and
every later consumer: dense features, detect) computes on the fly, with the same `MediaConfig`,
so a model always sees at inference exactly the inputs it was trained on. Nothing else decodes a
video or runs the face loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fakelens.errors import ConfigError

CACHE_VERSION = 6  # 2: faces followed with detector.refine between full detections (detect_every)
                   # 3: faces stored in chunks of frames, each npz records its parameters, rows their source file
                   # 4: every kept face track with its per-frame detection confidence; fakes compared with
                   #    their original face by face (face_diff); tracks linked by appearance too
                   # 5: tracks smoothed without lag at run ends (local linear fit), roi crops enclose the unsmoothed boxes
                   # 6: CACHE_CHANGES[6]
# What each cache version changed, said when an older cache is refused.
CACHE_CHANGES = {6: "a fake whose dataset does not say which stream is fake (DFDC) is compared with its original face "
                    "by face whatever --max-faces is, so a one-face fake's face_diff is recorded too (version 5 "
                    "compared only with --max-faces above 1 and trained a one-face fake's face as fake unchecked)"}


def changes_after(changes: dict[int, str], version: object, current: int) -> list[tuple[int, str]]:
    """(version, what it changed) from a version -> change table, for the versions after `version`
    up to `current` (cache and features versions alike), oldest first; none if `version` is not a number."""
    if not isinstance(version, int):
        return []
    return [(v, changes[v]) for v in range(version + 1, current + 1) if v in changes]


def cache_version_change(version: object) -> str:
    """What the versions after `version` up to CACHE_VERSION changed (for a refusal), '' if unknown."""
    return "; ".join(f"version {v}: {why}" for v, why in changes_after(CACHE_CHANGES, version, CACHE_VERSION))


MEL_DTYPE = np.float16  # how the cache stores log-mels; compute_features rounds through it, so
                        # predict's features equal the cached ones training and validation read
SAMPLINGS = ("frames", "fps", "all", "windows")
CROPS = ("tracked", "roi")  # fakelens.features.crops.CROP_MODES


@dataclass
class MediaConfig:
    """Everything that changes the features of a video (sampling, crops, detector, log-mel); a cache
    records the one it was made with (CACHE/config.json) and a run records its cache's."""

    sampling: str = "frames"  # "frames": n_frames evenly spaced; "fps": sample_fps per second; "all";
                              # "windows": n_windows clips of window_frames consecutive frames
    n_frames: int = 32
    sample_fps: float = 5.0
    n_windows: int = 4
    window_frames: int = 16
    size: int = 224
    margin: float = 1.3
    crop: str = "tracked"  # "tracked": each frame around its own box; "roi": one region per track and window
    detector: str = "mtcnn"
    detect_max_side: int | None = 640
    detect_every: int = 8  # full-frame detection every k-th sampled frame, refine in between
    find_every: int = 1  # look for faces on every k-th sampled frame only, boxes interpolated in between
    max_faces: int = 1
    fallback: str = "none"  # "none" | "full_frame"
    sample_rate: int = 16000
    n_mels: int = 80
    win_seconds: float = 0.025
    hop_seconds: float = 0.010
    n_fft: int = 512
    version: int = CACHE_VERSION

    def __post_init__(self) -> None:
        if self.sampling not in SAMPLINGS:
            raise ConfigError(f"sampling must be one of {SAMPLINGS}, got {self.sampling!r}")
        if self.crop not in CROPS:
            raise ConfigError(f"crop must be one of {CROPS}, got {self.crop!r}")
        if self.crop == "roi" and self.sampling != "windows":
            raise ConfigError("crop 'roi' cuts one region per clip window: it needs sampling 'windows' "
                              f"(consecutive frames; preprocess --windows K), got sampling {self.sampling!r}")
        if self.n_windows < 1 or self.window_frames < 1:
            raise ConfigError(f"n_windows and window_frames must be >= 1, got {self.n_windows} and "
                              f"{self.window_frames}")
        if self.fallback not in ("none", "full_frame"):
            raise ConfigError(f"fallback must be 'none' or 'full_frame', got {self.fallback!r}")
        if self.n_frames < 1 or self.sample_fps <= 0 or self.size < 8 or self.margin < 1.0:
            raise ConfigError(f"bad media parameters: n_frames={self.n_frames}, sample_fps={self.sample_fps}, "
                              f"size={self.size}, margin={self.margin}")
        if self.detect_every < 1 or self.max_faces < 1 or self.find_every < 1:
            raise ConfigError(f"detect_every, find_every and max_faces must be >= 1, got {self.detect_every}, "
                              f"{self.find_every} and {self.max_faces}")

    def mel_config(self):
        from fakelens.audio.features import MelConfig

        return MelConfig(sample_rate=self.sample_rate, n_mels=self.n_mels, win_seconds=self.win_seconds,
                         hop_seconds=self.hop_seconds, n_fft=self.n_fft)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)



# ------------------------------------------------------------------------------------ sampling


def sampling_for(info, cfg: MediaConfig, centred: bool = False) -> dict[str, Any]:
    """extract_faces' sampling argument for a probed video: n_frames evenly spaced, every k-th
    frame (streamed) for "fps" (k = round(video fps / sample_fps)) and "all" (k = 1), or the
    frames of the clip windows one window after the other (fakelens.features.crops). `centred`
    (dense features): of each run of k frames its middle one, not its first
    (fakelens.io.video.iter_frames_every), so a step's frame stands for its cell's centre."""
    if cfg.sampling == "frames":
        return {"n_frames": cfg.n_frames}
    if cfg.sampling == "windows":
        from fakelens.features.crops import window_frame_indices

        idx = window_frame_indices(info.n_frames, cfg.window_frames, cfg.n_windows)  # (K, W)
        # Each frame's own presentation time (index / fps when probe could not read them): decoding
        # matches a time to the nearest frame, so rounded container timestamps (mkv: 1 ms) and
        # variable frame rates still give these very frames.
        return {"times": np.asarray(info.frame_time(idx.reshape(-1)), np.float64)}  # (K*W,) s, window after window
    return {"every": step_frames(info.fps, cfg), "centred": bool(centred)}


def step_frames(fps: float, cfg: MediaConfig) -> int:
    """Video frames between two samples of dense sampling: 1 for "all", round(fps / sample_fps) for "fps"."""
    if cfg.sampling not in ("all", "fps"):
        raise ValueError(f"sampling {cfg.sampling!r} has no fixed step")
    return 1 if cfg.sampling == "all" else max(1, int(round(fps / cfg.sample_fps)))



# ------------------------------------------------------------------------------------ one video


@dataclass
class VideoFeatures:
    """What preprocessing computes for one video (also used by inference, so features match)."""

    clip: Any  # fakelens.faces.extract.FaceClip
    mel: np.ndarray  # (n_mels, M) float32 log-mel (values rounded to MEL_DTYPE); M = 0 without audio
    mel_times: np.ndarray  # (M,) seconds
    has_audio: bool
    audio_message: str = ""
    timings: dict[str, float] = field(default_factory=dict)
    # the face tracks found (fakelens.faces.extract.KnownTracks): a copy of the video with the same
    # frames (its audio changed) can reuse them instead of finding the faces again (`known`)
    tracks: Any = None


# glibc's M_MMAP_THRESHOLD: allocations above it are mmapped and go back to the OS when freed.
# glibc raises the threshold dynamically up to 32 MB, so the detector's activations and the
# decoded audio end up on the heap, which is never trimmed: fixing it lowers the peak RSS of a
# 10-minute video by ~80 MB (bench_preprocess).
MMAP_THRESHOLD_BYTES = 128 * 1024
_M_MMAP_THRESHOLD = -3


def release_large_allocations() -> bool:
    """Fix glibc's mmap threshold (see MMAP_THRESHOLD_BYTES) for this process; False when the C
    library has no `mallopt` (not glibc) and nothing changed."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))


@dataclass
class MediaStream:
    """One video's features with the face crops still to be cut: `faces.iter_crops(k)` streams
    them in chunks of k frames (dense features of long videos), `compute_features` cuts them all."""

    faces: Any  # fakelens.faces.extract.FaceTracks
    mel: np.ndarray  # (n_mels, M) float32 log-mel (values rounded to MEL_DTYPE); M = 0 without audio
    mel_times: np.ndarray  # (M,) seconds
    has_audio: bool
    audio_message: str = ""
    timings: dict[str, float] = field(default_factory=dict)  # filled as the steps run; crops add "crop"


def open_features(path: str | Path, cfg: MediaConfig, detector=None, known=None, centred: bool = False
                  ) -> MediaStream:
    """Log-mels and face tracks of one video with the parameters `cfg`, the crops not cut yet
    (`centred`: dense sampling takes the middle frame of each step, `sampling_for`).
    `known` (fakelens.faces.extract.KnownTracks, found with this `cfg` in a video with the same
    frames) is reused when this video's sampled frames are those frames: no face is looked for.
    Raises MediaError when undecodable."""
    from fakelens.audio.features import log_mel
    from fakelens.faces.extract import find_faces, reuse_tracks
    from fakelens.io.audio import read_audio
    from fakelens.io.video import probe

    release_large_allocations()
    t0 = time.perf_counter()
    info = probe(path)
    t_probe = time.perf_counter() - t0
    # Audio first: its waveform (38 MB for 10 min) is freed before the face crops are allocated.
    t1 = time.perf_counter()
    mcfg = cfg.mel_config()
    message = ""
    if info.has_audio:
        wave = read_audio(path, sample_rate=cfg.sample_rate)  # (S,)
        if len(wave) == 0:
            message = "audio stream has no samples"
    else:
        wave = np.zeros(0, np.float32)
        message = "no audio stream"
    mel, mel_times = log_mel(wave, mcfg)  # (n_mels, M), (M,)
    mel = mel.astype(MEL_DTYPE).astype(np.float32)  # (n_mels, M) float32 holding the cached values
    del wave
    t_audio = time.perf_counter() - t1
    sampling = sampling_for(info, cfg, centred)
    tracks = None if known is None else reuse_tracks(path, known, info, **sampling)
    if tracks is None:
        tracks = find_faces(path, **sampling, detector=detector or cfg.detector, size=cfg.size,
                            margin=cfg.margin, max_faces=cfg.max_faces, detect_max_side=cfg.detect_max_side,
                            detect_every=cfg.detect_every, find_every=cfg.find_every, fallback=cfg.fallback,
                            info=info)
    plan_crops(tracks, cfg)
    tracks.timings["probe"] = t_probe
    tracks.timings["audio"] = t_audio
    return MediaStream(faces=tracks, mel=mel, mel_times=mel_times, has_audio=mel.shape[1] > 0,
                       audio_message=message, timings=tracks.timings)


def plan_crops(tracks, cfg: MediaConfig) -> None:
    """Set `tracks.crop_boxes` for the crop mode of `cfg` (fakelens.features.crops): None for
    "tracked", the window's enclosing box of the smoothed and the unsmoothed boxes (clipped to the
    frame) on every frame for "roi"."""
    from fakelens.features.crops import crop_boxes, window_spans

    spans = window_spans(len(tracks.times), cfg.window_frames) if cfg.sampling == "windows" else \
        np.array([[0, len(tracks.times)]], np.int64)  # (K, 2)
    frame = (tracks.width, tracks.height) if tracks.width > 0 and tracks.height > 0 else None
    boxes = tracks.boxes  # (F, T, 4)
    if tracks.raw_boxes is not None and cfg.crop == "roi":
        # The roi encloses the boxes before smoothing too (as detected, interpolated between
        # detections): smoothing trims a face's swing, the region must hold it on every frame.
        raw = np.asarray(tracks.raw_boxes, np.float32)
        boxes = np.concatenate([np.minimum(boxes[..., :2], raw[..., :2]), np.maximum(boxes[..., 2:], raw[..., 2:])],
                               axis=-1)  # (F, T, 4) per frame the union of both
    tracks.crop_boxes = crop_boxes(cfg.crop, boxes, spans, frame) if tracks.n_faces else None


def compute_features(path: str | Path, cfg: MediaConfig, detector=None, known=None) -> VideoFeatures:
    """Faces and log-mels of one video with the parameters `cfg` (`known` face tracks reused as
    `open_features` says). Raises MediaError when undecodable."""
    stream = open_features(path, cfg, detector, known)
    tracks = stream.faces.known()
    clip = stream.faces.to_clip()
    return VideoFeatures(clip=clip, mel=stream.mel, mel_times=stream.mel_times, has_audio=stream.has_audio,
                         audio_message=stream.audio_message, timings=dict(clip.timings), tracks=tracks)
