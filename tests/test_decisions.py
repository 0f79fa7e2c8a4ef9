"""Advisors' decisions: stored append-only with the score they were taken against; an override needs a
justification; re-scoring the stored inputs with the stored model gives the stored probability."""

from __future__ import annotations

import os
import sqlite3
import stat

import pytest

from scoring.contracts import ClientQuery, JustificationRequiredError
from scoring.decisions import DecisionLog, in_review_band
from scoring.errors import InvalidApplicationError


def _ids(service, split, decision, n=3):
    return [int(r["client_id"]) for r in service.search(ClientQuery(split=split, decision=decision, limit=n)).items]


def test_a_decision_following_the_model_needs_no_justification_and_is_stored(service):
    for split in ("new", "train"):
        for decision in ("accepted", "refused"):
            cid = _ids(service, split, decision, 1)[0]
            record = service.record_decision(cid, decision, advisor="advisor.martin")
            assert record.model_decision == decision == record.decision and record.justification == ""
            assert record.advisor == "advisor.martin" and record.client_id == cid
            assert record.model_version == service.card.version and record.threshold == service.card.threshold
            assert record.default_probability == pytest.approx(service.client(cid).score.default_probability,
                                                               abs=1e-6)
            assert record.reasons == tuple(r.text for r in service.reasons(cid).reasons)
            assert service.decisions(cid)[-1] == record


def test_an_override_needs_a_non_blank_justification(service):
    cid = _ids(service, "new", "refused", 1)[0]
    for blank in ("", "   \n"):
        with pytest.raises(JustificationRequiredError):
            service.record_decision(cid, "accepted", blank)
    record = service.record_decision(cid, "accepted", "  Client de longue date, garanties personnelles  ")
    assert record.decision == "accepted" and record.model_decision == "refused"
    assert record.justification == "Client de longue date, garanties personnelles"


def test_re_scoring_the_stored_inputs_with_the_stored_model_gives_the_stored_probability(service):
    for split in ("train", "new"):
        for cid in _ids(service, split, "refused") + _ids(service, split, "accepted"):
            record = service.record_decision(cid, service.client(cid).score.decision)
            i = service._row(cid)
            scorer = service.scorer if record.model == "production" else service.fold_scorers[int(record.model[5:])]
            assert scorer is service.scorer_of(i)
            score, _ = scorer.score_record(record.application)
            assert score.default_probability == record.default_probability
            assert score.model_version == record.model_version


def test_a_decision_on_an_offer_is_scored_on_the_changed_loan(service):
    for cid in _ids(service, "new", "refused", 60):
        offers = service.offers(cid)
        if offers.offers:
            offer = offers.offers[0]
            record = service.record_decision(cid, "accepted", offer=offer.changes)
            assert record.offer == offer.changes and record.model == "production"
            assert record.default_probability == offer.default_probability and record.model_decision == "accepted"
            assert {k: record.application[k] for k in offer.changes} == offer.changes
            break
    else:
        pytest.skip("no refused new application with an offer")
    with pytest.raises(InvalidApplicationError, match="loan"):
        service.record_decision(cid, "accepted", "x", offer={"EXT_SOURCE_2": 0.9})


def test_the_review_band_is_reported(service):
    assert in_review_band(0.09, 0.08, 0.02) and not in_review_band(0.11, 0.08, 0.02)
    cid = _ids(service, "new", "accepted", 1)[0]
    record = service.record_decision(cid, "accepted")
    assert record.review_band == service.review_band == 0.02
    assert record.review == (abs(record.default_probability - record.threshold) <= 0.02)


def test_the_log_is_append_only_and_owner_only(tmp_path):
    log = DecisionLog(tmp_path / "decisions.sqlite")
    assert stat.S_IMODE(os.stat(log.path).st_mode) == 0o600
    record = log.append(client_id=1, advisor="a", model_version="v", model="production", default_probability=0.1,
                        threshold=0.08, model_decision="refused", decision="refused", justification="", review=True,
                        review_band=0.02, reasons=["r"], offer=None, application={"AMT_CREDIT": 1.0})
    assert log.for_client(1) == [record] and record.reasons == ("r",)
    con = sqlite3.connect(log.path)
    for sql in ("UPDATE decisions SET decision = 'accepted'", "DELETE FROM decisions"):
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            con.execute(sql)
    assert log.for_client(1) == [record]


def test_an_unknown_decision_is_refused(service):
    with pytest.raises(ValueError, match="decision must be"):
        service.record_decision(int(service.ids[0]), "maybe")


def test_a_client_file_s_score_says_whether_it_is_to_review(service):
    rows = service.search(ClientQuery(min_probability=0.0, limit=500)).items
    flags = {}
    for row in rows:
        score = service.client(int(row["client_id"])).score
        assert score.review == (abs(score.default_probability - score.threshold) <= service.review_band)
        flags[score.review] = flags.get(score.review, 0) + 1
    assert flags.get(True) and flags.get(False)
