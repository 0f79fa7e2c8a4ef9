"""What-if and new applications in the dashboard's state, without a browser: the advisor changes the loan and
sees the production model's new probability, decision and reasons; a value out of bounds is named and nothing
else changes; a new application is scored, saved, opened and found by the search; every scoring audited."""

from __future__ import annotations

import json

import pytest

from scoring.audit import AuditLog
from scoring.backends import session_service
from scoring.contracts import ClientQuery
from scoring.service import LocalScoringService
from views.state import DashboardState, raw_value, shown_value

TOKEN = "whatif-state-test-token"
API_TOKENS = (f"{TOKEN} advisor+analyst forward-user",)


@pytest.fixture(scope="module")
def own(workdir, tmp_path_factory):
    """The engine on the shared work directory, with its own file of new applications (the other test modules'
    searches keep their counts)."""
    return LocalScoringService(workdir, new_applications=tmp_path_factory.mktemp("new") / "new.sqlite")


@pytest.fixture
def log(tmp_path):
    return AuditLog(tmp_path / "audit.sqlite")


@pytest.fixture
def state(own, log):
    return DashboardState(session_service(own, "advisor.lea", log), role="advisor")


@pytest.fixture(scope="module")
def refused(own):
    return int(own.search(ClientQuery(decision="refused", split="new", limit=1)).items[0]["client_id"])


def test_nothing_is_read_until_the_advisor_starts_a_what_if(state, refused, log):
    state.client.client_id = refused
    whatif = state.whatif
    assert not whatif.active and whatif.application is None and whatif.assessment is None
    assert not [e for e in log.recent(20) if e["event"] == "predicted"]


def test_changing_the_amount_rescores_with_reasons(state, own, refused, log):
    state.client.client_id = refused
    whatif = state.whatif
    whatif.active = True
    application = own.application(refused)
    assert whatif.application == application
    assert {f.column for f in whatif.fields} >= {"AMT_CREDIT", "AMT_INCOME_TOTAL", "DAYS_EMPLOYED"}
    assert not {"CODE_GENDER", "DAYS_BIRTH"} & {f.column for f in whatif.fields}   # never a protected attribute
    baseline = own.assess(application, "fr", refused)
    assert whatif.baseline == baseline and whatif.assessment == baseline and whatif.assessment.changes == {}

    whatif.set_value("AMT_CREDIT", application["AMT_CREDIT"] * 0.3)
    expected = own.assess({**application, "AMT_CREDIT": application["AMT_CREDIT"] * 0.3}, "fr", refused)
    assert whatif.assessment == expected
    assert whatif.assessment.changes == {"AMT_CREDIT": application["AMT_CREDIT"] * 0.3}
    assert whatif.assessment.default_probability != baseline.default_probability
    assert whatif.assessment.reasons and whatif.errors == {}
    entry = log.recent(1)[0]
    assert entry["event"] == "predicted" and entry["client_id"] == refused and entry["user"] == "advisor.lea"
    assert json.loads(entry["details"])["changed"] == ["AMT_CREDIT"]

    state.language = "en"
    assert whatif.assessment.lang == "en" and whatif.baseline.lang == "en"
    whatif.reset()
    assert whatif.assessment.changes == {} and whatif.values["AMT_CREDIT"] == application["AMT_CREDIT"]


def test_a_value_out_of_bounds_is_named_and_the_last_result_stays(state, refused):
    state.client.client_id = refused
    whatif = state.whatif
    whatif.active = True
    before = whatif.assessment
    whatif.set_value("CNT_CHILDREN", 99)
    assert set(whatif.errors) == {"CNT_CHILDREN"} and "0 to 30" in whatif.errors["CNT_CHILDREN"]
    assert whatif.assessment == before
    whatif.set_value("CNT_CHILDREN", 2)
    assert whatif.errors == {} and whatif.assessment.changes == {"CNT_CHILDREN": 2.0}


def test_years_typed_are_days_for_the_model(state, own):
    employment = next(f for f in own.application_fields() if f.column == "DAYS_EMPLOYED")
    assert shown_value(employment, -3652.5) == 10.0 and raw_value(employment, 10.0) == -3652.0
    assert shown_value(employment, 365243) is None        # "not employed": an empty box, not 1,000 years


