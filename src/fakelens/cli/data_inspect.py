"""`fakelens data inspect PATH`: what a dataset holds, before spending hours preprocessing it.

Prints the detected format, video counts by split x label and by manipulated modality, fake segment
statistics, missing videos, and a duration/resolution/fps summary probed from a few videos.
Heavy imports happen inside `run` so that `fakelens --help` stays fast.
"""

from __future__ import annotations

import argparse
from collections import Counter
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    from fakelens.data.formats import Dataset
    from fakelens.types import Segment

NO_SPLIT = "-"
MAX_LISTED = 10


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "inspect",
        help="summarize a dataset: format, counts, segments, missing files, media properties",
        description="Read a dataset folder or label file (DFDC, AV-Deepfake1M, LAV-DF, CSV labels, "
        "real/fake folders), check that its videos exist, and summarize it.",
    )
    p.add_argument("path", help="dataset folder or label/metadata file")
    p.add_argument("--format", default=None, help="dataset format (default: detected); one of "
                   "avdeepfake1m, csv, dfdc, folders, lavdf")
    p.add_argument("--split", default=None, help="only this split")
    p.add_argument("--allow-missing", action="store_true",
                   help="skip listed videos that are missing on disk (they are counted and listed)")
    p.add_argument("--labels-only", action="store_true",
                   help="read the labels only: do not check that videos exist and do not probe them")
    p.add_argument("--probe", type=int, default=20, metavar="N",
                   help="probe duration/resolution/fps of up to N videos, evenly spread (0: none; default 20)")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from fakelens.data.formats import load_dataset
    from fakelens.errors import ConfigError

    if args.probe < 0:
        raise ConfigError(f"--probe must be >= 0, got {args.probe}")
    ds = load_dataset(args.path, args.format, allow_missing=args.allow_missing, split=args.split,
                      check_files=not args.labels_only)
    summary = summarize(ds, probe_n=0 if args.labels_only else args.probe)
    summary["detected"] = args.format is None
    if args.json:
        from fakelens.cli.output import print_json

        print_json(summary)
    else:
        _print_human(summary)
    return 0


# --------------------------------------------------------------------------------------- summary


def _stats(values: Sequence[float]) -> dict[str, float] | None:
    import statistics

    if not values:
        return None
    return {"min": min(values), "mean": statistics.fmean(values), "median": statistics.median(values),
            "max": max(values)}


def _union_length(segments: Sequence["Segment"]) -> float:
    """Total time covered by possibly overlapping segments, in seconds."""
    total, end = 0.0, float("-inf")
    for seg in sorted(segments):
        if seg.start >= end:
            total += seg.duration
        elif seg.end > end:
            total += seg.end - end
        end = max(end, seg.end)
    return total


def summarize(ds: "Dataset", probe_n: int = 20) -> dict[str, Any]:
    """Counts, segment and duration statistics of a dataset, plus `probe_n` probed videos (JSON-able)."""
    from fakelens.types import Label, Modality

    counts: dict[str, dict[str, int]] = {}
    for rec in ds.records:
        row = counts.setdefault(rec.split if rec.split is not None else NO_SPLIT,
                                {"real": 0, "fake": 0, "unknown": 0, "total": 0})
        row[rec.label.value] += 1
        row["total"] += 1
    counts = {k: counts[k] for k in sorted(counts, key=lambda s: (s == NO_SPLIT, s))}
    fakes = [r for r in ds.records if r.label is Label.FAKE]
    with_segments = [r for r in fakes if r.segments]
    seg_durations = [s.duration for r in with_segments for s in r.segments]
    fractions = [_union_length(r.segments) / r.duration for r in with_segments if r.duration]
    return {
        "path": str(ds.root),
        "format": ds.format,
        "sources": [str(s) for s in ds.sources],
        "videos": len(ds.records),
        "counts": counts,
        # an unlabelled (test) video's modality is no statement: counted as unlabelled, not as "none" (real)
        "modality": {**{m.value: n for m in Modality
                        if (n := sum(r.modality is m and r.label is not Label.UNKNOWN for r in ds.records))},
                     **({"unlabelled": n} if (n := sum(r.label is Label.UNKNOWN for r in ds.records)) else {})},
        "segments": {
            "fake_videos": len(fakes),
            "fake_videos_with_segments": len(with_segments),
            "whole_video_fakes": len(fakes) - len(with_segments),
            "segments": len(seg_durations),
            "per_video": _stats([float(len(r.segments)) for r in with_segments]),
            "duration_s": _stats(seg_durations),
            "fake_fraction_of_video": _stats(fractions),
        },
        "label_duration_s": _stats([r.duration for r in ds.records if r.duration is not None]),
        "missing": {"count": len(ds.missing), "first": ds.missing[:MAX_LISTED]},
        "expected_ids": None if ds.expected_ids is None else len(ds.expected_ids),
        "notes": list(ds.notes),
        "probe": probe_summary(ds, probe_n),
    }


