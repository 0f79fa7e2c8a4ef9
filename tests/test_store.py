"""The client-file store: search by ID, filters, sorting, pagination, and the numbers it serves."""

import numpy as np
import pandas as pd
import pytest

from scoring.contracts import LIST_COLUMNS, ClientQuery
from scoring.errors import UnknownClientError


def _frame(page) -> pd.DataFrame:
    return pd.DataFrame.from_records(list(page.items), columns=LIST_COLUMNS)

def test_exact_id_comes_first_then_prefix_matches(service):
    first = int(service.ids[0])
    page = service.search(ClientQuery(q=str(first), limit=5))
    assert _frame(page)["client_id"].iloc[0] == first
    prefix = str(first)[:4]
    page = service.search(ClientQuery(q=prefix, limit=500))
    assert page.total == sum(str(i).startswith(prefix) for i in service.ids)
    assert all(str(i).startswith(prefix) for i in _frame(page)["client_id"])


def test_filters_combine(service):
    query = ClientQuery(decision="refused", min_probability=0.2, contract_type="Cash loans", limit=500)
    page = service.search(query)
    rows = _frame(page)
    assert page.total == len(rows) > 0
    assert (rows["decision"] == "refused").all()
    assert (rows["default_probability"] >= 0.2).all()
    assert (rows["contract_type"] == "Cash loans").all()


def test_income_amount_and_age_ranges(service):
    rows = service.search(ClientQuery(min_income=100_000, max_income=200_000, min_amount=300_000, min_age=30,
                                      max_age=50, limit=500))
    rows = _frame(rows)
    assert len(rows) > 0
    assert rows["income"].between(100_000, 200_000).all()
    assert (rows["credit_amount"] >= 300_000).all()
    assert rows["age_years"].between(30, 50).all()


def test_sorting_and_pagination_cover_every_row_once(service):
    seen = []
    offset = 0
    total = service.search(ClientQuery(decision="refused", limit=1)).total
    while offset < total:
        page = service.search(ClientQuery(decision="refused", sort="default_probability", descending=True,
                                          limit=200, offset=offset))
        probs = _frame(page)["default_probability"].to_numpy()
        assert (np.diff(probs) <= 1e-12).all()
        seen += _frame(page)["client_id"].tolist()
        offset += 200
    assert len(seen) == len(set(seen)) == total


def test_portfolio_counts_add_up(service):
    p = service.store.portfolio()
    assert p["n_accepted"] + p["n_refused"] == p["n_applications"] == len(service.ids)
    assert p["n_new"] > 0


