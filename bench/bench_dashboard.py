"""Dashboard benchmark: client switch on the server and in the browser, first page load, memory.

    python -m bench.bench_dashboard [--workdir DIR] [--switches N] [--sessions K] [--no-browser]

1. In process: the served page (template and all) added to a Bokeh document as a session's is,
   then `client_id` set to random clients; the time covers the session's audited `overview` call
   (the audit entry committed to SQLite), every view callback and the Bokeh model updates, including
   the document bookkeeping (what a session does before sending the patch). Baseline in the same
   run: the audited `overview` call alone.
2. In Chromium (Debian's /usr/bin/chromium), against `python -m views.serve --no-auth --role advisor` (the advisor's page) started as a
   separate process: first load (bytes over HTTP and the websocket, time to an interactive page
   with a client shown), client switches by typing an ID (time from Enter to the new probability
   on screen), server RSS with one session and the cost of each extra session.
Targets: switch p95 <= 50 ms on the server and <= 500 ms in the browser; first load <= 3 MB and
<= 3 s; server RSS <= 2 GB; <= 50 MB per extra session.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Row, p50, p95, print_table
from scoring.config import Workdir

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
MB = 2**20
FIRST_LOADS = 5

# True once the side bar shows the expected client. The search through the shadow roots of Panel's
# components runs once; later polls (every animation frame) only read the cached card's root.
SHOWN_CLIENT_JS = """(expected) => {
  const find = (root) => {
    if (root.querySelector('.client-card, .placeholder')) return root;
    for (const node of root.querySelectorAll('*')) {
      if (node.shadowRoot) { const found = find(node.shadowRoot); if (found) return found; }
    }
    return null;
  };
  let root = window.__clientCardRoot;
  if (!root || !root.isConnected && !(root.host && root.host.isConnected)) {
    root = window.__clientCardRoot = find(document);
  }
  const card = root && root.querySelector('.client-card');
  return card !== null && card !== undefined && card.dataset.clientId === String(expected);
}"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _client_ids(service, n: int, seed: int = 0) -> list[int]:
    from scoring.contracts import ClientQuery

    total = service.portfolio().n_applications
    rng = np.random.default_rng(seed)
    ids = []
    for offset in rng.choice(total, size=min(n, total), replace=False):
        ids.append(int(service.search(ClientQuery(limit=1, offset=int(offset))).items[0]["client_id"]))
    return ids


# ------------------------------------------------------------------------------------------ in process
def server_side(workdir: Workdir, switches: int) -> list[Row]:
    from bokeh.document import Document

    from scoring.audit import AuditLog
    from scoring.backends import session_service
    from scoring.service import LocalScoringService
    from views.app import DashboardApp
    from views.state import TOP_CONTRIBUTIONS

    started = time.perf_counter()
    service = LocalScoringService(workdir)
    load_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        session = session_service(service, "bench", AuditLog(Path(tmp) / "audit.sqlite"))
        app = DashboardApp(session, role="advisor")   # the advisor's page: the one that switches clients
        started = time.perf_counter()
        document = Document()
        app.template().server_doc(document)
        render_ms = (time.perf_counter() - started) * 1000
        ids = _client_ids(service, switches + 10)
        client = app.state.client
        for client_id in ids[:10]:                   # warm-up
            client.client_id = client_id
        views, calls = [], []
        for client_id in ids[10:]:
            t = time.perf_counter()
            client.client_id = client_id
            views.append((time.perf_counter() - t) * 1000)
            t = time.perf_counter()
            session.overview(client_id, client.feature, TOP_CONTRIBUTIONS)
            calls.append((time.perf_counter() - t) * 1000)
        features = []
        for feature in client.param.feature.objects[1:] + client.param.feature.objects[:1]:
            t = time.perf_counter()
            client.feature = feature
            features.append((time.perf_counter() - t) * 1000)
        search = []
        for decision in ("refused", "accepted", None) * 3:
            t = time.perf_counter()
            app.state.search.decision = decision
            search.append((time.perf_counter() - t) * 1000)
    return [
        Row(f"service load ({service.portfolio().n_applications:,} applications)", load_s, "s"),
        Row(f"first render of one session ({len(document.models)} Bokeh models)", render_ms, "ms"),
        Row("switch client, server side p50", p50(views), "ms"),
        Row("switch client, server side p95", p95(views), "ms", "<= 50", p95(views) <= 50,
            f"audited overview call alone p95 {p95(calls):.1f} ms"),
        Row("change compared feature, server side p95", p95(features), "ms"),
        Row("filter the client table, server side p95", p95(search), "ms"),
    ]


# ------------------------------------------------------------------------------------------ browser
def start_server(workdir: Workdir, port: int, audit_db: Path) -> subprocess.Popen:
    import httpx

    env = {**os.environ, "SCORING_AUDIT_DB": str(audit_db)}
    env.pop("SCORING_API_URL", None)
    log = audit_db.with_name("server.log")          # a file, not a pipe nobody reads (a full pipe blocks the server)
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "views.serve", "--no-auth", "--role", "advisor", "--port", str(port),
                                 "--workdir", str(workdir.root)], env=env, stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the dashboard did not start:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("the dashboard did not answer /health within 300 s")


