"""`fakelens data inspect`: counts, segments, missing files, probing real tiny videos, --json, fast import."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from fakelens.cli import data_inspect
from fakelens.errors import FormatError

FIXTURES = Path(__file__).parent / "data" / "formats"


def inspect(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="fakelens data")
    data_inspect.add_parser(parser.add_subparsers())
    args = parser.parse_args(["inspect", *argv])
    return args.func(args)


def inspect_json(capsys, *argv: str) -> dict:
    assert inspect(*argv, "--json") == 0
    return json.loads(capsys.readouterr().out)


def test_json_summary_of_labels(capsys):
    s = inspect_json(capsys, str(FIXTURES / "avdeepfake1m"), "--labels-only")
    assert s["format"] == "avdeepfake1m" and s["detected"] is True and s["videos"] == 7
    assert s["counts"]["train"] == {"real": 1, "fake": 2, "unknown": 0, "total": 3}
    assert s["counts"]["test"]["unknown"] == 2 and s["expected_ids"] == 2
    assert s["modality"] == {"none": 2, "visual": 1, "audio": 1, "both": 1, "unlabelled": 2}  # before: "none": 4
    seg = s["segments"]
    assert (seg["fake_videos"], seg["segments"], seg["whole_video_fakes"]) == (3, 4, 0)
    assert seg["duration_s"]["min"] == pytest.approx(0.44) and seg["duration_s"]["max"] == pytest.approx(0.6)
    # fake fraction: 0.6 s of 2 s, 0.94 s of 4 s, 0.52 s of 3 s
    assert seg["fake_fraction_of_video"]["max"] == pytest.approx(0.3)
    assert s["label_duration_s"]["max"] == 4.0 and s["probe"] is None


def test_human_output_and_split(capsys):
    assert inspect(str(FIXTURES / "dfdc"), "--format", "dfdc", "--probe", "0") == 0
    out = capsys.readouterr().out
    assert "format dfdc (given), 5 videos" in out
    assert "Videos by split and label" in out and "whole-video" in out and "stream of every fake is unknown" in out
    s = inspect_json(capsys, str(FIXTURES / "lavdf"), "--split", "dev", "--labels-only")
    assert list(s["counts"]) == ["val"]  # LAV-DF dev is read as val and s["modality"] == {"both": 1}


def test_missing_videos(tmp_path, capsys):
    (tmp_path / "train_labels.csv").write_text("video_name,target\na.mp4,0\nb.mp4,1\n")
    (tmp_path / "a.mp4").touch()
    with pytest.raises(FormatError, match="1 of 2 listed videos are missing"):
        inspect(str(tmp_path))
    s = inspect_json(capsys, str(tmp_path), "--allow-missing", "--probe", "0")
    assert s["missing"] == {"count": 1, "first": ["b.mp4"]} and s["videos"] == 1
    assert inspect(str(tmp_path), "--allow-missing", "--probe", "0") == 0
    assert "missing videos (skipped): 1" in capsys.readouterr().out


def test_probe_real_videos(make_video, capsys):
    root = make_video("x.mkv").parent  # tmp_path
    for sub in ("real", "fake"):
        (root / sub).mkdir()
    make_video("real/a.mkv", n_frames=10, fps=10.0, audio_seconds=1.0)
    make_video("fake/b.mkv", n_frames=20, fps=10.0)
    (root / "fake" / "broken.mp4").write_bytes(b"not a video")
    s = inspect_json(capsys, str(root), "--probe", "5")
    p = s["probe"]
    assert s["format"] == "folders" and (p["probed"], p["ok"]) == (3, 2)
    assert p["resolution"] == {"64x48": 2} and p["fps"] == {"10": 2} and p["with_audio"] == 1
    assert p["duration_s"]["min"] == pytest.approx(1.0, abs=0.1) and p["duration_s"]["max"] == pytest.approx(2.0, abs=0.1)
    assert [f["id"] for f in p["failures"]] == ["fake/broken.mp4"] and p["failures"][0]["error"]
    assert inspect(str(root), "--probe", "1") == 0
    out = capsys.readouterr().out
    assert "Probed 1 of 3 videos" in out


def test_no_format_found(tmp_path):
    with pytest.raises(FormatError, match="matches no known dataset format"):
        inspect(str(tmp_path))


def test_module_imports_nothing_heavy():
    code = (
        "import sys, argparse\n"
        "from fakelens.cli import data_inspect\n"
        "p = argparse.ArgumentParser(); data_inspect.add_parser(p.add_subparsers())\n"
        "import fakelens.data.formats, fakelens.data.splits\n"
        "print([m for m in ('torch', 'cv2', 'av', 'timm', 'matplotlib', 'sklearn', 'scipy') if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
