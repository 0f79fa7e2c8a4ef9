"""The served dashboard in headless Chromium: what an advisor sees and does, and what the browser downloads.

Needs Debian's /usr/bin/chromium (skipped without it, failed if REQUIRE_BROWSER=1). Screenshots go
to test-artifacts/. Every test fails on a "Traceback" in the page or an error in the console.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, quote, urlparse

import httpx
import pytest
from playwright.sync_api import expect

from dashboard_server import DashboardServer, FlakyLog, free_port, role_logins
from scoring.contracts import ClientQuery
from views.i18n import fmt_number, fmt_percent, t

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "test-artifacts"
MAX_FIRST_LOAD_BYTES = 3_000_000


@pytest.fixture(scope="module")
def server(service, audit):
    """The dashboard, its sessions writing to an audit log that a test can make fail (`server.audit.broken`)."""
    with DashboardServer(service, FlakyLog(audit)) as running:
        yield running


@pytest.fixture(scope="module")
def clients(service):
    refused = [row["client_id"] for row in service.search(ClientQuery(decision="refused", limit=2)).items]
    accepted = [row["client_id"] for row in service.search(ClientQuery(decision="accepted", limit=2)).items]
    return {"refused": int(refused[0]), "refused2": int(refused[1]), "accepted": int(accepted[0]),
            "accepted2": int(accepted[1])}


@pytest.fixture
def dashboard(page, request):
    """The Playwright page, watched for console errors and tracebacks; screenshot saved at the end."""
    problems: list[str] = []

    def console(message):
        # a refused login answers 401, which Chromium logs as a failed load of the login page: expected
        refused_login = "401" in message.text and urlparse(message.location.get("url", "")).path.endswith("/login")
        if message.type == "error" and not refused_login:
            problems.append(f"console error: {message.text}")

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.set_viewport_size({"width": 1600, "height": 1800})
    page.set_default_timeout(30_000)
    yield page
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"))
    assert page.get_by_text("Traceback").count() == 0, "a Python traceback is shown in the page"
    assert not problems, problems


def open_dashboard(page, url: str) -> None:
    page.goto(url)
    expect(page.locator(".kpi").first).to_be_visible()


def expect_client(page, client_id: int) -> None:
    expect(page.locator(".client-id")).to_have_text(str(client_id))


def scorer_probability(service, client_id: int) -> float:
    """The model's probability for this client, recomputed by the scorer (not read from the store)."""
    score, _ = service.score_and_explain(client_id)
    return score.default_probability


# ---------------------------------------------------------------------------------------------- advisor
def test_a_shared_link_opens_that_client_with_the_scorers_decision(dashboard, server, service, clients):
    client_id = clients["refused"]
    open_dashboard(dashboard, f"{server.url}?client={client_id}")
    expect_client(dashboard, client_id)
    score, _ = service.score_and_explain(client_id)
    expect(dashboard.locator(".decision-badge")).to_have_text("Refusé" if score.decision == "refused" else "Accordé")
    expect(dashboard.locator(".probability")).to_have_text(fmt_percent(score.default_probability, "fr"))
    expect(dashboard.locator("svg.gauge")).to_have_attribute(
        "aria-label", re.compile(re.escape(fmt_percent(score.default_probability, "fr"))))
    expect(dashboard.locator(".waterfall canvas").first).to_be_visible()
    # the profile's existing credits (the bureau's), and the effort rate against the cap in the debt capacity
    file = service.client(client_id)
    debts = dashboard.locator("table.facts.debts")
    expect(debts).to_contain_text("Encours des crédits existants")
    expect(debts).to_contain_text(fmt_number(file.debts["outstanding_debt"], "fr"))
    expect(debts).to_contain_text(f'{fmt_number(file.debts["monthly_debt_service"], "fr")} / mois')
    capacity = service.debt_capacity(client_id)
    expect(dashboard.locator(".effort-rate")).to_have_attribute("data-effort", f"{capacity.effort_rate:.6f}")


