"""`python -m scoring smoke` against a real API process on loopback: passes on a sound deployment, fails with
a message on a wrong URL, a wrong token or a token that cannot read the audit trail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from api_server import ApiProcess, ServerProcess

REPO = Path(__file__).resolve().parent.parent
TOKEN, ADVISOR_ONLY = "smoke-token-5e1d", "smoke-advisor-only"


@pytest.fixture(scope="module")
def api_url(workdir, tmp_path_factory):
    env = {"SCORING_API_TOKENS": f"{TOKEN} advisor+analyst, {ADVISOR_ONLY} advisor",
           "SCORING_AUDIT_DB": str(tmp_path_factory.mktemp("smoke") / "audit.sqlite")}
    with ApiProcess(workdir, env) as api:
        yield api.url


def _smoke(*args, token=TOKEN):
    env = {**os.environ, "SCORING_API_TOKEN": token}
    return subprocess.run([sys.executable, "-m", "scoring", "smoke", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=120)


def test_a_sound_deployment_passes_every_check(api_url):
    done = _smoke("--api-url", api_url)
    assert done.returncode == 0, done.stderr
    assert "ok  the read is in the audit trail" in done.stdout and "ok  API refuses requests without a token" in done.stdout


@pytest.mark.parametrize("args, token, message", [
    (["--api-url", "http://127.0.0.1:9"], TOKEN, "GET http://127.0.0.1:9/health failed"),
    ([], "wrong-token", "a search: expected 200, got 401"),
    ([], ADVISOR_ONLY, "the audit trail: expected 200, got 403"),
    ([], "", "no token"),
])
def test_a_broken_deployment_fails_saying_what_is_wrong(api_url, args, token, message):
    done = _smoke(*(args or ["--api-url", api_url]), token=token)
    assert done.returncode == 1 and message in done.stderr, done.stderr


class DashboardProcess(ServerProcess):
    """`python -m views.serve` in a process of its own, as deployed: over the API, behind a login unless `no_auth`."""

    what = "the dashboard"

    def __init__(self, workdir, secrets, api_url: str, no_auth: bool = False):
        env = {**os.environ, "SCORING_API_URL": api_url, "SCORING_API_TOKEN": TOKEN}
        super().__init__([sys.executable, "-m", "views.serve", "--workdir", str(workdir.root), "--secrets",
                          str(secrets), *(["--no-auth"] if no_auth else [])], env)


@pytest.fixture(scope="module")
def secrets(tmp_path_factory):
    from dashboard_server import make_secrets

    directory = tmp_path_factory.mktemp("dashboard-secrets")
    make_secrets(directory)
    return directory


def test_a_sound_dashboard_over_the_api_passes_its_checks(workdir, api_url, secrets):
    with DashboardProcess(workdir, secrets, api_url) as dashboard:
        done = _smoke("--api-url", api_url, "--dashboard-url", dashboard.url)
    assert done.returncode == 0, done.stderr
    assert "ok  dashboard health" in done.stdout and "ok  dashboard asks for a login" in done.stdout


def test_a_dashboard_open_to_anyone_fails_the_smoke_test(workdir, api_url, secrets):
    with DashboardProcess(workdir, secrets, api_url, no_auth=True) as dashboard:
        done = _smoke("--api-url", api_url, "--dashboard-url", dashboard.url)
    assert done.returncode == 1
    assert "the dashboard answered 200 without a login: it must ask for one" in done.stderr


def test_a_dashboard_that_is_down_fails_the_smoke_test(api_url):
    from dashboard_server import free_port

    url = f"http://127.0.0.1:{free_port()}"
    done = _smoke("--api-url", api_url, "--dashboard-url", url)
    assert done.returncode == 1 and f"GET {url}/health failed" in done.stderr


def test_a_role_without_no_auth_is_refused_at_start(workdir):
    """`--role` picks the page of a page without logins; with logins each user's role decides: refused, said why."""
    done = subprocess.run([sys.executable, "-m", "views.serve", "--role", "advisor", "--workdir", str(workdir.root)],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--role goes with --no-auth" in done.stderr and "Traceback" not in done.stderr
