"""Property-based fuzzing of the API's OpenAPI schema with schemathesis, against a live uvicorn.

Valid and invalid requests (wrong types, out-of-range values, extra fields, odd headers) on every
operation: no 5xx, documented status codes, responses matching their schema. Uses schemathesis's
Python API (`APIOperation.as_strategy` with Hypothesis) because its lazy pytest loader
(`schemathesis.pytest.from_fixture`) does not run under pytest 9.
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode

from api_server import LiveServer
from scoring.api import create_app
from scoring.audit import AuditLog

TOKEN = "fuzz-token-6d1f0c2a"
EXAMPLES = int(os.environ.get("SCORING_FUZZ_EXAMPLES", "25"))
OPERATIONS = [
    ("GET", "/health"), ("GET", "/model"), ("GET", "/model/importance"), ("GET", "/model/top-features"),
    ("GET", "/model/drift"), ("GET", "/portfolio"), ("GET", "/contract-types"), ("GET", "/clients"),
    ("GET", "/clients/{client_id}"), ("GET", "/clients/{client_id}/explanation"),
    ("GET", "/clients/{client_id}/debt-capacity"), ("GET", "/clients/{client_id}/overview"),
    ("GET", "/clients/{client_id}/audit"),
    ("GET", "/features/{feature}/distribution"), ("POST", "/predict"), ("POST", "/predict/batch"),
]


@pytest.fixture(scope="module")
def live_api(service, tmp_path_factory):
    audit = AuditLog(tmp_path_factory.mktemp("fuzz") / "audit.sqlite")
    # a dashboard's service token: fuzzed X-User and X-Role headers are within what it may send
    with LiveServer(create_app(service, tokens=frozenset({f"{TOKEN} advisor+analyst forward-user"}),
                               audit=audit)) as server:
        yield server


@pytest.fixture(scope="module")
def api_schema(live_api):
    config = schemathesis.Config.from_dict({"headers": {"Authorization": f"Bearer {TOKEN}"}, "request-timeout": 30})
    return schemathesis.openapi.from_url(f"{live_api.url}/openapi.json", config=config)


def test_every_operation_is_fuzzed(api_schema):
    found = {(op.ok().method.upper(), op.ok().path) for op in api_schema.get_all_operations()}
    assert found == set(OPERATIONS)


CASES = [(method, path, mode) for method, path in OPERATIONS for mode in GenerationMode
         if not (path == "/health" and mode is GenerationMode.NEGATIVE)]  # /health takes no input to spoil
# Random IDs and names are almost never real ones: also fuzz the other inputs on an existing client and feature.
KNOWN = [("GET", "/clients/{client_id}"), ("GET", "/clients/{client_id}/explanation"),
         ("GET", "/clients/{client_id}/debt-capacity"), ("GET", "/clients/{client_id}/overview"),
         ("GET", "/clients/{client_id}/audit"), ("GET", "/features/{feature}/distribution")]


def _fuzz(operation, live_api, mode, **fixed):
    auth = {"Authorization": f"Bearer {TOKEN}"}

    @given(case=operation.as_strategy(generation_mode=mode, **fixed))
    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
              database=None)
    def fuzz(case):
        case.call_and_validate(base_url=live_api.url, headers=auth)

    fuzz()


@pytest.mark.parametrize("method, path, mode", CASES, ids=[f"{m} {p} {g.value}" for m, p, g in CASES])
def test_no_server_error_and_responses_match_the_schema(api_schema, live_api, method, path, mode):
    _fuzz(api_schema[path][method], live_api, mode)


@pytest.mark.parametrize("method, path", KNOWN, ids=[f"{m} {p}" for m, p in KNOWN])
def test_no_server_error_on_a_real_client_and_feature(api_schema, live_api, service, method, path):
    client_id = int(service.ids[len(service.ids) // 2])
    fixed = {"feature": "EXT_SOURCE_2"} if "{feature}" in path else {"client_id": client_id}
    _fuzz(api_schema[path][method], live_api, GenerationMode.POSITIVE, path_parameters=fixed)
