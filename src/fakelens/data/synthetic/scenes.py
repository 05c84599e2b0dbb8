"""Scenes with several people, for the face stage: who is where, when, how large, and whose face is
swapped, rendered as real-looking frames with the ground-truth face box of every person.

The talking-head generator (`generate`) films one person filling the frame. The face stage must
also handle what DFDC and broadcast footage show: two people of whom only one is fake, a person
who walks out of the frame, a cut from one person to another at the same spot, small and dark
faces in 1080p and 4K frames. A `Scene` lists `Person`s, each with an identity (the same people
as the generator: 0 = `astronaut()`, 1..100 = `lfw_subset()` faces), a face height in pixels, a
path (centre at the start and at the end, plus a small sway), the time span it is in the frame,
its brightness, and optionally a face swap: inside an ellipse of its face box the donor's face
is blended in over [start, end) with the artefacts of the generator's `face_swap` (resampling
blur, no camera grain, colour offset, a seam). `render_scene` gives the frames and boxes,
`write_scene` an h264 file, `write_dfdc_people` a DFDC-layout part folder of two-person videos
(each fake swaps one person's face of its original, named in `faces.json`); `two_people`,
`person_leaves` and `cut_between_people` make the scenes the face-stage tests use.

Everything is seeded by `Scene.seed`: rendering a scene and its fake gives identical pixels
outside the swapped face.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class Person:
    """One person of a scene. Pixels and seconds; `centre` / `to` are the face centre at the scene's
    start and end (linear in between, plus a sway of a few percent of the face)."""

    identity: int
    face: float  # face box height in pixels
    centre: tuple[float, float]  # (x, y) face centre at time 0
    to: tuple[float, float] | None = None  # (x, y) face centre at the scene's end (None: stays)
    start: float = 0.0  # seconds: in the frame from `start` ...
    end: float = math.inf  # ... to `end`
    brightness: float = 1.0  # gain on the person's pixels (0.4: a dark face in dim light)
    swap: int | None = None  # donor identity whose face is blended in (a fake face), None: real
    swap_span: tuple[float, float] = (0.0, math.inf)  # seconds the swap covers
    flip: bool = False


@dataclass(frozen=True)
class Scene:
    """What one video shows. `cuts` are times (s) where the background is redrawn from another
    seed (a shot cut); `background_cut` False keeps the same background across them (a cut to
    another person in the same studio)."""

    size: tuple[int, int]  # (H, W)
    duration: float
    fps: float
    people: tuple[Person, ...]
    seed: int = 0
    cuts: tuple[float, ...] = ()
    background_cut: bool = True
    grain: float = 0.016
    light: float = 1.0  # global gain of the frame (0.5: a dim room)

    @property
    def n_frames(self) -> int:
        return max(1, int(round(self.duration * self.fps)))


@dataclass
class RenderedScene:
    frames: np.ndarray  # (T, H, W, 3) uint8 RGB
    boxes: np.ndarray  # (P, T, 4) float32 face box x1 y1 x2 y2 per person, NaN where not in the frame
    fake: np.ndarray  # (P, T) bool: the person's face is swapped on that frame
    times: np.ndarray  # (T,) seconds


def _background(size: tuple[int, int], seed: int) -> np.ndarray:
    """(H, W, 3) float32: a gradient with a blurred photographic texture, as the generator's."""
    import cv2

    from fakelens.data.synthetic.sprites import _TEXTURES, _texture

    rng = np.random.default_rng([seed, 0xB6])
    h, w = size
    c1, c2 = rng.uniform(0.15, 0.85, (2, 3)).astype(np.float32)
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    g = np.cos(ang) * xx / w + np.sin(ang) * yy / h
    g = (g - g.min()) / max(float(np.ptp(g)), 1e-6)
    base = c1 * (1 - g[..., None]) + c2 * g[..., None]
    tex = cv2.resize(_texture(_TEXTURES[int(rng.integers(len(_TEXTURES)))]), (w, h), interpolation=cv2.INTER_LINEAR)
    tex = cv2.GaussianBlur(tex, (0, 0), max(0.8, 1.5 * h / 224))
    tex = (tex - tex.mean()) / max(float(tex.std()), 1e-3)
    return np.clip(base * (1 + 0.12 * tex[..., None]), 0, 1).astype(np.float32)


