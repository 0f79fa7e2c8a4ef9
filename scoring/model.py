"""Train the XGBoost default model, choose its business-cost threshold, save and load it with its card."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import xgboost as xgb
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score
from sklearn.model_selection import train_test_split

from .contracts import REFUSED, decide
from .errors import ModelError
from .features import FeatureSpec
from .monitoring import reference_statistics

PARAMS = {
    "objective": "binary:logistic",
    "eval_metric": "auc",
    "tree_method": "hist",
    "max_depth": 5,
    "learning_rate": 0.08,
    "subsample": 0.85,
    "colsample_bytree": 0.7,
    "min_child_weight": 10,
    "reg_lambda": 5.0,
    "max_cat_to_onehot": 1,
    "max_bin": 128,
}


@dataclass(frozen=True)
class CostWeights:
    """Cost of each kind of error, in units of a wrongly refused good client."""

    missed_default: float = 10.0
    refused_good_client: float = 1.0

    def __post_init__(self):
        if not (self.missed_default > 0 and self.refused_good_client > 0):
            raise ValueError("cost weights must be positive numbers")


def business_cost(y: np.ndarray, refused: np.ndarray, costs: CostWeights) -> float:
    """Mean cost per application of refusing `refused` given outcomes `y` (1 = default)."""
    missed = np.sum((y == 1) & ~refused)
    wrongly_refused = np.sum((y == 0) & refused)
    return float((missed * costs.missed_default + wrongly_refused * costs.refused_good_client) / len(y))


def choose_threshold(y: np.ndarray, p: np.ndarray, costs: CostWeights) -> tuple[float, float]:
    """Probability above which refusing is cheaper in expectation on this sample: (threshold, cost)."""
    grid = np.round(np.arange(0.005, 1.0, 0.005), 3)
    order = np.argsort(p)
    p_sorted, y_sorted = p[order], y[order]
    # applications with p >= t are refused; counts below t come from cumulative sums
    idx = np.searchsorted(p_sorted, grid, side="left")
    defaults_below = np.concatenate([[0], np.cumsum(y_sorted)])[idx]
    goods_above = (len(y) - idx) - (y.sum() - defaults_below)
    cost = (defaults_below * costs.missed_default + goods_above * costs.refused_good_client) / len(y)
    best = int(np.argmin(cost))
    return float(grid[best]), float(cost[best])


@dataclass(frozen=True)
class ModelCard:
    version: str
    created_at: str
    dataset: str
    data_fingerprint: str
    n_labelled: int
    default_rate: float
    threshold: float
    cost_weights: dict
    metrics: dict
    params: dict
    spec: dict
    reference: dict

    @property
    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec.from_dict(self.spec)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, allow_nan=False)

    def summary(self) -> dict:
        """The card without the bulky reference statistics (what `/model` returns)."""
        d = asdict(self)
        d.pop("reference")
        d["features"] = d.pop("spec")["features"]
        return d


def train_model(X: np.ndarray, y: np.ndarray, spec: FeatureSpec, *, fingerprint: str, costs: CostWeights = CostWeights(),
                true_probability: np.ndarray | None = None, seed: int = 0, nthread: int = 0,
                progress: Callable[[str], None] | None = None) -> tuple[xgb.Booster, ModelCard, np.ndarray]:
    """Fit on a stratified 80 % with early stopping on part of it; measure on the 20 % holdout.

    Returns the booster, its card and the holdout row indices.
    """
    say = progress or (lambda _msg: None)
    idx = np.arange(len(y))
    fit_idx, holdout_idx = train_test_split(idx, test_size=0.2, stratify=y, random_state=seed)
    tr_idx, es_idx = train_test_split(fit_idx, test_size=0.125, stratify=y[fit_idx], random_state=seed)
    ft = spec.feature_types
    names = spec.names
    dtrain = xgb.DMatrix(X[tr_idx], y[tr_idx], feature_names=names, feature_types=ft, enable_categorical=True, nthread=nthread)
    dstop = xgb.DMatrix(X[es_idx], y[es_idx], feature_names=names, feature_types=ft, enable_categorical=True, nthread=nthread)
    params = {**PARAMS, "seed": seed, "nthread": nthread}
    say(f"training XGBoost on {len(tr_idx):,} applications, early stopping on {len(es_idx):,}")
    started = time.perf_counter()
    booster = xgb.train(params, dtrain, num_boost_round=2000, evals=[(dstop, "stop")],
                        early_stopping_rounds=50, verbose_eval=False)
    booster = booster[: booster.best_iteration + 1]
    train_seconds = time.perf_counter() - started

    yh = y[holdout_idx]
    ph = booster.inplace_predict(X[holdout_idx], validate_features=False)
    threshold, cost = choose_threshold(yh, ph, costs)
    refused = np.array([decide(p, threshold) == REFUSED for p in ph.tolist()])
    metrics = {
        "roc_auc": float(roc_auc_score(yh, ph)),
        "pr_auc": float(average_precision_score(yh, ph)),
        "brier": float(brier_score_loss(yh, ph)),
        "business_cost": cost,
        "acceptance_rate": float(1 - refused.mean()),
        "error_rate": float(np.mean(refused != (yh == 1))),
        "holdout_size": int(len(yh)),
        "n_trees": int(booster.num_boosted_rounds()),
        "train_seconds": round(train_seconds, 1),
    }
    if true_probability is not None and np.isfinite(true_probability[holdout_idx]).all():
        metrics["oracle_roc_auc"] = float(roc_auc_score(yh, true_probability[holdout_idx]))
    say(f"holdout ROC AUC {metrics['roc_auc']:.4f}, threshold {threshold:.3f}")

    p_all = booster.inplace_predict(X, validate_features=False)
    kinds = [f.kind for f in spec.features]
    levels = [len(f.categories) for f in spec.features]
    created = datetime.now(timezone.utc)
    card = ModelCard(
        version=f"{created:%Y%m%d-%H%M%S}-{fingerprint[:6]}",
        created_at=created.isoformat(timespec="seconds"),
        dataset=spec.schema.name,
        data_fingerprint=fingerprint,
        n_labelled=int(len(y)),
        default_rate=float(y.mean()),
        threshold=threshold,
        cost_weights=asdict(costs),
        metrics=metrics,
        params={k: v for k, v in params.items() if k != "nthread"},
        spec=spec.to_dict(),
        reference=reference_statistics(X, p_all, kinds, levels),
    )
    return booster, card, holdout_idx


def save_model(booster: xgb.Booster, card: ModelCard, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    booster.save_model(directory / "model.json")
    (directory / "model_card.json").write_text(card.to_json())


def load_model(directory: Path) -> tuple[xgb.Booster, ModelCard]:
    """Load booster + card; refuse missing, corrupt or mutually inconsistent files."""
    booster_path, card_path = directory / "model.json", directory / "model_card.json"
    for path in (booster_path, card_path):
        if not path.exists():
            raise ModelError(f"{path} is missing: build the model first (python -m scoring build)")
    try:
        card = ModelCard(**json.loads(card_path.read_text()))
    except (ValueError, TypeError) as exc:
        raise ModelError(f"model card {card_path} is corrupt or from another version: {exc}") from exc
    try:
        booster = xgb.Booster(model_file=str(booster_path))
    except xgb.core.XGBoostError as exc:
        first = str(exc).strip().splitlines()[0][:200]
        raise ModelError(f"model file {booster_path} is corrupt: {first}") from exc
    names = [f["name"] for f in card.spec["features"]]
    if booster.feature_names != names:
        raise ModelError(f"model file {booster_path} does not match its card {card_path}: "
                         f"{len(booster.feature_names or [])} features in the model, {len(names)} in the card")
    if not (0 < card.threshold < 1) or not math.isfinite(card.threshold):
        raise ModelError(f"model card {card_path} has an invalid threshold {card.threshold}")
    return booster, card
