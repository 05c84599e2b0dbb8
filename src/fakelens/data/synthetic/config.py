"""What to generate: `SynthConfig`, validated field by field (a ConfigError names the bad one)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from fakelens.data.synthetic.manipulations import AUDIO_MANIPULATIONS, VISUAL_MANIPULATIONS
from fakelens.errors import ConfigError, FakelensError

SPLITS = ("train", "val", "test")
LAYOUTS = ("avdeepfake1m", "csv", "dfdc", "lavdf")  # fakelens.data.synthetic.layouts writes each
_FIXED_FPS = {"avdeepfake1m": 25, "lavdf": 25}  # the datasets are 25 fps and their readers assume it
# what a source shows: one talking head; two side by side (only one of them faked); a person who
# walks out of the frame mid-video; a shot cut from one person to another at the same place
SCENES = ("single", "two_people", "leave", "cut")
ROTATIONS = (0, 90, 180, 270)


def ntsc(fps: float) -> float:
    """29.97 -> 30000/1001 (and 23.976, 59.94 alike), the rates cameras record; others unchanged."""
    k = round(fps * 1.001)
    if abs(fps - round(fps)) > 1e-3 and abs(fps * 1.001 - k) < 2e-3:
        return k * 1000 / 1001
    return float(fps)


@dataclass
class SynthConfig:
    """What to generate. Times in seconds; `size` is (H, W) in pixels; strength in [0, 1]."""

    n_videos: int = 160
    seed: int = 0
    fake_fraction: float = 0.5
    duration: tuple[float, float] = (3.2, 4.0)  # each source's duration is drawn in this range
    fps: float = 25.0  # 29.97 means 30000/1001, as cameras record it
    size: tuple[int, int] = (224, 224)
    sample_rate: int = 16000
    modality_mix: tuple[float, float, float] = (0.4, 0.3, 0.3)  # weights of visual, audio, both
    visual_methods: tuple[str, ...] = ("face_swap", "face_reenact")
    audio_methods: tuple[str, ...] = ("voice_swap", "pitch_shift")
    segments_per_fake: tuple[int, int] = (1, 1)  # inclusive range
    segment_duration: tuple[float, float] = (0.6, 1.0)
    strength: float = 0.9
    split_fractions: tuple[float, float, float] = (0.6, 0.2, 0.2)  # train, val, test
    layout: Literal["avdeepfake1m", "csv", "dfdc", "lavdf"] = "avdeepfake1m"
    workers: int = 0  # 0 = one per CPU core; 1 = in this process
    main_identity_fraction: float = 0.35  # share of real sources showing astronaut()
    crf: int = 23  # h264 quality (lower = better)
    scenes: tuple[str, ...] = ("single",)  # each source draws one of these (SCENES)
    face_height: tuple[float, float] = (0.36, 0.46)  # face box height / frame height (one person)
    brightness: tuple[float, float] = (0.88, 1.08)  # light gain range (dim light: ~0.3)
    grain: float = 0.016  # camera noise std (in [0, 1] pixel units; dim light is noisier)
    audio: bool = True  # False: videos without an audio track (then no audio fakes)
    rotation: int = 0  # clockwise degrees a player turns the stored frames (display matrix)
    variable_fps: tuple[float, ...] = ()  # variable frame rate: equal parts of each video at these rates
    fake_span: Literal["segments", "whole"] = "segments"  # "whole": a fake is manipulated all along

    def __post_init__(self) -> None:
        self.duration = tuple(float(x) for x in self.duration)  # type: ignore[assignment]
        self.size = tuple(int(x) for x in self.size)  # type: ignore[assignment]
        self.segment_duration = tuple(float(x) for x in self.segment_duration)  # type: ignore[assignment]
        self.segments_per_fake = tuple(int(x) for x in self.segments_per_fake)  # type: ignore[assignment]
        self.modality_mix = tuple(float(x) for x in self.modality_mix)  # type: ignore[assignment]
        self.split_fractions = tuple(float(x) for x in self.split_fractions)  # type: ignore[assignment]
        self.visual_methods = tuple(self.visual_methods)
        self.audio_methods = tuple(self.audio_methods)
        self.scenes = tuple(self.scenes)
        self.face_height = tuple(float(x) for x in self.face_height)  # type: ignore[assignment]
        self.brightness = tuple(float(x) for x in self.brightness)  # type: ignore[assignment]
        self.variable_fps = tuple(float(x) for x in self.variable_fps)  # type: ignore[assignment]
        self.fps = ntsc(float(self.fps))
        self.validate()

    @property
    def min_fps(self) -> float:
        return min(self.variable_fps) if self.variable_fps else self.fps

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
        if self.sample_rate < 8000:
            raise bad("sample_rate", "must be >= 8000 Hz")
        if any(r <= 0 for r in self.variable_fps) or len(self.variable_fps) == 1:
            raise bad("variable_fps", "needs two or more positive rates (or none: constant fps)")
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
        if self.segment_duration[0] * self.min_fps < 1:
            raise bad("segment_duration", f"shorter than one frame at {self.min_fps:g} fps")
        if not 0.0 <= self.strength <= 1.0:
            raise bad("strength", "must be in [0, 1]")
        if len(self.split_fractions) != 3 or min(self.split_fractions) < 0 or sum(self.split_fractions) <= 0:
            raise bad("split_fractions", "needs three non-negative fractions (train, val, test)")
        if self.layout not in LAYOUTS:
            raise bad("layout", f"is one of {', '.join(LAYOUTS)}")
        if self.layout in _FIXED_FPS and (self.fps != _FIXED_FPS[self.layout] or self.variable_fps):
            raise bad("fps", f"the {self.layout} layout is {_FIXED_FPS[self.layout]} fps (as the dataset; its "
                      "reader assumes it): use layout dfdc or csv for other frame rates")
        if self.workers < 0:
            raise bad("workers", "0 (all cores) or a positive count")
        if not 0.0 <= self.main_identity_fraction <= 1.0:
            raise bad("main_identity_fraction", "must be in [0, 1]")
        if not 0 <= self.crf <= 51:
            raise bad("crf", "h264 crf is in [0, 51]")
        if not self.scenes or any(sc not in SCENES for sc in self.scenes):
            raise bad("scenes", f"needs one or more of {', '.join(SCENES)}")
        if len(self.face_height) != 2 or not 0 < self.face_height[0] <= self.face_height[1] <= 0.8:
            raise bad("face_height", "needs 0 < min <= max <= 0.8 (fractions of the frame height)")
        if len(self.brightness) != 2 or not 0 < self.brightness[0] <= self.brightness[1] <= 2:
            raise bad("brightness", "needs 0 < min <= max <= 2")
        if not 0 <= self.grain <= 0.2:
            raise bad("grain", "must be in [0, 0.2]")
        if not self.audio and self.modality_mix[1] + self.modality_mix[2] > 0:
            raise bad("audio", "videos without audio cannot have audio fakes: set modality_mix to (1, 0, 0)")
        if self.rotation not in ROTATIONS:
            raise bad("rotation", f"is one of {', '.join(map(str, ROTATIONS))} (clockwise degrees)")
        if self.fake_span not in ("segments", "whole"):
            raise bad("fake_span", "is 'segments' or 'whole'")
