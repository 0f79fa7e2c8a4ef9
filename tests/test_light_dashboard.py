"""A dashboard over the API loads no ML stack: views import only the light contracts, and a process that
builds the app from `dashboard.py`'s code and opens a client through a live API has no XGBoost, Treelite,
DuckDB, scikit-learn or SHAP in `sys.modules`.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from scoring.contracts import ClientQuery

REPO = Path(__file__).resolve().parent.parent
TOKEN = "light-dashboard-token"
API_TOKENS = (f"{TOKEN} advisor+analyst forward-user",)  # a dashboard's service token
HEAVY = ("xgboost", "treelite", "duckdb", "sklearn", "shap")
#: what views/ and dashboard.py may import from scoring (the engine's modules are not in it)
ALLOWED = {"scoring.contracts", "scoring.errors", "scoring.labels", "scoring.backends", "scoring.config",
           "scoring.credentials"}

# Runs in a fresh interpreter: dashboard.py's imports, then one session's app as `views.app.create_app` builds it
# (the session's service over HTTP, the served template rendered into a document), then a client opened.
SESSION = """
import json, sys
from bokeh.document import Document

import dashboard  # noqa: F401  (pn.state.served is False: nothing is served)
from scoring.backends import open_service, session_service
from views.app import DashboardApp

heavy = {heavy!r}
service = open_service()
app = DashboardApp(service=session_service(service, "light-dashboard-test"))
document = Document()
app.template().server_doc(document)
client = app.state.client
opened = client.open(sys.argv[1]) if sys.argv[1:] else None
loaded = sorted(name for name in sys.modules if name.split(".")[0] in heavy)
print(json.dumps({{"service": type(service).__name__, "models": len(document.models), "opened": opened,
                  "client_id": client.file.client_id if client.file is not None else None,
                  "notice": client.notice.text("en") if client.notice is not None else None, "loaded": loaded}}))
"""


def scoring_imports(path: Path) -> set[str]:
    """The `scoring` modules a file imports (`from scoring import x` counts as `scoring.x`)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "scoring"}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "scoring":
                found |= {f"scoring.{a.name}" for a in node.names}
            elif node.module.startswith("scoring."):
                found.add(node.module)
    return found


def test_views_import_only_the_light_scoring_modules():
    files = [*sorted((REPO / "views").glob("*.py")), REPO / "dashboard.py"]
    imported = {f"{path.relative_to(REPO)}: {name}" for path in files for name in scoring_imports(path)
                if name not in ALLOWED}
    assert not imported, "views import the engine (or an unknown scoring module)"


def run_session(api_url: str, client_id: str | None) -> dict:
    env = {**os.environ, "SCORING_API_URL": api_url, "SCORING_API_TOKEN": TOKEN}
    env.pop("SCORING_API_TOKEN_FILE", None)
    args = [sys.executable, "-c", SESSION.format(heavy=HEAVY)] + ([client_id] if client_id else [])
    done = subprocess.run(args, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def overview_route_exists(api_url: str, client_id: int) -> bool:
    r = httpx.get(f"{api_url}/clients/{client_id}/overview", headers={"Authorization": f"Bearer {TOKEN}"},
                  timeout=30)
    return not (r.status_code == 404 and "client_id" not in r.text)


def test_a_dashboard_over_the_api_loads_no_ml_stack(api_server, service):
    client_id = int(service.search(ClientQuery(decision="refused", limit=1)).items[0]["client_id"])
    if not overview_route_exists(api_server.url, client_id):
        built = run_session(api_server.url, None)       # the app without a client: still light
        assert built["service"] == "HttpScoringService" and built["models"] > 0
        assert built["loaded"] == [], f"the dashboard process imported {built['loaded']}"
        pytest.skip(f"the API at {api_server.url} has no GET /clients/{{id}}/overview yet (404): the app was built "
                    f"without the ML stack, opening a client is not tested until the API offers the route")
    session = run_session(api_server.url, str(client_id))
    assert session["service"] == "HttpScoringService"
    assert session["opened"] is True and session["client_id"] == client_id, session["notice"]
    assert session["loaded"] == [], f"the dashboard process imported {session['loaded']}"
