"""`fakelens preprocess DATA --out CACHE`: face crops + log-mels per video into a resumable cache.

Rerunning reuses a finished video only when its source file (size, mtime or fast hash) is
unchanged; changed label fields are refreshed without recomputing the crops, failed videos are
retried, `--force` recomputes everything. `--shard I/N` processes a deterministic 1/N of the ids (a SLURM
array or many machines writing into one cache folder) and `--merge` combines the shard indexes.
The cache layout is documented in fakelens.data.cache.
"""

from __future__ import annotations

import argparse

from fakelens.cli.jobs import add_job_arguments


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "preprocess", help="detect, track and crop faces, compute log-mels, into a resumable cache",
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", nargs="?", help="dataset folder or label file (any supported format); "
                   "not needed with --merge")
    p.add_argument("--out", required=True, help="cache folder (created; resumed when it exists)")
    p.add_argument("--format", default=None, help="dataset format (default: detected)")
    p.add_argument("--split", default=None, help="only this split (e.g. train, val)")
    sampling = p.add_mutually_exclusive_group()
    sampling.add_argument("--frames", type=int, default=None, metavar="N",
                          help="N evenly spaced frames per video (default 32)")
    sampling.add_argument("--fps", type=float, default=None, help="sample this many frames per second")
    sampling.add_argument("--all", action="store_true", help="every frame")
    sampling.add_argument("--windows", type=int, default=None, metavar="K",
                          help="K clip windows per video of --window-frames consecutive frames at the video's "
                          "own rate, evenly spaced (for 3D CNNs)")
    p.add_argument("--window-frames", type=int, default=16, metavar="W",
                   help="consecutive frames per clip window with --windows (default 16)")
    p.add_argument("--crop", choices=["tracked", "roi"], default="tracked",
                   help="tracked: each frame cut around its own face box; roi: one still region per face "
                   "track and clip window enclosing all its boxes (needs --windows)")
    p.add_argument("--size", type=int, default=224, help="side of the square face crops in pixels")
    p.add_argument("--margin", type=float, default=1.3, help="crop side / face box side")
    p.add_argument("--detector", default="mtcnn", help="face detector: mtcnn, haar, full_frame")
    p.add_argument("--detect-max-side", type=int, default=640,
                   help="detect on frames downscaled to this longest side (0 = full resolution)")
    p.add_argument("--detect-every", type=int, default=8,
                   help="run the full-frame detector on every k-th sampled frame (and wherever no face is "
                   "followed); in between, follow the faces by re-detecting near their last box "
                   "(1 = full detection on every frame)")
    p.add_argument("--max-faces", type=int, default=1, help="face tracks kept per video (main first)")
    p.add_argument("--full-frame-fallback", action="store_true",
                   help="for videos without any face, store the whole frame (recorded as fallback)")
    add_job_arguments(p, force_help="recompute every video (a cache made with other parameters is emptied first)")
    p.add_argument("--verify", choices=["stat", "hash", "full"], default="stat",
                   help="how a finished video's source file is checked before its row is reused: stat = size "
                   "and mtime (the fast hash of 3 x 64 KiB samples only when the mtime changed); hash = always "
                   "the fast hash; full = SHA-1 of the whole file (reads every video; catches any change)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fakelens.cli.output import print_json, print_table
    from fakelens.data.cache import CacheConfig, merge_shards, parse_shard, preprocess
    from fakelens.errors import ConfigError
    from fakelens.faces.detectors import FACE_DETECTORS

    out = Path(args.out)
    missing: list[str] = []
    if args.merge:
        if args.shard:
            raise ConfigError("--merge combines finished shards: do not give --shard with it")
        summary = merge_shards(out)
    else:
        if not args.data:
            raise ConfigError("give the dataset to preprocess (DATA), or --merge")
        from fakelens.data.formats import load_dataset

        FACE_DETECTORS.get(args.detector)  # unknown names fail before any work
        if args.all:
            sampling = {"sampling": "all"}
        elif args.windows is not None:
            sampling = {"sampling": "windows", "n_windows": args.windows, "window_frames": args.window_frames}
        elif args.fps is not None:
            sampling = {"sampling": "fps", "sample_fps": args.fps}
        else:
            sampling = {"sampling": "frames", "n_frames": args.frames or 32}
        cfg = CacheConfig(**sampling, size=args.size, margin=args.margin, detector=args.detector,
                          detect_max_side=args.detect_max_side or None, detect_every=args.detect_every,
                          max_faces=args.max_faces, fallback="full_frame" if args.full_frame_fallback else "none",
                          crop=args.crop)
        ds = load_dataset(args.data, format=args.format, allow_missing=args.allow_missing, split=args.split)
        missing = list(ds.missing)
        summary = preprocess(ds.records, out, cfg, workers=args.workers,
                             shard=parse_shard(args.shard) if args.shard else None, force=args.force,
                             verify=args.verify, progress=not args.no_progress and not args.json,
                             split=args.split)
    if args.json:
        print_json({**summary.__dict__, "missing_on_disk": missing})
        return 0
    rows = [(status, n) for status, n in summary.by_status.items()]
    rows += [(f"  decode_error: {cause}", n) for cause, n in sorted(summary.errors.items(), key=lambda x: -x[1])]
    rows += [("already done (skipped)", summary.skipped)]
    if summary.relabelled:
        rows.append(("  of which labels refreshed", summary.relabelled))
    rows.append(("processed now", summary.processed))
    if summary.changed:
        rows.append(("  of which source changed", summary.changed))
    if summary.retried:
        rows.append(("  of which failed before (retried)", summary.retried))
    if missing:
        rows.append(("missing on disk (not processed)", len(missing)))
    if summary.removed:
        rows.append(("dropped from the index (no longer in the dataset)", summary.removed))
    title = f"preprocess {out}" + (f" shard {summary.shard[0]}/{summary.shard[1]}" if summary.shard else "")
    print_table(title, ["videos", "count"], rows)
    print(f"index: {summary.index}  ({summary.seconds:.1f} s)")
    note = _uncompared_note(summary.index)
    if note:
        print(note)
    return 0


def _uncompared_note(index) -> str | None:
    """A line on the fakes that name an original but were not compared with it (missing on disk,
    another frame size, shorter, undecodable): their faces are not told apart by the comparison
    (one face: the video's label; several: MIL), which the index row's `original_compared` alone
    recorded. None when every such fake was compared."""
    from collections import Counter

    from fakelens.data.cache import read_index

    if index is None or index.name != "index.jsonl" or not index.exists():  # a shard's: said at --merge
        return None
    why = Counter()
    for row in read_index(index.parent):
        reason = row.get("original_compared")
        if reason and reason != "yes":
            # 'original 'x.mp4' not found' -> 'not found'; 'original 'x.mp4' not compared: ...' -> '...'
            why[reason.split("' ", 1)[-1].removeprefix("not compared: ")] += 1
    if not why:
        return None
    n = sum(why.values())
    causes = "; ".join(f"{k} ({c})" for k, c in why.most_common(3)) + ("; ..." if len(why) > 3 else "")
    return (f"note: {n} fake(s) not compared with their original, so which face is fake is not known "
            f"(one face: the video's label; several: learned as a bag): {causes}; "
            "each index row's original_compared says why")
