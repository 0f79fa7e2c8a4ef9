"""The audit log keeps every entry, refuses edits, and survives many parallel writers."""

from __future__ import annotations

import multiprocessing
import sqlite3
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from scoring.audit import AuditLog, Entry, audit_log_from_env

ENTRY = dict(event="client_opened", user="advisor", client_id=100002, model_version="v1",
             default_probability=0.12, decision="refused", source="dashboard")


def test_record_then_recent_newest_first_with_utc_time(tmp_path):
    log = AuditLog(tmp_path / "nested" / "dir" / "audit.sqlite")  # parent dirs are created
    log.record(**ENTRY)
    log.record(**{**ENTRY, "event": "predicted", "client_id": None, "user": None, "source": "api",
                  "default_probability": 0.03, "decision": "accepted"})
    first, second = log.recent(1)[0], log.recent()[1]
    assert first["event"] == "predicted" and first["client_id"] is None and first["decision"] == "accepted"
    assert second == {**ENTRY, "id": second["id"], "at": second["at"], "details": None}
    at = datetime.fromisoformat(second["at"])
    assert at.utcoffset() == timedelta(0)
    assert abs(datetime.now(timezone.utc) - at) < timedelta(minutes=1)


def test_log_is_in_wal_mode_and_refuses_update_and_delete(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    log.record(**ENTRY)
    con = sqlite3.connect(tmp_path / "audit.sqlite")
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE audit SET decision = 'accepted'")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM audit")
    assert log.recent()[0]["decision"] == "refused"
    assert not any(hasattr(log, name) for name in ("update", "delete", "clear", "purge"))


def test_ids_only_grow_across_reopening_and_a_log_made_with_autoincrement_still_works(tmp_path):
    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    for i in range(3):
        log.record(**{**ENTRY, "client_id": i})
    log.close()
    reopened = AuditLog(path)
    reopened.record(**{**ENTRY, "client_id": 3})
    newest = reopened.recent()
    assert [e["client_id"] for e in newest] == [3, 2, 1, 0]
    assert [e["id"] for e in newest] == sorted({e["id"] for e in newest}, reverse=True)
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA page_size").fetchone()[0] == 1024  # small pages: less written per commit
    # a log created by an earlier version (id ... AUTOINCREMENT) is read and appended to as before
    old = tmp_path / "old.sqlite"
    legacy = sqlite3.connect(old)
    legacy.execute("PRAGMA journal_mode = WAL")
    legacy.execute("CREATE TABLE audit (id INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, event TEXT NOT NULL, "
                   "user TEXT, client_id INTEGER, model_version TEXT NOT NULL, default_probability REAL, "
                   "decision TEXT, source TEXT NOT NULL)")
    legacy.execute("INSERT INTO audit (at, event, user, client_id, model_version, default_probability, decision, "
                   "source) VALUES ('2026-01-01T00:00:00+00:00', 'scored', 'u', 1, 'v0', 0.2, 'accepted', 'api')")
    legacy.commit()
    legacy.close()
    log = AuditLog(old)
    log.record(**ENTRY)
    assert [(e["id"], e["model_version"]) for e in log.recent()] == [(2, "v1"), (1, "v0")]
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):  # the triggers are added to the old table
        sqlite3.connect(old).execute("DELETE FROM audit")


