"""What every part of the product agrees on: result types, the client query, the decision rule, the
`ScoringService` protocol and their JSON codecs.

Standard library and pydantic only. The views, the HTTP backend, the API and the notebook import this
module, never the engine (XGBoost, DuckDB): a dashboard that runs over the API loads no ML stack.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, fields
from typing import Any, Mapping, Protocol, Sequence, TypeVar, runtime_checkable

from pydantic import TypeAdapter

ACCEPTED, REFUSED = "accepted", "refused"
DECISIONS = (ACCEPTED, REFUSED)
SPLITS = ("train", "new")        # labelled history | applications to decide
MAX_PAGE = 500                   # client files in one page of a search
MAX_BATCH = 10_000               # applications in one `predict_batch`
MAX_TOP = 1000                   # contributions kept by `top`
FLOAT32_MAX = 3.4028234663852886e38  # the model computes in float32: beyond this a number would become missing
#: columns of a search result row
LIST_COLUMNS = ("client_id", "split", "decision", "default_probability", "contract_type", "age_years", "income",
                "credit_amount", "annuity", "term_months")
SORTABLE = frozenset(("client_id", "default_probability", "age_years", "income", "credit_amount", "annuity",
                      "term_months", "debt_ratio", "credit_income_ratio"))


def decide(probability: float, threshold: float) -> str:
    """The bank's rule: refused at or above the threshold."""
    return REFUSED if probability >= threshold else ACCEPTED


# ------------------------------------------------------------------------------------------ scores
@dataclass(frozen=True)
class Score:
    client_id: int | None
    default_probability: float
    decision: str            # "accepted" | "refused"
    threshold: float
    model_version: str
    review: bool = False     # within the review band around the threshold: "à étudier" / "to review" (client files)


@dataclass(frozen=True)
class Contribution:
    feature: str
    label: str
    label_fr: str
    value: float | str | None   # the client's value, categories as text, None when missing
    contribution: float         # SHAP value, log-odds; > 0 pushes towards default


@dataclass(frozen=True)
class Explanation:
    client_id: int | None
    base_value: float            # log-odds of the average application
    margin: float                # log-odds of this application = base_value + sum of all contributions
    contributions: tuple[Contribution, ...]   # sorted by |contribution|, largest first
    others: float = 0.0          # sum of the contributions left out by `top`

    def top(self, n: int) -> "Explanation":
        kept, rest = self.contributions[:n], self.contributions[n:]
        return Explanation(self.client_id, self.base_value, self.margin, kept,
                           self.others + float(sum(c.contribution for c in rest)))


# ------------------------------------------------------------------------------------------ client files
@dataclass(frozen=True)
class ClientFile:
    client_id: int
    split: str                 # "train" (labelled history) | "new" (application to decide)
    known_outcome: int | None  # 1 = defaulted, 0 = repaid, None for new applications
    score: Score
    profile: dict[str, Any]
    application: dict[str, Any]
    #: the applicant's other credits (keys of `DEBT_KEYS`; empty when the dataset has none): running credits,
    #: their outstanding debt, their monthly payments, the longest delay in days
    debts: dict[str, Any] = field(default_factory=dict)
    term_months: float | None = None   # the loan's term in months (credit / monthly payment when not given)


#: the keys of a client file's debts, in display order (labels in scoring.labels)
DEBT_KEYS = ("active_credits", "outstanding_debt", "monthly_debt_service", "max_days_overdue")


