"""The analysts' view of the model (issue 13): fairness by protected attribute, drift by month (the score's and
the monitored features' PSI, with the two distributions of a feature), outcomes and errors by month, and the
model's performance by segment: four panels, each a section of the analysts' page (`views.sections`).

Display only: every number comes from `GovernanceState` (the service's `fairness`, `monitoring`, `feature_drift`
and `performance`). Tables get plain text (Tabulator shows a cell's text, never its HTML); HTML panes escape
every value. Charts are HoloViews elements of small frames (built directly: lighter to draw than hvplot's).

Server time (issue 13: each panel p95 <= 300 ms; `python -m bench.bench_analyst`): a chart's first draw costs
~40-120 ms of CPU (more with each series), its update a few ms. So each panel's objects are built when the panel is
first drawn, and a panel holds at most three charts (the score's PSI is the heat map's top row, not a chart of its
own); every chart is drawn once per session and language and then fed by a `streams.Pipe` (`hv.DynamicMap`): the
figures arriving after the page shows (`GovernanceState` loads on the next tick), a feature clicked, a segment
chosen update the charts drawn (empty) at first instead of drawing them again; a feature's distributions (empty
until then) are drawn when the figures arrive; several charts updated together recompute the document's models once
(`pn.io.hold(freeze=True)`). A language switch is streamed too: HoloViews relabels a chart's title, axes and
legend in place (an overlay keeps its series, matched in order, and their styles): no chart is replaced.

Known defect (Panel 1.9.4): a language switch within ~300 ms of a section's first draw (before Chromium has built
its tables) raises "Cannot read properties of null (reading 'firstChild')" in Tabulator's `setColumns`, called by
Panel's Tabulator view for the translated column titles on a table not yet built (stack traced 2026-11-29; a switch
300 ms later, or once the section drew, raises nothing). The tests switch once the section drew.
"""

from __future__ import annotations

import html
import math
import warnings

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from holoviews import streams

from scoring.contracts import FairnessFigures, FeatureDrift, MonthFigures, PerformanceFigures

from .charts import ACCEPTED, DEFAULTED, POPULATION, REFUSED, REPAID
from .common import CARD_CSS, TABLE_CSS, notice_alert, section_title
from .i18n import TEXTS, LabelDictionary, card_labels, feature_label, fmt_number, fmt_percent, t
from .state import DashboardState, features_by_last_psi

# the heat map's one blank cell before the figures arrive (NaN: no colour) makes HoloViews' range of the grid warn
# (numpy's nanmin of an all-NaN array, called in that module): silenced for that message from there only. Should
# HoloViews move that code, the warning shows again in the log, nothing else changes.
warnings.filterwarnings("ignore", "All-NaN slice encountered", RuntimeWarning, "holoviews.core.data.grid")

PSI_ALERT = 0.2              # the PSI past which a feature drifts (scoring.monitoring.PSI_DRIFT): the heat map's red
PSI_MODERATE = 0.1
CHART_HEIGHT = 280
PSI_COLORS = ["#2f855a", "#ecc94b", "#c53030"]   # stable, moderate, drift: the heat map's colour per PSI band
PALETTE = ["#2b6cb0", "#dd6b20", "#2f855a", "#805ad5", "#b7791f", "#319795", "#c53030"]
TOOLS = dict(default_tools=["hover"], toolbar=None)

GOVERNANCE_CSS = """
.fairness-summary { display: flex; flex-wrap: wrap; gap: 10px; }
.fairness-card { flex: 1 1 220px; border: 1px solid #e2e5ea; border-radius: 6px; padding: 6px 10px; font-size: 13px; }
.fairness-card.alert { border-color: #b3261e; background: #fdf1f0; }
.fairness-card .title { font-weight: 600; }
.fairness-card .alert-line { color: #b3261e; font-weight: 600; }
.fairness-card .ok-line { color: #1b7f3b; }
table.confusion { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
table.confusion th, table.confusion td { border: 1px solid #e2e5ea; padding: 4px 10px; text-align: right; }
table.confusion td.error { color: #b3261e; font-weight: 600; }
.perf-summary { font-size: 13px; }
"""


def _text(key: str, language: str, fallback: str) -> str:
    """A text of `views.i18n` if it has one, else `fallback` as sent (a value this version does not know)."""
    return t(key, language) if key in TEXTS else str(fallback)


