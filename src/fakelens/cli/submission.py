"""`fakelens submission check FILE --expect IDS`: validate a submission file without scoring it."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "check",
        help="validate a submission file against the expected ids",
        description="Check a submission (DFDC/CSV submission.csv, AV-1M prediction.txt or prediction.json): "
        "every expected id once, no extras, finite scores in [0, 1], 0 <= start < end, proposals sorted by "
        "confidence, at least one proposal per file. Exit status 0 when valid, 2 otherwise.",
    )
    p.add_argument("file", type=Path, help="the submission file")
    p.add_argument("--expect", type=Path, required=True,
                   help="expected ids: sample_submission.csv, a metadata/label file, a dataset folder or a folder of videos")
    p.add_argument("--format", dest="fmt", default=None, help="submission format; detected if omitted")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fakelens.cli.output import console, print_json
    from fakelens.submission import check_submission, expected_ids_from, read_submission

    expected = expected_ids_from(args.expect)
    sub = read_submission(args.file, args.fmt, strict=True)
    check_submission(sub, expected, strict=True)
    result = {"file": str(args.file), "format": sub.format, "ids": len(sub.ids), "valid": True}
    if sub.proposals is not None:
        result["proposals"] = int(len(sub.proposals.rows))
    if args.json:
        print_json(result)
    else:
        extra = f", {result['proposals']} proposals" if "proposals" in result else ""
        console().print(f"[green]valid[/green] {sub.format} submission: {len(sub.ids)} ids{extra} ({args.file})")
    return 0
