"""The dashboard: one session state shared by the top bar, the side bar and the centre.

`DashboardApp` is a Viewer: displayed inline in Jupyter it is a plain layout (templates do not
render in notebooks); `create_app()` puts the same components in a template for `panel serve`,
with the selected client and the language in the URL (`/dashboard?client=100002&lang=en`).

The logged-in user's role decides the page: an advisor has the client side bar and the centre (a client's
score, explanation, comparison, debt capacity); an analyst has the portfolio, model and monitoring top bar
and the audit panel. Components of another role are never built (`DashboardState` has no such part).
"""

from __future__ import annotations

import logging
from functools import partial

import panel as pn
import param

from scoring.backends import open_service, session_service
from scoring.contracts import is_client_id
from scoring.errors import ScoringError

from .advice import AdviceView
from .analyst import AuditTrailView
from .governance import GovernanceView
from .policy import PolicyView
from .client import ClientCard, ClientPicker
from .common import NOTICE_CSS, deferred, next_tick, notice_html, section_title
from .i18n import t
from .portfolio import PortfolioOverview
from .prediction import ComparisonView, DebtCapacityView, ExplanationView
from .whatif import NewApplicationView, WhatIfView
from .sections import Sections
from .versions import VersionsView
from .login import LOGOUT_URL
from .state import ROLES, DashboardState, Notice

log = logging.getLogger(__name__)

SIDEBAR_WIDTH = 470
HEADER_BACKGROUND = "#1f3a5f"

class DashboardApp(pn.viewable.Viewer):
    """All the components of the dashboard around one `DashboardState`, those of the session's role only.

    `service` is what the session acts through, e.g. `scoring.backends.session_service(open_service(), user)`:
    it writes the audit entry of each client file opened. `role`: "advisor", "analyst", or None (every part:
    a notebook, local development).
    """

    state = param.ClassSelector(class_=DashboardState)

    def __init__(self, service=None, client_id: int | None = None, language: str = "fr", role: str | None = None,
                 **params):
        if "state" not in params:
            # the advice (reasons, offers, peers) fills in on the next tick, after the client file is shown
            params["state"] = DashboardState(service, client_id=client_id, language=language, role=role,
                                             schedule=next_tick)
        super().__init__(**params)
        state = self.state
        self.portfolio = PortfolioOverview(state=state) if state.portfolio is not None else None
        self.audit = AuditTrailView(state=state) if state.audit is not None else None
        self.governance = GovernanceView(state=state) if state.governance is not None else None
        self.sections = self._sections()
        has_client = state.client is not None
        self.picker = ClientPicker(state=state) if has_client else None
        self.card = ClientCard(state=state) if has_client else None
        self.explanation = ExplanationView(state=state) if has_client else None
        self.comparison = ComparisonView(state=state) if has_client else None
        self.debt = DebtCapacityView(state=state) if has_client else None
        self.advice = AdviceView(state=state) if state.advice is not None else None
        self.whatif = WhatIfView(state=state) if state.whatif is not None else None
        self.new_application = NewApplicationView(state=state) if state.new_application is not None else None
        self.language_switch = pn.widgets.RadioButtonGroup.from_param(
            state.param.language, description=None, options={"FR": "fr", "EN": "en"}, label="", color="light",
            width=110, css_classes=["language-switch"])
        # Panel's loading indicator on the titles of the sections a client switch changes. Not over the plots:
        # restyling a figure's pane makes the browser lay the figures out again, which made a switch ~3x
        # slower in the browser (bench: p95 ~440 ms instead of ~210 ms).
        self.titles = {}
        if has_client:
            loading = state.client.param.loading
            self.titles = {key: section_title(key, state.param.language, loading=loading)
                           for key in ("client_file", "explanation", "comparison", "debt_capacity")}
        if self.advice is not None:
            self.titles["advice"] = section_title("advice", state.param.language, loading=state.advice.param.loading)
        if self.whatif is not None:
            self.titles["whatif"] = section_title("whatif", state.param.language)
            self.titles["new_application"] = section_title("new_application", state.param.language)

    # ------------------------------------------------------------------ the three areas
    def sidebar(self) -> list:
        if self.picker is None:
            return []
        return [self.titles["client_file"], self.picker.id_box(), self.card, self.picker.browser()]

    def top(self, defer: bool = False) -> list:
        lang = self.state.param.language
        parts = []
        if self.portfolio is not None:
            parts += [section_title("portfolio", lang), self.portfolio.view(defer_details=defer)]
        return parts

    def analysis(self) -> list:
        """The analysts' sections (who read which client file, fairness, drift, outcomes, performance, threshold
        policy, model versions), one at a time (`views.sections`). Below the client's centre on a page with every
        part (no login), so that the client's figures come first."""
        if self.sections is None:
            return []
        notice = [self.governance.notice] if self.governance is not None else []
        return [*notice, self.sections]

    def _sections(self) -> Sections | None:
        lang = self.state.param.language
        sections = {}
        if self.audit is not None:
            sections["audit"] = lambda: pn.Column(section_title("audit_trail", lang), self.audit,
                                                  sizing_mode="stretch_width")
        if self.governance is not None:
            for name in GovernanceView.PANELS:
                sections[name] = partial(self.governance.panel, name)
            sections["policy"] = lambda: PolicyView(state=self.state)
        if "governance" in self.state.parts:
            # loaded at once (no schedule): a section is built when chosen, the page long shown (a versions table
            # filled on the tick after its creation stayed empty in Chromium)
            sections["versions"] = lambda: VersionsView(state=self.state, schedule=None)
        return Sections(sections, state=self.state) if sections else None

    def centre(self, defer: bool = False) -> list:
        """The prediction; with `defer`, debt capacity (below the fold) is drawn after the page shows."""
        if self.explanation is None:
            return []
        advice = [self.titles["advice"], self.advice] if self.advice is not None else []
        if self.whatif is not None:
            advice += [self.titles["whatif"], self.whatif, self.titles["new_application"], self.new_application]
        return [
            pn.Row(self.titles["explanation"], self.titles["comparison"], sizing_mode="stretch_width"),
            pn.Row(self.explanation, self.comparison, sizing_mode="stretch_width"),
            *advice,
            self.titles["debt_capacity"],
            deferred(self.debt, 300) if defer else self.debt,
        ]

    def __panel__(self):
        """Plain layout, for Jupyter (and anywhere a template cannot go)."""
        lang = self.state.param.language
        header = pn.Row(pn.pane.Markdown(pn.bind(lambda l: f"## {t('title', l)}", lang)), pn.HSpacer(),
                        self.language_switch, sizing_mode="stretch_width")
        body = []
        if self.picker is not None:
            body = [pn.Row(pn.Column(*self.sidebar(), width=SIDEBAR_WIDTH),
                           pn.Column(*self.centre(), sizing_mode="stretch_width"), sizing_mode="stretch_width")]
        return pn.Column(header, *self.top(), *body, *self.analysis(), sizing_mode="stretch_width")

    def template(self, logout: bool = False) -> "DashboardTemplate":
        """The served page: for an advisor the client in the side bar and the prediction in the centre; for an
        analyst the portfolio and the audit panel. `logout`: a log-out link in the header.

        Bootstrap: its CSS and JS ship with Panel (the Fast templates fetch Google fonts, which an
        offline intranet cannot reach).
        """
        header = [pn.HSpacer(), self.language_switch]
        if logout:
            header.append(pn.pane.HTML(f'<a class="logout" href=".{LOGOUT_URL}" style="color:#fff">'
                                       f'Déconnexion / Log out</a>', margin=(12, 10)))
        sidebar = self.sidebar()
        return DashboardTemplate(
            title=t("title", self.state.language), sidebar=sidebar,
            main=[*self.top(defer=True), *self.centre(defer=True), *self.analysis()],
            header=[pn.Row(*header, sizing_mode="stretch_width")],
            sidebar_width=SIDEBAR_WIDTH if sidebar else 0, header_background=HEADER_BACKGROUND)


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
    """Shown when the scoring service cannot be reached at session start; the button reloads the page. The error's
    text is logged, not shown (it may name hosts or files)."""
    notice = Notice("unavailable", {"detail": type(error).__name__}, "danger")
    message = pn.pane.HTML(notice_html(notice, "fr") + notice_html(notice, "en"), stylesheets=[NOTICE_CSS],
                           css_classes=["notice"], sizing_mode="stretch_width")
    button = pn.widgets.Button(label="Réessayer / Retry", color="primary")
    button.js_on_click(code="window.location.reload()")
    return pn.Column(message, button, sizing_mode="stretch_width")


