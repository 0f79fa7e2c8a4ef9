"""Session state of the dashboard, without a browser: what each action changes in what the user sees."""

from __future__ import annotations

import pytest

from dashboard_server import FlakyLog
from scoring.audit import AuditLog
from scoring.backends import session_service
from scoring.contracts import ClientQuery
from scoring.errors import AccessDeniedError
from views.state import (TOP_CONTRIBUTIONS, ClientSearch, ClientState, DashboardState, Notice, PortfolioState)


@pytest.fixture(scope="module")
def ids(service):
    """A refused and an accepted client, and one more."""
    refused = int(service.search(ClientQuery(decision="refused", limit=1)).items[0]["client_id"])
    accepted = [row["client_id"] for row in service.search(ClientQuery(decision="accepted", limit=2)).items]
    return {"refused": refused, "accepted": int(accepted[0]), "other": int(accepted[1])}


@pytest.fixture
def audit(tmp_path):
    return AuditLog(tmp_path / "audit.sqlite")


@pytest.fixture
def state(service, audit):
    """A session of "advisor", acting through the audited in-process service."""
    return DashboardState(session_service(service, "advisor", audit))


def opened(audit) -> list[dict]:
    """The log's "client_opened" entries of client files shown, latest first (searches and comparisons have entries
    of their own; reading a file's recorded decisions, after it is shown, is logged as a "client_opened" too)."""
    return [e for e in audit.recent(100) if e["event"] == "client_opened" and '"decisions"' not in (e["details"] or "")]


class CountingService:
    """The service, counting the calls made to each of its methods."""

    def __init__(self, service):
        self.service, self.calls = service, []

    def __getattr__(self, name):
        attribute = getattr(self.service, name)
        if not callable(attribute):
            return attribute

        def call(*args, **kwargs):
            self.calls.append(name)
            return attribute(*args, **kwargs)
        return call


# ---------------------------------------------------------------------------------------------- portfolio
def test_portfolio_state_holds_the_service_summary_drift_and_top_15(service):
    portfolio = PortfolioState(service)
    assert portfolio.summary == service.portfolio()
    assert [r.psi for r in portfolio.drift] == sorted((r.psi for r in service.drift()), reverse=True)
    assert [f.feature for f in portfolio.importance] == [f.feature for f in service.global_importance(15)]
    assert len(portfolio.importance) == 15
    assert portfolio.notice is None


