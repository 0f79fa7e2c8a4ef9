"""State of one dashboard session: the portfolio, the search in the client files, the selected client,
the audit trail of a client file.

Plain `param.Parameterized` classes, no widgets: they ask the session's `ScoringService` and hold
what the views show, so every behaviour (selecting a client, filtering, choosing a feature, an
unknown ID, the scoring service or the audit log going down) is tested without a browser. Views
bind to these parameters. The service a session acts through applies the audit policy
(`scoring.backends.session_service`): the state writes no audit entry itself.

The logged-in user's role decides which parts a session has at all: an advisor's has the client files
(search, selected client), an analyst's the portfolio and the audit trail; a part the role may not see is
never built, so nothing of it is fetched. No role (a notebook, local development) has every part.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import param

from scoring.contracts import (ACCEPTED, DECISIONS, LIST_COLUMNS, MAX_JUSTIFICATION, MAX_PAGE, REFUSED, SORTABLE,
                               AuditEntry, ClientFile, ClientQuery, DebtCapacity, DecisionRecord, Explanation,
                               FeatureDistribution, JustificationRequiredError, Offers, Peers, PortfolioSummary, Reasons,
                               ScoringService, is_client_id)
from scoring.contracts import FairnessFigures, FeatureDrift, MonthFigures, PerformanceFigures
from scoring.contracts import ApplicationField, Assessment, DuplicateClientError
from scoring.errors import AuditUnavailableError, InvalidApplicationError, ScoringError, UnknownClientError
from scoring.labels import DAYS_PER_YEAR
from scoring.contracts import DECISION_FILE_FORMATS, DecisionFile, Offer, TrustFlag
from scoring.contracts import ModelVersion, VersionComparison, VersionEvent
from scoring.contracts import ThresholdChange, ThresholdSimulation
from scoring.errors import RegistryError, VersionConflictError
from scoring.errors import PolicyError

from .i18n import LANGUAGES, fmt_number, t

log = logging.getLogger(__name__)

TOP_CONTRIBUTIONS = 10      # waterfall: the ten strongest contributions, the rest summed in "others"
TOP_IMPORTANCE = 15
N_COMPARED_FEATURES = 5
MAX_ID_DIGITS = 19          # a longer number is no client ID (int64): searched for, it would only fail
AUDIT_TRAIL_LIMIT = 100     # entries of a client file's audit trail shown, newest first
N_PEERS = 10                # similar past applicants compared with the client

#: role -> the parts of the page it has (None: no login, every part)
ROLES = ("advisor", "analyst")
PARTS = {"advisor": frozenset({"search", "client"}), "analyst": frozenset({"portfolio", "audit", "governance"}),
         None: frozenset({"portfolio", "search", "client", "audit", "governance"})}

#: filter name -> (store role it needs, ClientQuery min field, ClientQuery max field)
RANGE_FILTERS = {
    "income": ("income", "min_income", "max_income"),
    "amount": ("credit_amount", "min_amount", "max_amount"),
    "age": ("age_years", "min_age", "max_age"),
}
SORT_ROLES = {"client_id": None, "default_probability": None, "age_years": "age_years", "income": "income",
              "credit_amount": "credit_amount", "annuity": "annuity", "term_months": "term_months",
              "debt_ratio": "debt_ratio", "credit_income_ratio": "credit_income_ratio"}


@dataclass(frozen=True)
class Notice:
    """A message for the user, translated when shown (`key` is a text of `views.i18n`)."""

    key: str
    values: dict[str, Any] = field(default_factory=dict)
    level: str = "warning"            # Bootstrap alert level: "warning" | "danger" | "info"

    def text(self, language: str = "fr") -> str:
        return t(self.key, language, **self.values)


def _parse_client_id(text: str) -> int | None:
    """The client ID typed, or None if it is not one (letters, too many digits)."""
    try:
        return int(text) if is_client_id(text) and len(text) <= MAX_ID_DIGITS else None
    except ValueError:
        return None


def _unavailable(exc: Exception) -> Notice:
    """What the user reads when an action failed: the audit log refused it, or the service is down."""
    if isinstance(exc, AuditUnavailableError):
        return Notice("audit_refused", {}, "danger")
    # the page names the kind of failure only: the message may name the API's host or a path (the log keeps it)
    log.warning("scoring service call failed: %s", exc)
    return Notice("unavailable", {"detail": type(exc).__name__}, "danger")


# -------------------------------------------------------------------------------------------- portfolio
class PortfolioState(param.Parameterized):
    """The portfolio and model summary of the top bar (the same for every session)."""

    service = param.Parameter(constant=True, precedence=-1, doc="The ScoringService")
    summary = param.ClassSelector(class_=PortfolioSummary, default=None, allow_None=True, precedence=-1)
    drift = param.List(default=[], precedence=-1, doc="DriftRow per feature, largest PSI first")
    importance = param.List(default=[], precedence=-1, doc="Top global importances (feature, labels, importance)")
    notice = param.ClassSelector(class_=Notice, default=None, allow_None=True, precedence=-1)

    def __init__(self, service: ScoringService, **params):
        super().__init__(service=service, **params)
        self.refresh()

    def refresh(self) -> bool:
        """(Re)load the summary; on a service error keep what was shown and set a notice."""
        try:
            summary = self.service.portfolio()
            drift = sorted(self.service.drift(), key=lambda r: -r.psi)
            importance = self.service.global_importance(TOP_IMPORTANCE)
        except ScoringError as exc:
            self.notice = _unavailable(exc)
            return False
        self.param.update(summary=summary, drift=drift, importance=importance, notice=None)
        return True


# -------------------------------------------------------------------------------------------- search
_bounds_cache: dict[tuple[str | None, str], dict[str, tuple[float, float]]] = {}


def page_frame(items) -> pd.DataFrame:
    """A page of search results (`ClientPage.items`) as a table of `LIST_COLUMNS`."""
    return pd.DataFrame(list(items), columns=list(LIST_COLUMNS))


def _column_bounds(service: ScoringService) -> dict[str, tuple[float, float]]:
    """Min and max of each range filter's column, from two one-row searches. Cached per API address and
    model version: every session has a service of its own (naming its user), over the same client files."""
    key = (getattr(service, "base_url", None), str(service.model_card().get("version")))
    if key in _bounds_cache:
        return _bounds_cache[key]
    bounds = {}
    for name, (role, _, _) in RANGE_FILTERS.items():
        if role not in service.roles:
            continue
        lo = service.search(ClientQuery(sort=role, limit=1)).items
        hi = service.search(ClientQuery(sort=role, descending=True, limit=1)).items
        lo_value, hi_value = (lo[0].get(role) if lo else None), (hi[0].get(role) if hi else None)
        if lo_value is not None and hi_value is not None and math.isfinite(lo_value) and math.isfinite(hi_value):
            step = 1.0 if role == "age_years" else 1000.0
            bounds[name] = (math.floor(float(lo_value) / step) * step, math.ceil(float(hi_value) / step) * step)
    _bounds_cache[key] = bounds
    return bounds


class ClientSearch(param.Parameterized):
    """Filters, sort and page of the client-file table; only the current page is ever fetched."""

    service = param.Parameter(constant=True, precedence=-1)
    q = param.String(default="", doc="Client ID or its first digits")
    decision = param.Selector(default=None, objects=[None, *DECISIONS])
    probability = param.Range(default=(0.0, 1.0), bounds=(0.0, 1.0), doc="Default probability range")
    contract_type = param.Selector(default=None, objects=[None])
    income = param.Range(default=None, allow_None=True, doc="Monthly income range (the client files count flows per month)")
    amount = param.Range(default=None, allow_None=True, doc="Credit amount range")
    age = param.Range(default=None, allow_None=True, doc="Age range, in years")
    sort = param.Selector(default="client_id", objects=sorted(SORTABLE))
    descending = param.Boolean(default=False)
    page = param.Integer(default=1, bounds=(1, None))
    page_size = param.Integer(default=10, bounds=(1, MAX_PAGE))

    rows = param.DataFrame(default=pd.DataFrame(), precedence=-1, doc="The current page of client files")
    total = param.Integer(default=0, precedence=-1, doc="Client files matching the filters")
    notice = param.ClassSelector(class_=Notice, default=None, allow_None=True, precedence=-1)

    _FILTERS = ("q", "decision", "probability", "contract_type", "income", "amount", "age", "sort", "descending")

    def __init__(self, service: ScoringService, **params):
        super().__init__(service=service)
        # choices depend on the dataset: set them on this instance's parameters, then the values
        roles = service.roles
        self.param.contract_type.objects = [None, *service.contract_types()] if "contract_type" in roles else [None]
        self.param.sort.objects = [s for s, role in SORT_ROLES.items() if role is None or role in roles]
        bounds = _column_bounds(service)
        for name in RANGE_FILTERS:
            self.param[name].bounds = bounds.get(name)
            params.setdefault(name, bounds.get(name))
        with param.parameterized.discard_events(self):
            self.param.update(**params)
        self.run()

    @property
    def range_bounds(self) -> dict[str, tuple[float, float]]:
        """Range filters available in this dataset, with the data's min and max."""
        return {name: self.param[name].bounds for name in RANGE_FILTERS if self.param[name].bounds}

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size))

    def query(self) -> ClientQuery:
        """The store query for the current filters and page (untouched ranges filter nothing)."""
        q = self.q.strip()
        lo_p, hi_p = self.probability
        ranges = {}
        for name, (_, lo_field, hi_field) in RANGE_FILTERS.items():
            value, bounds = getattr(self, name), self.param[name].bounds
            if value is None or bounds is None:
                continue
            if value[0] > bounds[0]:
                ranges[lo_field] = float(value[0])
            if value[1] < bounds[1]:
                ranges[hi_field] = float(value[1])
        return ClientQuery(
            q=q if is_client_id(q) and len(q) <= MAX_ID_DIGITS else None, decision=self.decision,
            min_probability=lo_p if lo_p > 0 else None, max_probability=hi_p if hi_p < 1 else None,
            contract_type=self.contract_type, sort=self.sort, descending=self.descending,
            limit=self.page_size, offset=(self.page - 1) * self.page_size, **ranges)

    @param.depends(*_FILTERS, watch=True)
    def _filters_changed(self):
        if self.page != 1:
            self.page = 1           # runs the query through _page_changed
        else:
            self.run()

    @param.depends("page", "page_size", watch=True)
    def _page_changed(self):
        self.run()

    def run(self) -> None:
        """Fetch the current page; a service error keeps the last page shown and sets a notice."""
        try:
            result = self.service.search(self.query())
        except ScoringError as exc:
            self.notice = _unavailable(exc)
            return
        self.param.update(rows=page_frame(result.items), total=result.total, notice=None)

    def next_page(self) -> None:
        if self.page < self.pages:
            self.page += 1

    def previous_page(self) -> None:
        if self.page > 1:
            self.page -= 1

    def client_at(self, row: int) -> int:
        """Client ID of a row of the current page."""
        return int(self.rows["client_id"].iloc[row])


