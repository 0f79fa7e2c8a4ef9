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
