"""Running servers follow the artefacts: a version activated by another process (the CLI) is served from the next
request on, by the API under a real uvicorn and by the dashboard's in-process service, without a restart; a change
that cannot be opened (a half-written build) keeps the old model serving."""

from __future__ import annotations

import json
import subprocess
import sys
import threading

import httpx

from scoring.build import build
from scoring.config import Workdir
from scoring.model import CostWeights
from scoring.serving import ReloadingService
from scoring.service import LocalScoringService

TOKEN = "serving-analyst-token"
REPO = __import__("pathlib").Path(__file__).resolve().parent.parent


def activate_in_another_process(wd: Workdir, version: str, reason: str = "rollback: costs not approved") -> None:
    done = subprocess.run([sys.executable, "-m", "scoring", "activate", version, "--workdir", str(wd.root),
                           "--user", "analyst.anne", "--reason", reason], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_the_api_keeps_answering_across_an_activation_then_serves_the_new_version(copy):
    from api_server import LiveServer
    from scoring.api import create_app

    wd, first, second = copy
    service = ReloadingService(wd, warm_up=False)
    app = create_app(service, tokens=frozenset([TOKEN]))
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with LiveServer(app) as live, httpx.Client(base_url=live.url, headers=headers, timeout=60) as http:
        client_id = http.get("/clients", params={"limit": 1}).json()["items"][0]["client_id"]
        application = http.get(f"/clients/{client_id}/application").json()
        assert http.get("/model").json()["version"] == second
        assert http.post("/predict", json=application).json()["model_version"] == second

        answers, stop = [], threading.Event()

        def keep_asking():   # while another process swaps the artefacts
            with httpx.Client(base_url=live.url, headers=headers, timeout=60) as own:
                while not stop.is_set():
                    r = own.post("/predict", json=application)
                    answers.append((r.status_code, r.json().get("model_version")))

        asking = threading.Thread(target=keep_asking)
        asking.start()
        try:
            activate_in_another_process(wd, first)
            while not any(version == first for _, version in answers):   # until a request sees it
                assert asking.is_alive()
                stop.wait(0.05)
        finally:
            stop.set()
            asking.join(60)
        assert answers and all(status == 200 for status, _ in answers)
        assert {version for _, version in answers} <= {first, second}

        assert http.get("/model").json()["version"] == first
        assert http.get("/health").json()["model_version"] == first
        score = http.post("/predict", json=application).json()
        assert score["model_version"] == first
        card = http.get("/model").json()
        assert score["threshold"] == card["threshold"]
        listed = {v["version"]: v["active"] for v in http.get("/model/versions").json()}
        assert listed == {first: True, second: False}


def test_a_change_that_cannot_be_opened_keeps_the_old_model_until_the_next_change(copy, caplog):
    wd, first, second = copy
    service = ReloadingService(wd, warm_up=False)
    good = wd.card_path.read_text()
    card = json.loads(good)
    # half a build: a card naming a model the client files were not scored by
    wd.card_path.write_text(json.dumps({**card, "version": "half-written"}))
    with caplog.at_level("ERROR", logger="scoring.serving"):
        assert service.model_card()["version"] == second
        assert service.model_card()["version"] == second   # not tried again until the files change again
    assert [r for r in caplog.records if "cannot be opened" in r.getMessage()] and len(caplog.records) == 1
    wd.card_path.write_text(good)
    activate_in_another_process(wd, first)
    assert service.model_card()["version"] == first
    assert service.model_versions()[0].version == second and not service.model_versions()[0].active


def test_a_change_under_way_is_not_opened_until_it_is_whole(copy):
    """An adoption rewrites the client files' decisions, then writes its policy line (under `exclusive`): a server
    looking at the files in between keeps serving what it served, and opens the change once it is whole."""
    from scoring.policy import adopt, exclusive

    wd, first, second = copy
    service = ReloadingService(wd, warm_up=False)
    before = service.model_card()["threshold"]
    with exclusive(wd):
        wd.store_path.touch()                       # the files changed, the change not done yet
        assert service.model_card()["threshold"] == before and service.generation == 0
    assert service.model_card()["threshold"] == before and service.generation == 1   # opened once whole
    change = adopt(wd, 0.3, reason="plan 2027", user="anne")
    assert service.model_card()["threshold"] == change.threshold == 0.3 and service.generation == 2


def test_the_api_command_follows_an_activation_without_a_restart(copy, tmp_path):
    """`python -m scoring api` itself (its service is `scoring.backends.local_service`, the reloading one)."""
    from api_server import ApiProcess

    wd, first, second = copy
    env = {"SCORING_API_TOKENS": TOKEN, "SCORING_AUDIT_DB": str(tmp_path / "audit.sqlite")}
    with ApiProcess(wd, env) as api, httpx.Client(base_url=api.url, timeout=60,
                                                  headers={"Authorization": f"Bearer {TOKEN}"}) as http:
        client_id = http.get("/clients", params={"limit": 1}).json()["items"][0]["client_id"]
        application = http.get(f"/clients/{client_id}/application").json()
        assert http.get("/model").json()["version"] == second
        activate_in_another_process(wd, first)
        assert http.get("/model").json()["version"] == first
        assert http.post("/predict", json=application).json()["model_version"] == first
        assert http.get(f"/clients/{client_id}").json()["score"]["model_version"] == first


def test_a_build_done_while_serving_is_served_at_the_next_call(copy):
    wd, first, second = copy
    service = ReloadingService(wd, warm_up=False)
    assert service.model_card()["version"] == second
    third = build(wd, rows=2_000, quiet=True, nthread=2, costs=CostWeights(missed_default=3.0)).model_version
    assert service.model_card()["version"] == third
    assert service.global_importance(3) == LocalScoringService(wd).global_importance(3)
    assert [v.version for v in service.model_versions() if v.active] == [third]


def test_an_engine_replaced_by_a_reload_is_freed_with_its_caches(copy):
    """A server that follows activations does not keep every model it served: the caches are the engine's own."""
    import gc
    import weakref

    wd, first, second = copy
    service = ReloadingService(wd, warm_up=False)
    old = service.current
    client_id = int(old.ids[0])
    feature = old.top_features(1)[0].feature
    old.distribution(feature, client_id)           # fills the cached comparisons,
    old.application(client_id)                     # the cached application
    old.threshold_simulation(target_acceptance=0.7)   # and the cached simulation
    gone = weakref.ref(old)
    del old
    activate_in_another_process(wd, first)
    assert service.model_card()["version"] == first
    gc.collect()
    assert gone() is None, "the engine replaced by the reload is still held"
