"""Building artefacts: real Home Credit files are used when present, failures leave nothing behind, CLI."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from scoring.build import build
from scoring.config import Workdir
from scoring.dataset import default_schema
from scoring.errors import SchemaError
from scoring.generator import generate_portfolio

REPO = Path(__file__).resolve().parent.parent
EXAMPLE = REPO / "examples" / "loans" / "loans.toml"


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "scoring", *args], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=300)


def test_real_home_credit_csvs_are_used_unchanged(tmp_path):
    portfolio = generate_portfolio(n_train=1200, n_new=200, seed=3)
    data = tmp_path / "data"
    data.mkdir()
    portfolio.train.to_csv(data / "application_train.csv", index=False)
    portfolio.new.to_csv(data / "application_test.csv", index=False)
    schema = default_schema(data)
    assert schema.train_path == data / "application_train.csv"
    assert schema.new_path == data / "application_test.csv"
    summary = build(Workdir(tmp_path), quiet=True, nthread=2)
    assert summary.n_labelled == 1200 and summary.n_new == 200
    assert summary.oracle_roc_auc is None  # real files carry no true probabilities
    assert not (data / "generated").exists()


def test_failed_build_leaves_previous_artefacts_untouched(tmp_path):
    wd = Workdir(tmp_path)
    build(wd, schema=EXAMPLE, quiet=True, nthread=2)
    before = {p: p.stat().st_mtime_ns for p in (wd.store_path, wd.card_path, wd.booster_path, wd.features_path)}
    broken = tmp_path / "broken.toml"
    broken.write_text(EXAMPLE.read_text().replace('"loans.csv"', f'"{EXAMPLE.parent / "loans.csv"}"')
                      .replace('"loans_new.csv"', '""').replace('"loan_amount"', '"principal"'))
    with pytest.raises(SchemaError, match="column principal missing"):
        build(wd, schema=broken, quiet=True, nthread=2)
    after = {p: p.stat().st_mtime_ns for p in before}
    assert before == after
    assert not list(tmp_path.glob(".build-*"))


def test_a_dataset_without_some_roles_builds_and_says_which_roles_it_has(tmp_path):
    from scoring.service import LocalScoringService

    wd = Workdir(tmp_path)
    build(wd, schema=EXAMPLE, quiet=True, nthread=2)
    service = LocalScoringService(wd)
    assert {"age_years", "income", "credit_amount", "term_months", "debt"} <= service.roles
    assert "goods_price" not in service.roles and "contract_type" not in service.roles
    assert service.contract_types() == []
    file = service.client(5001)
    assert file.application["goods_price"] is None
    # the client files count flows per month, as the example's income is given
    assert file.profile["income"] == pytest.approx(pd.read_csv(EXAMPLE.parent / "loans_new.csv").income[0])


def test_a_dataset_with_monthly_amounts_scores_one_record_as_the_batch_did(tmp_path):
    # monthly income and payments: the single-record path must derive the same ratios as the batch build
    import numpy as np

    from scoring.service import LocalScoringService

    wd = Workdir(tmp_path)
    build(wd, schema=EXAMPLE, quiet=True, nthread=2)
    service = LocalScoringService(wd)
    spec = service.scorer.spec
    for client_id in service.ids[:50]:
        raw = {k: v for k, v in service.store.raw_record(int(client_id)).items() if k in spec.raw_columns}
        row = spec.transform_record(raw)[0]
        stored = np.asarray(service.X[service._row(int(client_id))])
        assert np.array_equal(row.view(np.uint32), stored.view(np.uint32)), client_id
        assert service.predict(raw)[0].default_probability == pytest.approx(
            service.scorer.score_row(stored).default_probability, abs=1e-6)


def test_cli_build_and_score(tmp_path):
    out = run_cli("build", "--workdir", str(tmp_path), "--rows", "1500")
    assert out.returncode == 0, out.stderr
    assert "holdout AUC" in out.stderr and "6/6" in out.stderr
    card = json.loads((tmp_path / "model" / "model_card.json").read_text())
    ids = pd.read_parquet(tmp_path / "data" / "generated" / "application_train.parquet", columns=["SK_ID_CURR"])
    cid = int(ids.SK_ID_CURR.iloc[0])
    out = run_cli("score", "--client", str(cid), "--top", "3", env={"SCORING_WORKDIR": str(tmp_path)})
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["client_id"] == cid and result["threshold"] == card["threshold"]
    assert result["decision"] in ("accepted", "refused") and len(result["contributions"]) == 3

    out = run_cli("score", "--client", "7", "--workdir", str(tmp_path))
    assert out.returncode == 2 and "unknown client ID 7" in out.stderr and "Traceback" not in out.stderr


def test_cli_explains_a_missing_build(tmp_path):
    out = run_cli("score", "--client", "100002", "--workdir", str(tmp_path / "empty"))
    assert out.returncode == 2 and "python -m scoring build" in out.stderr and "Traceback" not in out.stderr


def test_service_refuses_a_model_that_does_not_match_the_store(tmp_path, workdir):
    import shutil

    from scoring.errors import ModelError
    from scoring.service import LocalScoringService

    other = Workdir(tmp_path)
    build(other, schema=EXAMPLE, quiet=True, nthread=2)
    shutil.copy(workdir.card_path, other.card_path)
    shutil.copy(workdir.booster_path, other.booster_path)
    with pytest.raises(ModelError, match="does not match the client files"):
        LocalScoringService(other)


@pytest.fixture(scope="module")
def chunk_build(tmp_path_factory):
    """20,000 generated applications in 4 Parquet chunks, built out of core in 5,000-row slices by the CLI."""
    from scoring.__main__ import main
    from scoring.chunked import generate_chunks

    chunks = tmp_path_factory.mktemp("chunks")
    generate_chunks(chunks, 20_000, chunk_rows=5_000, seed=11)
    wd = Workdir(tmp_path_factory.mktemp("chunk-workdir"))
    assert main(["build", "--input", str(chunks), "--workdir", str(wd.root), "--rows", "6000", "--quiet"]) == 0
    return chunks, wd


def test_a_store_built_out_of_core_serves_client_files_like_the_in_memory_build(chunk_build, service):
    import numpy as np
    import pyarrow.parquet as pq

    from scoring.contracts import ClientQuery
    from scoring.service import LocalScoringService

    chunks, wd = chunk_build
    built = LocalScoringService(wd)
    assert len(built.ids) == built.X.shape[0] == 20_000
    assert (np.diff(built.ids) > 0).all()
    split = built.store.cursor().execute("SELECT split, count(*), count(target) FROM applications GROUP BY 1 "
                                         "ORDER BY 1").fetchall()
    assert split == [("new", 14_000, 0), ("train", 6_000, 6_000)]   # the sample is labelled, the rest decided
    labelled, new = (int(built.ids[np.flatnonzero(built.folds >= 0)[0]]),
                     int(built.ids[np.flatnonzero(built.folds < 0)[0]]))
    reference = service.client(int(service.ids[0]))
    for cid in (labelled, new):
        file = built.client(cid)
        assert file.profile.keys() == reference.profile.keys()
        assert file.application.keys() == reference.application.keys()
        assert file.debts.keys() == reference.debts.keys()
        assert built.overview(cid).explanation.client_id == cid
    # the feature matrix holds each file's row, and a decided file is scored by the production model
    raw = pq.read_table(chunks / "application-00000.parquet").to_pandas()
    record = raw[raw["SK_ID_CURR"] == new].drop(columns=["SK_ID_CURR", "TARGET"])
    x = built.scorer.spec.transform_frame(record)[0]
    np.testing.assert_array_equal(np.asarray(built.X[built._row(new)]), x)
    assert built.client(new).score.default_probability == pytest.approx(
        float(built.scorer.predict_proba(x.reshape(1, -1))[0]), abs=1e-6)
    # outcomes are known for the accepted decided files only
    wrong = built.store.cursor().execute("SELECT count(*) FROM outcomes o JOIN applications a USING (client_id) "
                                         "WHERE a.split <> 'new' OR a.decision <> 'accepted'").fetchone()[0]
    assert wrong == 0
    page = built.search(ClientQuery(q=str(new)[:4], decision="refused", sort="default_probability",
                                    descending=True, limit=50))
    assert page.total > 0 and all(str(r["client_id"]).startswith(str(new)[:4]) for r in page.items)
    assert built.portfolio().n_applications == 20_000


def test_chunks_out_of_order_are_refused_before_training(chunk_build, tmp_path):
    import shutil

    from scoring.build import build_from_chunks

    chunks, _ = chunk_build
    bad = tmp_path / "bad"
    bad.mkdir()
    shutil.copy(chunks / "application-00000.parquet", bad / "application-00001.parquet")
    shutil.copy(chunks / "application-00001.parquet", bad / "application-00000.parquet")
    with pytest.raises(SchemaError, match="application-00001.parquet .* do not follow"):
        build_from_chunks(bad, Workdir(tmp_path / "wd"), rows=2000, quiet=True)
    assert not (tmp_path / "wd" / "data" / "clients.duckdb").exists()


def test_a_store_built_out_of_core_reads_labelled_rows_and_samples_new_ones(chunk_build, monkeypatch):
    """Over a store whose labelled files are a sample: similar applicants and the model's performance come from
    the labelled files only, and the drift from a sample of the new files when there are more than
    `DRIFT_SAMPLE` (monkeypatched small here: 10M files would not fit in memory)."""
    import numpy as np

    import scoring.service
    from scoring.service import LocalScoringService

    _, wd = chunk_build
    monkeypatch.setattr(scoring.service, "DRIFT_SAMPLE", 500)
    built = LocalScoringService(wd)
    new = int(built.ids[np.flatnonzero(built.folds < 0)[3]])
    peers = built.peers(new, k=10)
    labelled = set(built.ids[built.folds >= 0].tolist())
    assert len(peers.peers) == 10 and all(p.client_id in labelled for p in peers.peers)
    overall = built.performance()[0]
    assert overall.applications == 6000
    drift = built.drift()
    assert len(drift) == len(built.scorer.spec.features) and all(np.isfinite(r.psi) for r in drift)
    hist = built.distribution("EXT_SOURCE_2", new).histogram
    assert sum(hist.counts["repaid"]) + sum(hist.counts["defaulted"]) <= 6000


def test_build_input_refuses_what_it_cannot_do(tmp_path, capsys):
    from scoring.__main__ import main

    assert main(["build", "--input", str(tmp_path), "--scheduler", "tcp://x:8786"]) == 2
    assert "drop --schema, --scheduler and --dask-workers" in capsys.readouterr().err
    assert main(["build", "--input", str(tmp_path), "--workdir", str(tmp_path / "wd")]) == 2
    assert "holds no Parquet file" in capsys.readouterr().err
    assert main(["build", "--input", str(tmp_path), "--rows", "10", "--workdir", str(tmp_path / "wd")]) == 2
    assert "--rows must be a whole number >= 1000" in capsys.readouterr().err
