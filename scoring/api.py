"""The scoring REST API: the domain the dashboard uses, over HTTP, behind bearer tokens, with an audit log.

`create_app(service, tokens=..., audit=...)` builds the FastAPI application: routers by resource, the caller
(bearer token, `X-User`) and the service (`scoring.contracts.ScoringService`, wrapped by the audit policy of
`scoring.audited` for that caller) injected with `Depends`, pydantic bodies, domain errors mapped to HTTP by
exception handlers. `serve()` runs it with uvicorn for `python -m scoring api`. Results are the contracts'
dataclasses, so `scoring.client` rebuilds exactly what the in-process service returns.
"""

import gc
import hashlib
import json
import logging
import hmac
import os
import sys
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

import orjson
from fastapi import APIRouter, Body, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi_offline import FastAPIOffline
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from .application import Applications
from .audit import AUDIT_ERRORS, AuditLog, PostgresAuditLog
from .audited import AuditedService
from .backends import local_service
from .contracts import DECISION_FILE_FORMATS
from .contracts import ThresholdChange, ThresholdSimulation
from .contracts import (ApplicationField, Assessment, DuplicateClientError, FairnessFigures, FeatureDrift, PerformanceFigures, MonthFigures, MAX_BATCH, MAX_JUSTIFICATION, MAX_PAGE, MAX_PEERS, MAX_TOP, SORTABLE, ClientFile,
                        ClientOverview, ClientQuery, AuditEntry, DebtCapacity, DecisionRecord, DriftRow, Explanation,
                        FeatureDistribution, Importance, JustificationRequiredError, Offers, Peers, PortfolioSummary,
                        Reasons, ScoringService, ModelVersion, VersionComparison)
from .contracts import MAX_VERSION_REASON, VersionEvent
from .credentials import FORWARD_USER, ROLES, TokenSpec, parse_token_specs
from .errors import (AuditUnavailableError, PolicyError, InvalidApplicationError, ModelError, RegistryError, ScoringError,
                     UnknownClientError, UnknownDecisionError, UnknownVersionError)
from .errors import VersionConflictError

log = logging.getLogger(__name__)
TOKENS_ENV, TOKENS_FILE_ENV = "SCORING_API_TOKENS", "SCORING_API_TOKENS_FILE"
DOCS_ENV, DOCS_SETTINGS = "SCORING_API_DOCS", ("public", "off")  # /docs, /redoc and /openapi.json
PROXIES_ENV = "SCORING_TRUSTED_PROXIES"  # addresses whose X-Forwarded-For / -Proto are believed
INT64 = (-(2**63), 2**63 - 1)
MAX_USER = 120  # characters of X-User kept in the audit log
MAX_APPLICATION_BYTES = 1 << 20            # the body of POST /predict (an application is a few KiB)
MAX_BATCH_BYTES = MAX_BATCH * 4_000        # the body of POST /predict/batch: 10,000 full applications are ~25 MB
ClientId = Annotated[int, Path(description="Client ID (SK_ID_CURR)", examples=[100002])]
Top = Annotated[Optional[int], Query(ge=0, le=MAX_TOP, description="keep the N largest contributions; the rest "
                                                                   "are summed in `others`")]
_X_USER_DOC = ("the person using the dashboard, recorded in the audit log next to the token's identity (only for "
               "a token allowed to forward users)")
_X_ROLE_DOC = "the role the person acts in (advisor or analyst), one the token grants; default: all the token grants"


# ---------------------------------------------------------------------------------------- access
class TokenConfigError(ScoringError):
    """No usable API token configuration."""


def tokens_from_env(environ: dict[str, str] | None = None) -> frozenset[str]:
    """Accepted token entries (`TOKEN [ROLE+ROLE] [forward-user]`, see `scoring.credentials.parse_token_specs`):
    `SCORING_API_TOKENS` (comma-separated) plus the file named by `SCORING_API_TOKENS_FILE`."""
    env = os.environ if environ is None else environ
    entries = [env.get(TOKENS_ENV, "")]
    path = env.get(TOKENS_FILE_ENV)
    if path:
        try:
            entries.append(open(path, encoding="utf-8").read())
        except OSError as exc:
            raise TokenConfigError(f"{TOKENS_FILE_ENV}={path} cannot be read ({exc.strerror}); create it with "
                                   f"`python -m scoring secrets` or point it at your token file") from exc
    try:
        specs = [spec for text in entries for spec in parse_token_specs(text)]
    except ValueError as exc:
        raise TokenConfigError(f"{exc} (in {TOKENS_ENV} or {TOKENS_FILE_ENV})") from None
    return frozenset(_entry(spec) for spec in specs)


def _entry(spec: TokenSpec) -> str:
    return " ".join([spec.token, "+".join(sorted(spec.roles))] + ([FORWARD_USER] if spec.forward_user else []))


def token_identity(token: str) -> str:
    """What the audit log records for a token: a short hash, never the token."""
    return "token:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Caller:
    identity: str              # token:<hash> or "anonymous" (--insecure-no-auth)
    user: str | None = None    # X-User forwarded by the dashboard (the person behind the token)
    roles: frozenset[str] = frozenset(ROLES)

    @property
    def audit_user(self) -> str:
        return f"{self.user} via {self.identity}" if self.user else self.identity


class TokenAuth:
    """Bearer tokens compared in constant time, with their roles; `None` means authentication is disabled.

    `tokens`: entries `TOKEN [ROLE+ROLE] [forward-user]` (a bare token grants both roles, no forwarding)."""

    def __init__(self, tokens: frozenset[str] | None):
        self.enabled = tokens is not None
        specs = [spec for entry in (tokens or ()) for spec in parse_token_specs(entry)]
        self._tokens = [(spec.token.encode("utf-8"), token_identity(spec.token), spec) for spec in specs]

    def identify(self, presented: str) -> tuple[str, TokenSpec] | None:
        p = presented.encode("utf-8", "surrogateescape")
        found = None
        for token, identity, spec in self._tokens:  # no early exit: the time does not depend on which matched
            if hmac.compare_digest(p, token):
                found = (identity, spec)
        return found


