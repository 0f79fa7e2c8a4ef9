"""Activating a model version from the API and the dashboard: an analyst serves another registered version with a
reason (audited: who, the new and the previous version, why), rolls back to the previous one, reads the history;
both backends alike; bad requests get a specific answer (422 naming `reason`, 404, 409, 403)."""

from __future__ import annotations

import json
import shutil

import httpx
import pytest

from scoring.audit import AuditLog
from scoring.audited import AuditedService
from scoring.errors import RegistryError, UnknownVersionError, VersionConflictError
from scoring.registry import Registry
from scoring.service import LocalScoringService
from scoring.serving import ReloadingService

ANALYST, ADVISOR = "versions-analyst-token", "versions-advisor-token"


@pytest.fixture
def served(copy, tmp_path):
    """The copy served by the API under a real uvicorn (the process-wide reloading service, audited), and the
    HTTP backend acting for an analyst."""
    from api_server import LiveServer
    from scoring.api import create_app
    from scoring.client import HttpScoringService

    wd, first, second = copy
    audit = AuditLog(tmp_path / "audit.sqlite")
    app = create_app(ReloadingService(wd, warm_up=False), audit=audit,
                     tokens=frozenset((f"{ANALYST} analyst forward-user", f"{ADVISOR} advisor")))
    with LiveServer(app) as live, HttpScoringService(live.url, ANALYST) as http:
        yield wd, first, second, http.for_user("analyst.anne"), live.url, audit


def test_the_engine_activates_a_version_for_the_next_service_opened(copy):
    wd, first, second = copy
    engine = LocalScoringService(wd)
    event = engine.activate_version(first, "the new costs are not approved yet", user="analyst.anne")
    assert (event.event, event.version, event.previous, event.user, event.reason) == \
        ("activated", first, second, "analyst.anne", "the new costs are not approved yet")
    assert engine.card.version == second           # an open service never changes
    engine.store.close()
    assert LocalScoringService(wd).card.version == first
    history = engine.model_version_history()
    assert [(e.event, e.version) for e in history] == [("activated", first), ("registered", second),
                                                       ("registered", first)]
    assert history[0] == event


def test_the_audit_policy_records_who_activated_which_version_and_why(copy, tmp_path):
    wd, first, second = copy
    audit = AuditLog(tmp_path / "audit.sqlite")
    audited = AuditedService(ReloadingService(wd, warm_up=False), audit, "analyst.anne", "dashboard")
    event = audited.activate_version(first, "rollback", user="someone.else")
    assert event.user == "analyst.anne"            # nobody activates in another's name
    entry = audit.recent(1)[0]
    assert (entry["event"], entry["user"], entry["model_version"], entry["source"]) == \
        ("model_activated", "analyst.anne", first, "dashboard")
    assert json.loads(entry["details"]) == {"version": first, "previous": second, "reason": "rollback"}
    assert audited.model_card()["version"] == first   # the process-wide service serves it at once


def test_an_analyst_activates_then_rolls_back_over_http(served):
    wd, first, second, http, url, audit = served
    event = http.activate_version(first, "the new costs are not approved yet")
    assert (event.version, event.previous) == (first, second) and event.user.startswith("analyst.anne via ")
    assert http.model_card()["version"] == first
    assert [v.version for v in http.model_versions() if v.active] == [first]
    # the rollback: the version served before, named by the last activation
    last = http.model_version_history()[0]
    assert (last.event, last.previous) == ("activated", second)
    back = http.activate_version(last.previous, "costs approved after all")
    assert (back.version, back.previous) == (second, first)
    assert http.model_card()["version"] == second
    history = http.model_version_history()
    assert [(e.event, e.version, e.reason) for e in history[:2]] == [
        ("activated", second, "costs approved after all"), ("activated", first, "the new costs are not approved yet")]
    assert history == LocalScoringService(wd).model_version_history()
    entries = [e for e in audit.recent(10) if e["event"] == "model_activated"]
    assert [json.loads(e["details"])["version"] for e in entries] == [second, first]
    assert all(e["user"].startswith("analyst.anne via ") and e["source"] == "api" for e in entries)


def test_bad_activations_get_a_specific_answer_and_change_nothing(served):
    wd, first, second, http, url, audit = served
    # a version built on other data: a registered copy of the first with another fingerprint
    forged = wd.model / "versions" / "forged"
    shutil.copytree(wd.model / "versions" / first, forged)
    card = json.loads((forged / "model_card.json").read_text())
    (forged / "model_card.json").write_text(json.dumps({**card, "version": "forged", "data_fingerprint": "0" * 64}))
    served_card = wd.card_path.read_bytes()
    analyst = {"Authorization": f"Bearer {ANALYST}"}

    def post(version, body, headers=analyst):
        return httpx.post(f"{url}/model/versions/{version}/activate", json=body, headers=headers, timeout=60)

    for body in ({}, {"reason": "   "}):
        r = post(first, body)
        assert r.status_code == 422 and "reason" in str(r.json())
    r = post("nope", {"reason": "why"})
    assert r.status_code == 404 and "unknown model version 'nope'" in r.json()["detail"]
    r = post(second, {"reason": "again"})
    assert r.status_code == 409 and "already the one served" in r.json()["detail"]
    r = post("forged", {"reason": "why"})
    assert r.status_code == 409 and "other data" in r.json()["detail"]
    r = post(first, {"reason": "why"}, headers={"Authorization": f"Bearer {ADVISOR}"})
    assert r.status_code == 403
    r = httpx.get(f"{url}/model/versions/history", headers={"Authorization": f"Bearer {ADVISOR}"})
    assert r.status_code == 403
    r = post(first, {"reason": "x" * 2_001})
    assert r.status_code == 422 and "reason" in str(r.json())
    assert wd.card_path.read_bytes() == served_card
    assert not [e for e in audit.recent(50) if e["event"] == "model_activated"]
    # the same refusals, raised alike by both backends
    local = LocalScoringService(wd)
    for backend in (http, local):
        with pytest.raises(VersionConflictError, match="already the one served"):
            backend.activate_version(second, "again", user="anne")
        with pytest.raises(VersionConflictError, match="other data"):
            backend.activate_version("forged", "why", user="anne")
        with pytest.raises(UnknownVersionError, match="unknown model version 'nope'"):
            backend.activate_version("nope", "why", user="anne")
        with pytest.raises(RegistryError, match="reason"):
            backend.activate_version(first, " ", user="anne")
    assert wd.card_path.read_bytes() == served_card


