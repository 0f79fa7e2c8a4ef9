"""Dataset schemas: the TOML format, and the errors a user gets for data that does not match."""

from pathlib import Path

import pandas as pd
import pytest

from scoring.dataset import load_dataset
from scoring.errors import SchemaError
from scoring.schema import load_schema

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "loans" / "loans.toml"


def write(tmp_path: Path, text: str, frame: pd.DataFrame | None = None) -> Path:
    if frame is not None:
        frame.to_csv(tmp_path / "loans.csv", index=False)
    path = tmp_path / "schema.toml"
    path.write_text(text)
    return path


def example_frame() -> pd.DataFrame:
    return pd.read_csv(EXAMPLE.parent / "loans.csv")


def test_example_schema_roles_and_units():
    schema = load_schema(EXAMPLE)
    assert schema.id_column == "loan_id"
    assert schema.positive == "charged_off"
    assert schema.roles["age"].unit == "years"
    assert schema.roles["income"].unit == "monthly"
    assert schema.role_column("credit_amount") == "loan_amount"
    assert "goods_price" not in schema.roles
    data = load_dataset(schema)
    assert len(data.train) == 1500 and len(data.new) == 300
    assert set(data.target) == {0, 1}
    assert "loan_id" not in data.train.columns and "status" not in data.train.columns


def test_absent_column_is_named_with_its_file(tmp_path):
    text = EXAMPLE.read_text().replace('credit_amount = "loan_amount"', 'credit_amount = "principal"')
    text = text.replace('"loans.csv"', f'"{EXAMPLE.parent / "loans.csv"}"').replace('"loans_new.csv"', '""')
    with pytest.raises(SchemaError, match=r"column principal missing from .*loans\.csv"):
        load_dataset(load_schema(write(tmp_path, text)))


def test_target_with_undeclared_values(tmp_path):
    frame = example_frame()
    frame.loc[:10, "status"] = "late"
    schema = write(tmp_path, '[data]\ntrain = "loans.csv"\n[columns]\ntarget = "status"\npositive = "charged_off"\n', frame)
    with pytest.raises(SchemaError, match="exactly two values.*late"):
        load_dataset(load_schema(schema))


def test_positive_value_never_seen(tmp_path):
    schema = write(tmp_path, '[data]\ntrain = "loans.csv"\n[columns]\ntarget = "status"\npositive = "default"\n',
                   example_frame())
    with pytest.raises(SchemaError, match="never takes the declared positive value 'default'"):
        load_dataset(load_schema(schema))


def test_numeric_target_and_row_number_ids(tmp_path):
    frame = example_frame().drop(columns="loan_id")
    frame["status"] = (frame["status"] == "charged_off").astype(int)
    schema = load_schema(write(tmp_path, '[data]\ntrain = "loans.csv"\n[columns]\ntarget = "status"\npositive = 1\n', frame))
    data = load_dataset(schema)
    assert data.train_ids[0] == 1 and data.train_ids[-1] == len(frame)
    assert data.target.sum() == frame["status"].sum()


@pytest.mark.parametrize("text, message", [
    ("[data]\n[columns]\ntarget='y'\npositive=1\n", "needs train"),
    ("[data]\ntrain='loans.csv'\n[columns]\ntarget='y'\n", "needs target"),
    ("[data]\ntrain='loans.csv'\n[columns]\ntarget='y'\npositive=1\n[roles]\nage={column='a', unit='months'}\n",
     "unit 'months'"),
    ("[data]\ntrain='loans.csv'\n[columns]\ntarget='y'\npositive=1\n[roles]\nsalary='s'\n", "unknown role 'salary'"),
    ("[data\ntrain=", "not valid TOML"),
])
def test_bad_schema_files(tmp_path, text, message):
    with pytest.raises(SchemaError, match=message):
        load_schema(write(tmp_path, text))


