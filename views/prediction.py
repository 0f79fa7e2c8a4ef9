"""The centre: why this score (waterfall), the client against the population, debt capacity.

Each plot is a `hv.DynamicMap` fed by a `streams.Pipe`; a client switch sends new data into the
waterfall and moves the client markers, it never rebuilds a figure.
"""

from __future__ import annotations

import html
import math

import holoviews as hv
import numpy as np
import panel as pn
import param
from bokeh.models import NumeralTickFormatter
from holoviews import streams

from scoring.contracts import DebtCapacity, Explanation, FeatureDistribution, RatioComparison
from scoring.labels import DAYS_PER_MONTH, DAYS_PER_YEAR
from scoring.labels import current as current_labels

from .charts import (ACCEPTED, CLIENT, DEFAULTED, POPULATION, REFUSED, REPAID, TOOLBAR, ClientMarker, DrawnPlots,
                     nice_ticks)
from .common import CARD_CSS
from .i18n import LANGUAGES, LabelDictionary, feature_label, fmt_number, fmt_percent, labels_for, t
from .state import DashboardState


WATERFALL_HEIGHT, COMPARISON_HEIGHT, DEBT_HEIGHT = 400, 300, 240
#: the ratios of `DebtCapacity` shown, in this order (each needs the client files' role of the same name)
RATIOS = ("debt_ratio", "credit_income_ratio")


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


# ------------------------------------------------------------------------------------------ waterfall
def waterfall_table(explanation: Explanation, n_features: int, language: str,
                    labels: LabelDictionary | None = None) -> dict[str, list]:
    """Rows of the waterfall, bottom to top: the average application (a bar from 0), the other
    features, the ten strongest contributions (the strongest last), then this client (a bar from 0).

    Each bar goes from the probability before the feature is taken into account to the probability
    after it: SHAP values add up in log-odds, so the chain ends at the client's score. A feature reads
    as the label dictionary says ("Âge = 32,9 ans", "Type de contrat = Prêt personnel").
    """
    labels = labels if labels is not None else current_labels()
    items = [(f"{feature_label(labels, c.feature, language)} = {labels.format_value(c.feature, c.value, language)}",
              c.contribution) for c in explanation.contributions]
    n_others = max(n_features - len(items), 0)
    if n_others and explanation.others:
        items.append((t("others", language, n=n_others), explanation.others))
    items.reverse()                                   # Bokeh draws the first factor at the bottom
    margin = explanation.base_value
    base = 100 * _sigmoid(margin)
    table = {"feature": [t("average_application", language)], "start": [0.0], "end": [base],
             "contribution": [0.0], "color": [POPULATION]}
    for name, contribution in items:
        table["feature"].append(name)
        table["start"].append(100 * _sigmoid(margin))
        margin += contribution
        table["end"].append(100 * _sigmoid(margin))
        table["contribution"].append(round(contribution, 4))
        table["color"].append(REFUSED if contribution > 0 else ACCEPTED)
    final = 100 * _sigmoid(margin)
    for column, value in (("feature", t("this_client", language)), ("start", 0.0), ("end", final),
                          ("contribution", 0.0), ("color", CLIENT)):
        table[column].append(value)
    return table


