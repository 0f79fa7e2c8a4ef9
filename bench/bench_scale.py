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

With `--store-rows N` (`make bench-scale STORE_ROWS=10000000`), it measures the store at N files instead:
generates N applications out of core, builds a work directory from them out of core (`python -m scoring build
--input`), with the peak memory of every process; then opens the service and measures its start, the resident
memory once the analysts' figures are computed, the client switch (overview + reasons + offers + peers, as the
advisor's page loads them), searches and filters, and the dashboard's first page (`bench.bench_dashboard`: a
session's first render and switches in process, then a first page in Chromium). The generated chunks and the
built directory are kept in `--workdir` and reused by the next run of the same N (the build's figures are then
those measured when it was built). Targets (issue 14, at 10M): peak <= 6 GB, switch p95 <= 100 ms server-side,
search or filter p95 <= 300 ms, first page interactive <= 5 s.
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
TARGET_SWITCH_MS = 100.0
TARGET_SEARCH_MS = 300.0
TARGET_FIRST_PAGE_S = 5.0


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


def _timed_run(args: list[str], quiet: bool = True) -> tuple[float, int, str]:
    """A `python -m scoring ...` command: its seconds, the peak memory of it and its children, its stderr."""
    import subprocess

    with MemorySampler() as memory:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "scoring", *args, *(["--quiet"] if quiet else [])], cwd=ROOT,
                              check=True, stderr=subprocess.PIPE, text=True)
        return time.perf_counter() - started, memory.peak, done.stderr


def _model_seconds(progress: str) -> float | None:
    """When the build's model step ended (its progress line: "... 3/6 model ... ( 20.8 s)"): the training."""
    import re

    found = re.search(r"\d/\d model .*\(\s*([\d.]+) s\)", progress)
    return float(found.group(1)) if found else None


