"""Small pieces shared by the views: loading while a client opens, plain-text notices, card styles."""

from __future__ import annotations

import html
from typing import Callable

import panel as pn

from .i18n import t
from .state import Notice

CARD_CSS = """
:host { width: 100%; }
.kpis { display: flex; flex-wrap: wrap; gap: 10px; }
.kpi { flex: 1 1 150px; border: 1px solid #e2e5ea; border-radius: 6px; padding: 8px 12px; background: #fff; }
.kpi .label { font-size: 12px; color: #55606e; }
.kpi .value { font-size: 22px; font-weight: 600; color: #1d2733; white-space: nowrap; }
.kpi .sub { font-size: 12px; color: #55606e; }
.kpi.alert { border-color: #dd6b20; }
table.facts { border-collapse: collapse; width: 100%; font-size: 13px; }
table.facts th { text-align: left; font-weight: normal; color: #55606e; padding: 2px 8px 2px 0; }
table.facts td { text-align: right; padding: 2px 0; white-space: nowrap; }
h4 { margin: 10px 0 4px 0; font-size: 14px; }
.note { font-size: 12px; color: #55606e; font-style: italic; }
.decision { display: flex; align-items: center; gap: 10px; margin: 4px 0 6px 0; }
.decision-badge { font-weight: 700; padding: 3px 12px; border-radius: 12px; color: #fff; font-size: 15px; }
.decision-badge.accepted { background: #1b7f3b; }
.decision-badge.refused { background: #b3261e; }
.review-badge { font-weight: 600; padding: 2px 10px; border-radius: 12px; color: #664d03; background: #fff3cd;
                border: 1px solid #e0b000; font-size: 13px; }
.probability { font-size: 24px; font-weight: 700; }
.client-head { font-size: 14px; color: #1d2733; }
.placeholder { color: #55606e; font-style: italic; }
"""

TABLE_CSS = """
.tabulator, .tabulator .tabulator-cell, .tabulator .tabulator-col-title { font-size: 12.5px; }
.tabulator .tabulator-cell { padding: 3px 6px; }
.tabulator .tabulator-row { cursor: pointer; }
"""


def with_loading(state, action: Callable[[], object]) -> None:
    """Run `action` while `state.loading` is true: the panes bound to it show Panel's loading indicator.

    On a server, the indicator is sent to the browser first and the action runs on the next tick of
    the event loop (a synchronous callback would otherwise send "loading" and "done" together);
    everything the action changes then goes to the browser as one patch.
    """
    state.loading = True

    def run():
        with pn.io.hold():
            try:
                action()
            finally:
                state.loading = False

    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        pn.state.execute(run, schedule=True)
    else:
        run()


def next_tick(action: Callable[[], object]) -> None:
    """Run `action` on the next tick of the server's event loop, its changes sent as one patch (at once outside
    a server): what a switch changed first reaches the browser before slower parts fill in. While the session's
    page is being made, once it is loaded in the browser (`pn.state.onload`): the first paint does not wait."""
    def run():
        with pn.io.hold():
            action()

    doc = pn.state.curdoc
    if doc is None or doc.session_context is None:
        action()
    elif not pn.state.loaded:
        pn.state.onload(run)
    else:
        pn.state.execute(run, schedule=True)


def deferred(viewable: pn.viewable.Viewable, height: int) -> pn.viewable.Viewable:
    """`viewable`, drawn once the page is on screen (Panel's `defer_load`): for content below the
    fold, so that the first page shows sooner. Served pages only; a notebook shows it at once."""
    return pn.panel(lambda: viewable, defer_load=True, min_height=height, sizing_mode="stretch_width")


NOTICE_CSS = """
:host { width: 100%; }
.notice-text { padding: 8px 12px; border: 1px solid transparent; border-radius: 6px; font-size: 14px;
               white-space: pre-wrap; overflow-wrap: anywhere; }
.notice-text.warning { color: #664d03; background: #fff3cd; border-color: #ffecb5; }
.notice-text.danger { color: #842029; background: #f8d7da; border-color: #f5c2c7; }
.notice-text.info { color: #055160; background: #cff4fc; border-color: #b6effb; }
"""


def notice_html(notice: Notice | None, language: str) -> str:
    """A notice as plain text in an alert box: what the user typed, a service's message or an address are
    escaped, never read as HTML or Markdown."""
    if notice is None:
        return ""
    level = notice.level if notice.level in ("warning", "danger", "info") else "warning"
    return f'<div class="notice-text {level}" role="alert">{html.escape(notice.text(language))}</div>'


def notice_alert(notice_param, language_param) -> pn.pane.HTML:
    """An alert showing a state's `notice` in the current language, hidden when there is none."""
    return pn.pane.HTML(pn.bind(notice_html, notice_param, language_param), stylesheets=[NOTICE_CSS],
                        visible=pn.bind(lambda n: n is not None, notice_param), margin=(4, 5),
                        sizing_mode="stretch_width", css_classes=["notice"])


TITLE_CSS = """
h3, h4 { margin: 8px 0 4px 0; font-weight: 600; color: #1d2733; }
h3 { font-size: 18px; }
h4 { font-size: 14px; }
"""


def section_title(key: str, language_param, level: int = 3, loading=False) -> pn.pane.HTML:
    """A heading in the current language; `loading` (e.g. a state's `param.loading`) shows Panel's loading
    indicator on it while its section recomputes."""
    return pn.pane.HTML(pn.bind(lambda lang: f"<h{level}>{t(key, lang)}</h{level}>", language_param),
                        stylesheets=[TITLE_CSS], margin=(0, 5), loading=loading)