bearer = HTTPBearer(auto_error=False, description="An API token from SCORING_API_TOKENS or SCORING_API_TOKENS_FILE")
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


# The dependencies are `async def`: they only read the request, and a plain `def` would cost each request a
# hop to the threadpool. The routes that read the audit log, DuckDB or the model are plain `def` (threadpool).
async def caller(request: Request,
                 credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(bearer)],
                 x_user: Annotated[Optional[str], Header(max_length=MAX_USER, description=_X_USER_DOC)] = None,
                 x_role: Annotated[Optional[str], Header(max_length=40, description=_X_ROLE_DOC)] = None,
                 ) -> Caller:
    """Who is calling: the identity and roles of a valid bearer token (401 without one), and the person it acts
    for (`X-User`, only for a token allowed to forward one: 403 otherwise) in one of its roles (`X-Role`)."""
    user = ("".join(ch for ch in x_user if ch.isprintable()).strip() or None) if x_user else None
    auth: TokenAuth = request.app.state.auth
    if not auth.enabled:
        if x_role is not None and x_role not in ROLES:
            raise HTTPException(403, f"unknown role in X-Role; roles: {', '.join(ROLES)}")
        return Caller("anonymous", user, frozenset([x_role]) if x_role else frozenset(ROLES))
    if credentials is None:  # no Authorization header, or not the Bearer scheme
        raise HTTPException(401, "missing bearer token: send the header `Authorization: Bearer <token>`",
                            headers=_UNAUTHORIZED)
    found = auth.identify(credentials.credentials)
    if found is None:
        raise HTTPException(401, "invalid bearer token: check SCORING_API_TOKEN against the tokens the API accepts",
                            headers=_UNAUTHORIZED)
    identity, spec = found
    if user is not None and not spec.forward_user:
        raise HTTPException(403, f"this token may not act for another user (X-User): give it `{FORWARD_USER}` in "
                                 f"the API's token file if it belongs to a service, else use the user's own token")
    if x_role is not None and x_role not in spec.roles:
        raise HTTPException(403, f"this token does not grant the role {x_role!r} (X-Role); it grants: "
                                 f"{', '.join(sorted(spec.roles))}")
    return Caller(identity, user, frozenset([x_role]) if x_role else spec.roles)


def requires(role: str):
    """A dependency refusing (403) a caller without `role`."""
    async def check(who: Annotated[Caller, Depends(caller)]) -> None:
        if role not in who.roles:
            raise HTTPException(403, f"this needs the {role} role; the caller has: {', '.join(sorted(who.roles))}")
    return Depends(check)


ADVISOR, ANALYST = requires("advisor"), requires("analyst")


async def caller_service(request: Request, who: Annotated[Caller, Depends(caller)]) -> ScoringService:
    """The service acting for the caller: every client file read or application scored through it is audited
    (`AuditedService`) before it is returned."""
    audited: AuditedService | None = request.app.state.audited
    return request.app.state.service if audited is None else audited.for_user(who.audit_user)


Service = Annotated[ScoringService, Depends(caller_service)]


def known_client(client_id: int) -> int:
    """A client ID the store can look up: beyond 64 bits no client has it."""
    if not INT64[0] <= client_id <= INT64[1]:
        raise UnknownClientError(client_id)
    return client_id


class UnknownFeatureError(ScoringError):
    def __init__(self, feature: str, message: str):
        self.feature = feature
        super().__init__(message)


def _unknown_feature(feature: str, exc: KeyError) -> UnknownFeatureError:
    return UnknownFeatureError(feature, str(exc.args[0]) if exc.args else f"unknown feature {feature!r}")


# ---------------------------------------------------------------------------------------- response models
class ModelCardOut(BaseModel):
    """The model card (`scoring.model.ModelCard.summary()`) plus the business roles of the client files."""
    model_config = ConfigDict(extra="allow")
    version: str
    threshold: float
    cost_weights: dict[str, float]
    metrics: dict[str, Any]
    features: list[dict[str, Any]]
    roles: list[str] = Field(description="business roles present in the data (age_years, income, credit_amount, ...)")


class ClientRow(BaseModel):
    model_config = ConfigDict(extra="allow")
    client_id: int
    split: str
    decision: str
    default_probability: float
    contract_type: Optional[str] = None
    age_years: Optional[float] = None
    income: Optional[float] = None
    credit_amount: Optional[float] = None
    annuity: Optional[float] = None
    term_months: Optional[float] = None


class ClientPageOut(BaseModel):
    total: int = Field(description="client files matching the filters")
    limit: int
    offset: int
    items: list[ClientRow]


class ClientFilter(BaseModel):
    """Search and filters of `GET /clients` (the fields of `scoring.contracts.ClientQuery`)."""
    model_config = ConfigDict(extra="forbid")
    q: Optional[str] = Field(None, max_length=18, pattern=r"^\s*\d*\s*$", description="client ID, exact or prefix")
    decision: Optional[Literal["accepted", "refused"]] = None
    min_probability: Optional[float] = Field(None, ge=0, le=1)
    max_probability: Optional[float] = Field(None, ge=0, le=1)
    contract_type: Optional[str] = Field(None, max_length=200, description="one of `GET /contract-types`")
    min_income: Optional[float] = Field(None, allow_inf_nan=False, description="yearly income")
    max_income: Optional[float] = Field(None, allow_inf_nan=False)
    min_amount: Optional[float] = Field(None, allow_inf_nan=False, description="credit amount")
    max_amount: Optional[float] = Field(None, allow_inf_nan=False)
    min_age: Optional[float] = Field(None, allow_inf_nan=False, description="age in years")
    max_age: Optional[float] = Field(None, allow_inf_nan=False)
    split: Optional[Literal["train", "new"]] = Field(None, description="train: labelled history; new: to decide")
    sort: Literal[tuple(sorted(SORTABLE))] = "client_id"  # type: ignore[valid-type]
    descending: bool = False
    limit: int = Field(20, ge=1, le=MAX_PAGE)
    offset: int = Field(0, ge=0, le=10**9)


