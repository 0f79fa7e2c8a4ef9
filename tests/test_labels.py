"""The label dictionary: every Home Credit column and category value in French, values as an advisor reads
them, and a dataset's own labels from its TOML schema."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring import labels
from scoring.dataset import load_dataset
from scoring.errors import SchemaError
from scoring.features import FeatureSpec
from scoring.generator import HOME_CREDIT_COLUMNS, generate_portfolio
from scoring.labels import (LABELS, NBSP, THIN, category_label, feature_labels, fmt_money, fmt_number, fmt_percent,
                            format_value, kind, label, unit)
from scoring.schema import DatasetSchema, home_credit_schema, load_schema
from scoring.store import ROLE_COLUMNS

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "loans" / "loans.toml"
ENGINEERED = ["AGE_YEARS", "EMPLOYMENT_YEARS", "CREDIT_INCOME_RATIO", "ANNUITY_INCOME_RATIO", "CREDIT_TERM_MONTHS",
              "CREDIT_GOODS_RATIO", "DAYS_EMPLOYED_MISSING", "EXT_SOURCE_1_MISSING", "OWN_CAR_AGE_MISSING"]


@pytest.fixture(scope="module")
def portfolio():
    return generate_portfolio(n_train=4000, n_new=500, seed=3)


def humanised(name: str) -> str:
    text = name.replace("_", " ").strip().lower()
    return text[:1].upper() + text[1:]


def test_every_generated_column_has_its_own_french_and_english_label(portfolio):
    assert list(portfolio.train.columns) == HOME_CREDIT_COLUMNS and len(HOME_CREDIT_COLUMNS) == 122
    for column in [*HOME_CREDIT_COLUMNS, *ENGINEERED, *ROLE_COLUMNS]:
        assert column in LABELS, column
        fr, en = label(column, "fr"), label(column, "en")
        assert fr not in (column, humanised(column)) and en != column, column
        assert fr != en, column
        assert kind(column) in labels.KINDS
    assert label("LANDAREA_MODE") == "Surface du terrain (mode de l'immeuble)"
    assert label("APARTMENTS_MEDI", "en") == "Apartment size (building median)"
    assert len({label(c) for c in HOME_CREDIT_COLUMNS}) == 122  # no two columns read the same


def test_feature_labels_keeps_its_contract():
    assert feature_labels("EXT_SOURCE_3") == ("External score 3", "Score externe 3")
    assert feature_labels("AGE_YEARS") == ("Age (years)", "Âge (ans)")
    assert feature_labels("AMT_CREDIT_MISSING") == ("Credit amount: not given", "Montant du crédit : non renseigné")
    assert feature_labels("some_new_column") == ("Some new column", "Some new column")
    # a dataset's own column named like a client-file column is not the client file's monthly income
    assert feature_labels("income") == ("Monthly income", "Revenu mensuel")
    assert feature_labels("income", {}) == ("Income", "Income")


def test_every_generated_category_value_is_translated(portfolio):
    frame = pd.concat([portfolio.train, portfolio.new])
    text_columns = [c for c in HOME_CREDIT_COLUMNS if not pd.api.types.is_numeric_dtype(frame[c])]
    assert {"NAME_CONTRACT_TYPE", "ORGANIZATION_TYPE", "WALLSMATERIAL_MODE"} <= set(text_columns)
    for column in text_columns:
        for value in frame[column].dropna().unique():
            assert LABELS.translates(column, value), (column, value)
            fr, en = category_label(column, value, "fr"), category_label(column, value, "en")
            assert fr and en, (column, value)
    # the 58 employer sectors, including the numbered ones never drawn in a small sample
    from scoring.generator import _ORG_NAMES
    assert len({*_ORG_NAMES, "XNA"}) == 58 and all(LABELS.translates("ORGANIZATION_TYPE", v) for v in _ORG_NAMES)


@pytest.mark.parametrize("column, value, fr, en", [
    ("NAME_CONTRACT_TYPE", "Cash loans", "Prêt personnel", "Cash loan"),
    ("CODE_GENDER", "F", "Femme", "Female"),
    ("FLAG_OWN_REALTY", "N", "Non", "No"),
    ("WEEKDAY_APPR_PROCESS_START", "WEDNESDAY", "Mercredi", "Wednesday"),
    ("ORGANIZATION_TYPE", "Business Entity Type 3", "Entreprise, type 3", "Business entity, type 3"),
    ("ORGANIZATION_TYPE", "Industry: type 5", "Industrie : type 5", "Industry: type 5"),
    ("ORGANIZATION_TYPE", "Trade: type 7", "Commerce : type 7", "Trade: type 7"),
    ("contract_type", "Revolving loans", "Crédit renouvelable", "Revolving loan"),   # client-file column
    ("NAME_CONTRACT_TYPE", "Leasing", "Leasing", "Leasing"),                          # unknown: as given
    ("NAME_FAMILY_STATUS", None, "non renseigné", "not given"),
])
def test_category_labels(column, value, fr, en):
    assert category_label(column, value, "fr") == fr
    assert category_label(column, value, "en") == en


@pytest.mark.parametrize("key, value, fr, en", [
    ("DAYS_BIRTH", -12000, f"32,9{NBSP}ans", f"32.9{NBSP}years"),
    ("DAYS_EMPLOYED", -400, f"1,1{NBSP}an", f"1.1{NBSP}years"),
    ("DAYS_LAST_PHONE_CHANGE", -757, f"25{NBSP}mois", f"25{NBSP}months"),
    ("AGE_YEARS", 43.04, f"43,0{NBSP}ans", f"43.0{NBSP}years"),
    ("CREDIT_TERM_MONTHS", 240.2, f"240{NBSP}mois", f"240{NBSP}months"),
    ("ANNUITY_INCOME_RATIO", 0.1834, f"18,3{NBSP}%", "18.3%"),
    ("debt_ratio", 0.35, f"35,0{NBSP}%", "35.0%"),
    ("AMT_CREDIT", 1234567.5, f"1{THIN}234{THIN}568", "1,234,568"),
    ("EXT_SOURCE_2", 0.56559, "0,57", "0.57"),
    ("FLAG_PHONE", 1, "Oui", "Yes"),
    ("FLAG_OWN_CAR", "N", "Non", "No"),
    ("NAME_EDUCATION_TYPE", "Higher education", "Études supérieures", "Higher education"),
    ("HOUR_APPR_PROCESS_START", 9, f"9{NBSP}h", "09:00"),
    ("CNT_CHILDREN", 2.0, "2", "2"),
    ("SK_ID_CURR", 100002, "100002", "100002"),
])
def test_values_read_as_an_advisor_reads_them(key, value, fr, en):
    assert format_value(key, value, "fr") == fr
    assert format_value(key, value, "en") == en


@pytest.mark.parametrize("value", [None, float("nan"), np.nan, pd.NA, np.float32("nan")])
def test_missing_values_read_not_given(value):
    assert format_value("AMT_ANNUITY", value) == "non renseigné"
    assert format_value("OCCUPATION_TYPE", value, "en") == "not given"
    assert format_value("DAYS_EMPLOYED", 365243) == "non renseigné"  # the Home Credit sentinel


def test_amounts_show_no_currency_unless_the_dataset_has_one():
    assert unit("AMT_CREDIT") is None
    assert "€" not in format_value("AMT_CREDIT", 500000) and "$" not in format_value("AMT_CREDIT", 500000, "en")
    assert format_value("AMT_CREDIT", 500000, "fr", currency="EUR") == f"500{THIN}000{NBSP}€"
    assert format_value("AMT_CREDIT", 500000, "en", currency="EUR") == "€500,000"
    eur = LABELS.with_overrides(currency="EUR")
    assert eur.unit("AMT_CREDIT") == "EUR" and eur.format_value("income", 42000, "fr") == f"42{THIN}000{NBSP}€"
    assert home_credit_schema().currency is None


def test_number_formats_moved_from_the_views():
    assert fmt_number(12345.678, "fr", 2) == f"12{THIN}345,68" and fmt_number(12345.678, "en", 2) == "12,345.68"
    assert fmt_number(-0.001, "fr", 1) == "0,0" and fmt_number(None) == "—"
    assert fmt_percent(0.123, "fr") == f"12,3{NBSP}%" and fmt_percent(0.123, "en") == "12.3%"
    assert fmt_money(12345, "fr") == f"12{THIN}345" and fmt_money(12345, "en") == "12,345"
    assert fmt_money(-12345, "fr", "EUR") == f"-12{THIN}345{NBSP}€" and fmt_money(12345, "en", "KZT") == f"KZT{NBSP}12,345"
    assert fmt_money(float("nan")) == "—"


def test_toml_labels_reach_the_dataset_features_and_dictionary():
    schema = load_schema(EXAMPLE)
    assert schema.currency == "EUR"
    words = schema.label_dictionary()
    assert words.label("loan_amount") == "Montant du prêt" and words.label("loan_amount", "en") == "Loan amount"
    assert words.format_value("loan_amount", 14000) == f"14{THIN}000{NBSP}€"
    assert words.format_value("home_ownership", "RENT") == "Locataire"
    assert words.format_value("home_ownership", "RENT", "en") == "Renting"
    assert feature_labels("loan_amount", schema.labels) == ("Loan amount", "Montant du prêt")
    assert label("loan_amount") == "Loan amount"            # other datasets are untouched
    # a model card keeps them
    again = DatasetSchema.from_dict(schema.to_dict())
    assert again.labels == schema.labels and again.currency == "EUR"
    # the model's features carry them
    data = load_dataset(schema)
    spec = FeatureSpec.fit(schema, data.train)
    by_name = {f.name: f for f in spec.features}
    assert by_name["loan_amount"].label_fr == "Montant du prêt"
    assert by_name["grade"].label == "Loan grade"
    assert by_name["income"].label_fr == "Income"            # the dataset's monthly income: not "Revenu annuel"


def test_an_override_keeps_what_it_does_not_set_and_register_applies_it(tmp_path):
    path = tmp_path / "schema.toml"
    path.write_text('currency = "usd"\n[data]\ntrain = "x.csv"\n[columns]\ntarget = "TARGET"\npositive = 1\n'
                    '[labels]\nAMT_CREDIT = "Montant emprunté"\nCODE_GENDER = { values = { XNA = "Inconnu" } }\n')
    schema = load_schema(path)
    words = schema.label_dictionary()
    assert words.label("AMT_CREDIT") == "Montant emprunté" and words.label("AMT_CREDIT", "en") == "Credit amount"
    assert words.kind("AMT_CREDIT") == "amount" and words.format_value("AMT_CREDIT", 10, "en") == "$10"
    assert words.category_label("CODE_GENDER", "XNA") == "Inconnu" and words.category_label("CODE_GENDER", "M") == "Homme"
    try:
        labels.register(schema.labels, schema.currency)
        assert label("AMT_CREDIT") == "Montant emprunté" and format_value("AMT_CREDIT", 10) == f"10{NBSP}$"
    finally:
        labels.reset()
    assert label("AMT_CREDIT") == "Montant du crédit"


@pytest.mark.parametrize("table, message", [
    ('[labels]\nx = { fr = "X", kind = "money" }\n', "kind 'money'"),
    ('[labels]\nx = { fr = "X", lable = "Y" }\n', "unknown field"),
    ('[labels]\nx = 3\n', "must be a table"),
    ('currency = "euro"\n', "ISO 4217"),
])
def test_bad_labels_are_schema_errors(tmp_path, table, message):
    path = tmp_path / "schema.toml"
    head, _, rest = table.partition("[labels]")
    path.write_text(head + '[data]\ntrain = "x.csv"\n[columns]\ntarget = "y"\npositive = 1\n'
                    + ("[labels]" + rest if rest else ""))
    with pytest.raises(SchemaError, match=message):
        load_schema(path)


def test_languages_are_checked():
    with pytest.raises(ValueError, match="language"):
        label("AMT_CREDIT", "de")
