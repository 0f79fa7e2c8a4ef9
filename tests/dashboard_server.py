"""The dashboard served for real (`views.serve.serve`, threaded) on 127.0.0.1, for browser and session tests."""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import time

import httpx
import panel as pn
import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def chromium_or_skip() -> str:
    """Chromium's path; skip the test without it, unless REQUIRE_BROWSER=1 (CI), then fail."""
    path = CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium")
    if path:
        return path
    message = f"Chromium not found at {CHROMIUM}: install Debian's chromium package (never `playwright install`)"
    if os.environ.get("REQUIRE_BROWSER") == "1":
        pytest.fail(message)
    pytest.skip(message)


class FlakyLog:
    """An audit log that can be made to fail (`broken = True`), as SQLite does on a full disk or a lost volume."""

    def __init__(self, log):
        self.log, self.broken = log, False

    def record_many(self, entries):
        if self.broken:
            raise sqlite3.OperationalError("disk I/O error")
        self.log.record_many(entries)

    def recent(self, limit=100):
        return self.log.recent(limit)


def role_logins(directory) -> dict[str, tuple[str, str]]:
    """Dashboard secrets in `directory` (as `python -m scoring secrets` makes them); the generated logins, told
    once (the users file keeps only their hashes): {user: (role, password)}, as `page_checks.log_in` reads them."""
    from scoring.credentials import ensure_secrets

    logins: dict[str, tuple[str, str]] = {}
    ensure_secrets(directory, on_new_login=lambda name, role, password: logins.__setitem__(name, (role, password)))
    return logins


def make_secrets(directory) -> dict[str, str]:
    """`role_logins` without the roles: {user: password}."""
    return {name: password for name, (_, password) in role_logins(directory).items()}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class DashboardServer:
    """`with DashboardServer(service, audit) as server: page.goto(server.url + "?client=100002")`."""

    def __init__(self, service, audit=None, *, secrets=None, **server_kwargs):
        self.service, self.audit, self.secrets = service, audit, secrets
        self.server_kwargs = server_kwargs
        self.port = free_port()
        self.root = f"http://127.0.0.1:{self.port}"
        self.url = f"{self.root}/dashboard"
        self._thread = None

    def start(self, timeout: float = 60.0) -> "DashboardServer":
        from views.serve import serve

        self._thread = serve(port=self.port, address="127.0.0.1", secrets=self.secrets,
                             no_auth=self.secrets is None, service=self.service, audit=self.audit,
                             threaded=True, warm=False, verbose=False, **self.server_kwargs)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                if httpx.get(self.root + "/health", timeout=2.0).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the dashboard did not answer {self.root}/health within {timeout} s")

    def stop(self) -> None:
        if self._thread is not None:
            try:
                self._thread.stop()
            except RuntimeError:      # already stopping
                pass
            self._thread.join(30)
            self._thread = None
        pn.state.reset()

    def __enter__(self) -> "DashboardServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
