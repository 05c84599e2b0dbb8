"""`fakelens train --config RECIPE.yaml [--set key=value ...] [--out RUN_DIR] [--resume]`.

Trains with PyTorch Lightning into a run folder: config.yaml (resolved), cache_config.json,
checkpoints/best.ckpt + last.ckpt, logs/ (CSV, TensorBoard), metrics.json. Multi-GPU: --set
train.strategy=ddp train.devices=N (or launch with torchrun; multi-node: also train.num_nodes).
"""

from __future__ import annotations

import argparse


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("train", help="train a detector from a recipe (configs/*.yaml) into a run folder",
                              description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", default=None, help="recipe YAML (default: RUN_DIR/config.yaml with --resume)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value, e.g. --set train.epochs=5 (repeatable)")
    p.add_argument("--out", default=None, help="run folder (default: runs/<recipe name>)")
    p.add_argument("--resume", action="store_true", help="continue from RUN_DIR/checkpoints/last.ckpt")
    p.add_argument("--json", action="store_true", help="print the final metrics as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fakelens.cli.output import print_json, print_table
    from fakelens.errors import ConfigError
    from fakelens.train.config import CONFIG_NAME, load_train_config

    if args.out is None:
        if args.config is None:
            raise ConfigError("give --config RECIPE.yaml (or --out RUN_DIR --resume)")
        args.out = str(Path("runs") / Path(args.config).stem)
    out = Path(args.out)
    config = args.config
    if config is None:
        if not args.resume:
            raise ConfigError("give --config RECIPE.yaml")
        config = out / CONFIG_NAME
    load_train_config(config, args.overrides, light=True)  # a wrong key or value, reported before torch loads
    from fakelens.train.engine import fit

    cfg = load_train_config(config, args.overrides)
    result = fit(cfg, out, resume=args.resume)
    m = result.metrics
    if args.json:
        print_json(m)
        return 0
    rows = [
        ["run", str(out)],
        [f"best {m['monitor']}", m["best_score"]],
        ["best checkpoint", m["best_checkpoint"]],
        ["epochs / steps", f"{m['epochs']} / {m['global_step']}"],
        ["train videos (fake)", f"{m['n_train']} ({m['n_train_fake']})"],
        ["val videos (fake)", f"{m['n_val']} ({m['n_val_fake']})"],
        ["parameters", f"{m['params']:,}"],
        ["wall time (s)", m["wall_seconds"]],
    ]
    print_table("training finished", ["", "value"], rows)
    return 0
