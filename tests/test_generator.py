"""The bundled Home Credit generator: what a user of the generated files would notice."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

import scoring.generator as generator
from scoring.generator import (
    HOME_CREDIT_COLUMNS,
    NEW_ROWS,
    TRAIN_ROWS,
    GeneratedPortfolio,
    generate_portfolio,
    write_portfolio,
)

STATS = json.loads((Path(generator.__file__).parent / "resources" / "home_credit_stats.json").read_text())
REAL_ROWS = STATS["facts"]["shape_train"][0]
SENTINEL = 365243
INT_COLUMNS = (
    ["SK_ID_CURR", "TARGET", "CNT_CHILDREN", "DAYS_BIRTH", "DAYS_EMPLOYED", "DAYS_ID_PUBLISH",
     "FLAG_MOBIL", "FLAG_EMP_PHONE", "FLAG_WORK_PHONE", "FLAG_CONT_MOBILE", "FLAG_PHONE", "FLAG_EMAIL",
     "REGION_RATING_CLIENT", "REGION_RATING_CLIENT_W_CITY", "HOUR_APPR_PROCESS_START",
     "REG_REGION_NOT_LIVE_REGION", "REG_REGION_NOT_WORK_REGION", "LIVE_REGION_NOT_WORK_REGION",
     "REG_CITY_NOT_LIVE_CITY", "REG_CITY_NOT_WORK_CITY", "LIVE_CITY_NOT_WORK_CITY"]
    + [f"FLAG_DOCUMENT_{i}" for i in range(2, 22)]
)
TEXT_COLUMNS = ["NAME_CONTRACT_TYPE", "CODE_GENDER", "FLAG_OWN_CAR", "FLAG_OWN_REALTY", "NAME_TYPE_SUITE",
                "NAME_INCOME_TYPE", "NAME_EDUCATION_TYPE", "NAME_FAMILY_STATUS", "NAME_HOUSING_TYPE",
                "OCCUPATION_TYPE", "WEEKDAY_APPR_PROCESS_START", "ORGANIZATION_TYPE", "FONDKAPREMONT_MODE",
                "HOUSETYPE_MODE", "WALLSMATERIAL_MODE", "EMERGENCYSTATE_MODE"]
N_TRAIN, N_NEW = 20_000, 4_000


@pytest.fixture(scope="module")
def portfolio() -> GeneratedPortfolio:
    return generate_portfolio(N_TRAIN, N_NEW, seed=7)


def real_missing_rate(column: str) -> float:
    return STATS["numeric_[nmiss,mean,std,min,p25,p50,p75,max]"][column][0] / REAL_ROWS


def test_sizes_and_column_order_follow_the_real_files(portfolio):
    assert TRAIN_ROWS == 307_511 and NEW_ROWS == 48_744
    assert HOME_CREDIT_COLUMNS == STATS["columns_in_order"]
    assert len(HOME_CREDIT_COLUMNS) == 122
    assert list(portfolio.train.columns) == HOME_CREDIT_COLUMNS
    assert list(portfolio.new.columns) == [c for c in HOME_CREDIT_COLUMNS if c != "TARGET"]
    assert portfolio.train.shape == (N_TRAIN, 122)
    assert portfolio.new.shape == (N_NEW, 121)
    assert list(portfolio.true_probability.columns) == ["SK_ID_CURR", "TRUE_DEFAULT_PROBABILITY"]


def test_dtypes_are_those_of_the_real_csv(portfolio):
    train = portfolio.train
    for column in INT_COLUMNS:
        assert train[column].dtype == np.int64, column
    for column in TEXT_COLUMNS:
        assert pd.api.types.is_string_dtype(train[column]), column
    floats = [c for c in HOME_CREDIT_COLUMNS if c not in INT_COLUMNS and c not in TEXT_COLUMNS]
    for column in floats:
        assert train[column].dtype == np.float64, column
    expected = STATS["facts"]["dtypes"]
    assert (len(floats), len(INT_COLUMNS), len(TEXT_COLUMNS)) == (expected["float64"], expected["int64"],
                                                                  expected["object"])
    assert set(train["TARGET"].unique()) == {0, 1}
    assert all(portfolio.new[c].dtype == train[c].dtype for c in portfolio.new.columns)


def test_ids_are_unique_interleaved_and_start_at_100002(portfolio):
    train_ids = portfolio.train["SK_ID_CURR"].to_numpy()
    new_ids = portfolio.new["SK_ID_CURR"].to_numpy()
    all_ids = np.concatenate([train_ids, new_ids])
    assert len(np.unique(all_ids)) == len(all_ids)
    assert all_ids.min() == 100002
    assert all_ids.max() == 100002 + N_TRAIN + N_NEW - 1
    assert np.intersect1d(train_ids, new_ids).size == 0
    assert np.all(np.diff(train_ids) > 0) and np.all(np.diff(new_ids) > 0)
    # new applications are spread over the ID range, not a trailing block
    assert new_ids.min() < np.median(train_ids) < new_ids.max()
    truth = portfolio.true_probability
    assert truth["SK_ID_CURR"].tolist() == train_ids.tolist() + new_ids.tolist()


def test_employment_sentinel_is_exactly_the_xna_organisation(portfolio):
    train = portfolio.train
    sentinel = train["DAYS_EMPLOYED"] == SENTINEL
    assert (sentinel == (train["ORGANIZATION_TYPE"] == "XNA")).all()
    assert 0.16 < sentinel.mean() < 0.20
    assert (train.loc[~sentinel, "DAYS_EMPLOYED"] <= 0).all()
    assert (train.loc[sentinel, "NAME_INCOME_TYPE"] == "Pensioner").mean() > 0.99
    assert (train.loc[sentinel, "FLAG_EMP_PHONE"] == 0).all()
    assert train.loc[sentinel, "DAYS_BIRTH"].median() < train.loc[~sentinel, "DAYS_BIRTH"].median()  # older
    assert train.loc[sentinel, "TARGET"].mean() < train.loc[~sentinel, "TARGET"].mean()


def test_days_and_amounts_follow_the_conventions(portfolio):
    train = portfolio.train
    assert train["DAYS_BIRTH"].between(-25229, -7489).all()
    assert 41 < -train["DAYS_BIRTH"].median() / 365.25 < 45
    for column in ("DAYS_REGISTRATION", "DAYS_ID_PUBLISH", "DAYS_LAST_PHONE_CHANGE"):
        assert (train[column].dropna() <= 0).all(), column
    assert 130_000 < train["AMT_INCOME_TOTAL"].median() < 165_000
    assert train["AMT_INCOME_TOTAL"].quantile(0.999) > 3 * train["AMT_INCOME_TOTAL"].median()  # heavy tail
    assert 450_000 < train["AMT_CREDIT"].median() < 580_000
    # AMT_ANNUITY is monthly: credit / annuity is a cash loan's term in months (its product's 6 to 60), a card's
    # 1 / minimum payment rate (10 to ~27)
    term = train["AMT_CREDIT"] / train["AMT_ANNUITY"]
    cash = train["NAME_CONTRACT_TYPE"] == "Cash loans"
    assert term[cash].dropna().between(5.9, 60.5).all() and 10 <= term[cash].median() <= 60
    assert term[~cash].dropna().between(9.9, 27).all()
    assert 0.55 < train["AMT_CREDIT"].corr(train["AMT_ANNUITY"]) < 0.86
    assert (train["AMT_GOODS_PRICE"] <= train["AMT_CREDIT"]).mean() > 0.9
    for column in ("AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE"):
        numeric = STATS["numeric_[nmiss,mean,std,min,p25,p50,p75,max]"][column]
        assert train[column].dropna().between(numeric[3], numeric[7]).all(), column


def test_goods_price_is_missing_only_for_revolving_loans(portfolio):
    train = portfolio.train
    missing = train["AMT_GOODS_PRICE"].isna()
    assert missing.any()
    assert (train.loc[missing, "NAME_CONTRACT_TYPE"] == "Revolving loans").all()
    assert 0.08 < (train["NAME_CONTRACT_TYPE"] == "Revolving loans").mean() < 0.11


@pytest.mark.parametrize("column, tolerance", [
    ("EXT_SOURCE_1", 0.02), ("EXT_SOURCE_2", 0.003), ("EXT_SOURCE_3", 0.015), ("OWN_CAR_AGE", 0.015),
    ("AMT_REQ_CREDIT_BUREAU_YEAR", 0.012), ("OBS_30_CNT_SOCIAL_CIRCLE", 0.003), ("TOTALAREA_MODE", 0.02),
])
def test_missing_rates_match_the_real_table(portfolio, column, tolerance):
    assert portfolio.train[column].isna().mean() == pytest.approx(real_missing_rate(column), abs=tolerance)


def test_missing_values_come_in_realistic_patterns(portfolio):
    train = portfolio.train
    assert train["OWN_CAR_AGE"][train["FLAG_OWN_CAR"] == "N"].isna().all()
    assert train["OWN_CAR_AGE"][train["FLAG_OWN_CAR"] == "Y"].notna().mean() > 0.99
    occupation_na = STATS["categorical_counts"]["OCCUPATION_TYPE"]["<NA>"] / REAL_ROWS
    assert train["OCCUPATION_TYPE"].isna().mean() == pytest.approx(occupation_na, abs=0.02)
    bureau = train[[c for c in HOME_CREDIT_COLUMNS if c.startswith("AMT_REQ_CREDIT_BUREAU_")]].isna()
    assert (bureau.nunique(axis=1) == 1).all()  # all six missing together
    for block, count in STATS["building_block_missing_counts(_AVG=_MODE=_MEDI)"].items():
        avg = train[f"{block}_AVG"].isna()
        assert (avg == train[f"{block}_MODE"].isna()).all() and (avg == train[f"{block}_MEDI"].isna()).all()
        assert avg.mean() == pytest.approx(count / REAL_ROWS, abs=0.02), block
        assert train[f"{block}_AVG"].dropna().between(0, 1).all()


def test_category_frequencies_match_the_real_table(portfolio):
    train = portfolio.train
    assert (train["CODE_GENDER"] == "F").mean() == pytest.approx(0.658, abs=0.015)
    assert set(train["FLAG_OWN_CAR"]) == {"Y", "N"}
    education = train["NAME_EDUCATION_TYPE"].value_counts(normalize=True)
    assert education["Higher education"] == pytest.approx(74863 / REAL_ROWS, abs=0.015)
    assert train["ORGANIZATION_TYPE"].nunique() > 40
    for column, rate in STATS["binary_flag_means"].items():
        assert train[column].mean() == pytest.approx(rate, abs=max(0.012, 0.1 * rate)), column


def test_default_rate_and_its_drivers(portfolio):
    train = portfolio.train
    assert 0.07 <= train["TARGET"].mean() <= 0.095
    assert train["EXT_SOURCE_3"].corr(train["TARGET"]) < -0.1
    assert train["EXT_SOURCE_2"].corr(train["TARGET"]) < -0.1
    assert train["DAYS_BIRTH"].corr(train["TARGET"]) > 0.03          # younger (less negative) = riskier
    male = (train["CODE_GENDER"] == "M").astype(float)
    assert male.corr(train["TARGET"]) > 0.02


def test_oracle_auc_is_that_of_a_noisy_credit_problem():
    p = generate_portfolio(60_000, 1, seed=11)
    probability = p.true_probability["TRUE_DEFAULT_PROBABILITY"].to_numpy()[:60_000]
    assert 0.76 <= roc_auc_score(p.train["TARGET"], probability) <= 0.84


def test_true_probability_covers_train_and_new(portfolio):
    truth = portfolio.true_probability
    assert len(truth) == N_TRAIN + N_NEW
    probability = truth["TRUE_DEFAULT_PROBABILITY"]
    assert probability.between(0, 1, inclusive="neither").all()
    assert probability.iloc[:N_TRAIN].mean() == pytest.approx(generator.TARGET_RATE, rel=1e-6)


def test_new_applications_drift_mildly(portfolio):
    train, new = portfolio.train, portfolio.new
    assert new["AMT_INCOME_TOTAL"].median() > 1.02 * train["AMT_INCOME_TOTAL"].median()
    cash_train, cash_new = (f.loc[f["NAME_CONTRACT_TYPE"] == "Cash loans", "AMT_CREDIT"] for f in (train, new))
    assert cash_new.median() > 1.02 * cash_train.median()
    assert new["DAYS_BIRTH"].mean() > train["DAYS_BIRTH"].mean()  # younger
    revolving = (new["NAME_CONTRACT_TYPE"] == "Revolving loans").mean()
    assert revolving > (train["NAME_CONTRACT_TYPE"] == "Revolving loans").mean()
    assert new["EXT_SOURCE_1"].isna().mean() < train["EXT_SOURCE_1"].isna().mean() - 0.08
    assert (new["CODE_GENDER"] != "XNA").all()
    assert ((new["DAYS_EMPLOYED"] == SENTINEL) == (new["ORGANIZATION_TYPE"] == "XNA")).all()


def test_same_seed_same_frames_other_seed_other_frames():
    a = generate_portfolio(3_000, 500, seed=3)
    b = generate_portfolio(3_000, 500, seed=3)
    c = generate_portfolio(3_000, 500, seed=4)
    for name in ("train", "new", "true_probability"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))
    assert not a.train.drop(columns="SK_ID_CURR").equals(c.train.drop(columns="SK_ID_CURR"))
    assert not np.allclose(a.true_probability["TRUE_DEFAULT_PROBABILITY"], c.true_probability["TRUE_DEFAULT_PROBABILITY"])


def content_digest(frame: pd.DataFrame) -> str:
    """sha256 of a frame's column names, kinds and values, byte for byte (text as text, whether pandas
    stores it as object or str; not pandas' own hashing, which may change between versions)."""
    digest = hashlib.sha256()
    for name, column in frame.items():
        if pd.api.types.is_string_dtype(column):
            kind, data = "text", json.dumps([None if pd.isna(v) else v for v in column]).encode()
        else:
            values = column.to_numpy()
            kind, data = str(values.dtype), values.astype(values.dtype.newbyteorder("<")).tobytes()
        digest.update(f"{name}:{kind}:".encode() + data)
    return digest.hexdigest()


