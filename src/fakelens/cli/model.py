"""`fakelens model list` and `fakelens model info NAME`: the registered models and backbones,
and a model's parameters and MACs (true and as thop counts them) against the budget."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


OVER_BUDGET = 3  # `model info`'s exit status for a model over the budget


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("list", help="registered models and available backbones",
                              description="List the registered models and the backbones they can use.")
    p.add_argument("--backbones", metavar="PATTERN", default=None,
                   help="also list the 2D (timm) backbones matching a wildcard, e.g. 'efficientnet*'")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.set_defaults(func=run_list)

    p = subparsers.add_parser(
        "info", help="parameters and FLOPs/MACs of a model, true and by thop, against the budget",
        description="Count a model's parameters and MACs on its input (built on the meta device: nothing is "
        "allocated or downloaded), with torch.utils.flop_counter and with thop (the multimedia competition's "
        "counter), and check it against the parameter budget. With a recipe (--config), the input is the one "
        "the recipe feeds (its clip length, audio window, and with data.cache the cache's). Exit status: 0 "
        "within the budget, 3 over it, 2 for a wrong argument or config (so a script can tell them apart).")
    p.add_argument("name", nargs="?", default=None, help="model name (default: the config's model.name)")
    p.add_argument("--config", type=Path, default=None,
                   help="YAML recipe / run config (its model, data and train.max_params) or a bare model config")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config key, e.g. --set backbone=xception41 or --set data.cache=CACHE "
                        "(bare keys are model keys; repeatable)")
    p.add_argument("--max-params", type=_count, default=None, metavar="N",
                   help="parameter budget: 200000000, 2e8 or 200M (default: the config's train.max_params, "
                        "else 200M)")
    p.add_argument("--batch", type=int, default=1, help="batch size of the counted input (default 1)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_info)


def _count(text: str) -> int:
    from fakelens.config import parse_count

    try:
        value = parse_count(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count (write 200000000, 2e8 or 200M)") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text!r}")
    return value


SECTIONS = ("model", "data", "task", "optim", "train", "augment", "predict")


def _model_section(args: argparse.Namespace) -> tuple[dict[str, Any], int | None, dict[str, Any] | None]:
    """The model config mapping (YAML < NAME < --set), the budget named in the YAML if any, and
    for a recipe (a YAML with a `model:` section) the whole run config mapping with the overrides."""
    import yaml

    from fakelens.config import merge_overrides
    from fakelens.errors import ConfigError

    data: dict[str, Any] = {}
    run: dict[str, Any] | None = None
    if args.config is not None:
        if not args.config.is_file():
            raise ConfigError(f"{args.config}: config file not found")
        try:
            loaded = yaml.safe_load(args.config.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{args.config}: not valid YAML: {e}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"{args.config}: top level must be a mapping")
        if isinstance(loaded.get("model"), dict):  # a full run config
            run = loaded
        else:
            data = loaded
    if run is not None:
        overrides = [o if o.split(".", 1)[0] in SECTIONS and "." in o.split("=", 1)[0] else f"model.{o}"
                     for o in args.overrides]
        run = merge_overrides(run, overrides)
        data = dict(run["model"])
    else:
        data = merge_overrides(data, [o[len("model."):] if o.startswith("model.") else o for o in args.overrides])
    if args.name:
        data["name"] = args.name
        if run is not None:
            run["model"] = data
    if "name" not in data:
        raise ConfigError("give a model NAME or a --config with model.name (`fakelens model list` shows them)")
    max_params = None
    train = (run or {}).get("train")
    if isinstance(train, dict) and train.get("max_params") is not None:
        from fakelens.config import parse_count

        max_params = parse_count(getattr(train["max_params"], "value", train["max_params"]))
    return data, max_params, run


def run_info(args: argparse.Namespace) -> int:
    from fakelens.cli.output import console, print_json, print_table
    from fakelens.config import from_dict, to_dict
    from fakelens.models.config import ModelConfig

    data, yaml_budget, run = _model_section(args)
    if args.batch < 1:
        from fakelens.errors import ConfigError

        raise ConfigError(f"--batch must be >= 1, got {args.batch}")
    from fakelens.models.names import check_model_names

    check_model_names(from_dict(ModelConfig, data, prefix="model."))  # a wrong key, value or name, before torch
    if run is not None:
        from fakelens.registry import deferred_name_checks
        from fakelens.train.config import TrainConfig

        with deferred_name_checks():
            from_dict(TrainConfig, run)
    from fakelens.models import resolve_config
    from fakelens.train.budget import DEFAULT_MAX_PARAMS, count_config, describe, human, verdict_differs

    cfg = resolve_config(data)
    notes: list[str] = []
    if run is not None:  # count at the input the recipe feeds the model
        import dataclasses

        from fakelens.train.config import TrainConfig
        from fakelens.train.data import recipe_inputs

        cfg, notes = recipe_inputs(dataclasses.replace(from_dict(TrainConfig, run), model=cfg))
    max_params = args.max_params or yaml_budget or DEFAULT_MAX_PARAMS
    cost = count_config(cfg, batch=args.batch)
    within = cost.params <= max_params
    # A difference between thop and the true count is a warning only where it changes the verdict.
    warnings = [w for w in [verdict_differs(cost, max_params)] if w]
    warnings += [n for n in notes if n.startswith("train would refuse")]
    notes = [n for n in notes if n not in warnings] + list(cost.disagreement) + list(cost.notes)
    status = 0 if within else OVER_BUDGET  # not 2: a wrong argument or config is 2 (argparse, fakelens errors)
    if args.json:
        print_json({"model": describe(cfg), "config": to_dict(cfg), "cost": cost, "max_params": max_params,
                    "within_budget": within, "warnings": warnings, "notes": notes})
        return status
    shapes = ", ".join(f"{k} {tuple(v)}" for k, v in cost.input_shapes.items())
    verdict = (f"within budget ({cost.params / max_params:.1%} of {human(max_params)})" if within
               else f"OVER BUDGET: {cost.params / 1e6:.1f}M > {human(max_params)}")
    rows = [
        ("model", describe(cfg)),
        ("input", shapes),
        ("params (true)", f"{cost.params:,} ({human(cost.params)})"),
        ("params trainable", f"{cost.trainable_params:,}"),
        ("params (thop)", f"{cost.thop_params:,} ({human(cost.thop_params)})"),
        ("MACs (flop_counter)", f"{cost.macs:,} ({human(cost.macs)})"),
        ("FLOPs (flop_counter)", f"{cost.flops:,} ({human(cost.flops)})"),
        ("MACs (thop)", f"{cost.thop_macs:,} ({human(cost.thop_macs)})"),
        ("budget", verdict),
        ("counted on", cost.counted_on),
    ]
    print_table(f"fakelens model info {cfg.name}", ["quantity", "value"], rows)
    err = console(stderr=True)
    for w in warnings:
        err.print(f"[bold red]warning:[/] {w}", highlight=False)
    for n in notes:
        err.print(f"[yellow]note:[/] {n}", highlight=False)
    return status


def run_list(args: argparse.Namespace) -> int:
    from fakelens.cli.output import print_json, print_table
    from fakelens.models import BACKBONES, MODELS, POOLINGS, image_backbone_names, video_backbone_names

    models = []
    for name in MODELS.names():
        spec = MODELS.get(name)
        defaults = ", ".join(f"{k}={v}" for k, v in spec.defaults.items())
        models.append({"name": name, "inputs": list(spec.inputs), "defaults": defaults, "summary": spec.summary})
    timm_count = len(image_backbone_names()) - len(BACKBONES)
    backbones = {
        "frame/av/audio/i3d (2D)": BACKBONES.names() + [f"any of {timm_count} timm models (see --backbones PATTERN)"],
        "clip3d (video)": video_backbone_names(),
        "pooling": POOLINGS.names(),
    }
    matches = image_backbone_names(args.backbones) if args.backbones else None
    if args.json:
        out: dict[str, Any] = {"models": models, "backbones": backbones}
        if matches is not None:
            out["matching_backbones"] = matches
        print_json(out)
        return 0
    print_table("models", ["name", "inputs", "defaults", "summary"],
                [(m["name"], ", ".join(m["inputs"]), m["defaults"], m["summary"]) for m in models])
    print_table("backbones", ["used by", "names"], [(k, ", ".join(v)) for k, v in backbones.items()])
    if matches is not None:
        print_table(f"2D backbones matching {args.backbones!r} ({len(matches)})", ["name"], [(m,) for m in matches])
    return 0
