"""Rendering a plan: the source as a real recording, then its manipulation inside its segments.

`Rendering(plan)` prepares the sound, the people's poses and the ground truth, then draws frames
one at a time (`frames()`), so a long or 1080p video is written without holding it in memory;
`render_video` collects them (tests, small videos).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from fakelens.data.synthetic.manipulations import AUDIO_MANIPULATIONS, VISUAL_MANIPULATIONS, _Scene
from fakelens.data.synthetic.motion import (
    _background,
    _lighting,
    _mouth_in_frame,
    face_boxes,
    on_screen,
    person_boxes,
    person_motion,
    person_sprite,
)
from fakelens.data.synthetic.plan import VideoPlan, person_voice
from fakelens.data.synthetic.sprites import _anchor, _draw_mouth
from fakelens.data.synthetic.voice import _mouth_openness, synthesize_voice

_BIG_FRAME = 1_000_000  # pixels: above this, a smaller bank of camera-noise frames (memory)


@dataclass
class RenderedVideo:
    """A video before encoding."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB, as displayed
    audio: np.ndarray  # (S,) float32 in [-1, 1], S = round(duration * sample_rate)
    boxes: np.ndarray  # (T, 4) float32 main face box x1, y1, x2, y2 (NaN: no face in the picture)
    fps: float
    sample_rate: int
    person_boxes: np.ndarray | None = None  # (P, T, 4) float32 each person's face box (NaN: not in the picture)
    times: np.ndarray | None = None  # (T,) seconds of each frame


