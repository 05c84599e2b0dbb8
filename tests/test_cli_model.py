"""`fakelens model list` and `fakelens model info`."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

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
    """Over budget exits 3 (it exited 0 after printing OVER BUDGET, then 2, as a wrong argument or
    config does: a script could not tell them apart); the thop difference is a warning here because
    it changes the verdict."""
    assert run(["info", "clip3d", *TINY, "--max-params", "1000000"]) == 3
    cap = capsys.readouterr()
    assert "params (thop)" in cap.out and "MACs (flop_counter)" in cap.out
    assert "OVER BUDGET" in cap.out
    # thop sees 0.2M of r3d_18's 33M parameters: it would pass a 1M budget the model breaks
    assert "warning: thop's count (210.4K) passes the 1M budget" in cap.err
    assert "no rule for Conv3DSimple x16" in cap.err and "skips modules" not in cap.err
    # Within a budget both counts pass, the same difference is a note, not a warning.
    assert run(["info", "clip3d", *TINY]) == 0
    err = capsys.readouterr().err
    assert "warning" not in err and "note: thop counts 210,369 parameters" in err


@pytest.mark.parametrize("text,value", [("5e6", 5_000_000), ("200M", 200_000_000), ("2.5m", 2_500_000),
                                        ("1_000_000", 1_000_000), ("1G", 1_000_000_000)])
def test_max_params_is_read_as_people_write_it(capsys, text, value):
    assert run(["info", "frame_tiny", *TINY, "--max-params", text, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["max_params"] == value


def test_max_params_refuses_what_is_not_a_count(capsys):
    for text in ("2x", "5.5", "0", "1e3k", "infM", "1.5e2G", "k"):  # 1e3k was read as 1M
        with pytest.raises(SystemExit):
            run(["info", "frame_tiny", "--max-params", text])
        assert "--max-params" in capsys.readouterr().err


def test_tied_weights_are_named_as_thop_double_counting_them():
    """thop counts a shared weight once per module using it: the message said thop "skips
    modules" although it skipped nothing."""
    import torch
    from torch import nn

    from fakelens.train.budget import count, verdict_differs

    class Tied(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc = nn.Linear(16, 16)
            self.dec = nn.Linear(16, 16)
            self.dec.weight = self.enc.weight  # tied

        def forward(self, x):
            return self.dec(self.enc(x))

    cost = count(Tied(), {"x": torch.rand(1, 16)})
    assert (cost.params, cost.thop_params, cost.thop_tied, cost.thop_unseen) == (288, 544, 256, {})
    (text,) = cost.disagreement
    assert "+256" in text and "counts 256 parameters again" in text and "tied weights" in text
    assert "no rule" not in text and "skips" not in text
    assert verdict_differs(cost, 1000) is None and "would refuse" in verdict_differs(cost, 300)


def test_info_reads_a_run_config(tmp_path, capsys):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("model:\n  name: frame_tiny\n  pooling: mean\n  num_frames: 2\n  image_size: 32\n"
                   "train:\n  max_params: 1000\n")
    assert run(["info", "--config", str(cfg), "--set", "model.pooling=transformer", "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["config"]["pooling"] == "transformer" and out["max_params"] == 1000
    assert out["within_budget"] is False
    # thop misses the attention's parameters, but both counts are over 1000: a note, no warning
    assert out["warnings"] == [] and any("MultiheadAttention" in n for n in out["notes"])


def test_info_counts_at_the_recipes_input(capsys):
    """A recipe is counted at the clip its data section feeds (data.clip_frames 16 of
    avdf1m_task1, the CSV baseline's 4 s window), not at model fields that disagree."""
    recipe = Path(__file__).resolve().parent.parent / "configs" / "csv_audio_resnet18.yaml"
    assert run(["info", "--config", str(recipe), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["cost"]["input_shapes"] == {"audio": [1, 1, 80, 400]}
    assert run(["info", "--config", str(recipe), "--set", "data.audio_seconds=2.0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cost"]["input_shapes"] == {"audio": [1, 1, 80, 200]}
    assert any("model.audio_frames 400 -> 200: the data's audio window is 2 s" in n for n in out["notes"])


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
