"""Which `ScoringService` a process uses: the HTTP backend when `SCORING_API_URL` is set, else the
in-process engine; and the audited view of it that one dashboard session acts through.

Light on purpose: the engine (XGBoost, DuckDB) is imported only when the in-process backend is chosen.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

from .config import Workdir
from .contracts import ScoringService

URL_ENV = "SCORING_API_URL"


@functools.lru_cache(maxsize=None)
def local_service(root: str) -> ScoringService:
    """One in-process backend per work directory and process, shared by every session. It follows the artefacts
    (`scoring.serving`): a build, an activated version or an adopted threshold is served from the next call on,
    and the analysts' figures are computed in the background before they are asked for."""
    from .serving import ReloadingService

    return ReloadingService(Workdir.resolve(root))


def open_service(workdir: str | None = None) -> ScoringService:
    """The process-wide backend: over HTTP when `SCORING_API_URL` is set, else in process."""
    if os.environ.get(URL_ENV):
        from .client import HttpScoringService

        return HttpScoringService.from_env()
    return local_service(str(Workdir.resolve(workdir).root))


_audit_logs: dict[Path, Any] = {}


def default_audit_log(workdir: Workdir | None = None) -> Any:
    """The process-wide audit log: PostgreSQL at `SCORING_AUDIT_URL`, else SQLite at `SCORING_AUDIT_DB`,
    else at `<workdir>/data/audit.sqlite`."""
    from .audit import audit_log_from_env

    path = (workdir or Workdir.resolve()).data / "audit.sqlite"
    if path not in _audit_logs:
        _audit_logs[path] = audit_log_from_env(path)
    return _audit_logs[path]


def session_service(service: ScoringService, user: str | None, audit: Any = None,
                    role: str | None = None) -> ScoringService:
    """What one user's session acts through. Over HTTP: the backend naming the user (`X-User`) and, given one,
    their `role` (`X-Role`: the API then allows only what that role may do); the API audits. In process: the
    service wrapped by the audit policy (`audit`, else the default log); the dashboard's state enforces the role."""
    for_user = getattr(service, "for_user", None)
    if hasattr(service, "base_url") and callable(for_user):  # the HTTP backend: the API applies the policy
        return for_user(user, role) if role is not None else for_user(user)
    from .audited import AuditedService

    if isinstance(service, AuditedService):
        return service.for_user(user)
    log = audit if audit is not None else default_audit_log(getattr(service, "workdir", None))
    return AuditedService(service, log, user, "dashboard")
