"""Tracking on synthetic box sequences: gaps, two faces, jitter, false positives, detect-every-k."""

from __future__ import annotations

import numpy as np

from fakelens.faces.tracking import box_iou, link_detections, select_tracks, track_boxes, track_faces


def det(*boxes, score=0.99):
    return np.array([[*b, score] for b in boxes], np.float32).reshape(-1, 5)


def moving_box(t, x0=100.0, vx=4.0, y=50.0, w=60.0, h=80.0):
    x = x0 + vx * t
    return [x, y, x + w, y + h]


def test_box_iou():
    a = np.array([[0, 0, 10, 10]], np.float32)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    np.testing.assert_allclose(box_iou(a, b), [[50 / 150, 0.0, 1.0]])


def test_gap_is_interpolated_and_ends_are_held():
    times = np.arange(12) / 10.0
    dets = [det(moving_box(i)) for i in range(12)]
    for i in (0, 1, 5, 6, 7, 11):
        dets[i] = det()  # detector ran, found nothing
    boxes, found, n_tracks, _, _ = track_faces(dets, times, smooth_seconds=0)
    assert boxes.shape == (1, 12, 4) and n_tracks == 1
    assert found[0].tolist() == [False, False] + [True] * 9 + [False]
    for i in (5, 6, 7):  # interpolated inside the track: on the true path (linear motion)
        np.testing.assert_allclose(boxes[0, i], moving_box(i), atol=1e-3)
    np.testing.assert_allclose(boxes[0, 0], moving_box(2), atol=1e-3)  # held before the span
    np.testing.assert_allclose(boxes[0, 11], moving_box(10), atol=1e-3)  # held after


def test_two_faces_are_two_tracks_main_is_longest_then_largest():
    times = np.arange(10) / 10.0
    big = [det(moving_box(i, x0=300, w=120, h=150), moving_box(i)) for i in range(10)]
    boxes, found, n_tracks, _, _ = track_faces(big, times, max_faces=2, smooth_seconds=0)
    assert n_tracks == 2 and boxes.shape == (2, 10, 4)
    assert boxes[0, 0, 0] == 300 and boxes[1, 0, 0] == 100  # same length: larger first
    # the small face is seen more often: it becomes the main track
    partial = [det(moving_box(i, x0=300, w=120, h=150), moving_box(i)) if i < 4 else det(moving_box(i))
               for i in range(10)]
    boxes, found, _, _, _ = track_faces(partial, times, max_faces=1, smooth_seconds=0)
    assert boxes[0, 9, 0] == moving_box(9)[0] and found[0].all()


def test_crossing_paths_keep_identity():
    times = np.arange(20) / 25.0
    dets = [det(moving_box(i, x0=100, vx=6), moving_box(i, x0=400, vx=-6)) for i in range(20)]
    tracks = link_detections(dets)
    assert len(tracks) == 2
    for tr in tracks:
        xs = np.array(tr.boxes)[:, 0]
        assert np.all(np.diff(xs) == np.diff(xs)[0])  # each track moves one way


def test_jitter_is_smoothed():
    rng = np.random.default_rng(0)
    times = np.arange(50) / 25.0
    truth = np.array([moving_box(i, vx=2) for i in range(50)], np.float32)
    noisy = truth + rng.normal(0, 4, truth.shape).astype(np.float32)
    dets = [det(b) for b in noisy]
    raw, _, _, _, _ = track_faces(dets, times, smooth_seconds=0)
    smooth, _, _, _, _ = track_faces(dets, times, smooth_seconds=0.1)
    err_raw = np.abs(raw[0] - truth)[5:-5].mean()
    err_smooth = np.abs(smooth[0] - truth)[5:-5].mean()
    assert err_smooth < 0.6 * err_raw, (err_raw, err_smooth)


def test_false_positives_do_not_become_the_main_track():
    times = np.arange(10) / 10.0
    dets = [det(moving_box(i)) for i in range(10)]
    dets[3] = np.concatenate([dets[3], det([500, 500, 520, 520], score=0.8)])
    dets[7] = np.concatenate([dets[7], det([10, 400, 200, 600], score=0.8)])
    boxes, found, n_tracks, _, _ = track_faces(dets, times)
    assert n_tracks == 3 and found[0].all()
    assert box_iou(boxes[0, 3][None], np.array([moving_box(3)]))[0, 0] > 0.9


def test_detect_every_k_frames_not_run_are_not_misses():
    times = np.arange(13) / 25.0
    dets = [det(moving_box(i)) if i % 4 == 0 else None for i in range(13)]
    boxes, found, n_tracks, _, _ = track_faces(dets, times, max_gap=0, smooth_seconds=0)
    assert n_tracks == 1 and found[0].all()
    np.testing.assert_allclose(boxes[0], [moving_box(i) for i in range(13)], atol=1e-3)


def test_a_long_miss_rejoins_the_same_face():
    times = np.arange(20) / 10.0
    dets = [det(moving_box(i)) if not 5 <= i < 14 else det() for i in range(20)]
    boxes, found, n_tracks, _, _ = track_faces(dets, times, max_gap=3, smooth_seconds=0)
    assert n_tracks == 1 and found[0].all()