# -------------------------------------------------------------------------------------------- client
class ClientState(param.Parameterized):
    """The selected client and everything shown about them, fetched in one call (`service.overview`) per switch.

    The service audits the switch: if its entry cannot be written, nothing of the new client is shown.
    """

    service = param.Parameter(constant=True, precedence=-1)

    client_id = param.Integer(default=None, allow_None=True, doc="Selected application (in the URL as ?client=)")
    feature = param.Selector(default=None, objects=[], doc="Feature compared with the population")

    file = param.ClassSelector(class_=ClientFile, default=None, allow_None=True, precedence=-1)
    explanation = param.ClassSelector(class_=Explanation, default=None, allow_None=True, precedence=-1)
    comparison = param.ClassSelector(class_=FeatureDistribution, default=None, allow_None=True, precedence=-1)
    debt = param.ClassSelector(class_=DebtCapacity, default=None, allow_None=True, precedence=-1)
    flags = param.List(default=[], item_type=TrustFlag, precedence=-1, doc="Why the score deserves less trust")
    top_features = param.List(default=[], precedence=-1, doc="The model's top features (Importance): the choices of `feature`")
    notice = param.ClassSelector(class_=Notice, default=None, allow_None=True, precedence=-1)
    loading = param.Boolean(default=False, precedence=-1, doc="A client file is being fetched (views show Panel's loading indicator)")

    def __init__(self, service: ScoringService, **params):
        top = service.top_features(N_COMPARED_FEATURES)
        super().__init__(service=service, top_features=top)
        self.param.feature.objects = [f.feature for f in top]
        params.setdefault("feature", top[0].feature if top else None)
        client_id = params.pop("client_id", None)
        with param.parameterized.discard_events(self):
            self.param.update(**params)
        self._load_comparison()
        if client_id is not None:
            self.client_id = client_id

    # -------------------------------------------------------------- actions
    def open(self, text: str | int) -> bool:
        """Open the client file typed by the user; a bad or unknown ID sets a notice and keeps the current one."""
        text = str(text).strip()
        try:
            client_id = int(text) if is_client_id(text) else None
        except ValueError:          # more digits than int() takes (4300): no such application either
            client_id = None
        if client_id is None:
            self.notice = Notice("invalid_id", {"text": text if len(text) <= 40 else text[:40] + "…"})
            return False
        if self.file is not None and self.file.client_id == client_id:
            self.notice = None
            return True
        self.client_id = client_id
        return self.file is not None and self.file.client_id == client_id

    @param.depends("client_id", watch=True)
    def _client_changed(self):
        client_id = self.client_id
        shown = self.file.client_id if self.file is not None else None
        if client_id == shown:
            return
        if client_id is None:
            self.param.update(file=None, explanation=None, debt=None, flags=[])
            self._load_comparison()
            return
        try:
            view = self.service.overview(client_id, self.feature, TOP_CONTRIBUTIONS)
        except (UnknownClientError, ValueError):  # ValueError: the API refused the ID as out of range (422)
            key = "unknown_client" if shown is not None else "unknown_client_none"
            self.param.update(client_id=shown, notice=Notice(key, {"client_id": client_id, "previous": shown}))
            return
        except AuditUnavailableError:
            self.param.update(client_id=shown, notice=Notice("audit_unavailable", {"client_id": client_id}, "danger"))
            return
        except ScoringError as exc:
            self.param.update(client_id=shown, notice=_unavailable(exc))
            return
        self.param.update(file=view.file, explanation=view.explanation, comparison=view.comparison, debt=view.debt,
                          notice=None, flags=list(view.flags))

    @param.depends("feature", watch=True)
    def _feature_changed(self):
        self._load_comparison()

    def _load_comparison(self) -> None:
        if self.feature is None:
            self.comparison = None
            return
        try:
            self.comparison = self.service.distribution(
                self.feature, self.file.client_id if self.file is not None else None)
        except ScoringError as exc:
            self.notice = _unavailable(exc)


