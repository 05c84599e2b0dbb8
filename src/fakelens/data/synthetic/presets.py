"""Named configs (`fakelens data synth --preset NAME`): a registry of SynthConfig factories."""

from __future__ import annotations

import dataclasses
from typing import Callable

from fakelens.data.synthetic.config import SynthConfig
from fakelens.registry import Registry


PRESETS: Registry[Callable[[], SynthConfig]] = Registry("synthetic preset")


@PRESETS.register("demo")
def _preset_demo() -> SynthConfig:
    """160 videos of 3.2-4 s at 224x224, each fake manipulated in one segment of 0.6-1 s (about a
    quarter of the video: 18-26% of the frames for half of the fakes), strong artifacts: a small
    model trained from scratch learns them on a CPU, yet a clip taken from the middle of a fake is
    real in a third of the fakes (generation: ~30 s on 2 cores)."""
    return SynthConfig(segments_per_fake=(1, 1), segment_duration=(0.6, 1.0))


@PRESETS.register("tiny")
def _preset_tiny() -> SynthConfig:
    """8 short 96x96 videos for tests: every split holds a real and a fake. Seed 6: its 2 training
    fakes are a face swap (visual) and a pitch shift (audio), and its val and test fakes are both
    (a face swap with a pitch shift), so a model trained on 4 videos has seen what it is tested on
    (the detect, web and demo tests rely on it; tests/test_synthetic.py pins it)."""
    return SynthConfig(n_videos=8, seed=6, duration=(1.2, 1.6), size=(96, 96), segments_per_fake=(1, 1),
                       segment_duration=(0.4, 0.6), split_fractions=(0.5, 0.25, 0.25), workers=1,
                       main_identity_fraction=0.5, modality_mix=(1.0, 1.0, 1.0))


@PRESETS.register("bench")
def _preset_bench() -> SynthConfig:
    """A larger, harder set for benchmarks: 400 videos of 4-8 s, weaker artifacts."""
    return SynthConfig(n_videos=400, duration=(4.0, 8.0), segments_per_fake=(1, 3),
                       segment_duration=(0.4, 1.6), strength=0.5)


@PRESETS.register("avdf1m")
@PRESETS.register("localization")
def _preset_avdf1m() -> SynthConfig:
    """Shaped like AV-Deepfake1M, for temporal localization: 8-20 s videos, fakes with 1-3 segments
    of 0.2-1.5 s (a few words re-voiced, a few frames of face, or both at once); small frames so
    that a CPU demo generates, preprocesses and trains on it in minutes."""
    return SynthConfig(n_videos=100, duration=(8.0, 20.0), size=(96, 96), segments_per_fake=(1, 3),
                       segment_duration=(0.2, 1.5), modality_mix=(1.0, 1.0, 1.0), strength=0.8)


# ------------------------------------------------------------------ real-looking hard cases
# Small sets (DFDC layout: the dataset these situations come from) for face-tracking, scoring
# and bad-input tests. Each one changes one thing; `preset(name, **overrides)` combines them.

_HARD = dict(n_videos=6, duration=(3.0, 4.0), size=(288, 512), fps=29.97, layout="dfdc",
             split_fractions=(1.0, 1.0, 1.0), strength=0.7)


@PRESETS.register("two_people")
def _preset_two_people() -> SynthConfig:
    """Two people side by side; in a fake only ONE face (and, in "both" fakes, that person's voice)
    is manipulated, for the whole video. Which one: `faces[k].fake` in the face-box sidecar."""
    return SynthConfig(**_HARD, scenes=("two_people",), modality_mix=(0.7, 0.0, 0.3), fake_span="whole")


@PRESETS.register("leave_frame")
def _preset_leave_frame() -> SynthConfig:
    """The person walks out of the frame mid-video (35-65% in) and stays out: the last frames show
    no face (null boxes in the sidecar). Fakes are manipulated while the face is in the picture."""
    return SynthConfig(**_HARD, scenes=("leave",), modality_mix=(0.7, 0.0, 0.3), fake_span="whole")


