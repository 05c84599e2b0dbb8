"""Rendering a plan: the source as a real recording, then its manipulation inside its segments."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fakelens.data.synthetic.manipulations import AUDIO_MANIPULATIONS, VISUAL_MANIPULATIONS, _Scene
from fakelens.data.synthetic.motion import _background, _boxes_from_motion, _lighting, _motion, _mouth_in_frame
from fakelens.data.synthetic.plan import VideoPlan, segment_frames
from fakelens.data.synthetic.sprites import _anchor, _draw_mouth, _video_sprite
from fakelens.data.synthetic.voice import _mouth_openness, _speaker, _utterance, synthesize_voice


@dataclass
class RenderedVideo:
    """A video before encoding."""

    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    audio: np.ndarray  # (S,) float32 in [-1, 1], S = T * sample_rate / fps
    boxes: np.ndarray  # (T, 4) float32 face box x1, y1, x2, y2
    fps: int
    sample_rate: int

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
