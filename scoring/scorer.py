"""Score one application and explain it: default probability, decision, SHAP contributions.

Hot path: a NumPy row in the model's feature order; XGBoost's exact TreeSHAP (`pred_contribs`)
gives the same values as `shap.TreeExplainer` (checked in the tests) at lower cost per row.
Probabilities of a few rows (an application typed in, `POST /predict`) come from Treelite's tree
inference (GTIL) on the same trees: XGBoost's `inplace_predict` has a fixed cost of
~0.2 ms per call, GTIL ~0.015 ms for one row but ~11 us per row after that; beyond `SMALL_BATCH` rows,
XGBoost. GTIL is used only if it gives XGBoost's probabilities on probe applications when loaded.
"""

from __future__ import annotations

import ctypes
import logging
import threading
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np
import treelite
import xgboost as xgb
from treelite.core import _LIB, _check_call
from treelite.gtil.gtil import GTILConfig

from .features import FeatureSpec
from .model import ModelCard

ACCEPTED, REFUSED = "accepted", "refused"
SMALL_BATCH = 8       # up to this many rows, GTIL is faster than XGBoost (measured: equal at ~16)
AGREEMENT = 1e-6      # largest difference in probability allowed between GTIL and XGBoost on the probe
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Score:
    client_id: int | None
    default_probability: float
    decision: str            # "accepted" | "refused"
    threshold: float
    model_version: str


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


def decide(probability: float, threshold: float) -> str:
    return REFUSED if probability >= threshold else ACCEPTED


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
        self._small = _small_batch_model(booster, card.reference)

    @property
    def small_batch_engine(self) -> str:
        return "xgboost" if self._small is None else "treelite-gtil"

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        if self._small is not None and len(X) <= SMALL_BATCH:
            return self._small(X)
        return self.booster.inplace_predict(X, validate_features=False)

    def score_row(self, x: np.ndarray, client_id: int | None = None) -> Score:
        if self._small is not None:
            return self._score(client_id, self._small.one(x))
        return self._score(client_id, float(self.predict_proba(x.reshape(1, -1))[0]))

    def score_rows(self, X: np.ndarray, client_ids=None) -> list[Score]:
        """Scores of several rows in one XGBoost call (one call costs about the same for 1 row or 16)."""
        probabilities = self.predict_proba(X)
        ids = [None] * len(probabilities) if client_ids is None else client_ids
        return [self._score(cid, p) for cid, p in zip(ids, probabilities.tolist())]

    def _score(self, client_id: int | None, probability: float) -> Score:
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
        return self._score(client_id, p), self._explanation(x.reshape(-1), shap_row, client_id, top)

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
        """Score an application given as raw columns (validated; missing keys are missing values)."""
        x = self.spec.transform_record(record)[0]
        if explain:
            return self.score_and_explain(x, None, top)
        return self.score_row(x), None

    def global_importance(self, X_sample: np.ndarray) -> list[dict]:
        """Mean |SHAP| per feature over a sample, largest first."""
        shap_values = self.contributions(X_sample)[:, :-1]
        mean_abs = np.abs(shap_values).mean(axis=0)
        order = np.argsort(-mean_abs, kind="stable")
        feats = self.spec.features
        return [{"feature": feats[j].name, "label": feats[j].label, "label_fr": feats[j].label_fr,
                 "importance": float(mean_abs[j])} for j in order]


def probe_applications(reference: dict, n: int = 512, seed: int = 0) -> np.ndarray:
    """Feature rows spread like the training data, feature by feature (the card's quantile bins and
    category levels), with 5 % of values missing and a few beyond the observed range."""
    rng = np.random.default_rng(seed)
    columns = []
    for f in reference["features"]:
        edges = np.asarray(f["edges"], dtype=np.float64)
        if f["levels"]:
            col = rng.integers(0, f["levels"], n).astype(np.float64)
        elif edges.size >= 2:
            k = rng.integers(0, edges.size - 1, n)
            col = rng.uniform(edges[k], edges[k + 1])
            span = edges[-1] - edges[0] or 1.0
            beyond = rng.random(n) < 0.05
            col[beyond] = np.where(rng.random(beyond.sum()) < 0.5, edges[0] - span, edges[-1] + span)
        elif edges.size == 1:
            col = np.full(n, edges[0]) + rng.choice([-1.0, 0.0, 1.0], n)
        else:
            col = np.full(n, np.nan)
        columns.append(col)
    X = np.column_stack(columns).astype(np.float32)
    X[rng.random(X.shape) < 0.05] = np.nan
    return X


