"""No script from a link, the data or another service ever runs in the dashboard: the real page, in headless
Chromium, fed hostile values by three parties.

(a) a link: `?client=` and `?lang=` carrying HTML, script and `javascript:` payloads;
(b) the data: a dataset built from a TOML schema whose category values and labels are payloads, served,
    a client opened and the hostile feature compared;
(c) the scoring API: a real HTTP server between the dashboard and the API answers the client reads with errors
    (and a file) carrying payloads, or every call with an error.

Each page sets `window.__xss = 0` before any script of its own runs; every payload sets it to 1 if it ever
runs. Each test also fails on an element carrying an injected handler or `javascript:` address, any 5xx
answer, a console or page error, or a "Traceback" on the page. Needs Debian's /usr/bin/chromium; screenshots
go to test-artifacts/.
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urlparse

import httpx
import numpy as np
import pandas as pd
import pytest
from playwright.sync_api import expect

from dashboard_server import DashboardServer
from scoring.audit import AuditLog
from scoring.build import build
from scoring.client import HttpScoringService
from scoring.config import Workdir
from scoring.contracts import ClientQuery
from views.i18n import labels_for

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
TOKEN = "hostile-page-test-token"
API_TOKENS = (f"{TOKEN} advisor+analyst forward-user",)   # the dashboard's service token (conftest's api_server)

IMG = '<img src=x onerror="window.__xss=1">'
SCRIPT = "<script>window.__xss=1</script>"
SVG = '"><svg onload=window.__xss=1>'
LINK = "javascript:window.__xss=1"
MARKDOWN_LINK = "[open](javascript:window.__xss=1)"
CLOSE_SCRIPT = "</script><script>window.__xss=1</script>"       # out of a JSON block embedded in the page
PAYLOADS = (IMG, SCRIPT, SVG, LINK, MARKDOWN_LINK, CLOSE_SCRIPT)

#: every element, shadow roots included, that carries a handler or address a payload could have planted
INJECTED_JS = """() => {
  const found = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      for (const a of el.attributes) {
        const name = a.name.toLowerCase(), value = a.value;
        if (name.startsWith('on') && value.includes('__xss')) found.push(el.outerHTML.slice(0, 200));
        if (['href', 'src', 'action', 'formaction', 'xlink:href', 'srcdoc'].includes(name)
            && (/^\\s*javascript:/i.test(value) || value.includes('__xss'))) found.push(el.outerHTML.slice(0, 200));
      }
      const type = (el.getAttribute('type') || '').toLowerCase();
      if (el.tagName === 'SCRIPT' && !type.includes('json') && el.textContent.includes('__xss'))
        found.push(el.outerHTML.slice(0, 200));
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return found;
}"""


#: the text of the Bokeh hover tooltips on screen
TOOLTIPS_JS = """() => {
  const found = [];
  const walk = (root) => {
    for (const el of root.querySelectorAll('*')) {
      if (el.classList.contains('bk-tooltip-content')) found.push(el.textContent);
      if (el.shadowRoot) walk(el.shadowRoot);
    }
  };
  walk(document);
  return found;
}"""


# ---------------------------------------------------------------------------------------------- the page
class Watched:
    """A Playwright page watched for script injection, 5xx answers, console and page errors."""

    def __init__(self, page):
        self.page = page
        self.problems: list[str] = []
        page.add_init_script("window.__xss = 0")
        page.on("console", lambda m: self.problems.append(f"console error: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("response", lambda r: self.problems.append(f"{r.status} from {r.url}") if r.status >= 500 else None)
        page.set_viewport_size({"width": 1600, "height": 1800})
        page.set_default_timeout(30_000)

    def assert_nothing_ran(self) -> None:
        self.page.wait_for_timeout(300)           # an image's error, a frame's load: asynchronous
        assert self.page.evaluate("() => window.__xss") == 0, "a payload ran"
        assert self.page.evaluate(INJECTED_JS) == [], "an element carries an injected handler or address"
        assert self.page.get_by_text("Traceback").count() == 0, "a Python traceback is shown in the page"
        assert not self.problems, self.problems

    def hover_plots(self, selector: str) -> str:
        """Move the mouse across each plot of `selector`; the text of the hover tooltips shown (HoloViews' tooltips
        name a dimension by its label and show the values under the mouse)."""
        seen: set[str] = set()
        for canvas in self.page.locator(f"{selector} canvas").all():
            box = canvas.bounding_box()
            if not box or box["width"] < 100:         # a legend's swatch
                continue
            for fx in np.linspace(0.1, 0.95, 12):
                for fy in (0.3, 0.5, 0.6, 0.75):
                    self.page.mouse.move(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
                    self.page.wait_for_timeout(20)
                    seen.update(self.page.evaluate(TOOLTIPS_JS))
        return "\n".join(sorted(seen))


@pytest.fixture
def watched(page, request):
    w = Watched(page)
    yield w
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{re.sub(r'[^A-Za-z0-9_.-]', '_', request.node.name)}.png"))
    w.assert_nothing_ran()


def open_page(watched: Watched, url: str) -> None:
    watched.page.goto(url)
    expect(watched.page.locator(".client-id-input input, .notice").first).to_be_attached()


# ---------------------------------------------------------------------------------------------- (a) a link
@pytest.fixture(scope="module")
def server(service, tmp_path_factory):
    with DashboardServer(service, AuditLog(tmp_path_factory.mktemp("audit") / "audit.sqlite")) as running:
        yield running


@pytest.mark.parametrize("payload", PAYLOADS, ids=("img", "script", "svg", "javascript", "markdown", "close-script"))
def test_a_hostile_client_id_in_the_link_is_shown_as_text(watched, server, payload):
    open_page(watched, f"{server.url}?client={quote(payload)}")
    expect(watched.page.locator(".client-card-pane").get_by_text("Aucun dossier ouvert")).to_be_visible()
    if payload.startswith("["):      # Panel drops a query value it cannot parse as the list it looks like
        return
    notice = watched.page.locator(".notice .notice-text")
    expect(notice.first).to_be_visible()
    expect(notice.first).to_contain_text(payload.strip()[:30])   # as typed, truncated to 40 characters


def test_a_hostile_language_or_typed_id_changes_nothing(watched, server, service):
    client_id = int(service.search(ClientQuery(limit=1)).items[0]["client_id"])
    for payload in PAYLOADS:
        open_page(watched, f"{server.url}?client={client_id}&lang={quote(payload)}")
        expect(watched.page.locator(".client-id")).to_have_text(str(client_id))
        expect(watched.page.locator(".decision-badge")).to_have_text(re.compile("^(Accordé|Refusé)$"))   # French
        watched.assert_nothing_ran()
    box = watched.page.locator(".client-id-input input")
    for payload in PAYLOADS:
        box.fill(payload)
        box.press("Enter")
        expect(watched.page.locator(".notice .notice-text").first).to_contain_text(payload.strip()[:30])
    expect(watched.page.locator(".client-id")).to_have_text(str(client_id))


# ---------------------------------------------------------------------------------------------- (b) the data
PURPOSES = (IMG, SCRIPT, SVG, LINK)                      # a category column's values
KINDS = (CLOSE_SCRIPT, MARKDOWN_LINK)                     # the contract type's values

SCHEMA = f"""
name = "hostile_loans"

