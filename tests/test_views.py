"""Views built on the real service and rendered into a Bokeh document: what they show for a given state."""

from __future__ import annotations

import re
from html import escape as html_escape

import pandas as pd
import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import Plot, Span

from scoring.build import build
from scoring.config import Workdir
from scoring.contracts import (ClientFile, ClientQuery, Contribution, DebtCapacity, DriftRow, Explanation,
                               FeatureDistribution, Histogram, RatioComparison, Score)
from scoring.service import LocalScoringService
from views.app import DashboardApp
from views.charts import ACCEPTED, REFUSED
from views.client import PROFILE_ROWS, client_card_html, table_frame
from views.common import notice_html
from views.i18n import NBSP, THIN, card_labels, fmt_money, fmt_number, fmt_percent, fmt_value, labels_for, t
from views.portfolio import drift_frame
from views.prediction import axis_title, comparison_html, debt_html, display_scale, waterfall_table
from views.state import Notice

LOANS_SCHEMA = "examples/loans/loans.toml"


def render(app: DashboardApp) -> Document:
    doc = Document()
    pn.panel(app).get_root(doc)
    return doc


@pytest.fixture
def app(service):
    app = DashboardApp(service)
    render(app)
    return app


@pytest.fixture(scope="module")
def refused_id(service):
    return int(service.search(ClientQuery(decision="refused", limit=1)).items[0]["client_id"])


@pytest.fixture(scope="module")
def loans(tmp_path_factory):
    """A dataset with fewer roles: no goods price, contract type, family, children or employment."""
    workdir = Workdir(tmp_path_factory.mktemp("loans"))
    build(workdir, schema=LOANS_SCHEMA, quiet=True, nthread=2)
    return LocalScoringService(workdir)


def figure_of(pane) -> Plot:
    """The Bokeh figure a HoloViews pane draws (rendered into a document of its own)."""
    return next(iter(pane.get_root(Document()).select({"type": Plot})))


def client_lines(figure: Plot) -> list[Span]:
    return [r for r in figure.center if isinstance(r, Span) and r.line_dash == [6]]


def text_of(html: str) -> str:
    return re.sub(r"<[^>]+>", " ", html)


# ---------------------------------------------------------------------------------------------- formats
def test_numbers_follow_the_french_and_english_conventions():
    assert fmt_money(12345.67, "fr", decimals=2) == f"12{THIN}345,67"          # no currency unless the data states one
    assert fmt_money(12345.67, "fr", "EUR", 2) == f"12{THIN}345,67{NBSP}€"
    assert fmt_money(12345.67, "en", "EUR", 2) == "€12,345.67"
    assert fmt_percent(0.1234, "fr") == f"12,3{NBSP}%" and fmt_percent(0.1234, "en") == "12.3%"
    assert fmt_number(1234567, "fr") == f"1{THIN}234{THIN}567" and fmt_number(-0.0001, "fr", 2) == "0,00"
    assert fmt_value(None, "fr") == "non renseigné" and fmt_value(0.68764, "en") == "0.688"
    assert fmt_money(None) == "—"


# ---------------------------------------------------------------------------------------------- side bar
def test_client_card_shows_decision_probability_profile_and_application(app, service, refused_id):
    app.state.client.client_id = refused_id
    file = service.client(refused_id)
    labels = labels_for(service)
    html = app.card.html.object
    assert 'class="decision-badge refused"' in html and ">Refusé<" in html
    assert fmt_percent(file.score.default_probability, "fr") in html
    assert f"N° de dossier <b class=\"client-id\">{refused_id}</b>" in html
    assert labels.format_value("age_years", file.profile["age_years"], "fr") in html
    assert f"<td>{labels.format_value('credit_amount', file.application['credit_amount'], 'fr')}</td>" in html
    assert '<svg class="gauge"' in html
    missing = [labels.label(name, "fr") for name, _ in PROFILE_ROWS if name not in service.roles]
    if missing:
        assert t("missing_roles", "fr", names=", ".join(missing)).replace("'", "&#x27;") in html


def test_switching_to_english_relabels_the_card_and_reformats_numbers(app, service, refused_id):
    app.state.client.client_id = refused_id
    app.state.language = "en"
    html = app.card.html.object
    p = service.client(refused_id).score.default_probability
    assert ">Refused<" in html and fmt_percent(p, "en") in html and "Application ID" in html
    assert "N° de dossier" not in html


