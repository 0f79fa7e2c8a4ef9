"""HTTP backend of the scoring interface: the same `ScoringService` over the REST API (`scoring.api`).

`HttpScoringService.from_env()` (chosen by `scoring.backends.open_service` when `SCORING_API_URL`
is set) returns the same contract types (`scoring.contracts`) as the in-process engine, decoded by
their pydantic adapters, and maps HTTP failures back to the
domain's errors: 404 -> `UnknownClientError`, 422 -> `InvalidApplicationError` (naming the field, `3.AMT_CREDIT`
in a batch) / `ValueError`, 401 -> `ApiAuthenticationError`, 503 of the audit log -> `AuditUnavailableError`,
connection refused or timeout -> `ServiceUnavailableError`.
One pooled httpx client per service; it recovers by itself when the API comes back.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping, Sequence
from urllib.parse import quote

import httpx

from .contracts import DecisionFile
from .contracts import ThresholdChange, ThresholdSimulation
from .contracts import (ApplicationField, Assessment, DuplicateClientError, FairnessFigures, FeatureDrift, PerformanceFigures, MonthFigures, AuditEntry, ClientFile, ClientOverview, ClientPage, ClientQuery, DebtCapacity, DecisionRecord,
                        DriftRow, Explanation, FeatureDistribution, Importance, JustificationRequiredError, Offers, Peers,
                        PortfolioSummary, Reasons, Score, from_json, ModelVersion, VersionComparison)
from .contracts import VersionEvent
from .credentials import first_token
from .errors import VersionConflictError
from .errors import (AccessDeniedError, PolicyError, ApiAuthenticationError, AuditUnavailableError, InvalidApplicationError, ScoringError,
                     ServiceUnavailableError, UnknownClientError, RegistryError, UnknownDecisionError,
                     UnknownVersionError)

URL_ENV, TOKEN_ENV, TIMEOUT_ENV = "SCORING_API_URL", "SCORING_API_TOKEN", "SCORING_API_TIMEOUT"
TOKEN_FILE_ENV = "SCORING_API_TOKEN_FILE"  # e.g. a Docker secret; its first token is used
__all__ = ["HttpScoringService", "ApiAuthenticationError", "ServiceUnavailableError"]


def _json_default(value: Any) -> Any:
    item = getattr(value, "item", None)  # a NumPy scalar, without importing NumPy
    if callable(item):
        return item()
    return str(value)  # the API then names the field and the expected type


class HttpScoringService:
    """`ScoringService` over HTTP. Thread-safe: one pooled connection set shared by all sessions."""

    def __init__(self, base_url: str, token: str, timeout: float = 10.0, *, user: str | None = None,
                 _client: httpx.Client | None = None, _shared: dict | None = None):
        if not token:
            raise ApiAuthenticationError(f"no token for the scoring API at {base_url}: set {TOKEN_ENV} "
                                         f"(one of the API's SCORING_API_TOKENS)")
        self.base_url = base_url.rstrip("/")
        self.timeout = float(timeout)
        self.user = user
        self.role: str | None = None
        self._client = _client or httpx.Client(
            base_url=self.base_url, headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(self.timeout, connect=min(self.timeout, 5.0)),
            limits=httpx.Limits(max_connections=32, max_keepalive_connections=16))
        self._shared = _shared if _shared is not None else {}  # roles, shared with for_user() views

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "HttpScoringService":
        env = os.environ if environ is None else environ
        url = env.get(URL_ENV)
        if not url:
            raise ScoringError(f"{URL_ENV} is not set: it names the scoring API, e.g. http://127.0.0.1:8000")
        token = env.get(TOKEN_ENV, "").strip()
        if not token and env.get(TOKEN_FILE_ENV):
            try:
                token = first_token(open(env[TOKEN_FILE_ENV], encoding="utf-8").read())
            except OSError as exc:
                raise ApiAuthenticationError(f"{TOKEN_FILE_ENV}={env[TOKEN_FILE_ENV]} cannot be read "
                                             f"({exc.strerror})") from None
        if not token:
            raise ApiAuthenticationError(f"{URL_ENV} is set ({url}) but {TOKEN_ENV} is not: set it (or "
                                         f"{TOKEN_FILE_ENV}) to one of the API's tokens (`make api` reads them "
                                         f"from secrets/api_tokens)")
        return cls(url, token, timeout=float(env.get(TIMEOUT_ENV, "10")))

    def for_user(self, user: str | None, role: str | None = None) -> "HttpScoringService":
        """A view that sends `X-User: user` (recorded in the API's audit log) and, given one, `X-Role: role` (the API
        then allows only what that role may do), sharing this connection pool. The token must be allowed to
        forward users (`forward-user` in the API's token file)."""
        view = HttpScoringService.__new__(HttpScoringService)
        view.base_url, view.timeout, view.user, view.role = self.base_url, self.timeout, user, role
        view._client, view._shared = self._client, self._shared
        return view

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> "HttpScoringService":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"HttpScoringService({self.base_url!r})"

    # ------------------------------------------------------------------ transport and errors
    def _call(self, method: str, path: str, *, params: dict | None = None, body: Any = None,
              raw: bool = False) -> Any:
        """The JSON answer (`raw=True`: the `httpx.Response` itself, for a file), or the domain's error."""
        headers = {"X-User": self.user} if self.user else {}
        if self.role:
            headers["X-Role"] = self.role
        content = None
        if body is not None:  # NaN/inf are sent as is: the API answers 422 naming the field
            content = json.dumps(body, default=_json_default, allow_nan=True).encode()
            headers["Content-Type"] = "application/json"
        try:
            r = self._client.request(method, path, params=params, content=content, headers=headers)
        except httpx.TimeoutException as exc:
            raise ServiceUnavailableError(f"the scoring API at {self.base_url} did not answer {method} {path} "
                                          f"within {self.timeout:g} s ({type(exc).__name__}); retry later") from None
        except httpx.TransportError as exc:
            raise ServiceUnavailableError(f"the scoring API at {self.base_url} is unreachable ({exc}); check that "
                                          f"it is running (`make api`) and that {URL_ENV} is right") from None
        if r.status_code < 400:
            return r if raw else r.json()
        detail = self._detail(r)
        if r.status_code == 401:
            raise ApiAuthenticationError(f"the scoring API at {self.base_url} refused the token (401: {detail}); "
                                         f"check {TOKEN_ENV}")
        if r.status_code == 403:
            raise AccessDeniedError(f"the scoring API refused this ({detail})")
        if r.status_code == 409 and self._json(r).get("duplicate"):
            raise DuplicateClientError(self._json(r).get("client_id"))
        if r.status_code == 409 and path.startswith("/model/versions"):
            raise VersionConflictError(detail)
        if r.status_code == 404:
            data = self._json(r)
            if "decision_id" in data:
                raise UnknownDecisionError(int(path.split("/")[2]), data["decision_id"])
            if "client_id" in data:
                raise UnknownClientError(data["client_id"])
            if "feature" in data:
                raise KeyError(detail)
            if "version" in data:
                raise UnknownVersionError(data["version"])
            raise ScoringError(f"{self.base_url}{path} does not exist (404): is {URL_ENV} the scoring API?")
        if r.status_code == 422:
            items = self._json(r).get("detail")
            first = items[0] if isinstance(items, list) and items and isinstance(items[0], dict) else {}
            field = self._application_field(path, [str(p) for p in first.get("loc", [])])
            if field is not None:
                raise InvalidApplicationError(field, first.get("msg") or detail)
            if self._json(r).get("justification_required"):
                raise JustificationRequiredError(detail)
            if path.startswith("/model/versions"):
                raise RegistryError(detail)
            if path.startswith("/model/threshold"):
                loc = [str(x) for x in first.get("loc", [])]
                raise PolicyError(loc[-1] if len(loc) > 1 else "threshold", first.get("msg") or detail)
            raise ValueError(detail)
        if r.status_code == 503 and self._json(r).get("audit") is True:
            raise AuditUnavailableError(detail)
        if r.status_code in (502, 503, 504):
            raise ServiceUnavailableError(f"the scoring API at {self.base_url} is unavailable "
                                          f"({r.status_code}: {detail})")
        raise ScoringError(f"the scoring API at {self.base_url} failed on {method} {path} ({r.status_code}: {detail})")

    @staticmethod
    def _application_field(path: str, loc: list[str]) -> str | None:
        """The field an application error of `POST /predict[/batch]` names, as the in-process service names it:
        `AMT_CREDIT`, `3.AMT_CREDIT` (the fourth application of a batch), `application(s)` for the whole body;
        None for an error elsewhere (a query parameter)."""
        if not loc or loc[0] != "body":
            return None
        if path in ("/predict", "/assess"):
            return ".".join(loc[1:]) or "application"
        if path == "/clients":  # a new application: `{"application": {...}, "client_id": ...}`
            return (".".join(loc[2:]) or "application") if loc[1:2] == ["application"] else None
        if path.startswith("/clients/") and path.endswith("/decisions") and loc[1:2] == ["offer"]:
            return ".".join(loc[1:])  # a column of the offer a decision is taken on: `offer.AMT_CREDIT`
        if path == "/predict/batch":
            row = loc[2:] if loc[1:2] == ["applications"] else []
            return "applications" if not row else f"{row[0]}.application" if len(row) == 1 else ".".join(row)
        return None

    @staticmethod
    def _json(r: httpx.Response) -> dict:
        try:
            data = r.json()
        except ValueError:
            return {}
        return data if isinstance(data, dict) else {}

    def _detail(self, r: httpx.Response) -> str:
        data = self._json(r)
        message = data.get("message") or data.get("detail")
        return message if isinstance(message, str) else (r.text[:300] or r.reason_phrase)

    @staticmethod
    def _id(client_id: Any) -> int:
        try:
            return int(client_id)
        except (TypeError, ValueError):
            raise UnknownClientError(client_id) from None

    # ------------------------------------------------------------------ model and portfolio
    @property
    def roles(self) -> frozenset[str]:
        """Business roles present in the client files (fetched once from `GET /model`)."""
        if "roles" not in self._shared:
            self.model_card()
        return self._shared["roles"]

    def model_card(self) -> dict:
        card = self._call("GET", "/model")
        self._shared["roles"] = frozenset(card.pop("roles", ()))
        return card

    def portfolio(self) -> PortfolioSummary:
        return from_json(PortfolioSummary, self._call("GET", "/portfolio"))

    def drift(self) -> list[DriftRow]:
        return from_json(list[DriftRow], self._call("GET", "/model/drift"))

    def fairness(self) -> list[FairnessFigures]:
        return from_json(list[FairnessFigures], self._call("GET", "/model/fairness"))

    def model_versions(self) -> list[ModelVersion]:
        return from_json(list[ModelVersion], self._call("GET", "/model/versions"))

    def compare_versions(self, a: str, b: str) -> VersionComparison:
        return from_json(VersionComparison, self._call("GET", "/model/versions/compare", params={"a": a, "b": b}))

    def model_version_history(self) -> list[VersionEvent]:
        return from_json(list[VersionEvent], self._call("GET", "/model/versions/history"))

    def activate_version(self, version: str, reason: str, user: str | None = None) -> VersionEvent:
        """`user` is not sent: the API records the caller (its token, and the `X-User` it forwards)."""
        return from_json(VersionEvent, self._call("POST", f"/model/versions/{quote(str(version), safe='')}/activate",
                                                  body={"reason": reason}))

    def monitoring(self) -> list[MonthFigures]:
        return from_json(list[MonthFigures], self._call("GET", "/monitoring/months"))

    def feature_drift(self, feature: str, month: str | None = None) -> FeatureDrift:
        params = None if month is None else {"month": str(month)}
        return from_json(FeatureDrift, self._call("GET", f"/monitoring/features/{quote(str(feature), safe='')}",
                                                  params=params))

    def performance(self) -> list[PerformanceFigures]:
        return from_json(list[PerformanceFigures], self._call("GET", "/model/performance"))

    def global_importance(self, top: int = 15) -> list[Importance]:
        return from_json(list[Importance], self._call("GET", "/model/importance",
                                                      params={"top": min(max(1, int(top)), 1000)}))

    def top_features(self, n: int = 5) -> list[Importance]:
        return from_json(list[Importance], self._call("GET", "/model/top-features",
                                                      params={"n": min(max(1, int(n)), 1000)}))

    def contract_types(self) -> list[str]:
        return self._call("GET", "/contract-types")

    # ------------------------------------------------------------------ clients
    def search(self, query: ClientQuery) -> ClientPage:
        params = {k: (str(v).lower() if isinstance(v, bool) else v) for k, v in query.to_params().items()}
        page = self._call("GET", "/clients", params=params)
        return ClientPage(tuple(page["items"]), int(page["total"]), query)

    def client(self, client_id: int) -> ClientFile:
        cid = self._id(client_id)
        return from_json(ClientFile, self._call("GET", f"/clients/{cid}"))

    def explain(self, client_id: int, top: int | None = None) -> Explanation:
        cid = self._id(client_id)
        params = None if top is None else {"top": int(top)}
        return from_json(Explanation, self._call("GET", f"/clients/{cid}/explanation", params=params))

    def overview(self, client_id: int, feature: str | None = None, top: int | None = None) -> ClientOverview:
        cid = self._id(client_id)
        params = {k: v for k, v in (("feature", feature), ("top", top)) if v is not None}
        return from_json(ClientOverview, self._call("GET", f"/clients/{cid}/overview", params=params or None))

    def predict(self, record: Mapping[str, Any], explain: bool = False,
                top: int | None = None) -> tuple[Score, Explanation | None]:
        if not isinstance(record, Mapping):
            raise InvalidApplicationError("application", "must be a mapping of column name to value")
        params: dict[str, Any] = {"explain": "true" if explain else "false"}
        if top is not None:
            params["top"] = int(top)
        out = self._call("POST", "/predict", params=params, body=dict(record))
        score = Score(None, out["default_probability"], out["decision"], out["threshold"], out["model_version"])
        explanation = out.get("explanation")
        return score, None if explanation is None else from_json(Explanation, explanation)

    def predict_batch(self, records: Sequence[Mapping[str, Any]], validated: bool = False) -> list[Score]:
        """`validated` changes nothing here: the API validates what it receives."""
        rows = [dict(r) if isinstance(r, Mapping) else r for r in records]  # the API names a row that is not
        out = self._call("POST", "/predict/batch", body={"applications": rows})
        return [Score(None, p["default_probability"], p["decision"], p["threshold"], p["model_version"])
                for p in out["predictions"]]

    def distribution(self, feature: str, client_id: int | None = None) -> FeatureDistribution:
        params = None if client_id is None else {"client_id": self._id(client_id)}
        return from_json(FeatureDistribution, self._call(
            "GET", f"/features/{quote(str(feature), safe='')}/distribution", params=params))

    def debt_capacity(self, client_id: int) -> DebtCapacity:
        cid = self._id(client_id)
        return from_json(DebtCapacity, self._call("GET", f"/clients/{cid}/debt-capacity"))

    def audit_trail(self, client_id: int, limit: int = 100) -> list[AuditEntry]:
        cid = self._id(client_id)
        return from_json(list[AuditEntry], self._call("GET", f"/clients/{cid}/audit", params={"limit": int(limit)}))

    # ------------------------------------------------------------------ advising a client
    def application(self, client_id: int) -> dict[str, Any]:
        return self._call("GET", f"/clients/{self._id(client_id)}/application")

    def reasons(self, client_id: int, lang: str = "fr") -> Reasons:
        return from_json(Reasons, self._call("GET", f"/clients/{self._id(client_id)}/reasons", params={"lang": lang}))

    def offers(self, client_id: int) -> Offers:
        return from_json(Offers, self._call("GET", f"/clients/{self._id(client_id)}/offers"))

    def peers(self, client_id: int, k: int = 10) -> Peers:
        return from_json(Peers, self._call("GET", f"/clients/{self._id(client_id)}/peers", params={"k": int(k)}))

    def record_decision(self, client_id: int, decision: str, justification: str = "",
                        offer: Mapping[str, float] | None = None, advisor: str | None = None) -> DecisionRecord:
        """`advisor` is not sent: the API records the caller (its token, and the `X-User` it forwards)."""
        body = {"decision": decision, "justification": justification or ""}
        if offer:
            body["offer"] = dict(offer)
        return from_json(DecisionRecord, self._call("POST", f"/clients/{self._id(client_id)}/decisions", body=body))

    def decisions(self, client_id: int) -> list[DecisionRecord]:
        return from_json(list[DecisionRecord], self._call("GET", f"/clients/{self._id(client_id)}/decisions"))

    # ------------------------------------------------------------------ the threshold policy (analysts)
    def threshold_simulation(self, cost_missed_default: float | None = None, cost_refused_good: float | None = None,
                             target_acceptance: float | None = None) -> ThresholdSimulation:
        params = {k: v for k, v in (("cost_missed_default", cost_missed_default),
                                    ("cost_refused_good", cost_refused_good),
                                    ("target_acceptance", target_acceptance)) if v is not None}
        return from_json(ThresholdSimulation, self._call("GET", "/model/threshold/simulation", params=params))

    def threshold_history(self) -> list[ThresholdChange]:
        return from_json(list[ThresholdChange], self._call("GET", "/model/threshold/history"))

    def adopt_threshold(self, threshold: float, reason: str, cost_missed_default: float | None = None,
                        cost_refused_good: float | None = None, target_acceptance: float | None = None,
                        user: str | None = None) -> ThresholdChange:
        """`user` is not sent: the API records the caller (its token, and the `X-User` it forwards)."""
        body = {"threshold": threshold, "reason": reason or ""}
        body.update({k: v for k, v in (("cost_missed_default", cost_missed_default),
                                       ("cost_refused_good", cost_refused_good),
                                       ("target_acceptance", target_acceptance)) if v is not None})
        return from_json(ThresholdChange, self._call("POST", "/model/threshold", body=body))

    # ------------------------------------------------------------------ what-if and new applications
    def application_fields(self) -> list[ApplicationField]:
        return from_json(list[ApplicationField], self._call("GET", "/model/application-fields"))

    def assess(self, application: Mapping[str, Any], lang: str = "fr", client_id: int | None = None) -> Assessment:
        if not isinstance(application, Mapping):
            raise InvalidApplicationError("application", "must be a mapping of column name to value")
        params: dict[str, Any] = {"lang": lang}
        if client_id is not None:
            params["client_id"] = self._id(client_id)
        return from_json(Assessment, self._call("POST", "/assess", params=params, body=dict(application)))

    def create_client(self, application: Mapping[str, Any], client_id: int | None = None,
                      created_by: str | None = None) -> ClientFile:
        """`created_by` is not sent: the API records the caller (its token, and the `X-User` it forwards)."""
        if not isinstance(application, Mapping):
            raise InvalidApplicationError("application", "must be a mapping of column name to value")
        body: dict[str, Any] = {"application": dict(application)}
        if client_id is not None:
            body["client_id"] = client_id
        return from_json(ClientFile, self._call("POST", "/clients", body=body))

    def decision_file(self, client_id: int, decision_id: int, format: str = "html", lang: str = "fr") -> DecisionFile:
        cid = self._id(client_id)
        try:
            did = int(decision_id)
        except (TypeError, ValueError):
            raise UnknownDecisionError(cid, decision_id) from None
        r = self._call("GET", f"/clients/{cid}/decisions/{did}/file", params={"format": format, "lang": lang}, raw=True)
        disposition = r.headers.get("content-disposition", "")
        name = disposition.split("filename=", 1)[1].strip('"') if "filename=" in disposition else f"decision.{format}"
        return DecisionFile(cid, did, name, r.headers.get("content-type", ""), r.content)
