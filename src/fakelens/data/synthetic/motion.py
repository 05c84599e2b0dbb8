"""Motion, background, lighting: per-video smooth trajectories (all (T, ...) arrays), and the
ground-truth face boxes they imply."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from fakelens.data.synthetic.sprites import _TEXTURES, Sprite, _identity_sprite, _texture, _video_sprite

if TYPE_CHECKING:
    from fakelens.data.synthetic.plan import SourcePlan


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

def _mouth_in_frame(sprite: Sprite, motion: Motion, t: int, anchor: tuple[float, float],
                    extra_scale: float = 1.0) -> tuple[float, float, float]:
    m = motion.affine(t, anchor, extra_scale)
    cx, cy = m[:, :2] @ np.asarray(sprite.mouth[:2]) + m[:, 2]
    return float(cx), float(cy), sprite.mouth[2] * motion.scale[t] * extra_scale
