"""The HTTP backend returns exactly what the in-process backend returns, and fails clearly when the API does."""

from __future__ import annotations

import math
import socket
import sqlite3
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from api_server import LiveServer
from scoring.api import create_app, token_identity
from scoring.audit import AuditLog
from scoring.backends import open_service
from scoring.client import ApiAuthenticationError, HttpScoringService, ServiceUnavailableError
from scoring.contracts import ClientQuery, ScoringService
from scoring.errors import AuditUnavailableError, InvalidApplicationError, UnknownClientError

TOKEN = "http-backend-token-41c7"
API_TOKENS = (f"{TOKEN} advisor+analyst forward-user",)  # a dashboard's service token


@pytest.fixture(scope="module")
def http(api_server):
    with HttpScoringService(api_server.url, TOKEN) as backend:
        yield backend


@pytest.fixture(scope="module")
def clients(service):
    """A few clients: labelled and new, accepted and refused."""
    chosen = []
    for split in ("train", "new"):
        for decision in ("accepted", "refused"):
            page = service.search(ClientQuery(split=split, decision=decision, limit=2))
            chosen += [int(row["client_id"]) for row in page.items]
    assert len(chosen) >= 6
    return chosen


def test_http_backend_is_a_scoring_service(http):
    assert isinstance(http, ScoringService)


