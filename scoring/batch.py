"""Batch scoring of a whole portfolio on a Dask cluster: default probability, decision and exact TreeSHAP
explanation of every application, partition by partition, into partitioned Parquet.

`python -m scoring batch --output DIR [--workdir DIR] [--scheduler ADDRESS]`: a local cluster (one
single-threaded worker process per core) by default, or an existing `dask.distributed` scheduler. The
workers read the built work directory (the model and the feature matrix, memory-mapped), so on several
machines it must be on a filesystem they all see (NFS, a shared volume). Each partition is written to a
temporary file and renamed when complete: a partition on disk is finished, a run that stops (error, lost
scheduler, Ctrl-C) is resumed by running the same command again, and finished partitions are not redone.
A worker lost mid-run is no failure: the scheduler gives its partitions to the others.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .cluster import dask_client, worker_count
from .config import Workdir
from .contracts import decide
from .errors import ModelError, ScoringError

PARTITION_ROWS = 20_000
MANIFEST = "_batch.json"


class BatchError(ScoringError):
    """A batch run that cannot start or finish; finished partitions are kept."""


@dataclass(frozen=True)
class BatchSummary:
    output: Path
    rows: int
    partitions: int
    skipped: int          # finished by an earlier run
    seconds: float
    workers: int

    def text(self) -> str:
        done = self.partitions - self.skipped
        rate = self.rows / self.seconds if self.seconds > 0 and done else 0.0
        return (f"scored and explained {self.rows:,} applications in {self.partitions} partitions "
                f"({self.skipped} already done) in {self.seconds:.1f} s on {self.workers} workers"
                + (f", {rate:,.0f} rows/s" if rate else "") + f"\n  output        {self.output}")


@functools.lru_cache(maxsize=4)
def _scorer(model_dir: str, version: str):
    """The model, loaded once per worker process (keyed by its version: a rebuilt model is reloaded)."""
    from .model import load_model
    from .scorer import Scorer

    booster, card = load_model(Path(model_dir))
    if card.version != version:
        raise ModelError(f"the model in {model_dir} is {card.version}, the batch was started with {version}: "
                         f"it was rebuilt during the run; start the batch again")
    return Scorer(booster, card, nthread=1)


def score_partition(model_dir: str, version: str, features_path: str, start: int, stop: int,
                    client_ids: np.ndarray, path: str) -> int:
    """Score, decide and explain rows [start, stop) of the feature matrix into one Parquet file; its row count."""
    scorer = _scorer(model_dir, version)
    X = np.asarray(np.load(features_path, mmap_mode="r")[start:stop], dtype=np.float32)
    if X.shape[1] != len(scorer.spec.features):
        raise ModelError(f"{features_path} has {X.shape[1]} columns, the model {len(scorer.spec.features)}")
    probability = scorer.predict_proba(X).astype(np.float64)
    shap_values = scorer.contributions(X)
    columns = {
        "client_id": pa.array(client_ids, pa.int64()),
        "default_probability": pa.array(probability),
        "decision": pa.array([decide(p, scorer.threshold) for p in probability.tolist()], pa.string()),
        "model_version": pa.array([version] * len(X), pa.string()),
        "base_value": pa.array(shap_values[:, -1].astype(np.float64)),
        **{f"shap_{name}": pa.array(shap_values[:, j]) for j, name in enumerate(scorer.spec.names)},
    }
    table = pa.table(columns)
    target = Path(path)
    tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}")  # hidden: never read as a partition
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)  # a partition on disk is complete
    finally:
        tmp.unlink(missing_ok=True)
    return len(X)


def _finished(path: Path, rows: int) -> bool:
    try:
        return pq.ParquetFile(path).metadata.num_rows == rows
    except (OSError, pa.ArrowException):
        return False


def run_batch(output: str | Path, workdir: Workdir | None = None, scheduler: str | None = None,
              workers: int | None = None, partition_rows: int = PARTITION_ROWS, quiet: bool = False) -> BatchSummary:
    """Score every application of `workdir` into `output` (one Parquet file per partition)."""
    from dask.distributed import as_completed

    workdir = workdir or Workdir.resolve()
    if not workdir.is_built():
        raise BatchError(f"nothing built in {workdir.root}: run `python -m scoring build --workdir {workdir.root}`")
    if partition_rows < 1:
        raise BatchError(f"--partition-rows must be at least 1, got {partition_rows}")
    from .model import load_model
    from .store import ClientStore

    _, card = load_model(workdir.model)
    store = ClientStore(workdir.store_path)
    try:
        ids = store.client_ids()
    finally:
        store.close()
    n = int(np.load(workdir.features_path, mmap_mode="r").shape[0])
    if n != len(ids):
        raise ModelError(f"{workdir.features_path} has {n} rows for {len(ids)} client files: rebuild")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST
    expected = {"model_version": card.version, "rows": n, "partition_rows": partition_rows}
    if manifest.exists() and json.loads(manifest.read_text()) != expected:
        raise BatchError(f"{out} holds a batch of another model or partitioning ({manifest.read_text().strip()}); "
                         f"choose an empty --output directory")
    manifest.write_text(json.dumps(expected))

    bounds = [(s, min(s + partition_rows, n)) for s in range(0, n, partition_rows)]
    paths = [out / f"part-{i:05d}.parquet" for i in range(len(bounds))]
    todo = [i for i, (s, e) in enumerate(bounds) if not _finished(paths[i], e - s)]
    started = time.perf_counter()
    with dask_client(scheduler, workers) as client:
        n_workers = worker_count(client)
        futures = {
            client.submit(score_partition, str(workdir.model), card.version, str(workdir.features_path), s, e,
                          ids[s:e], str(paths[i]), key=f"score-partition-{card.version}-{i}", retries=1): i
            for i, (s, e) in ((i, bounds[i]) for i in todo)}
        done, failed = 0, []
        for future in as_completed(futures):
            i = futures[future]
            try:
                future.result()
            except Exception as exc:  # a partition's own error: report it, keep going with the others
                failed.append(f"partition {i} (rows {bounds[i][0]}-{bounds[i][1] - 1}): {type(exc).__name__}: {exc}")
            done += 1
            if not quiet:
                print(f"\r  partitions {len(bounds) - len(todo) + done}/{len(bounds)}", end="", file=sys.stderr,
                      flush=True)
        if not quiet and todo:
            print(file=sys.stderr)
    if failed:
        raise BatchError(f"{len(failed)} of {len(bounds)} partitions failed ({len(bounds) - len(failed)} are "
                         f"finished and kept in {out}; run again to retry the others):\n  " + "\n  ".join(failed))
    return BatchSummary(out, n, len(bounds), len(bounds) - len(todo), time.perf_counter() - started, n_workers)


def read_batch(output: str | Path) -> pd.DataFrame:
    """Every partition of a finished batch as one frame (tests, small portfolios)."""
    return pd.read_parquet(Path(output), engine="pyarrow").sort_values("client_id", ignore_index=True)
