"""fakelens.atomic: fsync before rename, exclusive create, temporaries of live writers kept,
and a clear OutputError naming the folder when it is full or cannot be written."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from fakelens import atomic
from fakelens.atomic import (atomic_create_text, atomic_output, atomic_write_bytes, atomic_write_text, ensure_writable,
                             remove_stale_temporaries)
from fakelens.errors import FakelensError, OutputError


def _record_fsyncs_and_renames(monkeypatch) -> list[tuple[str, object]]:
    events: list[tuple[str, object]] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        st = os.fstat(fd)
        events.append(("fsync", (st.st_dev, st.st_ino)))
        return real_fsync(fd)

    def replace(src, dst):
        st = os.stat(src)
        events.append(("replace", (st.st_dev, st.st_ino)))
        return real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(os, "replace", replace)
    return events


def test_atomic_output_fsyncs_the_file_before_renaming_it(tmp_path, monkeypatch):
    """A power loss after the rename must not leave a name pointing to an empty npz."""
    events = _record_fsyncs_and_renames(monkeypatch)
    with atomic_output(tmp_path / "a.npz") as tmp:
        np.savez_compressed(tmp, x=np.arange(10))
    kinds = [k for k, _ in events]
    assert "replace" in kinds
    renamed = events[kinds.index("replace")][1]
    assert ("fsync", renamed) in events[: kinds.index("replace")], events
    np.testing.assert_array_equal(np.load(tmp_path / "a.npz")["x"], np.arange(10))


def test_atomic_write_bytes_fsyncs_before_renaming(tmp_path, monkeypatch):
    events = _record_fsyncs_and_renames(monkeypatch)
    atomic_write_bytes(tmp_path / "a.json", b"{}")
    kinds = [k for k, _ in events]
    assert ("fsync", events[kinds.index("replace")][1]) in events[: kinds.index("replace")]


def test_exclusive_create_has_one_winner_among_concurrent_writers(tmp_path, monkeypatch):
    """Two writers that both find no file: exactly one creates it, the other is told."""
    real_fsync = os.fsync

    def slow_fsync(fd):  # widen the window between "not there" and "created"
        time.sleep(0.05)
        return real_fsync(fd)

    monkeypatch.setattr(os, "fsync", slow_fsync)
    for trial in range(3):
        path = tmp_path / f"c{trial}.json"
        barrier = threading.Barrier(2)
        results: dict[str, bool] = {}

        def create(text: str) -> None:
            barrier.wait()
            results[text] = atomic_create_text(path, text)

        threads = [threading.Thread(target=create, args=(t,)) for t in ("a", "b")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results.values()) == [False, True]
        winner = next(t for t, won in results.items() if won)
        assert path.read_text() == winner
        assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_remove_stale_temporaries_keeps_live_writers_files(tmp_path):
    """A concurrent shard's temporary (live pid) survives; a killed writer's one is removed."""
    live = tmp_path / f".row.json.{atomic._HOST}~{os.getpid()}~abc.tmp"
    dead = tmp_path / f".row2.json.{atomic._HOST}~{_dead_pid()}~abc.tmp"
    other_host = tmp_path / f".row3.json.elsewhere~{os.getpid()}~abc.tmp"
    old = tmp_path / ".old-style.tmp"
    for p in (live, dead, other_host, old):
        p.write_text("x")
    an_hour_ago = time.time() - 2 * atomic.STALE_SECONDS
    os.utime(old, (an_hour_ago, an_hour_ago))
    removed = remove_stale_temporaries(tmp_path)
    assert sorted(p.name for p in removed) == sorted([dead.name, old.name])
    assert live.exists() and other_host.exists()


def test_remove_stale_temporaries_leaves_the_users_own_dot_files(tmp_path):
    """predict's --out may be any folder (a home, a repository): an old .env, .gitignore or
    .bashrc there is the user's, not a temporary, however old; an old temporary beside it goes."""
    mine = [tmp_path / n for n in (".env", ".gitignore", ".bashrc", ".config.json")]
    stale = tmp_path / f".x.csv.elsewhere~{os.getpid()}~abc.tmp"
    for p in (*mine, stale):
        p.write_text("keep")
        long_ago = time.time() - 30 * 24 * 3600
        os.utime(p, (long_ago, long_ago))
    assert [p.name for p in remove_stale_temporaries(tmp_path)] == [stale.name]
    assert all(p.read_text() == "keep" for p in mine)


def test_temporary_names_carry_the_writer(tmp_path, monkeypatch):
    seen = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda s, d: (seen.append(Path(s).name), real(s, d)))
    atomic_write_text(tmp_path / "x.json", "1")
    with atomic_output(tmp_path / "y.npz") as tmp:
        tmp.write_bytes(b"z")
    assert len(seen) == 2
    for name in seen:
        m = atomic._TEMP.match(name)
        assert m and int(m.group("pid")) == os.getpid() and m.group("host") == atomic._HOST