class ScoreOut(BaseModel):
    default_probability: float
    decision: Literal["accepted", "refused"]
    threshold: float
    model_version: str


class Prediction(ScoreOut):
    explanation: Optional[Explanation] = Field(None, description="with `?explain=true`: SHAP contributions")


class Predictions(BaseModel):
    predictions: list[ScoreOut] = Field(description="one per application, in the order sent")


class Health(BaseModel):
    status: Literal["ok"]
    model_version: str


# ---------------------------------------------------------------------------------------- errors
_WHERE = ("body", "query", "path", "header")


def _field(loc: list) -> str:
    parts = [str(p) for p in (loc[1:] if len(loc) > 1 and loc[0] in _WHERE else loc)]
    return ".".join(parts) or "body"


def unprocessable(items: list[dict]) -> JSONResponse:
    """422 with FastAPI's `detail` list plus one readable `message` naming each field."""
    message = "; ".join(f"{_field(i['loc'])}: {i['msg']}" for i in items)
    return JSONResponse({"detail": items, "message": message}, status_code=422)


def _error_item(request: Request, e: dict) -> dict:
    """One error of FastAPI's 422, worded for the caller. The input is not echoed back (a batch's would be the
    whole batch, and NaN is not JSON); the context only as text."""
    item = {"type": e["type"], "loc": list(e["loc"]), "msg": e["msg"]}
    if e.get("ctx"):
        item["ctx"] = {k: str(v) for k, v in e["ctx"].items()}
    if item["type"] == "json_invalid":  # FastAPI: loc ["body", character position], the reason in ctx
        item["loc"] = ["body"]
        item["msg"] = f"the body is not valid JSON ({item.get('ctx', {}).get('error', 'JSON decode error')} " \
                      f"at character {e['loc'][-1]})"
    elif item["loc"] == ["body"] and isinstance(e.get("input"), bytes):  # sent, but not as JSON
        content_type = request.headers.get("content-type") or "no Content-Type"
        item["msg"] = f"send the body as JSON (Content-Type: application/json), not {content_type}"
    elif item["loc"][:1] == ["body"] and not (request.url.path.rstrip("/") == "/clients"
                                             and item["loc"][1:2] != ["application"]):
        # an application's field (in `POST /clients`, under "application"): the words of scoring.application
        applications = request.app.state.applications
        item["loc"] = applications.field_loc(item["loc"])
        item["msg"] = applications.reason(e)
    return item


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        items = [_error_item(request, e) for e in exc.errors()]
        # a value that fails every member of a union (a bound, or the sentinel) is one error for the caller
        unique = {(tuple(map(str, i["loc"])), i["msg"]): i for i in items}
        return unprocessable(list(unique.values()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":  # e.g. not UTF-8
            return unprocessable([{"type": "json_invalid", "loc": ["body"],
                                   "msg": "the body is not valid JSON text (UTF-8 encoded)"}])
        return await http_exception_handler(request, exc)

    @app.exception_handler(InvalidApplicationError)
    async def _invalid_application(request: Request, exc: InvalidApplicationError):
        return unprocessable([{"type": "value_error", "loc": ["body", *exc.field.split(".")], "msg": exc.reason}])

    @app.exception_handler(JustificationRequiredError)
    async def _justification_required(request: Request, exc: JustificationRequiredError):
        return JSONResponse({"detail": [{"type": "value_error", "loc": ["body", "justification"], "msg": str(exc)}],
                             "message": f"justification: {exc}", "justification_required": True}, status_code=422)

    @app.exception_handler(DuplicateClientError)
    async def _duplicate_client(request: Request, exc: DuplicateClientError):
        return JSONResponse({"detail": str(exc), "client_id": exc.client_id, "duplicate": True}, status_code=409)

    @app.exception_handler(UnknownClientError)
    async def _unknown_client(request: Request, exc: UnknownClientError):
        return JSONResponse({"detail": str(exc), "client_id": exc.client_id}, status_code=404)

    @app.exception_handler(UnknownDecisionError)
    async def _unknown_decision(request: Request, exc: UnknownDecisionError):
        return JSONResponse({"detail": str(exc), "decision_id": exc.decision_id}, status_code=404)

    @app.exception_handler(UnknownVersionError)
    async def _unknown_version(request: Request, exc: UnknownVersionError):
        return JSONResponse({"detail": str(exc), "version": exc.version}, status_code=404)

    @app.exception_handler(VersionConflictError)
    async def _version_conflict(request: Request, exc: VersionConflictError):
        return JSONResponse({"detail": str(exc), "message": str(exc)}, status_code=409)

    @app.exception_handler(RegistryError)
    async def _registry_error(request: Request, exc: RegistryError):
        return JSONResponse({"detail": str(exc), "message": str(exc)}, status_code=422)

    @app.exception_handler(PolicyError)
    async def _policy_error(request: Request, exc: PolicyError):
        where = "body" if request.method == "POST" else "query"
        return unprocessable([{"type": "value_error", "loc": [where, exc.field], "msg": str(exc)}])

    @app.exception_handler(UnknownFeatureError)
    async def _unknown_feature(request: Request, exc: UnknownFeatureError):
        return JSONResponse({"detail": str(exc), "feature": exc.feature}, status_code=404)

    # Callers read what went wrong and what to do; paths, hosts and database errors stay in the server's log.
    @app.exception_handler(AuditUnavailableError)
    async def _audit_unavailable(request: Request, exc: AuditUnavailableError):
        log.error("%s %s refused, audit log unavailable: %s", request.method, request.url.path, exc.__cause__)
        return JSONResponse({"detail": str(exc), "audit": True}, status_code=503)

    @app.exception_handler(ModelError)
    async def _model_error(request: Request, exc: ModelError):
        log.error("%s %s failed, model artefacts unusable: %s", request.method, request.url.path, exc)
        return JSONResponse({"detail": "the model artefacts are unusable: the server's log says why; rebuild them "
                                       "(python -m scoring build) or call the support desk"}, status_code=503)


# ---------------------------------------------------------------------------------------- routers
_E401 = {401: {"description": "missing or invalid bearer token"}}
_E403 = {403: {"description": "the token (or the user it acts for) lacks the role this needs"}}
_E404 = {404: {"description": "unknown client ID (or feature, or model version)"}}
_E422 = {422: {"description": "invalid parameter or application; `message` names the field"}}
_E503 = {503: {"description": "the audit log cannot be written (`audit: true`): nothing is returned"}}
_SECURED = [Depends(caller)]  # FastAPI solves `caller` once per request, even when `Service` needs it too

health = APIRouter(tags=["health"])


@health.get("/health", summary="Liveness and model version (no token needed)")
async def get_health(request: Request) -> Health:  # async: a liveness probe does not queue for the threadpool
    # a service following the artefacts (scoring.serving) names the model it serves now, which an activation changes
    served = getattr(request.app.state.service, "served_version", None)
    return Health(status="ok", model_version=served or request.app.state.model_version)


model = APIRouter(prefix="/model", tags=["model"], dependencies=_SECURED, responses={**_E401, **_E403})


@model.get("", response_model=ModelCardOut, summary="Model card: metrics, threshold, cost weights, features, version")
def get_model(service: Service) -> dict:
    return {**service.model_card(), "roles": sorted(service.roles)}


@model.get("/importance", summary="Global feature importance, largest first", responses=_E422)
def get_importance(service: Service, top: Annotated[int, Query(ge=1, le=MAX_TOP)] = 15) -> list[Importance]:
    return service.global_importance(top)


@model.get("/top-features", summary="The model's main features (for comparisons)", responses=_E422)
def get_top_features(service: Service, n: Annotated[int, Query(ge=1, le=MAX_TOP)] = 5) -> list[Importance]:
    return service.top_features(n)


@model.get("/application-fields",
           summary="The columns an advisor types: those a what-if may change (`whatif`: the loan and the profile, "
                   "never a protected attribute), then the others a new application gives; bounds, categories, units")
def get_application_fields(service: Service) -> list[ApplicationField]:
    return service.application_fields()


@model.get("/fairness", dependencies=[ANALYST], responses=_E403,
           summary="Decisions by protected attribute (gender, age band) for the labelled applications (out of fold) "
                   "and the new ones: acceptance, errors, calibration, disparate impact, equal opportunity, alerts "
                   "(analysts)")
def get_fairness(service: Service) -> list[FairnessFigures]:
    return service.fairness()


@model.get("/performance", dependencies=[ANALYST], responses=_E403,
           summary="The model on the labelled applications, out of fold, for all of them and by contract type and age "
                   "band: ROC, precision-recall and reliability curves, AUC, KS, Gini, Brier, and the confusion matrix "
                   "at the threshold with its business cost (analysts)")
def get_performance(service: Service) -> list[PerformanceFigures]:
    return service.performance()


@model.get("/versions", dependencies=[ANALYST], responses=_E403,
           summary="Every registered build of the model, newest first, the one served marked active (analysts)")
def get_versions(service: Service) -> list[ModelVersion]:
    return service.model_versions()


@model.get("/versions/compare", dependencies=[ANALYST], responses={**_E403, **_E404, **_E422},
           summary="Version b against version a on the client files both scored: score shift, decisions changed "
                   "each way, acceptance and out-of-fold AUC of each (analysts)")
def get_version_comparison(service: Service, a: Annotated[str, Query(max_length=64)],
                           b: Annotated[str, Query(max_length=64)]) -> VersionComparison:
    return service.compare_versions(a, b)


class ThresholdIn(BaseModel):
    """An analyst adopting a decision threshold: why, and the simulation it came from (costs or target acceptance)."""
    model_config = ConfigDict(extra="forbid")
    threshold: float = Field(gt=0, lt=1, allow_inf_nan=False,
                             description="default probability at or above which an application is refused")
    reason: str = Field(min_length=1, max_length=2_000, description="why (required, kept in the policy's history)")
    cost_missed_default: Optional[float] = Field(None, gt=0, le=1e6, allow_inf_nan=False)
    cost_refused_good: Optional[float] = Field(None, gt=0, le=1e6, allow_inf_nan=False)
    target_acceptance: Optional[float] = Field(None, gt=0, lt=1, allow_inf_nan=False)


_Cost = Annotated[Optional[float], Query(gt=0, le=1e6, allow_inf_nan=False,
                                         description="in units of a refused good client; default: the model card's")]
_Share = Annotated[Optional[float], Query(gt=0, lt=1, allow_inf_nan=False,
                                          description="target acceptance rate (0.75 = 75 %): the proposed threshold "
                                                      "reaches it")]


@model.get("/threshold/simulation", dependencies=[ANALYST], responses={**_E403, **_E422},
           summary="The threshold policy's simulator on the labelled applications (out of fold): acceptance, expected "
                   "loss, error rates and fairness at each threshold, the served one and the proposed one (cheapest "
                   "at the costs, or reaching the target acceptance rate) (analysts)")
def get_threshold_simulation(service: Service, cost_missed_default: _Cost = None, cost_refused_good: _Cost = None,
                             target_acceptance: _Share = None) -> ThresholdSimulation:
    return service.threshold_simulation(cost_missed_default, cost_refused_good, target_acceptance)


@model.get("/threshold/history", dependencies=[ANALYST], responses=_E403,
           summary="The decision thresholds adopted, newest first: who, when, why, from which simulation (analysts)")
def get_threshold_history(service: Service) -> list[ThresholdChange]:
    return service.threshold_history()


@model.post("/threshold", status_code=201, dependencies=[ANALYST], responses={**_E403, **_E422, **_E503},
            summary="Adopt a decision threshold for the model served (audited, kept in the history): every new "
                    "decision is taken at it; 422 without a reason, for a threshold outside (0, 1) or the one served "
                    "(analysts)")
def post_threshold(service: Service, body: ThresholdIn) -> ThresholdChange:
    return service.adopt_threshold(body.threshold, body.reason, body.cost_missed_default, body.cost_refused_good,
                                   body.target_acceptance)


@model.get("/versions/history", dependencies=[ANALYST], responses=_E403,
           summary="The versions' history, newest first: each build registered, each activation with who, why and the "
                   "version served before it (what a rollback serves again) (analysts)")
def get_version_history(service: Service) -> list[VersionEvent]:
    return service.model_version_history()


class ActivationIn(BaseModel):
    """Why an analyst serves another model version (required: it is kept in the history and the audit log)."""
    model_config = ConfigDict(extra="forbid")
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_VERSION_REASON)]


