"""Shared fixtures: one small portfolio built once per test session with the project's own generator."""

from __future__ import annotations

import os
import shutil

import pytest

from scoring.audit import AuditLog
from scoring.build import build
from scoring.config import Workdir
from scoring.model import CostWeights

TEST_ROWS = int(os.environ.get("SCORING_TEST_ROWS", "3000"))


def pytest_configure(config):
    """Browser assertions wait up to 20 s (Playwright's default is 5 s): the pages hold the advisor's and the
    analysts' panels, and CI machines have two shared cores. A wait, not a speed target: those are in `make bench`."""
    try:
        from playwright.sync_api import expect
    except ImportError:
        return
    expect.set_options(timeout=20_000)


@pytest.fixture(scope="session")
def workdir(tmp_path_factory) -> Workdir:
    """A built work directory (data + model + store) over a small generated portfolio."""
    wd = Workdir(tmp_path_factory.mktemp("workdir"))
    build(wd, rows=TEST_ROWS, quiet=True, nthread=2)
    return wd


@pytest.fixture(scope="session")
def service(workdir):
    from scoring.service import LocalScoringService

    return LocalScoringService(workdir)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """Every browser test drives Debian's /usr/bin/chromium (browsers are never downloaded here)."""
    from dashboard_server import CHROMIUM_ARGS, chromium_or_skip

    return {**browser_type_launch_args, "executable_path": chromium_or_skip(), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="module")
def audit(tmp_path_factory):
    """An empty audit log for each test module."""
    return AuditLog(tmp_path_factory.mktemp("audit") / "audit.sqlite")


@pytest.fixture(scope="module")
def api_server(service, audit, request):
    """The API on loopback, a real uvicorn in a thread, accepting the test module's `API_TOKENS`."""
    from api_server import LiveServer
    from scoring.api import create_app

    with LiveServer(create_app(service, tokens=frozenset(request.module.API_TOKENS), audit=audit)) as live:
        yield live


@pytest.fixture(scope="module")
def built_twice(tmp_path_factory):
    """One work directory built twice on the same data, the second with another cost of a missed default: two
    model versions of which the second is served (model versions, servers following an activation)."""
    wd = Workdir(tmp_path_factory.mktemp("versions"))
    first = build(wd, rows=2_000, quiet=True, nthread=2)
    second = build(wd, rows=2_000, quiet=True, nthread=2, costs=CostWeights(missed_default=6.0))
    return wd, first.model_version, second.model_version


@pytest.fixture
def copy(built_twice, tmp_path):
    """A copy of `built_twice` for one test (an activation rewrites it): the work directory and both versions."""
    wd, first, second = built_twice
    target = Workdir(tmp_path / "wd")
    shutil.copytree(wd.root, target.root)
    return target, first, second
