"""Launcher of the dashboard (what `make run` does): `python -m views.serve --port 5006 --secrets secrets`.

Serves the app at `/dashboard` with gzip-compressed responses, Bokeh/Panel JavaScript from this
server (no CDN: the bank's intranet is offline), the logins of `secrets/dashboard_users.json`
(Argon2 hashes and roles, created by `python -m scoring secrets`; `views/login.py`) or the bank's
single sign-on (`--oauth-provider`, Panel's OAuth), and an unauthenticated `/health` probe that says
ok or unavailable (no client data, no error text). docs/security.md says what each setting is for.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

# Bokeh's and Panel's JavaScript from this server, never from a CDN (the intranet is offline).
os.environ.setdefault("BOKEH_RESOURCES", "server")

import panel as pn  # noqa: E402
from tornado.web import RequestHandler  # noqa: E402

from scoring.credentials import COOKIE_FILE, USERS_FILE, check_private, read_users  # noqa: E402

from .login import (MAX_BODY_BYTES, SESSION_COOKIE, DashboardAuthProvider, LoggedInComponentHandler,  # noqa: E402
                    LoginSettings)

log = logging.getLogger(__name__)

APP_PATH = "dashboard"
# Panel registers its component resources at /components/<module>/<class>/...: the same path, earlier in the
# route list, serves them to logged-in browsers only
COMPONENTS_ROUTE = r"/components/(.*)"
ENV_PREFIX = "SCORING_DASHBOARD_"


class HealthHandler(RequestHandler):
    """`GET /health`: 200 with the model version once the scoring service answers, 503 otherwise. The reason is
    logged, never sent: an error's text may name files, hosts or the database."""

    def initialize(self, service_factory):
        self.service_factory = service_factory

    def get(self):
        self.set_header("Cache-Control", "no-store")
        try:
            version = self.service_factory().model_card().get("version")
        except Exception as exc:  # noqa: BLE001 - a probe answers, whatever the failure
            log.warning("health: scoring service unavailable: %s: %s", type(exc).__name__, exc)
            self.set_status(503)
            self.write({"status": "unavailable"})
            return
        self.write({"status": "ok", "model_version": version})


def warm_up(service) -> None:
    """Compute the process-wide reference statistics once, before the first session asks for them.

    Population figures only over HTTP (the API process warms its own caches, and a client read there
    would be an audited action of nobody); in process, one client's overview too (SHAP, ratios).
    """
    from scoring.contracts import ClientQuery

    service.portfolio()
    service.drift()
    service.global_importance(15)
    top = service.top_features(5)
    for feature in top:
        service.distribution(feature.feature)
    if hasattr(service, "base_url"):
        return
    first = service.search(ClientQuery(limit=1)).items
    if first:
        client_id = int(first[0]["client_id"])
        for feature in top:
            service.distribution(feature.feature, client_id)
        service.overview(client_id, top[0].feature if top else None, 10)


def read_secrets(secrets: str | Path) -> tuple[dict, str]:
    """The dashboard logins and the cookie secret; explicit errors if missing, readable by others, or plaintext."""
    from scoring.errors import ScoringError

    directory = Path(secrets)
    users, cookie = directory / USERS_FILE, directory / COOKIE_FILE
    for path in (users, cookie):
        if not path.exists():
            raise SystemExit(f"{path} is missing: create the local logins with `python -m scoring secrets --dir "
                             f"{directory}` (or `make secrets`), or pass --no-auth for local development")
    try:
        check_private(cookie)
        return read_users(users), cookie.read_text().strip()
    except ScoringError as exc:
        raise SystemExit(f"error: {exc}") from None


def settings_from_env(environ=os.environ) -> dict:
    """`SCORING_DASHBOARD_*` variables, as `serve()` keyword arguments (command-line options override them)."""
    def flag(name):
        return environ.get(ENV_PREFIX + name, "").strip().lower() in ("1", "true", "yes", "on")

    proxies = tuple(p.strip() for p in environ.get(ENV_PREFIX + "TRUSTED_PROXIES", "").split(",") if p.strip())
    out: dict = {"secure_cookies": flag("SECURE_COOKIES"), "trusted_proxies": proxies,
                 "oauth_provider": environ.get(ENV_PREFIX + "OAUTH_PROVIDER") or None,
                 "role_claim": environ.get(ENV_PREFIX + "ROLE_CLAIM") or "roles"}
    if environ.get(ENV_PREFIX + "SESSION_HOURS"):
        out["session_hours"] = float(environ[ENV_PREFIX + "SESSION_HOURS"])
    return out