def test_typing_an_id_opens_the_client_and_puts_it_in_the_url(dashboard, server, service, clients):
    open_dashboard(dashboard, server.url)
    expect(dashboard.locator(".client-card-pane").get_by_text("Aucun dossier ouvert")).to_be_visible()
    client_id = clients["accepted"]
    box = dashboard.locator(".client-id-input input")
    box.fill(str(client_id))
    box.press("Enter")
    expect_client(dashboard, client_id)
    expect(dashboard.locator(".decision-badge")).to_have_text("Accordé")
    expect(dashboard.locator(".probability")).to_have_text(
        fmt_percent(scorer_probability(service, client_id), "fr"))
    dashboard.wait_for_function(f"() => window.location.search.includes('client={client_id}')")
    assert parse_qs(urlparse(dashboard.url).query)["client"] == [str(client_id)]


def test_clicking_a_row_of_the_filtered_table_opens_that_client(dashboard, server, service):
    open_dashboard(dashboard, server.url)
    dashboard.locator(".filters").get_by_text("Rechercher dans les dossiers").click()
    dashboard.locator(".filters select").first.select_option(label="Refusé")
    rows = dashboard.locator(".client-table .tabulator-row")
    expect(rows.first.locator('[tabulator-field="Décision"]')).to_have_text("Refusé")
    expect(dashboard.locator(".pager")).to_contain_text(f"{service.portfolio().n_refused:,}".replace(",", "\u202f"))
    row = rows.nth(2)
    client_id = int(row.locator('[tabulator-field="N°"]').inner_text())
    row.locator('[tabulator-field="Proba."]').click()
    expect_client(dashboard, client_id)
    expect(dashboard.locator(".decision-badge")).to_have_text("Refusé")
    expect(dashboard.locator(".probability")).to_have_text(
        fmt_percent(scorer_probability(service, client_id), "fr"))


def test_changing_the_compared_feature_updates_the_percentile(dashboard, server, service, clients):
    client_id = clients["accepted2"]
    open_dashboard(dashboard, f"{server.url}?client={client_id}")
    expect_client(dashboard, client_id)
    for feature in service.top_features(5)[1:3]:
        dist = service.distribution(feature.feature, client_id)
        dashboard.locator(".feature-select select").select_option(label=feature.label_fr)
        text = dashboard.locator(f'.client-value[data-feature="{feature.feature}"]')
        expect(text).to_be_visible()
        if dist.client_percentile is not None:
            expect(text.locator(".rank")).to_have_text(str(int(round(dist.client_percentile))))
        expect(dashboard.locator(".comparison canvas").first).to_be_visible()


def test_an_unknown_id_shows_a_message_and_keeps_the_client_on_screen(dashboard, server, clients):
    client_id = clients["refused2"]
    open_dashboard(dashboard, f"{server.url}?client={client_id}")
    expect_client(dashboard, client_id)
    box = dashboard.locator(".client-id-input input")
    box.fill("1")
    box.press("Enter")
    expect(dashboard.locator(".notice").get_by_text("Aucun dossier n° 1.")).to_be_visible()
    expect_client(dashboard, client_id)


def test_a_link_to_an_unknown_client_shows_a_message_not_a_traceback(dashboard, server):
    open_dashboard(dashboard, f"{server.url}?client=999999999")
    expect(dashboard.locator(".notice").get_by_text("Aucun dossier n° 999999999.")).to_be_visible()
    expect(dashboard.locator(".client-card-pane").get_by_text("Aucun dossier ouvert")).to_be_visible()


def test_a_mistyped_link_says_so(dashboard, server):
    open_dashboard(dashboard, f"{server.url}?client=10O002")
    expect(dashboard.locator(".notice").get_by_text("« 10O002 » n'est pas un numéro de dossier")).to_be_visible()


def test_a_link_carrying_html_shows_it_as_text(dashboard, server):
    typed = '<img src=x onerror="window.__injected = 1">'
    open_dashboard(dashboard, f"{server.url}?client={quote(typed)}")
    expect(dashboard.locator(".notice").get_by_text('« <img src=x onerror="window.__injected')).to_be_visible()
    assert dashboard.locator(".notice img").count() == 0
    assert dashboard.evaluate("() => window.__injected") is None


def test_when_the_audit_log_fails_the_new_client_is_not_shown(dashboard, server, clients):
    first = clients["accepted2"]
    open_dashboard(dashboard, f"{server.url}?client={first}")
    expect_client(dashboard, first)
    probability = dashboard.locator(".probability").inner_text()
    server.audit.broken = True
    try:
        box = dashboard.locator(".client-id-input input")
        box.fill(str(clients["refused2"]))
        box.press("Enter")
        # the client's notice (typing the ID also searched the files, refused too: the table has its own notice)
        expect(dashboard.locator(".notice").get_by_text(
            f"Le journal d'audit n'a pas pu être écrit : rien n'est affiché du dossier n° {clients['refused2']}")).to_be_visible()
    finally:
        server.audit.broken = False
    expect_client(dashboard, first)                              # nothing of the refused client
    expect(dashboard.locator(".decision-badge")).to_have_text("Accordé")
    expect(dashboard.locator(".probability")).to_have_text(probability)


