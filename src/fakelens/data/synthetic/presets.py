"""Named configs (`fakelens data synth --preset NAME`): a registry of SynthConfig factories."""

from __future__ import annotations

import dataclasses
from typing import Callable

from fakelens.data.synthetic.config import SynthConfig
from fakelens.registry import Registry


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