[data]
train = "train.csv"
new = "new.csv"

[columns]
id = "loan_id"
target = "status"
positive = "charged_off"

[roles]
age = {{ column = "age", unit = "years" }}
income = {{ column = "income", unit = "monthly" }}
credit_amount = "loan_amount"
term = {{ column = "term_months", unit = "months" }}
contract_type = "kind"

[labels.purpose]
fr = '{IMG}'
en = '{SVG}'
kind = "category"
values = {{ '{IMG}' = {{ fr = '{SCRIPT}', en = '{SVG}' }}, '{LINK}' = '{MARKDOWN_LINK}' }}

[labels.kind]
fr = '{SVG}'
en = '{SCRIPT}'
kind = "category"

[labels.loan_amount]
fr = '{CLOSE_SCRIPT}'
en = '{IMG}'
kind = "amount"
"""


def hostile_frame(n: int, seed: int, first_id: int, labelled: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    purpose = rng.integers(0, len(PURPOSES), n)
    kind = rng.integers(0, len(KINDS), n)
    df = pd.DataFrame({"loan_id": np.arange(first_id, first_id + n), "age": rng.integers(21, 70, n),
                       "income": np.round(rng.lognormal(np.log(4200), 0.45, n)),
                       "loan_amount": np.round(rng.lognormal(np.log(14000), 0.6, n), -2),
                       "term_months": rng.choice([36, 60], n),
                       "purpose": np.array(PURPOSES, dtype=object)[purpose],
                       "kind": np.array(KINDS, dtype=object)[kind]})
    if labelled:   # the purpose and the contract type decide most of the risk: both are top features
        logit = -2.5 + 1.4 * purpose + 1.0 * kind + rng.normal(0, 0.5, n)
        df.insert(1, "status", np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "charged_off", "fully_paid"))
    return df


@pytest.fixture(scope="module")
def hostile_data(tmp_path_factory):
    """A dataset whose category values and labels are payloads, built by `python -m scoring build --schema`'s code."""
    from scoring.service import LocalScoringService

    root = tmp_path_factory.mktemp("hostile_data")
    hostile_frame(800, 1, 1, True).to_csv(root / "train.csv", index=False)
    hostile_frame(200, 2, 5001, False).to_csv(root / "new.csv", index=False)
    (root / "schema.toml").write_text(SCHEMA, encoding="utf-8")
    workdir = Workdir(root / "work")
    build(workdir, schema=root / "schema.toml", quiet=True, nthread=1)
    return LocalScoringService(workdir)


