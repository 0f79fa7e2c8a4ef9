"""The analysts' governance panels without a browser: the state loads fairness, monitoring and performance from the
service after the page shows, a click on a monitored feature shows its two distributions, a segment its figures;
the views show them (plain-text tables, escaped HTML, HoloViews charts with the PSI alert line)."""

from __future__ import annotations

import html
from types import SimpleNamespace

import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import Plot

from scoring.audit import AuditLog
from scoring.backends import session_service
from scoring.client import HttpScoringService
from scoring.contracts import FairnessAlert, FairnessFigures, GroupFigures
from views.app import DashboardApp
from views.governance import (PSI_ALERT, PSI_COLORS, PSI_MODERATE, bin_names, confusion_html, drift_frame, fairness_frame,
                              fairness_summary_html, features_frame)
from views.i18n import fmt_number, labels_for, t
from views.state import DashboardState, GovernanceState

TOKEN = "governance-state-token"
API_TOKENS = (f"{TOKEN} advisor+analyst forward-user",)


@pytest.fixture
def log(tmp_path):
    return AuditLog(tmp_path / "audit.sqlite")


@pytest.fixture
def state(service, log):
    return DashboardState(session_service(service, "analyst", log), role="analyst")


def test_an_analysts_session_loads_fairness_months_and_performance(state, service):
    gov = state.governance
    assert not gov.loading and gov.notice is None
    assert gov.fairness == service.fairness() and gov.months == service.monitoring()
    assert gov.performance == service.performance() and gov.figures == service.performance()[0]
    last = service.monitoring()[-1].feature_psi
    assert gov.feature == max(last, key=last.get)             # the feature drifting most last month, shown first
    assert gov.drift == service.feature_drift(gov.feature)


def test_advisors_have_no_governance_panels(service, log):
    assert DashboardState(session_service(service, "advisor", log), role="advisor").governance is None


def test_the_figures_load_after_the_page_shows(service):
    waiting = []
    gov = GovernanceState(service, schedule=waiting.append)
    assert gov.loading and gov.months == [] and gov.drift is None
    waiting.pop()()
    assert not gov.loading and gov.months and gov.drift is not None


def test_a_click_on_a_feature_and_a_month_show_that_features_distributions(state, service):
    gov = state.governance
    other = gov.features[-1]
    assert gov.select_feature(other) and gov.drift == service.feature_drift(other)
    month = gov.months[-2].month
    gov.month = month
    assert gov.drift == service.feature_drift(other, month) and gov.drift.month == month
    assert not gov.select_feature("<script>") and gov.feature == other


def test_a_segment_and_group_show_their_performance(state, service):
    gov = state.governance
    gov.segment = "age"
    ages = [f.group for f in service.performance() if f.segment == "age"]
    assert gov.param.group.objects == ages and gov.group == ages[0]
    gov.group = ages[1]
    assert gov.figures.segment == "age" and gov.figures.group == ages[1]
    gov.segment = "all"
    assert gov.figures == service.performance()[0]


def test_an_unreachable_service_shows_a_notice_not_a_traceback():
    with HttpScoringService("http://127.0.0.1:9", "nobody", timeout=1.0) as down:
        gov = GovernanceState(down)
    assert not gov.loading and gov.notice.key == "unavailable" and gov.months == [] and gov.drift is None


def test_over_the_api_the_analyst_sees_the_same_figures(api_server, service):
    with HttpScoringService(api_server.url, TOKEN) as http:
        gov = DashboardState(session_service(http, "ana", role="analyst"), role="analyst").governance
        assert gov.fairness == service.fairness() and gov.months == service.monitoring()
        assert gov.performance == service.performance()
        feature = gov.features[1]
        gov.select_feature(feature)
        assert gov.drift == service.feature_drift(feature)


# ------------------------------------------------------------------------------------------ views
def figure_of(pane) -> Plot:
    return next(iter(pane.get_root(Document()).select({"type": Plot})))


@pytest.fixture
def app(service, log):
    """An analyst's page with every section opened once (each is built when first chosen)."""
    app = DashboardApp(session_service(service, "analyst", log), role="analyst")
    pn.panel(app).get_root(Document())
    for key in app.sections.keys:
        app.sections.active = key
    return app


def test_the_fairness_table_has_one_row_per_group_and_alerts_are_highlighted(app, service):
    rows = sum(len(f.groups) for f in service.fairness())
    assert len(app.governance.fairness_table.value) == rows
    figures = [FairnessFigures("gender", "new applications", [GroupFigures("<b>F</b>", 40, 0.4, 0.1)], 0.5, None,
                               [FairnessAlert("disparate_impact_ratio", 0.5, 0.8)], ["<img src=x onerror=alert(1)>"]),
               FairnessFigures("age", "labelled (out of fold)", [GroupFigures("25-35", 40, 0.9, 0.1, 0.1, 0.1, 0.1)],
                               0.95, 0.02)]
    html_fr = fairness_summary_html(figures, "fr")
    assert 'class="fairness-card alert" data-attribute="gender"' in html_fr
    assert "ALERTE Ratio d&#x27;impact disparate : 0,50" in html_fr
    assert "<img" not in html_fr and "&lt;img" in html_fr and "Dans les limites" in html_fr
    frame = fairness_frame(figures, "en")
    assert list(frame["Group"]) == ["<b>F</b>", "25-35"] and list(frame["Population"])[0] == "New applications"


