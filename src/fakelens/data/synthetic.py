"""Synthetic audio-visual deepfakes: talking-head videos with voice, some faked in time segments.

Why: the demo and the test suite need labelled deepfake data without downloading anything. The
faces are real photos that ship with scikit-image (`astronaut()` is the main identity, the first
100 faces of `lfw_subset()` upsampled and tinted are the others); the voice is a formant
synthesizer. A fake video re-renders a real one (same speaker, motion, background, words) and
manipulates it only inside its fake segments:

- visual: the face is replaced inside a soft ellipse within the face box (`face_swap`: another
  identity; `face_reenact`: the same face warped), with the artifacts of real face swaps:
  resampling blur, missing camera grain, colour mismatch and flicker, a blending seam;
- audio: the voice is replaced in the segment (`voice_swap`: another speaker saying other
  words; `pitch_shift`: the same words at another pitch and vocal-tract length), with a
  vocoder-like band limit, flattened intonation, weaker room noise, a loudness step and, at high
  strength, a splice without crossfade;
- both: the two at once, on the same segments, the fake face lip-synced to the fake voice.

Everything is seeded: the same config gives identical metadata and identical frames before
encoding, whatever the number of workers (each video's seeds derive from (seed, index)).

Output (`layout="avdeepfake1m"`, the AV-Deepfake1M metadata format, fps 25, 16 kHz audio)::

    OUT/train/000001.mp4 ...            h264 + AAC; also OUT/val/, OUT/test/
    OUT/{split}_metadata.json           [{"file": "train/000001.mp4" (relative to OUT),
                                          "original": "train/000004.mp4" | null,
                                          "split": "train", "modify_type": "real" |
                                          "visual_modified" | "audio_modified" | "both_modified",
                                          "audio_model": "synthetic_voice_swap" | "",
                                          "fake_segments": [[start_s, end_s], ...] (union),
                                          "visual_fake_segments": [...], "audio_fake_segments": [...],
                                          "video_frames": 88, "audio_frames": 56320}, ...]
    OUT/{split}_face_boxes.json         {"train/000001.mp4": {"fps": 25, "boxes":
                                          [[x1, y1, x2, y2], ...]}}: one box per frame, pixels
                                          of the encoded frame, the tight face box as MTCNN
                                          draws it (forehead to chin, cheek to cheek)
    OUT/synthetic.json                  manifest: config, per-video details, written last

`audio_frames` is the number of audio samples at 16 kHz, as in AV-Deepfake1M (its loader
resamples to `frames / fps * 16000` samples); it is the length of the synthesized track, which
is exactly `video_frames * 640`. Fakes derive from a real video of the same split (`original`),
so a split by original never leaks. All three splits carry labels (the demo scores `test`).

`layout="csv"` (the multimedia deepfake competition) writes OUT/train/, OUT/valid/, OUT/test/
with OUT/train_labels.csv, OUT/validation_labels.csv, OUT/test_labels.csv (`video_name,target`,
1 = fake) instead of the json metadata; the face-box sidecars are the same (keys relative to OUT).

Re-running: a directory holding a complete output (its manifest) is refused unless `overwrite`;
an interrupted run (marker `.synthetic_pending.json`) with the same config resumes, skipping the
videos already written (each mp4 is written atomically, so an existing one is complete).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os

import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Literal, Sequence

import numpy as np

from fakelens.atomic import atomic_write_text
from fakelens.config import to_dict
from fakelens.errors import ConfigError, FakelensError
from fakelens.registry import Registry
from fakelens.types import Modality, Segment

SPLITS = ("train", "val", "test")
MANIFEST = "synthetic.json"
PENDING = ".synthetic_pending.json"
_CSV_DIRS = {"train": "train", "val": "valid", "test": "test"}
_CSV_LABELS = {"train": "train_labels.csv", "val": "validation_labels.csv", "test": "test_labels.csv"}
_MODIFY_TYPE = {Modality.NONE: "real", Modality.VISUAL: "visual_modified",
                Modality.AUDIO: "audio_modified", Modality.BOTH: "both_modified"}
N_LFW = 100  # lfw_subset(): the first 100 images are faces of different people
# lfw identities left out: MTCNN finds no face in their upsampled rendering (so their ground-truth
# boxes could not be checked against a detector); identity k is lfw_subset()[k - 1]
_LFW_SKIP = frozenset({28})
_LFW_IDS = tuple(k for k in range(1, N_LFW + 1) if k not in _LFW_SKIP)
_VERSION = 1


# --------------------------------------------------------------------------------------------
# Configuration and presets
# --------------------------------------------------------------------------------------------

@dataclass
class SynthConfig:
    """What to generate. Times in seconds; `size` is (H, W) in pixels; strength in [0, 1]."""

    n_videos: int = 160
    seed: int = 0
    fake_fraction: float = 0.5
    duration: tuple[float, float] = (3.2, 4.0)  # each source's duration is drawn in this range
    fps: int = 25
    size: tuple[int, int] = (224, 224)
    sample_rate: int = 16000
    modality_mix: tuple[float, float, float] = (0.4, 0.3, 0.3)  # weights of visual, audio, both
    visual_methods: tuple[str, ...] = ("face_swap", "face_reenact")
    audio_methods: tuple[str, ...] = ("voice_swap", "pitch_shift")
    segments_per_fake: tuple[int, int] = (1, 2)  # inclusive range
    segment_duration: tuple[float, float] = (1.4, 2.4)
    strength: float = 0.9
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train, val, test
    layout: Literal["avdeepfake1m", "csv"] = "avdeepfake1m"
    workers: int = 0  # 0 = one per CPU core; 1 = in this process
    main_identity_fraction: float = 0.35  # share of real sources showing astronaut()
    crf: int = 23  # h264 quality (lower = better)

    def __post_init__(self) -> None:
        self.duration = tuple(float(x) for x in self.duration)  # type: ignore[assignment]
        self.size = tuple(int(x) for x in self.size)  # type: ignore[assignment]
        self.segment_duration = tuple(float(x) for x in self.segment_duration)  # type: ignore[assignment]
        self.segments_per_fake = tuple(int(x) for x in self.segments_per_fake)  # type: ignore[assignment]
        self.modality_mix = tuple(float(x) for x in self.modality_mix)  # type: ignore[assignment]
        self.split_fractions = tuple(float(x) for x in self.split_fractions)  # type: ignore[assignment]
        self.visual_methods = tuple(self.visual_methods)
        self.audio_methods = tuple(self.audio_methods)
        self.validate()

    def validate(self) -> None:
        """Raise ConfigError naming the first bad field."""

        def bad(name: str, why: str) -> ConfigError:
            return ConfigError(f"synthetic config: {name}={getattr(self, name)!r}: {why}")

        if self.n_videos < 1:
            raise bad("n_videos", "need at least one video")
        if not 0.0 <= self.fake_fraction < 1.0:
            raise bad("fake_fraction", "must be in [0, 1) (fakes derive from real videos)")
        if len(self.duration) != 2 or not 0 < self.duration[0] <= self.duration[1]:
            raise bad("duration", "needs 0 < min <= max seconds")
        if self.fps <= 0:
            raise bad("fps", "must be positive")
        if len(self.size) != 2 or min(self.size) < 64 or any(s % 2 for s in self.size):
            raise bad("size", "needs (H, W), both even and >= 64 (h264 uses 4:2:0 chroma)")
        if self.sample_rate < 8000 or self.sample_rate % self.fps:
            raise bad("sample_rate", f">= 8000 and a multiple of fps={self.fps}")
        if len(self.modality_mix) != 3 or min(self.modality_mix) < 0 or sum(self.modality_mix) <= 0:
            raise bad("modality_mix", "needs three non-negative weights (visual, audio, both), not all 0")
        for name, reg, needed in (("visual_methods", VISUAL_MANIPULATIONS, self.modality_mix[0] + self.modality_mix[2]),
                                  ("audio_methods", AUDIO_MANIPULATIONS, self.modality_mix[1] + self.modality_mix[2])):
            methods = getattr(self, name)
            if needed > 0 and not methods:
                raise bad(name, "empty but the modality mix asks for such fakes")
            for m in methods:
                if m not in reg:
                    try:
                        reg.get(m)
                    except FakelensError as e:  # the registry's message suggests close names
                        raise bad(name, str(e)) from None
        lo, hi = self.segments_per_fake
        if not 1 <= lo <= hi:
            raise bad("segments_per_fake", "needs 1 <= min <= max")
        if not 0 < self.segment_duration[0] <= self.segment_duration[1]:
            raise bad("segment_duration", "needs 0 < min <= max seconds")
        if self.segment_duration[0] * self.fps < 1:
            raise bad("segment_duration", f"shorter than one frame at fps={self.fps}")
        if not 0.0 <= self.strength <= 1.0:
            raise bad("strength", "must be in [0, 1]")
        if len(self.split_fractions) != 3 or min(self.split_fractions) < 0 or sum(self.split_fractions) <= 0:
            raise bad("split_fractions", "needs three non-negative fractions (train, val, test)")
        if self.layout not in ("avdeepfake1m", "csv"):
            raise bad("layout", "is 'avdeepfake1m' or 'csv'")
        if self.workers < 0:
            raise bad("workers", "0 (all cores) or a positive count")
        if not 0.0 <= self.main_identity_fraction <= 1.0:
            raise bad("main_identity_fraction", "must be in [0, 1]")
        if not 0 <= self.crf <= 51:
            raise bad("crf", "h264 crf is in [0, 51]")


PRESETS: Registry[Callable[[], SynthConfig]] = Registry("synthetic preset")


@PRESETS.register("demo")
def _preset_demo() -> SynthConfig:
    """160 videos of 3.2-4 s at 224x224, fakes with 1-2 segments of 1.4-2.4 s, strong artifacts:
    a small model trained from scratch learns them on a CPU (generation: ~30 s on 2 cores)."""
    return SynthConfig()


@PRESETS.register("tiny")
def _preset_tiny() -> SynthConfig:
    """8 short 96x96 videos for tests: every split holds a real and a fake."""
    return SynthConfig(n_videos=8, duration=(1.2, 1.6), size=(96, 96), segments_per_fake=(1, 1),
                       segment_duration=(0.4, 0.6), split_fractions=(0.5, 0.25, 0.25), workers=1,
                       main_identity_fraction=0.5, modality_mix=(1.0, 1.0, 1.0))


@PRESETS.register("localization")
def _preset_localization() -> SynthConfig:
    """Longer videos with several short segments, for temporal localization (AV-1M-like)."""
    return SynthConfig(n_videos=200, duration=(6.0, 10.0), segments_per_fake=(1, 3),
                       segment_duration=(0.3, 1.2), strength=0.6)


@PRESETS.register("bench")
def _preset_bench() -> SynthConfig:
    """A larger, harder set for benchmarks: 400 videos of 4-8 s, weaker artifacts."""
    return SynthConfig(n_videos=400, duration=(4.0, 8.0), segments_per_fake=(1, 3),
                       segment_duration=(0.4, 1.6), strength=0.5)


def preset(name: str, **overrides) -> SynthConfig:
    """The named preset's config with some fields replaced (validated again)."""
    cfg = PRESETS.get(name)()
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


