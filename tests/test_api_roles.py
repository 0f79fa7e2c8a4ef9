"""Roles in the API: advisors see client files and decide, analysts see the portfolio, the model and the audit
trail; a token acts for another person only if it is configured to."""

from __future__ import annotations

import httpx
import pytest

from scoring.contracts import ClientQuery

ADVISOR, ANALYST, SERVICE, BATCH = "advisor-token-1a2b3c", "analyst-token-4d5e6f", "service-token-7a8b9c", "batch-tok"
API_TOKENS = (f"{ADVISOR} advisor", f"{ANALYST} analyst", f"{SERVICE} advisor+analyst forward-user", BATCH)


def _get(api_server, token, path, **headers):
    return httpx.get(f"{api_server.url}{path}", headers={"Authorization": f"Bearer {token}", **headers}, timeout=30)


@pytest.fixture(scope="module")
def cid(service):
    return int(service.search(ClientQuery(limit=1)).items[0]["client_id"])


CLIENT_ROUTES = ("/clients", "/clients/{cid}", "/clients/{cid}/explanation", "/clients/{cid}/overview",
                 "/clients/{cid}/debt-capacity", "/features/EXT_SOURCE_2/distribution?client_id={cid}")
ANALYST_ROUTES = ("/portfolio", "/model/drift", "/clients/{cid}/audit")
SHARED_ROUTES = ("/model", "/model/importance", "/model/top-features", "/contract-types",
                 "/features/EXT_SOURCE_2/distribution")


def test_each_role_sees_only_its_routes(api_server, cid):
    for path in CLIENT_ROUTES:
        path = path.format(cid=cid)
        assert _get(api_server, ADVISOR, path).status_code == 200, path
        refused = _get(api_server, ANALYST, path)
        assert refused.status_code == 403 and "advisor role" in refused.json()["detail"], path
    for path in ANALYST_ROUTES:
        path = path.format(cid=cid)
        assert _get(api_server, ANALYST, path).status_code == 200, path
        assert _get(api_server, ADVISOR, path).status_code == 403, path
    for path in SHARED_ROUTES:
        assert _get(api_server, ADVISOR, path).status_code == _get(api_server, ANALYST, path).status_code == 200
    application = {"AMT_CREDIT": 250_000.0}
    post = lambda token, path, body: httpx.post(f"{api_server.url}{path}", json=body,  # noqa: E731
                                               headers={"Authorization": f"Bearer {token}"}, timeout=30)
    assert post(ADVISOR, "/predict", application).status_code == 200
    assert post(ANALYST, "/predict", application).status_code == 403
    assert post(ANALYST, "/predict/batch", {"applications": [application]}).status_code == 200


def test_only_a_forwarding_token_may_name_the_person_it_acts_for(api_server, audit, cid):
    refused = _get(api_server, ADVISOR, f"/clients/{cid}", **{"X-User": "someone.else"})
    assert refused.status_code == 403 and "may not act for another user" in refused.json()["detail"]
    assert _get(api_server, BATCH, f"/clients/{cid}", **{"X-User": "x"}).status_code == 403
    before = audit.count()
    assert _get(api_server, SERVICE, f"/clients/{cid}", **{"X-User": "advisor.martin"}).status_code == 200
    assert audit.count() == before + 1 and audit.recent(1)[0]["user"].startswith("advisor.martin via token:")


def test_a_service_acts_in_the_role_of_the_person(api_server, cid):
    as_analyst = {"X-User": "analyst.dupont", "X-Role": "analyst"}
    assert _get(api_server, SERVICE, f"/clients/{cid}", **as_analyst).status_code == 403
    assert _get(api_server, SERVICE, "/portfolio", **as_analyst).status_code == 200
    assert _get(api_server, SERVICE, "/portfolio", **{"X-User": "a", "X-Role": "advisor"}).status_code == 403
    assert _get(api_server, ADVISOR, f"/clients/{cid}", **{"X-Role": "analyst"}).status_code == 403  # not granted
    assert _get(api_server, ADVISOR, f"/clients/{cid}", **{"X-Role": "root"}).status_code == 403


def test_an_analyst_lists_who_looked_at_a_client_and_that_read_is_audited(api_server, audit, cid):
    _get(api_server, SERVICE, f"/clients/{cid}", **{"X-User": "advisor.martin"}).raise_for_status()
    trail = _get(api_server, ANALYST, f"/clients/{cid}/audit").json()
    assert trail[0]["event"] == "audit_viewed" and trail[0]["client_id"] == cid  # this very read, first
    assert any(e["event"] == "client_opened" and e["user"].startswith("advisor.martin") for e in trail)
    assert all(e["client_id"] == cid for e in trail)
    assert _get(api_server, ANALYST, "/clients/1/audit").status_code == 404
