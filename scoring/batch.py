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


def _scored_table(scorer, version: str, client_ids: np.ndarray, X: np.ndarray) -> pa.Table:
    """Probability, decision and exact TreeSHAP values (one column per feature, and the base value) of rows X."""
    probability = scorer.predict_proba(X).astype(np.float64)
    shap_values = scorer.contributions(X)
    return pa.table({
        "client_id": pa.array(client_ids, pa.int64()),
        "default_probability": pa.array(probability),
        "decision": pa.array([decide(p, scorer.threshold) for p in probability.tolist()], pa.string()),
        "model_version": pa.array([version] * len(X), pa.string()),
        "base_value": pa.array(shap_values[:, -1].astype(np.float64)),
        **{f"shap_{name}": pa.array(shap_values[:, j]) for j, name in enumerate(scorer.spec.names)},
    })


def _hidden(target: Path) -> Path:
    return target.with_name(f".{target.name}.tmp-{os.getpid()}")  # hidden: never read as a partition


def score_partition(model_dir: str, version: str, features_path: str, start: int, stop: int,
                    client_ids: np.ndarray, path: str) -> int:
    """Score, decide and explain rows [start, stop) of the feature matrix into one Parquet file; its row count."""
    scorer = _scorer(model_dir, version)
    X = np.asarray(np.load(features_path, mmap_mode="r")[start:stop], dtype=np.float32)
    if X.shape[1] != len(scorer.spec.features):
        raise ModelError(f"{features_path} has {X.shape[1]} columns, the model {len(scorer.spec.features)}")
    table = _scored_table(scorer, version, client_ids, X)
    tmp = _hidden(Path(path))
    try:
        pq.write_table(table, tmp)
        os.replace(tmp, path)  # a partition on disk is complete
    finally:
        tmp.unlink(missing_ok=True)
    return len(X)


def score_file(model_dir: str, version: str, source: str, path: str, batch_rows: int = PARTITION_ROWS) -> int:
    """Score, decide and explain every application of one Parquet file of raw applications (the dataset's
    columns) into one Parquet file, `batch_rows` at a time: a worker holds one slice, never the whole file."""
    scorer = _scorer(model_dir, version)
    spec = scorer.spec
    parquet = pq.ParquetFile(source)
    id_column = spec.schema.id_column
    missing = sorted({id_column, *spec.raw_columns} - set(parquet.schema_arrow.names))
    if missing:
        raise BatchError(f"{source} lacks the column(s) the model reads: {', '.join(missing)}")
    tmp, rows, writer = _hidden(Path(path)), 0, None
    try:
        for batch in parquet.iter_batches(batch_size=batch_rows, columns=[id_column, *spec.raw_columns]):
            frame = batch.to_pandas()
            table = _scored_table(scorer, version, frame[id_column].to_numpy(dtype=np.int64),
                                  spec.transform_frame(frame))
            writer = writer or pq.ParquetWriter(tmp, table.schema)
            writer.write_table(table)
            rows += len(frame)
        if writer is None:
            raise BatchError(f"{source} holds no application")
        writer.close()
        os.replace(tmp, path)  # an output file on disk is complete
    finally:
        tmp.unlink(missing_ok=True)
    return rows


def _finished(path: Path, rows: int) -> bool:
    try:
        return pq.ParquetFile(path).metadata.num_rows == rows
    except (OSError, pa.ArrowException):
        return False


def input_files(input_dir: Path) -> list[Path]:
    """The Parquet files of applications in `input_dir`: `application-*.parquet` (as `python -m scoring generate`
    writes them) if there are any, else every `*.parquet`."""
    if not input_dir.is_dir():
        raise BatchError(f"--input {input_dir} is not a directory of Parquet files")
    files = sorted(input_dir.glob("application-*.parquet")) or sorted(input_dir.glob("*.parquet"))
    if not files:
        raise BatchError(f"--input {input_dir} holds no Parquet file of applications")
    return files


