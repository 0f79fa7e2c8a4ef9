"""Train the XGBoost default model, choose its business-cost threshold, save and load it with its card."""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
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
    scores: dict = field(default_factory=dict)   # where each stored probability comes from
    fairness: dict = field(default_factory=dict)  # protected attribute -> figures (scoring.fairness), out of fold
    # numeric feature -> [lowest, highest] value seen in training: beyond it the trees extrapolate flat (trust
    # flags); empty in a card built before it
    training_range: dict = field(default_factory=dict)

    @property
    def feature_spec(self) -> FeatureSpec:
        return FeatureSpec.from_dict(self.spec)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, allow_nan=False)

    def summary(self) -> dict:
        """The card without the bulky reference statistics (what `/model` returns)."""
        d = asdict(self)
        d.pop("reference")
        d.pop("training_range")
        spec = d.pop("spec")
        d["features"] = spec["features"]
        d["schema"] = spec["schema"]  # labels, currency, roles, protected attributes, bounds; no file paths
        return d


def training_ranges(X: np.ndarray, spec: FeatureSpec) -> dict[str, list[float]]:
    """The lowest and highest value of each numeric feature in the training data (missing values ignored)."""
    out = {}
    for j, f in enumerate(spec.features):
        if f.kind == "categorical":
            continue
        column = np.asarray(X[:, j], dtype=np.float64)
        finite = column[np.isfinite(column)]
        if finite.size:
            out[f.name] = [float(finite.min()), float(finite.max())]
    return out


FOLDS = 5


@dataclass(frozen=True)
class TrainedModel:
    """The production model, its card, and the cross-fitted scores of the labelled applications."""
    booster: xgb.Booster             # trained on every labelled application: scores new applications
    card: ModelCard
    folds: list[xgb.Booster]         # folds[k] was trained without the applications of fold k
    fold_of: np.ndarray              # int8: the fold of each labelled application
    oof_probability: np.ndarray      # each labelled application scored by the fold model that did not see it
    holdout_idx: np.ndarray


def _matrix(X: np.ndarray, y: np.ndarray | None, spec: FeatureSpec, nthread: int) -> xgb.DMatrix:
    return xgb.DMatrix(X, y, feature_names=spec.names, feature_types=spec.feature_types, enable_categorical=True,
                       nthread=nthread)


class LocalTrainer:
    """Trains with `xgboost.train` in this process, on `nthread` threads (0: all cores)."""

    where = "this process"

    def __init__(self, nthread: int = 0):
        self.nthread = nthread

    def train(self, params: dict, X: np.ndarray, y: np.ndarray, spec: FeatureSpec, rounds: int,
              stop: tuple[np.ndarray, np.ndarray] | None = None) -> xgb.Booster:
        """A booster of at most `rounds` trees; with `stop` (rows, labels), early stopping on them."""
        evals = [(_matrix(*stop, spec, self.nthread), "stop")] if stop is not None else ()
        return xgb.train({**params, "nthread": self.nthread}, _matrix(X, y, spec, self.nthread),
                         num_boost_round=rounds, evals=evals, early_stopping_rounds=50 if evals else None,
                         verbose_eval=False)


class DaskTrainer:
    """Trains with XGBoost's Dask interface (`xgboost.dask.train`) on the workers of a `dask.distributed` client:
    the rows are split in chunks over the workers, each worker builds its part of the histograms, and the result
    is one ordinary booster (the same artefact as `LocalTrainer`'s)."""

    def __init__(self, client):
        self.client = client
        self.workers = max(1, len(client.scheduler_info().get("workers", {})))
        self.where = f"a Dask cluster of {self.workers} worker(s)"

    def _matrix(self, X: np.ndarray, y: np.ndarray, spec: FeatureSpec):
        import dask.array as da
        from xgboost import dask as dxgb

        rows = max(1, math.ceil(len(X) / (2 * self.workers)))  # two chunks a worker
        return dxgb.DaskDMatrix(self.client, da.from_array(X, chunks=(rows, X.shape[1])),
                                da.from_array(y, chunks=(rows,)), feature_names=spec.names,
                                feature_types=spec.feature_types, enable_categorical=True)

    def train(self, params: dict, X: np.ndarray, y: np.ndarray, spec: FeatureSpec, rounds: int,
              stop: tuple[np.ndarray, np.ndarray] | None = None) -> xgb.Booster:
        from xgboost import dask as dxgb

        evals = [(self._matrix(*stop, spec), "stop")] if stop is not None else ()
        out = dxgb.train(self.client, params, self._matrix(X, y, spec), num_boost_round=rounds, evals=evals,
                         early_stopping_rounds=50 if evals else None, verbose_eval=False)
        return out["booster"]


def _metrics(y: np.ndarray, p: np.ndarray, threshold: float, costs: CostWeights) -> dict:
    refused = np.array([decide(v, threshold) == REFUSED for v in p.tolist()], dtype=bool)
    return {
        "roc_auc": float(roc_auc_score(y, p)),
        "pr_auc": float(average_precision_score(y, p)),
        "brier": float(brier_score_loss(y, p)),
        "business_cost": business_cost(y, refused, costs),
        "acceptance_rate": float(1 - refused.mean()),
        "error_rate": float(np.mean(refused != (y == 1))),
        "missed_default_rate": float(np.mean(~refused[y == 1])) if (y == 1).any() else 0.0,
        "refused_good_rate": float(np.mean(refused[y == 0])) if (y == 0).any() else 0.0,
    }


