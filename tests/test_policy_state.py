"""The threshold policy panel without a browser: the state simulates from the costs or a target acceptance rate,
names a refused input, refuses an adoption without a reason, adopts with one (audited, in the history); the view
shows the curves with the served and proposed thresholds marked, the comparison table escaped and the history."""

from __future__ import annotations

import shutil

import holoviews as hv
import pytest

from scoring.audit import AuditLog
from scoring.backends import session_service
from scoring.config import Workdir
from views.policy import PolicyView, comparison_html, curves_frame, history_frame
from views.state import DashboardState, PolicyState


@pytest.fixture
def log(tmp_path):
    return AuditLog(tmp_path / "audit.sqlite")


@pytest.fixture
def policy(service, log):
    return PolicyState(session_service(service, "analyst.anne", log))


def test_the_state_loads_the_simulation_at_the_cards_costs_and_the_history(policy, service):
    assert not policy.loading and policy.notice is None
    assert policy.simulation == service.threshold_simulation() and policy.history == []
    figures = dict((k, (c, p)) for k, c, p in policy.comparison)
    assert figures["policy_acceptance"][0] == policy.simulation.current.acceptance_rate
    assert {"policy_di:gender", "policy_eod:age"} <= set(figures)


def test_loading_waits_for_the_page(service):
    waiting = []
    state = PolicyState(service, schedule=waiting.append)
    assert state.loading and state.simulation is None
    waiting.pop()()
    assert not state.loading and state.simulation is not None


def test_a_target_acceptance_or_other_costs_propose_another_threshold(policy, service):
    policy.param.update(mode="target", target_acceptance=0.7)
    assert policy.simulation == service.threshold_simulation(target_acceptance=0.7)
    assert 0.7 <= policy.simulation.proposed.acceptance_rate <= 0.71
    policy.param.update(mode="costs", cost_missed_default=3.0)
    assert policy.simulation.target_acceptance is None and policy.simulation.cost_missed_default == 3.0
    expected = service.threshold_simulation(cost_missed_default=3.0)
    assert policy.simulation.proposed_threshold == expected.proposed_threshold


def test_a_refused_input_is_named_and_the_last_simulation_kept(policy):
    before = policy.simulation
    policy.cost_refused_good = -2.0
    assert policy.notice.key == "policy_bad_input" and policy.notice.values["field"] == "cost_refused_good"
    assert policy.simulation == before
    policy.cost_refused_good = 2.0
    assert policy.notice is None and policy.simulation.cost_refused_good == 2.0


def test_adopting_needs_a_reason_then_is_kept_and_audited(workdir, tmp_path, log):
    from scoring.service import LocalScoringService

    copy = Workdir(tmp_path / "wd")
    shutil.copytree(workdir.root, copy.root)
    local = LocalScoringService(copy)
    try:
        state = PolicyState(session_service(local, "analyst.anne", log))
        state.param.update(mode="target", target_acceptance=0.65)
        state.reason = "   "
        assert not state.adopt() and state.notice.key == "policy_reason_required"
        assert not copy.policy_path.exists() and state.history == []
        state.reason = "2027 plan: 65 % acceptance"
        assert state.adopt()
        assert state.notice.key == "policy_adopted" and state.reason == ""
        assert f"Threshold {state.history[0].threshold:.4f} adopted" in state.notice.text("en")
        [change] = state.history
        assert (change.threshold, change.user, change.reason, change.target_acceptance) == \
            (state.simulation.proposed_threshold, "analyst.anne", "2027 plan: 65 % acceptance", 0.65)
        assert log.recent(1)[0]["event"] == "threshold_changed"
        assert history_frame(state.history, "en").iloc[0]["By"] == "analyst.anne"
        # the same threshold again: refused (this service still serves what it loaded, the policy file decides)
        state.reason = "once more"
        assert state.adopt() is False and state.notice.key == "policy_refused"
        assert "already the threshold served" in state.notice.text("en") and len(state.history) == 1
    finally:
        local.store.close()


def test_the_view_draws_the_curves_the_marks_the_table_and_the_history(service, log):
    state = DashboardState(session_service(service, "analyst", log), role="analyst")
    view = PolicyView(state=state)
    sim = view.policy.simulation
    frame = curves_frame(sim, "en")
    assert set(frame["kind"]) == {"rate", "loss", "fairness"}
    assert frame["threshold"].nunique() == len(sim.curve)
    rates = view._rates_plot((sim, "en"))
    marks = [e for e in rates.traverse(lambda x: x, [hv.VLine])]
    assert sorted(m.data for m in marks) == sorted([sim.current_threshold, sim.proposed_threshold])
    table = comparison_html(view.policy, "fr")
    assert "Seuil servi" in table and "Impact disparate (Genre)" in table
    assert view.history_empty.visible
    panel = view.__panel__()
    assert panel.get_root() is not None
    state.language = "en"
    assert view.adopt.label == "Adopt the proposed threshold"


def test_the_comparison_and_history_escape_what_they_show(service, log):
    from scoring.contracts import ThresholdChange

    change = ThresholdChange(at="2026-11-29T10:00:00+00:00", model_version="v1", threshold=0.2, previous=0.1,
                             user="<img src=x onerror=alert(1)>", reason="<b>why</b>")
    frame = history_frame([change], "en")
    assert frame.iloc[0]["Reason"] == "<b>why</b>"          # Tabulator shows a cell's text, never its HTML
    state = PolicyState(session_service(service, "analyst", log))
    assert "<script" not in comparison_html(state, "en")


def test_the_charts_say_which_line_is_the_served_threshold_and_which_the_proposed(service, log):
    state = DashboardState(session_service(service, "analyst", log), role="analyst")
    view = PolicyView(state=state)
    sim = view.policy.simulation
    legend = view._marks_legend(sim, "en")
    assert f"Threshold served {sim.current_threshold:.4f}" in legend and "Proposed threshold" in legend


def test_every_chart_keeps_its_title_and_size_with_the_four_fifths_line(service, log):
    state = DashboardState(session_service(service, "analyst", log), role="analyst")
    view = PolicyView(state=state)
    data = (view.policy.simulation, "en")
    for plot, title in ((view._rates_plot(data), "Rates by threshold"),
                        (view._loss_plot(data), "Expected loss per application by threshold"),
                        (view._fairness_plot(data), "Fairness by threshold")):
        options = hv.Store.lookup_options("bokeh", plot, "plot").kwargs
        assert options["title"] == title and options["responsive"] is True
    assert [e.data for e in view._fairness_plot(data).traverse(lambda x: x, [hv.HLine])] == [0.8]