def run_batch(output: str | Path, workdir: Workdir | None = None, scheduler: str | None = None,
              workers: int | None = None, partition_rows: int = PARTITION_ROWS, quiet: bool = False,
              input: str | Path | None = None) -> BatchSummary:
    """Score every application of `workdir` (or of the Parquet files in `input`, with the workdir's model) into
    `output`: one Parquet file per partition (per input file)."""
    from dask.distributed import as_completed

    workdir = workdir or Workdir.resolve()
    if partition_rows < 1:
        raise BatchError(f"--partition-rows must be at least 1, got {partition_rows}")
    from .model import load_model

    if input is None and not workdir.is_built():
        raise BatchError(f"nothing built in {workdir.root}: run `python -m scoring build --workdir {workdir.root}`")
    _, card = load_model(workdir.model)
    out = Path(output)
    # tasks: (function, arguments, output path, rows expected, what it is)
    if input is None:
        from .store import ClientStore

        store = ClientStore(workdir.store_path)
        try:
            ids = store.client_ids()
        finally:
            store.close()
        n = int(np.load(workdir.features_path, mmap_mode="r").shape[0])
        if n != len(ids):
            raise ModelError(f"{workdir.features_path} has {n} rows for {len(ids)} client files: rebuild")
        expected = {"model_version": card.version, "rows": n, "partition_rows": partition_rows}
        bounds = [(s, min(s + partition_rows, n)) for s in range(0, n, partition_rows)]
        tasks = [(score_partition, (str(workdir.model), card.version, str(workdir.features_path), s, e, ids[s:e]),
                  out / f"part-{i:05d}.parquet", e - s, f"partition {i} (rows {s}-{e - 1})")
                 for i, (s, e) in enumerate(bounds)]
    else:
        sources = input_files(Path(input))
        counts = [pq.ParquetFile(f).metadata.num_rows for f in sources]
        n = int(sum(counts))
        expected = {"model_version": card.version, "input": str(Path(input).resolve()), "files": len(sources),
                    "rows": n}
        tasks = [(score_file, (str(workdir.model), card.version, str(f)), out / f"scored-{f.stem}.parquet", rows,
                  f"{f.name} ({rows:,} rows)") for f, rows in zip(sources, counts)]
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST
    if manifest.exists() and json.loads(manifest.read_text()) != expected:
        raise BatchError(f"{out} holds a batch of another model or partitioning ({manifest.read_text().strip()}); "
                         f"choose an empty --output directory")
    manifest.write_text(json.dumps(expected))

    todo = [i for i, task in enumerate(tasks) if not _finished(task[2], task[3])]
    started = time.perf_counter()
    with dask_client(scheduler, workers) as client:
        n_workers = worker_count(client)
        futures = {client.submit(tasks[i][0], *tasks[i][1], str(tasks[i][2]), key=f"score-{card.version}-{i}",
                                 retries=1): i for i in todo}
        done, failed = 0, []
        for future in as_completed(futures):
            i = futures[future]
            try:
                future.result()
            except Exception as exc:  # a partition's own error: report it, keep going with the others
                failed.append(f"{tasks[i][4]}: {type(exc).__name__}: {exc}")
            done += 1
            if not quiet:
                print(f"\r  partitions {len(tasks) - len(todo) + done}/{len(tasks)}", end="", file=sys.stderr,
                      flush=True)
        if not quiet and todo:
            print(file=sys.stderr)
    if failed:
        raise BatchError(f"{len(failed)} of {len(tasks)} partitions failed ({len(tasks) - len(failed)} are "
                         f"finished and kept in {out}; run again to retry the others):\n  " + "\n  ".join(failed))
    return BatchSummary(out, n, len(tasks), len(tasks) - len(todo), time.perf_counter() - started, n_workers)


def read_batch(output: str | Path) -> pd.DataFrame:
    """Every partition of a finished batch as one frame (tests, small portfolios)."""
    return pd.read_parquet(Path(output), engine="pyarrow").sort_values("client_id", ignore_index=True)