# -------------------------------------------------------------------------------------------- advice
def _run_now(action) -> None:
    action()


class AdviceState(param.Parameterized):
    """The advisor's answer to the selected client: the principal reasons of the decision, acceptable offers
    for a refused file, similar past applicants, and the advisor's own decision (follow the model, or override it
    with a justification) with the decisions already recorded.

    Loaded after the client file: `schedule` runs the load (at once here; the views pass one that waits for the
    next tick of the server's event loop, so the client file reaches the browser first). Reading any of these is
    audited by the session's service.
    """

    service = param.Parameter(constant=True, precedence=-1)
    client = param.ClassSelector(class_=ClientState, constant=True, precedence=-1)
    language = param.Selector(default="fr", objects=list(LANGUAGES))

    choice = param.Selector(default="follow", objects=["follow", "override"],
                            doc="Follow the model's decision, or take the other one")
    justification = param.String(default="", doc="Why; required when the decision is not the model's")
    offer = param.Integer(default=-1, bounds=(-1, None), allow_None=True,
                          doc="The offer (its index in `offers`) the decision is taken on; -1 (or None, as a choice "
                              "widget may send while its options change): the application as filed")
    file_decision = param.Integer(default=None, allow_None=True,
                                  doc="The recorded decision whose file is downloaded (its id; the latest by default)")
    file_format = param.Selector(default="pdf", objects=list(DECISION_FILE_FORMATS), doc="PDF or HTML")

    reasons = param.ClassSelector(class_=Reasons, default=None, allow_None=True, precedence=-1)
    offers = param.ClassSelector(class_=Offers, default=None, allow_None=True, precedence=-1)
    peers = param.ClassSelector(class_=Peers, default=None, allow_None=True, precedence=-1)
    decisions = param.List(default=[], item_type=DecisionRecord, precedence=-1, doc="Recorded decisions, oldest first")
    notice = param.ClassSelector(class_=Notice, default=None, allow_None=True, precedence=-1)
    loading = param.Boolean(default=False, precedence=-1, doc="Reasons, offers and peers are being fetched")

    def __init__(self, service: ScoringService, client: ClientState, schedule=None, **params):
        super().__init__(service=service, client=client, **params)
        self.schedule = schedule or _run_now
        client.param.watch(self._file_changed, "file")
        if client.file is not None:
            self.loading = True
            self.schedule(self.load)

    @property
    def chosen_offer(self) -> Offer | None:
        """The offer the decision is taken on, or None (the application as filed)."""
        offers = self.offers.offers if self.offers is not None else ()
        return offers[self.offer] if self.offer is not None and 0 <= self.offer < len(offers) else None

    @property
    def model_decision(self) -> str | None:
        """The model's decision on what is decided on: the application as filed, or the chosen offer."""
        file = self.client.file
        if file is None:
            return None
        offer = self.chosen_offer
        return offer.decision if offer is not None else file.score.decision

    @property
    def decision(self) -> str | None:
        """The decision the form would record: the model's, or the other one."""
        model = self.model_decision
        if model is None or self.choice == "follow":
            return model
        return REFUSED if model == ACCEPTED else ACCEPTED

    def _file_changed(self, event) -> None:
        if event.new is None:
            self.param.update(reasons=None, offers=None, peers=None, decisions=[], notice=None, offer=-1,
                              file_decision=None, loading=False)
            return
        if event.old is not None and event.old.client_id == event.new.client_id:
            return
        self.param.update(reasons=None, offers=None, peers=None, decisions=[], notice=None, choice="follow",
                          justification="", offer=-1, file_decision=None, loading=True)
        self.schedule(self.load)

    @param.depends("language", watch=True)
    def _language_changed(self) -> None:
        if self.reasons is not None and self.reasons.lang != self.language:
            self.schedule(self._load_reasons)

    def _fail(self, exc: Exception) -> None:
        self.notice = _unavailable(exc)

    def _load_reasons(self) -> None:
        file = self.client.file
        if file is None:
            return
        try:
            self.reasons = self.service.reasons(file.client_id, self.language)
        except (ScoringError, ValueError) as exc:
            self._fail(exc)

    def load(self) -> None:
        """Reasons, offers, peers and decisions of the client shown; a failure sets a notice and leaves that part
        empty (the client file stays shown)."""
        file = self.client.file
        if file is None:
            self.loading = False
            return
        client_id, found, notice = file.client_id, {}, None
        reads = (("reasons", lambda: self.service.reasons(client_id, self.language)),
                 ("offers", lambda: self.service.offers(client_id)),
                 ("peers", lambda: self.service.peers(client_id, N_PEERS)),
                 ("decisions", lambda: list(self.service.decisions(client_id))))
        try:
            for name, read in reads:
                try:
                    found[name] = read()
                except AuditUnavailableError:
                    raise
                except (ScoringError, ValueError) as exc:
                    notice = notice or _unavailable(exc)
        except AuditUnavailableError as exc:     # nothing read may be shown without its audit entry
            found, notice = {}, _unavailable(exc)
        if self.client.file is None or self.client.file.client_id != client_id:
            return                                # another client was opened meanwhile: its own load runs
        decisions = found.get("decisions", [])
        self.param.update(reasons=found.get("reasons"), offers=found.get("offers"), peers=found.get("peers"),
                          decisions=decisions, file_decision=decisions[-1].id if decisions else None, notice=notice,
                          loading=False)

    def record(self) -> bool:
        """Record the decision of the form; a refusal (no justification for an override, the audit log down...)
        sets a notice and records nothing new in the list."""
        file = self.client.file
        if file is None:
            return False
        justification = self.justification.strip()
        if len(justification) > MAX_JUSTIFICATION:
            self.notice = Notice("justification_too_long", {"limit": MAX_JUSTIFICATION}, "danger")
            return False
        offer = self.chosen_offer
        try:
            record = self.service.record_decision(file.client_id, self.decision, justification,
                                                  offer.changes if offer is not None else None)
        except JustificationRequiredError:
            self.notice = Notice("justification_required", {}, "danger")
            return False
        except AuditUnavailableError as exc:
            self.notice = _unavailable(exc)
            return False
        except (ScoringError, ValueError) as exc:
            self.notice = Notice("decision_refused", {"detail": str(exc) or type(exc).__name__}, "danger")
            return False
        try:
            decisions = list(self.service.decisions(file.client_id))
        except (ScoringError, ValueError) as exc:
            self.notice = _unavailable(exc)
            return True
        self.param.update(decisions=decisions, justification="", choice="follow", offer=-1, file_decision=record.id,
                          notice=Notice("decision_recorded", {}, "info"))
        return True

    def decision_file(self) -> DecisionFile | None:
        """The file of the chosen recorded decision (`file_decision`), in `file_format` and the page's language;
        None, with a notice, when the service refuses (the audit log down...)."""
        file = self.client.file
        if file is None or self.file_decision is None:
            return None
        try:
            return self.service.decision_file(file.client_id, self.file_decision, self.file_format, self.language)
        except AuditUnavailableError as exc:
            self.notice = _unavailable(exc)
        except (ScoringError, ValueError) as exc:
            self.notice = Notice("file_refused", {"detail": str(exc) or type(exc).__name__}, "danger")
        return None


