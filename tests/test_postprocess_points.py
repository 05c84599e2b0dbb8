"""Learned-localizer post-processing: boundary decoding, soft-NMS / NMS on arrays, top N, windows."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fakelens.inference.postprocess import (
    SUPPRESSIONS, Candidates, decode_points, encode_segments, own_span, select_proposals, window_starts)
from fakelens.types import Proposal


def test_boundary_distances_round_trip():
    rng = np.random.default_rng(0)
    centres = rng.uniform(0, 500, 200)
    strides = 2.0 ** rng.integers(0, 5, 200)
    a = centres - rng.uniform(0, 40, 200)
    b = centres + rng.uniform(0, 40, 200)
    off = encode_segments(centres, strides, a, b)  # (N, 2) in stride units
    assert off.shape == (200, 2) and (off >= 0).all()
    start, end = decode_points(centres, strides, off, step_seconds=0.04, origin=0.5)
    np.testing.assert_allclose(start, 0.5 + a * 0.04)
    np.testing.assert_allclose(end, 0.5 + b * 0.04)
    # a point at the centre of step 10 (10.5) with distances 2.5 / 1.5 steps at stride 1 -> [8, 12) steps
    s, e = decode_points([10.5], [1], [[2.5, 1.5]], step_seconds=0.04)
    assert s[0] == pytest.approx(0.32) and e[0] == pytest.approx(0.48)


def test_soft_nms_by_hand():
    c = Candidates([0.9, 0.8, 0.7], [0.0, 0.0, 5.0], [2.0, 1.0, 6.0])  # IoU(0, 1) = 0.5, the third apart
    out = SUPPRESSIONS.get("soft_nms")(c, 0.0, sigma=0.5)
    assert out.confidence[0] == 0.9 and out.confidence[1] == 0.7
    assert out.confidence[2] == pytest.approx(0.8 * math.exp(-0.25 / 0.5))
    assert out.start.tolist() == [0.0, 5.0, 0.0]
    gated = SUPPRESSIONS.get("soft_nms")(c, 0.6)  # decays only above IoU 0.6: nothing decays
    assert gated.confidence.tolist() == [0.9, 0.8, 0.7]
    hard = SUPPRESSIONS.get("nms")(c, 0.4)
    assert hard.confidence.tolist() == [0.9, 0.7]
    assert SUPPRESSIONS.get("nms")(c, 0.5).confidence.tolist() == [0.9, 0.8, 0.7]  # IoU must exceed it
    top = SUPPRESSIONS.get("soft_nms")(c, 0.0, max_keep=2)
    assert top.confidence.tolist() == out.confidence[:2].tolist()


def test_suppressions_match_on_lists_and_arrays():
    rng = np.random.default_rng(1)
    st = rng.uniform(0, 10, 60)
    props = [Proposal(float(c), float(a), float(a + d)) for c, a, d in
             zip(rng.uniform(size=60), st, rng.uniform(0.1, 2, 60))]
    for name in SUPPRESSIONS.names():
        listed = SUPPRESSIONS.get(name)(props, 0.3)
        arrays = SUPPRESSIONS.get(name)(Candidates.of(props), 0.3).proposals()
        assert listed == arrays
        conf = [p.confidence for p in listed]
        assert conf == sorted(conf, reverse=True)


def test_select_proposals_clips_keeps_top_n_sorted_and_never_empty():
    rng = np.random.default_rng(2)
    n = 500
    st = rng.uniform(-1, 9, n)
    c = Candidates(rng.uniform(size=n), st, st + rng.uniform(0.05, 3, n))
    props = select_proposals(c, duration=8.0, max_proposals=100)
    assert len(props) == 100
    assert all(0.0 <= p.start < p.end <= 8.0 for p in props)
    conf = [p.confidence for p in props]
    assert conf == sorted(conf, reverse=True)
    assert len(select_proposals(c, duration=8.0, max_proposals=7, suppression="nms", iou_threshold=0.5)) <= 7
    # nothing usable (all outside the video, or no candidate): one whole-video proposal
    out = select_proposals(Candidates([0.3], [9.0], [10.0]), duration=8.0)
    assert out == (Proposal(0.3, 0.0, 8.0),)
    assert select_proposals(Candidates([], [], []), duration=4.0) == (Proposal(0.0, 0.0, 4.0),)


@pytest.mark.parametrize("n", [1, 100, 257, 1000, 4321])
def test_windows_cover_the_video_and_their_own_parts_partition_it(n):
    window, overlap = 256, 64
    starts = window_starts(n, window, overlap)
    assert starts[0] == 0 and starts[-1] + window >= n
    assert all(s + window <= max(n, window) for s in starts)
    spans = [own_span(k, starts, window, n) for k in range(len(starts))]
    assert spans[0][0] == 0 and spans[-1][1] == n
    for (lo, hi), (lo2, _) in zip(spans, spans[1:]):
        assert hi == lo2
    for k, (lo, hi) in enumerate(spans):  # each window answers only inside itself, away from its edges
        assert starts[k] <= lo < hi <= starts[k] + window
        if 0 < k:
            assert lo - starts[k] >= overlap / 2 - 1
    with pytest.raises(ValueError):
        window_starts(10, 8, 8)