@pytest.mark.parametrize("kwargs, message", [
    ({"q": "1000' OR 1=1 --"}, "digits 0-9 only"),
    ({"sort": "client_id; DROP TABLE applications"}, "cannot sort"),
    ({"decision": "maybe"}, "decision must be"),
    ({"limit": 0}, "limit"),
    ({"limit": 100000}, "limit"),
    ({"offset": -1}, "offset"),
    ({"min_probability": 1.5}, "between 0 and 1"),
])
def test_bad_queries_are_refused_before_any_sql(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ClientQuery(**kwargs)


def test_unknown_client_file(service):
    with pytest.raises(UnknownClientError, match="unknown client ID 42"):
        service.store.get(42)


def test_client_file_in_business_units(service):
    cid = int(service.ids[0])
    file = service.client(cid)
    assert 20 <= file.profile["age_years"] <= 70
    assert file.profile["income"] > 0
    app = file.application
    assert app["credit_amount"] > 0
    if app["annuity"]:
        # Home Credit's annuity is monthly: the term is credit / annuity months, and the annuity a share of the
        # monthly income
        assert app["term_months"] == pytest.approx(app["credit_amount"] / app["annuity"], rel=1e-6)
        assert file.term_months == app["term_months"]


def test_distribution_marks_the_client_and_their_percentile(service):
    cid = int(service.ids[3])
    d = service.distribution("EXT_SOURCE_2", cid)
    assert len(d.histogram.edges) == len(d.histogram.counts["repaid"]) + 1
    assert sum(d.histogram.counts["defaulted"]) > 0
    if d.client_value is not None:
        assert 0 <= d.client_percentile <= 100
    with pytest.raises(KeyError, match="unknown feature"):
        service.distribution("NOT_A_FEATURE", cid)


def test_debt_capacity_compares_with_population_and_accepted(service):
    cid = int(service.ids[5])
    dc = service.debt_capacity(cid)
    names = [r.name for r in dc.ratios]
    assert names == ["debt_ratio", "credit_income_ratio"]
    file = service.client(cid)
    r = dc.ratios[0]
    # the effort rate: the loan's and the existing credits' monthly payments over the monthly income
    assert r.client == pytest.approx((file.application["annuity"] + file.debts["monthly_debt_service"])
                                     / file.profile["income"], rel=1e-6)
    assert 0 < r.population_mean < 1 and 0 < r.accepted_mean < 1
    # the model refuses heavier debt burdens more often
    assert r.accepted_mean <= r.population_mean * 1.05


def test_drift_report_lists_every_feature_worst_first(service):
    rows = service.drift()
    assert len(rows) == len(service.scorer.spec.features)
    assert rows[0].psi >= rows[-1].psi
    summary = service.portfolio()
    assert summary.n_applications == len(service.ids)
    assert 0 <= summary.drift_share <= 1 and summary.score_psi >= 0


def test_id_prefix_search_matches_text_prefixes_exactly(service):
    ids = [str(i) for i in service.ids]
    for q in (ids[0][:1], ids[0][:3], ids[-1], ids[len(ids) // 2][:5], "0", "0100", "9" * 12):
        page = service.search(ClientQuery(q=q, limit=1))
        assert page.total == sum(i.startswith(q) for i in ids), q


# ------------------------------------------------------------------------------------------------ debts
def generated_bureau(workdir) -> pd.DataFrame:
    return pd.read_parquet(workdir.data / "generated" / "bureau.parquet")


def test_the_store_holds_each_clients_debts_from_the_bureau_table(service, workdir):
    bureau = generated_bureau(workdir)
    running = bureau[bureau.CREDIT_ACTIVE == "Active"].groupby("SK_ID_CURR")
    expected = pd.DataFrame({"active_credits": running.size(), "outstanding_debt": running.AMT_CREDIT_SUM_DEBT.sum(),
                             "debt": running.AMT_ANNUITY.sum(), "max_days_overdue": running.CREDIT_DAY_OVERDUE.max()})
    expected = expected.reindex(service.ids).fillna(0.0)
    for column in expected.columns:
        np.testing.assert_allclose(service.store.column(column), expected[column].to_numpy(), rtol=1e-9, err_msg=column)
    assert {"active_credits", "outstanding_debt", "debt", "max_days_overdue"} <= service.roles
    # the client file carries them, the monthly payments besides the outstanding debt
    cid = int(expected["active_credits"].idxmax())
    file = service.client(cid)
    assert file.debts == {"active_credits": expected.loc[cid, "active_credits"],
                          "outstanding_debt": pytest.approx(expected.loc[cid, "outstanding_debt"]),
                          "monthly_debt_service": pytest.approx(expected.loc[cid, "debt"]),
                          "max_days_overdue": expected.loc[cid, "max_days_overdue"]}
    assert file.profile["debt"] == pytest.approx(expected.loc[cid, "debt"])


def test_terms_are_realistic_months(service):
    term = service.store.column("term_months")
    contract = np.array([service.store.get(int(i))["contract_type"] for i in service.ids[:600]])
    cash = term[:600][contract == "Cash loans"]
    assert 10 <= np.nanmedian(cash) <= 60 and np.nanmax(cash) <= 60.5 and np.nanmin(cash) >= 5.9
    assert np.nanmax(term) < 70  # never "Durée 348 mois"


def test_debt_capacity_by_hand(service):
    """Effort rate = (existing monthly payments + the loan's) / monthly income, against the 35 % cap."""
    files = [service.client(int(i)) for i in service.ids[:200]]
    file = next(f for f in files if f.debts["monthly_debt_service"] > 0 and f.application["annuity"])
    income, existing, payment = file.profile["income"], file.debts["monthly_debt_service"], file.application["annuity"]
    dc = service.debt_capacity(file.client_id)
    assert dc.effort_cap == 0.35
    assert (dc.monthly_income, dc.existing_debt_service, dc.requested_payment) == (income, existing, payment)
    assert dc.effort_rate == pytest.approx((existing + payment) / income)
    assert dc.remaining_capacity == pytest.approx(0.35 * income - existing - payment)
    assert dc.term_months == pytest.approx(file.application["credit_amount"] / payment)
    assert dc.max_affordable_amount == pytest.approx(max(0.0, 0.35 * income - existing) * dc.term_months)
    # against the accepted clients: their effort rates, the client's rank among them
    accepted = service.store.column("debt_ratio")[service.store.column("default_probability") < service.card.threshold]
    accepted = accepted[np.isfinite(accepted)]
    assert dc.accepted_percentile == pytest.approx(100 * np.mean(accepted < dc.effort_rate))
    assert sum(dc.accepted_effort_rates.counts["accepted"]) <= len(accepted)


def test_the_effort_cap_is_read_from_the_environment(workdir, monkeypatch):
    from scoring.offers import effort_cap_from_env
    from scoring.service import LocalScoringService

    for text, cap in (("0.33", 0.33), ("33%", 0.33), (" 40 % ", 0.40), ("", 0.35)):
        monkeypatch.setenv("SCORING_EFFORT_CAP", text)
        assert effort_cap_from_env() == pytest.approx(cap)
    for bad in ("0", "1.5", "lots", "-3%"):
        monkeypatch.setenv("SCORING_EFFORT_CAP", bad)
        with pytest.raises(ValueError, match="SCORING_EFFORT_CAP must be a share of the income"):
            effort_cap_from_env()
    monkeypatch.setenv("SCORING_EFFORT_CAP", "30%")
    service = LocalScoringService(workdir)
    cid = int(service.ids[0])
    dc = service.debt_capacity(cid)
    assert dc.effort_cap == pytest.approx(0.30)
    if dc.monthly_income and dc.requested_payment is not None:
        assert dc.remaining_capacity == pytest.approx(0.30 * dc.monthly_income - dc.existing_debt_service
                                                      - dc.requested_payment)


def test_a_client_file_is_read_from_the_table_as_stored(service):
    """A client switch reads one row of DuckDB's table: every column, the same values as a query gives, the fold
    of the model that scored it, and a file the caller may change without changing the next read."""
    cur = service.store.cursor()
    for cid in (int(service.ids[0]), int(service.ids[len(service.ids) // 2]), int(service.ids[-1])):
        file = service.store.get(cid)
        stored = cur.execute("SELECT default_probability, decision, fold, split FROM applications "
                             "WHERE client_id = ?", [cid]).fetchone()
        assert (file["default_probability"], file["decision"], file["fold"], file["split"]) == stored
        assert service.folds[service._row(cid)] == stored[2]
        file["decision"] = "changed"
        assert service.store.get(cid)["decision"] == stored[1]
    assert len(service.folds) == len(service.ids)
    with pytest.raises(UnknownClientError):
        service.store.get(2**70)
    with pytest.raises(UnknownClientError):
        service.store.get(int(service.ids[-1]) + 1)


def test_ratio_histograms_and_means_from_duckdb_are_numpys(service):
    """The population and accepted ratios of the debt capacity are computed in DuckDB: the same edges, counts and
    means as NumPy over the whole columns."""
    accepted = service.store.column("default_probability") < service.card.threshold
    dc = service.debt_capacity(int(service.ids[7]))
    for ratio in dc.ratios:
        values = service.store.column(ratio.name)
        finite = values[np.isfinite(values)]
        lo, hi = np.quantile(finite, [0.005, 0.995])
        edges = np.linspace(lo, hi, 41)
        np.testing.assert_allclose(ratio.histogram.edges, edges)
        assert ratio.histogram.counts["all"] == np.histogram(finite, edges)[0].tolist()
        chosen = values[accepted & np.isfinite(values)]
        assert ratio.histogram.counts["accepted"] == np.histogram(chosen, edges)[0].tolist()
        assert ratio.population_mean == pytest.approx(finite.mean())
        assert ratio.accepted_mean == pytest.approx(chosen.mean())


def test_new_applications_fairness_from_duckdb_counts_is_fairlearns(service):
    """The new applications' fairness figures come from counts aggregated in DuckDB: the same as Fairlearn's
    MetricFrame over one row per application."""
    from scoring.fairness import fairness_report, group_labels

    schema = service.scorer.spec.schema
    frame = service.store.protected_columns([p.column for p in schema.protected.values()], split="new")
    expected = fairness_report(frame["default_probability"].to_numpy(), service.card.threshold,
                               group_labels(frame, schema))
    live = {f.attribute: f for f in service.fairness() if f.population == "new applications"}
    assert set(live) == set(expected) == {"gender", "age"}
    for name, figures in expected.items():
        got = live[name]
        assert got.disparate_impact_ratio == pytest.approx(figures["disparate_impact_ratio"])
        assert [g.group for g in got.groups] == [g["group"] for g in figures["groups"]]
        for g, want in zip(got.groups, figures["groups"]):
            assert g.applications == want["applications"]
            assert g.acceptance_rate == pytest.approx(want["acceptance_rate"])
            assert g.mean_default_probability == pytest.approx(want["mean_default_probability"])
        assert [a.metric for a in got.alerts] == [a["metric"] for a in figures["alerts"]]


def _sorted_page(service, query):
    """The page as a plain ORDER BY over every matching file would give it (the reference)."""
    page = service.store.search(query)
    cols = ", ".join(LIST_COLUMNS)
    where, params = ["TRUE"], []
    if query.decision:
        where.append("decision = ?")
        params.append(query.decision)
    if query.min_probability is not None:
        where.append("default_probability >= ?")
        params.append(query.min_probability)
    rows = service.store.cursor().execute(
        f"SELECT {cols} FROM applications WHERE {' AND '.join(where)} ORDER BY {query.sort} "
        f"{'DESC' if query.descending else 'ASC'} NULLS LAST, client_id LIMIT ? OFFSET ?",
        [*params, query.limit, query.offset]).fetchall()
    return page, [r[0] for r in rows]


@pytest.mark.parametrize("cutoff_rows", [10**9, 100])
def test_pages_are_those_of_a_full_sort_whatever_the_shortcut(service, monkeypatch, cutoff_rows):
    """Every file in ID order is read by position, and a sorted search of a large store first sorts the files
    beyond a quantile of the column (CUTOFF_ROWS set low here: 3,000 files stand for millions): the pages are
    exactly those of a full sort, forwards, backwards, deep, filtered, and when few files pass the cutoff."""
    monkeypatch.setattr(type(service.store), "CUTOFF_ROWS", cutoff_rows)
    n = len(service.ids)
    for query in (ClientQuery(limit=20), ClientQuery(limit=20, offset=1000), ClientQuery(descending=True, limit=30),
                  ClientQuery(descending=True, limit=50, offset=n - 10), ClientQuery(offset=n + 5),
                  ClientQuery(sort="default_probability", descending=True, limit=40),
                  ClientQuery(sort="default_probability", limit=40, offset=300),
                  ClientQuery(decision="refused", sort="income", limit=25, offset=10),
                  ClientQuery(decision="accepted", sort="age_years", descending=True, limit=100),
                  ClientQuery(min_probability=0.3, sort="credit_amount", descending=True, limit=100),
                  ClientQuery(decision="refused", sort="client_id", descending=True, limit=60, offset=20)):
        page, expected = _sorted_page(service, query)
        assert [r["client_id"] for r in page.items] == expected, query
        assert page.total == service.store.cursor().execute(
            "SELECT count(*) FROM applications WHERE (? IS NULL OR decision = ?) AND "
            "(? IS NULL OR default_probability >= ?)",
            [query.decision, query.decision, query.min_probability, query.min_probability]).fetchone()[0]