class ExplanationView(pn.viewable.Viewer):
    """Waterfall of the client's local explanation, in business words with the client's values.

    The figure is drawn by HoloViews from a `Pipe` (first render, language switch). A client switch
    streams the new rows straight into the figure's data source and category axis: HoloViews
    re-renders hold the Bokeh document frozen and recompute its whole model graph on release
    (tens of ms for this page), which a switch cannot afford.
    """

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        card = self.state.service.model_card()
        self.labels = labels_for(self.state.service)
        self._n_features = len(card.get("features", []))
        self._threshold = float(card.get("threshold", 0.5))
        self.threshold = ClientMarker(color=REFUSED, dash="dotted")
        self._drawn = DrawnPlots()                             # the HoloViews plots showing the waterfall
        # locale tick labels (2,5 / 2.5) from a formatter: fixed tick positions would cost a new ticker per client
        self._formatters = {lang: NumeralTickFormatter(format="0.[0]", language=lang) for lang in LANGUAGES}
        self._pipe = streams.Pipe(data=self._payload())
        self.plot = pn.pane.HoloViews(hv.DynamicMap(self._plot, streams=[self._pipe]), sizing_mode="stretch_width",
                                      css_classes=["waterfall"], linked_axes=False)
        self.help = pn.pane.HTML(pn.bind(lambda language: f'<p class="note">{t("explanation_help", language)}</p>',
                                         self.state.param.language),
                                 stylesheets=[CARD_CSS], sizing_mode="stretch_width")
        self.state.client.param.watch(self._update, ["explanation"])
        self.state.param.watch(self._update, ["language"])

    def _payload(self):
        client = self.state.client
        threshold = client.file.score.threshold if client.file is not None else self._threshold
        return client.explanation, threshold, self.state.language

    def _update(self, *events):
        if any(e.name == "language" for e in events) or not self._drawn:
            self._pipe.send(self._payload())
            return
        explanation, threshold, language = self._payload()
        table, hi = self._table(explanation, threshold, language)
        self.threshold.move(100 * threshold)
        for plot in self._drawn:
            plot.handles["source"].data = table
            plot.handles["y_range"].factors = table["feature"]
            plot.handles["x_range"].update(start=0.0, end=hi)

    def _table(self, explanation, threshold: float, language: str) -> tuple[dict[str, list], float]:
        if explanation is None:
            table = {"feature": [t("average_application", language), t("this_client", language)],
                     "start": [0.0, 0.0], "end": [0.0, 0.0], "contribution": [0.0, 0.0],
                     "color": [POPULATION, CLIENT]}
        else:
            table = waterfall_table(explanation, self._n_features, language, self.labels)
        hi = max(table["start"] + table["end"] + [100 * threshold])
        return table, min(hi + max(hi * 0.05, 0.5), 100.0)

    def _plot(self, data):
        explanation, threshold, language = data
        table, hi = self._table(explanation, threshold, language)
        axis = t("probability_axis", language)
        self.threshold.move(100 * threshold)
        return hv.Segments(table, kdims=[hv.Dimension("start", label=axis), "feature", "end", "feature"],
                           vdims=[hv.Dimension("contribution", label=t("contribution", language)), "color"]).opts(
            color="color", line_width=16, xlim=(0.0, hi), xformatter=self._formatters[language], xlabel=axis,
            ylabel="", framewise=True, responsive=True, height=WATERFALL_HEIGHT,
            hooks=[self.threshold.hook, self._drawn.hook], **TOOLBAR)

    def __panel__(self):
        chart = pn.Column(self.plot, sizing_mode="stretch_width",   # no empty chart before a client
                          visible=pn.bind(lambda e: e is not None, self.state.client.param.explanation))
        return pn.Column(self.help, chart, sizing_mode="stretch_width")


# ------------------------------------------------------------------------------------------ comparison
_DAYS_PER = {"years": DAYS_PER_YEAR, "months": DAYS_PER_MONTH, "days": 1.0}
_UNIT_TEXTS = {"years": "in_years", "months": "in_months", "days": "in_days"}


def display_scale(labels: LabelDictionary, feature: str) -> float:
    """From a feature's stored values to the comparison's x axis: days before the application (negative
    in the data) read as positive years, months or days, as the dictionary shows them; 1 otherwise."""
    if labels.kind(feature) == "days":
        return -1.0 / _DAYS_PER.get(labels.unit(feature) or "years", DAYS_PER_YEAR)
    return 1.0


def axis_title(labels: LabelDictionary, feature: str, language: str) -> str:
    """A feature's label with the unit of its axis: "Âge de la voiture (ans)", "Montant du prêt (EUR)"."""
    name, kind, unit = feature_label(labels, feature, language), labels.kind(feature), labels.unit(feature)
    if kind in ("days", "years", "months"):
        titled = t(_UNIT_TEXTS.get(unit or kind, "in_years"), language, label=name)
        return name if titled[len(name):] in name else titled     # "Âge (ans)" says it already
    if kind == "amount" and unit:
        return f"{name} ({unit})"
    return name


def tick_format(labels: LabelDictionary, key: str, language: str):
    """How an axis of `key`'s values is labelled: a ratio as a percentage, anything else as a number."""
    if labels.kind(key) == "ratio":
        return lambda v, d: fmt_percent(v, language, max(d - 2, 0))
    return lambda v, d: fmt_number(v, language, d)


def share_histograms(dist: FeatureDistribution, scale: float = 1.0) -> tuple[np.ndarray, dict[str, np.ndarray], list]:
    """Bin edges (times `scale`, see `display_scale`) and each outcome's share of applications per bin (%);
    categories become positions 0..k."""
    h = dist.histogram
    if h.categories:
        edges = np.arange(len(h.categories) + 1, dtype=float)
    else:
        edges = np.asarray(h.edges, dtype=float) * scale
    shares = {}
    for name, counts in h.counts.items():
        c = np.asarray(counts, dtype=float)
        shares[name] = 100 * c / c.sum() if c.sum() else c
    if not h.categories and scale < 0:           # a flipped axis: bins from left to right again
        edges = edges[::-1]
        shares = {name: s[::-1] for name, s in shares.items()}
    return edges, shares, list(h.categories)


