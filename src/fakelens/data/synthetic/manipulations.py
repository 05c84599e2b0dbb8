"""The fakes: visual and audio manipulations, registered by name (`SynthConfig.visual_methods`,
`audio_methods`). Each changes its stream only inside the fake segments (and, visually, only
inside the face box)."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

import numpy as np

from fakelens.data.synthetic.motion import Motion, _mouth_in_frame
from fakelens.data.synthetic.sprites import Sprite, _anchor, _draw_mouth, _video_sprite
from fakelens.data.synthetic.voice import Speaker, _speaker, _utterance, synthesize_voice
from fakelens.registry import Registry

if TYPE_CHECKING:
    from fakelens.data.synthetic.plan import FakePlan, SourcePlan

# --------------------------------------------------------------------------------------------
# Visual manipulations: a factory (scene, plan, rng) -> edit(frame, t) that changes one float
# frame in place, only inside the face box of frame t
# --------------------------------------------------------------------------------------------


@dataclass
class _Scene:
    """What visual manipulations need to know about the real rendering of the person they fake."""

    src: SourcePlan
    motion: Motion
    sprite: Sprite
    light: np.ndarray  # (T, W)
    boxes: np.ndarray  # (T, 4), NaN where the face is not in the picture
    mouth: np.ndarray  # (T,) openness of the voice actually heard in the output


FrameEdit = Callable[[np.ndarray, int], None]
VisualManipulation = Callable[[_Scene, "FakePlan", np.random.Generator], FrameEdit]
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
        if not np.isfinite(box).all():  # the face is out of the picture: nothing to replace
            return
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
        if not np.isfinite(box).all():  # the face is out of the picture: nothing to replace
            return
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

AudioManipulation = Callable[[np.ndarray, np.ndarray, list, Speaker, "SourcePlan", "FakePlan", np.random.Generator],
                             tuple[np.ndarray, np.ndarray]]
AUDIO_MANIPULATIONS: Registry[AudioManipulation] = Registry("audio manipulation")


def _splice(real: np.ndarray, real_env: np.ndarray, fake: np.ndarray, fake_env: np.ndarray, src: SourcePlan,
            plan: FakePlan, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Paste `fake` into `real` inside each segment: loudness step, crossfades inside the segment.

    A segment covers the audio of exactly the frames the label rule marks fake in it.
    """
    out, env = real.copy(), real_env.copy()
    sr = src.sample_rate
    edges = src.sample_edges()  # (T + 1,)
    for seg in plan.segments:
        frames = np.flatnonzero(src.fake_frames([seg]))
        if not len(frames):
            continue
        a, b = int(edges[frames[0]]), min(len(real), int(edges[frames[-1] + 1]))
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
        out[a:b] = np.clip(piece, -1, 1)  # outside the segments the track stays as it was
        env[a:b] = fake_env[a:b]
    return out.astype(np.float32), env


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
