"""The model versions panel (analysts, issue 13): the registered versions (the one served marked), two of them
compared on the same client files, another one served with a required reason (a rollback: the version served before
the last change), and the history of the versions.

Display only: every number comes from `VersionsState` (the service's `model_versions`, `compare_versions`,
`model_version_history`, `activate_version`). Tables get plain text (Tabulator shows a cell's text, never its HTML);
HTML panes escape every value.
"""

from __future__ import annotations

import html
import math

import pandas as pd
import panel as pn
import param

from scoring.contracts import ModelVersion, VersionComparison, VersionEvent

from .common import CARD_CSS, TABLE_CSS, next_tick, notice_alert, section_title
from .i18n import TEXTS, fmt_number, fmt_percent, t
from .state import DashboardState, VersionsState

VERSIONS_CSS = """
table.version-comparison { border-collapse: collapse; font-size: 13px; margin: 4px 0; }
table.version-comparison th, table.version-comparison td { border: 1px solid #e2e5ea; padding: 4px 10px; }
table.version-comparison td { text-align: right; }
.versions-summary, .versions-rollback { font-size: 13px; }
"""


def _rate(value: float | None, language: str) -> str:
    return t("na", language) if value is None or not math.isfinite(value) else fmt_percent(value, language)


def _number(value: float | None, language: str, decimals: int = 3) -> str:
    return t("na", language) if value is None or not math.isfinite(value) else fmt_number(value, language, decimals)


def versions_frame(versions: list[ModelVersion], language: str) -> pd.DataFrame:
    """One row per registered version, newest first, as plain text."""
    rows = {key: [] for key in ("ver_col_active", "ver_col_version", "ver_col_created", "ver_col_auc",
                                "ver_col_oof_auc", "ver_col_threshold", "ver_col_acceptance", "ver_col_alerts",
                                "ver_col_trained_in")}
    for v in versions:
        for key, value in (("ver_col_active", t("ver_active_mark", language) if v.active else ""),
                           ("ver_col_version", v.version), ("ver_col_created", v.created_at.replace("T", " ")[:19]),
                           ("ver_col_auc", _number(v.roc_auc, language)),
                           ("ver_col_oof_auc", _number(v.oof_roc_auc, language)),
                           ("ver_col_threshold", _number(v.threshold, language)),
                           ("ver_col_acceptance", _rate(v.acceptance_rate, language)),
                           ("ver_col_alerts", fmt_number(v.fairness_alerts, language)),
                           ("ver_col_trained_in", v.trained_in)):
            rows[key].append(value)
    return pd.DataFrame({t(key, language): pd.Series(values, dtype=object) for key, values in rows.items()})


def history_frame(history: list[VersionEvent], language: str) -> pd.DataFrame:
    """The versions' history, newest first, as plain text."""
    rows = {key: [] for key in ("hist_col_at", "hist_col_event", "hist_col_version", "hist_col_previous",
                                "hist_col_user", "hist_col_reason")}
    for e in history:
        event = f"hist_{e.event}"
        for key, value in (("hist_col_at", e.at.replace("T", " ")[:19]),
                           ("hist_col_event", t(event, language) if event in TEXTS else e.event),
                           ("hist_col_version", e.version), ("hist_col_previous", e.previous or ""),
                           ("hist_col_user", e.user or ""), ("hist_col_reason", e.reason or "")):
            rows[key].append(value)
    return pd.DataFrame({t(key, language): pd.Series(values, dtype=object) for key, values in rows.items()})


def comparison_html(c: VersionComparison | None, language: str) -> str:
    """B against A: the shifts and decisions changed in a sentence, acceptance and AUC of each in a table."""
    if c is None:
        return ""
    e = html.escape
    summary = t("versions_comparison", language, clients=fmt_number(c.clients, language),
                labelled=fmt_number(c.labelled, language), mean=_number(c.mean_shift, language, 4),
                abs=_number(c.mean_abs_shift, language, 4), p95=_number(c.p95_abs_shift, language, 4),
                refused=fmt_number(c.refused_now, language), accepted=fmt_number(c.accepted_now, language))
    head = "".join(f"<th>{e(t(k, language))}</th>" for k in ("versions_cmp_version", "versions_cmp_acceptance",
                                                            "versions_cmp_auc"))
    rows = "".join(f"<tr><th>{e(label)} · {e(version)}</th><td>{e(_rate(acceptance, language))}</td>"
                   f"<td>{e(_number(auc, language))}</td></tr>"
                   for label, version, acceptance, auc in (("A", c.a, c.acceptance_a, c.auc_a),
                                                           ("B", c.b, c.acceptance_b, c.auc_b)))
    return (f'<p class="versions-summary">{e(summary)}</p>'
            f'<table class="version-comparison"><tr>{head}</tr>{rows}</table>')


