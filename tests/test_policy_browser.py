"""The threshold policy panel in headless Chromium: an analyst logs in, sees the curves, asks for a target
acceptance rate, is refused an adoption without a reason, adopts with one and sees the history line.

Needs Debian's /usr/bin/chromium (skipped without it, failed if REQUIRE_BROWSER=1)."""

from __future__ import annotations

import shutil

import pytest
from playwright.sync_api import expect

from dashboard_server import DashboardServer, role_logins
from scoring.config import Workdir
from views.i18n import fmt_number
from page_checks import log_in, open_section, watched

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def secured(workdir, audit, tmp_path_factory):
    """The dashboard over a copy of the test portfolio (an adoption changes it)."""
    from scoring.service import LocalScoringService

    copy = Workdir(tmp_path_factory.mktemp("policy-browser") / "wd")
    shutil.copytree(workdir.root, copy.root)
    service = LocalScoringService(copy)
    secrets = tmp_path_factory.mktemp("secrets")
    logins = role_logins(secrets)
    try:
        with DashboardServer(service, audit, secrets=secrets) as running:
            running.logins, running.service = logins, service
            yield running
    finally:
        service.store.close()


@pytest.fixture
def page(page, request):
    with watched(page, request):
        yield page


def test_an_analyst_sets_a_target_acceptance_and_adopts_its_threshold_with_a_reason(page, secured):
    user = log_in(page, secured, "analyst")
    open_section(page, "Politique de seuil")

    panel = page.locator(".policy-panel")
    served = secured.service.threshold_simulation()
    expect(panel.locator(".policy-comparison-pane")).to_contain_text(
        f"Seuil servi ({fmt_number(served.current_threshold, 'fr', 4)})", timeout=30_000)
    expect(panel.locator(".policy-rates-chart canvas").first).to_be_visible()
    open_section(page, "Équité", bar=".policy-charts")                     # one chart at a time
    expect(panel.locator(".policy-fairness-chart canvas").first).to_be_visible()
    expect(panel.locator(".policy-rates-chart")).to_be_hidden()
    expect(panel.locator(".policy-history-empty")).to_contain_text("Aucun seuil adopté")

    panel.locator(".policy-mode").get_by_text("un taux d'acceptation visé").click()
    target = panel.locator(".policy-target input")
    target.fill("0.7")
    target.press("Enter")
    proposed = secured.service.threshold_simulation(target_acceptance=0.7).proposed_threshold
    expect(panel.locator(".policy-comparison-pane")).to_contain_text(
        f"Seuil proposé ({fmt_number(proposed, 'fr', 4)})")

    adopt = panel.locator(".policy-adopt button")
    adopt.click()
    expect(panel.locator(".notice")).to_contain_text("Indiquez un motif pour changer le seuil de décision")
    assert not secured.service.workdir.policy_path.exists()

    panel.locator(".policy-reason textarea").fill("Plan 2027 : 70 % d'acceptation")
    adopt.click()
    expect(panel.locator(".notice")).to_contain_text(f"Seuil {fmt_number(proposed, 'fr', 4)} adopté")
    history = panel.locator(".policy-history")
    expect(history).to_contain_text("Plan 2027 : 70 % d'acceptation")
    expect(history).to_contain_text(user)
    [change] = secured.service.threshold_history()
    assert (change.threshold, change.user, change.target_acceptance) == (proposed, user, 0.7)
