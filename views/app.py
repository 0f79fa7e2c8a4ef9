"""The dashboard: one session state shared by the top bar, the side bar and the centre.

`DashboardApp` is a Viewer: displayed inline in Jupyter it is a plain layout (templates do not
render in notebooks); `create_app()` puts the same components in a template for `panel serve`,
with the selected client and the language in the URL (`/dashboard?client=100002&lang=en`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import panel as pn
import param

from scoring.config import Workdir
from scoring.errors import ScoringError

from .client import ClientCard, ClientPicker
from .common import busy_indicator, deferred, section_title
from .i18n import t
from .portfolio import PortfolioOverview
from .prediction import ComparisonView, DebtCapacityView, ExplanationView
from .state import DashboardState

log = logging.getLogger(__name__)

SIDEBAR_WIDTH = 470
HEADER_BACKGROUND = "#1f3a5f"

_audit_logs: dict[Path, object] = {}


def default_audit_log(service=None):
    """The process-wide audit log: PostgreSQL at `SCORING_AUDIT_URL`, else SQLite at `SCORING_AUDIT_DB`,
    else at `<workdir>/data/audit.sqlite`."""
    from scoring.audit import audit_log_from_env

    workdir = getattr(service, "workdir", None) or Workdir.resolve()
    path = Path(workdir.data) / "audit.sqlite"
    if path not in _audit_logs:
        _audit_logs[path] = audit_log_from_env(path)
    return _audit_logs[path]


class DashboardApp(pn.viewable.Viewer):
    """All the components of the dashboard around one `DashboardState`."""

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, service=None, audit=None, user: str | None = None, client_id: int | None = None,
                 language: str = "fr", **params):
        if "state" not in params:
            params["state"] = DashboardState(service, audit=audit, user=user, client_id=client_id,
                                             language=language)
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
        lang = self.state.param.language
        # One spinner per section, spinning while a client file opens. Each spinner sits in a row of its
        # own: the template renders each top-level item as a separate Bokeh root, so restyling a spinner
        # re-lays out that small row, not the plots (which costs the browser about half a second).
        self.busy = {key: busy_indicator() for key in ("client_file", "explanation", "comparison", "debt_capacity")}
        self.picker.loading_targets = list(self.busy.values())

    # ------------------------------------------------------------------ the three areas
    def sidebar(self) -> list:
        lang = self.state.param.language
        return [section_title("client_file", lang, self.busy["client_file"]), self.picker.id_box(), self.card,
                self.picker.browser()]

    def top(self, defer: bool = False) -> list:
        lang = self.state.param.language
        return [section_title("portfolio", lang), self.portfolio.view(defer_details=defer)]

    def centre(self, defer: bool = False) -> list:
        """The prediction; with `defer`, debt capacity (below the fold) is drawn after the page shows."""
        lang = self.state.param.language
        return [
            pn.Row(section_title("explanation", lang, self.busy["explanation"]),
                   section_title("comparison", lang, self.busy["comparison"]), sizing_mode="stretch_width"),
            pn.Row(self.explanation, self.comparison, sizing_mode="stretch_width"),
            section_title("debt_capacity", lang, self.busy["debt_capacity"]),
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
    message = pn.pane.Alert(t("unavailable", "fr", detail=error) + "\n\n" + t("unavailable", "en", detail=error),
                            alert_type="danger", css_classes=["notice"])
    button = pn.widgets.Button(label="Réessayer / Retry", color="primary")
    button.js_on_click(code="window.location.reload()")
    return pn.Column(message, button, sizing_mode="stretch_width")


def service_for(service, user: str | None):
    """The session's view of the process-wide service: over HTTP it names the user (`X-User`) so that
    the API's audit log says who looked; in process the service is shared as is."""
    for_user = getattr(service, "for_user", None)
    return for_user(user) if callable(for_user) else service


def create_app(service=None, audit=None) -> pn.viewable.Viewable:
    """The dashboard of one browser session, for `panel serve` / `pn.serve`.

    `service` defaults to `scoring.service.open_service()` (shared by all sessions of the process),
    `audit` to the process-wide audit log. The user for the audit logs is the logged-in user.
    """
    pn.extension("tabulator", throttled=True)
    user = pn.state.user or "anonymous"
    location = pn.state.location

    def build():
        from scoring.service import open_service

        shared = service if service is not None else open_service()
        session_audit = audit if audit is not None else default_audit_log(shared)
        app = DashboardApp(service=service_for(shared, user), audit=session_audit, user=user)
        if location is not None:
            location.sync(app.state, {"language": "lang"})
            requested = (location.query_params or {}).get("client")
            location.sync(app.state.client, {"client_id": "client"})
            if requested is not None and not str(requested).strip().isdigit():   # a mistyped shared link
                app.state.client.open(str(requested))
        return app.template()

    try:
        return build()
    except ScoringError as exc:
        log.warning("scoring service unavailable at session start: %s", exc)
        return _unavailable_page(exc)
