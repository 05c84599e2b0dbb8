"""fakelens.io.prefetch.background: order, errors, early stop, bounded look-ahead."""

from __future__ import annotations

import threading
import time

import pytest

from fakelens.io.prefetch import background


def test_yields_every_item_in_order_from_another_thread():
    threads = []

    def items():
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i

    assert list(background(items(), depth=3)) == list(range(50))
    assert set(threads) == {"fakelens-prefetch"}
    assert list(background([], depth=1)) == []


def test_producer_error_is_raised_after_the_items_before_it():
    def items():
        yield 1
        yield 2
        raise KeyError("boom")

    got = []
    with pytest.raises(KeyError, match="boom"):
        for x in background(items()):
            got.append(x)
    assert got == [1, 2]


def test_stopping_early_stops_the_producer_and_runs_its_cleanup():
    produced = []
    closed = threading.Event()

    def items():
        try:
            for i in range(1000):
                produced.append(i)
                yield i
        finally:
            closed.set()

    gen = background(items(), depth=2)
    assert next(gen) == 0
    gen.close()
    assert closed.wait(2.0)
    assert len(produced) <= 5  # at most depth items ahead, plus those in flight
    with pytest.raises(ValueError, match="boom"):
        for _ in background(items(), depth=2):
            raise ValueError("boom")  # a consumer error also stops it


def test_look_ahead_is_bounded_by_depth():
    produced = []

    def items():
        for i in range(100):
            produced.append(i)
            yield i

    gen = background(items(), depth=4)
    next(gen)
    time.sleep(0.3)
    assert len(produced) <= 1 + 4 + 1  # consumed, queued, one waiting to be put
    gen.close()
    with pytest.raises(ValueError, match="depth"):
        next(background([1], depth=0))