class Rendering:
    """One video, ready to be drawn: audio, ground truth, and `frames()` to draw its frames in order."""

    def __init__(self, plan: VideoPlan):
        src = plan.source
        self.plan = plan
        self.fps, self.sample_rate = src.fps, src.sample_rate
        self.times = src.times()  # (T,)
        self.person_boxes = person_boxes(src)  # (P, T, 4)
        self.boxes = face_boxes(src)  # (T, 4)
        edges = src.sample_edges()  # (T + 1,)
        fake = plan.fake
        tracks, heard = [], []
        self._people = []
        for k in range(len(src.persons)):
            speaker, words, rng = person_voice(src, k)
            audio, env = synthesize_voice(words, speaker, src.n_samples, src.sample_rate, rng)
            real_mouth = _mouth_openness(env, edges)
            mouth = real_mouth
            if fake is not None and fake.modality.audio and k == fake.target:
                method = AUDIO_MANIPULATIONS.get(fake.audio_method)
                audio, env = method(audio, env, words, speaker, src, fake, np.random.default_rng([fake.seed, 5]))
                mouth = _mouth_openness(env, edges)
            tracks.append(audio)
            heard.append(mouth)
            sprite = person_sprite(src, k)
            self._people.append((sprite, person_motion(src, k), _anchor(sprite), real_mouth, on_screen(src, k)))
        self.audio = np.clip(np.sum(tracks, 0), -1, 1).astype(np.float32)  # (S,) the microphone's mix

        self._bg, self._pan = _background(src, np.random.default_rng([src.seed, 3]))
        self._light = _lighting(src, np.random.default_rng([src.seed, 4]))
        self._edit = None
        self._fake_frames = np.zeros(src.n_frames, bool)
        if fake is not None and fake.modality.visual:
            sprite, motion, _, _, _ = self._people[fake.target]
            scene = _Scene(src, motion, sprite, self._light, self.person_boxes[fake.target], heard[fake.target])
            self._edit = VISUAL_MANIPULATIONS.get(fake.visual_method)(scene, fake, np.random.default_rng([fake.seed, 6]))
            self._fake_frames = src.fake_frames(fake.segments)

    @property
    def fake_frames(self) -> np.ndarray:
        """(T,) bool: the frames the visual manipulation changes."""
        return self._fake_frames

    def frames(self) -> Iterator[np.ndarray]:
        """Yield each frame, (H, W, 3) uint8 RGB as displayed, in time order."""
        import cv2

        src = self.plan.source
        h, w = src.size
        rng_grain = np.random.default_rng([src.seed, 6])
        bank = 6 if h * w <= _BIG_FRAME else 2
        grain = rng_grain.normal(0, src.grain, (bank, h, w, 3)).astype(np.float32)  # camera noise bank
        grain_idx = rng_grain.integers(0, bank, src.n_frames)
        big = h * w > _BIG_FRAME
        for t in range(src.n_frames):
            # real frame: background, warped heads, mouths following the real voices, light, camera grain
            ox, oy = self._pan[t]
            frame = self._bg[oy : oy + h, ox : ox + w]
            drawn = False
            for sprite, motion, anchor, mouth, shown in self._people:
                if not shown[t]:
                    continue
                if big:  # warp into the head's bounding box only: ~20x less work on a 1080p frame
                    frame = frame if drawn else frame.copy()
                    _paste_head(frame, sprite, motion.affine(t, anchor), motion, t, anchor)
                else:
                    head = cv2.warpAffine(sprite.rgba, motion.affine(t, anchor), (w, h), flags=cv2.INTER_LINEAR,
                                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # (H, W, 4)
                    inv = 1 - head[..., 3]
                    # cv2 arithmetic: ~10x faster than numpy broadcasting over (H, W, 1) at these sizes
                    frame = cv2.add(cv2.multiply(frame, cv2.merge([inv, inv, inv])),
                                    np.ascontiguousarray(head[..., :3]))  # (H, W, 3) float32
                drawn = True
                mx, my, mw = _mouth_in_frame(sprite, motion, t, anchor)
                _draw_mouth(frame, mx, my, mw, mouth[t], -motion.angle[t])
            if not drawn:
                frame = frame.copy()
            frame *= self._light[t, None, :, None]
            frame += grain[grain_idx[t]]
            if self._fake_frames[t]:
                self._edit(frame, t)
            np.maximum(frame, 0, out=frame)
            out = np.empty((h, w, 3), np.uint8)
            cv2.convertScaleAbs(frame, out, 255.0, 0.5)  # rounds and saturates to uint8
            yield out


def _paste_head(frame: np.ndarray, sprite, matrix: np.ndarray, motion, t: int, anchor) -> None:
    """Composite the warped sprite into `frame` (float32 (H, W, 3), in place) inside its bounding box."""
    import cv2

    h, w = frame.shape[:2]
    sh, sw = sprite.rgba.shape[:2]
    corners = matrix[:, :2] @ np.array([[0, sw, 0, sw], [0, 0, sh, sh]], np.float64) + matrix[:, 2:]  # (2, 4)
    x1, y1 = max(0, int(np.floor(corners[0].min())) - 1), max(0, int(np.floor(corners[1].min())) - 1)
    x2, y2 = min(w, int(np.ceil(corners[0].max())) + 2), min(h, int(np.ceil(corners[1].max())) + 2)
    if x2 <= x1 or y2 <= y1:
        return
    head = cv2.warpAffine(sprite.rgba, motion.affine(t, anchor, offset=(x1, y1)), (x2 - x1, y2 - y1),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # (h, w, 4)
    inv = 1 - head[..., 3]
    roi = frame[y1:y2, x1:x2]
    roi[:] = cv2.add(cv2.multiply(roi, cv2.merge([inv, inv, inv])), np.ascontiguousarray(head[..., :3]))


def render_video(plan: VideoPlan) -> RenderedVideo:
    """Render a video: its source as a real recording, then its manipulation inside its segments.

    Rendering the fake's `original` gives the same frames and samples outside the fake segments,
    and the same frames outside the target's face box inside visual segments.
    """
    r = Rendering(plan)
    src = plan.source
    frames = np.empty((src.n_frames, *src.size, 3), np.uint8)  # (T, H, W, 3)
    for t, frame in enumerate(r.frames()):
        frames[t] = frame
    return RenderedVideo(frames, r.audio, r.boxes, r.fps, r.sample_rate, r.person_boxes, r.times)
