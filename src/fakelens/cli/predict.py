"""`fakelens predict RUN_OR_CHECKPOINT DATA... [--format FMT] [--out FILE]`: score videos, write a submission.

DATA is a dataset (folder or label/metadata file, any supported format), or video files and
folders of videos (unlabelled, no flag needed). Without --out the scores are printed; with --out
and no --format the file is a plain score list: CSV `file,score` (format `scores`), or JSON
`{"file": score}` (`scores-json`) for a .json --out.

One pipeline: decode sampled frames/audio -> faces (same parameters as the training cache) ->
model -> per-frame / per-clip scores -> video score by a named aggregation (--aggregate) ->
temporal proposals (avdf1m-task2). A localizer run reads its dense features from a features
folder with --features FEATS (`fakelens features RUN DATA --split test --out FEATS`, the
encoder run its training features came from) instead of decoding the videos again; a folder
of another encoder or other settings, or one without some of the videos, is refused. The
submission is validated by the format's writer; the ids are the dataset's expected ids (its
test listing) or, for labelled data, every video.

Failures are listed with their reason in FILE.failures.json. By default any failure stops the
command before a submission is written; --on-error prior gives failed videos the training-set
prior P(fake) instead (recorded in the failures report), never a silent 0.5. An audio-visual
model scores a video without audio from its visual head and one without a face from its audio
head; the Prediction's `streams` says so ("visual only", "audio only") and FILE.failures.json
lists those videos.

Resumable: each scored video is journaled in FILE.progress.jsonl as it finishes, so a run that is
killed or fails, started again with the same checkpoint and settings, scores only the videos it
had not finished (failed ones are tried again); the journal is removed once FILE is written.
"""

from __future__ import annotations

import argparse

