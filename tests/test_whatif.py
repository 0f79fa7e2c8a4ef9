"""What-if and new applications, over both backends (in process, and HTTP through a real uvicorn): an edited
application's probability, decision and reasons; values out of bounds and protected attributes refused with the
field named; new client files scored, saved append-only, audited, found by search by this process, by another
service on the same work directory and after a restart; duplicates refused."""

from __future__ import annotations

import json
import sqlite3
import stat
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from api_server import LiveServer
from dashboard_server import FlakyLog
from scoring.api import create_app, token_identity
from scoring.audit import AuditLog
from scoring.audited import AuditedService
from scoring.client import HttpScoringService
from scoring.contracts import ClientQuery, DuplicateClientError
from scoring.errors import InvalidApplicationError, UnknownClientError
from scoring.service import LocalScoringService

TOKEN = "whatif-test-token-7d1e"
ANALYST_TOKEN = "whatif-analyst-token-2b9c"
API_TOKENS = (f"{TOKEN} advisor+analyst forward-user", f"{ANALYST_TOKEN} analyst")


@pytest.fixture(scope="module")
def new_db(tmp_path_factory):
    return tmp_path_factory.mktemp("new") / "new_applications.sqlite"


@pytest.fixture(scope="module")
def own(workdir, new_db):
    """The engine on the shared work directory with its own file of new applications (other test modules keep
    their search counts)."""
    return LocalScoringService(workdir, new_applications=new_db)


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    return FlakyLog(AuditLog(tmp_path_factory.mktemp("audit") / "audit.sqlite"))


@pytest.fixture(scope="module")
def api(own, log):
    with LiveServer(create_app(own, tokens=frozenset(API_TOKENS), audit=log)) as live:
        yield live


@pytest.fixture(scope="module")
def http(api):
    with HttpScoringService(api.url, TOKEN) as backend:
        yield backend


@pytest.fixture(params=["local", "http"])
def backend(request, own, http):
    return own if request.param == "local" else http


@pytest.fixture(scope="module")
def refused(own):
    return int(own.search(ClientQuery(decision="refused", split="new", limit=1)).items[0]["client_id"])


# ------------------------------------------------------------------------------------------------ what-if
def test_what_if_rescores_the_changed_loan_with_reasons(backend, own, refused):
    application = own.application(refused)
    same = backend.assess(application, "fr", refused)
    score, _ = own.predict(application)
    assert same.changes == {} and same.client_id == refused
    assert same.default_probability == pytest.approx(score.default_probability, abs=1e-7)
    assert same.decision == score.decision and same.threshold == own.card.threshold and same.reasons

    smaller = {**application, "AMT_CREDIT": application["AMT_CREDIT"] * 0.3}
    changed = backend.assess(smaller, "en", refused)
    assert changed.changes == {"AMT_CREDIT": smaller["AMT_CREDIT"]}
    assert changed.default_probability != same.default_probability
    assert changed.default_probability == pytest.approx(own.predict(smaller)[0].default_probability, abs=1e-7)
    assert changed == own.assess(smaller, "en", refused)               # the same answer from both backends
    assert all(r.text and r.direction in ("risk", "strength") for r in changed.reasons)
    assert not {"CODE_GENDER", "DAYS_BIRTH", "AGE_YEARS"} & {f for r in changed.reasons for f in r.features}


def test_what_if_refuses_values_out_of_bounds_and_protected_changes_naming_the_field(backend, own, refused):
    application = own.application(refused)
    for column, value, words in (("CNT_CHILDREN", 99, "0 to 30"), ("AMT_CREDIT", -1.0, "negative"),
                                 ("DAYS_EMPLOYED", 10.0, "days before the application")):
        with pytest.raises(InvalidApplicationError) as refused_value:
            backend.assess({**application, column: value}, "fr", refused)
        assert refused_value.value.field == column and words in refused_value.value.reason
    gender = "M" if application.get("CODE_GENDER") != "M" else "F"
    with pytest.raises(InvalidApplicationError) as protected:
        backend.assess({**application, "CODE_GENDER": gender}, "fr", refused)
    assert protected.value.field == "CODE_GENDER" and "protected" in protected.value.reason
    with pytest.raises(InvalidApplicationError) as unknown:
        backend.assess({**application, "SALARY_BONUS": 1.0}, "fr", refused)
    assert unknown.value.field == "SALARY_BONUS"
    with pytest.raises(UnknownClientError):
        backend.assess(application, "fr", 999_999_999)


