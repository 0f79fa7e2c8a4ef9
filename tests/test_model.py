"""The model: business-cost threshold, model card, loading refuses corrupt or mismatched files."""

import json
import shutil

import numpy as np
import pytest

from scoring.errors import ModelError
from scoring.model import CostWeights, business_cost, choose_threshold, load_model


def test_threshold_minimises_business_cost_over_the_grid():
    rng = np.random.default_rng(0)
    p = rng.beta(1, 9, 5000)
    y = (rng.random(5000) < p).astype(int)
    costs = CostWeights(10, 1)
    threshold, cost = choose_threshold(y, p, costs)
    brute = {t: business_cost(y, p >= t, costs) for t in np.round(np.arange(0.005, 1.0, 0.005), 3)}
    best = min(brute, key=brute.get)
    assert cost == pytest.approx(brute[best])
    assert threshold == pytest.approx(best)
    # refusing is worth it from about 1 / (1 + 10) when the model is calibrated
    assert 0.05 <= threshold <= 0.15


def test_cheaper_missed_defaults_raise_the_threshold():
    rng = np.random.default_rng(1)
    p = rng.beta(1, 9, 5000)
    y = (rng.random(5000) < p).astype(int)
    strict, _ = choose_threshold(y, p, CostWeights(10, 1))
    lenient, _ = choose_threshold(y, p, CostWeights(2, 1))
    assert lenient > strict


def test_cost_weights_must_be_positive():
    with pytest.raises(ValueError, match="positive"):
        CostWeights(0, 1)


def test_model_card_contents(workdir):
    card = json.loads(workdir.card_path.read_text())
    m = card["metrics"]
    for key in ("roc_auc", "pr_auc", "brier", "business_cost", "acceptance_rate", "error_rate", "oracle_roc_auc"):
        assert key in m
    assert 0.6 < m["roc_auc"] <= m["oracle_roc_auc"] + 0.05
    assert card["cost_weights"] == {"missed_default": 10.0, "refused_good_client": 1.0}
    assert 0 < card["threshold"] < 1
    labels = {f["name"]: f["label_fr"] for f in card["spec"]["features"]}
    assert labels["EXT_SOURCE_3"] == "Score externe 3" and labels["AGE_YEARS"] == "Âge (ans)"
    assert len(card["reference"]["features"]) == len(card["spec"]["features"])
    assert card["data_fingerprint"] and card["version"].endswith(card["data_fingerprint"][:6])


def copy_model(workdir, tmp_path):
    target = tmp_path / "model"
    shutil.copytree(workdir.model, target)
    return target


def test_corrupt_model_file_is_refused(workdir, tmp_path):
    model = copy_model(workdir, tmp_path)
    (model / "model.json").write_text('{"learner": ')
    with pytest.raises(ModelError, match=r"model file .*model\.json is corrupt"):
        load_model(model)


def test_corrupt_card_is_refused(workdir, tmp_path):
    model = copy_model(workdir, tmp_path)
    (model / "model_card.json").write_text("not json")
    with pytest.raises(ModelError, match="model card .* is corrupt"):
        load_model(model)


def test_card_that_does_not_match_the_model_is_refused(workdir, tmp_path):
    model = copy_model(workdir, tmp_path)
    card = json.loads((model / "model_card.json").read_text())
    card["spec"]["features"] = card["spec"]["features"][:-1]
    (model / "model_card.json").write_text(json.dumps(card))
    with pytest.raises(ModelError, match="does not match its card"):
        load_model(model)


def test_missing_model_says_how_to_build(tmp_path):
    with pytest.raises(ModelError, match="python -m scoring build"):
        load_model(tmp_path)


# ------------------------------------------------------------------------------------------ honest figures
def _labelled(service):
    labelled = np.isfinite(service._target)
    return labelled, service.store.column("default_probability")[labelled], service._target[labelled]


def test_every_labelled_file_is_scored_by_a_model_that_did_not_see_it(service):
    """The stored probability of a labelled client comes from the cross-fitting model of its fold (trained
    without that fold), never from the production model that learnt it; new applications from production."""
    from sklearn.metrics import roc_auc_score

    card = service.card
    labelled, stored, target = _labelled(service)
    X = np.asarray(service.X)
    oof = np.empty(labelled.sum())
    folds = service.folds[labelled]
    assert set(folds.tolist()) == set(range(card.metrics["out_of_fold"]["folds"]))
    for k, scorer in enumerate(service.fold_scorers):
        oof[folds == k] = scorer.predict_proba(X[labelled][folds == k])
    np.testing.assert_allclose(stored, oof, rtol=1e-6)
    in_sample = service.scorer.predict_proba(X[labelled])
    assert roc_auc_score(target, stored) == pytest.approx(card.metrics["oof_roc_auc"], abs=1e-9)
    assert roc_auc_score(target, in_sample) > card.metrics["oof_roc_auc"] + 0.02  # what the old files showed
    new = ~labelled
    np.testing.assert_allclose(service.store.column("default_probability")[new],
                               service.scorer.predict_proba(X[new]), rtol=1e-6)
    assert "out of fold" in card.scores["labelled"] and "production" in card.scores["new"]


def test_a_labelled_clients_explanation_adds_up_to_its_stored_probability(service):
    labelled = np.flatnonzero(np.isfinite(service._target))[:30]
    for i in labelled:
        cid = int(service.ids[i])
        score, explanation = service.score_and_explain(cid)
        assert score.default_probability == pytest.approx(service.client(cid).score.default_probability, abs=1e-6)
        assert 1 / (1 + np.exp(-explanation.margin)) == pytest.approx(score.default_probability, abs=1e-6)


def test_the_card_lists_features_holdout_and_out_of_fold_auc_and_fairness(workdir):
    card = json.loads(workdir.card_path.read_text())
    names = [f["name"] for f in card["spec"]["features"]]
    assert "EXT_SOURCE_2" in names and "CODE_GENDER" not in names  # a protected attribute is no feature
    assert 0.5 < card["metrics"]["roc_auc"] < 1 and 0.5 < card["metrics"]["oof_roc_auc"] < 1
    assert set(card["fairness"]) == {"gender", "age"}
    gender = card["fairness"]["gender"]
    assert {g["group"] for g in gender["groups"]} >= {"F", "M"}
    assert 0 < gender["disparate_impact_ratio"] <= 1 and gender["equal_opportunity_difference"] >= 0
    assert sum(g["applications"] for g in gender["groups"]) == card["n_labelled"]


def test_age_can_be_left_out_of_the_features_and_kept_for_fairness(tmp_path):
    from scoring.build import build
    from scoring.config import Workdir

    wd = Workdir(tmp_path)
    build(wd, rows=1500, quiet=True, nthread=2, age_as_feature=False)
    card = json.loads(wd.card_path.read_text())
    names = [f["name"] for f in card["spec"]["features"]]
    assert "AGE_YEARS" not in names and "DAYS_BIRTH" not in names and "CODE_GENDER" not in names
    assert {g["group"] for g in card["fairness"]["age"]["groups"]} <= {"< 25", "25-35", "35-45", "45-55", "55-65",
                                                                       ">= 65", "missing"}