def browser(workdir: Workdir, switches: int, sessions: int) -> list[Row]:
    import psutil
    from playwright.sync_api import sync_playwright

    from scoring.service import LocalScoringService

    if not os.path.exists(CHROMIUM):
        print(f"(no {CHROMIUM}: browser measurements skipped)")
        return []
    ids = _client_ids(LocalScoringService(workdir), FIRST_LOADS + switches + sessions, seed=1)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/dashboard"
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        proc = start_server(workdir, port, Path(tmp) / "audit.sqlite")
        startup_s = time.perf_counter() - started
        server = psutil.Process(proc.pid)
        try:
            with sync_playwright() as p:
                chromium = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
                loads, first_load = [], {}
                for client_id in ids[:FIRST_LOADS]:    # each in a fresh context: nothing cached, as a first visit
                    context = chromium.new_context(viewport={"width": 1600, "height": 1200})
                    page = context.new_page()
                    received = {"http": 0, "ws": 0}
                    page.on("requestfinished", lambda r, received=received: received.__setitem__(
                        "http", received["http"] + r.sizes()["responseBodySize"]))
                    page.on("websocket", lambda ws, received=received: ws.on(
                        "framereceived", lambda payload: received.__setitem__("ws", received["ws"] + len(payload))))
                    started = time.perf_counter()
                    page.goto(f"{url}?client={client_id}")
                    page.wait_for_function(SHOWN_CLIENT_JS, arg=client_id, polling="raf", timeout=60_000)
                    loads.append(time.perf_counter() - started)
                    if not first_load:               # the bytes once everything (deferred parts too) arrived
                        page.wait_for_load_state("networkidle")
                        page.wait_for_timeout(2000)
                        first_load = dict(received)
                    if client_id != ids[FIRST_LOADS - 1]:
                        context.close()
                rss_one = server.memory_info().rss

                box = page.locator(".client-id-input input")
                times = []
                for client_id in ids[FIRST_LOADS:FIRST_LOADS + switches]:
                    box.fill(str(client_id))
                    t = time.perf_counter()
                    box.press("Enter")
                    page.wait_for_function(SHOWN_CLIENT_JS, arg=client_id, polling="raf", timeout=30_000)
                    times.append((time.perf_counter() - t) * 1000)

                extra = []
                for client_id in ids[FIRST_LOADS + switches:FIRST_LOADS + switches + sessions]:
                    other = chromium.new_page()
                    other.goto(f"{url}?client={client_id}")
                    other.wait_for_function(SHOWN_CLIENT_JS, arg=client_id, polling="raf", timeout=60_000)
                    extra.append(other)
                time.sleep(1)
                rss_many = server.memory_info().rss
                per_session = (rss_many - rss_one) / max(len(extra), 1)
                chromium.close()
        finally:
            proc.terminate()
            proc.wait(30)
    rows += [
        Row("server start (model, store, reference statistics)", startup_s, "s"),
        Row("first page load, HTTP + websocket", sum(first_load.values()) / MB, "MB", "<= 3",
            sum(first_load.values()) <= 3 * MB,
            f"HTTP {first_load['http'] / MB:.2f} MB (gzip), ws {first_load['ws'] / MB:.2f} MB"),
        Row(f"first page load to a client on screen, median of {len(loads)}", float(np.median(loads)), "s", "<= 3",
            float(np.median(loads)) <= 3, f"fastest {min(loads):.2f} s, slowest {max(loads):.2f} s"),
        Row("switch client in the browser p50 (Enter -> new card)", p50(times), "ms"),
        Row("switch client in the browser p95 (Enter -> new card)", p95(times), "ms", "<= 500", p95(times) <= 500),
        Row(f"server RSS after {len(loads)} first loads (one page kept open)", rss_one / MB, "MB", "<= 2048", rss_one <= 2048 * MB),
        Row(f"server RSS with {len(extra)} more pages open", rss_many / MB, "MB", "<= 2048", rss_many <= 2048 * MB),
        Row("RSS added per extra browser session", per_session / MB, "MB", "<= 50", per_session <= 50 * MB),
    ]
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", help="built work directory (default: $SCORING_WORKDIR or the repository)")
    parser.add_argument("--switches", type=int, default=100, help="client switches measured")
    parser.add_argument("--sessions", type=int, default=5, help="extra browser sessions for the memory figure")
    parser.add_argument("--no-browser", action="store_true")
    args = parser.parse_args(argv)
    workdir = Workdir.resolve(args.workdir)
    rows = server_side(workdir, args.switches)
    if not args.no_browser:
        rows += browser(workdir, max(20, args.switches // 3), args.sessions)
    print_table(f"Dashboard ({workdir.root})", rows)
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