# --------------------------------------------------------------------------------------------
# Plans: everything decided up front, in the parent, from the seed
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SourcePlan:
    """One real recording: identity, motion, background, speaker and words all derive from `seed`."""

    seed: int
    identity: int  # 0 = astronaut(), k in 1..100 = lfw_subset()[k - 1]
    n_frames: int
    fps: int
    size: tuple[int, int]  # (H, W)
    sample_rate: int

    @property
    def duration(self) -> float:
        return self.n_frames / self.fps

    @property
    def n_samples(self) -> int:
        return self.n_frames * self.sample_rate // self.fps


@dataclass(frozen=True)
class FakePlan:
    """How a fake re-renders its source: which modality, where, how, how strongly."""

    modality: Modality
    segments: tuple[Segment, ...]  # seconds, on the frame grid, sorted, disjoint
    visual_method: str | None
    audio_method: str | None
    donor: int  # identity whose face is swapped in (face_swap)
    strength: float
    seed: int


@dataclass(frozen=True)
class VideoPlan:
    """One output video: where it goes, its source, and its manipulation (None for a real)."""

    index: int
    file: str  # relative to the dataset root, e.g. "train/000001.mp4"
    split: str
    source: SourcePlan
    original: str | None = None
    fake: FakePlan | None = None

    @property
    def modality(self) -> Modality:
        return self.fake.modality if self.fake else Modality.NONE

    @property
    def visual_segments(self) -> tuple[Segment, ...]:
        return self.fake.segments if self.fake and self.fake.modality.visual else ()

    @property
    def audio_segments(self) -> tuple[Segment, ...]:
        return self.fake.segments if self.fake and self.fake.modality.audio else ()

    @property
    def segments(self) -> tuple[Segment, ...]:
        return _union(self.visual_segments + self.audio_segments)

    @property
    def audio_model(self) -> str:
        return f"synthetic_{self.fake.audio_method}" if self.fake and self.fake.modality.audio else ""


def segment_frames(segments: Sequence[Segment], fps: float, n_frames: int) -> np.ndarray:
    """(n_frames,) bool: frames k with start <= k / fps < end, for segments on the frame grid.

    Rounds instead of truncating: 1.16 s * 25 is 28.999999999999996 in floating point, and the
    fake of a segment starting at 1.16 s starts at frame 29.
    """
    mask = np.zeros(n_frames, bool)
    for seg in segments:
        mask[max(0, int(round(seg.start * fps))) : max(0, int(round(seg.end * fps)))] = True
    return mask


def _union(segs: Sequence[Segment]) -> tuple[Segment, ...]:
    out: list[Segment] = []
    for s in sorted(segs):
        if out and s.start <= out[-1].end:
            out[-1] = Segment(out[-1].start, max(out[-1].end, s.end))
        else:
            out.append(s)
    return tuple(out)


def _seed(*keys: int) -> int:
    """A 63-bit seed from integer keys (SeedSequence mixes them well)."""
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def _apportion(n: int, fractions: Sequence[float]) -> list[int]:
    """Split n into integer parts proportional to `fractions` (largest remainder)."""
    f = np.asarray(fractions, float) / sum(fractions)
    raw = f * n
    out = np.floor(raw).astype(int)
    for i in np.argsort(-(raw - out), kind="stable")[: n - out.sum()]:
        out[i] += 1
    return out.tolist()


def _video_path(split: str, index: int, layout: str) -> str:
    folder = _CSV_DIRS[split] if layout == "csv" else split
    return f"{folder}/{index:06d}.mp4"


def plan_videos(config: SynthConfig) -> list[VideoPlan]:
    """Decide every video from `config.seed`: split, label, source, original, segments, methods.

    Reals and fakes are interleaved within each split and numbered globally (000001...), so a
    file name reveals nothing; each fake derives from a real of the same split.
    """
    config.validate()
    rng = np.random.default_rng([config.seed, 0x5E1])
    per_split = _apportion(config.n_videos, config.split_fractions)
    plans: list[VideoPlan] = []
    index = 0
    mix = np.asarray(config.modality_mix) / sum(config.modality_mix)
    modalities = (Modality.VISUAL, Modality.AUDIO, Modality.BOTH)
    for split, n in zip(SPLITS, per_split):
        if n == 0:
            continue
        n_fake = min(int(round(n * config.fake_fraction)), n - 1)  # a fake needs a real original
        kinds = np.array([False] * (n - n_fake) + [True] * n_fake)
        rng.shuffle(kinds)
        # reals first get their numbers and sources; fakes pick their original round-robin
        slots = list(range(index + 1, index + 1 + n))
        index += n
        sources: dict[int, SourcePlan] = {}
        for slot, is_fake in zip(slots, kinds):
            if not is_fake:
                sources[slot] = _plan_source(config, slot, rng)
        real_slots = list(sources)
        order = rng.permutation(len(real_slots))
        k = 0
        for slot, is_fake in zip(slots, kinds):
            file = _video_path(split, slot, config.layout)
            if not is_fake:
                plans.append(VideoPlan(slot, file, split, sources[slot]))
                continue
            orig_slot = real_slots[order[k % len(real_slots)]]
            k += 1
            src = sources[orig_slot]
            modality = modalities[int(rng.choice(3, p=mix))]
            fake = FakePlan(
                modality=modality,
                segments=_plan_segments(config, src.n_frames, rng),
                visual_method=str(rng.choice(config.visual_methods)) if modality.visual else None,
                audio_method=str(rng.choice(config.audio_methods)) if modality.audio else None,
                donor=_plan_donor(src.identity, rng),
                strength=config.strength,
                seed=_seed(config.seed, slot, 1),
            )
            plans.append(VideoPlan(slot, file, split, src, _video_path(split, orig_slot, config.layout), fake))
    return plans


def _plan_source(config: SynthConfig, slot: int, rng: np.random.Generator) -> SourcePlan:
    identity = 0 if rng.random() < config.main_identity_fraction else int(rng.choice(_LFW_IDS))
    seconds = rng.uniform(*config.duration)
    n_frames = max(2, int(round(seconds * config.fps)))
    return SourcePlan(_seed(config.seed, slot, 0), identity, n_frames, config.fps, tuple(config.size),
                      config.sample_rate)


def _plan_donor(identity: int, rng: np.random.Generator) -> int:
    if identity != 0 and rng.random() < 0.4:
        return 0
    donor = int(rng.choice(_LFW_IDS))
    while donor == identity:
        donor = int(rng.choice(_LFW_IDS))
    return donor


