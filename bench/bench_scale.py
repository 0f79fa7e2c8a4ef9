"""`make bench-scale` (opt-in): batch scoring with explanations on a local Dask cluster against one process.

    python -m bench.bench_scale [--workdir DIR] [--rows N] [--partition-rows P] [--portfolio-rows M]

Builds (once) a work directory of N labelled applications, then scores and explains (exact TreeSHAP) every
application three ways, measured in the same run: one single-threaded process (the baseline: the in-process
scorer, partition by partition), `python -m scoring batch`'s code on a local cluster of 1 worker, then of 2
workers (one thread each). Target: 2 workers >= 1.6x the baseline's rows/s on this 2-core machine; the table
also shows how it scales from 1 to 2 workers. Cluster start-up is excluded (timed apart).

With `--portfolio-rows M` (e.g. 10000000; `make bench-scale PORTFOLIO_ROWS=10000000`), it also generates M
applications out of core (`python -m scoring generate`) and scores and explains them on the 2-worker cluster
(`python -m scoring batch --input`), sampling the memory of every process involved (this one, the generator,
the cluster's scheduler and workers) twice a second. Target: peak total <= 6 GB.
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
TARGET_PEAK_GB = 6.0


class MemorySampler:
    """The largest total resident memory of this process and all its descendants, sampled every `every` s."""

    def __init__(self, every: float = 0.5):
        import threading

        import psutil

        self.peak, self.every, self._stop = 0, every, threading.Event()
        self._me = psutil.Process()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _total(self) -> int:
        import psutil

        total = 0
        for process in [self._me, *self._me.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.Error:
                pass
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._total())
            self._stop.wait(self.every)

    def __enter__(self) -> "MemorySampler":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def large_portfolio(workdir: Workdir, rows: int, partition_rows: int) -> list[Row]:
    """Generate `rows` applications out of core, then score and explain them on 2 workers; time and peak memory."""
    import subprocess

    from dask.distributed import LocalCluster

    from scoring.batch import run_batch

    chunks = Path(workdir.root) / f"portfolio-{rows}"
    scored = Path(workdir.root) / f"portfolio-{rows}-scored"
    shutil.rmtree(chunks, ignore_errors=True)
    shutil.rmtree(scored, ignore_errors=True)
    with MemorySampler() as generating:
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "scoring", "generate", "--rows", str(rows), "--output", str(chunks),
                        "--quiet"], cwd=ROOT, check=True)
        generated_s = time.perf_counter() - started
    with MemorySampler() as scoring:
        with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
            summary = run_batch(scored, workdir, scheduler=cluster.scheduler_address, input=chunks,
                                partition_rows=partition_rows, quiet=True)
    peak = max(generating.peak, scoring.peak) / 1e9
    return [
        Row(f"generate {rows:,} applications (Parquet chunks)", rows / generated_s, "rows/s",
            baseline=f"{generated_s:,.0f} s"),
        Row(f"score + explain {rows:,} on 2 workers", summary.rows / summary.seconds, "rows/s",
            baseline=f"{summary.seconds:,.0f} s"),
        Row("peak memory, all processes (generate, then score)", peak, "GB", f"<= {TARGET_PEAK_GB:g} GB",
            peak <= TARGET_PEAK_GB, f"generate {generating.peak / 1e9:.2f}, score {scoring.peak / 1e9:.2f}"),
    ]


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
    parser.add_argument("--portfolio-rows", type=int, default=0,
                        help="also generate this many applications out of core and score them (e.g. 10000000)")
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
    ok = speedup >= TARGET_SPEEDUP
    if args.portfolio_rows:
        rows = large_portfolio(workdir, args.portfolio_rows, args.partition_rows)
        print_table(f"A portfolio of {args.portfolio_rows:,} applications, out of core", rows)
        ok = ok and all(r.ok is not False for r in rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
