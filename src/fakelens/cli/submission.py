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
        "confidence, at least one proposal per file. Every problem is listed (--json: as JSON, also when "
        "the file cannot be read). Exit status 0 when valid, 2 otherwise.",
    )
    p.add_argument("file", type=Path, help="the submission file")
    p.add_argument("--expect", type=Path, required=True,
                   help="expected ids: sample_submission.csv, a metadata/label file, a dataset folder or a folder of videos")
    p.add_argument("--format", dest="fmt", default=None, help="submission format; detected if omitted (a "
                   "prediction.json checked against LAV-DF labels is named lavdf)")
    p.add_argument("--split", default=None,
                   help="expect only the videos of this split of a dataset's labels (e.g. test: LAV-DF's "
                        "metadata.json lists every split)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=run)


MAX_SHOWN = 100  # problems printed in the text output (--json lists every one)


def run(args: argparse.Namespace) -> int:
    import sys

    from fakelens.cli.output import console, print_json
    from fakelens.errors import FakelensError
    from fakelens.submission import check_submission, expected_ids_from, read_submission
    from fakelens.submission.base import dataset_submission_format, detect_submission_format

    result = {"file": str(args.file), "format": args.fmt, "ids": None, "valid": False, "errors": []}
    if args.split is not None:
        result["split"] = args.split
    errors: list = []
    try:
        expected = expected_ids_from(args.expect, split=args.split)
        fmt = args.fmt or dataset_submission_format(detect_submission_format(args.file), args.expect)
        sub = read_submission(args.file, fmt, strict=True, errors=errors)
        check_submission(sub, expected, strict=False, errors=errors)  # the read checked the rest
    except FakelensError as e:  # the file (or the expected ids) could not be read at all
        if not args.json:
            raise
        result["errors"] = [str(e)]
        print_json(result)
        return 2
    # ids: distinct ids read with a valid row; rejected: ids whose rows are errors (a bad score);
    # missing / extra: expected ids with no row at all, and ids not expected
    read = set(sub.ids)
    listed = read | sub.rejected
    wanted = set(expected)
    result = {"file": result["file"], "format": sub.format, **({"split": args.split} if args.split is not None else {}),
              "ids": len(read), "expected": len(wanted), "rejected": len(sub.rejected - read),
              "missing": len(wanted - listed), "extra": len(listed - wanted), "valid": not errors,
              "errors": [str(e) for e in errors]}
    if sub.proposals is not None:
        result["proposals"] = int(len(sub.proposals.rows))
    if args.json:
        print_json(result)
        return 0 if not errors else 2
    if errors:  # one problem per line, unwrapped (grep-able)
        print(f"invalid {sub.format} submission {args.file}: {len(errors)} problem(s)", file=sys.stderr)
        for e in errors[:MAX_SHOWN]:
            print(f"  {e}", file=sys.stderr)
        if len(errors) > MAX_SHOWN:
            print(f"  ... and {len(errors) - MAX_SHOWN} more (--json lists every one)", file=sys.stderr)
        return 2
    extra = f", {result['proposals']} proposals" if "proposals" in result else ""
    scope = f" of split {args.split!r}" if args.split is not None else ""
    console().print(f"[green]valid[/green] {sub.format} submission: {len(sub.ids)} ids{scope}{extra} ({args.file})")
    return 0
