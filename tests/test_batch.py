"""`python -m scoring batch` on a real local Dask cluster: the same numbers as the in-process scorer,
resumable, a lost worker or a failed partition never loses finished work."""

from __future__ import annotations

import os
import signal
import socket
import threading
import time

import numpy as np
import pytest

pytest.importorskip("dask.distributed")
from dask.distributed import Client, LocalCluster  # noqa: E402

from scoring.__main__ import main  # noqa: E402
from scoring.batch import BatchError, read_batch, run_batch  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as c:
        yield c


def test_two_workers_give_the_in_process_scores_decisions_and_explanations(workdir, service, cluster, tmp_path):
    summary = run_batch(tmp_path / "out", workdir, scheduler=cluster.scheduler_address, partition_rows=700,
                        quiet=True)
    frame = read_batch(tmp_path / "out")
    assert summary.rows == len(frame) == len(service.ids) and summary.workers == 2
    assert (frame["client_id"].to_numpy() == service.ids).all()
    X = np.asarray(service.X)
    np.testing.assert_allclose(frame["default_probability"], service.scorer.predict_proba(X), rtol=1e-6)
    expected = service.scorer.contributions(X)
    shap_columns = [f"shap_{name}" for name in service.scorer.spec.names]
    np.testing.assert_allclose(frame[shap_columns].to_numpy(), expected[:, :-1], atol=1e-5)
    np.testing.assert_allclose(frame["base_value"], expected[:, -1], atol=1e-5)
    refused = frame["default_probability"] >= service.card.threshold
    assert (frame["decision"] == np.where(refused, "refused", "accepted")).all()


def test_a_second_run_redoes_only_what_is_missing(workdir, cluster, tmp_path):
    out = tmp_path / "out"
    first = run_batch(out, workdir, scheduler=cluster.scheduler_address, partition_rows=1000, quiet=True)
    kept = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    (out / "part-00001.parquet").unlink()
    second = run_batch(out, workdir, scheduler=cluster.scheduler_address, partition_rows=1000, quiet=True)
    assert second.skipped == first.partitions - 1
    now = {p.name: p.stat().st_mtime_ns for p in out.glob("part-*.parquet")}
    assert {k for k in now if now[k] != kept.get(k)} == {"part-00001.parquet"}
    with pytest.raises(BatchError, match="another model or partitioning"):
        run_batch(out, workdir, scheduler=cluster.scheduler_address, partition_rows=999, quiet=True)


def test_a_failed_partition_is_named_and_the_others_are_kept(workdir, cluster, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "part-00002.parquet").mkdir()  # the partition cannot be written there
    with pytest.raises(BatchError, match=r"(?s)1 of 4 partitions failed .*partition 2 \(rows 2000-2999\)"):
        run_batch(out, workdir, scheduler=cluster.scheduler_address, partition_rows=1000, quiet=True)
    assert sorted(p.name for p in out.glob("part-*.parquet") if p.is_file()) == [
        "part-00000.parquet", "part-00001.parquet", "part-00003.parquet"]
    assert not list(out.glob(".*"))  # no half-written file left behind
    (out / "part-00002.parquet").rmdir()
    assert run_batch(out, workdir, scheduler=cluster.scheduler_address, partition_rows=1000, quiet=True).skipped == 3


def test_a_worker_lost_mid_run_leaves_the_batch_to_the_others(workdir, service, tmp_path):
    out = tmp_path / "out"
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        pids = list(client.run(os.getpid).values())
        result = {}
        run = threading.Thread(target=lambda: result.update(summary=run_batch(
            out, workdir, scheduler=cluster.scheduler_address, partition_rows=100, quiet=True)))
        run.start()
        deadline = time.monotonic() + 60
        while not list(out.glob("part-*.parquet")) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(pids[0], signal.SIGKILL)  # a machine gone mid-run
        run.join(120)
    assert not run.is_alive() and "summary" in result
    assert len(read_batch(out)) == len(service.ids)


def test_an_unreachable_scheduler_is_a_clear_error(workdir, tmp_path, capsys):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens there once closed
    code = main(["batch", "--workdir", str(workdir.root), "--output", str(tmp_path / "out"),
                 "--scheduler", f"tcp://127.0.0.1:{port}", "--quiet"])
    assert code == 2
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in capsys.readouterr().err
