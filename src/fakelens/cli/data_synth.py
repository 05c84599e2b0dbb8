"""`fakelens data synth OUT`: generate a synthetic audio-visual deepfake dataset (no download).

Talking heads built from the face photos shipped with scikit-image, with a synthetic voice; fakes
are manipulated in time segments, visually (face region), in audio, or both. Written as mp4
(h264 + AAC) in the AV-Deepfake1M, DFDC, LAV-DF or CSV-competition layout, with per-frame face
boxes. See `fakelens.data.synthetic.layouts` for the layouts. Heavy imports happen inside `run`.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "synth",
        help="generate a synthetic deepfake dataset (talking heads, voice, segment fakes)",
        description="Generate talking-head videos with voice, half of them faked in time segments "
        "(face swap / re-enactment, voice swap / pitch shift, or both), laid out as AV-Deepfake1M, DFDC, "
        "LAV-DF or the CSV competition ship, with per-frame face boxes. Seeded: the same options give "
        "the same data.",
    )
    p.add_argument("out", help="output folder (created; must be empty, or an unfinished run to resume)")
    p.add_argument("--preset", default="demo",
                   help="preset config: demo (default, 160 videos 224x224), tiny (8 videos 96x96), avdf1m "
                   "(AV-Deepfake1M-like: 8-20 s, short segments; alias localization), bench; real-looking hard "
                   "cases: " + ", ".join(HARD_PRESETS))
    p.add_argument("--videos", type=int, default=None, metavar="N", help="number of videos")
    p.add_argument("--seed", type=int, default=None, metavar="S", help="random seed")
    p.add_argument("--layout", choices=("avdeepfake1m", "csv", "dfdc", "lavdf"), default=None,
                   help="dataset layout, written as that dataset ships (default: the preset's, avdeepfake1m)")
    p.add_argument("--strength", type=float, default=None, metavar="X",
                   help="artifact strength in [0, 1] (higher = easier to detect)")
    p.add_argument("--duration", type=float, nargs="+", default=None, metavar="S",
                   help="video duration in seconds, or MIN MAX")
    p.add_argument("--size", type=int, nargs="+", default=None, metavar="N",
                   help="frame size: H W, or N for N x N (even numbers)")
    p.add_argument("--fake-fraction", type=float, default=None, metavar="F", help="share of fake videos")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="parallel processes (0 = one per core; the output does not depend on it)")
    p.add_argument("--fps", type=float, default=None, metavar="F",
                   help="frame rate (29.97 means 30000/1001; dfdc and csv layouts for rates other than 25)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="any SynthConfig field, e.g. --set scenes=[two_people] --set audio=false (repeatable)")
    p.add_argument("--overwrite", action="store_true", help="regenerate over a complete earlier output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run)


HARD_PRESETS = ("two_people", "leave_frame", "shot_cut", "scenes", "small_dark", "no_audio", "portrait", "fps_12_5",
                "fps_29_97", "vfr", "long")


def _pair(values: list, name: str, kind: type) -> tuple:
    from fakelens.errors import ConfigError

    if len(values) == 1:
        return (kind(values[0]), kind(values[0]))
    if len(values) == 2:
        return (kind(values[0]), kind(values[1]))
    raise ConfigError(f"--{name} takes one or two values, got {len(values)}")


def to_dict_values(overrides: dict) -> dict:
    """Option values as the typed config reads them (tuples as lists)."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in overrides.items()}


def run(args: argparse.Namespace) -> int:
    from fakelens.config import from_dict, merge_overrides, to_dict
    from fakelens.data.synthetic import SynthConfig, generate_dataset, preset, summarize

    overrides: dict = {}
    for arg, key in (("videos", "n_videos"), ("seed", "seed"), ("layout", "layout"), ("strength", "strength"),
                     ("fake_fraction", "fake_fraction"), ("workers", "workers"), ("fps", "fps")):
        if getattr(args, arg) is not None:
            overrides[key] = getattr(args, arg)
    if args.duration is not None:
        overrides["duration"] = _pair(args.duration, "duration", float)
    if args.size is not None:
        overrides["size"] = _pair(args.size, "size", int)
    config = preset(args.preset)
    data = merge_overrides({**to_dict(config), **to_dict_values(overrides)}, args.sets)
    config = from_dict(SynthConfig, data)
    result = generate_dataset(args.out, config, progress=not args.quiet, overwrite=args.overwrite)
    rows = summarize(result.plans)
    if args.json:
        from fakelens.cli.output import print_json

        print_json({"root": result.root, "layout": config.layout, "written": result.written,
                    "skipped": result.skipped, "seconds": result.seconds, "splits": rows})
        return 0
    from fakelens.cli.output import console, print_table

    columns = ["split", "videos", "real", "visual", "audio", "both", "seconds", "fake_seconds"]
    total = {c: sum(r[c] for r in rows) for c in columns[1:]}
    table = [[r[c] for c in columns] for r in rows] + [["all"] + [total[c] for c in columns[1:]]]
    print_table(f"{result.root} ({config.layout}, {config.size[0]}x{config.size[1]}, strength {config.strength})",
                columns, [[f"{v:.1f}" if isinstance(v, float) else v for v in row] for row in table])
    console().print(f"{result.written} videos written, {result.skipped} already there, "
                    f"in {result.seconds:.1f} s")
    return 0
