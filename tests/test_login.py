"""The dashboard's logins, served for real (`views.serve.serve` on 127.0.0.1): what an attacker on the network
and a careless browser can and cannot do, then the page each role sees in Chromium."""

from __future__ import annotations

import gc
import logging
import re
import sys
import time

import httpx
import psutil
import pytest
from playwright.sync_api import expect

from dashboard_server import DashboardServer, make_secrets
from scoring.contracts import ClientQuery
from scoring.credentials import USERS_FILE, set_password
from views.app import role_from_claims
from views.login import SESSION_COOKIE, LoginSettings, LoginThrottle, client_address
from views.serve import COMPONENTS_ROUTE, settings_from_env

MAX_FAILURES = 3
SETTINGS = LoginSettings(max_failures_per_user=MAX_FAILURES, max_failures_per_address=1000, lockout_seconds=120)


class SwitchableService:
    """The service, whose model card can be made to fail as a lost volume would (for /health)."""

    def __init__(self, service):
        self.service, self.broken = service, False

    def model_card(self):
        if self.broken:
            raise OSError("[Errno 2] No such file or directory: '/srv/secret-volume/model/model_card.json'")
        return self.service.model_card()

    def __getattr__(self, name):
        return getattr(self.service, name)


@pytest.fixture(scope="module")
def logins(tmp_path_factory):
    directory = tmp_path_factory.mktemp("secrets")
    logins = make_secrets(directory)
    logins["lockme"] = set_password(directory / USERS_FILE, "lockme", role="advisor")  # locked out by a test
    return directory, logins


@pytest.fixture(scope="module")
def server(service, audit, logins):
    with DashboardServer(SwitchableService(service), audit, secrets=logins[0], login=SETTINGS) as running:
        running.logins = logins[1]
        yield running


@pytest.fixture(scope="module")
def client_id(service):
    return int(service.search(ClientQuery(decision="refused", limit=1)).items[0]["client_id"])


def login_form(client: httpx.Client) -> str:
    """GET /login: the XSRF token of the form (its cookie is now in the client)."""
    page = client.get("/login")
    assert page.status_code == 200
    return re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)


def log_in(client: httpx.Client, user: str, password: str, **headers) -> httpx.Response:
    token = login_form(client)
    return client.post("/login", data={"_xsrf": token, "username": user, "password": password, "next": "/dashboard"},
                       headers=headers)


def new_client(server) -> httpx.Client:
    return httpx.Client(base_url=server.root, follow_redirects=False, timeout=30.0)


def set_cookie_header(response: httpx.Response, name: str) -> str:
    return next(h for h in response.headers.get_list("set-cookie") if h.startswith(name + "="))


# ---------------------------------------------------------------------------------------------- logging in
def test_a_wrong_password_is_refused(server):
    with new_client(server) as client:
        response = log_in(client, "advisor", server.logins["advisor"] + "x")
        assert response.status_code == 401
        assert "Wrong user name or password" in response.text
        assert SESSION_COOKIE not in client.cookies
        assert client.get("/dashboard").status_code == 302


def test_an_unknown_user_is_refused_like_a_wrong_password(server):
    with new_client(server) as client:
        response = log_in(client, "nobody", "whatever")
        assert response.status_code == 401 and "Wrong user name or password" in response.text


def test_a_user_is_locked_out_after_n_failures_and_it_is_logged(server, caplog):
    caplog.set_level(logging.INFO, logger="views.login")
    with new_client(server) as client:
        for _ in range(MAX_FAILURES):
            assert log_in(client, "lockme", "wrong").status_code == 401
        locked = log_in(client, "lockme", server.logins["lockme"])   # the right password, too late
        assert locked.status_code == 429 and int(locked.headers["Retry-After"]) > 0
        assert SESSION_COOKIE not in client.cookies
    messages = [r.getMessage() for r in caplog.records if r.name == "views.login"]
    assert any(m.startswith("login failed: user 'lockme'") for m in messages)
    assert f"login locked out: user 'lockme' after {MAX_FAILURES} failures, for 120 s" in messages
    assert any(m.startswith("login refused: user 'lockme' locked out") for m in messages)
    with new_client(server) as other:   # the lockout is the user's, not this browser's
        assert log_in(other, "lockme", server.logins["lockme"]).status_code == 429
        assert log_in(other, "analyst", server.logins["analyst"]).status_code == 302


