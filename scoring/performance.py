"""The model's performance on the labelled applications, by segment, from their out-of-fold probabilities
(every labelled file scored by a model that never saw it): ROC and precision-recall curves, AUC, KS and Gini,
calibration (reliability curve and Brier score), and the confusion matrix at the decision threshold with the
business cost the build chose that threshold with. scikit-learn's metrics; "positive" means a default.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (auc, brier_score_loss, confusion_matrix, precision_recall_curve, roc_auc_score,
                             roc_curve)

ALL = "all"
MAX_CURVE_POINTS = 200      # points sent per curve: enough for a chart, a few KB instead of one per application
CALIBRATION_BINS = 10


def _thin(x: np.ndarray, y: np.ndarray, n: int = MAX_CURVE_POINTS) -> dict:
    """At most `n` points of a curve, its first and last kept."""
    if len(x) > n:
        keep = np.unique(np.linspace(0, len(x) - 1, n).round().astype(int))
        x, y = x[keep], y[keep]
    return {"x": [float(v) for v in x], "y": [float(v) for v in y]}


def _finite(value: float) -> float | None:
    return float(value) if value is not None and math.isfinite(value) else None


def segment_figures(y: np.ndarray, p: np.ndarray, threshold: float, cost_missed_default: float,
                    cost_refused_good: float) -> dict:
    """Every figure of one group of applications (`y`: 1 = defaulted; `p`: default probabilities): the fields of
    `scoring.contracts.PerformanceFigures` but its segment and group."""
    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=np.float64)
    refused = (p >= threshold).astype(int)   # the bank's rule, `scoring.contracts.decide`, on a whole column
    (accepted_goods, refused_goods), (missed, refused_defaults) = confusion_matrix(y, refused, labels=[0, 1])
    both = 0 < y.sum() < len(y)
    figures = {"applications": int(len(y)), "defaults": int(y.sum()), "threshold": float(threshold),
               "roc_auc": None, "pr_auc": None, "ks": None, "gini": None,
               "brier": float(brier_score_loss(y, p)) if len(y) else math.nan,
               "roc": {"x": [], "y": []}, "pr": {"x": [], "y": []}, "calibration": {"x": [], "y": []},
               "refused_defaults": int(refused_defaults), "missed_defaults": int(missed),
               "refused_goods": int(refused_goods), "accepted_goods": int(accepted_goods),
               "cost_missed_default": float(cost_missed_default), "cost_refused_good": float(cost_refused_good),
               "business_cost": float((missed * cost_missed_default + refused_goods * cost_refused_good)
                                      / max(len(y), 1))}
    if both:
        fpr, tpr, _ = roc_curve(y, p)
        precision, recall, _ = precision_recall_curve(y, p)
        roc_auc = roc_auc_score(y, p)
        observed, predicted = calibration_curve(y, p, n_bins=CALIBRATION_BINS, strategy="quantile")
        figures.update(roc_auc=_finite(roc_auc), pr_auc=_finite(auc(recall, precision)),
                       ks=_finite(float(np.max(tpr - fpr))), gini=_finite(2 * roc_auc - 1),
                       roc=_thin(fpr, tpr), pr=_thin(recall[::-1], precision[::-1]),
                       calibration={"x": predicted.tolist(), "y": observed.tolist()})
    return figures


def performance_report(y: np.ndarray, p: np.ndarray, threshold: float, cost_missed_default: float,
                       cost_refused_good: float, segments: dict[str, np.ndarray],
                       order: dict[str, list[str]] | None = None) -> list[dict]:
    """The figures of all applications, then of each group of each segment (`segments`: name -> each
    application's group, e.g. {"contract_type": [...], "age": ["25-35", ...]}). Groups come in the `order` given
    for their segment (age bands youngest first), else the largest first; others after them."""
    y, p = np.asarray(y, dtype=int), np.asarray(p, dtype=np.float64)
    report = [{"segment": ALL, "group": ALL,
               **segment_figures(y, p, threshold, cost_missed_default, cost_refused_good)}]
    for name, labels in segments.items():
        labels = np.asarray(labels, dtype=object).astype(str)
        groups, sizes = np.unique(labels, return_counts=True)
        rank = {g: i for i, g in enumerate((order or {}).get(name, []))}
        for group in sorted(groups.tolist(), key=lambda g: (rank.get(g, len(rank)), -sizes[groups == g][0], g)):
            mask = labels == group
            report.append({"segment": name, "group": group,
                           **segment_figures(y[mask], p[mask], threshold, cost_missed_default, cost_refused_good)})
    return report
