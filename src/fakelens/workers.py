"""Worker processes that stay bounded and die with their parent.

`ordered_window` / `unordered_window` keep at most `window` jobs submitted and not yet consumed,
whatever the number of items, so the results of a 100,000-video job never pile up in memory
(and the pending work items are not all pickled up front). `die_with_parent` is for worker
initializers: a worker whose parent was SIGKILLed exits instead of idling forever while
holding its model or detector (Linux: PR_SET_PDEATHSIG, plus a getppid watch everywhere).
`torch_threads` runs a block with a given number of torch CPU threads (a detector in a worker,
training's train.cpu_threads) and restores the old number.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections import deque
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from typing import Callable, Iterable, Iterator, TypeVar

T = TypeVar("T")

PR_SET_PDEATHSIG = 1  # linux/prctl.h
WATCH_SECONDS = 1.0


def ordered_window(submit: Callable[[T], Future | None], items: Iterable[T], window: int
                   ) -> Iterator[tuple[T, Future | None]]:
    """(item, its future) in input order, with at most `window` items submitted ahead of the one
    being consumed; `submit(item)` may return None (nothing to run: yielded as it is). The
    generator drops each future once yielded, so its result is freed when the caller drops it."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    it = iter(items)
    pending: deque[tuple[T, Future | None]] = deque()
    exhausted = False

    def top_up() -> None:
        nonlocal exhausted
        while not exhausted and len(pending) < window:
            try:
                item = next(it)
            except StopIteration:
                exhausted = True
                return
            pending.append((item, submit(item)))

    top_up()
    while pending:
        item, fut = pending.popleft()
        if fut is not None:
            wait([fut])
        top_up()  # keep the workers busy while the caller consumes this one
        yield item, fut
        del item, fut


def unordered_window(submit: Callable[[T], Future], items: Iterable[T], window: int) -> Iterator[tuple[T, Future]]:
    """(item, its finished future) as they complete, at most `window` submitted and unconsumed."""
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    it = iter(items)
    pending: dict[Future, T] = {}
    for item in it:
        pending[submit(item)] = item
        if len(pending) >= window:
            break
    while pending:
        done, _ = wait(pending, return_when=FIRST_COMPLETED)
        for fut in done:
            item = pending.pop(fut)
            yield item, fut
        for item in it:
            pending[submit(item)] = item
            if len(pending) >= window:
                break


def die_with_parent(parent_pid: int, poll_seconds: float = WATCH_SECONDS) -> None:
    """In a worker process: exit as soon as the process `parent_pid` (the pool's owner, passed by
    it) is gone. Linux delivers SIGKILL at once (PR_SET_PDEATHSIG); a daemon thread also polls
    getppid() (every OS, and the race where the parent died before prctl ran)."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(poll_seconds)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="fakelens-parent-watch", daemon=True).start()


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with n torch intra-op CPU threads (None or 0: leave as is), then restore."""
    import torch

    old = torch.get_num_threads()
    if not n or n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)
