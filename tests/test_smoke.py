"""`python -m scoring smoke` against a real API process on loopback: passes on a sound deployment, fails with
a message on a wrong URL, a wrong token or a token that cannot read the audit trail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from api_server import ApiProcess

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
