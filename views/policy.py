"""The threshold policy panel (analysts, issue 13): what each refusal threshold would do on the labelled
applications (acceptance, expected loss, error rates, fairness), the served threshold and the proposed one marked,
the two compared in a table, the proposed one adopted with a reason, and the history of the adopted thresholds.

Display only: every number comes from `PolicyState` (the service's `threshold_simulation` and
`threshold_history`). Tables get plain text; HTML panes escape every value. The charts are `hv.DynamicMap`s fed
by a `streams.Pipe`: a new simulation (about 50 thresholds) is streamed into the figures, which are not drawn again
(redrawing the three cost ~0.8 s of the server's time at each input, streaming a fraction of it). One chart is
shown at a time (rates, expected loss, fairness: `views.sections.Sections`), each drawn the first time it is chosen.
"""

from __future__ import annotations

import html
import math

import holoviews as hv
import pandas as pd
import panel as pn
import param
from holoviews import streams

from scoring.contracts import ThresholdChange, ThresholdSimulation

from .charts import ACCEPTED, DEFAULTED, POPULATION, REFUSED, REPAID
from .common import CARD_CSS, TABLE_CSS, notice_alert, section_title
from .i18n import TEXTS, fmt_number, fmt_percent, t
from .sections import Sections
from .state import DashboardState, PolicyState

CHART_HEIGHT = 280
FOUR_FIFTHS = 0.8            # the disparate-impact ratio the four-fifths rule asks for
TOOLS = dict(default_tools=["hover"], toolbar=None)
PALETTE = ["#2b6cb0", "#dd6b20", "#2f855a", "#805ad5", "#b7791f", "#319795"]
PROPOSED = "#c53030"

POLICY_CSS = """
table.policy-comparison { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
table.policy-comparison th, table.policy-comparison td { border: 1px solid #e2e5ea; padding: 4px 10px; }
table.policy-comparison td { text-align: right; }
table.policy-comparison td.figure { text-align: left; }
"""

RATES = (("acceptance_rate", "policy_acceptance", ACCEPTED), ("missed_default_rate", "policy_missed", DEFAULTED),
         ("refused_good_rate", "policy_refused_good", REFUSED), ("default_rate_accepted", "policy_default_accepted",
                                                                 POPULATION))


def _attribute(name: str, language: str) -> str:
    key = f"attr_{name}"
    return t(key, language) if key in TEXTS else name


def _threshold(value: float, language: str) -> str:
    return fmt_number(value, language, 4)


def curves_frame(sim: ThresholdSimulation | None, language: str) -> pd.DataFrame:
    """The simulation's curve, long: threshold, series (translated), value, kind ("rate", "loss", "fairness")."""
    rows = []
    for point in (sim.curve if sim is not None else []):
        for name, key, _ in RATES:
            rows.append((point.threshold, t(key, language), getattr(point, name), "rate"))
        rows.append((point.threshold, t("policy_loss", language), point.expected_loss, "loss"))
        for attribute, value in point.disparate_impact.items():
            rows.append((point.threshold, t("policy_di", language, attribute=_attribute(attribute, language)), value,
                         "fairness"))
        for attribute, value in point.equal_opportunity_difference.items():
            rows.append((point.threshold, t("policy_eod", language, attribute=_attribute(attribute, language)), value,
                         "fairness"))
    frame = pd.DataFrame(rows, columns=["threshold", "series", "value", "kind"])
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


def _value(key: str, value: float | None, language: str) -> str:
    if value is None or not math.isfinite(value):
        return t("na", language)
    if key == "policy_loss" or key.startswith(("policy_di", "policy_eod")):
        return fmt_number(value, language, 3)
    return fmt_percent(value, language)


def comparison_html(state: PolicyState, language: str) -> str:
    """The figures at the served threshold and at the proposed one, as an escaped HTML table."""
    sim = state.simulation
    if sim is None:
        return ""
    head = (f"<tr><th>{html.escape(t('policy_col_figure', language))}</th>"
            f"<th>{html.escape(t('policy_col_current', language, t=_threshold(sim.current_threshold, language)))}</th>"
            f"<th>{html.escape(t('policy_col_proposed', language, t=_threshold(sim.proposed_threshold, language)))}"
            f"</th></tr>")
    body = []
    for key, current, proposed in state.comparison:
        base, _, attribute = key.partition(":")
        label = t(base, language, attribute=_attribute(attribute, language)) if attribute else t(base, language)
        body.append(f'<tr><td class="figure">{html.escape(label)}</td><td>{html.escape(_value(key, current, language))}'
                    f'</td><td>{html.escape(_value(key, proposed, language))}</td></tr>')
    return f'<table class="policy-comparison">{head}{"".join(body)}</table>'


