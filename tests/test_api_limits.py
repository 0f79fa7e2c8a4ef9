"""Request bodies are bounded: past the cap the API answers 413 without reading, and twenty requests at the cap
leave the server's memory where it was (within 50 MB)."""

from __future__ import annotations

import json
import time

import httpx
import psutil
import pytest

from api_server import ApiProcess
from scoring.api import MAX_APPLICATION_BYTES, MAX_BATCH_BYTES

TOKEN = "limits-token-2f9e"


@pytest.fixture(scope="module")
def server(workdir, tmp_path_factory):
    env = {"SCORING_API_TOKENS": f"{TOKEN} advisor+analyst",
           "SCORING_AUDIT_DB": str(tmp_path_factory.mktemp("limits") / "audit.sqlite")}
    with ApiProcess(workdir, env) as api:
        yield api.url, psutil.Process(api.process.pid)


def _body_of_size(size: int, batch: bool) -> bytes:
    """Valid JSON of exactly `size` bytes that the API must read and refuse (an unknown field)."""
    shell = {"applications": [{"NOTE": ""}]} if batch else {"NOTE": ""}
    pad = size - len(json.dumps(shell).encode())
    shell_filled = {"applications": [{"NOTE": "x" * pad}]} if batch else {"NOTE": "x" * pad}
    body = json.dumps(shell_filled).encode()
    assert len(body) == size
    return body


def test_a_body_past_the_cap_is_refused_with_413(server):
    url, _ = server
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    for path, cap, batch in (("/predict", MAX_APPLICATION_BYTES, False), ("/predict/batch", MAX_BATCH_BYTES, True)):
        r = httpx.post(f"{url}{path}", content=_body_of_size(cap + 1, batch), headers=headers, timeout=120)
        assert r.status_code == 413, (path, r.status_code, r.text[:200])
    anonymous = httpx.post(f"{url}/predict", content=_body_of_size(MAX_APPLICATION_BYTES + 1, False),
                           headers={"Content-Type": "application/json"}, timeout=60)
    assert anonymous.status_code in (401, 413)


def test_twenty_requests_at_the_cap_leave_memory_within_50_mb(server):
    url, process = server
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    bodies = {"/predict": _body_of_size(MAX_APPLICATION_BYTES, False),
              "/predict/batch": _body_of_size(MAX_BATCH_BYTES, True)}
    with httpx.Client(base_url=url, headers=headers, timeout=120) as client:
        for path in bodies:  # warm: the first of each kind allocates the parser's and validator's structures
            client.post(path, content=bodies[path])
        before = process.memory_info().rss
        for i in range(20):
            path = ("/predict", "/predict/batch")[i % 2]
            r = client.post(path, content=bodies[path])
            assert r.status_code == 422 and "NOTE" in r.text, (path, r.status_code, r.text[:200])
        time.sleep(0.5)
        after = process.memory_info().rss
    assert after - before < 50 * 2**20, f"{(after - before) / 2**20:.0f} MB more after 20 requests at the cap"