from fakelens.inference.device import DEVICE_HELP


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("predict", help="score videos with a trained run and write a validated submission",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", help="a `fakelens train` run folder or a .ckpt file")
    p.add_argument("data", metavar="DATA", nargs="+",
                   help="a dataset folder or label/metadata file, or video files and folders of videos")
    p.add_argument("--format", default=None, dest="fmt",
                   help="submission format: dfdc, csv, avdf1m-task1, avdf1m-task2, lavdf, or plain scores: scores "
                        "(CSV file,score), scores-json (default: scores, scores-json for a .json --out)")
    p.add_argument("--out", default=None, help="submission file to write (default: print the scores)")
    p.add_argument("--data-format", default=None, help="dataset format of DATA (default: detected; video files "
                   "and folders of videos need none)")
    p.add_argument("--split", default=None, help="only this split of DATA (e.g. test)")
    p.add_argument("--aggregate", default=None, help="video score strategy: mean, max, median, topk_mean, "
                   "confident_mean (default: the run's predict.aggregate)")
    p.add_argument("--face-aggregate", default=None, help="video score from its faces' scores, each face track "
                   "scored on its own frames: max (default: the most suspicious person), mean, frames_weighted, "
                   "main (default: the run's predict.face_aggregate)")
    p.add_argument("--level", choices=["frames", "clips"], default=None,
                   help="aggregate per-frame or per-clip scores (default: the run's predict.level)")
    p.add_argument("--proposals", choices=["auto", "boundaries", "thresholds"], default=None,
                   help="task-2 proposals: a localizer's learned boundaries, or thresholds of the per-frame "
                        "(per-step) scores (default: the run's predict.proposals; auto: boundaries for a localizer)")
    p.add_argument("--fps", type=float, default=None, metavar="F",
                   help="sample F frames per second of each video instead of the run's sampling (e.g. a clip "
                   "classifier trained on 24 frames a video, scored over every part of long videos for "
                   "avdf1m-task2 proposals; its training rate keeps its clips as long as in training)")
    p.add_argument("--features", default=None, metavar="FEATS",
                   help="a localizer run's dense features read from this folder (made by `fakelens features "
                   "RUN DATA --split SPLIT --out FEATS` with the encoder run its training features came from) "
                   "instead of computed again from the media; refused when its encoder or settings differ")
    p.add_argument("--on-error", choices=["raise", "prior"], default="raise",
                   help="failed videos: stop (default) or give them the training prior, recorded")
    p.add_argument("--no-face", choices=["error", "full_frame"], default=None,
                   help="a video without a face: a failure, or score the full frame (recorded)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per forward pass (clips of several videos together)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--workers", type=int, default=0, help="processes decoding and finding faces, a few videos "
                   "ahead each (0 = this one)")
    p.add_argument("--predictions", default=None, metavar="JSON",
                   help="also write per-video scores, frame scores, proposals and per-face scores (`faces`: one per "
                   "face track, with its frames, boxes and detection confidence; `face_aggregate`) to this JSON file")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import json
    import sys
    from pathlib import Path

    from fakelens.atomic import atomic_write_text, ensure_writable, remove_stale_temporaries
    from fakelens.cli.output import _jsonable, print_json, print_table
    from fakelens.data.formats import load_inputs
    from fakelens.data.formats.base import note_own_outputs
    from fakelens.errors import ConfigError, FakelensError
    from fakelens.inference.aggregate import AGGREGATIONS, FACE_AGGREGATIONS
    from fakelens.submission import SUBMISSION_FORMATS, write_submission
    from fakelens.types import Proposal

    if args.fmt is not None and args.out is None:
        raise ConfigError(f"--format {args.fmt} writes a file: give --out FILE")
    out = Path(args.out) if args.out is not None else None
    from fakelens.io.video import VIDEO_EXTENSIONS

    if out is not None and out.suffix.lower() in VIDEO_EXTENSIONS:
        # a CSV named .mp4 would be scanned as a video by the next predict of its folder
        raise ConfigError(f"--out {out}: {out.suffix} is a video file name; predict writes scores or a "
                          "submission: give a .csv or .json file")
    if args.fmt is None:
        args.fmt = "scores-json" if out is not None and out.suffix.lower() == ".json" else "scores"
    SUBMISSION_FORMATS.get(args.fmt)  # unknown formats fail before any work
    if args.aggregate is not None:
        AGGREGATIONS.get(args.aggregate)
    if args.face_aggregate is not None:
        FACE_AGGREGATIONS.get(args.face_aggregate)
    from fakelens.inference.runs import resolve_checkpoint

    resolve_checkpoint(args.run)  # a wrong run path is said at once, before torch loads
    if args.features is not None and not Path(args.features).is_dir():
        raise ConfigError(f"--features {args.features}: no such folder (make it with `fakelens features RUN DATA "
                          f"--split SPLIT --out {args.features}`)")
    # The flags are checked: now the heavy imports (torch, the models).
    from fakelens.inference.device import describe_device, resolve_device
    from fakelens.inference.pipeline import Predictor, failures_report, load_run, one_stream

    device = resolve_device(args.device)
    if out is not None:
        ensure_writable(out.parent)  # a full or read-only output folder fails now, not after hours of work
    if args.predictions:
        ensure_writable(Path(args.predictions).parent)
    ds = load_inputs(args.data, format=args.data_format, split=args.split)  # before loading the model
    if not ds.records:
        raise FakelensError(f"{args.data[0]}: no videos{f' in split {args.split!r}' if args.split else ''}")
    expected = _expected_ids(ds, args.fmt, args.data[0], out)  # a submission that cannot be written: said now
    # Printed scores write no submission and no failures report (failures are printed); only a
    # --predictions file, when one is named.
    failures_path = out.with_name(out.name + ".failures.json") if out is not None else None
    run_ = load_run(args.run)
    predictor = Predictor(run_, aggregate_name=args.aggregate, level=args.level, no_face=args.no_face,
                          batch_size=args.batch_size, device=device, face_aggregate=args.face_aggregate,
                          proposals=args.proposals, sample_fps=args.fps, features=args.features)
    journal = None  # printed scores write no file at all: nothing to resume
    done: dict = {}
    todo = list(ds.records)
    if out is not None:
        from fakelens.inference.journal import PredictJournal, split_done
        from fakelens.inference.pipeline import journal_header

        remove_stale_temporaries(out.parent)  # what a killed run was writing here
        journal = PredictJournal.open(out, journal_header(run_, predictor))
        done, todo = split_done(journal, ds.records)
    try:
        result = predictor.predict(todo, on_error=args.on_error, workers=args.workers,
                                   progress=not args.no_progress and not args.json,
                                   on_prediction=journal.add if journal is not None else None)
    finally:
        if journal is not None:
            journal.close()
    if done:
        new = {p.id: p for p in result.predictions}
        result.predictions = [done[r.id] if r.id in done else new[r.id] for r in ds.records
                              if r.id in done or r.id in new]
    degraded = one_stream(result.predictions, predictor.inputs)
    if (result.failures or degraded) and failures_path is not None:
        atomic_write_text(failures_path, json.dumps(failures_report(result, run_.prior, predictor.inputs),
                                                    indent=2) + "\n")
    if result.failures and args.on_error == "raise":
        lines = "\n".join(f"  {f.id}: {f.reason}" for f in result.failures[:20])
        more = f"\n  ... and {len(result.failures) - 20} more" if len(result.failures) > 20 else ""
        listed = f" (listed in {failures_path})" if failures_path is not None else ""
        raise FakelensError(f"{len(result.failures)} of {len(ds.records)} videos failed{listed}; "
                            f"no submission written. Fix them, or pass --on-error prior to give them the training "
                            f"prior {run_.prior:.4f}:\n{lines}{more}")
    if out is None:  # no submission: the scores, printed (and the --predictions file, asked for by name)
        # a --predictions JSON holds the timeline: how coarse it is concerns it
        for note in predictor.notes_for(timeline=bool(args.predictions)):  # what the scores leave out
            print(f"note: {note}", file=sys.stderr)
        if args.predictions:
            atomic_write_text(Path(args.predictions), json.dumps(_jsonable(result.predictions)) + "\n")
            note_own_outputs([args.predictions], args.data)
        return _print_scores(result, args.json)
    # a timeline or proposals are written (Task 2 formats, --predictions JSON): how coarse they are concerns them
    notes = [*predictor.notes_for(timeline=SUBMISSION_FORMATS.get(args.fmt).has_proposals or bool(args.predictions)),
             *journal.notes]
    # Failed videos (prior fallback) have no proposals: the writer gives them one short proposal at the prior.
    fallback_proposal = Proposal(run_.prior, 0.0, 0.04) if result.failures else None
    report = write_submission(args.fmt, out, result.predictions, expected, fallback_proposal=fallback_proposal)
    if args.predictions:
        atomic_write_text(Path(args.predictions), json.dumps(_jsonable(result.predictions)) + "\n")
    # outputs written into a folder of videos being scored: predicting it again reads past them
    note_own_outputs([out, *([failures_path] if failures_path.exists() else []),
                      *([args.predictions] if args.predictions else [])], args.data)
    journal.remove()
    n = len(result.predictions)
    summary = {
        "submission": str(out), "format": args.fmt, "videos": n, "failed": len(result.failures),
        "failures_report": str(failures_path) if result.failures or degraded else None,
        "one_stream": {s: sum(p.streams == s for p in degraded) for s in ("visual only", "audio only")},
        "aggregate": predictor.aggregate_name, "level": predictor.level,
        "face_aggregate": predictor.face_aggregate, "checkpoint": str(run_.checkpoint),
        "device": describe_device(device),
        "seconds": {k: round(v, 3) for k, v in result.timings.items()},
        "fallback_ids": list(getattr(report, "fallback_ids", []) or []),
        "resumed": len(done), "notes": notes,
    }
    if args.json:
        print_json(summary)
        return 0
    rows = [["submission", str(out)], ["format", args.fmt], ["videos scored", n - len(result.failures)],
            ["failed (prior fallback)", len(result.failures)],
            ["aggregation", f"{predictor.aggregate_name} over {'steps' if predictor.dense else predictor.level}"],
            ["faces", f"{predictor.face_aggregate} over face tracks"], ["device", describe_device(device)]]
    if degraded:
        rows.append([f"scored from one stream (listed in {failures_path.name})", len(degraded)])
    if done:
        rows.append(["resumed (scored by an earlier run)", len(done)])
    rows += [[f"time: {k} (s)", f"{v:.2f}"] for k, v in result.timings.items()]  # not 4 decimals of seconds
    print_table("predict", ["", "value"], rows)
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    return 0


PLAIN_FORMATS = ("scores", "scores-json")  # every scored video, not a challenge's list of ids


def _expected_ids(ds, fmt: str, data: str, out) -> list[str]:
    """The ids the output holds, in order. A dataset read whole (no --split) may hold labelled
    videos beside the test set its sample submission / test list names: a challenge submission
    holds the test ids only, so that is refused before any video is scored (it failed at the write,
    after scoring every video: "N ids not expected"); plain scores hold every video."""
    from fakelens.errors import FakelensError

    if not ds.expected_ids:
        return [r.id for r in ds.records]
    listed = set(ds.expected_ids)
    others = [r for r in ds.records if r.id not in listed]
    if not others:
        return list(ds.expected_ids)
    if fmt in PLAIN_FORMATS or out is None:
        have = {r.id for r in ds.records}
        return [r.id for r in ds.records] + [i for i in ds.expected_ids if i not in have]
    tests = sorted({str(r.split) for r in ds.records if r.id in listed and r.split})
    splits = sorted({str(r.split) for r in others if r.split}) or ["(none)"]
    hint = f"pass --split {tests[0]} to score the test videos" if len(tests) == 1 else "pass --split for the test split"
    raise FakelensError(f"{data}: a {fmt} submission holds the {len(listed)} ids of the test set, but this dataset "
                        f"also holds {len(others)} other videos (split {', '.join(splits)}); {hint}, or --format "
                        "scores for a score of every video")


def _print_scores(result, as_json: bool) -> int:
    """The video scores on stdout: a table (file, P(fake), fallback), or JSON {"file": score}."""
    from fakelens.cli.output import print_json, print_table

    if as_json:
        print_json({p.id: p.score for p in result.predictions})
        return 0
    from fakelens.report.document import faces_text

    # a video an audio-visual model scored from one stream says so ("visual only": no audio)
    rows = [[p.id, p.score, p.fallback or (p.streams if p.streams in ("visual only", "audio only") else "")]
            for p in result.predictions]
    how = [faces_text(p.faces, p.face_aggregate) for p in result.predictions]
    if any(how):  # several faces: how their scores made the video's, and which face decided
        rows = [[*r, h or ""] for r, h in zip(rows, how)]
    print_table("P(fake) per video", ["video", "P(fake)", "fallback", *(["faces"] if any(how) else [])], rows)
    return 0
