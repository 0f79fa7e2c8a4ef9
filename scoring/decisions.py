"""Advisors' decisions on client files, append-only: who decided what, when, against which score and why.

One SQLite file (beside the audit log, readable by its owner only) whose table refuses UPDATE and DELETE
(triggers, as the audit log's). Each record keeps the inputs scored and the model that scored them, so the
probability can be recomputed later; a decision that departs from the model's needs a justification.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .contracts import DecisionRecord, TrustFlag

REVIEW_BAND_ENV = "SCORING_REVIEW_BAND"
DECISIONS_DB_ENV = "SCORING_DECISIONS_DB"
REVIEW_BAND = 0.02   # probabilities within this of the threshold are "à étudier" / "to review"
_COLUMNS = ("id", "at", "client_id", "advisor", "model_version", "model", "default_probability", "threshold",
            "model_decision", "decision", "justification", "review", "review_band", "reasons", "offer", "application", "flags")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id                  INTEGER PRIMARY KEY,
    at                  TEXT    NOT NULL,
    client_id           INTEGER NOT NULL,
    advisor             TEXT,
    model_version       TEXT    NOT NULL,
    model               TEXT    NOT NULL,
    default_probability REAL    NOT NULL,
    threshold           REAL    NOT NULL,
    model_decision      TEXT    NOT NULL CHECK (model_decision IN ('accepted', 'refused')),
    decision            TEXT    NOT NULL CHECK (decision IN ('accepted', 'refused')),
    justification       TEXT    NOT NULL,
    review              INTEGER NOT NULL,
    review_band         REAL    NOT NULL,
    reasons             TEXT    NOT NULL,   -- JSON list of the texts shown
    offer               TEXT,               -- JSON object of the changes, or NULL
    application         TEXT    NOT NULL,   -- JSON object: the inputs scored
    flags               TEXT                -- JSON list of the trust flags (NULL in a log from before them)
);
CREATE INDEX IF NOT EXISTS decisions_client ON decisions (client_id, id);
CREATE TRIGGER IF NOT EXISTS decisions_no_update BEFORE UPDATE ON decisions
BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS decisions_no_delete BEFORE DELETE ON decisions
BEGIN SELECT RAISE(ABORT, 'the decision log is append-only'); END;
"""


def review_band_from_env() -> float:
    value = float(os.environ.get(REVIEW_BAND_ENV, REVIEW_BAND))
    if not 0 <= value < 0.5:
        raise ValueError(f"{REVIEW_BAND_ENV} must be between 0 and 0.5, got {value}")
    return value


def in_review_band(probability: float, threshold: float, band: float) -> bool:
    """"À étudier" / "to review": the probability is within `band` of the threshold."""
    return abs(probability - threshold) <= band


class PrivateSqliteFile:
    """An SQLite file of personal data beside the audit log: readable by its owner only from its creation, in WAL
    mode with `schema` applied, one connection per thread (and per process after a fork). The decision log and the
    new applications (`scoring.intake`) are two."""

    def __init__(self, path: str | Path, schema: str):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:  # personal data: the owner only, from creation
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        except FileExistsError:
            pass
        self._local = threading.local()
        con = self._connection()
        con.execute("PRAGMA journal_mode = WAL")
        con.executescript(schema)

    def _connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None or self._local.pid != os.getpid():
            con = sqlite3.connect(self.path, timeout=10, isolation_level=None)
            self._local.con, self._local.pid = con, os.getpid()
        return con


class DecisionLog(PrivateSqliteFile):
    """The decisions, one SQLite file; one connection per thread."""

    def __init__(self, path: str | Path):
        super().__init__(path, _SCHEMA)
        con = self._connection()
        columns = {row[1] for row in con.execute("PRAGMA table_info(decisions)")}
        if "flags" not in columns:  # a log written before the trust flags: adding a column changes no record
            con.execute("ALTER TABLE decisions ADD COLUMN flags TEXT")

    def append(self, **values: Any) -> DecisionRecord:
        """Store one decision (time-stamped now, UTC) and return it as stored."""
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        row = {"flags": [], **values, "at": at}
        row["flags"] = [f if isinstance(f, dict) else asdict(f) for f in row["flags"]]
        stored = [row[c] for c in _COLUMNS[1:]]
        stored[_COLUMNS.index("review") - 1] = int(bool(row["review"]))
        for name in ("reasons", "offer", "application", "flags"):
            i = _COLUMNS.index(name) - 1
            stored[i] = None if stored[i] is None else json.dumps(stored[i], sort_keys=True)
        cur = self._connection().execute(
            f"INSERT INTO decisions ({', '.join(_COLUMNS[1:])}) VALUES ({', '.join('?' * (len(_COLUMNS) - 1))})",
            stored)
        return self._record((cur.lastrowid, *stored))

    def for_client(self, client_id: int) -> list[DecisionRecord]:
        """The client's decisions, oldest first."""
        rows = self._connection().execute(f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE client_id = ? "
                                          f"ORDER BY id", (int(client_id),)).fetchall()
        return [self._record(r) for r in rows]

    def get(self, client_id: int, decision_id: int) -> DecisionRecord | None:
        """One decision of the client's, or None (a decision of another client's is not found either)."""
        row = self._connection().execute(f"SELECT {', '.join(_COLUMNS)} FROM decisions WHERE client_id = ? AND "
                                         f"id = ?", (int(client_id), int(decision_id))).fetchone()
        return None if row is None else self._record(row)

    @staticmethod
    def _record(row) -> DecisionRecord:
        d = dict(zip(_COLUMNS, row, strict=True))
        d["review"] = bool(d["review"])
        d["reasons"] = tuple(json.loads(d["reasons"]))
        d["offer"] = None if d["offer"] is None else json.loads(d["offer"])
        d["application"] = json.loads(d["application"])
        d["flags"] = tuple(TrustFlag(**{**f, "features": tuple(f.get("features", ()))})
                           for f in json.loads(d["flags"] or "[]"))
        return DecisionRecord(**d)

    def __repr__(self) -> str:
        return f"DecisionLog({str(self.path)!r})"