def test_no_client_shows_an_invitation_instead_of_a_card(app):
    assert "placeholder" in app.card.html.object
    assert t("no_client", "fr") in app.card.html.object


def test_typing_an_id_narrows_the_table_and_enter_opens_the_file(app, service):
    picker = app.picker
    second = int(app.state.search.rows["client_id"].iloc[1])
    picker.id_input.value_input = str(second)[:-1]
    assert all(str(i).startswith(str(second)[:-1]) for i in app.state.search.rows["client_id"])
    picker.id_input.value = str(second)
    assert app.state.client.file.client_id == second
    header = picker.table.value.columns[0]
    assert header == "N°" and picker.table.value[header].iloc[0] == str(app.state.search.rows["client_id"].iloc[0])


def test_table_shows_one_formatted_page_and_the_pager_follows(app, service):
    picker = app.picker
    frame = picker.table.value
    assert len(frame) == app.state.search.page_size
    assert list(frame.columns[:3]) == ["N°", "Décision", "Proba."]
    assert set(frame["Décision"]) <= {"Accordé", "Refusé"}
    assert picker.previous.disabled and not picker.next.disabled
    total = fmt_number(service.portfolio().n_applications, "fr")
    assert f"Page 1 / {app.state.search.pages} · {total} dossiers" in picker.pager.object
    picker.next.clicks += 1
    assert app.state.search.page == 2 and not picker.previous.disabled
    assert "Page 2 /" in picker.pager.object


def test_each_section_shows_panels_loading_indicator_while_a_client_opens(app, refused_id):
    panes = [app.titles[key] for key in ("client_file", "explanation", "comparison", "debt_capacity")]
    seen = []
    app.state.client.param.watch(lambda e: seen.append([pane.loading for pane in panes]), "file")
    app.state.client.param.watch(lambda e: seen.append(e.new), "loading")
    app.picker.id_input.value = str(refused_id)
    assert seen == [True, [True] * 4, False]                # the file arrives while the sections show loading
    assert not any(pane.loading for pane in panes) and all("pn-loading" not in p.css_classes for p in panes)
    assert app.state.client.file.client_id == refused_id
    assert not app.titles["advice"].loading and app.state.advice.reasons.client_id == refused_id   # filled in after


XSS = '<img src=x onerror="alert(1)">'


def test_what_a_user_types_is_shown_as_text_never_as_html(app):
    app.picker.id_input.value = XSS
    notice = app.state.client.notice
    assert notice.key == "invalid_id"
    [pane] = [p for p in pn.panel(app).select(pn.pane.HTML) if "notice" in p.css_classes and p.visible]
    assert "<img" not in pane.object and "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in pane.object
    service_message = Notice("unavailable", {"detail": "http://api/<b>down</b> *now* [x](javascript:alert(1))"}, "danger")
    shown = notice_html(service_message, "en")
    assert "<b>" not in shown and "&lt;b&gt;down&lt;/b&gt; *now* [x](javascript:alert(1))" in shown


def test_text_from_the_client_files_is_escaped_in_the_card():
    file = ClientFile(client_id=7, split="new", known_outcome=None, score=Score(7, 0.3, "accepted", 0.5, "v1"),
                      profile={"family": XSS}, application={"contract_type": "<b>Cash</b>"})
    html = client_card_html(file, frozenset({"family", "contract_type"}), "fr")
    assert "<img" not in html and "&lt;img src=x" in html and "&lt;b&gt;Cash&lt;/b&gt;" in html


# ---------------------------------------------------------------------------------------------- centre
def test_waterfall_chains_from_the_average_application_to_the_client(app, service, refused_id):
    figure = figure_of(app.explanation.plot)
    app.state.client.client_id = refused_id
    frame = pd.DataFrame(figure.renderers[0].data_source.data)
    labels = frame["feature"].tolist()
    assert list(figure.y_range.factors) == labels
    assert labels[0] == "Dossier moyen" and labels[-1] == "Ce client" and labels[1].startswith("Autres variables")
    steps = frame.iloc[1:-1]
    assert len(steps) == 11                                    # 10 strongest + the others
    assert (steps["start"].to_numpy()[1:] == steps["end"].to_numpy()[:-1]).all()
    p = service.client(refused_id).score.default_probability
    assert steps["end"].iloc[-1] == pytest.approx(100 * p, abs=0.05)
    strongest = service.explain(refused_id, top=1).contributions[0]
    value = labels_for(service).format_value(strongest.feature, strongest.value, "fr")
    assert labels[-2] == f"{strongest.label_fr} = {value}"
    assert all(color == (REFUSED if c > 0 else ACCEPTED) for c, color in zip(steps["contribution"], steps["color"]))
    threshold = service.model_card()["threshold"]
    assert app.explanation.threshold.location == pytest.approx(100 * threshold)


