"""Hostile input against the API under a real uvicorn: script and SQL strings, unicode digits, deep and huge
bodies, forged headers, a revoked-looking token. No 5xx, nothing reflected unescaped as HTML, and every answer
that carries a client's data has its audit entry."""

from __future__ import annotations

import httpx
import pytest

from scoring.contracts import ClientQuery

TOKEN = "hostile-api-token-9f3a"
API_TOKENS = (f"{TOKEN} advisor+analyst forward-user",)
HOSTILE = ["<script>alert(1)</script>", "\"><img src=x onerror=alert(1)>", "1 OR 1=1", "1; DROP TABLE audit; --",
           "１００００２", "²", "١٠٠٠٠٢", "../../etc/passwd", "%00", "9" * 40, "-1", "1e309", "NaN", "null"]


@pytest.fixture(scope="module")
def client(api_server):
    with httpx.Client(base_url=api_server.url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as c:
        yield c


def test_hostile_ids_names_and_queries_get_a_4xx_and_reflect_no_markup(client, audit):
    before = audit.count()
    answers = []
    for text in HOSTILE:
        quoted = httpx.URL("/clients/").copy_with(path="/clients/" + text).raw_path.decode()
        for path in (quoted, f"{quoted}/explanation", f"{quoted}/overview", f"{quoted}/reasons", f"{quoted}/offers"):
            answers.append(client.get(path))
        answers.append(client.get("/clients", params={"q": text}))
        answers.append(client.get(f"/features/{httpx.URL('/').copy_with(path='/' + text).raw_path.decode()[1:]}"
                                  f"/distribution"))
        answers.append(client.get("/features/EXT_SOURCE_2/distribution", params={"client_id": text}))
    for r in answers:
        assert 400 <= r.status_code < 500, (r.request.url, r.status_code, r.text[:200])
        assert "<script>" not in r.text and "onerror=" not in r.text or r.headers["content-type"].startswith(
            "application/json"), r.text[:200]
    assert audit.count() == before  # nothing of a client was returned: nothing to audit


def test_deep_huge_and_malformed_bodies_are_refused_without_a_5xx(client):
    deep = "[" * 100_000 + "]" * 100_000
    bodies = [deep, '{"AMT_CREDIT": ' * 5000 + "1" + "}" * 5000, "{" * 10, '{"AMT_CREDIT": NaN}',
              '{"AMT_CREDIT": Infinity}', "\xff\xfe", '{"AMT_CREDIT": 1e999}', '{"a":' + '"x"' * 3 + "}"]
    for body in bodies:
        for path in ("/predict", "/predict/batch"):
            r = client.post(path, content=body.encode("utf-8", "surrogateescape"),
                            headers={"Content-Type": "application/json"})
            assert r.status_code in (413, 422), (path, body[:30], r.status_code, r.text[:200])


def test_forged_headers_change_nothing_and_every_client_read_is_audited(api_server, client, audit, service):
    cid = int(service.search(ClientQuery(limit=1)).items[0]["client_id"])
    before = audit.count()
    forged = {"X-Forwarded-For": "203.0.113.7", "X-Real-IP": "203.0.113.7", "X-User": "<b>ceo</b>",
              "X-Role": "analyst", "Host": "evil.example"}
    r = client.get(f"/clients/{cid}", headers=forged)
    assert r.status_code == 403  # an analyst reads no client file, whatever else is claimed
    ok = client.get(f"/clients/{cid}", headers={"X-User": "advisor.<i>x</i>", "X-Forwarded-For": "203.0.113.7"})
    assert ok.status_code == 200
    assert audit.count() == before + 1
    entry = audit.recent(1)[0]
    assert entry["client_id"] == cid and entry["user"].startswith("advisor.<i>x</i> via token:")
    for token in ("", "Bearer", f"Bearer {TOKEN}x", f"Basic {TOKEN}", f"bearer  {TOKEN[:-1]}"):
        r = httpx.get(f"{api_server.url}/clients/{cid}", headers={"Authorization": token})
        assert r.status_code == 401 and "client_id" not in r.text
    assert audit.count() == before + 1