def test_unknown_event_or_source_is_rejected_with_the_allowed_values(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    with pytest.raises(ValueError, match="client_opened"):
        log.record(**{**ENTRY, "event": "viewed"})
    with pytest.raises(ValueError, match="dashboard"):
        log.record(**{**ENTRY, "source": "cli"})
    assert log.count() == 0


def test_several_entries_are_written_together_or_not_at_all(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    entries = [Entry(**{**ENTRY, "client_id": 100002 + i}) for i in range(5)]
    log.record_many(entries)
    written = log.recent()
    assert [e["client_id"] for e in written] == [100006, 100005, 100004, 100003, 100002]
    assert len({e["at"] for e in written}) == 1  # one transaction, one time stamp
    blocker = sqlite3.connect(tmp_path / "audit.sqlite")
    blocker.execute("CREATE TRIGGER refuse_7 BEFORE INSERT ON audit WHEN NEW.client_id = 7 "
                    "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END")
    blocker.close()
    with pytest.raises(sqlite3.DatabaseError, match="refused by the test"):  # the 3rd of 3 fails: none is kept
        log.record_many([Entry(**{**ENTRY, "client_id": cid}) for cid in (5, 6, 7)])
    assert log.count() == 5
    log.record_many([Entry(**{**ENTRY, "client_id": 8})])  # the connection is usable afterwards
    assert log.count() == 6


def test_environment_variable_overrides_the_default_path(tmp_path, monkeypatch):
    monkeypatch.delenv("SCORING_AUDIT_DB", raising=False)
    assert audit_log_from_env(tmp_path / "default.sqlite").path == tmp_path / "default.sqlite"
    monkeypatch.setenv("SCORING_AUDIT_DB", str(tmp_path / "elsewhere" / "audit.sqlite"))
    log = audit_log_from_env(tmp_path / "other-default.sqlite")
    log.record(**ENTRY)
    assert (tmp_path / "elsewhere" / "audit.sqlite").exists() and not (tmp_path / "other-default.sqlite").exists()


def _write_many(path: str, writer: str, n: int) -> None:
    log = AuditLog(path)
    for i in range(n):
        log.record(**{**ENTRY, "user": writer, "client_id": i})


def test_parallel_threads_and_processes_lose_nothing(tmp_path):
    path = str(tmp_path / "audit.sqlite")
    shared = AuditLog(path)
    n = 150
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(path, f"process-{k}", n)) for k in range(4)]
    for p in procs:
        p.start()
    with ThreadPoolExecutor(8) as pool:  # threads sharing one AuditLog object, each with its connection
        list(pool.map(lambda k: [shared.record(**{**ENTRY, "user": f"thread-{k}", "client_id": i})
                                 for i in range(n)], range(8)))
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = shared.recent(100_000)
    assert len(rows) == 12 * n
    seen = {(r["user"], r["client_id"]) for r in rows}
    assert seen == {(f"{kind}-{k}", i) for kind, ks in (("thread", range(8)), ("process", range(4)))
                    for k in ks for i in range(n)}
    assert len({r["id"] for r in rows}) == len(rows)


def test_a_log_of_the_four_first_events_is_upgraded_keeping_every_entry(tmp_path):
    """A log created before searches, comparisons and decisions were audited (a CHECK of four events, no
    `details`): opening it rebuilds the table in one transaction, ids and entries kept, still append-only."""
    path = tmp_path / "v1.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE audit (id INTEGER PRIMARY KEY, at TEXT NOT NULL,
            event TEXT NOT NULL CHECK (event IN ('client_opened', 'scored', 'explained', 'predicted')),
            user TEXT, client_id INTEGER, model_version TEXT NOT NULL, default_probability REAL, decision TEXT,
            source TEXT NOT NULL CHECK (source IN ('api', 'dashboard')));
        CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
        INSERT INTO audit VALUES (7, '2026-01-01T00:00:00+00:00', 'explained', 'u', 5, 'v0', 0.2, 'accepted', 'api');
    """)
    con.close()
    log = AuditLog(path)
    log.record(**{**ENTRY, "event": "searched", "client_id": None, "details": '{"returned": 3}'})
    entries = log.recent()
    assert [(e["id"], e["event"], e["details"]) for e in entries] == [
        (8, "searched", '{"returned": 3}'), (7, "explained", None)]
    other = sqlite3.connect(path, isolation_level=None)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        other.execute("DELETE FROM audit")
    other.close()
    AuditLog(path).record(**ENTRY)  # reopening an upgraded log changes nothing
    assert log.count() == 3


def test_entries_of_one_client_newest_first(tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    for cid, user in ((1, "a"), (2, "b"), (1, "c")):
        log.record(**{**ENTRY, "client_id": cid, "user": user})
    assert [e["user"] for e in log.for_client(1)] == ["c", "a"]
    assert log.for_client(3) == []