def test_comparison_marks_the_client_and_states_their_percentile(app, service, refused_id):
    client = app.state.client
    figure = figure_of(app.comparison.plot)
    client.client_id = refused_id
    dist = service.distribution(client.feature, refused_id)
    labels = labels_for(service)
    [line] = client_lines(figure)
    assert line.visible and line.location == pytest.approx(dist.client_value * display_scale(labels, dist.feature))
    assert f'<b class="rank">{int(round(dist.client_percentile))}</b>' in app.comparison.text.object

    other = next(f for f in client.param.feature.objects[1:]
                 if f != client.feature and not service.distribution(f).histogram.categories)
    client.feature = other
    dist = service.distribution(other, refused_id)
    assert figure.xaxis[0].axis_label == axis_title(labels, other, "fr")
    assert axis_title(labels, other, "fr").startswith(dist.label_fr)
    assert client_lines(figure)[0].location == pytest.approx(dist.client_value * display_scale(labels, other))
    assert f'data-feature="{other}"' in app.comparison.text.object
    app.state.language = "en"
    assert figure.xaxis[0].axis_label == axis_title(labels, other, "en")
    assert figure.legend[0].items[0].label.value == "Repaid"


def test_debt_capacity_marks_the_client_against_population_and_accepted_means(app, service, refused_id):
    figures = {name: figure_of(pane) for name, pane in app.debt.plots.items()}
    app.state.client.client_id = refused_id
    debt = service.debt_capacity(refused_id)
    text = app.debt.text.object
    for ratio in debt.ratios:
        assert app.debt.markers[ratio.name].location == pytest.approx(ratio.client)
        mean = fmt_percent(ratio.population_mean, "fr") if ratio.name == "debt_ratio" else \
            fmt_number(ratio.population_mean, "fr", 2)
        assert f"moyenne : {mean}" in text
    for ratio in debt.ratios:
        [line] = client_lines(figures[ratio.name])
        assert line.visible and line.location == pytest.approx(ratio.client)


def test_portfolio_bar_shows_the_key_figures_and_the_top_15(app, service):
    summary = service.portfolio()
    html = text_of(app.portfolio.kpis.object)
    assert fmt_number(summary.n_applications, "fr") in html
    assert fmt_percent(summary.acceptance_rate, "fr") in html and fmt_percent(summary.error_rate, "fr") in html
    assert t("score_psi", "fr", psi=fmt_number(summary.score_psi, "fr", 3)) in html
    bars = app.portfolio.importance.object.last
    assert list(bars.dframe()["feature"])[::-1] == [f.label_fr for f in service.global_importance(15)]
    assert len(app.portfolio.drift.value) == len(service.drift())
    app.state.language = "en"
    bars = app.portfolio.importance.object.last
    assert list(bars.dframe()["feature"])[::-1] == [f.label for f in service.global_importance(15)]
    assert "Applications" in app.portfolio.kpis.object


# ---------------------------------------------------------------------------------------------- fewer roles
def test_a_dataset_without_some_roles_hides_them_with_a_note(loans):
    assert not {"goods_price", "contract_type", "family"} & loans.roles
    app = DashboardApp(loans)
    render(app)
    first = int(loans.search(ClientQuery(limit=1)).items[0]["client_id"])
    app.state.client.client_id = first
    html = app.card.html.object
    labels = labels_for(loans)
    application = re.search(r'<table class="facts application">(.*?)</table>', html).group(1)
    profile = re.search(r'<table class="facts profile">(.*?)</table>', html).group(1)
    assert labels.label("credit_amount", "fr") in application and labels.label("term_months", "fr") in application
    assert labels.label("goods_price", "fr") not in application and labels.label("contract_type", "fr") not in application
    assert labels.label("family", "fr") not in profile and labels.label("income", "fr") in profile
    names = f'{labels.label("contract_type", "fr")}, {labels.label("goods_price", "fr")}'
    assert t("missing_roles", "fr", names=names) in html
    filter_names = [w.name for w in app.picker._filters() if hasattr(w, "name")]
    assert labels.label("contract_type", "fr") not in filter_names
    assert "Type de contrat" not in app.picker.table.value.columns