def test_the_drawn_data_is_pinned():
    """One small portfolio, pinned: a refactoring of the generator must not change what it draws.

    The generator is one stream of draws from a seeded Generator, so moving, adding or removing a
    single draw silently changes every portfolio (and every model, threshold and figure built on
    one) while all the statistical tests above still pass. If a change of the data is intended,
    update these figures in the same commit and say so in its message.

    The two frames are pinned byte for byte: their float columns are grid-rounded or piecewise
    linear, and came out identical with NumPy's AVX-512, AVX2 and SSE code paths
    (NPY_DISABLE_CPU_FEATURES). TRUE_DEFAULT_PROBABILITY goes through exp/log/tanh, whose last bit
    does depend on the SIMD code path (values ~1e-16 apart), so it is pinned by statistics to 1e-9.
    """
    p = generate_portfolio(2_000, 300, seed=7)
    assert content_digest(p.train) == "33460d3e752dc5cc8f63ddb6494ab1eb49e34e309b5d783dd7aa384420c7575b"
    assert content_digest(p.new) == "32a882832d7c48e186fd412df1e39d20834e84a4395960a6d4c94d2c69c6da6b"
    probability = p.true_probability["TRUE_DEFAULT_PROBABILITY"]
    pinned = {"sum": 182.1394825360448, "min": 0.0010720972212913127, "max": 0.689023545410876,
              "median": 0.043549627320866424, "first": 0.0886503265932106, "last": 0.019685926582319047}
    drawn = {"sum": probability.sum(), "min": probability.min(), "max": probability.max(),
             "median": probability.median(), "first": probability.iloc[0], "last": probability.iloc[-1]}
    assert drawn == pytest.approx(pinned, rel=1e-9, abs=0)


