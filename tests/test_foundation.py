"""Types, registry, config and CLI entry point."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pytest

from fakelens.config import from_dict, load_config, save_config
from fakelens.errors import ConfigError
from fakelens.registry import Registry, UnknownNameError
from fakelens.types import Label, Modality, Segment, VideoRecord, frame_labels, segments_from_pairs


def test_segment_validation_and_iou():
    with pytest.raises(ValueError):
        Segment(2.0, 1.0)
    with pytest.raises(ValueError):
        Segment(-1.0, 1.0)
    with pytest.raises(ValueError):
        Segment(0.0, float("nan"))
    a, b = Segment(0.0, 2.0), Segment(1.0, 3.0)
    assert a.iou(b) == pytest.approx(1 / 3)
    assert Segment(0, 1).iou(Segment(2, 3)) == 0.0


def test_frame_labels_use_int_of_seconds_times_fps():
    segs = segments_from_pairs([[0.5, 1.26]])
    lab = frame_labels(segs, fps=10, n_frames=20)
    # int(0.5*10)=5 .. int(1.26*10)=12 (exclusive)
    assert lab.tolist() == [0] * 5 + [1] * 7 + [0] * 8
    rec = VideoRecord("x", None, Label.FAKE)
    assert rec.frame_labels(10, 4).tolist() == [1, 1, 1, 1]
    assert VideoRecord("y", None, Label.REAL).frame_labels(10, 3).sum() == 0


def test_modality_flags():
    assert Modality.from_flags(True, True) is Modality.BOTH
    assert Modality.from_flags(False, True).audio and not Modality.AUDIO.visual
    assert Label.FAKE.as_int == 1 and Label.REAL.as_int == 0
    with pytest.raises(ValueError):
        Label.UNKNOWN.as_int


def test_registry_suggests_close_names():
    reg: Registry = Registry("model")

    @reg.register("efficientnet_b0")
    def make():
        return 1

    assert reg.get("efficientnet_b0")() == 1
    with pytest.raises(UnknownNameError, match="efficientnet_b0"):
        reg.get("efficientnet_bo")
    with pytest.raises(ValueError):
        reg.register("efficientnet_b0")(make)


@dataclass
class _Opt:
    lr: float = 1e-3
    name: str = "adamw"


@dataclass
class _Cfg:
    epochs: int = 2
    tags: list[str] = field(default_factory=list)
    opt: _Opt = field(default_factory=_Opt)
    seed: int | None = None


def test_config_layers_and_unknown_keys(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text("epochs: 5\nopt:\n  lr: 0.01\n")
    cfg = load_config(_Cfg, p, ["opt.name=sgd", "tags=[a,b]", "seed=3"])
    assert cfg.epochs == 5 and cfg.opt.lr == 0.01 and cfg.opt.name == "sgd" and cfg.tags == ["a", "b"]
    assert cfg.seed == 3
    with pytest.raises(ConfigError, match="did you mean 'epochs'"):
        load_config(_Cfg, p, ["epoch=3"])
    with pytest.raises(ConfigError, match="opt.lr"):
        from_dict(_Cfg, {"opt": {"lr": "fast"}})
    out = tmp_path / "run" / "config.yaml"
    save_config(cfg, out)
    assert load_config(_Cfg, out) == cfg


@dataclass
class _Typed:
    precision: Literal["32", "bf16-mixed"] = "bf16-mixed"
    budget: int = 1
    on: bool = False
    split: str = "val"
    weights: bool | str = False
    seconds: float | None = 1.0


def test_overrides_are_coerced_to_the_field_type():
    """--set values as a user types them: YAML would read `32` as a number, `5e6` as text, `no` as
    False; each field gets the value of its own type."""
    cfg = load_config(_Typed, None, ["precision=32", "budget=5e6", "on=yes", "split=no", "weights=false",
                                     "seconds=null"])
    assert cfg == _Typed(precision="32", budget=5_000_000, on=True, split="no", weights=False, seconds=None)
    cfg = load_config(_Typed, None, ["weights=/w/b4.pth", "split=", "on=off", "budget=200_000_000"])
    assert cfg.weights == "/w/b4.pth" and cfg.split == "" and cfg.on is False and cfg.budget == 200_000_000
    assert from_dict(_Typed, {"precision": 32}).precision == "32"  # a YAML recipe writing precision: 32
    with pytest.raises(ConfigError, match="is not one of"):
        load_config(_Typed, None, ["precision=16"])
    with pytest.raises(ConfigError, match="expected an integer"):
        load_config(_Typed, None, ["budget=5.5"])
    with pytest.raises(ConfigError, match="expected true/false"):
        load_config(_Typed, None, ["on=maybe"])


def test_a_config_error_is_reported_before_torch_is_imported(tmp_path):
    """`fakelens train` / `model info` with a wrong key, `predict` with a wrong flag: the error comes before the heavy imports
    (3-8 s of torch, timm and Lightning), measured in a fresh process."""
    import os
    import subprocess
    import sys
    import time

    code = ("import sys\nfrom fakelens.cli.main import main\n"
            "rc = main(sys.argv[1:])\n"
            "print('torch' in sys.modules, 'lightning' in sys.modules, rc)\n")
    recipe = Path(__file__).resolve().parent.parent / "configs" / "dfdc_effnet.yaml"
    for argv in (["train", "--config", str(recipe), "--out", str(tmp_path / "r"), "--set", "train.epoch=2"],
                 ["train", "--config", str(recipe), "--out", str(tmp_path / "r"), "--set", "train.precision=64"],
                 ["model", "info", "--config", str(recipe), "--set", "image_sise=64"],
                 # predict checks its flags before loading the run (torch and the models)
                 ["predict", str(tmp_path / "r"), str(tmp_path), "--format", "avdf1m-task3", "--out", "x.txt"],
                 ["predict", str(tmp_path / "r"), str(tmp_path), "--aggregate", "mxa"]):
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
        seconds = time.perf_counter() - t0
        assert proc.stdout.split() == ["False", "False", "2"], (argv, proc.stdout, proc.stderr)
        assert "did you mean" in proc.stderr.lower() or "is not one of" in proc.stderr, proc.stderr
        print(f"{argv[-1]}: config error after {seconds:.2f} s")


def test_cli_help_runs(capsys):
    from fakelens.cli.main import main

    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    assert "fakelens" in capsys.readouterr().out


def test_atomic_writes_leave_normal_permissions(tmp_path):
    import os

    from fakelens.atomic import atomic_output, atomic_write_text

    mask = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        with atomic_output(tmp_path / "b.bin") as tmp:
            tmp.write_bytes(b"y")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "b.bin").stat().st_mode & 0o777 == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt", "b.bin"]


def test_fixed_length_tuples_of_the_wrong_length_are_a_config_error_naming_the_key():
    """Before: optim.betas=[0.9] and augment.jpeg_quality=[40] were taken, and training crashed
    later with a traceback (AdamW's betas unpacking, the JPEG quality range)."""
    from fakelens.train.config import load_train_config

    for key, value, n in (("optim.betas", "[0.9]", 2), ("augment.jpeg_quality", "[40]", 2),
                          ("augment.crop_scale", "[0.5,0.7,0.9]", 2)):
        with pytest.raises(ConfigError, match=rf"{re.escape(key)}: expected {n} values"):
            load_train_config(None, [f"{key}={value}"])
    cfg = load_train_config(None, ["optim.betas=[0.8,0.99]", "augment.jpeg_quality=[40,90]"])
    assert cfg.optim.betas == (0.8, 0.99) and cfg.augment.jpeg_quality == (40, 90)


def test_python_dash_m_fakelens_is_the_fakelens_command():
    """Before: `python -m fakelens train ...` said "No module named fakelens.__main__"."""
    import os
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parent.parent / "src")
    res = subprocess.run([sys.executable, "-m", "fakelens", "train", "--config", "configs/demo.yaml", "--set",
                          "model.nope=1"], capture_output=True, text=True, cwd=Path(src).parent,
                         env={**os.environ, "PYTHONPATH": src})
    assert res.returncode == 2 and "unknown config key 'model.nope'" in res.stderr, res.stderr
