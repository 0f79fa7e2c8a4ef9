"""The scoring REST API: the domain the dashboard uses, over HTTP, behind bearer tokens, with an audit log.

`create_app(service, tokens=..., audit=...)` builds the FastAPI application (routers by resource,
the service injected with `Depends`, auth as a dependency); `serve()` runs it with uvicorn for
`python -m scoring api`. Results are the domain's dataclasses, so `scoring.client` rebuilds
exactly what `LocalScoringService` returns.
"""

from __future__ import annotations

import asyncio
import gc
import hashlib
import hmac
import json
import math
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Annotated, Any, Literal, Optional

from annotated_types import Ge, Le
from fastapi import APIRouter, Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from fastapi_offline import FastAPIOffline
from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import request_response
from typing_extensions import TypedDict  # pydantic needs typing_extensions' TypedDict before Python 3.12

from .audit import AUDIT_ERRORS, AuditLog, Entry, PostgresAuditLog
from .batching import MicroBatcher
from .credentials import read_tokens
from .errors import InvalidApplicationError, ModelError, ScoringError, UnknownClientError
from .features import FeatureSpec
from .scorer import Explanation, Score
from .service import (ClientFile, DebtCapacity, DriftRow, FeatureDistribution, LocalScoringService,
                      PortfolioSummary, to_jsonable)
from .store import MAX_PAGE, SORTABLE, ClientQuery

TOKENS_ENV, TOKENS_FILE_ENV = "SCORING_API_TOKENS", "SCORING_API_TOKENS_FILE"
INT64 = (-(2**63), 2**63 - 1)
FLOAT32_MAX = 3.4e38  # the model computes in float32: larger magnitudes would silently become missing values
MAX_TOP = 1000
AUDIT_TIMEOUT_S = 15.0  # an audit write not confirmed by then: 503 (the entry may still land later)
ClientId = Annotated[int, Path(description="Client ID (SK_ID_CURR)", examples=[100002])]
_TOP_DOC = "keep the N largest contributions; the rest are summed in `others`"
Top = Annotated[Optional[int], Query(ge=0, le=MAX_TOP, description=_TOP_DOC)]


# ---------------------------------------------------------------------------------------- access
class TokenConfigError(ScoringError):
    """No usable API token configuration."""


def tokens_from_env(environ: dict[str, str] | None = None) -> frozenset[str]:
    """Accepted tokens: `SCORING_API_TOKENS` (comma-separated) plus the file named by `SCORING_API_TOKENS_FILE`."""
    env = os.environ if environ is None else environ
    tokens = read_tokens(env.get(TOKENS_ENV, ""))
    path = env.get(TOKENS_FILE_ENV)
    if path:
        try:
            tokens |= read_tokens(open(path, encoding="utf-8").read())
        except OSError as exc:
            raise TokenConfigError(f"{TOKENS_FILE_ENV}={path} cannot be read ({exc.strerror}); create it with "
                                   f"`python -m scoring secrets` or point it at your token file") from exc
    return tokens