def probe_summary(ds: "Dataset", n: int) -> dict[str, Any] | None:
    """Probe up to n videos evenly spread over the records; failures are listed, never hidden."""
    if n <= 0:
        return None
    from fakelens.errors import MediaError
    from fakelens.io.video import probe

    candidates = [r for r in ds.records if r.path is not None]
    if not candidates:
        return None
    k = min(n, len(candidates))
    picks = sorted({round(i * (len(candidates) - 1) / max(k - 1, 1)) for i in range(k)})
    infos, failures = [], []
    for i in picks:
        rec = candidates[i]
        try:
            infos.append(probe(rec.path))
        except MediaError as e:
            failures.append({"id": rec.id, "error": e.cause})
    return {
        "requested": n,
        "probed": len(picks),
        "ok": len(infos),
        "duration_s": _stats([info.duration for info in infos]),
        "fps": dict(Counter(f"{info.fps:g}" for info in infos).most_common()),
        "resolution": dict(Counter(f"{info.width}x{info.height}" for info in infos).most_common()),
        "with_audio": sum(bool(info.has_audio) for info in infos),
        "failures": failures,
    }


# --------------------------------------------------------------------------------------- printing


def _fmt_stats(stats: dict[str, float] | None, unit: str = "") -> str:
    if stats is None:
        return "n/a"
    return " / ".join(f"{stats[k]:.3g}{unit}" for k in ("min", "mean", "median", "max")) + " (min/mean/median/max)"


def _print_human(s: dict[str, Any]) -> None:
    from fakelens.cli.output import console, print_table

    con = console()
    con.soft_wrap = True  # long paths and notes stay on one line (greppable when piped)
    how = "detected" if s.get("detected") else "given"
    con.print(f"[bold]{s['path']}[/bold]: format [bold]{s['format']}[/bold] ({how}), {s['videos']} videos")
    con.print("read: " + ", ".join(s["sources"]), highlight=False)
    rows = [[split, c["real"], c["fake"], c["unknown"], c["total"]] for split, c in s["counts"].items()]
    if len(rows) > 1:
        rows.append(["all"] + [sum(r[i] for r in rows) for i in range(1, 5)])
    print_table("Videos by split and label", ["split", "real", "fake", "unknown", "total"], rows)
    print_table("Manipulated modality", ["modality", "videos"], list(s["modality"].items()))
    seg = s["segments"]
    if seg["fake_videos"]:
        parts = []
        if seg["fake_videos_with_segments"]:
            parts.append(f"{seg['fake_videos_with_segments']} with {seg['segments']} fake segments")
        if seg["whole_video_fakes"]:
            parts.append(f"{seg['whole_video_fakes']} whole-video (no segments)")
        con.print(f"fake videos: {seg['fake_videos']}: " + ", ".join(parts))
        if seg["segments"]:
            con.print(f"  segments per video: {_fmt_stats(seg['per_video'])}")
            con.print(f"  segment duration: {_fmt_stats(seg['duration_s'], ' s')}")
            con.print(f"  fake fraction of video: {_fmt_stats(seg['fake_fraction_of_video'])}")
    if s["label_duration_s"] is not None:
        con.print(f"duration from labels: {_fmt_stats(s['label_duration_s'], ' s')}")
    miss = s["missing"]
    if miss["count"]:
        more = f" and {miss['count'] - len(miss['first'])} more" if miss["count"] > len(miss["first"]) else ""
        con.print(f"[yellow]missing videos (skipped): {miss['count']}[/yellow]: "
                  + ", ".join(miss["first"]) + more, highlight=False)
    if s["expected_ids"] is not None:
        con.print(f"unlabeled test videos a submission must cover: {s['expected_ids']}")
    for note in s["notes"]:
        con.print(f"note: {note}", highlight=False)
    p = s["probe"]
    if p is not None:
        print_table(
            f"Probed {p['probed']} of {s['videos']} videos",
            ["property", "value"],
            [
                ["readable", f"{p['ok']} of {p['probed']}"],
                ["duration", _fmt_stats(p["duration_s"], " s")],
                ["fps", ", ".join(f"{k} ({v})" for k, v in p["fps"].items()) or "n/a"],
                ["resolution", ", ".join(f"{k} ({v})" for k, v in p["resolution"].items()) or "n/a"],
                ["with audio", f"{p['with_audio']} of {p['ok']}"],
            ],
        )
        for f in p["failures"]:
            con.print(f"[red]unreadable[/red] {f['id']}: {f['error']}", highlight=False)
