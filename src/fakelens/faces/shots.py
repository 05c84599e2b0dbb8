"""Shot cuts between consecutive sampled frames, so that face tracks never cross one.

A histogram test on the small copies the face detector sees: each frame's hue-saturation
histogram (16 x 8 bins, HSV) is compared with the previous searched frame's by the Bhattacharyya
distance (0 = same colours, 1 = disjoint); above `threshold` a new shot begins. Within a shot
(a talking head, camera still or panning slowly) successive samples 0.3 s apart stay far below
it; a cut to another scene or another person's close-up changes most of the frame's colours.
(PySceneDetect's detectors do the same on consecutive frames of a file it decodes itself; the
face stage already holds the sampled frames, so they are compared here without a second decode.)
"""

from __future__ import annotations

import numpy as np

# Bhattacharyya distance between the HS histograms of two frames above which they are two shots.
CUT_THRESHOLD = 0.5
_BINS = (16, 8)


def frame_histogram(frame: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (16, 8) float32 hue-saturation histogram summing to 1."""
    import cv2

    hsv = cv2.cvtColor(frame, cv2.COLOR_RGB2HSV)  # (H, W, 3)
    hist = cv2.calcHist([hsv], [0, 1], None, list(_BINS), [0, 180, 0, 256])  # (16, 8)
    return (hist / max(float(hist.sum()), 1.0)).astype(np.float32)


def histogram_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two normalised histograms, in [0, 1]."""
    bc = float(np.sum(np.sqrt(np.asarray(a, np.float64) * np.asarray(b, np.float64))))
    return float(np.sqrt(max(0.0, 1.0 - min(bc, 1.0))))


class ShotCuts:
    """Give it the sampled frames in time order (None for a frame not looked at); `shots` is each
    frame's shot number (0, 1, ...), `distances` the histogram distance to the previous frame looked at."""

    def __init__(self, threshold: float = CUT_THRESHOLD):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"shot-cut threshold must be in (0, 1], got {threshold}")
        self.threshold = float(threshold)
        self.shots: list[int] = []
        self.distances: list[float] = []
        self._prev: np.ndarray | None = None

    def __call__(self, frame: np.ndarray | None) -> int:
        """The shot of this frame."""
        shot = self.shots[-1] if self.shots else 0
        d = 0.0
        if frame is not None:
            hist = frame_histogram(frame)
            if self._prev is not None:
                d = histogram_distance(self._prev, hist)
                if d > self.threshold:
                    shot += 1
            self._prev = hist
        self.shots.append(shot)
        self.distances.append(d)
        return shot
