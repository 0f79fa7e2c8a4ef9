"""Load and validate a credit dataset: the real Home Credit CSVs, the bundled generator, or a TOML-described file."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import SchemaError
from .schema import DEBT_COLUMNS, DatasetSchema, home_credit_schema

ID = "client_id"  # name of the id column everywhere after loading


@dataclass(frozen=True)
class Dataset:
    schema: DatasetSchema
    train: pd.DataFrame          # labelled applications, raw columns, no id/target columns
    train_ids: np.ndarray        # int64
    target: np.ndarray           # int8, 1 = default (the schema's positive value)
    new: pd.DataFrame | None     # unlabelled applications, same raw columns
    new_ids: np.ndarray | None
    true_probability: pd.Series | None  # index: client id (generated data only)
    fingerprint: str
    application_dates: pd.Series | None = None  # index: client id; datetime64 (generated data only)
    outcomes: pd.DataFrame | None = None        # SK_ID_CURR, DEFAULTED, REPORTED_ON of new applications

    @property
    def n_applications(self) -> int:
        return len(self.train) + (0 if self.new is None else len(self.new))


def read_table(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise SchemaError(f"data file {path} does not exist")
    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            return pd.read_parquet(path)
        return pd.read_csv(path, low_memory=False)
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise SchemaError(f"cannot read {path}: {exc}") from exc


def _ids(frame: pd.DataFrame, schema: DatasetSchema, path: Path, start: int) -> np.ndarray:
    if schema.id_column is None:
        return np.arange(start, start + len(frame), dtype=np.int64)
    col = frame[schema.id_column]
    if col.isna().any() or not pd.api.types.is_integer_dtype(col):
        raise SchemaError(f"id column {schema.id_column} in {path} must hold whole numbers with no blanks")
    ids = col.to_numpy(dtype=np.int64)
    dup = pd.Index(ids)[pd.Index(ids).duplicated()]
    if len(dup):
        raise SchemaError(f"id column {schema.id_column} in {path} repeats IDs, e.g. {int(dup[0])}")
    return ids


def _require(frame: pd.DataFrame, columns, path: Path) -> None:
    for column in columns:
        if column not in frame.columns:
            raise SchemaError(f"column {column} missing from {path}")


def _target(values: pd.Series, schema: DatasetSchema, path: Path) -> np.ndarray:
    if values.isna().any():
        raise SchemaError(f"target column {schema.target_column} in {path} has {int(values.isna().sum())} blank values")
    positive = schema.positive
    # a TOML `positive = 1` must match a CSV column read as 1, 1.0 or "1"
    as_text = values.astype(str).str.strip()
    pos_text = str(positive)
    if pd.api.types.is_numeric_dtype(values) and isinstance(positive, (int, float)):
        is_pos = values.to_numpy() == positive
        seen = sorted(pd.unique(values).tolist())
    else:
        is_pos = (as_text == pos_text).to_numpy()
        seen = sorted(pd.unique(as_text).tolist())
    if not is_pos.any():
        raise SchemaError(f"target column {schema.target_column} in {path} never takes the declared positive value "
                          f"{positive!r}; values seen: {seen[:10]}")
    if len(seen) != 2:
        raise SchemaError(f"target column {schema.target_column} in {path} must take exactly two values "
                          f"(default {positive!r} and one other); values seen: {seen[:10]}")
    return is_pos.astype(np.int8)


def _fingerprint(*frames: pd.DataFrame | None) -> str:
    h = hashlib.sha256()
    for frame in frames:
        if frame is not None:
            h.update(",".join(map(str, frame.columns)).encode())
            h.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def _with_debts(frame: pd.DataFrame, debts: pd.DataFrame | None, schema: DatasetSchema, path: Path) -> pd.DataFrame:
    if debts is None:
        return frame
    if not schema.id_column:
        raise SchemaError(f"a debts file needs the applications' id column ([columns] id) to find {path}'s clients")
    return join_debts(frame, debts, schema.id_column)


def join_debts(frame: pd.DataFrame, debts: pd.DataFrame, id_column: str) -> pd.DataFrame:
    """The applications with their debts' aggregates (`DEBT_COLUMNS`, from `scoring.store.aggregate_debts`) as
    columns; an applicant the debts file does not list has no other credit."""
    frame = frame.drop(columns=[c for c in DEBT_COLUMNS.values() if c in frame.columns])
    keys = frame[id_column]
    joined = debts.set_index("client_id").reindex(pd.to_numeric(keys, errors="coerce").to_numpy())
    added = pd.DataFrame({c: joined[c].fillna(0.0).to_numpy(dtype=np.float64) for c in DEBT_COLUMNS.values()},
                         index=frame.index)
    return pd.concat([frame, added], axis=1)


def load_debts(schema: DatasetSchema) -> pd.DataFrame | None:
    """Per applicant, the aggregates of the schema's debts file (None without one), computed in DuckDB."""
    if schema.debts is None:
        return None
    from .store import aggregate_debts

    return aggregate_debts(read_table(Path(schema.debts.path)), schema.debts)


