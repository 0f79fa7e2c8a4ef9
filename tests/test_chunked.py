"""Out-of-core generation (`python -m scoring generate`) and batch scoring of its Parquet chunks
(`python -m scoring batch --input DIR`) on a real 2-worker local Dask cluster."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from scoring.__main__ import main
from scoring.batch import BatchError, read_batch, run_batch
from scoring.chunked import GenerationError, generate_chunks
from scoring.generator import FIRST_ID, HOME_CREDIT_COLUMNS
from scoring.schema import DEBT_COLUMNS


@pytest.fixture(scope="module")
def chunks(tmp_path_factory):
    out = tmp_path_factory.mktemp("chunks")
    summary = generate_chunks(out, 2_500, chunk_rows=1_000, seed=5)
    assert summary.chunks == 3 and summary.skipped == 0
    return out


@pytest.fixture(scope="module")
def cluster():
    from dask.distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as running:
        yield running


def test_chunks_hold_every_application_once_with_the_home_credit_columns(chunks):
    frame = pd.concat(pd.read_parquet(p) for p in sorted(chunks.glob("application-*.parquet")))
    # the Home Credit columns, then the applicant's other credits as a build joins them from bureau.csv
    assert list(frame.columns) == HOME_CREDIT_COLUMNS + list(DEBT_COLUMNS.values())
    assert (frame["DEBTS_ACTIVE_CREDITS"] > 0).mean() > 0.4
    assert (frame["SK_ID_CURR"].to_numpy() == np.arange(FIRST_ID, FIRST_ID + 2_500)).all()
    assert 0.03 < frame["TARGET"].mean() < 0.15            # Home Credit's default rate is ~8 %
    truth = pd.concat(pd.read_parquet(p) for p in sorted(chunks.glob("true_probability-*.parquet")))
    assert (truth["SK_ID_CURR"].to_numpy() == frame["SK_ID_CURR"].to_numpy()).all()
    # each chunk has a seed of its own: no two chunks repeat the same applicants
    first, second = (pd.read_parquet(chunks / f"application-0000{k}.parquet") for k in (0, 1))
    assert not np.allclose(first["AMT_CREDIT"].to_numpy()[:1000], second["AMT_CREDIT"].to_numpy()[:1000])


def test_an_interrupted_generation_is_resumed_with_the_same_applications(chunks, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(chunks, copy)
    before = pd.read_parquet(copy / "application-00001.parquet")
    (copy / "application-00001.parquet").unlink()
    again = generate_chunks(copy, 2_500, chunk_rows=1_000, seed=5)
    assert again.skipped == 2
    pd.testing.assert_frame_equal(pd.read_parquet(copy / "application-00001.parquet"), before)


@pytest.mark.parametrize("kwargs, message", [
    ({"rows": 2_600, "chunk_rows": 1_000, "seed": 5}, "holds another generated portfolio"),
    ({"rows": 0, "chunk_rows": 1_000}, "--rows must be a whole number >= 1"),
    ({"rows": 10, "chunk_rows": -3}, "--chunk-rows must be a whole number >= 1"),
])
def test_bad_generation_requests_are_refused_clearly(chunks, kwargs, message):
    with pytest.raises(GenerationError, match=message):
        generate_chunks(chunks, **kwargs)


def test_the_cli_generates_and_says_so(tmp_path, capsys):
    assert main(["generate", "--rows", "300", "--chunk-rows", "200", "--output", str(tmp_path), "--quiet"]) == 0
    assert "generated 300 applications in 2 chunks" in capsys.readouterr().err


def test_the_cluster_scores_the_chunks_as_the_scorer_does_in_process(chunks, workdir, service, cluster, tmp_path):
    summary = run_batch(tmp_path / "scored", workdir, scheduler=cluster.scheduler_address, input=chunks, quiet=True)
    assert summary.partitions == 3 and summary.rows == 2_500 and summary.workers == 2
    scored = read_batch(tmp_path / "scored")
    raw = pd.concat(pd.read_parquet(p) for p in sorted(chunks.glob("application-*.parquet")))
    assert (scored["client_id"].to_numpy() == raw["SK_ID_CURR"].to_numpy()).all()
    X = service.scorer.spec.transform_frame(raw)
    np.testing.assert_allclose(scored["default_probability"], service.scorer.predict_proba(X), rtol=1e-6)
    expected = service.scorer.contributions(X)
    shap_columns = [f"shap_{name}" for name in service.scorer.spec.names]
    np.testing.assert_allclose(scored[shap_columns].to_numpy(), expected[:, :-1], atol=1e-5)
    refused = scored["default_probability"] >= service.card.threshold
    assert (scored["decision"] == np.where(refused, "refused", "accepted")).all()


def test_a_file_with_a_missing_column_is_named_and_the_others_are_kept(chunks, workdir, cluster, tmp_path):
    import shutil

    source = tmp_path / "input"
    shutil.copytree(chunks, source)
    broken = source / "application-00001.parquet"
    pq.write_table(pq.read_table(broken).drop(["EXT_SOURCE_2"]), broken)
    with pytest.raises(BatchError, match=r"(?s)1 of 3 partitions failed.*application-00001.parquet .*lacks the "
                                         r"column\(s\) the model reads: EXT_SOURCE_2"):
        run_batch(tmp_path / "scored", workdir, scheduler=cluster.scheduler_address, input=source, quiet=True)
    kept = sorted(p.name for p in (tmp_path / "scored").glob("scored-*.parquet"))
    assert kept == ["scored-application-00000.parquet", "scored-application-00002.parquet"]
