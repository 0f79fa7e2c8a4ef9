"""`make bench-scale` (opt-in): batch scoring with explanations on a local Dask cluster against one process.

    python -m bench.bench_scale [--workdir DIR] [--rows N] [--partition-rows P]

Builds (once) a work directory of N labelled applications, then scores and explains (exact TreeSHAP) every
application three ways, measured in the same run: one single-threaded process (the baseline: the in-process
scorer, partition by partition), `python -m scoring batch`'s code on a local cluster of 1 worker, then of 2
workers (one thread each). Target: 2 workers >= 1.6x the baseline's rows/s on this 2-core machine; the table
also shows how it scales from 1 to 2 workers. Cluster start-up is excluded (timed apart).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Row, print_table
from scoring.config import Workdir

ROOT = Path(__file__).resolve().parent.parent
TARGET_SPEEDUP = 1.6


def baseline_rows_per_s(workdir: Workdir, partition_rows: int) -> tuple[float, int]:
    """The in-process scorer on one thread, the same partitions and outputs as the batch (minus writing)."""
    from scoring.model import load_model
    from scoring.scorer import Scorer

    booster, card = load_model(workdir.model)
    scorer = Scorer(booster, card, nthread=1)
    X_all = np.load(workdir.features_path, mmap_mode="r")
    n = X_all.shape[0]
    started = time.perf_counter()
    for s in range(0, n, partition_rows):
        X = np.asarray(X_all[s:s + partition_rows], dtype=np.float32)
        scorer.predict_proba(X)
        scorer.contributions(X)
    return n / (time.perf_counter() - started), n


def cluster_rows_per_s(workdir: Workdir, workers: int, partition_rows: int) -> tuple[float, float]:
    from dask.distributed import Client, LocalCluster

    from scoring.batch import run_batch

    out = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    try:
        started = time.perf_counter()
        with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            client.wait_for_workers(workers)
            startup = time.perf_counter() - started
            summary = run_batch(out, workdir, scheduler=cluster.scheduler_address, partition_rows=partition_rows,
                                quiet=True)
        return summary.rows / summary.seconds, startup
    finally:
        shutil.rmtree(out, ignore_errors=True)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=str(ROOT / "bench" / "results" / "scale"))
    parser.add_argument("--rows", type=int, default=100_000, help="labelled applications of the portfolio built")
    parser.add_argument("--partition-rows", type=int, default=20_000)
    args = parser.parse_args(argv)
    workdir = Workdir.resolve(args.workdir)
    if not workdir.is_built():
        from scoring.build import build

        build(workdir, rows=args.rows, quiet=True)
    base, n = baseline_rows_per_s(workdir, args.partition_rows)
    one, startup_one = cluster_rows_per_s(workdir, 1, args.partition_rows)
    two, startup_two = cluster_rows_per_s(workdir, 2, args.partition_rows)
    speedup = two / base
    print_table(f"Batch scoring + exact TreeSHAP of {n:,} applications", [
        Row("one process, one thread (baseline)", base, "rows/s"),
        Row("local Dask cluster, 1 worker", one, "rows/s", baseline=f"{one / base:.2f}x the baseline"),
        Row("local Dask cluster, 2 workers", two, "rows/s", f">= {TARGET_SPEEDUP}x baseline",
            speedup >= TARGET_SPEEDUP, f"{speedup:.2f}x baseline, {two / one:.2f}x 1 worker"),
        Row("cluster start-up (2 workers, not counted above)", startup_two, "s"),
    ])
    return 0 if speedup >= TARGET_SPEEDUP else 1


if __name__ == "__main__":
    sys.exit(main())
