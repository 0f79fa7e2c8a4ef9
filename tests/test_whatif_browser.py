"""What-if and a new application in the served dashboard, in headless Chromium: the advisor lowers the amount
and sees the probability change, a value out of bounds named under its field, then enters a new application,
which is saved, opened, and found by the search.

Needs Debian's /usr/bin/chromium (skipped without it, failed if REQUIRE_BROWSER=1)."""

from __future__ import annotations


import pytest
from playwright.sync_api import expect

from dashboard_server import DashboardServer
from page_checks import watched
from scoring.audit import AuditLog
from scoring.contracts import ClientQuery
from scoring.service import LocalScoringService
from views.i18n import fmt_percent

pytestmark = pytest.mark.browser



@pytest.fixture(scope="module")
def own(workdir, tmp_path_factory):
    return LocalScoringService(workdir, new_applications=tmp_path_factory.mktemp("new") / "new.sqlite")


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    return AuditLog(tmp_path_factory.mktemp("audit") / "audit.sqlite")


@pytest.fixture(scope="module")
def server(own, log):
    with DashboardServer(own, log) as running:
        yield running


@pytest.fixture
def dashboard(page, request):
    with watched(page, request, height=4000):  # the what-if is below the advice
        yield page


def test_editing_the_amount_changes_the_probability_and_a_bad_value_is_named(dashboard, server, own, log):
    client_id = int(own.search(ClientQuery(decision="refused", split="new", limit=1)).items[0]["client_id"])
    application = own.application(client_id)
    dashboard.goto(f"{server.url}?client={client_id}")
    expect(dashboard.locator(".client-id")).to_have_text(str(client_id))
    dashboard.locator(".whatif-start button").click()
    as_is = own.assess(application, "fr", client_id)
    # the page draws what is scrolled to: the what-if is below the advice
    dashboard.locator(".whatif-reset button").scroll_into_view_if_needed()
    dashboard.locator(".whatif-result").scroll_into_view_if_needed()
    result = dashboard.locator(".whatif-result .whatif-probability")
    expect(result).to_contain_text(fmt_percent(as_is.default_probability, "fr"))

    lower = round(application["AMT_CREDIT"] * 0.3)
    changed = own.assess({**application, "AMT_CREDIT": float(lower)}, "fr", client_id)
    assert fmt_percent(changed.default_probability, "fr") != fmt_percent(as_is.default_probability, "fr")
    amount = dashboard.locator(".whatif-AMT_CREDIT input")
    amount.fill(str(lower))
    amount.press("Enter")
    expect(result).to_contain_text(fmt_percent(changed.default_probability, "fr"))
    expect(dashboard.locator(".whatif-result .whatif-changed")).to_contain_text("Montant du crédit")
    expect(dashboard.locator(".whatif-result li").first).to_have_text(changed.reasons[0].text)

    children = dashboard.locator(".whatif-CNT_CHILDREN input")
    children.fill("99")
    children.press("Enter")
    expect(dashboard.locator(".whatif-error-CNT_CHILDREN .field-error")).to_contain_text("0 to 30")
    expect(result).to_contain_text(fmt_percent(changed.default_probability, "fr"))   # the last good result stays
    assert any(e["event"] == "predicted" and e["client_id"] == client_id for e in log.recent(20))


def test_a_new_application_is_created_opened_and_found_by_search(dashboard, server, own, log):
    first = int(own.search(ClientQuery(limit=1)).items[0]["client_id"])
    dashboard.goto(f"{server.url}?client={first}")
    expect(dashboard.locator(".client-id")).to_have_text(str(first))
    dashboard.locator(".new-application-start button").click()
    dashboard.locator(".new-application-create button").scroll_into_view_if_needed()
    for column, value in (("AMT_CREDIT", "180000"), ("AMT_ANNUITY", "9000"), ("AMT_INCOME_TOTAL", "-3")):
        box = dashboard.locator(f".new-{column} input")
        box.fill(value)
        box.press("Tab")
    dashboard.locator(".new-application-create button").click()
    expect(dashboard.locator(".new-error-AMT_INCOME_TOTAL .field-error")).to_contain_text("negative")
    expect(dashboard.locator(".new-application .notice")).to_contain_text("Rien n'a été enregistré")
    assert own.new_files.all() == []

    income = dashboard.locator(".new-AMT_INCOME_TOTAL input")
    income.fill("120000")
    income.press("Tab")
    dashboard.locator(".new-application-create button").click()
    expect(dashboard.locator(".new-application .notice")).to_contain_text("créé et ouvert")
    created = own.new_files.all()[-1]
    assert own.application(created.client_id) == {"AMT_CREDIT": 180000.0, "AMT_ANNUITY": 9000.0,
                                                  "AMT_INCOME_TOTAL": 120000.0}
    expect(dashboard.locator(".client-id")).to_have_text(str(created.client_id))
    entry = next(e for e in log.recent(20) if e["event"] == "application_created")
    assert entry["client_id"] == created.client_id and entry["source"] == "dashboard"

    dashboard.goto(f"{server.url}?client={first}")
    expect(dashboard.locator(".client-id")).to_have_text(str(first))
    dashboard.locator(".client-id-input input").press_sequentially(str(created.client_id))
    row = dashboard.locator(".client-table .tabulator-row").first
    expect(row.locator('[tabulator-field="N°"]')).to_have_text(str(created.client_id), timeout=30_000)
    row.locator('[tabulator-field="N°"]').click()
    expect(dashboard.locator(".client-id")).to_have_text(str(created.client_id))
