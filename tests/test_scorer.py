"""Scoring and explaining one client: probabilities, decisions, SHAP contributions."""

import math

import numpy as np
import pytest
import shap

from scoring.contracts import MAX_BATCH, ClientQuery
from scoring.errors import InvalidApplicationError, UnknownClientError


def some_ids(service, n=5, **filters):
    return [row["client_id"] for row in service.search(ClientQuery(limit=n, **filters)).items]


def test_contributions_plus_base_value_equal_the_margin(service):
    for cid in some_ids(service, 20):
        score, explanation = service.score_and_explain(cid)
        total = explanation.base_value + sum(c.contribution for c in explanation.contributions)
        assert total == pytest.approx(explanation.margin, abs=1e-4)
        assert 1 / (1 + math.exp(-explanation.margin)) == pytest.approx(score.default_probability, abs=1e-5)


def test_xgboost_treeshap_equals_shap_tree_explainer(service):
    scorer = service.scorer
    X = np.asarray(service.X[:50])
    ours = scorer.contributions(X)
    explainer = shap.TreeExplainer(scorer.booster)
    theirs = explainer.shap_values(X)
    np.testing.assert_allclose(ours[:, :-1], theirs, atol=1e-4)
    assert ours[0, -1] == pytest.approx(float(np.ravel(explainer.expected_value)[0]), abs=1e-4)


def test_score_matches_the_stored_decision(service):
    for cid in some_ids(service, 10, decision="refused") + some_ids(service, 10, decision="accepted"):
        file = service.client(cid)
        score, _ = service.score_and_explain(cid)
        assert score.default_probability == pytest.approx(file.score.default_probability, abs=1e-6)
        assert score.decision == file.score.decision
        assert (score.decision == "refused") == (score.default_probability >= score.threshold)


def test_top_contributions_are_sorted_and_the_rest_summed(service):
    cid = some_ids(service, 1)[0]
    full = service.explain(cid)
    top = service.explain(cid, top=10)
    assert len(top.contributions) == 10
    sizes = [abs(c.contribution) for c in full.contributions]
    assert sizes == sorted(sizes, reverse=True)
    assert top.others == pytest.approx(sum(c.contribution for c in full.contributions[10:]), abs=1e-5)
    labels = {c.feature: c.label_fr for c in full.contributions}
    assert labels["EXT_SOURCE_2"] == "Score externe 2"


def test_categorical_values_are_shown_as_text(service):
    cid = some_ids(service, 1)[0]
    values = {c.feature: c.value for c in service.explain(cid).contributions}
    assert values["NAME_CONTRACT_TYPE"] in ("Cash loans", "Revolving loans")


def test_scoring_a_raw_record_equals_scoring_the_stored_client(service):
    for cid in some_ids(service, 5, split="new"):  # scored by the production model, as /predict does
        record = service.store.raw_record(cid)
        record = {k: v for k, v in record.items() if v is not None and not (isinstance(v, float) and math.isnan(v))}
        score, explanation = service.predict(record, explain=True, top=5)
        assert score.default_probability == pytest.approx(service.client(cid).score.default_probability, abs=1e-5)
        assert len(explanation.contributions) == 5


def test_missing_features_are_allowed(service):
    score, _ = service.predict({"AMT_CREDIT": 500000.0, "AMT_INCOME_TOTAL": 150000.0})
    assert 0 < score.default_probability < 1