def test_opening_another_client_starts_again_from_its_file(state, own, refused):
    state.client.client_id = refused
    state.whatif.active = True
    state.whatif.set_value("AMT_CREDIT", 1000.0)
    other = int(own.search(ClientQuery(decision="accepted", limit=1)).items[0]["client_id"])
    state.client.client_id = other
    assert state.whatif.application == own.application(other)
    assert state.whatif.assessment.changes == {} and state.whatif.assessment.client_id == other


def test_a_new_application_is_saved_opened_and_found(state, own, log):
    new = state.new_application
    new.active = True
    assert new.fields and {"AMT_CREDIT", "EXT_SOURCE_2"} <= {f.column for f in new.fields}
    new.set_value("AMT_CREDIT", 250000.0)
    new.set_value("AMT_INCOME_TOTAL", -5.0)
    assert not new.create()
    assert set(new.errors) == {"AMT_INCOME_TOTAL"} and new.created is None
    new.set_value("AMT_INCOME_TOTAL", 90000.0)
    new.set_value("DAYS_EMPLOYED", 3.0)                 # years
    new.set_value("NAME_CONTRACT_TYPE", "Cash loans")
    assert new.create()
    created = new.created
    assert state.client.file == own.client(created.client_id) and created.split == "new"
    assert new.notice.key == "application_created" and new.values == {}
    assert own.application(created.client_id) == {"AMT_CREDIT": 250000.0, "AMT_INCOME_TOTAL": 90000.0,
                                                  "DAYS_EMPLOYED": -1096.0, "NAME_CONTRACT_TYPE": "Cash loans"}
    state.search.q = str(created.client_id)
    assert list(state.search.rows["client_id"]) == [created.client_id]
    entry = next(e for e in log.recent(20) if e["event"] == "application_created")
    assert entry["client_id"] == created.client_id and entry["user"] == "advisor.lea"


@pytest.fixture(scope="module")
def api_log(tmp_path_factory):
    return AuditLog(tmp_path_factory.mktemp("api-audit") / "audit.sqlite")


@pytest.fixture(scope="module")
def http(own, api_log):
    """The dashboard over the API (its own server on `own`: the new files stay in this module's file)."""
    from api_server import LiveServer
    from scoring.api import create_app
    from scoring.client import HttpScoringService

    with LiveServer(create_app(own, tokens=frozenset(API_TOKENS), audit=api_log)) as live:
        with HttpScoringService(live.url, TOKEN) as backend:
            yield backend


def test_over_the_http_backend_the_same_what_if_and_new_file_audited_by_the_api(http, own, refused, api_log):
    state = DashboardState(session_service(http, "advisor.remi", role="advisor"), role="advisor")
    state.client.client_id = refused
    state.whatif.active = True
    application = own.application(refused)
    state.whatif.set_value("AMT_CREDIT", application["AMT_CREDIT"] * 0.5)
    assert state.whatif.assessment == own.assess({**application, "AMT_CREDIT": application["AMT_CREDIT"] * 0.5},
                                                 "fr", refused)
    state.whatif.set_value("CNT_CHILDREN", -1)
    assert set(state.whatif.errors) == {"CNT_CHILDREN"}
    entry = next(e for e in api_log.recent(10) if e["event"] == "predicted")
    assert entry["client_id"] == refused and entry["user"].startswith("advisor.remi via token:")

    new = state.new_application
    new.active = True
    new.set_value("AMT_CREDIT", 40000.0)
    new.set_value("CNT_CHILDREN", 50.0)
    assert not new.create() and set(new.errors) == {"CNT_CHILDREN"}   # `application.CNT_CHILDREN` over HTTP
    new.set_value("CNT_CHILDREN", 1.0)
    assert new.create()
    assert state.client.file == own.client(new.created.client_id)
    entry = next(e for e in api_log.recent(10) if e["event"] == "application_created")
    assert entry["client_id"] == new.created.client_id and entry["user"].startswith("advisor.remi via token:")


def test_a_refusal_shown_under_a_field_is_text_not_markup():
    from views.whatif import error_html

    shown = error_html({"NAME_FAMILY_STATUS": "unknown category '<img src=x onerror=alert(1)>'"}, "NAME_FAMILY_STATUS")
    assert "<img" not in shown and "&lt;img src=x onerror=alert(1)&gt;" in shown
    assert error_html({}, "NAME_FAMILY_STATUS") == ""
