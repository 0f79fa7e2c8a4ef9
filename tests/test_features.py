"""One application through `transform_record` gives exactly the row `transform_frame` gives (the API's fast path);
applications are validated by `scoring.application`, with errors naming the field."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from scoring.errors import InvalidApplicationError


@pytest.fixture(scope="module")
def spec(service):
    return service.scorer.spec


@pytest.fixture(scope="module")
def records(service):
    """The stored raw application of 600 clients spread over the portfolio."""
    rows = np.linspace(0, len(service.ids) - 1, 600).astype(int)
    return rows, [service.store.raw_record(int(service.ids[i])) for i in rows]


def frame_of(spec, records: list[dict]) -> pd.DataFrame:
    return pd.DataFrame(records, columns=list(spec.raw_columns))


@pytest.fixture(scope="module")
def as_validated(spec):
    """The application as `POST /predict` hands it to `transform_record(checked=True)`: sent as JSON, validated
    by the pydantic type of `scoring.application` (numbers come out as Python floats)."""
    return lambda record: spec.applications.validate(json.loads(json.dumps(record, default=float)))


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal as float32 bit patterns: NaN where NaN, and no rounding difference anywhere."""
    return a.dtype == b.dtype == np.float32 and a.shape == b.shape and np.array_equal(a.view(np.uint32),
                                                                                       b.view(np.uint32))


def test_record_path_equals_the_batch_path_and_the_stored_matrix(service, spec, records, as_validated):
    rows, recs = records
    one_by_one = np.vstack([spec.transform_record(r) for r in recs])
    assert same_bits(one_by_one, spec.transform_frame(frame_of(spec, recs)))
    assert same_bits(one_by_one, np.asarray(service.X[rows]))
    # the API's path, for an application its pydantic model validated already
    assert same_bits(np.vstack([spec.transform_record(as_validated(r), checked=True) for r in recs]), one_by_one)
    # a batch (`POST /predict/batch`), validated or not
    assert same_bits(spec.transform_records(recs), one_by_one)
    assert same_bits(spec.transform_records([as_validated(r) for r in recs], checked=True), one_by_one)


def test_record_path_equals_the_batch_path_on_edge_cases(spec, records, as_validated):
    base = records[1][0]
    roles = {name: spec.schema.role_column(name) for name in ("income", "annuity", "credit_amount", "goods_price",
                                                              "age", "employment")}
    sentinel_column, sentinel = next(iter(spec.schema.sentinels.items()))
    cases = [
        {},                                                              # everything missing
        {k: v for k, v in base.items() if v is not None},                # missing values left out
        {k: None for k in spec.raw_columns},                             # all explicitly missing
        {**base, roles["income"]: 0.0},                                  # ratios over zero
        {**base, roles["income"]: 0.0, roles["credit_amount"]: 0.0, roles["annuity"]: 0.0, roles["goods_price"]: 0},
        {**base, roles["income"]: 1e-300},                               # ratio beyond float32
        {**base, roles["credit_amount"]: 3.4e38, roles["goods_price"]: 1e-30},
        {**base, roles["income"]: -0.0, roles["employment"]: 0},         # signed zero, an int
        {**base, sentinel_column: sentinel},                             # the "missing" sentinel
        {**base, sentinel_column: int(sentinel)},
        {**base, roles["annuity"]: np.float32(1234.5), roles["credit_amount"]: np.int64(450_000)},
        {roles["credit_amount"]: 500_000, roles["income"]: 150_000},
    ]
    for case in cases:
        frame = frame_of(spec, [case])
        for column in spec.raw_columns:  # a one-row frame of None is object-typed: give numbers their dtype
            if column not in spec._index["__cat__"]:
                frame[column] = pd.to_numeric(frame[column]).astype(np.float64)
        with np.errstate(all="ignore"):
            expected = spec.transform_frame(frame)
        assert same_bits(spec.transform_record(case), expected), case
        assert same_bits(spec.transform_record(as_validated(case), checked=True), expected), case
    assert same_bits(spec.transform_records(cases), np.vstack([spec.transform_record(c) for c in cases]))


@pytest.mark.parametrize("record, field, message", [
    ({"SALARY": 1}, "SALARY", "unknown field"),
    ({"AMT_CREDIT": float("nan")}, "AMT_CREDIT", "finite"),
    ({"AMT_CREDIT": float("inf")}, "AMT_CREDIT", "finite"),
    ({"DAYS_BIRTH": -1e300}, "DAYS_BIRTH", "out of bounds"),
    ({"AMT_INCOME_TOTAL": 1e300}, "AMT_INCOME_TOTAL", "out of range"),
    ({"AMT_CREDIT": -1}, "AMT_CREDIT", "cannot be negative"),
    ({"AMT_CREDIT": True}, "AMT_CREDIT", "must be a number, got bool"),
    ({"AMT_CREDIT": "1000"}, "AMT_CREDIT", "must be a number, got str"),
    ({"NAME_CONTRACT_TYPE": 1}, "NAME_CONTRACT_TYPE", "must be a text category"),
    ({"NAME_CONTRACT_TYPE": "Mortgage"}, "NAME_CONTRACT_TYPE", "unknown category 'Mortgage'; expected one of: Cash"),
    ({"NAME_CONTRACT_TYPE": "Mortgage"}, "NAME_CONTRACT_TYPE", "expected one of: Cash loans, Revolving loans"),
    ({"DAYS_BIRTH": "-12000"}, "DAYS_BIRTH", "must be a number, got str"),
    ({"AMT_CREDIT": 1000, "SALARY": 1, "AMT_ANNUITY": -5}, "AMT_ANNUITY", "cannot be negative"),  # pydantic's first
])
def test_invalid_applications_name_the_field(spec, record, field, message):
    for check in (lambda: spec.applications.validate(record), lambda: spec.transform_record(record)):
        with pytest.raises(InvalidApplicationError, match=message) as info:
            check()
        assert info.value.field == field and str(info.value).startswith(f"{field}: ")


def test_a_record_that_is_not_a_mapping_is_refused(spec):
    with pytest.raises(InvalidApplicationError, match="mapping") as info:
        spec.transform_record([("AMT_CREDIT", 1000)])
    assert info.value.field == "application"


def test_a_bad_row_of_a_batch_is_named_by_its_index(spec):
    with pytest.raises(InvalidApplicationError, match="cannot be negative") as info:
        spec.transform_records([{}, {"AMT_CREDIT": 1.0}, {"AMT_CREDIT": -1.0}])
    assert info.value.field == "2.AMT_CREDIT"
    with pytest.raises(InvalidApplicationError, match="mapping") as info:
        spec.transform_records([{}, "AMT_CREDIT=1"])
    assert info.value.field == "1.application"
    with pytest.raises(InvalidApplicationError) as info:
        spec.transform_records({"AMT_CREDIT": 1.0})
    assert info.value.field == "applications"


def test_numbers_may_be_numpy_scalars_as_in_a_notebook(spec):
    plain = spec.transform_record({"AMT_CREDIT": 450_000.0, "AMT_ANNUITY": 1234.5})
    assert same_bits(spec.transform_record({"AMT_CREDIT": np.int64(450_000), "AMT_ANNUITY": np.float32(1234.5)}),
                     plain)
