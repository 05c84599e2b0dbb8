"""Types, registry, config and CLI entry point."""

from __future__ import annotations

from dataclasses import dataclass, field

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
