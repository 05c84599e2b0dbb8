"""Face detectors (every registered one), square crops, and extract_faces on a composited face video."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.faces.detectors import FACE_DETECTORS, build_detector
from fakelens.faces.extract import FaceFinder, crop_square, extract_faces
from fakelens.faces.tracking import box_iou

# MTCNN box of the astronaut's face (FACTS.md): x 181-268, y 62-172.
ASTRONAUT_FACE = np.array([181, 62, 268, 172], np.float32)


@pytest.fixture(scope="module")
def astronaut():
    from skimage.data import astronaut

    return astronaut()  # (512, 512, 3) uint8


@pytest.fixture(scope="module")
def detectors():
    return {}


def _detector(cache, name):
    if name not in cache:
        cache[name] = build_detector(name)
    return cache[name]


@pytest.mark.parametrize("name", FACE_DETECTORS.names())
def test_detector_finds_real_face_and_nothing_on_blank(name, astronaut, detectors):
    det = _detector(detectors, name)
    blank = np.full_like(astronaut, 90)
    out = det.detect(np.stack([astronaut, blank]))
    assert len(out) == 2 and all(o.dtype == np.float32 and o.shape[1] == 5 for o in out)
    if name == "full_frame":
        assert out[0].tolist() == [[0, 0, 512, 512, 1.0]] == out[1].tolist()
        return
    assert len(out[0]) >= 1
    best = out[0][np.argmax(box_iou(out[0][:, :4], ASTRONAUT_FACE[None])[:, 0])]
    assert box_iou(best[None, :4], ASTRONAUT_FACE[None])[0, 0] > 0.6
    assert 0 < best[4] <= 1
    assert len(out[1]) == 0


def test_unknown_detector_suggests():
    with pytest.raises(KeyError, match="mtcnn"):
        build_detector("mtcn")


def test_missing_facenet_names_install_command(monkeypatch):
    import sys

    from fakelens.errors import MissingDependencyError

    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # import fails
    with pytest.raises(MissingDependencyError, match="pip install --no-deps facenet-pytorch==2.6.0"):
        build_detector("mtcnn")


def test_crop_square_margin_and_padding():
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[40:60, 90:110] = 255  # 20x20 white square centred at (100, 50)
    crop = crop_square(frame, [90, 40, 110, 60], margin=2.0, size=40)  # 40x40 region -> 40x40
    assert crop.shape == (40, 40, 3)
    assert crop[10:30, 10:30].min() == 255 and crop[:8].max() == 0
    edge = crop_square(frame, [0, 0, 20, 20], margin=2.0, size=40)  # half outside: zero padding
    assert edge.shape == (40, 40, 3) and edge[:10].max() == 0


def _face_frames(astronaut, n=12, faceless=False) -> list[np.ndarray]:
    """Frames (240, 320, 3) of the astronaut's face sliding right 8 px per frame."""
    face = astronaut[40:200, 160:290]  # (160, 130, 3) around the face
    frames = []
    for i in range(n):
        f = np.full((240, 320, 3), 30, np.uint8)
        if not faceless:
            f[40:200, 20 + 8 * i : 150 + 8 * i] = face
        frames.append(f)
    return frames


def _face_video(make_path, astronaut, n=12, faceless=False):
    """A 320x240 h264 video of the astronaut's face sliding right (face box known per frame)."""
    from fakelens.io.encode import write_video

    boxes = [ASTRONAUT_FACE - np.array([140 - 8 * i, 0, 140 - 8 * i, 0], np.float32) for i in range(n)]
    return write_video(make_path, _face_frames(astronaut, n, faceless), 10.0), np.stack(boxes)


@pytest.mark.parametrize("detect_every", [1, 3, 8])
def test_extract_faces_tracks_the_face(tmp_path, astronaut, detectors, detect_every):
    path, truth = _face_video(tmp_path / "face.mp4", astronaut)
    clip = extract_faces(path, n_frames=6, detector=_detector(detectors, "mtcnn"), size=64,
                         detect_max_side=160, detect_every=detect_every)
    assert clip.status == "ok" and clip.fallback is None
    assert clip.faces.shape == (1, 6, 64, 64, 3) and clip.faces.dtype == np.uint8
    assert clip.boxes.shape == (1, 6, 4) and clip.found.all()
    # full detections on sampled frames 0, k, 2k, ...; the face is followed by refine on the others
    assert clip.n_detect_runs == len(range(0, 6, detect_every)) and clip.n_refined == 5
    assert clip.n_detected == 6
    ious = [box_iou(clip.boxes[0, t][None], truth[clip.indices[t]][None])[0, 0] for t in range(6)]
    assert min(ious) > 0.5, ious
    np.testing.assert_allclose(clip.times, clip.indices / 10.0)
    assert clip.main.shape == (6, 64, 64, 3)


