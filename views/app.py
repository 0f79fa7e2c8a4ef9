"""The dashboard: one session state shared by the top bar, the side bar and the centre.

`DashboardApp` is a Viewer: displayed inline in Jupyter it is a plain layout (templates do not
render in notebooks); `create_app()` puts the same components in a template for `panel serve`,
with the selected client and the language in the URL (`/dashboard?client=100002&lang=en`).
"""

from __future__ import annotations

import logging

import panel as pn
import param

from scoring.backends import open_service, session_service
from scoring.contracts import is_client_id
from scoring.errors import ScoringError

from .client import ClientCard, ClientPicker
from .common import NOTICE_CSS, deferred, notice_html, section_title
from .i18n import t
from .portfolio import PortfolioOverview
from .prediction import ComparisonView, DebtCapacityView, ExplanationView
from .state import DashboardState, Notice

log = logging.getLogger(__name__)

SIDEBAR_WIDTH = 470
HEADER_BACKGROUND = "#1f3a5f"

class DashboardApp(pn.viewable.Viewer):
    """All the components of the dashboard around one `DashboardState`.

    `service` is what the session acts through, e.g. `scoring.backends.session_service(open_service(), user)`:
    it writes the audit entry of each client file opened.
    """

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, service=None, client_id: int | None = None, language: str = "fr", **params):
        if "state" not in params:
            params["state"] = DashboardState(service, client_id=client_id, language=language)
        super().__init__(**params)
        self.portfolio = PortfolioOverview(state=self.state)
        self.picker = ClientPicker(state=self.state)
        self.card = ClientCard(state=self.state)
        self.explanation = ExplanationView(state=self.state)
        self.comparison = ComparisonView(state=self.state)
        self.debt = DebtCapacityView(state=self.state)
        self.language_switch = pn.widgets.RadioButtonGroup.from_param(
            self.state.param.language, description=None, options={"FR": "fr", "EN": "en"}, label="", color="light",
            width=110, css_classes=["language-switch"])
        # Panel's loading indicator on the titles of the sections a client switch changes. Not over the plots:
        # restyling a figure's pane makes the browser lay the figures out again, which made a switch ~3x
        # slower in the browser (bench: p95 ~440 ms instead of ~210 ms).
        loading = self.state.client.param.loading
        self.titles = {key: section_title(key, self.state.param.language, loading=loading)
                       for key in ("client_file", "explanation", "comparison", "debt_capacity")}

    # ------------------------------------------------------------------ the three areas
    def sidebar(self) -> list:
        return [self.titles["client_file"], self.picker.id_box(), self.card, self.picker.browser()]

    def top(self, defer: bool = False) -> list:
        lang = self.state.param.language
        return [section_title("portfolio", lang), self.portfolio.view(defer_details=defer)]

    def centre(self, defer: bool = False) -> list:
        """The prediction; with `defer`, debt capacity (below the fold) is drawn after the page shows."""
        return [
            pn.Row(self.titles["explanation"], self.titles["comparison"], sizing_mode="stretch_width"),
            pn.Row(self.explanation, self.comparison, sizing_mode="stretch_width"),
            self.titles["debt_capacity"],
            deferred(self.debt, 300) if defer else self.debt,
        ]

    def __panel__(self):
        """Plain layout, for Jupyter (and anywhere a template cannot go)."""
        lang = self.state.param.language
        header = pn.Row(pn.pane.Markdown(pn.bind(lambda l: f"## {t('title', l)}", lang)), pn.HSpacer(),
                        self.language_switch, sizing_mode="stretch_width")
        return pn.Column(
            header, *self.top(),
            pn.Row(pn.Column(*self.sidebar(), width=SIDEBAR_WIDTH), pn.Column(*self.centre(), sizing_mode="stretch_width"),
                   sizing_mode="stretch_width"),
            sizing_mode="stretch_width")

    def template(self) -> "DashboardTemplate":
        """The served page: portfolio on top, client in the side bar, the prediction in the centre.

        Bootstrap: its CSS and JS ship with Panel (the Fast templates fetch Google fonts, which an
        offline intranet cannot reach).
        """
        return DashboardTemplate(
            title=t("title", self.state.language), sidebar=self.sidebar(),
            main=[*self.top(defer=True), *self.centre(defer=True)],
            header=[pn.Row(pn.HSpacer(), self.language_switch, sizing_mode="stretch_width")],
            sidebar_width=SIDEBAR_WIDTH, header_background=HEADER_BACKGROUND)


class DashboardTemplate(pn.template.BootstrapTemplate):
    """The Bootstrap template, adding its many roots to a session's document in one go.

    Bokeh recomputes the document's whole model graph each time a root is added unless the
    document is frozen: once instead of ~18 times saves about a quarter of a second per session.
    """

    def server_doc(self, doc=None, title=None, location=True):
        doc = doc or pn.state.curdoc
        if doc is None:
            return super().server_doc(doc, title, location)
        with doc.models.freeze():
            return super().server_doc(doc, title, location)


def _unavailable_page(error: Exception) -> pn.Column:
    """Shown when the scoring service cannot be reached at session start; the button reloads the page."""
    notice = Notice("unavailable", {"detail": str(error) or type(error).__name__}, "danger")
    message = pn.pane.HTML(notice_html(notice, "fr") + notice_html(notice, "en"), stylesheets=[NOTICE_CSS],
                           css_classes=["notice"], sizing_mode="stretch_width")
    button = pn.widgets.Button(label="Réessayer / Retry", color="primary")
    button.js_on_click(code="window.location.reload()")
    return pn.Column(message, button, sizing_mode="stretch_width")


def create_app(service=None, audit=None) -> pn.viewable.Viewable:
    """The dashboard of one browser session, for `panel serve` / `pn.serve`.

    `service` defaults to `scoring.backends.open_service()` (shared by all sessions of the process); the
    session acts through `session_service(service, user, audit)`, which audits as the logged-in user
    (in process: in `audit`, else the process-wide log; over HTTP: the API does).
    """
    pn.extension("tabulator", throttled=True)
    user = pn.state.user or "anonymous"
    location = pn.state.location

    def build():
        shared = service if service is not None else open_service()
        app = DashboardApp(service=session_service(shared, user, audit))
        if location is not None:
            location.sync(app.state, {"language": "lang"})
            requested = (location.query_params or {}).get("client")
            location.sync(app.state.client, {"client_id": "client"})
            if requested is not None and not is_client_id(str(requested).strip()):   # a mistyped shared link
                app.state.client.open(str(requested))
        return app.template()

    try:
        return build()
    except ScoringError as exc:
        log.warning("scoring service unavailable at session start: %s", exc)
        return _unavailable_page(exc)
