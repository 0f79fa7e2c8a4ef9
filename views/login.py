"""Logins of the dashboard: a Bokeh `AuthProvider` over the hashed logins of `secrets/dashboard_users.json`.

What it adds to a plain signed cookie: Argon2 verification off the server's event loop, failures throttled
and locked out per user and per client address (logged), the login form protected by Tornado's XSRF token and
an `Origin` check, a server-side registry of login sessions (a cookie presented after logout or expiry is
refused, and the pages open under that login are emptied), cookies `HttpOnly`, `SameSite`, `Secure` behind
TLS, with a short lifetime. Only public APIs: Bokeh's `AuthProvider`, Tornado's `RequestHandler`, Panel's
`ComponentResourceHandler` (served here only to a logged-in browser).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import secrets
import threading
import time
import weakref
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

import jinja2
from bokeh.models import Div
from bokeh.server.auth_provider import AuthProvider
from markupsafe import Markup
from panel.io.server import ComponentResourceHandler
from tornado.web import HTTPError, RequestHandler

from scoring.credentials import DashboardUser, verify_password

log = logging.getLogger(__name__)

SESSION_COOKIE = "scoring_session"
LOGIN_URL = "/login"
LOGOUT_URL = "/logout"
#: the largest request body the dashboard server reads: a login form is well under 1 KiB, and Panel's
#: uploads and updates go through the websocket, never in a request body
MAX_BODY_BYTES = 64 * 1024
MAX_FIELD_CHARS = 512          # a user name or password longer than this is no login of ours
LOGIN_TEMPLATE = Path(__file__).parent / "templates" / "login.html"
#: a login page frames nothing, loads nothing from elsewhere and posts only to this server
LOGIN_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
}

# at most two Argon2 verifications at once (64 MiB each): a flood of logins queues instead of using the memory
_VERIFIER = ThreadPoolExecutor(max_workers=2, thread_name_prefix="login-verify")


@dataclass(frozen=True)
class LoginSettings:
    """How logins behave; `views.serve` reads them from its options and environment."""
    session_hours: float = 8.0          # a login lasts this long, then the browser logs in again
    secure_cookies: bool = False        # cookies sent over HTTPS only: on when served behind TLS
    same_site: str = "Lax"              # "Lax" or "Strict"
    max_failures_per_user: int = 5      # failures within `failure_window_seconds` before the user is locked out
    max_failures_per_address: int = 20  # same per client address (several users may share one, behind NAT)
    failure_window_seconds: float = 900.0
    lockout_seconds: float = 900.0
    trusted_proxies: tuple[str, ...] = ()  # addresses or networks whose X-Forwarded-For is believed

    def __post_init__(self):
        if self.same_site not in ("Lax", "Strict"):
            raise ValueError(f"same_site must be Lax or Strict, got {self.same_site!r}")
        if self.session_hours <= 0:
            raise ValueError("session_hours must be positive")

    @property
    def session_seconds(self) -> int:
        return int(self.session_hours * 3600)

    def cookie_options(self) -> dict[str, Any]:
        return {"httponly": True, "secure": self.secure_cookies, "samesite": self.same_site}


# ------------------------------------------------------------------------------------------ client address
def _networks(entries: Iterable[str]) -> list:
    return [ipaddress.ip_network(entry.strip(), strict=False) for entry in entries if entry.strip()]


def client_address(request, trusted: Iterable[str] = ()) -> str:
    """The browser's address: the peer's, or, when the peer is a trusted proxy, the last address of
    `X-Forwarded-For` that is not one of those proxies. Tornado's `xheaders` would believe any peer."""
    networks = _networks(trusted)
    peer = request.remote_ip or ""

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in networks)

    if not networks or not is_trusted(peer):
        return peer
    forwarded = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
    for address in reversed(forwarded):
        if not is_trusted(address):
            try:
                return str(ipaddress.ip_address(address))
            except ValueError:
                return peer
    return peer


# ------------------------------------------------------------------------------------------ throttling
class LoginThrottle:
    """Failures counted per key (`("user", name)` or `("address", ip)`) within a window; a key with `limit`
    failures is locked out for `lockout` seconds. Thread-safe; forgets old keys so that it stays small."""

    MAX_KEYS = 10_000

    def __init__(self, window: float, lockout: float, clock=time.monotonic):
        self.window, self.lockout, self.clock = window, lockout, clock
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._locked: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()

    def locked_for(self, keys: Iterable[tuple[str, str]]) -> tuple[tuple[str, str] | None, float]:
        """The first locked key and its remaining seconds, or (None, 0)."""
        now = self.clock()
        with self._lock:
            for key in keys:
                until = self._locked.get(key)
                if until is not None and until > now:
                    return key, until - now
                if until is not None:
                    del self._locked[key]
        return None, 0.0

    def failed(self, key: tuple[str, str], limit: int) -> tuple[int, bool]:
        """Record a failure: (failures in the window, whether the key is now locked out)."""
        now = self.clock()
        with self._lock:
            if len(self._failures) > self.MAX_KEYS:
                self._forget(now)
            times = self._failures.setdefault(key, deque())
            times.append(now)
            while times and times[0] < now - self.window:
                times.popleft()
            if len(times) >= limit:
                self._locked[key] = now + self.lockout
                times.clear()
                return limit, True
            return len(times), False

    def succeeded(self, key: tuple[str, str]) -> None:
        with self._lock:
            self._failures.pop(key, None)

    def _forget(self, now: float) -> None:
        for key in [k for k, t in self._failures.items() if not t or t[-1] < now - self.window]:
            del self._failures[key]
        for key in [k for k, until in self._locked.items() if until <= now]:
            del self._locked[key]


