"""Append-only audit log: who opened or scored which client file, when, with which model and result.

Two backends with one interface: `AuditLog` (SQLite in WAL mode, one file on one host) and
`PostgresAuditLog` (a PostgreSQL server, for several hosts or central retention);
`audit_log_from_env` picks one. Both keep one connection per thread (and per process after a
fork) so that many writers, threads or processes, lose nothing; both tables refuse UPDATE and
DELETE (triggers), and neither class offers a way to do either.
"""

from __future__ import annotations

import os
import random
import re
import sqlite3
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import psycopg
from psycopg.conninfo import conninfo_to_dict

#: what an entry records. Reads of personal data: a client file opened, explained, compared with the population,
#: its debt capacity; a search (with its filters and the number of files returned in `details`); the audit
#: entries of a client read by an analyst. Actions: an application scored, created, a decision recorded, the
#: threshold changed, a model version activated.
EVENTS = ("client_opened", "scored", "explained", "predicted", "searched", "compared", "debt_viewed",
          "audit_viewed", "application_created", "decision_recorded", "threshold_changed", "model_activated")
SOURCES = ("api", "dashboard")
BUSY_TIMEOUT_MS = 10_000
RETRIES = 20
STATEMENT_TIMEOUT_MS = 10_000
PAGE_SIZE = 1024  # bytes, SQLite pages of a new audit log
CONNECT_TIMEOUT_S = 10  # PostgreSQL, unless the URL sets connect_timeout
PG_SCHEMES = ("postgresql", "postgres")

_EVENT_CHECK = "CHECK (event IN ({}))".format(", ".join(f"'{e}'" for e in EVENTS))
_SOURCE_CHECK = "CHECK (source IN ({}))".format(", ".join(f"'{s}'" for s in SOURCES))
# `id` is the rowid: max + 1 on each insert, and rows are never deleted, so ids only grow. AUTOINCREMENT would
# add nothing to that but a write of `sqlite_sequence` at every commit (~10 us of the ~30 us an entry costs).
# Files made before it was dropped keep their AUTOINCREMENT table; both read and write the same.
_TABLE = f"""
CREATE TABLE IF NOT EXISTS audit (
    id                  INTEGER PRIMARY KEY,
    at                  TEXT    NOT NULL,      -- ISO 8601, UTC
    event               TEXT    NOT NULL {_EVENT_CHECK},
    user                TEXT,
    client_id           INTEGER,
    model_version       TEXT    NOT NULL,
    default_probability REAL,
    decision            TEXT,
    source              TEXT    NOT NULL {_SOURCE_CHECK},
    details             TEXT                   -- JSON: a search's filters and count, a decision's justification
)"""
_TRIGGERS = (
    "CREATE TRIGGER IF NOT EXISTS audit_no_update BEFORE UPDATE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_no_delete BEFORE DELETE ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
)
_SCHEMA = ";\n".join((_TABLE, *_TRIGGERS)) + ";"
# PostgreSQL: the time is the server's; "user" is a reserved word there. One statement-level trigger
# refuses UPDATE, DELETE and TRUNCATE (it fires even when no row matches).
_PG_SCHEMA = f"""
CREATE TABLE audit (
    id                  bigint           GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at                  timestamptz      NOT NULL DEFAULT now(),
    event               text             NOT NULL {_EVENT_CHECK},
    "user"              text,
    client_id           bigint,
    model_version       text             NOT NULL,
    default_probability double precision,
    decision            text,
    source              text             NOT NULL {_SOURCE_CHECK},
    details             text
);
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON audit
FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
"""
# What a failed audit read or write raises, whatever the backend: the API answers 503 on these.
AUDIT_ERRORS: tuple[type[BaseException], ...] = (sqlite3.Error, psycopg.Error)

_INSERT = ("INSERT INTO audit (at, event, user, client_id, model_version, default_probability, decision, source, "
           "details) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_COLUMNS = ("id", "at", "event", "user", "client_id", "model_version", "default_probability", "decision", "source",
            "details")
_PG_INSERT = ('INSERT INTO audit (event, "user", client_id, model_version, default_probability, decision, source, '
              "details) SELECT * FROM unnest(%s::text[], %s::text[], %s::bigint[], %s::text[], %s::float8[], "
              "%s::text[], %s::text[], %s::text[])")