def test_missing_data_file(tmp_path):
    schema = write(tmp_path, "[data]\ntrain='nowhere.csv'\n[columns]\ntarget='y'\npositive=1\n")
    with pytest.raises(SchemaError, match=r"nowhere\.csv does not exist"):
        load_dataset(load_schema(schema))


def test_protected_attributes_from_toml(tmp_path):
    from scoring.schema import load_schema

    (tmp_path / "d.csv").write_text("id,sex,age,x,y\n1,F,30,1.0,0\n")
    (tmp_path / "s.toml").write_text('[data]\ntrain = "d.csv"\n[columns]\ntarget = "y"\npositive = 1\n'
                                     '[protected]\nsex = "sex"\n'
                                     'age = { column = "age", unit = "years", bands = [30, 50], use_as_feature = true }\n')
    schema = load_schema(tmp_path / "s.toml")
    assert schema.excluded_protected == ("sex",)
    assert schema.protected["age"].bands == (30.0, 50.0) and schema.protected["age"].use_as_feature
    assert type(schema).from_dict(schema.to_dict()).protected == schema.protected
    (tmp_path / "bad.toml").write_text('[data]\ntrain = "d.csv"\n[columns]\ntarget = "y"\npositive = 1\n'
                                       '[protected]\nage = { column = "age", unit = "months" }\n')
    with pytest.raises(SchemaError, match="unit 'months'"):
        load_schema(tmp_path / "bad.toml")


# ------------------------------------------------------------------------------------------------ debts files
def debts_case(tmp_path: Path, debts_toml: str, credits: pd.DataFrame | None = None) -> Path:
    """The example's loans without their per-application `debt` role, and a file of other credits."""
    frame = example_frame().drop(columns="other_debts")
    frame.to_csv(tmp_path / "loans.csv", index=False)
    if credits is None:
        credits = pd.DataFrame({"loan_id": [1, 1, 1, 2, 2], "status": ["open", "open", "closed", "open", "closed"],
                                "balance": [1000.0, 500.0, 800.0, 250.0, None],
                                "installment": [100.0, None, 60.0, 25.0, 30.0], "days_late": [0, 12, 40, 3, 0]})
    credits.to_csv(tmp_path / "credits.csv", index=False)
    text = ('[data]\ntrain = "loans.csv"\n[columns]\nid = "loan_id"\ntarget = "status"\npositive = "charged_off"\n'
            '[roles]\nincome = { column = "income", unit = "monthly" }\ncredit_amount = "loan_amount"\n'
            'annuity = { column = "monthly_payment", unit = "monthly" }\n' + debts_toml)
    return write(tmp_path, text)


CREDITS_TOML = ('[debts]\nfile = "credits.csv"\nclient = "loan_id"\noutstanding = "balance"\n'
                'monthly_payment = "installment"\nactive = { column = "status", value = "open" }\n'
                'overdue_days = "days_late"\n')


def test_a_debts_file_gives_each_applicant_the_aggregates_of_their_running_credits(tmp_path):
    schema = load_schema(debts_case(tmp_path, CREDITS_TOML))
    assert schema.debts.client == "loan_id" and schema.debts.active_value == "open"
    assert schema.roles["debt"].column == "DEBTS_MONTHLY_PAYMENTS" and schema.roles["debt"].unit == "monthly"
    data = load_dataset(schema)
    first, second, third = (data.train.iloc[i] for i in range(3))
    # client 1: two running credits (the closed one left out), 1500 owed, 100 a month (a blank payment: none),
    # 12 days late at most among the running ones
    assert (first.DEBTS_ACTIVE_CREDITS, first.DEBTS_OUTSTANDING, first.DEBTS_MONTHLY_PAYMENTS,
            first.DEBTS_MAX_DAYS_OVERDUE) == (2, 1500, 100, 12)
    assert (second.DEBTS_ACTIVE_CREDITS, second.DEBTS_OUTSTANDING, second.DEBTS_MONTHLY_PAYMENTS) == (1, 250, 25)
    # an applicant the file does not list has no other credit
    assert (third.DEBTS_ACTIVE_CREDITS, third.DEBTS_OUTSTANDING, third.DEBTS_MONTHLY_PAYMENTS) == (0, 0, 0)


