"""The analysts' sections without a browser: one section shown at a time, each drawn the first time it is chosen
and kept after, the bar's labels in the page's language, a mistyped section showing the first one; the threshold
policy's charts one at a time the same way."""

from __future__ import annotations

import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import Plot, Span

from scoring.audit import AuditLog
from scoring.backends import session_service
from views.app import DashboardApp
from views.policy import PolicyView
from views.state import DashboardState


@pytest.fixture
def app(service, tmp_path):
    return DashboardApp(session_service(service, "analyst", AuditLog(tmp_path / "audit.sqlite")), role="analyst")


def plots_in(document: Document) -> int:
    return len(list(document.select({"type": Plot})))


def test_an_analysts_page_draws_the_first_section_only_and_each_other_when_chosen(app):
    sections = app.sections
    assert sections.keys == ["audit", "fairness", "drift", "outcomes", "performance", "policy", "versions"]
    document = Document()
    app.template().server_doc(document)
    top = plots_in(document)                          # the portfolio's, above the sections; the audit trail has none
    assert sections.built() == ["audit"]
    assert list(sections.bar.options) == ["Journal d'audit", "Équité", "Dérive", "Résultats", "Performance",
                                          "Politique de seuil", "Versions du modèle"]

    sections.bar.value = "drift"                      # a click on the bar
    assert sections.active == "drift" and sections.built() == ["audit", "drift"]
    drift = sections.area.objects[-1]
    assert drift.visible and not sections.area.objects[0].visible
    drawn = plots_in(document)
    assert drawn >= top + 1                           # the heat map (and a feature's distributions once loaded)

    sections.active = "audit"
    sections.active = "drift"                         # back again: the same objects, nothing drawn again
    assert sections.built() == ["audit", "drift"] and sections.area.objects[-1] is drift and drift.visible
    assert plots_in(document) == drawn

    sections.active = "performance"
    assert plots_in(document) == drawn + 3            # ROC, precision-recall, reliability
    assert [v.visible for v in sections.area.objects] == [False, False, True]


def test_a_link_naming_a_section_draws_that_section_only(app):
    app.sections.active = "drift"                     # as `?section=drift` sets it, before the page is made
    document = Document()
    app.template().server_doc(document)
    assert app.sections.built() == ["drift"] and app.sections.bar.value == "drift"


def test_the_bar_follows_the_language_and_keeps_the_section_chosen(app):
    sections = app.sections
    sections.active = "outcomes"
    app.state.language = "en"
    assert list(sections.bar.options)[:4] == ["Audit trail", "Fairness", "Drift", "Outcomes"]
    assert sections.bar.value == "outcomes" and sections.active == "outcomes"


def test_a_mistyped_section_in_a_link_shows_the_first_one(app):
    app.sections.active = "<script>alert(1)</script>"
    assert app.sections.active == "audit" and app.sections.bar.value == "audit"


def test_an_advisor_has_no_sections(service, tmp_path):
    advisor = DashboardApp(session_service(service, "advisor", AuditLog(tmp_path / "audit.sqlite")), role="advisor")
    assert advisor.sections is None and advisor.analysis() == []


def test_the_threshold_policy_draws_one_chart_at_a_time(service, tmp_path):
    state = DashboardState(session_service(service, "analyst", AuditLog(tmp_path / "audit.sqlite")), role="analyst")
    view = PolicyView(state=state)
    document = Document()
    pn.panel(view).server_doc(document)
    titles = lambda: sorted(p.title.text for p in document.select({"type": Plot}))  # noqa: E731
    assert titles() == ["Taux selon le seuil"] and view.charts.built() == ["rates"]
    view.charts.bar.value = "fairness"
    assert titles() == ["Taux selon le seuil", "Équité selon le seuil"]
    assert not view.charts.area.objects[0].visible and view.charts.area.objects[1].visible
    view.policy.param.update(mode="target", target_acceptance=0.6)     # a new simulation reaches the hidden chart too
    view.charts.active = "rates"
    marks = [span.location for span in document.select({"type": Span})]   # the proposed mark of both charts drawn
    proposed = view.policy.simulation.proposed_threshold
    assert marks.count(pytest.approx(proposed)) == 2
