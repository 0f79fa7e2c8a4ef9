"""Small pieces shared by the views: loading spinners on busy panes, notices, card styles."""

from __future__ import annotations

from typing import Callable, Iterable

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
.probability { font-size: 24px; font-weight: 700; }
.client-head { font-size: 14px; color: #1d2733; }
.placeholder { color: #55606e; font-style: italic; }
"""

TABLE_CSS = """
.tabulator, .tabulator .tabulator-cell, .tabulator .tabulator-col-title { font-size: 12.5px; }
.tabulator .tabulator-cell { padding: 3px 6px; }
.tabulator .tabulator-row { cursor: pointer; }
"""


LOADING_CLASS = "is-loading"
#: A small CSS spinner, shown while LOADING_CLASS is on it. Panel's `loading` overlay adds and removes
#: stylesheet models (Bokeh then recomputes the whole document) and restyles the whole pane in the
#: browser; measured here, that tripled the time an advisor waits for a client switch.
SPINNER_CSS = f"""
:host {{ width: 20px; height: 20px; }}
:host(.{LOADING_CLASS})::after {{
  content: ""; display: block; box-sizing: border-box; width: 18px; height: 18px; margin-top: 2px;
  border: 3px solid #c8cfd8; border-top-color: #1f3a5f; border-radius: 50%; animation: pn-spin .8s linear infinite;
}}
@keyframes pn-spin {{ to {{ transform: rotate(360deg); }} }}
"""


def busy_indicator() -> pn.pane.HTML:
    """A spinner next to a section title, spinning while its section recomputes (see `with_spinner`)."""
    return pn.pane.HTML("", stylesheets=[SPINNER_CSS], width=20, height=20, margin=(14, 0, 0, 0),
                        css_classes=["busy-indicator"])


def set_loading(pane: pn.viewable.Viewable, loading: bool) -> None:
    classes = [c for c in pane.css_classes if c != LOADING_CLASS]
    pane.css_classes = [*classes, LOADING_CLASS] if loading else classes


def with_spinner(panes: Iterable[pn.viewable.Viewable], action: Callable[[], object]) -> None:
    """Run `action` while the `busy_indicator`s in `panes` spin.

    On a server, the spinners are sent to the browser first and the action runs on the next tick
    of the event loop (a synchronous callback would otherwise send "loading" and "done" together);
    everything the action changes then goes to the browser as one patch.
    """
    panes = list(panes)
    for pane in panes:
        set_loading(pane, True)

    def run():
        with pn.io.hold():
            try:
                action()
            finally:
                for pane in panes:
                    set_loading(pane, False)

    doc = pn.state.curdoc
    if doc is not None and doc.session_context is not None:
        pn.state.execute(run, schedule=True)
    else:
        run()


def deferred(viewable: pn.viewable.Viewable, height: int) -> pn.viewable.Viewable:
    """`viewable`, drawn once the page is on screen (Panel's `defer_load`): for content below the
    fold, so that the first page shows sooner. Served pages only; a notebook shows it at once."""
    return pn.panel(lambda: viewable, defer_load=True, min_height=height, sizing_mode="stretch_width")


def notice_alert(notice_param, language_param) -> pn.pane.Alert:
    """An alert showing a state's `notice` in the current language, hidden when there is none."""

    def text(notice: Notice | None, language: str) -> str:
        return notice.text(language) if notice is not None else ""

    def level(notice: Notice | None) -> str:
        return notice.level if notice is not None else "warning"

    return pn.pane.Alert(pn.bind(text, notice_param, language_param), alert_type=pn.bind(level, notice_param),
                         visible=pn.bind(lambda n: n is not None, notice_param), margin=(4, 5),
                         sizing_mode="stretch_width", css_classes=["notice"])


TITLE_CSS = """
h3, h4 { margin: 8px 0 4px 0; font-weight: 600; color: #1d2733; }
h3 { font-size: 18px; }
h4 { font-size: 14px; }
"""


def section_title(key: str, language_param, indicator: pn.viewable.Viewable | None = None,
                  level: int = 3) -> pn.viewable.Viewable:
    """A heading in the current language (with a busy indicator next to it, if given)."""
    title = pn.pane.HTML(pn.bind(lambda lang: f"<h{level}>{t(key, lang)}</h{level}>", language_param),
                         stylesheets=[TITLE_CSS], margin=(0, 5))
    return title if indicator is None else pn.Row(title, indicator, sizing_mode="stretch_width")
