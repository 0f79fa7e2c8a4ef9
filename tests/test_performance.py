"""The model's performance by segment (scoring.performance), on the out-of-fold probabilities of the labelled
applications: what the model card says, split by contract type and age band, the same over the API."""

from __future__ import annotations

import numpy as np
import pytest

from scoring.performance import MAX_CURVE_POINTS, performance_report, segment_figures

API_TOKENS = ("perf-analyst analyst", "perf-advisor advisor")


def test_perfectly_ranked_scores_have_auc_ks_and_gini_of_one():
    y = np.r_[np.zeros(50), np.ones(50)]
    p = np.r_[np.linspace(0.01, 0.2, 50), np.linspace(0.6, 0.9, 50)]
    f = segment_figures(y, p, 0.5, 10.0, 1.0)
    assert f["roc_auc"] == 1.0 and f["ks"] == 1.0 and f["gini"] == 1.0
    assert (f["refused_defaults"], f["missed_defaults"], f["refused_goods"], f["accepted_goods"]) == (50, 0, 0, 50)
    assert f["business_cost"] == 0.0


def test_errors_are_costed_with_the_build_weights_and_one_class_has_no_auc():
    y = np.array([1, 1, 0, 0])
    p = np.array([0.1, 0.9, 0.9, 0.1])       # one missed default, one good client refused
    f = segment_figures(y, p, 0.5, 10.0, 1.0)
    assert f["missed_defaults"] == 1 and f["refused_goods"] == 1 and f["business_cost"] == pytest.approx(11 / 4)
    assert segment_figures(np.zeros(5), np.full(5, 0.2), 0.5, 10.0, 1.0)["roc_auc"] is None


def test_groups_come_in_the_order_given_else_the_largest_first():
    y = np.array([0, 1] * 6)
    p = np.linspace(0.05, 0.95, 12)
    report = performance_report(y, p, 0.5, 10.0, 1.0, {"age": np.array(["25-35"] * 4 + ["< 25"] * 8)},
                                {"age": ["< 25", "25-35"]})
    assert [(r["segment"], r["group"]) for r in report] == [("all", "all"), ("age", "< 25"), ("age", "25-35")]


@pytest.fixture(scope="module")
def figures(service):
    return service.performance()


def test_all_labelled_applications_match_the_model_cards_out_of_fold_figures(figures, service):
    everyone = figures[0]
    oof = service.card.metrics["out_of_fold"]
    assert (everyone.segment, everyone.group) == ("all", "all")
    assert everyone.applications == oof["size"] and everyone.threshold == service.card.threshold
    assert everyone.roc_auc == pytest.approx(oof["roc_auc"]) and everyone.brier == pytest.approx(oof["brier"])
    assert everyone.gini == pytest.approx(2 * oof["roc_auc"] - 1) and 0 < everyone.ks < 1
    assert everyone.business_cost == pytest.approx(oof["business_cost"])
    assert everyone.missed_defaults / everyone.defaults == pytest.approx(oof["missed_default_rate"])
    assert everyone.refused_goods / (everyone.applications - everyone.defaults) == pytest.approx(
        oof["refused_good_rate"])
    assert everyone.cost_missed_default == service.card.cost_weights["missed_default"]


def test_curves_are_summaries_not_one_point_per_application(figures):
    for f in figures:
        assert len(f.roc.x) == len(f.roc.y) <= MAX_CURVE_POINTS and len(f.pr.x) <= MAX_CURVE_POINTS
        assert len(f.calibration.x) <= 10
        assert all(0 <= v <= 1 for v in f.roc.x + f.roc.y + f.calibration.x + f.calibration.y)
    roc = figures[0].roc
    assert (roc.x[0], roc.y[0], roc.x[-1], roc.y[-1]) == (0.0, 0.0, 1.0, 1.0)


def test_each_segments_groups_add_up_to_every_labelled_application(figures):
    everyone = figures[0]
    segments = {f.segment for f in figures} - {"all"}
    assert segments == {"contract_type", "age"}
    for segment in segments:
        groups = [f for f in figures if f.segment == segment]
        assert sum(f.applications for f in groups) == everyone.applications
        assert sum(f.missed_defaults for f in groups) == everyone.missed_defaults
    ages = [f.group for f in figures if f.segment == "age"]
    assert ages[0] == "< 25" and ages.index("25-35") < ages.index("35-45") and ages[-1] in (">= 65", "missing")


def test_analysts_read_the_same_figures_over_the_api_advisors_do_not(api_server, figures):
    from scoring.client import HttpScoringService
    from scoring.errors import AccessDeniedError

    with HttpScoringService(api_server.url, "perf-analyst") as analyst:
        assert analyst.performance() == figures
    with HttpScoringService(api_server.url, "perf-advisor") as advisor:
        with pytest.raises(AccessDeniedError):
            advisor.performance()