def test_faceless_video_is_reported_with_optional_fallback(tmp_path, astronaut, detectors):
    path, _ = _face_video(tmp_path / "empty.mp4", astronaut, faceless=True)
    det = _detector(detectors, "mtcnn")
    clip = extract_faces(path, n_frames=4, detector=det, size=32)
    assert clip.status == "no_face" and clip.faces.shape == (0, 4, 32, 32, 3) and clip.fallback is None
    with pytest.raises(ValueError, match="no face"):
        clip.main
    fb = extract_faces(path, n_frames=4, detector=det, size=32, fallback="full_frame")
    assert fb.status == "no_face" and fb.fallback == "full_frame"
    assert fb.faces.shape == (1, 4, 32, 32, 3) and not fb.found.any()
    assert fb.boxes[0, 0].tolist() == [0, 0, 320, 240]
    # letterboxed: 320x240 in a 320x320 square -> top and bottom eighths are padding
    assert fb.faces[0, 0, :3].max() == 0 and fb.faces[0, 0, 16].min() == 30


def test_second_decoding_pass_equals_kept_frames(tmp_path, astronaut):
    path, _ = _face_video(tmp_path / "face.mkv", astronaut, n=8)
    det = build_detector("haar")
    one = extract_faces(path, n_frames=8, detector=det, size=48, detect_max_side=None)
    two = extract_faces(path, n_frames=8, detector=det, size=48, detect_max_side=None,
                        max_frames_bytes=2 * 3 * 320 * 240 * 3)  # 8 frames do not fit: crops decode again
    assert one.status == two.status == "ok"
    np.testing.assert_array_equal(one.faces, two.faces)
    np.testing.assert_array_equal(one.boxes, two.boxes)


def test_streaming_every_k_equals_reading_those_frames(tmp_path, astronaut, detectors):
    path, truth = _face_video(tmp_path / "face.mkv", astronaut, n=12)
    det = _detector(detectors, "mtcnn")
    streamed = extract_faces(path, every=3, detector=det, size=48, detect_max_side=None, detect_every=2)
    read = extract_faces(path, np.arange(0, 12, 3) / 10.0, detector=det, size=48, detect_max_side=None,
                         detect_every=2)
    assert streamed.status == read.status == "ok" and streamed.n_detect_runs == read.n_detect_runs == 2
    np.testing.assert_array_equal(streamed.indices, [0, 3, 6, 9])
    np.testing.assert_allclose(streamed.times, read.times)
    np.testing.assert_allclose(streamed.boxes, read.boxes, atol=1e-3)
    np.testing.assert_array_equal(streamed.faces, read.faces)
    small = extract_faces(path, every=3, detector=det, size=48, detect_max_side=160)  # libswscale downscale
    ious = [box_iou(small.boxes[0, t][None], truth[i][None])[0, 0] for t, i in enumerate(small.indices)]
    assert min(ious) > 0.5, ious


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotated_phone_video_gives_upright_faces_in_display_coordinates(tmp_path, astronaut, detectors, rotation):
    """A phone video stores sideways frames plus a display rotation: boxes and crops come out as displayed."""
    from fakelens.io.encode import write_video

    path, truth = _face_video(tmp_path / "upright.mp4", astronaut)
    k = rotation // 90  # np.rot90 turns counter-clockwise: store the frames turned back
    stored = [np.ascontiguousarray(np.rot90(f, k)) for f in _face_frames(astronaut)]
    rotated = write_video(tmp_path / "phone.mp4", stored, 10.0, rotation=rotation)
    det = _detector(detectors, "mtcnn")
    up = extract_faces(path, n_frames=6, detector=det, size=48, detect_max_side=None)
    ph = extract_faces(rotated, n_frames=6, detector=det, size=48, detect_max_side=None)
    assert (ph.width, ph.height) == (320, 240) and ph.status == "ok"
    ious = [box_iou(ph.boxes[0, t][None], truth[i][None])[0, 0] for t, i in enumerate(ph.indices)]
    assert min(ious) > 0.5, ious
    diff = np.abs(ph.faces.astype(int) - up.faces.astype(int)).mean()
    assert diff < 12, diff  # the same upright crops, up to compression


