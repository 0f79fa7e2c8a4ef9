"""The decision file (HTML and PDF) of a recorded decision, decisions on an offer, and the trust flags: through the
in-process service, the API (advisors only, audited) and the HTTP backend."""

from __future__ import annotations

import dataclasses
import io
import json
import sqlite3

import httpx
import numpy as np
import pytest
from pypdf import PdfReader

from scoring.client import HttpScoringService
from scoring.contracts import ClientQuery, DecisionRecord
from scoring.labels import flag_text
from scoring.decisions import DecisionLog
from scoring.errors import InvalidApplicationError, UnknownDecisionError
from scoring.labels import fmt_percent

ADVISOR, ANALYST = "file-advisor-token", "file-analyst-token"
API_TOKENS = (f"{ADVISOR} advisor forward-user", f"{ANALYST} analyst")
HOSTILE = 'Garant <script>alert("x")</script> <img src=x onerror=alert(1)> «vérifié» — ok & sûr'


def pdf_text(content: bytes) -> str:
    assert content.startswith(b"%PDF-")
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(content)).pages)


def flat(text: str) -> str:
    """The PDF's text with its line breaks and spaces (justified lines, thin spaces) folded."""
    return " ".join(text.replace("\u202f", " ").replace("\u00a0", " ").split())


@pytest.fixture(scope="module")
def refused(service):
    return [int(r["client_id"]) for r in service.search(ClientQuery(split="new", decision="refused", limit=80)).items]


@pytest.fixture(scope="module")
def override(service, refused):
    """A refused file accepted by the advisor, with a hostile justification."""
    return service.record_decision(refused[0], "accepted", HOSTILE, advisor="conseillère.dupré")


@pytest.fixture(scope="module")
def with_offer(service, refused):
    """A refused file, its first offer, and the decision taken on it."""
    for cid in refused:
        offers = service.offers(cid)
        if offers.offers:
            return cid, offers.offers[0], service.record_decision(cid, "accepted", offer=offers.offers[0].changes)
    pytest.skip("no refused new application with an offer")


def _get(api_server, token, path, **params):
    return httpx.get(f"{api_server.url}{path}", params=params, headers={"Authorization": f"Bearer {token}"},
                     timeout=30)


# ------------------------------------------------------------------------------------------------ the file
def test_the_pdf_states_probability_threshold_justification_and_advisor(service, override):
    file = service.decision_file(override.client_id, override.id, "pdf")
    assert file.media_type == "application/pdf" and file.filename == f"decision-{override.client_id}-{override.id}.pdf"
    text = flat(pdf_text(file.content))
    assert f"Probabilité de défaut {flat(fmt_percent(override.default_probability, 'fr', 2))}" in text
    assert f"Seuil de refus {flat(fmt_percent(override.threshold, 'fr', 2))}" in text
    assert flat(HOSTILE) in text                      # as typed: accents, guillemets, markup as plain text
    assert "conseillère.dupré" in text and "Accordé" in text and "Refusé" in text
    assert override.model_version in text
    for reason in override.reasons:
        assert flat(reason) in text
    english = flat(pdf_text(service.decision_file(override.client_id, override.id, "pdf", "en").content))
    assert f"Default probability {fmt_percent(override.default_probability, 'en', 2)}" in english
    assert "Refusal threshold" in english and flat(HOSTILE) in english


def test_the_html_escapes_the_justification_and_the_data(service, override):
    page = service.decision_file(override.client_id, override.id, "html").content.decode("utf-8")
    assert "<script" not in page and "<img" not in page and "onerror=alert(1)>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "«vérifié» — ok &amp; sûr" in page
    assert fmt_percent(override.default_probability, "fr", 2) in page and override.model_version in page
    assert 'lang="fr"' in page and "Dossier de décision" in page


def test_the_file_of_a_decision_on_an_offer_shows_the_offer(service, with_offer):
    cid, offer, record = with_offer
    text = flat(pdf_text(service.decision_file(cid, record.id, "pdf").content))
    assert "Offre retenue" in text and "Aucune : la demande telle que déposée" not in text
    assert "Montant du crédit (AMT_CREDIT)" in text
    page = service.decision_file(cid, record.id, "html", "en").content.decode()
    assert "Offer decided on" in page and "None: the application as filed" not in page


def test_an_unknown_or_another_client_s_decision_is_not_found(service, override, refused):
    with pytest.raises(UnknownDecisionError, match="no decision 999999"):
        service.decision_file(override.client_id, 999_999)
    with pytest.raises(UnknownDecisionError):   # a decision is read through its own client file only
        service.decision_file(refused[1], override.id)
    with pytest.raises(ValueError, match="format must be one of html, pdf"):
        service.decision_file(override.client_id, override.id, "docx")


