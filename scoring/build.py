"""Build everything the dashboard and the API serve: data, model, client-file store.

Builds into a temporary directory beside the target, then swaps it in: a failed or interrupted
build never leaves half-written artefacts in the work directory.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .cluster import dask_client
from .config import Workdir
from .contracts import ACCEPTED, decide
from .dataset import Dataset, default_schema, load_dataset
from .fairness import fairness_report, group_labels
from .features import FeatureSpec
from .model import CostWeights, DaskTrainer, save_model, train_model
from .registry import Registry
from .errors import SchemaError
from .schema import DatasetSchema, load_schema
from .scorer import Scorer
from .store import ClientStore, role_frame

IMPORTANCE_SAMPLE = 4000
STEPS = ("data", "features", "model", "scores", "store", "importance")


class Progress:
    """Steps with a text progress bar on stderr (no-op when `quiet`)."""

    def __init__(self, quiet: bool = False, stream=None):
        self.quiet = quiet
        self.stream = stream or sys.stderr
        self.started = time.perf_counter()
        self.done = 0

    def step(self, name: str, message: str) -> None:
        if self.quiet:
            return
        self.done += 1
        width = 24
        filled = round(width * self.done / len(STEPS))
        bar = "#" * filled + "-" * (width - filled)
        elapsed = time.perf_counter() - self.started
        print(f"[{bar}] {self.done}/{len(STEPS)} {name:<10} {message}  ({elapsed:5.1f} s)", file=self.stream, flush=True)

    def note(self, message: str) -> None:
        if not self.quiet:
            print(f"    {message}", file=self.stream, flush=True)


@dataclass(frozen=True)
class BuildSummary:
    workdir: Path
    n_labelled: int
    n_new: int
    default_rate: float
    roc_auc: float
    oof_roc_auc: float
    oracle_roc_auc: float | None
    threshold: float
    acceptance_rate: float
    seconds: float
    model_version: str

    def text(self) -> str:
        oracle = f" (oracle {self.oracle_roc_auc:.4f})" if self.oracle_roc_auc else ""
        return "\n".join([
            f"built model {self.model_version} in {self.seconds:.0f} s",
            f"  applications  {self.n_labelled:,} labelled ({self.default_rate:.1%} defaults) + {self.n_new:,} new",
            f"  holdout AUC   {self.roc_auc:.4f}{oracle}, out of fold {self.oof_roc_auc:.4f}",
            f"  threshold     {self.threshold:.3f} (refuse at or above this default probability)",
            f"  acceptance    {self.acceptance_rate:.1%} of holdout applications",
            f"  artefacts     {self.workdir / 'data'}, {self.workdir / 'model'}",
        ])


def build(workdir: Workdir | None = None, schema: DatasetSchema | str | Path | None = None, rows: int | None = None,
          costs: CostWeights = CostWeights(), seed: int = 42, quiet: bool = False,
          nthread: int = 0, age_as_feature: bool = True, scheduler: str | None = None,
          dask_workers: int | None = None) -> BuildSummary:
    """Load (or generate) the data, train, score every application, write the store, swap it in.

    The trainings run in this process, or with XGBoost's Dask interface on the cluster at `scheduler` (or on a
    local cluster of `dask_workers` processes)."""
    workdir = workdir or Workdir.resolve()
    progress = Progress(quiet)
    started = time.perf_counter()
    workdir.root.mkdir(parents=True, exist_ok=True)
    if schema is None:
        # generated data is a cache of its own, outside the swapped artefacts
        schema = default_schema(workdir.data, rows=rows, seed=seed, progress=progress.note,
                                age_as_feature=age_as_feature)
    elif not isinstance(schema, DatasetSchema):
        schema = load_schema(schema)
    dataset = load_dataset(schema)
    if rows is not None and schema.name != "home_credit_generated" and rows < len(dataset.train):
        dataset = _sample(dataset, rows, seed)
    progress.step("data", f"{len(dataset.train):,} labelled + {0 if dataset.new is None else len(dataset.new):,} "
                          f"new applications from {schema.name}")

    spec = FeatureSpec.fit(schema, dataset.train)
    X_train = spec.transform_frame(dataset.train)
    X_new = spec.transform_frame(dataset.new) if dataset.new is not None else np.empty((0, len(spec.features)), np.float32)
    progress.step("features", f"{len(spec.features)} model features")

    true_p = None
    if dataset.true_probability is not None:
        true_p = dataset.true_probability.reindex(dataset.train_ids).to_numpy(dtype=np.float64)
    with contextlib.ExitStack() as stack:
        trainer = None
        if scheduler or dask_workers:
            trainer = DaskTrainer(stack.enter_context(dask_client(scheduler, dask_workers)))
        trained = train_model(X_train, dataset.target, spec, fingerprint=dataset.fingerprint, costs=costs,
                              true_probability=true_p, seed=seed, nthread=nthread, progress=progress.note,
                              trainer=trainer)
    booster, card = trained.booster, trained.card
    groups = group_labels(dataset.train, schema)
    if groups:
        card = replace(card, fairness=fairness_report(trained.oof_probability, card.threshold, groups,
                                                      target=dataset.target))
        alerts = [f"{name}: {a['metric']} {a['value']:.2f}" for name, f in card.fairness.items() for a in f["alerts"]]
        progress.note("fairness by " + ", ".join(groups) + (f"; ALERTS: {'; '.join(alerts)}" if alerts else ": no alert"))
    progress.step("model", f"ROC AUC {card.metrics['roc_auc']:.4f} on the holdout, "
                           f"{card.metrics['oof_roc_auc']:.4f} out of fold, threshold {card.threshold:.3f}")

    scorer = Scorer(booster, card, nthread=nthread or (os.cpu_count() or 1))
    X_all = np.vstack([X_train, X_new])
    ids = np.concatenate([dataset.train_ids, dataset.new_ids if dataset.new is not None else np.empty(0, np.int64)])
    # labelled files: out of fold (a model that never saw them); new applications: the production model
    probability = np.concatenate([trained.oof_probability, scorer.predict_proba(X_new).astype(np.float64)])
    fold = np.concatenate([trained.fold_of, np.full(len(X_new), -1, dtype=np.int8)])
    split = np.array(["train"] * len(X_train) + ["new"] * len(X_new), dtype=object)
    target = np.concatenate([dataset.target.astype(np.float64), np.full(len(X_new), np.nan)])
    progress.step("scores", f"scored {len(ids):,} applications ({len(X_train):,} out of fold)")

    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=workdir.root))
    try:
        stage = Workdir(staging)
        stage.data.mkdir()
        save_model(booster, card, stage.model, trained.folds)
        raw = pd.concat([dataset.train, dataset.new], ignore_index=True) if dataset.new is not None else dataset.train
        order = np.argsort(ids, kind="stable")
        np.save(stage.features_path, X_all[order])
        meta = {"model_version": card.version, "features": spec.names, "schema": schema.name,
                "data_fingerprint": dataset.fingerprint}
        dates = None if dataset.application_dates is None else \
            dataset.application_dates.reindex(ids).to_numpy(dtype="datetime64[s]")
        ClientStore.write(stage.store_path, ids, split, target, probability, card.threshold,
                          role_frame(raw, schema), raw, meta, fold=fold, application_date=dates,
                          outcomes=_decided_outcomes(dataset, ids, probability, card.threshold))
        progress.step("store", f"client files in {workdir.store_path.name}")

        sample = _stratified_sample(dataset.target, IMPORTANCE_SAMPLE, seed)
        importance = scorer.global_importance(X_train[sample])
        stage.importance_path.write_text(json.dumps({"model_version": card.version, "sample_size": int(len(sample)),
                                                     "features": importance}, indent=1))
        progress.step("importance", f"global importance over {len(sample):,} applications")
        _swap_in(stage, workdir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    # the model registry keeps every build: compared on the same clients, served again (scoring.registry)
    Registry(workdir).register(workdir.model, pd.DataFrame({
        "client_id": ids, "split": split.astype(str), "target": target, "fold": fold,
        "default_probability": probability}))
    progress.note(f"model version {card.version} registered in {workdir.model / 'versions'}")

    summary = BuildSummary(workdir.root, len(dataset.train), 0 if dataset.new is None else len(dataset.new),
                           card.default_rate, card.metrics["roc_auc"], card.metrics["oof_roc_auc"],
                           card.metrics.get("oracle_roc_auc"),
                           card.threshold, card.metrics["acceptance_rate"], time.perf_counter() - started, card.version)
    if not quiet:
        print(summary.text(), file=sys.stderr, flush=True)
    return summary


def _decided_outcomes(dataset: Dataset, ids: np.ndarray, probability: np.ndarray,
                      threshold: float) -> pd.DataFrame | None:
    """The outcomes of new applications the model accepted (a refused application never got the loan)."""
    if dataset.outcomes is None:
        return None
    accepted = {int(i) for i, p in zip(ids.tolist(), probability.tolist()) if decide(p, threshold) == ACCEPTED}
    new = set(dataset.new_ids.tolist()) if dataset.new_ids is not None else set()
    keep = dataset.outcomes["SK_ID_CURR"].map(lambda i: int(i) in accepted and int(i) in new)
    kept = dataset.outcomes[keep.to_numpy(dtype=bool)]
    return pd.DataFrame({"client_id": kept["SK_ID_CURR"].to_numpy(np.int64),
                         "defaulted": kept["DEFAULTED"].to_numpy(np.int8),
                         "reported_on": pd.to_datetime(kept["REPORTED_ON"]).dt.date})


def _swap_in(stage: Workdir, target: Workdir) -> None:
    """Replace the built artefacts (store, features, model files) with the staged ones."""
    target.data.mkdir(parents=True, exist_ok=True)
    target.model.mkdir(parents=True, exist_ok=True)
    pairs = [(stage.store_path, target.store_path), (stage.features_path, target.features_path),
             (stage.booster_path, target.booster_path), (stage.card_path, target.card_path),
             (stage.importance_path, target.importance_path)]
    folds = target.model / "folds"
    if folds.exists():
        shutil.rmtree(folds)
    if (stage.model / "folds").exists():
        (stage.model / "folds").replace(folds)
    for src, dst in pairs:
        src.replace(dst)  # same filesystem: each rename is atomic


def _stratified_sample(y: np.ndarray, size: int, seed: int) -> np.ndarray:
    if len(y) <= size:
        return np.arange(len(y))
    from sklearn.model_selection import train_test_split
    sample, _ = train_test_split(np.arange(len(y)), train_size=size, stratify=y, random_state=seed)
    return np.sort(sample)


def _sample(dataset: Dataset, rows: int, seed: int) -> Dataset:
    """A stratified subset of a user dataset (for quick trials with --rows)."""
    keep = _stratified_sample(dataset.target, rows, seed)
    new_keep = None
    if dataset.new is not None:
        n_new = min(len(dataset.new), max(1, round(rows * len(dataset.new) / len(dataset.train))))
        new_keep = np.arange(n_new)
    return Dataset(dataset.schema, dataset.train.iloc[keep].reset_index(drop=True), dataset.train_ids[keep],
                   dataset.target[keep],
                   None if new_keep is None else dataset.new.iloc[new_keep].reset_index(drop=True),
                   None if new_keep is None else dataset.new_ids[new_keep], dataset.true_probability,
                   dataset.fingerprint + f"-rows{rows}")


# ----------------------------------------------------------------- out of core: a store of any size
TRAIN_SAMPLE_ROWS = 300_000   # labelled applications the model is trained (and cross-fitted) on
SLICE_ROWS = 100_000          # applications featurised, scored and stored at a time (~0.5 GB)


def chunks_schema(directory: Path, age_as_feature: bool = True) -> DatasetSchema:
    """The schema of `python -m scoring generate`'s chunks: Home Credit's columns, the debts' aggregates joined."""
    from .schema import home_credit_schema

    schema = home_credit_schema(name="home_credit_generated", bureau=Path(directory) / "bureau",
                                age_as_feature=age_as_feature)
    return replace(schema, protected={**schema.protected, "age": replace(schema.protected["age"],
                                                                         use_as_feature=age_as_feature)})


