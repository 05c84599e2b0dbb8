"""The first hour of a new user, timed in one run (fresh processes, as a user runs the commands):

  config error      `fakelens train` with a mistyped key, until the error: goal < 1 s and < 0.5x the
                    time of `import torch` alone (the error comes before the heavy imports);
  cheap errors      the same goal for a wrong run path (`predict`), an unknown backbone and a recipe
                    without data.cache (6-29 s before the static name lists, fakelens.names);
  offline weights   `pretrained: true` with no network, until the error: goal < 3x building the
                    same backbone without weights (it used to spend ~55 s in download retries);
  smoke run         `fakelens train --config configs/demo.yaml --smoke` from nothing (tiny synthetic
                    set made, preprocessed, one short epoch): goal about a minute (< 90 s);
  every recipe      each recipe in configs/ with --smoke alone, as README's "Run a recipe on a laptop
                    first" shows (with FAKELENS_BENCH_ALL_RECIPES=1): goal < 90 s each.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _seconds(code: str, *argv: str, env: dict[str, str] | None = None) -> tuple[float, int]:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=ROOT)
    return time.perf_counter() - t0, proc.returncode


def _verdict(ok: bool) -> str:
    return "OK" if ok else "MISSED"


def main() -> None:
    cli = "import sys\nfrom fakelens.cli.main import main\nsys.exit(main(sys.argv[1:]))\n"
    torch_s, _ = _seconds("import torch")
    error_s, rc = _seconds(cli, "train", "--config", "configs/dfdc_effnet.yaml", "--set", "train.epoch=2")
    ratio = error_s / torch_s
    print(f"config error     {error_s:6.2f} s (exit {rc}); import torch {torch_s:.2f} s; ratio {ratio:.2f} "
          f"(goal < 1 s and < 0.5)  {_verdict(error_s < 1 and ratio < 0.5)}")
    with tempfile.TemporaryDirectory() as tmp:
        for what, argv in (("wrong run path", ["predict", str(Path(tmp) / "no_run"), tmp]),
                           ("unknown backbone", ["train", "--config", "configs/dfdc_effnet.yaml", "--set",
                                                 "model.backbone=efficientnet_b9"]),
                           ("no data.cache", ["train", "--config", "configs/dfdc_effnet.yaml", "--out",
                                              str(Path(tmp) / "r")])):
            error_s, rc = _seconds(cli, *argv)
            ratio = error_s / torch_s
            print(f"{what:<16} {error_s:6.2f} s (exit {rc}); ratio to import torch {ratio:.2f} (goal < 1 s and < 0.5)  "
                  f"{_verdict(rc == 2 and error_s < 1 and ratio < 0.5)}")

    build = ("import sys\nfrom fakelens.models.backbones import build_image_backbone\n"
             "try:\n    build_image_backbone('efficientnet_b0', sys.argv[1] == 'true')\nexcept Exception:\n"
             "    sys.exit(2)\n")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"FAKELENS_OFFLINE": "1", "HF_HUB_CACHE": str(Path(tmp) / "hf"), "TORCH_HOME": str(Path(tmp) / "torch")}
        plain_s, _ = _seconds(build, "false", env=env)
        offline_s, rc = _seconds(build, "true", env=env)
    ratio = offline_s / plain_s
    print(f"offline weights  {offline_s:6.2f} s (exit {rc}); build without weights {plain_s:.2f} s; ratio "
          f"{ratio:.2f} (goal < 3)  {_verdict(rc == 2 and ratio < 3)}")

    with tempfile.TemporaryDirectory() as tmp:
        smoke_s, rc = _seconds(cli, "train", "--config", "configs/demo.yaml", "--smoke", "--out", str(Path(tmp) / "run"),
                               env={"FAKELENS_OFFLINE": "1"})
    print(f"smoke run        {smoke_s:6.2f} s (exit {rc}) (goal < 90 s)  {_verdict(rc == 0 and smoke_s < 90)}")
    if os.environ.get("FAKELENS_BENCH_ALL_RECIPES") == "1":
        for recipe in sorted((ROOT / "configs").glob("*.yaml")):
            with tempfile.TemporaryDirectory() as tmp:
                smoke_s, rc = _seconds(cli, "train", "--config", str(recipe), "--smoke", "--out", str(Path(tmp) / "run"),
                                       env={"FAKELENS_OFFLINE": "1"})
            print(f"smoke {recipe.stem:<22} {smoke_s:6.2f} s (exit {rc}) (goal < 90 s)  "
                  f"{_verdict(rc == 0 and smoke_s < 90)}")


if __name__ == "__main__":
    main()
