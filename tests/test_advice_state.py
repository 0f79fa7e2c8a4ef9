"""The advisor's answer to a client, without a browser: reasons, offers and similar applicants loaded after the
client file, and the advisor's decision recorded (an override only with a justification), audited."""

from __future__ import annotations

import json

import pytest

from dashboard_server import FlakyLog
from scoring.audit import AuditLog
from scoring.backends import session_service
from scoring.contracts import ClientQuery
from views.state import N_PEERS, DashboardState

TOKEN = "advice-state-test-token"
API_TOKENS = (f"{TOKEN} advisor+analyst forward-user",)   # the dashboard's service token, for `api_server`


@pytest.fixture(scope="module")
def ids(service):
    # new applications: scored by the production model, which the offers use too (a labelled file's decision is
    # its cross-fitting model's, which the production model may not share)
    refused = [int(r["client_id"]) for r in service.search(ClientQuery(decision="refused", split="new", limit=3)).items]
    accepted = int(service.search(ClientQuery(decision="accepted", limit=1)).items[0]["client_id"])
    return {"refused": refused[0], "refused2": refused[1], "refused3": refused[2], "accepted": accepted}


@pytest.fixture
def log(tmp_path):
    """A fresh audit log for each test (the module's `audit` is the API server's)."""
    return AuditLog(tmp_path / "audit.sqlite")


@pytest.fixture
def state(service, log):
    return DashboardState(session_service(service, "advisor", log), role="advisor")


def test_switching_client_loads_reasons_offers_peers_and_decisions(state, service, ids):
    advice = state.advice
    assert advice.reasons is None and advice.offers is None and advice.peers is None
    state.client.client_id = ids["accepted"]
    assert advice.reasons.client_id == ids["accepted"] and advice.reasons.lang == "fr"
    assert [r.text for r in advice.reasons.reasons] == [r.text for r in service.reasons(ids["accepted"], "fr").reasons]
    assert advice.offers.offers == () and advice.offers.message
    assert advice.peers.k == N_PEERS and len(advice.peers.peers) == N_PEERS
    assert advice.decisions == list(service.decisions(ids["accepted"]))
    assert advice.notice is None and not advice.loading
    state.language = "en"
    assert advice.reasons.lang == "en"
    assert [r.text for r in advice.reasons.reasons] == [r.text for r in service.reasons(ids["accepted"], "en").reasons]


def test_the_load_waits_for_the_scheduler_after_the_client_file(service, log, ids):
    pending = []
    state = DashboardState(session_service(service, "advisor", log), role="advisor", schedule=pending.append)
    state.client.client_id = ids["refused"]
    assert state.client.file.client_id == ids["refused"]   # the client file first
    assert state.advice.loading and state.advice.reasons is None
    pending.pop()()
    assert not state.advice.loading and state.advice.reasons.client_id == ids["refused"]


def test_a_refused_client_shows_offers(state, service, ids):
    state.client.client_id = ids["refused"]
    offers = state.advice.offers
    assert offers.decision == "refused"
    assert offers.offers == service.offers(ids["refused"]).offers
    assert offers.offers or offers.message
    for offer in offers.offers:
        assert offer.decision == "accepted" and offer.default_probability < offers.threshold


def test_an_override_without_justification_shows_the_error_and_records_nothing(state, service, log, ids):
    client_id = ids["refused2"]
    state.client.client_id = client_id
    advice = state.advice
    before = len(service.decisions(client_id))
    advice.param.update(choice="override", justification="   ")
    assert advice.decision == "accepted"
    assert advice.record() is False
    assert advice.notice.key == "justification_required" and advice.notice.level == "danger"
    assert len(service.decisions(client_id)) == before == len(advice.decisions)
    assert not [e for e in log.recent(100) if e["event"] == "decision_recorded"]


def test_an_override_with_a_justification_is_listed_and_audited(state, service, log, ids):
    client_id = ids["refused3"]
    state.client.client_id = client_id
    advice = state.advice
    before = len(advice.decisions)
    advice.param.update(choice="override", justification="Garant solide <b>vérifié</b>")
    assert advice.record() is True
    assert len(advice.decisions) == before + 1
    record = advice.decisions[-1]
    assert (record.decision, record.model_decision) == ("accepted", "refused")
    assert record.justification == "Garant solide <b>vérifié</b>" and record.advisor == "advisor"
    assert advice.notice.key == "decision_recorded"
    assert advice.choice == "follow" and advice.justification == ""
    entry = next(e for e in log.recent(100) if e["event"] == "decision_recorded")
    assert entry["client_id"] == client_id and entry["user"] == "advisor"
    assert json.loads(entry["details"])["decision_id"] == record.id


def test_following_the_model_needs_no_justification(state, ids):
    state.client.client_id = ids["accepted"]
    assert state.advice.decision == "accepted"
    assert state.advice.record() is True
    assert state.advice.decisions[-1].decision == state.advice.decisions[-1].model_decision == "accepted"