def train_model(X: np.ndarray, y: np.ndarray, spec: FeatureSpec, *, fingerprint: str, costs: CostWeights = CostWeights(),
                true_probability: np.ndarray | None = None, seed: int = 0, nthread: int = 0, folds: int = FOLDS,
                progress: Callable[[str], None] | None = None,
                trainer: LocalTrainer | DaskTrainer | None = None) -> TrainedModel:
    """Measure, cross-fit, then train the production model.

    1. Holdout: fit on a stratified 80 % with early stopping on part of it, measure on the other 20 %; this also
       fixes the number of trees.
    2. Cross-fitting: `folds` models, each trained on all labelled applications but one fold, score that fold.
       Every labelled application thus gets a probability from a model that never saw it (out-of-fold): the
       client files and every portfolio figure built on them are honest. The threshold minimises the business
       cost on these out-of-fold probabilities.
    3. Production: the same trees on every labelled application; it scores the new applications.

    Each training runs on `trainer`: this process by default, or a Dask cluster (`DaskTrainer`).
    """
    say = progress or (lambda _msg: None)
    idx = np.arange(len(y))
    fit_idx, holdout_idx = train_test_split(idx, test_size=0.2, stratify=y, random_state=seed)
    tr_idx, es_idx = train_test_split(fit_idx, test_size=0.125, stratify=y[fit_idx], random_state=seed)
    trainer = trainer or LocalTrainer(nthread)
    params = {**PARAMS, "seed": seed}
    say(f"training XGBoost on {len(tr_idx):,} applications in {trainer.where}, early stopping on {len(es_idx):,}")
    started = time.perf_counter()
    measured = trainer.train(params, X[tr_idx], y[tr_idx], spec, 2000, stop=(X[es_idx], y[es_idx]))
    n_trees = measured.best_iteration + 1
    measured = measured[:n_trees]
    ph = measured.inplace_predict(X[holdout_idx], validate_features=False)

    say(f"cross-fitting {folds} models of {n_trees} trees: every labelled application scored out of fold")
    from sklearn.model_selection import StratifiedKFold

    fold_models, fold_of = [], np.full(len(y), -1, dtype=np.int8)
    oof = np.empty(len(y), dtype=np.float64)
    for k, (train_k, test_k) in enumerate(StratifiedKFold(folds, shuffle=True, random_state=seed).split(X, y)):
        model_k = trainer.train(params, X[train_k], y[train_k], spec, n_trees)
        oof[test_k] = model_k.inplace_predict(X[test_k], validate_features=False)
        fold_of[test_k] = k
        fold_models.append(model_k)
    say(f"training the production model on all {len(y):,} labelled applications")
    booster = trainer.train(params, X, y, spec, n_trees)
    train_seconds = time.perf_counter() - started

    threshold, cost = choose_threshold(y, oof, costs)
    holdout = _metrics(y[holdout_idx], ph, threshold, costs)
    out_of_fold = _metrics(y, oof, threshold, costs)
    metrics = {
        **holdout,  # the measured model on the 20 % it never saw
        "holdout_size": int(len(holdout_idx)),
        "oof_roc_auc": out_of_fold["roc_auc"],
        "out_of_fold": {**out_of_fold, "folds": folds, "size": int(len(y))},
        "threshold_business_cost": cost,
        "n_trees": int(n_trees),
        "train_seconds": round(train_seconds, 1),
        "trained_in": trainer.where,
    }
    if true_probability is not None and np.isfinite(true_probability[holdout_idx]).all():
        metrics["oracle_roc_auc"] = float(roc_auc_score(y[holdout_idx], true_probability[holdout_idx]))
    say(f"holdout ROC AUC {metrics['roc_auc']:.4f}, out-of-fold {metrics['oof_roc_auc']:.4f}, "
        f"threshold {threshold:.3f}")

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
        params=params,
        spec=spec.to_dict(),
        reference=reference_statistics(X, p_all, kinds, levels),
        training_range=training_ranges(X, spec),
        scores={"labelled": f"out of fold: each labelled client file's probability comes from one of {folds} "
                            f"models trained without it (cross-fitting); its explanation from the same model",
                "new": "the production model, trained on every labelled application",
                "threshold": "minimises the business cost on the out-of-fold probabilities",
                "holdout": "metrics: a model of the same settings trained on 80 %, measured on the other 20 %"},
    )
    return TrainedModel(booster, card, fold_models, fold_of, oof, holdout_idx)


def save_model(booster: xgb.Booster, card: ModelCard, directory: Path, folds: list[xgb.Booster] = ()) -> None:
    """The production model, its card, and the cross-fitting models (`folds/fold-K.json`)."""
    directory.mkdir(parents=True, exist_ok=True)
    booster.save_model(directory / "model.json")
    (directory / "model_card.json").write_text(card.to_json())
    if folds:
        (directory / "folds").mkdir(exist_ok=True)
        for k, model in enumerate(folds):
            model.save_model(directory / "folds" / f"fold-{k}.json")


def load_folds(directory: Path, card: ModelCard) -> list[xgb.Booster]:
    """The cross-fitting models saved with the production model (none for a model built without them)."""
    n = int(card.metrics.get("out_of_fold", {}).get("folds", 0))
    boosters = []
    for k in range(n):
        path = directory / "folds" / f"fold-{k}.json"
        try:
            boosters.append(xgb.Booster(model_file=str(path)))
        except xgb.core.XGBoostError as exc:
            first = str(exc).strip().splitlines()[0][:200]
            raise ModelError(f"cross-fitting model {path} is missing or corrupt ({first}): rebuild") from exc
    return boosters


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
