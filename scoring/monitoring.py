"""Model monitoring: reference distributions at training time, drift (PSI) of features and score."""

from __future__ import annotations

import numpy as np
import pandas as pd

PSI_MODERATE = 0.1
PSI_DRIFT = 0.2
_EPS = 1e-4


def _bin_edges(values: np.ndarray, bins: int = 10) -> list[float]:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    edges = np.unique(np.quantile(finite, np.linspace(0, 1, bins + 1)[1:-1]))
    return [float(e) for e in edges]


def proportions(values: np.ndarray, edges: list[float], categorical_levels: int | None = None) -> np.ndarray:
    """Share of values per bin, the last bin being 'missing'."""
    values = np.asarray(values, dtype=np.float64)
    missing = ~np.isfinite(values)
    if categorical_levels is not None:
        counts = np.bincount(values[~missing].astype(np.int64), minlength=categorical_levels)[:categorical_levels]
    else:
        counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1)
    counts = np.append(counts, missing.sum()).astype(np.float64)
    return counts / max(len(values), 1)


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index between two binned distributions."""
    r = np.clip(np.asarray(reference, dtype=np.float64), _EPS, None)
    c = np.clip(np.asarray(current, dtype=np.float64), _EPS, None)
    return float(np.sum((c - r) * np.log(c / r)))


def drift_status(value: float) -> str:
    return "drift" if value >= PSI_DRIFT else "moderate" if value >= PSI_MODERATE else "stable"


def reference_statistics(X: np.ndarray, probabilities: np.ndarray, kinds: list[str], categories: list[int]) -> dict:
    """What drift checks compare against: per-feature bins and shares, and the score distribution."""
    features = []
    for j, kind in enumerate(kinds):
        col = X[:, j]
        if kind == "categorical":
            edges, levels = [], categories[j]
            props = proportions(col, edges, levels)
        else:
            edges, levels = _bin_edges(col), None
            props = proportions(col, edges)
        finite = col[np.isfinite(col)]
        features.append({
            "edges": edges,
            "levels": levels,
            "proportions": [round(float(p), 6) for p in props],
            "missing_share": float(props[-1]),
            "mean": float(finite.mean()) if finite.size else None,
        })
    score_edges = _bin_edges(probabilities)
    return {
        "features": features,
        "score": {"edges": score_edges, "proportions": proportions(probabilities, score_edges).round(6).tolist(),
                  "mean": float(np.mean(probabilities))},
    }


def drift_report(reference: dict, X_current: np.ndarray, probabilities: np.ndarray, names: list[str],
                 labels: list[str]) -> tuple[pd.DataFrame, float]:
    """PSI per feature (sorted, worst first) and PSI of the score distribution."""
    rows = []
    for j, ref in enumerate(reference["features"]):
        cur = proportions(X_current[:, j], ref["edges"], ref["levels"])
        value = psi(ref["proportions"], cur)
        rows.append((names[j], labels[j], value, drift_status(value)))
    table = pd.DataFrame(rows, columns=["feature", "label", "psi", "status"])
    table = table.sort_values("psi", ascending=False, ignore_index=True)
    s = reference["score"]
    score_psi = psi(s["proportions"], proportions(probabilities, s["edges"]))
    return table, score_psi
