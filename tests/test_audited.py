"""The audit policy around the in-process service: one entry per action that reads personal data or scores,
written before the result is returned; no entry, no result."""

from __future__ import annotations

import json
import sqlite3

import pytest

from scoring.audit import AuditLog
from scoring.audited import AuditedService
from scoring.contracts import ClientQuery
from scoring.errors import AuditUnavailableError


@pytest.fixture
def log(tmp_path):
    return AuditLog(tmp_path / "audit.sqlite")


@pytest.fixture
def audited(service, log):
    return AuditedService(service, log, "advisor.martin", "dashboard")


def _client(service) -> int:
    return int(service.search(ClientQuery(limit=1)).items[0]["client_id"])


def _application(service, cid) -> dict:
    raw = service.store.raw_record(cid)
    return {k: v for k, v in raw.items() if v is not None and k in service.scorer.spec.raw_columns}


def test_each_read_of_a_client_writes_one_entry_naming_user_client_and_result(service, audited, log):
    cid = _client(service)
    file = audited.client(cid)
    audited.overview(cid, service.top_features(1)[0].feature, top=5)
    audited.explain(cid, top=3)
    audited.distribution("EXT_SOURCE_2", cid)
    audited.debt_capacity(cid)
    entries = log.recent()[::-1]
    assert [e["event"] for e in entries] == ["client_opened", "client_opened", "explained", "compared", "debt_viewed"]
    assert {e["client_id"] for e in entries} == {cid}
    assert {e["user"] for e in entries} == {"advisor.martin"} and {e["source"] for e in entries} == {"dashboard"}
    assert entries[0]["default_probability"] == file.score.default_probability
    assert entries[0]["decision"] == file.score.decision
    assert entries[2]["default_probability"] == pytest.approx(file.score.default_probability, abs=1e-5)
    assert json.loads(entries[3]["details"]) == {"feature": "EXT_SOURCE_2"}


def test_a_search_writes_one_entry_with_its_filters_and_what_it_returned(audited, log):
    page = audited.search(ClientQuery(decision="refused", min_probability=0.2, limit=7))
    (entry,) = log.recent()
    assert entry["event"] == "searched" and entry["client_id"] is None
    assert json.loads(entry["details"]) == {
        "filters": {"decision": "refused", "min_probability": 0.2, "limit": 7},
        "returned": len(page.items), "matching": page.total}


def test_the_population_alone_is_not_personal_data(audited, log):
    audited.distribution("EXT_SOURCE_2")
    audited.portfolio(), audited.drift(), audited.global_importance(3), audited.model_card()
    assert log.count() == 0


def test_scoring_writes_one_entry_per_action(service, audited, log):
    application = _application(service, _client(service))
    score, _ = audited.predict(application)
    scores = audited.predict_batch([application, application, {}])
    batch, single = log.recent()
    assert single["event"] == batch["event"] == "predicted"
    assert single["default_probability"] == score.default_probability
    details = json.loads(batch["details"])
    assert details["applications"] == 3 and details["refused"] == sum(s.decision == "refused" for s in scores)
    assert details["mean_default_probability"] == pytest.approx(sum(s.default_probability for s in scores) / 3)


def test_for_user_shares_the_log_and_names_the_other_user(service, audited, log):
    audited.for_user("analyst.dupont").client(_client(service))
    assert log.recent()[0]["user"] == "analyst.dupont"


def test_no_entry_no_result(service, audited, log, tmp_path):
    """When the log refuses the entry, the action is refused with a message a user can act on, and
    nothing of the client is returned; the service works again once the log does."""
    cid = _client(service)
    con = sqlite3.connect(tmp_path / "audit.sqlite")
    con.execute("CREATE TRIGGER refuse BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk quota'); END")
    con.commit()
    calls = (lambda: audited.client(cid), lambda: audited.overview(cid), lambda: audited.explain(cid),
             lambda: audited.search(ClientQuery()), lambda: audited.debt_capacity(cid),
             lambda: audited.distribution("EXT_SOURCE_2", cid),
             lambda: audited.predict(_application(service, cid)))
    for call in calls:
        with pytest.raises(AuditUnavailableError, match="audit log cannot be written, so nothing is shown"):
            call()
    con.execute("DROP TRIGGER refuse")
    con.commit()
    assert audited.client(cid).client_id == cid
    assert log.count() == 1


def test_advising_a_client_writes_one_entry_per_read_and_per_decision(service, audited, log):
    cid = int(service.search(ClientQuery(split="new", decision="refused", limit=1)).items[0]["client_id"])
    assert audited.application(cid) == service.application(cid)
    reasons = audited.reasons(cid, "en")
    offers = audited.offers(cid)
    peers = audited.peers(cid, 4)
    record = audited.record_decision(cid, "accepted", "caution du conjoint", advisor="ignored")
    assert audited.decisions(cid)[-1] == record
    entries = log.recent()[::-1]
    assert [e["event"] for e in entries] == ["client_opened", "explained", "scored", "compared", "decision_recorded",
                                             "client_opened"]
    assert {e["client_id"] for e in entries} == {cid} and {e["user"] for e in entries} == {"advisor.martin"}
    details = [json.loads(e["details"]) for e in entries]
    assert [d["read"] for d in details[:4]] == ["application", "reasons", "offers", "peers"]
    assert details[1]["features"] == [list(r.features) for r in reasons.reasons]
    assert details[2]["offers"] == [o.changes for o in offers.offers]
    assert entries[2]["default_probability"] == offers.default_probability
    assert details[3]["default_rate"] == peers.default_rate
    assert record.advisor == "advisor.martin"
    assert details[4] == {"decision_id": record.id, "decision": "accepted", "model_decision": record.model_decision,
                          "justification": "caution du conjoint", "review": record.review, "offer": None}
    assert entries[4]["default_probability"] == record.default_probability


def test_no_entry_no_advice(service, audited, log, tmp_path):
    cid = _client(service)
    con = sqlite3.connect(tmp_path / "audit.sqlite")
    con.execute("CREATE TRIGGER refuse BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk quota'); END")
    con.commit()
    for call in (lambda: audited.application(cid), lambda: audited.reasons(cid), lambda: audited.offers(cid),
                 lambda: audited.peers(cid), lambda: audited.decisions(cid)):
        with pytest.raises(AuditUnavailableError):
            call()
