"""`fakelens detect VIDEO... --model RUN_OR_CHECKPOINT [--out DIR]`: a forensic report per video.

For each video (a file, or every video file under a folder): the verdict (P(fake) by the run's
aggregation, the visual and audio fakeness when the model has those heads), the suspicious
segments in seconds (the Prediction's proposals at or above --threshold), and the evidence in
DIR/<video stem>/: report.json (every number; schema fakelens/report/report.schema.json),
timeline.png, crops.png (most and least suspicious face crops with Grad-CAM, the log-mel with its
most suspicious span) and report.html (one self-contained page, opens offline).

The numbers come from the same inference pipeline as `fakelens predict`. What could not be
analysed (frames without a face, silent or missing audio, a video shorter than the model's clip,
a model without an audio branch) is stated in the report. A video that cannot be scored gets a
report saying why, and the others go on; the exit status is 1 when any video failed.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    from fakelens.inference.device import DEVICE_HELP

    p = subparsers.add_parser("detect", help="forensic report (verdict, segments, evidence, HTML) for videos",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video files, or folders searched for videos")
    p.add_argument("--model", required=True, metavar="RUN_OR_CHECKPOINT",
                   help="a `fakelens train` run folder or a .ckpt file")
    p.add_argument("--out", default="reports", help="reports go to OUT/<video stem>/ (default: reports)")
    p.add_argument("--threshold", type=float, default=0.5,
                   help="P(fake) at or above which a video is called fake and a segment is shown (default 0.5)")
    p.add_argument("--no-saliency", action="store_true", help="skip the Grad-CAM maps (faster)")
    p.add_argument("--no-face", choices=["error", "full_frame"], default=None,
                   help="a video without a face: not analysed, or score the whole frame (stated in the report)")
    p.add_argument("--device", default="auto", help=DEVICE_HELP)
    p.add_argument("--batch-size", type=int, default=8, help="clips per forward pass")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def find_videos(inputs: list[str]) -> list:
    """Files as given (any name: probing decides), folders expanded to their videos by the one
    finder of fakelens.data.formats.base (recursive, sorted, hidden files and folders skipped,
    files of other names probed); a missing path or a folder without videos is an error."""
    from pathlib import Path

    from fakelens.data.formats.base import find_videos as videos_under
    from fakelens.errors import FakelensError

    out: list[Path] = []
    for item in inputs:
        p = Path(item)
        if p.is_dir():
            found = videos_under(p)
            if not found:
                raise FakelensError(f"{p}: no video files in this folder (none that a video decoder opens)")
            out.extend(found)
        elif p.exists():
            out.append(p)
        else:
            raise FakelensError(f"{p}: no such file or folder")
    return out


def report_dirs(videos: list, out) -> list:
    """OUT/<stem> per video; videos sharing a stem get OUT/<stem>-2, -3, ... in input order."""
    from pathlib import Path

    seen: dict[str, int] = {}
    dirs = []
    for v in videos:
        stem = Path(v).stem.strip()
        if stem in ("", ".", ".."):  # "..mp4" must not write into OUT itself or above it
            stem = "video"
        n = seen.get(stem, 0) + 1
        seen[stem] = n
        dirs.append(Path(out) / (stem if n == 1 else f"{stem}-{n}"))
    return dirs


def _summary_row(ev, folder) -> dict:
    pred = ev.prediction
    return {"video": ev.path, "status": ev.status, "error": ev.error, "verdict": ev.verdict,
            "p_fake": None if pred is None else float(pred.score),
            "visual_p_fake": None if pred is None else pred.extras.get("visual_score"),
            "audio_p_fake": None if pred is None else pred.extras.get("audio_score"),
            "segments": [[s.start, s.end, s.confidence] for s in ev.segments],
            "warnings": [n.message for n in ev.notes if n.level == "warning"],
            "report": str(folder)}


def _print_one(console, ev, folder) -> None:
    from rich.panel import Panel
    from rich.text import Text

    from fakelens.report.document import aggregate_text, heads_aggregate

    text = Text()
    if ev.status != "ok":
        text.append("NOT ANALYSED\n", style="bold white on grey35")
        text.append(f"{ev.error}\n")
    else:
        pred = ev.prediction
        style = "bold white on red3" if ev.verdict == "fake" else "bold white on green4"
        text.append(f" {'LIKELY FAKE' if ev.verdict == 'fake' else 'LIKELY REAL'} ", style=style)
        text.append(f"  P(fake) = {pred.score:.3f}", style="bold")
        agg = aggregate_text(ev.model, pred) or f"{ev.model.get('aggregate')} over {ev.model.get('level')}"
        text.append(f"  ({agg}; threshold {ev.threshold:.2f})\n")
        heads = [f"{k} {pred.extras[key]:.3f}" for k, key in (("visual", "visual_score"), ("audio", "audio_score"))
                 if key in pred.extras]
        if heads:
            text.append("heads: " + ", ".join(heads) + f" ({heads_aggregate(ev.model)})\n")
        if ev.segments:
            text.append("suspicious segments: " + ", ".join(
                f"{s.start:.2f}-{s.end:.2f} s ({s.confidence:.2f})" for s in ev.segments) + "\n")
        elif ev.top_proposal is not None:
            t = ev.top_proposal
            text.append(f"no segment above {ev.threshold:.2f} (most suspicious: {t.start:.2f}-{t.end:.2f} s, "
                        f"{t.confidence:.2f})\n")
    for n in ev.notes:
        if n.level == "warning":
            text.append(f"! {n.message}\n", style="yellow")
    text.append(f"report: {folder / 'report.html'}", style="dim")
    console.print(Panel(text, title=ev.name, title_align="left", expand=False))


def _print_table(console, rows: list[tuple], out) -> None:
    from rich.table import Table

    table = Table(title="fakelens detect")
    for col in ("video", "verdict", "P(fake)", "segments (s)", "warnings"):
        table.add_column(col, justify="right" if col in ("P(fake)", "warnings") else "left", overflow="fold")
    for ev, folder in rows:
        if ev.status != "ok":
            table.add_row(ev.name, "[bold]not analysed[/]", "", "", "")
            continue
        segs = ", ".join(f"{s.start:.2f}-{s.end:.2f}" for s in ev.segments[:4]) + (
            " ..." if len(ev.segments) > 4 else "")
        colour = "red" if ev.verdict == "fake" else "green"
        table.add_row(ev.name, f"[{colour}]{ev.verdict}[/]", f"{ev.prediction.score:.3f}", segs or "-",
                      str(sum(n.level == "warning" for n in ev.notes)))
    console.print(table)
    renamed = [f"{ev.name} -> {folder.name}/" for ev, folder in rows if folder.name != ev.name.rsplit(".", 1)[0]]
    console.print(f"reports: {out}/<video>/report.html" + (f" ({', '.join(renamed)})" if renamed else ""))
    failed = [(ev, folder) for ev, folder in rows if ev.status != "ok"]
    if failed:
        console.print(f"[red]{len(failed)} of {len(rows)} videos could not be analysed:[/]")
        for ev, _ in failed:
            console.print(f"  {ev.name}: {ev.error}", highlight=False)


def run(args: argparse.Namespace) -> int:
    import contextlib
    import sys

    from fakelens.cli.output import console as make_console
    from fakelens.cli.output import print_json
    from fakelens.errors import FakelensError

    if not 0.0 < args.threshold < 1.0:
        raise FakelensError(f"--threshold must be in (0, 1), got {args.threshold}")
    from fakelens.atomic import ensure_writable

    videos = find_videos(args.videos)
    ensure_writable(args.out)  # an unwritable --out fails now (OutputError naming it), before any work
    dirs = report_dirs(videos, args.out)
    from fakelens.atomic import ensure_writable

    ensure_writable(args.out)  # a full or unwritable report folder fails now, not after the first analysis
    from fakelens.inference.runs import resolve_checkpoint

    resolve_checkpoint(args.model)  # a wrong run path is said at once, before torch loads
    from fakelens.inference.device import resolve_device

    device = resolve_device(args.device)
    from fakelens.inference.evidence import Analyser
    from fakelens.inference.pipeline import Predictor, load_run
    from fakelens.report import render, write_report

    run_ = load_run(args.model, device=device)
    analyser = Analyser(Predictor(run_, no_face=args.no_face, batch_size=args.batch_size, device=device),
                        threshold=args.threshold, saliency=not args.no_saliency)
    console = make_console(stderr=args.json)
    show_progress = len(videos) > 1 and not args.no_progress and not args.json and sys.stderr.isatty()
    progress_cm: contextlib.AbstractContextManager = contextlib.nullcontext()
    if show_progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        progress_cm = Progress(TextColumn("detect"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                               TextColumn("{task.description}"), console=make_console(stderr=True), transient=True)
    results = []
    with progress_cm as progress:
        task = progress.add_task("", total=len(videos)) if show_progress else None
        for video, folder in zip(videos, dirs):
            if show_progress:
                progress.update(task, description=video.name)
            ev = analyser.analyse(video)
            write_report(render(ev), folder)
            results.append((ev, folder))
            if show_progress:
                progress.advance(task)
    failed = sum(ev.status != "ok" for ev, _ in results)
    if args.json:
        print_json({"videos": len(results), "failed": failed, "out": str(args.out),
                    "model": str(run_.checkpoint), "reports": [_summary_row(ev, f) for ev, f in results]})
    elif len(results) == 1:
        _print_one(console, *results[0])
    else:
        _print_table(console, results, args.out)
    return 1 if failed else 0
