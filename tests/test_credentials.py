"""Secret files and the audit log are readable by their owner only, from the moment they exist."""

from __future__ import annotations

import os
import stat

import pytest

from scoring.__main__ import main
from scoring.audit import AuditLog
from scoring.credentials import COOKIE_FILE, TOKENS_FILE, USERS_FILE, SecretFileError, ensure_secrets


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_secrets_are_created_owner_only_even_under_a_permissive_umask(tmp_path):
    old = os.umask(0)  # what a careless shell may have: files would be created 666
    try:
        paths = ensure_secrets(tmp_path / "secrets")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "secrets") == 0o700
    for name in (USERS_FILE, COOKIE_FILE, TOKENS_FILE):
        assert _mode(tmp_path / "secrets" / name) == 0o600
    assert set(paths) == {"users", "cookie_secret", "api_tokens"}


def test_existing_secrets_are_never_overwritten(tmp_path):
    paths = ensure_secrets(tmp_path)
    before = {k: p.read_text() for k, p in paths.items()}
    ensure_secrets(tmp_path)
    assert {k: p.read_text() for k, p in paths.items()} == before


def test_a_secret_readable_by_others_is_refused_with_the_fix(tmp_path, capsys):
    ensure_secrets(tmp_path)
    token = tmp_path / TOKENS_FILE
    os.chmod(token, 0o644)
    with pytest.raises(SecretFileError, match=r"chmod 600 .*api_tokens"):
        ensure_secrets(tmp_path)
    assert main(["secrets", "--dir", str(tmp_path)]) == 2
    assert "readable or writable by others" in capsys.readouterr().err


def test_the_audit_log_is_owner_only(tmp_path):
    old = os.umask(0)
    try:
        log = AuditLog(tmp_path / "audit.sqlite")
        log.record(event="client_opened", user="advisor", client_id=1, model_version="v", default_probability=0.1,
                   decision="accepted", source="dashboard")
    finally:
        os.umask(old)
    assert log.count() == 1
    for path in tmp_path.iterdir():  # the database, its WAL and shared-memory files
        assert _mode(path) == 0o600, path.name


def test_an_existing_audit_log_readable_by_others_is_narrowed(tmp_path):
    path = tmp_path / "audit.sqlite"
    AuditLog(path).close()
    os.chmod(path, 0o644)
    AuditLog(path)
    assert _mode(path) == 0o600
