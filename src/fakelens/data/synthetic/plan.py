"""Plans: everything about every video decided up front, in the parent process, from the seed.

A plan is small and picklable; rendering a plan (in any process) gives the same frames and audio.

Time: frame k of a constant-rate video is shown during [k / fps, (k + 1) / fps). Segment edges are
stored as the shortest 6-decimal time t with int(t * fps) == k, so that the label rule of the
readers and of the challenges (frames int(start * fps) to int(end * fps), exclusive) gives back
exactly the frames the renderer manipulated; the renderer itself uses that rule
(`fakelens.types.frame_labels`). On a variable frame rate the edges are frame times and a frame is
fake when start <= its time < end.

Identities (the people shown, and the donors of swapped faces) are disjoint across splits, so a
model cannot score a test video by recognising a face seen in training.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from fakelens.data.synthetic.config import SPLITS, SynthConfig
from fakelens.data.synthetic.layouts import Slot, _video_paths
from fakelens.data.synthetic.sprites import _LFW_IDS
from fakelens.data.synthetic.voice import Speaker, Syllable, _speaker, _utterance, within, word_spans
from fakelens.types import Modality, Segment, frame_labels

ASTRONAUT = 0  # identity 0 is astronaut(); k in 1..100 is lfw_subset()[k - 1]


@dataclass(frozen=True)
class PersonPlan:
    """One person of a source: who, where in the frame, and when in the picture.

    A person is fully in the picture during [start, end); one who `leaves` walks out of the frame
    from `end` on (taking ~0.8 s) and stays out.
    """

    identity: int
    seed: int  # their motion, look and voice derive from it
    start: float
    end: float
    place: str = "centre"  # "centre" | "left" | "right"
    leaves: bool = False


@dataclass(frozen=True)
class SourcePlan:
    """One real recording: its people, timing, picture and sound. All derive from the seeds."""

    seed: int
    persons: tuple[PersonPlan, ...]
    n_frames: int
    fps: float  # nominal rate (the average one for a variable frame rate)
    size: tuple[int, int]  # (H, W) as displayed
    sample_rate: int
    scene: str = "single"
    frame_times: tuple[float, ...] = ()  # variable frame rate: each frame's time (empty: k / fps)
    face_height: tuple[float, float] = (0.36, 0.46)
    brightness: tuple[float, float] = (0.88, 1.08)
    grain: float = 0.016
    audio: bool = True
    rotation: int = 0  # clockwise degrees a player turns the stored frames

    @property
    def identity(self) -> int:
        return self.persons[0].identity

    @property
    def duration(self) -> float:
        if self.frame_times:  # the last frame lasts as long as the one before it
            return self.frame_times[-1] + (self.frame_times[-1] - self.frame_times[-2])
        return self.n_frames / self.fps

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.sample_rate))

    def times(self) -> np.ndarray:
        """(T,) float64 seconds: when each frame is shown."""
        if self.frame_times:
            return np.asarray(self.frame_times, np.float64)
        return np.arange(self.n_frames) / self.fps

    def sample_edges(self) -> np.ndarray:
        """(T + 1,) int: frame k's audio is samples [edges[k], edges[k + 1])."""
        edges = np.round(self.times() * self.sample_rate).astype(np.int64)
        return np.append(edges, self.n_samples)

    def edge(self, k: int) -> float:
        """The time (s) at which frame k starts (k = n_frames: the end), as stored in the metadata."""
        if self.frame_times:
            return self.duration if k >= self.n_frames else self.frame_times[k]
        t = round(k / self.fps, 6)
        while int(t * self.fps) < k:  # 1.16 * 25 = 28.999999999999996: move to 1.160001
            t = round(t + 1e-6, 6)
        return t

    def frame_at(self, t: float) -> int:
        """The first frame that starts at or after time t (n_frames past the end)."""
        return int(np.searchsorted(self.times(), t - 1e-9))

    def frame_of(self, t: float) -> int:
        """The frame on screen at time t (clipped to the video)."""
        return int(np.clip(np.searchsorted(self.times(), t, side="right") - 1, 0, self.n_frames - 1))

    def fake_frames(self, segments: Sequence[Segment]) -> np.ndarray:
        """(T,) bool: the frames inside `segments`, by the label rule (see the module docstring)."""
        if self.frame_times:
            t = self.times()
            mask = np.zeros(self.n_frames, bool)
            for seg in segments:
                mask |= (t >= seg.start) & (t < seg.end)
            return mask
        return segment_frames(segments, self.fps, self.n_frames)