def test_disk_full_is_a_clear_error_and_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "out" / "a.npz"
    with atomic_output(target) as tmp:
        np.savez_compressed(tmp, x=np.arange(3))
    before = target.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez_compressed", full)
    with pytest.raises(OutputError) as e:
        with atomic_output(target) as tmp:
            np.savez_compressed(tmp, x=np.arange(5))
    assert str(tmp_path / "out") in str(e.value) and "no space left" in str(e.value)
    assert isinstance(e.value, FakelensError)
    assert target.read_bytes() == before
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.npz"]  # no temporary left

    monkeypatch.setattr(atomic, "_write_temp", lambda path, data: full())
    with pytest.raises(OutputError, match="no space left"):
        atomic_write_text(tmp_path / "out" / "b.txt", "new")


def test_a_path_under_a_file_is_a_clear_error(tmp_path):
    """Works as root too: no permission bit can make a regular file a folder."""
    (tmp_path / "f").write_text("x")
    with pytest.raises(OutputError, match="a file, not a folder"):
        atomic_write_text(tmp_path / "f" / "sub" / "a.txt", "x")
    with pytest.raises(OutputError, match=str(tmp_path / "f")):
        ensure_writable(tmp_path / "f" / "run")
    with pytest.raises(OutputError):
        with atomic_output(tmp_path / "f" / "a.npz"):
            pass


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_folder_is_a_clear_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    (ro / "keep.txt").write_text("old")
    ro.chmod(0o555)
    try:
        with pytest.raises(OutputError, match="permission denied"):
            atomic_write_text(ro / "keep.txt", "new")
        with pytest.raises(OutputError):
            ensure_writable(ro)
        assert (ro / "keep.txt").read_text() == "old"
    finally:
        ro.chmod(0o755)


def test_permission_denied_is_a_clear_error(tmp_path, monkeypatch):
    """The read-only case as root: the write itself refused with EACCES."""
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", denied)
    with pytest.raises(OutputError, match=r"permission denied \(EACCES\)"):
        atomic_write_text(tmp_path / "a.txt", "x")


def test_output_error_survives_pickling():
    import pickle

    e = pickle.loads(pickle.dumps(OutputError("/x", "no space left on the device (ENOSPC)")))
    assert isinstance(e, OutputError) and e.folder == "/x" and "ENOSPC" in str(e)


def test_other_os_errors_are_not_disguised(tmp_path):
    with pytest.raises(ZeroDivisionError):
        with atomic_output(tmp_path / "a.bin"):
            1 / 0
    with pytest.raises(FileNotFoundError):
        with atomic_output(tmp_path / "b.bin"):
            open(tmp_path / "missing" / "input")
    assert list(tmp_path.iterdir()) == []


def test_ensure_writable_writes_and_fsyncs_a_real_block(tmp_path, monkeypatch):
    """An empty probe file passed on a full disk (creating a name needs no data block)."""
    calls = []
    real_fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (calls.append(fd), real_fsync(fd)))
    ensure_writable(tmp_path / "ok")
    assert calls and list((tmp_path / "ok").iterdir()) == []  # fsynced, and the probe removed

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OutputError, match=r"no space left on the device \(ENOSPC\)") as e:
        ensure_writable(tmp_path / "full")
    assert e.value.folder == str(tmp_path / "full") and list((tmp_path / "full").iterdir()) == []


@pytest.mark.slow
def test_ensure_writable_on_a_really_full_disk(tmp_path):
    from tests.fulldisk import run_on_small_disk

    out = run_on_small_disk(tmp_path / "disk", "256k", r"""
import errno, json, sys
from pathlib import Path
from fakelens.atomic import ensure_writable
from fakelens.errors import OutputError
disk = Path(sys.argv[1])
ensure_writable(disk / "before")  # room: passes
try:
    with open(disk / "filler", "wb") as f:
        while True:
            f.write(b"x" * 4096)
            f.flush()
except OSError as e:
    assert e.errno == errno.ENOSPC, e
try:
    ensure_writable(disk / "run")
    print(json.dumps({"error": None}))
except OutputError as e:
    print(json.dumps({"error": str(e), "left": sorted(p.name for p in (disk / "run").iterdir())}))
""")
    assert out["error"] is not None and "no space left on the device" in out["error"]
    assert str(tmp_path / "disk" / "run") in out["error"] and out["left"] == []


def test_a_live_writer_in_another_pid_namespace_is_not_taken_for_dead(tmp_path):
    """A container (its own pid namespace, often the same host name) cleaning a shared folder saw
    this process's pid as dead in its namespace and deleted our live temporary."""
    import shutil

    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        pytest.skip("needs Linux and unshare")
    live = tmp_path / f"{atomic._temp_prefix('row.json')}abc.tmp"
    live.write_text("being written")
    script = ("import sys; from pathlib import Path; from fakelens.atomic import remove_stale_temporaries; "
              "print([p.name for p in remove_stale_temporaries(Path(sys.argv[1]))])")
    env = {**os.environ, "PYTHONPATH": str(Path(atomic.__file__).resolve().parents[1])}
    proc = subprocess.run(["unshare", "-rpf", "--mount-proc", sys.executable, "-c", script, str(tmp_path)],
                          capture_output=True, text=True, env=env, timeout=120)
    if proc.returncode != 0 and "unshare" in proc.stderr:
        pytest.skip(f"no private pid namespace here: {proc.stderr.strip()}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]" and live.exists()
    assert remove_stale_temporaries(tmp_path) == [] and live.exists()  # alive here too
