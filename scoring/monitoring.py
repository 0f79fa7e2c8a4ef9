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


# ------------------------------------------------------------------------------------------ over time
def _bucket_sql(column: str, edges: list[float]) -> str:
    """The bin of `column` as `proportions` counts it (number of edges <= value); NULL when missing."""
    if not edges:
        return f"CASE WHEN {column} IS NULL THEN NULL ELSE 0 END"
    return "(" + " + ".join(f"CAST({column} >= {float(e)!r} AS INTEGER)" for e in edges) + ")"


def _psi_by_month(rows: list[tuple], reference: list[float], n_bins: int) -> dict[str, float]:
    """rows: (month, bin or None, count) -> PSI of each month against the reference shares."""
    counts: dict[str, np.ndarray] = {}
    for month, b, n in rows:
        c = counts.setdefault(month, np.zeros(n_bins + 1))
        c[n_bins if b is None else min(int(b), n_bins - 1)] += n
    return {m: psi(reference, c / max(c.sum(), 1)) for m, c in counts.items()}


def monthly_report(cur, reference: dict, threshold: float, features: list[dict],
                   outcomes: str = "outcomes") -> list[dict]:
    """Figures by month of application, computed in DuckDB on the client-file store (never a copy of it: only
    grouped rows reach Python, a few per month and monitored feature; at full size, 356k applications over 36
    months and 10 features, 1.3-3 s cold on 2 shared cores, `bench.bench_analyst`, then cached by the service):
    applications, acceptance, mean probability, score PSI and each given feature's PSI against the training
    reference; where outcomes are known (labelled history, or outcomes reported for accepted new applications):
    observed default rate, realised error rate at the threshold, AUC; for new applications, the error and default
    rates the model expects from its own probabilities (an estimate before the outcomes arrive, exact if the
    model is calibrated).

    `features`: {"name", "column" (in the raw table), "edges", "levels", "categories", "index" (in the
    reference)}. `outcomes`: the relation holding them (the store's table, or it with the files loaded later,
    see `scoring.outcomes.relation`)."""
    month = "strftime(date_trunc('month', a.application_date), '%Y-%m')"
    base = (f"FROM applications a LEFT JOIN {outcomes} o ON o.client_id = a.client_id "
            "WHERE a.application_date IS NOT NULL")
    t = float(threshold)
    summary = cur.execute(f"""
        SELECT {month} AS month, any_value(a.split) AS split, count(*) AS applications,
               avg(CAST(a.decision = 'accepted' AS DOUBLE)) AS acceptance_rate,
               avg(a.default_probability) AS mean_default_probability,
               avg(CASE WHEN a.default_probability >= {t!r} THEN 1 - a.default_probability
                        ELSE a.default_probability END) AS expected_error_rate,
               count(coalesce(o.defaulted, a.target)) AS outcomes,
               avg(coalesce(o.defaulted, a.target)) AS observed_default_rate,
               avg(CASE WHEN coalesce(o.defaulted, a.target) IS NULL THEN NULL
                        WHEN (a.default_probability >= {t!r}) <> (coalesce(o.defaulted, a.target) = 1) THEN 1.0
                        ELSE 0.0 END) AS realised_error_rate
        {base} GROUP BY 1 ORDER BY 1""").fetchall()
    auc = dict(cur.execute(f"""
        WITH r AS (
            SELECT {month} AS month, coalesce(o.defaulted, a.target) AS y,
                   rank() OVER (PARTITION BY {month} ORDER BY a.default_probability)
                   + (count(*) OVER (PARTITION BY {month}, a.default_probability) - 1) / 2.0 AS rk
            {base} AND coalesce(o.defaulted, a.target) IS NOT NULL)
        SELECT month, (sum(rk) FILTER (WHERE y = 1) - count(*) FILTER (WHERE y = 1)
                                                       * (count(*) FILTER (WHERE y = 1) + 1) / 2.0)
                      / nullif(count(*) FILTER (WHERE y = 1) * count(*) FILTER (WHERE y = 0), 0)
        FROM r GROUP BY 1""").fetchall())
    s = reference["score"]
    score_rows = cur.execute(f"SELECT {month}, {_bucket_sql('a.default_probability', s['edges'])}, count(*) "
                             f"{base} GROUP BY 1, 2").fetchall()
    score_psi = _psi_by_month(score_rows, s["proportions"], len(s["edges"]) + 1)
    feature_psi: dict[str, dict[str, float]] = {}
    for f in features:
        ref = reference["features"][f["index"]]
        column = f'r."{f["column"]}"'
        if f.get("categories"):
            cats = ", ".join("'" + c.replace("'", "''") + "'" for c in f["categories"])
            bucket, n_bins = f"nullif(list_position([{cats}], CAST({column} AS VARCHAR)), 0) - 1", len(f["categories"])
        else:
            bucket, n_bins = _bucket_sql(column, ref["edges"]), len(ref["edges"]) + 1
        rows = cur.execute(f"SELECT {month}, {bucket}, count(*) FROM applications a JOIN raw r USING (client_id) "
                           f"WHERE a.application_date IS NOT NULL GROUP BY 1, 2").fetchall()
        feature_psi[f["name"]] = _psi_by_month(rows, ref["proportions"], n_bins)
    report = []
    for (m, split, n, acceptance, mean_p, expected_error, n_outcomes, observed, realised) in summary:
        report.append({
            "month": m, "split": split, "applications": int(n), "acceptance_rate": float(acceptance),
            "mean_default_probability": float(mean_p),
            "expected_default_rate": float(mean_p), "expected_error_rate": float(expected_error),
            "outcomes": int(n_outcomes),
            "observed_default_rate": None if observed is None else float(observed),
            "realised_error_rate": None if realised is None else float(realised),
            "auc": None if auc.get(m) is None else float(auc[m]),
            "score_psi": score_psi.get(m, 0.0),
            "feature_psi": {name: values.get(m, 0.0) for name, values in feature_psi.items()},
        })
    return report