def test_the_right_password_opens_the_dashboard_with_a_strict_cookie(server):
    with new_client(server) as client:
        response = log_in(client, "advisor", server.logins["advisor"])
        assert response.status_code == 302 and response.headers["location"] == "/dashboard"
        cookie = set_cookie_header(response, SESSION_COOKIE).lower()
        assert "httponly" in cookie and "samesite=lax" in cookie and "max-age=28800" in cookie
        assert "secure" not in cookie                       # plain HTTP here: the TLS setting is off
        page = client.get("/dashboard")
        assert page.status_code == 200
        # the session cookie is not copied into the Bokeh session token the page carries
        assert client.cookies[SESSION_COOKIE] not in page.text


def test_a_cookie_replayed_after_logout_is_refused(server):
    with new_client(server) as client:
        assert log_in(client, "advisor", server.logins["advisor"]).status_code == 302
        stolen = client.cookies[SESSION_COOKIE]
        assert client.get("/dashboard").status_code == 200
        assert client.get("/logout").status_code == 302
    with httpx.Client(base_url=server.root, follow_redirects=False, cookies={SESSION_COOKIE: stolen}) as replay:
        response = replay.get("/dashboard")
        assert response.status_code == 302 and "login" in response.headers["location"]
        assert replay.get("/dashboard/autoload.js?bokeh-autoload-element=x").status_code in (302, 403)


def test_a_forged_cookie_is_refused(server):
    with httpx.Client(base_url=server.root, follow_redirects=False, cookies={SESSION_COOKIE: "advisor"}) as forged:
        assert forged.get("/dashboard").status_code == 302


def test_a_cross_site_login_post_is_refused(server, caplog):
    caplog.set_level(logging.INFO, logger="views.login")
    with new_client(server) as client:
        # another site's form cannot read our page, so it posts without the XSRF token
        no_token = client.post("/login", data={"username": "advisor", "password": server.logins["advisor"]})
        assert no_token.status_code == 403 and SESSION_COOKIE not in client.cookies
        # nor with a token from elsewhere, nor from another origin even with ours
        wrong = client.post("/login", data={"_xsrf": "2|00|00|00", "username": "advisor",
                                            "password": server.logins["advisor"]})
        assert wrong.status_code == 403
        crossed = log_in(client, "advisor", server.logins["advisor"], Origin="https://evil.example")
        assert crossed.status_code == 403 and SESSION_COOKIE not in client.cookies
    messages = [r.getMessage() for r in caplog.records if r.name == "views.login"]
    assert any(m.startswith("login refused: no valid XSRF token") for m in messages)
    assert any("cross-site POST from origin 'https://evil.example'" in m for m in messages)


def rss() -> int:
    gc.collect()
    return psutil.Process().memory_info().rss   # the server runs in a thread of this process


def _chunks(total: int, size: int = 1 << 20):
    block = b"a" * size
    for _ in range(total // size):
        yield block


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "chunked"])
def test_a_20_mb_login_body_is_refused_quickly_without_memory(server, with_length):
    size = 20 * 2**20
    with new_client(server) as client:
        token = login_form(client)
        before, started = rss(), time.monotonic()
        headers = {"Content-Type": "application/x-www-form-urlencoded", "X-XSRFToken": token}
        if with_length:
            headers["Content-Length"] = str(size)
        try:
            status = client.post("/login", content=_chunks(size), headers=headers).status_code
        except httpx.TransportError:       # the server answered 400 and closed while the body was being sent
            status = None
        elapsed = time.monotonic() - started
        assert status in (None, 400, 413), status
        assert elapsed < 10, f"{elapsed:.1f} s"
        assert rss() - before < 50 * 2**20, f"{(rss() - before) / 2**20:.0f} MB"
    assert httpx.get(server.root + "/health").status_code == 200        # and the server goes on


# ---------------------------------------------------------------------------------------------- exposure
def test_panels_components_route_is_closed_without_login(server):
    sys.modules.pop("antigravity", None)
    with new_client(server) as client:
        # Panel's handler imports the module named in the URL: without a login nothing is imported, nothing served
        assert client.get("/components/antigravity/x/__css__/y.css").status_code == 403
        assert "antigravity" not in sys.modules
        assert client.get("/components/panel/template/BootstrapTemplate/_css/x.css").status_code == 403
        assert log_in(client, "advisor", server.logins["advisor"]).status_code == 302
        # logged in, Panel's own checks apply again (the resource must be listed by the component)
        assert client.get("/components/panel/template/BootstrapTemplate/_css/x.css").status_code in (403, 404)


def test_health_says_unavailable_without_the_error_text(server, caplog):
    caplog.set_level(logging.WARNING, logger="views.serve")
    assert httpx.get(server.root + "/health").json()["status"] == "ok"
    server.service.broken = True
    try:
        response = httpx.get(server.root + "/health")
    finally:
        server.service.broken = False
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}
    assert "/srv" not in response.text and "Errno" not in response.text
    assert any("/srv/secret-volume" in r.getMessage() for r in caplog.records)   # the reason goes to the log


