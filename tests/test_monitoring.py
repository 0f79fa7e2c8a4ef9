"""Monitoring over time, in DuckDB on the store: figures by month of application, drift that grows over the
new applications' months, outcomes arriving after the decision and the checks they pass."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from scoring.__main__ import main
from scoring.config import Workdir
from scoring.monitoring import monthly_report
from scoring.outcomes import OutcomesError, load_outcomes, relation


def _features(service, n=6):
    spec, out = service.scorer.spec, []
    for imp in service.global_importance(n):
        j = spec.index(imp.feature)
        f = spec.features[j]
        if f.source == f.name or (f.kind == "categorical" and f.source):
            out.append({"name": f.name, "column": f.source, "index": j,
                        "categories": list(f.categories) if f.kind == "categorical" else None})
    return out


@pytest.fixture(scope="module")
def report(service):
    return monthly_report(service.store._cur, service.card.reference, service.card.threshold, _features(service))


def test_one_row_per_month_of_history_and_of_new_applications(report, service):
    months = [r["month"] for r in report]
    assert months == sorted(months) and len(months) == 36  # 24 months of history, 12 of new applications
    assert {r["split"] for r in report[:24]} == {"train"} and {r["split"] for r in report[24:]} == {"new"}
    assert sum(r["applications"] for r in report) == len(service.ids)
    for r in report:
        assert 0 <= r["acceptance_rate"] <= 1 and 0 < r["expected_error_rate"] < 1 and r["score_psi"] >= 0


def test_outcomes_arrive_months_after_the_decision(report):
    history, new = report[:24], report[24:]
    assert all(r["outcomes"] == r["applications"] for r in history)  # labelled: every outcome known
    assert all(r["outcomes"] > 0 for r in new[:9]) and all(r["outcomes"] == 0 for r in new[9:])  # 3 months' lag
    for r in report:
        if r["outcomes"]:
            assert 0 <= r["observed_default_rate"] <= 1 and 0 <= r["realised_error_rate"] <= 1
        else:
            assert r["observed_default_rate"] is None and r["auc"] is None
    assert np.mean([r["auc"] for r in history]) > 0.6


def test_the_new_applications_drift_further_month_after_month(report):
    """The generator moves external score 3 of the new applications a little more each month: its PSI against
    the training reference is larger in the last months than in the history and than in the first new months."""
    psi = [r["feature_psi"].get("EXT_SOURCE_3", 0) for r in report]
    history, first, last = np.mean(psi[:24]), np.mean(psi[24:28]), np.mean(psi[32:])
    assert last > first and last > history


@pytest.fixture
def own_workdir(workdir, tmp_path):
    """A copy of the built work directory: loading outcomes writes beside the store."""
    copy = Workdir(tmp_path / "wd")
    shutil.copytree(workdir.root, copy.root, ignore=shutil.ignore_patterns("generated", "outcomes", "*.sqlite*"))
    return copy


def _store_rows(service, where):
    return service.store._cur.execute(f"SELECT a.client_id FROM applications a WHERE {where} "
                                      f"AND a.client_id NOT IN (SELECT client_id FROM outcomes) "
                                      f"ORDER BY a.client_id LIMIT 3").fetchnumpy()["client_id"].tolist()


def test_a_valid_outcomes_file_is_kept_and_counted(service, own_workdir, tmp_path):
    accepted = _store_rows(service, "a.split = 'new' AND a.decision = 'accepted'")
    path = tmp_path / "outcomes.csv"
    pd.DataFrame({"SK_ID_CURR": accepted, "TARGET": [1, 0, 0][:len(accepted)],
                  "reported_on": ["2027-01-15"] * len(accepted)}).to_csv(path, index=False)
    loaded = load_outcomes(path, own_workdir)
    assert loaded.rows == len(accepted) and loaded.path.parent.name == "outcomes"
    assert "read_parquet" in relation(own_workdir)
    with pytest.raises(OutcomesError, match="already recorded"):  # the same file twice
        load_outcomes(path, own_workdir)


@pytest.mark.parametrize("rows, message", [
    ({"client_id": [1, 2]}, "column defaulted missing"),
    ({"client_id": [999999999], "defaulted": [1]}, "1 rows naming an unknown client ID: row 2 (client 999999999)"),
    ({"client_id": [100002, 100002], "defaulted": [1, 0]}, "2 rows repeating a client ID"),
    ({"client_id": [100002], "defaulted": [2]}, "not 0 (repaid) or 1 (defaulted)"),
])
def test_a_bad_outcomes_file_is_refused_whole_naming_the_rows(own_workdir, tmp_path, rows, message):
    path = tmp_path / "bad.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    with pytest.raises(OutcomesError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_outcomes(path, own_workdir)
    assert not (own_workdir.data / "outcomes").exists() or not list((own_workdir.data / "outcomes").iterdir())


def test_outcomes_of_undecided_applications_are_refused(service, own_workdir, tmp_path, capsys):
    history = _store_rows(service, "a.split = 'train'")[:1]
    refused = _store_rows(service, "a.split = 'new' AND a.decision = 'refused'")[:1]
    path = tmp_path / "undecided.csv"
    pd.DataFrame({"client_id": history + refused, "defaulted": [0] * len(history + refused)}).to_csv(path, index=False)
    assert main(["outcomes", str(path), "--workdir", str(own_workdir.root)]) == 2
    err = capsys.readouterr().err
    assert "not decided as accepted" in err and f"client {history[0]}" in err


# ------------------------------------------------------------------------------------------ through the service
API_TOKENS = ("monitor-analyst analyst", "monitor-advisor advisor")


def test_the_service_gives_fairness_for_labelled_and_new_applications(service):
    figures = {(f.attribute, f.population): f for f in service.fairness()}
    assert set(figures) == {("gender", "labelled (out of fold)"), ("age", "labelled (out of fold)"),
                            ("gender", "new applications"), ("age", "new applications")}
    labelled, new = figures["gender", "labelled (out of fold)"], figures["gender", "new applications"]
    assert sum(g.applications for g in labelled.groups) == int(np.isfinite(service._target).sum())
    assert all(g.observed_default_rate is not None for g in labelled.groups)
    assert all(g.observed_default_rate is None for g in new.groups) and new.equal_opportunity_difference is None
    assert 0 < new.disparate_impact_ratio <= 1


def test_the_service_gives_the_months_with_their_drifting_features(service):
    months = service.monitoring()
    assert len(months) == 36 and months[-1].split == "new"
    assert all(set(m.drifting) == {k for k, v in m.feature_psi.items() if v >= 0.2} for m in months)
    assert service.monitoring() is months  # computed once per set of outcomes


def test_analysts_read_fairness_and_monitoring_over_the_api_advisors_do_not(api_server, service):
    import httpx

    from scoring.client import HttpScoringService
    from scoring.errors import AccessDeniedError

    with HttpScoringService(api_server.url, "monitor-analyst") as analyst:
        assert analyst.fairness() == service.fairness()
        assert analyst.monitoring() == service.monitoring()
    with HttpScoringService(api_server.url, "monitor-advisor") as advisor:
        with pytest.raises(AccessDeniedError):
            advisor.fairness()
        with pytest.raises(AccessDeniedError):
            advisor.monitoring()
    assert httpx.get(f"{api_server.url}/monitoring/months").status_code == 401


# ------------------------------------------------------------------------------------------ a drifting feature
def test_a_drifting_features_reference_and_current_distributions_share_their_bins(service):
    months = service.monitoring()
    feature = "EXT_SOURCE_3"
    drift = service.feature_drift(feature)
    labelled = int(np.isfinite(service._target).sum())
    assert drift.kind == "numeric" and len(drift.reference) == len(drift.current) == len(drift.edges) + 2
    assert drift.reference_applications == labelled and drift.current_applications == len(service.ids) - labelled
    assert sum(drift.reference) == pytest.approx(1) and sum(drift.current) == pytest.approx(1)
    assert drift.label_fr == "Score externe 3" and drift.month is None
    # the scores fall: the new applications sit lower on the reference's deciles than the history does
    lower_half = slice(0, (len(drift.edges) + 1) // 2)
    assert sum(drift.current[lower_half]) > sum(drift.reference[lower_half])
    # one month's distribution has the PSI the monthly monitoring shows for it
    last = months[-1]
    one_month = service.feature_drift(feature, last.month)
    assert one_month.current_applications == last.applications and one_month.month == last.month
    assert one_month.psi == pytest.approx(last.feature_psi[feature], abs=1e-4)


def test_a_categorical_feature_is_compared_by_category(service):
    from scoring.monitoring import feature_counts, feature_shares

    spec = service.scorer.spec
    j = next(j for j, f in enumerate(spec.features) if f.kind == "categorical" and f.source)
    f = spec.features[j]
    counts = feature_counts(service.store.cursor(), {"name": f.name, "column": f.source, "index": j,
                                                     "categories": list(f.categories)}, service.card.reference)
    shares = feature_shares(counts)
    assert shares["edges"] == [] and shares["categories"] == list(f.categories)
    assert len(shares["reference"]) == len(f.categories) + 1 and sum(shares["reference"]) == pytest.approx(1)
    # the reference's shares are the card's, computed at build time on the same applications
    assert shares["reference"] == pytest.approx(service.card.reference["features"][j]["proportions"], abs=1e-5)


@pytest.mark.parametrize("feature, month, error, message", [
    ("NOT_A_FEATURE", None, KeyError, "not monitored; monitored features: EXT_SOURCE"),
    ("EXT_SOURCE_3", "2026-13", ValueError, "YYYY-MM"),
    ("EXT_SOURCE_3", "march", ValueError, "YYYY-MM"),
])
def test_an_unknown_feature_or_a_malformed_month_is_refused_clearly(service, feature, month, error, message):
    with pytest.raises(error, match=message):
        service.feature_drift(feature, month)


def test_the_governance_figures_are_computed_in_the_background_when_the_service_starts(workdir):
    from scoring.service import LocalScoringService

    fresh = LocalScoringService(workdir)
    fresh.start_governance().join(timeout=120)
    assert fresh._monthly and "_performance" in vars(fresh) and "_fairness" in vars(fresh)


def test_analysts_read_a_features_distributions_over_the_api_advisors_do_not(api_server, service):
    import httpx

    from scoring.client import HttpScoringService
    from scoring.errors import AccessDeniedError

    month = service.monitoring()[-3].month
    with HttpScoringService(api_server.url, "monitor-analyst") as analyst:
        assert analyst.feature_drift("EXT_SOURCE_3") == service.feature_drift("EXT_SOURCE_3")
        assert analyst.feature_drift("EXT_SOURCE_3", month) == service.feature_drift("EXT_SOURCE_3", month)
        with pytest.raises(KeyError, match="not monitored"):
            analyst.feature_drift("NOT_A_FEATURE")
        with pytest.raises(ValueError, match="month"):
            analyst.feature_drift("EXT_SOURCE_3", "2026-13")
    with HttpScoringService(api_server.url, "monitor-advisor") as advisor:
        with pytest.raises(AccessDeniedError):
            advisor.feature_drift("EXT_SOURCE_3")
    bad = httpx.get(f"{api_server.url}/monitoring/features/EXT_SOURCE_3", params={"month": "<b>x</b>"},
                    headers={"Authorization": "Bearer monitor-analyst"})
    assert bad.status_code == 422 and "month" in bad.json()["message"]