def _rate(value: float | None, language: str) -> str:
    return t("na", language) if value is None or not math.isfinite(value) else fmt_percent(value, language)


def _legend(keys, language: str) -> dict[str, str]:
    """The legend's text of series named by their text keys."""
    return {key: t(key, language) for key in keys}


def _number(value: float | None, language: str, decimals: int = 3) -> str:
    return t("na", language) if value is None or not math.isfinite(value) else fmt_number(value, language, decimals)


# ------------------------------------------------------------------------------------------ fairness
def fairness_frame(figures: list[FairnessFigures], language: str) -> pd.DataFrame:
    """One row per group of each protected attribute and population, as plain text."""
    columns = {"fair_col_attribute": [], "fair_col_population": [], "fair_col_group": [], "fair_col_applications": [],
               "fair_col_acceptance": [], "fair_col_predicted": [], "fair_col_observed": [], "fair_col_missed": [],
               "fair_col_refused_good": []}
    for f in figures:
        for g in f.groups:
            for key, value in (("fair_col_attribute", _text(f"attr_{f.attribute}", language, f.attribute)),
                               ("fair_col_population", _text(f"pop_{f.population}", language, f.population)),
                               ("fair_col_group", g.group),
                               ("fair_col_applications", fmt_number(g.applications, language)),
                               ("fair_col_acceptance", _rate(g.acceptance_rate, language)),
                               ("fair_col_predicted", _rate(g.mean_default_probability, language)),
                               ("fair_col_observed", _rate(g.observed_default_rate, language)),
                               ("fair_col_missed", _rate(g.missed_default_rate, language)),
                               ("fair_col_refused_good", _rate(g.refused_good_rate, language))):
                columns[key].append(value)
    # text columns even when empty: Tabulator picks each column's formatter from the first frame it gets
    return pd.DataFrame({t(key, language): pd.Series(values, dtype=object) for key, values in columns.items()})


def fairness_summary_html(figures: list[FairnessFigures], language: str) -> str:
    """One card per attribute and population: its disparate-impact ratio and equal-opportunity difference, the
    alerts past their limits highlighted, the groups too small to compare. Every value escaped."""
    cards = []
    for f in figures:
        title = (f"{_text(f'attr_{f.attribute}', language, f.attribute)} · "
                 f"{_text(f'pop_{f.population}', language, f.population)}")
        colon = " :" if language == "fr" else ":"
        lines = [f'<div class="title">{html.escape(title)}</div>']
        for key, value in (("metric_disparate_impact_ratio", f.disparate_impact_ratio),
                           ("metric_equal_opportunity_difference", f.equal_opportunity_difference)):
            text = f"{t(key, language)}{colon} {_number(value, language, 2)}"
            lines.append(f"<div>{html.escape(text)}</div>")
        for a in f.alerts:
            text = t("fair_alert", language, metric=_text(f"metric_{a.metric}", language, a.metric),
                     value=_number(a.value, language, 2), limit=_number(a.limit, language, 2))
            lines.append(f'<div class="alert-line">{html.escape(text)}</div>')
        if not f.alerts:
            lines.append(f'<div class="ok-line">{html.escape(t("fair_ok", language))}</div>')
        if f.small_groups:
            lines.append(f'<div class="note">{html.escape(t("fair_small", language, groups=", ".join(f.small_groups)))}'
                         f'</div>')
        css = "fairness-card alert" if f.alerts else "fairness-card"
        cards.append(f'<div class="{css}" data-attribute="{html.escape(f.attribute)}">{"".join(lines)}</div>')
    return f'<div class="fairness-summary">{"".join(cards)}</div>'


def fairness_limits(card: dict) -> tuple[float, float]:
    """The alert limits the model card's fairness figures were computed with (four-fifths rule, 0.1)."""
    for figures in (card.get("fairness") or {}).values():
        limits = figures.get("limits") if isinstance(figures, dict) else None
        if isinstance(limits, dict):
            return (float(limits.get("min_disparate_impact", 0.8)),
                    float(limits.get("max_equal_opportunity_difference", 0.1)))
    return 0.8, 0.1


