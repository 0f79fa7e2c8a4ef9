"""The analysts' sections in headless Chromium: an analyst logs in, opens the fairness, outcomes, drift and
performance sections from the bar, clicks a monitored feature and sees its reference and current distributions;
a link names the section it opens.

Needs Debian's /usr/bin/chromium (skipped without it, failed if REQUIRE_BROWSER=1)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from dashboard_server import DashboardServer, role_logins
from views.i18n import feature_label, fmt_number, labels_for
from page_checks import ARTIFACTS, log_in, open_section, watched

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def secured(service, audit, tmp_path_factory):
    secrets = tmp_path_factory.mktemp("secrets")
    logins = role_logins(secrets)
    with DashboardServer(service, audit, secrets=secrets) as running:
        running.logins = logins
        yield running


@pytest.fixture
def page(page, request):
    with watched(page, request):
        yield page


def test_an_analyst_sees_fairness_and_drift_and_a_features_two_distributions(page, secured, service):
    log_in(page, secured, "analyst")

    expect(page.locator(".audit-panel")).to_be_visible(timeout=30_000)      # the first section
    assert page.locator(".fairness-table").count() == 0                    # the others drawn when chosen
    open_section(page, "Équité")
    fairness = page.locator(".fairness-table")
    expect(fairness).to_contain_text("Genre", timeout=30_000)
    expect(fairness).to_contain_text("Nouvelles demandes")
    expect(page.locator(".fairness-card").first).to_contain_text("Ratio d'impact disparate")
    expect(page.locator(".audit-panel")).to_be_hidden()
    page.wait_for_function("() => window.location.search.includes('section=fairness')")   # a link to share
    open_section(page, "Résultats")
    expect(page.locator(".months-table")).to_contain_text(service.monitoring()[-1].month)
    expect(page.locator(".rates-chart canvas").first).to_be_visible()

    open_section(page, "Dérive")
    expect(page.locator(".psi-heatmap canvas").first).to_be_visible()

    labels = labels_for(service)
    months = service.monitoring()
    last = months[-1].feature_psi
    chosen = sorted(last, key=lambda f: -last[f])[1]            # the second row: not the one shown at first
    name = feature_label(labels, chosen, "fr")
    page.locator(".drift-features-table .tabulator-row").nth(1).get_by_text(name, exact=True).click()
    expect(page.locator(".drift-title")).to_contain_text(name)
    expect(page.locator(".drift-chart canvas").first).to_be_visible()
    # the chart's legend names both distributions
    drift = service.feature_drift(chosen)
    assert drift.reference_applications > 0 and drift.current_applications > 0
    expect(page.locator(".drift-chart")).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "analyst_drift_section.png"), full_page=True)   # for a look
    open_section(page, "Performance")
    page.locator(".perf-segment select").select_option(label="Tranche d'âge")
    youngest = next(f for f in service.performance() if f.segment == "age")      # the first band shown
    expect(page.locator(".perf-summary-pane")).to_contain_text(f"{fmt_number(youngest.applications, 'fr')} dossiers, "
                                                               f"{fmt_number(youngest.defaults, 'fr')} défauts")
    expect(page.locator(".confusion-pane")).to_contain_text("Coût d'un défaut accepté")

    # a language switch reaches the sections drawn and hidden: the table of months is in English when shown again
    page.locator(".language-switch").get_by_text("EN", exact=True).click()
    expect(page.locator(".confusion-pane")).to_contain_text("Cost of a missed default")
    open_section(page, "Outcomes")
    expect(page.locator(".months-table")).to_contain_text("Known outcomes")
    expect(page.locator(".perf-summary-pane")).to_be_hidden()


def test_a_link_to_a_section_opens_that_section_only(page, secured, service):
    """An analyst shares `?section=drift`: the page opens on the drift section, the others not drawn."""
    log_in(page, secured, "analyst")
    page.goto(page.url.split("?")[0] + "?section=drift")
    last = service.monitoring()[-1].feature_psi
    top = feature_label(labels_for(service), max(last, key=last.get), "fr")      # the table's first row
    expect(page.locator(".drift-features-table")).to_contain_text(top, timeout=30_000)
    expect(page.locator(".analyst-sections button", has_text="Dérive")).to_have_class(re.compile("active"))
    assert page.locator(".audit-panel").count() == 0 and page.locator(".fairness-table").count() == 0