class GTILRows:
    """Probabilities of a few rows by Treelite's GTIL, through its C API with a configuration made once.

    `treelite.gtil.predict` parses a JSON configuration and asks for the output shape at every call: ~30 us
    of the ~45 us one row costs that way. The shape is checked here once: one probability per row."""

    def __init__(self, model: treelite.Model):
        self.model = model
        self._config = GTILConfig(predict_type="default", nthread=1)
        shape_ptr, ndim = ctypes.POINTER(ctypes.c_uint64)(), ctypes.c_uint64()
        _check_call(_LIB.TreeliteGTILGetOutputShape(model.handle, ctypes.c_uint64(2), self._config.handle,
                                                    ctypes.byref(shape_ptr), ctypes.byref(ndim)))
        shape = tuple(shape_ptr[i] for i in range(ndim.value))
        if model.input_type != "float32" or model.output_type != "float32" or shape != (2, 1, 1):
            raise ValueError(f"expected one float32 probability per float32 row, the model gives {shape} "
                             f"{model.output_type} from {model.input_type}")
        # A function object of our own (not `_LIB.TreeliteGTILPredict`, which Treelite calls too), declared
        # once: plain ints for the addresses, no pointer objects per call (~5 us of the ~25 us a row costs).
        self._predict = _LIB["TreeliteGTILPredict"]
        self._predict.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint64,
                                  ctypes.c_void_p, ctypes.c_void_p]
        self._predict.restype = ctypes.c_int
        self._handles = (model.handle.value, self._config.handle.value)
        self.num_feature = model.num_feature
        self._local = threading.local()  # `one`'s buffers: one pair per thread (dashboard sessions score in threads)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        X = np.ascontiguousarray(X, dtype=np.float32)
        out = np.empty(len(X), dtype=np.float32)
        model, config = self._handles
        _check_call(self._predict(model, X.ctypes.data, b"float32", len(X), out.ctypes.data, config))
        return out

    def one(self, x: np.ndarray) -> float:
        """The probability of one row of `num_feature` values: `self(x.reshape(1, -1))[0]`, through an input and
        an output buffer of this thread made once, whose addresses are known (no array or ctypes objects per call,
        ~5 us of the ~20 us a row costs)."""
        buffers = getattr(self._local, "buffers", None)
        if buffers is None:
            row, out = np.empty(self.num_feature, dtype=np.float32), np.empty(1, dtype=np.float32)
            buffers = self._local.buffers = (row, out, row.ctypes.data, out.ctypes.data)
        row, out, row_address, out_address = buffers
        row[:] = x.reshape(-1)  # cast to float32 if needed; a row of another length raises ValueError
        model, config = self._handles
        _check_call(self._predict(model, row_address, b"float32", 1, out_address, config))
        return float(out[0])


def _small_batch_model(booster: xgb.Booster, reference: dict) -> GTILRows | None:
    """The trees as a Treelite model, if GTIL reproduces XGBoost's probabilities on probe applications."""
    try:
        model = GTILRows(treelite.frontend.from_xgboost(booster))
        probe = probe_applications(reference)
        got = np.concatenate([model(probe[i:i + SMALL_BATCH]) for i in range(0, len(probe), SMALL_BATCH)])
    except (treelite.TreeliteError, KeyError, ValueError) as exc:
        log.warning("single-application scoring uses XGBoost: Treelite cannot read this model (%s)", exc)
        return None
    want = booster.inplace_predict(probe, validate_features=False)
    gap = float(np.max(np.abs(got - want)))
    if not gap <= AGREEMENT:
        log.warning("single-application scoring uses XGBoost: Treelite's probabilities differ from XGBoost's "
                    "by up to %.2g on probe applications", gap)
        return None
    return model
