"""`fakelens train --config RECIPE.yaml [--set key=value ...] [--out RUN_DIR] [--resume] [--smoke]`.

Trains with PyTorch Lightning into a run folder: config.yaml (resolved), cache_config.json,
checkpoints/best.ckpt + last.ckpt, logs/ (CSV, TensorBoard), train.log (one line per epoch, as
printed), left_out.json (videos the data could not use, by reason), metrics.json. Multi-GPU:
--set train.strategy=ddp train.devices=N (or launch with torchrun; multi-node: also
train.num_nodes).

--smoke checks a setup before renting GPUs: any recipe, offline, on a CPU, in about a minute
(pretrained weights off, fp32, one short epoch, small batches and clips, the cache's crop size;
without data.cache a tiny synthetic set is made). Its run goes to runs/<recipe>_smoke.
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a detector from a recipe (configs/*.yaml) into a run folder",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="recipe YAML (default: RUN_DIR/config.yaml with --resume)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 (repeatable; wins over --smoke)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<recipe name>, runs/<recipe>_smoke)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.ckpt")
    p.add_argument("--smoke", action="store_true",
                   help="check a setup offline on a CPU in about a minute: pretrained off, fp32, one short epoch "
                        "of small batches; without data.cache, on a tiny synthetic set")
    p.add_argument("--verbose", action="store_true", help="also show what Lightning and torch print (banners, "
                   "tips, deprecation warnings, the model summary)")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fakelens.cli.output import print_json, print_table
    from fakelens.errors import ConfigError
    from fakelens.train.config import CONFIG_NAME, load_train_config

    if args.smoke and args.resume:
        raise ConfigError("--smoke starts a new short run; it cannot --resume one")
    if args.out is None:
        if args.config is None:
            raise ConfigError("give --config RECIPE.yaml (or --out RUN_DIR --resume)")
        args.out = str(Path("runs") / (Path(args.config).stem + ("_smoke" if args.smoke else "")))
    out = Path(args.out)
    config = args.config
    if config is None:
        if not args.resume:
            raise ConfigError("give --config RECIPE.yaml")
        config = out / CONFIG_NAME
    light = load_train_config(config, args.overrides, light=True)  # a wrong key or value, before torch loads
    overrides, notes = list(args.overrides), []
    if args.smoke:
        overrides, notes = _smoke(light, out, args.overrides)
    from fakelens.train.engine import fit

    cfg = load_train_config(config, overrides)
    result = fit(cfg, out, resume=args.resume, verbose=args.verbose, notes=notes)
    m = result.metrics
    if args.json:
        print_json(m)
        return 0
    rows = [
        ["run", str(out)],
        [f"best {m['monitor']}", m["best_score"] if m["best_score"] is not None else "undefined at every validation"],
        ["best checkpoint", m["best_checkpoint"]],
        ["epochs / steps", f"{m['epochs']} / {m['global_step']}"],
        ["train videos (fake)", f"{m['n_train']} ({m['n_train_fake']})"],
        ["val videos (fake)", f"{m['n_val']} ({m['n_val_fake']})"],
        ["parameters", f"{m['params']:,}"],
        ["wall time (s)", m["wall_seconds"]],
    ]
    print_table("smoke run finished: the setup works" if args.smoke else "training finished", ["", "value"], rows)
    return 0


def _smoke(light, out, user_overrides: list[str]) -> tuple[list[str], list[str]]:
    """The overrides of a smoke run (the user's --set last, so they win) and what they change.
    A previous smoke run in `out` (it holds smoke.json) is replaced; any other run is kept."""
    import json
    import shutil

    from fakelens.atomic import atomic_write_text
    from fakelens.data.cache import load_config
    from fakelens.train.smoke import MARKER, SMOKE_CACHE, SMOKE_DATA, make_smoke_cache, smoke_overrides

    notes: list[str] = []
    if (out / MARKER).is_file():
        for name in list(out.iterdir()):  # keep the synthetic data and cache: they are the same each time
            if name.name not in (SMOKE_DATA, SMOKE_CACHE):
                shutil.rmtree(name) if name.is_dir() else name.unlink()
    cache_overrides: list[str] = []
    if not light.data.cache:
        cache, made = make_smoke_cache(out)
        notes += made
        cache_overrides = [f"data.cache={cache}"]
        cache_config = load_config(cache)
    else:
        cache_config = load_config(light.data.cache)
    smoke, changes = smoke_overrides(light, cache_config)
    notes += changes
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / MARKER, json.dumps({"smoke": True, "changes": notes}, indent=2) + "\n")
    return [*cache_overrides, *smoke, *user_overrides], notes