@dataclass(frozen=True)
class ClientQuery:
    """Search and filters over the client files; one page of `limit` rows from `offset`."""
    q: str | None = None               # client ID, exact or prefix
    decision: str | None = None        # "accepted" | "refused"
    min_probability: float | None = None
    max_probability: float | None = None
    contract_type: str | None = None
    min_income: float | None = None
    max_income: float | None = None
    min_amount: float | None = None
    max_amount: float | None = None
    min_age: float | None = None
    max_age: float | None = None
    split: str | None = None           # "train" (labelled history) | "new"
    sort: str = "client_id"
    descending: bool = False
    limit: int = 20
    offset: int = 0

    def __post_init__(self):
        if self.decision not in (None, *DECISIONS):
            raise ValueError(f"decision must be one of {DECISIONS}, got {self.decision!r}")
        if self.split not in (None, *SPLITS):
            raise ValueError(f"split must be one of {SPLITS}, got {self.split!r}")
        if self.sort not in SORTABLE:
            raise ValueError(f"cannot sort by {self.sort!r}; sortable: {', '.join(sorted(SORTABLE))}")
        if not 1 <= int(self.limit) <= MAX_PAGE:
            raise ValueError(f"limit must be between 1 and {MAX_PAGE}")
        if int(self.offset) < 0:
            raise ValueError("offset cannot be negative")
        for name in ("min_probability", "max_probability"):
            v = getattr(self, name)
            if v is not None and not 0 <= v <= 1:
                raise ValueError(f"{name} must be between 0 and 1")
        if self.q is not None and self.q.strip() and not is_client_id(self.q.strip()):
            raise ValueError("a client ID holds the digits 0-9 only")

    def to_params(self) -> dict[str, Any]:
        """Non-default fields, e.g. for a query string."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) != f.default}


def is_client_id(text: str) -> bool:
    """ASCII digits only: `'²'.isdigit()` is true in Python, and `int('²')` fails."""
    return text.isascii() and text.isdigit()


@dataclass(frozen=True)
class ClientPage:
    """One page of a search: rows of `LIST_COLUMNS` (None where missing) and the number of matches."""
    items: tuple[dict[str, Any], ...]
    total: int
    query: ClientQuery


# ------------------------------------------------------------------------------------------ portfolio
@dataclass(frozen=True)
class PortfolioSummary:
    n_applications: int
    n_accepted: int
    n_refused: int
    acceptance_rate: float
    mean_default_probability: float
    error_rate: float          # holdout, at the threshold
    roc_auc: float
    threshold: float
    drift_share: float         # share of features with PSI >= 0.2 (new applications vs training)
    n_drifting: int
    score_psi: float
    model_version: str


@dataclass(frozen=True)
class DriftRow:
    feature: str
    label: str
    label_fr: str
    psi: float
    status: str               # "stable" | "moderate" | "drift"


@dataclass(frozen=True)
class Importance:
    feature: str
    label: str
    label_fr: str
    importance: float         # mean |SHAP| over a sample, in log-odds


# ------------------------------------------------------------------------------------------ governance
@dataclass(frozen=True)
class GroupFigures:
    """One group of a protected attribute (a gender, an age band)."""
    group: str
    applications: int
    acceptance_rate: float
    mean_default_probability: float
    observed_default_rate: float | None = None   # None where outcomes are unknown (new applications)
    missed_default_rate: float | None = None     # defaulters accepted / defaulters
    refused_good_rate: float | None = None       # clients who repaid, refused / clients who repaid


@dataclass(frozen=True)
class FairnessAlert:
    metric: str                # "disparate_impact_ratio" | "equal_opportunity_difference"
    value: float
    limit: float


@dataclass(frozen=True)
class FairnessFigures:
    """Decisions by group of one protected attribute, for one population."""
    attribute: str             # "gender", "age"
    population: str            # "labelled (out of fold)" | "new applications"
    groups: list[GroupFigures]
    disparate_impact_ratio: float | None         # lowest acceptance rate / highest (four-fifths rule: >= 0.8)
    equal_opportunity_difference: float | None   # largest gap in the acceptance rate of clients who repaid
    alerts: list[FairnessAlert] = field(default_factory=list)
    small_groups: list[str] = field(default_factory=list)   # too small to be compared


@dataclass(frozen=True)
class MonthFigures:
    """The portfolio and the model over one month of applications."""
    month: str                 # "2026-03"
    split: str                 # "train" (labelled history) | "new"
    applications: int
    acceptance_rate: float
    mean_default_probability: float
    expected_default_rate: float      # what the model expects, before outcomes arrive
    expected_error_rate: float
    outcomes: int                     # applications whose outcome is known
    observed_default_rate: float | None
    realised_error_rate: float | None
    auc: float | None
    score_psi: float
    feature_psi: dict[str, float]     # against the training reference, for the model's main features
    drifting: list[str] = field(default_factory=list)   # features at PSI >= 0.2



@dataclass(frozen=True)
class FeatureDrift:
    """One monitored feature's distribution in the training reference and in recent applications, on the same bins
    (the reference's deciles for a number, one bar per category; the last bin holds missing values)."""
    feature: str
    label: str
    label_fr: str
    kind: str                          # "numeric" | "categorical"
    edges: list[float]                 # numeric: bins (-inf, e0), [e0, e1), ..., [e_last, inf), then missing
    categories: list[str]              # categorical: one bin per category, then missing
    reference: list[float]             # share of the labelled history in each bin (sums to 1)
    current: list[float]               # share of the new applications (of `month`, or all of them) in each bin
    reference_applications: int
    current_applications: int
    psi: float                         # population stability index between the two
    month: str | None = None           # "2026-03", or None: every new application


@dataclass(frozen=True)
class Curve:
    """A curve as two lists of the same length (ROC: false and true positive rates; PR: recall and precision;
    reliability: mean predicted and observed default rates per bin)."""
    x: list[float]
    y: list[float]


@dataclass(frozen=True)
class PerformanceFigures:
    """The model on one segment of the labelled applications, from their out-of-fold probabilities: discrimination
    (ROC and PR curves, AUC, KS, Gini), calibration (reliability curve, Brier) and the decisions at the threshold
    with their business cost. "Positive" is a default: a refused defaulter is a true positive."""
    segment: str                       # "all" | "contract_type" | "age"
    group: str                         # "all", a contract type, an age band ("25-35")
    applications: int
    defaults: int
    threshold: float
    roc_auc: float | None              # None when the group holds one class only
    pr_auc: float | None
    ks: float | None                   # largest gap between the defaulters' and the repaid clients' score CDFs
    gini: float | None                 # 2 AUC - 1
    brier: float
    roc: Curve
    pr: Curve
    calibration: Curve
    refused_defaults: int              # confusion matrix at the threshold
    missed_defaults: int               # defaulters accepted
    refused_goods: int                 # clients who repaid, refused
    accepted_goods: int
    cost_missed_default: float         # the build's cost weights (units of a refused good client)
    cost_refused_good: float
    business_cost: float               # mean cost per application at the threshold


# ------------------------------------------------------------------------------------------ comparisons
@dataclass(frozen=True)
class Histogram:
    edges: list[float]                 # numeric: bin edges (len = bins + 1); empty for categories
    categories: list[str]              # categorical: one bar per category; empty for numeric
    counts: dict[str, list[int]]       # series -> counts per bin ("repaid"/"defaulted" or "all"/"accepted")


@dataclass(frozen=True)
class FeatureDistribution:
    feature: str
    label: str
    label_fr: str
    kind: str
    histogram: Histogram
    client_id: int | None = None
    client_value: float | str | None = None
    client_percentile: float | None = None   # share of labelled applications with a lower value, in %


@dataclass(frozen=True)
class RatioComparison:
    name: str
    label: str
    label_fr: str
    client: float | None
    population_mean: float
    accepted_mean: float
    histogram: Histogram


@dataclass(frozen=True)
class DebtCapacity:
    """What the client can borrow, monthly: the effort rate (existing credits' payments + the payment asked, over
    the income) against the bank's cap (HCSF: 35 %), what remains under it, the largest amount affordable at the
    term asked, and where the client's effort rate stands among accepted clients. None: not in the dataset."""
    client_id: int
    ratios: list[RatioComparison] = field(default_factory=list)
    monthly_income: float | None = None
    existing_debt_service: float | None = None   # monthly payments of the other credits (0 when none)
    requested_payment: float | None = None       # monthly payment of the loan asked
    effort_rate: float | None = None             # (existing_debt_service + requested_payment) / monthly_income
    effort_cap: float = 0.35
    remaining_capacity: float | None = None      # monthly_income x cap - both payments (negative: over the cap)
    term_months: float | None = None             # the term asked
    max_affordable_amount: float | None = None   # (monthly_income x cap - existing_debt_service) x term_months
    accepted_percentile: float | None = None     # % of accepted clients with a lower effort rate
    accepted_effort_rates: Histogram | None = None  # effort rates of all and accepted clients ("all", "accepted")


TRUST_FLAGS = ("out_of_range", "many_missing", "segment_drift", "range_unknown")


@dataclass(frozen=True)
class TrustFlag:
    """A reason to trust a client's score less than usual (issue 12, item 8)."""
    kind: str                            # one of TRUST_FLAGS: "range_unknown" = the model card cannot tell the range
    features: tuple[str, ...] = ()       # out_of_range: the features beyond the training range; segment_drift: the
                                         # features drifting in the client's month
    value: float | None = None           # many_missing: the share of the model's features missing; segment_drift:
                                         # the score's PSI that month
    limit: float | None = None           # the configured share, the PSI drift limit
    segment: str | None = None           # segment_drift: the month of application ("2026-03")


@dataclass(frozen=True)
class ClientOverview:
    """Everything the dashboard shows about one client, read as one action (one audit entry, one request)."""
    file: ClientFile
    explanation: Explanation
    comparison: FeatureDistribution | None
    debt: DebtCapacity
    flags: tuple[TrustFlag, ...] = ()    # why the score deserves less trust than usual; none: no flag


@dataclass(frozen=True)
class AuditEntry:
    """One entry of the audit log: who did what with which client file, when (UTC, ISO 8601)."""
    id: int
    at: str
    event: str
    user: str | None
    client_id: int | None
    model_version: str
    default_probability: float | None
    decision: str | None
    source: str                # "api" | "dashboard"
    details: str | None = None  # JSON text: a search's filters and count...


# ------------------------------------------------------------------------------------------ advising a client
REASON_LANGUAGES = ("fr", "en")
MAX_PEERS = 200                  # neighbours in one `peers` answer
MAX_JUSTIFICATION = 4000         # characters of a decision's justification


@dataclass(frozen=True)
class Reason:
    """One principal reason of a decision: a feature or a group of correlated features, worded for the client."""
    text: str                     # e.g. "Score externe 2 faible : 0,39, plus bas que 75 % des clients"
    features: tuple[str, ...]     # the model features it sums (the EXT_SOURCE group, the loan's terms...)
    direction: str                # "risk" (pushes the probability up) | "strength" (pushes it down)
    contribution: float           # summed SHAP values of `features`, log-odds


@dataclass(frozen=True)
class Reasons:
    """The principal reasons of a client's decision: what raised the risk of a refused file, what kept it low
    for an accepted one; from the exact SHAP values of the model that scored the file."""
    client_id: int
    lang: str
    decision: str
    default_probability: float
    threshold: float
    model_version: str
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class Offer:
    """A change of the loan alone (never of the person) that the production model accepts."""
    changes: dict[str, float]     # column -> new value, to apply to the client's application
    default_probability: float
    decision: str
    credit_amount: float
    term_months: float | None     # credit / monthly annuity; None when the annuity is missing
    annuity: float | None         # monthly payment (AMT_ANNUITY is monthly in Home Credit)
    down_payment: float           # goods price - credit amount, when the credit no longer covers the goods
    amount_reduction: float       # relative to the amount asked, 0.0 = the same amount
    text: str = ""
    effort_rate: float | None = None  # (existing credits' + this offer's monthly payments) / monthly income


@dataclass(frozen=True)
class Offers:
    """The closest loans that pass the threshold, for the application as it stands (production model)."""
    client_id: int
    default_probability: float    # the application as it stands, by the production model
    decision: str
    threshold: float
    model_version: str
    offers: tuple[Offer, ...]
    message: str | None = None    # why there is no offer (none needed, none within the product's limits)


@dataclass(frozen=True)
class Peer:
    client_id: int
    distance: float
    defaulted: bool
    default_probability: float


@dataclass(frozen=True)
class Peers:
    """The k labelled applicants most like the client, and how often they defaulted."""
    client_id: int
    k: int
    default_probability: float    # the client's, as on the client file
    default_rate: float           # observed share of defaults among the peers
    features: tuple[str, ...]     # the space they are compared in (the model's top features, no protected one)
    peers: tuple[Peer, ...]


@dataclass(frozen=True)
class DecisionRecord:
    """An advisor's decision on a client file, as stored (append-only) next to the audit log."""
    id: int
    client_id: int
    advisor: str | None
    at: str                       # UTC, ISO 8601
    model_version: str
    model: str                    # "production" | "fold k": the model that gave `default_probability`
    default_probability: float
    threshold: float
    model_decision: str
    decision: str                 # the final decision
    justification: str
    review: bool                  # the probability is within the review band around the threshold
    review_band: float
    reasons: tuple[str, ...]      # the texts of the reasons shown
    offer: dict[str, float] | None
    application: dict[str, Any]   # the inputs scored: re-scoring them with `model` gives `default_probability`
    flags: tuple[TrustFlag, ...] = ()   # the trust flags of the file when the decision was taken


DECISION_FILE_FORMATS = ("html", "pdf")


@dataclass(frozen=True)
class DecisionFile:
    """The decision file of one recorded decision, ready to hand over: an HTML page or a PDF document."""
    client_id: int
    decision_id: int
    filename: str                 # e.g. "decision-100002-7.pdf"
    media_type: str               # "text/html; charset=utf-8" | "application/pdf"
    content: bytes


# ------------------------------------------------------------------------------------------ what-if, new applications
@dataclass(frozen=True)
class ApplicationField:
    """A column of an application an advisor types: changed in a what-if (`whatif`), or entered for a new
    application. Values are in the column's own unit (`unit`: "negative_days" for days counted back from the
    application, shown as years); bounds are the schema's physical ones (None: any, amounts >= 0)."""
    column: str
    role: str | None              # business role (credit_amount, income, employment...), None for another feature
    label: str
    label_fr: str
    kind: str                     # "number" | "category"
    minimum: float | None = None
    maximum: float | None = None
    categories: tuple[str, ...] = ()
    unit: str | None = None       # "negative_days", "yearly", "monthly", "currency", "count", "category"...
    sentinel: float | None = None  # a value meaning "not given" (DAYS_EMPLOYED = 365243: not employed)
    whatif: bool = True           # may be changed in a what-if: the loan and the profile, never a protected attribute


@dataclass(frozen=True)
class Assessment:
    """An application as typed (a what-if of a client file, or a new application) scored by the production model,
    with its principal reasons from the exact SHAP values (`Reasons`' rules)."""
    client_id: int | None         # the client file it varies (a what-if), None for an application alone
    lang: str
    default_probability: float
    decision: str
    threshold: float
    model_version: str
    review: bool                  # within the review band around the threshold ("à étudier")
    reasons: tuple[Reason, ...]
    changes: dict[str, Any]       # a what-if: the columns that differ from the client file's application


class DuplicateClientError(ValueError):
    """A new application under a client ID that a client file already has."""

    def __init__(self, client_id: int):
        self.client_id = client_id
        super().__init__(f"client ID {client_id} is already taken: a client file has it (leave client_id out to "
                         f"get a new one)")


@dataclass(frozen=True)
class ModelVersion:
    """One registered build of the model (`scoring.registry`): the one served has `active`."""
    version: str
    created_at: str
    dataset: str
    data_fingerprint: str
    features: int
    roc_auc: float               # holdout
    oof_roc_auc: float | None    # out of fold
    threshold: float
    acceptance_rate: float
    fairness_alerts: int
    trained_in: str
    active: bool


@dataclass(frozen=True)
class VersionComparison:
    """Version `b` against version `a` on the client files both scored."""
    a: str
    b: str
    clients: int
    labelled: int
    mean_shift: float            # mean of b - a, in probability (0-1)
    mean_abs_shift: float
    p95_abs_shift: float
    refused_now: int             # accepted by a, refused by b
    accepted_now: int            # refused by a, accepted by b
    acceptance_a: float
    acceptance_b: float
    auc_a: float | None          # on the labelled clients both scored, each out of fold
    auc_b: float | None


@dataclass(frozen=True)
class ThresholdPoint:
    """What a threshold does on the labelled applications (out-of-fold probabilities), refused at or above it."""
    threshold: float
    acceptance_rate: float
    expected_loss: float                 # mean cost per application, in units of a refused good client
    missed_default_rate: float           # defaulters accepted, over the defaulters
    refused_good_rate: float             # clients who repaid refused, over those who repaid
    default_rate_accepted: float | None  # defaulters among the accepted (None: nobody accepted)
    disparate_impact: dict[str, float | None] = field(default_factory=dict)  # attribute -> lowest/highest acceptance
    equal_opportunity_difference: dict[str, float | None] = field(default_factory=dict)  # attribute -> largest gap


@dataclass(frozen=True)
class ThresholdSimulation:
    """The threshold policy's simulator: every threshold of a grid, the one served and the one proposed (the
    cheapest at the costs, or the one reaching the target acceptance rate)."""
    model_version: str
    applications: int                    # labelled applications simulated on
    defaults: int
    cost_missed_default: float           # the costs given, else the model card's
    cost_refused_good: float
    target_acceptance: float | None      # given: the proposed threshold reaches it
    built_threshold: float               # the build's (model card)
    current_threshold: float             # the one served
    threshold_source: str                # "build" | "policy" (adopted by an analyst)
    proposed_threshold: float
    current: ThresholdPoint
    proposed: ThresholdPoint
    curve: list[ThresholdPoint]          # by increasing threshold, the current and proposed included

    def rows(self) -> list[dict[str, Any]]:
        """The curve as flat rows (one per threshold; fairness as `disparate_impact_<attribute>` and
        `equal_opportunity_difference_<attribute>`): `pandas.DataFrame(sim.rows())` in a notebook."""
        out = []
        for point in self.curve:
            row = {f.name: getattr(point, f.name) for f in fields(point)
                   if f.name not in ("disparate_impact", "equal_opportunity_difference")}
            row.update({f"disparate_impact_{k}": v for k, v in point.disparate_impact.items()})
            row.update({f"equal_opportunity_difference_{k}": v for k, v in point.equal_opportunity_difference.items()})
            row["current"] = point.threshold == self.current_threshold
            row["proposed"] = point.threshold == self.proposed_threshold
            out.append(row)
        return out


@dataclass(frozen=True)
class ThresholdChange:
    """One adopted threshold (the policy's history, `model/policy.jsonl`)."""
    at: str
    model_version: str
    threshold: float
    previous: float
    user: str
    reason: str
    cost_missed_default: float | None = None   # the simulation it came from: costs, or a target acceptance
    cost_refused_good: float | None = None
    target_acceptance: float | None = None


MAX_VERSION_REASON = 2_000        # characters of the reason of an activation (`scoring.registry.MAX_REASON`)


@dataclass(frozen=True)
class VersionEvent:
    """One line of the model versions' history: a build registered, or a version activated (who, why, and the
    version served before it: `previous`, what a rollback serves again)."""
    at: str                      # UTC, ISO 8601
    event: str                   # "registered" | "activated"
    version: str
    user: str | None = None
    previous: str | None = None  # activated: the version served until then
    reason: str | None = None    # activated: why


class JustificationRequiredError(ValueError):
    """A decision that differs from the model's needs a justification."""


# ------------------------------------------------------------------------------------------ the service
@runtime_checkable
class ScoringService(Protocol):
    """The one interface to the model and the client files: in process (`scoring.service`) or over HTTP
    (`scoring.client`); `scoring.audited.AuditedService` wraps either with the audit policy."""

    @property
    def roles(self) -> frozenset[str]: ...           # business roles present in the data (income, age_years...)
    def model_card(self) -> dict: ...
    def portfolio(self) -> PortfolioSummary: ...
    def drift(self) -> list[DriftRow]: ...
    def fairness(self) -> list[FairnessFigures]: ...                  # by protected attribute and population
    def monitoring(self) -> list[MonthFigures]: ...                   # by month of application
    def feature_drift(self, feature: str, month: str | None = None) -> FeatureDrift: ...  # reference vs current
    def performance(self) -> list[PerformanceFigures]: ...           # by segment, out of fold, at the threshold
    def model_versions(self) -> list[ModelVersion]: ...               # every build registered, newest first
    def compare_versions(self, a: str, b: str) -> VersionComparison: ...  # b against a on the same clients
    def model_version_history(self) -> list[VersionEvent]: ...       # registered and activated, newest first
    def activate_version(self, version: str, reason: str,
                         user: str | None = None) -> VersionEvent: ...  # served from the next call on (a rollback:
    # the `previous` of the last activation); `user` is the in-process engine's: the audit policy passes its own
    def global_importance(self, top: int = 15) -> list[Importance]: ...
    def top_features(self, n: int = 5) -> list[Importance]: ...
    def contract_types(self) -> list[str]: ...
    def search(self, query: ClientQuery) -> ClientPage: ...
    def client(self, client_id: int) -> ClientFile: ...
    def explain(self, client_id: int, top: int | None = None) -> Explanation: ...
    def overview(self, client_id: int, feature: str | None = None, top: int | None = None) -> ClientOverview: ...
    def predict(self, record: Mapping[str, Any], explain: bool = False,
                top: int | None = None) -> tuple[Score, Explanation | None]: ...
    def predict_batch(self, records: Sequence[Mapping[str, Any]], validated: bool = False) -> list[Score]: ...
    # validated=True: the records went through the engine's application type already (the API's request body)
    def distribution(self, feature: str, client_id: int | None = None) -> FeatureDistribution: ...
    def debt_capacity(self, client_id: int) -> DebtCapacity: ...
    def audit_trail(self, client_id: int, limit: int = 100) -> list[AuditEntry]: ...  # who looked at the file
    def application(self, client_id: int) -> dict[str, Any]: ...   # as `predict` takes it
    def reasons(self, client_id: int, lang: str = "fr") -> Reasons: ...
    def offers(self, client_id: int) -> Offers: ...
    def peers(self, client_id: int, k: int = 10) -> Peers: ...
    def record_decision(self, client_id: int, decision: str, justification: str = "",
                        offer: Mapping[str, float] | None = None, advisor: str | None = None) -> DecisionRecord: ...
    def decisions(self, client_id: int) -> list[DecisionRecord]: ...
    def application_fields(self) -> list[ApplicationField]: ...     # what a what-if or a new application types
    def assess(self, application: Mapping[str, Any], lang: str = "fr",
               client_id: int | None = None) -> Assessment: ...   # a what-if of `client_id`, or an application alone
    def create_client(self, application: Mapping[str, Any], client_id: int | None = None,
                      created_by: str | None = None) -> ClientFile: ...   # saved as a new client file
    def decision_file(self, client_id: int, decision_id: int, format: str = "html",
                      lang: str = "fr") -> DecisionFile: ...   # one recorded decision, as HTML or PDF
    # the threshold policy (analysts): simulate thresholds, adopt one with a reason, its history (newest first)
    def threshold_simulation(self, cost_missed_default: float | None = None, cost_refused_good: float | None = None,
                             target_acceptance: float | None = None) -> ThresholdSimulation: ...
    def threshold_history(self) -> list[ThresholdChange]: ...
    def adopt_threshold(self, threshold: float, reason: str, cost_missed_default: float | None = None,
                        cost_refused_good: float | None = None,
                        target_acceptance: float | None = None, user: str | None = None) -> ThresholdChange: ...


# ------------------------------------------------------------------------------------------ JSON codecs
T = TypeVar("T")


@functools.lru_cache(maxsize=None)
def adapter(kind: Any) -> TypeAdapter:
    """The pydantic `TypeAdapter` of a contract type (cached: building one costs ~1 ms)."""
    return TypeAdapter(kind)


def to_json(obj: Any) -> Any:
    """A contract object (or a list of them) as JSON-ready Python data."""
    kind = list[type(obj[0])] if isinstance(obj, list) and obj else type(obj)
    return adapter(kind).dump_python(obj, mode="json")


def from_json(kind: type[T] | Any, data: Any) -> T:
    """The contract object `kind` (e.g. `ClientFile`, `list[DriftRow]`) from JSON data."""
    return adapter(kind).validate_python(data)
