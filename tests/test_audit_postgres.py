"""The PostgreSQL audit log against a real server: same entries as SQLite, append-only, nothing lost.

The server is `SCORING_TEST_POSTGRES_URL` if set, else a throwaway one started here with Debian's
binaries (`apt-get install postgresql`); without them these tests skip, or fail if
`REQUIRE_POSTGRES=1` (CI). Each test gets its own schema.
"""

from __future__ import annotations

import glob
import multiprocessing
import os
import pickle
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import quote

import httpx
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from scoring.audit import AUDIT_ERRORS, AuditLog, Entry, PostgresAuditLog, audit_log_from_env
from scoring.contracts import ClientQuery
from test_api import _free_port, _run_api, _wait_health

ENTRY = dict(event="client_opened", user="advisor", client_id=100002, model_version="v1",
             default_probability=0.12, decision="refused", source="dashboard")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+00:00")


def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


@pytest.fixture(scope="session")
def server_url():
    """A PostgreSQL server for the session: `SCORING_TEST_POSTGRES_URL`, else a throwaway one."""
    if os.environ.get("SCORING_TEST_POSTGRES_URL"):
        yield os.environ["SCORING_TEST_POSTGRES_URL"]
        return
    bindir = _postgres_bin()
    if bindir is None:
        message = ("no PostgreSQL server binaries (/usr/lib/postgresql/*/bin/initdb): "
                   "`apt-get install postgresql`, or set SCORING_TEST_POSTGRES_URL")
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(message)
        pytest.skip(message)
    root = Path(tempfile.mkdtemp(prefix="audit-pg-"))  # under /tmp: reachable by the postgres user
    as_server = []
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        as_server = ["runuser", "-u", "postgres", "--"]
        shutil.chown(root, pwd.getpwnam("postgres").pw_uid, pwd.getpwnam("postgres").pw_gid)
    port = _free_port()

    def run(*args):
        done = subprocess.run([*as_server, *map(str, args)], capture_output=True, text=True)
        if done.returncode:
            log = root / "server.log"
            raise RuntimeError(f"{args[0]} failed: {done.stderr}{log.read_text() if log.exists() else ''}")

    run(bindir / "initdb", "-D", root / "data", "-U", "postgres", "-A", "trust", "--no-sync")
    run(bindir / "pg_ctl", "-D", root / "data", "-l", root / "server.log", "-w", "start",
        "-o", f"-h 127.0.0.1 -p {port} -k {root} -c fsync=off")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        run(bindir / "pg_ctl", "-D", root / "data", "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def _with_search_path(url: str, schema: str) -> str:
    return f"{url}{'&' if '?' in url else '?'}options={quote(f'-csearch_path={schema}')}"


@pytest.fixture
def url(server_url):
    """The server's URL with a schema of this test's own first on the search path."""
    schema = f"audit_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    yield _with_search_path(server_url, schema)
    with psycopg.connect(server_url, autocommit=True) as admin:
        admin.execute(f"DROP SCHEMA {schema} CASCADE")


def test_record_then_recent_gives_the_same_entries_as_sqlite(url, tmp_path):
    postgres, sqlite = PostgresAuditLog(url), AuditLog(tmp_path / "audit.sqlite")
    for log in (postgres, sqlite):
        log.record(**ENTRY)
        log.record(**{**ENTRY, "event": "predicted", "client_id": None, "user": None, "source": "api",
                      "default_probability": 0.03, "decision": "accepted"})
    got, expected = postgres.recent(), sqlite.recent()
    assert postgres.count() == 2 and postgres.recent(1) == got[:1]
    for p, s in zip(got, expected, strict=True):
        assert {k: v for k, v in p.items() if k not in ("id", "at")} == {k: v for k, v in s.items()
                                                                         if k not in ("id", "at")}
        assert {k: type(v) for k, v in p.items()} == {k: type(v) for k, v in s.items()}
        assert ISO_UTC.fullmatch(p["at"]) and ISO_UTC.fullmatch(s["at"])
    assert got[0]["id"] > got[1]["id"]
    assert abs(datetime.now(timezone.utc) - datetime.fromisoformat(got[0]["at"])) < timedelta(minutes=1)


def test_a_table_of_the_four_first_events_is_upgraded_in_place(url):
    """A table created before searches and decisions were audited: altered in place, entries kept."""
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("""CREATE TABLE audit (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
            at timestamptz NOT NULL DEFAULT now(),
            event text NOT NULL CHECK (event IN ('client_opened', 'scored', 'explained', 'predicted')),
            "user" text, client_id bigint, model_version text NOT NULL, default_probability double precision,
            decision text, source text NOT NULL CHECK (source IN ('api', 'dashboard')))""")
        con.execute("""INSERT INTO audit (event, "user", client_id, model_version, source)
                       VALUES ('explained', 'u', 5, 'v0', 'api')""")
    log = PostgresAuditLog(url)
    log.record(**{**ENTRY, "event": "searched", "client_id": None, "details": '{"returned": 3}'})
    assert [(e["event"], e["details"]) for e in log.recent()] == [("searched", '{"returned": 3}'), ("explained", None)]
    PostgresAuditLog(url).record(**ENTRY)  # opening an upgraded table changes nothing
    assert log.count() == 3


def test_table_refuses_update_delete_and_truncate(url):
    log = PostgresAuditLog(url)
    log.record(**ENTRY)
    with psycopg.connect(url, autocommit=True) as con:
        for statement in ("UPDATE audit SET decision = 'accepted'", "DELETE FROM audit",
                          "DELETE FROM audit WHERE false", "TRUNCATE audit"):
            with pytest.raises(psycopg.errors.RaiseException, match="append-only"):
                con.execute(statement)
    assert log.recent()[0]["decision"] == "refused" and log.count() == 1
    assert not any(hasattr(log, name) for name in ("update", "delete", "clear", "purge"))


def test_several_entries_are_written_together_or_not_at_all(url):
    log = PostgresAuditLog(url)
    log.record_many([Entry(**{**ENTRY, "client_id": 100002 + i}) for i in range(5)])
    written = log.recent()
    assert [e["client_id"] for e in written] == [100006, 100005, 100004, 100003, 100002]
    assert len({e["at"] for e in written}) == 1  # one statement, one time stamp
    with psycopg.connect(url, autocommit=True) as con:
        con.execute("ALTER TABLE audit ADD CONSTRAINT refuse_7 CHECK (client_id <> 7)")
    with pytest.raises(psycopg.errors.CheckViolation, match="refuse_7"):  # the 3rd of 3 fails: none is kept
        log.record_many([Entry(**{**ENTRY, "client_id": cid}) for cid in (5, 6, 7)])
    assert log.count() == 5
    log.record_many([Entry(**{**ENTRY, "client_id": 8})])  # the connection is usable afterwards
    assert log.count() == 6


def test_a_lost_connection_is_reopened_once(url):
    log = PostgresAuditLog(url)
    log.record(**ENTRY)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (log._connection().info.backend_pid,))
    log.record(**ENTRY)
    assert log.count() == 2


