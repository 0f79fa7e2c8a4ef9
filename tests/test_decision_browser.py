"""The decision file in headless Chromium: an advisor decides on an offer of a refused client and downloads the
decision file with one click (the fixtures and helpers of tests/test_browser.py)."""

from __future__ import annotations

import io
import re

import pytest
from playwright.sync_api import expect
from pypdf import PdfReader

from scoring.contracts import ClientQuery
from test_browser import advisor_login, dashboard, expect_client, log_in, secured  # noqa: F401 (fixtures)
from scoring.labels import flag_text
from views.i18n import fmt_percent, labels_for

pytestmark = pytest.mark.browser

JUSTIFICATION = "Apport personnel confirmé par l'agence — « dossier complet » <b>ok</b>"


def test_an_advisor_decides_on_an_offer_and_downloads_the_decision_file(dashboard, secured, service, audit):  # noqa: F811
    refused = [int(r["client_id"]) for r in service.search(ClientQuery(split="new", decision="refused",
                                                                        limit=80)).items]
    client_id = next(c for c in reversed(refused) if service.offers(c).offers)
    offer = service.offers(client_id).offers[0]
    flags = service.trust_flags(client_id)
    user, password = advisor_login(secured)
    log_in(dashboard, secured, client_id, user, password)
    dashboard.goto(f"{secured.url}?client={client_id}")
    expect_client(dashboard, client_id)
    if flags:   # the trust flags next to the score
        text = flag_text(flags[0], labels_for(service), "fr")
        expect(dashboard.locator(".trust-flags-pane li.trust-flag").first).to_have_text(text)

    choice = dashboard.locator(".offer-choice")
    expect(choice).to_contain_text("la demande telle que déposée")
    choice.get_by_text("1. accepté à").click()
    expect(dashboard.locator(".decision-choice")).to_contain_text("Suivre le modèle (Accordé)")
    dashboard.locator(".justification-input textarea").fill(JUSTIFICATION)
    dashboard.locator(".justification-input textarea").press("Tab")      # the text area sends its value on change
    dashboard.locator(".record-decision button").click()
    expect(dashboard.locator(".advice .notice")).to_contain_text("Décision enregistrée")
    expect(dashboard.locator(".decisions-pane .decision-offer").last).to_contain_text("sur l'offre")
    record = service.decisions(client_id)[-1]
    assert record.offer == offer.changes and record.default_probability == offer.default_probability
    assert record.advisor == user and record.justification == JUSTIFICATION

    button = dashboard.locator(".download-decision-file button")
    expect(button).to_have_text("Télécharger le dossier (PDF)")
    with dashboard.expect_download() as download:
        button.click()
    assert download.value.suggested_filename == f"decision-{client_id}-{record.id}.pdf"
    content = open(download.value.path(), "rb").read()
    text = " ".join("\n".join(p.extract_text() for p in PdfReader(io.BytesIO(content)).pages).split())
    assert " ".join(JUSTIFICATION.split()) in text and "Offre retenue" in text
    assert fmt_percent(record.default_probability, "fr", 2).replace("\u202f", " ").replace("\xa0", " ") in \
        text.replace("\u202f", " ").replace("\xa0", " ")
    entry = next(e for e in audit.recent(20) if e["client_id"] == client_id and e["event"] == "client_opened"
                 and '"decision_file"' in (e["details"] or ""))
    assert entry["user"] == user and entry["source"] == "dashboard"

    dashboard.locator(".file-format").get_by_text("HTML").click()
    expect(dashboard.locator(".download-decision-file button")).to_have_text("Télécharger le dossier (HTML)")
    with dashboard.expect_download() as download:
        dashboard.locator(".download-decision-file button").click()
    assert download.value.suggested_filename == f"decision-{client_id}-{record.id}.html"
    page = open(download.value.path(), encoding="utf-8").read()
    assert "&lt;b&gt;ok&lt;/b&gt;" in page and "<b>ok</b>" not in page

    # a second decision, on the application as filed: its file is offered first, the earlier one stays a choice away
    before = len(service.decisions(client_id))
    dashboard.locator(".record-decision button").click()
    expect(dashboard.locator(".decisions-pane li.decision-record")).to_have_count(before + 1)
    latest = service.decisions(client_id)[-1]
    assert latest.offer is None and latest.decision == latest.model_decision == "refused"
    select = dashboard.locator(".file-choice select")
    expect(select).to_have_value(re.compile(f"^n° {latest.id} du "))      # newest first
    select.select_option(index=1)
    expect(select).to_have_value(re.compile(f"^n° {record.id} du "))
    dashboard.locator(".file-format").get_by_text("PDF").click()   # sent after the choice: seen once it is seen
    expect(button).to_have_text("Télécharger le dossier (PDF)")
    with dashboard.expect_download() as download:
        button.click()
    assert download.value.suggested_filename == f"decision-{client_id}-{record.id}.pdf"
