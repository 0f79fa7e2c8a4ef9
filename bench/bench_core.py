"""Scoring-core benchmark: build time, model quality vs oracle, score+explain latency, batch SHAP, store queries.

    python -m bench.bench_core [--workdir DIR] [--build] [--rows N]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from bench.common import Row, p50, p95, print_table, timings_ms
from scoring.config import Workdir
from scoring.service import LocalScoringService
from scoring.store import ClientQuery


def run(workdir: Workdir, build_seconds: float | None = None) -> list[Row]:
    service = LocalScoringService(workdir)
    card = json.loads(workdir.card_path.read_text())
    rows: list[Row] = []
    n = len(service.ids)
    if build_seconds is not None:
        rows.append(Row(f"build (generate, train, score, store) {n:,} apps", build_seconds, "s", "make run <= 10 min",
                        build_seconds <= 600))
    m = card["metrics"]
    if "oracle_roc_auc" in m:
        ratio = m["roc_auc"] / m["oracle_roc_auc"]
        rows.append(Row("holdout ROC AUC / oracle ROC AUC", ratio, "ratio", ">= 0.97", ratio >= 0.97,
                        f"AUC {m['roc_auc']:.4f}, oracle {m['oracle_roc_auc']:.4f}"))
    else:
        rows.append(Row("holdout ROC AUC", m["roc_auc"], "", "", None))

    rng = np.random.default_rng(0)
    ids = rng.choice(service.ids, 400, replace=False)
    X = service.X
    it = iter(np.tile(ids, 50))
    bare = timings_ms(lambda: service.scorer.booster.inplace_predict(np.asarray(X[rng.integers(0, n)]).reshape(1, -1),
                                                                   validate_features=False), 400)
    full = timings_ms(lambda: service.score_and_explain(int(next(it))), 400)
    rows.append(Row("score + explanation, one client: p50", p50(full), "ms", "<= 5 ms", p50(full) <= 5,
                    f"bare XGBoost NumPy row p50 {p50(bare):.3f} ms"))
    rows.append(Row("score + explanation, one client: p95", p95(full), "ms", "", None,
                    f"bare XGBoost NumPy row p95 {p95(bare):.3f} ms"))
    file_ms = timings_ms(lambda: service.client(int(next(it))), 300)
    rows.append(Row("client file from the store (point lookup): p50", p50(file_ms), "ms", "", None))

    batch = np.asarray(X[:20000])
    t = time.perf_counter()
    service.scorer.contributions(batch)
    rate = len(batch) / (time.perf_counter() - t)
    t = time.perf_counter()
    service.scorer.predict_proba(batch)
    pred_rate = len(batch) / (time.perf_counter() - t)
    rows.append(Row("batch explanations (TreeSHAP)", rate, "rows/s", "", None, f"batch predict {pred_rate:,.0f} rows/s"))

    # the advisor's answer (issue 12): reasons, offers and similar applicants of one client, as the page loads them
    # after the file; refused clients are the costly ones (offers are searched and re-scored)
    refused = service.search(ClientQuery(decision="refused", limit=200)).items
    refused_ids = iter(np.tile([r["client_id"] for r in refused], 10))

    def advice(client_id: int) -> None:
        service.reasons(client_id, "fr")
        service.offers(client_id)
        service.peers(client_id)

    advice_ms = timings_ms(lambda: advice(int(next(refused_ids))), 200, warmup=3)
    rows.append(Row("reasons + offers + peers, refused client: p95", p95(advice_ms), "ms", "<= 300 ms",
                    p95(advice_ms) <= 300, f"p50 {p50(advice_ms):.1f} ms"))
    accepted_ids = iter(np.tile([r["client_id"] for r in service.search(
        ClientQuery(decision="accepted", limit=200)).items], 10))
    advice_ms = timings_ms(lambda: advice(int(next(accepted_ids))), 200, warmup=3)
    rows.append(Row("reasons + offers + peers, accepted client: p95", p95(advice_ms), "ms", "<= 300 ms",
                    p95(advice_ms) <= 300, f"p50 {p50(advice_ms):.1f} ms"))

    some = str(int(ids[0]))
    queries = {
        "exact ID": ClientQuery(q=some),
        "ID prefix (4 digits)": ClientQuery(q=some[:4]),
        "refused, sorted by probability desc": ClientQuery(decision="refused", sort="default_probability",
                                                           descending=True),
        "probability 0.1-0.3 + cash loans": ClientQuery(min_probability=0.1, max_probability=0.3,
                                                        contract_type="Cash loans"),
        "income/amount/age ranges, sorted by income": ClientQuery(min_income=100_000, max_income=300_000,
                                                                  min_amount=200_000, min_age=25, max_age=45,
                                                                  sort="income"),
        "no filter, page 500 (offset 10,000)": ClientQuery(offset=10_000),
    }
    worst = 0.0
    for name, query in queries.items():
        ms = timings_ms(lambda q=query: service.search(q), 40)
        worst = max(worst, p95(ms))
        rows.append(Row(f"store search: {name} (p95)", p95(ms), "ms", "<= 50 ms", p95(ms) <= 50,
                        f"p50 {p50(ms):.1f} ms over {n:,} apps"))
    return rows


def main(argv=None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workdir")
    parser.add_argument("--build", action="store_true", help="time a full build into --workdir first")
    parser.add_argument("--rows", type=int)
    args = parser.parse_args(argv)
    wd = Workdir.resolve(args.workdir)
    seconds = None
    if args.build:
        from scoring.build import build

        t = time.perf_counter()
        build(wd, rows=args.rows)
        seconds = time.perf_counter() - t
    print_table("Scoring core", run(wd, seconds))


if __name__ == "__main__":
    main()
