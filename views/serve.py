"""Launcher of the dashboard (what `make run` does): `python -m views.serve --port 5006 --secrets secrets`.

Serves the app at `/dashboard` with gzip-compressed responses, Bokeh/Panel JavaScript from this
server (no CDN: the bank's intranet is offline), basic auth from `secrets/dashboard_users.json`
(created by `python -m scoring secrets`) with a signed cookie, and an unauthenticated `/health`
probe that says whether the model is loaded (no client data).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

# Bokeh's and Panel's JavaScript from this server, never from a CDN (the intranet is offline).
os.environ.setdefault("BOKEH_RESOURCES", "server")

import panel as pn  # noqa: E402
from tornado.web import RequestHandler  # noqa: E402

from scoring.credentials import COOKIE_FILE, USERS_FILE  # noqa: E402

APP_PATH = "dashboard"
LOGIN_TEMPLATE = Path(__file__).parent / "templates" / "login.html"


class HealthHandler(RequestHandler):
    """`GET /health`: 200 with the model version once the scoring service answers, 503 otherwise."""

    def initialize(self, service_factory):
        self.service_factory = service_factory

    def get(self):
        from scoring.errors import ScoringError

        try:
            version = self.service_factory().model_card().get("version")
        except (ScoringError, OSError) as exc:
            self.set_status(503)
            self.write({"status": "unavailable", "detail": str(exc)})
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


def auth_options(secrets: str | Path) -> dict:
    """`basic_auth` (the JSON users file) and `cookie_secret` for `pn.serve`; explicit errors if missing."""
    directory = Path(secrets)
    users, cookie = directory / USERS_FILE, directory / COOKIE_FILE
    for path in (users, cookie):
        if not path.exists():
            raise SystemExit(f"{path} is missing: create the local logins with `python -m scoring secrets --dir "
                             f"{directory}` (or `make secrets`), or pass --no-auth for local development")
    try:
        logins = json.loads(users.read_text())
    except ValueError as exc:
        raise SystemExit(f"{users} is not a JSON {{user: password}} file: {exc}") from None
    if not isinstance(logins, dict) or not logins:
        raise SystemExit(f"{users} holds no login")
    return {"basic_auth": str(users), "cookie_secret": cookie.read_text().strip(),
            "login_template": str(LOGIN_TEMPLATE)}


def serve(*, port: int = 5006, address: str = "127.0.0.1", secrets: str | Path | None = "secrets",
          no_auth: bool = False, service=None, audit=None, websocket_origins: list[str] | None = None,
          threaded: bool = False, show: bool = False, warm: bool = True, **server_kwargs):
    """Start the dashboard server (`threaded=True` returns the running thread, e.g. for tests).

    `audit`: where in-process sessions write their audit entries (default: the process-wide log).
    """
    from scoring.backends import open_service

    from .app import create_app

    def get_service():
        return service if service is not None else open_service()

    if warm:
        warm_up(get_service())

    def app():
        return create_app(service=get_service(), audit=audit)

    # Panel sends MathJax (bokeh-mathjax.min.js, ~0.6 MB of the ~1.5 MB gzipped first load) to any page holding
    # an HTML pane, in case it holds LaTeX; ours never do, but Panel 1.9 has no public setting to leave it out.
    # Worth asking upstream; not worth a patch of Panel's internals.
    options = {} if no_auth else auth_options(secrets)
    hosts = {f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"} if port else set()
    origins = sorted(hosts | set(websocket_origins or []))
    return pn.serve(
        {APP_PATH: app}, port=port, address=address, show=show, threaded=threaded, title="Scoring crédit",
        websocket_origin=origins or None, compress_response=True,
        extra_patterns=[(r"/health", HealthHandler, {"service_factory": get_service})],
        **options, **server_kwargs)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m views.serve", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=5006)
    parser.add_argument("--address", default="127.0.0.1", help="interface to listen on (0.0.0.0 in a container)")
    parser.add_argument("--secrets", default="secrets", help="directory with dashboard_users.json and cookie_secret")
    parser.add_argument("--no-auth", action="store_true", help="no login (local development only)")
    parser.add_argument("--workdir", help="built work directory (default: $SCORING_WORKDIR or the repository)")
    parser.add_argument("--allow-websocket-origin", action="append", default=[], metavar="HOST[:PORT]",
                        help="public host name the browser uses, when behind a proxy or in a container")
    parser.add_argument("--show", action="store_true", help="open a browser tab")
    args = parser.parse_args(argv)
    if args.workdir:
        os.environ["SCORING_WORKDIR"] = str(Path(args.workdir).resolve())

    from scoring.errors import ScoringError

    host = "localhost" if args.address in ("0.0.0.0", "::") else args.address
    url = f"http://{host}:{args.port}/{APP_PATH}"
    if args.no_auth:
        print("WARNING: --no-auth: anyone who can reach this port sees every client file. Local development only.",
              file=sys.stderr)
    else:
        users = Path(args.secrets) / USERS_FILE
        auth_options(args.secrets)  # fail early with a helpful message
        names = ", ".join(json.loads(users.read_text()))
        print(f"Logins (user names: {names}) and passwords are in {users.resolve()}")
    print("Loading the model and the client files...", flush=True)
    from scoring.backends import open_service

    try:
        service = open_service()
        warm_up(service)
    except ScoringError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"Dashboard: {url}   (health: http://{host}:{args.port}/health)", flush=True)
    serve(port=args.port, address=args.address, secrets=args.secrets, no_auth=args.no_auth, service=service,
          websocket_origins=args.allow_websocket_origin, show=args.show, warm=False, verbose=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
