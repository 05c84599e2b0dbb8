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
    p.add_argument("--dry-run", action="store_true",
                   help="build and check the datasets and the task as training would, print every target it "
                        "trains on (positives, negatives, unknown, weight) and exit without training or writing "
                        "anything: 0 if training would start, 1 if it would refuse a target, 2 if it would refuse "
                        "the run before (a config, a cache made for another input, a model over train.max_params)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from fakelens.cli.output import print_json, print_table
    from fakelens.errors import ConfigError
    from fakelens.train.config import CONFIG_NAME, load_train_config

    if args.smoke and args.resume:
        raise ConfigError("--smoke starts a new short run; it cannot --resume one")
    if args.smoke and args.dry_run:
        raise ConfigError("--dry-run shows what a recipe trains on without writing anything; --smoke writes a "
                          "run (and a synthetic cache): give one of them")
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
    if not args.smoke and not args.resume:
        from fakelens.train.smoke import MARKER

        if (out / MARKER).is_file():  # a later --smoke there would replace this run
            raise ConfigError(f"{out}: a smoke run folder (it holds {MARKER}); train into another --out")
    light = load_train_config(config, args.overrides, light=True)  # a wrong key, value or name, before torch loads
    if not args.smoke or light.data.cache:  # smoke without a cache makes one
        from fakelens.train.config import check_data_source

        check_data_source(light)  # no cache, or a wrong path: said at once
    overrides, notes = list(args.overrides), []
    if args.smoke:
        overrides, notes = _smoke(light, out, args.overrides)
    cfg = load_train_config(config, overrides)
    if args.dry_run:
        return _dry_run(cfg, args.json)
    from fakelens.train.engine import fit

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
        ["wall time (s)", f"{m['wall_seconds']:.1f}"],  # as the 'done:' line (not 4 decimals of seconds)
    ]
    print_table("smoke run finished: the setup works" if args.smoke else "training finished", ["", "value"], rows)
    return 0


def _smoke(light, out, user_overrides: list[str]) -> tuple[list[str], list[str]]:
    """The overrides of a smoke run (the user's --set last, so they win) and what they change.
    `out` must be missing, empty, or a smoke run folder (fakelens.train.smoke.smoke_folder_entries):
    anything else is refused before a file is written; of a previous smoke run only what smoke
    made is removed (its synthetic data and cache are kept: they are the same each time)."""
    import json
    from pathlib import Path

    from fakelens.atomic import atomic_write_text, ensure_writable, output_error
    from fakelens.data.cache import load_config
    from fakelens.train.smoke import (MARKER, cache_most_frames, make_smoke_cache, remove_smoke_run,
                                      smoke_folder_entries, smoke_marker, smoke_overrides)

    notes: list[str] = []
    previous = smoke_folder_entries(out)  # refuses a folder smoke did not make, before anything is written
    ensure_writable(out)  # a read-only or full run folder: an OutputError now, before any file is made
    if previous is None:  # a new (or empty) folder: smoke's own from now on
        atomic_write_text(out / MARKER, json.dumps(smoke_marker([]), indent=2) + "\n")
    else:
        remove_smoke_run(out, previous)
    cache_overrides: list[str] = []
    if not light.data.cache:
        try:
            d = light.data
            cache, made = make_smoke_cache(out, dataset=d.dataset, data_format=d.format, sampling=d.sampling,
                                           crop=d.crop, max_faces=d.max_faces)
        except OSError as e:  # the disk filled while the synthetic set was written
            err = output_error(e, Path(e.filename).parent if e.filename else out)
            if err is None:
                raise
            raise err from e
        notes += made
        cache_overrides = [f"data.cache={cache}"]
    else:
        cache = Path(light.data.cache)
    cache_config = load_config(cache)
    most = cache_most_frames(cache) if (cache / "index.jsonl").is_file() else None
    smoke, changes = smoke_overrides(light, cache_config, most)
    notes += changes
    atomic_write_text(out / MARKER, json.dumps(smoke_marker(notes), indent=2) + "\n")
    return [*cache_overrides, *smoke, *user_overrides], notes


def targets_table(plan, title: str):
    """The `train --dry-run` table of a TargetPlan (fakelens.train.targets.table_rows), whole at 80
    columns: the box's one-space column divider and no padding, nothing wrapped or cut."""
    from rich import box
    from rich.table import Table

    from fakelens.train.targets import TABLE_COLUMNS, table_rows

    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 0), show_edge=False)
    for i, col in enumerate(TABLE_COLUMNS):
        table.add_column(col, justify="left" if i == 0 else "right", no_wrap=True)
    for row in table_rows(plan):
        table.add_row(*row)
    return table


def _dry_run(cfg, as_json: bool) -> int:
    """Print the targets the run would train on (fakelens.train.targets): 0 if it would train, 1
    if it would refuse a target."""
    from fakelens.cli.output import console, print_json
    from fakelens.train.engine import dry_run
    from fakelens.train.targets import remarks

    plan = dry_run(cfg)
    code = 1 if plan.problems else 0
    if as_json:
        print_json({**plan.to_dict(), "problems": plan.problems})
        return code
    for note in plan.notes:
        console().print(note)
    scope = f"{plan.videos} training videos" if plan.videos_counted == plan.videos else (
        f"{plan.videos_counted} of {plan.videos} training videos, scaled")
    console().print(targets_table(plan, f"targets of task {cfg.task.name!r} per epoch ({scope})"))
    for line in remarks(plan):
        console().print(line, highlight=False)
    for problem in plan.problems:
        console().print(f"[bold red]training would be refused:[/] {problem}")
    if plan.disabled:
        console().print(f"disabled (task.unknown_stream={cfg.task.unknown_stream}): {', '.join(plan.disabled)}")
    if not plan.problems:
        console().print("every target that trains holds both classes; dry run: nothing trained")
    return code
