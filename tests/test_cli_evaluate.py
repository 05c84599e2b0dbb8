"""`fakelens evaluate` and `fakelens submission check` end to end on small files."""

from __future__ import annotations

import json

import pytest

from fakelens.cli import main as cli_main


@pytest.fixture
def run_cli(monkeypatch, capsys):
    """Run `fakelens ...` with only this task's commands registered; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli_main, "COMMANDS", [(None, "fakelens.cli.evaluate"),
                                               ("submission", "fakelens.cli.submission")])

    def run(*argv):
        code = cli_main.main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def dfdc(tmp_path):
    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps({"a.mp4": {"label": "FAKE"}, "b.mp4": {"label": "REAL"},
                                "c.mp4": {"label": "FAKE"}, "d.mp4": {"label": "REAL"}}))
    sub = tmp_path / "submission.csv"
    sub.write_text("filename,label\na.mp4,0.9\nb.mp4,0.2\nc.mp4,0.4\nd.mp4,0.6\n")
    return meta, sub


@pytest.fixture
def avdf(tmp_path):
    meta = tmp_path / "val_metadata.json"
    meta.write_text(json.dumps([
        {"file": "000001.mp4", "modify_type": "visual_modified", "fake_segments": [[0.0, 2.0], [4.0, 6.0]]},
        {"file": "000002.mp4", "modify_type": "real", "fake_segments": []},
    ]))
    pred = tmp_path / "prediction.json"
    pred.write_text(json.dumps({"000001.mp4": [[0.9, 10.0, 11.0], [0.8, 0.0, 2.0], [0.7, 4.0, 6.0]],
                                "000002.mp4": [[0.95, 1.0, 2.0]]}))
    return meta, pred


def test_evaluate_classification_json(run_cli, dfdc):
    meta, sub = dfdc
    code, out, _ = run_cli("evaluate", sub, "--labels", meta, "--json")
    assert code == 0
    res = json.loads(out)
    c = res["classification"]
    assert res["prediction_format"] == "dfdc" and res["labels_format"] == "dfdc"
    assert c["auc"] == pytest.approx(0.75)  # (a>b, a>d, c>b, c<d) -> 3/4
    assert c["tpr_at_fpr"]["n_negatives"] == 2 and c["tpr_at_fpr"]["zero_fp_only"] is True
    assert any("zero false positives" in n for n in res["notes"])
    assert c["at_threshold"]["accuracy"] == pytest.approx(0.5)


def test_evaluate_table_and_roc_plot(run_cli, dfdc, tmp_path):
    meta, sub = dfdc
    code, out, _ = run_cli("evaluate", sub, "--labels", meta, "--plot", tmp_path / "roc.png")
    assert code == 0 and "AUC" in out and "0.7500" in out and "log loss" in out
    assert (tmp_path / "roc.png").read_bytes()[:4] == b"\x89PNG"


def test_evaluate_localization(run_cli, avdf, tmp_path):
    meta, pred = avdf
    code, out, _ = run_cli("evaluate", pred, "--labels", meta, "--json", "--plot", tmp_path / "pr.png")
    assert code == 0
    loc = json.loads(out)["localization"]
    assert loc["preset"] == "avdf1m" and loc["ap"]["0.5"] == pytest.approx(0.5)  # see the hand cases
    assert loc["score"] == pytest.approx(sum(loc["ap"].values()) / 8 + sum(loc["ar"].values()) / 10)
    assert (tmp_path / "pr.png").stat().st_size > 0
    code, out, _ = run_cli("evaluate", pred, "--labels", meta, "--preset", "lavdf")
    assert code == 0 and "AR@100" in out and "AV-1M score" not in out


def test_evaluate_missing_prediction_is_a_clear_error(run_cli, dfdc):
    meta, sub = dfdc
    sub.write_text("filename,label\na.mp4,0.9\nb.mp4,0.2\n")
    code, _, err = run_cli("evaluate", sub, "--labels", meta)
    assert code == 2 and "2 of 4 labelled videos have no prediction: 'c.mp4', 'd.mp4'" in err
    assert "--subset" in err


def test_evaluate_subset_scores_the_covered_videos_and_says_how_many(run_cli, dfdc):
    """A partial submission had no way to be scored; --subset scores the covered ids and says so."""
    meta, sub = dfdc
    sub.write_text("filename,label\na.mp4,0.9\nb.mp4,0.2\nc.mp4,0.7\n")
    code, out, _ = run_cli("evaluate", sub, "--labels", meta, "--subset", "--json")
    res = json.loads(out)
    assert code == 0 and res["scored"] == 3 and res["classification"]["videos"] == 3
    assert any("--subset: 3 of 4 labelled videos scored; 1 have no prediction ('d.mp4')" in n for n in res["notes"])
    sub.write_text("filename,label\nzzz.mp4,0.9\n")
    code, _, err = run_cli("evaluate", sub, "--labels", meta, "--subset")
    assert code == 2 and "none of the 4 labelled videos has a prediction" in err


def test_an_undefined_precision_is_explained(run_cli, dfdc):
    """'precision @ 0.5 nan' was printed without a word: no video scored >= 0.5."""
    meta, sub = dfdc
    sub.write_text("filename,label\na.mp4,0.1\nb.mp4,0.2\nc.mp4,0.3\nd.mp4,0.4\n")
    code, out, _ = run_cli("evaluate", sub, "--labels", meta)
    assert code == 0 and "nan" not in out and "undefined (see the notes)" in out
    assert "precision @ 0.5 is undefined: no video scores >= 0.5" in " ".join(out.split())


def test_submission_check(run_cli, dfdc, tmp_path):
    _, sub = dfdc
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("filename,label\na.mp4,0.5\nb.mp4,0.5\nc.mp4,0.5\nd.mp4,0.5\n")
    code, out, _ = run_cli("submission", "check", sub, "--expect", sample)
    assert code == 0 and "valid" in out and "4 ids" in out
    sample.write_text("filename,label\na.mp4,0.5\nb.mp4,0.5\nc.mp4,0.5\ne.mp4,0.5\n")
    code, _, err = run_cli("submission", "check", sub, "--expect", sample)
    assert code == 2 and "expected ids missing: 'e.mp4'" in err and "not expected (first at line 5): 'd.mp4'" in err


def test_submission_check_lists_every_problem_and_prints_json(run_cli, tmp_path):
    """It stopped at the first problem and printed text under --json. Each problem is listed once:
    a row left out for its score is not "missing" as well."""
    sample = tmp_path / "sample_submission.csv"
    sample.write_text("filename,label\n" + "".join(f"{c}.mp4,0.5\n" for c in "abcdef"))
    sub = tmp_path / "submission.csv"
    sub.write_text("filename,label\na.mp4,1.5\nb.mp4,0.2\nc.mp4,high\nb.mp4,0.3\nd.mp4\nx.mp4,0.1\n")
    code, _, err = run_cli("submission", "check", sub, "--expect", sample)
    assert code == 2 and "6 problem(s)" in err
    for text in ("line 2, 'a.mp4': score must be a finite number in [0, 1], got 1.5",
                 "line 4, 'c.mp4': score 'high' is not a number", "id 'b.mp4' appears twice (first at line 3)",
                 "line 6: expected 2 cells", "3 of 6 expected ids missing: 'd.mp4', 'e.mp4', 'f.mp4'",
                 "1 id not expected (first at line 7): 'x.mp4'"):
        assert text in err, text
    code, out, _ = run_cli("submission", "check", sub, "--expect", sample, "--json")
    result = json.loads(out)
    assert code == 2 and result["valid"] is False and len(result["errors"]) == 6 and result["format"] == "dfdc"
    # the counts say the same as the errors ("ids" alone, 2, read as if 4 of 6 were missing)
    assert {k: result[k] for k in ("ids", "expected", "rejected", "missing", "extra")} == {
        "ids": 2, "expected": 6, "rejected": 2, "missing": 3, "extra": 1}
    # A file that cannot be read at all: still JSON.
    sub.write_text("not a submission\n")
    code, out, _ = run_cli("submission", "check", sub, "--expect", sample, "--json")
    assert code == 2 and json.loads(out)["valid"] is False and "not a known submission format" in out


def test_submission_check_lists_every_bad_proposal(run_cli, avdf):
    meta, pred = avdf
    pred.write_text(json.dumps({"000001.mp4": [[0.5, 3.0, 1.0], [1.5, 0.0, 1.0]], "000002.mp4": [[0.2, 0.0, 1.0],
                                                                                                   [0.4, 1.0, 2.0]]}))
    code, out, _ = run_cli("submission", "check", pred, "--expect", meta, "--json")
    errors = json.loads(out)["errors"]
    assert code == 2 and len(errors) == 3, errors
    assert "'000001.mp4' row 0" in errors[0] and "'000001.mp4' row 1" in errors[1] and "not sorted" in errors[2]


def test_submission_check_proposals(run_cli, avdf, tmp_path):
    meta, pred = avdf
    code, out, _ = run_cli("submission", "check", pred, "--expect", meta, "--json")
    assert code == 0 and json.loads(out)["proposals"] == 4
    pred.write_text(json.dumps({"000001.mp4": [[0.5, 3.0, 1.0]], "000002.mp4": [[0.5, 0.0, 1.0]]}))
    code, _, err = run_cli("submission", "check", pred, "--expect", meta)
    assert code == 2 and "line 1, '000001.mp4' row 0" in err and "0 <= start < end" in err


def test_evaluate_with_no_prediction_matching_does_not_suggest_subset(run_cli, dfdc):
    """Before: "pass --subset to score only the 0 covered ones" (which then failed too)."""
    meta, sub = dfdc
    sub.write_text("filename,label\nvideos/a.mp4,0.9\nvideos/b.mp4,0.2\n")
    code, _, err = run_cli("evaluate", sub, "--labels", meta)
    assert code == 2 and "none of the 4 labelled videos has a prediction" in err
    assert "--subset" not in err and "0 covered" not in err
    assert "the predictions name e.g. 'videos/a.mp4', 'videos/b.mp4'" in err and "name videos the same way" in err


def test_submission_check_of_one_lavdf_split(run_cli, tmp_path):
    """LAV-DF's metadata.json lists every split: a test-split prediction.json was reported missing every
    train and dev video, and named 'avdf1m-task2'. --split keeps the split's videos; the file is named lavdf."""
    def entry(split, i, fake):
        return {"file": f"{split}/{i}.mp4", "split": split, "n_fakes": int(fake), "duration": 4.0,
                "fake_periods": [[1.0, 2.0]] if fake else [], "modify_video": fake, "modify_audio": False}

    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps([entry(s, i, i % 2 == 1) for s in ("train", "dev", "test") for i in range(2)]))
    pred = tmp_path / "prediction.json"
    pred.write_text(json.dumps({"test/0.mp4": [[0.2, 0.0, 1.0]], "test/1.mp4": [[0.9, 1.0, 2.0]]}))
    code, out, _ = run_cli("submission", "check", pred, "--expect", meta, "--json")
    res = json.loads(out)
    assert code == 2 and res["format"] == "lavdf" and "4 of 6 expected ids missing" in res["errors"][0]
    code, out, _ = run_cli("submission", "check", pred, "--expect", meta, "--split", "test", "--json")
    res = json.loads(out)
    assert code == 0 and res["valid"] and (res["format"], res["split"], res["ids"]) == ("lavdf", "test", 2)
    code, out, _ = run_cli("submission", "check", pred, "--expect", meta, "--split", "test")
    assert code == 0 and "valid lavdf submission: 2 ids of split 'test'" in out
    code, out, _ = run_cli("evaluate", pred, "--labels", meta, "--split", "test", "--json")
    assert code == 0 and json.loads(out)["prediction_format"] == "lavdf"  # as submission check names it
    code, out, _ = run_cli("submission", "check", pred, "--expect", meta, "--split", "tset", "--json")
    assert code == 2 and "tset" in json.loads(out)["errors"][0] and "test" in json.loads(out)["errors"][0]
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "0.mp4").write_bytes(b"")
    code, out, _ = run_cli("submission", "check", pred, "--expect", videos, "--split", "test", "--json")
    assert code == 2 and "not a dataset with splits" in json.loads(out)["errors"][0]


