"""`fakelens baseline DATA --split test`: the side-feature baseline (file size, bitrate, duration).

A logistic regression on the three numbers, fitted on the training split and scored on the test
split: the AUC a detector gets without looking at faces or listening to voices. Print it beside a
model's AUC to see how much of the score the model earns (`make demo` does).
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "baseline",
        help="AUC of a side-feature baseline (file size, bitrate, duration), to put beside a model's",
        description="Fit a logistic regression on file size, bitrate and duration of the training "
        "split's videos and print its AUC on the test split: what a detector scores without "
        "looking at the content.",
    )
    p.add_argument("data", type=Path, help="dataset folder (or label file)")
    p.add_argument("--split", default="test", help="split to score (default test)")
    p.add_argument("--train-split", default="train", help="split to fit on (default train)")
    p.add_argument("--format", default=None, help="dataset format (default: detected)")
    p.add_argument("--test-labels", type=Path, default=None,
                   help="labels of the scored split when DATA lists it unlabelled (DFDC: labels.csv)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fakelens.data.formats import load_dataset
    from fakelens.data.side_features import SIDE_FEATURES, side_baseline, side_features
    from fakelens.errors import FakelensError

    train = [r for r in load_dataset(args.data, format=args.format, split=args.train_split).records if r.has_label]
    if args.test_labels is not None:
        test = [r for r in load_dataset(args.test_labels).records if r.has_label]
    else:
        test = [r for r in load_dataset(args.data, format=args.format, split=args.split).records if r.has_label]
    if not test:
        raise FakelensError(f"{args.data}: the {args.split} split has no labels; pass them with --test-labels")
    result = side_baseline(side_features(train), [r.label.as_int for r in train],
                           side_features(test), [r.label.as_int for r in test])
    if args.json:
        from fakelens.cli.output import print_json

        print_json({"data": args.data, "train_split": args.train_split, "split": args.split,
                    "features": list(SIDE_FEATURES), "auc": result.auc, "feature_auc": result.feature_auc,
                    "n_train": result.n_train, "n_test": result.n_test, "coef": result.coef})
        return 0
    from fakelens.cli.output import print_table

    rows = [["file size, bitrate, duration (logistic regression)", result.auc]]
    rows += [[f"{name.replace('_', ' ')} alone", value] for name, value in result.feature_auc.items()]
    print_table(f"side-feature baseline: fitted on {result.n_train} {args.train_split} videos, "
                f"scored on {result.n_test} {args.split} videos", ["features", "AUC"], rows)
    return 0