def test_the_drift_heat_map_has_the_scores_row_on_top_and_the_distribution_two_series(app, service):
    view, months = app.governance, app.state.governance.months
    heatmap = figure_of(view.psi_heatmap)
    rows = list(heatmap.y_range.factors)
    assert rows[-1] == "Score" and len(rows) == 1 + len(months[-1].feature_psi)     # the top row is the score's
    assert list(heatmap.x_range.factors) == [m.month for m in months]
    image = next(r for r in heatmap.renderers if hasattr(r, "glyph"))                      # one image of cells
    cells = image.data_source.data["image"][0]                                             # rows bottom first
    assert list(cells[-1]) == pytest.approx([m.score_psi for m in months])                 # the score's row
    mapper = image.glyph.color_mapper
    colour = lambda psi: mapper.palette[int((psi - mapper.low) / (mapper.high - mapper.low) * len(mapper.palette))]  # noqa: E731
    assert [colour(v).lower() for v in (0.05, PSI_MODERATE + 0.01, PSI_ALERT + 0.01)] == PSI_COLORS   # the bands
    drift = app.state.governance.drift
    frame = drift_frame(drift, "fr", labels_for(service))
    assert len(frame) == 2 * len(drift.reference) and set(frame["series"]) == {"Référence (historique)",
                                                                              "Demandes comparées"}
    assert frame["share"].sum() == pytest.approx(200)
    assert bin_names(drift, "fr", labels_for(service))[-1] == "non renseigné"


def test_clicking_a_row_of_the_features_table_shows_that_feature(app, service):
    view, gov = app.governance, app.state.governance
    names = list(features_frame(gov.months, "fr", view.labels)["Variable"])
    assert len(names) == len(gov.features)
    view._feature_clicked(SimpleNamespace(row=2))
    assert gov.feature == gov.features[2] and gov.drift.feature == gov.features[2]
    assert html.escape(names[2]) in view.drift_title.object


def test_the_confusion_matrix_shows_the_errors_and_their_cost_and_english_relabels(app, service):
    everyone = service.performance()[0]
    text = confusion_html(everyone, "fr")
    assert f'<td class="error">{fmt_number(everyone.missed_defaults, "fr")}</td>' in text
    assert "Coût d&#x27;un défaut accepté : 10,0" in text
    app.state.language = "en"
    assert "Good clients refused" in app.governance.fairness_table.value.columns
    assert "Cost of a missed default: 10.0" in confusion_html(everyone, "en")


def test_the_governance_figures_are_no_personal_data_and_write_no_audit_entry(service, log):
    """Like fairness and monitoring: aggregates of the portfolio, read through the audit policy without an entry."""
    audited = session_service(service, "analyst", log)
    audited.fairness(), audited.monitoring(), audited.performance(), audited.feature_drift("EXT_SOURCE_3")
    assert log.recent(10) == []


def test_the_month_choice_names_every_new_application_and_picks_a_month(app, service):
    view, gov = app.governance, app.state.governance
    assert view.month_select.value == "" and list(view.month_select.options)[0] == "Toutes les nouvelles demandes"
    month = gov.months[-1].month
    view.month_select.value = month
    assert gov.month == month and gov.drift.month == month
    view.month_select.value = ""
    assert gov.month is None and gov.drift.month is None


def test_the_figures_arriving_after_the_page_shows_and_a_language_switch_update_the_charts_drawn(service, log):
    """As served: the page is drawn before the figures arrive (next tick). The charts drawn empty then get the
    months, and a language switch relabels them, in the same Bokeh figures (none replaced while the browser may
    still draw it); a feature's distributions and the table of months appear with the figures."""
    later = []
    state = DashboardState(session_service(service, "analyst", log), role="analyst", schedule=later.append)
    view = DashboardApp(state=state).governance
    document = Document()
    pn.Column(view.panel("drift"), view.panel("outcomes")).server_doc(document)
    plots = {p.title.text: p for p in document.select({"type": Plot})}
    assert len(plots) == 2 and not view.months_area.objects and not view.drift_area.objects
    later.pop()()                                     # the figures arrive
    months = [m.month for m in state.governance.months]
    heatmap = plots[t("psi_heatmap", "fr")]
    assert list(heatmap.x_range.factors) == months and list(heatmap.y_range.factors)[-1] == "Score"
    rates = plots["Défauts, erreurs et AUC par mois"]
    assert [i.label.value for i in rates.legend[0].items][0] == "Défaut observé"
    assert view.months_table in view.months_area.objects and view.drift_chart.object is not None
    state.language = "en"
    after = {p.title.text: p for p in document.select({"type": Plot}) if p.title.text}
    assert after[t("psi_heatmap", "en")] is heatmap
    assert after["Defaults, errors and AUC by month"] is rates
    assert [i.label.value for i in rates.legend[0].items][0] == "Observed default rate"
    assert list(heatmap.x_range.factors) == months