def test_a_categorical_top_feature_is_compared_by_category(loans):
    app = DashboardApp(loans)
    render(app)
    client = app.state.client
    categorical = next(f.feature for f in client.top_features if loans.distribution(f.feature).histogram.categories)
    client.feature = categorical
    first = int(loans.search(ClientQuery(limit=1)).items[0]["client_id"])
    client.client_id = first
    dist = loans.distribution(categorical, first)
    categories = dist.histogram.categories
    assert app.comparison.marker.location == categories.index(dist.client_value) + 0.5
    figure = figure_of(app.comparison.plot)
    labels = labels_for(loans)
    assert list(figure.xaxis[0].major_label_overrides.values()) == [
        labels.category_label(categorical, c, "fr") for c in categories]
    assert client_lines(figure)[0].location == categories.index(dist.client_value) + 0.5


# ---------------------------------------------------------------------------------------------- one label dictionary
def test_home_credit_amounts_carry_no_currency_on_any_screen(app, service, refused_id):
    labels = labels_for(service)
    assert labels.currency is None and labels_for(service) is labels         # read from the card once
    waterfall = figure_of(app.explanation.plot)
    app.state.client.client_id = refused_id
    shown = [app.card.html.object, app.debt.text.object, app.comparison.text.object, app.portfolio.kpis.object,
             " ".join(app.picker.table.value.astype(str).to_numpy().ravel()),
             " ".join(waterfall.renderers[0].data_source.data["feature"])]
    assert not [text for text in shown if "€" in text or "$" in text]
    income = service.client(refused_id).profile["income"]
    assert f"<td>{fmt_number(income, 'fr')} / mois</td>" in app.card.html.object   # Home Credit's income is monthly


def test_the_profile_shows_the_clients_existing_credits(app, service, refused_id):
    """No more "Absent de ce jeu de données : charges de crédit existantes": the bureau's debts are shown."""
    app.state.client.client_id = refused_id
    file = service.client(refused_id)
    card = app.card.html.object
    assert "<h4>Crédits existants</h4>" in card and "Absent de ce jeu de données" not in card
    assert (f"<th>Encours des crédits existants</th><td>{fmt_number(file.debts['outstanding_debt'], 'fr')}</td>"
            in card)
    assert (f"<th>Mensualités des crédits existants</th><td>"
            f"{fmt_number(file.debts['monthly_debt_service'], 'fr')} / mois</td>" in card)
    # the debt capacity: the effort rate against the cap, from the service's figures
    debt = service.debt_capacity(refused_id)
    text = app.debt.text.object
    assert f'data-effort="{debt.effort_rate:.6f}"' in text and "(plafond 35,0\u00a0%)" in text
    app.state.language = "en"
    assert "Existing credits" in app.card.html.object and "Effort rate:" in app.debt.text.object
    app.state.language = "fr"


def test_the_waterfall_reads_features_as_the_dictionary_says():
    explanation = Explanation(7, -2.0, -1.0, (
        Contribution("DAYS_ID_PUBLISH", "", "", -4465.0, 0.4),
        Contribution("NAME_CONTRACT_TYPE", "", "", "Cash loans", 0.3),
        Contribution("EXT_SOURCE_1", "", "", None, 0.2),
        Contribution("AMT_CREDIT", "", "", 450000.0, 0.1)))
    fr = waterfall_table(explanation, 4, "fr")["feature"][1:-1][::-1]
    assert fr == [f"Ancienneté de la pièce d'identité = 12,2{NBSP}ans", "Type de contrat = Prêt personnel",
                  "Score externe 1 = non renseigné", f"Montant du crédit = 450{THIN}000"]
    en = waterfall_table(explanation, 4, "en")["feature"][1:-1][::-1]
    assert en == [f"Time since the identity document was changed = 12.2{NBSP}years", "Contract type = Cash loan",
                  "External score 1 = not given", "Credit amount = 450,000"]


def test_the_client_card_translates_categories_and_words_missing_values():
    file = ClientFile(client_id=7, split="new", known_outcome=None, score=Score(7, 0.3, "accepted", 0.5, "v1"),
                      profile={"family": "Married", "income": 120000.0, "age_years": None},
                      application={"contract_type": "Revolving loans", "term_months": 36.0})
    roles = frozenset({"family", "income", "age_years", "contract_type", "term_months"})
    fr = client_card_html(file, roles, "fr")
    assert "<td>Marié(e)</td>" in fr and "<td>Crédit renouvelable</td>" in fr and f"<td>36{NBSP}mois</td>" in fr
    assert f"<td>120{THIN}000 / mois</td>" in fr and '<span class="note">non renseigné</span>' in fr
    en = client_card_html(file, roles, "en")
    assert "<td>Married</td>" in en and "<td>Revolving loan</td>" in en and "not given" in en


