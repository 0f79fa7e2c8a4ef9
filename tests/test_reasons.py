"""Principal reasons of a decision: from the exact SHAP values of the model that scored the file, correlated
features grouped, protected attributes never, worded in French and English, stable under tiny changes."""

from __future__ import annotations

import math

import numpy as np
import pytest

from scoring.contracts import ClientQuery
from scoring.reasons import MAX_REASONS, feature_groups, principal_reasons, protected_features


@pytest.fixture(scope="module")
def files(service):
    """Labelled and new files, refused and accepted."""
    out = {}
    for split in ("train", "new"):
        for decision in ("refused", "accepted"):
            out[split, decision] = [int(r["client_id"]) for r in
                                    service.search(ClientQuery(split=split, decision=decision, limit=15)).items]
    return out


def test_a_refusal_gives_up_to_four_risks_and_an_acceptance_its_strengths(service, files):
    for (split, decision), ids in files.items():
        for cid in ids:
            r = service.reasons(cid)
            assert r.decision == decision == service.client(cid).score.decision
            assert 1 <= len(r.reasons) <= MAX_REASONS
            direction = "risk" if decision == "refused" else "strength"
            assert {x.direction for x in r.reasons} == {direction}
            sizes = [abs(x.contribution) for x in r.reasons]
            assert sizes == sorted(sizes, reverse=True)


def test_reasons_sum_the_exact_shap_values_of_the_model_that_scored_the_file(service, files):
    for cid in files["train", "refused"][:5] + files["new", "refused"][:5]:
        r = service.reasons(cid)
        i = service._row(cid)
        explanation = service.scorer_of(i).explain_row(np.asarray(service.X[i]), cid)
        shap = {c.feature: c.contribution for c in explanation.contributions}
        for reason in r.reasons:
            assert reason.contribution == pytest.approx(sum(shap[f] for f in reason.features), abs=1e-5)
        assert r.default_probability == pytest.approx(service.client(cid).score.default_probability, abs=1e-6)


def test_correlated_features_are_one_reason_and_protected_ones_never_are(service, files):
    spec = service.scorer.spec
    protected = protected_features(spec)
    assert {"AGE_YEARS"} <= protected and "DAYS_BIRTH" not in spec.names and "CODE_GENDER" not in spec.names
    groups = [{spec.features[j].name for j in g} for g in feature_groups(spec)]
    assert {"EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"} in groups
    assert {"AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE", "CREDIT_TERM_MONTHS", "CREDIT_INCOME_RATIO",
            "ANNUITY_INCOME_RATIO", "CREDIT_GOODS_RATIO"} in groups
    for ids in files.values():
        for cid in ids:
            for lang in ("fr", "en"):
                for reason in service.reasons(cid, lang).reasons:
                    assert not set(reason.features) & (protected | {"DAYS_BIRTH", "CODE_GENDER"})


def test_texts_give_the_value_and_the_position_among_clients_in_both_languages(service, files):
    texts = {lang: [x.text for ids in files.values() for cid in ids for x in service.reasons(cid, lang).reasons]
             for lang in ("fr", "en")}
    assert any("des clients" in t for t in texts["fr"]) and any("of clients" in t for t in texts["en"])
    assert any(t.startswith("Score externe") for t in texts["fr"])
    assert any(t.startswith("External score") for t in texts["en"])
    assert not any("of clients" in t for t in texts["fr"])


def test_a_missing_value_is_worded_as_such(service):
    spec = service.scorer.spec
    j = spec.index("EXT_SOURCE_1")
    x = np.asarray(service.X[0], dtype=np.float32).copy()
    x[j] = np.nan
    shap = np.zeros(len(spec.features))
    shap[j] = 0.5
    (reason,) = principal_reasons(spec, x, shap, "refused", "fr", service.percentile)
    assert reason.text == "Score externe 1 non renseigné"
    (reason,) = principal_reasons(spec, x, shap, "refused", "en", service.percentile)
    assert reason.text == "External score 1 not given"


def test_the_brief_s_example_wording(service):
    spec = service.scorer.spec
    j = spec.index("EXT_SOURCE_2")
    x = np.full(len(spec.features), np.nan, dtype=np.float32)
    x[j] = 0.39
    shap = np.zeros(len(spec.features))
    shap[j] = 0.8
    (reason,) = principal_reasons(spec, x, shap, "refused", "fr", lambda f, v: 25.0)
    assert reason.text == "Score externe 2 faible : 0,39, plus bas que 75\u00a0% des clients"
    assert reason.features == ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3")


def test_tiny_changes_of_the_amounts_keep_the_same_reasons(service, files):
    """Amounts moved by 0.1 %: the same reasons (the same groups of features), through the production model."""
    from scoring.reasons import principal_reasons

    scorer = service.scorer
    changed = 0
    for row in service.search(ClientQuery(split="new", limit=500)).items:
        cid = int(row["client_id"])
        app = service.application(cid)
        for factor in (0.999, 1.001):
            moved = {k: (v * factor if k in ("AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE", "AMT_INCOME_TOTAL")
                         else v) for k, v in app.items()}
            rows = [scorer.spec.transform_record(a) for a in (app, moved)]
            out = []
            for x in rows:
                shap = scorer.contributions(x)[0]
                decision = "refused" if 1 / (1 + math.exp(-shap.sum())) >= scorer.threshold else "accepted"
                out.append((decision, sorted(r.features for r in principal_reasons(
                    scorer.spec, x[0], shap[:-1], decision, "fr", service.percentile))))
            if out[0][0] == out[1][0]:
                assert out[0][1] == out[1][1], cid
                changed += 1
    assert changed >= 400


def test_unknown_client_and_language(service):
    from scoring.errors import UnknownClientError

    with pytest.raises(UnknownClientError):
        service.reasons(1)
    with pytest.raises(ValueError, match="lang"):
        service.reasons(int(service.ids[0]), "de")