@model.post("/versions/{version}/activate", dependencies=[ANALYST],
            responses={**_E403, **_E404, **_E422, 409: {"description": "A version built on other data or features, "
                                                                       "or the one served already"}},
            summary="Serve a registered version from the next request on, in every process (a rollback: the "
                    "`previous` version of the last activation); audited with the reason (analysts)")
def post_activation(service: Service, who: Annotated[Caller, Depends(caller)],
                    version: Annotated[str, Path(max_length=64)], body: ActivationIn) -> VersionEvent:
    return service.activate_version(version, body.reason, user=who.audit_user)


@model.get("/drift", dependencies=[ANALYST], responses=_E403,
           summary="Population stability (PSI) of each feature, new applications against training (analysts)")
def get_drift(service: Service) -> list[DriftRow]:
    return service.drift()


portfolio = APIRouter(tags=["portfolio"], dependencies=_SECURED, responses={**_E401, **_E403})


@portfolio.get("/monitoring/months", dependencies=[ANALYST],
               summary="The portfolio and the model by month of application: acceptance, score and feature drift "
                       "(PSI), observed and expected default and error rates, AUC where outcomes are known "
                       "(analysts)")
def get_monthly_monitoring(service: Service) -> list[MonthFigures]:
    return service.monitoring()


@portfolio.get("/monitoring/features/{feature}", dependencies=[ANALYST], responses={**_E404, **_E422},
               summary="A monitored feature's distribution in the labelled history (reference) and in the new "
                       "applications, or those of one month, on the same bins, with their PSI (analysts)")
