"""`fakelens train` and `fakelens predict` as a user runs them (in-process, on the tiny synthetic
preset preprocessed with the cheap full-frame detector): run folder, --set, --resume, budget
refusal, every submission format, failures and the --on-error prior fallback."""

from __future__ import annotations

import json
import shutil

import pytest

from fakelens.cli.main import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    data, cache, run = root / "data", root / "cache", root / "run"
    assert main(["data", "synth", str(data), "--preset", "tiny", "--quiet"]) == 0
    assert main(["preprocess", str(data), "--out", str(cache), "--frames", "4", "--size", "32",
                 "--detector", "full_frame", "--no-progress"]) == 0
    args = ["train", "--config", "configs/demo.yaml", "--out", str(run), "--set", f"data.cache={cache}",
            "--set", "train.epochs=1", "--set", "train.num_workers=0", "--set", "train.progress_bar=false",
            "--set", "data.clip_frames=4", "--set", "model.num_frames=4", "--set", "model.image_size=32"]
    assert main(args) == 0
    return {"root": root, "data": data, "cache": cache, "run": run, "train_args": args}


def test_train_writes_the_run_folder(tiny, capsys):
    run = tiny["run"]
    for name in ("config.yaml", "cache_config.json", "metrics.json", "checkpoints/best.ckpt", "checkpoints/last.ckpt"):
        assert (run / name).is_file(), name
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["n_train"] == 4 and metrics["n_val"] == 2 and metrics["epochs"] == 1
    assert json.loads((run / "cache_config.json").read_text())["size"] == 32
    # Training again into the same folder is refused; --resume continues (one more epoch).
    assert main(tiny["train_args"]) == 2
    assert "--resume" in capsys.readouterr().err
    resumed = tiny["root"] / "resumed"
    shutil.copytree(run, resumed)
    recorded = (resumed / "cache_config.json").stat().st_mtime_ns
    assert main(["train", "--out", str(resumed), "--resume", "--set", "train.epochs=2", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["resumed"] is True
    assert (resumed / "cache_config.json").stat().st_mtime_ns == recorded  # the run keeps its own record


def test_train_refuses_bad_configs_and_over_budget_models(tiny, capsys):
    out = tiny["root"] / "refused"
    assert main(["train", "--config", "configs/demo.yaml", "--out", str(out), "--set", "train.epoch=2"]) == 2
    assert "did you mean 'train.epochs'" in capsys.readouterr().err
    assert main(["train", "--config", "configs/demo.yaml", "--out", str(out), "--set", f"data.cache={tiny['cache']}",
                 "--set", "train.max_params=1000"]) == 2
    assert "budget" in capsys.readouterr().err
    assert not (out / "checkpoints").exists()
    # Unknown optimizer / scheduler names: refused by --dry-run too (before: it exited 0 and the run
    # failed at its first step), with the names there are.
    for key, said in (("optim.name=bogus", "unknown optimizer 'bogus'. Available: adam, adamw, sgd"),
                      ("optim.scheduler=cosin", "unknown lr scheduler 'cosin'. Did you mean 'cosine'?")):
        assert main(["train", "--config", "configs/demo.yaml", "--dry-run", "--set", f"data.cache={tiny['cache']}",
                     "--set", key]) == 2
        assert said in capsys.readouterr().err


@pytest.mark.parametrize("fmt,name", [("avdf1m-task1", "prediction.txt"), ("avdf1m-task2", "prediction.json"),
                                      ("csv", "submission.csv"), ("dfdc", "submission.csv")])
def test_predict_writes_a_valid_submission_in_every_format(tiny, fmt, name, capsys):
    out = tiny["root"] / fmt / name
    assert main(["predict", str(tiny["run"]), str(tiny["data"]), "--split", "test", "--format", fmt,
                 "--out", str(out), "--json", "--aggregate", "max"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["videos"] == 2 and summary["failed"] == 0 and summary["aggregate"] == "max"
    from fakelens.submission import read_submission

    sub = read_submission(out, fmt)
    assert sub is not None and out.is_file()


def test_predict_failures_stop_unless_the_prior_is_asked_for(tiny, capsys):
    data = tiny["root"] / "data_broken"
    shutil.copytree(tiny["data"], data)
    victim = next(iter(sorted((data / "test").glob("*.mp4"))))
    victim.write_bytes(b"\x00\x00\x00\x18ftypmp42 truncated")
    out = tiny["root"] / "broken" / "prediction.txt"
    assert main(["predict", str(tiny["run"]), str(data), "--split", "test", "--format", "avdf1m-task1",
                 "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "1 of 2 videos failed" in err and "--on-error prior" in err and not out.exists()
    report = json.loads((out.parent / "prediction.txt.failures.json").read_text())
    assert report["n_failed"] == 1 and report["failures"][0]["reason"]
    assert main(["predict", str(tiny["run"]), str(data), "--split", "test", "--format", "avdf1m-task1",
                 "--out", str(out), "--on-error", "prior", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["failed"] == 1
    prior = json.loads((tiny["run"] / "metrics.json").read_text())["prior"]
    rows = dict(line.split(";") for line in out.read_text().splitlines())
    assert float(rows[f"test/{victim.name}"]) == pytest.approx(prior)
    report = json.loads((out.parent / "prediction.txt.failures.json").read_text())
    assert report["failures"][0]["fallback"] == "prior"


def test_predict_takes_videos_and_folders_of_videos_without_any_flag(tiny, capsys):
    """A folder of unlabelled videos said "needs --format csv" (the --data-format of predict); a
    folder, a single video and a list of files are now inputs as they are, scores printed or
    written as a plain score file."""
    from fakelens.submission import read_submission

    test_dir = tiny["data"] / "test"
    videos = sorted(test_dir.glob("*.mp4"))
    run = str(tiny["run"])
    assert main(["predict", run, str(test_dir), "--json", "--no-progress"]) == 0  # printed, nothing written
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {v.name for v in videos} and all(0 <= s <= 1 for s in scores.values())
    out = tiny["root"] / "plain" / "scores.json"
    assert main(["predict", run, *map(str, videos), "--out", str(out), "--json"]) == 0  # a list of files
    sub = read_submission(out)
    assert sub.format == "scores-json" and sub.score_dict() == pytest.approx(scores)
    out = tiny["root"] / "plain" / "prediction.txt"  # one file, in a challenge's format
    assert main(["predict", run, str(videos[0]), "--format", "avdf1m-task1", "--out", str(out), "--json"]) == 0
    assert out.read_text().startswith(f"{videos[0].name};")
    capsys.readouterr()
    assert main(["predict", run, str(test_dir), "--format", "csv"]) == 2
    assert "give --out FILE" in capsys.readouterr().err


def test_printed_scores_still_write_the_predictions_file_asked_for(tiny, capsys):
    """`predict RUN VIDEOS --predictions P.json` without --out printed the scores and silently wrote
    no P.json (the per-face scores were only ever written beside a submission)."""
    test_dir = tiny["data"] / "test"
    preds = tiny["root"] / "printed" / "P.json"
    preds.parent.mkdir(exist_ok=True)
    assert main(["predict", str(tiny["run"]), str(test_dir), "--json", "--no-progress", "--predictions", str(preds)]) == 0
    scores = json.loads(capsys.readouterr().out)
    doc = json.loads(preds.read_text())
    assert {d["id"]: d["score"] for d in doc} == pytest.approx(scores)
    assert all(d["faces"] and d["face_aggregate"] for d in doc)
    assert sorted(p.name for p in preds.parent.iterdir()) == ["P.json"]  # no submission, no journal


def test_a_whole_dataset_into_a_challenge_format_is_refused_before_any_work(tiny, layout_cache, capsys,
                                                                           monkeypatch):
    """predict RUN DFDC_DIR --format dfdc without --split scored every video (train, val and the
    sample submission's test videos) and only then failed to write: "N ids not expected"; plain
    scores failed the same way. Now a challenge format is refused before the run is loaded, naming
    --split test; plain scores of the whole dataset hold every video."""
    import fakelens.inference.pipeline as pipeline
    from fakelens.data.formats import load_dataset
    from fakelens.submission import read_submission

    data, run = layout_cache("dfdc")[0], str(tiny["run"])
    ds = load_dataset(data)
    assert ds.expected_ids and len(ds.records) > len(ds.expected_ids)  # labelled videos beside the test list
    real_load = pipeline.load_run
    monkeypatch.setattr(pipeline, "load_run", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    out = tiny["root"] / "whole" / "submission.csv"
    assert main(["predict", run, str(data), "--format", "dfdc", "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "pass --split test" in err and f"holds the {len(ds.expected_ids)} ids of the test set" in err
    assert not out.exists()
    monkeypatch.setattr(pipeline, "load_run", real_load)
    scores = tiny["root"] / "whole" / "scores.csv"
    assert main(["predict", run, str(data), "--out", str(scores), "--json", "--no-progress"]) == 0
    assert sorted(read_submission(scores).ids) == sorted(r.id for r in ds.records)
    assert main(["predict", run, str(data), "--split", "test", "--format", "dfdc", "--out", str(out),
                 "--json", "--no-progress"]) == 0
    assert read_submission(out).ids == list(ds.expected_ids)


def test_predicting_a_folder_again_reads_past_its_own_outputs(tiny, capsys):
    """Scores written into the folder of videos they score (scores.csv, a failures report,
    --predictions JSON) made predicting that folder again fail: 'matches no known dataset format',
    listing predict's own files as unknown label files. Now they are recorded as predict's and the
    folder is scored again, equally; a label-like file of the user's is still refused."""
    folder = tiny["root"] / "again"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    for v in sorted((tiny["data"] / "test").glob("*.mp4")):
        shutil.copy(v, folder / v.name)
    run = str(tiny["run"])
    args = ["predict", run, str(folder), "--json", "--no-progress", "--predictions", str(folder / "preds.json")]
    for fmt, name in (("scores", "scores.csv"), ("dfdc", "submission.csv"), ("scores-json", "scores.json")):
        assert main([*args, "--format", fmt, "--out", str(folder / name)]) == 0, name
    first = (folder / "scores.csv").read_text()
    assert main([*args, "--out", str(folder / "scores.csv")]) == 0  # and again, over its own file
    assert (folder / "scores.csv").read_text() == first
    capsys.readouterr()
    (folder / "labels.csv").write_text("video,is_fake\n")  # the user's, in no known format: refused
    assert main([*args, "--out", str(folder / "scores.csv")]) == 2
    err = capsys.readouterr().err
    assert "labels.csv" in err and "scores.csv" not in err and "preds.json" not in err


def test_predict_refuses_an_out_file_named_like_a_video(tmp_path, capsys):
    """A CSV written as folder/sub.mp4 would be scanned as a video by the next predict of that folder."""
    for name in ("sub.mp4", "scores.MKV"):
        out = tmp_path / name
        assert main(["predict", str(tmp_path / "no-run"), str(tmp_path), "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert "is a video file name" in err and ".csv or .json" in err and not out.exists()


def test_predict_skips_its_recorded_outputs_when_it_scans_a_folder(tiny, capsys):
    """A CSV that an older predict wrote as folder/sub.mp4 (recorded in the folder's
    .fakelens-outputs.json) was exempt from the label-file check only: the video scan took it by
    its suffix and the next predict failed ('1 of 4 videos failed ... sub.mp4: not a media file
    FFmpeg can read'). Recorded outputs are now skipped by the scan too; the user's videos are not."""
    from fakelens.data.formats.base import load_inputs, note_own_outputs
    from fakelens.submission import read_submission

    folder = tiny["root"] / "recorded"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir()
    videos = sorted((tiny["data"] / "test").glob("*.mp4"))
    for v in videos:
        shutil.copy(v, folder / v.name)
    (folder / "sub.mp4").write_text("video,score\nx.mp4,0.5\n")
    note_own_outputs([folder / "sub.mp4"], [folder])
    assert sorted(r.id for r in load_inputs([folder]).records) == [v.name for v in videos]
    out = tiny["root"] / "recorded.csv"
    assert main(["predict", str(tiny["run"]), str(folder), "--out", str(out), "--no-progress"]) == 0
    assert sorted(read_submission(out).ids) == [v.name for v in videos]
    (folder / ".fakelens-outputs.json").unlink()  # not recorded: a file named .mp4 is the user's video
    assert "sub.mp4" in {r.id for r in load_inputs([folder]).records}


def test_summary_tables_show_seconds_to_a_tenth_or_hundredth(tiny, capsys):
    """Before: 'wall time (s) 6.6400' and 'time: decode (s) 0.1036' (every float of a table to 4 decimals)."""
    import re

    resumed = tiny["root"] / "resumed-table"
    shutil.copytree(tiny["run"], resumed)
    capsys.readouterr()
    assert main(["train", "--out", str(resumed), "--resume", "--set", "train.epochs=2"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"wall time \(s\)\s*│\s*\d+\.\d\s", out), out
    scores = tiny["root"] / "table.csv"
    assert main(["predict", str(tiny["run"]), str(tiny["data"]), "--out", str(scores), "--no-progress"]) == 0
    times = re.findall(r"time: \w+ \(s\)\s*│\s*(\S+)", capsys.readouterr().out)
    assert times and all(re.fullmatch(r"\d+\.\d\d", t) for t in times), times