def test_output_cut_short_by_its_reader_is_no_traceback(tmp_path):
    """`fakelens submission check ... --json | head` printed a BrokenPipeError traceback."""
    import shlex
    import subprocess
    import sys

    ids = [f"v{i}.mp4" for i in range(30000)]
    (tmp_path / "test_files.txt").write_text("\n".join(ids[:10]) + "\n")
    (tmp_path / "prediction.txt").write_text("".join(f"{v};high\n" for v in ids))  # 30000 errors to print
    code = "import sys; from fakelens.cli.main import main; sys.exit(main(sys.argv[1:]))"
    cmd = " ".join(shlex.quote(a) for a in [sys.executable, "-c", code, "submission", "check",
                                            str(tmp_path / "prediction.txt"), "--expect",
                                            str(tmp_path / "test_files.txt"), "--json"])
    proc = subprocess.run(f"{cmd} | head -c 100 > /dev/null; echo ${{PIPESTATUS[0]}}", shell=True,
                          executable="/bin/bash", capture_output=True, text=True, timeout=120)
    assert "Traceback" not in proc.stderr and "BrokenPipeError" not in proc.stderr, proc.stderr
    assert proc.stdout.split() == ["141"]


def test_evaluate_of_one_split_against_every_splits_labels_names_the_split(run_cli, tmp_path):
    """LAV-DF's metadata.json (or an AV-1M folder) labels every split: a test-split prediction.json
    evaluated without --split was only told to pass --subset; it is told --split test first, and a
    split only partly predicted still gets the --subset hint alone."""
    def entry(split, i):
        return {"file": f"{split}/{i}.mp4", "split": split, "n_fakes": 1, "duration": 4.0,
                "fake_periods": [[1.0, 2.0]], "modify_video": True, "modify_audio": False}

    meta = tmp_path / "metadata.json"
    meta.write_text(json.dumps([entry(s, i) for s in ("train", "dev", "test") for i in range(2)]))
    pred = tmp_path / "prediction.json"
    pred.write_text(json.dumps({"test/0.mp4": [[0.9, 1.0, 2.0]], "test/1.mp4": [[0.9, 1.0, 2.0]]}))
    code, _, err = run_cli("evaluate", pred, "--labels", meta)
    assert code == 2 and "pass --split test to score that split, or --subset" in err, err
    pred.write_text(json.dumps({"test/0.mp4": [[0.9, 1.0, 2.0]]}))
    code, _, err = run_cli("evaluate", pred, "--labels", meta)
    assert code == 2 and "--split" not in err and "pass --subset to score only the 1 covered ones" in err, err
