"""The client-file store: every application with its profile, score and decision, in DuckDB.

Search by ID (exact or prefix), filters, sorting and pagination; parameterised queries only.
One read-only connection per process, one cursor per thread.
"""

from __future__ import annotations

import functools
import json
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from .contracts import LIST_COLUMNS, ClientPage, ClientQuery, decide
from .errors import ModelError, UnknownClientError
from .errors import SchemaError
from .features import DAYS_PER_YEAR
from .schema import DEBT_COLUMNS, DatasetSchema, Debts

#: business columns of the store, derived from the schema's roles (None when the role is absent). Amounts
#: flowing every month (income, annuity, debt: the existing credits' monthly payments) are per month, as a bank
#: counts an effort rate; `credit_income_ratio` is the credit over a year of income.
ROLE_COLUMNS = ("age_years", "income", "credit_amount", "annuity", "term_months", "goods_price", "contract_type",
                "family", "employment_years", "children", "debt", "debt_ratio", "credit_income_ratio",
                "active_credits", "outstanding_debt", "max_days_overdue")
#: the columns a search reads (`LIST_COLUMNS`, the sort keys and the filters): what a new file must give
SEARCH_COLUMNS = (*LIST_COLUMNS, "debt_ratio", "credit_income_ratio")
#: the client file's debts: store column -> what it is (the `debts` of `ClientFile`)
DEBT_FIELDS = ("active_credits", "outstanding_debt", "debt", "max_days_overdue")


def aggregate_debts(credits: pd.DataFrame, debts: Debts) -> pd.DataFrame:
    """Per applicant, in DuckDB: the active credits, their outstanding debt, their monthly payments and the most
    days overdue (`DEBT_COLUMNS`), from a file of credits (one row per credit). A missing amount counts as none
    (Home Credit's bureau.csv leaves most AMT_ANNUITY blank); `SchemaError` names a column the file lacks."""
    path = debts.path
    for meaning, column in debts.columns.items():
        if column not in credits.columns:
            raise SchemaError(f"column {column} ({meaning} of the debts file) missing from {path}")
    for meaning in ("outstanding", "monthly_payment", "overdue_days"):
        column = debts.columns.get(meaning)
        if column and not pd.api.types.is_numeric_dtype(credits[column]):
            raise SchemaError(f"column {column} ({meaning} of the debts file) in {path} must hold numbers")
    if debts.active and debts.active_value is None and not pd.api.types.is_numeric_dtype(credits[debts.active]):
        raise SchemaError(f"column {debts.active} (active of the debts file) in {path} holds text: name the value of a "
                          f"running credit, active = {{ column = \"{debts.active}\", value = ... }}")
    if credits[debts.client].isna().any() or not pd.api.types.is_integer_dtype(credits[debts.client]):
        raise SchemaError(f"column {debts.client} (client of the debts file) in {path} must hold whole numbers "
                          f"with no blanks")

    def q(column: str) -> str:
        return '"' + column.replace('"', '""') + '"'

    def literal(value) -> str:
        return "'" + str(value).replace("'", "''") + "'"

    active = "TRUE" if not debts.active else (
        f"CAST({q(debts.active)} AS VARCHAR) = {literal(debts.active_value)}" if debts.active_value is not None
        else f"coalesce(CAST({q(debts.active)} AS DOUBLE), 0) <> 0")
    per_month = "/ 12.0" if debts.payment_unit == "yearly" else ""
    overdue = (f"max(coalesce({q(debts.overdue_days)}, 0)) FILTER (WHERE {active})" if debts.overdue_days
               else "0")
    sql = f"""
        SELECT CAST({q(debts.client)} AS BIGINT) AS client_id,
               count(*) FILTER (WHERE {active}) AS {DEBT_COLUMNS["active_credits"]},
               coalesce(sum(greatest(coalesce({q(debts.outstanding)}, 0), 0)) FILTER (WHERE {active}), 0)
                   AS {DEBT_COLUMNS["outstanding_debt"]},
               coalesce(sum(greatest(coalesce({q(debts.monthly_payment)}, 0), 0) {per_month})
                        FILTER (WHERE {active}), 0)
                   AS {DEBT_COLUMNS["debt_service"]},
               coalesce({overdue}, 0) AS {DEBT_COLUMNS["max_days_overdue"]}
        FROM credits GROUP BY 1 ORDER BY 1"""
    con = duckdb.connect()
    try:
        con.register("credits", credits)
        out = con.execute(sql).df()
    finally:
        con.close()
    return out.astype({c: "float64" for c in DEBT_COLUMNS.values()})


