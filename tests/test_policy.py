"""The threshold policy (scoring.policy): the simulator on the labelled applications' out-of-fold probabilities
(acceptance, expected loss, error rates, fairness at each threshold), adopting a threshold (an analyst, a reason,
audited, kept in the history) and a service opened after it deciding at that threshold; in process and over the
API, where only analysts reach it."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from fairlearn.metrics import demographic_parity_ratio, equal_opportunity_difference

from scoring.config import Workdir
from scoring.contracts import ClientQuery
from scoring.errors import AccessDeniedError, PolicyError
from scoring.model import CostWeights, choose_threshold
from scoring.policy import GRID, ThresholdSimulator

ANALYST, ADVISOR = "policy-analyst-token", "policy-advisor-token"


# ------------------------------------------------------------------ the simulator alone
@pytest.fixture(scope="module")
def simulator():
    rng = np.random.default_rng(3)
    n = 4_000
    gender = rng.choice(["F", "M", "XNA"], size=n, p=[0.6, 0.3995, 0.0005])
    p = np.clip(rng.beta(2, 12, size=n) + (gender == "M") * 0.03, 0, 1)
    y = (rng.random(n) < p).astype(int)
    return ThresholdSimulator(p, y, {"gender": gender})


def test_each_threshold_counts_what_a_bank_would_see(simulator):
    p, y = simulator.probability, simulator.target
    costs = CostWeights(missed_default=8.0, refused_good_client=1.5)
    for point in simulator.points([0.05, 0.1, 0.2], costs):
        accepted = p < point.threshold                 # refused at or above the threshold
        assert point.acceptance_rate == pytest.approx(accepted.mean())
        assert point.missed_default_rate == pytest.approx((accepted & (y == 1)).sum() / (y == 1).sum())
        assert point.refused_good_rate == pytest.approx((~accepted & (y == 0)).sum() / (y == 0).sum())
        assert point.default_rate_accepted == pytest.approx(y[accepted].mean())
        loss = ((accepted & (y == 1)).sum() * 8.0 + (~accepted & (y == 0)).sum() * 1.5) / len(y)
        assert point.expected_loss == pytest.approx(loss)


def test_fairness_agrees_with_fairlearn_and_leaves_tiny_groups_out(simulator):
    p, y = simulator.probability, simulator.target
    kept = np.isin(simulator.groups["gender"][1], ["F", "M"]).all()
    assert kept  # "XNA" (2 files) is too small to be compared
    gender = simulator.groups["gender"][1]
    mask = simulator.groups["gender"][0]
    for point in simulator.points(GRID[:20], CostWeights()):
        accepted = (p[mask] < point.threshold).astype(int)
        repaid = (y[mask] == 0).astype(int)
        assert point.disparate_impact["gender"] == pytest.approx(
            demographic_parity_ratio(repaid, accepted, sensitive_features=gender))
        assert point.equal_opportunity_difference["gender"] == pytest.approx(
            equal_opportunity_difference(repaid, accepted, sensitive_features=gender))


def test_the_proposed_threshold_is_the_cheapest_or_reaches_the_target(simulator):
    costs = CostWeights(missed_default=12.0)
    assert simulator.cheapest(costs) == choose_threshold(simulator.target, simulator.probability, costs)[0]
    for target in (0.5, 0.8, 0.95):
        t = simulator.reaching(target)
        reached = (simulator.probability < t).mean()
        assert target <= reached <= target + 0.005 and round(t, 4) == t


# ------------------------------------------------------------------ the service, in process and over the API
@pytest.fixture(scope="module")
def served(workdir, tmp_path_factory):
    """A copy of the test portfolio (adoptions change it) served in process and by the API under a real server."""
    from api_server import LiveServer
    from scoring.api import create_app
    from scoring.audit import AuditLog
    from scoring.client import HttpScoringService
    from scoring.service import LocalScoringService

    wd = Workdir(tmp_path_factory.mktemp("policy") / "wd")
    shutil.copytree(workdir.root, wd.root)
    local = LocalScoringService(wd)
    audit = AuditLog(wd.root / "audit.sqlite")
    app = create_app(local, tokens=frozenset((f"{ANALYST} analyst", f"{ADVISOR} advisor")), audit=audit)
    with LiveServer(app) as live, HttpScoringService(live.url, ANALYST) as http, \
            HttpScoringService(live.url, ADVISOR) as advisor:
        yield wd, local, http, advisor, audit


def test_at_the_cards_costs_the_simulator_proposes_the_served_threshold_and_matches_the_performance(served):
    _, local, http, _, _ = served
    sim = local.threshold_simulation()
    assert http.threshold_simulation() == sim
    assert sim.current_threshold == sim.built_threshold == local.card.threshold and sim.threshold_source == "build"
    assert sim.proposed_threshold == sim.current_threshold            # the build chose it the same way
    card = http.model_card()   # the card says which threshold is served, and where it comes from
    assert (card["threshold"], card["built_threshold"], card["threshold_source"]) == (sim.current_threshold,) * 2 + (
        "build",)
    assert sim.cost_missed_default == local.card.cost_weights["missed_default"]
    thresholds = [p.threshold for p in sim.curve]
    assert thresholds == sorted(thresholds) and len(thresholds) >= 49 and sim.current_threshold in thresholds
    marked = [r for r in sim.rows() if r["current"]]
    assert len(marked) == 1 and marked[0]["threshold"] == sim.current_threshold
    everyone = local.performance()[0]   # the performance panel at the same threshold, on the same applications
    assert sim.applications == everyone.applications and sim.defaults == everyone.defaults
    assert sim.current.expected_loss == pytest.approx(everyone.business_cost)
    assert sim.current.missed_default_rate == pytest.approx(everyone.missed_defaults / everyone.defaults)
    assert set(sim.current.disparate_impact) == {"gender", "age"}
    for name, figures in local.card.fairness.items():
        if figures["disparate_impact_ratio"] is not None:
            assert sim.current.disparate_impact[name] == pytest.approx(figures["disparate_impact_ratio"])


def test_costs_and_a_target_acceptance_move_the_proposed_threshold(served):
    _, local, http, _, _ = served
    base = local.threshold_simulation()
    cheaper_defaults = local.threshold_simulation(cost_missed_default=3.0)
    assert cheaper_defaults.proposed_threshold > base.proposed_threshold   # defaults cost less: accept more
    assert cheaper_defaults.proposed.acceptance_rate > base.proposed.acceptance_rate
    assert cheaper_defaults.current_threshold == base.current_threshold
    target = http.threshold_simulation(target_acceptance=0.6)
    assert target == local.threshold_simulation(target_acceptance=0.6)
    assert 0.6 <= target.proposed.acceptance_rate <= 0.61 and target.target_acceptance == 0.6
    assert target.proposed_threshold in [p.threshold for p in target.curve]


@pytest.mark.parametrize("kwargs, field", [
    ({"cost_missed_default": 0}, "cost_missed_default"),
    ({"cost_refused_good": -1.0}, "cost_refused_good"),
    ({"cost_refused_good": 1e300}, "cost_refused_good"),
    ({"cost_missed_default": math.nan}, "cost_missed_default"),
    ({"target_acceptance": 1.5}, "target_acceptance"),
    ({"target_acceptance": 0.0}, "target_acceptance"),
])
def test_bad_simulation_input_is_refused_naming_the_field_by_both_backends(served, kwargs, field):
    _, local, http, _, _ = served
    for backend in (local, http):
        with pytest.raises(PolicyError) as caught:
            backend.threshold_simulation(**kwargs)
        assert caught.value.field == field, backend


def test_advisors_reach_neither_the_simulator_nor_the_history_nor_the_adoption(served):
    _, _, _, advisor, _ = served
    for call in (advisor.threshold_simulation, advisor.threshold_history,
                 lambda: advisor.adopt_threshold(0.3, "advisors do not set the policy")):
        with pytest.raises(AccessDeniedError, match="analyst"):
            call()


@pytest.mark.parametrize("threshold, reason, field", [
    (0.3, "", "reason"),
    (0.3, "   ", "reason"),
    (0.0, "too strict", "threshold"),
    (1.0, "too lax", "threshold"),
    (math.nan, "not a number", "threshold"),
    ("abc", "not a number", "threshold"),
    (None, "the served one", "threshold"),
])
def test_a_bad_adoption_is_refused_naming_the_field_and_changes_nothing(served, threshold, reason, field):
    wd, local, http, _, _ = served
    threshold = local.card.threshold if threshold is None else threshold
    before = wd.store_path.read_bytes()
    for backend in (local, http):
        if backend is http and isinstance(threshold, str):
            continue  # the HTTP backend sends numbers only
        with pytest.raises(PolicyError) as caught:
            backend.adopt_threshold(threshold, reason, user="analyst.anne")
        assert caught.value.field == field, backend
    assert not wd.policy_path.exists() and local.threshold_history() == http.threshold_history() == []
    assert wd.store_path.read_bytes() == before


def test_the_api_names_the_field_of_a_bad_adoption(served):
    import httpx

    _, _, http, _, _ = served
    post = lambda body: httpx.post(f"{http.base_url}/model/threshold", json=body, timeout=30,  # noqa: E731
                                   headers={"Authorization": f"Bearer {ANALYST}"})
    missing = post({"threshold": 0.3})
    assert missing.status_code == 422 and missing.json()["message"].startswith("reason")
    outside = post({"threshold": 1.2, "reason": "why not"})
    assert outside.status_code == 422 and outside.json()["message"].startswith("threshold")
    blank = post({"threshold": 0.3, "reason": "  "})
    assert blank.status_code == 422 and blank.json()["message"].startswith("reason")

def test_without_its_audit_entry_an_adoption_is_reported_refused(served, tmp_path):
    """The audit policy writes `threshold_changed` before returning: a log that refuses it makes the call fail
    (the change, already on disk with its user and reason, stays in the policy's history)."""
    import sqlite3

    from scoring.audit import AuditLog
    from scoring.audited import AuditedService
    from scoring.errors import AuditUnavailableError

    wd, local, _, _, _ = served
    log = AuditLog(tmp_path / "audit.sqlite")
    con = sqlite3.connect(tmp_path / "audit.sqlite")
    con.execute("CREATE TRIGGER refuse BEFORE INSERT ON audit BEGIN SELECT RAISE(ABORT, 'disk quota'); END")
    con.commit()
    audited = AuditedService(local, log, "analyst.carl", "dashboard")
    with pytest.raises(AuditUnavailableError):
        audited.adopt_threshold(0.3, "tested while the log is down")
    [change] = local.threshold_history()
    assert (change.user, change.threshold) == ("analyst.carl", 0.3)
    wd.policy_path.unlink()   # the next test starts from the build's threshold again (and adopts one of its own)

def test_an_adopted_threshold_is_kept_audited_and_served_by_a_service_opened_after_it(served):
    from scoring.service import LocalScoringService

    wd, local, http, _, audit = served
    built = local.card.threshold
    sim = http.threshold_simulation(target_acceptance=0.6)
    first = http.adopt_threshold(sim.proposed_threshold, "acceptance target of the 2027 plan", target_acceptance=0.6)
    assert (first.threshold, first.previous, first.target_acceptance) == (sim.proposed_threshold, built, 0.6)
    assert first.user.startswith("token:")   # the API's caller, never a name the body gives
    entry = audit.recent(1)[0]
    assert (entry["event"], entry["user"]) == ("threshold_changed", first.user)
    assert json.loads(entry["details"]) == {"previous": built, "new": sim.proposed_threshold,
                                            "reason": "acceptance target of the 2027 plan"}
    # the engine takes the user; the history is read from the file by both backends, newest first
    second = local.adopt_threshold(0.25, "risk committee of 12 March", cost_missed_default=6.0,
                                   user="analyst.bob")
    assert second.previous == sim.proposed_threshold and second.cost_missed_default == 6.0
    assert local.threshold_history() == http.threshold_history() == [second, first]
    assert len(wd.policy_path.read_text().splitlines()) == 2
    # the running service keeps what it loaded; a service opened now decides at 0.25 everywhere
    assert local.card.threshold == built
    local.store.close()   # (in the same process DuckDB would hand back the file it has open)
    after = LocalScoringService(wd)
    try:
        assert after.card.threshold == after.scorer.threshold == 0.25
        card = after.model_card()
        assert (card["threshold"], card["built_threshold"], card["threshold_source"]) == (0.25, built, "policy")
        p = after.store.column("default_probability")
        portfolio = after.portfolio()
        assert portfolio.threshold == 0.25 and portfolio.n_accepted == int((p < 0.25).sum())
        cid = int(after.search(ClientQuery(limit=1, sort="default_probability", descending=True)).items[0]["client_id"])
        file = after.client(cid)
        refused = file.score.default_probability >= 0.25
        assert file.score.threshold == 0.25 and file.score.decision == ("refused" if refused else "accepted")
        assert after.reasons(cid).threshold == 0.25
        score, _ = after.predict(after.application(cid))        # a new application is decided at it too
        assert score.threshold == 0.25 and score.decision == ("refused" if score.default_probability >= 0.25
                                                              else "accepted")
        sim = after.threshold_simulation()
        assert (sim.current_threshold, sim.threshold_source, sim.built_threshold) == (0.25, "policy", built)
        with pytest.raises(PolicyError, match="already the threshold served"):
            after.adopt_threshold(0.25, "again", user="analyst.bob")
    finally:
        after.store.close()



def test_an_unreadable_policy_file_stops_the_service_with_a_clear_error(workdir, tmp_path):
    from scoring.errors import ModelError
    from scoring.policy import served_threshold

    copy = Workdir(tmp_path / "wd")
    copy.model.mkdir(parents=True)
    copy.policy_path.write_text('{"model_version": "v1", "threshold": 0.2}\n{"model_version": "v1", "thresh')
    with pytest.raises(ModelError, match="line 2 of the threshold policy"):
        served_threshold(copy, "v1", 0.1)
    copy.policy_path.write_text('{"model_version": "v1", "threshold": 7}\n')
    with pytest.raises(ModelError, match="line 1"):
        served_threshold(copy, "v1", 0.1)
    copy.policy_path.write_text('{"model_version": "v1", "threshold": 0.2}\n\n')
    assert served_threshold(copy, "v1", 0.1) == (0.2, "policy") and served_threshold(copy, "v2", 0.1) == (0.1, "build")


def test_through_the_api_an_adopted_threshold_decides_the_next_prediction(workdir, tmp_path):
    """End to end, with the process-wide service that follows the files (scoring.serving): an analyst adopts a
    threshold over HTTP, and the next POST /predict, in the same running server, is decided at it."""
    from api_server import LiveServer
    from scoring.api import create_app
    from scoring.audit import AuditLog
    from scoring.client import HttpScoringService
    from scoring.serving import ReloadingService

    wd = Workdir(tmp_path / "wd")
    shutil.copytree(workdir.root, wd.root)
    reloading = ReloadingService(wd, warm_up=False)
    token = "policy-e2e-token"
    app = create_app(reloading, tokens=frozenset((f"{token} advisor+analyst",)), audit=AuditLog(tmp_path / "a.sqlite"))
    with LiveServer(app) as live, HttpScoringService(live.url, token) as http:
        cid = int(http.search(ClientQuery(limit=1)).items[0]["client_id"])
        application = http.application(cid)
        before, _ = http.predict(application)
        adopted = 0.02 if before.threshold != 0.02 else 0.03
        http.adopt_threshold(adopted, "end-to-end check")
        after, _ = http.predict(application)
        assert before.threshold != adopted and after.threshold == adopted
        assert after.decision == ("refused" if after.default_probability >= adopted else "accepted")
        assert http.threshold_simulation().current_threshold == adopted
        assert http.model_card()["threshold_source"] == "policy"
