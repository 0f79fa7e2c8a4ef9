"""The process-wide in-process service, following the artefacts on disk: a build, an activated model version or
an adopted threshold takes effect in every running server (API workers, dashboard) without a restart.

A `LocalScoringService` never changes once opened. `ReloadingService` holds the current one and delegates every
`ScoringService` method to it; on each call it compares a cheap stamp of the files that say what is served
(`model/model_card.json`, `data/clients.duckdb`, `Workdir.policy_path`, and the global importance a build writes
last: inode, mtime and size; ~40 µs) with the stamp it opened. When they differ, one thread opens a new
`LocalScoringService` and swaps it in under a lock, then starts its background warm-up (`start_governance`); calls
meanwhile keep the one they have (a call in flight finishes on the instance it started on). An open that fails
(e.g. a build half-way through replacing its files) is logged and the old instance keeps serving; the open is tried
again when the stamp changes again. No open starts while a change of what is served (an adoption, an activation:
`scoring.policy.exclusive`) is under way in any process: the old instance serves until the change is whole.

The old instance is freed when nothing holds it any more: its calls in flight and its warm-up thread (the
engine's caches are its own, `scoring.service.CACHED_METHODS`, and go with it).
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

from .config import Workdir
from .contracts import ScoringService
from .policy import settled
from .service import LocalScoringService

log = logging.getLogger(__name__)

Stamp = tuple[tuple[int, int, int] | None, ...]

#: what the wrapper delegates: the protocol's methods, and what the API reads of the engine (its application type
#: for `POST /predict` bodies, the documentation's examples)
DELEGATED = frozenset(name for name in dir(ScoringService) if not name.startswith("_")) | {
    "applications", "application_examples"}


def stamped_files(workdir: Workdir) -> tuple[str, ...]:
    """The files whose change means another model or policy is served."""
    # the global importance too: a build replaces it last, after the card (`scoring.build._swap_in`)
    return tuple(str(p) for p in (workdir.card_path, workdir.store_path, workdir.policy_path, workdir.importance_path))


def artefacts_stamp(files: tuple[str, ...]) -> Stamp:
    """What the served artefacts are now: (inode, mtime in ns, size) of each file, None for a file absent."""
    out = []
    for path in files:
        try:
            st = os.stat(path)
        except FileNotFoundError:
            out.append(None)
        else:
            out.append((st.st_ino, st.st_mtime_ns, st.st_size))
    return tuple(out)


class ReloadingService:
    """A `ScoringService` over the work directory's current artefacts (see the module's docstring)."""

    def __init__(self, workdir: Workdir, warm_up: bool = True):
        self.workdir = workdir
        self._warm_up = warm_up
        self._lock = threading.Lock()
        self._files = stamped_files(workdir)
        self._stamp = artefacts_stamp(self._files)
        self._failed: Stamp | None = None   # the stamp whose open failed: not tried again until it changes
        self._current = self._open()
        self.generation = 0                 # how many times another model was swapped in (the audit policy reads it)

    def _open(self) -> LocalScoringService:
        service = LocalScoringService(self.workdir)
        if self._warm_up:
            service.start_governance()   # the analysts' figures, computed in the background before they are asked for
        return service

    @property
    def current(self) -> LocalScoringService:
        """The instance serving now, opened again first when the artefacts changed since it was opened."""
        stamp = artefacts_stamp(self._files)
        if stamp != self._stamp and stamp != self._failed and self._lock.acquire(blocking=False):
            try:   # one thread opens; the others keep the current instance meanwhile
                self._reload()
            finally:
                self._lock.release()
        return self._current

    def _reload(self) -> None:
        with settled(self.workdir) as ready:
            if ready:   # else a change is under way (another process's): keep serving, look again next call
                self._reload_settled()

    def _reload_settled(self) -> None:
        stamp = artefacts_stamp(self._files)   # taken before opening: a change during the open is seen next call
        if stamp == self._stamp or stamp == self._failed:
            return
        try:
            service = self._open()
        except Exception:   # e.g. a build half-way through: keep serving what was served
            log.exception("the artefacts in %s changed but cannot be opened: still serving model %s",
                          self.workdir.root, self._current.card.version)
            self._failed = stamp
            return
        log.info("now serving model %s (was %s)", service.card.version, self._current.card.version)
        self._current, self._stamp, self._failed = service, stamp, None
        self.generation += 1

    @property
    def served_version(self) -> str:
        """The version of the model serving now, without looking at the files (a liveness probe's answer)."""
        return self._current.card.version

    def __getattr__(self, name: str) -> Any:
        if name in DELEGATED:
            return getattr(self.current, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __repr__(self) -> str:
        return f"ReloadingService({str(self.workdir.root)!r}, serving {self._current.card.version})"
