"""New applications entered after the build (dashboard form or `POST /clients`), append-only, as client files.

The client-file store (`clients.duckdb`) is built once and opened read-only by every process (the API, the
dashboard, notebooks): nobody may write to it while they read. A new application is therefore appended to its
own SQLite file beside the decision and audit logs (`new_applications.sqlite`, the owner only, WAL mode, UPDATE
and DELETE refused by triggers, like `scoring.decisions`). Every process reads the rows added since its last
read (by `seq`, one indexed query) before it answers a search or a client lookup, so a file saved by the API is
found by the dashboard and the reverse, and nothing is lost on a restart. A client ID is unique across the
store and this file: the given one is refused if taken, else the next free ID is chosen inside one write
transaction (two processes cannot choose the same).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from .contracts import DuplicateClientError
from .decisions import PrivateSqliteFile

NEW_APPLICATIONS_DB_ENV = "SCORING_NEW_APPLICATIONS_DB"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS new_applications (
    seq                 INTEGER PRIMARY KEY AUTOINCREMENT,
    client_id           INTEGER NOT NULL UNIQUE,
    at                  TEXT    NOT NULL,
    created_by          TEXT,
    model_version       TEXT    NOT NULL,
    default_probability REAL    NOT NULL,
    threshold           REAL    NOT NULL,
    decision            TEXT    NOT NULL CHECK (decision IN ('accepted', 'refused')),
    application         TEXT    NOT NULL,   -- JSON object: the validated application, as `predict` takes it
    roles               TEXT    NOT NULL    -- JSON object: the business columns of the client file (income...)
);
CREATE TRIGGER IF NOT EXISTS new_applications_no_update BEFORE UPDATE ON new_applications
BEGIN SELECT RAISE(ABORT, 'the new applications are append-only'); END;
CREATE TRIGGER IF NOT EXISTS new_applications_no_delete BEFORE DELETE ON new_applications
BEGIN SELECT RAISE(ABORT, 'the new applications are append-only'); END;
"""
_COLUMNS = ("seq", "client_id", "at", "created_by", "model_version", "default_probability", "threshold", "decision",
            "application", "roles")


@dataclass(frozen=True)
class NewFile:
    """A new application as saved: the score it got when it was entered, and what was entered."""
    seq: int
    client_id: int
    at: str                        # UTC, ISO 8601
    created_by: str | None
    model_version: str
    default_probability: float     # by the production model of `model_version`, at creation
    threshold: float
    decision: str
    application: dict[str, Any]
    roles: dict[str, Any]


class NewApplications(PrivateSqliteFile):
    """The new applications, one SQLite file shared by every process of a work directory; one connection per
    thread. `get` and `all` read the rows other processes appended since the last read."""

    def __init__(self, path: str | Path):
        super().__init__(path, _SCHEMA)
        self._lock = threading.Lock()
        self._rows: dict[int, NewFile] = {}
        self._last = 0

    def refresh(self) -> list[NewFile]:
        """Read the rows appended since the last read (by this or another process); the new ones."""
        with self._lock:
            rows = self._connection().execute(
                f"SELECT {', '.join(_COLUMNS)} FROM new_applications WHERE seq > ? ORDER BY seq",
                (self._last,)).fetchall()
            found = [_file(r) for r in rows]
            for f in found:
                self._rows[f.client_id] = f
                self._last = max(self._last, f.seq)
            return found

    def get(self, client_id: int) -> NewFile | None:
        """The new file `client_id`, or None (one indexed read when it is not known here yet)."""
        found = self._rows.get(client_id)
        if found is None:
            self.refresh()
            found = self._rows.get(client_id)
        return found

    def all(self) -> list[NewFile]:
        """Every new file, oldest first (read in `seq` order, so kept in it)."""
        self.refresh()
        with self._lock:  # a copy: another thread's refresh may be adding to the dict
            return list(self._rows.values())

    def append(self, *, application: Mapping[str, Any], roles: Mapping[str, Any], model_version: str,
               default_probability: float, threshold: float, decision: str, created_by: str | None,
               first_free: int, client_id: int | None = None) -> NewFile:
        """Save one new application, under `client_id`, or the next ID above every one taken (at least
        `first_free`), chosen inside the write transaction. `DuplicateClientError` if `client_id` is taken here."""
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        con = self._connection()
        con.execute("BEGIN IMMEDIATE")  # the write lock first: no other process picks the same ID meanwhile
        try:
            if client_id is None:
                top = con.execute("SELECT max(client_id) FROM new_applications").fetchone()[0]
                client_id = max(int(first_free), (top or 0) + 1)
            cur = con.execute(
                f"INSERT INTO new_applications ({', '.join(_COLUMNS[1:])}) VALUES ({', '.join('?' * 9)})",
                (int(client_id), at, created_by, model_version, float(default_probability), float(threshold),
                 decision, json.dumps(dict(application), sort_keys=True),
                 json.dumps(dict(roles), sort_keys=True, default=_plain)))
            con.execute("COMMIT")
        except sqlite3.IntegrityError:
            con.execute("ROLLBACK")
            raise DuplicateClientError(int(client_id)) from None
        except BaseException:
            con.execute("ROLLBACK")
            raise
        seq = cur.lastrowid
        self.refresh()
        return self._rows[int(client_id)] if int(client_id) in self._rows else NewFile(
            seq, int(client_id), at, created_by, model_version, float(default_probability), float(threshold),
            decision, dict(application), dict(roles))

    def __repr__(self) -> str:
        return f"NewApplications({str(self.path)!r})"


def _plain(value: Any) -> Any:
    item = getattr(value, "item", None)  # a NumPy scalar
    return item() if callable(item) else str(value)


def _file(row) -> NewFile:
    d = dict(zip(_COLUMNS, row, strict=True))
    d["application"] = json.loads(d["application"])
    d["roles"] = json.loads(d["roles"])
    return NewFile(**d)
