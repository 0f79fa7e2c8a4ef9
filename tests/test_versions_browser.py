"""The model versions panel in headless Chromium: an analyst compares the two registered versions, tries to serve the
other one without a reason (an error shows, nothing changes), then with a reason: it is marked served and the
history names it with the reason.

Needs Debian's /usr/bin/chromium (skipped without it, failed if REQUIRE_BROWSER=1)."""

from __future__ import annotations


import pytest
from playwright.sync_api import expect

from dashboard_server import DashboardServer, role_logins
from scoring.audit import AuditLog
from scoring.build import build
from scoring.config import Workdir
from scoring.model import CostWeights
from scoring.registry import Registry
from scoring.serving import ReloadingService
from page_checks import log_in, open_section, watched

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def two_versions(tmp_path_factory):
    wd = Workdir(tmp_path_factory.mktemp("versions-browser"))
    first = build(wd, rows=2_000, quiet=True, nthread=2)
    second = build(wd, rows=2_000, quiet=True, nthread=2, costs=CostWeights(missed_default=6.0))
    return wd, first.model_version, second.model_version


@pytest.fixture(scope="module")
def secured(two_versions, tmp_path_factory):
    wd, _, _ = two_versions
    secrets = tmp_path_factory.mktemp("secrets")
    logins = role_logins(secrets)
    audit = AuditLog(tmp_path_factory.mktemp("audit") / "audit.sqlite")
    with DashboardServer(ReloadingService(wd, warm_up=False), audit, secrets=secrets) as running:
        running.logins, running.audit = logins, audit
        yield running


@pytest.fixture
def page(page, request):
    with watched(page, request):
        yield page


def test_an_analyst_compares_two_versions_and_serves_the_other_with_a_reason(page, secured, two_versions):
    wd, first, second = two_versions
    user = log_in(page, secured, "analyst")
    open_section(page, "Versions du modèle")

    table = page.locator(".versions-table")
    served_row = table.locator(".tabulator-row", has_text="● servie")
    expect(served_row).to_contain_text(second, timeout=30_000)
    expect(table.locator(".tabulator-row")).to_have_count(2)
    expect(page.locator('[data-kpi="applications"]')).to_contain_text(f"Modèle {second}")

    # compare: the served version (A) against the other (B), as chosen by default
    page.locator(".versions-compare button").click()
    comparison = Registry(wd).compare(second, first)
    expect(page.locator(".versions-comparison")).to_contain_text(f"B contre A sur {comparison.clients:,}".replace(
        ",", "\u202f"))
    expect(page.locator(".versions-comparison")).to_contain_text(f"{comparison.refused_now} accordés par A refusés "
                                                                 f"par B")

    # serve the other one: without a reason, an error and nothing changes
    expect(page.locator(".versions-target select")).to_have_value(first)
    page.locator(".versions-activate button").click()
    expect(page.locator(".versions-panel .notice")).to_contain_text("Un motif est obligatoire")
    assert Registry(wd).active_version() == second

    reason = "Les nouveaux coûts <b>ne sont pas</b> encore validés"      # shown as typed, never read as HTML
    page.locator(".versions-reason input").fill(reason)
    page.locator(".versions-activate button").click()
    expect(page.locator(".versions-panel .notice")).to_contain_text(f"Version {first} servie (à la place de {second})")
    expect(table.locator(".tabulator-row", has_text="● servie")).to_contain_text(first)
    expect(page.locator('[data-kpi="applications"]')).to_contain_text(f"Modèle {first}")   # the top bar follows
    history = page.locator(".versions-history .tabulator-row").first
    expect(history).to_contain_text(first)
    expect(history).to_contain_text(reason)
    assert page.locator(".versions-history b").count() == 0
    expect(history).to_contain_text(user)
    expect(page.locator(".versions-rollback")).to_contain_text(f"Version servie avant le dernier changement : {second}")
    assert Registry(wd).active_version() == first
    entry = secured.audit.recent(1)[0]
    assert (entry["event"], entry["user"], entry["model_version"]) == ("model_activated", user, first)