def _version_select(state: VersionsState, name: str, label: str, css: str) -> pn.widgets.Select:
    """A choice among the registered versions, kept in step with the state's parameter `name`."""
    select = pn.widgets.Select(label=label, options=[v for v in state.param[name].objects if v is not None],
                               value=getattr(state, name), width=260, css_classes=[css])

    def versions_changed(*_):
        select.param.update(options=[v for v in state.param[name].objects if v is not None],
                            value=getattr(state, name))

    state.param.watch(versions_changed, ["versions", name])
    select.param.watch(lambda event: setattr(state, name, event.new), "value")
    return select


class VersionsView(pn.viewable.Viewer):
    """The versions panel of the analysts' page; its state (`VersionsState`) is the session's own."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, schedule=next_tick, **params):
        super().__init__(**params)
        self.versions = vs = VersionsState(self.state.service, schedule=schedule)
        lang = self.state.param.language
        language = self.state.language
        self.title = section_title("versions_title", lang)
        self.help = pn.pane.HTML(pn.bind(lambda l: f'<p class="note">{html.escape(t("versions_help", l))}</p>', lang),
                                 stylesheets=[CARD_CSS], sizing_mode="stretch_width")
        self.notice = notice_alert(vs.param.notice, lang)
        self.table = pn.widgets.Tabulator(
            pn.bind(versions_frame, vs.param.versions, lang), show_index=False, disabled=True, sortable=False,
            selectable=False, pagination="local", page_size=10, layout="fit_data_stretch",
            sizing_mode="stretch_width", css_classes=["versions-table"], stylesheets=[TABLE_CSS],
            loading=vs.param.loading)
        # comparing two versions
        self.select_a = _version_select(vs, "a", t("versions_a", language), "versions-a")
        self.select_b = _version_select(vs, "b", t("versions_b", language), "versions-b")
        self.compare_button = pn.widgets.Button(label=t("versions_compare", language), color="primary",
                                                css_classes=["versions-compare"], align="end")
        self.compare_button.on_click(lambda _: vs.compare())
        self.comparison = pn.pane.HTML(pn.bind(comparison_html, vs.param.comparison, lang),
                                       stylesheets=[CARD_CSS, VERSIONS_CSS], sizing_mode="stretch_width",
                                       css_classes=["versions-comparison"])
        # serving another one
        self.target = _version_select(vs, "target", t("versions_target", language), "versions-target")
        self.reason = pn.widgets.TextInput(label=t("versions_reason", language), width=420, max_length=2000,
                                           placeholder=t("versions_reason_placeholder", language),
                                           css_classes=["versions-reason"])
        self.reason.param.watch(lambda event: setattr(vs, "reason", event.new), "value_input")
        vs.param.watch(lambda event: setattr(self.reason, "value", event.new) if not event.new else None, "reason")
        self.activate_button = pn.widgets.Button(label=t("versions_activate", language), color="warning",
                                                 css_classes=["versions-activate"], align="end")
        self.activate_button.on_click(lambda _: vs.activate())
        self.rollback = pn.pane.HTML(pn.bind(self._rollback_html, vs.param.history, lang), stylesheets=[VERSIONS_CSS],
                                     sizing_mode="stretch_width", css_classes=["versions-rollback"])
        self.history = pn.widgets.Tabulator(
            pn.bind(history_frame, vs.param.history, lang), show_index=False, disabled=True, sortable=False,
            selectable=False, pagination="local", page_size=10, layout="fit_data_stretch",
            sizing_mode="stretch_width", css_classes=["versions-history"], stylesheets=[TABLE_CSS])
        self.state.param.watch(self._language_changed, "language")
        vs.param.watch(self._activated, "activated")

    def _activated(self, event) -> None:
        """Another version is served: the top bar's portfolio figures are the new model's."""
        if event.new is not None and self.state.portfolio is not None:
            self.state.portfolio.refresh()

    def _rollback_html(self, history: list[VersionEvent], language: str) -> str:
        previous = self.versions.previous
        if previous is None:
            return ""
        text = t("versions_rollback_hint", language, version=previous)
        return f'<p class="versions-rollback-text">{html.escape(text)}</p>'

    def _language_changed(self, event) -> None:
        language = event.new
        for widget, key in ((self.select_a, "versions_a"), (self.select_b, "versions_b"),
                            (self.compare_button, "versions_compare"), (self.target, "versions_target"),
                            (self.reason, "versions_reason"), (self.activate_button, "versions_activate")):
            widget.label = t(key, language)
        self.reason.placeholder = t("versions_reason_placeholder", language)

    def __panel__(self):
        lang = self.state.param.language
        return pn.Column(
            self.title, self.help, self.notice, self.table,
            section_title("versions_compare_title", lang, level=4),
            pn.Row(self.select_a, self.select_b, self.compare_button), self.comparison,
            section_title("versions_activate_title", lang, level=4),
            pn.Row(self.target, self.reason, self.activate_button), self.rollback,
            section_title("versions_history_title", lang, level=4), self.history,
            sizing_mode="stretch_width", css_classes=["versions-panel"])
