"""Face detectors by name: `FACE_DETECTORS.get(name)(**options)` builds one.

Every detector has the same interface, `detect(frames) -> list[(K, 5) float32 x1, y1, x2, y2, score]`
in the pixel coordinates of the frames it was given, one array per frame (K = 0 when none).
Frames are uint8 RGB (N, H, W, 3). Callers downscale before detecting and map boxes back
(`extract_faces` does); detectors never resize.

- "mtcnn": facenet-pytorch MTCNN on CPU (weights ship inside the wheel, nothing downloads).
  Defaults keep recall on dark, small faces: facenet's own thresholds (0.6, 0.7, 0.7) found
  the face of a dark 1080p DFDC clip in 24/30 frames where (0.85, 0.95, 0.95) found 2/32
  (see FACTS.md); false positives rarely form long tracks, and the tracker keeps the longest.
- "haar": OpenCV's frontal-face Haar cascade (cv2.data.haarcascades): no torch, frontal only.
- "full_frame": the whole frame as one box: an explicit fallback, never a silent one.
"""

from __future__ import annotations

import math
from contextlib import contextmanager
from typing import Iterator, Protocol, Sequence

import numpy as np

from fakelens.errors import MissingDependencyError
from fakelens.registry import Registry


class FaceDetector(Protocol):
    """What every registered detector provides."""

    name: str

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """(N, H, W, 3) uint8 RGB -> N arrays of shape (K, 5): x1, y1, x2, y2, score."""
        ...


FACE_DETECTORS: Registry[type] = Registry("face detector")

_EMPTY = np.zeros((0, 5), np.float32)


def build_detector(name: str, **options) -> FaceDetector:
    """Build a registered detector by name (unknown names get a suggestion)."""
    return FACE_DETECTORS.get(name)(**options)


def _check_frames(frames: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (N, H, W, 3), got {frames.dtype} {frames.shape}")
    return frames


@FACE_DETECTORS.register("mtcnn")
class MTCNNDetector:
    """facenet-pytorch MTCNN, all faces per frame (keep_all), on CPU."""

    name = "mtcnn"

    def __init__(self, min_face_size: int = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, batch_size: int = 8, device: str = "cpu", threads: int | None = 1):
        try:
            from facenet_pytorch import MTCNN
        except ImportError as e:
            raise MissingDependencyError(
                f"the 'mtcnn' face detector needs facenet-pytorch ({e}); install it with "
                "`pip install --no-deps facenet-pytorch==2.6.0` (plain pip would downgrade torch and numpy)"
            ) from e
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.batch_size = int(batch_size)
        # MTCNN's small convolutions gain little from torch threads and lose much when the cores
        # are busy (2 threads were 3-8x slower than 1 on 2 loaded cores): run with `threads`.
        self.threads = threads
        self._mtcnn = MTCNN(keep_all=True, device=device, min_face_size=self.min_face_size,
                            thresholds=list(self.thresholds), factor=factor, post_process=False,
                            select_largest=False)

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        frames = _check_frames(frames)
        out: list[np.ndarray] = []
        for i in range(0, len(frames), self.batch_size):
            batch = frames[i : i + self.batch_size]  # (B, H, W, 3)
            with _torch_threads(self.threads):
                boxes, probs = self._mtcnn.detect(batch)
            for b, p in zip(boxes, probs):
                if b is None:
                    out.append(_EMPTY.copy())
                    continue
                det = np.concatenate([np.asarray(b, np.float32).reshape(-1, 4),
                                      np.asarray(p, np.float32).reshape(-1, 1)], axis=1)  # (K, 5)
                out.append(det)
        return out


@contextmanager
def _torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with n torch intra-op threads (None: leave as is), then restore."""
    import torch

    old = torch.get_num_threads()
    if n is None or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@FACE_DETECTORS.register("haar")
class HaarDetector:
    """OpenCV Haar cascade for frontal faces; score = sigmoid of the cascade's level weight."""

    name = "haar"

    def __init__(self, cascade: str = "haarcascade_frontalface_default.xml", scale_factor: float = 1.1,
                 min_neighbors: int = 5, min_face_size: int = 20):
        import cv2

        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise MissingDependencyError(
                "the 'haar' face detector needs cv2.CascadeClassifier and the Haar XML files, which "
                "opencv-python-headless 5.x dropped: `pip install 'opencv-python-headless<5'`")
        path = cv2.data.haarcascades + cascade
        self._cascade = cv2.CascadeClassifier(path)
        if self._cascade.empty():
            raise MissingDependencyError(f"{path}: Haar cascade file missing or unreadable")
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_face_size = int(min_face_size)

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        import cv2

        frames = _check_frames(frames)
        out: list[np.ndarray] = []
        for img in frames:
            gray = cv2.equalizeHist(cv2.cvtColor(img, cv2.COLOR_RGB2GRAY))  # (H, W); helps dark faces
            rects, _levels, weights = self._cascade.detectMultiScale3(
                gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                minSize=(self.min_face_size, self.min_face_size), outputRejectLevels=True)
            if len(rects) == 0:
                out.append(_EMPTY.copy())
                continue
            rects = np.asarray(rects, np.float32).reshape(-1, 4)  # (K, 4) x, y, w, h
            w = np.asarray(weights, np.float64).reshape(-1)
            score = (1.0 / (1.0 + np.exp(-w))).astype(np.float32)
            det = np.stack([rects[:, 0], rects[:, 1], rects[:, 0] + rects[:, 2], rects[:, 1] + rects[:, 3],
                            score], axis=1)  # (K, 5)
            out.append(det.astype(np.float32))
        return out


@FACE_DETECTORS.register("full_frame")
class FullFrameDetector:
    """The whole frame as the face: the explicit fallback for faceless content, never a default."""

    name = "full_frame"

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        frames = _check_frames(frames)
        h, w = frames.shape[1:3]
        return [np.array([[0.0, 0.0, w, h, 1.0]], np.float32) for _ in range(len(frames))]


def scale_boxes(dets: list[np.ndarray], scale: float) -> list[np.ndarray]:
    """Map boxes found on a frame downscaled by `scale` (small / full) back to full-resolution pixels."""
    if math.isclose(scale, 1.0):
        return dets
    out = []
    for d in dets:
        d = d.copy()
        d[:, :4] /= scale
        out.append(d)
    return out
