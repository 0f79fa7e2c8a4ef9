"""The audit policy, applied once around any `ScoringService`: every action that reads personal data or
scores an application writes one entry (who, what, which client, result, when) before its result is
returned; an action whose entry cannot be written is refused with `AuditUnavailableError`, and nothing is
returned. Reads of personal data: a client file, its explanation, its comparison with the population, its
debt capacity, a search (one entry with its filters and the number of files returned).

The API wraps its in-process service with it for each caller; the dashboard wraps the in-process service
for each session. A dashboard over HTTP does not wrap its backend: the API it calls writes the entry.
"""

from __future__ import annotations

import json
import logging
import math
from typing import Any, Mapping, Sequence

from .audit import AUDIT_ERRORS, Entry
from .contracts import DecisionFile
from .contracts import ThresholdChange, ThresholdSimulation
from .contracts import (ApplicationField, Assessment, FairnessFigures, FeatureDrift, PerformanceFigures, MonthFigures, AuditEntry, ClientFile, ClientOverview, ClientPage, ClientQuery, DebtCapacity, DecisionRecord,
                        DriftRow, Explanation, FeatureDistribution, Importance, Offers, Peers, PortfolioSummary, Reasons,
                        REFUSED, Score, ScoringService, ModelVersion, VersionComparison, decide)
from .contracts import VersionEvent
from .errors import AuditUnavailableError

log = logging.getLogger(__name__)