def _place(sprite, face_h: float, centre: tuple[float, float]) -> np.ndarray:
    """(2, 3) affine taking sprite pixels to frame pixels: the sprite's face box centre to `centre`,
    its face height to `face_h`."""
    x1, y1, x2, y2 = sprite.face
    s = face_h / (y2 - y1)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    return np.array([[s, 0, centre[0] - s * cx], [0, s, centre[1] - s * cy]], np.float64)


def _person_box(sprite, m: np.ndarray) -> np.ndarray:
    x1, y1, x2, y2 = sprite.face
    p = m[:, :2] @ np.array([[x1, x2], [y1, y2]], np.float64) + m[:, 2:]
    return np.array([p[0, 0], p[1, 0], p[0, 1], p[1, 1]], np.float32)


def _sprite(identity: int, flip: bool, seed: int):
    from fakelens.data.synthetic.sprites import Sprite, _identity_sprite

    base = _identity_sprite(identity)
    rgba = base.rgba.copy()
    rng = np.random.default_rng([seed, identity, 0x5C])
    rgba[..., :3] = np.minimum(rgba[..., :3] * rng.uniform(0.92, 1.08, 3).astype(np.float32), rgba[..., 3:4])
    if not flip:
        return Sprite(rgba, base.face, base.mouth)
    w = rgba.shape[1]
    f = base.face
    return Sprite(rgba[:, ::-1].copy(), (w - 1 - f[2], f[1], w - 1 - f[0], f[3]), base.mouth)