def client_position(dist: FeatureDistribution, scale: float = 1.0) -> float | None:
    """Where the client's marker goes on the histogram's x axis."""
    value = dist.client_value
    if value is None:
        return None
    if dist.histogram.categories:
        cats = dist.histogram.categories
        return cats.index(value) + 0.5 if value in cats else None
    try:
        return float(value) * scale
    except (TypeError, ValueError):              # text where a number was expected: no marker
        return None


def comparison_html(dist: FeatureDistribution | None, language: str, labels: LabelDictionary | None = None) -> str:
    """The client's value of the compared feature and their percentile (nothing without a client).

    The value reads as the dictionary says (a category translated, days as years) and is escaped: a
    category is text from the client files."""
    if dist is None or dist.client_id is None:
        return ""
    if dist.client_value is None:
        return f'<p class="note">{t("client_missing_value", language)}</p>'
    labels = labels if labels is not None else current_labels()
    value = html.escape(labels.format_value(dist.feature, dist.client_value, language))
    text = t("client_value", language, value=f"<b>{value}</b>")
    if dist.client_percentile is not None:
        pct = float(dist.client_percentile)
        # days before the application: a lower value is a longer time (the axis shows positive durations)
        key = "percentile_longer" if labels.kind(dist.feature) == "days" else "percentile"
        text += " · " + t(key, language, pct=fmt_percent(pct / 100, language),
                          rank=f'<b class="rank">{int(round(pct))}</b>')
    return f'<p class="client-value" data-feature="{html.escape(str(dist.feature))}">{text}</p>'


