"""Score applications and explain them: default probability, decision, SHAP contributions.

Hot path: a NumPy row in the model's feature order. Probabilities come from XGBoost's `inplace_predict`;
explanations from XGBoost's exact TreeSHAP (`pred_contribs`), which gives the same values as
`shap.TreeExplainer` (checked in the tests) at lower cost per row.
"""

from __future__ import annotations

import threading
from typing import Any, Mapping, Sequence

import numpy as np
import xgboost as xgb

from .contracts import Contribution, Explanation, Score, decide
from .features import FeatureSpec
from .model import ModelCard


class Scorer:
    """The model with its card: probabilities, decisions and explanations."""

    def __init__(self, booster: xgb.Booster, card: ModelCard, nthread: int = 1):
        # one thread per prediction: a single row gains nothing from more, and a server runs many sessions
        booster.set_param({"nthread": nthread})
        self._nthread = nthread
        self.booster = booster
        self.card = card
        self.spec: FeatureSpec = card.feature_spec
        self.threshold = card.threshold
        self.version = card.version
        self._feature_types = self.spec.feature_types
        self._names = self.spec.names
        self._lock = threading.Lock()
        self._categories = [f.categories for f in self.spec.features]
        #: the one validator of applications (`scoring.application`): the API's body type, and what
        #: `score_record` and `score_records` check their input with
        self.applications = self.spec.applications

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """Default probabilities of the rows of X (n, p), in the model's feature order."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        return self.booster.inplace_predict(X, validate_features=False)

    def score_row(self, x: np.ndarray, client_id: int | None = None) -> Score:
        return self.score_of(client_id, float(self.predict_proba(x.reshape(1, -1))[0]))

    def score_of(self, client_id: int | None, probability: float) -> Score:
        """The Score of a probability: the decision at this model's threshold."""
        return Score(client_id, probability, decide(probability, self.threshold), self.threshold, self.version)

    def contributions(self, X: np.ndarray) -> np.ndarray:
        """SHAP matrix (n, p + 1); the last column is the base value."""
        # DMatrix construction spins up every core by default: for a few rows that costs far more than it saves
        d = xgb.DMatrix(np.ascontiguousarray(X, dtype=np.float32), feature_names=self._names,
                        feature_types=self._feature_types, enable_categorical=True,
                        nthread=1 if len(X) < 1000 else self._nthread)
        with self._lock:  # Booster.predict on a DMatrix is not safe under concurrent sessions
            return self.booster.predict(d, pred_contribs=True, validate_features=False)

    def _display_value(self, j: int, v: float) -> float | str | None:
        if not np.isfinite(v):
            return None
        if self._categories[j]:
            return self._categories[j][int(v)]
        return float(v)

    def explain_row(self, x: np.ndarray, client_id: int | None = None, top: int | None = None) -> Explanation:
        shap_row = self.contributions(x.reshape(1, -1))[0]
        return self._explanation(x.reshape(-1), shap_row, client_id, top)

    def score_and_explain(self, x: np.ndarray, client_id: int | None = None,
                          top: int | None = None) -> tuple[Score, Explanation]:
        shap_row = self.contributions(x.reshape(1, -1))[0]
        margin = float(shap_row.sum())
        p = float(1.0 / (1.0 + np.exp(-margin)))
        return self.score_of(client_id, p), self._explanation(x.reshape(-1), shap_row, client_id, top)

    def _explanation(self, x: np.ndarray, shap_row: np.ndarray, client_id, top) -> Explanation:
        values, base = shap_row[:-1], float(shap_row[-1])
        order = np.argsort(-np.abs(values), kind="stable")
        feats = self.spec.features
        contributions = tuple(
            Contribution(feats[j].name, feats[j].label, feats[j].label_fr, self._display_value(j, x[j]), float(values[j]))
            for j in order
        )
        explanation = Explanation(client_id, base, float(shap_row.sum()), contributions)
        return explanation.top(top) if top is not None else explanation

    def score_record(self, record: Mapping[str, Any], explain: bool = False,
                     top: int | None = None) -> tuple[Score, Explanation | None]:
        """Score an application given as raw columns (missing keys are missing values); a bad field raises
        `InvalidApplicationError` naming it."""
        x = self.spec.transform_record(self.applications.validate(record), checked=True)[0]
        if explain:
            return self.score_and_explain(x, None, top)
        return self.score_row(x), None

    def score_records(self, records: Sequence[Mapping[str, Any]], validated: bool = False) -> list[Score]:
        """Scores of several applications in one XGBoost call; a bad field raises `InvalidApplicationError`
        naming the row (`2.AMT_CREDIT`). `validated=True`: instances of `self.applications.type` already."""
        X = self.spec.transform_records(records if validated else self.applications.validate_many(records),
                                        checked=True)
        return [self.score_of(None, p) for p in self.predict_proba(X).tolist()]

    def global_importance(self, X_sample: np.ndarray) -> list[dict]:
        """Mean |SHAP| per feature over a sample, largest first."""
        shap_values = self.contributions(X_sample)[:, :-1]
        mean_abs = np.abs(shap_values).mean(axis=0)
        order = np.argsort(-mean_abs, kind="stable")
        feats = self.spec.features
        return [{"feature": feats[j].name, "label": feats[j].label, "label_fr": feats[j].label_fr,
                 "importance": float(mean_abs[j])} for j in order]  # saved as JSON: contracts.Importance
