"""Atomic file writes: a temporary file beside the target, fsync, rename, fsync of the folder.
Nothing half-written survives, even a power loss.

Temporary files are dot-names that carry their writer: `.<name>.<host>~<pid>~<random><suffix>`,
where <host> is the host name and, on Linux, the writer's pid namespace (`myhost-p4026531836`):
a pid means something only in its own namespace, and containers on one machine (or one host
name) have their own. `remove_stale_temporaries` deletes only those of dead writers (same host
and namespace, pid gone) or old ones, never the live file of a concurrent writer (another shard
writing into the same folder, from this machine, a container or another host).

A write that fails for lack of space or rights raises `OutputError` naming the folder; the
target, if it existed, is untouched and the temporary file is removed.
"""

from __future__ import annotations

import errno
import os
import re
import socket
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from fakelens.errors import OutputError

# errno values that mean "this folder cannot take the output" (rather than a bug or a bad input).
_OUTPUT_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EFBIG: "file too large for this file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENOTDIR: "a parent of it is a file, not a folder",
}
STALE_SECONDS = 3600.0  # a temporary of another host, or of a reused pid, older than this is stale


def _pid_namespace() -> str:
    """'-p<inode>' of this process's pid namespace (Linux), '' where there is none to read."""
    try:
        m = re.fullmatch(r"pid:\[(\d+)\]", os.readlink("/proc/self/ns/pid"))
    except OSError:
        return ""
    return f"-p{m.group(1)}" if m else ""


# The writer's "host" in temporary names: host name plus pid namespace (see the module docstring).
_HOST = (re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40] or "host") + _pid_namespace()
_TEMP = re.compile(r"^\..*\.(?P<host>[A-Za-z0-9-]+)~(?P<pid>\d+)~[^~/]*$")


def output_error(e: OSError, folder: str | Path) -> OutputError | None:
    """The OutputError for an OSError that says `folder` cannot take the output, else None."""
    cause = _OUTPUT_ERRNOS.get(e.errno) if isinstance(e, OSError) else None
    if cause is None and isinstance(e, FileExistsError):
        cause = "a parent of it is a file, not a folder"  # mkdir(parents=True) under a file
    if cause is None:
        return None
    return OutputError(folder, f"{cause} ({errno.errorcode.get(e.errno, e.errno)})")


@contextmanager
def _output_errors(folder: Path) -> Iterator[None]:
    try:
        yield
    except OSError as e:
        err = output_error(e, folder)
        if err is None:
            raise
        raise err from e


def _temp_prefix(name: str) -> str:
    return f".{name}.{_HOST}~{os.getpid()}~"


def _fsync_dir(folder: Path) -> None:
    """Make a rename inside `folder` durable (some file systems cannot fsync a folder: ignored)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _umask_mode() -> int:
    """The mode a plain open() would give a new file (mkstemp makes 0600 files)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _mkdir(folder: Path) -> None:
    with _output_errors(folder):
        folder.mkdir(parents=True, exist_ok=True)