def test_when_the_audit_log_fails_nothing_of_the_advice_is_shown(service, log, ids):
    flaky = FlakyLog(log)
    state = DashboardState(session_service(service, "advisor", flaky), role="advisor")
    pending = []
    state.advice.schedule = pending.append
    state.client.client_id = ids["refused"]
    flaky.broken = True
    pending.pop()()
    advice = state.advice
    assert advice.reasons is None and advice.offers is None and advice.peers is None
    assert advice.notice.key == "audit_refused" and not advice.loading


def test_analysts_never_have_the_advice(service, log):
    assert DashboardState(session_service(service, "analyst", log), role="analyst").advice is None


def test_over_the_api_the_same_answer_and_the_same_refusal(api_server, audit, service, ids):
    """The HTTP backend: the API answers the reasons, offers and peers of the in-process service, refuses an
    override without a justification (422) and records one with it as the session's user."""
    from scoring.client import HttpScoringService

    backend = HttpScoringService(api_server.url, TOKEN, timeout=10.0)
    try:
        state = DashboardState(session_service(backend, "advisor-http", role="advisor"), role="advisor")
        client_id = ids["refused2"]
        state.client.client_id = client_id
        advice = state.advice
        assert [r.text for r in advice.reasons.reasons] == [r.text for r in service.reasons(client_id).reasons]
        assert advice.offers.offers == service.offers(client_id).offers
        assert advice.peers.default_rate == service.peers(client_id, N_PEERS).default_rate
        before = len(advice.decisions)
        advice.choice = "override"
        assert advice.record() is False and advice.notice.key == "justification_required"
        assert len(service.decisions(client_id)) == before
        advice.param.update(choice="override", justification="Revenus complémentaires justifiés")
        assert advice.record() is True and len(advice.decisions) == before + 1
        assert advice.decisions[-1].advisor.startswith("advisor-http")
        entry = next(e for e in audit.recent(100) if e["event"] == "decision_recorded")
        assert entry["client_id"] == client_id and entry["source"] == "api"
        # its decision file, through the API: the same bytes as in process (HTML), audited by the API
        assert advice.file_decision == advice.decisions[-1].id
        advice.file_format = "html"
        assert advice.decision_file() == service.decision_file(client_id, advice.file_decision, "html", "fr")
        entry = audit.recent(1)[0]
        assert entry["client_id"] == client_id and json.loads(entry["details"])["read"] == "decision_file"
        assert state.client.flags == list(service.trust_flags(client_id))
    finally:
        backend.close()


@pytest.fixture(scope="module")
def with_offers(service):
    """A refused new application that has offers."""
    for row in service.search(ClientQuery(split="new", decision="refused", limit=80)).items[3:]:
        if service.offers(int(row["client_id"])).offers:
            return int(row["client_id"])
    pytest.skip("no refused new application with an offer")


def test_deciding_on_an_offer_records_its_changes_and_offers_its_file(state, service, log, with_offers):
    state.client.client_id = with_offers
    advice = state.advice
    assert advice.chosen_offer is None and advice.model_decision == "refused"
    advice.offer = 1 if len(advice.offers.offers) > 1 else 0
    offer = advice.chosen_offer
    assert offer == advice.offers.offers[advice.offer]
    assert advice.model_decision == "accepted" and advice.decision == "accepted"   # following the model on the offer
    assert advice.record() is True
    record = advice.decisions[-1]
    assert record.offer == offer.changes and record.default_probability == offer.default_probability
    assert advice.offer == -1 and advice.file_decision == record.id and advice.file_format == "pdf"
    file = advice.decision_file()
    assert file.media_type == "application/pdf" and file.content.startswith(b"%PDF-")
    assert file.decision_id == record.id and file.filename.endswith(".pdf")
    advice.file_format = "html"
    page = advice.decision_file().content.decode()
    assert "Offre retenue" in page and "Aucune : la demande telle que déposée" not in page
    entry = log.recent(1)[0]
    assert entry["event"] == "client_opened" and json.loads(entry["details"])["read"] == "decision_file"


def test_any_recorded_decision_has_its_file_and_a_refusal_says_why(state, service, ids):
    state.client.client_id = ids["accepted"]
    advice = state.advice
    assert advice.record() and advice.record()
    first = advice.decisions[0]
    advice.param.update(file_decision=first.id, file_format="html")
    assert advice.decision_file().decision_id == first.id
    advice.file_decision = 10**9
    assert advice.decision_file() is None and advice.notice.key == "file_refused"


def test_the_client_s_trust_flags_are_those_of_the_service(state, service, ids):
    state.client.client_id = ids["refused"]
    assert state.client.flags == list(service.trust_flags(ids["refused"]))
    state.client.client_id = None
    assert state.client.flags == []