def role_frame(raw: pd.DataFrame, schema: DatasetSchema) -> pd.DataFrame:
    """The bank's view of each application, in fixed units: years, monthly flows (income, annuity, debt), months."""
    n = len(raw)
    nan = pd.Series(np.nan, index=raw.index)

    def col(role: str) -> tuple[pd.Series, str | None]:
        r = schema.roles.get(role)
        if r is None:
            return nan, None
        v = raw[r.column]
        if r.column in schema.sentinels:
            v = v.where(v != schema.sentinels[r.column])
        return v, r.unit

    def years(role: str) -> pd.Series:
        v, unit = col(role)
        return -v / DAYS_PER_YEAR if unit == "negative_days" else v.astype("float64")

    def monthly(role: str) -> pd.Series:
        v, unit = col(role)
        return v / 12.0 if unit == "yearly" else v.astype("float64")

    def text(role: str) -> pd.Series:
        v, unit = col(role)
        return pd.Series([None] * n, index=raw.index, dtype="object") if unit is None else v.astype("string")

    out = pd.DataFrame(index=raw.index)
    out["age_years"] = years("age")
    out["income"] = monthly("income")
    out["credit_amount"] = col("credit_amount")[0].astype("float64")
    out["annuity"] = monthly("annuity")
    term, unit = col("term")
    if unit is not None:
        out["term_months"] = term * 12.0 if unit == "years" else term.astype("float64")
    else:  # the data gives no term: the months of payments that repay the credit (no interest modelled)
        with np.errstate(divide="ignore", invalid="ignore"):
            out["term_months"] = out["credit_amount"] / out["annuity"]
    out["goods_price"] = col("goods_price")[0].astype("float64")
    out["contract_type"] = text("contract_type")
    out["family"] = text("family")
    out["employment_years"] = years("employment")
    out["children"] = col("children")[0].astype("float64")
    out["debt"] = monthly("debt")
    out["active_credits"] = col("active_credits")[0].astype("float64")
    out["outstanding_debt"] = col("outstanding_debt")[0].astype("float64")
    out["max_days_overdue"] = col("days_overdue")[0].astype("float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        # the effort rate: the loan's monthly payment and the existing credits' ones (when known) over the income
        out["debt_ratio"] = (out["annuity"] + out["debt"].fillna(0.0)) / out["income"]
        out["credit_income_ratio"] = out["credit_amount"] / (12.0 * out["income"])
    numeric = out.select_dtypes("number").columns
    out[numeric] = out[numeric].replace([np.inf, -np.inf], np.nan)
    return out


def _open_read_only(path: Path) -> duckdb.DuckDBPyConnection:
    """The file now at `path`, read-only, in a DuckDB instance of its own. `duckdb.connect(path)` would share the
    process's instance already open on that path, and so keep reading the file it opened even after a build or an
    activation replaced it (a new inode): a server reloading its artefacts (`scoring.serving`) would not see them."""
    con = duckdb.connect()   # in memory: never shared
    con.execute("ATTACH ? AS store (READ_ONLY)", [str(path)])
    con.execute("USE store")
    return con


def _store_cursor(con: duckdb.DuckDBPyConnection) -> duckdb.DuckDBPyConnection:
    cur = con.cursor()       # a new connection to the instance: its default database is the memory one
    cur.execute("USE store")
    return cur


class ClientStore:
    """Read-only access to the client files built by `scoring build`."""

    def __init__(self, path: Path):
        path = Path(path)
        if not path.exists():
            raise ModelError(f"client-file store {path} is missing: build it first (python -m scoring build)")
        try:
            self._con = _open_read_only(path)
            meta = dict(self._con.execute("SELECT key, value FROM meta").fetchall())
        except duckdb.Error as exc:
            raise ModelError(f"client-file store {path} is corrupt: {exc}") from exc
        self.path = path
        self._quantiles = functools.lru_cache(maxsize=32)(self._quantiles)   # this store's own (see the service)
        self.meta = {k: json.loads(v) for k, v in meta.items()}
        self._local = threading.local()
        self.roles: frozenset[str] = frozenset(self.meta["roles_present"])

    @property
    def _cur(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cur", None)
        if cur is None:
            cur = self._local.cur = _store_cursor(self._con)
        return cur

    def close(self) -> None:
        self._con.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """This thread's read-only cursor on the store (for aggregate queries such as monitoring)."""
        return self._cur

    def protected_columns(self, columns: list[str], split: str) -> pd.DataFrame:
        """The raw protected-attribute columns and the probability of one split's applications (fairness figures):
        a few columns, not a copy of the store."""
        present = {r[0] for r in self._cur.execute("DESCRIBE raw").fetchall()}
        chosen = ", ".join(f'r."{c}"' for c in columns if c in present)
        if not chosen:
            return pd.DataFrame()
        # through Arrow, text as categories: millions of files make a few codes each, not one Python string each
        return self._cur.sql(f"SELECT {chosen}, a.default_probability FROM applications a JOIN raw r USING "
                             f"(client_id) WHERE a.split = ? ORDER BY a.client_id", params=[split]
                             ).to_arrow_table().to_pandas(strings_to_categorical=True)

    def protected_counts(self, columns: list[str], split: str, threshold: float) -> pd.DataFrame:
        """Per combination of values of the raw protected `columns` in one split, computed in DuckDB: `n` files,
        `accepted` (default probability below `threshold`) and `p_sum` (their probabilities summed). A few thousand
        rows whatever the store's size (`scoring.fairness.acceptance_report`)."""
        present = {r[0] for r in self._cur.execute("DESCRIBE raw").fetchall()}
        chosen = ", ".join(f'r."{c}"' for c in columns if c in present)
        if not chosen:
            return pd.DataFrame()
        return self._cur.sql(f"SELECT {chosen}, count(*) AS n, count(*) FILTER (WHERE a.default_probability < ?) "
                             f"AS accepted, sum(a.default_probability) AS p_sum FROM applications a JOIN raw r "
                             f"USING (client_id) WHERE a.split = ? GROUP BY ALL", params=[float(threshold), split]
                             ).to_arrow_table().to_pandas()

    # ----------------------------------------------------------------- building
    @staticmethod
    def write(path: Path, client_ids: np.ndarray, split: np.ndarray, target: np.ndarray, probability: np.ndarray,
              threshold: float, roles: pd.DataFrame, raw: pd.DataFrame, meta: dict,
              fold: np.ndarray | None = None, application_date: np.ndarray | None = None,
              outcomes: pd.DataFrame | None = None) -> None:
        """Create the store (rows sorted by client ID so point lookups skip most of the file). `fold`: the
        cross-fitting model that scored each labelled application, -1 for the production model."""
        order = np.argsort(client_ids, kind="stable")
        with StoreWriter(path, threshold) as writer:
            writer.append(client_ids[order], split[order], np.asarray(target)[order], probability[order],
                          roles.iloc[order].reset_index(drop=True), raw.iloc[order].reset_index(drop=True),
                          fold=None if fold is None else np.asarray(fold)[order],
                          application_date=None if application_date is None else application_date[order])
            if outcomes is not None:
                writer.add_outcomes(outcomes)
            writer.finish(meta)

    # ----------------------------------------------------------------- reading
    @functools.cached_property
    def _columns(self) -> list[str]:
        return [r[0] for r in self._cur.execute("DESCRIBE applications").fetchall()]

    def get(self, client_id: int) -> dict[str, Any]:
        """One client file (business columns, score, decision) or UnknownClientError: a parameterised point query
        on the ID-sorted table (DuckDB's zone maps skip every row group but one), no copy of the table in memory."""
        try:
            cid = int(client_id)
        except (TypeError, ValueError):
            raise UnknownClientError(client_id) from None
        if not -(2**63) <= cid < 2**63:
            raise UnknownClientError(cid)
        last = getattr(self._local, "last", None)   # a client switch reads the same file 3 times (file, debts, flags)
        if last is not None and last[0] == cid:
            return dict(last[1])
        row = self._cur.execute("SELECT * FROM applications WHERE client_id = ?", [cid]).fetchone()
        if row is None:
            raise UnknownClientError(cid)
        file = {k: _plain(v) for k, v in zip(self._columns, row)}
        self._local.last = (cid, file)
        return dict(file)

    def folds(self) -> np.ndarray:
        """The scoring model of each client file, in ID order: its cross-fitting fold, -1 for the production model
        (one byte per file)."""
        if "fold" not in self._columns:  # a store built before cross-fitting
            return np.full(self.count(), -1, dtype=np.int8)
        folds = self._cur.execute("SELECT fold FROM applications ORDER BY client_id").fetchnumpy()["fold"]
        return np.ma.filled(np.ma.asarray(folds), -1).astype(np.int8)

    def count(self) -> int:
        """The number of client files (the store is read-only: counted once)."""
        if getattr(self, "_count", None) is None:
            self._count = int(self._cur.execute("SELECT count(*) FROM applications").fetchone()[0])
        return self._count

    def client_ids(self) -> np.ndarray:
        """Every client ID, in increasing order (the rows of the feature matrix)."""
        return self._cur.execute("SELECT client_id FROM applications ORDER BY client_id").fetchnumpy()["client_id"]

    def raw_record(self, client_id: int) -> dict[str, Any]:
        rel = self._cur.execute("SELECT * FROM raw WHERE client_id = ?", [int(client_id)])
        row = rel.fetchone()
        if row is None:
            raise UnknownClientError(client_id)
        names = [d[0] for d in rel.description]
        return {k: _plain(v) for k, v in zip(names, row) if k != "client_id"}

    def _appended_cursor(self, appended: pd.DataFrame, key: Any) -> duckdb.DuckDBPyConnection:
        """This thread's cursor for searches with new files, holding them as a temporary table (copied again only
        when `key` changes). A cursor of its own: DuckDB refuses to register a frame on a cursor with a result left
        unread (a point read leaves one), and a temporary table is seen by its own connection only. Measured at
        3,476 files + 100 new: a union with the table costs ~0.3 ms more than the store alone; with the frame
        registered and scanned by each query, ~2.6 ms."""
        cur = getattr(self._local, "appended_cur", None)
        if cur is None:
            cur = self._local.appended_cur = _store_cursor(self._con)
            self._local.appended_key = None
        if self._local.appended_key != key:
            cur.register("appended_frame", appended[list(SEARCH_COLUMNS)])
            cur.execute("CREATE OR REPLACE TEMP TABLE appended_files AS SELECT * FROM appended_frame")
            cur.unregister("appended_frame")
            self._local.appended_key = key
        return cur

    def search(self, query: ClientQuery, appended: pd.DataFrame | None = None, appended_key: Any = None) -> ClientPage:
        """One page of the client files matching `query`; with `appended` (rows of `SEARCH_COLUMNS`: the new
        applications of `scoring.intake`; `appended_key` changes when they do), over the store's files and those
        rows together."""
        where, params = ["TRUE"], []
        q = (query.q or "").strip()
        source, cur = "applications", self._cur
        if appended is not None and len(appended):
            cur = self._appended_cursor(appended, id(appended) if appended_key is None else appended_key)
            cols = ", ".join(SEARCH_COLUMNS)
            source = f"(SELECT {cols} FROM applications UNION ALL SELECT {cols} FROM appended_files)"
        if q:
            ranges = self._prefix_ranges(q, None if source == "applications" else
                                         (int(appended["client_id"].min()), int(appended["client_id"].max())))
            where.append("(" + (" OR ".join(["client_id BETWEEN ? AND ?"] * len(ranges)) or "FALSE") + ")")
            params += [bound for r in ranges for bound in r]
        for column, op, value in (
            ("decision", "=", query.decision),
            ("default_probability", ">=", query.min_probability),
            ("default_probability", "<=", query.max_probability),
            ("contract_type", "=", query.contract_type),
            ("income", ">=", query.min_income),
            ("income", "<=", query.max_income),
            ("credit_amount", ">=", query.min_amount),
            ("credit_amount", "<=", query.max_amount),
            ("age_years", ">=", query.min_age),
            ("age_years", "<=", query.max_age),
            ("split", "=", query.split),
        ):
            if value is not None:
                where.append(f"{column} {op} ?")
                params.append(value)
        order = f"{query.sort} {'DESC' if query.descending else 'ASC'} NULLS LAST, client_id"
        if q.isdigit():  # the exact ID first, then its prefix matches
            order = f"(client_id = {int(q)}) DESC, {order}"
        sql_where = " AND ".join(where)
        cols = ", ".join(LIST_COLUMNS)
        wanted = int(query.offset) + int(query.limit)
        if source == "applications" and len(where) == 1 and query.sort == "client_id":
            # every file in ID order (the first page): the rows at these positions, read from their row groups only
            total, n = self.count(), self.count()
            first = int(query.offset) if not query.descending else n - wanted
            rel = cur.execute(f"SELECT {cols} FROM applications WHERE row_index >= ? AND row_index < ? "
                              f"ORDER BY row_index {'DESC' if query.descending else 'ASC'}",
                              [max(first, 0), n - int(query.offset) if query.descending else wanted])
            rows = rel.fetchall()
        else:
            total = cur.execute(f"SELECT count(*) FROM {source} WHERE {sql_where}", params).fetchall()[0][0]
            rows = None
            cutoff = self._cutoff(query.sort, query.descending, wanted, total) if source == "applications" and not q \
                else None
            if cutoff is not None:
                # a store of millions: sort only the rows beyond the value that the first `wanted` files should
                # reach (a quantile of the column); the same page, since every row before them is beyond it
                rel = cur.execute(f"SELECT {cols} FROM {source} WHERE {sql_where} AND {query.sort} "
                                  f"{'>=' if query.descending else '<='} ? ORDER BY {order} LIMIT ? OFFSET ?",
                                  [*params, cutoff, int(query.limit), int(query.offset)])
                rows = rel.fetchall()
                if len(rows) < min(int(query.limit), total - int(query.offset)):
                    rows = None    # fewer files beyond the cutoff than the page needs: sort them all
            if rows is None:
                rows = cur.execute(f"SELECT {cols} FROM {source} WHERE {sql_where} ORDER BY {order} LIMIT ? OFFSET ?",
                                   [*params, int(query.limit), int(query.offset)]).fetchall()
        items = tuple({k: _plain(v) for k, v in zip(LIST_COLUMNS, row)} for row in rows)
        return ClientPage(items, int(total), query)

    #: below this many files a search sorts them all (fast enough); above, it sorts those beyond a quantile first
    CUTOFF_ROWS = 200_000

    def _quantiles(self, column: str) -> np.ndarray:
        """1,001 quantiles of a sortable column (0 %, 0.1 %, ..., 100 %), computed once in DuckDB on a fixed sample
        of 100,000 files (their precision only decides how often a search sorts every file again)."""
        levels = [i / 1000 for i in range(1001)]
        percent = min(100.0, 100.0 * 100_000 / max(self.count(), 1))   # system sampling: whole vectors skipped
        values = self._cur.execute(f"SELECT quantile_disc(v, ?) FROM (SELECT CAST({column} AS DOUBLE) AS v FROM "
                                   f"applications USING SAMPLE {percent:.6f}% (system, 7)) WHERE isfinite(v)",
                                   [levels]).fetchone()[0]
        return np.asarray(values if values is not None else [], dtype=np.float64)

    def _cutoff(self, column: str, descending: bool, wanted: int, total: int) -> float | None:
        """The value beyond which (above it if `descending`) 4 times the `wanted` files of `total` matching ones are
        expected, if the filter is independent of the column; None when sorting them all is as cheap."""
        n = self.count()
        if total <= self.CUTOFF_ROWS or n <= self.CUTOFF_ROWS:
            return None
        share = 4.0 * wanted / total
        if share >= 0.5:
            return None
        quantiles = self._quantiles(column)
        if not len(quantiles):
            return None
        k = int(np.floor(share * 1000)) + 1                # at least that share of the column beyond the value
        return float(quantiles[1000 - k] if descending else quantiles[k])

    @functools.cached_property
    def _id_span(self) -> tuple[int, int]:
        lo, hi = self._cur.execute("SELECT min(client_id), max(client_id) FROM applications").fetchone()
        return int(lo or 0), int(hi or 0)

    def _prefix_ranges(self, q: str, appended: tuple[int, int] | None = None) -> list[tuple[int, int]]:
        """IDs starting with the digits `q`, as numeric ranges: the store is sorted by ID, so ranges
        skip whole blocks where a text LIKE would scan every row. `appended`: the lowest and highest IDs of new
        files."""
        if q != "0" and q.startswith("0"):
            return []
        lo_id, hi_id = self._id_span
        if appended is not None:
            lo_id, hi_id = min(lo_id, appended[0]), max(hi_id, appended[1])
        base, ranges = int(q), []
        for extra in range(0, len(str(hi_id)) - len(q) + 1):
            start, end = base * 10**extra, (base + 1) * 10**extra - 1
            if end >= lo_id and start <= hi_id:
                ranges.append((start, end))
        return ranges

    def contract_types(self) -> list[str]:
        return [r[0] for r in self._cur.execute(
            "SELECT contract_type FROM applications WHERE contract_type IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC"
        ).fetchall()]

    def column(self, name: str, where: str = "TRUE") -> np.ndarray:
        """A whole business column as floats (for server-side histograms); `where` is a fixed SQL fragment."""
        if name not in ROLE_COLUMNS and name not in ("default_probability", "target"):
            raise ValueError(f"unknown store column {name!r}")
        sql = f"SELECT CAST({name} AS DOUBLE) AS v FROM applications WHERE {where} ORDER BY client_id"
        values = self._cur.execute(sql).fetchnumpy()["v"]
        return np.ma.filled(np.ma.asarray(values, dtype=np.float64), np.nan)

    def histogram(self, name: str, bins: int, groups: dict[str, float | None]
                  ) -> tuple[list[float], dict[str, list[int]], dict[str, float | None]]:
        """A business column's histogram in DuckDB, no copy of it: `bins` equal bins between its 0.5 % and
        99.5 % quantiles (outside values left out, the last bin closed, as NumPy's), with the counts and the
        mean of each group of `groups` (name -> None: every file; a threshold: the files whose default
        probability is below it, the accepted ones). Missing and infinite values are left out."""
        if name not in ROLE_COLUMNS:
            raise ValueError(f"unknown store column {name!r}")
        values = f"SELECT CAST({name} AS DOUBLE) AS v, default_probability AS p FROM applications"
        lo, hi, least, most = self._cur.execute(
            f"SELECT quantile_cont(v, 0.005), quantile_cont(v, 0.995), min(v), max(v) FROM ({values}) "
            f"WHERE isfinite(v)").fetchone()
        if lo is None:
            lo, hi = 0.0, 1.0
        elif hi <= lo:
            lo, hi = float(least), float(most) + 1e-9
        edges = np.linspace(lo, hi, bins + 1)
        where = {g: "TRUE" if t is None else f"p < {float(t)!r}" for g, t in groups.items()}
        counted = ", ".join(f"count(*) FILTER (WHERE {w})" for w in where.values())
        averaged = ", ".join(f"avg(v) FILTER (WHERE {w})" for w in where.values())
        binned = self._cur.execute(
            f"SELECT least(CAST(floor((v - ?) / ? * ?) AS BIGINT), ? - 1) AS b, {counted} FROM ({values}) "
            f"WHERE isfinite(v) AND v >= ? AND v <= ? GROUP BY b ORDER BY b",
            [float(edges[0]), float(edges[-1] - edges[0]), int(bins), int(bins), float(edges[0]),
             float(edges[-1])]).fetchall()
        counts = {g: [0] * bins for g in groups}
        for b, *n in binned:
            for g, c in zip(groups, n):
                counts[g][int(b)] = int(c)
        means = self._cur.execute(f"SELECT {averaged} FROM ({values}) WHERE isfinite(v)").fetchone()
        return edges.tolist(), counts, {g: None if m is None else float(m) for g, m in zip(groups, means)}

    def sorted_values(self, name: str, below: float) -> np.ndarray:
        """A business column's finite values, sorted, over the files whose default probability is below `below`
        (the accepted ones): the one array a client's rank among them needs (8 bytes a file)."""
        if name not in ROLE_COLUMNS:
            raise ValueError(f"unknown store column {name!r}")
        values = self._cur.execute(
            f"SELECT v FROM (SELECT CAST({name} AS DOUBLE) AS v FROM applications WHERE default_probability < ?) "
            f"WHERE isfinite(v) ORDER BY v", [float(below)]).fetchnumpy()["v"]
        return np.asarray(values, dtype=np.float64)

    def portfolio(self) -> dict[str, Any]:
        row = self._cur.execute("""
            SELECT count(*), count(*) FILTER (decision = 'accepted'), count(*) FILTER (decision = 'refused'),
                   avg(default_probability), count(*) FILTER (split = 'new'),
                   avg(CASE WHEN decision = 'refused' THEN 1.0 ELSE 0.0 END) FILTER (split = 'new')
            FROM applications""").fetchone()
        return {"n_applications": int(row[0]), "n_accepted": int(row[1]), "n_refused": int(row[2]),
                "mean_default_probability": float(row[3]), "n_new": int(row[4]),
                "refusal_rate_new": None if row[5] is None else float(row[5])}


class StoreWriter:
    """Writes a store slice by slice, in client-ID order (`scoring.build` out of core: one slice in memory at a
    time): the same tables, columns and meta as `ClientStore.write`, which is one slice of it."""

    def __init__(self, path: Path, threshold: float, memory_limit: str | None = None):
        self.path, self.threshold = Path(path), float(threshold)
        self.con = duckdb.connect(str(self.path))
        if memory_limit:   # DuckDB spills to disk beyond it (the tables are written, not held)
            self.con.execute(f"SET memory_limit = '{memory_limit}'")
        self.rows, self.last_id = 0, None
        self.roles_present: set[str] = set()
        # repayment outcomes of decided applications, arrived after the decision (client_id, defaulted 0/1,
        # reported_on); more are added by `python -m scoring outcomes FILE`
        self.con.execute("CREATE TABLE outcomes (client_id BIGINT PRIMARY KEY, defaulted TINYINT NOT NULL, "
                         "reported_on DATE NOT NULL)")

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.con.close()

    def append(self, client_ids: np.ndarray, split: np.ndarray, target: np.ndarray, probability: np.ndarray,
               roles: pd.DataFrame, raw: pd.DataFrame, fold: np.ndarray | None = None,
               application_date: np.ndarray | None = None) -> None:
        """Append rows whose client IDs increase, all above the previous slice's: `ValueError` otherwise."""
        n = len(client_ids)
        ids = np.asarray(client_ids, dtype=np.int64)
        if n and ((self.last_id is not None and ids[0] <= self.last_id) or (np.diff(ids) <= 0).any()):
            raise ValueError("client IDs must increase from one application to the next, without repeats "
                             f"(after {self.last_id}: {ids[:3].tolist()}...)")
        fold = np.full(n, -1, dtype=np.int8) if fold is None else np.asarray(fold, dtype=np.int8)
        probability = np.asarray(probability, dtype=np.float64)
        apps = roles.reset_index(drop=True)
        apps.insert(0, "client_id", ids)
        apps.insert(1, "row_index", np.arange(self.rows, self.rows + n, dtype=np.int32))
        apps.insert(2, "split", np.asarray(split, dtype=object))
        apps.insert(3, "target", pd.array(np.asarray(target, dtype=np.float64), dtype="Int8"))
        apps.insert(4, "default_probability", probability)
        apps.insert(5, "decision", [decide(p, self.threshold) for p in probability.tolist()])
        apps.insert(6, "fold", fold)
        # when the application was made (NaT when the dataset does not say): monitoring by month
        apps.insert(7, "application_date", pd.Series(application_date if application_date is not None
                                                     else np.full(n, np.datetime64("NaT"), "datetime64[s]"),
                                                     dtype="datetime64[s]").dt.date)
        raw_rows = pd.concat([pd.DataFrame({"client_id": ids}), raw.reset_index(drop=True)], axis=1)
        self.roles_present |= {c for c in ROLE_COLUMNS if apps[c].notna().any()}
        first = self.rows == 0
        self.con.register("apps_df", apps)
        self.con.execute("CREATE TABLE applications AS SELECT * FROM apps_df" if first
                         else "INSERT INTO applications SELECT * FROM apps_df")
        self.con.unregister("apps_df")
        self.con.register("raw_df", raw_rows)
        self.con.execute("CREATE TABLE raw AS SELECT * FROM raw_df" if first
                         else "INSERT INTO raw BY NAME SELECT * FROM raw_df")
        self.con.unregister("raw_df")
        self.rows += n
        if n:
            self.last_id = int(ids[-1])

    def add_outcomes(self, outcomes: pd.DataFrame) -> None:
        """Known outcomes (client_id, defaulted, reported_on) of decided applications."""
        if len(outcomes):
            self.con.register("outcomes_df", outcomes)
            self.con.execute("INSERT INTO outcomes SELECT client_id, defaulted, CAST(reported_on AS DATE) "
                             "FROM outcomes_df")
            self.con.unregister("outcomes_df")

    def finish(self, meta: dict) -> None:
        self.con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        roles_present = [c for c in ROLE_COLUMNS if c in self.roles_present]
        rows = [(k, json.dumps(v)) for k, v in {**meta, "roles_present": roles_present}.items()]
        self.con.executemany("INSERT INTO meta VALUES (?, ?)", rows)
        self.con.execute("CHECKPOINT")


def _plain(v: Any) -> Any:
    """DuckDB/NumPy scalars and NaN -> JSON-friendly Python values."""
    if v is None:
        return None
    if isinstance(v, float) and not np.isfinite(v):
        return None
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return None if not np.isfinite(v) else float(v)
    return v


def rewrite_decisions(store_path: Path, threshold: float, scores: pd.DataFrame | None = None,
                      model_version: str | None = None, before_swap: Any = None) -> None:
    """Take every client file's decision again at `threshold` in a copy of the store, then swap the copy in with
    one rename (atomic: a reader sees the old store or the new one, and a server already running keeps the file
    it opened). `scores` (client_id, default_probability, fold), with `model_version`: the probabilities of another
    model version replace the stored ones first (`scoring.registry.activate`). `before_swap(staging_dir)` runs
    after the copy is written and before it is swapped in (the registry moves the version's model files there).
    `ModelError` when `scores` lacks some client file: nothing is changed."""
    if not (0 < float(threshold) < 1):
        raise ValueError(f"a threshold is a probability strictly between 0 and 1, got {threshold}")
    staging = Path(tempfile.mkdtemp(prefix=".rewrite-", dir=store_path.parent))
    try:
        copy = staging / store_path.name
        shutil.copy2(store_path, copy)
        con = duckdb.connect(str(copy))
        try:
            if scores is not None:
                con.register("scores_df", scores[["client_id", "default_probability", "fold"]])
                missing = con.execute("SELECT count(*) FROM applications a ANTI JOIN scores_df s USING (client_id)"
                                      ).fetchone()[0]
                if missing:
                    raise ModelError(f"model version {model_version} has no score for {missing:,} of the client "
                                     f"files: rebuild instead")
                con.execute("""UPDATE applications SET default_probability = s.default_probability,
                                   fold = CAST(s.fold AS TINYINT)
                               FROM scores_df s WHERE applications.client_id = s.client_id""")
                con.execute("UPDATE meta SET value = ? WHERE key = 'model_version'", [json.dumps(model_version)])
            # the rule of contracts.decide: refused at or above the threshold
            con.execute("UPDATE applications SET decision = CASE WHEN default_probability >= ? THEN 'refused' "
                        "ELSE 'accepted' END", [float(threshold)])
            con.execute("CHECKPOINT")
        finally:
            con.close()
        if before_swap is not None:
            before_swap(staging)
        copy.replace(store_path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
