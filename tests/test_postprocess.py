"""Per-frame scores -> temporal proposals, and every suppression strategy."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.inference.postprocess import SUPPRESSIONS, frame_cells, iou, proposals_from_scores
from fakelens.types import Proposal


def test_frame_cells_are_on_the_label_grid():
    starts, ends = frame_cells(np.array([0.0, 1.0, 2.0, 3.0]), duration=4.0)  # frame k shown [k, k+1)
    assert starts.tolist() == [0.0, 1.0, 2.0, 3.0]
    assert ends.tolist() == [1.0, 2.0, 3.0, 4.0]
    starts, ends = frame_cells(np.array([0.0, 0.1, 0.2]))
    assert starts[0] == 0.0 and ends[-1] == pytest.approx(0.3)
    starts, ends = frame_cells(np.array([0.0, 0.1, 0.2]), duration=0.25)  # capped at the duration
    assert ends[-1] == pytest.approx(0.25)
    starts, ends = frame_cells(np.array([0.0, 0.1, 0.2]), duration=9.0)  # the last cell is one interval
    assert ends[-1] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="increasing"):
        frame_cells(np.array([0.0, 0.0]))


def test_one_fake_run_is_found_in_seconds():
    times = np.arange(20) * 0.5  # 20 samples of a 10 s video, frame k at k * 0.5 s
    scores = np.full(20, 0.05)
    scores[6:10] = 0.95  # fake from 3.0 s to 5.0 s
    props = proposals_from_scores(times, scores, duration=10.0, suppression="nms")
    best = props[0]
    assert best.start == pytest.approx(3.0) and best.end == pytest.approx(5.0)
    assert best.confidence == pytest.approx(0.95)
    assert all(p.confidence <= best.confidence for p in props)


def test_never_empty_and_bounded():
    times = np.linspace(0.1, 9.9, 32)
    props = proposals_from_scores(times, np.full(32, 0.01), duration=10.0)
    assert len(props) == 1 and 0 <= props[0].start < props[0].end <= 10.0
    rng = np.random.default_rng(0)
    props = proposals_from_scores(times, rng.uniform(size=32), duration=10.0, max_proposals=5)
    assert 1 <= len(props) <= 5
    assert all(0 <= p.start < p.end <= 10.0 and 0 <= p.confidence <= 1 for p in props)


@pytest.mark.parametrize("name", SUPPRESSIONS.names())
def test_every_suppression_keeps_the_best_first(name):
    props = [Proposal(0.9, 1.0, 3.0), Proposal(0.8, 1.1, 3.0), Proposal(0.5, 6.0, 7.0)]
    out = SUPPRESSIONS.get(name)(props, 0.5)
    assert out[0] == props[0]
    assert [p.confidence for p in out] == sorted((p.confidence for p in out), reverse=True)
    starts = {(p.start, p.end) for p in out}
    assert (6.0, 7.0) in starts  # non-overlapping proposals survive every strategy


def test_nms_and_soft_nms_differ_on_overlaps():
    props = [Proposal(0.9, 1.0, 3.0), Proposal(0.8, 1.1, 3.0)]
    assert len(SUPPRESSIONS.get("nms")(props, 0.5)) == 1
    soft = SUPPRESSIONS.get("soft_nms")(props, 0.5)
    assert len(soft) == 2 and soft[1].confidence < 0.8
    assert len(SUPPRESSIONS.get("none")(props, 0.5)) == 2


def test_iou_official_definition():
    assert iou(Proposal(1, 0.0, 2.0), Proposal(1, 1.0, 3.0)) == pytest.approx(1 / 3)
    assert iou(Proposal(1, 0.0, 1.0), Proposal(1, 2.0, 3.0)) == 0.0