def test_a_days_feature_is_compared_in_positive_years():
    labels = card_labels({})
    assert display_scale(labels, "DAYS_BIRTH") == pytest.approx(-1 / 365.25)
    dist = FeatureDistribution("DAYS_ID_PUBLISH", "", "", "numeric", Histogram([-7305.0, -3652.5, 0.0], [], {}),
                               7, -4465.0, 25.0)
    text = comparison_html(dist, "fr", labels)
    assert f"<b>12,2{NBSP}ans</b>" in text and "ont une durée plus longue" in text
    assert axis_title(labels, "DAYS_ID_PUBLISH", "fr") == "Ancienneté de la pièce d'identité (ans)"


def test_a_datasets_labels_and_currency_come_from_its_model_card(loans):
    card = loans.model_card()
    schema = card.get("schema") or loans.card.spec["schema"]       # the card's dataset schema (labels, currency)
    labels = card_labels({**card, "schema": schema})
    assert labels.currency == "EUR"
    assert labels.format_value("loan_amount", 17900, "fr") == f"17{THIN}900{NBSP}€"
    assert labels.format_value("loan_amount", 17900, "en") == "€17,900"
    assert labels.category_label("home_ownership", "RENT", "fr") == "Locataire"
    assert labels.label("income", "fr") == "Revenu mensuel"     # a business column keeps its label
    # without a schema, a feature keeps the label the model was built with
    bare = card_labels({"features": card["features"]})
    assert bare.label("loan_amount", "en") == "Loan amount" and bare.currency is None


# ---------------------------------------------------------------------------------------------- nothing injected
HOSTILE = '<img src=x onerror="window.__xss=1">'


def hostile_labels():
    return card_labels({"schema": {"currency": "<b>", "labels": {
        "purpose": {"fr": HOSTILE, "en": HOSTILE, "kind": "category", "values": {"car": HOSTILE}},
        "debt_ratio": {"fr": HOSTILE, "en": HOSTILE}, "decision": {"fr": HOSTILE, "en": HOSTILE}}}})


def test_labels_values_and_service_text_are_escaped_in_every_html_pane():
    labels = hostile_labels()
    file = ClientFile(client_id=7, split="new", known_outcome=None, score=Score(7, 0.3, HOSTILE, 0.5, "v1"),
                      profile={"family": HOSTILE, "income": 1000.0}, application={"contract_type": HOSTILE})
    dist = FeatureDistribution(HOSTILE, HOSTILE, HOSTILE, "categorical", Histogram([], [HOSTILE], {}), 7, HOSTILE)
    car = FeatureDistribution("purpose", "", "", "categorical", Histogram([], ["car"], {}), 7, "car", 10.0)
    ratio = RatioComparison("debt_ratio", HOSTILE, HOSTILE, 0.2, 0.1, 0.1, Histogram([0, 1], [], {}))
    pages = [client_card_html(file, frozenset({"family", "income", "contract_type"}), "fr", labels),
             comparison_html(dist, "fr", labels), comparison_html(car, "fr", labels),
             debt_html(DebtCapacity(7, [ratio]), ["debt_ratio"], "fr", labels)]
    for page in pages:
        assert "<img" not in page and "&lt;img src=x onerror=&quot;window.__xss=1&quot;&gt;" in page
    assert "<b>" not in pages[0].replace("<b class=", "") and "&lt;B&gt;" in pages[0]   # the currency too


def test_tables_get_plain_text_and_an_unknown_status_or_decision_shows_as_sent():
    labels = hostile_labels()
    drift = drift_frame([DriftRow("purpose", "", "", 0.3, HOSTILE)], "fr", labels)
    assert drift.iloc[0].tolist() == [HOSTILE, "0,300", HOSTILE]        # text for Tabulator's string formatter
    rows = pd.DataFrame({"client_id": [7], "decision": [HOSTILE], "default_probability": [0.3]})
    frame = table_frame(rows, frozenset(), "fr", labels)
    assert frame.iloc[0].tolist() == ["7", HOSTILE, f"30,0{NBSP}%"]
    assert list(frame.columns) == ["N°", "Décision", "Proba."]       # Tabulator shows a title as HTML: ours only