def test_no_detections_no_tracks():
    boxes, found, n, _, _ = track_faces([det(), None, det()], np.arange(3) / 10.0)
    assert boxes.shape == (0, 3, 4) and found.shape == (0, 3) and n == 0
    assert select_tracks([], 1) == []


def test_track_boxes_uses_time_not_index():
    from fakelens.faces.tracking import Track

    tr = Track([0, 2], [np.array([0, 0, 10, 10.0]), np.array([30, 0, 40, 10.0])], [1.0, 1.0])
    boxes, found = track_boxes(tr, np.array([0.0, 0.9, 1.0]), smooth_seconds=0)  # uneven times
    np.testing.assert_allclose(boxes[1], [27, 0, 37, 10], atol=1e-4)


def test_a_different_face_size_at_the_same_place_is_another_track():
    """Issue 10 item 4: a cut from person A (side ~103 px) to person B (~191 px) at the same spot
    was one track whose box width jumped 103 -> 191."""
    times = np.arange(12) / 10.0
    a, b = [400, 200, 503, 330], [356, 140, 547, 380]  # same centre x, width 103 then 191
    dets = [det(a) if i < 6 else det(b) for i in range(12)]
    boxes, found, n_tracks, _, _ = track_faces(dets, times, max_faces=2, smooth_seconds=0)
    assert n_tracks == 2
    assert found.sum(axis=1).tolist() == [6, 6] and not (found[0] & found[1]).any()
    widths = boxes[:, :, 2] - boxes[:, :, 0]
    assert sorted({round(float(w)) for w in widths[found]}) == [103, 191]  # no box mixes the two
    # slow zoom within a shot (5% a frame) is still one face
    zoom = [det([400 - 2.5 * i, 200 - 3 * i, 503 + 2.5 * i, 330 + 3 * i]) for i in range(12)]
    assert track_faces(zoom, times, smooth_seconds=0)[2] == 1


def test_tracks_are_split_at_shot_cuts_and_never_joined_across_them():
    times = np.arange(10) / 10.0
    dets = [det(moving_box(i)) for i in range(10)]
    assert len(link_detections(dets, times)) == 1
    shots = np.array([0] * 5 + [1] * 5)
    tracks = link_detections(dets, times, shots=shots)
    assert [(t.first, t.last) for t in tracks] == [(0, 4), (5, 9)]
    # a gap across the cut is not bridged by joining either
    gappy = [d if i not in (4, 5) else det() for i, d in enumerate(dets)]
    assert len(link_detections(gappy, times, shots=shots)) == 2
    assert len(link_detections(gappy, times)) == 1
    boxes, found, n, _, _ = track_faces(dets, times, max_faces=2, shots=shots, smooth_seconds=0)
    assert n == 2 and found.sum(axis=1).tolist() == [5, 5]


def test_shot_cut_histogram_test():
    from skimage import data

    from fakelens.faces.shots import ShotCuts

    a = data.astronaut()
    other = np.ascontiguousarray(data.coffee()[:512, :512])
    cuts = ShotCuts()
    for frame in (a, np.roll(a, 8, axis=1), (a * 0.9).astype(np.uint8), None, other, other):
        cuts(frame)
    assert cuts.shots == [0, 0, 0, 0, 1, 1]


def _hue_turned(img: np.ndarray, box=None) -> np.ndarray:
    """img with its hue turned by 90 degrees (inside `box` only when given): another person's
    colours everywhere, or a face swapped inside an unchanged head."""
    import cv2

    hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
    hsv[..., 0] = (hsv[..., 0].astype(np.int32) + 45) % 180
    turned = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if box is None:
        return turned
    out = img.copy()
    x1, y1, x2, y2 = box
    out[y1:y2, x1:x2] = turned[y1:y2, x1:x2]
    return out


def test_another_person_of_the_same_size_at_the_same_place_is_another_track():
    """Issue 10 item 4 (appearance): a cut to another person at the same spot and size, with no
    shot cut seen, splits the track when both the face and the ring around it change colour; a
    face swapped inside an unchanged head (a deepfake) stays one track."""
    from skimage import data

    from fakelens.faces.tracking import face_histograms, other_person

    a = data.astronaut()  # (512, 512, 3)
    box = [181, 62, 268, 172]  # MTCNN's box of her face
    times = np.arange(12) / 10.0
    dets = [det(box) for _ in range(12)]

    def looks(frames):
        return [face_histograms(f, d) for f, d in zip(frames, dets)]

    cut = [a] * 6 + [_hue_turned(a)] * 6
    assert len(link_detections(dets, times)) == 1  # position and size alone cannot tell them apart
    tracks = link_detections(dets, times, looks=looks(cut))
    assert [(t.first, t.last) for t in tracks] == [(0, 5), (6, 11)]
    boxes, found, n, _, _ = track_faces(dets, times, max_faces=2, looks=looks(cut), smooth_seconds=0)
    assert n == 2 and found.sum(axis=1).tolist() == [6, 6] and not (found[0] & found[1]).any()
    swap = [a] * 6 + [_hue_turned(a, box)] * 6  # only the face itself changes
    assert len(link_detections(dets, times, looks=looks(swap))) == 1
    dim = [a] * 6 + [(a * 0.7).astype(np.uint8)] * 6  # the light dims
    assert len(link_detections(dets, times, looks=looks(dim))) == 1
    h = looks([a, _hue_turned(a)])
    assert other_person(h[0][0], h[1][0]) and not other_person(h[0][0], None)
    # a gap bridged by joining respects appearance too
    gappy = [d if i not in (5, 6, 7) else det() for i, d in enumerate(dets)]
    gap_looks = [lk if i not in (5, 6, 7) else [] for i, lk in enumerate(looks(cut))]
    assert len(link_detections(gappy, times, max_gap=1, looks=gap_looks)) == 2
    assert len(link_detections(gappy, times, max_gap=1)) == 1


