"""`fakelens features RUN_OR_ENCODER DATA --out FEATS`: dense per-step features for localization.

Every frame (or --fps F per second) is decoded, the face tracked (faces looked for on every
--find-every-th frame, boxes interpolated between), cropped and passed through a frozen visual
encoder in chunks; the log-mel goes through an audio encoder. Per video a (T, D) visual and an
(A, D) audio float16 array with their timestamps are stored; no crops are kept.

RUN_OR_ENCODER is a `fakelens train` run (its per-frame visual encoder and the crops of its cache;
its audio encoder when it has one) or a 2D backbone name (timm or fakelens', e.g. tinycnn,
efficientnet_b0: random init with --seed, or --pretrained ImageNet weights, which need network).
--audio: run, logmel (log-mel bands averaged per 40 ms, no parameters), a backbone name, or none.

Like `preprocess`: resumable (a rerun skips finished videos), --shard I/N + --merge, --workers,
the same per-video status index. Train a localizer on the folder with
`fakelens train --config configs/avdf1m_task2.yaml --set data.cache=FEATS`.
"""

from __future__ import annotations

import argparse

from fakelens.cli.jobs import add_job_arguments


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("features", help="dense per-frame visual and audio features for temporal localization",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("encoder", metavar="RUN_OR_ENCODER", nargs="?",
                   help="a trained run (folder or .ckpt) or a 2D backbone name; not needed with --merge")
    p.add_argument("data", nargs="?", help="dataset folder or label file (any supported format)")
    p.add_argument("--out", required=True, help="features folder (created; resumed when it exists)")
    p.add_argument("--audio", default=None, help="audio encoder: run, logmel, a backbone name, none "
                   "(default: the run's, else logmel)")
    p.add_argument("--format", default=None, help="dataset format (default: detected)")
    p.add_argument("--split", default=None, help="only this split")
    sampling = p.add_mutually_exclusive_group()
    sampling.add_argument("--all", action="store_true", help="every frame (the default)")
    sampling.add_argument("--fps", type=float, default=None, help="this many steps per second instead")
    p.add_argument("--find-every", type=int, default=4,
                   help="look for the face on every k-th sampled frame, interpolate between (default 4)")
    p.add_argument("--size", type=int, default=None, help="crop side (backbone names only; default 224)")
    p.add_argument("--margin", type=float, default=None, help="crop side / face box side (backbone names; 1.3)")
    p.add_argument("--detector", default=None, help="face detector (backbone names; default mtcnn)")
    p.add_argument("--pretrained", action="store_true", help="ImageNet weights for backbone names (network)")
    p.add_argument("--seed", type=int, default=0, help="random init of backbone names")
    p.add_argument("--chunk", type=int, default=64, help="face crops per encoder forward pass")
    p.add_argument("--device", default="cpu", help="where the encoders run: cpu, cuda, cuda:I")
    add_job_arguments(p, force_help="empty a folder made with other parameters and redo it")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fakelens.cli.output import print_json, print_table
    from fakelens.errors import ConfigError

    out = Path(args.out)
    missing: list[str] = []
    if args.merge:
        from fakelens.data.cache import merge_shards

        if args.shard or args.data:
            raise ConfigError("--merge combines finished shards of --out: give neither data nor --shard with it")
        summary = merge_shards(out)
    else:
        if not args.encoder or not args.data:
            raise ConfigError("give RUN_OR_ENCODER and DATA (or --merge)")
        if args.find_every < 1 or args.chunk < 1:
            raise ConfigError("--find-every and --chunk must be >= 1")
        from fakelens.inference.runs import check_encoder_source

        check_encoder_source(args.encoder)  # a wrong run path or backbone name: said before torch loads
        from fakelens.data.cache import parse_shard
        from fakelens.data.formats import load_dataset
        from fakelens.features.media import MediaConfig
        from fakelens.inference.dense import DENSE_MAX_FACES, run_features
        from fakelens.inference.device import resolve_device

        crop = {k: v for k, v in (("size", args.size), ("margin", args.margin), ("detector", args.detector))
                if v is not None}
        if crop and Path(args.encoder).exists():
            raise ConfigError(f"--{', --'.join(crop)}: a run's features use the crops of its own cache; "
                              "give these only with a backbone name")
        sampling = {"sampling": "fps", "sample_fps": args.fps} if args.fps is not None else {"sampling": "all"}
        media = MediaConfig(**sampling, find_every=args.find_every, max_faces=DENSE_MAX_FACES, **crop)
        ds = load_dataset(args.data, format=args.format, allow_missing=args.allow_missing, split=args.split)
        missing = list(ds.missing)
        from fakelens.models.hub import WeightsUnavailable

        try:
            summary = run_features(args.encoder, ds.records, out, audio=args.audio, media=media,
                                   pretrained=args.pretrained, seed=args.seed, workers=args.workers,
                                   shard=parse_shard(args.shard) if args.shard else None, force=args.force,
                                   progress=not args.no_progress and not args.json, chunk_frames=args.chunk,
                                   device=str(resolve_device(args.device)), split=args.split)
        except WeightsUnavailable as e:  # the message names train's --set flags: say this command's
            raise ConfigError(e.with_way_on(
                "drop --pretrained (random init, set by --seed), or download the weights once where there is "
                "network (they are cached for the next run)")) from None
    if args.json:
        print_json({**summary.__dict__, "missing_on_disk": missing})
        return 0
    rows = [(status, n) for status, n in summary.by_status.items()]
    rows += [(f"  decode_error: {cause}", n) for cause, n in sorted(summary.errors.items(), key=lambda x: -x[1])]
    rows += [("already done (skipped)", summary.skipped), ("processed now", summary.processed)]
    if missing:
        rows.append(("missing on disk (not processed)", len(missing)))
    title = f"features {out}" + (f" shard {summary.shard[0]}/{summary.shard[1]}" if summary.shard else "")
    print_table(title, ["videos", "count"], rows)
    print(f"index: {summary.index}  ({summary.seconds:.1f} s)")
    if getattr(args, "fps", None) and not getattr(args, "merge", None):
        _say_step_rates(out, float(args.fps))
    return 0


def _say_step_rates(out, asked: float) -> None:
    """--fps F takes every round(fps / F)-th frame, so a video whose rate F does not divide gets
    another step rate (25 fps at --fps 10: every 2nd frame, 12.5 steps/s): said, per source rate."""
    from fakelens.data.cache import read_index

    rates: dict[float, int] = {}
    for r in read_index(out):
        if r.get("fps"):
            rates[round(float(r["fps"]), 3)] = rates.get(round(float(r["fps"]), 3), 0) + 1
    for fps, n in sorted(rates.items()):
        k = max(1, int(round(fps / asked)))
        if abs(fps / k - asked) > 1e-6:
            print(f"note: --fps {asked:g} on {n} video(s) at {fps:g} fps takes one frame in {k}: "
                  f"{fps / k:g} steps/s, not {asked:g}")
