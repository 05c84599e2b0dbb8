"""`fakelens robustness RUN DATA --out DIR`: a run's AUC and accuracy under degradations.

Scores the labelled videos of DATA (e.g. --split test) clean, then under each perturbation at
each severity: H.264 re-encoding (CRF), JPEG quality, downscaling, Gaussian blur and noise,
contrast/brightness, audio noise (SNR), resampling and MP3, the audio removed, and white-box FGSM
and PGD attacks on the face crops (torchattacks). A localization run (a task-2 localizer) also
gets AP@IoU 0.5 / 0.75 and AR@10 of its proposals against the fake segments under each
condition. `--perturb NAME` (repeatable; NAME=S1,S2 for other severities) picks some; `--list`
shows them all. Writes DIR/robustness.csv, DIR/robustness.png (AUC against severity; AP@0.5 and AR@10 too
for a localization run) and DIR/robustness.md, and prints the table. Perturbed copies are kept
under DIR/media and finished conditions under DIR/conditions: run again, only what is missing is
done. A video that cannot be scored under a condition gets the training prior and is counted.
"""

from __future__ import annotations

import argparse

from fakelens.inference.device import DEVICE_HELP


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("robustness", help="AUC and accuracy of a run under compression, noise, blur, "
                              "audio noise and adversarial attacks", description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", metavar="RUN_OR_CHECKPOINT", nargs="?", help="a `fakelens train` run folder or a .ckpt file")
    p.add_argument("data", metavar="DATA", nargs="?", help="labelled dataset folder or label/metadata file")
    p.add_argument("--out", help="folder for the table, the plot and the perturbed copies")
    p.add_argument("--perturb", action="append", metavar="NAME[=S1,S2,...]",
                   help="a perturbation, optionally at these severities (repeatable; default: all)")
    p.add_argument("--list", action="store_true", help="list the perturbations and their default severities")
    p.add_argument("--split", default=None, help="only this split of DATA (e.g. test)")
    p.add_argument("--data-format", default=None, help="dataset format of DATA (default: detected)")
    p.add_argument("--limit", type=int, default=None, help="only the first N labelled videos")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise and of PGD's random start")
    p.add_argument("--batch-size", type=int, default=8, help="clips per forward pass")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--workers", type=int, default=0, help="processes decoding and finding faces")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the rows as JSON")
    p.set_defaults(func=run)


def _list() -> int:
    from fakelens.cli.output import print_table
    from fakelens.io.perturb import PERTURBATIONS

    rows = [[p.name, p.stream, ", ".join(f"{s:g}" for s in p.severities), p.unit, p.about]
            for p in (PERTURBATIONS.get(n) for n in PERTURBATIONS.names())]
    print_table("perturbations", ["name", "stream", "severities", "unit", "what"], rows)
    return 0


def run(args: argparse.Namespace) -> int:
    import dataclasses
    import sys
    from pathlib import Path

    from fakelens.errors import FakelensError

    if args.list:
        return _list()
    if not args.run or not args.data or not args.out:
        raise FakelensError("robustness needs RUN, DATA and --out (or --list)")
    from fakelens.inference.runs import resolve_checkpoint

    resolve_checkpoint(args.run)  # a wrong run path is said at once, before torch loads
    from fakelens.atomic import atomic_write_bytes, atomic_write_text
    from fakelens.cli.output import print_json, print_table
    from fakelens.data.formats import load_dataset
    from fakelens.inference.device import resolve_device
    from fakelens.inference.pipeline import Predictor, load_run
    from fakelens.inference.robustness import (RobustnessJob, applicable, markdown_table, parse_perturb,
                                               terminal_tables, write_csv)
    from fakelens.report.robustness import robustness_png

    conditions = parse_perturb(args.perturb)  # before anything heavy: a bad name fails now
    if args.limit is not None and args.limit < 1:
        raise FakelensError(f"--limit must be >= 1, got {args.limit}")
    device = resolve_device(args.device)
    run_ = load_run(args.run, device=device)
    predictor = Predictor(run_, batch_size=args.batch_size, device=device)

    def log(line: str) -> None:
        if not args.json:
            print(line, file=sys.stderr)

    conditions = applicable(conditions, predictor, explicit=bool(args.perturb), log=log)
    ds = load_dataset(args.data, format=args.data_format, split=args.split)
    records = list(ds.records)[: args.limit] if args.limit else list(ds.records)
    out = Path(args.out)
    job = RobustnessJob(predictor, records, out, seed=args.seed, workers=args.workers,
                        progress=not args.no_progress and not args.json, log=log)
    rows = job.run(conditions)
    write_csv(rows, out / "robustness.csv")
    title = f"{Path(args.run).name}: {len(job.records)} videos of {Path(args.data).name}"
    atomic_write_bytes(out / "robustness.png", robustness_png(rows, title))
    atomic_write_text(out / "robustness.md", markdown_table(rows) + "\n")
    if args.json:
        print_json([dataclasses.asdict(r) for r in rows])
        return 0
    for title, head, cells in terminal_tables(rows, len(job.records)):
        print_table(title, head, cells)
    print(f"table {out / 'robustness.csv'}, plot {out / 'robustness.png'}")
    return 0