def store_at_scale(root: Path, rows: int, train_rows: int | None, browser: bool) -> list[Row]:
    """Generate and build a store of `rows` files out of core (once), then measure serving it."""
    import json

    import psutil

    from bench.common import p50, p95, timings_ms
    from scoring.contracts import ClientQuery

    chunks, built = root / f"store-{rows}-chunks", Workdir.resolve(root / f"store-{rows}")
    figures = built.root / "bench_build.json"
    if not (built.is_built() and figures.exists()):
        generate_s, generate_peak, _ = _timed_run(["generate", "--rows", str(rows), "--output", str(chunks)])
        build_s, build_peak, progress = _timed_run(["build", "--input", str(chunks), "--workdir", str(built.root),
                                                    *(["--rows", str(train_rows)] if train_rows else [])], quiet=False)
        figures.write_text(json.dumps({"generate_s": generate_s, "generate_peak": generate_peak,
                                       "build_s": build_s, "build_peak": build_peak,
                                       "training_s": _model_seconds(progress)}))
        when = "this run"
    else:
        when = "measured when built"
    f = json.loads(figures.read_text())
    peak = max(f["generate_peak"], f["build_peak"]) / 1e9
    rows_out = [
        Row(f"generate {rows:,} applications (Parquet chunks)", f["generate_s"], "s", baseline=when),
        Row(f"build the store out of core ({rows:,} files)", f["build_s"], "s",
            baseline=f"{rows / f['build_s']:,.0f} files/s" + (f", training {f['training_s']:,.0f} s"
                                                               if f.get("training_s") else "")),
        Row("peak memory, all processes (generate, then build)", peak, "GB", f"<= {TARGET_PEAK_GB:g} GB",
            peak <= TARGET_PEAK_GB, f"generate {f['generate_peak'] / 1e9:.2f}, build {f['build_peak'] / 1e9:.2f}"),
    ]

    from scoring.service import LocalScoringService

    me = psutil.Process()
    rss_before = me.memory_info().rss
    started = time.perf_counter()
    service = LocalScoringService(built)
    start_s = time.perf_counter() - started
    rss_open = me.memory_info().rss - rss_before
    started = time.perf_counter()
    service.portfolio()
    portfolio_s = time.perf_counter() - started
    rng = np.random.default_rng(0)
    ids = iter(rng.choice(service.ids, 400, replace=False).tolist())

    def switch() -> None:   # what the advisor's page asks for when a client is chosen
        cid = int(next(ids))
        service.overview(cid)
        service.reasons(cid, "fr")
        service.offers(cid)
        service.peers(cid)

    switch_ms = timings_ms(switch, 200, warmup=5)
    some = str(int(service.ids[len(service.ids) // 3]))
    queries = [ClientQuery(q=some), ClientQuery(q=some[:4], sort="default_probability", descending=True),
               ClientQuery(decision="refused", sort="default_probability", descending=True),
               ClientQuery(min_probability=0.1, max_probability=0.3, contract_type="Cash loans", sort="income"),
               ClientQuery(min_income=10_000, max_income=30_000, min_age=25, max_age=45, sort="credit_amount",
                           offset=2_000)]
    query = iter(queries * 20)
    search_ms = timings_ms(lambda: service.search(next(query)), 5 * 12, warmup=5)
    started = time.perf_counter()
    service.start_governance().join()
    governance_s = time.perf_counter() - started
    rss_all = me.memory_info().rss - rss_before
    rows_out += [
        Row("service start (model, store, arrays)", start_s, "s", baseline=f"RSS +{rss_open / 2**20:,.0f} MB"),
        Row("portfolio summary, first call", portfolio_s, "s"),
        Row("client switch p95 (overview+reasons+offers+peers)", p95(switch_ms), "ms", f"<= {TARGET_SWITCH_MS:g} ms",
            p95(switch_ms) <= TARGET_SWITCH_MS, f"p50 {p50(switch_ms):.1f} ms"),
        Row("search / filter / sort p95", p95(search_ms), "ms", f"<= {TARGET_SEARCH_MS:g} ms",
            p95(search_ms) <= TARGET_SEARCH_MS, f"p50 {p50(search_ms):.1f} ms, {len(queries)} queries"),
        Row("analysts' figures computed (fairness, monitoring...)", governance_s, "s",
            baseline=f"RSS then +{rss_all / 2**20:,.0f} MB"),
    ]
    service = None   # frees the engine before the dashboard bench opens its own
    from bench import bench_dashboard

    dashboard = bench_dashboard.server_side(built, 40)
    rows_out += [r for r in dashboard if "service load" not in r.metric]
    if browser:
        page = bench_dashboard.browser(built, 20, 1)
        for r in page:
            if r.metric.startswith("first page load to a client"):
                rows_out.append(Row(r.metric, r.value, "s", f"<= {TARGET_FIRST_PAGE_S:g} s",
                                    r.value <= TARGET_FIRST_PAGE_S, r.baseline))
            elif r.metric.startswith(("server start", "switch client in the browser p95", "server RSS after")):
                rows_out.append(r)
    return rows_out


def extrapolated(rows: list[Row], n: int, target_n: int = 10_000_000) -> list[Row]:
    """The figures that grow with the number of files, at `target_n`: times linearly (an upper bound: training on
    the sample is a fixed cost), the service's memory linearly, the build's peak as its peak plus the 22 bytes a file
    it keeps (ids, probabilities, targets, folds for the registry): its slices and DuckDB's memory do not grow."""
    factor = target_n / n
    out = []
    for r in rows:
        if r.metric.startswith("build the store") and "training" in r.baseline:
            training = float(r.baseline.split("training ")[1].split(" s")[0].replace(",", ""))
            out.append(Row("build the store: training + the rest linearly", training + (r.value - training) * factor,
                           r.unit, "", None, f"training on the sample {training:,.0f} s, fixed"))
        elif r.metric.startswith(("generate", "build the store", "service start", "analysts' figures")):
            out.append(Row(f"{r.metric.split(' (')[0]} x{factor:g}", r.value * factor, r.unit, "", None,
                           "linear extrapolation"))
        elif r.metric.startswith("peak memory"):
            peak = r.value + 22 * (target_n - n) / 1e9
            out.append(Row("peak memory (build + 22 B per extra file)", peak, "GB", r.target, peak <= TARGET_PEAK_GB,
                           "extrapolated, not measured"))
    return out


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
    parser.add_argument("--store-rows", type=int, default=0,
                        help="measure a store of this many files built out of core instead (e.g. 10000000)")
    parser.add_argument("--train-rows", type=int, help="with --store-rows: labelled applications trained on "
                                                       "(build --rows; default the build's)")
    parser.add_argument("--no-browser", action="store_true", help="with --store-rows: no first page in Chromium")
    args = parser.parse_args(argv)
    workdir = Workdir.resolve(args.workdir)
    if args.store_rows:
        workdir.root.mkdir(parents=True, exist_ok=True)
        rows = store_at_scale(workdir.root, args.store_rows, args.train_rows, not args.no_browser)
        print_table(f"A store of {args.store_rows:,} client files, built out of core", rows)
        if args.store_rows < 10_000_000:
            print_table("The same at 10,000,000 files: a LINEAR EXTRAPOLATION, not a measurement",
                        extrapolated(rows, args.store_rows))
        return 0 if all(r.ok is not False for r in rows) else 1
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