@dataclass(frozen=True)
class FakePlan:
    """How a fake re-renders its source: which modality, where, how, how strongly, and whom."""

    modality: Modality
    segments: tuple[Segment, ...]  # seconds, on the frame grid, sorted, disjoint
    visual_method: str | None
    audio_method: str | None
    donor: int  # identity whose face is swapped in (face_swap)
    strength: float
    seed: int
    target: int = 0  # the person manipulated (index in source.persons): face and voice


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
    """(n_frames,) bool: the frames the label rule marks fake, int(start * fps) to int(end * fps)."""
    return frame_labels(segments, fps, n_frames).astype(bool)


def person_voice(src: SourcePlan, k: int) -> tuple[Speaker, list[Syllable], np.random.Generator]:
    """Person k's speaker, the words they say (in their turns: one person speaks at a time), and
    the generator the synthesizer continues with (so that plan and rendering agree)."""
    person = src.persons[k]
    rng = np.random.default_rng([person.seed, 5])
    speaker = _speaker(rng)
    words = _utterance(rng, src.duration, speaker.rate)
    if src.scene == "two_people":
        words = within(words, _turns(src)[k])
    elif src.scene == "cut":
        words = within(words, [(person.start, person.end if k < len(src.persons) - 1 else np.inf)])
    return speaker, words, rng


def _turns(src: SourcePlan) -> list[list[tuple[float, float]]]:
    """Two people take turns of 1.5-3 s: [[(start, end), ...] of person 0, ... of person 1]; the
    last turn of each runs to the end."""
    rng = np.random.default_rng([src.seed, 7])
    who, t = int(rng.integers(2)), 0.0
    out: list[list[tuple[float, float]]] = [[], []]
    while t < src.duration:
        d = rng.uniform(1.5, 3.0)
        out[who].append((t, t + d if t + d < src.duration else np.inf))
        who, t = 1 - who, t + d
    return out


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


def identity_pools(config: SynthConfig) -> dict[str, tuple[int, ...]]:
    """The identities each split may show or swap in, disjoint across splits.

    The lfw faces are shared out in proportion to the splits' sizes (at least 3 each); the
    astronaut belongs to the first split with videos (train, unless it is empty).
    """
    per_split = dict(zip(SPLITS, _apportion(config.n_videos, config.split_fractions)))
    used = [s for s in SPLITS if per_split[s] > 0]
    lfw = list(np.random.default_rng([config.seed, 0x1D]).permutation(_LFW_IDS))
    counts = _apportion(len(lfw) - 3 * len(used), [per_split[s] for s in used])
    pools, pos = {}, 0
    for split, extra in zip(used, counts):
        pools[split] = tuple(int(i) for i in lfw[pos : pos + 3 + extra])
        pos += 3 + extra
    pools[used[0]] = (ASTRONAUT, *pools[used[0]])
    return pools