# ---------------------------------------------------------------------------------------------- search
def test_search_starts_on_the_first_page_of_every_client_file(service):
    search = ClientSearch(service)
    assert search.total == service.portfolio().n_applications
    assert len(search.rows) == search.page_size
    assert search.rows["client_id"].is_monotonic_increasing
    assert search.pages == -(-search.total // search.page_size)


def test_filters_narrow_the_table_and_send_back_to_page_one(service):
    search = ClientSearch(service)
    search.page = 3
    search.decision = "refused"
    assert search.page == 1
    assert search.total == service.portfolio().n_refused
    assert set(search.rows["decision"]) == {"refused"}

    search.probability = (0.2, 0.5)
    assert search.rows["default_probability"].between(0.2, 0.5).all()
    assert 0 < search.total < service.portfolio().n_refused


def test_untouched_ranges_filter_nothing_and_narrowed_ones_do(service):
    search = ClientSearch(service)
    query = search.query()
    assert (query.min_income, query.max_income, query.min_age, query.max_age) == (None, None, None, None)
    lo, hi = search.param.income.bounds
    search.income = (lo, (lo + hi) / 4)
    assert search.query().max_income == (lo + hi) / 4 and search.query().min_income is None
    assert (search.rows["income"] <= (lo + hi) / 4).all()
    young = search.param.age.bounds[0] + 10
    search.age = (search.param.age.bounds[0], young)
    assert (search.rows["age_years"] <= young).all()
    search.amount = (300_000, search.param.amount.bounds[1])
    assert (search.rows["credit_amount"] >= 300_000).all()


def test_contract_type_filter_and_sort(service):
    search = ClientSearch(service)
    contract = service.contract_types()[-1]
    search.param.update(contract_type=contract, sort="default_probability", descending=True)
    assert set(search.rows["contract_type"]) == {contract}
    assert search.rows["default_probability"].is_monotonic_decreasing


def test_typing_an_id_prefix_lists_matching_files_exact_match_first(service, ids):
    search = ClientSearch(service)
    prefix = str(ids["other"])[:-1]
    search.q = prefix
    assert all(str(i).startswith(prefix) for i in search.rows["client_id"])
    search.q = str(ids["other"])
    assert int(search.rows["client_id"].iloc[0]) == ids["other"]
    search.q = "abc"                      # not an ID: ignored rather than an error
    assert search.total == service.portfolio().n_applications
    for text in ("²", "9" * 5000):        # a digit for Python's str.isdigit, not for a client ID; no int64
        search.q = text
        assert search.total == service.portfolio().n_applications and search.notice is None


def test_pages_move_forward_and_back_within_bounds(service):
    search = ClientSearch(service, page_size=25)
    first = search.rows["client_id"].tolist()
    search.next_page()
    assert search.page == 2 and search.rows["client_id"].iloc[0] > first[-1]
    search.previous_page()
    search.previous_page()
    assert search.page == 1 and search.rows["client_id"].tolist() == first
    search.page = search.pages
    search.next_page()
    assert search.page == search.pages and 1 <= len(search.rows) <= 25
    assert search.client_at(0) == int(search.rows["client_id"].iloc[0])


# ---------------------------------------------------------------------------------------------- client
def test_no_client_at_start_but_the_first_top_feature_population(service):
    client = ClientState(service)
    assert client.file is None and client.explanation is None and client.debt is None
    assert client.param.feature.objects == [f.feature for f in service.top_features(5)]
    assert client.feature == service.top_features(5)[0].feature
    assert client.comparison.client_value is None and client.comparison.histogram.counts


def test_selecting_a_client_fetches_everything_shown_about_them(state, service, ids):
    client = state.client
    client.client_id = ids["refused"]
    expected = service.client(ids["refused"])
    assert client.file == expected
    assert client.file.score.decision == "refused"
    assert len(client.explanation.contributions) == TOP_CONTRIBUTIONS
    assert client.explanation == service.explain(ids["refused"], top=TOP_CONTRIBUTIONS)
    assert client.comparison == service.distribution(client.feature, ids["refused"])
    assert client.debt == service.debt_capacity(ids["refused"])
    assert client.notice is None


def test_choosing_another_feature_compares_the_same_client_on_it(state, service, ids):
    client = state.client
    client.client_id = ids["accepted"]
    feature = client.param.feature.objects[2]
    client.feature = feature
    assert client.comparison == service.distribution(feature, ids["accepted"])
    client.client_id = ids["other"]                  # the chosen feature stays for the next client
    assert client.comparison.feature == feature and client.comparison.client_id == ids["other"]


def test_an_unknown_id_sets_a_message_and_keeps_the_previous_client(state, ids):
    client = state.client
    client.client_id = ids["accepted"]
    shown = client.file
    client.client_id = 1
    assert client.notice == Notice("unknown_client", {"client_id": 1, "previous": ids["accepted"]})
    assert "1" in client.notice.text("fr") and str(ids["accepted"]) in client.notice.text("fr")
    assert client.file is shown and client.client_id == ids["accepted"]
    client.client_id = ids["other"]                  # the next good ID clears the message
    assert client.notice is None and client.file.client_id == ids["other"]


def test_open_checks_what_was_typed(state, ids):
    client = state.client
    assert client.open(f" {ids['refused']} ") is True and client.file.client_id == ids["refused"]
    assert client.open("12ab") is False
    assert client.notice.key == "invalid_id" and client.file.client_id == ids["refused"]
    assert client.open("999999999") is False and client.notice.key == "unknown_client"
    assert client.open(str(ids["refused"])) is True and client.notice is None
    for text in ("²", "١٢٣", "１２３", "12\u00b3"):     # digits for str.isdigit(), not ASCII: int() would fail
        assert client.open(text) is False
        assert client.notice == Notice("invalid_id", {"text": text}) and client.file.client_id == ids["refused"]
    assert client.open("9" * 5000) is False and client.notice.key == "invalid_id"   # beyond int()'s 4300 digits
    assert client.open("9" * 30) is False and client.notice.key == "unknown_client"


def test_an_unknown_first_id_leaves_no_client(service):
    client = ClientState(service, client_id=42)
    assert client.file is None and client.client_id is None
    assert client.notice.key == "unknown_client_none"


def test_a_client_switch_is_one_overview_call(service, ids):
    counting = CountingService(service)
    pending = []
    state = DashboardState(counting, schedule=pending.append)
    counting.calls.clear()
    state.client.client_id = ids["refused"]
    assert counting.calls == ["overview"]           # one request over HTTP, one audit entry
    assert state.client.file.client_id == ids["refused"]
    pending.pop()()                                 # then the advisor's answer fills in
    assert counting.calls == ["overview", "reasons", "offers", "peers", "decisions"]


def test_each_client_opened_is_in_the_audit_log_before_it_is_shown(state, audit, ids):
    state.client.client_id = ids["refused"]
    state.client.client_id = 1                       # unknown: not an opened file
    state.client.client_id = ids["accepted"]
    entries = opened(audit)                          # written before the state had the file: no waiting
    assert [e["client_id"] for e in entries] == [ids["accepted"], ids["refused"]]
    latest = entries[0]
    assert latest["event"] == "client_opened" and latest["source"] == "dashboard" and latest["user"] == "advisor"
    assert latest["default_probability"] == pytest.approx(state.client.file.score.default_probability)
    assert latest["decision"] == state.client.file.score.decision
    assert latest["model_version"] == state.client.file.score.model_version


def test_when_the_audit_log_cannot_be_written_nothing_of_the_new_client_is_shown(service, audit, ids):
    log = FlakyLog(audit)
    state = DashboardState(session_service(service, "advisor", log))
    client = state.client
    client.client_id = ids["accepted"]
    shown = (client.file, client.explanation, client.comparison, client.debt)

    log.broken = True
    assert client.open(str(ids["refused"])) is False
    assert client.notice == Notice("audit_unavailable", {"client_id": ids["refused"]}, "danger")
    assert "journal d'audit n'a pas pu être écrit" in client.notice.text("fr")
    assert "audit log could not be written, so nothing is shown" in client.notice.text("en")
    assert client.client_id == ids["accepted"]
    assert (client.file, client.explanation, client.comparison, client.debt) == shown   # the previous client only
    assert [e["client_id"] for e in opened(audit)] == [ids["accepted"]]

    log.broken = False                               # the log is back: the same action works
    assert client.open(str(ids["refused"])) is True and client.notice is None
    assert client.file.client_id == ids["refused"]
    assert [e["client_id"] for e in opened(audit)] == [ids["refused"], ids["accepted"]]


def test_a_search_or_comparison_the_audit_log_refuses_keeps_what_was_shown(service, audit, ids):
    log = FlakyLog(audit)
    state = DashboardState(session_service(service, "advisor", log))
    state.client.client_id = ids["accepted"]
    rows, comparison = state.search.rows, state.client.comparison
    log.broken = True
    state.search.decision = "refused"
    assert state.search.notice == Notice("audit_refused", {}, "danger") and state.search.rows is rows
    state.client.feature = state.client.param.feature.objects[1]
    assert state.client.notice.key == "audit_refused" and state.client.comparison is comparison
    log.broken = False
    state.search.decision = None
    assert state.search.notice is None


def test_dashboard_state_shares_one_language_and_starts_in_french(state):
    assert state.language == "fr"
    state.language = "en"
    with pytest.raises(ValueError):
        state.language = "de"
    assert state.roles == state.service.roles


# ---------------------------------------------------------------------------------------------- API outage
def test_an_api_outage_shows_a_message_and_the_next_action_recovers(service, ids, tmp_path):
    from api_server import LiveServer
    from scoring.api import create_app
    from scoring.client import HttpScoringService

    token = "dashboard-state-token"
    server = LiveServer(create_app(service, tokens=frozenset({f"{token} advisor+analyst forward-user"}), audit=AuditLog(tmp_path / "api.sqlite")))
    server.start()
    try:
        with HttpScoringService(server.url, token, timeout=3.0) as http:
            state = DashboardState(http)
            state.client.client_id = ids["accepted"]
            assert state.client.file == service.client(ids["accepted"])

            server.stop()
            state.client.client_id = ids["refused"]
            assert state.client.notice.key == "unavailable" and state.client.notice.level == "danger"
            assert state.client.file.client_id == ids["accepted"] and state.client.client_id == ids["accepted"]
            state.search.decision = "refused"
            assert state.search.notice.key == "unavailable"

            server.start()
            state.client.client_id = ids["refused"]
            assert state.client.notice is None and state.client.file == service.client(ids["refused"])
            assert state.search.notice is None and set(state.search.rows["decision"]) == {"refused"}
    finally:
        server.stop()


def test_over_the_api_the_api_audit_log_names_the_dashboard_user(service, ids, tmp_path):
    from api_server import LiveServer
    from scoring.api import create_app
    from scoring.audited import AuditedService
    from scoring.client import HttpScoringService

    token, api_audit = "dashboard-user-token", AuditLog(tmp_path / "api.sqlite")
    local = session_service(service, "advisor.martin", AuditLog(tmp_path / "dashboard.sqlite"))
    assert isinstance(local, AuditedService) and local.user == "advisor.martin"   # in process: the dashboard audits
    with LiveServer(create_app(service, tokens=frozenset({f"{token} advisor+analyst forward-user"}), audit=api_audit)) as server, \
            HttpScoringService(server.url, token) as http:
        session = session_service(http, "advisor.martin")
        assert not isinstance(session, AuditedService)                           # over HTTP: the API audits
        state = DashboardState(session)
        state.client.client_id = ids["accepted"]
        assert state.client.file is not None, state.client.notice and state.client.notice.text("en")
    users = {e["user"] for e in api_audit.recent(20) if e["client_id"] == ids["accepted"]}
    assert users and all("advisor.martin" in u for u in users)


# ---------------------------------------------------------------------------------------------- roles
class RecordingService(CountingService):
    """Counting, and refusing any call a role's page should never make."""

    def __init__(self, service, forbidden=()):
        super().__init__(service)
        self.forbidden = set(forbidden)

    def __getattr__(self, name):
        if name in self.forbidden:
            raise AssertionError(f"{name} called")
        return super().__getattr__(name)


def test_an_advisors_session_has_client_files_and_no_portfolio_or_audit(service, audit, ids):
    session = RecordingService(session_service(service, "advisor", audit),
                               forbidden={"portfolio", "drift", "global_importance", "audit_trail", "fairness",
                                          "monitoring", "feature_drift", "performance"})
    state = DashboardState(session, role="advisor", client_id=ids["refused"])
    assert state.parts == {"search", "client"}
    assert state.portfolio is None and state.audit is None
    assert state.client.file.client_id == ids["refused"] and state.search.total > 0


def test_an_analysts_session_has_the_portfolio_and_audit_and_no_client_file(service, audit):
    session = RecordingService(session_service(service, "analyst", audit),
                               forbidden={"client", "overview", "explain", "search", "debt_capacity"})
    state = DashboardState(session, role="analyst")
    assert state.parts == {"portfolio", "audit", "governance"}
    assert state.client is None and state.search is None
    assert state.portfolio.summary is not None and state.governance.months
    assert not any(e["client_id"] for e in audit.recent(100))        # no client file was read


def test_no_role_has_every_part_and_an_unknown_role_is_refused(service, audit):
    state = DashboardState(session_service(service, None, audit))
    assert state.role is None and all(getattr(state, part) is not None for part in state.parts)
    with pytest.raises(ValueError, match="unknown role"):
        DashboardState(session_service(service, "x", audit), role="admin")


def test_the_audit_trail_lists_who_opened_a_file_newest_first(service, audit, ids):
    advisor = DashboardState(session_service(service, "advisor.martin", audit), role="advisor")
    advisor.client.client_id = ids["accepted"]
    analyst = DashboardState(session_service(service, "analyst.durand", audit), role="analyst")
    assert analyst.audit.show(f" {ids['accepted']} ")
    trail = analyst.audit
    assert trail.client_id == ids["accepted"] and trail.notice is None
    assert [(e.event, e.user) for e in trail.entries][:2] == [("audit_viewed", "analyst.durand"),
                                                                ("client_opened", "advisor.martin")]
    assert all(e.client_id == ids["accepted"] for e in trail.entries)


def test_the_audit_trail_of_a_bad_or_unknown_id_is_a_notice(service, audit, ids):
    trail = DashboardState(session_service(service, "analyst", audit), role="analyst").audit
    assert not trail.show("12a<b>")
    assert trail.notice.key == "invalid_id" and trail.entries == []
    assert not trail.show("999999999")
    assert trail.notice.key == "unknown_client_none" and trail.client_id is None


def test_the_audit_trail_shows_nothing_when_the_audit_log_is_down(service, tmp_path, ids):
    log = FlakyLog(AuditLog(tmp_path / "flaky.sqlite"))
    log.for_client = log.log.for_client
    trail = DashboardState(session_service(service, "analyst", log), role="analyst").audit
    log.broken = True
    assert not trail.show(str(ids["accepted"]))
    assert trail.notice.key == "audit_refused" and trail.entries == []


def test_over_the_api_an_advisors_session_names_its_role_and_the_api_enforces_it(service, ids, tmp_path):
    from api_server import LiveServer
    from scoring.api import create_app
    from scoring.client import HttpScoringService

    token, api_audit = "dashboard-role-token", AuditLog(tmp_path / "api.sqlite")
    with LiveServer(create_app(service, tokens=frozenset({f"{token} advisor+analyst forward-user"}), audit=api_audit)) as server, \
            HttpScoringService(server.url, token) as http:
        advisor = session_service(http, "advisor.martin", role="advisor")
        assert (advisor.user, advisor.role) == ("advisor.martin", "advisor")
        state = DashboardState(advisor, role="advisor", client_id=ids["accepted"])
        assert state.client.file is not None
        with pytest.raises(AccessDeniedError):                    # the API refuses the audit trail to an advisor
            advisor.audit_trail(ids["accepted"])
        analyst = DashboardState(session_service(http, "analyst.durand", role="analyst"), role="analyst")
        assert analyst.audit.show(str(ids["accepted"]))
        # the API names the person and the token it came through ("advisor.martin via token:...")
        assert any(e.user.startswith("advisor.martin via ") and e.event == "client_opened" for e in analyst.audit.entries)
