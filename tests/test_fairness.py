"""Fairness figures (Fairlearn) on decisions whose disparities are known by construction."""

import numpy as np
import pandas as pd
import pytest

from scoring.fairness import FairnessLimits, fairness_report, labels_of
from scoring.schema import Protected


def test_a_group_accepted_half_as_often_breaks_the_four_fifths_rule():
    # group A: 100 applicants all below the threshold; group B: 100 applicants, half above it
    probability = np.r_[np.full(100, 0.01), np.full(50, 0.01), np.full(50, 0.5)]
    target = np.r_[np.zeros(100), np.zeros(50), np.zeros(25), np.ones(25)]
    groups = {"gender": np.array(["A"] * 100 + ["B"] * 100, dtype=object)}
    report = fairness_report(probability, 0.1, groups, target=target)["gender"]
    by_group = {g["group"]: g for g in report["groups"]}
    assert by_group["A"]["acceptance_rate"] == 1.0 and by_group["B"]["acceptance_rate"] == 0.5
    assert report["disparate_impact_ratio"] == pytest.approx(0.5)
    # B's 75 good clients: 50 accepted; A's 100: all accepted
    assert by_group["B"]["refused_good_rate"] == pytest.approx(25 / 75)
    assert report["equal_opportunity_difference"] == pytest.approx(1 - 50 / 75)
    assert by_group["B"]["observed_default_rate"] == pytest.approx(0.25)
    assert by_group["B"]["missed_default_rate"] == 0.0  # every defaulter of B was refused
    assert {a["metric"] for a in report["alerts"]} == {"disparate_impact_ratio", "equal_opportunity_difference"}


def test_equal_treatment_raises_no_alert_and_tiny_groups_are_not_compared():
    rng = np.random.default_rng(0)
    probability = rng.uniform(0, 0.2, 2000)
    groups = {"gender": np.array(["F", "M"] * 1000 + [], dtype=object)}
    groups["gender"][:3] = "XNA"  # three applicants: reported, never compared
    report = fairness_report(probability, 0.1, groups, target=(rng.random(2000) < probability).astype(int),
                             limits=FairnessLimits(min_group=30))["gender"]
    assert report["small_groups"] == ["XNA"] and report["alerts"] == []
    assert report["disparate_impact_ratio"] > 0.9


def test_without_outcomes_only_acceptance_is_compared():
    report = fairness_report(np.array([0.01] * 40 + [0.5] * 40), 0.1,
                             {"age": np.array(["young"] * 40 + ["old"] * 40, dtype=object)})["age"]
    assert report["equal_opportunity_difference"] is None and report["disparate_impact_ratio"] == 0.0
    assert all(g["observed_default_rate"] is None for g in report["groups"])


def test_age_bands_from_negative_days():
    days = pd.Series([-20 * 365.25, -30 * 365.25, -70 * 365.25, np.nan])
    labels = labels_of(days, Protected("DAYS_BIRTH", "negative_days", (25, 35, 45, 55, 65)))
    assert labels.tolist() == ["< 25", "25-35", ">= 65", "missing"]