def test_labelled_rows_do_not_depend_on_the_number_of_new_ones():
    a = generate_portfolio(2_000, 0, seed=5)
    b = generate_portfolio(2_000, 300, seed=5)
    assert a.new.empty and list(a.new.columns) == list(b.new.columns)
    pd.testing.assert_frame_equal(a.train.drop(columns="SK_ID_CURR"), b.train.drop(columns="SK_ID_CURR"))


def test_write_portfolio_round_trips_through_read_csv(tmp_path):
    p = generate_portfolio(2_000, 300, seed=1)
    paths = write_portfolio(p, tmp_path / "data")
    assert paths == {"train": tmp_path / "data" / "application_train.csv",
                     "new": tmp_path / "data" / "application_test.csv",
                     "true_probability": tmp_path / "data" / "true_default_probability.csv",
                     "bureau": tmp_path / "data" / "bureau.csv"}
    for key, frame in (("train", p.train), ("new", p.new), ("true_probability", p.true_probability),
                       ("bureau", p.bureau)):
        back = pd.read_csv(paths[key])
        assert list(back.columns) == list(frame.columns)
        pd.testing.assert_frame_equal(back, frame, check_exact=False, rtol=1e-12)


@pytest.mark.parametrize("kwargs, message", [
    ({"n_train": 0}, "n_train"), ({"n_train": -5}, "n_train"), ({"n_train": 10, "n_new": -1}, "n_new"),
    ({"n_train": 10.5}, "n_train"),
])
def test_bad_sizes_are_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_portfolio(**kwargs)