def token_identity(token: str) -> str:
    """What the audit log records for a token: a short hash, never the token."""
    return "token:" + hashlib.sha256(token.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Caller:
    identity: str              # token:<hash> or "anonymous" (--insecure-no-auth)
    user: str | None = None    # X-User forwarded by the dashboard (the person behind the token)

    @property
    def audit_user(self) -> str:
        return f"{self.user} via {self.identity}" if self.user else self.identity


class TokenAuth:
    """Bearer tokens compared in constant time; `None` means authentication is disabled."""

    def __init__(self, tokens: frozenset[str] | None):
        self.enabled = tokens is not None
        self._tokens = [(t.encode("utf-8"), token_identity(t)) for t in (tokens or ())]

    def identify(self, presented: str) -> str | None:
        p = presented.encode("utf-8", "surrogateescape")
        found = None
        for token, identity in self._tokens:  # no early exit: the time does not depend on which token matched
            if hmac.compare_digest(p, token):
                found = identity
        return found


_bearer = HTTPBearer(auto_error=False, description="An API token from SCORING_API_TOKENS or SCORING_API_TOKENS_FILE")
_UNAUTHORIZED = {"WWW-Authenticate": "Bearer"}


MAX_USER = 120  # characters of X-User kept in the audit log
_CALLER_HEADERS = (b"authorization", b"x-user")
_X_USER_DOC = "the person using the dashboard, recorded in the audit log next to the token's identity"


def identify(auth: TokenAuth, authorization: str | None, x_user: str | None) -> Caller:
    """Who is calling, from the `Authorization` and `X-User` headers; 401 without a valid bearer token.

    Used by the `caller` dependency and by `caller_of`, for the routes that read their headers themselves."""
    user = ("".join(ch for ch in x_user if ch.isprintable()).strip() or None) if x_user else None
    if not auth.enabled:
        return Caller("anonymous", user)
    scheme, credentials = get_authorization_scheme_param(authorization)  # as HTTPBearer reads the header
    if not credentials or scheme.lower() != "bearer":
        raise HTTPException(401, "missing bearer token: send the header `Authorization: Bearer <token>`",
                            headers=_UNAUTHORIZED)
    identity = auth.identify(credentials)
    if identity is None:
        raise HTTPException(401, "invalid bearer token: check SCORING_API_TOKEN against the tokens the API accepts",
                            headers=_UNAUTHORIZED)
    return Caller(identity, user)


async def caller(request: Request,  # `credentials` declares the bearer scheme in OpenAPI; `identify` reads it
                 credentials: Annotated[Optional[HTTPAuthorizationCredentials], Depends(_bearer)],
                 x_user: Annotated[Optional[str], Header(max_length=MAX_USER, description=_X_USER_DOC)] = None,
                 ) -> Caller:
    return identify(request.app.state.auth, request.headers.get("authorization"), x_user)


def caller_of(request: Request) -> Caller:
    """`caller` read from the request itself, for the routes on the hot path (`GET /clients/{id}`,
    `POST /predict`): the same checks and errors without FastAPI's dependency resolution, which costs
    ~0.1 ms per request for the bearer scheme and the header (measured in process and with
    bench/bench_api.py). `_caller_openapi` documents what `caller` would."""
    return _caller(request.app.state.auth, *_headers(request.scope, _CALLER_HEADERS))


def _caller(auth: TokenAuth, authorization: str | None, x_user: str | None) -> Caller:
    if x_user is not None and len(x_user) > MAX_USER:
        raise RequestValidationError([{"type": "string_too_long", "loc": ("header", "x-user"),
                                       "msg": f"String should have at most {MAX_USER} characters",
                                       "ctx": {"max_length": MAX_USER}}])
    return identify(auth, authorization, x_user)


def _headers(scope: dict, names: tuple[bytes, ...]) -> list[str | None]:
    """The first value of each header named (lower case, as ASGI gives them), decoded as Starlette does;
    one pass over the request's headers where `request.headers.get` makes one per name."""
    found: list[str | None] = [None] * len(names)
    for key, value in scope["headers"]:
        if key in names:
            i = names.index(key)
            if found[i] is None:
                found[i] = value.decode("latin-1")
    return found


def _caller_openapi(parameters: list[dict] | None = None) -> dict:
    """The OpenAPI `parameters` (plus `X-User`) and `security` of a route that calls `caller_of`."""
    x_user = {"name": "x-user", "in": "header", "required": False, "description": _X_USER_DOC,
              "schema": {"type": "string", "maxLength": MAX_USER}}
    return {"parameters": [*(parameters or []), x_user], "security": [{_bearer.scheme_name: []}]}


async def get_service(request: Request) -> LocalScoringService:  # async: no threadpool hop for a lookup
    return request.app.state.service


Service = Annotated[LocalScoringService, Depends(get_service)]
CallerDep = Annotated[Caller, Depends(caller)]
# Every route but /health depends on `caller`, once: FastAPI walks a router-level dependency and the same
# dependency in an endpoint's parameters separately (sub-dependencies and headers parsed twice, ~0.1 ms per
# request), so the routers whose endpoints take `who: CallerDep` are included without the router-level one and
# their other routes declare SECURED (tests/test_api.py requests every route without a token).
SECURED = [Depends(caller)]


async def _audit(request: Request, who: Caller, *, event: str, client_id: int | None, score: Score) -> None:
    """Write the audit entry before anything is returned.

    SQLite: committed right here, on the event loop (~25 us, no fsync in WAL mode with synchronous=NORMAL).
    Grouping the entries of concurrent requests into one commit (`MicroBatcher`) cost more than it saved:
    an extra loop iteration and a future per request, ~50 us against ~10 us saved per entry shared
    (measured in process, bench/bench_api.py agrees). PostgreSQL: a network round trip, so on the audit
    thread, where the entries of concurrent requests share one commit."""
    state = request.app.state
    if state.audit is None:
        return
    entry = Entry(event, who.audit_user, client_id, score.model_version, score.default_probability,
                  score.decision, "api")
    writes: MicroBatcher | None = state.audit_writes
    try:
        if writes is None:
            state.audit.record_many((entry,))
        else:
            await asyncio.wait_for(writes.submit(entry), AUDIT_TIMEOUT_S)
    except (*AUDIT_ERRORS, asyncio.TimeoutError) as exc:  # no audit entry, no data
        reason = f"no answer within {AUDIT_TIMEOUT_S:g} s" if isinstance(exc, asyncio.TimeoutError) else exc
        raise HTTPException(503, f"the audit log {state.audit} cannot be written ({reason}); "
                                 "nothing was returned") from exc


def _written(audit: AuditLog | PostgresAuditLog, entries: list[Entry]) -> list[None]:
    audit.record_many(entries)
    return [None] * len(entries)


def _checked_id(client_id: int) -> int:
    if not INT64[0] <= client_id <= INT64[1]:
        raise UnknownClientError(client_id)
    return client_id


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


class Importance(BaseModel):
    feature: str
    label: str
    label_fr: str
    importance: float = Field(description="mean |SHAP| over a sample, in log-odds")


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
    """Search and filters of `GET /clients` (the fields of `scoring.store.ClientQuery`)."""
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


class Prediction(BaseModel):
    default_probability: float
    decision: Literal["accepted", "refused"]
    threshold: float
    model_version: str
    explanation: Optional[Explanation] = Field(None, description="with `?explain=true`: SHAP contributions")


class Health(BaseModel):
    status: Literal["ok"]
    model_version: str


def application_model(spec: FeatureSpec, example: dict[str, Any] | None = None) -> TypeAdapter:
    """The body of `POST /predict`, built from the feature spec: every raw column, all optional.

    A TypedDict (validated by pydantic, in Rust): the body comes out as a dict of the columns sent, with
    nothing to convert back (a BaseModel would need `model_dump(by_alias=True, exclude_unset=True)`)."""
    categories = {f.source: f.categories for f in spec.features if f.kind == "categorical" and f.source}
    labels = {f.source: f for f in spec.features if f.source}
    amounts = set(spec.schema.amount_columns)
    fields: dict[str, Any] = {}
    for column in spec.raw_columns:
        f = labels.get(column)
        description = f"{f.label} ({f.label_fr})" if f else column
        if column in categories:
            kind: Any = Literal[tuple(categories[column])]  # type: ignore[valid-type]
        else:
            constraints = [Strict(), AllowInfNan(False), Ge(0 if column in amounts else -FLOAT32_MAX), Le(FLOAT32_MAX)]
            kind = Annotated[float, *constraints]
            description += "; an amount, >= 0" if column in amounts else ""
        fields[column] = Annotated[Optional[kind], Field(description=description)]
    application = TypedDict("Application", fields, total=False)  # type: ignore[misc]
    application.__pydantic_config__ = ConfigDict(  # type: ignore[attr-defined]
        extra="forbid", title="Application", json_schema_extra={"examples": [example]} if example else None)
    return TypeAdapter(application)


# ---------------------------------------------------------------------------------------- errors
def _error_item(e: dict) -> dict:
    item = {"type": e.get("type", "value_error"), "loc": list(e.get("loc", ())), "msg": e.get("msg", "")}
    if item["type"] == "json_invalid" and len(item["loc"]) == 2:  # ["body", character position]
        item["msg"] += f" at character {item['loc'][1]}"
        item["loc"] = ["body"]
    if e.get("ctx"):
        item["ctx"] = {k: str(v) for k, v in e["ctx"].items()}  # never echo NaN/inf back: it is not JSON
    return item


def _field_name(loc: list) -> str:
    parts = [str(p) for p in loc[1:]] if len(loc) > 1 and loc[0] in ("body", "query", "path", "header") else \
        [str(p) for p in loc]
    return ".".join(parts) or "body"


def unprocessable(errors: list[dict]) -> JSONResponse:
    """422 with FastAPI's `detail` list plus one readable `message` naming each field."""
    items = [_error_item(e) for e in errors]
    message = "; ".join(f"{_field_name(i['loc'])}: {i['msg']}"
                        + (f" ({i['ctx']['error']})" if "error" in i.get("ctx", {}) else "") for i in items)
    return JSONResponse({"detail": items, "message": message}, status_code=422)


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError):
        return unprocessable(list(exc.errors()))

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        if exc.status_code == 400 and exc.detail == "There was an error parsing the body":  # e.g. not UTF-8
            return unprocessable([{"type": "json_invalid", "loc": ["body"],
                                   "msg": "the body is not valid JSON text (UTF-8 encoded)"}])
        return await http_exception_handler(request, exc)

    @app.exception_handler(InvalidApplicationError)
    async def _invalid_application(request: Request, exc: InvalidApplicationError):
        return unprocessable([{"type": "value_error", "loc": ["body", exc.field], "msg": str(exc.args[0])
                               .removeprefix(f"{exc.field}: ")}])

    @app.exception_handler(UnknownClientError)
    async def _unknown_client(request: Request, exc: UnknownClientError):
        return JSONResponse({"detail": str(exc), "client_id": exc.client_id}, status_code=404)

    @app.exception_handler(ModelError)
    async def _model_error(request: Request, exc: ModelError):
        return JSONResponse({"detail": f"the model artefacts are unusable: {exc}"}, status_code=503)


