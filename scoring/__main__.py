"""Command line: `python -m scoring build|score|api`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import asdict

from .config import Workdir
from .errors import ScoringError


def _build(args) -> int:
    from .build import TRAIN_SAMPLE_ROWS, build, build_from_chunks
    from .model import CostWeights

    if args.input:   # out of core: the Parquet chunks of `generate`, any size
        if args.schema or args.scheduler or args.dask_workers:
            raise ScoringError("build --input reads `python -m scoring generate`'s chunks and trains in this process: "
                               "drop --schema, --scheduler and --dask-workers")
        build_from_chunks(args.input, Workdir.resolve(args.workdir), rows=args.rows or TRAIN_SAMPLE_ROWS,
                          seed=args.seed, costs=CostWeights(args.cost_missed_default, args.cost_refused_good),
                          quiet=args.quiet, age_as_feature=not args.no_age_feature)
        return 0
    build(Workdir.resolve(args.workdir), schema=args.schema, rows=args.rows, seed=args.seed,
          costs=CostWeights(args.cost_missed_default, args.cost_refused_good), quiet=args.quiet,
          age_as_feature=not args.no_age_feature, scheduler=args.scheduler, dask_workers=args.dask_workers)
    return 0


def _score(args) -> int:
    from .service import LocalScoringService

    service = LocalScoringService(Workdir.resolve(args.workdir))
    score, explanation = service.score_and_explain(args.client, top=args.top)
    out = {**asdict(score), "base_value": explanation.base_value,
           "contributions": [asdict(c) for c in explanation.contributions], "others": explanation.others}
    print(json.dumps(out, indent=1, ensure_ascii=False))
    return 0


def _api(args) -> int:
    from .api import serve

    return serve(host=args.host, port=args.port, workdir=args.workdir, insecure_no_auth=args.insecure_no_auth,
                 workers=args.workers)


def _outcomes(args) -> int:
    from .outcomes import load_outcomes

    loaded = load_outcomes(args.file, Workdir.resolve(args.workdir))
    print(f"{loaded.rows:,} outcomes kept in {loaded.path}", file=sys.stderr)
    return 0


def _smoke(args) -> int:
    from .smoke import main as smoke

    return smoke(args.api_url, args.dashboard_url)


def _batch(args) -> int:
    from .batch import run_batch

    summary = run_batch(args.output, Workdir.resolve(args.workdir), scheduler=args.scheduler, workers=args.workers,
                        partition_rows=args.partition_rows, quiet=args.quiet, input=args.input)
    print(summary.text(), file=sys.stderr)
    return 0


def _generate(args) -> int:
    from .chunked import generate_chunks

    def progress(message: str) -> None:
        if not args.quiet:
            print(f"\r  {message}", end="", file=sys.stderr, flush=True)

    summary = generate_chunks(args.output, args.rows, chunk_rows=args.chunk_rows, seed=args.seed, progress=progress)
    if not args.quiet:
        print(file=sys.stderr)
    print(summary.text(), file=sys.stderr)
    return 0


def _versions(args) -> int:
    from .registry import Registry

    registry = Registry(Workdir.resolve(args.workdir))
    versions = registry.versions()
    if not versions:
        print("no model version registered yet: run `python -m scoring build`", file=sys.stderr)
        return 0
    print(f"{'':2}{'version':<24} {'created':<26} {'AUC':>6} {'OOF AUC':>8} {'threshold':>9} {'accepted':>8} "
          f"{'fairness alerts':>15}  trained in")
    for v in versions:
        oof = f"{v.oof_roc_auc:.4f}" if v.oof_roc_auc is not None else "-"
        print(f"{'*' if v.active else '':2}{v.version:<24} {v.created_at:<26} {v.roc_auc:>6.4f} {oof:>8} "
              f"{v.threshold:>9.3f} {v.acceptance_rate:>8.1%} {v.fairness_alerts:>15}  {v.trained_in}")
    if args.compare:
        c = registry.compare(*args.compare)
        print(f"\n{c.b} against {c.a} on {c.clients:,} client files ({c.labelled:,} labelled):\n"
              f"  mean shift {c.mean_shift:+.4f}, mean |shift| {c.mean_abs_shift:.4f}, p95 |shift| {c.p95_abs_shift:.4f}\n"
              f"  accepted -> refused {c.refused_now:,}, refused -> accepted {c.accepted_now:,}; "
              f"acceptance {c.acceptance_a:.1%} -> {c.acceptance_b:.1%}"
              + (f"\n  AUC {c.auc_a:.4f} -> {c.auc_b:.4f} (out of fold)" if c.auc_a is not None else ""))
    return 0


def _activate(args) -> int:
    from .registry import Registry

    event = Registry(Workdir.resolve(args.workdir)).activate(args.version, user=args.user, reason=args.reason)
    print(f"model version {event['version']} now served (was {event['previous']}); restart the API and the "
          f"dashboard to load it", file=sys.stderr)
    return 0


def _secrets(args) -> int:
    from .credentials import ensure_secrets

    def tell(name: str, role: str, password: str) -> None:
        print(f"dashboard login {name!r} ({role}): password {password}")

    paths = ensure_secrets(args.dir, on_new_login=tell)
    for key, path in paths.items():
        print(f"{key:<14} {path}")
    print("(passwords are shown once, when a login is created: only their Argon2 hashes are stored; a new one: "
          f"`python -m scoring.credentials --dir {args.dir} set-password NAME`)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scoring", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    b = sub.add_parser("build", help="generate or load data, train the model, write the client files")
    b.add_argument("--schema", help="TOML schema of another credit dataset (default: Home Credit, real or generated)")
    b.add_argument("--workdir", help="where data/ and model/ go (default: $SCORING_WORKDIR or the repository)")
    b.add_argument("--rows", type=int, help="labelled applications to generate or sample (default: full size; "
                                            "with --input, the labelled applications trained on, default 300,000)")
    b.add_argument("--input", help="a directory of `python -m scoring generate`'s Parquet chunks (any size): the "
                                   "store is built from them slice by slice, with bounded memory")
    b.add_argument("--seed", type=int, default=42)
    b.add_argument("--cost-missed-default", type=float, default=10.0, help="cost of accepting a client who defaults")
    b.add_argument("--cost-refused-good", type=float, default=1.0, help="cost of refusing a client who would repay")
    b.add_argument("--no-age-feature", action="store_true",
                   help="Home Credit: age is a protected attribute kept for fairness figures only, not a feature "
                        "(gender never is one)")
    b.add_argument("--scheduler", help="train with XGBoost's Dask interface on the running Dask scheduler at this "
                                       "address, e.g. tcp://10.0.0.5:8786 (default: in this process)")
    b.add_argument("--dask-workers", type=int,
                   help="train with XGBoost's Dask interface on a local cluster of this many worker processes")
    b.add_argument("--quiet", action="store_true")
    b.set_defaults(func=_build)

    s = sub.add_parser("score", help="score and explain one client, as JSON")
    s.add_argument("--client", required=True, type=int, help="client ID (SK_ID_CURR)")
    s.add_argument("--workdir")
    s.add_argument("--top", type=int, default=10, help="contributions to list (the rest are summed in 'others')")
    s.set_defaults(func=_score)

    a = sub.add_parser("api", help="serve the REST API with uvicorn")
    a.add_argument("--host", default="127.0.0.1")
    a.add_argument("--port", type=int, default=8000)
    a.add_argument("--workdir")
    a.add_argument("--insecure-no-auth", action="store_true", help="serve without tokens (local development only)")
    a.add_argument("--workers", type=int, default=int(os.environ.get("SCORING_API_WORKERS", "1")),
                   help="server processes, each with its own copy of the model and client files (~0.5 GB each at "
                        "full size); default $SCORING_API_WORKERS or 1")
    a.set_defaults(func=_api)

    o = sub.add_parser("outcomes", help="add repayment outcomes of decided applications (CSV or Parquet)")
    o.add_argument("file", help="client_id (or SK_ID_CURR), defaulted (1/0, or TARGET), optional reported_on")
    o.add_argument("--workdir")
    o.set_defaults(func=_outcomes)

    k = sub.add_parser("smoke", help="check a deployment through its URLs (token from SCORING_API_TOKEN)")
    k.add_argument("--api-url", required=True, help="e.g. https://credit-scoring-api.onrender.com")
    k.add_argument("--dashboard-url", help="e.g. https://credit-scoring-dashboard.onrender.com")
    k.set_defaults(func=_smoke)

    t = sub.add_parser("batch", help="score and explain every application on a Dask cluster, into Parquet")
    t.add_argument("--output", required=True, help="directory of the Parquet partitions (resumed if it exists)")
    t.add_argument("--workdir")
    t.add_argument("--input", help="a directory of Parquet files of applications (e.g. `python -m scoring generate`'s) "
                                   "to score with the workdir's model, one partition per file (default: the workdir's "
                                   "client files)")
    t.add_argument("--scheduler", help="address of a running Dask scheduler, e.g. tcp://10.0.0.5:8786 "
                                       "(default: a local cluster)")
    t.add_argument("--workers", type=int, help="local cluster: worker processes (default: one per core)")
    t.add_argument("--partition-rows", type=int, default=20_000)
    t.add_argument("--quiet", action="store_true")
    t.set_defaults(func=_batch)

    g = sub.add_parser("generate", help="generate a portfolio of any size into Parquet chunks (bounded memory)")
    g.add_argument("--rows", type=int, required=True, help="applications to generate, e.g. 10000000")
    g.add_argument("--output", required=True, help="directory of the Parquet chunks (resumed if it exists)")
    g.add_argument("--chunk-rows", type=int, default=500_000, help="applications per chunk (~1.3 GB of memory each)")
    g.add_argument("--seed", type=int, default=42)
    g.add_argument("--quiet", action="store_true")
    g.set_defaults(func=_generate)

    v = sub.add_parser("versions", help="the registered model versions (* = served); --compare A B on the same clients")
    v.add_argument("--workdir")
    v.add_argument("--compare", nargs=2, metavar=("A", "B"), help="version B against version A")
    v.set_defaults(func=_versions)

    w = sub.add_parser("activate", help="serve a registered model version again (rollback), with who and why")
    w.add_argument("version")
    w.add_argument("--user", required=True, help="who decides (kept in model/versions/history.jsonl)")
    w.add_argument("--reason", required=True, help="why (required)")
    w.add_argument("--workdir")
    w.set_defaults(func=_activate)

    c = sub.add_parser("secrets", help="create local dashboard logins, cookie secret and API token (never overwrites)")
    c.add_argument("--dir", default="secrets")
    c.set_defaults(func=_secrets)

    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except ScoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
