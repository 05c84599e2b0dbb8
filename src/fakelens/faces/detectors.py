"""Face detectors by name: `FACE_DETECTORS.get(name)(**options)` builds one.

Every detector has the same interface, `detect(frames) -> list[(K, 5) float32 x1, y1, x2, y2, score]`
in the pixel coordinates of the frames it was given, one array per frame (K = 0 when none).
Frames are uint8 RGB (N, H, W, 3). Callers downscale before detecting and map boxes back
(`extract_faces` does); detectors never resize. `refine(frame, boxes)` re-detects faces only
near given boxes (the faces of the previous sampled frame): far cheaper than `detect`, it is how
`extract_faces` follows faces between full-frame detections.

- "mtcnn": facenet-pytorch MTCNN on CPU (weights ship inside the wheel, nothing downloads).
  Defaults keep recall on dark, small faces: facenet's own thresholds (0.6, 0.7, 0.7) found
  the face of a dark 1080p DFDC clip in 24/30 frames where (0.85, 0.95, 0.95) found 2/32
  (see FACTS.md); false positives rarely form long tracks, and the tracker keeps the longest.
  Driven by fakelens.faces.mtcnn (facenet's nets, OpenCV resizes, channels-last: ~2x faster
  than facenet's own `detect`); its `refine` skips the P-net image pyramid and runs R-net and
  O-net on candidates around each given box: ~2.5 ms per frame instead of 30-40 ms for a 640-px
  `detect`.
- "haar": OpenCV's frontal-face Haar cascade (cv2.data.haarcascades): no torch, frontal only.
- "full_frame": the whole frame as one box: an explicit fallback, never a silent one.
"""

from __future__ import annotations

import math
from typing import Protocol, Sequence

import numpy as np

from fakelens.errors import MissingDependencyError
from fakelens.registry import Registry
from fakelens.workers import torch_threads


class FaceDetector(Protocol):
    """What every registered detector provides."""

    name: str

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        """(N, H, W, 3) uint8 RGB -> N arrays of shape (K, 5): x1, y1, x2, y2, score."""
        ...

    def refine(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Faces near `boxes` (K, 4+) in one (H, W, 3) frame -> (K', 5), K' <= K: each box's face
        if it is still there (moved a fraction of its size at most), none where it is gone."""
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
    """MTCNN (facenet-pytorch's nets and weights, fakelens.faces.mtcnn), all faces per frame; on CPU by
    default (`device="cuda"` moves the nets; decoding and resizes stay on the CPU)."""

    name = "mtcnn"

    def __init__(self, min_face_size: int = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, threads: int | None = 1, device: str = "cpu"):
        try:
            import facenet_pytorch.models.mtcnn  # noqa: F401  (the nets and their weights)
        except ImportError as e:
            raise MissingDependencyError(
                f"the 'mtcnn' face detector needs facenet-pytorch ({e}); install it with "
                "`pip install --no-deps facenet-pytorch==2.6.0` (plain pip would downgrade torch and numpy)"
            ) from e
        from fakelens.faces.mtcnn import MTCNNCascade

        self.cascade = MTCNNCascade(min_face_size=min_face_size, thresholds=thresholds, factor=factor, device=device)
        self.min_face_size = self.cascade.min_face_size
        self.thresholds = self.cascade.thresholds
        # MTCNN's small convolutions gain little from torch threads and lose much when the cores
        # are busy (2 threads were 3-8x slower than 1 on 2 loaded cores): run with `threads`.
        self.threads = threads

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        import torch

        frames = _check_frames(frames)
        with torch_threads(self.threads), torch.no_grad():
            return [self.cascade.detect(f) for f in frames]

    def refine(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """MTCNN's R-net and O-net on candidates around each box (`MTCNNCascade.refine`)."""
        import torch

        frame = _check_frames(frame)[0]  # (H, W, 3)
        with torch_threads(self.threads), torch.no_grad():
            return nms(self.cascade.refine(frame, _as_boxes(boxes)), 0.5)


def _as_boxes(boxes) -> np.ndarray:
    """(K, 4+) boxes or detections -> (K, 4) float64 x1, y1, x2, y2."""
    b = np.asarray(boxes, np.float64)
    return np.zeros((0, 4)) if b.size == 0 else b.reshape(len(b), -1)[:, :4]


def nms(det: np.ndarray, iou: float) -> np.ndarray:
    """(K, 5) detections -> those not overlapping a higher-scored one by more than `iou`."""
    from fakelens.faces.tracking import box_iou

    order = np.argsort(-det[:, 4])
    keep: list[int] = []
    for i in order:
        if not keep or box_iou(det[i : i + 1, :4], det[keep, :4]).max() <= iou:
            keep.append(int(i))
    return det[keep]


def refine_in_regions(detector, frame: np.ndarray, boxes: np.ndarray, context: float = 2.0,
                      min_iou: float = 0.2) -> np.ndarray:
    """A `refine` for any detector: `detect` inside a square of `context` x each box's side around
    it, keeping per box the face that overlaps it most (IoU >= `min_iou`: a neighbouring face
    is not this one) -> (K', 5) in frame pixels."""
    from fakelens.faces.tracking import box_iou

    frame = _check_frames(frame)[0]  # (H, W, 3)
    h, w = frame.shape[:2]
    out = []
    for b in _as_boxes(boxes):
        cx, cy = (b[0] + b[2]) / 2, (b[1] + b[3]) / 2
        half = max(b[2] - b[0], b[3] - b[1], 1.0) * context / 2
        x0, y0 = max(int(cx - half), 0), max(int(cy - half), 0)
        x1, y1 = min(int(np.ceil(cx + half)), w), min(int(np.ceil(cy + half)), h)
        if x1 - x0 < 2 or y1 - y0 < 2:
            continue
        d = detector.detect(np.ascontiguousarray(frame[y0:y1, x0:x1]))[0].copy()  # (K, 5) region pixels
        if len(d):
            d[:, [0, 2]] += x0
            d[:, [1, 3]] += y0
            iou = box_iou(b[None], d[:, :4])[0]  # (K,)
            if iou.max() >= min_iou:
                out.append(d[np.argmax(iou)])
    return nms(np.stack(out).astype(np.float32), 0.5) if out else _EMPTY.copy()


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

    def refine(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        return refine_in_regions(self, frame, boxes)


@FACE_DETECTORS.register("full_frame")
class FullFrameDetector:
    """The whole frame as the face: the explicit fallback for faceless content, never a default."""

    name = "full_frame"

    def detect(self, frames: np.ndarray) -> list[np.ndarray]:
        frames = _check_frames(frames)
        h, w = frames.shape[1:3]
        return [np.array([[0.0, 0.0, w, h, 1.0]], np.float32) for _ in range(len(frames))]

    def refine(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        return self.detect(frame)[0] if len(boxes) else _EMPTY.copy()


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