# ---------------------------------------------------------------------------------------- routers
# Where handlers run (measured with bench/bench_api.py): DuckDB queries and anything that may build a
# cached reference on first use are plain `def` (threadpool; DuckDB releases the GIL). The scoring
# hot paths, client file, predict and explanation, are sub-millisecond NumPy/XGBoost calls: `async def`
# runs them on the event loop, which avoids a threadpool hop (two for a plain `def` with a response
# model: FastAPI validates the response in the threadpool too) and the GIL hand-over it costs under load.
# `create_app` opens one client file so that the in-memory columns are loaded before the first request.
_E401 = {401: {"description": "missing or invalid bearer token"}}
_E404 = {404: {"description": "unknown client ID (or feature)"}}
_E422 = {422: {"description": "invalid parameter or application; `message` names the field"}}

health = APIRouter(tags=["health"])


@health.get("/health", response_model=Health, summary="Liveness and model version (no token needed)")
async def get_health(service: Service) -> Health:
    return Health(status="ok", model_version=service.card.version)


model = APIRouter(prefix="/model", tags=["model"], responses=_E401)


@model.get("", response_model=ModelCardOut, summary="Model card: metrics, threshold, cost weights, features, version")
def get_model(service: Service):
    return {**service.model_card(), "roles": sorted(service.roles)}