# -------------------------------------------------------------------------------------------- what-if, new application
def shown_value(field: ApplicationField, raw: Any) -> Any:
    """A column's value as an advisor types it: days counted back from the application as years (one decimal),
    a "not given" sentinel (DAYS_EMPLOYED = 365243) as empty; else as it is."""
    if raw is None or (field.sentinel is not None and raw == field.sentinel):
        return None
    if field.kind == "number" and field.unit == "negative_days":
        return round(-float(raw) / DAYS_PER_YEAR, 1)
    return raw


def raw_value(field: ApplicationField, shown: Any) -> Any:
    """The inverse of `shown_value`: years typed back to (negative) days."""
    if shown is None:
        return None
    if field.kind == "number":
        value = float(shown)
        return float(round(-value * DAYS_PER_YEAR)) if field.unit == "negative_days" else value
    return shown


def _field_error(exc: InvalidApplicationError) -> tuple[str, str]:
    """(column, reason) of a refused application; `application.AMT_CREDIT` (a new application over HTTP) names
    the column too."""
    column = exc.field.split(".")[-1] if exc.field.startswith("application.") else exc.field
    return column, exc.reason


class WhatIfState(param.Parameterized):
    """What-if on the open client file: the advisor changes the loan's and the profile's fields (never a protected
    attribute) and sees the production model's probability, decision and principal reasons of the changed
    application, next to those of the application as it stands. A value the service refuses (out of physical
    bounds) is named in `errors` and the last good result stays shown. Every scoring is audited by the service.

    Nothing is read until the advisor starts a what-if (`active`): a client switch costs nothing more.
    """

    service = param.Parameter(constant=True, precedence=-1)
    client = param.ClassSelector(class_=ClientState, constant=True, precedence=-1)
    language = param.Selector(default="fr", objects=list(LANGUAGES))
    active = param.Boolean(default=False, doc="The advisor is trying changes (the open file's, then each file opened)")

    fields = param.List(default=[], item_type=ApplicationField, precedence=-1, doc="The fields a what-if may change")
    values = param.Dict(default={}, precedence=-1, doc="column -> value as typed (years for days)")
    application = param.Dict(default=None, allow_None=True, precedence=-1, doc="The open file's application")
    baseline = param.ClassSelector(class_=Assessment, default=None, allow_None=True, precedence=-1,
                                   doc="The application as it stands, by the production model")
    assessment = param.ClassSelector(class_=Assessment, default=None, allow_None=True, precedence=-1,
                                     doc="The changed application, by the production model")
    errors = param.Dict(default={}, precedence=-1, doc="column -> why the service refused its value")
    notice = param.ClassSelector(class_=Notice, default=None, allow_None=True, precedence=-1)

    def __init__(self, service: ScoringService, client: ClientState, schedule=None, **params):
        super().__init__(service=service, client=client, **params)
        self.schedule = schedule or _run_now
        client.param.watch(self._file_changed, "file")
        if client.file is not None and self.active:
            self.schedule(self.load)

    @param.depends("active", watch=True)
    def _active_changed(self) -> None:
        if self.active and self.application is None:
            self.load()

    def _fields(self) -> list[ApplicationField]:
        if not self.fields:
            self.fields = [f for f in self.service.application_fields() if f.whatif]
        return self.fields

    def _file_changed(self, event) -> None:
        if event.new is None:
            self.param.update(application=None, baseline=None, assessment=None, values={}, errors={}, notice=None)
            return
        if event.old is not None and event.old.client_id == event.new.client_id:
            return
        self.param.update(application=None, baseline=None, assessment=None, values={}, errors={}, notice=None)
        if self.active:
            self.schedule(self.load)

    @param.depends("language", watch=True)
    def _language_changed(self) -> None:
        if self.baseline is not None:
            self.schedule(self.load_scores)

    def load(self) -> None:
        """The open file's application, its fields as typed, and its score as it stands."""
        file = self.client.file
        if file is None:
            return
        client_id = file.client_id
        try:
            fields = self._fields()
            application = self.service.application(client_id)
        except (ScoringError, ValueError) as exc:
            self.notice = _unavailable(exc)
            return
        if self.client.file is None or self.client.file.client_id != client_id:
            return                      # another client was opened meanwhile
        values = {f.column: shown_value(f, application.get(f.column)) for f in fields}
        self.param.update(application=application, values=values, errors={}, notice=None)
        self.load_scores()

    def changed_application(self) -> dict[str, Any]:
        """The open file's application with the fields the advisor changed (a field emptied: a missing value)."""
        application = dict(self.application or {})
        for f in self.fields:
            typed = self.values.get(f.column)
            if typed == shown_value(f, application.get(f.column)):
                continue                # untouched: the file's exact value, not its rounded display
            if typed is None:
                application.pop(f.column, None)
            else:
                application[f.column] = raw_value(f, typed)
        return application

    def load_scores(self) -> None:
        """Score the application as it stands and as changed (one call each, audited)."""
        file = self.client.file
        if file is None or self.application is None:
            return
        try:
            baseline = self.service.assess(self.application, self.language, file.client_id)
        except (InvalidApplicationError, ScoringError, ValueError) as exc:
            self.notice = _unavailable(exc)
            return
        self.baseline = baseline
        self.run()

    def set_value(self, column: str, value: Any) -> None:
        """The advisor typed `value` in `column`: score the changed application at once."""
        if self.values.get(column) == value:
            return
        self.values = {**self.values, column: value}
        self.run()

    def run(self) -> bool:
        """Score the changed application; a refused value is named in `errors` (the last result stays)."""
        file = self.client.file
        if file is None or self.application is None:
            return False
        try:
            assessment = self.service.assess(self.changed_application(), self.language, file.client_id)
        except InvalidApplicationError as exc:
            column, reason = _field_error(exc)
            self.param.update(errors={column: reason}, notice=None)
            return False
        except (ScoringError, ValueError) as exc:
            self.notice = _unavailable(exc)
            return False
        self.param.update(assessment=assessment, errors={}, notice=None)
        return True

    def reset(self) -> None:
        """Back to the file's own values."""
        if self.application is None:
            return
        self.param.update(values={f.column: shown_value(f, self.application.get(f.column)) for f in self.fields},
                          errors={})
        self.run()


