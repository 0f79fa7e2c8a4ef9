"""Smoke test of a deployment through its public URLs: `python -m scoring smoke --api-url URL [--dashboard-url URL]`.

Checks what a user relies on, in order, and stops at the first failure with a message saying what is wrong:
the API is up and names its model; it answers nothing without a token; with the token (`SCORING_API_TOKEN`,
both roles) a client's file, score and explanation agree; the read is in the audit trail under the token's
identity; the dashboard is up and asks for a login. Exit 0 when all pass, 1 otherwise. Light on purpose
(httpx only): CI runs it against the cloud deployment after each release.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
from dataclasses import dataclass, field
from typing import Callable

import httpx

TOKEN_ENV = "SCORING_API_TOKEN"


class SmokeFailure(Exception):
    """A check of the deployment failed; the message says which and why."""


@dataclass
class SmokeReport:
    passed: list[str] = field(default_factory=list)

    def check(self, name: str, fn: Callable[[], str | None]) -> None:
        detail = fn()
        self.passed.append(f"ok  {name}" + (f": {detail}" if detail else ""))


def _get(client: httpx.Client, path: str, **kwargs) -> httpx.Response:
    try:
        return client.get(path, **kwargs)
    except httpx.HTTPError as exc:
        raise SmokeFailure(f"GET {client.base_url}{path} failed: {type(exc).__name__}: {exc}") from None


def _expect(response: httpx.Response, status: int, what: str) -> httpx.Response:
    if response.status_code != status:
        raise SmokeFailure(f"{what}: expected {status}, got {response.status_code} from {response.request.url} "
                           f"({response.text[:200]!r})")
    return response


def run_smoke(api_url: str, token: str, dashboard_url: str | None = None, timeout: float = 20.0) -> SmokeReport:
    """Every check against the deployment; raises `SmokeFailure` at the first one that fails."""
    if not token:
        raise SmokeFailure(f"no token: set {TOKEN_ENV} to a token of the deployed API with both roles")
    report = SmokeReport()
    auth = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=api_url.rstrip("/"), timeout=timeout, follow_redirects=False) as api:
        def health() -> str:
            body = _expect(_get(api, "/health"), 200, "the API's health").json()
            if body.get("status") != "ok" or not body.get("model_version"):
                raise SmokeFailure(f"the API's health says {body}")
            return f"model {body['model_version']}"

        def login_required() -> None:
            for path in ("/clients?limit=1", "/portfolio", "/model"):
                _expect(_get(api, path), 401, f"GET {path} without a token")

        state: dict = {}

        def client_score_and_explanation() -> str:
            items = _expect(_get(api, "/clients", params={"limit": 1}, headers=auth), 200, "a search").json()["items"]
            if not items:
                raise SmokeFailure("the deployed API has no client file")
            cid = items[0]["client_id"]
            file = _expect(_get(api, f"/clients/{cid}", headers=auth), 200, "a client file").json()
            explanation = _expect(_get(api, f"/clients/{cid}/explanation", headers=auth), 200,
                                  "an explanation").json()
            p = file["score"]["default_probability"]
            from_margin = 1 / (1 + math.exp(-explanation["margin"]))
            if not 0 <= p <= 1 or abs(from_margin - p) > 1e-4 or not explanation["contributions"]:
                raise SmokeFailure(f"client {cid}: probability {p} and explanation (margin {explanation['margin']}) "
                                   f"disagree")
            if (file["score"]["decision"] == "refused") != (p >= file["score"]["threshold"]):
                raise SmokeFailure(f"client {cid}: decision {file['score']['decision']} against threshold "
                                   f"{file['score']['threshold']} and probability {p}")
            state["client_id"] = cid
            return f"client {cid}: {p:.3f}, {file['score']['decision']}"

        def audited() -> None:
            cid = state["client_id"]
            trail = _expect(_get(api, f"/clients/{cid}/audit", headers=auth), 200, "the audit trail").json()
            identity = "token:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]
            if not any(e["event"] == "client_opened" and identity in (e["user"] or "") for e in trail):
                raise SmokeFailure(f"client {cid} was opened but the audit trail has no entry for {identity}")

        report.check("API health", health)
        report.check("API refuses requests without a token", login_required)
        report.check("client file, score and explanation agree", client_score_and_explanation)
        report.check("the read is in the audit trail", audited)
    if dashboard_url:
        with httpx.Client(base_url=dashboard_url.rstrip("/"), timeout=timeout, follow_redirects=False) as dash:
            def dashboard_health() -> None:
                body = _expect(_get(dash, "/health"), 200, "the dashboard's health").json()
                if body.get("status") != "ok":
                    raise SmokeFailure(f"the dashboard's health says {body}")

            def dashboard_login() -> None:
                r = _get(dash, "/dashboard")
                if r.status_code not in (302, 303, 401, 403):
                    raise SmokeFailure(f"the dashboard answered {r.status_code} without a login: it must ask for one")

            report.check("dashboard health", dashboard_health)
            report.check("dashboard asks for a login", dashboard_login)
    return report


def main(api_url: str, dashboard_url: str | None = None) -> int:
    try:
        report = run_smoke(api_url, os.environ.get(TOKEN_ENV, "").strip(), dashboard_url)
    except SmokeFailure as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        return 1
    print("\n".join(report.passed))
    return 0