class ComparisonView(pn.viewable.Viewer):
    """One of the model's top five features: repaid vs defaulted distributions, the client marked."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        client, lang = self.state.client, self.state.param.language
        self.labels = labels_for(self.state.service)
        self.marker = ClientMarker()
        self._pipe = streams.Pipe(data=(client.comparison, self.state.language))
        self._shown = (client.comparison.feature if client.comparison else None, self.state.language)
        self.selector = pn.widgets.Select.from_param(
            client.param.feature, description=None, label=pn.bind(t, "compared_feature", lang),
            options=pn.bind(self._options, lang), sizing_mode="stretch_width", css_classes=["feature-select"])
        self.plot = pn.pane.HoloViews(hv.DynamicMap(self._plot, streams=[self._pipe]),
                                      sizing_mode="stretch_width", css_classes=["comparison"], linked_axes=False)
        self.text = pn.pane.HTML(pn.bind(comparison_html, client.param.comparison, lang, self.labels),
                                 stylesheets=[CARD_CSS], sizing_mode="stretch_width", css_classes=["percentile"])
        self.marker.move(self._position(client.comparison))
        client.param.watch(self._update, ["comparison"])
        self.state.param.watch(self._update, ["language"])

    def _options(self, language: str) -> dict[str, str]:
        return {feature_label(self.labels, f.feature, language): f.feature for f in self.state.client.top_features}

    def _position(self, dist: FeatureDistribution | None) -> float | None:
        return client_position(dist, display_scale(self.labels, dist.feature)) if dist is not None else None

    def _update(self, *events):
        dist, language = self.state.client.comparison, self.state.language
        key = (dist.feature if dist is not None else None, language)
        if key != self._shown:            # a new feature or language: new histograms; a new client: marker only
            self._shown = key
            self._pipe.send((dist, language))
        self.marker.move(self._position(dist))

    def _plot(self, data):
        dist, language = data
        if dist is None:   # the marker's hook runs at the first render, so its line is in the page from the start
            # (and the legend, labelled, so that it is part of the first render too)
            return (hv.Histogram(([0, 1], [0]), label=t("repaid", language)).opts(
                hooks=[self.marker.hook], responsive=True, height=COMPARISON_HEIGHT, **TOOLBAR)
                    * hv.Histogram(([0, 1], [0]), label=t("defaulted", language))).opts(
                legend_position="top", legend_cols=2)
        labels = self.labels
        edges, shares, categories = share_histograms(dist, display_scale(labels, dist.feature))
        name = axis_title(labels, dist.feature, language)
        if categories:
            ticks = [(i + 0.5, labels.category_label(dist.feature, c, language)) for i, c in enumerate(categories)]
        else:
            ticks = nice_ticks(edges[0], edges[-1], tick_format(labels, dist.feature, language))
        ymax = max([float(s.max()) for s in shares.values() if s.size] + [1.0])
        yticks = nice_ticks(0, ymax, lambda v, d: fmt_number(v, language, d), n=4)
        axis = hv.Dimension("x", label=name)
        share = hv.Dimension("share", label=t("share_axis", language))
        common = dict(xticks=ticks, yticks=yticks, xlabel=name, ylabel=t("share_axis", language),
                      line_width=1, framewise=True, responsive=True, height=COMPARISON_HEIGHT, **TOOLBAR)
        repaid = hv.Histogram((edges, shares.get("repaid", np.zeros(len(edges) - 1))), kdims=[axis], vdims=[share],
                              label=t("repaid", language)).opts(color=REPAID, alpha=0.45, line_color=REPAID,
                                                                hooks=[self.marker.hook], **common)
        defaulted = hv.Histogram((edges, shares.get("defaulted", np.zeros(len(edges) - 1))), kdims=[axis],
                                 vdims=[share], label=t("defaulted", language)).opts(
            color=DEFAULTED, alpha=0.45, line_color=DEFAULTED, **common)
        return (repaid * defaulted).opts(legend_position="top", legend_cols=2)

    def __panel__(self):
        return pn.Column(self.selector, self.text, self.plot, sizing_mode="stretch_width")


# ------------------------------------------------------------------------------------------ debt capacity
def debt_html(debt: DebtCapacity | None, names: list[str], language: str, labels: LabelDictionary | None = None) -> str:
    """Each ratio of the client (`names`: those this dataset has) against the population's and accepted means,
    labelled and formatted by the dictionary (debt_ratio as a percentage)."""
    labels = labels if labels is not None else current_labels()

    def value(name, v):
        return html.escape(labels.format_value(name, v, language))

    if not names:
        return f'<p class="note">{t("no_ratios", language)}</p>'
    ratios = {r.name: r for r in debt.ratios} if debt is not None else {}
    if not ratios:
        return f'<p class="placeholder">{t("no_client", language)}</p>'
    lines = [effort_html(debt, language, labels)]
    for name in names:
        r = ratios.get(name)
        if r is None:
            continue
        summary = t("ratio_summary", language, client=f'<b class="client-ratio">{value(name, r.client)}</b>',
                    mean=value(name, r.population_mean), accepted=value(name, r.accepted_mean))
        lines.append(f'<p data-ratio="{html.escape(name)}"><b>{html.escape(labels.label(name, language))}</b>'
                     f' · {summary}</p>')
    return "".join(lines)


def effort_html(debt: DebtCapacity, language: str, labels: LabelDictionary) -> str:
    """The effort rate against the cap, its parts, what remains under the cap, the largest amount affordable at
    the term asked and the rank among accepted clients: the service's figures, formatted (empty when unknown)."""
    if getattr(debt, "effort_rate", None) is None:
        return ""

    def amount(v):
        return html.escape(t("per_month", language, value=labels.format_value("income", v, language)))

    def share(v):
        return html.escape(labels.format_value("debt_ratio", v, language))

    over = debt.effort_rate > debt.effort_cap
    badge = f' <span class="effort-over">{t("effort_over_cap", language)}</span>' if over else ""
    rate = f'<b class="effort-rate" data-effort="{debt.effort_rate:.6f}">{share(debt.effort_rate)}</b>'
    parts = [f'<p class="effort {"over" if over else "under"}">'
             f'{t("effort_rate", language, rate=rate, cap=share(debt.effort_cap))}{badge}</p>',
             '<p class="effort-parts">' + t("effort_parts", language, existing=amount(debt.existing_debt_service or 0.0),
                                            payment=amount(debt.requested_payment),
                                            income=amount(debt.monthly_income)) + '</p>']
    if debt.remaining_capacity is not None:
        key = "effort_remaining" if debt.remaining_capacity >= 0 else "effort_exceeded"
        parts.append(f'<p class="effort-remaining">{t(key, language, amount=amount(abs(debt.remaining_capacity)))}</p>')
    if debt.max_affordable_amount is not None and debt.term_months is not None:
        term = html.escape(labels.format_value("term_months", debt.term_months, language))
        most = html.escape(labels.format_value("credit_amount", debt.max_affordable_amount, language))
        parts.append(f'<p class="effort-max-amount">{t("effort_max_amount", language, term=term, amount=most)}</p>')
    if debt.accepted_percentile is not None:
        pct = html.escape(labels.format_value("debt_ratio", debt.accepted_percentile / 100.0, language))
        parts.append(f'<p class="effort-rank note">{t("effort_rank", language, pct=pct)}</p>')
    return f'<div class="effort-block">{"".join(parts)}</div>'


