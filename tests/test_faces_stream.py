"""Streaming face crops (find_faces -> FaceTracks.iter_crops) and dense sampling (find_every)."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.faces.detectors import build_detector
from fakelens.faces.extract import extract_faces, find_faces
from fakelens.faces.tracking import box_iou, gaussian_smooth
from tests.test_faces import _face_video


@pytest.fixture(scope="module")
def astronaut():
    from skimage.data import astronaut

    return astronaut()


@pytest.fixture(scope="module")
def haar():
    return build_detector("haar")


def _chunks(tracks, k):
    parts = list(tracks.iter_crops(k))
    starts = [a for a, _ in parts]
    assert starts == list(range(0, len(tracks.times), k))
    assert all(c.shape[1] == min(k, len(tracks.times) - a) for a, c in parts)
    return np.concatenate([c for _, c in parts], axis=1)


@pytest.mark.parametrize("max_frames_bytes", [1024**3, 1])  # frames kept / a second decoding pass
def test_crops_in_chunks_equal_all_at_once(tmp_path, astronaut, haar, max_frames_bytes):
    path, _ = _face_video(tmp_path / "face.mkv", astronaut, n=12)
    kw = dict(detector=haar, size=32, detect_max_side=None, max_frames_bytes=max_frames_bytes)
    whole = extract_faces(path, every=1, **kw)
    assert whole.status == "ok" and whole.faces.shape == (1, 12, 32, 32, 3)
    np.testing.assert_array_equal(_chunks(find_faces(path, every=1, **kw), 5), whole.faces)
    times = np.array([0.8, 0.1, 0.8, 0.0, 0.45, 1.1])  # unsorted and repeated: chunks still in request order
    sampled = extract_faces(path, times, **kw)
    np.testing.assert_array_equal(_chunks(find_faces(path, times, **kw), 4), sampled.faces)


def test_crops_are_cut_once(tmp_path, astronaut, haar):
    path, _ = _face_video(tmp_path / "face.mkv", astronaut, n=4)
    tracks = find_faces(path, every=1, detector=haar, size=16, detect_max_side=None)
    list(tracks.iter_crops(2))
    with pytest.raises(RuntimeError, match="already cut"):
        list(tracks.iter_crops(2))


def test_find_every_searches_some_frames_and_interpolates_the_rest(tmp_path, astronaut):
    path, truth = _face_video(tmp_path / "face.mp4", astronaut, n=14)
    det = build_detector("mtcnn")
    tracks = find_faces(path, every=1, detector=det, size=32, detect_max_side=None, find_every=4)
    # faces looked for on frames 0, 4, 8, 12 only (a full detection or a refine each)
    assert tracks.n_detect_runs + tracks.n_refined == 4 and tracks.n_detected == 4
    assert len(tracks.times) == 14 and tracks.found.all()  # frame 13, after the last search, still found
    ious = [box_iou(tracks.boxes[0, t][None], truth[i][None])[0, 0] for t, i in enumerate(tracks.indices)]
    assert min(ious) > 0.5, ious
    with pytest.raises(ValueError, match="find_every"):
        find_faces(path, every=1, detector=det, find_every=0)


def test_gaussian_smooth_equals_the_dense_weights():
    rng = np.random.default_rng(0)
    t = np.sort(rng.uniform(0, 30, 900))
    v = rng.normal(size=(900, 4))
    w = np.exp(-0.5 * ((t[:, None] - t[None, :]) / 0.1) ** 2)  # (S, S) all weights, none left out
    # at each time, the Gaussian-weighted least-squares line through all values, evaluated there
    want = np.empty_like(v)
    for i in range(len(t)):
        sw = np.sqrt(w[i])[:, None]
        design = np.stack([np.ones_like(t), t - t[i]], axis=1)  # (S, 2)
        if np.linalg.matrix_rank(design * sw, tol=1e-6) < 2:  # an isolated time: the weighted mean
            want[i] = w[i] @ v / w[i].sum()
        else:
            want[i] = np.linalg.lstsq(design * sw, v * sw, rcond=None)[0][0]
    np.testing.assert_allclose(gaussian_smooth(t, v, 0.1), want, atol=1e-5)