# ------------------------------------------------------------------------------------------------ bureau.csv
def test_the_bureau_table_has_the_real_files_shape(portfolio):
    bureau = portfolio.bureau
    assert list(bureau.columns) == generator.BUREAU_COLUMNS
    assert bureau["SK_ID_BUREAU"].is_unique
    ids = np.concatenate([portfolio.train["SK_ID_CURR"], portfolio.new["SK_ID_CURR"]])
    assert set(bureau["SK_ID_CURR"]) <= set(ids)
    listed = pd.Index(ids).isin(bureau["SK_ID_CURR"]).mean()
    assert 0.82 < listed < 0.90                                    # ~86 % of applicants have a history
    assert 4 < len(bureau) / (listed * len(ids)) < 7                # ~5.6 credits each, as in the real file
    assert set(bureau["CREDIT_ACTIVE"]) == {"Active", "Closed"}
    assert 0.32 < (bureau["CREDIT_ACTIVE"] == "Active").mean() < 0.42
    assert bureau["CREDIT_TYPE"].value_counts().index[0] == "Consumer credit"
    closed = bureau["CREDIT_ACTIVE"] == "Closed"
    assert (bureau.loc[closed, "AMT_CREDIT_SUM_DEBT"] == 0).all()
    assert (bureau.loc[closed, "CREDIT_DAY_OVERDUE"] == 0).all()
    active = bureau[~closed]
    assert (active["AMT_CREDIT_SUM_DEBT"] <= active["AMT_CREDIT_SUM"]).all() and active["AMT_ANNUITY"].notna().all()
    assert (bureau["DAYS_CREDIT"] < 0).all() and (bureau["CREDIT_DAY_OVERDUE"] >= 0).all()


