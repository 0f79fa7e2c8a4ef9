"""The analysts' audit panel: type a client ID, see who did what with that file (`service.audit_trail`).

Built only in an analyst's session (or one without login). The entries are shown as plain text in a
Tabulator (its default formatter shows a cell's text, never its HTML): user names and search filters come
from other people's input.
"""

from __future__ import annotations

import html
import json

import pandas as pd
import panel as pn
import param

from .common import notice_alert
from .i18n import t
from .state import AuditTrailState, DashboardState

#: the table's columns, with their header's key in `views.i18n.TEXTS`
COLUMNS = {"at": "audit_col_at", "user": "audit_col_user", "event": "audit_col_event",
           "decision": "audit_col_decision", "probability": "audit_col_probability", "source": "audit_col_source",
           "details": "audit_col_details"}


def trail_frame(entries, language: str) -> pd.DataFrame:
    """The entries as a table of plain text, with headers in the page's language."""
    rows = []
    for e in entries:
        details = ""
        if e.details:
            try:
                details = json.dumps(json.loads(e.details), ensure_ascii=False, sort_keys=True)
            except ValueError:
                details = str(e.details)
        rows.append({"at": e.at, "user": e.user or "", "event": e.event, "decision": e.decision or "",
                     "probability": "" if e.default_probability is None else f"{e.default_probability:.3f}",
                     "source": e.source, "details": details})
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    return frame.rename(columns={c: t(key, language) for c, key in COLUMNS.items()})


class AuditTrailView(pn.viewable.Viewer):
    """ID box, Show button, summary line and the table of entries."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, **params):
        super().__init__(**params)
        trail: AuditTrailState = self.state.audit
        lang = self.state.param.language
        self.id_input = pn.widgets.TextInput(
            label=pn.bind(t, "audit_client_id", lang), placeholder=pn.bind(t, "audit_placeholder", lang),
            sizing_mode="stretch_width", css_classes=["audit-client-id"])
        self.show_button = pn.widgets.Button(label=pn.bind(t, "audit_show", lang), color="primary",
                                             width=100, align="end", css_classes=["audit-show"])
        self.id_input.param.watch(lambda e: self._show(e.new), "value")
        self.show_button.on_click(lambda e: self._show(self.id_input.value_input or self.id_input.value))
        self.summary = pn.pane.HTML(pn.bind(self._summary, trail.param.entries, trail.param.client_id, lang),
                                    css_classes=["audit-summary"], sizing_mode="stretch_width")
        self.table = pn.widgets.Tabulator(
            pn.bind(trail_frame, trail.param.entries, lang), show_index=False, disabled=True, sortable=False,
            selectable=False, pagination="local", page_size=20, layout="fit_data_stretch",
            sizing_mode="stretch_width", css_classes=["audit-table"])
        self.notice = notice_alert(trail.param.notice, lang)

    def _show(self, value: str | None) -> None:
        if value and value.strip():
            self.state.audit.show(value)

    @staticmethod
    def _summary(entries, client_id, language) -> str:
        from .state import AUDIT_TRAIL_LIMIT

        if client_id is None:
            return f"<p>{html.escape(t('audit_none', language))}</p>"
        return f"<p>{html.escape(t('audit_summary', language, n=len(entries), client_id=client_id, limit=AUDIT_TRAIL_LIMIT))}</p>"

    def __panel__(self):
        return pn.Column(pn.Row(self.id_input, self.show_button, sizing_mode="stretch_width"), self.notice,
                         self.summary, self.table, sizing_mode="stretch_width", css_classes=["audit-panel"])
