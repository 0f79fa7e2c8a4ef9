"""Server memory across browser sessions: closed sessions are freed, open ones cost little.

A HoloViews stream subscriber or a watcher reaching a session's objects from something shared
by the process would keep every closed session alive (holoviz/panel#8580, holoviews#6934); this
opens and closes real sessions in Chromium and checks that their state is gone and memory flat.
"""

from __future__ import annotations

import gc
import time
import weakref

import psutil
import pytest
from bokeh.document import Document
from playwright.sync_api import expect

from dashboard_server import DashboardServer
from scoring.contracts import ClientQuery
from views.state import DashboardState

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CLOSED_SESSIONS = 20
OPEN_SESSIONS = 4
MAX_GROWTH_PER_CLOSED_SESSION = 2 * 2**20     # bytes: what is left once a session is gone
MAX_COST_PER_OPEN_SESSION = 50 * 2**20        # bytes: the target for each extra browser session


@pytest.fixture(scope="module")
def server(service):
    # closed sessions are discarded after 1 s (Bokeh's default is 15 s, checked every 17 s)
    with DashboardServer(service, None, check_unused_sessions_milliseconds=300,
                         unused_session_lifetime_milliseconds=1000) as running:
        yield running


@pytest.fixture(scope="module")
def client_ids(service):
    return [int(row["client_id"]) for row in service.search(ClientQuery(limit=CLOSED_SESSIONS)).items]


_TRACKED = {DashboardState: weakref.WeakSet(), Document: weakref.WeakSet()}


@pytest.fixture(scope="module", autouse=True)
def tracked():
    """Every DashboardState and Document made from now on, held weakly. Not `gc.get_objects()`: called while a
    server thread builds a tuple, it hands out a second reference to the tuple under construction, and CPython
    then fails that thread with "SystemError: bad argument to internal function" (seen in a session's render)."""
    originals = {kind: kind.__init__ for kind in _TRACKED}

    def registering(kind, init):
        def __init__(self, *args, **kwargs):
            init(self, *args, **kwargs)
            _TRACKED[kind].add(self)
        return __init__

    for kind, init in originals.items():
        kind.__init__ = registering(kind, init)
    yield
    for kind, init in originals.items():
        kind.__init__ = init


def live(kind) -> int:
    """Instances of `kind` (subclasses included) made since the module started and still alive."""
    gc.collect()
    return len(_TRACKED[kind])


def wait_until_sessions_closed(baseline: int, timeout: float = 30.0) -> int:
    """Sessions' states still alive beyond `baseline` (states of this process that are not sessions)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if live(DashboardState) <= baseline:
            return 0
        time.sleep(0.25)
    return live(DashboardState) - baseline


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss


def open_session(browser, url: str, client_id: int):
    page = browser.new_page()
    page.goto(f"{url}?client={client_id}")
    expect(page.locator(".client-id")).to_have_text(str(client_id), timeout=30_000)
    return page


def test_closed_sessions_are_freed_and_memory_stays_flat(browser, server, client_ids):
    baseline = live(DashboardState)       # apps rendered outside a server by earlier tests, if any
    for client_id in client_ids[:3]:                      # warm up: imports, caches, first-use allocations
        open_session(browser, server.url, client_id).close()
    assert wait_until_sessions_closed(baseline) == 0
    before, documents_before = rss(), live(Document)

    for client_id in client_ids:
        page = open_session(browser, server.url, client_id)
        assert live(DashboardState) >= baseline + 1        # the session exists while the page is open
        page.close()

    assert wait_until_sessions_closed(baseline) == 0, "closed sessions are still referenced"
    assert live(Document) <= documents_before
    growth = rss() - before
    assert growth / CLOSED_SESSIONS < MAX_GROWTH_PER_CLOSED_SESSION, f"{growth / 2**20:.1f} MB kept"


def test_each_open_session_costs_less_than_50_mb(browser, server, client_ids):
    baseline = live(DashboardState)
    open_session(browser, server.url, client_ids[0]).close()
    wait_until_sessions_closed(baseline)
    before = rss()
    pages = [open_session(browser, server.url, client_id) for client_id in client_ids[:OPEN_SESSIONS]]
    try:
        assert live(DashboardState) == baseline + OPEN_SESSIONS
        per_session = (rss() - before) / OPEN_SESSIONS
        assert per_session < MAX_COST_PER_OPEN_SESSION, f"{per_session / 2**20:.1f} MB per session"
    finally:
        for page in pages:
            page.close()
    assert wait_until_sessions_closed(baseline) == 0