class AuditedService:
    """A `ScoringService` that audits `user`'s actions in `audit` (an `AuditLog` or `PostgresAuditLog`)."""

    def __init__(self, service: ScoringService, audit: Any, user: str | None, source: str):
        self.service = service
        self.audit = audit
        self.user = user
        self.source = source
        self._model: dict[str, Any] = {}  # version and threshold, shared with for_user() views

    def for_user(self, user: str | None) -> "AuditedService":
        """The same service and log, acting for another user (one per API caller or dashboard session)."""
        view = AuditedService(self.service, self.audit, user, self.source)
        view._model = self._model
        return view

    def __repr__(self) -> str:
        return f"AuditedService({self.service!r}, user={self.user!r}, source={self.source!r})"

    # ------------------------------------------------------------------ the policy
    def _write(self, entries: Sequence[Entry]) -> None:
        try:
            self.audit.record_many(entries)
        except AUDIT_ERRORS as exc:
            log.error("audit log %s cannot be written (%s): action refused", self.audit, exc)
            raise AuditUnavailableError("the audit log cannot be written, so nothing is shown: "
                                        "retry in a moment or call the support desk") from exc

    def _entry(self, event: str, client_id: int | None, score: Score | None = None,
               details: dict | None = None) -> Entry:
        return Entry(event, self.user, client_id, score.model_version if score else self._card()["version"],
                     None if score is None else score.default_probability,
                     None if score is None else score.decision, self.source,
                     None if details is None else json.dumps(details, sort_keys=True, default=str))

    def _card(self) -> dict[str, Any]:
        # a service that follows the artefacts (`scoring.serving`) counts the models it served: read the card again
        # after a switch, so that the entries name the model serving now
        generation = getattr(self.service, "generation", None)
        if not self._model or self._model.get("generation") != generation:
            card = self.service.model_card()
            self._model.update(version=card["version"], threshold=card["threshold"], generation=generation)
        return self._model

    def _explained_score(self, explanation: Explanation) -> Score:
        threshold = self._card()["threshold"]
        p = 1.0 / (1.0 + math.exp(-explanation.margin))
        return Score(explanation.client_id, p, decide(p, threshold), threshold, self._card()["version"])

    # ------------------------------------------------------------------ audited actions
    def client(self, client_id: int) -> ClientFile:
        file = self.service.client(client_id)
        self._write([self._entry("client_opened", file.client_id, file.score)])
        return file

    def overview(self, client_id: int, feature: str | None = None, top: int | None = None) -> ClientOverview:
        view = self.service.overview(client_id, feature, top)
        self._write([self._entry("client_opened", view.file.client_id, view.file.score)])
        return view

    def explain(self, client_id: int, top: int | None = None) -> Explanation:
        explanation = self.service.explain(client_id, top)
        self._write([self._entry("explained", explanation.client_id, self._explained_score(explanation))])
        return explanation

    def predict(self, record: Mapping[str, Any], explain: bool = False,
                top: int | None = None) -> tuple[Score, Explanation | None]:
        score, explanation = self.service.predict(record, explain, top)
        self._write([self._entry("predicted", None, score)])
        return score, explanation

    def predict_batch(self, records: Sequence[Mapping[str, Any]], validated: bool = False) -> list[Score]:
        """One action, one entry: how many applications were scored, refused, and their mean probability."""
        scores = self.service.predict_batch(records, validated)
        refused = sum(s.decision == REFUSED for s in scores)
        self._write([self._entry("predicted", None, details={
            "applications": len(scores), "refused": refused,
            "mean_default_probability": sum(s.default_probability for s in scores) / len(scores)})])
        return scores

    def application(self, client_id: int) -> dict[str, Any]:
        application = self.service.application(client_id)
        self._write([self._entry("client_opened", int(client_id), details={"read": "application"})])
        return application

    def reasons(self, client_id: int, lang: str = "fr") -> Reasons:
        reasons = self.service.reasons(client_id, lang)
        score = Score(reasons.client_id, reasons.default_probability, reasons.decision, reasons.threshold,
                      reasons.model_version)
        self._write([self._entry("explained", reasons.client_id, score, details={
            "read": "reasons", "lang": lang, "features": [list(r.features) for r in reasons.reasons]})])
        return reasons

    def offers(self, client_id: int) -> Offers:
        """Scoring the counter-offers is an action: one "scored" entry with the application's score (production
        model) and the offers found."""
        offers = self.service.offers(client_id)
        score = Score(offers.client_id, offers.default_probability, offers.decision, offers.threshold,
                      offers.model_version)
        self._write([self._entry("scored", offers.client_id, score, details={
            "read": "offers", "offers": [o.changes for o in offers.offers]})])
        return offers

    def peers(self, client_id: int, k: int = 10) -> Peers:
        peers = self.service.peers(client_id, k)
        self._write([self._entry("compared", peers.client_id, details={
            "read": "peers", "k": k, "default_rate": peers.default_rate})])
        return peers

    def record_decision(self, client_id: int, decision: str, justification: str = "",
                        offer: Mapping[str, float] | None = None, advisor: str | None = None) -> DecisionRecord:
        """The advisor is this service's user (`advisor` is ignored: nobody decides in another's name). The
        decision is stored, then its entry written; if the entry cannot be written the caller is told so
        (`AuditUnavailableError`) although the decision stays stored (append-only, with its advisor and time)."""
        record = self.service.record_decision(client_id, decision, justification, offer, advisor=self.user)
        score = Score(record.client_id, record.default_probability, record.model_decision, record.threshold,
                      record.model_version)
        self._write([self._entry("decision_recorded", record.client_id, score, details={
            "decision_id": record.id, "decision": record.decision, "model_decision": record.model_decision,
            "justification": record.justification, "review": record.review, "offer": record.offer})])
        return record

    def adopt_threshold(self, threshold: float, reason: str, cost_missed_default: float | None = None,
                        cost_refused_good: float | None = None, target_acceptance: float | None = None,
                        user: str | None = None) -> ThresholdChange:
        """The analyst is this service's user (`user` is ignored). The threshold is adopted, then its
        `threshold_changed` entry written before returning; if the entry cannot be written the caller is told so
        (`AuditUnavailableError`) although the change stays in the policy's history (with its user and time)."""
        change = self.service.adopt_threshold(threshold, reason, cost_missed_default, cost_refused_good,
                                              target_acceptance, user=self.user)
        self._write([Entry("threshold_changed", self.user, None, change.model_version, None, None, self.source,
                           json.dumps({"previous": change.previous, "new": change.threshold, "reason": change.reason},
                                      sort_keys=True))])
        return change

    def threshold_simulation(self, cost_missed_default: float | None = None, cost_refused_good: float | None = None,
                             target_acceptance: float | None = None) -> ThresholdSimulation:
        return self.service.threshold_simulation(cost_missed_default, cost_refused_good, target_acceptance)

    def threshold_history(self) -> list[ThresholdChange]:   # the model's policy: no personal data, not audited
        return self.service.threshold_history()

    def decisions(self, client_id: int) -> list[DecisionRecord]:
        records = self.service.decisions(client_id)
        self._write([self._entry("client_opened", int(client_id), details={"read": "decisions",
                                                                            "decisions": len(records)})])
        return records

    def assess(self, application: Mapping[str, Any], lang: str = "fr", client_id: int | None = None) -> Assessment:
        """A what-if (or an application alone) is a scoring: one "predicted" entry with its score, on the client's
        file for a what-if, naming the columns changed."""
        assessment = self.service.assess(application, lang, client_id)
        score = Score(assessment.client_id, assessment.default_probability, assessment.decision,
                      assessment.threshold, assessment.model_version)
        self._write([self._entry("predicted", assessment.client_id, score, details={
            "read": "what-if" if assessment.client_id is not None else "assessment",
            "changed": sorted(assessment.changes)})])
        return assessment

    def create_client(self, application: Mapping[str, Any], client_id: int | None = None,
                      created_by: str | None = None) -> ClientFile:
        """The creator is this service's user (`created_by` is ignored). The file is saved, then its
        "application_created" entry written before it is returned; if the entry cannot be written the caller is told so
        (`AuditUnavailableError`) although the file stays saved (append-only, with its creator and time)."""
        file = self.service.create_client(application, client_id, created_by=self.user)
        self._write([self._entry("application_created", file.client_id, file.score, details={
            "fields": len(application)})])
        return file

    def decision_file(self, client_id: int, decision_id: int, format: str = "html", lang: str = "fr") -> DecisionFile:
        """A decision file holds the client's application: reading it is a read of the client file."""
        file = self.service.decision_file(client_id, decision_id, format, lang)
        self._write([self._entry("client_opened", file.client_id, details={
            "read": "decision_file", "decision_id": file.decision_id, "format": format, "lang": lang})])
        return file

    def audit_trail(self, client_id: int, limit: int = 100) -> list[AuditEntry]:
        """Who did what with one client file, newest first; reading it is an entry of its own (written first,
        so it shows in the trail)."""
        self.service.client(client_id)  # an unknown client is an error, not an empty trail
        self._write([self._entry("audit_viewed", int(client_id))])
        try:
            return [AuditEntry(**e) for e in self.audit.for_client(client_id, limit)]
        except AUDIT_ERRORS as exc:
            raise AuditUnavailableError("the audit log cannot be read: retry in a moment or call the support "
                                        "desk") from exc

    # ------------------------------------------------------------------ no personal data
    @property
    def roles(self) -> frozenset[str]:
        return self.service.roles

    def model_card(self) -> dict:
        return self.service.model_card()

    def portfolio(self) -> PortfolioSummary:
        return self.service.portfolio()

    def drift(self) -> list[DriftRow]:
        return self.service.drift()

    def fairness(self) -> list[FairnessFigures]:
        return self.service.fairness()

    def model_versions(self) -> list[ModelVersion]:       # the model's figures: no personal data, not audited
        return self.service.model_versions()

    def compare_versions(self, a: str, b: str) -> VersionComparison:
        return self.service.compare_versions(a, b)

    def model_version_history(self) -> list[VersionEvent]:
        return self.service.model_version_history()

    def activate_version(self, version: str, reason: str, user: str | None = None) -> VersionEvent:
        """The analyst is this service's user (`user` is ignored). The version is activated, then its
        "model_activated" entry (the new and the previous version, the reason) written before the event is returned;
        if the entry cannot be written the caller is told so (`AuditUnavailableError`), the activation done."""
        event = self.service.activate_version(version, reason, user=self.user)
        self._model.clear()   # the version and threshold of the next entries: the new model's
        self._write([Entry("model_activated", self.user, None, event.version, None, None, self.source,
                           json.dumps({"version": event.version, "previous": event.previous,
                                       "reason": event.reason}, sort_keys=True))])
        return event

    def monitoring(self) -> list[MonthFigures]:
        return self.service.monitoring()

    def feature_drift(self, feature: str, month: str | None = None) -> FeatureDrift:
        return self.service.feature_drift(feature, month)

    def performance(self) -> list[PerformanceFigures]:
        return self.service.performance()

    def global_importance(self, top: int = 15) -> list[Importance]:
        return self.service.global_importance(top)

    def top_features(self, n: int = 5) -> list[Importance]:
        return self.service.top_features(n)

    def contract_types(self) -> list[str]:
        return self.service.contract_types()

    def application_fields(self) -> list[ApplicationField]:
        return self.service.application_fields()

    def search(self, query: ClientQuery) -> ClientPage:
        page = self.service.search(query)
        self._write([self._entry("searched", None, details={
            "filters": query.to_params(), "returned": len(page.items), "matching": page.total})])
        return page

    def distribution(self, feature: str, client_id: int | None = None) -> FeatureDistribution:
        distribution = self.service.distribution(feature, client_id)
        if client_id is not None:  # the population alone is no personal data
            self._write([self._entry("compared", distribution.client_id, details={"feature": feature})])
        return distribution

    def debt_capacity(self, client_id: int) -> DebtCapacity:
        capacity = self.service.debt_capacity(client_id)
        self._write([self._entry("debt_viewed", capacity.client_id)])
        return capacity