def get_feature_drift(service: Service, feature: Annotated[str, Path(max_length=200, examples=["EXT_SOURCE_3"])],
                      month: Annotated[Optional[str], Query(pattern=r"^\d{4}-(0[1-9]|1[0-2])$",
                                                            description="a month of application, YYYY-MM; default: "
                                                                        "every new application")] = None,
                      ) -> FeatureDrift:
    try:
        return service.feature_drift(feature, month)
    except KeyError as exc:
        raise _unknown_feature(feature, exc) from None
    except ValueError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("query", "month"), "msg": str(exc)}]) from None


@portfolio.get("/portfolio", dependencies=[ANALYST], responses=_E403,
               summary="Applications, acceptance, model health (analysts)")
def get_portfolio(service: Service) -> PortfolioSummary:
    return service.portfolio()


@portfolio.get("/contract-types", summary="Contract types, most frequent first")
def get_contract_types(service: Service) -> list[str]:
    return service.contract_types()


clients = APIRouter(prefix="/clients", tags=["clients"], dependencies=_SECURED,
                    responses={**_E401, **_E403, **_E404, **_E422})


@clients.get("", dependencies=[ADVISOR], summary="Search and filter client files, paginated")
def search_clients(service: Service, filters: Annotated[ClientFilter, Query()]) -> ClientPageOut:
    try:
        query = ClientQuery(**filters.model_dump())
    except ValueError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("query",), "msg": str(exc)}]) from None
    page = service.search(query)
    return ClientPageOut(total=page.total, limit=query.limit, offset=query.offset, items=list(page.items))


@clients.get("/{client_id}", dependencies=[ADVISOR], responses=_E503,
             summary="Client file: profile, application, default probability, decision, threshold")
def get_client(service: Service, client_id: ClientId) -> ClientFile:
    return service.client(known_client(client_id))


@clients.get("/{client_id}/explanation", dependencies=[ADVISOR], responses=_E503,
             summary="Local explanation: base value and contributions sorted by size, with the client's values")
def get_explanation(service: Service, client_id: ClientId, top: Top = None) -> Explanation:
    return service.explain(known_client(client_id), top)


@clients.get("/{client_id}/overview", dependencies=[ADVISOR], responses=_E503,
             summary="Everything the dashboard shows of a client at once: file, explanation, one feature compared "
                     "with the population, debt capacity (one audit entry)")
def get_overview(service: Service, client_id: ClientId, top: Top = None,
                 feature: Annotated[Optional[str], Query(max_length=200, description="a model feature to compare "
                                                         "with the population, e.g. EXT_SOURCE_2")] = None,
                 ) -> ClientOverview:
    try:
        return service.overview(known_client(client_id), feature, top)
    except UnknownClientError:
        raise
    except KeyError as exc:
        raise _unknown_feature(feature, exc) from None


@clients.get("/{client_id}/debt-capacity", dependencies=[ADVISOR],
             summary="Debt capacity: the effort rate ((existing credits' + the loan's monthly payments) / monthly "
                     "income) against the cap (SCORING_EFFORT_CAP, default 35 %), the remaining monthly capacity, the "
                     "largest amount affordable at the term asked, the rank among accepted clients, and the debt "
                     "ratios against the population")
def get_debt_capacity(service: Service, client_id: ClientId) -> DebtCapacity:
    return service.debt_capacity(known_client(client_id))


