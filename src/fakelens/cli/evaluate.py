"""`fakelens evaluate PREDICTIONS --labels LABELS`: score any supported prediction file against any
supported label source and print every metric that applies (table, or --json; --plot for curves)."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "evaluate",
        help="score predictions against labels (AUC, TPR@FPR, log loss, EER, AP/AR, AV-1M score)",
        description="Score a prediction file (DFDC/CSV submission.csv, AV-1M prediction.txt or "
        "prediction.json) against labels (DFDC metadata.json, AV-1M/LAV-DF metadata, CSV labels, "
        "or a dataset folder). Formats are detected.",
    )
    p.add_argument("predictions", type=Path, help="prediction / submission file")
    p.add_argument("--labels", type=Path, required=True, help="label file or dataset folder")
    p.add_argument("--format", dest="pred_format", default=None,
                   help="prediction format (dfdc, csv, avdf1m-task1, avdf1m-task2, lavdf); detected if omitted")
    p.add_argument("--labels-format", default=None, help="dataset format of --labels; detected if omitted")
    p.add_argument("--split", default=None, help="keep only this split of the labels")
    p.add_argument("--preset", choices=("avdf1m", "lavdf"), default=None,
                   help="localization thresholds (default: lavdf for LAV-DF labels, else avdf1m)")
    p.add_argument("--fpr", type=float, default=1e-3, help="FPR for TPR@FPR (default 1e-3)")
    p.add_argument("--threshold", type=float, default=0.5, help="decision threshold for accuracy etc.")
    p.add_argument("--subset", action="store_true",
                   help="score only the labelled videos the predictions cover, saying how many (default: a "
                        "labelled video without a prediction is an error)")
    p.add_argument("--json", action="store_true", help="print machine-readable JSON")
    p.add_argument("--plot", type=Path, default=None,
                   help="write a ROC curve (scores) or precision-recall + AR@N plot (proposals) to this image")
    p.set_defaults(func=run)


def evaluate(predictions: Path, labels: Path, *, pred_format: str | None = None, labels_format: str | None = None,
             split: str | None = None, preset: str | None = None, fpr: float = 1e-3, threshold: float = 0.5,
             subset: bool = False) -> dict[str, Any]:
    """Read both sides, align predictions to the labelled videos and compute every applicable metric."""
    from fakelens.data.formats import load_dataset
    from fakelens.errors import FakelensError
    from fakelens.metrics.classification import classification_report
    from fakelens.metrics.localization import localization_report, pack_segments
    from fakelens.submission import read_submission

    sub = read_submission(predictions, pred_format, strict=False)
    ds = load_dataset(labels, format=labels_format, split=split, check_files=False)
    records = [r for r in ds.records if r.has_label]
    if not records:
        raise FakelensError(f"{labels}: no labelled videos (a test listing without labels cannot be scored)")
    from fakelens.submission.base import ALIASES

    # a prediction.json scored against LAV-DF labels is a LAV-DF submission (the layout is Task 2's)
    named = ds.format if pred_format is None and ALIASES.get(ds.format) == sub.format else sub.format
    out: dict[str, Any] = {"predictions": str(predictions), "prediction_format": named,
                           "labels": str(labels), "labels_format": ds.format, "notes": list(sub.notes)}
    have = set(sub.ids)
    missing = [r.id for r in records if r.id not in have]
    if missing:
        shown = ", ".join(repr(m) for m in missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5 else "")
        if len(missing) == len(records):  # --subset cannot help: say which ids do not match
            sample = ", ".join(repr(i) for i in sub.ids[:3]) or "none"
            raise FakelensError(f"{predictions}: none of the {len(records)} labelled videos has a prediction "
                                f"(labels name e.g. {shown}; the predictions name e.g. {sample}): check that "
                                "they are for this dataset and split (--split) and name videos the same way")
        if not subset:
            # labels of every split (LAV-DF's metadata.json, an AV-1M folder) and predictions of one of them
            covered = {r.split for r in records if r.id in have}
            one = next(iter(covered)) if split is None and len(covered) == 1 else None
            whole = one is not None and all(r.id in have for r in records if r.split == one)
            hint = f"pass --split {one} to score that split, or " if whole else "pass "
            raise FakelensError(f"{predictions}: {len(missing)} of {len(records)} labelled videos have no prediction: "
                                f"{shown}; {hint}--subset to score only the {len(records) - len(missing)} covered ones")
        out["notes"].append(f"--subset: {len(records) - len(missing)} of {len(records)} labelled videos scored; "
                            f"{len(missing)} have no prediction ({shown})")
        gone = set(missing)
        records = [r for r in records if r.id not in gone]
    out["scored"] = len(records)
    extra = len(have) - len({r.id for r in records} & have)
    if extra:
        out["notes"].append(f"{extra} predicted videos have no label and were ignored")
    if sub.proposals is not None:
        if not any(r.segments for r in records):
            raise FakelensError(f"{labels}: no fake segments in the labels, so localization cannot be scored")
        gt = pack_segments(records)
        out["localization"] = localization_report(sub.proposals, gt,
                                                  preset or ("lavdf" if ds.format == "lavdf" else "avdf1m"))
        out["_curves"] = (sub.proposals, gt, out["localization"]["preset"])
    else:
        scores = sub.score_dict()
        y = [r.label.as_int for r in records]
        s = [scores[r.id] for r in records]
        out["classification"] = classification_report(y, s, fpr=fpr, threshold=threshold)
        out["notes"].extend(out["classification"].pop("notes"))
        out["_curves"] = (y, s)
    return out


def _rows(result: dict[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    if "classification" in result:
        c = result["classification"]
        rows.append(("videos (fake / real)", f"{c['videos']} ({c['fake']} / {c['real']})"))
        if "auc" in c:
            t = c["tpr_at_fpr"]
            rows += [("AUC", c["auc"]), (f"TPR@FPR={t.fpr:g} ({t.n_negatives} real)", t.tpr), ("EER", c["eer"])]
        if "log_loss" in c:
            rows.append(("log loss", c["log_loss"]))
        m = c["at_threshold"]

        def value(v: float) -> Any:
            return "undefined (see the notes)" if math.isnan(v) else v

        rows += [(f"accuracy @ {m.threshold:g}", m.accuracy), (f"precision @ {m.threshold:g}", value(m.precision)),
                 (f"recall @ {m.threshold:g}", value(m.recall)), (f"F1 @ {m.threshold:g}", value(m.f1))]
    if "localization" in result:
        loc = result["localization"]
        rows.append(("videos / segments / proposals", f"{loc['videos']} / {loc['segments']} / {loc['proposals']}"))
        rows += [(f"AP@{t:g}", v) for t, v in loc["ap"].items()]
        rows += [(f"AR@{n}", v) for n, v in loc["ar"].items()]
        if "score" in loc:
            rows.append(("AV-1M score", loc["score"]))
    return rows


def _plot(result: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fakelens.atomic import atomic_output

    if "classification" in result:
        from fakelens.metrics.classification import roc_curve

        y, s = result["_curves"]
        c = roc_curve(y, s)
        fig, ax = plt.subplots(figsize=(5, 5))
        ax.plot(c.fpr, c.tpr, label=f"AUC {result['classification'].get('auc', float('nan')):.4f}")
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.set(xlabel="false positive rate", ylabel="true positive rate", title="ROC")
        ax.legend(loc="lower right")
    else:
        from fakelens.metrics.localization import AR_IOU_THRESHOLDS, PRESETS, ap_curves, ar_at_n

        pp, gt, preset = result["_curves"]
        ap_t, _ = PRESETS[preset]
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(10, 4.5))
        for t, (rec, prec) in ap_curves(pp, gt, ap_t).items():
            a1.plot(rec, prec, label=f"IoU>{t:g}: AP {result['localization']['ap'][t]:.4f}")
        a1.set(xlabel="recall", ylabel="precision", title="precision-recall (pooled proposals)", xlim=(0, 1), ylim=(0, 1.02))
        a1.legend(loc="upper right", fontsize=8)
        max_n = int(max(1, min(100, pp.counts().max() if len(pp.ids) else 1)))
        ns = sorted(set(int(round(x)) for x in [1, 2, 3, 5, 10, 20, 30, 50, 100] if x <= max_n) | {max_n})
        ar = ar_at_n(pp, gt, ns, AR_IOU_THRESHOLDS)
        a2.plot(ns, [ar[n] for n in ns], marker="o")
        a2.set(xscale="log", xlabel="proposals per video (N)", ylabel="AR@N (IoU 0.5:0.05:0.95)", title="average recall",
               ylim=(0, 1.02))
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    from fakelens.cli.output import console, print_json, print_table

    result = evaluate(args.predictions, args.labels, pred_format=args.pred_format, labels_format=args.labels_format,
                      split=args.split, preset=args.preset, fpr=args.fpr, threshold=args.threshold,
                      subset=args.subset)
    if args.plot is not None:
        _plot(result, args.plot)
        result["plot"] = str(args.plot)
    result.pop("_curves")
    if args.json:
        print_json(result)
        return 0
    title = f"{args.predictions.name} ({result['prediction_format']}) vs {args.labels.name} ({result['labels_format']})"
    print_table(title, ["metric", "value"], _rows(result))
    for note in result["notes"]:
        console().print(f"[yellow]note:[/yellow] {note}")
    if args.plot is not None:
        console().print(f"plot written to {args.plot}")
    return 0