def test_defaulters_owe_more_and_are_more_often_overdue(portfolio):
    bureau, train = portfolio.bureau, portfolio.train
    active = bureau[bureau["CREDIT_ACTIVE"] == "Active"].groupby("SK_ID_CURR")
    per_client = pd.DataFrame({"credits": active.size(), "debt": active["AMT_CREDIT_SUM_DEBT"].sum(),
                               "overdue": active["CREDIT_DAY_OVERDUE"].max()})
    per_client = per_client.reindex(train["SK_ID_CURR"]).fillna(0.0)
    by_target = per_client.groupby(train["TARGET"].to_numpy()).mean()
    assert by_target.loc[1, "credits"] > 1.15 * by_target.loc[0, "credits"]
    assert by_target.loc[1, "debt"] > 1.15 * by_target.loc[0, "debt"]
    assert by_target.loc[1, "overdue"] > 2 * by_target.loc[0, "overdue"]
    # amounts follow the income: the top income quartile owes more than the bottom one
    income = train["AMT_INCOME_TOTAL"].to_numpy()
    top, bottom = income >= np.quantile(income, 0.75), income <= np.quantile(income, 0.25)
    assert per_client["debt"][top].mean() > 2 * per_client["debt"][bottom].mean()


def test_the_bureau_is_drawn_apart_and_pinned():
    """The bureau has a stream of its own (the application frames are pinned above, unchanged by it); its own
    figures are pinned here (a change of the data must update them in the same commit)."""
    bureau = generate_portfolio(2_000, 300, seed=7).bureau
    drawn = {"rows": len(bureau), "active": int((bureau["CREDIT_ACTIVE"] == "Active").sum()),
             "debt": float(bureau["AMT_CREDIT_SUM_DEBT"].sum()), "overdue": int(bureau["CREDIT_DAY_OVERDUE"].sum())}
    assert drawn == pytest.approx(PINNED_BUREAU, rel=1e-9)
PINNED_BUREAU = {"rows": 10930, "active": 4138, "debt": 629785683.3, "overdue": 2414}
