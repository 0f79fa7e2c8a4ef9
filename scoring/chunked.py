"""Out-of-core generation: a generated portfolio of any size (10 million applications and more) written as Parquet
chunks with one chunk in memory at a time.

`python -m scoring generate --rows 10000000 --output DIR [--chunk-rows 500000] [--seed 42]` writes, for chunk k,
`application-k.parquet` (the 122 columns of Home Credit's application_train, TARGET being the outcome drawn
from each applicant's true default probability, then the aggregates of the applicant's other credits that a
build joins from bureau.csv, `scoring.schema.DEBT_COLUMNS`) and `true_probability-k.parquet`, each in row groups of
`ROW_GROUP_ROWS` so that readers (`python -m scoring batch --input DIR`, DuckDB) stream them. Chunk k is
`scoring.generator.generate_portfolio` with a seed of its own (drawn from `--seed`) and client IDs
continuing the previous chunk's, so the portfolio is the same for the same (rows, chunk rows, seed)
whatever the machine. A chunk is written to a hidden file and renamed when complete: the same command
resumes an interrupted run, finished chunks are kept and not redone.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from .dataset import join_debts
from .errors import ScoringError
from .generator import generate_portfolio
from .schema import bureau_debts
from .store import aggregate_debts

CHUNK_ROWS = 500_000        # ~1.3 GB of peak memory while a chunk is generated
ROW_GROUP_ROWS = 50_000
MANIFEST = "_generated.json"
FORMAT = 2  # 2: the debts' aggregates (DEBT_COLUMNS) after the Home Credit columns


class GenerationError(ScoringError):
    """A chunked generation that cannot start; finished chunks are kept."""


@dataclass(frozen=True)
class GeneratedChunks:
    directory: Path
    rows: int
    chunks: int
    skipped: int          # finished by an earlier run
    seconds: float

    def text(self) -> str:
        return (f"generated {self.rows:,} applications in {self.chunks} chunks ({self.skipped} already done) in "
                f"{self.seconds:.1f} s\n  output        {self.directory}")


def chunk_paths(directory: Path, k: int) -> dict[str, Path]:
    return {"application": directory / f"application-{k:05d}.parquet",
            "true_probability": directory / f"true_probability-{k:05d}.parquet"}


def _rows_in(path: Path) -> int | None:
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (OSError, pa.ArrowException):
        return None


def _write(frame: pd.DataFrame, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")  # hidden: never read as a chunk
    try:
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), tmp, row_group_size=ROW_GROUP_ROWS)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def generate_chunks(output: str | Path, rows: int, chunk_rows: int = CHUNK_ROWS, seed: int = 42,
                    progress: Callable[[str], None] | None = None) -> GeneratedChunks:
    """Generate `rows` labelled applications into `output`, `chunk_rows` at a time (see the module docstring)."""
    for name, value, least in (("--rows", rows, 1), ("--chunk-rows", chunk_rows, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise GenerationError(f"{name} must be a whole number >= {least}, got {value!r}")
    out = Path(output)
    out.mkdir(parents=True, exist_ok=True)
    manifest = out / MANIFEST
    expected = {"rows": int(rows), "chunk_rows": int(chunk_rows), "seed": int(seed), "format": FORMAT}
    if manifest.exists() and json.loads(manifest.read_text()) != expected:
        raise GenerationError(f"{out} holds another generated portfolio ({manifest.read_text().strip()}); "
                              f"choose an empty --output directory")
    manifest.write_text(json.dumps(expected))

    n_chunks = -(-int(rows) // int(chunk_rows))
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(n_chunks)]
    started, skipped = time.perf_counter(), 0
    for k in range(n_chunks):
        n = min(chunk_rows, rows - k * chunk_rows)
        paths = chunk_paths(out, k)
        if all(_rows_in(p) == n for p in paths.values()):
            skipped += 1
            continue
        portfolio = generate_portfolio(n, 0, seed=seeds[k])
        offset = k * chunk_rows  # generate_portfolio numbers a chunk's applications from FIRST_ID, in order
        application = portfolio.train.assign(SK_ID_CURR=portfolio.train["SK_ID_CURR"] + offset)
        # the applicants' other credits as the model reads them (the build joins the same from bureau.csv)
        debts = aggregate_debts(portfolio.bureau, bureau_debts(out / "bureau"))
        application = join_debts(application, debts.assign(client_id=debts["client_id"] + offset), "SK_ID_CURR")
        truth = portfolio.true_probability.assign(SK_ID_CURR=portfolio.true_probability["SK_ID_CURR"] + offset)
        _write(truth, paths["true_probability"])
        _write(application, paths["application"])
        del portfolio, application, truth
        if progress:
            progress(f"chunk {k + 1}/{n_chunks}: {min((k + 1) * chunk_rows, rows):,} applications")
    return GeneratedChunks(out, int(rows), n_chunks, skipped, time.perf_counter() - started)
