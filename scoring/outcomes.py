"""Repayment outcomes that arrive after the decision: checked against the client files, then kept beside them.

`python -m scoring outcomes FILE [--workdir DIR]` reads a CSV or Parquet file of `client_id` (or `SK_ID_CURR`),
`defaulted` (1 = defaulted, 0 = repaid; or `TARGET`) and optionally `reported_on` (a date; default today), and
refuses it whole, naming the rows, when an ID is unknown, repeated, already has an outcome, or belongs to an
application that was not decided as accepted (the labelled history, a refused application: no loan to repay).
An accepted file is written as one more Parquet file in `data/outcomes/` (written whole, then renamed), never
into the store, which the API and the dashboard hold open; monitoring reads the store's outcomes and these.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .config import Workdir
from .dataset import read_table
from .errors import ScoringError

MAX_NAMED = 10


class OutcomesError(ScoringError):
    """An outcomes file that cannot be accepted: the message names the rows."""


@dataclass(frozen=True)
class OutcomesLoaded:
    rows: int
    path: Path


def outcomes_dir(workdir: Workdir) -> Path:
    return workdir.data / "outcomes"


def relation(workdir: Workdir) -> str:
    """The SQL relation of every known outcome: the store's table plus the files loaded since the build."""
    files = sorted(outcomes_dir(workdir).glob("*.parquet"))
    if not files:
        return "outcomes"
    listed = ", ".join("'" + str(f).replace("'", "''") + "'" for f in files)
    return (f"(SELECT client_id, defaulted, reported_on FROM outcomes UNION ALL "
            f"SELECT client_id, defaulted, reported_on FROM read_parquet([{listed}]))")


def _named(frame: pd.DataFrame, mask, why: str) -> str:
    rows = frame.index[mask].tolist()
    shown = ", ".join(f"row {i + 2} (client {frame.loc[i, 'client_id']})" for i in rows[:MAX_NAMED])
    more = f" and {len(rows) - MAX_NAMED} more" if len(rows) > MAX_NAMED else ""
    return f"{len(rows)} {why}: {shown}{more}"


def load_outcomes(path: str | Path, workdir: Workdir | None = None, today: dt.date | None = None) -> OutcomesLoaded:
    """Check an outcomes file against the client files, then keep it (see the module's docstring)."""
    import duckdb

    workdir = (workdir or Workdir.resolve()).require_built()
    source = Path(path)
    frame = read_table(source).rename(columns={"SK_ID_CURR": "client_id", "TARGET": "defaulted",
                                               "DEFAULTED": "defaulted", "REPORTED_ON": "reported_on"})
    missing = [c for c in ("client_id", "defaulted") if c not in frame.columns]
    if missing:
        raise OutcomesError(f"{source}: column {', '.join(missing)} missing (client_id or SK_ID_CURR; defaulted "
                            f"or TARGET; optional reported_on)")
    if frame.empty:
        raise OutcomesError(f"{source} holds no outcome")
    frame = frame.reset_index(drop=True)
    problems = []
    ids = pd.to_numeric(frame["client_id"], errors="coerce")
    bad_id = ids.isna() | (ids != ids.round())
    if bad_id.any():
        problems.append(_named(frame, bad_id.to_numpy(), "rows without a whole-number client ID"))
    flags = pd.to_numeric(frame["defaulted"], errors="coerce")
    bad_flag = ~flags.isin([0, 1])
    if bad_flag.any():
        problems.append(_named(frame, bad_flag.to_numpy(), "rows whose outcome is not 0 (repaid) or 1 (defaulted)"))
    dup = ids.duplicated(keep=False) & ~bad_id
    if dup.any():
        problems.append(_named(frame, dup.to_numpy(), "rows repeating a client ID"))
    reported = pd.to_datetime(frame.get("reported_on", pd.Series([today or dt.date.today()] * len(frame))),
                              errors="coerce")
    if reported.isna().any():
        problems.append(_named(frame, reported.isna().to_numpy(), "rows without a valid reported_on date"))
    if problems:
        raise OutcomesError(f"{source} refused, nothing was kept: " + "; ".join(problems))

    candidates = pd.DataFrame({"client_id": ids.astype("int64"), "defaulted": flags.astype("int8"),
                               "reported_on": reported.dt.date})
    con = duckdb.connect(str(workdir.store_path), read_only=True)
    try:
        con.register("candidates", candidates)
        known = con.execute(f"""
            SELECT c.client_id, a.client_id IS NOT NULL, a.split, a.decision, k.client_id IS NOT NULL
            FROM candidates c LEFT JOIN applications a USING (client_id)
            LEFT JOIN {relation(workdir)} k ON k.client_id = c.client_id ORDER BY c.client_id""").df()
    finally:
        con.close()
    known.columns = ["client_id", "exists", "split", "decision", "recorded"]
    facts = candidates.merge(known, on="client_id", how="left")
    facts.index = candidates.index
    for mask, why in ((~facts["exists"], "rows naming an unknown client ID"),
                      (facts["exists"] & facts["recorded"], "rows for clients whose outcome is already recorded"),
                      (facts["exists"] & ((facts["split"] != "new") | (facts["decision"] != "accepted")),
                       "rows for applications not decided as accepted (labelled history or refused)")):
        if mask.any():
            problems.append(_named(candidates, mask.to_numpy(dtype=bool), why))
    if problems:
        raise OutcomesError(f"{source} refused, nothing was kept: " + "; ".join(problems))

    directory = outcomes_dir(workdir)
    directory.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%f")
    target = directory / f"outcomes-{stamp}.parquet"
    tmp = directory / f".{target.name}.tmp-{os.getpid()}"
    candidates.to_parquet(tmp, index=False)
    os.replace(tmp, target)
    return OutcomesLoaded(len(candidates), target)