def feature_counts(cur, feature: dict, reference: dict) -> dict:
    """One monitored feature's counts per bin of the reference's (deciles for a number, one per category, the last
    bin holding missing values), by month of application and split: one grouped DuckDB query over the store, never
    a copy of its rows. {"edges", "categories", "n_bins", "months": {(month, split): counts}}.

    `feature`: as for `monthly_report`; `reference`: the card's reference statistics."""
    ref = reference["features"][feature["index"]]
    column = f'r."{feature["column"]}"'
    if feature.get("categories"):
        cats = ", ".join("'" + c.replace("'", "''") + "'" for c in feature["categories"])
        bucket = f"nullif(list_position([{cats}], CAST({column} AS VARCHAR)), 0) - 1"
        n_bins = len(feature["categories"])
    else:
        bucket, n_bins = _bucket_sql(column, ref["edges"]), len(ref["edges"]) + 1
    rows = cur.execute(f"""
        SELECT strftime(date_trunc('month', a.application_date), '%Y-%m'), a.split, {bucket}, count(*)
        FROM applications a JOIN raw r USING (client_id) GROUP BY 1, 2, 3""").fetchall()
    months: dict[tuple, np.ndarray] = {}
    for month, split, b, n in rows:
        counts = months.setdefault((month, split), np.zeros(n_bins + 1))
        counts[n_bins if b is None else min(int(b), n_bins - 1)] += n
    return {"edges": [] if feature.get("categories") else list(ref["edges"]),
            "categories": list(feature.get("categories") or []), "n_bins": n_bins, "months": months}


def feature_shares(counts: dict, month: str | None = None) -> dict:
    """The shares per bin of the labelled history (the reference) and of the current applications (those of
    `month`, "2026-03", else every new application), from `feature_counts`, with the PSI between them."""
    empty = np.zeros(counts["n_bins"] + 1)
    reference = sum((c for (m, split), c in counts["months"].items() if split == "train"), empty)
    current = sum((c for (m, split), c in counts["months"].items()
                   if (m == month if month is not None else split == "new")), empty)
    shares = {side: c / max(c.sum(), 1) for side, c in (("reference", reference), ("current", current))}
    return {"edges": counts["edges"], "categories": counts["categories"],
            "reference": shares["reference"].tolist(), "current": shares["current"].tolist(),
            "reference_applications": int(reference.sum()), "current_applications": int(current.sum()),
            "psi": psi(shares["reference"], shares["current"])}