# ------------------------------------------------------------------ the dashboard's state (headless)
def test_the_versions_state_compares_activates_with_a_reason_and_shows_the_history(copy, tmp_path):
    from scoring.backends import session_service
    from views.state import VersionsState

    wd, first, second = copy
    audit = AuditLog(tmp_path / "audit.sqlite")
    state = VersionsState(session_service(ReloadingService(wd, warm_up=False), "analyst.anne", audit))
    assert [(v.version, v.active) for v in state.versions] == [(second, True), (first, False)]
    assert (state.a, state.b, state.target, state.previous) == (second, first, first, None)
    assert state.compare()
    assert (state.comparison.a, state.comparison.b) == (second, first) and state.comparison.refused_now > 0

    state.b = second
    assert not state.compare() and state.notice.key == "versions_pick_two"
    assert not state.activate() and state.notice.key == "versions_reason_required"   # no reason: nothing served
    assert state.active == second and not [e for e in audit.recent(20) if e["event"] == "model_activated"]

    state.reason = "the new costs are not approved yet"
    assert state.activate()
    assert state.active == first and state.notice.key == "versions_activated" and state.reason == ""
    assert (state.history[0].event, state.history[0].version, state.history[0].user,
            state.history[0].reason) == ("activated", first, "analyst.anne", "the new costs are not approved yet")
    assert state.previous == second and state.target == second   # the rollback is offered
    state.target = first
    state.reason = "again"
    assert not state.activate() and state.notice.key == "versions_conflict"


def test_the_dashboard_follows_an_activation_done_by_another_process(copy):
    import subprocess
    import sys

    from scoring.backends import session_service
    from views.state import DashboardState, VersionsState

    wd, first, second = copy
    shared = ReloadingService(wd, warm_up=False)      # the dashboard process's service
    audit = AuditLog(wd.data / "audit.sqlite")
    advisor = DashboardState(session_service(shared, "advisor.alice", audit), role="advisor")
    advisor.search.run()
    assert audit.recent(1)[0]["event"] == "searched" and audit.recent(1)[0]["model_version"] == second
    engine = LocalScoringService(wd)
    client_id, other_id = int(engine.ids[0]), int(engine.ids[1])
    engine.store.close()
    assert advisor.client.open(client_id) and advisor.client.file.score.model_version == second
    done = subprocess.run([sys.executable, "-m", "scoring", "activate", first, "--workdir", str(wd.root), "--user",
                           "analyst.anne", "--reason", "rollback"], capture_output=True, text=True,
                          cwd=__import__("pathlib").Path(__file__).resolve().parent.parent)
    assert done.returncode == 0, done.stderr
    assert advisor.client.open(other_id) and advisor.client.file.score.model_version == first
    expected = Registry(wd).scores(first).set_index("client_id")["default_probability"]
    advisor.search.run()            # an entry without a score names the model serving now
    assert audit.recent(1)[0]["event"] == "searched" and audit.recent(1)[0]["model_version"] == first
    assert advisor.client.file.score.default_probability == pytest.approx(expected[other_id])
    analyst = VersionsState(session_service(shared, "analyst.anne", AuditLog(wd.data / "audit.sqlite")))
    assert analyst.active == first and analyst.history[0].reason == "rollback"


def test_the_panel_words_the_versions_in_both_languages_and_escapes_what_it_shows():
    from scoring.contracts import ModelVersion, VersionComparison, VersionEvent
    from views.versions import comparison_html, history_frame, versions_frame

    version = ModelVersion("v2", "2026-11-29T19:00:00+00:00", "home-credit", "f" * 64, 40, 0.75, 0.74, 0.16, 0.88,
                           1, "this process", True)
    assert list(versions_frame([version], "en").iloc[0]) == ["● served", "v2", "2026-11-29 19:00:00", "0.750",
                                                               "0.740", "0.160", "88.0%", "1", "this process"]
    assert versions_frame([version], "fr").columns[0] == "Servie"
    event = VersionEvent("2026-11-29T19:05:00+00:00", "activated", "v1", "anne", "v2", "<script>x</script>")
    frame = history_frame([event], "en")
    assert list(frame.columns) == ["Date (UTC)", "Event", "Version", "Previous version", "By", "Reason"]
    assert list(frame.iloc[0]) == ["2026-11-29 19:05:00", "served", "v1", "v2", "anne", "<script>x</script>"]
    page = comparison_html(VersionComparison("<b>a</b>", "v2", 10, 5, 0.01, 0.02, 0.05, 1, 2, 0.8, 0.9, 0.7, None),
                           "en")
    assert "<b>a</b>" not in page and "&lt;b&gt;a&lt;/b&gt;" in page
    assert "B against A on 10 client files (5 with a known outcome)" in page and "n/a" in page.lower()
