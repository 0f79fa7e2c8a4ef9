"""The Dask cluster a command runs on: an existing `dask.distributed` scheduler (`--scheduler ADDRESS`), or a
local cluster of single-threaded worker processes, one per core by default. Used by `python -m scoring batch`
and `python -m scoring build --scheduler|--dask-workers`."""

from __future__ import annotations

import contextlib
import os
from typing import Iterator

from .errors import ScoringError

CONNECT_TIMEOUT_S = 10


class ClusterUnreachableError(ScoringError):
    """The Dask scheduler given cannot be reached."""


@contextlib.contextmanager
def dask_client(scheduler: str | None = None, workers: int | None = None) -> Iterator:
    """A connected `dask.distributed.Client`, closed on exit (with its local cluster, if one was started)."""
    from dask.distributed import Client, LocalCluster

    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT_S)
        except (OSError, TimeoutError) as exc:
            raise ClusterUnreachableError(
                f"cannot reach the Dask scheduler at {scheduler} within {CONNECT_TIMEOUT_S} s ({exc}); "
                f"check that `dask scheduler` runs there and that this machine can reach its port") from None
        cluster = None
    else:
        cluster = LocalCluster(n_workers=workers or os.cpu_count() or 1, threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
    try:
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def worker_count(client) -> int:
    return len(client.scheduler_info().get("workers", {}))