def _plan_segments(config: SynthConfig, n_frames: int, rng: np.random.Generator) -> tuple[Segment, ...]:
    """Disjoint segments on the frame grid, at least `gap` frames apart, inside the video."""
    fps = config.fps
    gap = max(1, int(round(0.2 * fps)))
    n = int(rng.integers(config.segments_per_fake[0], config.segments_per_fake[1] + 1))
    lengths = [int(round(rng.uniform(*config.segment_duration) * fps)) for _ in range(n)]
    lengths = [min(max(1, x), max(1, n_frames - 2)) for x in lengths]
    while len(lengths) > 1 and sum(lengths) + gap * (len(lengths) - 1) > n_frames - 2:
        lengths.pop()
    slack = n_frames - sum(lengths) - gap * (len(lengths) - 1)
    cuts = np.sort(rng.integers(0, slack + 1, size=len(lengths)))
    segs = []
    pos = 0
    prev_cut = 0
    for length, cut in zip(lengths, cuts):
        pos += int(cut - prev_cut)
        prev_cut = cut
        segs.append(Segment(round(pos / fps, 6), round((pos + length) / fps, 6)))
        pos += length + gap
    return tuple(segs)


# --------------------------------------------------------------------------------------------
# Assets: faces and textures that ship with scikit-image (cached per process)
# --------------------------------------------------------------------------------------------

_CANVAS = (300, 200)  # sprite (H, W): head and shoulders
# astronaut() crop [8:308, 125:325]; its MTCNN face box x 181-268, y 62-172 in canvas coordinates
_ASTRO_ORIGIN = (125, 8)
_ASTRO_FACE = (181.0 - 125, 62.0 - 8, 268.0 - 125, 172.0 - 8)
_ASTRO_MOUTH = (98.0, 141.0, 17.0)  # centre x, centre y, half width
# lfw faces are pasted over this canvas region (x1, y1, x2, y2); their face box is where MTCNN
# (facenet-pytorch, min_face_size 20) puts it on the rendered heads: measured on 116 frames of 29
# identities, mean IoU 0.78 with this box at 224x224 and 96x96, IoU >= 0.5 in 97% of the frames
_LFW_PASTE = (56, 62, 144, 162)
_LFW_FACE = (61.0, 62.0, 139.0, 160.0)
_LFW_MOUTH = (100.0, 139.0, 15.0)

_SKIN = np.array([[0.93, 0.76, 0.65], [0.85, 0.66, 0.53], [0.76, 0.57, 0.42], [0.62, 0.44, 0.31],
                  [0.45, 0.31, 0.22], [0.95, 0.78, 0.72]], np.float32)
_HAIR = np.array([[0.08, 0.06, 0.05], [0.28, 0.19, 0.11], [0.62, 0.50, 0.30], [0.50, 0.50, 0.50],
                  [0.45, 0.20, 0.10]], np.float32)
_TEXTURES = ("brick", "grass", "gravel", "camera", "moon")


@dataclass(frozen=True)
class Sprite:
    """A head-and-shoulders image with premultiplied alpha, its face box and mouth position."""

    rgba: np.ndarray  # (300, 200, 4) float32, RGB premultiplied by alpha
    face: tuple[float, float, float, float]  # x1, y1, x2, y2 in sprite pixels
    mouth: tuple[float, float, float]  # cx, cy, half width


@lru_cache(maxsize=None)
def _astronaut() -> np.ndarray:
    from skimage import data

    x0, y0 = _ASTRO_ORIGIN
    return data.astronaut()[y0 : y0 + _CANVAS[0], x0 : x0 + _CANVAS[1]].astype(np.float32) / 255  # (300, 200, 3)


@lru_cache(maxsize=None)
def _lfw() -> np.ndarray:
    from skimage import data

    return data.lfw_subset()[:N_LFW].astype(np.float32)  # (100, 25, 25) in [0, 1]


@lru_cache(maxsize=None)
def _texture(name: str) -> np.ndarray:
    from skimage import data

    return getattr(data, name)().astype(np.float32) / 255  # (512, 512)


def _ellipse(h: int, w: int, cx: float, cy: float, ax: float, ay: float, soft: float = 1.0) -> np.ndarray:
    """Anti-aliased filled ellipse mask (h, w) float32 in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    return np.clip((1.0 - r) * min(ax, ay) / soft + 0.5, 0.0, 1.0)


def _astronaut_mask() -> np.ndarray:
    """Person vs studio backdrop in the astronaut crop: the backdrop is bright and grey. (300, 200) float32."""
    import cv2

    rgb = _astronaut()
    hi, lo = rgb.max(2), rgb.min(2)
    person = ~(((hi - lo) / (hi + 1e-6) < 0.12) & (hi > 0.6))
    m = cv2.morphologyEx(person.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m)
    m = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    holes = (1 - m).copy()
    cv2.floodFill(holes, np.zeros((m.shape[0] + 2, m.shape[1] + 2), np.uint8), (0, 0), 0)
    return np.maximum(m, holes).astype(np.float32)


@lru_cache(maxsize=None)
def _identity_sprite(identity: int) -> Sprite:
    """The identity's sprite before per-video jitter (astronaut photo, or a tinted lfw face on a head)."""
    import cv2

    h, w = _CANVAS
    if identity == 0:
        rgb = _astronaut()
        alpha = _astronaut_mask() * np.maximum(_ellipse(h, w, 103, 92, 80, 92, soft=3),
                                               _ellipse(h, w, 100, 310, 96, 165, soft=3))
        alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)
        return Sprite(np.dstack([rgb * alpha[..., None], alpha]).astype(np.float32), _ASTRO_FACE, _ASTRO_MOUTH)
    rng = np.random.default_rng([identity, 0xFACE])
    skin = _SKIN[rng.integers(len(_SKIN))]
    hair = _HAIR[rng.integers(len(_HAIR))]
    cloth = rng.uniform(0.1, 0.8, 3).astype(np.float32)
    rgb = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)

    def paint(mask: np.ndarray, colour: np.ndarray) -> None:
        nonlocal rgb, alpha
        m = mask[..., None]
        rgb = rgb * (1 - m) + colour * m
        alpha = np.maximum(alpha, mask)

    yy = np.arange(h, dtype=np.float32)[:, None]
    paint(_ellipse(h, w, 100, 305, 100, 85), cloth * (1.0 - 0.25 * (yy[..., None] - 220) / 80))
    neck = ((np.abs(np.arange(w)[None, :] - 100) <= 27) & (yy >= 140) & (yy <= 240)).astype(np.float32)
    paint(neck, skin * 0.82)
    paint(_ellipse(h, w, 100, 100, 64, 76), hair)
    paint(_ellipse(h, w, 100, 114, 50, 62), skin)
    # the lfw face (greyscale, 25x25), upsampled and tinted to the skin tone
    grey = _lfw()[identity - 1]
    x1, y1, x2, y2 = _LFW_PASTE
    up = cv2.resize(grey, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)  # (100, 88)
    centre = up[20:80, 20:68].mean()
    tinted = skin[None, None, :] * np.clip(0.35 + 0.65 * up / max(centre, 1e-3), 0, 1.5)[..., None]
    patch = np.zeros((h, w, 3), np.float32)
    patch[y1:y2, x1:x2] = tinted
    m = _ellipse(h, w, (x1 + x2) / 2, (y1 + y2) / 2 + 2, (x2 - x1) / 2 - 1, (y2 - y1) / 2, soft=7)
    m[:y1] = 0
    m[y2:] = 0
    rgb = rgb * (1 - m[..., None]) + patch * m[..., None]
    paint(_ellipse(h, w, 100, 52, 54, 22) * (yy < 60), hair)  # fringe
    # skin detail: fine fixed texture so upsampled faces are not unnaturally smooth
    detail = cv2.GaussianBlur(rng.normal(0, 0.035, (h, w)).astype(np.float32), (0, 0), 0.6)
    rgb = np.clip(rgb * (1 + detail[..., None]), 0, 1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)
    return Sprite(np.dstack([rgb * alpha[..., None], alpha]).astype(np.float32), _LFW_FACE, _LFW_MOUTH)


def _video_sprite(identity: int, rng: np.random.Generator) -> Sprite:
    """Per-video appearance: mirror, colour jitter (the same person filmed differently)."""
    base = _identity_sprite(identity)
    rgba = base.rgba.copy()
    gains = rng.uniform(0.88, 1.12, 3).astype(np.float32) * rng.uniform(0.9, 1.08)
    rgba[..., :3] = np.minimum(rgba[..., :3] * gains, rgba[..., 3:4])
    face, mouth = base.face, base.mouth
    if rng.random() < 0.5:
        w = _CANVAS[1]
        rgba = rgba[:, ::-1].copy()
        face = (w - 1 - face[2], face[1], w - 1 - face[0], face[3])
        mouth = (w - 1 - mouth[0], mouth[1], mouth[2])
    return Sprite(rgba, face, mouth)