def build_from_chunks(input: str | Path, workdir: Workdir | None = None, rows: int = TRAIN_SAMPLE_ROWS,
                      costs: CostWeights = CostWeights(), seed: int = 42, quiet: bool = False, nthread: int = 0,
                      age_as_feature: bool = True, slice_rows: int = SLICE_ROWS) -> BuildSummary:
    """`python -m scoring build --input DIR`: a work directory over the Parquet files of `DIR` (`python -m scoring
    generate`'s chunks, client IDs increasing from one file to the next), with bounded memory whatever their size.

    1. The model is trained as `build` does (holdout, cross-fitting, production model) on `rows` labelled
       applications drawn at random (by a hash of the client ID and `seed`): those are the store's labelled files
       (split "train"), scored out of fold.
    2. Every other application is a decision of the portfolio (split "new"), scored by the production model;
       its outcome is not known at decision time (no target), and for the accepted ones it becomes a later
       outcome (the `outcomes` table, reported on the build's date: the chunks carry no dates), as the bank
       would learn it.
    3. The files are read `slice_rows` at a time in client-ID order: features written into a memory-mapped
       `features.npy`, probabilities, decisions and business columns appended to the store's tables
       (`scoring.store.StoreWriter`, same tables and meta as `build`), so the service opens it unchanged."""
    import datetime

    import duckdb
    import pyarrow.parquet as pq
    from numpy.lib.format import open_memmap

    from .batch import BatchError, input_files
    from .store import StoreWriter

    workdir = workdir or Workdir.resolve()
    if isinstance(rows, bool) or not isinstance(rows, (int, np.integer)) or rows < 1000:
        raise ValueError(f"--rows must be a whole number >= 1000 (labelled applications to train on), got {rows!r}")
    if slice_rows < 1:
        raise ValueError(f"slice rows must be at least 1, got {slice_rows}")
    try:
        files = input_files(Path(input))
    except BatchError as exc:
        raise SchemaError(str(exc)) from None
    progress = Progress(quiet)
    started = time.perf_counter()
    workdir.root.mkdir(parents=True, exist_ok=True)
    schema = chunks_schema(Path(input), age_as_feature)
    id_col, target_col = schema.id_column, schema.target_column
    for f in files:
        names = set(pq.ParquetFile(f).schema_arrow.names)
        missing = [c for c in (id_col, target_col, *(r.column for r in schema.roles.values())) if c not in names]
        if missing:
            raise SchemaError(f"column {missing[0]} missing from {f}")
    n_total = int(sum(pq.ParquetFile(f).metadata.num_rows for f in files))

    con = duckdb.connect()
    try:
        con.execute("SET memory_limit = '2GB'")
        con.read_parquet([str(f) for f in files]).create_view("chunks")
        spans = con.execute(f'SELECT min("{id_col}"), max("{id_col}"), count(*) - count("{id_col}") FROM '
                            f'read_parquet(?, filename = true) GROUP BY filename ORDER BY filename',
                            [[str(f) for f in files]]).fetchall()
        for f, (lo, hi, blank), previous in zip(files, spans, [None, *spans[:-1]]):
            if blank or lo is None:
                raise SchemaError(f"id column {id_col} in {f} has blank values")
            if previous is not None and lo <= previous[1]:
                raise SchemaError(f"client IDs of {f.name} ({lo}-{hi}) do not follow those of the file before "
                                  f"({previous[0]}-{previous[1]}): the files must hold increasing client IDs, as "
                                  f"`python -m scoring generate` writes them")
        sample = con.execute(f'SELECT * FROM (SELECT * FROM chunks ORDER BY hash("{id_col}", ?) LIMIT ?) '
                             f'ORDER BY "{id_col}"', [int(seed), int(rows)]).df()
        truth_files = [f.with_name(f.name.replace("application-", "true_probability-")) for f in files]
        true_p = None
        if all(t.exists() and t != f for t, f in zip(truth_files, files)):
            con.register("sample_ids", pd.DataFrame({"id": sample[id_col].to_numpy(np.int64)}))
            con.read_parquet([str(t) for t in truth_files]).create_view("truth")
            true_p = con.execute(f'SELECT t.TRUE_DEFAULT_PROBABILITY FROM sample_ids s LEFT JOIN truth t '
                                 f'ON t."{id_col}" = s.id ORDER BY s.id').fetchnumpy()["TRUE_DEFAULT_PROBABILITY"]
            true_p = np.ma.filled(np.ma.asarray(true_p, dtype=np.float64), np.nan)
    finally:
        con.close()
    if sample[target_col].isna().any() or not sample[target_col].isin([0, 1]).all():
        raise SchemaError(f"target column {target_col} in {input} must hold 0 or 1, with no blanks")
    sample_ids = sample[id_col].to_numpy(np.int64)
    target = (sample[target_col].to_numpy() == schema.positive).astype(np.int8)
    drop = [c for c in (id_col, target_col, *schema.exclude) if c in sample.columns]
    train = sample.drop(columns=drop).reset_index(drop=True)
    raw_columns = list(train.columns)
    del sample
    fingerprint = f"chunks-{n_total}-" + pd.util.hash_pandas_object(train, index=False).sum().astype(
        np.uint64).item().to_bytes(8, "little").hex()
    progress.step("data", f"{len(train):,} labelled applications drawn from {n_total:,} in {len(files)} files")

    spec = FeatureSpec.fit(schema, train)
    X_train = spec.transform_frame(train)
    progress.step("features", f"{len(spec.features)} model features")
    trained = train_model(X_train, target, spec, fingerprint=fingerprint, costs=costs, true_probability=true_p,
                          seed=seed, nthread=nthread, progress=progress.note)
    booster, card = trained.booster, trained.card
    groups = group_labels(train, schema)
    if groups:
        card = replace(card, fairness=fairness_report(trained.oof_probability, card.threshold, groups, target=target))
    progress.step("model", f"ROC AUC {card.metrics['roc_auc']:.4f} on the holdout, "
                           f"{card.metrics['oof_roc_auc']:.4f} out of fold, threshold {card.threshold:.3f}")
    scorer = Scorer(booster, card, nthread=nthread or (os.cpu_count() or 1))
    importance_sample = _stratified_sample(target, IMPORTANCE_SAMPLE, seed)
    importance = scorer.global_importance(X_train[importance_sample])
    del train, X_train

    staging = Path(tempfile.mkdtemp(prefix=".build-", dir=workdir.root))
    today = datetime.date.today()
    # what the registry keeps of every file (8 + 8 + 4 + 1 + 1 bytes a file)
    all_ids = np.empty(n_total, np.int64)
    all_p = np.empty(n_total, np.float64)
    all_target = np.empty(n_total, np.float32)
    all_fold = np.empty(n_total, np.int8)
    try:
        stage = Workdir(staging)
        stage.data.mkdir()
        save_model(booster, card, stage.model, trained.folds)
        # the matrix file created at full size, then mapped one slice at a time: pages of a mapping count in the
        # process's resident memory until it is closed (5 GB at 10M files)
        open_memmap(stage.features_path, mode="w+", dtype=np.float32, shape=(n_total, len(spec.features))).flush()
        meta = {"model_version": card.version, "features": spec.names, "schema": schema.name,
                "data_fingerprint": fingerprint}
        n_sampled = 0
        with StoreWriter(stage.store_path, card.threshold, memory_limit="1GB") as writer:
            for f in files:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=slice_rows, columns=[id_col, target_col,
                                                                                            *raw_columns]):
                    frame = batch.to_pandas()
                    ids = frame[id_col].to_numpy(np.int64)
                    outcome = frame[target_col].to_numpy(np.float64)
                    raw = frame[raw_columns]
                    X = spec.transform_frame(raw)
                    probability = scorer.predict_proba(X).astype(np.float64)
                    pos = np.minimum(np.searchsorted(sample_ids, ids), len(sample_ids) - 1)
                    labelled = sample_ids[pos] == ids
                    probability[labelled] = trained.oof_probability[pos[labelled]]
                    fold = np.where(labelled, trained.fold_of[pos], -1).astype(np.int8)
                    s, e = writer.rows, writer.rows + len(ids)
                    try:
                        writer.append(ids, np.where(labelled, "train", "new").astype(object),
                                      np.where(labelled, outcome, np.nan), probability, role_frame(raw, schema), raw,
                                      fold=fold)
                    except ValueError as exc:
                        raise SchemaError(f"{f}: {exc}; `python -m scoring generate` writes them so") from None
                    X_out = open_memmap(stage.features_path, mode="r+")
                    X_out[s:e] = X
                    X_out.flush()
                    del X_out
                    decided = ~labelled & (probability < card.threshold) & np.isfinite(outcome)   # accepted: its outcome is learnt later
                    writer.add_outcomes(pd.DataFrame({"client_id": ids[decided],
                                                      "defaulted": outcome[decided].astype(np.int8),
                                                      "reported_on": today}))
                    all_ids[s:e], all_p[s:e], all_fold[s:e] = ids, probability, fold
                    all_target[s:e] = np.where(labelled, outcome, np.nan)
                    n_sampled += int(labelled.sum())
                    progress.note(f"stored {e:,}/{n_total:,} applications")
            writer.finish(meta)
        if n_sampled != len(sample_ids):
            raise SchemaError(f"the files of {input} changed while being read: rebuild")
        progress.step("scores", f"scored {n_total:,} applications ({n_sampled:,} out of fold)")
        progress.step("store", f"client files in {workdir.store_path.name}")
        stage.importance_path.write_text(json.dumps({"model_version": card.version,
                                                     "sample_size": int(len(importance_sample)),
                                                     "features": importance}, indent=1))
        progress.step("importance", f"global importance over {len(importance_sample):,} applications")
        _swap_in(stage, workdir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    labelled = all_fold >= 0
    Registry(workdir).register(workdir.model, pd.DataFrame({
        "client_id": all_ids, "split": pd.Categorical.from_codes(labelled.astype(np.int8), ["new", "train"]),
        "target": all_target.astype(np.float64), "fold": all_fold, "default_probability": all_p}))
    progress.note(f"model version {card.version} registered in {workdir.model / 'versions'}")
    summary = BuildSummary(workdir.root, len(sample_ids), n_total - len(sample_ids), card.default_rate,
                           card.metrics["roc_auc"], card.metrics["oof_roc_auc"], card.metrics.get("oracle_roc_auc"),
                           card.threshold, card.metrics["acceptance_rate"], time.perf_counter() - started,
                           card.version)
    if not quiet:
        print(summary.text(), file=sys.stderr, flush=True)
    return summary
