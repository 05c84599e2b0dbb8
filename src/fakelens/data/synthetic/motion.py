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


_PLACES = {"centre": (0.5, 0.05, 0.06), "left": (0.28, 0.03, 0.03), "right": (0.72, 0.03, 0.03)}  # x, jitter, sway
_TWO_PEOPLE_SCALE = 0.72  # two people side by side are filmed from further away
_WALK_OUT = 0.8  # seconds a leaving person takes to walk out of the frame


def person_motion(src: SourcePlan, k: int) -> Motion:
    """Person k's head pose per frame; a leaving person walks out sideways from `person.end` on."""
    person = src.persons[k]
    rng = np.random.default_rng([person.seed, 1])
    h, w = src.size
    t = src.times()  # (T,)
    face = _identity_sprite(person.identity).face
    face_h = face[3] - face[1]
    lo, hi = src.face_height
    if src.scene == "two_people":
        lo, hi = lo * _TWO_PEOPLE_SCALE, hi * _TWO_PEOPLE_SCALE
    s0 = rng.uniform(lo, hi) * h / face_h
    zoom_amp = rng.uniform(-0.10, 0.12)
    t0, t1 = sorted(rng.uniform(0, max(t[-1], 1e-3), 2))
    ramp = np.clip((t - t0) / max(t1 - t0, 0.3), 0, 1)
    zoom = 1 + zoom_amp * ramp * ramp * (3 - 2 * ramp)
    scale = s0 * zoom * (1 + _smooth_wave(rng, t, 0.015, 0.5, 1.5, 2))
    x0, jitter, sway = _PLACES[person.place]
    cx = w * (x0 + rng.uniform(-jitter, jitter)) + _smooth_wave(rng, t, sway * w)
    cy = h * (0.45 + rng.uniform(-0.03, 0.03)) + _smooth_wave(rng, t, 0.04 * h)
    angle = rng.uniform(-4, 4) + _smooth_wave(rng, t, 5.0, 0.15, 0.8)
    if person.leaves:
        side = 1.0 if np.random.default_rng([person.seed, 8]).random() < 0.5 else -1.0
        walk = np.clip((t - person.end) / _WALK_OUT, 0, 1)
        walk = walk * walk * (3 - 2 * walk)
        cx = cx + side * walk * (0.6 * w + scale * (face[2] - face[0]) * 2)  # far enough to leave the frame
    return Motion(np.stack([cx, cy], 1), scale, angle)


def person_sprite(src: SourcePlan, k: int) -> Sprite:
    """Person k's appearance in this video (mirror, colour jitter)."""
    person = src.persons[k]
    return _video_sprite(person.identity, np.random.default_rng([person.seed, 2]))


def on_screen(src: SourcePlan, k: int) -> np.ndarray:
    """(T,) bool: the frames in which person k is drawn (a leaving person is drawn walking out)."""
    person = src.persons[k]
    t = src.times()
    if person.leaves:
        return t >= person.start - 1e-9
    return (t >= person.start - 1e-9) & (t < person.end - 1e-9)


def person_boxes(src: SourcePlan) -> np.ndarray:
    """Ground-truth face box of each person per frame, (P, T, 4) float32 x1, y1, x2, y2 in pixels of
    the displayed frame; NaN where that face is not in the picture (before or after the person's
    shot, or once less than half of the face is inside the frame)."""
    out = np.full((len(src.persons), src.n_frames, 4), np.nan, np.float32)
    for k in range(len(src.persons)):
        raw = _raw_boxes(person_sprite(src, k), person_motion(src, k))
        clipped = _clip_boxes(raw.copy(), src.size)
        inside = _area(clipped) >= 0.5 * _area(raw)
        shown = on_screen(src, k) & inside
        out[k, shown] = clipped[shown]
    return out


def face_boxes(src: SourcePlan) -> np.ndarray:
    """The main face per frame, (T, 4) float32: the largest face in the picture, NaN when there is none.

    The sprite's face box (MTCNN-like, forehead to chin) follows the head: its centre moves with
    the pose, its size scales, and a turned face gets the box of its turned inscribed ellipse.
    Cheap (no rendering): the metadata writer calls it for videos skipped on resume.
    """
    boxes = person_boxes(src)  # (P, T, 4)
    if len(boxes) == 1:
        return boxes[0]
    area = np.nan_to_num(_area(boxes), nan=-1.0)  # (P, T)
    return boxes[np.argmax(area, 0), np.arange(boxes.shape[1])]


def _raw_boxes(sprite: Sprite, motion: Motion) -> np.ndarray:
    """(T, 4) float32 face boxes where the pose puts them, not clipped to the frame."""
    x1, y1, x2, y2 = sprite.face
    out = np.empty((len(motion.scale), 4), np.float32)
    for t in range(len(motion.scale)):
        cx, cy = motion.centre[t]  # the face box centre (the anchor) is where the pose puts it
        a = math.radians(motion.angle[t])
        ax, ay = motion.scale[t] * (x2 - x1) / 2, motion.scale[t] * (y2 - y1) / 2
        hw = math.hypot(ax * math.cos(a), ay * math.sin(a))
        hh = math.hypot(ax * math.sin(a), ay * math.cos(a))
        out[t] = (cx - hw, cy - hh, cx + hw, cy + hh)
    return out


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.maximum(boxes[..., 2] - boxes[..., 0], 0) * np.maximum(boxes[..., 3] - boxes[..., 1], 0)


def _clip_boxes(boxes: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    h, w = size
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, w - 1)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, h - 1)
    return boxes


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
    t = src.times()
    ox = np.clip(np.round(pad + _smooth_wave(rng, t, 0.9 * pad, 0.05, 0.3, 2)), 0, 2 * pad).astype(int)
    oy = np.clip(np.round(pad + _smooth_wave(rng, t, 0.6 * pad, 0.05, 0.3, 2)), 0, 2 * pad).astype(int)
    return bg, np.stack([ox, oy], 1)


def _lighting(src: SourcePlan, rng: np.random.Generator) -> np.ndarray:
    """Per-frame light: global gain and a left-right gradient that drift. Returns (T, W) float32."""
    t = src.times()
    w = src.size[1]
    gain = rng.uniform(*src.brightness) * (1 + _smooth_wave(rng, t, 0.10, 0.1, 0.5, 2))
    side = rng.uniform(-0.12, 0.12) + _smooth_wave(rng, t, 0.08, 0.05, 0.4, 2)
    x = np.linspace(-1, 1, w)
    return (gain[:, None] * (1 + side[:, None] * x[None, :])).astype(np.float32)  # (T, W)

def _mouth_in_frame(sprite: Sprite, motion: Motion, t: int, anchor: tuple[float, float],
                    extra_scale: float = 1.0) -> tuple[float, float, float]:
    m = motion.affine(t, anchor, extra_scale)
    cx, cy = m[:, :2] @ np.asarray(sprite.mouth[:2]) + m[:, 2]
    return float(cx), float(cy), sprite.mouth[2] * motion.scale[t] * extra_scale