@PRESETS.register("shot_cut")
def _preset_shot_cut() -> SynthConfig:
    """A shot cut from one person to another at the same place, each speaking in their own shot;
    a fake manipulates one of the two (face, or face and voice) during their shot."""
    return SynthConfig(**_HARD, scenes=("cut",), modality_mix=(0.7, 0.0, 0.3), fake_span="whole")


@PRESETS.register("scenes")
def _preset_scenes() -> SynthConfig:
    """The three face-stage situations in one small DFDC set (216x384, 2-2.4 s, 29.97 fps, 6 videos,
    2 per split): two people of whom one face is faked (whole video), a person who walks out of the
    frame, a cut from one person to another at the same place. At seed 0 each situation is drawn
    and the fake of the two-person original swaps one face (tests/test_scenes.py relies on it)."""
    return SynthConfig(**{**_HARD, "size": (216, 384), "duration": (2.0, 2.4)},
                       scenes=("two_people", "leave", "cut"), modality_mix=(0.7, 0.0, 0.3), fake_span="whole")


@PRESETS.register("small_dark")
def _preset_small_dark() -> SynthConfig:
    """1920x1080 frames with a 60-100 px face under dim, noisy light (a room filmed from afar)."""
    return SynthConfig(**{**_HARD, "duration": (2.0, 2.0), "size": (1080, 1920)}, face_height=(0.055, 0.09),
                       brightness=(0.25, 0.4), grain=0.03, modality_mix=(1.0, 0.0, 0.0))


@PRESETS.register("no_audio")
def _preset_no_audio() -> SynthConfig:
    """Videos without an audio track (most field footage); visual fakes only."""
    return SynthConfig(**{**_HARD, "size": (144, 256)}, audio=False, modality_mix=(1.0, 0.0, 0.0))


@PRESETS.register("portrait")
def _preset_portrait() -> SynthConfig:
    """A phone's 1080x1920 portrait video, stored as 1920x1080 landscape with a 90-degree display
    matrix (players and fakelens turn it upright; face boxes are in upright pixels)."""
    return SynthConfig(**{**_HARD, "duration": (2.0, 2.0), "size": (1920, 1080)}, rotation=90,
                       face_height=(0.2, 0.28))


@PRESETS.register("fps_12_5")
def _preset_fps_12_5() -> SynthConfig:
    """12.5 fps (half PAL: frame times on a 0.08 s grid)."""
    return SynthConfig(**{**_HARD, "fps": 12.5, "size": (144, 256)})


@PRESETS.register("fps_29_97")
def _preset_fps_29_97() -> SynthConfig:
    """NTSC 29.97 fps (30000/1001: frame times never land on round milliseconds)."""
    return SynthConfig(**{**_HARD, "size": (144, 256)})


@PRESETS.register("vfr")
def _preset_vfr() -> SynthConfig:
    """Variable frame rate: the first half at 30 fps, the second at 10 (a phone in low light);
    the sidecar lists each frame's time."""
    return SynthConfig(**{**_HARD, "size": (144, 256)}, variable_fps=(30.0, 10.0))


@PRESETS.register("long")
def _preset_long() -> SynthConfig:
    """Two 3-minute 96x96 videos (a real and its fake with 4-8 short segments), AV-Deepfake1M
    layout: long-video decoding, sliding windows; cheap to render (~1 min on one core)."""
    return SynthConfig(n_videos=2, duration=(180.0, 180.0), size=(96, 96), split_fractions=(0.0, 0.0, 1.0),
                       segments_per_fake=(4, 8), segment_duration=(0.3, 1.5), modality_mix=(1.0, 1.0, 1.0),
                       strength=0.6, workers=1)


def preset(name: str, **overrides) -> SynthConfig:
    """The named preset's config with some fields replaced (validated again)."""
    cfg = PRESETS.get(name)()
    return dataclasses.replace(cfg, **overrides) if overrides else cfg