@model.get("/importance", response_model=list[Importance], summary="Global feature importance, largest first",
           responses=_E422)
def get_importance(service: Service, top: Annotated[int, Query(ge=1, le=MAX_TOP)] = 15):
    return service.global_importance(top)


@model.get("/top-features", response_model=list[Importance], summary="The model's main features (for comparisons)",
           responses=_E422)
def get_top_features(service: Service, n: Annotated[int, Query(ge=1, le=MAX_TOP)] = 5):
    return service.top_features(n)


@model.get("/drift", response_model=list[DriftRow], summary="Population stability (PSI) of each feature, "
           "new applications against training")
def get_drift(service: Service):
    return service.drift()


portfolio = APIRouter(tags=["portfolio"], responses=_E401)


@portfolio.get("/portfolio", response_model=PortfolioSummary, summary="Applications, acceptance, model health")
def get_portfolio(service: Service):
    return service.portfolio()


@portfolio.get("/contract-types", response_model=list[str], summary="Contract types, most frequent first")
def get_contract_types(service: Service):
    return service.contract_types()


clients = APIRouter(prefix="/clients", tags=["clients"], responses={**_E401, **_E404, **_E422})


@clients.get("", response_model=ClientPageOut, summary="Search and filter client files, paginated",
             dependencies=SECURED)
