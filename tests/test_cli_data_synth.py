"""`fakelens data synth`: end to end on a tiny preset, options, refusal to clobber, light imports."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from fakelens.cli.main import main

ARGS = ["--preset", "tiny", "--videos", "4", "--size", "64", "--duration", "1", "--quiet"]


def test_synth_end_to_end(tmp_path, capsys):
    out = tmp_path / "data"
    assert main(["data", "synth", str(out), *ARGS, "--seed", "3", "--strength", "0.5"]) == 0
    printed = capsys.readouterr().out
    assert "split" in printed and "all" in printed and "4 videos written" in printed
    meta = [item for split in ("train", "val", "test") if (out / f"{split}_metadata.json").exists()
            for item in json.loads((out / f"{split}_metadata.json").read_text())]
    assert len(meta) == 4 and all((out / m["file"]).is_file() for m in meta)
    manifest = json.loads((out / "synthetic.json").read_text())
    assert manifest["config"]["seed"] == 3 and manifest["config"]["strength"] == 0.5
    assert manifest["config"]["size"] == [64, 64] and manifest["config"]["duration"] == [1.0, 1.0]

    # a second run refuses to clobber the complete output; --overwrite regenerates it
    assert main(["data", "synth", str(out), *ARGS]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(["data", "synth", str(out), *ARGS, "--overwrite", "--json", "--layout", "csv"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["written"] == 4 and summary["layout"] == "csv"
    assert sum(row["videos"] for row in summary["splits"]) == 4
    assert (out / "train_labels.csv").is_file() and not (out / "train_metadata.json").exists()


@pytest.mark.parametrize("extra,message", [(["--size", "64", "64", "64"], "--size"),
                                           (["--strength", "2"], "strength"),
                                           (["--preset", "tiniest"], "tiny")])
def test_bad_options_fail_cleanly(tmp_path, capsys, extra, message):
    assert main(["data", "synth", str(tmp_path / "x"), *ARGS, *extra]) == 2
    assert message in capsys.readouterr().err


def test_module_import_is_light():
    code = ("import sys; import fakelens.cli.data_synth; "
            "print(sorted(m for m in ('torch', 'cv2', 'av', 'numpy', 'fakelens.data.synthetic') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_every_preset_is_named_in_the_help(capsys):
    from fakelens.data.synthetic import PRESETS

    with pytest.raises(SystemExit):
        main(["data", "synth", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(name in text for name in PRESETS.names())


def test_set_reaches_any_config_field(tmp_path, capsys):
    out = tmp_path / "s"
    assert main(["data", "synth", str(out), *ARGS, "--set", "scenes=[two_people]", "--set", "audio=false",
                 "--set", "modality_mix=[1,0,0]", "--fps", "29.97", "--layout", "dfdc"]) == 0
    config = json.loads((out / "synthetic.json").read_text())["config"]
    assert config["scenes"] == ["two_people"] and config["audio"] is False
    assert config["fps"] == pytest.approx(30000 / 1001)
    assert main(["data", "synth", str(tmp_path / "t"), *ARGS, "--set", "scenez=[cut]"]) == 2
    assert "scenes" in capsys.readouterr().err  # the typed config suggests the field