def load_dataset(schema: DatasetSchema) -> Dataset:
    """Read the files a schema names and check them against it."""
    if schema.train_path is None:
        raise SchemaError("schema has no labelled data file (train)")
    train_path = Path(schema.train_path)
    debts = load_debts(schema)
    raw = _with_debts(read_table(train_path), debts, schema, train_path)
    required = [c for c in (schema.id_column, schema.target_column) if c]
    required += [r.column for r in schema.roles.values()] + list(schema.sentinels) + list(schema.non_negative)
    _require(raw, dict.fromkeys(required), train_path)
    if len(raw) < 50:
        raise SchemaError(f"{train_path} has {len(raw)} rows; at least 50 labelled applications are needed")
    target = _target(raw[schema.target_column], schema, train_path)
    train_ids = _ids(raw, schema, train_path, start=1)
    drop = [c for c in (schema.id_column, schema.target_column, *schema.exclude) if c and c in raw.columns]
    train = raw.drop(columns=drop).reset_index(drop=True)

    new = new_ids = None
    if schema.new_path is not None:
        new_path = Path(schema.new_path)
        new_raw = _with_debts(read_table(new_path), debts, schema, new_path)
        _require(new_raw, [c for c in [schema.id_column, *train.columns] if c], new_path)
        new_ids = _ids(new_raw, schema, new_path, start=len(train) + 1)
        new = new_raw[list(train.columns)].reset_index(drop=True)
        clash = np.intersect1d(train_ids, new_ids)
        if len(clash):
            raise SchemaError(f"ID {int(clash[0])} appears in both {train_path.name} and {new_path.name}")

    true_probability = None
    if schema.true_probability_path is not None and Path(schema.true_probability_path).exists():
        tp = read_table(Path(schema.true_probability_path))
        true_probability = pd.Series(tp["TRUE_DEFAULT_PROBABILITY"].to_numpy(), index=tp["SK_ID_CURR"].to_numpy())
    dates = outcomes = None
    if schema.dates_path is not None and Path(schema.dates_path).exists():
        frame = read_table(Path(schema.dates_path))
        dates = pd.Series(pd.to_datetime(frame["APPLICATION_DATE"]).to_numpy(), index=frame["SK_ID_CURR"].to_numpy())
    if schema.outcomes_path is not None and Path(schema.outcomes_path).exists():
        outcomes = read_table(Path(schema.outcomes_path))
    return Dataset(schema, train, train_ids, target, new, new_ids, true_probability, _fingerprint(raw, new),
                   dates, outcomes)


def default_schema(data_dir: Path, rows: int | None = None, seed: int = 42, progress=None,
                   age_as_feature: bool = True) -> DatasetSchema:
    """The real Home Credit files when dropped in `data_dir`, else the bundled generator's portfolio."""
    real_train = data_dir / "application_train.csv"
    if real_train.exists():
        real_new, bureau = data_dir / "application_test.csv", data_dir / "bureau.csv"
        return home_credit_schema(real_train, real_new if real_new.exists() else None, age_as_feature=age_as_feature,
                                  bureau=bureau if bureau.exists() else None)
    schema = generated_schema(data_dir / "generated", rows=rows, seed=seed, progress=progress)
    return replace(schema, protected={**schema.protected, "age": replace(schema.protected["age"],
                                                                         use_as_feature=age_as_feature)})


GENERATED_FORMAT = 3  # 2: application dates, drift, outcomes; 3: product terms, the bureau table of other credits


def generated_schema(directory: Path, rows: int | None = None, seed: int = 42, progress=None) -> DatasetSchema:
    """Generate (once per size and seed) a Home-Credit-like portfolio as Parquet in `directory`."""
    from .generator import NEW_ROWS, TRAIN_ROWS, application_timeline, generate_portfolio

    n_train = TRAIN_ROWS if rows is None else int(rows)
    n_new = round(n_train * NEW_ROWS / TRAIN_ROWS)
    paths = {k: directory / f"{k}.parquet" for k in ("application_train", "application_test", "true_default_probability",
                                                      "application_dates", "outcomes", "bureau")}
    meta_path = directory / "generated.json"
    wanted = {"n_train": n_train, "n_new": n_new, "seed": seed, "format": GENERATED_FORMAT}
    if meta_path.exists() and all(p.exists() for p in paths.values()):
        try:
            if json.loads(meta_path.read_text()) == wanted:
                return _generated(paths)
        except ValueError:
            pass
    if progress:
        progress(f"generating {n_train:,} labelled + {n_new:,} new applications (seed {seed})")
    portfolio = generate_portfolio(n_train=n_train, n_new=n_new, seed=seed)
    drifted_new, dates, outcomes = application_timeline(portfolio, seed=seed)
    directory.mkdir(parents=True, exist_ok=True)
    for key, frame in (("application_train", portfolio.train), ("application_test", drifted_new),
                       ("true_default_probability", portfolio.true_probability), ("application_dates", dates),
                       ("outcomes", outcomes), ("bureau", portfolio.bureau)):
        tmp = paths[key].with_suffix(".tmp")
        frame.to_parquet(tmp, index=False)
        tmp.replace(paths[key])
    meta_path.write_text(json.dumps(wanted))
    return _generated(paths)


def _generated(paths: dict[str, Path]) -> DatasetSchema:
    return replace(home_credit_schema(paths["application_train"], paths["application_test"],
                                      paths["true_default_probability"], name="home_credit_generated",
                                      bureau=paths["bureau"]),
                   dates_path=paths["application_dates"], outcomes_path=paths["outcomes"])
