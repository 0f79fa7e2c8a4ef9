"""Fairness figures of the decisions by protected attribute (gender, age band), with Fairlearn.

By group: acceptance rate, observed and predicted default rates (calibration), missed defaults (defaulters
accepted) and refused good clients; across groups: the disparate-impact ratio (lowest acceptance rate over
the highest; the four-fifths rule asks >= 0.8) and the equal-opportunity difference (largest gap in the
acceptance rate of clients who repaid). Computed at build time on the out-of-fold probabilities (written in
the model card) and on the live portfolio by the service. Groups too small to be read are listed but left
out of the ratios.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from fairlearn.metrics import (MetricFrame, count, demographic_parity_ratio, equal_opportunity_difference,
                               false_positive_rate, selection_rate, true_positive_rate)

from .contracts import ACCEPTED, decide
from .features import DAYS_PER_YEAR
from .schema import DatasetSchema, Protected

MISSING = "missing"


@dataclass(frozen=True)
class FairnessLimits:
    """Alert thresholds; a group smaller than `min_group` applications is reported but not compared."""
    min_disparate_impact: float = 0.8          # four-fifths rule
    max_equal_opportunity_difference: float = 0.1
    min_group: int = 30


def group_labels(raw: pd.DataFrame, schema: DatasetSchema) -> dict[str, np.ndarray]:
    """Each protected attribute's group of every application: its category, or its age band."""
    out = {}
    for name, attribute in schema.protected.items():
        if attribute.column not in raw.columns:
            continue
        out[name] = labels_of(raw[attribute.column], attribute)
    return out


def band_names(edges) -> list[str]:
    """The names of the age bands cut at `edges` (years), youngest first: "< 25", "25-35", ..., ">= 65"."""
    edges = list(edges)
    return [f"< {edges[0]:g}"] + [f"{a:g}-{b:g}" for a, b in zip(edges, edges[1:])] + [f">= {edges[-1]:g}"]


def labels_of(values: pd.Series, attribute: Protected) -> np.ndarray:
    if attribute.unit == "category":
        text = values.astype("string")
        return text.fillna(MISSING).to_numpy(dtype=object)
    years = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    if attribute.unit == "negative_days":
        years = -years / DAYS_PER_YEAR
    edges = list(attribute.bands)
    names = band_names(edges)
    index = np.searchsorted(edges, years, side="right")
    return np.where(np.isfinite(years), np.array(names, dtype=object)[np.minimum(index, len(names) - 1)], MISSING)


def _finite(x: float) -> float | None:
    return None if x is None or not math.isfinite(x) else float(x)


def fairness_report(probability: np.ndarray, threshold: float, groups: dict[str, np.ndarray],
                    target: np.ndarray | None = None, limits: FairnessLimits = FairnessLimits()) -> dict[str, dict]:
    """Figures per attribute: `groups` (one dict per group), `disparate_impact_ratio`,
    `equal_opportunity_difference` (None without outcomes), `alerts`, `limits`, `small_groups`.

    `target` (1 = defaulted) for labelled applications; None for new ones (acceptance and predictions only)."""
    probability = np.asarray(probability, dtype=np.float64)
    accepted = np.array([decide(p, threshold) == ACCEPTED for p in probability.tolist()], dtype=int)
    report = {}
    for name, labels in groups.items():
        labels = np.asarray(labels, dtype=object)
        sizes = pd.Series(labels).value_counts()
        compared = np.isin(labels, sizes.index[sizes >= limits.min_group].to_numpy())
        frame = MetricFrame(metrics={"applications": count, "acceptance_rate": selection_rate},
                            y_true=accepted, y_pred=accepted, sensitive_features=pd.Series(labels, name=name))
        by_group = frame.by_group
        predicted = pd.Series(probability).groupby(labels).mean()
        figures = {g: {"group": str(g), "applications": int(by_group.loc[g, "applications"]),
                       "acceptance_rate": float(by_group.loc[g, "acceptance_rate"]),
                       "mean_default_probability": float(predicted.loc[g]),
                       "observed_default_rate": None, "missed_default_rate": None, "refused_good_rate": None}
                   for g in by_group.index}
        di = eod = None
        if compared.sum() and len(np.unique(labels[compared])) > 1:
            di = _finite(demographic_parity_ratio(accepted[compared], accepted[compared],
                                                  sensitive_features=labels[compared]))
        if target is not None:
            repaid = (np.asarray(target) == 0).astype(int)
            outcome = MetricFrame(
                metrics={"good_accepted": true_positive_rate, "defaulter_accepted": false_positive_rate},
                y_true=repaid, y_pred=accepted, sensitive_features=pd.Series(labels, name=name)).by_group
            observed = pd.Series(1 - repaid).groupby(labels).mean()
            for g in figures:
                figures[g]["observed_default_rate"] = float(observed.loc[g])
                figures[g]["missed_default_rate"] = _finite(outcome.loc[g, "defaulter_accepted"])
                good = _finite(outcome.loc[g, "good_accepted"])
                figures[g]["refused_good_rate"] = None if good is None else 1.0 - good
            if compared.sum() and len(np.unique(labels[compared])) > 1:
                eod = _finite(equal_opportunity_difference(repaid[compared], accepted[compared],
                                                           sensitive_features=labels[compared]))
        report[name] = _attribute_report(list(figures.values()), di, eod, sizes, limits)
    return report