class NewApplicationState(param.Parameterized):
    """A new application typed by the advisor: scored by the production model and saved as a new client file
    (audited), which is then opened like any other. A refused value is named in `errors`, nothing is saved."""

    service = param.Parameter(constant=True, precedence=-1)
    client = param.ClassSelector(class_=ClientState, default=None, allow_None=True, constant=True, precedence=-1)
    active = param.Boolean(default=False, doc="The advisor is typing a new application (the form is shown)")

    fields = param.List(default=[], item_type=ApplicationField, precedence=-1)
    values = param.Dict(default={}, precedence=-1, doc="column -> value as typed (years for days); None: not given")
    created = param.ClassSelector(class_=ClientFile, default=None, allow_None=True, precedence=-1,
                                  doc="The last client file created")
    errors = param.Dict(default={}, precedence=-1, doc="column -> why the service refused its value")
    notice = param.ClassSelector(class_=Notice, default=None, allow_None=True, precedence=-1)

    def __init__(self, service: ScoringService, client: ClientState | None = None, **params):
        super().__init__(service=service, client=client, **params)

    @param.depends("active", watch=True)
    def _active_changed(self) -> None:
        if self.active:
            self.load_fields()

    def load_fields(self) -> list[ApplicationField]:
        if not self.fields:
            try:
                self.fields = list(self.service.application_fields())
            except ScoringError as exc:
                self.notice = _unavailable(exc)
        return self.fields

    def set_value(self, column: str, value: Any) -> None:
        self.values = {**self.values, column: value}

    def application(self) -> dict[str, Any]:
        by_column = {f.column: f for f in self.load_fields()}
        return {column: raw_value(by_column[column], value) for column, value in self.values.items()
                if value is not None and column in by_column}

    def create(self, open_file: bool = True) -> bool:
        """Score and save the application typed; with `open_file`, open the new file in the client part."""
        try:
            created = self.service.create_client(self.application())
        except InvalidApplicationError as exc:
            column, reason = _field_error(exc)
            self.param.update(errors={column: reason}, notice=Notice("application_refused", {}, "danger"))
            return False
        except DuplicateClientError as exc:
            self.param.update(errors={}, notice=Notice("application_not_saved", {"detail": str(exc)}, "danger"))
            return False
        except AuditUnavailableError as exc:
            self.param.update(errors={}, notice=_unavailable(exc))
            return False
        except (ScoringError, ValueError) as exc:
            self.param.update(errors={}, notice=_unavailable(exc))
            return False
        self.param.update(created=created, values={}, errors={},
                          notice=Notice("application_created", {"client_id": created.client_id}, "info"))
        if open_file and self.client is not None:
            self.client.client_id = created.client_id
        return True