def test_the_login_page_loads_nothing_from_elsewhere_and_cannot_be_framed(server):
    page = httpx.get(server.root + "/login")
    assert page.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert "http" not in re.sub(r"<!--.*?-->", "", page.text, flags=re.S).split("<body>")[1]


def test_a_login_redirects_only_within_the_server(server):
    with new_client(server) as client:
        token = login_form(client)
        response = client.post("/login", data={"_xsrf": token, "username": "analyst",
                                               "password": server.logins["analyst"], "next": "//evil.example/x"})
        assert response.status_code == 302 and response.headers["location"] == "/"


# ---------------------------------------------------------------------------------------------- settings
class FakeRequest:
    def __init__(self, peer, forwarded=None):
        self.remote_ip = peer
        self.headers = {"X-Forwarded-For": forwarded} if forwarded else {}


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy():
    assert client_address(FakeRequest("203.0.113.9", "10.1.1.1")) == "203.0.113.9"       # no proxy configured
    trusted = ("10.0.0.0/8",)
    assert client_address(FakeRequest("203.0.113.9", "10.1.1.1"), trusted) == "203.0.113.9"  # not from the proxy
    assert client_address(FakeRequest("10.0.0.2", "198.51.100.7"), trusted) == "198.51.100.7"
    # a browser's own X-Forwarded-For entries come first: the proxy's appended address is the one believed
    assert client_address(FakeRequest("10.0.0.2", "1.2.3.4, 198.51.100.7, 10.0.0.5"), trusted) == "198.51.100.7"
    assert client_address(FakeRequest("10.0.0.2", "not-an-ip"), trusted) == "10.0.0.2"


def test_the_throttle_locks_a_key_after_n_failures_in_the_window_for_the_lockout():
    now = [0.0]
    throttle = LoginThrottle(window=60, lockout=300, clock=lambda: now[0])
    address, user = ("address", "198.51.100.7"), ("user", "advisor")
    assert throttle.failed(address, 3) == (1, False)
    now[0] = 61                                       # the first failure left the window
    assert throttle.failed(address, 3) == (1, False) and throttle.failed(address, 3) == (2, False)
    assert throttle.locked_for([user, address]) == (None, 0.0)
    assert throttle.failed(address, 3) == (3, True)
    assert throttle.locked_for([user, address]) == (address, 300)
    throttle.succeeded(address)                       # a success does not lift a lockout
    now[0] += 299
    assert throttle.locked_for([address])[0] == address
    now[0] += 2
    assert throttle.locked_for([address]) == (None, 0.0)


def test_settings_come_from_the_environment():
    env = {"SCORING_DASHBOARD_SECURE_COOKIES": "1", "SCORING_DASHBOARD_TRUSTED_PROXIES": "10.0.0.2, 10.0.1.0/24",
           "SCORING_DASHBOARD_SESSION_HOURS": "4", "SCORING_DASHBOARD_OAUTH_PROVIDER": "azure",
           "SCORING_DASHBOARD_ROLE_CLAIM": "groups"}
    assert settings_from_env(env) == {"secure_cookies": True, "trusted_proxies": ("10.0.0.2", "10.0.1.0/24"),
                                      "session_hours": 4.0, "oauth_provider": "azure", "role_claim": "groups"}
    assert settings_from_env({})["oauth_provider"] is None
    with pytest.raises(ValueError):
        LoginSettings(same_site="None")


def test_single_sign_on_reaches_pn_serve_and_roles_come_from_the_id_token(service, logins, monkeypatch):
    import views.serve as serve_module

    calls = []
    monkeypatch.setattr(serve_module.pn.config, "oauth_expiry", serve_module.pn.config.oauth_expiry)
    monkeypatch.setattr(serve_module.pn, "serve", lambda panels, **kwargs: calls.append((panels, kwargs)))
    serve_module.serve(port=0, secrets=logins[0], service=service, warm=False, oauth_provider="azure",
                       login=LoginSettings(session_hours=4))
    (panels, kwargs), = calls
    assert kwargs["oauth_provider"] == "azure" and kwargs["cookie_secret"]
    assert "auth_provider" not in kwargs and "basic_auth" not in kwargs
    assert any(route == COMPONENTS_ROUTE for route, *_ in kwargs["extra_patterns"])
    assert kwargs["http_server_kwargs"]["xheaders"] is False
    assert kwargs["http_server_kwargs"]["max_body_size"] <= 64 * 1024
    assert role_from_claims({"roles": ["auditor", "analyst"]}) == "analyst"
    assert role_from_claims({"groups": "advisor"}, "groups") == "advisor"
    assert role_from_claims({"roles": ["admin"]}) is None and role_from_claims(None) is None