# ------------------------------------------------------------------------------------------------ the API
def test_the_route_serves_both_formats_to_advisors_only_and_audits_it(api_server, audit, override):
    path = f"/clients/{override.client_id}/decisions/{override.id}/file"
    pdf = _get(api_server, ADVISOR, path, format="pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="decision-{override.client_id}-{override.id}.pdf"'
    assert flat(HOSTILE) in flat(pdf_text(pdf.content))
    entry = audit.recent(1)[0]
    assert (entry["event"], entry["client_id"]) == ("client_opened", override.client_id)
    assert json.loads(entry["details"]) == {"read": "decision_file", "decision_id": override.id, "format": "pdf",
                                            "lang": "fr"}
    page = _get(api_server, ADVISOR, path)
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "&lt;script&gt;" in page.text and "<script" not in page.text
    before = audit.count()
    assert _get(api_server, ANALYST, path).status_code == 403
    assert _get(api_server, ADVISOR, path, format="docx").status_code == 422
    assert audit.count() == before


def test_the_route_answers_404_for_an_unknown_decision(api_server, audit, override):
    before = audit.count()
    missing = _get(api_server, ADVISOR, f"/clients/{override.client_id}/decisions/999999/file")
    assert missing.status_code == 404 and missing.json()["decision_id"] == 999999
    assert "no decision 999999" in missing.json()["detail"]
    assert _get(api_server, ADVISOR, "/clients/1/decisions/1/file").status_code == 404   # unknown client
    assert _get(api_server, ADVISOR, f"/clients/{override.client_id}/decisions/{2**70}/file").status_code == 422
    assert audit.count() == before


def test_the_route_is_in_openapi(api_server):
    spec = httpx.get(f"{api_server.url}/openapi.json", timeout=30).json()
    operation = spec["paths"]["/clients/{client_id}/decisions/{decision_id}/file"]["get"]
    assert {"application/pdf", "text/html"} <= set(operation["responses"]["200"]["content"])
    assert {p["name"] for p in operation["parameters"]} >= {"client_id", "decision_id", "format", "lang"}


def test_the_http_backend_gives_the_same_file(api_server, service, override):
    with HttpScoringService(api_server.url, ADVISOR) as backend:
        html_file = backend.decision_file(override.client_id, override.id, "html", "en")
        assert html_file == service.decision_file(override.client_id, override.id, "html", "en")
        pdf = backend.decision_file(override.client_id, override.id, "pdf")
        assert pdf.filename.endswith(".pdf") and pdf.media_type == "application/pdf"
        assert flat(pdf_text(pdf.content)) == flat(pdf_text(service.decision_file(
            override.client_id, override.id, "pdf").content))
        with pytest.raises(UnknownDecisionError):
            backend.decision_file(override.client_id, 999_999)


# ------------------------------------------------------------------------------------------------ offers
def test_a_decision_on_an_offer_stores_its_changes_and_probability(service, with_offer):
    cid, offer, record = with_offer
    assert record.offer == offer.changes and record.default_probability == offer.default_probability
    assert service.decisions(cid)[-1] == record


def test_a_change_that_is_not_an_offer_is_refused_by_name(service, api_server, with_offer):
    cid, offer, _ = with_offer
    tampered = {k: v * 1.01 for k, v in offer.changes.items()}
    with pytest.raises(InvalidApplicationError, match="not one of the offers") as caught:
        service.record_decision(cid, "accepted", offer=tampered)
    assert caught.value.field == "offer"
    before = len(service.decisions(cid))
    answer = httpx.post(f"{api_server.url}/clients/{cid}/decisions", json={"decision": "accepted", "offer": tampered},
                        headers={"Authorization": f"Bearer {ADVISOR}"}, timeout=30)
    assert answer.status_code == 422 and answer.json()["message"].startswith("offer: not one of the offers of GET")
    accepted = int(service.search(ClientQuery(split="new", decision="accepted", limit=1)).items[0]["client_id"])
    with pytest.raises(InvalidApplicationError, match="not one of the offers"):   # an accepted file has none
        service.record_decision(accepted, "accepted", offer=offer.changes)
    with HttpScoringService(api_server.url, ADVISOR) as backend:
        with pytest.raises(InvalidApplicationError, match="not one of the offers") as caught:
            backend.record_decision(cid, "accepted", offer=tampered)
        assert caught.value.field == "offer"
        record = backend.record_decision(cid, "accepted", offer=offer.changes)
        assert record.offer == offer.changes and record.default_probability == offer.default_probability
    assert len(service.decisions(cid)) == before + 1


# ------------------------------------------------------------------------------------------------ trust flags
def test_values_beyond_the_training_range_and_many_missing_fields_are_flagged(service):
    spec = service.scorer.spec
    x = np.asarray(service.X[0], dtype=np.float64).copy()
    amount = spec.index("AMT_CREDIT")
    x[amount] = service.card.training_range["AMT_CREDIT"][1] * 10
    flags = {f.kind: f for f in service.flags_of_row(x)}
    assert flags["out_of_range"].features == ("AMT_CREDIT",)
    x[:] = np.nan
    x[amount] = 100_000.0
    missing = {f.kind: f for f in service.flags_of_row(x)}["many_missing"]
    assert missing.value == pytest.approx(1 - 1 / len(spec.features)) and missing.limit == service.missing_share_limit


def test_a_month_that_drifts_flags_its_clients(service):
    drifting = [m for m in service.monitoring() if m.split == "new" and (m.score_psi >= 0.2 or m.drifting)]
    assert drifting, "the generator makes the new applications drift"
    flagged = 0
    for row in service.search(ClientQuery(split="new", limit=200)).items:
        flags = [f for f in service.trust_flags(int(row["client_id"])) if f.kind == "segment_drift"]
        flagged += bool(flags)
        for f in flags:
            month = next(m for m in drifting if m.month == f.segment)
            assert f.features == tuple(month.drifting) and f.value == month.score_psi
    assert flagged


def test_a_model_card_without_ranges_says_it_cannot_check_them(workdir):
    from scoring.service import LocalScoringService

    old = LocalScoringService(workdir)
    old.card = dataclasses.replace(old.card, training_range={})   # a card written before the ranges
    kinds = [f.kind for f in old.flags_of_row(np.asarray(old.X[0]))]
    assert "range_unknown" in kinds and "out_of_range" not in kinds
    from scoring.labels import current
    assert "rebuild" in flag_text(old.flags_of_row(np.asarray(old.X[0]))[0], current(), "en")


def test_the_flags_reach_the_overview_the_record_and_the_file(service, api_server, refused):
    cid = next(c for c in refused if service.trust_flags(c))
    flags = service.trust_flags(cid)
    record = service.record_decision(cid, "refused", advisor="conseiller")
    assert service.overview(cid).flags == flags and record.flags == flags
    with HttpScoringService(api_server.url, ADVISOR) as backend:
        assert backend.overview(cid).flags == flags
        assert backend.decisions(cid)[-1].flags == flags
    labels = service.scorer.spec.schema.label_dictionary()
    text = flat(pdf_text(service.decision_file(cid, record.id, "pdf").content))
    for flag in flags:
        assert flat(flag_text(flag, labels, "fr")) in text
    page = service.decision_file(cid, record.id, "html", "en").content.decode()
    assert "Trust flags" in page and "None." not in page.split("Trust flags", 1)[1].split("</ul>", 1)[0]


def test_a_decision_log_from_before_the_flags_is_read_and_extended(tmp_path):
    path = tmp_path / "decisions.sqlite"
    con = sqlite3.connect(path)
    con.executescript("""CREATE TABLE decisions (id INTEGER PRIMARY KEY, at TEXT NOT NULL, client_id INTEGER NOT NULL,
        advisor TEXT, model_version TEXT NOT NULL, model TEXT NOT NULL, default_probability REAL NOT NULL,
        threshold REAL NOT NULL, model_decision TEXT NOT NULL, decision TEXT NOT NULL, justification TEXT NOT NULL,
        review INTEGER NOT NULL, review_band REAL NOT NULL, reasons TEXT NOT NULL, offer TEXT,
        application TEXT NOT NULL);
        INSERT INTO decisions VALUES (1, '2026-01-01T00:00:00+00:00', 7, 'a', 'v', 'production', 0.1, 0.08,
        'refused', 'refused', '', 0, 0.02, '[]', NULL, '{}');""")
    con.commit()
    con.close()
    log = DecisionLog(path)
    assert log.for_client(7)[0].flags == () and log.get(7, 1).id == 1 and log.get(8, 1) is None
    record = log.append(client_id=7, advisor="a", model_version="v", model="production", default_probability=0.1,
                        threshold=0.08, model_decision="refused", decision="refused", justification="", review=False,
                        review_band=0.02, reasons=[], offer=None, application={},
                        flags=[{"kind": "many_missing", "features": [], "value": 0.5, "limit": 0.45}])
    assert isinstance(record, DecisionRecord) and record.flags[0].kind == "many_missing"
    assert log.for_client(7)[1] == record