# -------------------------------------------------------------------------------------------- audit trail
class AuditTrailState(param.Parameterized):
    """Who did what with one client file (analysts): the entries of `service.audit_trail`, newest first.

    Reading a trail is itself audited (the service writes its entry first, so it shows in the trail)."""

    service = param.Parameter(constant=True, precedence=-1)
    client_id = param.Integer(default=None, allow_None=True, doc="The client file whose trail is shown")
    entries = param.List(default=[], item_type=AuditEntry, precedence=-1, doc="AuditEntry, newest first")
    notice = param.ClassSelector(class_=Notice, default=None, allow_None=True, precedence=-1)

    def __init__(self, service: ScoringService, **params):
        super().__init__(service=service, **params)

    def show(self, text: str | int) -> bool:
        """Show the trail of the client file typed; a bad or unknown ID, or a refusal, sets a notice instead."""
        text = str(text).strip()
        client_id = _parse_client_id(text)
        if client_id is None:
            self.notice = Notice("invalid_id", {"text": text if len(text) <= 40 else text[:40] + "…"})
            return False
        try:
            entries = self.service.audit_trail(client_id, AUDIT_TRAIL_LIMIT)
        except (UnknownClientError, ValueError):
            self.param.update(client_id=None, entries=[], notice=Notice("unknown_client_none", {"client_id": client_id}))
            return False
        except AuditUnavailableError:
            self.param.update(client_id=None, entries=[], notice=Notice("audit_refused", {}, "danger"))
            return False
        except ScoringError as exc:
            self.param.update(client_id=None, entries=[], notice=_unavailable(exc))
            return False
        self.param.update(client_id=client_id, entries=list(entries), notice=None)
        return True


# -------------------------------------------------------------------------------------------- governance
SEGMENTS = ("all", "contract_type", "age")   # the performance figures' segments (`ScoringService.performance`)


def features_by_last_psi(months: list[MonthFigures]) -> list[str]:
    """The monitored features, the one drifting most in the last month first."""
    if not months:
        return []
    last = months[-1].feature_psi
    return sorted(last, key=lambda name: -last[name])


class GovernanceState(param.Parameterized):
    """The analysts' view of the model (issue 13): fairness by protected attribute, monitoring by month, the
    reference and current distributions of one monitored feature, the performance by segment.

    Loaded after the page shows (`schedule`, as the advice is): `loading` is true until then. The figures come
    computed from the service (the in-process one computes them in the background when it starts)."""

    service = param.Parameter(constant=True, precedence=-1)
    feature = param.Selector(default=None, objects=[None], doc="The monitored feature whose distributions are shown")
    month = param.Selector(default=None, objects=[None], doc="Its current distribution: this month; None: every new "
                                                             "application")
    segment = param.Selector(default="all", objects=list(SEGMENTS), doc="Performance: all, by contract type, by age")
    group = param.Selector(default="all", objects=["all"], doc="Performance: the group of the segment shown")

    fairness = param.List(default=[], item_type=FairnessFigures, precedence=-1)
    months = param.List(default=[], item_type=MonthFigures, precedence=-1, doc="Monitoring, oldest month first")
    drift = param.ClassSelector(class_=FeatureDrift, default=None, allow_None=True, precedence=-1)
    performance = param.List(default=[], item_type=PerformanceFigures, precedence=-1)
    notice = param.ClassSelector(class_=Notice, default=None, allow_None=True, precedence=-1)
    loading = param.Boolean(default=True, precedence=-1, doc="The figures are being fetched")

    def __init__(self, service: ScoringService, schedule=None, **params):
        super().__init__(service=service, **params)
        (schedule or _run_now)(self.load)

    @property
    def features(self) -> list[str]:
        """The monitored features, the one drifting most in the last month first."""
        return features_by_last_psi(self.months)

    @property
    def figures(self) -> PerformanceFigures | None:
        """The performance figures of the segment and group chosen."""
        group = "all" if self.segment == "all" else self.group
        return next((f for f in self.performance if f.segment == self.segment and f.group == group), None)

    def load(self) -> None:
        """Fairness, months and performance; then the distributions of the feature drifting most. A failure sets a
        notice and leaves its part empty."""
        found, notice = {}, None
        for name, read in (("fairness", self.service.fairness), ("months", self.service.monitoring),
                           ("performance", self.service.performance)):
            try:
                found[name] = list(read())
            except ScoringError as exc:
                notice = notice or _unavailable(exc)
        months = found.get("months", [])
        features = features_by_last_psi(months)
        with param.parameterized.discard_events(self):
            self.param.feature.objects = [None, *features]
            self.param.month.objects = [None, *(m.month for m in months)]
            performance = found.get("performance", [])
            self.param.segment.objects = [s for s in SEGMENTS if any(f.segment == s for f in performance)] or ["all"]
            self._segment_groups(performance)
        self.param.update(fairness=found.get("fairness", []), months=months,
                          performance=found.get("performance", []), notice=notice, loading=False,
                          feature=features[0] if features else None)   # loads its distributions

    def _segment_groups(self, performance) -> None:
        groups = [f.group for f in performance if f.segment == self.segment] or ["all"]
        self.param.group.objects = groups
        if self.group not in groups:
            self.group = groups[0]

    @param.depends("segment", watch=True)
    def _segment_changed(self) -> None:
        self._segment_groups(self.performance)

    def select_feature(self, feature: str) -> bool:
        """Show a monitored feature's distributions (a click on it); another name is ignored."""
        if feature not in self.param.feature.objects:
            return False
        self.feature = feature
        return True

    @param.depends("feature", "month", watch=True)
    def _load_drift(self) -> None:
        if self.feature is None:
            self.drift = None
            return
        try:
            self.param.update(drift=self.service.feature_drift(self.feature, self.month), notice=None)
        except (ScoringError, KeyError, ValueError) as exc:
            self.param.update(drift=None, notice=_unavailable(exc))