def history_frame(history: list[ThresholdChange], language: str) -> pd.DataFrame:
    """The adopted thresholds, newest first, as plain text."""
    def origin(c: ThresholdChange) -> str:
        if c.target_acceptance is not None:
            return t("policy_origin_target", language, target=fmt_percent(c.target_acceptance, language))
        if c.cost_missed_default is not None or c.cost_refused_good is not None:
            return t("policy_origin_costs", language, missed=_number(c.cost_missed_default, language),
                     refused=_number(c.cost_refused_good, language))
        return ""

    columns = {"policy_col_at": [c.at for c in history],
               "policy_col_version": [c.model_version for c in history],
               "policy_col_threshold": [_threshold(c.threshold, language) for c in history],
               "policy_col_previous": [_threshold(c.previous, language) for c in history],
               "policy_col_user": [c.user for c in history],
               "policy_col_reason": [c.reason for c in history],
               "policy_col_origin": [origin(c) for c in history]}
    # object columns, also when empty: Tabulator types its columns from the first frame it gets
    return pd.DataFrame({t(k, language): v for k, v in columns.items()}, dtype=object)


def _number(value: float | None, language: str) -> str:
    return t("na", language) if value is None else fmt_number(value, language, 2)


class PolicyView(pn.viewable.Viewer):
    """The threshold policy panel of the analyst page, over its own `PolicyState` (loaded after the page shows)."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        # loaded at once: the simulation (cached by the service, computed when it starts) decides the charts'
        # series, and a chart streamed into cannot gain series in the browser
        self.policy = policy = PolicyState(self.state.service)
        lang = self.state.param.language
        language = self.state.language
        self.title = section_title("policy", lang, loading=policy.param.loading)
        self.help = pn.pane.HTML(pn.bind(self._help, policy.param.simulation, lang), stylesheets=[CARD_CSS],
                                 sizing_mode="stretch_width", css_classes=["policy-help"])
        self.mode = pn.widgets.RadioButtonGroup(options=self._mode_options(language), value=policy.mode,
                                                css_classes=["policy-mode"], color="light")
        self.mode.param.watch(lambda e: setattr(policy, "mode", e.new), "value")
        self.cost_missed = pn.widgets.FloatInput.from_param(policy.param.cost_missed_default, width=200, step=0.5,
                                                            label=t("policy_cost_missed", language),
                                                            css_classes=["policy-cost-missed"])
        self.cost_refused = pn.widgets.FloatInput.from_param(policy.param.cost_refused_good, width=200, step=0.5,
                                                             label=t("policy_cost_refused", language),
                                                             css_classes=["policy-cost-refused"])
        self.target = pn.widgets.FloatInput.from_param(policy.param.target_acceptance, width=200, step=0.01,
                                                       label=t("policy_target", language),
                                                       css_classes=["policy-target"])
        self.marks_legend = pn.pane.HTML(pn.bind(self._marks_legend, policy.param.simulation, lang),
                                         stylesheets=[CARD_CSS], css_classes=["policy-marks"])
        self._sent = (policy.simulation, language)
        self._pipe = streams.Pipe(data=self._sent)
        self.rates_chart = pn.pane.HoloViews(hv.DynamicMap(self._rates_plot, streams=[self._pipe]),
                                             sizing_mode="stretch_width", css_classes=["policy-rates-chart"],
                                             linked_axes=False)
        self.loss_chart = pn.pane.HoloViews(hv.DynamicMap(self._loss_plot, streams=[self._pipe]),
                                            sizing_mode="stretch_width", css_classes=["policy-loss-chart"],
                                            linked_axes=False)
        self.fairness_chart = pn.pane.HoloViews(hv.DynamicMap(self._fairness_plot, streams=[self._pipe]),
                                                sizing_mode="stretch_width", css_classes=["policy-fairness-chart"],
                                                linked_axes=False)
        policy.param.watch(self._send, ["simulation"])
        # one chart at a time, each drawn when first chosen: the three drawn together cost ~330 ms of the server's
        # time (13 curves), over the panel's budget (issue 13: 300 ms)
        self.charts = Sections({"rates": lambda: self.rates_chart, "loss": lambda: self.loss_chart,
                                "fairness": lambda: self.fairness_chart}, state=self.state, prefix="policy_chart_",
                               css="policy-charts")
        self.comparison = pn.pane.HTML(pn.bind(lambda _, l: comparison_html(policy, l), policy.param.simulation, lang),
                                       stylesheets=[POLICY_CSS], css_classes=["policy-comparison-pane"])
        self.reason = pn.widgets.TextAreaInput.from_param(policy.param.reason, label=t("policy_reason", language),
                                                          max_length=2_000, rows=2, sizing_mode="stretch_width",
                                                          css_classes=["policy-reason"])
        self.adopt = pn.widgets.Button(label=t("policy_adopt", language), color="primary",
                                       css_classes=["policy-adopt"])
        self.adopt.on_click(lambda event: policy.adopt())
        self.notice = notice_alert(policy.param.notice, lang)
        self.history_title = section_title("policy_history", lang, level=4)
        self.history = pn.widgets.Tabulator(
            pn.bind(history_frame, policy.param.history, lang), show_index=False, disabled=True, sortable=False,
            selectable=False, pagination="local", page_size=10, layout="fit_data_stretch",
            sizing_mode="stretch_width", css_classes=["policy-history"], stylesheets=[TABLE_CSS])
        self.history_empty = pn.pane.HTML(
            pn.bind(lambda l: f'<p class="note">{html.escape(t("policy_history_empty", l))}</p>', lang),
            visible=pn.bind(lambda h: not h, policy.param.history), stylesheets=[CARD_CSS],
            css_classes=["policy-history-empty"])
        self.state.param.watch(self._language_changed, ["language"])

    def _send(self, *events):
        """Stream the simulation into the three charts (once per change of what they show)."""
        data = (self.policy.simulation, self.state.language)
        if data != self._sent:
            self._sent = data
            self._pipe.send(data)

    # -------------------------------------------------------------- texts
    @staticmethod
    def _mode_options(language: str) -> dict:
        return {t("policy_mode_costs", language): "costs", t("policy_mode_target", language): "target"}

    def _language_changed(self, *events):
        language = self.state.language
        self.mode.options = self._mode_options(language)
        self.cost_missed.label, self.cost_refused.label = t("policy_cost_missed", language), t("policy_cost_refused",
                                                                                               language)
        self.target.label, self.reason.label = t("policy_target", language), t("policy_reason", language)
        self.adopt.label = t("policy_adopt", language)
        self._send()

    @staticmethod
    def _help(sim: ThresholdSimulation | None, language: str) -> str:
        if sim is None:
            return ""
        text = t("policy_help", language, n=fmt_number(sim.applications, language),
                 current=_threshold(sim.current_threshold, language),
                 source=t(f"policy_source_{sim.threshold_source}", language)
                 if f"policy_source_{sim.threshold_source}" in TEXTS else sim.threshold_source)
        return f'<p class="note">{html.escape(text)}</p>'

    # -------------------------------------------------------------- charts
    def _plot(self, sim, language, kind: str, title_key: str, ylabel: str, colors, legend="top_right", extra=()):
        """One curve per series of `kind` (HoloViews curves built directly: hvplot's grouped lines cost ~2x more),
        the served and proposed thresholds as vertical lines."""
        frame = curves_frame(sim, language)
        frame = frame[frame["kind"] == kind]
        axes = dict(responsive=True, height=CHART_HEIGHT, xlabel=t("policy_threshold_axis", language), ylabel=ylabel,
                    title=t(title_key, language), **TOOLS)
        if frame.empty:
            return hv.Curve([]).opts(**axes)
        curves = [hv.Curve((group["threshold"].to_numpy(), group["value"].to_numpy()), "threshold", "value",
                           label=series) for series, group in frame.groupby("series", sort=False)]
        # one option call for the whole overlay: an `.opts` per curve doubled the cost of a redraw
        return hv.Overlay([*curves, *self._marks(sim, language), *extra]).opts(
            hv.opts.Curve(color=hv.Cycle(list(colors)), line_width=2),
            hv.opts.Overlay(legend_position=legend, **axes))

    @staticmethod
    def _marks(sim: ThresholdSimulation | None, language: str) -> list:
        if sim is None:
            return []
        return [hv.VLine(sim.current_threshold).opts(color=POPULATION, line_dash="dashed", line_width=2),
                hv.VLine(sim.proposed_threshold).opts(color=PROPOSED, line_width=2)]

    def _rates_plot(self, data):
        sim, language = data
        return self._plot(sim, language, "rate", "policy_curves", t("rate_axis", language), [c for _, _, c in RATES])

    def _loss_plot(self, data):
        sim, language = data
        return self._plot(sim, language, "loss", "policy_loss_chart", t("policy_loss", language), [REPAID])

    def _fairness_plot(self, data):
        sim, language = data
        four_fifths = hv.HLine(FOUR_FIFTHS).opts(color=REFUSED, line_dash="dotted", line_width=1)
        return self._plot(sim, language, "fairness", "policy_fairness_chart", "", PALETTE, legend="right",
                          extra=[four_fifths])

    @staticmethod
    def _marks_legend(sim: ThresholdSimulation | None, language: str) -> str:
        """What the two vertical lines of the charts are, with their values."""
        if sim is None:
            return ""
        current = f"{t('policy_current', language)} {_threshold(sim.current_threshold, language)}"
        proposed = f"{t('policy_proposed', language)} {_threshold(sim.proposed_threshold, language)}"
        return (f'<p class="note"><span style="color:{POPULATION}">- - -</span> {html.escape(current)} &nbsp; '
                f'<span style="color:{PROPOSED}">———</span> {html.escape(proposed)}</p>')

    def __panel__(self):
        return pn.Column(
            self.title, self.help,
            pn.Row(self.mode, self.cost_missed, self.cost_refused, self.target),
            self.notice, self.marks_legend,
            self.charts, self.comparison,
            pn.Row(self.reason, self.adopt, sizing_mode="stretch_width"),
            self.history_title, self.history_empty, self.history,
            sizing_mode="stretch_width", css_classes=["policy-panel"])