def test_the_http_backend_loads_no_ml_stack():
    """A dashboard over the API imports the HTTP backend only: no NumPy, pandas, XGBoost or DuckDB in its process."""
    code = ("import sys, scoring.client, scoring.backends; "
            "print(sorted(m for m in ('numpy', 'pandas', 'xgboost', 'duckdb', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_model_portfolio_and_population_results_are_identical(http, service):
    assert http.model_card() == service.model_card()
    assert http.roles == service.roles
    assert http.portfolio() == service.portfolio()
    assert http.drift() == service.drift()
    for top in (1, 5, 15, 0):
        assert http.global_importance(top) == service.global_importance(top)
    assert http.top_features(5) == service.top_features(5)
    assert http.contract_types() == service.contract_types()


@pytest.mark.parametrize("query", [
    ClientQuery(),
    ClientQuery(decision="refused", sort="default_probability", descending=True, limit=7, offset=3),
    ClientQuery(q="1000", limit=50),
    ClientQuery(contract_type="Revolving loans", min_income=100_000, max_age=45, split="new"),
    ClientQuery(min_probability=0.3, max_probability=0.6, min_amount=2e5, max_amount=8e5, min_age=30, sort="income"),
    ClientQuery(q="999999999"),  # no match: an empty page
], ids=lambda q: str(q.to_params()) or "default")
def test_search_pages_are_identical(http, service, query):
    remote, local = http.search(query), service.search(query)
    assert remote.total == local.total and remote.query == query
    assert remote.items == local.items


def test_client_files_explanations_and_debt_capacity_are_identical(http, service, clients):
    for cid in clients:
        assert http.client(cid) == service.client(cid)
        assert http.explain(cid) == service.explain(cid)
        assert http.explain(cid, top=4) == service.explain(cid, top=4)
        assert http.explain(cid, top=0) == service.explain(cid, top=0)
        assert http.debt_capacity(cid) == service.debt_capacity(cid)


def test_client_files_carry_their_debts_and_term_over_both_backends(http, service, clients):
    """The contract: a client file's debts (outstanding debt, monthly payments of the other credits...) and term."""
    for cid in clients:
        file, local = http.client(cid), service.client(cid)
        assert file.debts == local.debts and file.term_months == local.term_months
        assert {"outstanding_debt", "monthly_debt_service", "active_credits", "max_days_overdue"} == set(file.debts)
        assert file.term_months == local.application["term_months"] and 5 < file.term_months < 61
        capacity = http.debt_capacity(cid)
        assert capacity.effort_cap == 0.35 and capacity.existing_debt_service == file.debts["monthly_debt_service"]
        assert capacity.effort_rate == pytest.approx((file.debts["monthly_debt_service"] + file.application["annuity"])
                                                     / file.profile["income"])
        assert http.overview(cid).debt == capacity


def test_distributions_are_identical_with_and_without_a_client(http, service, clients):
    features = [f.feature for f in service.top_features(5)]
    features.append(next(f.name for f in service.scorer.spec.features if f.kind == "categorical"))
    for feature in features:
        assert http.distribution(feature) == service.distribution(feature)
        for cid in clients[:3]:
            assert http.distribution(feature, cid) == service.distribution(feature, cid)


def test_predictions_are_identical(http, service, clients):
    for cid in clients[:4]:
        record = service.store.raw_record(cid)
        assert http.predict(record) == service.predict(record)
        assert http.predict(record, explain=True, top=6) == service.predict(record, explain=True, top=6)
    partial = {"AMT_CREDIT": 500_000.0, "AMT_INCOME_TOTAL": 120_000, "NAME_CONTRACT_TYPE": "Cash loans"}
    assert http.predict(partial, explain=True) == service.predict(partial, explain=True)


def test_batch_predictions_are_identical(http, service, clients):
    records = [service.store.raw_record(cid) for cid in clients] + [{}, {"AMT_CREDIT": 250_000}]
    assert http.predict_batch(records) == service.predict_batch(records)


def test_overviews_are_identical(http, service, clients):
    for cid in clients[:3]:
        assert http.overview(cid) == service.overview(cid)
        assert http.overview(cid, "EXT_SOURCE_2", 5) == service.overview(cid, "EXT_SOURCE_2", 5)
    with pytest.raises(KeyError, match="NOT_A_FEATURE"):
        http.overview(clients[0], "NOT_A_FEATURE")
    with pytest.raises(UnknownClientError):
        http.overview(42)


def test_unknown_clients_and_features_raise_the_same_errors(http, service):
    for call in (lambda s: s.client(42), lambda s: s.explain(42), lambda s: s.debt_capacity(42),
                 lambda s: s.distribution("EXT_SOURCE_2", 42), lambda s: s.client("abc")):
        with pytest.raises(UnknownClientError) as remote:
            call(http)
        with pytest.raises(UnknownClientError) as local:
            call(service)
        assert str(remote.value) == str(local.value)
    with pytest.raises(KeyError, match="NOT_A_FEATURE"):
        http.distribution("NOT_A_FEATURE")


@pytest.mark.parametrize("record, field", [
    ({"AMT_CREDIT": math.nan}, "AMT_CREDIT"),
    ({"AMT_ANNUITY": math.inf}, "AMT_ANNUITY"),
    ({"AMT_CREDIT": -1.0}, "AMT_CREDIT"),
    ({"SALARY": 1}, "SALARY"),
    ({"NAME_CONTRACT_TYPE": "Mortgage"}, "NAME_CONTRACT_TYPE"),
    ({"AMT_INCOME_TOTAL": "a lot"}, "AMT_INCOME_TOTAL"),
])
def test_invalid_applications_name_the_field_like_the_local_backend(http, service, record, field):
    with pytest.raises(InvalidApplicationError) as remote:
        http.predict(record)
    with pytest.raises(InvalidApplicationError) as local:
        service.predict(record)
    assert remote.value.field == local.value.field == field
    assert str(remote.value) == str(local.value) and str(remote.value).startswith(f"{field}: ")


@pytest.mark.parametrize("records, field", [
    ([{}, {}, {}, {"AMT_CREDIT": -1.0}], "3.AMT_CREDIT"),
    ([{}, {"NAME_CONTRACT_TYPE": "Mortgage"}], "1.NAME_CONTRACT_TYPE"),
    ([{"SALARY": 1}], "0.SALARY"),
    ([{}, ["AMT_CREDIT", 1]], "1.application"),
    ([], "applications"),
])
def test_an_invalid_batch_names_the_row_and_field_like_the_local_backend(http, service, records, field):
    with pytest.raises(InvalidApplicationError) as remote:
        http.predict_batch(records)
    with pytest.raises(InvalidApplicationError) as local:
        service.predict_batch(records)
    assert remote.value.field == local.value.field == field
    if field != "applications":  # the size of a batch is worded by pydantic over HTTP
        assert str(remote.value) == str(local.value)


def test_an_audit_log_that_cannot_be_written_is_an_audit_error_over_http(service, clients, tmp_path):
    path = tmp_path / "audit.sqlite"
    AuditLog(path)
    with LiveServer(create_app(service, tokens=frozenset(API_TOKENS), audit=AuditLog(path))) as live, \
            HttpScoringService(live.url, TOKEN) as backend:
        assert backend.client(clients[0]) == service.client(clients[0])
        con = sqlite3.connect(path)
        con.execute("DROP TABLE audit")
        con.close()
        for call in (lambda: backend.client(clients[0]), lambda: backend.overview(clients[0]),
                     lambda: backend.predict({}), lambda: backend.predict_batch([{}])):
            with pytest.raises(AuditUnavailableError, match="audit log cannot be written"):
                call()
        assert backend.portfolio() == service.portfolio()  # not audited: still served


def test_a_query_the_api_rejects_is_a_value_error_with_its_message(http):
    with pytest.raises(ValueError, match="min_income"):
        http.search(ClientQuery(min_income=math.nan))


def test_a_wrong_or_missing_token_is_a_clear_authentication_error(api_server):
    with HttpScoringService(api_server.url, "not-the-token") as wrong:
        with pytest.raises(ApiAuthenticationError, match="refused the token .*SCORING_API_TOKEN"):
            wrong.portfolio()
    with pytest.raises(ApiAuthenticationError, match="SCORING_API_TOKEN"):
        HttpScoringService.from_env({"SCORING_API_URL": api_server.url})
    with pytest.raises(ApiAuthenticationError, match="no token"):
        HttpScoringService(api_server.url, "")


def test_the_token_can_come_from_a_file_like_a_docker_secret(api_server, service, tmp_path):
    (tmp_path / "api_tokens").write_text(TOKEN + "\n")
    with HttpScoringService.from_env({"SCORING_API_URL": api_server.url,
                                      "SCORING_API_TOKEN_FILE": str(tmp_path / "api_tokens")}) as backend:
        assert backend.portfolio() == service.portfolio()
    with pytest.raises(ApiAuthenticationError, match="cannot be read"):
        HttpScoringService.from_env({"SCORING_API_URL": api_server.url, "SCORING_API_TOKEN_FILE": str(tmp_path / "no")})


def test_open_service_uses_the_api_when_its_url_is_set(api_server, service, monkeypatch):
    monkeypatch.setenv("SCORING_API_URL", api_server.url)
    monkeypatch.setenv("SCORING_API_TOKEN", TOKEN)
    backend = open_service()
    try:
        assert isinstance(backend, HttpScoringService) and backend.base_url == api_server.url
        assert backend.portfolio() == service.portfolio()
    finally:
        backend.close()


def test_dashboard_user_is_forwarded_to_the_audit_log(http, audit, clients):
    http.for_user("analyst.dupont").client(clients[0])
    entry = audit.recent(1)[0]
    assert entry["event"] == "client_opened" and entry["client_id"] == clients[0]
    assert entry["user"] == f"analyst.dupont via {token_identity(TOKEN)}"


def test_concurrent_sessions_share_one_backend(http, service, clients):
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(http.client, clients * 4))
    assert results == [service.client(c) for c in clients * 4]