@pytest.fixture(scope="module")
def hostile_server(hostile_data, tmp_path_factory):
    with DashboardServer(hostile_data, AuditLog(tmp_path_factory.mktemp("audit") / "audit.sqlite")) as running:
        yield running


def test_hostile_categories_and_labels_in_the_data_are_shown_as_text(watched, hostile_server, hostile_data):
    top = {f.feature: f for f in hostile_data.top_features(5)}
    assert {"purpose", "kind"} <= set(top), "the hostile columns must be among the compared features"
    client_id = int(hostile_data.search(ClientQuery(limit=1)).items[0]["client_id"])
    page = watched.page
    open_page(watched, f"{hostile_server.url}?client={client_id}")
    expect(page.locator(".client-id")).to_have_text(str(client_id))
    labels = labels_for(hostile_data)                                        # what the dashboard reads them as
    contract = hostile_data.client(client_id).application["contract_type"]
    expect(page.locator(".client-card")).to_contain_text(labels.format_value("contract_type", contract, "fr"))
    expect(page.locator(".drift-table")).to_contain_text(top["purpose"].label_fr)
    expect(page.locator(".importance canvas").first).to_be_visible()
    watched.assert_nothing_ran()

    for feature in ("purpose", "kind"):
        page.locator(".feature-select select").select_option(label=top[feature].label_fr)
        text = page.locator(f'.client-value[data-feature="{feature}"]')
        expect(text).to_be_visible()
        value = hostile_data.distribution(feature, client_id).client_value
        assert value in (*PURPOSES, *KINDS)
        expect(text).to_contain_text(labels.format_value(feature, value, "fr"))   # a payload (or its translation)
        expect(page.locator(".comparison canvas").first).to_be_visible()
        assert top[feature].label_fr in watched.hover_plots(".comparison")    # the hostile label, as text
        watched.assert_nothing_ran()
    watched.hover_plots(".waterfall")            # its bars are a few pixels wide: a tooltip shows only by chance
    assert any(p in watched.hover_plots(".importance") for p in PAYLOADS)   # a hostile feature's label, as text
    page.locator(".filters").get_by_text("Rechercher dans les dossiers").click()
    expect(page.locator(".filters select").nth(1)).to_be_visible()           # contract types: the payloads
    page.locator(".language-switch").get_by_text("EN", exact=True).click()
    expect(page.locator(".decision-badge")).to_have_text(re.compile("^(Accepted|Refused)$"))
    watched.hover_plots(".comparison")
    watched.hover_plots(".waterfall")


# ---------------------------------------------------------------------------------------------- (c) the API
class HostileApi:
    """A real HTTP server between the dashboard and the scoring API: it forwards every request to the API, except
    those `hostile(path)` selects, answered with `answer` = (status, content type, body) carrying payloads, or
    passed through `tamper(json)` when `answer` is None. The hostile party of these tests, not a stand-in for
    the API: what it forwards is the API's own answer."""

    def __init__(self, upstream: str):
        self.upstream = httpx.Client(base_url=upstream, timeout=30.0)
        self.hostile = lambda path: False
        self.answer: tuple[int, str, bytes] | None = None
        self.tamper = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                proxy.handle(self)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def handle(self, request: BaseHTTPRequestHandler) -> None:
        path = urlparse(request.path).path
        status, content_type, body = 0, "application/json", b""
        if self.hostile(path) and self.answer is not None:
            status, content_type, body = self.answer
        else:
            length = int(request.headers.get("Content-Length") or 0)
            headers = {k: v for k, v in request.headers.items()
                       if k.lower() in ("authorization", "x-user", "x-role", "content-type")}
            r = self.upstream.request(request.command, request.path, headers=headers,
                                      content=request.rfile.read(length) if length else None)
            status, content_type, body = r.status_code, r.headers.get("content-type", ""), r.content
            if self.hostile(path) and self.tamper is not None and status == 200:
                body = json.dumps(self.tamper(r.json())).encode()
        request.send_response(status)
        request.send_header("Content-Type", content_type)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        request.wfile.write(body)

    def __enter__(self) -> "HostileApi":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.upstream.close()


