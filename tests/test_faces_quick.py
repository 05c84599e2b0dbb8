"""The quick follow of dense sampling: O-net alone between searches at most FOLLOW_SECONDS apart."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.faces.detectors import build_detector
from fakelens.faces.extract import FaceFinder, find_faces
from fakelens.faces.tracking import box_iou

ASTRONAUT_FACE = np.array([181, 62, 268, 172], np.float32)  # the astronaut's face box (tests/test_faces.py)


@pytest.fixture(scope="module")
def astronaut():
    from skimage.data import astronaut

    return astronaut()  # (512, 512, 3) uint8


@pytest.fixture(scope="module")
def mtcnn():
    return build_detector("mtcnn")


def _moved(box, dx, dy, scale):
    w, h = box[2] - box[0], box[3] - box[1]
    c = np.array([(box[0] + box[2]) / 2 + dx * w, (box[1] + box[3]) / 2 + dy * h])
    half = np.array([w, h]) * scale / 2
    return np.r_[c - half, c + half].astype(np.float32)


def test_mtcnn_follow_keeps_a_face_near_its_box_and_drops_boxes_without_one(astronaut, mtcnn):
    full = mtcnn.detect(astronaut)[0]
    best = full[np.argmax(box_iou(full[:, :4], ASTRONAUT_FACE[None])[:, 0])]
    for dx, dy, scale in ((0, 0, 1), (0.1, -0.08, 1), (-0.05, 0.05, 1.1), (0, 0, 0.9)):
        dets, kept = mtcnn.follow(astronaut, _moved(best[:4], dx, dy, scale)[None])
        assert dets.shape == (1, 5) and dets.dtype == np.float32 and kept.tolist() == [True], (dx, dy, scale)
        assert box_iou(dets[:, :4], best[None, :4])[0, 0] > 0.8
        assert dets[0, 4] == pytest.approx(best[4], abs=0.1)
    # a box on plain background, and the face's box in a blank frame: not kept (for refine)
    dets, kept = mtcnn.follow(astronaut, np.array([[400, 420, 480, 500]], np.float32))
    assert kept.tolist() == [False]
    _, kept = mtcnn.follow(np.full_like(astronaut, 90), best[None, :4])
    assert kept.tolist() == [False]
    dets, kept = mtcnn.follow(astronaut, np.zeros((0, 4), np.float32))
    assert dets.shape == (0, 5) and kept.shape == (0,)


class _Quick:
    """detect finds `face`; follow keeps the boxes `keep[frame]` says; refine finds the boxes given."""

    name = "quick"

    def __init__(self, face, keep):
        self.face, self.keep = face, keep
        self.frame = -1
        self.calls: list[tuple[str, int, int]] = []  # (method, frame, boxes given)

    def detect(self, frames):
        self.calls.append(("detect", self.frame, 0))
        return [self.face.copy()]

    def follow(self, frame, boxes):
        self.calls.append(("follow", self.frame, len(boxes)))
        kept = np.array(self.keep[self.frame][:len(boxes)], bool)
        dets = np.concatenate([np.asarray(boxes, np.float32)[:, :4], np.full((len(boxes), 1), 0.95, np.float32)], 1)
        return dets, kept

    def refine(self, frame, boxes):
        self.calls.append(("refine", self.frame, len(boxes)))
        b = np.asarray(boxes, np.float32)[:, :4]
        return np.concatenate([b, np.full((len(b), 1), 0.9, np.float32)], 1)


def test_face_finder_quick_follow_refines_only_the_faces_it_drops():
    face = np.array([[1, 1, 5, 5, 0.9], [20, 20, 28, 28, 0.8]], np.float32)  # two people
    det = _Quick(face, {i: [True, True] for i in range(8)} | {3: [True, False]})
    finder = FaceFinder(det, detect_every=4, quick=True)
    for i in range(8):
        det.frame = i
        out = finder(np.zeros((32, 32, 3), np.uint8))
        assert len(out) == 2, (i, out)
    assert [f for c, f, _ in det.calls if c == "detect"] == [0, 4]
    assert [f for c, f, _ in det.calls if c == "follow"] == list(range(1, 8))
    assert [(f, k) for c, f, k in det.calls if c == "refine"] == [(3, 1)]  # only the dropped face
    assert finder.n_quick == 6 and finder.n_refined == 7
    # without quick (sparse samples) refine follows every face, as before
    det = _Quick(face, {})
    finder = FaceFinder(det, detect_every=4)
    for i in range(3):
        det.frame = i
        finder(np.zeros((32, 32, 3), np.uint8))
    assert [c for c, _, _ in det.calls] == ["detect", "refine", "refine"] and finder.n_quick == 0


def _sliding_face_video(path, astronaut, n, fps):
    """A 320x240 video of the astronaut's face sliding right 2 px a frame."""
    from fakelens.io.encode import write_video

    face = astronaut[40:200, 160:290]
    frames = []
    for i in range(n):
        f = np.full((240, 320, 3), 30, np.uint8)
        f[40:200, 20 + 2 * i : 150 + 2 * i] = face
        frames.append(f)
    return write_video(path, frames, fps)


