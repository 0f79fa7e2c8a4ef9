"""The top bar: the portfolio (applications, decisions, mean score) and the model (error rate, drift, importance)."""

from __future__ import annotations

import html

import holoviews as hv
import pandas as pd
import panel as pn
import param
from holoviews import streams

from scoring.contracts import PortfolioSummary
from scoring.labels import current as current_labels

from .charts import REPAID, TOOLBAR, nice_ticks
from .common import CARD_CSS, TABLE_CSS, deferred, notice_alert, section_title
from .i18n import TEXTS, LabelDictionary, feature_label, fmt_number, fmt_percent, labels_for, t
from .state import DashboardState


IMPORTANCE_HEIGHT = 320


def kpi_html(summary: PortfolioSummary | None, n_features: int, language: str) -> str:
    """The key figures as a row of cards (`n_features`: features checked for drift)."""
    if summary is None:
        return ""
    s = summary

    def card(key, value, sub="", css=""):
        return (f'<div class="kpi {css}" data-kpi="{key}"><div class="label">{t(key, language)}</div>'
                f'<div class="value">{value}</div><div class="sub">{sub}</div></div>')

    refusal_rate = s.n_refused / s.n_applications if s.n_applications else 0.0
    drift = fmt_percent(s.drift_share, language, 0)
    drift_sub = t("drift_value", language, n=s.n_drifting, total=n_features) if n_features else \
        t("drift_none", language)
    return '<div class="kpis">' + "".join([
        card("applications", fmt_number(s.n_applications, language),
             html.escape(t("model_version", language, version=s.model_version))),
        card("accepted_n", fmt_number(s.n_accepted, language), fmt_percent(s.acceptance_rate, language)),
        card("refused_n", fmt_number(s.n_refused, language), fmt_percent(refusal_rate, language)),
        card("mean_score", fmt_percent(s.mean_default_probability, language),
             f'{t("threshold", language)} : {fmt_percent(s.threshold, language)}' if language == "fr"
             else f'{t("threshold", language)}: {fmt_percent(s.threshold, language)}'),
        card("error_rate", fmt_percent(s.error_rate, language),
             f'{t("auc", language)} {fmt_number(s.roc_auc, language, 3)}'),
        card("drift", drift, f'{drift_sub}<br>{t("score_psi", language, psi=fmt_number(s.score_psi, language, 3))}',
             "alert" if s.n_drifting else ""),
    ]) + "</div>"


def drift_status(status: str, language: str) -> str:
    """"stable" / "modérée" / "dérive"; a status this version does not know, as sent."""
    key = f"status_{status}"
    return t(key, language) if key in TEXTS else str(status)


def drift_frame(rows, language: str, labels: LabelDictionary | None = None) -> pd.DataFrame:
    """One row per feature, as plain text (Tabulator's default string formatter shows text, never HTML)."""
    labels = labels if labels is not None else current_labels()
    return pd.DataFrame({
        t("feature", language): [feature_label(labels, r.feature, language) for r in rows],
        t("psi", language): [fmt_number(r.psi, language, 3) for r in rows],
        t("status", language): [drift_status(r.status, language) for r in rows],
    })


class PortfolioOverview(pn.viewable.Viewer):
    """Key figures, global feature importance and the drift of each feature."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        portfolio = self.state.portfolio
        lang = self.state.param.language
        self.labels = labels_for(self.state.service)
        self.kpis = pn.pane.HTML(pn.bind(lambda summary, drift, language: kpi_html(summary, len(drift), language),
                                         portfolio.param.summary, portfolio.param.drift, lang),
                                 sizing_mode="stretch_width", stylesheets=[CARD_CSS], css_classes=["kpi-bar"])
        self._pipe = streams.Pipe(data=(portfolio.importance, self.state.language))
        self.importance = pn.pane.HoloViews(hv.DynamicMap(self._importance_plot, streams=[self._pipe]),
                                            sizing_mode="stretch_width", css_classes=["importance"], linked_axes=False)
        self.drift = pn.widgets.Tabulator(pn.bind(drift_frame, portfolio.param.drift, lang, self.labels),
                                          show_index=False,
                                          disabled=True, height=300, sizing_mode="stretch_width",
                                          layout="fit_data_stretch", css_classes=["drift-table"],
                                          stylesheets=[TABLE_CSS])
        portfolio.param.watch(self._send_importance, ["importance"])
        self.state.param.watch(self._send_importance, ["language"])

    def _send_importance(self, *events):
        """Stream the importances into the bar chart (a new figure would cost ~40 ms)."""
        self._pipe.send((self.state.portfolio.importance, self.state.language))

    def _importance_plot(self, data):
        importance, language = data
        rows = list(reversed(importance))                 # largest at the top
        table = {"feature": [feature_label(self.labels, r.feature, language) for r in rows],
                 "importance": [r.importance for r in rows]}
        hi = max(table["importance"], default=1.0)
        axis = t("importance_axis", language)
        return hv.Bars(table, kdims=[hv.Dimension("feature", label=" ")],
                       vdims=[hv.Dimension("importance", label=axis)]).opts(
            invert_axes=True, color=REPAID, line_color=None, responsive=True, height=IMPORTANCE_HEIGHT, framewise=True,
            # with invert_axes the values run along Bokeh's x axis
            xticks=nice_ticks(0, hi, lambda v, d: fmt_number(v, language, d), n=4), **TOOLBAR)

    def __panel__(self):
        return self.view()

    def view(self, defer_details: bool = False) -> pn.Column:
        """Key figures, then importance and drift (drawn after the page shows if `defer_details`)."""
        lang = self.state.param.language
        details = pn.Row(
            pn.Column(section_title("importance", lang, level=4), self.importance, sizing_mode="stretch_width"),
            pn.Column(section_title("drift_detail", lang, level=4), self.drift, sizing_mode="stretch_width"),
            sizing_mode="stretch_width")
        return pn.Column(
            notice_alert(self.state.portfolio.param.notice, lang),
            self.kpis,
            pn.Card(deferred(details, 380) if defer_details else details,
                    title=pn.bind(lambda l: f"{t('importance', l)} · {t('drift', l)}", lang),
                    collapsed=False, sizing_mode="stretch_width", css_classes=["model-details"]),
            sizing_mode="stretch_width")