def _attribute_report(figures: list[dict], di: float | None, eod: float | None, sizes: pd.Series,
                      limits: FairnessLimits) -> dict:
    """One attribute's entry of the report: its groups, the two ratios, the alerts past `limits`."""
    alerts = []
    if di is not None and di < limits.min_disparate_impact:
        alerts.append({"metric": "disparate_impact_ratio", "value": di, "limit": limits.min_disparate_impact})
    if eod is not None and eod > limits.max_equal_opportunity_difference:
        alerts.append({"metric": "equal_opportunity_difference", "value": eod,
                       "limit": limits.max_equal_opportunity_difference})
    return {
        "groups": sorted(figures, key=lambda f: f["group"]),
        "disparate_impact_ratio": di,
        "equal_opportunity_difference": eod,
        "alerts": alerts,
        "limits": {"min_disparate_impact": limits.min_disparate_impact,
                   "max_equal_opportunity_difference": limits.max_equal_opportunity_difference,
                   "min_group": limits.min_group},
        "small_groups": sorted(str(g) for g in sizes.index[sizes < limits.min_group]),
    }


def acceptance_report(counts: pd.DataFrame, schema: DatasetSchema,
                      limits: FairnessLimits = FairnessLimits()) -> dict[str, dict]:
    """`fairness_report`'s figures without outcomes (new applications: acceptance and predictions), from counts
    per combination of values of the raw protected columns (`n` files, `accepted` of them, `p_sum` their default
    probabilities summed; `scoring.store.ClientStore.protected_counts`): a few thousand rows computed in DuckDB
    instead of one per application (Fairlearn's MetricFrame takes ~40 s and 1 GB on 700,000). The same
    figures: acceptance rate per group, disparate impact as the lowest acceptance rate over the highest among
    groups of at least `limits.min_group` applications (Fairlearn's `demographic_parity_ratio`)."""
    report = {}
    for name, attribute in schema.protected.items():
        if attribute.column not in counts.columns:
            continue
        labels = labels_of(counts[attribute.column], attribute)
        sums = counts[["n", "accepted", "p_sum"]].astype("float64").groupby(labels).sum()
        sizes = sums["n"]
        rates = sums["accepted"] / sizes
        figures = [{"group": str(g), "applications": int(sizes.loc[g]), "acceptance_rate": float(rates.loc[g]),
                    "mean_default_probability": float(sums.loc[g, "p_sum"] / sizes.loc[g]),
                    "observed_default_rate": None, "missed_default_rate": None, "refused_good_rate": None}
                   for g in sums.index]
        compared = rates[sizes >= limits.min_group]
        di = _finite(compared.min() / compared.max()) if len(compared) > 1 and compared.max() > 0 else None
        report[name] = _attribute_report(figures, di, None, sizes, limits)
    return report
