"""People: head-and-shoulders sprites built from the photos that ship with scikit-image.

`astronaut()` is identity 0; identity k in 1..100 is `lfw_subset()[k - 1]` upsampled and tinted onto
a painted head. Assets load once per process (lru_cache), so forked workers share them.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

N_LFW = 100  # lfw_subset(): the first 100 images are faces of different people
# lfw identities left out: MTCNN finds no face in their upsampled rendering (28), or OpenCV's Haar
# cascade misses it in most frames (measured on 96x96 renders: found in <= 25% of frames), so that
# the ground-truth boxes can be checked against a detector and every split's faces are findable;
# identity k is lfw_subset()[k - 1]
_LFW_SKIP = frozenset({5, 26, 28, 29, 31, 33, 40, 75, 76, 83})
_LFW_IDS = tuple(k for k in range(1, N_LFW + 1) if k not in _LFW_SKIP)


_CANVAS = (300, 200)  # sprite (H, W): head and shoulders
# astronaut() crop [8:308, 125:325]; its MTCNN face box x 181-268, y 62-172 in canvas coordinates
_ASTRO_ORIGIN = (125, 8)
_ASTRO_FACE = (181.0 - 125, 62.0 - 8, 268.0 - 125, 172.0 - 8)
_ASTRO_MOUTH = (98.0, 141.0, 17.0)  # centre x, centre y, half width
# lfw faces are pasted over this canvas region (x1, y1, x2, y2); their face box is where MTCNN
# (facenet-pytorch, min_face_size 20) puts it on the rendered heads: measured on 116 frames of 29
# identities, mean IoU 0.78 with this box at 224x224 and 96x96, IoU >= 0.5 in 97% of the frames
_LFW_PASTE = (56, 62, 144, 162)
_LFW_FACE = (61.0, 62.0, 139.0, 160.0)
_LFW_MOUTH = (100.0, 139.0, 15.0)

_SKIN = np.array([[0.93, 0.76, 0.65], [0.85, 0.66, 0.53], [0.76, 0.57, 0.42], [0.62, 0.44, 0.31],
                  [0.45, 0.31, 0.22], [0.95, 0.78, 0.72]], np.float32)
_HAIR = np.array([[0.08, 0.06, 0.05], [0.28, 0.19, 0.11], [0.62, 0.50, 0.30], [0.50, 0.50, 0.50],
                  [0.45, 0.20, 0.10]], np.float32)
_TEXTURES = ("brick", "grass", "gravel", "camera", "moon")

@dataclass(frozen=True)
class Sprite:
    """A head-and-shoulders image with premultiplied alpha, its face box and mouth position."""

    rgba: np.ndarray  # (300, 200, 4) float32, RGB premultiplied by alpha
    face: tuple[float, float, float, float]  # x1, y1, x2, y2 in sprite pixels
    mouth: tuple[float, float, float]  # cx, cy, half width


@lru_cache(maxsize=None)
def _astronaut() -> np.ndarray:
    from skimage import data

    x0, y0 = _ASTRO_ORIGIN
    return data.astronaut()[y0 : y0 + _CANVAS[0], x0 : x0 + _CANVAS[1]].astype(np.float32) / 255  # (300, 200, 3)


@lru_cache(maxsize=None)
def _lfw() -> np.ndarray:
    from skimage import data

    return data.lfw_subset()[:N_LFW].astype(np.float32)  # (100, 25, 25) in [0, 1]


@lru_cache(maxsize=None)
def _texture(name: str) -> np.ndarray:
    from skimage import data

    return getattr(data, name)().astype(np.float32) / 255  # (512, 512)


def _ellipse(h: int, w: int, cx: float, cy: float, ax: float, ay: float, soft: float = 1.0) -> np.ndarray:
    """Anti-aliased filled ellipse mask (h, w) float32 in [0, 1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.sqrt(((xx - cx) / ax) ** 2 + ((yy - cy) / ay) ** 2)
    return np.clip((1.0 - r) * min(ax, ay) / soft + 0.5, 0.0, 1.0)


def _astronaut_mask() -> np.ndarray:
    """Person vs studio backdrop in the astronaut crop: the backdrop is bright and grey. (300, 200) float32."""
    import cv2

    rgb = _astronaut()
    hi, lo = rgb.max(2), rgb.min(2)
    person = ~(((hi - lo) / (hi + 1e-6) < 0.12) & (hi > 0.6))
    m = cv2.morphologyEx(person.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((7, 7), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m)
    m = (labels == 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))).astype(np.uint8)
    holes = (1 - m).copy()
    cv2.floodFill(holes, np.zeros((m.shape[0] + 2, m.shape[1] + 2), np.uint8), (0, 0), 0)
    return np.maximum(m, holes).astype(np.float32)


