"""Append-only audit log: who opened or scored which client file, when, with which model and result.

SQLite in WAL mode, one connection per thread (and per process after a fork), a busy timeout
plus retries so that many writers, threads or processes, lose nothing. The table refuses
UPDATE and DELETE (triggers), and this class offers no way to do either.
"""

from __future__ import annotations

import os
import random
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

EVENTS = ("client_opened", "scored", "explained", "predicted")
SOURCES = ("api", "dashboard")
BUSY_TIMEOUT_MS = 10_000
RETRIES = 20

_SCHEMA = f"""
CREATE TABLE IF NOT EXISTS audit (
    id                  INTEGER PRIMARY KEY AUTOINCREMENT,
    at                  TEXT    NOT NULL,      -- ISO 8601, UTC
    event               TEXT    NOT NULL CHECK (event IN ({", ".join(f"'{e}'" for e in EVENTS)})),
    user                TEXT,
    client_id           INTEGER,
    model_version       TEXT    NOT NULL,
    default_probability REAL,
    decision            TEXT,
    source              TEXT    NOT NULL CHECK (source IN ({", ".join(f"'{s}'" for s in SOURCES)}))
);
CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit
BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""
# What a failed audit read or write raises, whatever the backend: the API answers 503 on these.
AUDIT_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error,)

_INSERT = ("INSERT INTO audit (at, event, user, client_id, model_version, default_probability, decision, source) "
           "VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
_COLUMNS = ("id", "at", "event", "user", "client_id", "model_version", "default_probability", "decision", "source")


@dataclass(frozen=True)
class Entry:
    """One audit entry; the time is set when it is written."""
    event: str
    user: str | None
    client_id: int | None
    model_version: str
    default_probability: float | None
    decision: str | None
    source: str

    def __post_init__(self):
        if self.event not in EVENTS:
            raise ValueError(f"unknown audit event {self.event!r}; expected one of {', '.join(EVENTS)}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown audit source {self.source!r}; expected one of {', '.join(SOURCES)}")

    def row(self, at: str) -> tuple:
        return (at, self.event, self.user, None if self.client_id is None else int(self.client_id),
                str(self.model_version), None if self.default_probability is None else float(self.default_probability),
                self.decision, self.source)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class AuditLog:
    """Append-only record of client files opened and applications scored.

    `synchronous="NORMAL"` (default): a committed entry survives a crash of the process, and
    commits cost ~0.1 ms; an OS crash or power loss may lose the last entries not yet
    checkpointed. `"FULL"` syncs the disk at every commit (several ms each): use it, or
    PostgreSQL, where that guarantee is required (`SCORING_AUDIT_SYNCHRONOUS=FULL`).
    """

    def __init__(self, path: str | Path, synchronous: str = "NORMAL"):
        self.path = Path(path).expanduser()
        self.synchronous = synchronous.upper()
        if self.synchronous not in ("NORMAL", "FULL", "EXTRA"):
            raise ValueError(f"synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OSError(f"cannot create the audit log directory {self.path.parent}: {exc}; "
                          f"set SCORING_AUDIT_DB to a writable path") from exc
        self._local = threading.local()
        self._retry(self._create)

    # ---------------------------------------------------------------- connections
    def _connection(self) -> sqlite3.Connection:
        con = getattr(self._local, "con", None)
        if con is None or self._local.pid != os.getpid():  # never reuse a connection across a fork
            con = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                  check_same_thread=True)
            con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
            con.execute(f"PRAGMA synchronous = {self.synchronous}")
            self._local.con, self._local.pid = con, os.getpid()
        return con

    def _retry(self, fn):
        for attempt in range(RETRIES):
            try:
                return fn(self._connection())
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc) or attempt == RETRIES - 1:
                    raise
                time.sleep(min(0.5, 0.005 * 2 ** attempt) * (0.5 + random.random()))

    def _create(self, con: sqlite3.Connection) -> None:
        mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OSError(f"the audit log {self.path} cannot use WAL mode (got {mode!r}); use a local disk")
        con.executescript(_SCHEMA)

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None

    # ---------------------------------------------------------------- writing and reading
    def record(self, *, event: str, user: str | None, client_id: int | None, model_version: str,
               default_probability: float | None, decision: str | None, source: str) -> None:
        """Append one entry, time-stamped now in UTC."""
        self.record_many([Entry(event, user, client_id, model_version, default_probability, decision, source)])

    def record_many(self, entries: Sequence["Entry"]) -> None:
        """Append several entries in one transaction (one commit: all are written or none)."""
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        rows = [e.row(at) for e in entries]

        def insert(con: sqlite3.Connection) -> None:
            if len(rows) == 1:  # autocommit: one statement, one commit
                con.execute(_INSERT, rows[0])
                return
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany(_INSERT, rows)
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

        if rows:
            self._retry(insert)

    def recent(self, limit: int = 100) -> list[dict]:
        """The latest entries, newest first."""
        rows = self._retry(lambda con: con.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM audit ORDER BY id DESC LIMIT ?", (int(limit),)).fetchall())
        return [dict(zip(_COLUMNS, r, strict=True)) for r in rows]

    def count(self) -> int:
        return self._retry(lambda con: con.execute("SELECT count(*) FROM audit").fetchone()[0])

    def __reduce__(self):  # picklable by path, e.g. for a process pool: each process opens its own connection
        return (AuditLog, (str(self.path), self.synchronous))

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def __str__(self) -> str:  # where the entries go, for messages
        return str(self.path)


def audit_log_from_env(default_path: str | Path) -> AuditLog:
    """The audit log at `SCORING_AUDIT_DB` if set, else at `default_path` (usually data/audit.sqlite).

    `SCORING_AUDIT_SYNCHRONOUS=FULL` makes every entry durable against power loss (slower commits).
    """
    return AuditLog(os.environ.get("SCORING_AUDIT_DB") or default_path,
                    synchronous=os.environ.get("SCORING_AUDIT_SYNCHRONOUS", "NORMAL"))