@clients.get("/{client_id}/audit", dependencies=[ANALYST], responses=_E503,
             summary="Who did what with this client file, newest first (analysts; this read is audited too)")
def get_audit_trail(service: Service, client_id: ClientId,
                    limit: Annotated[int, Query(ge=1, le=1000)] = 100) -> list[AuditEntry]:
    return service.audit_trail(known_client(client_id), limit)


@clients.get("/{client_id}/reasons", dependencies=[ADVISOR], responses=_E503,
             summary="Up to four principal reasons of the decision (risks of a refusal, strengths of an acceptance), "
                     "worded in French or English with the client's values")
def get_reasons(service: Service, client_id: ClientId,
                lang: Annotated[Literal["fr", "en"], Query(description="language of the texts")] = "fr") -> Reasons:
    return service.reasons(known_client(client_id), lang)


@clients.get("/{client_id}/offers", dependencies=[ADVISOR], responses=_E503,
             summary="Counter-offers for a refused application: the closest loans (amount, term, down payment) the "
                     "production model accepts. An accepted application: 200 with no offer and a `message`; so does "
                     "one where nothing within the product's limits passes")
def get_offers(service: Service, client_id: ClientId) -> Offers:
    return service.offers(known_client(client_id))


@clients.get("/{client_id}/peers", dependencies=[ADVISOR], responses=_E503,
             summary="The k labelled applicants most similar to the client (never the client) and their observed "
                     "default rate")
def get_peers(service: Service, client_id: ClientId,
              k: Annotated[int, Query(ge=1, le=MAX_PEERS, description="number of peers")] = 10) -> Peers:
    return service.peers(known_client(client_id), k)


class DecisionIn(BaseModel):
    """An advisor's decision on a client file."""
    model_config = ConfigDict(extra="forbid")
    decision: Literal["accepted", "refused"]
    justification: str = Field("", max_length=MAX_JUSTIFICATION,
                               description="required (not blank) when the decision differs from the model's")
    offer: Optional[dict[str, Annotated[float, Field(ge=0, allow_inf_nan=False)]]] = Field(
        None, description="the `changes` of an offer of `GET /clients/{id}/offers` the decision is taken on, as "
                          "given: anything else is refused (422 on `offer`); the decision is then scored on the "
                          "changed loan by the production model")


@clients.post("/{client_id}/decisions", status_code=201, dependencies=[ADVISOR], responses=_E503,
              summary="Record the advisor's decision (append-only, audited), on the application or one of its offers, "
                      "with the file's trust flags; 422 when it departs from the model's without a justification, or "
                      "when the offer is not one the service gives")
def post_decision(service: Service, client_id: ClientId, body: DecisionIn) -> DecisionRecord:
    return service.record_decision(known_client(client_id), body.decision, body.justification, body.offer)


@clients.get("/{client_id}/decisions", dependencies=[ADVISOR], responses=_E503,
             summary="The decisions recorded on a client file, oldest first")
def get_decisions(service: Service, client_id: ClientId) -> list[DecisionRecord]:
    return service.decisions(known_client(client_id))


@clients.get("/{client_id}/decisions/{decision_id}/file", dependencies=[ADVISOR], responses={
                **_E503, 200: {"content": {"text/html": {}, "application/pdf": {}},
                               "description": "the decision file, as an attachment"},
                404: {"description": "unknown client ID, or no decision of this ID on this client file"}},
             response_class=Response,
             summary="The decision file of a recorded decision (HTML or PDF): the application as scored, model "
                     "version, probability, threshold, review band, reasons, offer, trust flags, advisor, time, "
                     "justification (audited)")
def get_decision_file(service: Service, client_id: ClientId,
                      decision_id: Annotated[int, Path(ge=1, le=INT64[1], description="`id` of a recorded decision")],
                      format: Annotated[Literal[DECISION_FILE_FORMATS], Query(description="html or pdf")] = "html",  # type: ignore[valid-type]
                      lang: Annotated[Literal["fr", "en"], Query(description="language of the file")] = "fr",
                      ) -> Response:
    file = service.decision_file(known_client(client_id), decision_id, format, lang)
    return Response(file.content, media_type=file.media_type,
                    headers={"Content-Disposition": f'attachment; filename="{file.filename}"',
                             "Cache-Control": "no-store"})


features = APIRouter(prefix="/features", tags=["features"], dependencies=_SECURED,
                     responses={**_E401, **_E403, **_E404, **_E422})


@features.get("/{feature}/distribution",
              summary="Histogram of a feature (repaid vs defaulted), optionally with a client's value and percentile")
def get_distribution(service: Service, feature: Annotated[str, Path(examples=["EXT_SOURCE_2"])],
                     who: Annotated[Caller, Depends(caller)],
                     client_id: Annotated[Optional[int], Query(description="mark this client (advisors)")] = None,
                     ) -> FeatureDistribution:
    if client_id is not None and "advisor" not in who.roles:  # a client's value is a client file's content
        raise HTTPException(403, "marking a client needs the advisor role; the caller has: "
                                 + ", ".join(sorted(who.roles)))
    try:
        return service.distribution(feature, None if client_id is None else known_client(client_id))
    except UnknownClientError:
        raise
    except KeyError as exc:
        raise _unknown_feature(feature, exc) from None


class OrjsonRequest(Request):
    """A request whose JSON body is parsed by orjson: 10,000 applications are a 25 MB body, ~200 ms for the
    standard library's parser, ~70 ms for orjson (measured). A body orjson refuses (NaN, Infinity, which the
    standard library accepts) is parsed again by the standard library, so that the 422 names the field."""

    async def json(self) -> Any:
        if not hasattr(self, "_orjson_body"):
            body = await self.body()
            try:
                self._orjson_body = orjson.loads(body)
            except orjson.JSONDecodeError:
                self._orjson_body = json.loads(body)
        return self._orjson_body