def test_the_fields_a_what_if_may_change_never_include_a_protected_attribute(backend, own):
    fields = backend.application_fields()
    assert fields == own.application_fields()
    editable = {f.column for f in fields if f.whatif}
    assert {"AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE", "AMT_INCOME_TOTAL", "DAYS_EMPLOYED",
            "NAME_FAMILY_STATUS", "CNT_CHILDREN"} <= editable
    assert not editable & {"CODE_GENDER", "DAYS_BIRTH"}
    assert "DEBTS_MONTHLY_PAYMENTS" in editable     # the existing credits' payments: "and if one were repaid?"
    children = next(f for f in fields if f.column == "CNT_CHILDREN")
    assert (children.minimum, children.maximum) == (0.0, 30.0)


# ------------------------------------------------------------------------------------------------ new files
def _application(own, refused, **changes):
    return {**{k: v for k, v in own.application(refused).items() if k != "SK_ID_CURR"}, **changes}


def test_a_new_application_becomes_a_client_file_opened_like_any_other(backend, own, refused):
    application = _application(own, refused, AMT_CREDIT=123_456.0)
    file = backend.create_client(application)
    assert file.split == "new" and file.known_outcome is None and file.application["credit_amount"] == 123_456.0
    score, _ = own.predict(application)
    assert file.score.default_probability == pytest.approx(score.default_probability, abs=1e-7)
    assert file.score.decision == score.decision and file.client_id > int(own.ids[-1])

    cid = file.client_id
    assert backend.client(cid) == own.client(cid) == file
    page = backend.search(ClientQuery(q=str(cid)))
    assert [r["client_id"] for r in page.items] == [cid] and page.total == 1
    assert page.items[0]["split"] == "new" and page.items[0]["credit_amount"] == 123_456.0
    newest = backend.search(ClientQuery(split="new", sort="client_id", descending=True, limit=1))
    assert newest.items[0]["client_id"] >= cid
    assert backend.application(cid) == own.applications.validate(application)
    assert backend.reasons(cid, "fr").default_probability == pytest.approx(file.score.default_probability, abs=1e-6)
    assert backend.overview(cid, "EXT_SOURCE_2", 5).file == file
    assert backend.explain(cid, 5).client_id == cid
    offers = backend.offers(cid)
    assert offers.client_id == cid and (offers.offers or offers.message)
    assert backend.peers(cid, 5).k == 5
    capacity = backend.debt_capacity(cid)
    assert capacity.client_id == cid and capacity.monthly_income == file.profile["income"]
    assert capacity.effort_rate is not None and capacity.term_months == file.term_months is not None
    record = backend.record_decision(cid, file.score.decision)
    assert record.model == "production" and backend.decisions(cid)[-1] == record
    assert backend.overview(cid).flags == own.trust_flags(cid)   # a new file has trust flags too
    decision_file = backend.decision_file(cid, record.id, "html", "fr")
    assert decision_file.client_id == cid and str(cid).encode() in decision_file.content


def test_a_taken_client_id_and_invalid_input_are_refused_with_a_clear_message(backend, own, refused):
    application = _application(own, refused)
    with pytest.raises(DuplicateClientError) as taken:
        backend.create_client(application, client_id=refused)                 # a file of the store
    assert taken.value.client_id == refused and "already taken" in str(taken.value)
    created = backend.create_client(application, client_id=int(own.ids[-1]) + 10_000 + (backend is own))
    with pytest.raises(DuplicateClientError):
        backend.create_client(application, client_id=created.client_id)       # a new file
    with pytest.raises(InvalidApplicationError) as negative:
        backend.create_client({**application, "AMT_INCOME_TOTAL": -1.0})
    assert negative.value.field.endswith("AMT_INCOME_TOTAL") and "negative" in negative.value.reason
    with pytest.raises(InvalidApplicationError) as no_amount:
        backend.create_client({"CNT_CHILDREN": 1.0})
    assert no_amount.value.field.endswith("AMT_CREDIT")
    with pytest.raises(InvalidApplicationError) as unknown:
        backend.create_client({**application, "NOT_A_COLUMN": 3.0})
    assert unknown.value.field.endswith("NOT_A_COLUMN")