# --------------------------------------------------------------------------------------------
# Motion, background, lighting: per-video smooth trajectories (all (T, ...) arrays)
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Motion:
    """Per-frame head pose: the face box centre moves, turns and zooms smoothly."""

    centre: np.ndarray  # (T, 2) x, y in frame pixels
    scale: np.ndarray  # (T,) frame pixels per sprite pixel
    angle: np.ndarray  # (T,) degrees, counter-clockwise

    def affine(self, t: int, anchor: tuple[float, float], extra_scale: float = 1.0,
               offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
        """(2, 3) matrix mapping sprite pixels to frame pixels (minus `offset`), anchor -> centre."""
        s = self.scale[t] * extra_scale
        a = math.radians(self.angle[t])
        c, si = s * math.cos(a), s * math.sin(a)
        rot = np.array([[c, si], [-si, c]], np.float64)  # y down: positive angle turns anticlockwise
        tx, ty = self.centre[t] - rot @ np.asarray(anchor, np.float64) - np.asarray(offset)
        return np.array([[rot[0, 0], rot[0, 1], tx], [rot[1, 0], rot[1, 1], ty]], np.float64)


def _smooth_wave(rng: np.random.Generator, t: np.ndarray, amp: float, fmin: float = 0.1,
                 fmax: float = 0.7, n: int = 3) -> np.ndarray:
    """Sum of n random sinusoids, peak amplitude <= amp. Returns (T,)."""
    out = np.zeros_like(t)
    for _ in range(n):
        out += rng.uniform(0.3, 1.0) * np.sin(2 * np.pi * rng.uniform(fmin, fmax) * t + rng.uniform(0, 2 * np.pi))
    return amp * out / n


def _motion(src: SourcePlan) -> Motion:
    rng = np.random.default_rng([src.seed, 1])
    h, w = src.size
    t = np.arange(src.n_frames) / src.fps  # (T,)
    face_h = _identity_sprite(src.identity).face
    face_h = face_h[3] - face_h[1]
    s0 = rng.uniform(0.36, 0.46) * h / face_h
    zoom_amp = rng.uniform(-0.10, 0.12)
    t0, t1 = sorted(rng.uniform(0, max(t[-1], 1e-3), 2))
    ramp = np.clip((t - t0) / max(t1 - t0, 0.3), 0, 1)
    zoom = 1 + zoom_amp * ramp * ramp * (3 - 2 * ramp)
    scale = s0 * zoom * (1 + _smooth_wave(rng, t, 0.015, 0.5, 1.5, 2))
    cx = w * (0.5 + rng.uniform(-0.05, 0.05)) + _smooth_wave(rng, t, 0.06 * w)
    cy = h * (0.45 + rng.uniform(-0.03, 0.03)) + _smooth_wave(rng, t, 0.04 * h)
    angle = rng.uniform(-4, 4) + _smooth_wave(rng, t, 5.0, 0.15, 0.8)
    return Motion(np.stack([cx, cy], 1), scale, angle)


def face_boxes(src: SourcePlan) -> np.ndarray:
    """Ground-truth face box per frame, (T, 4) float32 x1, y1, x2, y2 in frame pixels.

    The sprite's face box (MTCNN-like, forehead to chin) follows the head: its centre moves with
    the pose, its size scales, and a turned face gets the box of its turned inscribed ellipse.
    Cheap (no rendering): the metadata writer calls it for videos skipped on resume.
    """
    rng_look = np.random.default_rng([src.seed, 2])
    sprite = _video_sprite(src.identity, rng_look)
    motion = _motion(src)
    return _boxes_from_motion(sprite, motion, src.size)


def _boxes_from_motion(sprite: Sprite, motion: Motion, size: tuple[int, int]) -> np.ndarray:
    x1, y1, x2, y2 = sprite.face
    anchor = ((x1 + x2) / 2, (y1 + y2) / 2)
    out = np.empty((len(motion.scale), 4), np.float32)
    for t in range(len(motion.scale)):
        cx, cy = motion.centre[t]  # the face box centre (the anchor) is where the pose puts it
        a = math.radians(motion.angle[t])
        ax, ay = motion.scale[t] * (x2 - x1) / 2, motion.scale[t] * (y2 - y1) / 2
        hw = math.hypot(ax * math.cos(a), ay * math.sin(a))
        hh = math.hypot(ax * math.sin(a), ay * math.cos(a))
        out[t] = (cx - hw, cy - hh, cx + hw, cy + hh)
    h, w = size
    out[:, [0, 2]] = np.clip(out[:, [0, 2]], 0, w - 1)
    out[:, [1, 3]] = np.clip(out[:, [1, 3]], 0, h - 1)
    return out


def _background(src: SourcePlan, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A gradient + blurred photographic texture, larger than the frame, and a pan path.

    Returns the canvas (H + 2P, W + 2P, 3) float32 and integer offsets (T, 2) (x, y).
    """
    import cv2

    h, w = src.size
    pad = max(4, int(round(0.05 * max(h, w))))
    hc, wc = h + 2 * pad, w + 2 * pad
    c1, c2 = rng.uniform(0.15, 0.85, (2, 3)).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:hc, 0:wc].astype(np.float32)
    g = (np.cos(ang) * xx / wc + np.sin(ang) * yy / hc)
    g = (g - g.min()) / max(float(np.ptp(g)), 1e-6)
    base = c1 * (1 - g[..., None]) + c2 * g[..., None]
    tex = _texture(_TEXTURES[rng.integers(len(_TEXTURES))])
    side = int(rng.integers(160, 400))
    ty, tx = rng.integers(0, 512 - side, 2)
    crop = cv2.resize(tex[ty : ty + side, tx : tx + side], (wc, hc), interpolation=cv2.INTER_AREA)
    crop = cv2.GaussianBlur(crop, (0, 0), rng.uniform(0.8, 2.5) * h / 224)
    crop = (crop - crop.mean()) / max(float(crop.std()), 1e-3)
    bg = base * (1 + rng.uniform(0.06, 0.18) * crop[..., None])
    r2 = ((xx / wc - 0.5) ** 2 + (yy / hc - 0.5) ** 2)[..., None]
    bg = np.clip(bg * (1 - rng.uniform(0.1, 0.4) * r2), 0, 1).astype(np.float32)
    t = np.arange(src.n_frames) / src.fps
    ox = np.clip(np.round(pad + _smooth_wave(rng, t, 0.9 * pad, 0.05, 0.3, 2)), 0, 2 * pad).astype(int)
    oy = np.clip(np.round(pad + _smooth_wave(rng, t, 0.6 * pad, 0.05, 0.3, 2)), 0, 2 * pad).astype(int)
    return bg, np.stack([ox, oy], 1)


def _lighting(src: SourcePlan, rng: np.random.Generator) -> np.ndarray:
    """Per-frame light: global gain and a left-right gradient that drift. Returns (T, W) float32."""
    t = np.arange(src.n_frames) / src.fps
    w = src.size[1]
    gain = rng.uniform(0.88, 1.08) * (1 + _smooth_wave(rng, t, 0.10, 0.1, 0.5, 2))
    side = rng.uniform(-0.12, 0.12) + _smooth_wave(rng, t, 0.08, 0.05, 0.4, 2)
    x = np.linspace(-1, 1, w)
    return (gain[:, None] * (1 + side[:, None] * x[None, :])).astype(np.float32)  # (T, W)


# --------------------------------------------------------------------------------------------
# Voice: formant synthesizer (glottal pulses through vowel resonances), syllables and pauses
# --------------------------------------------------------------------------------------------

_VOWELS = np.array([[730, 1090, 2440], [530, 1840, 2480], [270, 2290, 3010], [570, 840, 2410],
                    [300, 870, 2240], [660, 1720, 2410]], np.float64)  # a e i o u ae (Hz, adult male)
_BANDWIDTHS = (80.0, 110.0, 160.0, 250.0, 300.0)
_HIGH_FORMANTS = (3500.0, 4500.0)  # F4, F5: speaker-dependent only through the vocal-tract scale


@dataclass(frozen=True)
class Speaker:
    """Voice parameters: base pitch (Hz), vocal-tract scale, speaking rate (syllables/s)..."""

    f0: float
    formant: float
    rate: float
    breath: float
    jitter: float
    intonation: float  # semitones
    tilt: float  # one-pole glottal low-pass coefficient


@dataclass(frozen=True)
class Syllable:
    start: float  # seconds, consonant onset
    consonant: float  # seconds (0 = none)
    vowel_dur: float  # seconds
    vowel: int
    stress: float  # peak amplitude in (0, 1]


def _speaker(rng: np.random.Generator) -> Speaker:
    f0 = float(np.exp(rng.uniform(np.log(85), np.log(235))))
    formant = 0.92 + 0.2 * (np.log(f0 / 85) / np.log(235 / 85)) + rng.uniform(-0.04, 0.04)
    return Speaker(f0, float(formant), rng.uniform(3.6, 5.2), rng.uniform(0.03, 0.1), rng.uniform(0.004, 0.015),
                   rng.uniform(1.5, 4.0), rng.uniform(0.6, 0.85))


def _utterance(rng: np.random.Generator, duration: float, rate: float) -> list[Syllable]:
    """Words of 1-4 syllables separated by pauses, covering `duration` seconds."""
    out: list[Syllable] = []
    t = rng.uniform(0.05, 0.3)
    while t < duration:
        n = int(rng.integers(1, 5))
        stressed = int(rng.integers(n))
        for k in range(n):
            cons = rng.uniform(0.03, 0.07) if rng.random() < 0.7 else 0.0
            vdur = max(0.06, rng.uniform(0.55, 0.95) / rate - cons)
            out.append(Syllable(t, cons, vdur, int(rng.integers(len(_VOWELS))),
                                1.0 if k == stressed else rng.uniform(0.55, 0.8)))
            t += cons + vdur + rng.uniform(0.0, 0.03)
        t += rng.uniform(0.12, 0.45) if rng.random() < 0.85 else rng.uniform(0.5, 0.8)
    return out


def _moving_average(x: np.ndarray, n: int) -> np.ndarray:
    """Centered box filter of width n along the last axis (cumulative sums: O(len)), same shape."""
    if n <= 1:
        return x
    pad = [(0, 0)] * (x.ndim - 1) + [(n // 2 + 1, n - n // 2 - 1)]
    c = np.cumsum(np.pad(x, pad), axis=-1)
    return (c[..., n:] - c[..., :-n]) / n


class _Spectrum:
    """Filtering by multiplication in the frequency domain (no scipy.signal: it takes seconds to import).

    Responses are those of the classic filters: 2-pole resonators and a one-pole glottal low-pass
    (their exact frequency responses, so the same phase as the IIR filters), and zero-phase
    Butterworth magnitudes. Padding keeps the circular wrap-around of the short responses negligible.
    """

    def __init__(self, n: int, sr: int):
        self.n = n
        self.nfft = -(-(n + 2048) // 4096) * 4096
        self.f = np.fft.rfftfreq(self.nfft, 1 / sr)  # (F,) Hz
        self.z = np.exp(-2j * np.pi * self.f / sr)  # (F,) e^{-jw}
        self.sr = sr

    def spectrum(self, x: np.ndarray) -> np.ndarray:
        return np.fft.rfft(x, self.nfft)

    def signal(self, spec: np.ndarray) -> np.ndarray:
        return np.fft.irfft(spec, self.nfft)[: self.n]

    def resonator(self, freq: float, bandwidth: float) -> np.ndarray:
        """2-pole resonance, unit gain at 0 Hz."""
        r = math.exp(-math.pi * bandwidth / self.sr)
        c = -2 * r * math.cos(2 * math.pi * min(freq, 0.45 * self.sr) / self.sr)
        return (1 + c + r * r) / (1 + c * self.z + r * r * self.z**2)

    def one_pole(self, a: float) -> np.ndarray:
        return (1 - a) / (1 - a * self.z)

    def lowpass(self, cutoff: float, order: int) -> np.ndarray:
        return 1 / np.sqrt(1 + (self.f / cutoff) ** (2 * order))

    def highpass(self, cutoff: float, order: int) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return 1 / np.sqrt(1 + (cutoff / np.maximum(self.f, 1e-9)) ** (2 * order))


def synthesize_voice(syllables: Sequence[Syllable], spk: Speaker, n: int, sr: int, rng: np.random.Generator,
                     *, flat: float = 0.0, lowpass: float | None = None, room_db: float = 0.0,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Render speech. Returns audio (n,) float32 (peak about 0.5) and the voicing envelope (n,) in [0, 1].

    `flat` in [0, 1] removes intonation and jitter (TTS-like monotony); `lowpass` (Hz) band-limits
    the result like a vocoder at a low sample rate; `room_db` lowers the room noise (a studio TTS
    voice spliced into a recording lacks it).
    """
    env_v = np.zeros(n, np.float64)  # (n,) vowel amplitude
    env_c = np.zeros(n, np.float64)  # (n,) consonant noise amplitude
    vowel_w = np.zeros((len(_VOWELS), n))  # (V, n) which vowel's resonances are active
    stress = np.zeros(n)
    for syl in syllables:
        c0 = int(syl.start * sr)
        if c0 >= n:
            break
        c1 = c0 + int(syl.consonant * sr)
        v1 = c1 + int(syl.vowel_dur * sr)
        if c1 > c0:
            env_c[c0 : min(c1, n)] += np.hanning(c1 - c0)[: max(0, min(c1, n) - c0)]
        length = v1 - c1
        att, rel = min(int(0.015 * sr), length // 3), min(int(0.045 * sr), length // 2)
        shape = np.ones(length)
        shape[:att] = 0.5 - 0.5 * np.cos(np.linspace(0, np.pi, att))
        shape[length - rel :] = 0.5 + 0.5 * np.cos(np.linspace(0, np.pi, rel))
        stop = min(v1, n)
        if stop > c1:
            env_v[c1:stop] = np.maximum(env_v[c1:stop], syl.stress * shape[: stop - c1])
            stress[c1:stop] = syl.stress
        vowel_w[syl.vowel, max(0, c0 - int(0.02 * sr)) : stop] = 1
    vowel_w = _moving_average(vowel_w, int(0.025 * sr))
    vowel_w[0] += 1e-6  # a defined mix where no vowel is active (silence there anyway)
    vowel_w /= vowel_w.sum(0, keepdims=True)

    t = np.arange(n) / sr
    semis = spk.intonation * (0.45 * np.sin(2 * np.pi * rng.uniform(0.2, 0.5) * t + rng.uniform(0, 6.3))
                              + 0.8 * (_moving_average(stress, int(0.08 * sr)) - 0.5)) - 1.5 * t / max(t[-1], 1e-3)
    jitter_ctrl = rng.normal(0, 1, n // 160 + 2)
    jitter = np.interp(np.arange(n) / 160, np.arange(len(jitter_ctrl)), jitter_ctrl) * spk.jitter * 12
    f0 = spk.f0 * 2 ** ((semis + jitter) * (1 - flat) / 12)  # (n,) Hz
    phase = 2 * np.pi * np.cumsum(f0) / sr
    top = min(0.45 * sr, lowpass or sr)
    k = max(1, int(top / f0.max()))
    half = np.sin(phase / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        # band-limited pulse train: sum of k harmonics of the phase (Dirichlet kernel)
        pulses = np.where(np.abs(half) > 1e-6, np.sin((k + 0.5) * phase) / (2 * half) - 0.5, k) / k  # (n,)
    fx = _Spectrum(n, sr)
    source = fx.spectrum(pulses) * fx.one_pole(spk.tilt)
    voiced = np.zeros(n)
    for v, formants in enumerate(_VOWELS):
        if vowel_w[v].max() < 1e-3:
            continue
        freqs = [*formants, *_HIGH_FORMANTS]
        resp = np.prod([fx.resonator(f * spk.formant, bw) for f, bw in zip(freqs, _BANDWIDTHS)], axis=0)
        voiced += vowel_w[v] * fx.signal(source * resp)
    loud = env_v > 0.5
    voiced /= max(float(np.sqrt(np.mean(voiced[loud] ** 2))) if loud.any() else 1.0, 1e-9)
    noise = fx.spectrum(rng.normal(0, 1, n))
    hiss = fx.signal(noise * fx.highpass(min(3000, 0.4 * sr), 4))
    breath = fx.signal(noise * fx.highpass(400, 2) * fx.lowpass(min(4000, 0.45 * sr), 2))
    audio = voiced * env_v + 0.12 * hiss * env_c + spk.breath * breath * env_v
    if lowpass is not None:
        audio = fx.signal(fx.spectrum(audio) * fx.lowpass(lowpass, 8))
    audio *= 0.5 / max(float(np.percentile(np.abs(audio), 99.9)), 1e-9)
    room_noise = fx.signal(fx.spectrum(rng.normal(0, 1, n)) * fx.lowpass(1500, 1))
    audio += 10 ** ((rng.uniform(-48, -40) - room_db) / 20) * room_noise / max(float(room_noise.std()), 1e-9)
    return audio.astype(np.float32), np.clip(env_v, 0, 1).astype(np.float32)


def _mouth_openness(env: np.ndarray, n_frames: int) -> np.ndarray:
    """Mean voicing envelope over each frame's audio: (T,) in [0, 1]."""
    return np.clip(env[: n_frames * (len(env) // n_frames)].reshape(n_frames, -1).mean(1) / 0.8, 0, 1)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

@dataclass
class RenderedVideo:
    """A video before encoding."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    audio: np.ndarray  # (S,) float32 in [-1, 1], S = T * sample_rate / fps
    boxes: np.ndarray  # (T, 4) float32 face box x1, y1, x2, y2
    fps: int
    sample_rate: int


@dataclass
class _Scene:
    """What visual manipulations need to know about the real rendering."""

    src: SourcePlan
    motion: Motion
    sprite: Sprite
    light: np.ndarray  # (T, W)
    boxes: np.ndarray  # (T, 4)
    mouth: np.ndarray  # (T,) openness of the voice actually heard in the output


def _draw_mouth(img: np.ndarray, cx: float, cy: float, hw: float, openness: float, angle: float,
                origin: tuple[int, int] = (0, 0)) -> None:
    """Darken an open-mouth ellipse in `img` (float32 (h, w, 3)) in place; coordinates minus `origin`."""
    hw *= 0.8
    hh = hw * 0.4 * openness
    if hh < 0.6:
        return
    cx, cy = cx - origin[0], cy - origin[1]
    h, w = img.shape[:2]
    x1, x2 = max(0, int(cx - hw - 2)), min(w, int(cx + hw + 3))
    y1, y2 = max(0, int(cy - hw - 2)), min(h, int(cy + hw + 3))
    if x2 <= x1 or y2 <= y1:
        return
    yy, xx = np.mgrid[y1:y2, x1:x2].astype(np.float32)
    a = math.radians(angle)
    u = (xx - cx) * math.cos(a) - (yy - cy) * math.sin(a)
    v = (xx - cx) * math.sin(a) + (yy - cy) * math.cos(a)
    r = np.sqrt((u / hw) ** 2 + (v / hh) ** 2)
    m = np.clip((1 - r) * hh + 0.5, 0, 1)[..., None] * 0.75
    roi = img[y1:y2, x1:x2]
    roi *= 1 - m
    roi += m * np.array([0.25, 0.08, 0.08], np.float32)


def _mouth_in_frame(sprite: Sprite, motion: Motion, t: int, anchor: tuple[float, float],
                    extra_scale: float = 1.0) -> tuple[float, float, float]:
    m = motion.affine(t, anchor, extra_scale)
    cx, cy = m[:, :2] @ np.asarray(sprite.mouth[:2]) + m[:, 2]
    return float(cx), float(cy), sprite.mouth[2] * motion.scale[t] * extra_scale


def _anchor(sprite: Sprite) -> tuple[float, float]:
    x1, y1, x2, y2 = sprite.face
    return (x1 + x2) / 2, (y1 + y2) / 2


def render_video(plan: VideoPlan) -> RenderedVideo:
    """Render a video: its source as a real recording, then its manipulation inside its segments.

    Rendering the fake's `original` gives the same frames and samples outside the fake segments,
    and the same frames outside the face box inside visual segments.
    """
    import cv2

    src = plan.source
    h, w = src.size
    n_t, n_s, sr = src.n_frames, src.n_samples, src.sample_rate
    sprite = _video_sprite(src.identity, np.random.default_rng([src.seed, 2]))
    motion = _motion(src)
    boxes = _boxes_from_motion(sprite, motion, src.size)
    bg, pan = _background(src, np.random.default_rng([src.seed, 3]))
    light = _lighting(src, np.random.default_rng([src.seed, 4]))
    rng_voice = np.random.default_rng([src.seed, 5])
    speaker = _speaker(rng_voice)
    words = _utterance(rng_voice, src.duration, speaker.rate)
    audio, env = synthesize_voice(words, speaker, n_s, sr, rng_voice)
    real_mouth = _mouth_openness(env, n_t)

    fake = plan.fake
    heard_mouth = real_mouth
    if fake is not None and fake.modality.audio:
        method = AUDIO_MANIPULATIONS.get(fake.audio_method)
        audio, env = method(audio, env, words, speaker, src, fake, np.random.default_rng([fake.seed, 5]))
        heard_mouth = _mouth_openness(env, n_t)
    edit = None
    fake_frames = np.zeros(n_t, bool)
    if fake is not None and fake.modality.visual:
        scene = _Scene(src, motion, sprite, light, boxes, heard_mouth)
        edit = VISUAL_MANIPULATIONS.get(fake.visual_method)(scene, fake, np.random.default_rng([fake.seed, 6]))
        fake_frames = segment_frames(fake.segments, src.fps, n_t)

    rng_grain = np.random.default_rng([src.seed, 6])
    grain = rng_grain.normal(0, 0.016, (6, h, w, 3)).astype(np.float32)  # camera noise bank
    grain_idx = rng_grain.integers(0, 6, n_t)
    out = np.empty((n_t, h, w, 3), np.uint8)  # (T, H, W, 3)
    anchor = _anchor(sprite)
    for t in range(n_t):
        # real frame: background, warped head, mouth following the real voice, light, camera grain
        ox, oy = pan[t]
        head = cv2.warpAffine(sprite.rgba, motion.affine(t, anchor), (w, h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # (H, W, 4)
        inv = 1 - head[..., 3]
        # cv2 arithmetic: ~10x faster than numpy broadcasting over (H, W, 1) at these sizes
        frame = cv2.add(cv2.multiply(bg[oy : oy + h, ox : ox + w], cv2.merge([inv, inv, inv])),
                        np.ascontiguousarray(head[..., :3]))  # (H, W, 3) float32
        mx, my, mw = _mouth_in_frame(sprite, motion, t, anchor)
        _draw_mouth(frame, mx, my, mw, real_mouth[t], -motion.angle[t])
        frame *= light[t, None, :, None]
        frame += grain[grain_idx[t]]
        if fake_frames[t]:
            edit(frame, t)
        np.maximum(frame, 0, out=frame)
        cv2.convertScaleAbs(frame, out[t], 255.0, 0.5)  # rounds and saturates to uint8
    return RenderedVideo(out, audio, boxes, src.fps, sr)


# --------------------------------------------------------------------------------------------
# Visual manipulations: a factory (scene, plan, rng) -> edit(frame, t) that changes one float
# frame in place, only inside the face box of frame t
# --------------------------------------------------------------------------------------------

FrameEdit = Callable[[np.ndarray, int], None]
VisualManipulation = Callable[[_Scene, FakePlan, np.random.Generator], FrameEdit]
VISUAL_MANIPULATIONS: Registry[VisualManipulation] = Registry("visual manipulation")


def _face_roi(box: np.ndarray, size: tuple[int, int]) -> tuple[int, int, int, int]:
    """Integer pixel bounds (x1, y1, x2, y2), x2/y2 exclusive, covering the float face box."""
    h, w = size
    return (max(0, int(math.floor(box[0]))), max(0, int(math.floor(box[1]))),
            min(w, int(math.ceil(box[2])) + 1), min(h, int(math.ceil(box[3])) + 1))


def _blend_mask(box: np.ndarray, roi: tuple[int, int, int, int], feather: float) -> np.ndarray:
    """Soft ellipse inscribed in the face box (zero outside it), (h, w, 1) float32 over the ROI.

    `feather` is the width of the soft edge as a fraction of the radius: small = visible seam.
    """
    x1, y1, x2, y2 = roi
    yy, xx = np.mgrid[y1:y2, x1:x2].astype(np.float32)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    ax, ay = 0.48 * (box[2] - box[0]), 0.48 * (box[3] - box[1])
    r = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    m = np.clip((1 - r) / max(feather, 1e-3), 0, 1)
    return (m * m * (3 - 2 * m))[..., None]


def _resample(img: np.ndarray, factor: float) -> np.ndarray:
    """Downscale by `factor` and back up: the blur of a generator working at a lower resolution."""
    import cv2

    if factor >= 0.999:
        return img
    h, w = img.shape[:2]
    small = cv2.resize(img, (max(4, round(w * factor)), max(4, round(h * factor))), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _colour_transfer(synth: np.ndarray, target: np.ndarray, mask: np.ndarray, match: float,
                     offset: np.ndarray) -> np.ndarray:
    """Move synth's per-channel mean/std (inside mask) a fraction `match` toward target's, plus offset."""
    wsum = float(mask.sum()) + 1e-6
    mu_s = (synth * mask).sum((0, 1)) / wsum
    mu_t = (target * mask).sum((0, 1)) / wsum
    sd_s = np.sqrt(((synth - mu_s) ** 2 * mask).sum((0, 1)) / wsum) + 1e-4
    sd_t = np.sqrt(((target - mu_t) ** 2 * mask).sum((0, 1)) / wsum) + 1e-4
    sd = sd_s + match * (sd_t - sd_s)
    mu = mu_s + match * (mu_t - mu_s)
    return ((synth - mu_s) * (sd / sd_s) + mu + offset).astype(np.float32)


def _artifact_params(strength: float, rng: np.random.Generator) -> dict:
    """Artifact sizes from strength: resampling factor, colour match, colour offset, flattened
    detail, seam width. At 0 the face is replaced cleanly; at 1 the artifacts are gross."""
    direction = rng.normal(0, 1, 3)
    direction /= np.linalg.norm(direction) + 1e-9
    # colour mismatch: a random hue cast plus a lift (generated faces tend to look washed out)
    offset = 0.1 * strength * direction + 0.06 * strength
    return {
        "factor": 1.0 - 0.8 * strength,  # the generator's resolution relative to the face's
        "match": 1.0 - 0.8 * strength,  # how far the colour statistics are matched to the target
        "offset": offset.astype(np.float32),
        "flicker": 0.03 * strength,  # per-frame colour jitter (temporal inconsistency)
        "contrast": 1.0 - 0.5 * strength,  # generated faces lack contrast and detail
        "feather": 0.35 - 0.3 * strength,  # soft edge of the blending mask, fraction of its radius
    }


def _finish(synth: np.ndarray, real: np.ndarray, mask: np.ndarray, p: dict, rng: np.random.Generator) -> np.ndarray:
    """Colour mismatch, lost resolution and contrast, then blending into `real`: the ROI to write back."""
    synth = _colour_transfer(synth, real, mask, p["match"], p["offset"] + rng.normal(0, p["flicker"], 3))
    synth = _resample(synth, p["factor"])
    if p["contrast"] < 1:
        mu = (synth * mask).sum((0, 1)) / (float(mask.sum()) + 1e-6)
        synth = mu + (synth - mu) * p["contrast"]
    return real * (1 - mask) + synth * mask


@VISUAL_MANIPULATIONS.register("face_swap")
def face_swap(scene: _Scene, fake: FakePlan, rng: np.random.Generator) -> FrameEdit:
    """Another identity's face, posed like the source, colour-matched imperfectly, blended in."""
    import cv2

    donor = _video_sprite(fake.donor, np.random.default_rng([fake.seed, 2]))
    src_face, d_face = scene.sprite.face, donor.face
    # the donor face is fitted to the source face box, slightly too large or small at high strength
    fit = (src_face[3] - src_face[1]) / (d_face[3] - d_face[1]) * (1 + 0.06 * fake.strength * rng.choice([-1, 1]))
    anchor = _anchor(donor)
    p = _artifact_params(fake.strength, rng)
    size = scene.src.size

    def edit(frame: np.ndarray, t: int) -> None:
        box = scene.boxes[t]
        x1, y1, x2, y2 = roi = _face_roi(box, size)
        if x2 - x1 < 4 or y2 - y1 < 4:
            return
        real = frame[y1:y2, x1:x2]
        m = scene.motion.affine(t, anchor, fit, offset=(x1, y1))
        warped = cv2.warpAffine(donor.rgba, m, (x2 - x1, y2 - y1), flags=cv2.INTER_LINEAR,
                                borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # (h, w, 4)
        synth = real * (1 - warped[..., 3:4]) + warped[..., :3]
        mx, my, mw = _mouth_in_frame(donor, scene.motion, t, anchor, fit)
        _draw_mouth(synth, mx, my, mw, scene.mouth[t], -scene.motion.angle[t], origin=(x1, y1))
        synth *= scene.light[t, None, x1:x2, None]
        frame[y1:y2, x1:x2] = _finish(synth, real, _blend_mask(box, roi, p["feather"]), p, rng)

    return edit


@VISUAL_MANIPULATIONS.register("face_reenact")
def face_reenact(scene: _Scene, fake: FakePlan, rng: np.random.Generator) -> FrameEdit:
    """The same face re-rendered: lower face warped (a jaw motion), smoothed, recoloured, blended."""
    import cv2

    p = _artifact_params(fake.strength, rng)
    size = scene.src.size
    phase = rng.uniform(0, 2 * np.pi)

    def edit(frame: np.ndarray, t: int) -> None:
        box = scene.boxes[t]
        x1, y1, x2, y2 = roi = _face_roi(box, size)
        if x2 - x1 < 4 or y2 - y1 < 4:
            return
        real = frame[y1:y2, x1:x2]
        rh, rw = y2 - y1, x2 - x1
        yy, xx = np.mgrid[0:rh, 0:rw].astype(np.float32)
        bump = np.exp(-(((yy - 0.72 * rh) / (0.22 * rh)) ** 2 + ((xx - 0.5 * rw) / (0.3 * rw)) ** 2))
        # the jaw follows the voice heard (the fake one in "both") plus a wobble the source did not make
        amp = rh * (0.03 * scene.mouth[t] + (0.02 + 0.04 * fake.strength)
                    * math.sin(2 * math.pi * 3.0 * t / scene.src.fps + phase))
        synth = cv2.remap(real, xx, yy - amp * bump, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        synth = cv2.GaussianBlur(synth, (0, 0), 0.3 + 0.7 * fake.strength)
        frame[y1:y2, x1:x2] = _finish(synth, real, _blend_mask(box, roi, p["feather"]), p, rng)

    return edit


# --------------------------------------------------------------------------------------------
# Audio manipulations: each returns (audio, voicing envelope), changed only inside the segments
# --------------------------------------------------------------------------------------------

AudioManipulation = Callable[[np.ndarray, np.ndarray, list, Speaker, SourcePlan, FakePlan, np.random.Generator],
                             tuple[np.ndarray, np.ndarray]]
AUDIO_MANIPULATIONS: Registry[AudioManipulation] = Registry("audio manipulation")


def _splice(real: np.ndarray, real_env: np.ndarray, fake: np.ndarray, fake_env: np.ndarray, src: SourcePlan,
            plan: FakePlan, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paste `fake` into `real` inside each segment: loudness step, crossfades inside the segment."""
    out, env = real.copy(), real_env.copy()
    sr = src.sample_rate
    for seg in plan.segments:
        a, b = int(round(seg.start * sr)), min(len(real), int(round(seg.end * sr)))
        if b <= a:
            continue
        rms_r = float(np.sqrt(np.mean(real[a:b] ** 2))) + 1e-6
        rms_f = float(np.sqrt(np.mean(fake[a:b] ** 2))) + 1e-6
        gain = rms_r / rms_f * 10 ** (plan.strength * rng.choice([-1, 1]) * rng.uniform(2, 4) / 20)
        piece = fake[a:b] * gain
        cf = min(int(round(0.015 * sr * (1 - plan.strength))), (b - a) // 2)
        if cf > 0:
            ramp = np.linspace(0, 1, cf, dtype=np.float32)
            piece[:cf] = real[a : a + cf] * (1 - ramp) + piece[:cf] * ramp
            piece[len(piece) - cf :] = piece[len(piece) - cf :] * (1 - ramp) + real[b - cf : b] * ramp
        out[a:b] = piece
        env[a:b] = fake_env[a:b]
    return np.clip(out, -1, 1).astype(np.float32), env


def _vocoder_band(strength: float) -> float:
    return 7600.0 - 4200.0 * strength  # Hz


@AUDIO_MANIPULATIONS.register("voice_swap")
def voice_swap(audio: np.ndarray, env: np.ndarray, words: list, speaker: Speaker, src: SourcePlan,
               plan: FakePlan, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Another speaker saying other words (TTS-like: flat, band-limited, no room noise) spliced in."""
    other = _speaker(rng)
    while abs(12 * math.log2(other.f0 / speaker.f0)) < 3:  # a clearly different voice
        other = _speaker(rng)
    new_words = _utterance(rng, src.duration, other.rate)
    fake, fake_env = synthesize_voice(new_words, other, len(audio), src.sample_rate, rng,
                                      flat=0.7 * plan.strength, lowpass=_vocoder_band(plan.strength),
                                      room_db=6 + 30 * plan.strength)
    return _splice(audio, env, fake, fake_env, src, plan, rng)


@AUDIO_MANIPULATIONS.register("pitch_shift")
def pitch_shift(audio: np.ndarray, env: np.ndarray, words: list, speaker: Speaker, src: SourcePlan,
                plan: FakePlan, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The same words re-synthesized at another pitch and vocal-tract length (voice conversion)."""
    semis = rng.choice([-1, 1]) * (2 + 6 * plan.strength)
    shifted = dataclasses.replace(speaker, f0=speaker.f0 * 2 ** (semis / 12),
                                  formant=speaker.formant * (1 + np.sign(semis) * 0.08 * plan.strength))
    fake, fake_env = synthesize_voice(words, shifted, len(audio), src.sample_rate, rng,
                                      flat=0.5 * plan.strength, lowpass=_vocoder_band(plan.strength),
                                      room_db=6 + 30 * plan.strength)
    return _splice(audio, env, fake, fake_env, src, plan, rng)


# --------------------------------------------------------------------------------------------
# Writing a dataset
# --------------------------------------------------------------------------------------------

def _record(plan: VideoPlan) -> dict:
    """The AV-Deepfake1M metadata entry of a video."""
    return {
        "file": plan.file,
        "original": plan.original,
        "split": plan.split,
        "modify_type": _MODIFY_TYPE[plan.modality],
        "audio_model": plan.audio_model,
        "fake_segments": [s.to_list() for s in plan.segments],
        "visual_fake_segments": [s.to_list() for s in plan.visual_segments],
        "audio_fake_segments": [s.to_list() for s in plan.audio_segments],
        "video_frames": plan.source.n_frames,
        "audio_frames": plan.source.n_samples,
    }


def _fingerprint(config: SynthConfig) -> str:
    d = to_dict(config)
    d.pop("workers")
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def _write_one(job: tuple[VideoPlan, str, int]) -> tuple[int, float]:
    """Render and encode one video (runs in a worker process). Returns (index, seconds)."""
    from fakelens.io.encode import write_video

    plan, root, crf = job
    start = time.perf_counter()
    path = Path(root) / plan.file
    try:
        video = render_video(plan)
        write_video(path, video.frames, video.fps, audio=video.audio, sample_rate=video.sample_rate,
                    codec="h264", crf=crf)
    except FakelensError:
        raise
    except Exception as e:  # name the file; the traceback stays attached as the cause
        raise FakelensError(f"{path}: synthesizing failed: {type(e).__name__}: {e}") from e
    return plan.index, time.perf_counter() - start


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)


def _output_files(plans: Sequence[VideoPlan], layout: str) -> list[str]:
    files = [p.file for p in plans]
    splits = sorted({p.split for p in plans}, key=SPLITS.index)
    files += [f"{s}_face_boxes.json" for s in splits]
    files += [f"{s}_metadata.json" for s in splits] if layout == "avdeepfake1m" else [_CSV_LABELS[s] for s in splits]
    return files + [MANIFEST]


@dataclass
class GenerateResult:
    """What `generate` did: counts per split and modality, timing."""

    root: Path
    plans: list[VideoPlan]
    written: int
    skipped: int
    seconds: float
    per_video_seconds: list[float] = field(default_factory=list)


def generate(out_dir: str | Path, config: SynthConfig, progress: bool = True, overwrite: bool = False) -> Path:
    """Write the dataset described by `config` into `out_dir` and return the directory.

    With `config.workers` != 1 the videos are rendered in worker processes: forked when this
    process runs a single thread, spawned otherwise (then a calling script needs the usual
    `if __name__ == "__main__":` guard, as always with multiprocessing).
    """
    return generate_dataset(out_dir, config, progress=progress, overwrite=overwrite).root


def generate_dataset(out_dir: str | Path, config: SynthConfig, progress: bool = True,
                     overwrite: bool = False) -> GenerateResult:
    """`generate`, returning what was done (for the CLI summary).

    Videos are rendered in parallel (`config.workers` processes); the metadata, face boxes,
    label files and finally the manifest are written after every video exists, each atomically.
    """
    started = time.perf_counter()
    config.validate()
    root = Path(out_dir)
    plans = plan_videos(config)
    fp = _fingerprint(config)
    manifest, pending = root / MANIFEST, root / PENDING
    previous: list[str] = []
    if manifest.exists():
        if not overwrite:
            raise FakelensError(f"{root}: already holds a complete synthetic dataset ({MANIFEST}); "
                                "use --overwrite (overwrite=True) to regenerate it")
        previous = _read_json(manifest).get("files", [])
    elif pending.exists():
        info = _read_json(pending)
        previous = info.get("files", [])
        if info.get("fingerprint") != fp and not overwrite:
            raise FakelensError(f"{root}: holds an unfinished synthetic dataset made with another config "
                                f"({PENDING}); use --overwrite to replace it")
    elif root.exists() and any(root.iterdir()) and not overwrite:
        raise FakelensError(f"{root}: directory is not empty and holds no synthetic dataset; "
                            "choose an empty directory or use --overwrite")
    root.mkdir(parents=True, exist_ok=True)
    files = _output_files(plans, config.layout)
    if manifest.exists():
        manifest.unlink()  # the dataset is incomplete from now until the new manifest is written
    atomic_write_text(pending, json.dumps({"fingerprint": fp, "files": sorted(set(files) | set(previous))}))
    if overwrite:
        for stale in set(previous) - set(files):
            (root / stale).unlink(missing_ok=True)
    todo = [p for p in plans if overwrite or not (root / p.file).exists()]
    times = _run_jobs([(p, str(root), config.crf) for p in todo], config.workers, progress, len(plans))
    _write_metadata(root, plans, config)
    atomic_write_text(manifest, json.dumps(_manifest(plans, config, files), indent=1))
    pending.unlink(missing_ok=True)
    return GenerateResult(root, plans, len(todo), len(plans) - len(todo), time.perf_counter() - started, times)


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise FakelensError(f"{path}: cannot read: {e}") from None
    if not isinstance(data, dict):
        raise FakelensError(f"{path}: expected a JSON object")
    return data


def _warm_assets() -> None:
    """Load the scikit-image photos once (forked workers then share them instead of reloading)."""
    _astronaut()
    _lfw()
    for name in _TEXTURES:
        _texture(name)


def _pool_context():
    """fork when this process runs a single thread (fast start, shared assets, no re-import of
    __main__); spawn otherwise, since forking a multi-threaded process (torch, OpenMP) can deadlock."""
    import multiprocessing
    import threading

    # tqdm's monitor is a sleeping daemon thread that forked children never use: it does not count
    others = [t for t in threading.enumerate() if t is not threading.main_thread() and t.name != "tqdm_monitor"]
    if "fork" in multiprocessing.get_all_start_methods() and not others:
        return multiprocessing.get_context("fork")
    return multiprocessing.get_context("spawn")


def _run_jobs(jobs: list, workers: int, progress: bool, total: int) -> list[float]:
    from tqdm.auto import tqdm

    workers = workers or (os.cpu_count() or 1)
    workers = max(1, min(workers, len(jobs)))
    times: list[float] = []
    if workers == 1:
        _worker_init()
        with tqdm(total=total, initial=total - len(jobs), disable=not progress, unit="video",
                  desc="synthesizing") as bar:
            for job in jobs:
                times.append(_write_one(job)[1])
                bar.update(1)
        return times
    from concurrent.futures import ProcessPoolExecutor, as_completed

    ctx = _pool_context()  # decided before tqdm starts its monitor thread
    if ctx.get_start_method() == "fork":
        _warm_assets()
    with ProcessPoolExecutor(workers, mp_context=ctx, initializer=_worker_init) as pool:
        futures = [pool.submit(_write_one, job) for job in jobs]
        with tqdm(total=total, initial=total - len(jobs), disable=not progress, unit="video",
                  desc="synthesizing") as bar:
            try:
                for fut in as_completed(futures):
                    times.append(fut.result()[1])
                    bar.update(1)
            except BaseException:
                for f in futures:
                    f.cancel()
                raise
    return times


def _write_metadata(root: Path, plans: Sequence[VideoPlan], config: SynthConfig) -> None:
    for split in SPLITS:
        items = [p for p in plans if p.split == split]
        if not items:
            continue
        boxes = {p.file: {"fps": p.source.fps, "boxes": np.round(face_boxes(p.source), 1).tolist()} for p in items}
        atomic_write_text(root / f"{split}_face_boxes.json", json.dumps(boxes))
        if config.layout == "avdeepfake1m":
            atomic_write_text(root / f"{split}_metadata.json", json.dumps([_record(p) for p in items], indent=1))
        else:
            rows = ["video_name,target"] + [f"{Path(p.file).name},{int(p.fake is not None)}" for p in items]
            atomic_write_text(root / _CSV_LABELS[split], "\n".join(rows) + "\n")


def _manifest(plans: Sequence[VideoPlan], config: SynthConfig, files: list[str]) -> dict:
    return {
        "generator": "fakelens.data.synthetic",
        "version": _VERSION,
        "config": to_dict(config),
        "files": files,
        "videos": [{
            "file": p.file, "split": p.split, "original": p.original, "modify_type": _MODIFY_TYPE[p.modality],
            "identity": "astronaut" if p.source.identity == 0 else f"lfw_{p.source.identity - 1}",
            "donor": None if not (p.fake and p.fake.modality.visual and p.fake.visual_method == "face_swap")
            else ("astronaut" if p.fake.donor == 0 else f"lfw_{p.fake.donor - 1}"),
            "visual_method": p.fake.visual_method if p.fake else None,
            "audio_method": p.fake.audio_method if p.fake else None,
            "segments": [s.to_list() for s in p.segments],
        } for p in plans],
    }


def summarize(plans: Sequence[VideoPlan]) -> list[dict]:
    """Counts per split: videos, reals, fakes per modality, seconds of video and of fake segments."""
    rows = []
    for split in SPLITS:
        items = [p for p in plans if p.split == split]
        if not items:
            continue
        count = {m: sum(p.modality is m for p in items) for m in Modality}
        rows.append({"split": split, "videos": len(items), "real": count[Modality.NONE],
                     "visual": count[Modality.VISUAL], "audio": count[Modality.AUDIO], "both": count[Modality.BOTH],
                     "seconds": round(sum(p.source.duration for p in items), 1),
                     "fake_seconds": round(sum(s.duration for p in items for s in p.segments), 1)})
    return rows