# ------------------------------------------------------------------------------------------ sessions
@dataclass
class Login:
    """A logged-in browser: who, with which role, until when (`time.time()`), and the pages it opened."""
    user: str
    role: str
    expires: float
    documents: weakref.WeakSet = field(default_factory=weakref.WeakSet, repr=False)

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires


class SessionRegistry:
    """The login sessions of this process, by random session ID (what the signed cookie holds). Logout or expiry
    removes the entry, so a cookie presented afterwards is refused; the pages open under it are emptied.
    One process: a restart logs everybody out (see docs/security.md)."""

    def __init__(self, lifetime_seconds: float):
        self.lifetime = lifetime_seconds
        self._logins: dict[str, Login] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._logins)

    def create(self, user: str, role: str) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._forget_expired()
            self._logins[sid] = Login(user, role, time.time() + self.lifetime)
        return sid

    def get(self, sid: str | None) -> Login | None:
        if not sid:
            return None
        with self._lock:
            login = self._logins.get(sid)
            if login is not None and login.expired:
                del self._logins[sid]
                login = None
        return login

    def end(self, sid: str | None) -> Login | None:
        """Forget a session and empty its open pages; the login ended, if there was one."""
        with self._lock:
            login = self._logins.pop(sid, None) if sid else None
        if login is not None:
            for doc in list(login.documents):
                doc.add_next_tick_callback(partial(end_page, doc))
        return login

    def attach(self, sid: str, doc) -> None:
        """A page (Bokeh document) opened under the session: emptied at logout, and when the login expires."""
        login = self.get(sid)
        if login is None or doc is None:
            return
        login.documents.add(doc)
        remaining_ms = max(0, int((login.expires - time.time()) * 1000))
        doc.add_timeout_callback(partial(end_page, doc), remaining_ms)

    def _forget_expired(self) -> None:
        for sid in [sid for sid, login in self._logins.items() if login.expired]:
            del self._logins[sid]


ENDED_TEXT = ("Session terminée : reconnectez-vous. / Session ended: please log in again. "
              f'<a href=".{LOGIN_URL}">Connexion / Log in</a>')


def end_page(doc) -> None:
    """Remove everything a page shows (its client data too) and say that the session ended."""
    doc.clear()
    doc.add_root(Div(text=ENDED_TEXT, css_classes=["session-ended"]))


# ------------------------------------------------------------------------------------------ the provider
def _safe_next(url: str | None) -> str:
    """Where to go after logging in: a path of this server only (no scheme, host or `//`), else the dashboard."""
    if not url or not url.startswith("/") or url.startswith("//") or "\\" in url:
        return "/"
    parts = urlsplit(url)
    if parts.scheme or parts.netloc:
        return "/"
    return url


