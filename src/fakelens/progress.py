"""Progress of long jobs (preprocess, features, predict, synth, robustness): a live tqdm bar where a
terminal is attached; where stderr is a file or a pipe (a redirected log, CI, a cluster job), one
plain line every LOG_INTERVAL seconds and a last one at the end (no line for the start: a short job
is one line), never carriage-return redraws that grow a log by a line's worth of bytes per update."""

from __future__ import annotations

import sys
from typing import Any, Iterable, TextIO

LOG_INTERVAL = 30.0  # seconds between progress lines in a log


class _Lines:
    """A file for tqdm that turns each redraw ("\\r" + status) into one line of its own; with
    `skip_start`, not the first one (tqdm's draw of the bar at 0, before any work: a job shorter
    than LOG_INTERVAL is then one line in a log, its total)."""

    def __init__(self, file: TextIO, skip_start: bool = False):
        self.file = file
        self.skip = skip_start

    def write(self, text: str) -> None:
        line = text.replace("\r", "").rstrip()
        if line and self.skip:
            self.skip = False
        elif line:
            self.file.write(line + "\n")

    def flush(self) -> None:
        self.file.flush()


def attached(file: Any) -> bool:
    """Whether `file` is a terminal."""
    try:
        return bool(file.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str | None = None,
             unit: str = "video", disable: bool = False, leave: bool = True, initial: int = 0) -> Any:
    """A tqdm over `iterable` (or updated by hand) drawn on stderr as the module docstring says."""
    from tqdm import tqdm

    kw: dict[str, Any] = dict(total=total, desc=desc, unit=unit, disable=disable, leave=leave, initial=initial)
    if attached(sys.stderr):
        return tqdm(iterable, dynamic_ncols=True, **kw)
    # a resumed job (initial > 0) says where it starts
    return tqdm(iterable, file=_Lines(sys.stderr, skip_start=not initial and not disable), mininterval=LOG_INTERVAL,
                ascii=True, ncols=100, **kw)
