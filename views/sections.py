"""The analysts' sections (audit trail, fairness, drift, outcomes, performance, threshold policy, versions), one
shown at a time, chosen in a bar of buttons.

A section is built and drawn the first time it is chosen, then kept (hidden while another is shown): a page
pays for the section it shows, and coming back to a section costs no new drawing. Each section is a panel of its
own (issue 13: each panel's first draw p95 <= 300 ms server-side, `python -m bench.bench_analyst`), where the
analysts' page used to draw all of them, one under the other, before it showed (~1.5 s of the server's time).

Panel's `Tabs(dynamic=True)` draws only the active tab too, but keeps a tab's title from its first draw: a
language switch could not rename them. The bar here is a `RadioButtonGroup` whose labels follow the language;
the chosen section is `Sections.active` (in the page's URL as `section=`).
"""

from __future__ import annotations

from typing import Callable

import panel as pn
import param

from .i18n import t
from .state import DashboardState

SECTIONS_CSS = """
:host { margin-bottom: 6px; }
"""


class Sections(pn.viewable.Viewer):
    """`sections`: each section's key (its title is the text `<prefix><key>` of `views.i18n`) and what builds its
    view, called once, the first time the section is chosen. The first section is shown at first.

    Also a panel's charts one at a time (`views.policy`: `prefix="policy_chart_"`, `css="policy-charts"`)."""

    state = param.ClassSelector(class_=DashboardState)
    active = param.String(default="", doc="The key of the section shown (in the URL as `section`).")
    prefix = param.String(default="section_", constant=True, doc="The start of the titles' text keys.")
    css = param.String(default="analyst-sections", constant=True, doc="The CSS class of the bar; its area's: "
                       "this followed by -area, each section's: this followed by -<key>.")

    def __init__(self, sections: dict[str, Callable[[], object]], **params):
        if not sections:
            raise ValueError("Sections needs at least one section")
        super().__init__(**params)
        self._builders = dict(sections)
        self._views: dict[str, pn.Column] = {}
        if self.active not in self._builders:
            self.active = next(iter(self._builders))
        self.bar = pn.widgets.RadioButtonGroup(options=self._options(), value=self.active, color="primary",
                                               variant="outline", css_classes=[self.css],
                                               stylesheets=[SECTIONS_CSS])
        self.bar.param.watch(lambda event: setattr(self, "active", event.new), "value")
        self.area = pn.Column(sizing_mode="stretch_width", css_classes=[f"{self.css}-area"])
        self._shown: str | None = None
        # nothing built yet: the section a link names (`active` set from the URL after this) is the only one built
        # when the page is made (`__panel__`)
        self.param.watch(self._show, ["active"])
        self.state.param.watch(lambda event: setattr(self.bar, "options", self._options()), ["language"])

    @property
    def keys(self) -> list[str]:
        return list(self._builders)

    def _options(self) -> dict[str, str]:
        return {t(f"{self.prefix}{key}", self.state.language): key for key in self._builders}

    def _show(self, *events) -> None:
        """The chosen section shown, built (and appended to the area) the first time; an unknown key (a mistyped
        link) shows the first section. A section that fails to build leaves the one shown before (the error goes
        to the session's log)."""
        key = self.active
        if key not in self._builders:
            self.active = next(iter(self._builders))     # calls this again
            return
        with pn.io.hold(freeze=True):
            if key not in self._views:
                try:
                    content = self._builders[key]()
                except Exception:
                    self.active = self._shown or next(iter(self._builders))
                    raise
                view = pn.Column(content, sizing_mode="stretch_width", css_classes=[f"{self.css}-{key}"])
                self._views[key] = view
                self.area.append(view)
            for name, view in self._views.items():
                view.visible = name == key
            self.bar.value = self._shown = key

    def built(self) -> list[str]:
        """The sections drawn so far, in the order they were first chosen."""
        return list(self._views)

    def __panel__(self):
        if self._shown is None:
            self._show()
        return pn.Column(self.bar, self.area, sizing_mode="stretch_width")