# ------------------------------------------------------------------------------------------ monitoring
def months_frame(months: list[MonthFigures], language: str, labels: LabelDictionary) -> pd.DataFrame:
    """The monitoring table, one row per month, the newest first, as plain text; the error rate the model expects
    before outcomes arrive is headed as an estimate."""
    columns = [t("month", language), t("mon_col_period", language), t("applications", language),
               t("mon_col_acceptance", language), f'{t("psi", language)} {t("score_series", language).lower()}',
               t("mon_col_drifting", language), t("mon_col_outcomes", language), t("observed_default", language),
               t("realised_error", language), t("auc_series", language), t("expected_error", language)]
    rows = [[m.month, _text(f"split_{m.split}", language, m.split), fmt_number(m.applications, language),
             _rate(m.acceptance_rate, language), _number(m.score_psi, language),
             ", ".join(feature_label(labels, f, language) for f in m.drifting), fmt_number(m.outcomes, language),
             _rate(m.observed_default_rate, language), _rate(m.realised_error_rate, language),
             _number(m.auc, language), _rate(m.expected_error_rate, language)] for m in reversed(months)]
    return pd.DataFrame(rows, columns=columns, dtype=object)


def features_frame(months: list[MonthFigures], language: str, labels: LabelDictionary) -> pd.DataFrame:
    """One row per monitored feature, in `features_by_last_psi` order: its PSI in the last month and its highest."""
    rows = []
    for name in features_by_last_psi(months):
        last, highest = months[-1].feature_psi[name], max(m.feature_psi.get(name, 0.0) for m in months)
        status = "drift" if last >= PSI_ALERT else "moderate" if last >= PSI_MODERATE else "stable"
        rows.append({t("feature", language): feature_label(labels, name, language),
                     t("psi_last", language): _number(last, language),
                     t("psi_max", language): _number(highest, language),
                     t("status", language): t(f"status_{status}", language)})
    return pd.DataFrame(rows, columns=[t(k, language) for k in ("feature", "psi_last", "psi_max", "status")],
                        dtype=object)


def psi_grid(months: list[MonthFigures], language: str, labels: LabelDictionary):
    """(months, rows, psi): the score's PSI by month and each monitored feature's, `psi[row][month]`, the rows
    listed bottom first as the heat map's axis reads them: the score on top, then the feature drifting most last
    month. Given to the heat map as a grid: HoloViews then draws it without grouping a long frame by cell (which
    cost ~40 ms a draw)."""
    features = list(reversed(features_by_last_psi(months)))
    rows = [feature_label(labels, f, language) for f in features] + [t("score_series", language)]
    psi = [[m.feature_psi.get(f, 0.0) for m in months] for f in features]
    psi.append([math.nan if m.score_psi is None else m.score_psi for m in months])
    return [m.month for m in months], rows, np.array(psi, dtype=float).reshape(len(rows), len(months))


# the rates by month: (text key, colour, the model's estimate rather than a measure)
RATE_SERIES = (("observed_default", DEFAULTED, False), ("realised_error", REFUSED, False),
               ("auc_series", REPAID, False), ("expected_default", DEFAULTED, True), ("expected_error", REFUSED, True))


def rates_frame(months: list[MonthFigures], language: str) -> pd.DataFrame:
    """Long frame (month, series, rate, estimate): measured rates where outcomes are known, and the model's own
    estimates (before outcomes arrive), flagged as such."""
    nan = float("nan")
    rows = []
    for m in months:
        values = (m.observed_default_rate, m.realised_error_rate, m.auc, m.expected_default_rate, m.expected_error_rate)
        for (key, _, estimate), value in zip(RATE_SERIES, values):
            rows.append((m.month, t(key, language), nan if value is None else float(value), estimate))
    return pd.DataFrame(rows, columns=["month", "series", "rate", "estimate"])


def bin_names(drift: FeatureDrift, language: str, labels: LabelDictionary) -> list[str]:
    """The bins' names as the label dictionary writes the feature's values ("… – 0,23", "0,23 – 0,33", ...), then
    "missing"; a category by its label. Ranges without < or >: a DAYS_ feature reads as positive years."""
    if drift.kind == "categorical":
        names = [labels.format_value(drift.feature, c, language) for c in drift.categories]
    else:
        values = [labels.format_value(drift.feature, e, language) for e in drift.edges]
        ends = ["…", *values, "…"]
        names = [f"{a} – {b}" for a, b in zip(ends, ends[1:])]
    return [*names, t("missing_bin", language)]