def test_new_files_are_seen_by_another_service_on_the_same_workdir_and_survive_a_restart(workdir, own, new_db,
                                                                                         refused):
    other = LocalScoringService(workdir, new_applications=new_db)      # e.g. the dashboard's process
    created = own.create_client(_application(own, refused, AMT_CREDIT=77_777.0))
    found = other.search(ClientQuery(q=str(created.client_id)))
    assert [r["client_id"] for r in found.items] == [created.client_id]
    assert other.client(created.client_id) == created
    back = other.create_client(_application(own, refused, AMT_CREDIT=88_888.0))   # and the reverse
    assert own.client(back.client_id) == back and back.client_id != created.client_id
    restarted = LocalScoringService(workdir, new_applications=new_db)
    assert restarted.client(created.client_id) == created and restarted.client(back.client_id) == back
    filtered = restarted.search(ClientQuery(split="new", min_amount=77_777.0, max_amount=88_888.0, limit=50))
    assert {created.client_id, back.client_id} <= {r["client_id"] for r in filtered.items}


def test_concurrent_creations_get_distinct_ids(workdir, own, new_db, refused):
    services = [own, LocalScoringService(workdir, new_applications=new_db)]
    application = _application(own, refused)
    with ThreadPoolExecutor(4) as pool:
        files = list(pool.map(lambda i: services[i % 2].create_client(application), range(8)))
    ids = [f.client_id for f in files]
    assert len(set(ids)) == 8
    assert all(own.client(i).client_id == i for i in ids)


def test_the_new_applications_file_is_append_only_and_private(own, new_db, refused):
    own.create_client(_application(own, refused))
    assert stat.S_IMODE(new_db.stat().st_mode) == 0o600
    con = sqlite3.connect(new_db)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("UPDATE new_applications SET default_probability = 0")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        con.execute("DELETE FROM new_applications")
    con.close()


# ------------------------------------------------------------------------------------------------ the API
def _post(api, path, body, token=TOKEN, **params):
    return httpx.post(api.url + path, json=body, params=params, headers={"Authorization": f"Bearer {token}",
                                                                        "X-User": "advisor.noe"})