@lru_cache(maxsize=None)
def _identity_sprite(identity: int) -> Sprite:
    """The identity's sprite before per-video jitter (astronaut photo, or a tinted lfw face on a head)."""
    import cv2

    h, w = _CANVAS
    if identity == 0:
        rgb = _astronaut()
        alpha = _astronaut_mask() * np.maximum(_ellipse(h, w, 103, 92, 80, 92, soft=3),
                                               _ellipse(h, w, 100, 310, 96, 165, soft=3))
        alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)
        return Sprite(np.dstack([rgb * alpha[..., None], alpha]).astype(np.float32), _ASTRO_FACE, _ASTRO_MOUTH)
    rng = np.random.default_rng([identity, 0xFACE])
    skin = _SKIN[rng.integers(len(_SKIN))]
    hair = _HAIR[rng.integers(len(_HAIR))]
    cloth = rng.uniform(0.1, 0.8, 3).astype(np.float32)
    rgb = np.zeros((h, w, 3), np.float32)
    alpha = np.zeros((h, w), np.float32)

    def paint(mask: np.ndarray, colour: np.ndarray) -> None:
        nonlocal rgb, alpha
        m = mask[..., None]
        rgb = rgb * (1 - m) + colour * m
        alpha = np.maximum(alpha, mask)

    yy = np.arange(h, dtype=np.float32)[:, None]
    paint(_ellipse(h, w, 100, 305, 100, 85), cloth * (1.0 - 0.25 * (yy[..., None] - 220) / 80))
    neck = ((np.abs(np.arange(w)[None, :] - 100) <= 27) & (yy >= 140) & (yy <= 240)).astype(np.float32)
    paint(neck, skin * 0.82)
    paint(_ellipse(h, w, 100, 100, 64, 76), hair)
    paint(_ellipse(h, w, 100, 114, 50, 62), skin)
    # the lfw face (greyscale, 25x25), upsampled and tinted to the skin tone
    grey = _lfw()[identity - 1]
    x1, y1, x2, y2 = _LFW_PASTE
    up = cv2.resize(grey, (x2 - x1, y2 - y1), interpolation=cv2.INTER_CUBIC)  # (100, 88)
    centre = up[20:80, 20:68].mean()
    tinted = skin[None, None, :] * np.clip(0.35 + 0.65 * up / max(centre, 1e-3), 0, 1.5)[..., None]
    patch = np.zeros((h, w, 3), np.float32)
    patch[y1:y2, x1:x2] = tinted
    m = _ellipse(h, w, (x1 + x2) / 2, (y1 + y2) / 2 + 2, (x2 - x1) / 2 - 1, (y2 - y1) / 2, soft=7)
    m[:y1] = 0
    m[y2:] = 0
    rgb = rgb * (1 - m[..., None]) + patch * m[..., None]
    paint(_ellipse(h, w, 100, 52, 54, 22) * (yy < 60), hair)  # fringe
    # skin detail: fine fixed texture so upsampled faces are not unnaturally smooth
    detail = cv2.GaussianBlur(rng.normal(0, 0.035, (h, w)).astype(np.float32), (0, 0), 0.6)
    rgb = np.clip(rgb * (1 + detail[..., None]), 0, 1)
    alpha = cv2.GaussianBlur(alpha, (0, 0), 1.0)
    return Sprite(np.dstack([rgb * alpha[..., None], alpha]).astype(np.float32), _LFW_FACE, _LFW_MOUTH)


def _video_sprite(identity: int, rng: np.random.Generator) -> Sprite:
    """Per-video appearance: mirror, colour jitter (the same person filmed differently)."""
    base = _identity_sprite(identity)
    rgba = base.rgba.copy()
    gains = rng.uniform(0.88, 1.12, 3).astype(np.float32) * rng.uniform(0.9, 1.08)
    rgba[..., :3] = np.minimum(rgba[..., :3] * gains, rgba[..., 3:4])
    face, mouth = base.face, base.mouth
    if rng.random() < 0.5:
        w = _CANVAS[1]
        rgba = rgba[:, ::-1].copy()
        face = (w - 1 - face[2], face[1], w - 1 - face[0], face[3])
        mouth = (w - 1 - mouth[0], mouth[1], mouth[2])
    return Sprite(rgba, face, mouth)

def _draw_mouth(img: np.ndarray, cx: float, cy: float, hw: float, openness: float, angle: float,
                origin: tuple[int, int] = (0, 0)) -> None:
    """Darken an open-mouth ellipse in `img` (float32 (h, w, 3)) in place; coordinates minus `origin`."""
    hw *= 0.8
    hh = hw * 0.4 * openness
    if hh < 0.6:
        return
    cx, cy = cx - origin[0], cy - origin[1]
    h, w = img.shape[:2]
    x1, x2 = max(0, int(cx - hw - 2)), min(w, int(cx + hw + 3))
    y1, y2 = max(0, int(cy - hw - 2)), min(h, int(cy + hw + 3))
    if x2 <= x1 or y2 <= y1:
        return
    yy, xx = np.mgrid[y1:y2, x1:x2].astype(np.float32)
    a = math.radians(angle)
    u = (xx - cx) * math.cos(a) - (yy - cy) * math.sin(a)
    v = (xx - cx) * math.sin(a) + (yy - cy) * math.cos(a)
    r = np.sqrt((u / hw) ** 2 + (v / hh) ** 2)
    m = np.clip((1 - r) * hh + 0.5, 0, 1)[..., None] * 0.75
    roi = img[y1:y2, x1:x2]
    roi *= 1 - m
    roi += m * np.array([0.25, 0.08, 0.08], np.float32)

def _anchor(sprite: Sprite) -> tuple[float, float]:
    x1, y1, x2, y2 = sprite.face
    return (x1 + x2) / 2, (y1 + y2) / 2