def plan_videos(config: SynthConfig) -> list[VideoPlan]:
    """Decide every video from `config.seed`: split, label, source, original, segments, methods.

    Reals and fakes are interleaved within each split and numbered globally (000001...), so a
    file name reveals nothing; each fake derives from a real of the same split.
    """
    config.validate()
    rng = np.random.default_rng([config.seed, 0x5E1])
    per_split = _apportion(config.n_videos, config.split_fractions)
    pools = identity_pools(config)
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
                sources[slot] = _plan_source(config, slot, pools[split], rng)
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
            target = int(rng.integers(len(src.persons))) if len(src.persons) > 1 else 0
            fake = FakePlan(
                modality=modality,
                segments=_plan_segments(config, src, target, modality, rng),
                visual_method=str(rng.choice(config.visual_methods)) if modality.visual else None,
                audio_method=str(rng.choice(config.audio_methods)) if modality.audio else None,
                donor=_plan_donor(src, pools[split], rng),
                strength=config.strength,
                seed=_seed(config.seed, slot, 1),
                target=target,
            )
            drafts.append((Slot(slot, split, orig_slot), src, fake))
    # the layout places the files (a DFDC part folder holds a real and its fakes)
    paths = _video_paths(config.layout, [d[0] for d in drafts], config.seed)
    return [VideoPlan(slot.index, paths[slot.index], slot.split, src,
                      paths[slot.source_index] if fake is not None else None, fake)
            for slot, src, fake in drafts]


def _plan_source(config: SynthConfig, slot: int, pool: tuple[int, ...], rng: np.random.Generator) -> SourcePlan:
    lfw = [i for i in pool if i != ASTRONAUT]
    identity = ASTRONAUT if ASTRONAUT in pool and rng.random() < config.main_identity_fraction \
        else int(rng.choice(lfw))
    seconds = rng.uniform(*config.duration)
    scene = config.scenes[int(rng.integers(len(config.scenes)))] if len(config.scenes) > 1 else config.scenes[0]
    seed = _seed(config.seed, slot, 0)
    frame_times: tuple[float, ...] = ()
    if config.variable_fps:
        frame_times = _vfr_times(seconds, config.variable_fps)
        n_frames, fps = len(frame_times), len(frame_times) / seconds
    else:
        n_frames, fps = max(2, int(round(seconds * config.fps))), config.fps
    draft = SourcePlan(seed, (), n_frames, fps, tuple(config.size), config.sample_rate, scene, frame_times,
                       config.face_height, config.brightness, config.grain, config.audio, config.rotation)
    return dataclasses.replace(draft, persons=_plan_persons(draft, identity, lfw, rng))


def _vfr_times(seconds: float, rates: Sequence[float]) -> tuple[float, ...]:
    """Equal parts of `seconds` recorded at each of `rates` in turn (e.g. a phone dropping to 10 fps
    in low light): each frame's time, rounded to microseconds."""
    piece = seconds / len(rates)
    out: list[float] = []
    for i, rate in enumerate(rates):
        start = i * piece
        n = max(1, int(round(piece * rate)))
        out.extend(round(start + j / rate, 6) for j in range(n))
    return tuple(out)


def _plan_persons(src: SourcePlan, identity: int, lfw: list[int], rng: np.random.Generator) -> tuple[PersonPlan, ...]:
    """Who is in the picture, where and when; the second person's identity differs from the first's."""
    duration = src.duration
    first = PersonPlan(identity, src.seed, 0.0, duration)
    if src.scene == "single":
        return (first,)

    def other() -> int:
        choices = [i for i in lfw if i != identity]
        return int(rng.choice(choices))

    second_seed = _seed(src.seed, 2)
    if src.scene == "two_people":
        left = bool(rng.random() < 0.5)
        return (PersonPlan(identity, src.seed, 0.0, duration, "left" if left else "right"),
                PersonPlan(other(), second_seed, 0.0, duration, "right" if left else "left"))
    # the moment (on the frame grid) at which the person starts walking out / the shot changes
    k = min(max(1, src.frame_at(rng.uniform(0.35, 0.65) * duration)), src.n_frames - 1)
    moment = src.edge(k)
    if src.scene == "leave":
        return (PersonPlan(identity, src.seed, 0.0, moment, leaves=True),)
    return (PersonPlan(identity, src.seed, 0.0, moment), PersonPlan(other(), second_seed, moment, duration))


def _plan_donor(src: SourcePlan, pool: tuple[int, ...], rng: np.random.Generator) -> int:
    """Whose face a face swap pastes in: another identity of the same split, not in the scene."""
    shown = {p.identity for p in src.persons}
    if ASTRONAUT in pool and ASTRONAUT not in shown and rng.random() < 0.4:
        return ASTRONAUT
    choices = [i for i in pool if i != ASTRONAUT and i not in shown]
    return int(rng.choice(choices))


