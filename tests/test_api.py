"""The REST API against a real uvicorn on 127.0.0.1: what a caller sees, including refusals."""

from __future__ import annotations

import json
import math
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from scoring.api import create_app, token_identity, tokens_from_env
from scoring.audit import AuditLog
from scoring.contracts import FLOAT32_MAX, MAX_BATCH, ClientQuery, to_json

TOKEN, OTHER_TOKEN = "test-token-0123456789abcdef", "second-token-for-a-batch-job"
API_TOKENS = (f"{TOKEN} advisor+analyst forward-user", OTHER_TOKEN)  # the dashboard's, a batch job's
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def api(api_server):
    with httpx.Client(base_url=api_server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def anonymous(api_server):
    with httpx.Client(base_url=api_server.url, timeout=30) as client:
        yield client


@pytest.fixture(scope="module")
def ids(service):
    """New applications first: their stored score is the production model's, the one /predict uses (a labelled
    file's is out of fold, from a model that did not see it)."""
    return [int(row["client_id"]) for split in ("new", "train")
            for row in service.search(ClientQuery(split=split, limit=250)).items]


@pytest.fixture(scope="module")
def application(service, ids):
    """A real client's application as the raw columns, without its missing values."""
    return {k: v for k, v in service.store.raw_record(ids[0]).items() if v is not None}


def to_jsonable(obj):
    """What the API sends for a domain result (tuples become lists)."""
    return json.loads(json.dumps(to_json(obj)))


def secured_get_paths(api, client_id: int, decision_id: int = 1) -> list[str]:
    paths = [p for p, ops in api.get("/openapi.json").json()["paths"].items() if "get" in ops and p != "/health"]
    version = api.get("/model").json()["version"]  # a version compared with itself: the route's required query
    return [p.replace("{client_id}", str(client_id)).replace("{feature}", "EXT_SOURCE_2")
            .replace("{decision_id}", str(decision_id))
            + (f"?a={version}&b={version}" if p == "/model/versions/compare" else "") for p in paths]


# ------------------------------------------------------------------------------------------ health and docs
def test_health_needs_no_token_and_gives_the_model_version(anonymous, service):
    r = anonymous.get("/health")
    assert r.status_code == 200
    assert r.json() == {"status": "ok", "model_version": service.card.version}


def test_openapi_documents_every_endpoint_with_bearer_auth_and_docs_page_renders(anonymous):
    doc = anonymous.get("/openapi.json").json()
    assert {"/health", "/model", "/clients", "/clients/{client_id}", "/clients/{client_id}/explanation", "/predict",
            "/predict/batch", "/portfolio", "/model/importance", "/model/drift", "/features/{feature}/distribution",
            "/clients/{client_id}/debt-capacity", "/clients/{client_id}/overview", "/contract-types"} <= set(doc["paths"])
    assert doc["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"
    assert doc["paths"]["/clients/{client_id}"]["get"]["security"] == [{"HTTPBearer": []}]
    assert "security" not in doc["paths"]["/health"]["get"]
    page = anonymous.get("/docs")
    assert page.status_code == 200 and "swagger-ui" in page.text.lower()


def test_predict_schema_lists_every_application_field_with_constraints(anonymous, service):
    schema = anonymous.get("/openapi.json").json()["components"]["schemas"]["Application"]
    spec = service.scorer.spec
    protected = {p.column for p in spec.schema.protected.values()}
    assert set(schema["properties"]) == set(spec.raw_columns) | protected
    assert "never used by the model" in schema["properties"]["CODE_GENDER"]["description"]
    assert schema["additionalProperties"] is False and not schema.get("required")
    contract = schema["properties"]["NAME_CONTRACT_TYPE"]["anyOf"][0]
    assert contract["enum"] == ["Cash loans", "Revolving loans"]
    assert schema["properties"]["AMT_CREDIT"]["anyOf"][0] == {"type": "number", "minimum": 0.0, "maximum": FLOAT32_MAX}
    assert "Credit amount" in schema["properties"]["AMT_CREDIT"]["description"]


def test_the_scoring_routes_document_the_caller_and_their_query_like_the_other_routes(anonymous):
    """`POST /predict` and `GET /clients/{id}` (the hot paths) declare the token, X-User and `top` as the
    explanation route does."""
    paths = anonymous.get("/openapi.json").json()["paths"]
    predict, client = paths["/predict"]["post"], paths["/clients/{client_id}"]["get"]
    explanation = paths["/clients/{client_id}/explanation"]["get"]
    assert predict["security"] == client["security"] == explanation["security"] == [{"HTTPBearer": []}]
    documented = {(p["in"], p["name"]): p for p in explanation["parameters"]}
    params = {(p["in"], p["name"]): p for p in predict["parameters"]}
    assert set(params) == {("query", "explain"), ("query", "top"), ("header", "x-user"), ("header", "x-role")}
    assert params["query", "explain"]["schema"]["type"] == "boolean"
    assert params["query", "top"]["schema"]["anyOf"] == documented["query", "top"]["schema"]["anyOf"]
    client_params = {(p["in"], p["name"]): p for p in client["parameters"]}
    assert set(client_params) == {("path", "client_id"), ("header", "x-user"), ("header", "x-role")}
    for ours in (params, client_params):
        assert ours["header", "x-user"]["schema"]["anyOf"][0] == {"type": "string", "maxLength": 120}
        assert ours["header", "x-user"]["description"] == documented["header", "x-user"]["description"]


@pytest.mark.parametrize("query, field", [({"top": -1}, "top"), ({"top": "ten"}, "top"),
                                          ({"explain": "maybe"}, "explain")])
def test_predict_refuses_bad_query_parameters_as_the_other_routes_do(api, ids, application, query, field):
    r = api.post("/predict", params=query, json=application)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["query", field] and r.json()["message"].startswith(f"{field}: ")
    if field == "top":  # the explanation route declares `top` with FastAPI's Query: the same answer
        other = api.get(f"/clients/{ids[0]}/explanation", params=query)
        assert other.status_code == 422 and other.json()["detail"] == r.json()["detail"]


def test_an_overlong_x_user_header_is_refused_on_every_route(api, ids, application):
    long_user = {"X-User": "a" * 121}
    answers = [api.post("/predict", json=application, headers=long_user),
               api.get(f"/clients/{ids[0]}", headers=long_user),
               api.get(f"/clients/{ids[0]}/explanation", headers=long_user)]
    assert [r.status_code for r in answers] == [422] * 3
    assert {(r.json()["detail"][0]["type"], *r.json()["detail"][0]["loc"]) for r in answers} == {
        ("string_too_long", "header", "x-user")}
    assert api.post("/predict", json=application, headers={"X-User": "a" * 120}).status_code == 200
    assert api.get(f"/clients/{ids[0]}", headers={"X-User": "a" * 120}).status_code == 200


def test_documented_predict_examples_are_synthetic_not_a_client_of_the_files(anonymous, service):
    """The documentation is public within the bank: its examples must not be a real client's application."""
    body = anonymous.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]["content"]
    examples = [e["value"] for e in body["application/json"]["examples"].values()]
    typical = max(examples, key=len)
    assert len(typical) >= 20
    for cid in service.ids:
        raw = service.store.raw_record(int(cid))
        for example in examples:
            assert any(raw.get(k) != v for k, v in example.items()), cid


def test_documented_predict_examples_score_successfully(api):
    body = api.get("/openapi.json").json()["paths"]["/predict"]["post"]["requestBody"]["content"]["application/json"]
    examples = body["examples"]
    assert len(examples) >= 2
    for name, example in examples.items():
        r = api.post("/predict", json=example["value"])
        assert r.status_code == 200, (name, r.text)
        assert r.json()["decision"] in ("accepted", "refused")


# ------------------------------------------------------------------------------------------ access control
def test_every_endpoint_but_health_refuses_a_missing_token_without_data(anonymous, api, ids):
    for path in secured_get_paths(api, ids[0]):
        r = anonymous.get(path)
        assert r.status_code == 401, path
        assert r.headers["www-authenticate"] == "Bearer"
        assert "missing bearer token" in r.json()["detail"]
        assert str(ids[0]) not in r.text and "probability" not in r.text
    r = anonymous.post("/predict", json={})
    assert r.status_code == 401 and "default_probability" not in r.text


@pytest.mark.parametrize("header", [f"Bearer {TOKEN}x", "Bearer", f"Basic {TOKEN}", TOKEN, f"Bearer {TOKEN[:-1]}"])
def test_a_wrong_token_is_refused_without_data(api_server, ids, application, header):
    r = httpx.get(f"{api_server.url}/clients/{ids[0]}", headers={"Authorization": header})
    assert r.status_code == 401
    assert str(ids[0]) not in r.text and "profile" not in r.text
    r = httpx.post(f"{api_server.url}/predict", json=application, headers={"Authorization": header})
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    assert "default_probability" not in r.text


def test_every_configured_token_is_accepted(api_server, ids):
    for token in (TOKEN, OTHER_TOKEN):
        r = httpx.get(f"{api_server.url}/clients/{ids[0]}", headers={"Authorization": f"Bearer {token}"})
        assert r.status_code == 200


def test_the_token_is_checked_once_per_request_on_every_route(api_server, api, service, ids, application, monkeypatch):
    """Every route answers with a token, and checks it once (the 401 test above shows none answers without)."""
    decision = service.record_decision(ids[0], service.client(ids[0]).score.decision)   # a decision file to read
    auth = api_server.app.state.auth
    checks = []
    identify = auth.identify
    monkeypatch.setattr(auth, "identify", lambda presented: checks.append(presented) or identify(presented))
    for path in secured_get_paths(api, ids[0], decision.id):
        checks.clear()
        assert api.get(path).status_code == 200, path
        assert len(checks) == 1, path
    checks.clear()
    assert api.post("/predict", json=application).status_code == 200 and len(checks) == 1
    checks.clear()
    assert api.post("/predict/batch", json={"applications": [application]}).status_code == 200 and len(checks) == 1


def test_tokens_come_from_the_environment_and_the_token_file(tmp_path):
    path = tmp_path / "api_tokens"
    path.write_text("# token  roles  options\nfrom-file-1 analyst\nfrom-file-2 advisor+analyst forward-user\n")
    env = {"SCORING_API_TOKENS": "a, b advisor,,", "SCORING_API_TOKENS_FILE": str(path)}
    assert tokens_from_env(env) == {"a advisor+analyst", "b advisor", "from-file-1 analyst",
                                    "from-file-2 advisor+analyst forward-user"}
    with pytest.raises(Exception, match="unknown role auditor"):
        tokens_from_env({"SCORING_API_TOKENS": "c auditor"})
    assert tokens_from_env({}) == frozenset()
    with pytest.raises(Exception, match="SCORING_API_TOKENS_FILE"):
        tokens_from_env({"SCORING_API_TOKENS_FILE": str(tmp_path / "missing")})


# ------------------------------------------------------------------------------------------ model and portfolio
def test_model_card_gives_metrics_threshold_costs_features_version_and_roles(api, service):
    card = api.get("/model").json()
    assert card["version"] == service.card.version
    assert card["threshold"] == service.card.threshold
    assert set(card["metrics"]) >= {"roc_auc", "error_rate"}
    assert set(card["cost_weights"]) == {"missed_default", "refused_good_client"}
    assert len(card["features"]) == len(service.scorer.spec.features)
    assert set(card["roles"]) == set(service.roles)


def test_portfolio_importance_drift_and_contract_types_match_the_service(api, service):
    assert api.get("/portfolio").json() == to_jsonable(service.portfolio())
    top = api.get("/model/importance", params={"top": 4}).json()
    assert top == to_jsonable(service.global_importance(4)) and len(top) == 4
    assert [r["importance"] for r in top] == sorted((r["importance"] for r in top), reverse=True)
    assert api.get("/model/top-features", params={"n": 5}).json() == to_jsonable(service.top_features(5))
    assert api.get("/model/drift").json() == [to_jsonable(r) for r in service.drift()]
    assert api.get("/contract-types").json() == service.contract_types()


# ------------------------------------------------------------------------------------------ client files
def test_search_filters_by_decision_and_probability(api, service):
    refused = [r["default_probability"] for r in service.search(ClientQuery(decision="refused", limit=500)).items]
    cut = statistics.median(refused)  # a probability that splits the refused files in two, whatever the data
    r = api.get("/clients", params={"decision": "refused", "min_probability": cut, "limit": 50}).json()
    assert r["total"] == service.search(ClientQuery(decision="refused", min_probability=cut)).total > 0
    assert all(i["decision"] == "refused" and i["default_probability"] >= cut for i in r["items"])
    assert len(r["items"]) == min(50, r["total"])


def test_search_by_id_prefix_puts_the_exact_id_first(api, ids):
    prefix = str(ids[0])[:-1]
    items = api.get("/clients", params={"q": str(ids[0])}).json()["items"]
    assert items[0]["client_id"] == ids[0]
    by_prefix = api.get("/clients", params={"q": prefix}).json()["items"]
    assert by_prefix and all(str(i["client_id"]).startswith(prefix) for i in by_prefix)


def test_search_exposes_every_filter_sort_and_pagination(api, service):
    params = {"contract_type": "Cash loans", "min_income": 50_000, "max_income": 400_000, "min_amount": 100_000,
              "max_amount": 900_000, "min_age": 25, "max_age": 60, "split": "train", "sort": "default_probability",
              "descending": True, "limit": 10}
    r = api.get("/clients", params=params).json()
    query = ClientQuery(**params)
    assert r["total"] == service.search(query).total > 10
    probs = [i["default_probability"] for i in r["items"]]
    assert probs == sorted(probs, reverse=True)
    for i in r["items"]:
        assert i["contract_type"] == "Cash loans" and i["split"] == "train"
        assert 50_000 <= i["income"] <= 400_000 and 100_000 <= i["credit_amount"] <= 900_000
        assert 25 <= i["age_years"] <= 60
    second = api.get("/clients", params={**params, "offset": 10}).json()["items"]
    assert not {i["client_id"] for i in second} & {i["client_id"] for i in r["items"]}


@pytest.mark.parametrize("params, field", [({"limit": 0}, "limit"), ({"limit": 501}, "limit"),
                                           ({"sort": "name"}, "sort"), ({"q": "12ab"}, "q"),
                                           ({"decision": "maybe"}, "decision"),
                                           ({"min_probability": 2}, "min_probability"), ({"offset": -1}, "offset"),
                                           ({"min_income": "nan"}, "min_income"), ({"colour": "red"}, "colour")])
def test_bad_search_parameters_are_422_naming_the_parameter(api, params, field):
    r = api.get("/clients", params=params)
    assert r.status_code == 422
    assert r.json()["message"].startswith(f"{field}:")


def test_client_file_has_profile_application_probability_decision_threshold(api, service, ids):
    body = api.get(f"/clients/{ids[1]}").json()
    assert body == to_jsonable(service.client(ids[1]))
    assert body["score"]["threshold"] == service.card.threshold
    assert body["score"]["decision"] == ("refused" if body["score"]["default_probability"] >= body["score"]["threshold"]
                                         else "accepted")
    assert {"age_years", "income"} <= set(body["profile"]) and {"credit_amount", "annuity"} <= set(body["application"])
    # the contract: the file's debts (outstanding debt and monthly payments of the other credits) and its term
    assert {"outstanding_debt", "monthly_debt_service"} <= set(body["debts"]) and body["term_months"] > 0
    capacity = api.get(f"/clients/{ids[1]}/debt-capacity").json()
    assert {"effort_rate", "effort_cap", "remaining_capacity", "max_affordable_amount"} <= set(capacity)
    assert capacity["existing_debt_service"] == body["debts"]["monthly_debt_service"]


@pytest.mark.parametrize("path", ["/clients/{id}", "/clients/{id}/explanation", "/clients/{id}/debt-capacity",
                                  "/clients/{id}/overview", "/features/EXT_SOURCE_2/distribution?client_id={id}"])
@pytest.mark.parametrize("unknown", [1, -5, 10**25])
def test_unknown_client_is_404_naming_the_id(api, path, unknown):
    r = api.get(path.format(id=unknown))
    assert r.status_code == 404
    assert f"unknown client ID {unknown}" in r.json()["detail"]


def test_non_numeric_client_id_is_422(api):
    r = api.get("/clients/abc")
    assert r.status_code == 422 and r.json()["message"].startswith("client_id:")


def test_explanation_is_sorted_with_labels_values_and_adds_up(api, service, ids):
    full = api.get(f"/clients/{ids[2]}/explanation").json()
    assert full == to_jsonable(service.explain(ids[2]))
    top = api.get(f"/clients/{ids[2]}/explanation", params={"top": 5}).json()
    sizes = [abs(c["contribution"]) for c in top["contributions"]]
    assert len(sizes) == 5 and sizes == sorted(sizes, reverse=True)
    assert all(c["label"] and c["label_fr"] and "value" in c for c in top["contributions"])
    total = top["base_value"] + sum(c["contribution"] for c in top["contributions"]) + top["others"]
    assert total == pytest.approx(top["margin"], abs=1e-4)
    stored = api.get(f"/clients/{ids[2]}").json()["score"]["default_probability"]
    assert 1 / (1 + math.exp(-top["margin"])) == pytest.approx(stored, abs=1e-4)


def test_unknown_feature_distribution_is_404_listing_real_features(api):
    r = api.get("/features/NOT_A_FEATURE/distribution")
    assert r.status_code == 404 and "NOT_A_FEATURE" in r.json()["detail"] and "EXT_SOURCE" in r.json()["detail"]


def test_distribution_and_debt_capacity_mark_the_client(api, service, ids):
    d = api.get("/features/EXT_SOURCE_2/distribution", params={"client_id": ids[0]}).json()
    assert d == to_jsonable(service.distribution("EXT_SOURCE_2", ids[0]))
    assert d["client_id"] == ids[0] and len(d["histogram"]["edges"]) > 2
    debt = api.get(f"/clients/{ids[0]}/debt-capacity").json()
    assert debt == to_jsonable(service.debt_capacity(ids[0]))
    assert {r["name"] for r in debt["ratios"]} == {"debt_ratio", "credit_income_ratio"}


# ------------------------------------------------------------------------------------------ predict
def test_predicting_a_known_application_gives_its_stored_score(api, service, ids, application):
    r = api.post("/predict", json=application)
    assert r.status_code == 200
    body = r.json()
    stored = service.client(ids[0]).score
    assert body["default_probability"] == pytest.approx(stored.default_probability, abs=1e-5)
    assert body["decision"] == stored.decision and body["threshold"] == stored.threshold
    assert body["model_version"] == service.card.version and body["explanation"] is None


def test_predict_with_explain_returns_sorted_contributions(api, application):
    body = api.post("/predict", params={"explain": "true", "top": 3}, json=application).json()
    contributions = body["explanation"]["contributions"]
    assert len(contributions) == 3
    assert [abs(c["contribution"]) for c in contributions] == sorted((abs(c["contribution"]) for c in contributions),
                                                                     reverse=True)
    assert 1 / (1 + math.exp(-body["explanation"]["margin"])) == pytest.approx(body["default_probability"], abs=1e-4)


def test_missing_fields_are_allowed_and_change_the_score(api, application):
    partial = {k: application[k] for k in ("AMT_CREDIT", "AMT_INCOME_TOTAL", "NAME_CONTRACT_TYPE")}
    for body in ({}, partial, {**partial, "EXT_SOURCE_2": None}):
        r = api.post("/predict", json=body)
        assert r.status_code == 200 and 0 < r.json()["default_probability"] < 1
    assert api.post("/predict", json=partial).json() != api.post("/predict", json=application).json()


@pytest.mark.parametrize("text, field", [
    ('{"AMT_CREDIT": NaN}', "AMT_CREDIT"),
    ('{"AMT_ANNUITY": Infinity}', "AMT_ANNUITY"),
    ('{"EXT_SOURCE_2": -Infinity}', "EXT_SOURCE_2"),
    ('{"AMT_CREDIT": -1000}', "AMT_CREDIT"),
    ('{"AMT_INCOME_TOTAL": "120000"}', "AMT_INCOME_TOTAL"),
    ('{"AMT_INCOME_TOTAL": true}', "AMT_INCOME_TOTAL"),
    ('{"NAME_CONTRACT_TYPE": "Mortgage"}', "NAME_CONTRACT_TYPE"),
    ('{"NAME_CONTRACT_TYPE": 1}', "NAME_CONTRACT_TYPE"),
    ('{"SALARY": 1000}', "SALARY"),
    ('{"AMT_CREDIT": 1e999}', "AMT_CREDIT"),
    ('{"AMT_CREDIT": 1e300}', "AMT_CREDIT"),
    ('{"DAYS_BIRTH": -1e300}', "DAYS_BIRTH"),
    ('{"DEBTS_OUTSTANDING": -1}', "DEBTS_OUTSTANDING"),          # the applicant's other credits: no negative debt
    ('{"DEBTS_ACTIVE_CREDITS": -2}', "DEBTS_ACTIVE_CREDITS"),
    ('{"AMT_CREDIT": 1000,', "body"),
    ('[{"AMT_CREDIT": 1000}]', "body"),
])
def test_bad_applications_are_422_naming_the_field(api, text, field):
    r = api.post("/predict", content=text, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["message"].startswith(f"{field}:"), body["message"]
    assert body["detail"][0]["loc"][0] == "body"
    assert "default_probability" not in r.text


def test_a_body_sent_in_chunks_scores_as_the_same_body_sent_at_once(api, application):
    body = json.dumps(application).encode()
    chunks = [body[i:i + 97] for i in range(0, len(body), 97)]  # Transfer-Encoding: chunked, many messages
    r = api.post("/predict", content=iter(chunks), headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text
    assert r.json() == api.post("/predict", content=body, headers={"Content-Type": "application/json"}).json()


def test_a_body_too_large_for_an_application_is_refused_before_it_is_read(api, audit):
    before = audit.count()
    r = api.post("/predict", content=b'{"AMT_CREDIT": 1000' + b" " * (1 << 20) + b"}",
                 headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and audit.count() == before


def test_a_body_that_is_not_utf8_json_is_422(api):
    r = api.post("/predict", content=b"\xff\xfe\x00garbage", headers={"Content-Type": "application/json"})
    assert r.status_code == 422 and r.json()["message"].startswith("body:")


@pytest.mark.parametrize("content, content_type, status, message", [
    (b"", "application/json", 422, "body: Field required"),
    (b" \r\n\t", "application/json", 422, "body: the body is not valid JSON (Expecting value at character 4)"),
    (b'{"AMT_CREDIT": 1000,', "application/json", 422, "body: the body is not valid JSON ("),
    (b'{"AMT_CREDIT": 1000}', "text/plain", 422, "body: send the body as JSON (Content-Type: application/json), "
                                               "not text/plain"),
    (b"AMT_CREDIT=1000", "application/x-www-form-urlencoded", 422, "body: send the body as JSON"),
    (b'\xef\xbb\xbf{"AMT_CREDIT": 1000}', "application/json", 200, None),   # UTF-8 byte order mark
    (b'{"AMT_CREDIT": 1000}', "application/json; charset=utf-8", 200, None),
])
def test_the_body_must_be_json_and_says_so(api, content, content_type, status, message):
    r = api.post("/predict", content=content, headers={"Content-Type": content_type})
    assert r.status_code == status, r.text
    if message:
        assert r.json()["message"].startswith(message) and r.json()["message"].count("not valid JSON") <= 1
    else:
        assert r.json()["decision"] in ("accepted", "refused")


# ------------------------------------------------------------------------------------------ predict/batch
def _bodies(service, ids, n):
    spec = service.scorer.spec
    return [{k: v for k, v in service.store.raw_record(cid).items() if v is not None and k in spec.raw_columns}
            for cid in ids[:n]]


def test_a_batch_is_scored_in_order_as_each_application_alone(api, service, ids, audit):
    bodies = _bodies(service, ids, 40) + [{}, {"AMT_CREDIT": 250_000, "NAME_CONTRACT_TYPE": "Revolving loans"}]
    before = audit.count()
    r = api.post("/predict/batch", json={"applications": bodies})
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    assert audit.count() == before + 1  # one action, one entry: its size and outcome in `details`
    assert json.loads(audit.recent(1)[0]["details"])["applications"] == len(bodies)
    assert len(predictions) == len(bodies)
    for body, batch in zip(bodies, predictions):
        alone = api.post("/predict", json=body).json()
        assert set(batch) == {"default_probability", "decision", "threshold", "model_version"}
        assert batch["default_probability"] == pytest.approx(alone["default_probability"], abs=1e-6)
        assert (batch["decision"], batch["threshold"], batch["model_version"]) == (
            alone["decision"], alone["threshold"], alone["model_version"])
    for cid, batch in zip(ids[:40], predictions):  # and as the store scored the portfolio
        assert batch["default_probability"] == pytest.approx(service.client(cid).score.default_probability, abs=1e-5)


def test_a_batch_of_the_maximum_size_is_scored(api, audit):
    before = audit.count()
    r = api.post("/predict/batch", json={"applications": [{"AMT_CREDIT": 1000.0 * (i + 1)} for i in range(MAX_BATCH)]})
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["predictions"]) == MAX_BATCH and audit.count() == before + 1


@pytest.mark.parametrize("applications, loc, message", [
    ([], ["body", "applications"], "applications: List should have at least 1 item"),
    ([{}] * (MAX_BATCH + 1), ["body", "applications"], f"applications: List should have at most {MAX_BATCH} items"),
    ([{}, {}, {}, {"AMT_CREDIT": -5.0}, {}], ["body", "applications", 3, "AMT_CREDIT"],
     "applications.3.AMT_CREDIT: is an amount and cannot be negative"),
    ([{}, {"NAME_CONTRACT_TYPE": "Mortgage"}], ["body", "applications", 1, "NAME_CONTRACT_TYPE"],
     "applications.1.NAME_CONTRACT_TYPE: unknown category 'Mortgage'; expected one of: Cash loans"),
    ([{}, {"SALARY": 1}], ["body", "applications", 1, "SALARY"], "applications.1.SALARY: unknown field"),
    ([{}, [1, 2]], ["body", "applications", 1], "applications.1: must be a mapping"),
])
def test_a_refused_batch_names_the_row_and_field_and_nothing_is_scored_or_audited(api, audit, applications, loc,
                                                                                  message):
    before = audit.count()
    r = api.post("/predict/batch", json={"applications": applications})
    assert r.status_code == 422, r.text[:300]
    assert r.json()["detail"][0]["loc"] == loc
    assert r.json()["message"].startswith(message), r.json()["message"]
    assert "default_probability" not in r.text and len(r.text) < 2000  # the batch is not echoed back
    assert audit.count() == before


def test_a_batch_must_be_sent_as_applications(api, audit):
    before = audit.count()
    for body in ({}, [{}], {"applications": {}}):
        r = api.post("/predict/batch", json=body)
        assert r.status_code == 422 and r.json()["message"].startswith(("body", "applications")), r.text
    assert audit.count() == before


# ------------------------------------------------------------------------------------------ overview
def test_the_overview_is_the_client_switch_in_one_request_and_one_audit_entry(api, service, audit, ids):
    before = audit.count()
    r = api.get(f"/clients/{ids[5]}/overview", params={"feature": "EXT_SOURCE_2", "top": 5},
                headers={"X-User": "advisor.durand"})
    assert r.status_code == 200, r.text
    assert r.json() == to_jsonable(service.overview(ids[5], "EXT_SOURCE_2", 5))
    assert len(r.json()["explanation"]["contributions"]) == 5 and r.json()["comparison"]["client_id"] == ids[5]
    assert audit.count() == before + 1
    entry = audit.recent(1)[0]
    assert (entry["event"], entry["client_id"], entry["user"]) == ("client_opened", ids[5],
                                                                   f"advisor.durand via {token_identity(TOKEN)}")
    plain = api.get(f"/clients/{ids[5]}/overview").json()
    assert plain["comparison"] is None and plain == to_jsonable(service.overview(ids[5]))
    unknown = api.get(f"/clients/{ids[5]}/overview", params={"feature": "NOT_A_FEATURE"})
    assert unknown.status_code == 404 and unknown.json()["feature"] == "NOT_A_FEATURE"


# ------------------------------------------------------------------------------------------ audit
def test_opening_and_scoring_are_audited_with_identity_not_token(api_server, audit, service, ids, application):
    headers = {"Authorization": f"Bearer {TOKEN}", "X-User": "advisor.martin"}  # the dashboard's service token
    before = audit.count()
    httpx.get(f"{api_server.url}/clients/{ids[3]}", headers=headers).raise_for_status()
    httpx.get(f"{api_server.url}/clients/{ids[3]}/explanation", headers=headers).raise_for_status()
    httpx.post(f"{api_server.url}/predict", json=application, headers=headers).raise_for_status()
    httpx.get(f"{api_server.url}/clients/{ids[3]}", headers={"Authorization": "Bearer wrong"})  # refused: not audited
    assert audit.count() == before + 3
    predicted, explained, opened = audit.recent(3)
    stored = service.client(ids[3]).score
    assert opened["event"] == "client_opened" and opened["client_id"] == ids[3]
    assert opened["default_probability"] == stored.default_probability and opened["decision"] == stored.decision
    assert opened["model_version"] == service.card.version and opened["source"] == "api"
    assert explained["event"] == "explained" and explained["client_id"] == ids[3]
    assert predicted["event"] == "predicted" and predicted["client_id"] is None
    for entry in (opened, explained, predicted):
        assert entry["user"] == f"advisor.martin via {token_identity(TOKEN)}"
        assert TOKEN not in str(entry)


def test_parallel_requests_are_all_audited(api_server, audit, ids, application):
    before = audit.count()
    chosen = ids[:60]
    with httpx.Client(base_url=api_server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
        def work(i):
            cid = chosen[i % len(chosen)]
            r = client.get(f"/clients/{cid}") if i % 2 else client.post("/predict", json=application)
            return r.status_code
        with ThreadPoolExecutor(16) as pool:
            codes = list(pool.map(work, range(200)))
    assert codes == [200] * 200
    entries = audit.recent(200)
    assert audit.count() == before + 200
    assert sum(e["event"] == "client_opened" for e in entries) == 100
    assert {e["client_id"] for e in entries if e["event"] == "client_opened"} == {
        chosen[i % len(chosen)] for i in range(1, 200, 2)}


def test_an_entry_the_audit_log_cannot_take_is_a_503_without_data_and_the_api_recovers(service, ids, application,
                                                                                       tmp_path):
    from api_server import LiveServer

    path = tmp_path / "audit.sqlite"
    log = AuditLog(path)
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with LiveServer(create_app(service, tokens=frozenset(API_TOKENS), audit=log)) as server:
        assert httpx.post(f"{server.url}/predict", json=application, headers=headers).status_code == 200
        con = sqlite3.connect(path)  # another process breaks the log: its table is gone
        con.execute("DROP TABLE audit")
        con.close()
        refused = [httpx.post(f"{server.url}/predict", json=application, headers=headers),
                   httpx.get(f"{server.url}/clients/{ids[0]}", headers=headers),
                   httpx.get(f"{server.url}/clients/{ids[0]}/explanation", headers=headers)]
        refused += [httpx.get(f"{server.url}/clients/{ids[0]}/overview", headers=headers),
                    httpx.post(f"{server.url}/predict/batch", json={"applications": [application]}, headers=headers)]
        for r in refused:
            assert r.status_code == 503, r.text
            detail = r.json()["detail"]
            assert "audit log cannot be written" in detail and "nothing is shown" in detail, r.text
            assert "no such table" not in detail and r.json()["audit"] is True, r.text  # the cause stays in the log
            assert "probability" not in r.text and "contributions" not in r.text
        assert httpx.get(f"{server.url}/health").status_code == 200  # not audited: still served
        AuditLog(path)  # the log made again: entries are written and data returned again
        assert httpx.post(f"{server.url}/predict", json=application, headers=headers).status_code == 200
        assert log.count() == 1 and log.recent(1)[0]["event"] == "predicted"


def test_concurrent_predictions_each_get_the_score_of_their_own_application(api_server, service, ids):
    # requests are scored on several threads at once: no answer may go to the wrong request
    chosen = ids[:40]
    spec = service.scorer.spec
    bodies = {cid: {k: v for k, v in service.store.raw_record(cid).items() if v is not None and k in spec.raw_columns}
              for cid in chosen}
    with httpx.Client(base_url=api_server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=60) as client:
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda cid: client.post("/predict", json=bodies[cid]).json(), chosen * 3))
    for cid, answer in zip(chosen * 3, answers):
        stored = service.client(cid).score
        assert answer["default_probability"] == pytest.approx(stored.default_probability, abs=1e-5), cid
        assert answer["decision"] == stored.decision


# ------------------------------------------------------------------------------------------ serve()
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_api(workdir, env_extra: dict, *args: str) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCORING_API_TOKENS")}
    env.update(env_extra)
    return subprocess.Popen([sys.executable, "-m", "scoring", "api", "--workdir", str(workdir.root), *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_api_refuses_to_start_without_tokens_and_says_how_to_fix_it(workdir):
    port = _free_port()
    proc = _run_api(workdir, {}, "--port", str(port))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "refusing to start" in err and "SCORING_API_TOKENS" in err and "--insecure-no-auth" in err
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/health", timeout=2)


@pytest.mark.parametrize("setting, named", [("SCORING_AUDIT_URL=mysql://auditor@db/audit", "postgresql://"),
                                            ("SCORING_AUDIT_SYNCHRONOUS=sometimes", "NORMAL, FULL or EXTRA")])
def test_api_refuses_to_start_on_a_wrong_audit_setting_with_a_message_not_a_traceback(workdir, setting, named):
    key, value = setting.split("=", 1)
    proc = _run_api(workdir, {"SCORING_API_TOKENS": "t", key: value}, "--port", str(_free_port()))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "Traceback" not in err
    assert err.startswith("error: cannot open the audit log") and named in err, err


def test_api_refuses_to_start_with_an_unreadable_token_file(workdir, tmp_path):
    proc = _run_api(workdir, {"SCORING_API_TOKENS_FILE": str(tmp_path / "nope")}, "--port", str(_free_port()))
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "nope" in err


def _wait_health(url: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError("the API did not start")


@pytest.mark.parametrize("mode", ["tokens", "insecure"])
def test_python_m_scoring_api_serves_with_tokens_or_insecure_flag(workdir, tmp_path, ids, mode):
    port = _free_port()
    env = {"SCORING_AUDIT_DB": str(tmp_path / "audit.sqlite")}
    if mode == "tokens":
        (tmp_path / "tokens").write_text("file-token\n")
        env["SCORING_API_TOKENS_FILE"] = str(tmp_path / "tokens")
        proc = _run_api(workdir, env, "--port", str(port))
    else:
        proc = _run_api(workdir, env, "--port", str(port), "--insecure-no-auth")
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_health(url, proc)
        anonymous = httpx.get(f"{url}/clients/{ids[0]}")
        if mode == "tokens":
            assert anonymous.status_code == 401
            with_token = httpx.get(f"{url}/clients/{ids[0]}", headers={"Authorization": "Bearer file-token"})
            assert with_token.status_code == 200
        else:
            assert anonymous.status_code == 200
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    if mode == "insecure":
        assert "WITHOUT authentication" in err
    assert AuditLog(tmp_path / "audit.sqlite").recent(1)[0]["client_id"] == ids[0]


@pytest.mark.parametrize("auth", ["tokens", "insecure"])
def test_several_worker_processes_serve_one_port_and_share_the_audit_log(workdir, tmp_path, ids, application, auth):
    import psutil

    port = _free_port()
    env = {"SCORING_AUDIT_DB": str(tmp_path / "audit.sqlite"), "SCORING_API_ACCESS_LOG": "0"}
    if auth == "tokens":
        env["SCORING_API_TOKENS"] = "workers-token"
        proc = _run_api(workdir, env, "--port", str(port), "--workers", "2")
    else:
        proc = _run_api(workdir, env, "--port", str(port), "--workers", "2", "--insecure-no-auth")
    url = f"http://127.0.0.1:{port}"
    headers = {"Authorization": "Bearer workers-token"} if auth == "tokens" else {}
    try:
        _wait_health(url, proc, timeout=120)
        workers = [p for p in psutil.Process(proc.pid).children() if "spawn_main" in " ".join(p.cmdline())]
        assert len(workers) == 2
        if auth == "tokens":  # every worker enforces the tokens
            assert {httpx.get(f"{url}/clients/{ids[0]}").status_code for _ in range(20)} == {401}
        with httpx.Client(base_url=url, headers=headers, timeout=60) as client, ThreadPoolExecutor(8) as pool:
            codes = list(pool.map(lambda i: (client.get(f"/clients/{ids[i % 20]}") if i % 2 else
                                             client.post("/predict", json=application)).status_code, range(80)))
        assert codes == [200] * 80
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode == 0 and not any(w.is_running() and w.status() != psutil.STATUS_ZOMBIE for w in workers)
    assert AuditLog(tmp_path / "audit.sqlite").count() == 80


def test_workers_must_be_positive(workdir):
    proc = _run_api(workdir, {"SCORING_API_TOKENS": "t"}, "--port", str(_free_port()), "--workers", "0")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2 and "--workers must be at least 1" in err



@pytest.mark.parametrize("trusted", ["", "127.0.0.1"])
def test_forwarded_addresses_are_believed_only_from_the_trusted_proxies(workdir, trusted):
    """X-Forwarded-For from anyone would let a client write any address into the access log."""
    port = _free_port()
    env = {"SCORING_API_TOKENS": "t", "SCORING_API_DOCS": "off", "SCORING_AUDIT_DB": str(workdir.root / "p.sqlite")}
    if trusted:
        env["SCORING_TRUSTED_PROXIES"] = trusted
    proc = _run_api(workdir, env, "--port", str(port))
    try:
        _wait_health(f"http://127.0.0.1:{port}", proc)
        httpx.get(f"http://127.0.0.1:{port}/health", headers={"X-Forwarded-For": "203.0.113.9"}).raise_for_status()
        for path in ("/docs", "/redoc", "/openapi.json"):  # SCORING_API_DOCS=off
            assert httpx.get(f"http://127.0.0.1:{port}{path}").status_code == 404
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=30)
    access_log = out + err
    assert "GET /health" in access_log and ("203.0.113.9" in access_log) == bool(trusted), access_log[-2000:]


def test_the_documentation_is_public_by_default_with_synthetic_examples_only(anonymous):
    assert anonymous.get("/docs").status_code == anonymous.get("/openapi.json").status_code == 200


def test_values_beyond_physical_bounds_are_refused_naming_the_field(api):
    """An applicant aged 1e30 days, a score of 1.5 or a job starting next month: 422 naming the field and its
    bounds (one error, even when a sentinel is accepted besides the bounds)."""
    for body, field, words in (({"DAYS_BIRTH": -1e30}, "DAYS_BIRTH", "an age of 18 to 100 years"),
                               ({"EXT_SOURCE_2": 1.5}, "EXT_SOURCE_2", "a normalised score (0 to 1)"),
                               ({"DAYS_EMPLOYED": 30}, "DAYS_EMPLOYED", "days before the application")):
        r = api.post("/predict", json=body)
        assert r.status_code == 422, r.text
        (item,) = r.json()["detail"]
        assert item["loc"] == ["body", field] and words in item["msg"]
    assert api.post("/predict", json={"DAYS_EMPLOYED": 365243}).status_code == 200  # the "not employed" sentinel
    r = api.post("/predict/batch", json={"applications": [{}, {"DAYS_BIRTH": -100.0}]})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "applications", 1, "DAYS_BIRTH"]


# ------------------------------------------------------------------------------------------ advising a client
ADVISING = ("application", "reasons", "offers", "peers", "decisions")


def test_the_advising_routes_are_documented_advisor_only_and_audited(api, anonymous, audit, ids):
    doc = anonymous.get("/openapi.json").json()
    for name in ADVISING:
        path = f"/clients/{{client_id}}/{name}"
        assert path in doc["paths"] and doc["paths"][path]["get"]["security"] == [{"HTTPBearer": []}]
        r = api.get(f"/clients/{ids[0]}/{name}", headers={"X-User": "analyst.dupont", "X-Role": "analyst"})
        assert r.status_code == 403 and "advisor role" in r.json()["detail"]
        assert api.get(f"/clients/1/{name}").status_code == 404
        before = audit.count()
        assert api.get(f"/clients/{ids[0]}/{name}", headers={"X-User": "advisor.leroy"}).status_code == 200
        assert audit.count() == before + 1
        entry = audit.recent(1)[0]
        assert entry["client_id"] == ids[0] and entry["user"].startswith("advisor.leroy via token:")
        assert json.loads(entry["details"])["read"] == name
    post = doc["paths"]["/clients/{client_id}/decisions"]["post"]
    assert "201" in post["responses"] and "422" in post["responses"]
    schemas = doc["components"]["schemas"]
    assert {"Reasons", "Offers", "Peers", "DecisionRecord"} <= set(schemas)


def test_the_application_of_a_client_posted_to_predict_gives_the_production_score(api, service, ids):
    for cid in ids[:20] + ids[-20:]:
        application = api.get(f"/clients/{cid}/application").json()
        assert application == service.application(cid)
        assert None not in application.values() and "CODE_GENDER" in application
        r = api.post("/predict", json=application)
        assert r.status_code == 200, r.text
        assert r.json()["default_probability"] == service.predict(application)[0].default_probability
        if service.client(cid).split == "new":  # scored by the production model in the files too
            assert r.json()["default_probability"] == pytest.approx(service.client(cid).score.default_probability,
                                                                    abs=1e-6)


def test_reasons_over_the_api_are_the_service_s_in_both_languages(api, service, ids):
    for cid in ids[:5] + ids[-5:]:
        for lang in ("fr", "en"):
            r = api.get(f"/clients/{cid}/reasons", params={"lang": lang})
            assert r.status_code == 200 and r.json() == to_jsonable(service.reasons(cid, lang))
            assert all(isinstance(x["text"], str) and x["features"] for x in r.json()["reasons"])
    assert api.get(f"/clients/{ids[0]}/reasons", params={"lang": "de"}).status_code == 422


def test_every_offer_over_the_api_is_accepted_by_predict_with_its_probability(api, service):
    refused = [int(r["client_id"]) for r in service.search(ClientQuery(decision="refused", limit=150)).items]
    seen = 0
    for cid in refused:
        offers = api.get(f"/clients/{cid}/offers").json()
        application = api.get(f"/clients/{cid}/application").json()
        if offers["decision"] == "accepted":
            assert offers["offers"] == [] and offers["message"]
        for offer in offers["offers"]:
            assert set(offer["changes"]) <= {"AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE"}
            r = api.post("/predict", json={**application, **offer["changes"]}).json()
            assert r["default_probability"] == offer["default_probability"] and r["decision"] == "accepted"
            seen += 1
    assert seen >= 10


def test_peers_over_the_api(api, service, ids):
    r = api.get(f"/clients/{ids[0]}/peers", params={"k": 5})
    assert r.status_code == 200 and r.json() == to_jsonable(service.peers(ids[0], 5))
    assert ids[0] not in [p["client_id"] for p in r.json()["peers"]]
    assert api.get(f"/clients/{ids[0]}/peers", params={"k": 0}).status_code == 422


def test_a_decision_is_recorded_with_its_advisor_and_audited(api, service, audit, ids):
    cid = next(c for c in ids if service.client(c).score.decision == "refused")
    headers = {"X-User": "advisor.leroy"}
    r = api.post(f"/clients/{cid}/decisions", json={"decision": "accepted", "justification": " "}, headers=headers)
    assert r.status_code == 422 and r.json()["justification_required"] is True
    assert r.json()["detail"][0]["loc"] == ["body", "justification"]
    before = audit.count()
    r = api.post(f"/clients/{cid}/decisions", json={"decision": "accepted", "justification": "garant solvable"},
                 headers=headers)
    assert r.status_code == 201, r.text
    record = r.json()
    assert record["advisor"] == f"advisor.leroy via {token_identity(TOKEN)}"
    assert (record["decision"], record["model_decision"], record["justification"]) == ("accepted", "refused",
                                                                                      "garant solvable")
    assert audit.count() == before + 1
    entry = audit.recent(1)[0]
    assert entry["event"] == "decision_recorded" and entry["client_id"] == cid
    assert json.loads(entry["details"])["decision_id"] == record["id"]
    listed = api.get(f"/clients/{cid}/decisions").json()
    assert listed[-1] == record
    assert service.predict(record["application"])[0].default_probability == record["default_probability"] \
        or record["model"] != "production"
    r = api.post(f"/clients/{cid}/decisions", json={"decision": "maybe"})
    assert r.status_code == 422
    r = api.post(f"/clients/{cid}/decisions", json={"decision": "refused", "offer": {"EXT_SOURCE_2": 0.9}})
    assert r.status_code == 422 and "loan" in r.json()["message"]
    r = api.post(f"/clients/{cid}/decisions", json={"decision": "refused"},
                 headers={"X-User": "analyst.dupont", "X-Role": "analyst"})
    assert r.status_code == 403


def test_every_client_s_application_is_one_predict_accepts_and_a_new_one_scores_as_its_file(service):
    """A value the API would refuse (a category never seen in training) is left out: the model reads it as
    missing anyway, so the production model gives each new application its stored probability."""
    ids = [int(c) for c in service.ids]
    applications = [service.application(cid) for cid in ids]
    scores = service.predict_batch(applications)
    for cid, application, score in zip(ids, applications, scores):
        assert None not in application.values()
        if service.client(cid).split == "new":
            assert score.default_probability == pytest.approx(service.client(cid).score.default_probability,
                                                              abs=1e-7), cid