def search_clients(service: Service, filters: Annotated[ClientFilter, Query()]):
    try:
        query = ClientQuery(**filters.model_dump())
    except ValueError as exc:
        raise RequestValidationError([{"type": "value_error", "loc": ("query",), "msg": str(exc)}]) from None
    return to_jsonable(service.search(query))


@clients.get("/{client_id}", response_model=ClientFile, openapi_extra=_caller_openapi(),
             summary="Client file: profile, application, default probability, decision, threshold")
async def get_client(request: Request, client_id: ClientId):
    who = caller_of(request)  # the hot path of the dashboard: no dependency resolution (see `caller_of`)
    file = request.app.state.service.client(_checked_id(client_id))
    await _audit(request, who, event="client_opened", client_id=file.client_id, score=file.score)
    return file


@clients.get("/{client_id}/explanation", response_model=Explanation,
             summary="Local explanation: base value and contributions sorted by size, with the client's values")
async def get_explanation(service: Service, who: CallerDep, request: Request, client_id: ClientId, top: Top = None):
    score, explanation = service.score_and_explain(_checked_id(client_id), top)
    await _audit(request, who, event="explained", client_id=client_id, score=score)
    return explanation


@clients.get("/{client_id}/debt-capacity", response_model=DebtCapacity, dependencies=SECURED,
             summary="Debt ratios of the client against the population and the accepted applications")
def get_debt_capacity(service: Service, client_id: ClientId):
    return service.debt_capacity(_checked_id(client_id))


features = APIRouter(prefix="/features", tags=["features"], responses={**_E401, **_E404, **_E422})


@features.get("/{feature}/distribution", response_model=FeatureDistribution,
              summary="Histogram of a feature (repaid vs defaulted), optionally with a client's value and percentile")
def get_distribution(service: Service, feature: Annotated[str, Path(examples=["EXT_SOURCE_2"])],
                     client_id: Annotated[Optional[int], Query(description="mark this client")] = None):
    try:
        return service.distribution(feature, None if client_id is None else _checked_id(client_id))
    except UnknownClientError:
        raise
    except KeyError as exc:
        message = str(exc.args[0]) if exc.args else f"unknown feature {feature!r}"
        return JSONResponse({"detail": message, "feature": feature}, status_code=404)


_JSON_TYPES = ("application/json",)


def _validated(validate_json, content_type: str | None, body: bytes) -> dict[str, Any]:
    """The body of `POST /predict`, the columns sent, validated as FastAPI's body dependency would (or 422s)."""
    media = (content_type or "application/json").split(";")[0].strip().lower()
    if media not in _JSON_TYPES and not media.endswith("+json"):
        raise RequestValidationError([{"type": "model_attributes_type", "loc": ("body",),
                                       "msg": f"send the application as JSON (Content-Type: application/json), "
                                              f"not {media}"}])
    body = body.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark, as some Windows tools write
    if not body or body.isspace():  # as `not body.strip()`, without copying the body
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "Field required"}])
    try:
        return validate_json(body)
    except ValidationError as exc:
        errors = []
        for e in exc.errors(include_url=False):
            if e["type"] == "json_invalid":  # pydantic: "Invalid JSON: <why> at line L column C"
                errors.append({"type": "json_invalid", "loc": ("body",),
                               "msg": f"the body is not valid JSON ({e.get('ctx', {}).get('error', e['msg'])})"})
            else:
                errors.append({**e, "loc": ("body", *e["loc"])})
        raise RequestValidationError(errors) from None


_PREDICT_HEADERS = (*_CALLER_HEADERS, b"content-type")  # read in one pass (`_headers`)


async def _body(request: Request) -> bytes:
    """`await request.body()` without Starlette's stream generator (~1.4 % of `POST /predict`'s CPU, py-spy):
    a body of a few KiB comes in one message. A client gone before the end: `ClientDisconnect`, as Starlette."""
    receive, chunks = request.receive, []
    while True:
        message = await receive()
        if message["type"] == "http.request":
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                return chunks[0] if len(chunks) == 1 else b"".join(chunks)
        elif message["type"] == "http.disconnect":
            raise ClientDisconnect()


