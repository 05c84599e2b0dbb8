"""Speed benchmarks: `python -m benchmarks [substring]` runs every bench_*.py module's main()."""
