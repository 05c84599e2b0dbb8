"""Plans: everything about every video decided up front, in the parent process, from the seed.

A plan is small and picklable; rendering a plan (in any process) gives the same frames and audio.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fakelens.data.synthetic.config import SPLITS, SynthConfig
from fakelens.data.synthetic.layouts import Slot, _video_paths
from fakelens.data.synthetic.sprites import _LFW_IDS
from fakelens.types import Modality, Segment


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

def plan_videos(config: SynthConfig) -> list[VideoPlan]:
    """Decide every video from `config.seed`: split, label, source, original, segments, methods.

    Reals and fakes are interleaved within each split and numbered globally (000001...), so a
    file name reveals nothing; each fake derives from a real of the same split.
    """
    config.validate()
    rng = np.random.default_rng([config.seed, 0x5E1])
    per_split = _apportion(config.n_videos, config.split_fractions)
    index = 0
    mix = np.asarray(config.modality_mix) / sum(config.modality_mix)
    modalities = (Modality.VISUAL, Modality.AUDIO, Modality.BOTH)
    drafts: list[tuple[Slot, SourcePlan, FakePlan | None]] = []
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
            if not is_fake:
                drafts.append((Slot(slot, split, slot), sources[slot], None))
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
            drafts.append((Slot(slot, split, orig_slot), src, fake))
    # the layout places the files (a DFDC part folder holds a real and its fakes)
    paths = _video_paths(config.layout, [d[0] for d in drafts], config.seed)
    return [VideoPlan(slot.index, paths[slot.index], slot.split, src,
                      paths[slot.source_index] if fake is not None else None, fake)
            for slot, src, fake in drafts]


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
