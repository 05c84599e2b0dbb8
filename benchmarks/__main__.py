"""Run every benchmarks/bench_*.py module's main() in name order, or only names containing argv[1]."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time

import benchmarks


def discover(pattern: str | None = None) -> list[str]:
    """Names of the bench_* modules in this package (sorted), filtered by substring."""
    names = sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__) if m.name.startswith("bench_"))
    return [n for n in names if pattern is None or pattern in n]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("pattern", nargs="?", help="run only benchmarks whose name contains this")
    args = parser.parse_args(argv)
    names = discover(args.pattern)
    if not names:
        print(f"no benchmark matches {args.pattern!r}; have: {', '.join(discover()) or 'none'}", file=sys.stderr)
        return 1
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        t0 = time.perf_counter()
        importlib.import_module(f"benchmarks.{name}").main()
        print(f"--- {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