def serve(*, port: int = 5006, address: str = "127.0.0.1", secrets: str | Path | None = "secrets",
          no_auth: bool = False, service=None, audit=None, websocket_origins: list[str] | None = None,
          threaded: bool = False, show: bool = False, warm: bool = True, login: LoginSettings | None = None,
          oauth_provider: str | None = None, role_claim: str = "roles", role: str | None = None, **server_kwargs):
    """Start the dashboard server (`threaded=True` returns the running thread, e.g. for tests).

    `audit`: where in-process sessions write their audit entries (default: the process-wide log).
    `login`: sessions, cookies, lockout and trusted proxies of the built-in logins (`secrets`).
    `oauth_provider`: the bank's single sign-on instead (Panel's OAuth providers: "azure", "okta", "generic"...;
    client ID, secret and redirect URI from Panel's PANEL_OAUTH_* variables); roles from the ID token's
    `role_claim`.
    """
    from scoring.backends import open_service

    from .app import create_app, role_from_claims

    login = login or LoginSettings()

    def get_service():
        return service if service is not None else open_service()

    if warm:
        warm_up(get_service())

    provider = None
    options: dict = {}
    if oauth_provider:
        from panel.auth import AUTH_PROVIDERS

        if oauth_provider not in AUTH_PROVIDERS:
            raise SystemExit(f"unknown OAuth provider {oauth_provider!r}; Panel's: {', '.join(sorted(AUTH_PROVIDERS))}")
        cookie = Path(secrets) / COOKIE_FILE if secrets else None
        if cookie is not None and cookie.exists():
            check_private(cookie)
            cookie_secret = cookie.read_text().strip()
        else:
            cookie_secret = os.environ.get("PANEL_COOKIE_SECRET")
        if not cookie_secret:
            raise SystemExit("--oauth-provider needs a cookie secret: secrets/cookie_secret or PANEL_COOKIE_SECRET")
        pn.config.oauth_expiry = login.session_hours / 24
        options = {"oauth_provider": oauth_provider, "cookie_secret": cookie_secret}
    elif not no_auth:
        users, cookie_secret = read_secrets(secrets)
        provider = DashboardAuthProvider(users, login)
        options = {
            "auth_provider": provider, "cookie_secret": cookie_secret,
            # the session cookie stays out of the Bokeh session token, which the page's HTML carries: HttpOnly
            # would be moot if a script could read the cookie there (the page learns its login from the request)
            "exclude_cookies": [SESSION_COOKIE], "exclude_headers": ["Cookie"],
            "xsrf_cookie_kwargs": login.cookie_options(),
        }

    def app():
        context = pn.state.curdoc.session_context
        if provider is not None:
            # the request that opened the session, where DashboardAuthProvider.get_user recorded its login
            identity = getattr(context.request, "scoring_login", None) if context is not None else None
            if identity is None:  # no login on this request (e.g. a session re-created from its token alone)
                return create_app(service=get_service(), audit=audit, user=None, role=None, require_role=True)
            provider.sessions.attach(identity.session_id, pn.state.curdoc)
            return create_app(service=get_service(), audit=audit, user=identity.user, role=identity.role,
                              require_role=True)
        if oauth_provider:
            return create_app(service=get_service(), audit=audit, user=pn.state.user,
                              role=role_from_claims(pn.state.user_info, role_claim), require_role=True)
        return create_app(service=get_service(), audit=audit, role=role)  # no login: every part, or `role`'s

    # Panel sends MathJax (bokeh-mathjax.min.js, ~0.6 MB of the ~1.5 MB gzipped first load) to any page holding
    # an HTML pane, in case it holds LaTeX; ours never do, but Panel 1.9 has no public setting to leave it out.
    # Worth asking upstream; not worth a patch of Panel's internals.
    hosts = {f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"} if port else set()
    origins = sorted(hosts | set(websocket_origins or []))
    patterns = [(r"/health", HealthHandler, {"service_factory": get_service})]
    if provider is not None or oauth_provider:
        patterns.append((COMPONENTS_ROUTE, LoggedInComponentHandler, {}))
    http_server_kwargs = {
        # bodies over 64 KiB are refused from their Content-Length (or as they stream) before they are buffered.
        # max_buffer_size stays Tornado's: it also bounds a websocket frame (Bokeh allows 20 MB messages)
        "max_body_size": MAX_BODY_BYTES,
        # Tornado's xheaders would believe X-Forwarded-For from any peer: views/login.py believes it only from
        # the trusted proxies, for the client address of throttling and logs
        "xheaders": False,
        **server_kwargs.pop("http_server_kwargs", {}),
    }
    return pn.serve(
        {APP_PATH: app}, port=port, address=address, show=show, threaded=threaded, title="Scoring crédit",
        websocket_origin=origins or None, compress_response=True, extra_patterns=patterns,
        http_server_kwargs=http_server_kwargs, **options, **server_kwargs)


def main(argv: list[str] | None = None) -> int:
    env = settings_from_env()
    parser = argparse.ArgumentParser(prog="python -m views.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5006)
    parser.add_argument("--address", default="127.0.0.1", help="interface to listen on (0.0.0.0 in a container)")
    parser.add_argument("--secrets", default="secrets", help="directory with dashboard_users.json and cookie_secret")
    parser.add_argument("--no-auth", action="store_true", help="no login (local development only)")
    parser.add_argument("--role", choices=("advisor", "analyst"),
                        help="with --no-auth: the page of this role only (default: every part)")
    parser.add_argument("--workdir", help="built work directory (default: $SCORING_WORKDIR or the repository)")
    parser.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST[:PORT]",
                        help="public host name the browser uses, when behind a proxy or in a container")
    parser.add_argument("--show", action="store_true", help="open a browser tab")
    security = parser.add_argument_group("security (docs/security.md; each also from a SCORING_DASHBOARD_* variable)")
    security.add_argument("--session-hours", type=float, default=env.get("session_hours", 8.0),
                          help="a login lasts this long (default 8; SCORING_DASHBOARD_SESSION_HOURS)")
    security.add_argument("--secure-cookies", action="store_true", default=env["secure_cookies"],
                          help="cookies over HTTPS only: set it when served behind TLS (SCORING_DASHBOARD_SECURE_COOKIES=1)")
    security.add_argument("--ssl-certfile", help="serve HTTPS with this certificate (implies --secure-cookies)")
    security.add_argument("--ssl-keyfile", help="its private key")
    security.add_argument("--trusted-proxy", action="append", default=list(env["trusted_proxies"]), metavar="ADDRESS",
                          help="address or network of a reverse proxy whose X-Forwarded-For is believed "
                               "(SCORING_DASHBOARD_TRUSTED_PROXIES, comma-separated)")
    security.add_argument("--oauth-provider", default=env["oauth_provider"],
                          help="single sign-on with Panel's OAuth provider of this name (azure, okta, generic...; "
                               "PANEL_OAUTH_KEY, _SECRET, _REDIRECT_URI, _ENCRYPTION; SCORING_DASHBOARD_OAUTH_PROVIDER)")
    security.add_argument("--role-claim", default=env["role_claim"],
                          help="ID token claim listing the user's roles, with single sign-on (default: roles)")
    args = parser.parse_args(argv)
    if args.workdir:
        os.environ["SCORING_WORKDIR"] = str(Path(args.workdir).resolve())
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("views").setLevel(logging.INFO)   # logins and logouts too, not only failures

    from scoring.errors import ScoringError

    secure = args.secure_cookies or bool(args.ssl_certfile)
    scheme = "https" if args.ssl_certfile else "http"
    host = "localhost" if args.address in ("0.0.0.0", "::") else args.address
    url = f"{scheme}://{host}:{args.port}/{APP_PATH}"
    login = LoginSettings(session_hours=args.session_hours, secure_cookies=secure,
                          trusted_proxies=tuple(args.trusted_proxy))
    if args.role and not args.no_auth:
        parser.error("--role goes with --no-auth (with logins, each user's role decides the page)")
    if args.no_auth and not args.oauth_provider:
        print("WARNING: --no-auth: anyone who can reach this port sees every client file. Local development only.",
              file=sys.stderr)
    elif args.oauth_provider:
        print(f"Single sign-on: Panel's OAuth provider {args.oauth_provider!r}, roles from the "
              f"{args.role_claim!r} claim")
    else:
        users, _ = read_secrets(args.secrets)  # fail early with a helpful message
        names = ", ".join(f"{u.name} ({u.role})" for u in users.values())
        print(f"Logins: {names}. Passwords were shown once by `python -m scoring secrets`; a new one: "
              f"`python -m scoring.credentials --dir {args.secrets} set-password NAME`")
    print("Loading the model and the client files...", flush=True)
    from scoring.backends import open_service

    try:
        service = open_service()
        warm_up(service)
    except ScoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Dashboard: {url}   (health: {scheme}://{host}:{args.port}/health)", flush=True)
    tls = {"ssl_certfile": args.ssl_certfile, "ssl_keyfile": args.ssl_keyfile} if args.ssl_certfile else {}
    serve(port=args.port, address=args.address, secrets=args.secrets, no_auth=args.no_auth, service=service,
          websocket_origins=args.allow_websocket_origin, show=args.show, warm=False, verbose=False, login=login,
          oauth_provider=args.oauth_provider, role_claim=args.role_claim, role=args.role, **tls)
    return 0


if __name__ == "__main__":
    sys.exit(main())