class DebtCapacityView(pn.viewable.Viewer):
    """Annuity / income and credit / income of the client against all and accepted applications."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        self.labels = labels_for(self.state.service)
        self.names = [name for name in RATIOS if name in self.state.roles]
        self.markers = {name: ClientMarker() for name in self.names}
        # the population's and accepted clients' means: lines drawn like the client's (cheaper than VLine layers)
        self.means = {name: (ClientMarker(POPULATION, "solid"), ClientMarker(ACCEPTED, "solid")) for name in self.names}
        self._pipes = {name: streams.Pipe(data=(None, self.state.language)) for name in self.names}
        self._sent: dict[str, tuple] = {}
        self.plots = {name: pn.pane.HoloViews(hv.DynamicMap(self._plot(name), streams=[self._pipes[name]]),
                                              sizing_mode="stretch_width", linked_axes=False,
                                              css_classes=["debt-plot", name])
                      for name in self.names}
        self.text = pn.pane.HTML(pn.bind(debt_html, self.state.client.param.debt, self.names, self.state.param.language,
                                         self.labels),
                                 stylesheets=[CARD_CSS], sizing_mode="stretch_width", css_classes=["debt-summary"])
        self.state.client.param.watch(self._update, ["debt"])
        self.state.param.watch(self._update, ["language"])
        self._update()

    def _ratios(self) -> dict[str, RatioComparison]:
        debt = self.state.client.debt
        return {r.name: r for r in debt.ratios} if debt is not None else {}

    def _update(self, *events):
        language = self.state.language
        for name, ratio in self._ratios().items():
            if name not in self._pipes:
                continue
            if self._sent.get(name) != (language,):     # population histograms: once, then on a language switch
                self._sent[name] = (language,)
                self._pipes[name].send((ratio, language))
                population, accepted = self.means[name]
                population.move(ratio.population_mean)
                accepted.move(ratio.accepted_mean)
            self.markers[name].move(ratio.client)

    def _plot(self, name: str):
        hooks = [self.markers[name].hook, *(line.hook for line in self.means[name])]

        def plot(data):
            ratio, language = data
            if ratio is None:  # no client yet; the lines are created now, hidden
                return (hv.Histogram(([0, 1], [0]), label=t("all_applications", language)).opts(
                    hooks=hooks, responsive=True, height=DEBT_HEIGHT, **TOOLBAR)
                        * hv.Histogram(([0, 1], [0]), label=t("accepted_applications", language))).opts(
                    legend_position="top", legend_cols=2)
            h = ratio.histogram
            edges = np.asarray(h.edges, dtype=float)
            shares = {k: 100 * np.asarray(v, float) / max(sum(v), 1) for k, v in h.counts.items()}
            fmt = tick_format(self.labels, name, language)
            ymax = max(float(s.max()) for s in shares.values())
            title = self.labels.label(name, language)
            axis = hv.Dimension("x", label=title)
            share = hv.Dimension("share", label=t("share_axis", language))
            common = dict(xticks=nice_ticks(edges[0], edges[-1], fmt),
                          yticks=nice_ticks(0, ymax, lambda v, d: fmt_number(v, language, d), n=3),
                          xlabel=title, ylabel=t("share_axis", language), line_width=1,
                          framewise=True, responsive=True, height=DEBT_HEIGHT, **TOOLBAR)
            everyone = hv.Histogram((edges, shares["all"]), kdims=[axis], vdims=[share],
                                    label=t("all_applications", language)).opts(
                color=POPULATION, alpha=0.4, line_color=POPULATION, hooks=hooks, **common)
            accepted = hv.Histogram((edges, shares["accepted"]), kdims=[axis], vdims=[share],
                                    label=t("accepted_applications", language)).opts(
                color=ACCEPTED, alpha=0.35, line_color=ACCEPTED, **common)
            return (everyone * accepted).opts(legend_position="top", legend_cols=2)

        return plot

    def __panel__(self):
        plots = pn.Row(*self.plots.values(), sizing_mode="stretch_width",
                       visible=pn.bind(lambda d: d is not None, self.state.client.param.debt))  # no empty charts
        return pn.Column(self.text, plots, sizing_mode="stretch_width")