def test_panel_serve_dashboard_py_serves_the_app(dashboard, workdir, service, clients):
    """`panel serve dashboard.py` (no launcher): the same app at /dashboard."""
    port = free_port()
    env = {**os.environ, "SCORING_WORKDIR": str(workdir.root), "SCORING_AUDIT_DB": str(workdir.data / "audit.sqlite")}
    env.pop("SCORING_API_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "panel", "serve", "dashboard.py", "--port", str(port),
                             "--address", "127.0.0.1", "--allow-websocket-origin", f"127.0.0.1:{port}"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/dashboard", timeout=30)
                break
            except httpx.TransportError:
                time.sleep(0.5)
        client_id = clients["refused"]
        open_dashboard(dashboard, f"http://127.0.0.1:{port}/dashboard?client={client_id}")
        expect_client(dashboard, client_id)
        expect(dashboard.locator(".decision-badge")).to_have_text("Refusé")
        assert dashboard.title() == t("title", "fr")
        # Leave the page before stopping its server: a page still open on a stopped server logs
        # failed loads (net::ERR_CONNECTION_REFUSED) that the fixture would count as errors.
        ARTIFACTS.mkdir(exist_ok=True)
        dashboard.screenshot(path=str(ARTIFACTS / "panel_serve_dashboard_py.png"))
        dashboard.goto("about:blank")
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_english_switch_relabels_and_reformats(dashboard, server, service, clients):
    client_id = clients["refused"]
    open_dashboard(dashboard, f"{server.url}?client={client_id}")
    expect_client(dashboard, client_id)
    # the switch once every panel has drawn, the audit trail's table last: a switch while Chromium still builds a
    # table raises a JavaScript error in Panel's Tabulator (see views/governance.py)
    expect(dashboard.locator(".audit-table").get_by_text("Utilisateur", exact=True)).to_be_visible()
    expect(dashboard.locator(".reasons-pane li").first).to_be_visible()
    dashboard.locator(".language-switch").get_by_text("EN", exact=True).click()
    expect(dashboard.locator(".decision-badge")).to_have_text("Refused")
    expect(dashboard.locator(".probability")).to_have_text(fmt_percent(scorer_probability(service, client_id), "en"))
    expect(dashboard.get_by_text("Why this score?")).to_be_visible()
    expect(dashboard.locator(".analyst-sections")).to_contain_text("Audit trail")   # the analysts' bar too
    dashboard.wait_for_function("() => window.location.search.includes('lang=en')")


def test_first_load_is_local_compressed_and_under_3_mb(dashboard, server, clients):
    received = {"http": 0, "ws": 0}
    hosts, encodings = set(), {}

    def finished(request):
        url = urlparse(request.url)
        if url.scheme not in ("data", "blob"):       # inline images are not downloads
            hosts.add(url.netloc)
        received["http"] += request.sizes()["responseBodySize"]

    def response(resp):
        if resp.url.split("?")[0].endswith(("bokeh.min.js", "panel.min.js")):
            encodings[resp.url.split("?")[0].rsplit("/", 1)[-1]] = resp.headers.get("content-encoding")

    def websocket(ws):
        ws.on("framereceived", lambda payload: received.__setitem__("ws", received["ws"] + len(payload)))

    dashboard.on("requestfinished", finished)
    dashboard.on("response", response)
    dashboard.on("websocket", websocket)
    open_dashboard(dashboard, f"{server.url}?client={clients['accepted']}")
    expect_client(dashboard, clients["accepted"])
    assert hosts == {f"127.0.0.1:{server.port}"}, f"requests left the server (CDN?): {hosts}"
    assert encodings == {"bokeh.min.js": "gzip", "panel.min.js": "gzip"}
    assert received["http"] + received["ws"] <= MAX_FIRST_LOAD_BYTES, received


# ---------------------------------------------------------------------------------------------- access
@pytest.fixture(scope="module")
def secured(service, audit, tmp_path_factory):
    secrets = tmp_path_factory.mktemp("secrets")
    logins = role_logins(secrets)
    with DashboardServer(service, audit, secrets=secrets) as running:
        running.logins = logins
        yield running


def test_without_login_no_client_data_is_served(secured, service, clients):
    client_id = clients["refused"]
    p = fmt_percent(service.client(client_id).score.default_probability, "fr")
    response = httpx.get(f"{secured.url}?client={client_id}", follow_redirects=False)
    assert response.status_code in (302, 401, 403)
    if response.status_code == 302:
        assert "login" in response.headers["location"]
    followed = httpx.get(f"{secured.url}?client={client_id}", follow_redirects=True)
    for body in (response.text, followed.text):
        body = re.sub(rf"client(=|%3D){client_id}", "", body)   # the login form may keep the address asked for
        assert str(client_id) not in body and p not in body and "default_probability" not in body
    assert httpx.get(f"{secured.root}/health").json()["status"] == "ok"


def log_in(page, secured, client_id: int, user: str, password: str) -> None:
    """Ask for a client's page, and give the login form `user` and `password` when it comes up."""
    page.goto(f"{secured.url}?client={client_id}")
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(password)
    page.locator("input[name=password]").press("Enter")


def advisor_login(secured) -> tuple[str, str]:
    return next((name, password) for name, (role, password) in secured.logins.items() if role == "advisor")


def test_an_advisor_logs_in_and_sees_the_client(dashboard, secured, clients, audit):
    user, password = advisor_login(secured)
    client_id = clients["accepted"]
    log_in(dashboard, secured, client_id, user, password + "-wrong")
    expect(dashboard.locator("input[name=password]")).to_be_visible()
    assert dashboard.locator(".client-id").count() == 0
    log_in(dashboard, secured, client_id, user, password)
    dashboard.goto(f"{secured.url}?client={client_id}")
    expect_client(dashboard, client_id)
    # the advice (reasons, offers, peers) is read after the file, each read audited: find the file's own entry
    entries = [e for e in audit.recent(50) if e["user"] == user and e["client_id"] == client_id]
    assert any(e["event"] == "client_opened" and e["source"] == "dashboard" for e in entries), entries



def test_an_advisor_sees_the_reasons_and_an_offer_and_records_a_decision(dashboard, secured, service, audit):
    """Logged in as an advisor: a refused client's reasons and acceptable offer fill in after the file; an override
    without a justification is refused with a message, with one it is recorded, listed and audited."""
    refused = [int(r["client_id"]) for r in service.search(ClientQuery(decision="refused", limit=50)).items]
    client_id = next(c for c in refused if service.offers(c).offers)
    reason = service.reasons(client_id, "fr").reasons[0].text
    user, password = advisor_login(secured)
    log_in(dashboard, secured, client_id, user, password)
    dashboard.goto(f"{secured.url}?client={client_id}")
    expect_client(dashboard, client_id)
    expect(dashboard.locator(".reasons-pane li").first).to_have_text(reason)
    expect(dashboard.locator(".offers-pane li.offer").first).to_contain_text("accepté à")
    expect(dashboard.locator(".peers-pane")).to_contain_text("dossiers passés les plus proches")

    dashboard.locator(".decision-choice").get_by_text("Décider autrement").click()
    dashboard.locator(".record-decision button").click()
    expect(dashboard.locator(".advice .notice")).to_contain_text("doit être justifiée")
    assert not [e for e in audit.recent(50) if e["event"] == "decision_recorded" and e["client_id"] == client_id]

    dashboard.locator(".decision-choice").get_by_text("Décider autrement").click()
    dashboard.locator(".justification-input textarea").fill("Garant solide, revenus <b>vérifiés</b>")
    dashboard.locator(".justification-input textarea").press("Tab")      # the text area sends its value on change
    dashboard.locator(".record-decision button").click()
    expect(dashboard.locator(".decisions-pane .justification").last).to_have_text(
        "Garant solide, revenus <b>vérifiés</b>")
    expect(dashboard.locator(".advice .notice")).to_contain_text("Décision enregistrée")
    entry = next(e for e in audit.recent(50) if e["event"] == "decision_recorded" and e["client_id"] == client_id)
    assert entry["user"] == user and entry["source"] == "dashboard"
    assert service.decisions(client_id)[-1].decision == "accepted"
