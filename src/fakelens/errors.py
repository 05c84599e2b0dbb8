"""The project's exception types: every user-facing failure names the file and the cause."""

from __future__ import annotations

from pathlib import Path


class FakelensError(Exception):
    """Base of every error fakelens raises on purpose; the CLI prints these without a traceback.

    Every subclass pickles (a worker process raising one hands it to its parent), whatever its
    __init__ takes: the copy is rebuilt from the message and the attributes, not by calling
    __init__ again (the default would call __init__(message) and fail on extra arguments)."""

    def __reduce__(self):
        return (_rebuild, (type(self), self.args, dict(self.__dict__)))


def _rebuild(cls: type, args: tuple, state: dict) -> FakelensError:
    """An error of type `cls` with these args and attributes, without calling cls.__init__."""
    err = cls.__new__(cls, *args)
    Exception.__init__(err, *args)
    err.__dict__.update(state)
    return err


class MediaError(FakelensError):
    """A video or audio file cannot be read as asked (missing, empty, truncated, no stream...)."""

    def __init__(self, path: str | Path, cause: str):
        self.path = str(path)
        self.cause = cause
        super().__init__(f"{self.path}: {cause}")


class FormatError(FakelensError):
    """A dataset, label or submission file is malformed; names the file, the row/line and the problem."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None, item: str | None = None):
        self.path = str(path)
        self.problem = problem
        self.line = line
        self.item = item
        where = self.path
        if line is not None:
            where += f", line {line}"
        if item is not None:
            where += f", {item}"
        super().__init__(f"{where}: {problem}")


class InvalidValueError(FakelensError, ValueError):
    """A library function got a value outside its domain (a non-finite score or time, times that
    do not increase, a segment with start >= end, a frame rate <= 0). Also a ValueError, so code
    that catches ValueError keeps working."""


class ConfigError(FakelensError):
    """A configuration key or value is wrong (unknown keys get a suggestion)."""


class SubmissionError(FormatError):
    """A submission would be rejected by the organisers (missing/extra ids, bad scores or segments)."""


class BudgetError(FakelensError):
    """A model exceeds the configured parameter budget."""


class MissingDependencyError(FakelensError):
    """An optional dependency is not installed; the message gives the install command."""


class OutputError(FakelensError):
    """An output folder cannot take a file (disk full, no permission, read-only, a file in the way);
    names the folder. Whatever was already written there is untouched."""

    def __init__(self, folder: str | Path, cause: str):
        self.folder = str(folder)
        self.cause = cause
        super().__init__(f"{self.folder}: cannot write here: {cause}; nothing already written was changed")