# -------------------------------------------------------------------------------------------- the session
class DashboardState(param.Parameterized):
    """One session's state, shared by the top bar, the side bar and the centre.

    `service` is what the session acts through: `scoring.backends.session_service(...)`, which audits
    (by default the process-wide backend acting for no named user). `role` ("advisor", "analyst" or None for
    every part) decides which parts exist: those of another role are None, never built nor fetched.
    """

    language = param.Selector(default="fr", objects=list(LANGUAGES), doc="fr (default) or en")
    role = param.Selector(default=None, objects=[None, *ROLES], constant=True,
                          doc="The logged-in user's role; None (no login): every part")
    portfolio = param.ClassSelector(class_=PortfolioState, default=None, allow_None=True, constant=True,
                                    precedence=-1)
    search = param.ClassSelector(class_=ClientSearch, default=None, allow_None=True, constant=True, precedence=-1)
    client = param.ClassSelector(class_=ClientState, default=None, allow_None=True, constant=True, precedence=-1)
    audit = param.ClassSelector(class_=AuditTrailState, default=None, allow_None=True, constant=True,
                                precedence=-1)
    advice = param.ClassSelector(class_=AdviceState, default=None, allow_None=True, constant=True, precedence=-1,
                                 doc="The advisor's answer to the selected client (with the client part only)")
    governance = param.ClassSelector(class_=GovernanceState, default=None, allow_None=True, constant=True,
                                     precedence=-1, doc="Fairness, monitoring, performance (analysts)")
    whatif = param.ClassSelector(class_=WhatIfState, default=None, allow_None=True, constant=True, precedence=-1,
                                 doc="What-if on the selected client (with the client part only)")
    new_application = param.ClassSelector(class_=NewApplicationState, default=None, allow_None=True, constant=True,
                                          precedence=-1, doc="A new application (with the client part only)")

    def __init__(self, service: ScoringService | None = None, client_id: int | None = None,
                 role: str | None = None, schedule=None, **params):
        if role not in PARTS:
            raise ValueError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
        if service is None:
            from scoring.backends import open_service, session_service

            service = session_service(open_service(), None)
        self.service = service
        parts = PARTS[role]
        client = ClientState(service, client_id=client_id) if "client" in parts else None
        super().__init__(
            role=role,
            portfolio=PortfolioState(service) if "portfolio" in parts else None,
            search=ClientSearch(service) if "search" in parts else None,
            client=client,
            advice=AdviceState(service, client, schedule, language=params.get("language", "fr"))
            if client is not None else None,
            audit=AuditTrailState(service) if "audit" in parts else None,
            governance=GovernanceState(service, schedule) if "governance" in parts else None,
            **params)
        if self.client is not None:
            self.client.param.watch(self._retry, "file")
            self.param.watch(lambda event: setattr(self.advice, "language", event.new), "language")
            with param.parameterized.edit_constant(self):
                self.whatif = WhatIfState(service, self.client, schedule, language=self.language)
                self.new_application = NewApplicationState(service, self.client)
            self.param.watch(lambda event: setattr(self.whatif, "language", event.new), "language")

    @property
    def parts(self) -> frozenset[str]:
        """The parts of the page this session has."""
        return PARTS[self.role]

    @property
    def roles(self) -> frozenset[str]:
        return self.service.roles

    def _retry(self, event=None):
        """After an outage, the next client opened also brings the other parts back."""
        if self.portfolio is not None and self.portfolio.notice is not None:
            self.portfolio.refresh()
        if self.search is not None and self.search.notice is not None:
            self.search.run()


# -------------------------------------------------------------------------------------------- model versions
class VersionsState(param.Parameterized):
    """The model versions (analysts, issue 13): every registered build, two of them compared on the same clients,
    another one served (a rollback: the version served before the last activation), and the history.

    An activation needs a reason; it is audited by the session's service and served from the next call on, in every
    process (the process-wide service follows the artefacts: `scoring.serving`)."""

    service = param.Parameter(constant=True, precedence=-1)
    a = param.Selector(default=None, objects=[None], doc="Comparison: the reference version")
    b = param.Selector(default=None, objects=[None], doc="Comparison: the version compared with it")
    target = param.Selector(default=None, objects=[None], doc="The version to serve")
    reason = param.String(default="", doc="Why it is served (required, kept in the history and the audit log)")

    versions = param.List(default=[], item_type=ModelVersion, precedence=-1, doc="Newest first, the active marked")
    history = param.List(default=[], item_type=VersionEvent, precedence=-1, doc="Newest first")
    comparison = param.ClassSelector(class_=VersionComparison, default=None, allow_None=True, precedence=-1)
    activated = param.ClassSelector(class_=VersionEvent, default=None, allow_None=True, precedence=-1,
                                    doc="The activation this session just did")
    notice = param.ClassSelector(class_=Notice, default=None, allow_None=True, precedence=-1)
    loading = param.Boolean(default=True, precedence=-1)

    def __init__(self, service: ScoringService, schedule=None, **params):
        super().__init__(service=service, **params)
        (schedule or _run_now)(self.load)

    @property
    def active(self) -> str | None:
        return next((v.version for v in self.versions if v.active), None)

    @property
    def previous(self) -> str | None:
        """The version served before the last activation: what a rollback serves again (None: no activation)."""
        last = next((e for e in self.history if e.event == "activated"), None)
        return None if last is None else last.previous

    def load(self) -> bool:
        """The versions and the history; the comparison's defaults: the active version against the newest other."""
        try:
            versions, history = list(self.service.model_versions()), list(self.service.model_version_history())
        except ScoringError as exc:
            self.param.update(notice=_unavailable(exc), loading=False)
            return False
        names = [v.version for v in versions]
        active = next((v.version for v in versions if v.active), None)
        others = [n for n in names if n != active]
        with param.parameterized.discard_events(self):
            for p in (self.param.a, self.param.b, self.param.target):
                p.objects = [None, *names]
            self.a = self.a if self.a in names else active
            self.b = self.b if self.b in names and self.b != self.a else (others[0] if others else None)
            last = next((e for e in history if e.event == "activated"), None)
            rollback = last.previous if last is not None and last.previous in others else None
            self.target = self.target if self.target in others else (rollback or (others[0] if others else None))
        self.param.update(versions=versions, history=history, loading=False, notice=None)
        return True

    def compare(self) -> bool:
        """Version b against a on the same clients: score shift, decisions changed each way, acceptance and AUC."""
        if self.a is None or self.b is None or self.a == self.b:
            self.param.update(comparison=None, notice=Notice("versions_pick_two"))
            return False
        try:
            comparison = self.service.compare_versions(self.a, self.b)
        except RegistryError:
            self.param.update(comparison=None, notice=Notice("versions_not_comparable", {"a": self.a, "b": self.b}))
            return False
        except ScoringError as exc:
            self.param.update(comparison=None, notice=_unavailable(exc))
            return False
        self.param.update(comparison=comparison, notice=None)
        return True

    def activate(self) -> bool:
        """Serve `target` from now on, with `reason`; the versions and the history are read again."""
        reason = self.reason.strip()
        if self.target is None:
            self.notice = Notice("versions_pick_target")
            return False
        if not reason:
            self.notice = Notice("versions_reason_required", {}, "danger")
            return False
        try:
            event = self.service.activate_version(self.target, reason)
        except VersionConflictError:
            self.notice = Notice("versions_conflict", {"version": self.target}, "danger")
            return False
        except RegistryError:   # unknown since the list was read, or a reason the registry refuses (too long)
            self.notice = Notice("versions_refused", {"version": self.target}, "danger")
            return False
        except ScoringError as exc:
            self.notice = _unavailable(exc)
            return False
        self.param.update(activated=event, reason="")
        self.load()
        self.notice = Notice("versions_activated", {"version": event.version, "previous": event.previous or "—"},
                             "info")
        return True


