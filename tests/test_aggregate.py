"""Video-score aggregation strategies: every registry entry, and the confident-mean rule."""

from __future__ import annotations

import numpy as np
import pytest

from fakelens.inference.aggregate import AGGREGATIONS, aggregate


@pytest.mark.parametrize("name", AGGREGATIONS.names())
def test_every_strategy_is_a_probability_within_the_frame_range(name):
    rng = np.random.default_rng(0)
    s = rng.uniform(0, 1, 32)
    v = aggregate(name, s)
    assert s.min() <= v <= s.max()
    assert aggregate(name, np.full(5, 0.3)) == pytest.approx(0.3)
    assert aggregate(name, np.array([0.7])) == pytest.approx(0.7)


@pytest.mark.parametrize("name", AGGREGATIONS.names())
def test_every_strategy_rejects_bad_input(name):
    with pytest.raises(ValueError, match="empty"):
        aggregate(name, np.array([]))
    with pytest.raises(ValueError, match="probabilities"):
        aggregate(name, np.array([0.2, np.nan]))
    with pytest.raises(ValueError, match="probabilities"):
        aggregate(name, np.array([0.2, 1.5]))


def test_values():
    s = np.array([0.1, 0.2, 0.3, 0.9])
    assert aggregate("mean", s) == pytest.approx(0.375)
    assert aggregate("max", s) == pytest.approx(0.9)
    assert aggregate("median", s) == pytest.approx(0.25)
    assert aggregate("topk_mean", s) == pytest.approx(0.9)  # ceil(0.25 * 4) = 1 frame
    assert aggregate("topk_mean", np.array([0.1, 0.2, 0.3, 0.9, 0.8])) == pytest.approx(0.85)


def test_confident_mean_rule():
    # Many confident fakes: mean of the confident ones only.
    fake = np.array([0.95] * 14 + [0.5] * 18)
    assert aggregate("confident_mean", fake) == pytest.approx(0.95)
    # Too few confident fakes (<= 40%): falls through to the plain mean.
    few = np.array([0.95] * 4 + [0.5] * 28)
    assert aggregate("confident_mean", few) == pytest.approx(few.mean())
    # Almost all confidently real: mean of the confident real frames.
    real = np.array([0.05] * 30 + [0.6] * 2)
    assert aggregate("confident_mean", real) == pytest.approx(0.05)


def test_confident_mean_needs_more_than_eleven_confident_fakes():
    """The winner's rule as published: more than floor(T / 2.5) confident fakes AND more than 11.
    The reported case: 10 frames, five at 0.9 and five at 0.1, give 0.5 (the plain mean), not 0.9."""
    from fakelens.inference.aggregate import confident_mean

    assert aggregate("confident_mean", np.array([0.9] * 5 + [0.1] * 5)) == pytest.approx(0.5)
    eleven = np.array([0.95] * 11 + [0.5] * 5)  # 69% confident, but only 11 frames: not enough
    assert aggregate("confident_mean", eleven) == pytest.approx(eleven.mean())
    twelve = np.array([0.95] * 12 + [0.5] * 5)
    assert aggregate("confident_mean", twelve) == pytest.approx(0.95)
    at_fraction = np.array([0.95] * 12 + [0.5] * 18)  # 30 frames: 12 is floor(30 / 2.5), not more
    assert aggregate("confident_mean", at_fraction) == pytest.approx(at_fraction.mean())
    assert aggregate("confident_mean", np.array([0.95] * 13 + [0.5] * 18)) == pytest.approx(0.95)
    # the thresholds are parameters
    s = np.array([0.9] * 5 + [0.1] * 5)
    assert confident_mean(s, min_fake_frames=4) == pytest.approx(0.9)
    assert confident_mean(s, fake_threshold=0.95, real_threshold=0.15, min_real_fraction=0.4) == pytest.approx(0.1)
    assert confident_mean(np.array([0.85] * 20), fake_threshold=0.9) == pytest.approx(0.85)


def test_unknown_name_suggests():
    with pytest.raises(KeyError, match="confident_mean"):
        aggregate("confident", np.array([0.5]))
