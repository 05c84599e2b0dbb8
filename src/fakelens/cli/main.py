"""Entry point of the `fakelens` command.

Each sub-command lives in its own module exposing `add_parser(subparsers)`; the module must not
import heavy libraries (torch, cv2, timm) at import time so that `fakelens --help` stays fast.
`FakelensError`s are printed as one clear line, without a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# (group, module). Group None = top-level command defined by the module; otherwise the module
# adds a sub-command under that group (`fakelens data inspect`).
COMMANDS: list[tuple[str | None, str]] = [
    ("data", "fakelens.cli.data_inspect"),
    ("data", "fakelens.cli.data_synth"),
    (None, "fakelens.cli.preprocess"),
    (None, "fakelens.cli.features"),
    ("model", "fakelens.cli.model"),
    (None, "fakelens.cli.evaluate"),
    (None, "fakelens.cli.baseline"),
    (None, "fakelens.cli.train"),
    (None, "fakelens.cli.predict"),
    (None, "fakelens.cli.detect"),
    (None, "fakelens.cli.serve"),
    (None, "fakelens.cli.robustness"),
    ("submission", "fakelens.cli.submission"),
]

GROUP_HELP = {
    "data": "inspect datasets, generate synthetic deepfakes",
    "submission": "validate submission files",
    "model": "list models, count parameters and FLOPs",
}


def build_parser() -> argparse.ArgumentParser:
    from fakelens import __version__

    parser = argparse.ArgumentParser(
        prog="fakelens",
        description="Audio-visual deepfake detection: datasets, preprocessing, training, "
        "submissions, official-parity metrics and per-video reports.",
    )
    parser.add_argument("--version", action="version", version=f"fakelens {__version__}")
    top = parser.add_subparsers(dest="command", metavar="COMMAND")
    groups: dict[str, argparse._SubParsersAction] = {}
    for group, module_name in COMMANDS:
        module = importlib.import_module(module_name)
        if group is None:
            module.add_parser(top)
            continue
        if group not in groups:
            gp = top.add_parser(group, help=GROUP_HELP.get(group), description=GROUP_HELP.get(group))
            gp.set_defaults(_group_parser=gp)
            groups[group] = gp.add_subparsers(dest=f"{group}_command", metavar="SUBCOMMAND")
        module.add_parser(groups[group])
    return parser


def _hint_dashed_files(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """argparse reads a file named `-clip.mp4` as an unknown option and says a positional argument
    is missing: when one of the arguments starting with '-' is an existing file, every parser's
    error message says how to pass it."""
    import os

    dashed = [a for a in argv if a.startswith("-") and a not in ("-", "--") and "=" not in a and os.path.exists(a)]
    if not dashed:
        return
    hint = (f" ({dashed[0]!r} is a file whose name starts with '-', read as an option: write "
            f"./{dashed[0]} or put it after --)")

    def patch(p: argparse.ArgumentParser) -> None:
        error = p.error
        p.error = lambda message: error(message + hint)  # type: ignore[method-assign]
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    patch(sub)

    patch(parser)


def main(argv: list[str] | None = None) -> int:
    from fakelens.errors import FakelensError

    parser = build_parser()
    _hint_dashed_files(parser, sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        (getattr(args, "_group_parser", None) or parser).print_help()
        return 2
    try:
        return int(func(args) or 0)
    except FakelensError as e:
        print(f"fakelens: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fakelens: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # whoever read the output (`| head`) has gone: nothing more to say, no traceback
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # Python's flush at exit must not fail again
        return 141


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