def _write_many(log: PostgresAuditLog, writer: str, n: int) -> None:
    for i in range(n):
        log.record(**{**ENTRY, "user": writer, "client_id": i})


def test_parallel_threads_and_processes_lose_nothing(url):
    shared = PostgresAuditLog(url)
    shared.count()  # connected: the forked processes must not use this connection
    parent_backend = shared._connection().info.backend_pid
    n = 150
    procs = [multiprocessing.get_context(method).Process(target=_write_many, args=(shared, f"process-{k}", n))
             for k, method in enumerate(["spawn", "spawn", "fork", "fork"])]  # spawn: the log is pickled
    for p in procs:
        p.start()
    with ThreadPoolExecutor(8) as pool:  # threads sharing one log object, each with its connection
        list(pool.map(lambda k: _write_many(shared, f"thread-{k}", n), range(8)))
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    rows = shared.recent(100_000)
    assert len(rows) == 12 * n
    assert {(r["user"], r["client_id"]) for r in rows} == {
        (f"{kind}-{k}", i) for kind, ks in (("thread", range(8)), ("process", range(4))) for k in ks for i in range(n)}
    assert len({r["id"] for r in rows}) == len(rows)
    assert shared.count() == 12 * n  # the parent's connection still works after the forks, not reopened
    assert shared._connection().info.backend_pid == parent_backend


def test_environment_url_selects_postgres_over_the_sqlite_path(url, tmp_path, monkeypatch):
    monkeypatch.setenv("SCORING_AUDIT_URL", url)
    monkeypatch.setenv("SCORING_AUDIT_DB", str(tmp_path / "audit.sqlite"))
    log = audit_log_from_env(tmp_path / "default.sqlite")
    assert isinstance(log, PostgresAuditLog)
    log.record(**ENTRY)
    assert pickle.loads(pickle.dumps(log)).count() == 1
    assert not list(tmp_path.iterdir())