def test_api_down_is_a_clear_error_and_the_same_object_recovers(service, clients):
    live = LiveServer(create_app(service, tokens=frozenset(API_TOKENS))).start()
    backend = HttpScoringService(live.url, TOKEN, timeout=5)
    try:
        assert backend.client(clients[0]) == service.client(clients[0])
        live.stop()
        with pytest.raises(ServiceUnavailableError, match=f"scoring API at {live.url} is unreachable"):
            backend.client(clients[0])
        with pytest.raises(ServiceUnavailableError):
            backend.portfolio()
        live.start()
        assert backend.client(clients[0]) == service.client(clients[0])
        assert backend.portfolio() == service.portfolio()
    finally:
        live.stop()
        backend.close()


def test_an_api_that_does_not_answer_times_out_clearly():
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        with HttpScoringService(url, TOKEN, timeout=0.5) as backend:
            with pytest.raises(ServiceUnavailableError, match=r"did not answer GET /portfolio within 0.5 s"):
                backend.portfolio()


def test_advising_results_are_identical(http, service, clients):
    for cid in clients:
        assert http.application(cid) == service.application(cid)
        for lang in ("fr", "en"):
            assert http.reasons(cid, lang) == service.reasons(cid, lang)
        assert http.offers(cid) == service.offers(cid)
        assert http.peers(cid, 6) == service.peers(cid, 6)
    for call in (lambda s: s.application(42), lambda s: s.reasons(42), lambda s: s.offers(42),
                 lambda s: s.peers(42), lambda s: s.decisions(42)):
        with pytest.raises(UnknownClientError):
            call(http)
        with pytest.raises(UnknownClientError):
            call(service)


def test_decisions_over_http_are_recorded_for_the_forwarded_user(http, service, audit, clients):
    from scoring.contracts import JustificationRequiredError

    cid = next(c for c in clients if service.client(c).score.decision == "refused")
    martin = http.for_user("advisor.martin")
    with pytest.raises(JustificationRequiredError):
        martin.record_decision(cid, "accepted", "  ")
    with pytest.raises(JustificationRequiredError):
        service.record_decision(cid, "accepted", "  ")
    record = martin.record_decision(cid, "accepted", "apport personnel confirmé", advisor="someone.else")
    assert record.advisor == f"advisor.martin via {token_identity(TOKEN)}"
    assert martin.decisions(cid)[-1] == record == service.decisions(cid)[-1]
    assert audit.recent(2)[1]["event"] == "decision_recorded"
    with pytest.raises(InvalidApplicationError):
        martin.record_decision(cid, "refused", offer={"EXT_SOURCE_3": 0.9})