@pytest.mark.parametrize("record, field, message", [
    ({"AMT_CREDIT": -5.0}, "AMT_CREDIT", "cannot be negative"),
    ({"AMT_INCOME_TOTAL": float("nan")}, "AMT_INCOME_TOTAL", "finite"),
    ({"AMT_ANNUITY": float("inf")}, "AMT_ANNUITY", "finite"),
    ({"AMT_CREDIT": "lots"}, "AMT_CREDIT", "must be a number"),
    ({"NAME_CONTRACT_TYPE": "Mortgage"}, "NAME_CONTRACT_TYPE", "unknown category 'Mortgage'"),
    ({"FAVOURITE_COLOUR": "blue"}, "FAVOURITE_COLOUR", "unknown field"),
    ({"FLAG_OWN_CAR": 1}, "FLAG_OWN_CAR", "text category"),
    ({"AMT_CREDIT": 1e39}, "AMT_CREDIT", "out of range"),
    ({"EXT_SOURCE_2": 1.5}, "EXT_SOURCE_2", "out of bounds: a normalised score"),
    ({"DAYS_BIRTH": -1e30}, "DAYS_BIRTH", "out of bounds: days before the application: an age of 18 to 100"),
    ({"DAYS_EMPLOYED": 30}, "DAYS_EMPLOYED", "out of bounds: days before the application"),
    ({"AMT_CREDIT": True}, "AMT_CREDIT", "must be a number, got bool"),
])
def test_bad_applications_name_the_field(service, record, field, message):
    with pytest.raises(InvalidApplicationError, match=message) as info:
        service.predict(record)
    assert info.value.field == field


def test_a_batch_is_scored_as_each_application_alone_and_refused_whole_on_a_bad_row(service):
    records = [{k: v for k, v in service.store.raw_record(cid).items() if v is not None}
               for cid in some_ids(service, 30)] + [{}, {"AMT_CREDIT": 500000.0}]
    batch = service.predict_batch(records)
    alone = [service.predict(r)[0] for r in records]
    assert [(b.decision, b.threshold, b.model_version) for b in batch] == [
        (a.decision, a.threshold, a.model_version) for a in alone]
    np.testing.assert_allclose([b.default_probability for b in batch], [a.default_probability for a in alone],
                               rtol=0, atol=1e-6)
    with pytest.raises(InvalidApplicationError, match="cannot be negative") as info:
        service.predict_batch([{}, {}, {"AMT_ANNUITY": -1.0}])
    assert info.value.field == "2.AMT_ANNUITY"
    for size in (0, MAX_BATCH + 1):
        with pytest.raises(InvalidApplicationError, match=f"between 1 and {MAX_BATCH}") as info:
            service.predict_batch([{}] * size)
        assert info.value.field == "applications"


def test_unknown_client(service):
    with pytest.raises(UnknownClientError, match="unknown client ID 1"):
        service.explain(1)
    with pytest.raises(UnknownClientError):
        service.client(99999999999)
    with pytest.raises(UnknownClientError):
        service.client("abc")


def test_global_importance_puts_external_scores_first(service):
    top = [f.feature for f in service.global_importance(5)]
    assert len(top) == 5
    assert {"EXT_SOURCE_2", "EXT_SOURCE_3"} & set(top[:3])


def test_every_client_scored_alone_gets_the_stored_probability_and_decision(service):
    """One application at a time (the API's POST /predict, the dashboard) against the store, scored in one batch:
    the same probability (float32 rounding) and the same decision for every client of the portfolio."""
    scorer = service.scorer
    X = np.asarray(service.X)
    stored = scorer.booster.inplace_predict(X, validate_features=False)
    assert np.isnan(X).any(axis=1).mean() > 0.9, "most applications should have missing values"
    alone = np.array([scorer.score_row(X[i]).default_probability for i in range(len(X))])
    np.testing.assert_allclose(alone, stored, rtol=0, atol=1e-6)
    decisions = np.array([scorer.score_row(X[i]).decision for i in range(0, len(X), 7)])
    assert (decisions == np.where(stored[::7] >= scorer.threshold, "refused", "accepted")).all()


def test_sessions_scoring_at_the_same_time_each_get_their_own_probability(service):
    """The API and the dashboard score on several threads at once: the shared booster must not mix rows."""
    from concurrent.futures import ThreadPoolExecutor

    scorer = service.scorer
    X = np.asarray(service.X[:400])
    alone = [scorer.score_row(x).default_probability for x in X]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda x: scorer.score_row(x).default_probability, np.concatenate([X] * 5)))
    assert together == alone * 5
