"""The in-process backend of `scoring.contracts.ScoringService`: the engine behind the dashboard and the API.

`LocalScoringService` answers from the built artefacts (model, client-file store, feature matrix), loaded
once per process and shared by every session. Every number the dashboard shows comes from here, as the
contracts' plain dataclasses and small lists: histograms are binned here, tables are paginated.
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import logging
import math
import os
import re
import threading
from typing import Any, Mapping, Sequence

import numpy as np

from .config import Workdir
from .contracts import (ACCEPTED, REFUSED, DEBT_KEYS, DECISIONS, MAX_BATCH, MAX_JUSTIFICATION, MAX_PEERS, REASON_LANGUAGES,
                        ApplicationField, Assessment, DuplicateClientError, ClientFile,
                        ClientOverview, ClientPage, ClientQuery, DebtCapacity, DecisionRecord, DriftRow, Explanation,
                        Curve, FairnessAlert, FairnessFigures, FeatureDistribution, FeatureDrift, GroupFigures,
                        Histogram, Importance, JustificationRequiredError, MonthFigures, Offers, Peer, Peers,
                        PerformanceFigures, PortfolioSummary, RatioComparison, Reasons, Score, ModelVersion,
                        VersionComparison, VersionEvent, decide)
from .contracts import ThresholdChange, ThresholdSimulation
from .contracts import DECISION_FILE_FORMATS, DecisionFile, TrustFlag
from .errors import InvalidApplicationError, ModelError, ScoringError, UnknownClientError, UnknownDecisionError
from .errors import RegistryError
from .labels import feature_labels
from .model import load_folds, load_model
from .fairness import acceptance_report, group_labels
from .monitoring import PSI_DRIFT, drift_report, feature_counts, feature_shares, monthly_report
from .outcomes import relation
from .policy import GRID, ThresholdSimulator, adopt, changes, check_acceptance, check_costs, served_threshold
from .scorer import Scorer
from .store import ClientStore

log = logging.getLogger(__name__)

HIST_BINS = 40
MONTH = re.compile(r"\d{4}-(0[1-9]|1[0-2])")  # a month of application, "2026-03"
MONITORED_FEATURES = 15  # the model's main features followed month by month
PROFILE_FIELDS = ("age_years", "income", "debt", "debt_ratio", "family", "children", "employment_years")
APPLICATION_FIELDS = ("contract_type", "credit_amount", "term_months", "annuity", "goods_price", "credit_income_ratio")
RATIOS = ("debt_ratio", "credit_income_ratio")  # store columns compared with the population; labels in scoring.labels
#: a client file's debts (`contracts.DEBT_KEYS`) -> the store column holding it
DEBT_STORE_COLUMNS = {"active_credits": "active_credits", "outstanding_debt": "outstanding_debt",
                      "monthly_debt_service": "debt", "max_days_overdue": "max_days_overdue"}
FORM_FEATURES = 15       # the model's main features a new application's form asks for, besides the roles
MISSING_SHARE_ENV = "SCORING_MISSING_SHARE"
MISSING_SHARE = 0.45  # a file missing more than this share of the model's features is flagged (generated data: 1 % of files)
DRIFT_SAMPLE = 200_000   # new applications compared with the training reference (a fixed random sample beyond it)


#: the engine's methods cached per instance, and how many answers each keeps
CACHED_METHODS = {"_feature_counts": 64, "_feature_drift": 1024, "_feature_reference": 64, "_application": 4096,
                  "_decision_file": 256, "_simulation": 256}


def _hist(values: np.ndarray, edges: np.ndarray) -> list[int]:
    return np.histogram(values[np.isfinite(values)], bins=edges)[0].astype(int).tolist()


def _robust_edges(values: np.ndarray, bins: int = HIST_BINS) -> np.ndarray:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return np.linspace(0, 1, bins + 1)
    lo, hi = np.quantile(finite, [0.005, 0.995])
    if hi <= lo:
        lo, hi = float(finite.min()), float(finite.max()) + 1e-9
    return np.linspace(lo, hi, bins + 1)


class LocalScoringService:
    """In-process backend: model, store and feature matrix loaded once, shared by all sessions."""

    def __init__(self, workdir: Workdir | None = None, nthread: int | None = None,
                 new_applications: str | os.PathLike | None = None):
        """`nthread`: XGBoost threads per call (default `SCORING_NTHREAD`, else 1: a server scores many requests
        at once, and one application gains nothing from more). `new_applications`: the SQLite file of the
        applications entered after the build (`scoring.intake`; default: see `new_files`)."""
        self._new_applications_path = new_applications
        # this engine's own caches: a class-level functools.lru_cache would hold every engine that a reload
        # (scoring.serving) replaced, with its store and models, until newer entries pushed it out
        for name, size in CACHED_METHODS.items():
            setattr(self, name, functools.lru_cache(maxsize=size)(getattr(self, name)))
        self.workdir = (workdir or Workdir.resolve()).require_built()
        nthread = int(os.environ.get("SCORING_NTHREAD", "1")) if nthread is None else int(nthread)
        booster, card = load_model(self.workdir.model)
        # the threshold served: the one an analyst adopted for this model version (scoring.policy), else the
        # build's; every decision of this service (scorers, portfolio, offers, reasons...) reads it from the card
        self.built_threshold = card.threshold
        served, self.threshold_source = served_threshold(self.workdir, card.version, card.threshold)
        card = dataclasses.replace(card, threshold=served)
        self.scorer = Scorer(booster, card, nthread=nthread)
        # the cross-fitting models: a labelled client's probability and explanation come from the one that
        # did not see them (see scoring.model.train_model)
        self.fold_scorers = [Scorer(b, card, nthread=nthread) for b in load_folds(self.workdir.model, card)]
        # the engine's one type of an application (scoring.application): the API's request bodies
        self.applications = self.scorer.applications
        self.card = card
        self.store = ClientStore(self.workdir.store_path)
        if self.store.meta.get("model_version") != card.version or self.store.meta.get("features") != self.scorer.spec.names:
            raise ModelError(f"model {card.version} in {self.workdir.model} does not match the client files in "
                             f"{self.workdir.store_path} (built with model {self.store.meta.get('model_version')}); "
                             f"rebuild with `python -m scoring build`")
        try:
            self.X = np.load(self.workdir.features_path, mmap_mode="r")
        except (ValueError, OSError) as exc:
            raise ModelError(f"feature matrix {self.workdir.features_path} is corrupt: {exc}") from exc
        if self.X.ndim != 2 or self.X.shape[1] != len(self.scorer.spec.features):
            raise ModelError(f"feature matrix {self.workdir.features_path} has shape {self.X.shape}, "
                             f"expected {len(self.scorer.spec.features)} columns")
        self.ids = self._ids()
        if len(self.ids) != self.X.shape[0]:
            raise ModelError(f"{self.workdir.features_path} has {self.X.shape[0]} rows for {len(self.ids)} client files")
        self.roles = self.store.roles
        self.effort_cap  # a bad SCORING_EFFORT_CAP stops the start, not the first debt capacity
        self._monthly: dict[str, list[MonthFigures]] = {}
        self._monthly_lock = threading.Lock()
        self.folds = self.store.folds()
        if self.folds.max(initial=-1) >= len(self.fold_scorers):
            raise ModelError(f"the client files in {self.workdir.store_path} were scored by cross-fitting models "
                             f"missing from {self.workdir.model / 'folds'}: rebuild with `python -m scoring build`")

    def _ids(self) -> np.ndarray:
        return self.store.client_ids()

    # ------------------------------------------------------------ model and portfolio
    def model_card(self) -> dict:
        """The card's summary; `threshold` is the one served, `built_threshold` the build's, `threshold_source`
        says which ("build" or "policy": adopted by an analyst)."""
        return {**self.card.summary(), "built_threshold": self.built_threshold,
                "threshold_source": self.threshold_source}

    def application_examples(self) -> dict[str, dict]:
        """Synthetic applications for the API's documentation (training medians, most frequent categories)."""
        return self.applications.examples(self.card.reference)

    @functools.cached_property
    def _importance(self) -> list[Importance]:
        path = self.workdir.importance_path
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"global importance file {path} is missing or corrupt: rebuild ({exc})") from exc
        return [Importance(**f) for f in doc["features"]]

    def global_importance(self, top: int = 15) -> list[Importance]:
        return self._importance[: max(1, int(top))]

    def top_features(self, n: int = 5) -> list[Importance]:
        return self.global_importance(n)

    @functools.cached_property
    def _labelled_mask(self) -> np.ndarray:
        return np.isfinite(self._target)

    @functools.cached_property
    def _labelled_rows(self) -> np.ndarray:
        """The rows of the labelled files (a store built out of core labels its training sample only): reading
        these rows of the feature matrix, not whole columns of it."""
        return np.flatnonzero(self._labelled_mask)

    @functools.cached_property
    def _target(self) -> np.ndarray:
        return self.store.column("target")

    @functools.cached_property
    def _drift(self) -> tuple[list[DriftRow], float]:
        new = np.flatnonzero(~self._labelled_mask)
        if not len(new):  # no new applications: nothing to compare with the training reference
            return [], 0.0
        if len(new) > DRIFT_SAMPLE:   # a store of millions: their rows would not fit in memory, a sample measures it
            # random runs of 256 consecutive new files: a few pages of the memory-mapped matrix each, not one per row
            runs = np.sort(np.random.default_rng(0).choice(-(-len(new) // 256), DRIFT_SAMPLE // 256, replace=False))
            new = np.concatenate([new[r * 256:(r + 1) * 256] for r in runs.tolist()])
        X_new = np.asarray(self.X[new])
        p_new = self._probabilities[new]
        spec = self.scorer.spec
        table, score_psi = drift_report(self.card.reference, X_new, p_new, spec.names, [f.label for f in spec.features])
        fr = {f.name: f.label_fr for f in spec.features}
        rows = [DriftRow(r.feature, r.label, fr[r.feature], float(r.psi), r.status) for r in table.itertuples()]
        return rows, score_psi

    def drift(self) -> list[DriftRow]:
        return self._drift[0]

    # ------------------------------------------------------------ governance: fairness, monitoring over time
    @functools.cached_property
    def _fairness(self) -> list[FairnessFigures]:
        """The card's figures (labelled applications, out of fold), then the same on the new applications' decisions
        (acceptance and predictions only: their outcomes are not known yet), from the store's raw columns."""
        out = [_fairness_figures(name, "labelled (out of fold)", f) for name, f in self.card.fairness.items()]
        schema = self.scorer.spec.schema
        columns = [p.column for p in schema.protected.values()]
        if columns:
            counts = self.store.protected_counts(columns, "new", self.card.threshold)   # aggregated in DuckDB
            if len(counts):
                live = acceptance_report(counts, schema)
                out += [_fairness_figures(name, "new applications", f) for name, f in live.items()]
        return out

    def fairness(self) -> list[FairnessFigures]:
        return self._fairness

    def model_versions(self) -> list[ModelVersion]:
        from .registry import Registry

        return Registry(self.workdir).versions()

    def compare_versions(self, a: str, b: str) -> VersionComparison:
        from .registry import Registry

        return Registry(self.workdir).compare(a, b)

    def model_version_history(self) -> list[VersionEvent]:
        from .registry import Registry

        fields = {f.name for f in dataclasses.fields(VersionEvent)}
        return [VersionEvent(**{k: v for k, v in e.items() if k in fields})
                for e in reversed(Registry(self.workdir).history())]

    def activate_version(self, version: str, reason: str, user: str | None = None) -> VersionEvent:
        """Serve `version` from now on (`Registry.activate`: its models and its scores replace the served ones, on
        disk). This instance keeps what it loaded: the process-wide service (`scoring.serving`) opens the new
        artefacts at its next call. Refused without a reason or a user, for an unknown version, for one that cannot
        be served over these client files (`VersionConflictError`)."""
        from .registry import Registry

        registry = Registry(self.workdir)
        if not (reason or "").strip():
            raise RegistryError("reason: a reason is required to change the model version served")
        registry.check_activable(version)
        event = registry.activate(version, user=user or "", reason=reason)
        # the history's line of this activation (its time), newest first
        return next(e for e in self.model_version_history() if e.event == "activated" and e.version == version
                    and e.user == event["user"] and e.reason == event["reason"])

    @functools.cached_property
    def _monitored(self) -> dict[str, dict]:
        """The model's main features followed month by month (those read from one raw column of the store)."""
        spec = self.scorer.spec
        features = {}
        for imp in self.global_importance(MONITORED_FEATURES):
            j = spec.index(imp.feature)
            f = spec.features[j]
            if f.source and (f.source == f.name or f.kind == "categorical"):  # a raw column of the store
                features[f.name] = {"name": f.name, "column": f.source, "index": j,
                                    "categories": list(f.categories) if f.kind == "categorical" else None}
        return features

    def monitoring(self) -> list[MonthFigures]:
        """Figures by month of application, computed in DuckDB (`scoring.monitoring.monthly_report`), once per set
        of known outcomes (outcomes loaded since, `python -m scoring outcomes`, are read at the next call). A call
        while another computes them (e.g. `start_governance`'s) waits for its result."""
        outcomes = relation(self.workdir)
        cached = self._monthly.get(outcomes)
        if cached is None:
            with self._monthly_lock:
                cached = self._monthly.get(outcomes)
                if cached is None:
                    rows = monthly_report(self.store.cursor(), self.card.reference, self.card.threshold,
                                          list(self._monitored.values()), outcomes=outcomes)
                    cached = [MonthFigures(**r, drifting=sorted(k for k, v in r["feature_psi"].items()
                                                                if v >= PSI_DRIFT)) for r in rows]
                    self._monthly.clear()
                    self._monthly[outcomes] = cached
        return cached

    def feature_drift(self, feature: str, month: str | None = None) -> FeatureDrift:
        """A monitored feature's shares per bin in the labelled history and in the new applications (or those of
        `month`, "2026-03"), from counts by month computed in DuckDB once per feature (`scoring.monitoring`).
        `KeyError` for a feature that is not monitored, `ValueError` for a malformed month."""
        if month is not None and not MONTH.fullmatch(str(month)):
            raise ValueError(f"month must be a month as YYYY-MM (e.g. 2026-03), got {str(month)[:20]!r}")
        if feature not in self._monitored:
            raise KeyError(f"feature {feature!r} is not monitored; monitored features: "
                           f"{', '.join(self._monitored)}")
        return self._feature_drift(feature, month)

    def _feature_counts(self, feature: str) -> dict:
        """Counts per bin by month and split: one query per feature (~0.3 s at full size), every month from it."""
        return feature_counts(self.store.cursor(), self._monitored[feature], self.card.reference)

    def _feature_drift(self, feature: str, month: str | None) -> FeatureDrift:
        f = self.scorer.spec.features[self.scorer.spec.index(feature)]
        shares = feature_shares(self._feature_counts(feature), month)
        return FeatureDrift(f.name, f.label, f.label_fr, "categorical" if f.kind == "categorical" else "numeric",
                            month=month, **shares)

    @functools.cached_property
    def _performance(self) -> list[PerformanceFigures]:
        import pandas as pd

        from .fairness import MISSING, band_names, labels_of
        from .performance import performance_report
        from .schema import AGE_BANDS, Protected

        labelled = self._labelled_mask
        segments, order = {}, {}
        if "contract_type" in self.roles:   # a few columns of the store, in client ID order like the others
            types = self.store.cursor().execute(   # the labelled files' only, in the same order as the mask
                f"SELECT coalesce(contract_type, '{MISSING}') AS t FROM applications WHERE target IS NOT NULL "
                f"ORDER BY client_id").fetchnumpy()
            segments["contract_type"] = np.asarray(types["t"], dtype=object)
        if "age_years" in self.roles:
            age = self.scorer.spec.schema.protected.get("age")
            bands = age.bands if age is not None and age.bands else AGE_BANDS
            segments["age"] = labels_of(pd.Series(self.store.column("age_years", "target IS NOT NULL")),
                                        Protected("age_years", "years", tuple(bands)))
            order["age"] = band_names(bands) + [MISSING]
        costs = self.card.cost_weights
        rows = performance_report(self._target[labelled], self._probabilities[labelled], self.card.threshold,
                                  costs["missed_default"], costs["refused_good_client"], segments, order)
        return [PerformanceFigures(**{**r, "roc": Curve(**r["roc"]), "pr": Curve(**r["pr"]),
                                      "calibration": Curve(**r["calibration"])}) for r in rows]

    def performance(self) -> list[PerformanceFigures]:
        """The model on the labelled applications (out of fold) at the threshold: all of them, then by contract
        type and age band (`scoring.performance`); computed once."""
        return self._performance

    def start_governance(self) -> threading.Thread:
        """Compute the analysts' figures (fairness, monitoring by month, performance, the monitored features'
        distributions by month) in a background thread, so that the first analyst does not wait for them.

        At exit the remaining steps are skipped and the step running is waited for: a thread still inside DuckDB
        when the interpreter ends aborts the process (e.g. a server refusing to start on a bad setting)."""
        stop = threading.Event()

        def steps():
            yield self.fairness
            yield self.monitoring
            yield self.performance
            yield self.threshold_simulation   # the threshold policy's simulator, at the card's costs
            for feature in self._monitored:   # every month of every monitored feature from one query each
                yield functools.partial(self._feature_counts, feature)
                yield functools.partial(self.feature_drift, feature)

        def run():
            try:
                for step in steps():
                    if stop.is_set():
                        return
                    step()
            except Exception:   # a background warm-up must not die silently: the next call raises it again
                log.exception("analysts' figures could not be computed in the background")

        thread = threading.Thread(target=run, name="governance-warm-up", daemon=True)

        def finish():
            stop.set()
            thread.join()

        atexit.register(finish)
        thread.start()
        return thread

    @functools.cached_property
    def _portfolio(self) -> PortfolioSummary:
        p = self.store.portfolio()
        rows, score_psi = self._drift
        n_drifting = sum(r.status == "drift" for r in rows)
        m = self.card.metrics
        return PortfolioSummary(
            n_applications=p["n_applications"], n_accepted=p["n_accepted"], n_refused=p["n_refused"],
            acceptance_rate=p["n_accepted"] / max(p["n_applications"], 1),
            mean_default_probability=p["mean_default_probability"], error_rate=m["error_rate"], roc_auc=m["roc_auc"],
            threshold=self.card.threshold, drift_share=n_drifting / max(len(rows), 1), n_drifting=n_drifting,
            score_psi=score_psi, model_version=self.card.version)

    def portfolio(self) -> PortfolioSummary:
        return self._portfolio

    def contract_types(self) -> list[str]:
        return self._contract_types

    @functools.cached_property
    def _contract_types(self) -> list[str]:
        return self.store.contract_types() if "contract_type" in self.roles else []

    # ------------------------------------------------------------ clients
    def search(self, query: ClientQuery) -> ClientPage:
        appended = self._appended_frame()
        return self.store.search(query, appended, getattr(self, "_appended_cache", (None,))[0])

    def _row(self, client_id: int) -> int:
        try:
            cid = int(client_id)
        except (TypeError, ValueError):
            raise UnknownClientError(client_id) from None
        i = int(np.searchsorted(self.ids, cid))
        if i >= len(self.ids) or self.ids[i] != cid:
            raise UnknownClientError(cid)
        return i

    def client(self, client_id: int) -> ClientFile:
        if (new := self._new(client_id)) is not None:
            return self._new_client_file(new)
        row = self.store.get(client_id)
        p = row["default_probability"]
        score = self.scorer.score_of(row["client_id"], p)
        if abs(p - score.threshold) <= self.review_band:  # "à étudier": close enough to the threshold to look again
            score = dataclasses.replace(score, review=True)
        target = row["target"]
        return ClientFile(
            client_id=row["client_id"], split=row["split"], known_outcome=None if target is None else int(target),
            score=score,
            profile={k: row[k] for k in PROFILE_FIELDS},
            application={k: row[k] for k in APPLICATION_FIELDS},
            debts={k: row.get(DEBT_STORE_COLUMNS[k]) for k in DEBT_KEYS if DEBT_STORE_COLUMNS[k] in self.roles},
            term_months=row.get("term_months"),
        )

    def scorer_of(self, row: int) -> Scorer:
        """The model that scored a client file: its cross-fitting model if labelled, else the production one."""
        k = int(self.folds[row])
        return self.scorer if k < 0 else self.fold_scorers[k]

    def explain(self, client_id: int, top: int | None = None) -> Explanation:
        if (new := self._new(client_id)) is not None:
            return self.scorer.explain_row(self._new_row(new), new.client_id, top)
        i = self._row(client_id)
        return self.scorer_of(i).explain_row(np.asarray(self.X[i]), int(self.ids[i]), top)

    def score_and_explain(self, client_id: int, top: int | None = None) -> tuple[Score, Explanation]:
        """The client's score recomputed from their row with its explanation: one NumPy row, one TreeSHAP call,
        by the model that scored the file."""
        if (new := self._new(client_id)) is not None:
            return self.scorer.score_and_explain(self._new_row(new), new.client_id, top)
        i = self._row(client_id)
        return self.scorer_of(i).score_and_explain(np.asarray(self.X[i]), int(self.ids[i]), top)

    def overview(self, client_id: int, feature: str | None = None, top: int | None = None) -> ClientOverview:
        """The client switch of the dashboard: file, explanation, one comparison and debt capacity at once."""
        file = self.client(client_id)
        return ClientOverview(file, self.explain(file.client_id, top),
                              None if feature is None else self.distribution(feature, file.client_id),
                              self.debt_capacity(file.client_id), self.trust_flags(file.client_id))

    def predict(self, record: Mapping[str, Any], explain: bool = False,
                top: int | None = None) -> tuple[Score, Explanation | None]:
        return self.scorer.score_record(record, explain=explain, top=top)

    def audit_trail(self, client_id: int, limit: int = 100) -> list:
        """The engine keeps no audit log: `scoring.audited.AuditedService` around it does."""
        raise ScoringError("no audit log here: read the trail through the audited service (the API or the "
                           "dashboard's session)")

    def predict_batch(self, records: Sequence[Mapping[str, Any]], validated: bool = False) -> list[Score]:
        """Scores of several applications, in order (one XGBoost call); `InvalidApplicationError` names the
        first bad row by its index (`3.AMT_CREDIT`). `validated=True`: the records are instances of
        `self.applications.type` already (the API's request body), not checked twice."""
        if not 1 <= len(records) <= MAX_BATCH:
            raise InvalidApplicationError("applications", f"send between 1 and {MAX_BATCH} applications, "
                                                          f"got {len(records)}")
        return self.scorer.score_records(records, validated=validated)

    # ------------------------------------------------------------ comparisons with the population
    def _feature_reference(self, feature: str) -> tuple[Histogram, np.ndarray, str]:
        spec = self.scorer.spec
        try:
            j = spec.index(feature)
        except KeyError:
            raise KeyError(f"unknown feature {feature!r}; model features include "
                           f"{', '.join(f.feature for f in self.top_features(5))}") from None
        f = spec.features[j]
        labelled = self._labelled_rows
        col = np.asarray(self.X[labelled, j], dtype=np.float64)
        y = self._target[labelled]
        if f.kind == "categorical":
            k = len(f.categories)
            counts = {name: np.bincount(col[(y == t) & np.isfinite(col)].astype(int), minlength=k)[:k].tolist()
                      for name, t in (("repaid", 0), ("defaulted", 1))}
            return Histogram([], list(f.categories), counts), np.empty(0), f.kind
        edges = _robust_edges(col)
        counts = {"repaid": _hist(col[y == 0], edges), "defaulted": _hist(col[y == 1], edges)}
        sorted_values = np.sort(col[np.isfinite(col)])
        return Histogram(edges.tolist(), [], counts), sorted_values, f.kind

    def distribution(self, feature: str, client_id: int | None = None) -> FeatureDistribution:
        hist, sorted_values, kind = self._feature_reference(feature)
        f = self.scorer.spec.features[self.scorer.spec.index(feature)]
        value = percentile = None
        if client_id is not None:
            new = self._new(client_id)
            row = self._new_row(new) if new is not None else self.X[self._row(client_id)]
            raw = float(row[self.scorer.spec.index(feature)])
            if np.isfinite(raw):
                if kind == "categorical":
                    value = f.categories[int(raw)]
                else:
                    value = raw
                    if sorted_values.size:
                        percentile = 100.0 * np.searchsorted(sorted_values, raw, side="left") / sorted_values.size
        return FeatureDistribution(f.name, f.label, f.label_fr, kind, hist, None if client_id is None else int(client_id),
                                   value, percentile)

    @functools.cached_property
    def _ratio_reference(self) -> dict[str, tuple[float, float, Histogram]]:
        """Per ratio: its mean over every file and over the accepted ones, and their histograms, computed in
        DuckDB (`scoring.store.ClientStore.histogram`): no column of the store in memory."""
        out = {}
        for name in RATIOS:
            if name not in self.roles:
                continue
            edges, counts, means = self.store.histogram(name, HIST_BINS, {"all": None, "accepted": self.card.threshold})
            out[name] = (means["all"], means["accepted"], Histogram(edges, [], counts))
        return out

    @functools.cached_property
    def effort_cap(self) -> float:
        """The effort-rate cap (`SCORING_EFFORT_CAP`, default 35 %: the French HCSF rule)."""
        from .offers import effort_cap_from_env

        return effort_cap_from_env()

    def debt_capacity(self, client_id: int) -> DebtCapacity:
        """The effort rate (existing credits' and the asked loan's monthly payments over the monthly income, the
        store's `debt_ratio`) against the cap, what remains under it, the largest amount affordable at the term
        asked, and the effort rates of accepted clients; the ratios against the population as before."""
        new = self._new(client_id)
        i = None if new is not None else self._row(client_id)
        ratios = []
        row = self.store.get(int(self.ids[i])) if new is None else new.roles
        for name, (pop_mean, acc_mean, hist) in self._ratio_reference.items():
            v = np.float64(np.nan if row.get(name) is None else row[name])
            en, fr = feature_labels(name)
            ratios.append(RatioComparison(name, en, fr, None if not np.isfinite(v) else float(v), pop_mean, acc_mean, hist))

        def known(key: str) -> float | None:
            v = row.get(key)
            return float(v) if v is not None and np.isfinite(v) else None

        income, payment, term = known("income"), known("annuity"), known("term_months")
        existing = (known("debt") or 0.0) if "debt" in self.roles else None
        cap = self.effort_cap
        effort = remaining = affordable = percentile = None
        if income and income > 0:
            budget = income * cap - (existing or 0.0)
            if payment is not None:
                effort = ((existing or 0.0) + payment) / income
                remaining = budget - payment
            if term is not None:
                affordable = max(0.0, budget) * term
        reference = self._ratio_reference.get("debt_ratio")
        if effort is not None and reference is not None:
            accepted = self._accepted_effort_rates
            percentile = 100.0 * float(np.searchsorted(accepted, effort, side="left")) / max(len(accepted), 1)
        return DebtCapacity(int(self.ids[i]) if new is None else new.client_id, ratios, monthly_income=income,
                            existing_debt_service=existing,
                            requested_payment=payment, effort_rate=effort, effort_cap=cap,
                            remaining_capacity=remaining, term_months=term, max_affordable_amount=affordable,
                            accepted_percentile=percentile,
                            accepted_effort_rates=None if reference is None else reference[2])

    @functools.cached_property
    def _accepted_effort_rates(self) -> np.ndarray:
        """The effort rates of the accepted clients, sorted (the client's percentile among them)."""
        return self.store.sorted_values("debt_ratio", self.card.threshold)

    # ------------------------------------------------------------ trust flags
    @functools.cached_property
    def missing_share_limit(self) -> float:
        value = float(os.environ.get(MISSING_SHARE_ENV, MISSING_SHARE))
        if not 0 < value <= 1:
            raise ValueError(f"{MISSING_SHARE_ENV} must be a share between 0 and 1, got {value}")
        return value

    @functools.cached_property
    def _training_range(self) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
        """Lowest and highest training value of each numeric feature, in the model's order (NaN: not checked);
        None when the model card predates them."""
        ranges = self.card.training_range
        if not ranges:
            return None
        spec = self.scorer.spec
        low = np.array([ranges.get(f.name, [np.nan, np.nan])[0] for f in spec.features], dtype=np.float64)
        high = np.array([ranges.get(f.name, [np.nan, np.nan])[1] for f in spec.features], dtype=np.float64)
        return low, high, np.array([f.name for f in spec.features])

    def flags_of_row(self, x: np.ndarray, month: str | None = None) -> tuple[TrustFlag, ...]:
        """The trust flags of an application (a row of the model's features): values beyond the training range,
        many missing fields, and its month of application drifting in `monitoring()`."""
        x = np.asarray(x, dtype=np.float64)
        flags = []
        ranges = self._training_range
        if ranges is None:
            flags.append(TrustFlag("range_unknown"))
        else:
            low, high, names = ranges
            with np.errstate(invalid="ignore"):
                outside = np.isfinite(x) & ((x < low) | (x > high))
            if outside.any():
                flags.append(TrustFlag("out_of_range", tuple(names[outside].tolist())))
        share = float(np.mean(~np.isfinite(x))) if x.size else 0.0
        if share > self.missing_share_limit:
            flags.append(TrustFlag("many_missing", value=share, limit=self.missing_share_limit))
        if month is not None:
            figures = next((m for m in self.monitoring() if m.month == month), None)
            if figures is not None and (figures.score_psi >= PSI_DRIFT or figures.drifting):
                flags.append(TrustFlag("segment_drift", tuple(figures.drifting), figures.score_psi, PSI_DRIFT, month))
        return tuple(flags)

    def trust_flags(self, client_id: int) -> tuple[TrustFlag, ...]:
        """The trust flags of a client file (see `flags_of_row`), its segment being its month of application (a new
        application entered after the build has no month among the monitored ones)."""
        if (new := self._new(client_id)) is not None:
            return self.flags_of_row(self._new_row(new), None)
        i = self._row(client_id)
        date = self.store.get(int(self.ids[i])).get("application_date")
        known = date is not None and date == date   # NaT (no date in this dataset) is not equal to itself
        month = (f"{date:%Y-%m}" if hasattr(date, "strftime") else str(date)[:7]) if known else None
        return self.flags_of_row(np.asarray(self.X[i]), month)

    # ------------------------------------------------------------ advising a client
    def application(self, client_id: int) -> dict[str, Any]:
        """The client's application exactly as `predict` (`POST /predict`) takes it: the raw columns the API
        accepts (protected ones included), without missing values."""
        if (new := self._new(client_id)) is not None:
            return dict(new.application)
        return dict(self._application(int(self.ids[self._row(client_id)])))

    def _application(self, client_id: int) -> dict[str, Any]:
        """Cached: a raw row costs ~7 ms in DuckDB, and reasons, offers and a decision on one client read it in
        turn (the client files are read-only, so a cached row never goes stale)."""
        accepted = self.applications.type.__annotations__
        raw = self.store.raw_record(client_id)
        application = {k: v for k, v in raw.items() if v is not None and k in accepted}
        # A value the API refuses is left out, as a missing value: a category the model never saw in training
        # (which the model reads as missing anyway, so the score is unchanged), or a number beyond the schema's
        # physical bounds.
        for _ in range(len(application)):
            try:
                self.applications.validate(application)
                return application
            except InvalidApplicationError as exc:
                if exc.field not in application:
                    raise
                del application[exc.field]
        return application

    def percentile(self, feature: str, value: float) -> float | None:
        """Share of labelled clients with a lower value of `feature`, in % (None for a category)."""
        _, sorted_values, kind = self._feature_reference(feature)
        if kind == "categorical" or not sorted_values.size or not np.isfinite(value):
            return None
        return 100.0 * np.searchsorted(sorted_values, np.float32(value), side="left") / sorted_values.size

    def reasons(self, client_id: int, lang: str = "fr") -> Reasons:
        """Up to four principal reasons of the file's decision, from the exact SHAP values of the model that
        scored it (`scoring.reasons`)."""
        from .reasons import principal_reasons

        if lang not in REASON_LANGUAGES:
            raise ValueError(f"lang must be one of {', '.join(REASON_LANGUAGES)}, got {lang!r}")
        if (new := self._new(client_id)) is not None:
            assessed = self._assess(new.application, lang, new.client_id)
            return Reasons(new.client_id, lang, assessed.decision, assessed.default_probability, assessed.threshold,
                           assessed.model_version, assessed.reasons)
        i = self._row(client_id)
        scorer = self.scorer_of(i)
        x = np.asarray(self.X[i])
        shap_row = scorer.contributions(x.reshape(1, -1))[0]
        p = float(1.0 / (1.0 + np.exp(-float(shap_row.sum()))))
        decision = decide(p, scorer.threshold)
        reasons = principal_reasons(scorer.spec, x, shap_row[:-1], decision, lang, self.percentile)
        return Reasons(int(self.ids[i]), lang, decision, p, scorer.threshold, scorer.version, reasons)

    def offers(self, client_id: int) -> Offers:
        """The closest loans the production model accepts for a refused application (`scoring.offers`)."""
        from .offers import counter_offers

        new = self._new(client_id)
        i = None if new is not None else self._row(client_id)
        cid = int(self.ids[i]) if new is None else new.client_id
        offers = counter_offers(self.scorer, self.application(cid), cid, effort_cap=self.effort_cap)
        if i is not None and not offers.offers and offers.decision == ACCEPTED and self.scorer_of(i) is not self.scorer:
            filed = float(self._probabilities[i])
            if decide(filed, self.card.threshold) == REFUSED:
                # a historical file is scored out of fold (its decision from a cross-fitting model), the offers by
                # the production model: say why the one refuses what the other accepts as it stands
                offers = dataclasses.replace(offers, message=OUT_OF_FOLD_ACCEPTED.format(
                    production_fr=_percent_fr(offers.default_probability), production_en=f"{offers.default_probability:.1%}",
                    filed_fr=_percent_fr(filed), filed_en=f"{filed:.1%}"))
        return offers

    @functools.cached_property
    def _probabilities(self) -> np.ndarray:
        return self.store.column("default_probability")

    @functools.cached_property
    def _peer_index(self):
        from .peers import PeerIndex, peer_space

        columns = peer_space(self.scorer.spec, [f.feature for f in self._importance])
        return PeerIndex(self.X, self._labelled_rows, columns)

    def peers(self, client_id: int, k: int = 10) -> Peers:
        """The k labelled applicants most like the client (`scoring.peers`), never the client, and their
        observed default rate."""
        if not 1 <= int(k) <= MAX_PEERS:
            raise ValueError(f"k must be between 1 and {MAX_PEERS}, got {k}")
        new = self._new(client_id)
        i = None if new is not None else self._row(client_id)
        index = self._peer_index
        x = np.asarray(self.X[i]) if new is None else self._new_row(new)
        rows, dist = index.nearest(x, int(k), exclude_row=i)
        target = self._target
        p = self._probabilities
        peers = tuple(Peer(int(self.ids[r]), float(d), bool(target[r] == 1), float(p[r]))
                      for r, d in zip(rows.tolist(), dist.tolist()))
        rate = float(np.mean([q.defaulted for q in peers])) if peers else float("nan")
        names = tuple(self.scorer.spec.features[j].name for j in index.columns)
        if new is not None:
            return Peers(new.client_id, len(peers), self._new_probability(new), rate, names, peers)
        return Peers(int(self.ids[i]), len(peers), float(p[i]), rate, names, peers)

    @functools.cached_property
    def decision_log(self):
        """The advisors' decisions (`scoring.decisions`): `SCORING_DECISIONS_DB`, else decisions.sqlite beside the
        SQLite audit log (`SCORING_AUDIT_DB`), else data/decisions.sqlite."""
        from pathlib import Path

        from .decisions import DECISIONS_DB_ENV, DecisionLog

        audit = os.environ.get("SCORING_AUDIT_DB")
        beside = Path(audit).expanduser().parent if audit else self.workdir.data
        return DecisionLog(os.environ.get(DECISIONS_DB_ENV) or beside / "decisions.sqlite")

    @functools.cached_property
    def review_band(self) -> float:
        from .decisions import review_band_from_env

        return review_band_from_env()

    def record_decision(self, client_id: int, decision: str, justification: str = "",
                        offer: Mapping[str, float] | None = None, advisor: str | None = None) -> DecisionRecord:
        """Store an advisor's decision with the score it was taken against: the file's model on the application
        as it stands, or, with `offer` (changes of the loan's columns), the production model on the changed
        application. A decision other than the model's needs a justification (`JustificationRequiredError`)."""
        from .decisions import in_review_band
        from .offers import loan_columns

        if decision not in DECISIONS:
            raise ValueError(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
        justification = (justification or "").strip()
        if len(justification) > MAX_JUSTIFICATION:
            raise ValueError(f"the justification is limited to {MAX_JUSTIFICATION} characters")
        new = self._new(client_id)
        i = None if new is not None else self._row(client_id)
        cid = int(self.ids[i]) if new is None else new.client_id
        application = self.application(cid)
        if offer:
            outside = sorted(set(offer) - loan_columns(self.scorer.spec))
            if outside:
                raise InvalidApplicationError(f"offer.{outside[0]}", "an offer changes the loan's columns only ("
                                              + ", ".join(sorted(loan_columns(self.scorer.spec))) + ")")
            try:
                application = self.applications.validate({**application, **offer})
            except InvalidApplicationError as exc:
                raise InvalidApplicationError(f"offer.{exc.field}", exc.reason) from None
            offers = self.offers(cid)
            if not any(_same_changes(offer, o.changes) for o in offers.offers):
                why = (f"{len(offers.offers)} offers are given for this client" if offers.offers
                       else (offers.message or "no offer is given for this client"))
                raise InvalidApplicationError("offer", f"not one of the offers of GET /clients/{cid}/offers ({why}): "
                                                       f"send the `changes` of one of them as they are")
            scorer, model = self.scorer, "production"
        else:
            scorer = self.scorer_of(i) if new is None else self.scorer  # a new file: the production model
            model = "production" if scorer is self.scorer else f"fold {int(self.folds[i])}"
        score, _ = scorer.score_record(application)
        if decision != score.decision and not justification:
            raise JustificationRequiredError(
                f"the model's decision is {score.decision!r}: a {decision!r} decision needs a justification")
        shown = tuple(r.text for r in self.reasons(cid).reasons)
        return self.decision_log.append(
            client_id=cid, advisor=advisor, model_version=scorer.version, model=model,
            default_probability=score.default_probability, threshold=score.threshold,
            model_decision=score.decision, decision=decision, justification=justification,
            review=in_review_band(score.default_probability, score.threshold, self.review_band),
            review_band=self.review_band, reasons=list(shown), offer=None if not offer else dict(offer),
            application=application, flags=list(self.trust_flags(cid)))

    def decisions(self, client_id: int) -> list[DecisionRecord]:
        """The decisions recorded on a client file, oldest first."""
        new = self._new(client_id)
        return self.decision_log.for_client(int(self.ids[self._row(client_id)]) if new is None else new.client_id)


    # ------------------------------------------------------------ what-if and new applications
    @functools.cached_property
    def new_files(self):
        """The applications entered after the build (`scoring.intake`), shared by every process of this work
        directory: `SCORING_NEW_APPLICATIONS_DB`, else new_applications.sqlite beside the SQLite audit log
        (`SCORING_AUDIT_DB`), else data/new_applications.sqlite."""
        from pathlib import Path

        from .intake import NEW_APPLICATIONS_DB_ENV, NewApplications

        if self._new_applications_path is not None:
            return NewApplications(self._new_applications_path)
        audit = os.environ.get("SCORING_AUDIT_DB")
        beside = Path(audit).expanduser().parent if audit else self.workdir.data
        return NewApplications(os.environ.get(NEW_APPLICATIONS_DB_ENV) or beside / "new_applications.sqlite")

    def _in_store(self, cid: int) -> bool:
        i = int(np.searchsorted(self.ids, cid))
        return i < len(self.ids) and int(self.ids[i]) == cid

    def _new(self, client_id: Any):
        """The new file `client_id` (saved by any process on this work directory), None for a file of the store or
        an unknown ID (the store's path then answers, or raises `UnknownClientError`)."""
        try:
            cid = int(client_id)
        except (TypeError, ValueError):
            return None
        if not -(2**63) <= cid < 2**63 or self._in_store(cid):
            return None
        return self.new_files.get(cid)

    def _new_row(self, new) -> np.ndarray:
        """A new file's feature row (kept: its application never changes, append-only)."""
        rows = self.__dict__.setdefault("_new_rows", {})
        row = rows.get(new.client_id)
        if row is None:
            row = rows[new.client_id] = self.scorer.spec.transform_record(
                self.applications.validate(new.application), checked=True)[0]
        return row

    def _new_probability(self, new) -> float:
        """A new file's probability by the production model: the one stored at creation, or, after a new model
        was built, the new model's (so its search row, file, reasons and offers agree)."""
        if new.model_version == self.card.version:
            return new.default_probability
        return float(self.scorer.predict_proba(self._new_row(new).reshape(1, -1))[0])

    def _new_client_file(self, new) -> ClientFile:
        score = self.scorer.score_of(new.client_id, self._new_probability(new))
        if abs(score.default_probability - score.threshold) <= self.review_band:
            score = dataclasses.replace(score, review=True)
        return ClientFile(client_id=new.client_id, split="new", known_outcome=None, score=score,
                          profile={k: new.roles.get(k) for k in PROFILE_FIELDS},
                          application={k: new.roles.get(k) for k in APPLICATION_FIELDS},
                          debts={k: new.roles.get(DEBT_STORE_COLUMNS[k]) for k in DEBT_KEYS
                                 if DEBT_STORE_COLUMNS[k] in self.roles},
                          term_months=new.roles.get("term_months"))

    def _appended_frame(self):
        """The new files as rows of the store's search columns (None when there is none): probabilities and
        decisions by the production model. Rebuilt only when a file was added (by any process)."""
        import pandas as pd

        from .store import SEARCH_COLUMNS

        files = self.new_files.all()
        if not files:
            return None
        key = (len(files), files[-1].seq)
        cached = getattr(self, "_appended_cache", None)
        if cached is not None and cached[0] == key:
            return cached[1]
        rows = []
        for new in files:
            p = self._new_probability(new)
            rows.append({**{c: new.roles.get(c) for c in SEARCH_COLUMNS}, "client_id": new.client_id, "split": "new",
                         "default_probability": p, "decision": decide(p, self.card.threshold)})
        frame = pd.DataFrame(rows, columns=list(SEARCH_COLUMNS))
        for c in SEARCH_COLUMNS:
            if c not in ("split", "decision", "contract_type"):
                frame[c] = pd.to_numeric(frame[c], errors="coerce").astype("int64" if c == "client_id" else "float64")
        self._appended_cache = (key, frame)
        return frame

    def _roles_of(self, application: Mapping[str, Any]) -> dict[str, Any]:
        """The business columns of a client file (`scoring.store.role_frame`) for one validated application."""
        import pandas as pd

        from .store import ROLE_COLUMNS, role_frame

        spec = self.scorer.spec
        categorical = {f.source for f in spec.features if f.kind == "categorical" and f.source}
        columns = list(dict.fromkeys([*spec.raw_columns, *(p.column for p in spec.schema.protected.values()),
                                      *(r.column for r in spec.schema.roles.values())]))
        raw = pd.DataFrame([{c: application.get(c, None if c in categorical else np.nan) for c in columns}])
        for c in columns:
            if c not in categorical and raw[c].dtype == object:
                raw[c] = pd.to_numeric(raw[c], errors="coerce")
        roles = role_frame(raw, spec.schema).iloc[0]
        out = {}
        for c in ROLE_COLUMNS:
            v = roles.get(c)
            if v is None or v is pd.NA or (isinstance(v, float) and not np.isfinite(v)):
                out[c] = None
            else:
                out[c] = v.item() if hasattr(v, "item") else (str(v) if c in ("contract_type", "family") else v)
        return out

    @functools.cached_property
    def _application_fields(self) -> list[ApplicationField]:
        spec = self.scorer.spec
        schema = spec.schema
        accepted = self.applications.type.__annotations__
        protected = {p.column for p in schema.protected.values()}
        categories = {f.source: tuple(f.categories) for f in spec.features if f.kind == "categorical" and f.source}
        amounts = set(schema.amount_columns)
        order = ("credit_amount", "annuity", "goods_price", "term", "contract_type", "income", "employment", "family",
                 "children", "debt", "active_credits", "outstanding_debt", "days_overdue", "age")
        roles = {schema.roles[r].column: (r, schema.roles[r].unit) for r in order if r in schema.roles}
        # the roles, then the model's main features a caller sends as they are (external scores...)
        columns = list(roles)
        for imp in self._importance[:FORM_FEATURES]:
            f = spec.features[spec.index(imp.feature)]
            if f.source and f.source not in columns and f.source not in protected and \
                    (f.source == f.name or f.kind == "categorical"):
                columns.append(f.source)
        out = []
        for column in columns:
            if column not in accepted:
                continue
            role, unit = roles.get(column, (None, None))
            en, fr = feature_labels(column)
            if column in categories:
                out.append(ApplicationField(column, role, en, fr, "category", categories=categories[column],
                                            unit="category", whatif=role is not None and column not in protected))
                continue
            bound = schema.bounds.get(column)
            low = 0.0 if column in amounts else None
            high = None
            if bound is not None:
                low = bound.min if low is None else max(low, bound.min if bound.min is not None else low)
                high = bound.max
            if unit is None and column.startswith("DAYS_"):
                unit = "negative_days"
            sentinel = schema.sentinels.get(column)
            out.append(ApplicationField(column, role, en, fr, "number", None if low is None else float(low),
                                        None if high is None else float(high), (), unit,
                                        None if sentinel is None else float(sentinel),
                                        whatif=role is not None and column not in protected))
        return out

    def application_fields(self) -> list[ApplicationField]:
        """The columns an advisor types: those a what-if may change (the loan and the profile's roles, never a
        protected attribute), then the others a new application gives (age, the model's main features)."""
        return list(self._application_fields)

    def _assess(self, application: Mapping[str, Any], lang: str, client_id: int | None,
                changes: dict[str, Any] | None = None) -> Assessment:
        validated = self.applications.validate(application)
        x = self.scorer.spec.transform_record(validated, checked=True)[0]
        score = self.scorer.score_row(x, client_id)
        shap_row = self.scorer.contributions(x.reshape(1, -1))[0]
        from .decisions import in_review_band
        from .reasons import principal_reasons

        reasons = principal_reasons(self.scorer.spec, x, shap_row[:-1], score.decision, lang, self.percentile)
        return Assessment(client_id, lang, score.default_probability, score.decision, score.threshold,
                          score.model_version, in_review_band(score.default_probability, score.threshold,
                                                              self.review_band), reasons, dict(changes or {}))

    def assess(self, application: Mapping[str, Any], lang: str = "fr", client_id: int | None = None) -> Assessment:
        """An application as typed, scored by the production model with its principal reasons. With `client_id`,
        a what-if of that client file: `changes` says which columns differ from its application, and a protected
        attribute may not differ (`InvalidApplicationError` naming it). A value outside the schema's physical
        bounds is refused the same way."""
        if lang not in REASON_LANGUAGES:
            raise ValueError(f"lang must be one of {', '.join(REASON_LANGUAGES)}, got {lang!r}")
        if not isinstance(application, Mapping):
            raise InvalidApplicationError("application", "must be a mapping (a JSON object) of column name to value")
        changes: dict[str, Any] = {}
        cid = None
        if client_id is not None:
            base = self.application(client_id)
            cid = int(client_id)
            validated = self.applications.validate(application)
            protected = {p.column for p in self.scorer.spec.schema.protected.values()}
            for column in sorted(set(base) | set(validated)):
                if base.get(column) != validated.get(column):
                    if column in protected:
                        raise InvalidApplicationError(column, "a protected attribute cannot be changed in a what-if: "
                                                              "send the file's own value (GET /clients/{id}/application)")
                    changes[column] = validated.get(column)
        return self._assess(application, lang, cid, changes)

    def create_client(self, application: Mapping[str, Any], client_id: int | None = None,
                      created_by: str | None = None) -> ClientFile:
        """Score a new application with the production model and save it as a new client file (`scoring.intake`):
        found by `search` and opened like any file, by every process on this work directory. `client_id`: the ID
        to give it (`DuplicateClientError` if a file has it), else the next free one."""
        if not isinstance(application, Mapping):
            raise InvalidApplicationError("application", "must be a mapping (a JSON object) of column name to value")
        validated = self.applications.validate(application)
        amount = self.scorer.spec.schema.role_column("credit_amount")
        if amount is not None and validated.get(amount) is None:
            raise InvalidApplicationError(amount, "a new application needs the credit amount asked")
        if client_id is not None:
            try:
                cid = int(client_id)
            except (TypeError, ValueError):
                raise ValueError(f"client_id must be a whole number, got {client_id!r}") from None
            if not 0 < cid < 2**63:
                raise ValueError(f"client_id must be a positive 64-bit integer, got {cid}")
            if self._in_store(cid):
                raise DuplicateClientError(cid)
            client_id = cid
        x = self.scorer.spec.transform_record(validated, checked=True)[0]
        score = self.scorer.score_row(x)
        new = self.new_files.append(
            application=validated, roles=self._roles_of(validated), model_version=score.model_version,
            default_probability=score.default_probability, threshold=score.threshold, decision=score.decision,
            created_by=created_by, first_free=int(self.ids[-1]) + 1 if len(self.ids) else 1, client_id=client_id)
        return self._new_client_file(new)

    def decision_file(self, client_id: int, decision_id: int, format: str = "html", lang: str = "fr") -> DecisionFile:
        """One recorded decision as a file to hand over (`scoring.decision_file`): HTML or PDF, French or English."""
        if format not in DECISION_FILE_FORMATS:
            raise ValueError(f"format must be one of {', '.join(DECISION_FILE_FORMATS)}, got {format!r}")
        if lang not in REASON_LANGUAGES:
            raise ValueError(f"lang must be one of {', '.join(REASON_LANGUAGES)}, got {lang!r}")
        new = self._new(client_id)
        cid = new.client_id if new is not None else int(self.ids[self._row(client_id)])
        try:
            did = int(decision_id)
        except (TypeError, ValueError):
            raise UnknownDecisionError(cid, decision_id) from None
        return self._decision_file(cid, did, format, lang)

    def _decision_file(self, client_id: int, decision_id: int, format: str, lang: str) -> DecisionFile:
        """Cached: a record never changes (append-only), and a PDF costs ~0.5 s (the font's subset is made each
        time); a decision not found is not cached (the exception passes through)."""
        from .decision_file import decision_file_html, decision_file_pdf

        try:
            record = self.decision_log.get(client_id, decision_id)
        except OverflowError:   # beyond SQLite's 64-bit integers: no such decision
            record = None
        if record is None:
            raise UnknownDecisionError(client_id, decision_id)
        labels = self.scorer.spec.schema.label_dictionary()
        name = f"decision-{client_id}-{record.id}.{format}"
        if format == "pdf":
            return DecisionFile(client_id, record.id, name, "application/pdf", decision_file_pdf(record, labels, lang))
        return DecisionFile(client_id, record.id, name, "text/html; charset=utf-8",
                            decision_file_html(record, labels, lang).encode("utf-8"))

    # ------------------------------------------------------------ the threshold policy (analysts)
    @functools.cached_property
    def _simulator(self):
        """The labelled applications' out-of-fold probabilities, outcomes and protected groups (a few columns)."""
        schema = self.scorer.spec.schema
        labelled = self._labelled_mask
        frame = self.store.protected_columns([p.column for p in schema.protected.values()], split="train")
        groups = group_labels(frame, schema) if len(frame) == int(labelled.sum()) else {}
        return ThresholdSimulator(self._probabilities[labelled], self._target[labelled], groups)

    def _simulation(self, costs, target_acceptance: float | None) -> ThresholdSimulation:
        sim = self._simulator
        proposed = sim.reaching(target_acceptance) if target_acceptance is not None else sim.cheapest(costs)
        current = self.card.threshold
        curve = sim.points(sorted({*GRID.tolist(), current, proposed}), costs)
        at = {p.threshold: p for p in curve}
        return ThresholdSimulation(
            model_version=self.card.version, applications=sim.applications, defaults=sim.defaults,
            cost_missed_default=costs.missed_default, cost_refused_good=costs.refused_good_client,
            target_acceptance=target_acceptance, built_threshold=self.built_threshold, current_threshold=current,
            threshold_source=self.threshold_source, proposed_threshold=proposed, current=at[current],
            proposed=at[proposed], curve=curve)

    def threshold_simulation(self, cost_missed_default: float | None = None, cost_refused_good: float | None = None,
                             target_acceptance: float | None = None) -> ThresholdSimulation:
        """Every threshold of a grid on the labelled applications (out of fold): acceptance, expected loss at the
        costs (given, else the card's), error rates, fairness; the proposed one reaches `target_acceptance` when
        given, else minimises the loss. `PolicyError` names a bad cost or target. Cached per input."""
        costs = check_costs(cost_missed_default, cost_refused_good, self.card.cost_weights)
        return self._simulation(costs, check_acceptance(target_acceptance))

    def threshold_history(self) -> list[ThresholdChange]:
        """The adopted thresholds, newest first (read from the policy file at each call: another process adopts)."""
        return changes(self.workdir)

    def adopt_threshold(self, threshold: float, reason: str, cost_missed_default: float | None = None,
                        cost_refused_good: float | None = None, target_acceptance: float | None = None,
                        user: str | None = None) -> ThresholdChange:
        """Adopt `threshold` for this model version (`scoring.policy.adopt`): written to disk (the store's decisions,
        the policy file); this service keeps serving what it loaded, a service opened after it serves the new one."""
        return adopt(self.workdir, threshold, reason, user or "", cost_missed_default, cost_refused_good,
                     target_acceptance)


OUT_OF_FOLD_ACCEPTED = (
    "Le modèle de production accepte cette demande telle quelle ({production_fr}) : aucune contre-proposition "
    "n'est nécessaire. Ce dossier historique a été noté hors échantillon par un modèle de validation croisée "
    "({filed_fr}), d'où sa décision « Refusé ». / The production model accepts this application as it stands "
    "({production_en}): no counter-offer is needed. This historical file was scored out of fold by a cross-fitting "
    "model ({filed_en}), hence its decision 'refused'.")




def _percent_fr(p: float) -> str:
    return f"{100 * p:.1f}".replace(".", ",") + " %"


def _same_changes(sent: Mapping[str, float], offered: Mapping[str, float]) -> bool:
    """The changes of an offer as sent back (through JSON, so as floats) are the ones offered."""
    return set(sent) == set(offered) and all(math.isclose(float(sent[k]), float(offered[k]), rel_tol=1e-9, abs_tol=1e-9)
                                             for k in offered)


def _fairness_figures(attribute: str, population: str, figures: dict) -> FairnessFigures:
    return FairnessFigures(attribute, population, [GroupFigures(**g) for g in figures["groups"]],
                           figures["disparate_impact_ratio"], figures["equal_opportunity_difference"],
                           [FairnessAlert(**a) for a in figures["alerts"]], list(figures["small_groups"]))