class PredictOptions(BaseModel):
    """The query parameters of `POST /predict`."""
    model_config = ConfigDict(extra="ignore")
    explain: bool = Field(False, description="also return the SHAP contributions")
    top: Optional[int] = Field(None, ge=0, le=MAX_TOP, description=_TOP_DOC)  # as `Top` of the other routes


_NO_OPTIONS = PredictOptions()


def _options(request: Request) -> PredictOptions:
    if not request.scope["query_string"]:  # the usual case: no query string to parse
        return _NO_OPTIONS
    try:
        return PredictOptions.model_validate(dict(request.query_params))
    except ValidationError as exc:
        raise RequestValidationError([{**e, "loc": ("query", *e["loc"])}
                                      for e in exc.errors(include_url=False)]) from None


def _predict_openapi(request_body: dict) -> dict:
    """What FastAPI would document for the parameters `predict` reads itself (see `_predict_route`)."""
    options = PredictOptions.model_json_schema()["properties"]
    parameters = [{"name": name, "in": "query", "required": False, "description": field.pop("description"),
                   "schema": field} for name, field in options.items()]
    return {"requestBody": request_body, **_caller_openapi(parameters)}


class RequestRoute(APIRoute):
    """A route documented in OpenAPI like any other, whose requests Starlette serves as it serves its own routes.

    For an endpoint that takes only the `Request` and returns a `Response` itself: FastAPI's per-request
    machinery (exit stacks for dependencies with `yield`, dependency solving, telemetry hooks, response
    checks) has nothing to do there, and cost ~0.1 ms of CPU per request (measured with bench/bench_api.py).
    The application's middleware and exception handlers apply as to every route."""

    def __init__(self, path: str, endpoint, **kwargs):
        super().__init__(path, endpoint, **kwargs)
        self.app = request_response(endpoint)


def _predict_route(service: LocalScoringService) -> tuple[RequestRoute, TypeAdapter]:
    """`POST /predict` and the model of its body (`Application`, added to the OpenAPI components)."""
    spec = service.scorer.spec
    example = None
    if len(service.ids):
        raw = service.store.raw_record(int(service.ids[0]))
        example = {k: v for k, v in raw.items() if v is not None and k in spec.raw_columns}
    Application = application_model(spec, example)
    validate_json = Application.validate_json
    scorer = service.scorer

    examples = {
        "a client's application": {"summary": "a real application from the client files", "value": example or {}},
        "amounts only": {"summary": "only the amounts: the model handles missing values",
                         "value": {k: v for k, v in (example or {}).items() if k in spec.schema.amount_columns}},
    }
    request_body = {"required": True, "content": {"application/json": {
        "schema": {"$ref": "#/components/schemas/Application"}, "examples": examples}}}

    tails: dict[tuple, bytes] = {}

    def prediction_json(score: Score) -> bytes:
        """The JSON `JSONResponse` gives for a prediction without explanation, in a third of the time: only the
        probability changes from one answer to the next; the rest is encoded once per decision."""
        key = (score.decision, score.threshold, score.model_version)
        tail = tails.get(key)
        if tail is None:
            rest = {"decision": score.decision, "threshold": score.threshold, "model_version": score.model_version,
                    "explanation": None}
            tail = tails[key] = b"," + json.dumps(rest, separators=(",", ":"), allow_nan=False).encode()[1:]
        p = score.default_probability
        if not math.isfinite(p):  # as JSONResponse: not JSON
            raise ValueError(f"Out of range float values are not JSON compliant: {p!r}")
        return b'{"default_probability":' + float.__repr__(p).encode() + tail

    # The hot path of the API reads its request itself, with the same checks and errors as FastAPI's
    # dependencies (measured with bench/bench_api.py: ~0.2 ms of CPU less per request than `Depends` for
    # the token, X-User and the query; ~0.3 ms less than `Body` for the application), and is served as a
    # `RequestRoute` (~0.1 ms less again):
    # - token, X-User and Content-Type: one pass over the headers, then `_caller`, as the `caller` dependency
    #   of the other routes, before the body is read;
    # - `?explain=&top=`: `PredictOptions`, the same pydantic types and bounds as the other routes' `Query`;
    # - the body: validated from the raw bytes by the pydantic model FastAPI would use (`validate_json`,
    #   not `json.loads` then a dict validation), with 422s of the same shape (`_validated`).
    # All three are documented in OpenAPI by `_predict_openapi`; tests/test_api.py checks the errors.
    async def predict(request: Request) -> Response:
        state = request.app.state
        authorization, x_user, content_type = _headers(request.scope, _PREDICT_HEADERS)
        who = _caller(state.auth, authorization, x_user)
        options = _options(request)
        record = _validated(validate_json, content_type, await _body(request))
        explanation = None
        if options.explain:
            score, explanation = state.service.predict(record, explain=True, top=options.top)
        else:  # Treelite's GTIL, ~15 us a row: batching concurrent requests saved less than it cost
            score = scorer.score_row(spec.transform_record(record, checked=True)[0])
        await _audit(request, who, event="predicted", client_id=None, score=score)
        if explanation is None:
            return Response(prediction_json(score), media_type="application/json")
        return JSONResponse({"default_probability": score.default_probability, "decision": score.decision,
                             "threshold": score.threshold, "model_version": score.model_version,
                             "explanation": to_jsonable(explanation)})

    route = RequestRoute("/predict", predict, methods=["POST"], response_model=Prediction, tags=["predict"],
                         responses={**_E401, **_E422}, openapi_extra=_predict_openapi(request_body),
                         summary="Score a new application sent as JSON (missing fields are missing values)")
    return route, Application