def client_reads(path: str) -> bool:
    return re.fullmatch(r"/clients/\d+(/.*)?", path) is not None


def json_answer(status: int, body: dict) -> tuple[int, str, bytes]:
    return status, "application/json", json.dumps(body).encode()


ERRORS = {
    "503-detail": json_answer(503, {"detail": IMG + SCRIPT}),
    "500-detail": json_answer(500, {"detail": SVG + MARKDOWN_LINK}),
    "502-html": (502, "text/html", f"<html><body><h1>Bad gateway</h1>{IMG}{SCRIPT}{CLOSE_SCRIPT}</body></html>".encode()),
    "404-client": json_answer(404, {"detail": SVG, "client_id": IMG}),
    "422-detail": json_answer(422, {"detail": SCRIPT}),
    "503-audit": json_answer(503, {"detail": IMG, "audit": True}),
    "401-message": json_answer(401, {"message": LINK + SVG}),
}


@pytest.fixture(scope="module")
def hostile_api(api_server):
    with HostileApi(api_server.url) as proxy:
        yield proxy


@pytest.fixture(scope="module")
def over_hostile_api(hostile_api, tmp_path_factory):
    backend = HttpScoringService(hostile_api.url, TOKEN, timeout=10.0)
    with DashboardServer(backend, AuditLog(tmp_path_factory.mktemp("audit") / "audit.sqlite")) as running:
        yield running
    backend.close()


@pytest.fixture
def api(hostile_api):
    yield hostile_api
    hostile_api.hostile, hostile_api.answer, hostile_api.tamper = (lambda path: False), None, None


@pytest.mark.parametrize("error", list(ERRORS))
def test_an_api_error_carrying_html_is_shown_as_text(watched, over_hostile_api, api, service, error):
    client_id = int(service.search(ClientQuery(limit=1)).items[0]["client_id"])
    api.hostile, api.answer = client_reads, ERRORS[error]
    open_page(watched, f"{over_hostile_api.url}?client={client_id}")
    expect(watched.page.locator(".notice .notice-text").first).to_be_visible()
    expect(watched.page.locator(".client-card-pane").get_by_text("Aucun dossier ouvert")).to_be_visible()


def test_a_client_file_from_the_api_carrying_html_is_shown_as_text(watched, over_hostile_api, api, service):
    client_id = int(service.search(ClientQuery(limit=1)).items[0]["client_id"])

    def tamper(overview):
        if "file" not in overview:       # the advisor's answer (reasons, offers...) read after it: as sent
            return overview
        overview["file"]["score"]["decision"] = IMG
        overview["file"]["profile"]["family"] = SCRIPT
        overview["file"]["application"]["contract_type"] = SVG
        for contribution in overview["explanation"]["contributions"][:3]:
            contribution["value"], contribution["label"], contribution["label_fr"] = CLOSE_SCRIPT, IMG, IMG
        return overview

    api.hostile, api.tamper = client_reads, tamper
    open_page(watched, f"{over_hostile_api.url}?client={client_id}")
    expect(watched.page.locator(".client-id")).to_have_text(str(client_id))
    expect(watched.page.locator(".decision-badge")).to_have_text(IMG)
    card = watched.page.locator(".client-card")
    if "family" in service.roles:
        expect(card).to_contain_text(SCRIPT)
    if "contract_type" in service.roles:
        expect(card).to_contain_text(SVG)
    expect(watched.page.locator(".waterfall canvas").first).to_be_visible()
    watched.hover_plots(".waterfall")


def test_an_api_failing_with_html_at_session_start_gives_a_plain_message(watched, over_hostile_api, api):
    api.hostile, api.answer = (lambda path: path != "/health"), ERRORS["503-detail"]
    watched.page.goto(over_hostile_api.url)
    expect(watched.page.locator(".notice .notice-text").first).to_be_visible()
    expect(watched.page.get_by_text("Réessayer / Retry")).to_be_visible()