# Logs made by earlier versions: a narrower list of events in the CHECK and no `details` column. SQLite cannot
# alter a CHECK: the table is rebuilt in one transaction (entries and ids kept). PostgreSQL alters it in place.
_SQLITE_COPY = ("INSERT INTO audit (id, at, event, user, client_id, model_version, default_probability, decision, "
                "source) SELECT id, at, event, user, client_id, model_version, default_probability, decision, source "
                "FROM audit_before_upgrade")
_PG_UPGRADE = f"""
ALTER TABLE audit ADD COLUMN IF NOT EXISTS details text;
ALTER TABLE audit DROP CONSTRAINT IF EXISTS audit_event_check;
ALTER TABLE audit ADD CONSTRAINT audit_event_check {_EVENT_CHECK};
"""
_PG_COLUMNS = ", ".join(f'"{c}"' for c in _COLUMNS)


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
    details: str | None = None   # JSON text

    def __post_init__(self):
        if self.event not in EVENTS:
            raise ValueError(f"unknown audit event {self.event!r}; expected one of {', '.join(EVENTS)}")
        if self.source not in SOURCES:
            raise ValueError(f"unknown audit source {self.source!r}; expected one of {', '.join(SOURCES)}")

    def values(self) -> tuple:
        """The columns after `at`, in table order."""
        return (self.event, self.user, None if self.client_id is None else int(self.client_id),
                str(self.model_version), None if self.default_probability is None else float(self.default_probability),
                self.decision, self.source, self.details)


def _owner_only(path: Path) -> None:
    """The log names who looked at which client: readable by its owner only. A new file is created with that
    mode (SQLite gives its -wal and -shm files the database's mode); an existing one is narrowed to it."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))  # an empty file is an empty database
    except FileExistsError:
        st = path.stat()
        if st.st_mode & 0o077 and st.st_uid == os.getuid():
            os.chmod(path, 0o600)


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


class _Log:
    """What the two backends share: `record` is `record_many` of one entry."""

    def record(self, *, event: str, user: str | None, client_id: int | None, model_version: str,
               default_probability: float | None, decision: str | None, source: str,
               details: str | None = None) -> None:
        """Append one entry, time-stamped now in UTC."""
        self.record_many([Entry(event, user, client_id, model_version, default_probability, decision, source,
                                details)])

    def close(self) -> None:
        """Close this thread's connection (others close when their thread ends)."""
        con = getattr(self._local, "con", None)
        if con is not None:
            con.close()
            self._local.con = None