def drift_frame(drift: FeatureDrift | None, language: str, labels: LabelDictionary) -> pd.DataFrame:
    """Long frame (bin, series, share in %) of the reference and compared distributions."""
    if drift is None:   # text bins even when empty: the chart's axis stays categorical when the data arrives
        return pd.DataFrame({"bin": pd.Series([], dtype=object), "series": pd.Series([], dtype=object),
                             "share": pd.Series([], dtype=float)})
    names = bin_names(drift, language, labels)
    reference, current = t("reference_series", language), t("current_series", language)
    rows = [(b, reference, 100 * r) for b, r in zip(names, drift.reference)]
    rows += [(b, current, 100 * c) for b, c in zip(names, drift.current)]
    return pd.DataFrame(rows, columns=["bin", "series", "share"])


# ------------------------------------------------------------------------------------------ performance
def confusion_html(f: PerformanceFigures | None, language: str) -> str:
    """The decisions at the threshold against the outcomes, the errors highlighted, and their cost."""
    if f is None:
        return ""
    n = lambda v: html.escape(fmt_number(v, language))  # noqa: E731
    head = html.escape(t("confusion", language, threshold=fmt_percent(f.threshold, language)))
    cost = html.escape(t("cm_cost", language, missed=fmt_number(f.cost_missed_default, language, 1),
                         refused=fmt_number(f.cost_refused_good, language, 1),
                         cost=fmt_number(f.business_cost, language, 3)))
    th = lambda key: f"<th>{html.escape(t(key, language))}</th>"  # noqa: E731
    return (f'<h4>{head}</h4><table class="confusion"><tr><th></th>{th("cm_refused")}{th("cm_accepted")}</tr>'
            f'<tr>{th("cm_defaulted")}<td>{n(f.refused_defaults)}</td>'
            f'<td class="error">{n(f.missed_defaults)}</td></tr>'
            f'<tr>{th("cm_repaid")}<td class="error">{n(f.refused_goods)}</td><td>{n(f.accepted_goods)}</td></tr>'
            f'</table><p class="note">{cost}</p>')


def performance_summary(f: PerformanceFigures | None, language: str) -> str:
    if f is None:
        return ""
    text = t("perf_summary", language, n=fmt_number(f.applications, language), d=fmt_number(f.defaults, language),
             auc=_number(f.roc_auc, language), ks=_number(f.ks, language), gini=_number(f.gini, language),
             brier=_number(f.brier, language, 4))
    return f'<p class="perf-summary">{html.escape(text)}</p>'


def curve_frame(f: PerformanceFigures | None, curve: str) -> pd.DataFrame:
    c = getattr(f, curve) if f is not None else None
    return pd.DataFrame({"x": [] if c is None else c.x, "y": [] if c is None else c.y})