def test_dense_sampling_follows_quickly_with_the_boxes_of_refine(tmp_path, astronaut, mtcnn, monkeypatch):
    import fakelens.faces.extract as extract

    path = _sliding_face_video(tmp_path / "dense.mp4", astronaut, 40, 25.0)
    calls = []
    real = type(mtcnn).follow

    kept = []

    def counted(self, frame, boxes):
        calls.append(len(boxes))
        out = real(self, frame, boxes)
        kept.append(int(out[1].sum()))
        return out

    monkeypatch.setattr(type(mtcnn), "follow", counted)
    quick = find_faces(path, every=1, find_every=4, detector=mtcnn, size=32)  # searches 0.16 s apart
    n_quick = len(calls)
    assert n_quick >= 8  # 10 searches, the keyframes' ones followed too
    assert sum(kept) >= n_quick - 1  # the quick follow's boxes are the ones used, not refine's after it
    calls.clear()
    sparse = find_faces(path, every=1, find_every=6, detector=mtcnn, size=32)  # 0.24 s apart: refine only
    assert calls == []
    find_faces(path, n_frames=8, detector=mtcnn, size=32)  # sampled frames: refine only
    assert calls == []
    monkeypatch.setattr(extract, "FOLLOW_SECONDS", 0.0)
    slow = find_faces(path, every=1, find_every=4, detector=mtcnn, size=32)
    assert calls == [] and quick.found.all() and slow.found.all() and sparse.found.all()
    ious = np.diag(box_iou(quick.boxes[0], slow.boxes[0]))  # (T,) frame by frame
    assert ious.min() > 0.85, ious.round(3)


def test_quick_follow_whose_boxes_collapse_onto_one_face_searches_the_frame_again():
    """Two followed faces whose O-net boxes land on the same face (people crossing): NMS leaves
    one, the other counts as lost, and the frame gets a full detection that finds both again."""
    face = np.array([[1, 1, 9, 9, 0.9], [20, 20, 28, 28, 0.8]], np.float32)

    class Collapse(_Quick):
        def follow(self, frame, boxes):
            self.calls.append(("follow", self.frame, len(boxes)))
            dets = np.repeat(np.array([[1, 1, 9, 9, 0.95]], np.float32), len(boxes), 0)  # both on face 0
            return dets, np.ones(len(boxes), bool)

    det = Collapse(face, {})
    finder = FaceFinder(det, detect_every=100, quick=True)
    det.frame = 0
    assert len(finder(np.zeros((32, 32, 3), np.uint8))) == 2
    det.frame = 1
    out = finder(np.zeros((32, 32, 3), np.uint8))
    assert [(c, f) for c, f, _ in det.calls] == [("detect", 0), ("follow", 1), ("detect", 1)]
    assert len(out) == 2 and box_iou(out[:, :4], face[:, :4]).max(axis=0).min() > 0.99
