"""MTCNN (Zhang et al. 2016) with facenet-pytorch's P-, R- and O-nets and the weights in its wheel,
driven for CPU speed: the cascade of facenet's `detect_face` (same scale pyramid, thresholds,
box regression, squaring, integer crops and NMS), but the pyramid and the candidate crops are
resized with OpenCV and the nets run channels-last. Measured on 640x360 frames, 1 thread: 30-35 ms
per frame against 70-80 ms for facenet's `MTCNN.detect` (whose max-pooling runs in the slow
channels-first path and which resamples each candidate with a separate torch call); boxes agree
with it to IoU > 0.95 (tests/test_faces.py).

`refine` follows known faces: candidates around each given box skip the P-net pyramid (most of
the cost) and go straight to R-net and O-net: ~2.5 ms per frame.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

# Candidates per box for `refine`: (dx, dy) in box sides and a scale. Between samples 0.3 s
# apart a talking head moves well under a quarter of its size; the R-net and O-net regression
# corrects what the grid misses.
REFINE_CANDIDATES = np.array(
    [(0.0, 0.0, 1.0)]
    + [(dx, dy, 1.0) for dx in (-0.25, 0.0, 0.25) for dy in (-0.25, 0.0, 0.25) if dx or dy]
    + [(0.0, 0.0, 0.8), (0.0, 0.0, 1.25)], np.float64)  # (C, 3)

_EMPTY = np.zeros((0, 5), np.float32)


class MTCNNCascade:
    """The three MTCNN nets with their shipped weights; `detect` and `refine` on one RGB frame."""

    def __init__(self, min_face_size: int = 20, thresholds: Sequence[float] = (0.6, 0.7, 0.7),
                 factor: float = 0.709, device: str = "cpu"):
        import torch
        from facenet_pytorch.models.mtcnn import ONet, PNet, RNet

        self.device = torch.device(device)
        self.min_face_size = int(min_face_size)
        self.thresholds = tuple(float(t) for t in thresholds)
        self.factor = float(factor)
        self.nets = []
        for cls in (PNet, RNet, ONet):
            net = cls().eval()
            for p in net.parameters():
                p.requires_grad_(False)
            self.nets.append(net.to(self.device, memory_format=torch.channels_last))
        self.pnet, self.rnet, self.onet = self.nets

    def scales(self, h: int, w: int) -> list[float]:
        """The image pyramid: from 12 / min_face_size down by `factor` while the short side >= 12 px."""
        m = 12.0 / self.min_face_size
        minl = min(h, w) * m
        out = []
        scale = m
        while minl >= 12:
            out.append(scale)
            scale *= self.factor
            minl *= self.factor
        return out

    def detect(self, frame: np.ndarray) -> np.ndarray:
        """(H, W, 3) uint8 RGB -> (K, 5) float32 x1, y1, x2, y2, score, best first."""
        import cv2
        import torch
        from torchvision.ops import nms

        h, w = frame.shape[:2]
        im = frame.astype(np.float32)  # (H, W, 3) 0-255
        found = []
        for scale in self.scales(h, w):
            hs, ws = int(h * scale + 1), int(w * scale + 1)
            # each level area-resized from the previous one: 4-5x fewer pixels read than from the frame
            im = cv2.resize(im, (ws, hs), interpolation=cv2.INTER_AREA)  # (hs, ws, 3)
            x = torch.from_numpy((im - 127.5) * 0.0078125).permute(2, 0, 1)[None]  # (1, 3, hs, ws) channels-last
            reg, prob = self.pnet(x.to(self.device))  # (1, 4, h', w'), (1, 2, h', w')
            reg, prob = reg[0].cpu().numpy(), prob[0, 1].cpu().numpy()  # (4, h', w'), (h', w')
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if len(ys) == 0:
                continue
            cells = np.stack([xs, ys], axis=1).astype(np.float64)  # (K, 2) x, y of the 12-px windows
            boxes = np.concatenate([np.floor((2 * cells + 1) / scale), np.floor((2 * cells + 12) / scale),
                                    prob[ys, xs, None], reg[:, ys, xs].T],
                                   axis=1)  # (K, 9) x1 y1 x2 y2 score, 4 regression offsets
            keep = nms(torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4]), 0.5).numpy()
            found.append(boxes[keep])
        if not found:
            return _EMPTY.copy()
        boxes = np.concatenate(found)
        boxes = boxes[nms(torch.from_numpy(boxes[:, :4]), torch.from_numpy(boxes[:, 4]), 0.7).numpy()]
        wh = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)  # (K, 4)
        cand = _squares(boxes[:, :4] + boxes[:, 5:9] * wh)  # (K, 4)
        # R-net: score, NMS, regression, square
        score, reg = self._stage(self.rnet, frame, cand, 24)
        ok = score > self.thresholds[1]
        cand, score, reg = cand[ok], score[ok], reg[ok]
        if len(cand) == 0:
            return _EMPTY.copy()
        keep = nms(torch.from_numpy(cand), torch.from_numpy(score), 0.7).numpy()
        cand = _squares(_regress(cand[keep], reg[keep]))
        # O-net: score, regression, NMS by the smaller box's area
        score, reg = self._stage(self.onet, frame, cand, 48)
        ok = score > self.thresholds[2]
        if not ok.any():
            return _EMPTY.copy()
        det = np.concatenate([_regress(cand[ok], reg[ok]), score[ok, None]], axis=1)  # (K, 5)
        return det[_nms_min(det, 0.7)].astype(np.float32)

    def refine(self, frame: np.ndarray, boxes: np.ndarray) -> np.ndarray:
        """Faces near (K, 4) `boxes` in an (H, W, 3) uint8 frame -> (K', 5), K' <= K.

        R-net scores REFINE_CANDIDATES shifted and scaled squares per box and regresses the best
        one; O-net then scores and regresses it twice (the second pass settles the box).
        """
        boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
        if len(boxes) == 0:
            return _EMPTY.copy()
        sq = _squares(boxes)  # (K, 4)
        centre, side = (sq[:, :2] + sq[:, 2:]) / 2, sq[:, 2:3] - sq[:, 0:1]  # (K, 2), (K, 1)
        c = centre[:, None] + REFINE_CANDIDATES[None, :, :2] * side[:, None]  # (K, C, 2)
        s = side[:, None] * REFINE_CANDIDATES[None, :, 2:]  # (K, C, 1)
        cand = np.concatenate([c - s / 2, c + s / 2], axis=-1).reshape(-1, 4)  # (K * C, 4)
        score, reg = self._stage(self.rnet, frame, cand, 24)
        score = score.reshape(len(boxes), -1)  # (K, C)
        best = score.argmax(axis=1)  # (K,)
        rows = np.arange(len(boxes)) * score.shape[1] + best
        ok = score[np.arange(len(boxes)), best] > self.thresholds[1]
        cur = _regress(cand[rows[ok]], reg[rows[ok]])  # (K', 4)
        for _ in range(2):
            if len(cur) == 0:
                return _EMPTY.copy()
            sq = _squares(cur)
            score, reg = self._stage(self.onet, frame, sq, 48)
            keep = score > self.thresholds[2]
            cur, score = _regress(sq[keep], reg[keep]), score[keep]
        if len(cur) == 0:
            return _EMPTY.copy()
        det = np.concatenate([cur, score[:, None]], axis=1)  # (K', 5)
        return det[_nms_min(det, 0.7)].astype(np.float32)

    def _stage(self, net, frame: np.ndarray, boxes: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
        """Score (K,) and regression offsets (K, 4) of (K, 4) boxes by R-net (size 24) or O-net
        (48), on crops taken as facenet takes them: the integer box clipped to the frame, resized."""
        import cv2
        import torch

        h, w = frame.shape[:2]
        crops = np.zeros((len(boxes), size, size, 3), np.uint8)  # (K, size, size, 3)
        valid = np.zeros(len(boxes), bool)
        for k, b in enumerate(np.trunc(boxes).astype(np.int64)):
            x, y, ex, ey = max(int(b[0]), 1), max(int(b[1]), 1), min(int(b[2]), w), min(int(b[3]), h)
            if ex > x - 1 and ey > y - 1:
                crops[k] = cv2.resize(frame[y - 1 : ey, x - 1 : ex], (size, size), interpolation=cv2.INTER_AREA)
                valid[k] = True
        x = torch.from_numpy((crops.astype(np.float32) - 127.5) * 0.0078125).permute(0, 3, 1, 2)  # (K, 3, s, s)
        out = net(x.to(self.device))
        score = np.where(valid, out[-1][:, 1].cpu().numpy().astype(np.float64), 0.0)  # (K,) face probability
        return score, out[0].cpu().numpy().astype(np.float64)  # (K,), (K, 4)


def _regress(boxes: np.ndarray, reg: np.ndarray) -> np.ndarray:
    """MTCNN's box regression: offsets in units of the box's (inclusive-pixel) width and height."""
    wh = np.stack([boxes[:, 2] - boxes[:, 0] + 1, boxes[:, 3] - boxes[:, 1] + 1] * 2, axis=1)  # (K, 4)
    return boxes[:, :4] + reg * wh


def _squares(boxes: np.ndarray) -> np.ndarray:
    """(K, 4) boxes -> squares of side max(w, h) on the same centres (MTCNN's `rerec`)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    x1 = boxes[:, 0] + w * 0.5 - side * 0.5
    y1 = boxes[:, 1] + h * 0.5 - side * 0.5
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def _nms_min(det: np.ndarray, threshold: float) -> np.ndarray:
    """Indices kept by MTCNN's final NMS: overlap over the smaller box's (inclusive-pixel) area."""
    x1, y1, x2, y2 = det[:, 0], det[:, 1], det[:, 2], det[:, 3]
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(det[:, 4])
    keep = []
    while len(order):
        i = order[-1]
        keep.append(i)
        rest = order[:-1]
        iw = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        ih = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        overlap = iw * ih / np.minimum(area[i], area[rest])
        order = rest[overlap <= threshold]
    return np.asarray(keep, np.int64)