class OrjsonRoute(APIRoute):
    """FastAPI's documented way to give routes a custom `Request` class ("Custom Request and APIRoute class")."""

    def get_route_handler(self):
        handler = super().get_route_handler()

        async def orjson_handler(request: Request):
            return await handler(OrjsonRequest(request.scope, request.receive))

        return orjson_handler


def predict_router(applications: Applications, examples: dict[str, dict]) -> APIRouter:
    """`POST /predict` and `POST /predict/batch`, whose bodies are the `Application` type of this model's
    feature spec (`scoring.application`): FastAPI validates and documents them with it; and
    `GET /clients/{id}/application`, which answers that type."""
    Application = applications.type

    class ApplicationBatch(BaseModel):
        applications: list[Application] = Field(  # type: ignore[valid-type]
            min_length=1, max_length=MAX_BATCH, description=f"1 to {MAX_BATCH:,} applications")

    # the client's application, typed by the same `Application` (under /clients, with the client routes)
    files = APIRouter(prefix="/clients", tags=["clients"], dependencies=_SECURED,
                      responses={**_E401, **_E403, **_E404, **_E422})

    @files.get("/{client_id}/application", dependencies=[ADVISOR], responses=_E503, response_model=Application,
               summary="The client's application exactly as `POST /predict` takes it (raw columns, no missing values; "
                       "a value `POST /predict` would refuse, e.g. a category unseen in training, is left out)")
    def get_application(service: Service, client_id: ClientId) -> dict[str, Any]:
        return service.application(known_client(client_id))

    class NewApplication(BaseModel):
        """A new application to score and save as a client file."""
        model_config = ConfigDict(extra="forbid")
        application: Application = Field(  # type: ignore[valid-type]
            description="the application, as `POST /predict` takes it")
        client_id: Optional[int] = Field(None, gt=0, le=INT64[1], description="the ID to give the file (refused "
                                                                               "with 409 if taken); default: the next "
                                                                               "free one")

    @files.post("", status_code=201, max_body_size=MAX_APPLICATION_BYTES, dependencies=[ADVISOR],
                response_model=ClientFile,
                responses={**_E503, 409: {"description": "the client ID is taken (`duplicate: true`)"}},
                summary="Score a new application with the production model and save it as a new client file "
                        "(append-only, audited): found afterwards by `GET /clients` and opened like any file")
    def post_client(service: Service, body: NewApplication) -> ClientFile:
        try:
            return service.create_client(body.application, body.client_id)
        except InvalidApplicationError as exc:
            raise InvalidApplicationError(f"application.{exc.field}", exc.reason) from None

    what_if = APIRouter(tags=["predict"], dependencies=_SECURED, route_class=OrjsonRoute,
                        responses={**_E401, **_E403, **_E404, **_E422, **_E503})

    @what_if.post("/assess", max_body_size=MAX_APPLICATION_BYTES, dependencies=[ADVISOR],
                  summary="Score an application with its principal reasons (production model): with `client_id`, a "
                          "what-if of that client file (`changes` names what differs; a protected attribute may not)")
    def assess(service: Service, application: Annotated[Application, Body(openapi_examples=examples)],
               lang: Annotated[Literal["fr", "en"], Query(description="language of the reasons")] = "fr",
               client_id: Annotated[Optional[int], Query(description="the client file this is a what-if of")] = None,
               ) -> Assessment:
        return service.assess(application, lang, None if client_id is None else known_client(client_id))

    router = APIRouter(prefix="/predict", tags=["predict"], dependencies=_SECURED, route_class=OrjsonRoute,
                       responses={**_E401, **_E403, 413: {"description": "body too large"}, **_E422, **_E503})

    @router.post("", max_body_size=MAX_APPLICATION_BYTES, dependencies=[ADVISOR], responses=_E403,
                 summary="Score a new application sent as JSON (missing fields are missing values)")
    def predict(service: Service, application: Annotated[Application, Body(openapi_examples=examples)],
                explain: Annotated[bool, Query(description="also return the SHAP contributions")] = False,
                top: Top = None) -> Prediction:
        score, explanation = service.predict(application, explain=explain, top=top)
        return Prediction(default_probability=score.default_probability, decision=score.decision,
                          threshold=score.threshold, model_version=score.model_version, explanation=explanation)

    @router.post("/batch", max_body_size=MAX_BATCH_BYTES,
                 summary=f"Score up to {MAX_BATCH:,} applications at once, in order (no explanations); one invalid "
                         f"application refuses the batch")
    def predict_batch(service: Service, batch: ApplicationBatch) -> Predictions:
        scores = service.predict_batch(batch.applications, validated=True)  # FastAPI validated the body
        return Predictions(predictions=[ScoreOut(default_probability=s.default_probability, decision=s.decision,
                                                 threshold=s.threshold, model_version=s.model_version)
                                        for s in scores])

    both = APIRouter()
    both.include_router(files)
    both.include_router(router)
    both.include_router(what_if)
    return both


# ---------------------------------------------------------------------------------------- application
def create_app(service: ScoringService, *, tokens: frozenset[str] | None,
               audit: AuditLog | PostgresAuditLog | None = None, docs: str = "public") -> FastAPI:
    """The API over the in-process service. `tokens=None` disables authentication (local development);
    `audit=None` audits nothing (tests, local development).

    The routes see the service as a `ScoringService`, through the audit policy; the bodies of `POST /predict`
    are the engine's one `Application` type (`service.applications`, with `service.application_examples()`)."""
    version = service.model_card()["version"]
    if docs not in DOCS_SETTINGS:
        raise ValueError(f"{DOCS_ENV} must be one of {', '.join(DOCS_SETTINGS)}, got {docs!r}")
    about = dict(
        title="Credit scoring API",
        version=version,
        summary="Default probability, decision and explanation of credit applications (Home Credit schema).",
        description="Every endpoint but `/health` needs `Authorization: Bearer <token>`. Probabilities are "
                    "probabilities of default; an application is refused at or above the model's threshold.",
    )
    # public: /docs and /redoc load Swagger UI and ReDoc from this server, not from a CDN (bank intranets are
    # offline); the examples are synthetic. off: no /docs, /redoc or /openapi.json at all.
    app = FastAPIOffline(**about) if docs == "public" else FastAPI(**about, docs_url=None, redoc_url=None,
                                                                    openapi_url=None)
    app.state.service = service
    app.state.audited = None if audit is None else AuditedService(service, audit, None, "api")
    app.state.auth = TokenAuth(tokens)
    app.state.model_version = version
    app.state.applications = applications = service.applications
    first = service.search(ClientQuery(limit=1)).items
    if first:  # load the client files' columns now, not during the first request
        service.client(first[0]["client_id"])
    _install_error_handlers(app)
    for router in (health, model, portfolio, clients, features,
                   predict_router(applications, service.application_examples())):
        app.include_router(router)
    return app