class AuditLog(_Log):
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
        _owner_only(self.path)
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
        # A commit writes each page it changed whole to the WAL: the last leaf of the table, for an entry of
        # ~100 bytes. 1 KiB pages instead of 4 KiB: ~6 us less per commit (measured). Only a new, empty file
        # takes it; an existing one keeps its page size.
        con.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        mode = con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise OSError(f"the audit log {self.path} cannot use WAL mode (got {mode!r}); use a local disk")
        con.executescript(_SCHEMA)
        _upgrade_sqlite(con)

    # ---------------------------------------------------------------- writing and reading
    def record_many(self, entries: Sequence["Entry"]) -> None:
        """Append several entries in one transaction (one commit: all are written or none)."""
        at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
        rows = [(at, *e.values()) for e in entries]

        def insert(con: sqlite3.Connection) -> None:
            if len(rows) == 1:  # autocommit: one statement, one commit
                con.execute(_INSERT, rows[0])
                return
            con.execute("BEGIN IMMEDIATE")
            try:
                con.executemany(_INSERT, rows)
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:  # never leave the connection inside a failed transaction
                    con.execute("ROLLBACK")
                raise

        if rows:
            self._retry(insert)

    def recent(self, limit: int = 100) -> list[dict]:
        """The latest entries, newest first."""
        rows = self._retry(lambda con: con.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM audit ORDER BY id DESC LIMIT ?", (int(limit),)).fetchall())
        return [dict(zip(_COLUMNS, r, strict=True)) for r in rows]

    def count(self) -> int:
        return self._retry(lambda con: con.execute("SELECT count(*) FROM audit").fetchone()[0])

    def for_client(self, client_id: int, limit: int = 100) -> list[dict]:
        """Who did what with one client file, newest first."""
        rows = self._retry(lambda con: con.execute(
            f"SELECT {', '.join(_COLUMNS)} FROM audit WHERE client_id = ? ORDER BY id DESC LIMIT ?",
            (int(client_id), int(limit))).fetchall())
        return [dict(zip(_COLUMNS, r, strict=True)) for r in rows]

    def __reduce__(self):  # picklable by path, e.g. for a process pool: each process opens its own connection
        return (AuditLog, (str(self.path), self.synchronous))

    def __repr__(self) -> str:
        return f"AuditLog({str(self.path)!r})"

    def __str__(self) -> str:  # where the entries go, for messages
        return str(self.path)


class PostgresAuditLog(_Log):
    """The audit log in a PostgreSQL table: the same entries and interface as `AuditLog`.

    An entry is committed on the server before `record`/`record_many` return (its durability is
    the server's: `synchronous_commit`, replication). `at` is the server's clock, one per
    statement, given by `recent()` in the same ISO 8601 UTC text as `AuditLog`'s. A connection
    found lost (server restart, idle timeout) is reopened and the statement tried once more: an
    entry whose commit was acknowledged on a lost connection may then be written twice, never lost.
    """

    def __init__(self, url: str):
        self._url = url  # with the password: only for reconnecting and pickling, never in messages
        try:
            # a server that hangs must fail the write, not block it: statement timeout and TCP keepalives
            self._params = {"connect_timeout": CONNECT_TIMEOUT_S, "keepalives": 1, "keepalives_idle": 10,
                            "keepalives_interval": 5, "keepalives_count": 3, "tcp_user_timeout": 15_000,
                            "options": f"-c statement_timeout={STATEMENT_TIMEOUT_MS}", **conninfo_to_dict(url)}
        except psycopg.ProgrammingError as exc:  # libpq quotes some bad URLs whole, password included
            raise psycopg.ProgrammingError(f"invalid PostgreSQL URL: {_redacted(str(exc))}") from None
        self._local = threading.local()
        try:
            self._run(self._create)
        except psycopg.Error as exc:
            raise psycopg.OperationalError(
                f"PostgreSQL at {self}: {' '.join(str(exc).split())} (check that the server is up and reachable "
                f"from here, and the user, password and database in SCORING_AUDIT_URL; the role needs INSERT and "
                f"SELECT on the audit table, and CREATE on the schema while the table does not exist)") from exc

    def _connection(self) -> psycopg.Connection:
        con = getattr(self._local, "con", None)
        if con is None or con.closed or self._local.pid != os.getpid():  # never reuse a connection across a fork
            con = psycopg.connect(**self._params, autocommit=True)
            self._local.con, self._local.pid = con, os.getpid()
        return con

    def _run(self, fn):
        con = self._connection()
        try:
            return fn(con)
        except psycopg.OperationalError:
            if not con.closed:  # the statement failed, not the connection
                raise
            return fn(self._connection())

    @staticmethod
    def _create(con: psycopg.Connection) -> None:
        with con.transaction():  # one creator at a time (CREATE TABLE IF NOT EXISTS alone races), none if it exists
            con.execute("SELECT pg_advisory_xact_lock(hashtext('scoring.audit'))")
            if con.execute("SELECT to_regclass('audit')").fetchone()[0] is None:
                con.execute(_PG_SCHEMA)
            elif not _pg_is_current(con):
                try:
                    con.execute(_PG_UPGRADE)
                except psycopg.errors.InsufficientPrivilege as exc:
                    raise psycopg.errors.InsufficientPrivilege(
                        f"the audit table predates the events {', '.join(EVENTS[4:])} and this role cannot alter "
                        f"it: run the API once as the table's owner, or have the owner run:{_PG_UPGRADE}") from exc

    def record_many(self, entries: Sequence[Entry]) -> None:
        """Append several entries in one statement (all are written or none)."""
        if entries:
            columns = [list(c) for c in zip(*(e.values() for e in entries))]
            self._run(lambda con: con.execute(_PG_INSERT, columns))

    def recent(self, limit: int = 100) -> list[dict]:
        """The latest entries, newest first."""
        rows = self._run(lambda con: con.execute(
            f"SELECT {_PG_COLUMNS} FROM audit ORDER BY id DESC LIMIT %s", (int(limit),)).fetchall())
        return [dict(zip(_COLUMNS, (id_, at.astimezone(timezone.utc).isoformat(timespec="microseconds"), *rest),
                         strict=True)) for id_, at, *rest in rows]

    def count(self) -> int:
        return self._run(lambda con: con.execute("SELECT count(*) FROM audit").fetchone()[0])

    def for_client(self, client_id: int, limit: int = 100) -> list[dict]:
        """Who did what with one client file, newest first."""
        rows = self._run(lambda con: con.execute(
            f"SELECT {_PG_COLUMNS} FROM audit WHERE client_id = %s ORDER BY id DESC LIMIT %s",
            (int(client_id), int(limit))).fetchall())
        return [dict(zip(_COLUMNS, (id_, at.astimezone(timezone.utc).isoformat(timespec="microseconds"), *rest),
                         strict=True)) for id_, at, *rest in rows]

    def __reduce__(self):  # picklable by URL: each process opens its own connection
        return (PostgresAuditLog, (self._url,))

    def __repr__(self) -> str:
        return f"PostgresAuditLog({str(self)!r})"

    def __str__(self) -> str:  # where the entries go, for messages: no password
        p = self._params
        user = f"{p['user']}@" if p.get("user") else ""
        port = f":{p['port']}" if p.get("port") else ""
        return f"postgresql://{user}{p.get('host', '')}{port}/{p.get('dbname', '')}"


def _upgrade_sqlite(con: sqlite3.Connection) -> None:
    """Bring a log made by an earlier version to the current table, keeping every entry and its id."""
    sql = con.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'audit'").fetchone()[0]
    columns = {row[1] for row in con.execute("PRAGMA table_info(audit)")}
    narrow_check = "CHECK (event IN" in sql and _EVENT_CHECK not in sql
    if not narrow_check and "details" in columns:
        return
    con.execute("BEGIN IMMEDIATE")
    try:
        if narrow_check:  # rebuild: SQLite cannot alter a CHECK constraint
            con.execute("DROP TRIGGER IF EXISTS audit_no_update")
            con.execute("DROP TRIGGER IF EXISTS audit_no_delete")
            con.execute("ALTER TABLE audit RENAME TO audit_before_upgrade")
            con.execute(_TABLE)
            con.execute(_SQLITE_COPY)
            con.execute("DROP TABLE audit_before_upgrade")
        else:
            con.execute("ALTER TABLE audit ADD COLUMN details TEXT")
        for trigger in _TRIGGERS:
            con.execute(trigger)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def _pg_is_current(con: psycopg.Connection) -> bool:
    has_details = con.execute("SELECT 1 FROM information_schema.columns WHERE table_name = 'audit' "
                              "AND column_name = 'details' AND table_schema = current_schema()").fetchone()
    check = con.execute("SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = 'audit_event_check' "
                        "AND conrelid = 'audit'::regclass").fetchone()
    return bool(has_details) and check is not None and all(f"'{e}'" in check[0] for e in EVENTS)


def _redacted(text: str) -> str:
    return re.sub(r"(://[^/@:]*:)[^@]*@", r"\1***@", text)


def audit_log_from_env(default_path: str | Path) -> AuditLog | PostgresAuditLog:
    """PostgreSQL at `SCORING_AUDIT_URL` (postgresql://user:password@host:port/database) if set; else
    SQLite at `SCORING_AUDIT_DB` if set, else at `default_path` (usually data/audit.sqlite).

    `SCORING_AUDIT_SYNCHRONOUS=FULL` makes every SQLite entry durable against power loss (slower commits).
    """
    url = os.environ.get("SCORING_AUDIT_URL")
    if url:
        scheme = url.partition("://")[0] if "://" in url else "none"
        if scheme not in PG_SCHEMES:
            raise ValueError(f"SCORING_AUDIT_URL must be a PostgreSQL URL, starting with "
                             f"{' or '.join(s + '://' for s in PG_SCHEMES)} (scheme: {scheme}); "
                             f"an SQLite audit log is set with SCORING_AUDIT_DB")
        return PostgresAuditLog(url)
    return AuditLog(os.environ.get("SCORING_AUDIT_DB") or default_path,
                    synchronous=os.environ.get("SCORING_AUDIT_SYNCHRONOUS", "NORMAL"))