def test_detection_confidence_per_frame_and_one_frame_false_positives_are_not_faces():
    times = np.arange(10) / 10.0
    dets = [det(moving_box(i), score=0.9 + 0.01 * i) if i not in (4, 5) else det() for i in range(10)]
    dets[2] = np.concatenate([dets[2], det([500, 500, 560, 580], score=0.8)])  # a one-frame false positive
    tracked = track_faces(dets, times, max_faces=3, smooth_seconds=0)
    assert tracked.n_tracks == 2 and tracked.boxes.shape[0] == 1  # the false positive is no second face
    expected = [0.9 + 0.01 * i if i not in (4, 5) else 0.0 for i in range(10)]  # 0 where interpolated
    np.testing.assert_allclose(tracked.detection[0], expected, atol=1e-6)
    assert tracked.found[0].all()
    dets[7] = np.concatenate([dets[7], det([500, 500, 560, 580], score=0.8)])  # seen twice: a person
    assert track_faces(dets, times, max_faces=3, smooth_seconds=0).boxes.shape[0] == 2


def test_smoothing_does_not_lag_a_moving_face_at_the_ends_of_a_run():
    """A face crossing at 20 px/frame, seen on two 16-frame clip windows 3 s apart: the smoothed
    boxes follow it to the last frame of each window (a one-sided Gaussian mean lagged ~50 px
    there), and noise is still smoothed in the middle."""
    idx = np.concatenate([np.arange(50, 66), np.arange(140, 156)])  # (32,) two windows
    times = idx / 30.0
    truth = np.array([moving_box(i, vx=20) for i in idx], np.float32)  # (32, 4)
    boxes, found, _, _, raw = track_faces([det(b) for b in truth], times, smooth_seconds=0.1)
    assert found.all() and np.array_equal(raw[0], truth)
    assert np.abs(boxes[0] - truth).max() < 0.5, np.abs(boxes[0] - truth).max(axis=1)
    rng = np.random.default_rng(1)
    noisy = truth + rng.normal(0, 4, truth.shape).astype(np.float32)
    smooth = track_faces([det(b) for b in noisy], times, smooth_seconds=0.1).boxes[0]
    mid = np.r_[4:12, 20:28]
    assert np.abs(smooth - truth)[mid].mean() < 0.7 * np.abs(noisy - truth)[mid].mean()


def test_interleaved_pieces_of_one_face_are_joined():
    """Two tracks of one face whose detections alternate (frames 1208 / 1212 / 1216 ...: the
    detector fitting the face two ways, or a duplicate detection starting a second track) were
    never joined: _join_tracks joined only a track that ends before the other starts."""
    from fakelens.faces.tracking import Track, _join_tracks

    times = np.arange(1300) / 30.0
    box = np.array([400, 200, 503, 330], np.float32)
    a = Track([1200, 1204, 1208, 1216, 1224], [box + 1] * 5, [0.99] * 5)
    b = Track([1212, 1220, 1228, 1232], [box - 1] * 4, [0.98] * 4)
    joined = _join_tracks([a, b], times, 0.3, 1.0, 1.0, np.zeros(len(times), np.int64))
    assert len(joined) == 1
    assert joined[0].indices == [1200, 1204, 1208, 1212, 1216, 1220, 1224, 1228, 1232]
    assert len(joined[0].boxes) == len(joined[0].scores) == 9
    assert joined[0].scores[3] == 0.98  # each detection keeps its own box and score
    # two people side by side (detected on the same frames) stay two tracks; so do interleaved
    # pieces far apart or of another size
    other = Track([1212, 1220], [box + 300] * 2, [0.9] * 2)
    bigger = Track([1212, 1220], [np.array([356, 140, 547, 380], np.float32)] * 2, [0.9] * 2)
    same_frames = Track([1204, 1212], [box] * 2, [0.9] * 2)
    for o in (other, bigger, same_frames):
        a2 = Track(list(a.indices), list(a.boxes), list(a.scores))
        assert len(_join_tracks([a2, o], times, 0.3, 1.0, 1.0, np.zeros(len(times), np.int64))) == 2
