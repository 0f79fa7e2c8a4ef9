"""Benchmarks: `make bench` (python -m bench) prints tables with targets and same-run baselines."""