INSECURE_ENV = "SCORING_API_INSECURE_NO_AUTH"


class AuditConfigError(ScoringError):
    """The audit log the environment names cannot be opened."""


def _open_audit(data_dir) -> AuditLog | PostgresAuditLog:
    from .audit import audit_log_from_env

    try:
        return audit_log_from_env(data_dir / "audit.sqlite")
    except (OSError, ValueError, *AUDIT_ERRORS) as exc:
        hint = "SCORING_AUDIT_URL" if os.environ.get("SCORING_AUDIT_URL") else \
            "SCORING_AUDIT_DB (a writable path) and SCORING_AUDIT_SYNCHRONOUS"
        raise AuditConfigError(f"cannot open the audit log: {exc} (check {hint})") from exc


def app_from_env() -> FastAPI:
    """The API as `serve` configures it, from the environment: the uvicorn factory of each worker process.

    `SCORING_WORKDIR`, the tokens (`SCORING_API_TOKENS[_FILE]`, or `SCORING_API_INSECURE_NO_AUTH=1`),
    the audit log (`SCORING_AUDIT_URL` or `SCORING_AUDIT_DB`) and `SCORING_NTHREAD`."""
    from .config import Workdir

    tokens = tokens_from_env()
    if not tokens and os.environ.get(INSECURE_ENV) != "1":
        raise TokenConfigError(f"no API token configured: set {TOKENS_ENV} or {TOKENS_FILE_ENV}")
    # Routes run on FastAPI's threadpool, several at a time: one XGBoost thread per call (a batch of 10,000
    # applications takes ~30 ms on one), more with SCORING_NTHREAD.
    workdir = Workdir.resolve()
    service = local_service(str(workdir.root))
    app = create_app(service, tokens=tokens or None, audit=_open_audit(workdir.data),
                     docs=os.environ.get(DOCS_ENV, "public"))
    # The model, the client files' columns and the libraries are ~180k objects that live as long as the
    # process: out of the collector's way, a full collection takes ~1 ms instead of ~110 ms (a latency spike).
    gc.collect()
    gc.freeze()
    return app


def serve(host: str = "127.0.0.1", port: int = 8000, workdir: str | None = None,
          insecure_no_auth: bool = False, workers: int = 1) -> int:
    """`python -m scoring api`: checks the configuration, then uvicorn with `workers` processes; an exit code.

    Each worker loads the model and the client files (~0.5 GB at full size) and serves on the same port;
    they share the audit log (SQLite in WAL mode or PostgreSQL take concurrent writers)."""
    import uvicorn

    from .config import Workdir

    try:
        tokens = tokens_from_env()
    except TokenConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if not tokens and not insecure_no_auth:
        print(f"error: no API token configured, refusing to start. Set {TOKENS_ENV}=<token>[,<token>...] or "
              f"{TOKENS_FILE_ENV}=<file> (`make api` does it with secrets/api_tokens, created by "
              f"`python -m scoring secrets`). For local development only: --insecure-no-auth.", file=sys.stderr)
        return 2
    if tokens and insecure_no_auth:
        print("note: API tokens are configured, so --insecure-no-auth is ignored: tokens are required",
              file=sys.stderr)
    elif not tokens:
        print("WARNING: serving WITHOUT authentication (--insecure-no-auth): anyone who can reach "
              f"{host}:{port} can read every client file. Local development only.", file=sys.stderr)
    if workers < 1:
        print(f"error: --workers must be at least 1, got {workers}", file=sys.stderr)
        return 2
    root = Workdir.resolve(workdir)
    os.environ.update({"SCORING_WORKDIR": str(root.root), INSECURE_ENV: "1" if not tokens else "0"})
    try:
        if workers == 1:
            app: FastAPI | str = app_from_env()
        else:  # checked here, where an error can be printed, then built again in each worker
            root.require_built()  # the usual "run make model" error
            _open_audit(root.data).close()
            app = "scoring.api:app_from_env"
    except AuditConfigError as exc:  # the model and data errors are reported by `python -m scoring` itself
        print(f"error: {exc}", file=sys.stderr)
        return 2
    access_log = os.environ.get("SCORING_API_ACCESS_LOG", "1") not in ("0", "false", "no")
    # X-Forwarded-For and -Proto only from the proxies named (e.g. the TLS terminator's address), never from
    # anyone: a client could otherwise pose as any address in the logs
    proxies = os.environ.get(PROXIES_ENV, "").strip()
    config = uvicorn.Config(app, host=host, port=port, workers=workers, factory=workers > 1, access_log=access_log,
                            proxy_headers=bool(proxies), forwarded_allow_ips=proxies or None, server_header=False)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        try:
            sock = config.bind_socket()
        except SystemExit as exc:  # the port is taken
            return int(exc.code or 1)
        Multiprocess(config, sockets=[sock]).run()
        return 0
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit as exc:  # uvicorn exits when it cannot bind the port
        return int(exc.code or 1)
    return 0 if server.started else 1