def _same_origin(request) -> bool:
    """A browser's POST names the page it comes from; another site's form is refused before anything is read."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == request.host


class DashboardAuthProvider(AuthProvider):
    """The dashboard's logins for `pn.serve(auth_provider=...)` (Bokeh's public hook: Panel passes it to the server).

    `get_user` accepts a request whose signed session cookie names a live session, and records the login on the
    request (`request.scoring_login`) for the app function to read through the session's request.
    """

    def __init__(self, users: Mapping[str, DashboardUser], settings: LoginSettings = LoginSettings()):
        self.users = dict(users)
        self.settings = settings
        self.sessions = SessionRegistry(settings.session_seconds)
        self.throttle = LoginThrottle(settings.failure_window_seconds, settings.lockout_seconds)
        super().__init__()

    # Bokeh's AuthProvider interface
    @property
    def get_user(self):
        return self.user_of

    @property
    def login_url(self):
        return LOGIN_URL

    @property
    def login_handler(self):
        return LoginHandler

    @property
    def logout_url(self):
        return LOGOUT_URL

    @property
    def logout_handler(self):
        return LogoutHandler

    # ------------------------------------------------------------------ sessions
    def session_id(self, handler: RequestHandler) -> str | None:
        value = handler.get_signed_cookie(SESSION_COOKIE, max_age_days=self.settings.session_hours / 24 + 1e-6)
        return value.decode("ascii", "replace") if value else None

    def user_of(self, handler: RequestHandler) -> str | None:
        sid = self.session_id(handler)
        login = self.sessions.get(sid)
        if login is None:
            return None
        handler.request.scoring_login = SessionLogin(sid, login.user, login.role)
        return login.user


@dataclass(frozen=True)
class SessionLogin:
    """What a page knows of its login: the session (to attach the page to), the user and the role."""
    session_id: str
    user: str
    role: str


_templates = jinja2.Environment(loader=jinja2.FileSystemLoader(str(LOGIN_TEMPLATE.parent)), autoescape=True)


class _AuthPage(RequestHandler):
    """What the login and logout pages share: the auth provider, and headers that keep them out of frames and
    caches."""

    @property
    def provider(self) -> DashboardAuthProvider:
        return self.application.auth_provider

    def set_default_headers(self) -> None:
        for name, value in LOGIN_PAGE_HEADERS.items():
            self.set_header(name, value)


class LoginHandler(_AuthPage):
    """`GET /login`: the form (with its XSRF token); `POST /login`: checks, then the session cookie."""

    def _render(self, error: str | None = None, status: int = 200) -> None:
        self.set_status(status)
        self.xsrf_token  # sets the _xsrf cookie (with the application's xsrf_cookie_kwargs)
        page = _templates.get_template(LOGIN_TEMPLATE.name).render(
            error=error, xsrf_form_html=Markup(self.xsrf_form_html()), login_url="." + LOGIN_URL,
            next=_safe_next(self.get_argument("next", None)))
        self.finish(page)

    def get(self) -> None:
        self._render()

    async def post(self) -> None:
        address = client_address(self.request, self.provider.settings.trusted_proxies)
        if not _same_origin(self.request):
            log.warning("login refused: cross-site POST from origin %r (address %s)",
                        self.request.headers.get("Origin"), address)
            raise HTTPError(403, "cross-site login refused")
        try:
            self.check_xsrf_cookie()   # Tornado's: the _xsrf form field must match the _xsrf cookie, else 403
        except HTTPError:
            log.warning("login refused: no valid XSRF token (address %s)", address)
            raise
        name = self.get_body_argument("username", "").strip()[:MAX_FIELD_CHARS]
        password = self.get_body_argument("password", "")[:MAX_FIELD_CHARS]
        settings, throttle = self.provider.settings, self.provider.throttle
        keys = [("address", address)] + ([("user", name)] if name in self.provider.users else [])
        locked, remaining = throttle.locked_for(keys)
        if locked is not None:
            log.warning("login refused: %s %r locked out for %d s more (attempt for user %r from %s)",
                        locked[0], locked[1], remaining, name, address)
            self.set_header("Retry-After", str(int(remaining) + 1))
            return self._render("Trop d'essais : réessayez plus tard. / Too many attempts: try again later.", 429)

        user = await asyncio.get_running_loop().run_in_executor(
            _VERIFIER, verify_password, self.provider.users, name, password)
        if user is None:
            limits = {"user": settings.max_failures_per_user, "address": settings.max_failures_per_address}
            for key in keys:
                count, now_locked = throttle.failed(key, limits[key[0]])
                if now_locked:
                    log.warning("login locked out: %s %r after %d failures, for %d s",
                                key[0], key[1], count, settings.lockout_seconds)
            log.warning("login failed: user %r from %s", name, address)
            return self._render("Identifiant ou mot de passe incorrect. / Wrong user name or password.", 401)

        throttle.succeeded(("user", user.name))
        self.provider.sessions.end(self.provider.session_id(self))   # a new session ID at each login
        sid = self.provider.sessions.create(user.name, user.role)
        self.set_signed_cookie(SESSION_COOKIE, sid, expires_days=None, max_age=settings.session_seconds,
                               **settings.cookie_options())
        log.info("login: user %r (%s) from %s", user.name, user.role, address)
        self.redirect(_safe_next(self.get_body_argument("next", None)))


class LogoutHandler(_AuthPage):
    """`/logout`: the session is forgotten by the server (its cookie refused from now on) and its pages emptied."""

    def _logout(self) -> None:
        login = self.provider.sessions.end(self.provider.session_id(self))
        if login is not None:
            log.info("logout: user %r from %s", login.user,
                     client_address(self.request, self.provider.settings.trusted_proxies))
        self.clear_cookie(SESSION_COOKIE, **self.provider.settings.cookie_options())
        self.redirect("." + LOGIN_URL)

    def get(self) -> None:
        self._logout()

    def post(self) -> None:
        self._logout()


class LoggedInComponentHandler(ComponentResourceHandler):
    """Panel's `/components/...` route (component CSS and JS, imported by module name), for logged-in browsers
    only: registered before Panel's own, the same path answers 403 to anybody else."""

    async def prepare(self) -> None:
        provider = self.application.auth_provider
        if provider.get_user is not None:
            user = provider.get_user(self)
        elif provider.get_user_async is not None:
            user = await provider.get_user_async(self)
        else:  # no login configured (local development)
            return
        if not user:
            raise HTTPError(403)
