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