# ------------------------------------------------------------------------------------------ the panels
class GovernanceView(pn.viewable.Viewer):
    """Fairness, drift by month (with a feature's two distributions), outcomes by month and performance, for
    analysts: four panels (`PANELS`), each a section of the analysts' page.

    Each panel's objects are built the first time the panel is asked for (`panel`, `fairness_panel`, ...), with
    the callbacks that update them: a page showing one panel pays for that one only."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        card = self.state.service.model_card()       # once: ~40 ms at full size (the card's summary is rebuilt)
        self.labels = card_labels(card)
        self._limits = fairness_limits(card)
        self._built: set[str] = set()
        self.notice = notice_alert(self.state.governance.param.notice, self.state.param.language)
        # the monthly charts' streams, a feature's distributions and the table of months: made with their panel
        self._month_pipes: dict[str, streams.Pipe] = {}
        self._drift_pipe = self.months_table = None
        gov = self.state.governance
        gov.param.watch(self._months_loaded, ["months"])
        gov.param.watch(self._send_drift, ["drift"])
        self.state.param.watch(self._monitoring_language, ["language"])

    # -------------------------------------------------------------- the objects of each panel
    def _build_fairness(self) -> None:
        gov, lang = self.state.governance, self.state.param.language
        di, eod = self._limits
        help_text = lambda l: t("fairness_help", l, di=fmt_number(di, l, 2), eod=fmt_number(eod, l, 2))  # noqa: E731
        self.fairness_help = pn.pane.HTML(pn.bind(lambda l: f'<p class="note">{html.escape(help_text(l))}</p>', lang),
                                          stylesheets=[CARD_CSS], sizing_mode="stretch_width")
        self.fairness_summary = pn.pane.HTML(pn.bind(fairness_summary_html, gov.param.fairness, lang),
                                             stylesheets=[CARD_CSS, GOVERNANCE_CSS], sizing_mode="stretch_width",
                                             css_classes=["fairness-summary-pane"], loading=gov.param.loading)
        self.fairness_table = pn.widgets.Tabulator(
            pn.bind(fairness_frame, gov.param.fairness, lang), show_index=False, disabled=True, sortable=False,
            selectable=False, pagination="local", page_size=12, layout="fit_data_stretch",
            sizing_mode="stretch_width", css_classes=["fairness-table"], stylesheets=[TABLE_CSS])

    def _build_drift(self) -> None:
        gov = self.state.governance
        loading = gov.param.loading
        self.psi_heatmap = pn.pane.HoloViews(self._streamed(self._psi_heatmap),
                                             sizing_mode="stretch_width", css_classes=["psi-heatmap"],
                                             linked_axes=False, loading=loading)
        # a feature's distributions: nothing to show before the figures arrive, drawn then (on the tick they arrive
        # on, after the page shows): the first draw of the panel does not pay for them
        self.drift_area = pn.Row(sizing_mode="stretch_width", min_height=CHART_HEIGHT + 40, css_classes=["drift-area"])
        if gov.months:
            self._build_distributions()

    def _build_distributions(self) -> None:
        """The table of features, the month compared and a feature's two distributions."""
        gov, lang = self.state.governance, self.state.param.language
        self.features_table = pn.widgets.Tabulator(
            pn.bind(features_frame, gov.param.months, lang, self.labels), show_index=False, disabled=True,
            sortable=False, selectable=False, pagination=None, height=300, layout="fit_columns",
            sizing_mode="stretch_width", css_classes=["drift-features-table"], stylesheets=[TABLE_CSS])
        self.features_table.on_click(self._feature_clicked)
        self.month_select = pn.widgets.Select(label=t("drift_month", self.state.language),
                                              options=self._month_options(), value=gov.month or "", width=260,
                                              css_classes=["drift-month"])
        self.month_select.param.watch(lambda e: setattr(gov, "month", e.new or None), "value")
        self.drift_title = pn.pane.HTML(pn.bind(self._drift_title, gov.param.drift, lang), stylesheets=[CARD_CSS],
                                        sizing_mode="stretch_width", css_classes=["drift-title"])
        self._drift_pipe = streams.Pipe(data=(gov.drift, self.state.language))
        self.drift_chart = pn.pane.HoloViews(hv.DynamicMap(self._drift_plot, streams=[self._drift_pipe]),
                                             sizing_mode="stretch_width", css_classes=["drift-chart"],
                                             linked_axes=False)
        self.drift_area.objects = [
            pn.Column(section_title("drift_features", lang, level=4), self.features_table, self.month_select,
                      width=520),
            pn.Column(self.drift_title, self.drift_chart, sizing_mode="stretch_width")]

    def _build_outcomes(self) -> None:
        gov, lang = self.state.governance, self.state.param.language
        self.rates_chart = pn.pane.HoloViews(self._streamed(self._rates_plot),
                                             sizing_mode="stretch_width", css_classes=["rates-chart"],
                                             linked_axes=False, loading=gov.param.loading)
        self.estimate_note = pn.pane.HTML(pn.bind(lambda l: f'<p class="note">{html.escape(t("estimate_note", l))}</p>',
                                                  lang), stylesheets=[CARD_CSS], sizing_mode="stretch_width")
        # the table of months: nothing to show before the figures arrive, drawn then
        self.months_area = pn.Column(sizing_mode="stretch_width", css_classes=["months-area"])
        if gov.months:
            self._build_months_table()

    def _build_months_table(self) -> None:
        gov, lang = self.state.governance, self.state.param.language
        self.months_table = pn.widgets.Tabulator(
            pn.bind(months_frame, gov.param.months, lang, self.labels), show_index=False, disabled=True,
            sortable=False, selectable=False, pagination="local", page_size=12, layout="fit_data_stretch",
            sizing_mode="stretch_width", css_classes=["months-table"], stylesheets=[TABLE_CSS])
        self.months_area.objects = [self.months_table]

    def _build_performance(self) -> None:
        gov = self.state.governance
        lang = self.state.param.language
        self.segment_select = pn.widgets.Select(label=t("segment", self.state.language), width=220,
                                                options=self._segment_options(), value=gov.segment,
                                                css_classes=["perf-segment"])
        self.segment_select.param.watch(lambda e: setattr(gov, "segment", e.new), "value")
        self.group_select = pn.widgets.Select.from_param(gov.param.group, label=t("group", self.state.language),
                                                         width=220, css_classes=["perf-group"])
        figures = pn.bind(lambda *_: gov.figures, gov.param.performance, gov.param.segment, gov.param.group)
        self._perf_sent = (gov.figures, self.state.language)
        self._perf_pipe = streams.Pipe(data=self._perf_sent)
        self.roc_chart = pn.pane.HoloViews(hv.DynamicMap(self._roc_plot, streams=[self._perf_pipe]),
                                           sizing_mode="stretch_width", css_classes=["roc-chart"], linked_axes=False,
                                           loading=gov.param.loading)
        self.pr_chart = pn.pane.HoloViews(hv.DynamicMap(self._pr_plot, streams=[self._perf_pipe]),
                                          sizing_mode="stretch_width", css_classes=["pr-chart"], linked_axes=False)
        self.reliability_chart = pn.pane.HoloViews(hv.DynamicMap(self._reliability_plot, streams=[self._perf_pipe]),
                                                   sizing_mode="stretch_width", css_classes=["reliability-chart"],
                                                   linked_axes=False)
        self.perf_summary = pn.pane.HTML(pn.bind(performance_summary, figures, lang), stylesheets=[GOVERNANCE_CSS],
                                         sizing_mode="stretch_width", css_classes=["perf-summary-pane"])
        self.confusion = pn.pane.HTML(pn.bind(confusion_html, figures, lang),
                                      stylesheets=[CARD_CSS, GOVERNANCE_CSS], css_classes=["confusion-pane"])
        gov.param.watch(self._segments_loaded, ["months"])   # the figures arrive together (GovernanceState.load)
        gov.param.watch(self._send_performance, ["performance", "segment", "group"])
        self.state.param.watch(self._performance_language, ["language"])

    # -------------------------------------------------------------- data streamed into the plots
    def _streamed(self, plot) -> hv.DynamicMap:
        """A monthly chart drawn once, the months and the language streamed in (`_send_months`): the figures
        arriving after the page shows and a language switch update the chart (its series, axes and legend
        relabelled in place), never draw it again."""
        pipe = self._month_pipes[plot.__name__] = streams.Pipe(data=(self.state.governance.months,
                                                                     self.state.language))
        return hv.DynamicMap(lambda data: plot(*data), streams=[pipe])

    def _send_months(self):
        for pipe in self._month_pipes.values():
            pipe.send((self.state.governance.months, self.state.language))

    def _send_drift(self, *events):
        if self._drift_pipe is not None:
            self._drift_pipe.send((self.state.governance.drift, self.state.language))

    def _send_performance(self, *events):
        """Once per change of what is shown (a segment's change also sets its group: one stream, not two), into
        the three charts with one recompute of the document's models."""
        data = (self.state.governance.figures, self.state.language)
        if data != self._perf_sent:
            self._perf_sent = data
            with pn.io.hold(freeze=True):
                self._perf_pipe.send(data)

    # -------------------------------------------------------------- choices
    def _months_loaded(self, *events):
        """The months arrived: streamed into the monthly charts drawn, the document's models recomputed once for all
        (Panel's `hold(freeze=True)`: each chart's update would otherwise walk every model of the page again); the
        parts that wait for them drawn."""
        months = self.state.governance.months
        with pn.io.hold(freeze=True):
            self._send_months()
            if "drift" in self._built:
                if self._drift_pipe is None:
                    if months:
                        self._build_distributions()
                else:
                    self.month_select.param.update(options=self._month_options(),
                                                   value=self.state.governance.month or "")
            if "outcomes" in self._built and self.months_table is None and months:
                self._build_months_table()

    def _segments_loaded(self, *events):
        self.segment_select.param.update(options=self._segment_options(), value=self.state.governance.segment)

    def _monitoring_language(self, *events):
        """The monthly charts and the distributions relabelled in place: streamed, not drawn again."""
        with pn.io.hold(freeze=True):
            self._send_months()
            if self._drift_pipe is None:
                return
            self.month_select.label = t("drift_month", self.state.language)
            self.month_select.param.update(options=self._month_options(), value=self.state.governance.month or "")
            self._send_drift()

    def _performance_language(self, *events):
        language = self.state.language
        with pn.io.hold(freeze=True):
            self.segment_select.label, self.group_select.label = t("segment", language), t("group", language)
            self._segments_loaded()
            self._send_performance()

    def _month_options(self) -> dict:
        gov, language = self.state.governance, self.state.language
        # "" for every new application: a Select shows no label for a None value
        return {t("all_new", language): "", **{m.month: m.month for m in gov.months}}

    def _segment_options(self) -> dict:
        gov, language = self.state.governance, self.state.language
        return {t(f"segment_{s}", language): s for s in gov.param.segment.objects}

    def _feature_clicked(self, event) -> None:
        features = features_by_last_psi(self.state.governance.months)
        if 0 <= event.row < len(features):
            self.state.governance.select_feature(features[event.row])

    def _drift_title(self, drift: FeatureDrift | None, language: str) -> str:
        if drift is None:
            return ""
        text = t("distribution_title", language, feature=feature_label(self.labels, drift.feature, language),
                 psi=_number(drift.psi, language))
        return f"<h4>{html.escape(text)}</h4>"

    # -------------------------------------------------------------- plots (HoloViews elements of the frames above)
    # A series is named by its text key, shown in the legend in the language (`legend_labels`): a streamed chart
    # matches the series of a new frame to those drawn by name, so the names must not change with the language.
    def _psi_heatmap(self, months, language):
        """The score's and each monitored feature's PSI by month, coloured by band: stable, moderate (>= 0.1), drift
        (>= 0.2: an alert)."""
        columns, rows, psi = psi_grid(months, language, self.labels)
        top = max(PSI_ALERT * 2, float(np.nanmax(psi, initial=0.0)))
        if not columns:   # one blank cell: axes of months and features from the first frame on
            columns, rows, psi = [""], [""], np.full((1, 1), math.nan)
        return hv.HeatMap((columns, rows, psi), [hv.Dimension("month", label=t("month", language)), "feature"],
                          hv.Dimension("psi", label="PSI")).opts(
            responsive=True, height=CHART_HEIGHT + 60, xrotation=45, ylabel="", colorbar=True,
            title=t("psi_heatmap", language),
            cmap=PSI_COLORS, color_levels=[0, PSI_MODERATE, PSI_ALERT, top], clim=(0, top), framewise=True, **TOOLS)

    def _rates_plot(self, months, language):
        """Measured rates (solid) and the model's estimates before outcomes arrive (dashed): the same five series
        with or without months (a streamed overlay keeps the series of its first frame). HoloViews curves built
        directly: ~40 % cheaper to draw than hvplot's grouped lines for these five series."""
        frame = rates_frame(months, language)
        if frame.empty:   # one blank month: the axis is one of months from the first frame on
            frame = pd.DataFrame({"month": "", "series": [t(key, language) for key, _, _ in RATE_SERIES],
                                  "rate": math.nan, "estimate": [e for _, _, e in RATE_SERIES]})
        month = hv.Dimension("month", label=t("month", language))
        rate = hv.Dimension("rate", label=t("rate_axis", language))
        curves = [hv.Curve(frame[frame["series"] == t(key, language)], month, rate, label=key).opts(
                      color=color, line_dash="dashed" if estimate else "solid")
                  for key, color, estimate in RATE_SERIES]
        return hv.Overlay(curves).opts(
            hv.opts.Curve(responsive=True, height=CHART_HEIGHT, xrotation=45, framewise=True, **TOOLS),
            hv.opts.Overlay(title=t("outcomes_chart", language), legend_position="top_left", responsive=True,
                            legend_labels=_legend([key for key, _, _ in RATE_SERIES], language)))

    def _drift_plot(self, data):
        drift, language = data
        frame = drift_frame(drift, language, self.labels)
        colors = {t("reference_series", language): POPULATION, t("current_series", language): DEFAULTED}
        if frame.empty:   # one empty bin: a categorical axis from the first frame on (a streamed plot keeps its axis)
            frame = pd.DataFrame({"bin": ["", ""], "series": list(colors), "share": [0.0, 0.0]})
        # one group of two bars per bin, the series named in the legend rather than under each bar
        return hv.Bars(frame, [hv.Dimension("bin", label=t("bin", language)), "series"],
                       hv.Dimension("share", label=t("share_axis", language))).opts(
            multi_level=False, show_legend=True, legend_position="top_right", framewise=True, xrotation=45,
            responsive=True, height=CHART_HEIGHT, cmap=colors, **TOOLS)   # a colour per series, in the legend

    @staticmethod
    def _diagonal():
        """y = x, dotted: an annotation (no data source, no hover) rather than a curve."""
        return hv.Slope(1, 0).opts(color=POPULATION, line_dash="dotted")

    def _roc_plot(self, data):
        figures, language = data
        curve = hv.Curve(curve_frame(figures, "roc"), hv.Dimension("x", label=t("fpr", language)),
                         hv.Dimension("y", label=t("tpr", language))).opts(color=REPAID, responsive=True,
                                                                             height=CHART_HEIGHT, **TOOLS)
        return (curve * self._diagonal()).opts(title=t("roc", language), responsive=True)

    def _pr_plot(self, data):
        figures, language = data
        return hv.Curve(curve_frame(figures, "pr"), hv.Dimension("x", label=t("recall", language)),
                        hv.Dimension("y", label=t("precision", language))).opts(
            color=DEFAULTED, title=t("pr", language), responsive=True, height=CHART_HEIGHT, framewise=True, **TOOLS)

    def _reliability_plot(self, data):
        figures, language = data
        frame = curve_frame(figures, "calibration")
        hi = max([0.05, *frame["x"], *frame["y"]])
        dims = (hv.Dimension("x", label=t("predicted", language)), hv.Dimension("y", label=t("observed", language)))
        line = hv.Curve(frame, *dims).opts(color=ACCEPTED, responsive=True, height=CHART_HEIGHT, **TOOLS)
        points = hv.Scatter(frame, *dims).opts(color=ACCEPTED, size=5, responsive=True, height=CHART_HEIGHT, **TOOLS)
        return (line * points * self._diagonal()).opts(title=t("reliability", language), xlim=(0, hi), ylim=(0, hi),
                                                       framewise=True, responsive=True)

    # -------------------------------------------------------------- layout
    def _once(self, name: str) -> None:
        if name not in self._built:
            self._built.add(name)
            getattr(self, f"_build_{name}")()

    def fairness_panel(self) -> pn.Column:
        self._once("fairness")
        lang = self.state.param.language
        return pn.Column(section_title("fairness", lang), self.fairness_help, self.fairness_summary,
                         self.fairness_table, sizing_mode="stretch_width", css_classes=["fairness-panel"])

    def drift_panel(self) -> pn.Column:
        self._once("drift")
        lang = self.state.param.language
        return pn.Column(section_title("drift_panel", lang), self.psi_heatmap, self.drift_area,
                         sizing_mode="stretch_width", css_classes=["drift-panel"])

    def outcomes_panel(self) -> pn.Column:
        self._once("outcomes")
        lang = self.state.param.language
        return pn.Column(section_title("outcomes_panel", lang), self.rates_chart, self.estimate_note,
                         self.months_area, sizing_mode="stretch_width", css_classes=["outcomes-panel"])

    def performance_panel(self) -> pn.Column:
        self._once("performance")
        lang = self.state.param.language
        return pn.Column(section_title("performance", lang),
                         pn.Row(self.segment_select, self.group_select), self.perf_summary,
                         pn.Row(self.roc_chart, self.pr_chart, self.reliability_chart, sizing_mode="stretch_width"),
                         self.confusion, sizing_mode="stretch_width", css_classes=["performance-panel"])

    PANELS = ("fairness", "drift", "outcomes", "performance")

    def panel(self, name: str) -> pn.Column:
        """One of the panels by name (`PANELS`): "fairness", "drift", "outcomes" or "performance"."""
        if name not in self.PANELS:
            raise ValueError(f"no analyst panel {name!r}: one of {', '.join(self.PANELS)}")
        return getattr(self, f"{name}_panel")()

    def __panel__(self):
        return pn.Column(self.notice, *(self.panel(name) for name in self.PANELS), sizing_mode="stretch_width",
                         css_classes=["governance"])