# ---------------------------------------------------------------------------------------------- the advisor's answer
def test_the_advice_shows_reasons_offers_peers_and_the_decision_form(app, service, refused_id):
    app.state.client.client_id = refused_id
    advice = app.advice
    reasons = service.reasons(refused_id, "fr")
    for reason in reasons.reasons:
        assert html_escape(reason.text) in advice.reasons.object
    offers = service.offers(refused_id)
    labels = labels_for(app.state.service)
    if offers.offers:
        first = offers.offers[0]
        assert fmt_money(first.credit_amount, "fr", labels.currency) in advice.offers.object
        assert fmt_percent(first.default_probability, "fr") in advice.offers.object
    else:
        assert "offers-message" in advice.offers.object
    peers = service.peers(refused_id, 10)
    assert fmt_percent(peers.default_rate, "fr") in advice.peers.object
    assert list(advice.choice.options.values()) == ["follow", "override"]
    assert "Refusé" in list(advice.choice.options)[0]
    app.state.language = "en"
    assert "Similar applicants" in advice.titles["peers"].object
    assert all(html_escape(r.text) in advice.reasons.object for r in service.reasons(refused_id, "en").reasons)


def test_the_review_badge_shows_next_to_the_decision_in_the_review_band():
    score = Score(1, 0.51, "refused", 0.5, "v", review=True)
    file = ClientFile(1, "new", None, score, {}, {})
    assert 'class="review-badge"' in client_card_html(file, frozenset(), "fr") and "à étudier" in client_card_html(
        file, frozenset(), "fr")
    assert "to review" in client_card_html(file, frozenset(), "en")
    far = ClientFile(1, "new", None, Score(1, 0.9, "refused", 0.5, "v"), {}, {})
    assert "review-badge" not in client_card_html(far, frozenset(), "fr")


def test_advice_text_from_the_service_is_escaped():
    from scoring.contracts import DecisionRecord, Offers, Reason, Reasons
    from views.advice import decisions_html, offers_html, reasons_html
    from scoring.labels import current

    payload = '<img src=x onerror=alert(1)>'
    reasons = Reasons(1, "fr", "refused", 0.6, 0.5, "v", (Reason(payload, ("X",), "risk", 0.3),))
    assert payload not in reasons_html(reasons, "fr") and "&lt;img" in reasons_html(reasons, "fr")
    offers = Offers(1, 0.6, "refused", 0.5, "v", (), message=payload)
    assert payload not in offers_html(offers, "fr", current())
    record = DecisionRecord(1, 1, payload, "2026-11-29T14:00:00", "v", "production", 0.6, 0.5, "refused", "accepted",
                            payload, True, 0.02, (), None, {})
    text = decisions_html([record], "fr", current())
    assert payload not in text and "à étudier" in text


def test_analysts_have_no_advice(service):
    assert DashboardApp(service, role="analyst").advice is None


def test_the_offer_choice_the_decision_file_and_the_trust_flags_are_in_the_page(service):
    from scoring.contracts import TrustFlag
    from views.advice import flags_html

    refused = [int(r["client_id"]) for r in service.search(ClientQuery(split="new", decision="refused",
                                                                        limit=80)).items]
    client_id = next(c for c in refused if service.offers(c).offers and service.trust_flags(c))
    app = DashboardApp(service, role="advisor")
    render(app)
    app.state.client.client_id = client_id
    advice, state = app.advice, app.state.advice
    offers = service.offers(client_id).offers
    assert advice.offer.visible and len(advice.offer.options) == len(offers) + 1
    assert advice.offer.options[0] == "la demande telle que déposée"
    advice.offer.value = advice.offer.options[1]                       # the advisor picks the first offer
    assert state.chosen_offer == offers[0] and list(advice.choice.options)[0] == "Suivre le modèle (Accordé)"
    assert state.record() and state.decisions[-1].offer == offers[0].changes
    assert advice.offer.value == advice.offer.options[0]                # back to the application as filed
    assert advice.file_row.visible and advice.file_choice.value == state.decisions[-1].id
    assert advice.download.label == "Télécharger le dossier (PDF)"
    assert html_escape("sur l'offre") in advice.decisions.object
    assert app.card.flags.visible and "Points de vigilance" in app.card.flags.object
    hostile = TrustFlag("out_of_range", ("<img src=x onerror=alert(1)>",))
    assert "<img" not in flags_html([hostile], "fr", labels_for(service)) and flags_html([], "en", labels_for(service)) == ""