def test_a_url_of_another_scheme_is_refused_naming_the_accepted_ones(monkeypatch, tmp_path):
    monkeypatch.setenv("SCORING_AUDIT_URL", "mysql://auditor:s3cret@db.example/audit")
    with pytest.raises(ValueError, match="postgresql:// or postgres://") as raised:
        audit_log_from_env(tmp_path / "audit.sqlite")
    assert "s3cret" not in str(raised.value)


def test_an_unreachable_or_wrong_url_says_what_to_check_without_the_password(server_url):
    port = _free_port()  # nothing listens there
    with pytest.raises(AUDIT_ERRORS) as raised:
        PostgresAuditLog(f"postgresql://auditor:s3cret@127.0.0.1:{port}/audit")
    message = str(raised.value)
    assert f"postgresql://auditor@127.0.0.1:{port}/audit" in message and "s3cret" not in message
    assert "Connection refused" in message and "SCORING_AUDIT_URL" in message
    with pytest.raises(psycopg.OperationalError, match='"no_such_database" does not exist'):
        PostgresAuditLog(make_conninfo(server_url, dbname="no_such_database"))
    with pytest.raises(psycopg.ProgrammingError) as raised:  # libpq would quote this URL whole
        PostgresAuditLog("postgresql://auditor:s3cret@[::1/audit")
    assert "s3cret" not in str(raised.value)


def test_a_role_with_insert_and_select_only_can_write_and_read_but_not_alter(url):
    role, password = f"auditor_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    PostgresAuditLog(url).record(**ENTRY)  # the owner creates the table
    with psycopg.connect(url, autocommit=True) as admin:
        schema = admin.execute("SELECT current_schema()").fetchone()[0]
        admin.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{password}'")
        admin.execute(f"GRANT USAGE ON SCHEMA {schema} TO {role}")
        admin.execute(f"GRANT INSERT, SELECT ON audit TO {role}")
    try:
        as_role = make_conninfo(url, user=role, password=password)
        log = PostgresAuditLog(as_role)
        log.record(**ENTRY)
        assert log.count() == 2
        with psycopg.connect(as_role, autocommit=True) as con:
            for statement in ("ALTER TABLE audit DISABLE TRIGGER audit_append_only", "DROP TABLE audit"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    con.execute(statement)
        log.close()
    finally:
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute(f"DROP OWNED BY {role}")
            admin.execute(f"DROP ROLE {role}")


# ------------------------------------------------------------------------------------------ the API
def test_every_parallel_api_request_is_audited_in_postgres(workdir, service, url):
    ids = [int(row["client_id"]) for row in service.search(ClientQuery(limit=60)).items]
    application = {k: v for k, v in service.store.raw_record(ids[0]).items() if v is not None}
    port = _free_port()
    proc = _run_api(workdir, {"SCORING_API_TOKENS": "pg-token", "SCORING_AUDIT_URL": url,
                              "SCORING_API_ACCESS_LOG": "0"}, "--port", str(port))
    try:
        _wait_health(f"http://127.0.0.1:{port}", proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": "Bearer pg-token"},
                          timeout=60) as client:
            def work(i):
                r = client.get(f"/clients/{ids[i % len(ids)]}") if i % 2 else client.post("/predict", json=application)
                return r.status_code
            with ThreadPoolExecutor(16) as pool:
                codes = list(pool.map(work, range(100)))
    finally:
        proc.terminate()
        proc.communicate(timeout=30)
    assert codes == [200] * 100
    log = PostgresAuditLog(url)
    entries = log.recent(1000)
    assert log.count() == 100 and all(e["source"] == "api" for e in entries)
    assert sum(e["event"] == "predicted" for e in entries) == 50
    assert sorted(e["client_id"] for e in entries if e["event"] == "client_opened") == sorted(
        ids[i % len(ids)] for i in range(1, 100, 2))


def test_the_api_refuses_to_start_on_a_wrong_url_naming_it_without_the_password(workdir):
    port = _free_port()
    proc = _run_api(workdir, {"SCORING_API_TOKENS": "pg-token",
                              "SCORING_AUDIT_URL": f"postgresql://auditor:s3cret@127.0.0.1:{port}/audit"},
                    "--port", str(_free_port()))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert f"postgresql://auditor@127.0.0.1:{port}/audit" in err and "s3cret" not in err, err