NO_ROLE_TEXT = ("Votre identifiant n'a pas de rôle dans ce tableau de bord (conseiller ou analyste) : demandez-le à "
                "votre administrateur. / Your login has no role in this dashboard (advisor or analyst): ask your "
                "administrator.")


def role_from_claims(claims: dict | None, claim: str = "roles") -> str | None:
    """The dashboard role in an ID token's `claim` (a name or a list of names; single sign-on): the first of them
    that is a role of the dashboard, else None."""
    value = (claims or {}).get(claim)
    names = [value] if isinstance(value, str) else list(value or [])
    return next((name for name in names if name in ROLES), None)


def create_app(service=None, audit=None, *, user: str | None = None, role: str | None = None,
               require_role: bool = False) -> pn.viewable.Viewable:
    """The dashboard of one browser session, for `panel serve` / `pn.serve`.

    `service` defaults to `scoring.backends.open_service()` (shared by all sessions of the process); the
    session acts through `session_service(service, user, audit, role)`, which audits as the logged-in user
    (in process: in `audit`, else the process-wide log; over HTTP: the API does, for that role).
    `user` defaults to Panel's `pn.state.user`. `role` decides which parts are built; with `require_role` a
    session without one gets a message and nothing else (a login must have a role; without logins, every part).
    """
    pn.extension("tabulator", throttled=True)
    user = user or pn.state.user or "anonymous"
    location = pn.state.location
    if require_role and role not in ROLES:
        log.warning("dashboard session refused: user %r has no dashboard role (%r)", user, role)
        return pn.Column(pn.pane.Str(NO_ROLE_TEXT, css_classes=["no-role"]), sizing_mode="stretch_width")

    def build():
        shared = service if service is not None else open_service()
        app = DashboardApp(service=session_service(shared, user, audit, role), role=role)
        if location is not None:
            location.sync(app.state, {"language": "lang"})
            if app.sections is not None:
                location.sync(app.sections, {"active": "section"})
            if app.state.client is not None:
                requested = (location.query_params or {}).get("client")
                location.sync(app.state.client, {"client_id": "client"})
                if requested is not None and not is_client_id(str(requested).strip()):   # a mistyped shared link
                    app.state.client.open(str(requested))
        return app.template(logout=require_role)

    try:
        return build()
    except ScoringError as exc:
        log.warning("scoring service unavailable at session start: %s", exc)
        return _unavailable_page(exc)