# -------------------------------------------------------------------------------------------- threshold policy
POLICY_MODES = ("costs", "target")


class PolicyState(param.Parameterized):
    """The threshold policy (analysts, issue 13): a simulation of every threshold on the labelled applications,
    proposed from the costs of the two errors or from a target acceptance rate; adopting the proposed threshold
    with a reason; the history of the thresholds adopted. Loaded after the page shows (`schedule`)."""

    service = param.Parameter(constant=True, precedence=-1)
    mode = param.Selector(default="costs", objects=list(POLICY_MODES), doc="Propose from the costs or a target")
    cost_missed_default = param.Number(default=None, allow_None=True, doc="Cost of a missed default; None: the card's")
    cost_refused_good = param.Number(default=None, allow_None=True,
                                     doc="Cost of a refused good client; None: the card's")
    target_acceptance = param.Number(default=None, allow_None=True, doc="Target acceptance rate (0-1), mode 'target'")
    reason = param.String(default="", doc="Why the proposed threshold is adopted (required)")

    simulation = param.ClassSelector(class_=ThresholdSimulation, default=None, allow_None=True, precedence=-1)
    history = param.List(default=[], item_type=ThresholdChange, precedence=-1, doc="Adopted thresholds, newest first")
    notice = param.ClassSelector(class_=Notice, default=None, allow_None=True, precedence=-1)
    loading = param.Boolean(default=True, precedence=-1)

    def __init__(self, service: ScoringService, schedule=None, **params):
        super().__init__(service=service, **params)
        (schedule or _run_now)(self.load)

    def load(self) -> None:
        """The simulation at the card's costs (or the inputs given) and the history."""
        self.simulate()
        self._load_history()
        self.loading = False

    def _inputs(self) -> dict[str, float | None]:
        if self.mode == "target" and self.target_acceptance is not None:
            return {"target_acceptance": self.target_acceptance}
        return {"cost_missed_default": self.cost_missed_default, "cost_refused_good": self.cost_refused_good}

    @param.depends("mode", "cost_missed_default", "cost_refused_good", "target_acceptance", watch=True)
    def simulate(self) -> None:
        """Simulate with the inputs; a value the service refuses keeps the last simulation and names the field."""
        try:
            self.param.update(simulation=self.service.threshold_simulation(**self._inputs()), notice=None)
        except PolicyError as exc:
            self.notice = Notice("policy_bad_input", {"field": exc.field, "detail": str(exc)}, "danger")
        except ScoringError as exc:
            self.notice = _unavailable(exc)

    def _load_history(self) -> None:
        try:
            self.history = list(self.service.threshold_history())
        except ScoringError as exc:
            self.notice = _unavailable(exc)

    @property
    def comparison(self) -> list[tuple[str, float | None, float | None]]:
        """(figure, at the served threshold, at the proposed one): the rates, the loss, fairness per attribute;
        the figure is a text key of `views.i18n` (with its attribute after a colon for fairness)."""
        sim = self.simulation
        if sim is None:
            return []
        cur, new = sim.current, sim.proposed
        rows = [(key, getattr(cur, name), getattr(new, name)) for key, name in (
            ("policy_acceptance", "acceptance_rate"), ("policy_loss", "expected_loss"),
            ("policy_missed", "missed_default_rate"), ("policy_refused_good", "refused_good_rate"),
            ("policy_default_accepted", "default_rate_accepted"))]
        rows += [(f"policy_di:{a}", cur.disparate_impact.get(a), new.disparate_impact.get(a))
                 for a in new.disparate_impact]
        rows += [(f"policy_eod:{a}", cur.equal_opportunity_difference.get(a), new.equal_opportunity_difference.get(a))
                 for a in new.equal_opportunity_difference]
        return rows

    def adopt(self) -> bool:
        """Adopt the proposed threshold with the reason typed; refused (a notice) without a reason, for the
        threshold already served, or when the service refuses it. The history is read again after it."""
        sim, reason = self.simulation, self.reason.strip()
        if sim is None:
            return False
        if not reason:
            self.notice = Notice("policy_reason_required", {}, "danger")
            return False
        origin = ({"target_acceptance": sim.target_acceptance} if sim.target_acceptance is not None else
                  {"cost_missed_default": sim.cost_missed_default, "cost_refused_good": sim.cost_refused_good})
        try:
            change = self.service.adopt_threshold(sim.proposed_threshold, reason, **origin)
        except PolicyError as exc:
            self.notice = Notice("policy_refused", {"detail": str(exc)}, "danger")
            return False
        except ScoringError as exc:
            self.notice = _unavailable(exc)
            return False
        self._load_history()
        self.simulate()   # a service that follows the files (scoring.backends) now serves the new threshold
        adopted = {lang: fmt_number(change.threshold, lang, 4) for lang in LANGUAGES}
        self.param.update(reason="", notice=Notice("policy_adopted", adopted, "info"))
        return True