def test_a_users_file_of_plaintext_passwords_is_refused_by_the_server(tmp_path):
    import os

    from views.serve import read_secrets

    make_secrets(tmp_path)
    users = tmp_path / USERS_FILE
    users.write_text('{"advisor": "hunter2"}')
    os.chmod(users, 0o600)
    with pytest.raises(SystemExit, match="plaintext passwords.*scoring.credentials --dir .* migrate"):
        read_secrets(tmp_path)


# ---------------------------------------------------------------------------------------------- roles in Chromium
def browser_login(browser, server, user: str):
    context = browser.new_context()
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(server.url)
    page.locator("input[name=username]").fill(user)
    page.locator("input[name=password]").fill(server.logins[user])
    page.locator("input[name=password]").press("Enter")
    page.wait_for_url(re.compile(r"/dashboard"))
    return context, page, errors


@pytest.mark.browser
def test_an_advisor_sees_the_client_side_and_not_the_analysts_parts(browser, server, client_id, audit):
    context, page, errors = browser_login(browser, server, "advisor")
    try:
        page.goto(f"{server.url}?client={client_id}")
        expect(page.locator(".client-id")).to_have_text(str(client_id), timeout=30_000)
        expect(page.locator(".client-id-input")).to_be_visible()
        assert page.locator(".audit-panel").count() == 0
        assert page.locator(".kpi").count() == 0                # no portfolio or monitoring top bar
        assert page.get_by_text("Traceback").count() == 0 and not errors
        # the advice's audited reads may follow the file's own entry: find that one
        entries = [e for e in audit.recent(50) if e["client_id"] == client_id]
        assert any(e["user"] == "advisor" and e["event"] == "client_opened" for e in entries), entries

        # logging out in another tab empties this page, and the cookie is refused from then on
        other = context.new_page()
        other.goto(server.root + "/logout")
        expect(page.locator(".session-ended")).to_be_visible(timeout=10_000)
        assert page.locator(".client-id").count() == 0
        page.goto(f"{server.url}?client={client_id}")
        expect(page.locator("input[name=username]")).to_be_visible()
    finally:
        context.close()


@pytest.mark.browser
def test_an_analyst_sees_the_audit_panel_and_who_opened_a_file(browser, server, client_id, service):
    advisor, page, _ = browser_login(browser, server, "advisor")   # an advisor opens the file first
    page.goto(f"{server.url}?client={client_id}")
    expect(page.locator(".client-id")).to_have_text(str(client_id), timeout=30_000)
    advisor.close()

    context, page, errors = browser_login(browser, server, "analyst")
    try:
        page.goto(f"{server.url}?client={client_id}")           # a client in the URL opens nothing for an analyst
        expect(page.locator(".audit-panel")).to_be_visible(timeout=30_000)
        expect(page.locator(".kpi").first).to_be_visible()
        assert page.locator(".client-id-input").count() == 0 and page.locator(".client-id").count() == 0
        box = page.locator(".audit-client-id input")
        box.fill(str(client_id))
        box.press("Enter")
        table = page.locator(".audit-table")
        expect(table).to_contain_text("client_opened", timeout=20_000)
        expect(table).to_contain_text("advisor")
        expect(table).to_contain_text("audit_viewed")            # reading the trail is in it too
        expect(page.locator(".audit-summary")).to_contain_text(str(client_id))
        assert page.get_by_text("Traceback").count() == 0 and not errors
    finally:
        context.close()


# last: stopping a second server resets Panel's state, which stops the module's server too
def test_cookies_are_secure_when_the_tls_setting_is_on(service, audit, logins):
    with DashboardServer(service, audit, secrets=logins[0], login=LoginSettings(secure_cookies=True)) as tls:
        with new_client(tls) as client:
            form = client.get("/login")
            assert "secure" in set_cookie_header(form, "_xsrf").lower()
            token = re.search(r'name="_xsrf" value="([^"]+)"', form.text).group(1)
            xsrf = set_cookie_header(form, "_xsrf").split(";")[0]   # httpx keeps Secure cookies off plain HTTP
            response = client.post("/login", data={"_xsrf": token, "username": "analyst",
                                                   "password": logins[1]["analyst"]}, headers={"Cookie": xsrf})
            assert response.status_code == 302
            cookie = set_cookie_header(response, SESSION_COOKIE).lower()
            assert "secure" in cookie and "httponly" in cookie and "samesite=lax" in cookie
