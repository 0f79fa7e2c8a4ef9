"""`python -m scoring build --scheduler ADDRESS`: the model trained with XGBoost's Dask interface on a real local
cluster of two worker processes is the same kind of artefact, as good as the one trained in process, and served
as it is."""

import socket

import numpy as np
import pytest

from scoring.__main__ import main
from scoring.config import Workdir
from scoring.model import load_folds, load_model
from scoring.service import LocalScoringService

from conftest import TEST_ROWS


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as running:
        yield running


@pytest.fixture(scope="module")
def dask_built(cluster, tmp_path_factory):
    root = tmp_path_factory.mktemp("dask-built")
    code = main(["build", "--workdir", str(root), "--rows", str(TEST_ROWS), "--scheduler", cluster.scheduler_address,
                 "--quiet"])
    assert code == 0
    return Workdir(root)


def test_the_cluster_trains_the_same_kind_of_model_as_one_process(dask_built, workdir, service):
    booster, card = load_model(dask_built.model)
    _, local_card = load_model(workdir.model)
    assert card.metrics["trained_in"] == "a Dask cluster of 2 worker(s)"
    assert local_card.metrics["trained_in"] == "this process"
    assert booster.feature_names == [f["name"] for f in local_card.spec["features"]]
    assert len(load_folds(dask_built.model, card)) == 5            # cross-fitted on the cluster as well
    # same data (same rows and seed), same settings: the distributed histograms give a model as good
    assert card.data_fingerprint == local_card.data_fingerprint
    assert abs(card.metrics["roc_auc"] - local_card.metrics["roc_auc"]) < 0.03
    assert abs(card.metrics["oof_roc_auc"] - local_card.metrics["oof_roc_auc"]) < 0.03
    assert 0 < card.threshold < 1 and card.fairness


def test_a_model_trained_on_the_cluster_is_served_as_any_other(dask_built):
    served = LocalScoringService(dask_built)
    for client_id in [int(i) for i in served.ids[:: max(1, len(served.ids) // 5)]]:
        score, explanation = served.score_and_explain(client_id, top=200)
        assert 0 < score.default_probability < 1
        assert np.isclose(1 / (1 + np.exp(-explanation.margin)), score.default_probability, atol=1e-5)
        total = explanation.base_value + sum(c.contribution for c in explanation.contributions) + explanation.others
        assert np.isclose(total, explanation.margin, atol=1e-3)


def test_an_unreachable_scheduler_stops_the_build_with_a_clear_message(tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["build", "--workdir", str(tmp_path), "--rows", "500", "--scheduler", f"tcp://127.0.0.1:{port}",
                 "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in err and "Traceback" not in err
    assert not (tmp_path / "model" / "model.json").exists()