# ---------------------------------------------------------------------------------------- application
def create_app(service: LocalScoringService, *, tokens: frozenset[str] | None,
               audit: AuditLog | PostgresAuditLog | None = None) -> FastAPI:
    """The API over one in-process service. `tokens=None` disables authentication (local development)."""
    # /docs and /redoc load Swagger UI and ReDoc from this server, not from a CDN: bank intranets are offline
    app = FastAPIOffline(
        title="Credit scoring API",
        version=service.card.version,
        summary="Default probability, decision and explanation of credit applications (Home Credit schema).",
        description="Every endpoint but `/health` needs `Authorization: Bearer <token>`. Probabilities are "
                    "probabilities of default; an application is refused at or above the model's threshold.",
    )
    app.state.service = service
    app.state.auth = TokenAuth(tokens)
    app.state.audit = audit
    # SQLite commits locally: on the event loop (see `_audit`). PostgreSQL is a network round trip: on a thread,
    # so that a slow audit server delays the requests waiting for their entry, not every other request.
    app.state.audit_writes = MicroBatcher(lambda entries: _written(audit, entries),
                                          executor=ThreadPoolExecutor(1, thread_name_prefix="audit")) \
        if isinstance(audit, PostgresAuditLog) else None
    if len(service.ids):  # load the client files' columns now, not on the event loop at the first request
        service.client(int(service.ids[0]))
    _install_error_handlers(app)
    # the scoring route first: Starlette tries routes in order, ~5 us per route passed over
    predict, application = _predict_route(service)
    app.router.routes.insert(0, predict)
    app.include_router(health)
    for router in (clients,):  # each route declares `caller` itself (see SECURED)
        app.include_router(router)
    for router in (model, portfolio, features):
        app.include_router(router, dependencies=SECURED)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, summary=app.summary,
                                 description=app.description, routes=app.routes)
            body = application.json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            components.update(body.pop("$defs", {}))
            components["Application"] = body
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
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
    service = LocalScoringService(Workdir.resolve())
    # Scoring runs on the event loop, one request at a time per process: one XGBoost thread each.
    service.scorer.booster.set_param({"nthread": int(os.environ.get("SCORING_NTHREAD", "1"))})
    app = create_app(service, tokens=tokens or None, audit=_open_audit(service.workdir.data))
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
            if not root.is_built():
                LocalScoringService(root)  # raises the usual "run make model" error
            _open_audit(root.data).close()
            app = "scoring.api:app_from_env"
    except AuditConfigError as exc:  # the model and data errors are reported by `python -m scoring` itself
        print(f"error: {exc}", file=sys.stderr)
        return 2
    access_log = os.environ.get("SCORING_API_ACCESS_LOG", "1") not in ("0", "false", "no")
    config = uvicorn.Config(app, host=host, port=port, workers=workers, factory=workers > 1, access_log=access_log,
                            proxy_headers=True, server_header=False)
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
