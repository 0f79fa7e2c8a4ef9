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
