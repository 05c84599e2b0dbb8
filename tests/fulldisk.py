"""A real full disk for tests: a script run in a private mount namespace (`unshare -rm`, no root
needed where user namespaces are allowed) with a tmpfs of a few KiB or MiB mounted on a folder.
The mount, and what is written there, vanish with the script: it reports what it saw as JSON on
its last stdout line. Tests skip where unshare or the mount is refused (no fake disk there; the
monkeypatched ENOSPC tests still run)."""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


@functools.lru_cache(maxsize=1)
def _available() -> str | None:
    """None when a private tmpfs can be mounted here, else why not."""
    if not sys.platform.startswith("linux") or shutil.which("unshare") is None:
        return "needs Linux and unshare"
    probe = subprocess.run(["unshare", "-rm", "sh", "-c", "d=$(mktemp -d) && mount -t tmpfs -o size=64k tmpfs $d"],
                           capture_output=True, text=True)
    return None if probe.returncode == 0 else f"cannot mount a private tmpfs: {probe.stderr.strip()}"


def run_on_small_disk(folder: Path, size: str, script: str, timeout: float = 600, read_only: bool = False) -> dict:
    """Run python `script` with `folder` (created) on a tmpfs of `size` (e.g. "15m", "64k"; mounted
    read-only with `read_only`: EROFS even for root) and sys.argv[1] = folder; the dict it printed
    as JSON on its last line."""
    why = _available()
    if why is not None:
        pytest.skip(why)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    options = f"size={size}" + (",ro" if read_only else "")
    cmd = ["unshare", "-rm", "sh", "-c", 'mount -t tmpfs -o "$1" tmpfs "$2" && shift 2 && exec "$@"', "sh",
           options, str(folder), sys.executable, "-c", script, str(folder)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT, env=env)
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and lines, f"rc {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return json.loads(lines[-1])
