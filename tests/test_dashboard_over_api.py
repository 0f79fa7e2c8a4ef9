"""The dashboard on the HTTP backend: a real API server on loopback, the page in Chromium.

Same numbers as in-process scoring; an API that goes down gives a visible message, and the page
recovers once the API is back.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import expect

from dashboard_server import DashboardServer
from page_checks import open_section
from scoring.client import HttpScoringService
from scoring.contracts import ClientQuery
from views.i18n import fmt_number, fmt_percent

pytestmark = pytest.mark.browser
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TOKEN = "over-api-test-token"
API_TOKENS = (f"{TOKEN} advisor+analyst forward-user",)  # a dashboard's service token


@pytest.fixture(scope="module")
def dashboard_over_api(api_server, audit):
    backend = HttpScoringService(api_server.url, TOKEN, timeout=5.0)
    with DashboardServer(backend, audit) as running:
        yield running
    backend.close()


def test_the_page_shows_the_same_numbers_through_the_api(page, dashboard_over_api, api_server, service):
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    refused = int(service.search(ClientQuery(decision="refused", limit=1)).items[0]["client_id"])
    local = service.client(refused).score
    page.goto(f"{dashboard_over_api.url}?client={refused}")
    expect(page.locator(".client-id")).to_have_text(str(refused))
    expect(page.locator(".decision-badge")).to_have_text("Refusé")
    expect(page.locator(".probability")).to_have_text(fmt_percent(local.default_probability, "fr"))
    n = f"{service.portfolio().n_applications:,}".replace(",", "\u202f")
    expect(page.locator(".kpi").first).to_contain_text(n)
    # the client file's debts and the debt capacity come through the HTTP backend's codecs too
    debts = service.client(refused).debts
    expect(page.locator("table.facts.debts")).to_contain_text(fmt_number(debts["outstanding_debt"], "fr"))
    expect(page.locator(".effort-rate")).to_have_attribute(
        "data-effort", f"{service.debt_capacity(refused).effort_rate:.6f}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "over_api_client.png"))
    assert page.get_by_text("Traceback").count() == 0 and not errors


def test_an_api_outage_shows_a_message_and_the_page_recovers(page, dashboard_over_api, api_server, service):
    ids = [row["client_id"] for row in service.search(ClientQuery(decision="accepted", limit=3)).items]
    first, during, after = (int(i) for i in ids)
    page.goto(f"{dashboard_over_api.url}?client={first}")
    expect(page.locator(".client-id")).to_have_text(str(first))
    box = page.locator(".client-id-input input")
    # every panel loaded before the outage (the analysts' figures arrive last): the outage hits the client switch
    open_section(page, "Équité")
    expect(page.locator(".fairness-card").first).to_be_visible()
    expect(page.locator(".reasons-pane li").first).to_be_visible()

    api_server.stop()
    try:
        box.fill(str(during))
        box.press("Enter")
        expect(page.locator(".notice").get_by_text("Service de scoring indisponible").first).to_be_visible(timeout=20_000)
        expect(page.locator(".client-id")).to_have_text(str(first))  # the open file stays on screen
        assert page.get_by_text("Traceback").count() == 0
    finally:
        api_server.start()

    box.fill(str(after))
    box.press("Enter")
    expect(page.locator(".client-id")).to_have_text(str(after))
    expect(page.locator(".probability")).to_have_text(
        fmt_percent(service.client(after).score.default_probability, "fr"))
    expect(page.locator(".notice").get_by_text("Service de scoring indisponible")).to_have_count(0)


def test_the_api_documentation_works_offline_and_its_example_scores(page, api_server):
    # bank intranets have no internet: /docs and /redoc must load what they run on from the API server itself
    # (ReDoc's sidebar shows a "by Redocly" logo from its CDN: a decorative image, allowed to fail)
    outside = []

    def loopback_only(route):
        if route.request.url.startswith(api_server.url):
            route.continue_()
        else:
            if route.request.resource_type != "image":
                outside.append(route.request.url)
            route.abort()

    page.route("**/*", loopback_only)
    page.goto(f"{api_server.url}/docs")
    predict = page.locator('.opblock-post:has(.opblock-summary-path[data-path="/predict"])')
    expect(predict).to_be_visible()
    page.get_by_role("button", name="Authorize").first.click()
    page.locator(".auth-container input").fill(TOKEN)
    page.get_by_role("button", name="Apply credentials").click()
    page.locator(".modal-ux .btn-done").click()
    predict.locator(".opblock-summary").click()
    predict.get_by_role("button", name="Try it out").click()
    predict.get_by_role("button", name="Execute").click()
    live = predict.locator(".live-responses-table tbody")
    expect(live.locator("td.response-col_status").filter(has_text="200")).to_have_count(1)
    expect(live).to_contain_text('"decision"')

    page.goto(f"{api_server.url}/redoc")
    expect(page.get_by_role("heading", name="Score a new application sent as JSON", exact=False)).to_be_visible()
    assert outside == []


# last: stopping a second server resets Panel's state, which stops the module's dashboard too
def test_roles_over_the_api_advisor_opens_analyst_reads_the_trail(browser, api_server, audit, service, tmp_path):
    """Logged in, each session calls the API as its user in its role (X-User, X-Role): the API audits the
    advisor's read, and the analyst's audit panel lists it through GET /clients/{id}/audit."""
    from dashboard_server import make_secrets

    logins = make_secrets(tmp_path)
    client_id = int(service.search(ClientQuery(decision="accepted", limit=5)).items[4]["client_id"])
    backend = HttpScoringService(api_server.url, TOKEN, timeout=5.0)
    try:
        with DashboardServer(backend, audit, secrets=tmp_path) as server:
            for user in ("advisor", "analyst"):
                context = browser.new_context()
                page = context.new_page()
                page.goto(f"{server.url}?client={client_id}")
                page.locator("input[name=username]").fill(user)
                page.locator("input[name=password]").fill(logins[user])
                page.locator("input[name=password]").press("Enter")
                if user == "advisor":
                    expect(page.locator(".client-id")).to_have_text(str(client_id), timeout=30_000)
                    assert page.locator(".audit-panel").count() == 0
                else:
                    box = page.locator(".audit-client-id input")
                    box.fill(str(client_id))
                    box.press("Enter")
                    expect(page.locator(".audit-table")).to_contain_text("advisor via", timeout=20_000)
                    assert page.locator(".client-id-input").count() == 0
                context.close()
    finally:
        backend.close()
    entries = [e for e in audit.for_client(client_id) if e["event"] == "client_opened"]
    assert entries and entries[0]["user"].startswith("advisor via ") and entries[0]["source"] == "api"