def test_repeated_and_unsorted_times_keep_their_order(tmp_path, astronaut, detectors):
    path, truth = _face_video(tmp_path / "face.mp4", astronaut)
    times = np.array([0.8, 0.1, 0.8, 0.0, 0.45])
    clip = extract_faces(path, times, detector=_detector(detectors, "mtcnn"), size=32, detect_max_side=None)
    np.testing.assert_array_equal(clip.indices, [8, 1, 8, 0, 4])
    np.testing.assert_array_equal(clip.faces[0, 0], clip.faces[0, 2])
    ious = [box_iou(clip.boxes[0, t][None], truth[i][None])[0, 0] for t, i in enumerate(clip.indices)]
    assert min(ious) > 0.5, ious
    two = extract_faces(path, times, detector=_detector(detectors, "mtcnn"), size=32, detect_max_side=None,
                        max_frames_bytes=1)  # crops from a second decoding pass
    np.testing.assert_array_equal(two.faces, clip.faces)


# ------------------------------------------------------------------------------- refine, FaceFinder


def _moved(box: np.ndarray, dx: float, dy: float, scale: float) -> np.ndarray:
    """`box` shifted by (dx, dy) of its size and scaled about its centre."""
    w, h = box[2] - box[0], box[3] - box[1]
    c = np.array([(box[0] + box[2]) / 2 + dx * w, (box[1] + box[3]) / 2 + dy * h])
    half = np.array([w, h]) * scale / 2
    return np.r_[c - half, c + half].astype(np.float32)


@pytest.mark.parametrize("name", FACE_DETECTORS.names())
def test_refine_finds_the_face_near_a_moved_box_and_nothing_where_none_is(name, astronaut, detectors):
    det = _detector(detectors, name)
    blank = np.full_like(astronaut, 90)
    assert det.refine(astronaut, np.zeros((0, 4), np.float32)).shape == (0, 5)
    for dx, dy, scale in ((0, 0, 1), (0.2, -0.15, 1), (-0.1, 0.1, 1.2), (0, 0, 0.85)):
        prev = _moved(ASTRONAUT_FACE, dx, dy, scale)[None]  # (1, 4): last frame's face, a bit off
        out = det.refine(astronaut, prev)
        assert out.dtype == np.float32 and out.ndim == 2 and out.shape[1] == 5
        if name == "full_frame":
            assert out.tolist() == [[0, 0, 512, 512, 1.0]]
            continue
        assert len(out) == 1, (dx, dy, scale, out)
        assert box_iou(out[:, :4], ASTRONAUT_FACE[None])[0, 0] > (0.75 if name == "mtcnn" else 0.6)
        assert 0 < out[0, 4] <= 1
    if name != "full_frame":
        assert len(det.refine(blank, ASTRONAUT_FACE[None])) == 0
        # two boxes on the same face give one face
        two = np.stack([_moved(ASTRONAUT_FACE, 0.1, 0, 1), _moved(ASTRONAUT_FACE, -0.1, 0, 1)])
        assert len(det.refine(astronaut, two)) == 1


def test_mtcnn_matches_facenets_own_detect(astronaut, detectors):
    """fakelens drives facenet's nets itself (faster): same faces, boxes and scores as facenet's MTCNN."""
    from facenet_pytorch import MTCNN

    ref = MTCNN(keep_all=True, min_face_size=20, thresholds=[0.6, 0.7, 0.7], factor=0.709, post_process=False)
    ours = _detector(detectors, "mtcnn")
    small = np.ascontiguousarray(astronaut[::2, ::2])  # (256, 256, 3): a 45x55 px face
    group = np.zeros((300, 560, 3), np.uint8)
    group[20:276, 10:266] = small
    group[40:296, 290:546] = small[:, ::-1]  # two faces
    for img in (astronaut, small, group):
        boxes, probs = ref.detect(img[None])
        got = ours.detect(img)[0]
        assert len(got) == len(boxes[0]), (len(got), boxes[0])
        iou = box_iou(got[:, :4], np.asarray(boxes[0], np.float32))  # (K, K)
        assert iou.max(axis=1).min() > 0.85 and iou.max(axis=0).min() > 0.85, iou
        np.testing.assert_allclose(np.sort(got[:, 4]), np.sort(np.asarray(probs[0], np.float32)), atol=0.02)


def test_mtcnn_refine_matches_its_full_detection(astronaut, detectors):
    """Refine is MTCNN's own R-net + O-net: on a face it lands where `detect` does."""
    det = _detector(detectors, "mtcnn")
    full = det.detect(astronaut)[0]
    best = full[np.argmax(box_iou(full[:, :4], ASTRONAUT_FACE[None])[:, 0])]
    out = det.refine(astronaut, _moved(best[:4], 0.15, 0.1, 1.1)[None])
    assert box_iou(out[:, :4], best[None, :4])[0, 0] > 0.9
    assert out[0, 4] == pytest.approx(best[4], abs=0.05)