def render_scene(scene: Scene) -> RenderedScene:
    """Frames and ground-truth face boxes of `scene` (see the module docstring)."""
    import cv2

    h, w = scene.size
    n = scene.n_frames
    times = np.arange(n) / scene.fps  # (T,)
    cuts = sorted(scene.cuts)
    backgrounds = [_background(scene.size, scene.seed + (k if scene.background_cut else 0)) for k in range(len(cuts) + 1)]
    rng = np.random.default_rng([scene.seed, 0x6A])
    grain = rng.normal(0, scene.grain, (4, h, w, 3)).astype(np.float32)  # camera noise bank
    sprites = [_sprite(p.identity, p.flip, scene.seed + k) for k, p in enumerate(scene.people)]
    donors = [_sprite(p.swap, p.flip, scene.seed + 100 + k) if p.swap is not None else None
              for k, p in enumerate(scene.people)]
    sway = [np.random.default_rng([scene.seed, k, 0x5A]).uniform(0, 2 * np.pi, 2) for k in range(len(scene.people))]
    boxes = np.full((len(scene.people), n, 4), np.nan, np.float32)  # (P, T, 4)
    fake = np.zeros((len(scene.people), n), bool)  # (P, T)
    out = np.empty((n, h, w, 3), np.uint8)  # (T, H, W, 3)
    for t in range(n):
        now = times[t]
        frame = backgrounds[int(np.searchsorted(cuts, now, side="right"))].copy()  # (H, W, 3)
        for k, (p, sp) in enumerate(zip(scene.people, sprites)):
            if not p.start <= now < p.end:
                continue
            a = now / max(scene.duration, 1e-6)
            end = p.to if p.to is not None else p.centre
            wob = 0.04 * p.face
            c = ((1 - a) * p.centre[0] + a * end[0] + wob * math.sin(2.1 * now + sway[k][0]),
                 (1 - a) * p.centre[1] + a * end[1] + 0.5 * wob * math.sin(1.7 * now + sway[k][1]))
            m = _place(sp, p.face, c)
            head = cv2.warpAffine(sp.rgba, m, (w, h), flags=cv2.INTER_AREA if p.face < 110 else cv2.INTER_LINEAR,
                                  borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # (H, W, 4)
            rgb = head[..., :3] * p.brightness
            box = _person_box(sp, m)
            swapped = donors[k] is not None and p.swap_span[0] <= now < p.swap_span[1]
            if swapped:
                rgb = _swap_face(rgb, head[..., 3], donors[k], p, c, box, scene.seed + k, t)
            alpha = head[..., 3:4]
            frame = frame * (1 - alpha) + rgb
            boxes[k, t] = box
            fake[k, t] = swapped
        frame = frame * scene.light + grain[t % len(grain)]
        cv2.convertScaleAbs(np.clip(frame, 0, 1), out[t], 255.0, 0.5)
    return RenderedScene(out, boxes, fake, times)


def _swap_face(rgb: np.ndarray, alpha: np.ndarray, donor, p: Person, centre, box: np.ndarray, seed: int,
               t: int) -> np.ndarray:
    """The person's premultiplied pixels with the donor's face blended in inside an ellipse of the
    face box: rendered at 0.6x resolution and scaled back (blur), colour-shifted, a visible seam."""
    import cv2

    h, w = rgb.shape[:2]
    m = _place(donor, p.face, centre)
    dh = cv2.warpAffine(donor.rgba, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                        borderValue=0)[..., :3] * p.brightness  # (H, W, 3)
    x1, y1, x2, y2 = (float(v) for v in box)
    a0, b0 = max(0, int(x1) - 2), max(0, int(y1) - 2)
    a1, b1 = min(w, int(math.ceil(x2)) + 3), min(h, int(math.ceil(y2)) + 3)
    if a1 <= a0 or b1 <= b0:
        return rgb
    roi = dh[b0:b1, a0:a1]
    small = cv2.resize(roi, (max(4, int((a1 - a0) * 0.6)), max(4, int((b1 - b0) * 0.6))), interpolation=cv2.INTER_AREA)
    roi = cv2.resize(small, (a1 - a0, b1 - b0), interpolation=cv2.INTER_LINEAR)
    shift = np.random.default_rng([seed, 0x5F]).uniform(-0.06, 0.06, 3).astype(np.float32)
    roi = np.clip(roi * (1.0 + shift) + 0.01 * math.sin(0.9 * t), 0, 1)
    yy, xx = np.mgrid[b0:b1, a0:a1].astype(np.float32)
    r = np.sqrt(((xx - (x1 + x2) / 2) / (0.46 * (x2 - x1))) ** 2 + ((yy - (y1 + y2) / 2) / (0.48 * (y2 - y1))) ** 2)
    k = np.clip((1 - r) / 0.15, 0, 1)[..., None] * alpha[b0:b1, a0:a1, None]  # (h, w, 1) soft ellipse
    out = rgb.copy()
    out[b0:b1, a0:a1] = out[b0:b1, a0:a1] * (1 - k) + roi * k
    return out


def write_scene(path: str | Path, scene: Scene, crf: int = 20) -> tuple[Path, RenderedScene]:
    """Render `scene` and encode it (h264, the container from the extension) -> (path, rendering)."""
    from fakelens.io.encode import write_video

    r = render_scene(scene)
    return write_video(path, list(r.frames), scene.fps, crf=crf), r


@dataclass(frozen=True)
class PeopleSet:
    """What `write_dfdc_people` wrote: the part folder and, per video name, its people's boxes and
    which of them is fake (None for a real video)."""

    folder: Path
    fake_person: dict[str, int | None] = field(default_factory=dict)
    boxes: dict[str, np.ndarray] = field(default_factory=dict)  # (P, T, 4) per video


def two_people(seed: int, size: tuple[int, int] = (144, 256), duration: float = 2.0, fps: float = 10.0,
               face: float = 46.0) -> Scene:
    """Two people side by side, of different identities and sizes, swaying a little."""
    from fakelens.data.synthetic.sprites import _LFW_IDS

    rng = np.random.default_rng([seed, 0x22])
    a, b = (int(x) for x in rng.choice(_LFW_IDS, 2, replace=False))
    h, w = size
    fa, fb = face * rng.uniform(0.9, 1.15), face * rng.uniform(0.8, 1.05)
    return Scene(size=size, duration=duration, fps=fps, seed=seed, people=(
        Person(a, fa, (0.28 * w, 0.45 * h), flip=bool(rng.random() < 0.5)),
        Person(b, fb, (0.72 * w, 0.5 * h), flip=bool(rng.random() < 0.5))))


def person_leaves(seed: int, size: tuple[int, int] = (216, 384), duration: float = 2.0, fps: float = 10.0,
                  face: float = 64.0, leaves: float = 1.0) -> Scene:
    """One person who walks out of the frame at `leaves` seconds; the background stays."""
    from fakelens.data.synthetic.sprites import _LFW_IDS

    rng = np.random.default_rng([seed, 0x1E])
    h, w = size
    return Scene(size=size, duration=duration, fps=fps, seed=seed, people=(
        Person(int(rng.choice(_LFW_IDS)), face, (0.5 * w, 0.5 * h), (0.62 * w, 0.5 * h), end=leaves),))


def cut_between_people(identities: tuple[int, int], size: tuple[int, int] = (216, 384), duration: float = 2.0,
                       fps: float = 10.0, face: float = 64.0, cut: float = 1.0, seed: int = 0) -> Scene:
    """A cut at `cut` seconds from one person to another at the same spot, of the same size, in the
    same studio (the background is not redrawn: no shot cut to see)."""
    h, w = size
    a, b = identities
    c = (0.5 * w, 0.5 * h)
    return Scene(size=size, duration=duration, fps=fps, seed=seed, cuts=(cut,), background_cut=False, people=(
        Person(a, face, c, end=cut), Person(b, face, c, start=cut)))


def write_dfdc_people(out: str | Path, n_originals: int = 4, seed: int = 0, split: str = "train",
                      part: str = "dfdc_train_part_0", fake_scale: float = 1.0, fake_brightness: float = 1.0,
                      **scene_kw) -> PeopleSet:
    """A DFDC-layout part folder OUT/<part>/ of two-person videos: per original (REAL) one fake
    (FAKE, `original` naming it) whose person k (alternating 0, 1) has another identity's face
    swapped in over the whole video, the other person untouched; metadata.json as DFDC ships it
    and faces.json {video: {"fake_person": k | null, "boxes": per person per frame}}. The person
    who is swapped in the fake is `fake_scale` times as large and `fake_brightness` as bright as
    drawn by `two_people`, in the original too (the DFDC case where the face kept by size or
    detections is the real one: a small, dark fake face beside a large, bright real one)."""
    from fakelens.atomic import atomic_write_text
    from fakelens.data.synthetic.sprites import _LFW_IDS

    folder = Path(out) / part
    folder.mkdir(parents=True, exist_ok=True)
    meta: dict[str, dict] = {}
    truth = PeopleSet(folder)
    sidecar: dict[str, dict] = {}
    for i in range(n_originals):
        scene = two_people(seed * 1000 + i, **scene_kw)
        real = f"real{i:03d}.mp4"
        fake = f"fake{i:03d}.mp4"
        k = i % 2
        used = {p.identity for p in scene.people}
        donor = next(d for d in _LFW_IDS[(7 * i + 3) % len(_LFW_IDS):] + _LFW_IDS if d not in used)
        people = list(scene.people)
        people[k] = replace(people[k], face=people[k].face * fake_scale, brightness=fake_brightness)
        scene = replace(scene, people=tuple(people))
        people[k] = replace(people[k], swap=donor)
        for name, sc, fp in ((real, scene, None), (fake, replace(scene, people=tuple(people)), k)):
            _, r = write_scene(folder / name, sc)
            truth.fake_person[name] = fp
            truth.boxes[name] = r.boxes
            sidecar[name] = {"fake_person": fp, "boxes": np.round(r.boxes, 2).tolist()}
        meta[real] = {"label": "REAL", "split": split, "original": None}
        meta[fake] = {"label": "FAKE", "split": split, "original": real}
    atomic_write_text(folder / "metadata.json", json.dumps(meta, indent=1))
    atomic_write_text(folder / "faces.json", json.dumps(sidecar).replace("NaN", "null"))
    return truth


__all__ = ["Person", "PeopleSet", "RenderedScene", "Scene", "cut_between_people", "person_leaves", "render_scene",
           "two_people", "write_dfdc_people", "write_scene"]