def test_yearly_payments_of_a_debts_file_are_made_monthly(tmp_path):
    schema = load_schema(debts_case(tmp_path, CREDITS_TOML + 'unit = "yearly"\n'))
    assert load_dataset(schema).train.iloc[0].DEBTS_MONTHLY_PAYMENTS == pytest.approx(100 / 12)


def test_a_debts_file_missing_a_column_is_refused_with_its_name(tmp_path):
    credits = pd.DataFrame({"loan_id": [1], "status": ["open"], "installment": [10.0], "days_late": [0]})
    schema = load_schema(debts_case(tmp_path, CREDITS_TOML, credits))
    named = r"column balance \(outstanding of the debts file\) missing from .*credits\.csv"
    with pytest.raises(SchemaError, match=named):
        load_dataset(schema)


@pytest.mark.parametrize("debts, message", [
    ('[debts]\nfile = "credits.csv"\nclient = "loan_id"\nmonthly_payment = "installment"\n', "needs outstanding"),
    (CREDITS_TOML + 'unit = "weekly"\n', "unit must be monthly or yearly"),
    (CREDITS_TOML.replace('active = { column = "status", value = "open" }', 'active = { value = "open" }'),
     "active must be a column name"),
])
def test_bad_debts_tables(tmp_path, debts, message):
    with pytest.raises(SchemaError, match=message):
        load_schema(debts_case(tmp_path, debts))


def test_an_active_flag_in_words_needs_its_value(tmp_path):
    """active = "status" alone: a 0/1 column; a column of words needs the word of a running credit."""
    schema = load_schema(debts_case(tmp_path, CREDITS_TOML.replace('{ column = "status", value = "open" }',
                                                                   '"status"')))
    with pytest.raises(SchemaError, match=r"column status \(active of the debts file\) .* holds text: name the value"):
        load_dataset(schema)


def test_debts_come_from_a_file_or_a_role_not_both(tmp_path):
    path = debts_case(tmp_path, CREDITS_TOML)
    path.write_text(path.read_text().replace("[roles]\n", '[roles]\ndebt = "other"\n'))
    with pytest.raises(SchemaError, match=r"either a \[debts\] file or a `debt` role"):
        load_schema(path)


def test_the_real_bureau_csv_beside_the_applications_is_used(tmp_path):
    """Home Credit's files as published: application_train.csv, application_test.csv and bureau.csv."""
    from scoring.dataset import default_schema
    from scoring.generator import generate_portfolio, write_portfolio

    portfolio = generate_portfolio(400, 60, seed=3)
    paths = write_portfolio(portfolio, tmp_path)
    schema = default_schema(tmp_path)
    assert schema.name == "home_credit" and schema.debts.path == paths["bureau"]
    data = load_dataset(schema)
    bureau = pd.read_csv(paths["bureau"])
    running = bureau[bureau.CREDIT_ACTIVE == "Active"]
    cid = int(running.SK_ID_CURR.iloc[0])
    mine = running[running.SK_ID_CURR == cid]
    row = data.train.iloc[int((data.train_ids == cid).argmax())] if cid in data.train_ids else \
        data.new.iloc[int((data.new_ids == cid).argmax())]
    assert row.DEBTS_ACTIVE_CREDITS == len(mine)
    assert row.DEBTS_OUTSTANDING == pytest.approx(mine.AMT_CREDIT_SUM_DEBT.sum())
    assert row.DEBTS_MONTHLY_PAYMENTS == pytest.approx(mine.AMT_ANNUITY.fillna(0).sum())
    assert row.DEBTS_MAX_DAYS_OVERDUE == mine.CREDIT_DAY_OVERDUE.max()
    # without bureau.csv: no debts, as before
    paths["bureau"].unlink()
    assert default_schema(tmp_path).debts is None and "debt" not in default_schema(tmp_path).roles