def _plan_segments(config: SynthConfig, src: SourcePlan, target: int, modality: Modality,
                   rng: np.random.Generator) -> tuple[Segment, ...]:
    """Disjoint segments on the frame grid where the target person is in the picture.

    Voice fakes (audio and both) replace whole words, as in AV-Deepfake1M: a segment spans one or
    more consecutive words of the target, from the frame where the first starts to the frame where
    the last ends. Face-only fakes are placed freely. `fake_span="whole"` fakes the target's whole
    time in the picture.
    """
    person = src.persons[target]
    k0, k1 = src.frame_at(person.start), min(src.n_frames, src.frame_at(person.end))
    if config.fake_span == "whole":
        return (Segment(src.edge(k0), src.edge(k1)),)
    if modality.audio:
        _, words, _ = person_voice(src, target)
        # the frames during which each word is heard
        spans = [(src.frame_of(a), src.frame_of(b - 1e-9) + 1) for a, b in word_spans(words).values()
                 if b <= src.duration]  # a word cut off by the end of the video is not a word
        spans = [(a, b) for a, b in spans if k0 <= a and b <= k1]
        if spans:
            return _word_segments(config, src, spans, rng)
    return _grid_segments(config, src, k0, k1, rng)


def _count(config: SynthConfig, rng: np.random.Generator) -> int:
    return int(rng.integers(config.segments_per_fake[0], config.segments_per_fake[1] + 1))


def _gap(src: SourcePlan) -> int:
    return max(1, int(round(0.2 * src.fps)))  # frames between two segments


def _word_segments(config: SynthConfig, src: SourcePlan, words: list[tuple[int, int]],
                   rng: np.random.Generator) -> tuple[Segment, ...]:
    """Up to n segments, each a run of consecutive words (frame spans) about segment_duration long."""
    n, gap, chosen = _count(config, rng), _gap(src), []
    lo_s, hi_s = config.segment_duration
    for _ in range(6 * n):
        if len(chosen) == n:
            break
        want = rng.uniform(lo_s, hi_s) * src.fps
        i = j = int(rng.integers(len(words)))
        # add words until the segment is about `want` long: past the maximum only to reach the minimum
        while j + 1 < len(words) and words[j][1] - words[i][0] < want and (
                words[j + 1][1] - words[i][0] <= hi_s * src.fps or words[j][1] - words[i][0] < lo_s * src.fps):
            j += 1
        a, b = words[i][0], words[j][1]
        if all(b + gap <= c or d + gap <= a for c, d in chosen):
            chosen.append((a, b))
    return tuple(Segment(src.edge(a), src.edge(b)) for a, b in sorted(chosen))


def _grid_segments(config: SynthConfig, src: SourcePlan, k0: int, k1: int,
                   rng: np.random.Generator) -> tuple[Segment, ...]:
    """Disjoint segments of frames in [k0, k1), at least `gap` frames apart."""
    fps, n_frames = src.fps, k1 - k0
    gap = _gap(src)
    n = _count(config, rng)
    lengths = [int(round(rng.uniform(*config.segment_duration) * fps)) for _ in range(n)]
    lengths = [min(max(1, x), max(1, n_frames - 2)) for x in lengths]
    while len(lengths) > 1 and sum(lengths) + gap * (len(lengths) - 1) > n_frames - 2:
        lengths.pop()
    slack = n_frames - sum(lengths) - gap * (len(lengths) - 1)
    cuts = np.sort(rng.integers(0, slack + 1, size=len(lengths)))
    segs = []
    pos = k0
    prev_cut = 0
    for length, cut in zip(lengths, cuts):
        pos += int(cut - prev_cut)
        prev_cut = cut
        segs.append(Segment(src.edge(pos), src.edge(pos + length)))
        pos += length + gap
    return tuple(segs)
