"""Analyst view benchmark (issue 13): each analyst panel's first draw and each click, server side, at full size.

    python -m bench.bench_analyst [--workdir DIR] [--sessions N] [--clicks N] [--profile PANEL]

In process, the figures already warm (`start_governance` run to its end, as a server does at start): for each of
`--sessions` new sessions, an analyst's state (its audited service calls included) and `GovernanceView` are built,
then each panel (fairness, monitoring, performance) is added to its own Bokeh document as a served page's is (the
Panel objects and their Bokeh models, HoloViews plots included). The panel's time is its `server_doc` plus its
share of the view's construction (the objects of that panel only; `GovernanceView` builds them per panel).
Then, in one session with the whole view in a document: a feature chosen in the drift table (its distributions
redrawn), a month chosen, a performance segment chosen, the language switched; each time covers every view
callback and Bokeh model update.
Baselines in the same run: one hvplot line chart's first draw alone (the unit cost of a figure) and, for the
clicks, the audited service call alone. Target: every panel's first draw and every click p95 <= 300 ms.
Monitoring by month itself (`monthly_report`, DuckDB on the store) is timed once, cold, for the record.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Row, p50, p95, print_table, timings_ms
from scoring.config import Workdir

TARGET_MS = 300
PANELS = ("fairness", "monitoring", "performance")


def _session(service, log):
    from scoring.backends import session_service
    from views.governance import GovernanceView
    from views.state import DashboardState

    state = DashboardState(session_service(service, "bench", log), role="analyst", language="fr")
    return state, GovernanceView(state=state)


def _draw(view, panel: str):
    """The panel's Panel objects and their Bokeh models in a new document, as a served page's."""
    from bokeh.document import Document

    document = Document()
    view.panel(panel).server_doc(document)
    return document


def _timed(fn) -> float:
    t = time.perf_counter()
    fn()
    return (time.perf_counter() - t) * 1000


def first_draws(service, log, sessions: int) -> tuple[list[Row], dict]:
    import holoviews as hv  # noqa: F401
    import pandas as pd
    import panel as pn
    from bokeh.document import Document

    times = {p: [] for p in PANELS}
    setup, whole, models = [], [], {}
    for i in range(sessions + 3):                     # the first three warm the imports and caches up
        t = time.perf_counter()
        state, view = _session(service, log)
        built = (time.perf_counter() - t) * 1000
        for panel in PANELS:
            t = time.perf_counter()
            document = _draw(view, panel)
            ms = (time.perf_counter() - t) * 1000
            models[panel] = len(document.models)
            if i >= 3:
                times[panel].append(ms)
        if i >= 3:
            setup.append(built)
        t = time.perf_counter()
        state, view = _session(service, log)
        pn.panel(view).server_doc(Document())
        if i >= 3:
            whole.append((time.perf_counter() - t) * 1000)

    frame = pd.DataFrame({"x": np.arange(24), "y": np.linspace(0, 1, 24)})
    import hvplot.pandas  # noqa: F401

    one_chart = timings_ms(lambda: pn.pane.HoloViews(frame.hvplot.line(x="x", y="y", responsive=True, height=280))
                           .server_doc(Document()), repeat=sessions, warmup=3)
    rows = [Row("one hvplot line chart, first draw alone p95", p95(one_chart), "ms")]
    rows.append(Row("session: analyst state and view objects p95", p95(setup), "ms", "",
                    None, "its service calls audited; shared by the panels"))
    for panel in PANELS:
        rows.append(Row(f"{panel} panel first draw p50 ({models[panel]} Bokeh models)", p50(times[panel]), "ms"))
        rows.append(Row(f"{panel} panel first draw p95", p95(times[panel]), "ms", f"<= {TARGET_MS}",
                        p95(times[panel]) <= TARGET_MS, f"{p95(times[panel]) / p95(one_chart):.1f} x one chart"))
    rows.append(Row("whole analyst view, new session to Bokeh models p95", p95(whole), "ms"))
    return rows, times


def clicks(service, log, n: int) -> list[Row]:
    import panel as pn
    from bokeh.document import Document

    state, view = _session(service, log)
    pn.panel(view).server_doc(Document())
    gov = state.governance
    features = gov.features
    months = [m.month for m in gov.months]
    rng = np.random.default_rng(0)

    def cycle(values, k):
        return [values[int(j)] for j in rng.integers(0, len(values), size=k)]

    feature_ms, feature_call = [], []
    for feature in [*cycle(features, n + 3)]:
        if feature == gov.feature:
            continue
        feature_ms.append(_timed(lambda: gov.select_feature(feature)))
        feature_call.append(_timed(lambda: state.service.feature_drift(feature, gov.month)))
    month_ms, month_call = [], []
    for month in cycle(["", *months], n + 3):
        if (month or None) == gov.month:
            continue
        month_ms.append(_timed(lambda: setattr(view.month_select, "value", month)))
        month_call.append(_timed(lambda: state.service.feature_drift(gov.feature, month or None)))
    segments = list(view.segment_select.options.values())
    segment_ms = []
    for k in range(n + 3):
        segment = segments[k % len(segments)]
        if segment == gov.segment:
            continue
        segment_ms.append(_timed(lambda: setattr(view.segment_select, "value", segment)))
    language_ms = [_timed(lambda: setattr(state, "language", "en" if state.language == "fr" else "fr"))
                   for _ in range(max(6, n // 3))]
    drop = lambda a: a[3:] if len(a) > 6 else a  # noqa: E731  (the first ones warm up)
    feature_ms, month_ms, segment_ms, language_ms = map(drop, (feature_ms, month_ms, segment_ms, language_ms))
    ok = lambda a: p95(a) <= TARGET_MS  # noqa: E731
    return [
        Row("feature chosen in the drift table p95", p95(feature_ms), "ms", f"<= {TARGET_MS}", ok(feature_ms),
            f"audited feature_drift alone p95 {p95(feature_call):.1f} ms"),
        Row("month chosen p95", p95(month_ms), "ms", f"<= {TARGET_MS}", ok(month_ms),
            f"audited feature_drift alone p95 {p95(month_call):.1f} ms"),
        Row("performance segment chosen p95", p95(segment_ms), "ms", f"<= {TARGET_MS}", ok(segment_ms)),
        Row("language switched (every analyst panel) p95", p95(language_ms), "ms"),
    ]


def monthly(service) -> list[Row]:
    """Monitoring by month computed again, cold (DuckDB on the store), and the size of its result."""
    from scoring.monitoring import monthly_report
    from scoring.outcomes import relation

    cur = service.store.cursor()
    t = time.perf_counter()
    rows = monthly_report(cur, service.card.reference, service.card.threshold,
                          list(service._monitored.values()), outcomes=relation(service.workdir))
    s = time.perf_counter() - t
    return [Row(f"monitoring by month in DuckDB ({len(rows)} months, cold, at start)", s, "s")]


def profile(service, log, panel: str) -> None:
    """cProfile of 5 first draws of `panel` (or of a click: feature, month, segment, language)."""
    import panel as pn
    from bokeh.document import Document

    _session(service, log)
    profiler = cProfile.Profile()
    if panel in PANELS:
        for _ in range(5):
            profiler.enable()
            state, view = _session(service, log)
            _draw(view, panel)
            profiler.disable()
    else:
        state, view = _session(service, log)
        pn.panel(view).server_doc(Document())
        gov = state.governance
        actions = {"feature": lambda i: gov.select_feature(gov.features[i % len(gov.features)]),
                   "month": lambda i: setattr(view.month_select, "value", [m.month for m in gov.months][i]),
                   "segment": lambda i: setattr(view.segment_select, "value",
                                                list(view.segment_select.options.values())[i % 3]),
                   "language": lambda i: setattr(state, "language", ("en", "fr")[i % 2])}
        for i in range(1, 7):
            profiler.enable()
            actions[panel](i)
            profiler.disable()
    pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", help="built work directory (default: $SCORING_WORKDIR or the repository)")
    parser.add_argument("--sessions", type=int, default=20, help="new sessions drawn")
    parser.add_argument("--clicks", type=int, default=30, help="clicks of each kind measured")
    parser.add_argument("--profile", choices=[*PANELS, "feature", "month", "segment", "language"],
                        help="print a cProfile of this panel's first draw (or click) instead of the table")
    args = parser.parse_args(argv)
    workdir = Workdir.resolve(args.workdir)

    from scoring.audit import AuditLog
    from scoring.service import LocalScoringService

    started = time.perf_counter()
    service = LocalScoringService(workdir)
    load_s = time.perf_counter() - started
    started = time.perf_counter()
    service.start_governance().join()
    warm_s = time.perf_counter() - started
    with tempfile.TemporaryDirectory() as tmp:
        log = AuditLog(Path(tmp) / "audit.sqlite")
        if args.profile:
            profile(service, log, args.profile)
            return 0
        rows = [Row(f"service load ({service.portfolio().n_applications:,} applications)", load_s, "s"),
                Row("analyst figures warm-up (start_governance)", warm_s, "s")]
        rows += monthly(service)
        drawn, _ = first_draws(service, log, args.sessions)
        rows += drawn
        rows += clicks(service, log, args.clicks)
    print_table(f"Analyst view ({workdir.root})", rows)
    return 0 if all(r.ok is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
