"""`fakelens model list` and `fakelens model info`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from fakelens.cli import model as cli_model
from fakelens.errors import ConfigError

TINY = ["--set", "num_frames=2", "--set", "image_size=32"]


def run(argv: list[str]) -> int:
    """Parse and run a `fakelens model ...` command line through the module's own parser."""
    parser = argparse.ArgumentParser(prog="fakelens model")
    cli_model.add_parser(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


def test_registered_in_the_cli_and_light_at_import():
    from fakelens.cli.main import COMMANDS, GROUP_HELP

    assert ("model", "fakelens.cli.model") in COMMANDS and "model" in GROUP_HELP
    code = "import sys, fakelens.cli.model; print(sorted({'torch', 'timm', 'thop'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_through_the_fakelens_entry_point(capsys):
    from fakelens.cli.main import main

    assert main(["model", "info", "frame_tiny", *TINY, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cost"]["input_shapes"] == {"video": [1, 2, 3, 32, 32]}
    assert main(["model", "info", "frame_tiny", "--set", "backbone=tinycnm"]) == 2
    assert "did you mean 'tinycnn'" in capsys.readouterr().err


def test_info_json(capsys):
    assert run(["info", "frame_tiny", *TINY, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["backbone"] == "tinycnn" and out["config"]["num_frames"] == 2
    cost = out["cost"]
    assert cost["params"] == cost["thop_params"] > 0 and cost["flops"] == 2 * cost["macs"]
    assert cost["input_shapes"] == {"video": [1, 2, 3, 32, 32]}
    assert out["within_budget"] is True and out["max_params"] == 200_000_000 and out["warnings"] == []


def test_info_table_warns_about_thop_and_reports_the_verdict(capsys):
    assert run(["info", "clip3d", *TINY, "--max-params", "1000000"]) == 0
    cap = capsys.readouterr()
    assert "params (thop)" in cap.out and "MACs (flop_counter)" in cap.out
    assert "OVER BUDGET" in cap.out
    # thop sees 0.2M of r3d_18's 33M parameters: it would pass a 1M budget the model breaks
    assert "thop's count" in cap.err and "Conv3DSimple" in cap.err


def test_info_reads_a_run_config(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model:\n  name: frame_tiny\n  pooling: mean\n  num_frames: 2\n  image_size: 32\n"
                   "train:\n  max_params: 1000\n")
    assert run(["info", "--config", str(cfg), "--set", "model.pooling=transformer", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["pooling"] == "transformer" and out["max_params"] == 1000
    assert out["within_budget"] is False
    assert any("MultiheadAttention" in w for w in out["warnings"])


def test_info_errors():
    with pytest.raises(ConfigError, match="did you mean"):
        run(["info", "frame_tiny", "--set", "poolng=mean"])
    with pytest.raises(ConfigError, match="give a model NAME"):
        run(["info"])


def test_list(capsys):
    from fakelens.models import MODELS

    assert run(["list", "--backbones", "efficientnet_b*", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [m["name"] for m in out["models"]] == MODELS.names()
    assert {"r3d_18", "r3d_34", "mc3_34", "r2plus1d_34"} <= set(out["backbones"]["clip3d (video)"])
    assert {"meso4", "mesoinception4"} <= set(out["backbones"]["frame/av/audio/i3d (2D)"])
    assert "efficientnet_b0" in out["matching_backbones"]
    assert run(["list"]) == 0
    assert "frame_tiny" in capsys.readouterr().out