class _ScriptedDetector:
    """Full detections from `faces[i]` on the i-th call of detect, refine from `follow`."""

    name = "scripted"

    def __init__(self, faces, follow):
        self.faces, self.follow = faces, follow
        self.calls: list[tuple[str, int]] = []
        self.frame = -1

    def detect(self, frames):
        self.calls.append(("detect", self.frame))
        return [self.faces[self.frame].copy()]

    def refine(self, frame, boxes):
        self.calls.append(("refine", self.frame))
        return self.follow[self.frame].copy()


def _run_finder(finder, det, n):
    out = []
    for i in range(n):
        det.frame = i
        out.append(finder(np.zeros((8, 8, 3), np.uint8)))
    return out


def test_face_finder_schedule():
    face = np.array([[1, 1, 5, 5, 0.9]], np.float32)
    none = np.zeros((0, 5), np.float32)
    # a face everywhere: full detections on frames 0, 4, 8, refine on every frame after the first
    det = _ScriptedDetector([face] * 10, [face] * 10)
    finder = FaceFinder(det, detect_every=4)
    out = _run_finder(finder, det, 10)
    assert [f for c, f in det.calls if c == "detect"] == [0, 4, 8]
    assert [f for c, f in det.calls if c == "refine"] == list(range(1, 10))
    assert finder.n_full == 3 and finder.n_refined == 9 and all(len(o) == 1 for o in out)  # NMS merged
    # refine loses the face on frame 2: a full detection there; a faceless video: full everywhere
    det = _ScriptedDetector([face] * 6, [face, face, none, face, face, face])
    finder = FaceFinder(det, detect_every=8)
    _run_finder(finder, det, 6)
    assert [f for c, f in det.calls if c == "detect"] == [0, 2]
    det = _ScriptedDetector([none] * 5, [none] * 5)
    finder = FaceFinder(det, detect_every=8)
    assert all(len(o) == 0 for o in _run_finder(finder, det, 5))
    assert finder.n_full == 5 and finder.n_refined == 0
    with pytest.raises(ValueError, match="detect_every"):
        FaceFinder(det, detect_every=0)


def test_a_lost_face_is_looked_for_at_once_while_another_is_still_followed():
    """Issue 10 item 2: a followed false positive (or a second person) must not hide a lost face
    until the next keyframe."""
    a = np.array([[1, 1, 5, 5, 0.9]], np.float32)  # e.g. a picture frame, always followed
    b = np.array([[20, 20, 30, 30, 0.8]], np.float32)  # the face: refine loses it on frames 2-3
    both = np.concatenate([a, b])
    det = _ScriptedDetector([both] * 8, [both, both, a, a, both, both, both, both])
    finder = FaceFinder(det, detect_every=8)
    out = _run_finder(finder, det, 8)
    # refine misses b on frames 2 and 3: a full detection on each (before: [0] only, b gone on 2-7)
    assert [f for c, f in det.calls if c == "detect"] == [0, 2, 3]
    assert all(len(o) == 2 for o in out)  # the full detections found b again


def test_cut_to_another_face_at_the_same_place_splits_tracks_and_a_face_that_leaves_is_not_found(
        tmp_path, astronaut, detectors):
    """Issue 10 items 3-4 on decoded video: frames 0-9 the astronaut's face (~87 px wide),
    frames 10-19 the same spot shows a face twice as large (a cut to a close-up: another
    shot), then frames 20-29 only the background. Each face is its own track, found only on its
    own frames; nothing is found after the face leaves."""
    import cv2

    from fakelens.io.encode import write_video

    face = astronaut[30:200, 150:300]  # (170, 150, 3)
    big = cv2.resize(face, (300, 340))
    frames = []
    for i in range(30):
        f = np.full((480, 480, 3), 40, np.uint8)
        f[:, :, 2] = 90
        if i < 10:
            f[150:320, 165:315] = face
        elif i < 20:
            f[70:410, 90:390] = big
        frames.append(f)
    path = write_video(tmp_path / "cut.mp4", frames, 10.0)
    clip = extract_faces(path, n_frames=30, detector=_detector(detectors, "mtcnn"), size=32, max_faces=3,
                         detect_max_side=240, detect_every=4)
    assert clip.n_tracks == 2 and clip.faces.shape[0] == 2
    spans = sorted((int(np.flatnonzero(f)[0]), int(np.flatnonzero(f)[-1])) for f in clip.found)
    assert spans[0][0] == 0 and spans[0][1] <= 9 and spans[1][0] >= 10 and spans[1][1] <= 19
    assert not clip.found[:, 20:].any()  # the background after the face left: never a face
    widths = clip.boxes[:, :, 2] - clip.boxes[:, :, 0]
    small, large = sorted(float(np.median(w[f])) for w, f in zip(widths, clip.found))
    assert large > 1.6 * small