def test_post_clients_answers_201_with_the_file_and_audits_it_first(api, own, refused, log):
    application = _application(own, refused, AMT_CREDIT=55_555.0)
    r = _post(api, "/clients", {"application": application})
    assert r.status_code == 201
    file = r.json()
    assert file["split"] == "new" and file["application"]["credit_amount"] == 55_555.0
    entry = log.log.recent(1)[0]
    assert entry["event"] == "application_created" and entry["client_id"] == file["client_id"]
    assert entry["user"] == f"advisor.noe via {token_identity(TOKEN)}" and entry["source"] == "api"
    assert entry["default_probability"] == pytest.approx(file["score"]["default_probability"])
    listed = httpx.get(api.url + "/clients", params={"q": file["client_id"]},
                       headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert [i["client_id"] for i in listed["items"]] == [file["client_id"]]


def test_post_clients_refuses_bad_input_with_422_naming_the_field(api, own, refused):
    application = _application(own, refused)
    for body, field in (({"application": {**application, "CNT_CHILDREN": 31}}, "application.CNT_CHILDREN"),
                        ({"application": {**application, "AMT_CREDIT": "lots"}}, "application.AMT_CREDIT"),
                        ({"application": {**application, "FAVOURITE_COLOUR": "blue"}}, "application.FAVOURITE_COLOUR"),
                        ({"application": {"CNT_CHILDREN": 0}}, "application.AMT_CREDIT"),
                        ({"application": application, "client_id": 0}, "client_id"),
                        ({"application": application, "owner": "me"}, "owner"),
                        ({}, "application")):
        r = _post(api, "/clients", body)
        assert r.status_code == 422, (body.keys(), r.text)
        assert r.json()["message"].startswith(field + ":"), r.json()["message"]
    owner = _post(api, "/clients", {"application": application, "owner": "me"}).json()["message"]
    assert "application's columns" not in owner and "not permitted" in owner   # the body's field, not a column
    r = _post(api, "/clients", {"application": application, "client_id": refused})
    assert r.status_code == 409 and r.json()["duplicate"] is True and str(refused) in r.json()["detail"]


def test_post_assess_names_the_field_and_needs_the_advisor_role(api, own, refused):
    application = own.application(refused)
    r = _post(api, "/assess", {**application, "CNT_CHILDREN": 99}, client_id=refused)
    assert r.status_code == 422 and r.json()["message"].startswith("CNT_CHILDREN:")
    r = _post(api, "/assess", {**application, "AMT_CREDIT": 1000.0}, client_id=refused, lang="en")
    assert r.status_code == 200 and r.json()["changes"] == {"AMT_CREDIT": 1000.0} and r.json()["lang"] == "en"
    assert _post(api, "/assess", application, client_id=999_999_999).status_code == 404
    analyst = httpx.post(api.url + "/assess", json=application, headers={"Authorization": f"Bearer {ANALYST_TOKEN}"})
    assert analyst.status_code == 403
    analyst = httpx.post(api.url + "/clients", json={"application": application},
                         headers={"Authorization": f"Bearer {ANALYST_TOKEN}"})
    assert analyst.status_code == 403


def test_without_the_audit_log_nothing_is_answered(api, own, refused, log):
    before = len(own.new_files.all())
    log.broken = True
    try:
        r = _post(api, "/assess", own.application(refused), client_id=refused)
        assert r.status_code == 503 and r.json()["audit"] is True
        r = _post(api, "/clients", {"application": _application(own, refused)})
        assert r.status_code == 503 and r.json()["audit"] is True and "client_id" not in r.text
    finally:
        log.broken = False
    # the file stays saved (append-only, with its creator and time), as a decision does
    saved = own.new_files.all()
    assert len(saved) == before + 1 and saved[-1].created_by == f"advisor.noe via {token_identity(TOKEN)}"


def test_the_routes_are_in_openapi(api):
    spec = httpx.get(api.url + "/openapi.json").json()
    assert "post" in spec["paths"]["/clients"] and "201" in spec["paths"]["/clients"]["post"]["responses"]
    assert "post" in spec["paths"]["/assess"] and "/model/application-fields" in spec["paths"]


def test_the_audited_service_writes_the_entry_in_process(own, refused, tmp_path):
    log = AuditLog(tmp_path / "audit.sqlite")
    audited = AuditedService(own, log, "advisor.ines", "dashboard")
    file = audited.create_client(_application(own, refused))
    entry = log.recent(1)[0]
    assert (entry["event"], entry["client_id"], entry["user"]) == ("application_created", file.client_id,
                                                                   "advisor.ines")
    assert own.new_files.get(file.client_id).created_by == "advisor.ines"
    audited.assess(own.application(refused), "fr", refused)
    entry = log.recent(1)[0]
    assert entry["event"] == "predicted" and json.loads(entry["details"])["read"] == "what-if"


def test_a_search_with_new_files_follows_any_read_of_the_store(own, refused):
    """A point read leaves DuckDB's result unfinished on the thread's cursor; the search with new files still runs
    (it once failed in the dashboard with ResourceInUseException)."""
    created = own.create_client(_application(own, refused))
    own.store.raw_record(refused)
    assert [r["client_id"] for r in own.search(ClientQuery(q=str(created.client_id))).items] == [created.client_id]


def test_a_file_saved_by_another_process_is_found_here(workdir, own, new_db, refused):
    """Two processes (say the API and the dashboard) on one work directory: a file the other one saves is found
    by this one's search and opened, and the reverse."""
    import subprocess
    import sys

    code = ("import sys, json; from pathlib import Path; from scoring.config import Workdir; "
            "from scoring.service import LocalScoringService; from scoring.contracts import ClientQuery; "
            "s = LocalScoringService(Workdir(Path(sys.argv[1])), new_applications=sys.argv[2]); "
            "print(s.create_client(json.loads(sys.argv[3])).client_id); "
            "print(s.search(ClientQuery(q=sys.argv[4])).total)")
    mine = own.create_client(_application(own, refused, AMT_CREDIT=31_313.0))
    out = subprocess.run([sys.executable, "-c", code, str(workdir.root), str(new_db),
                          json.dumps(_application(own, refused, AMT_CREDIT=42_424.0)), str(mine.client_id)],
                         capture_output=True, text=True, check=True, timeout=300)
    theirs, mine_found_there = (int(line) for line in out.stdout.split())
    assert mine_found_there == 1
    page = own.search(ClientQuery(q=str(theirs)))
    assert [r["client_id"] for r in page.items] == [theirs] and page.items[0]["credit_amount"] == 42_424.0
    assert own.client(theirs).application["credit_amount"] == 42_424.0