def atomic_write_text(path: Path, text: str) -> None:
    """Write text to a temporary file beside `path` and rename it into place."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _write_temp(path: Path, data: bytes | bytearray | memoryview) -> str:
    """A fsynced temporary file beside `path` holding `data`; its name."""
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _umask_mode())
    except BaseException:
        _unlink(tmp)
        raise
    return tmp


def _unlink(tmp: str | Path) -> None:
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def atomic_write_bytes(path: Path, data: bytes | bytearray | memoryview) -> None:
    """Write bytes to a temporary file beside `path` and rename it into place."""
    path = Path(path)
    _mkdir(path.parent)
    with _output_errors(path.parent):
        tmp = _write_temp(path, data)
        try:
            os.replace(tmp, path)
        except BaseException:
            _unlink(tmp)
            raise
        _fsync_dir(path.parent)


def atomic_create_text(path: str | Path, text: str) -> bool:
    """Create `path` holding `text` only if it does not exist, atomically: True when this call
    created it, False when it was already there (never overwritten, never seen half-written).

    A complete temporary file is hard-linked to the name (link fails when the name exists); on
    file systems without hard links, an O_EXCL create followed by the write."""
    path = Path(path)
    _mkdir(path.parent)
    with _output_errors(path.parent):
        tmp = _write_temp(path, text.encode("utf-8"))
        try:
            os.link(tmp, path)
        except FileExistsError:
            return False
        except OSError as e:
            if e.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK):
                raise
            return _create_exclusive(path, text)  # no hard links on this file system
        finally:
            _unlink(tmp)
        _fsync_dir(path.parent)
        return True


def _create_exclusive(path: Path, text: str) -> bool:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except FileExistsError:
        return False
    with os.fdopen(fd, "wb") as f:
        f.write(text.encode("utf-8"))
        f.flush()
        os.fsync(f.fileno())
    _fsync_dir(path.parent)
    return True


@contextmanager
def atomic_output(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success it is fsynced and renamed to `path`, on
    error removed.

    For writers that want a file name (PyAV, numpy, matplotlib). `suffix` keeps the extension
    that some writers use to pick a format (defaults to the target's).
    """
    path = Path(path)
    _mkdir(path.parent)
    with _output_errors(path.parent):
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path.stem),
                                   suffix=suffix if suffix is not None else path.suffix, dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        try:
            yield tmp_path
            _fsync_file(tmp_path)  # the data is on disk before the name points to it
            os.chmod(tmp_path, _umask_mode())
            os.replace(tmp_path, path)
        except BaseException:
            tmp_path.unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)


PROBE_BYTES = 64 * 1024  # what ensure_writable writes and fsyncs


def ensure_writable(folder: str | Path) -> Path:
    """Create `folder` if needed and check that it takes a file now (an OutputError naming it
    otherwise), before a long job that would fail at its first write.

    What it checks: a temporary file of PROBE_BYTES (64 KiB) is created, written, fsynced (where
    network file systems and quotas report a full disk) and removed. So a read-only or
    unwritable folder, a full disk, a disk with less than 64 KiB free, or a quota reached fail
    here; a disk that has room now but fills during the job fails at that later write, with the
    same OutputError (fakelens.atomic writes leave no partial file)."""
    folder = Path(folder)
    _mkdir(folder)
    with _output_errors(folder):
        fd, tmp = tempfile.mkstemp(prefix=_temp_prefix("probe"), suffix=".tmp", dir=folder)
        try:
            block = b"\0" * PROBE_BYTES
            written = 0
            while written < PROBE_BYTES:
                written += os.write(fd, block[written:])
            os.fsync(fd)
        finally:
            os.close(fd)
            _unlink(tmp)
    return folder


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True


def is_stale_temporary(path: Path, now: float | None = None, max_age: float = STALE_SECONDS) -> bool:
    """Whether a dot-file is a temporary whose writer is gone: written on this host, in this pid
    namespace, by a dead pid, or (another host or namespace, a reused pid) not modified for
    `max_age` seconds. Only names this module gives its temporaries count (`.name.HOST~PID~...`,
    and an older version's `.name....tmp`): the folder may be the user's own (predict's --out), and
    its other dot-files (.env, .gitignore, .bashrc) are never anyone's temporaries."""
    m = _TEMP.match(path.name)
    if not m and not path.name.endswith(".tmp"):
        return False
    try:
        age = (time.time() if now is None else now) - path.stat().st_mtime
    except FileNotFoundError:
        return False
    if age > max_age:
        return True
    return bool(m) and m.group("host") == _HOST and not _alive(int(m.group("pid")))


def remove_stale_temporaries(folder: str | Path, max_age: float = STALE_SECONDS) -> list[Path]:
    """Remove the stale temporary files (dot-names, see `is_stale_temporary`) in `folder`; returns them."""
    folder = Path(folder)
    removed = []
    if not folder.is_dir():
        return removed
    now = time.time()
    for p in folder.glob(".*"):
        if p.is_file() and is_stale_temporary(p, now, max_age):
            p.unlink(missing_ok=True)
            removed.append(p)
    return removed
