"""Describe a credit dataset: where its files are, its id and target, and the business roles of columns.

The Home Credit application table has a built-in schema; any other CSV/Parquet dataset is
described by a TOML file (format in the README, example in `examples/`). Besides `[data]`, `[columns]`,
`[roles]` and `[sentinels]`, a TOML schema may give:

- a ``[protected]`` table naming the attributes the law protects: never model features unless
  ``use_as_feature = true``, always kept for the fairness figures::

      [protected]
      gender = "sex"                                                    # a column: never a feature
      age = { column = "age", unit = "years", bands = [25, 35, 45, 55, 65], use_as_feature = true }

- ``currency = "EUR"`` (top level, or in `[data]`): the ISO 4217 code of the dataset's amounts. Without it
  amounts show no currency (Home Credit states none).
- a ``[labels]`` table adding to or overriding the label dictionary (`scoring.labels`) for this dataset::

      [labels.loan_amount]
      fr = "Montant du prêt"
      en = "Loan amount"
      kind = "amount"            # days, years, months, ratio, amount, count, flag, category, score, ...

      [labels.home_ownership]
      fr = "Logement"
      en = "Home ownership"
      kind = "category"
      values = { RENT = { fr = "Locataire", en = "Renting" }, OWN = "Propriétaire" }

  Fields: fr, en, kind, unit, decimals, missing (values meaning "not given"), values (translations of
  category values, or another key whose translations apply). An entry overriding a built-in one keeps
  the fields it does not set. The labels reach the model's features (`FeatureSpec.fit`) and
  `DatasetSchema.label_dictionary()`.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from . import labels as _labels
from .errors import SchemaError

#: role -> the units it may be given in (first one is the default)
ROLE_UNITS: dict[str, tuple[str, ...]] = {
    "age": ("years", "negative_days"),
    "income": ("yearly", "monthly"),
    "debt": ("yearly", "monthly"),
    "credit_amount": ("currency",),
    "term": ("months", "years"),
    "annuity": ("yearly", "monthly"),
    "goods_price": ("currency",),
    "contract_type": ("category",),
    "employment": ("years", "negative_days"),
    "family": ("category",),
    "children": ("count",),
    # an applicant's other credits, when a per-application column holds them (a [debts] file sets them itself)
    "outstanding_debt": ("currency",),
    "active_credits": ("count",),
    "days_overdue": ("days",),
}
#: roles holding money: they must not be negative
AMOUNT_ROLES = ("income", "debt", "credit_amount", "annuity", "goods_price", "outstanding_debt")

#: the per-applicant aggregates of a debts file, added to each application as raw columns (model features):
#: aggregate -> column name
DEBT_COLUMNS = {"active_credits": "DEBTS_ACTIVE_CREDITS", "outstanding_debt": "DEBTS_OUTSTANDING",
                "debt_service": "DEBTS_MONTHLY_PAYMENTS", "max_days_overdue": "DEBTS_MAX_DAYS_OVERDUE"}


@dataclass(frozen=True)
class Debts:
    """A file of the applicants' other credits, one row per credit (Home Credit's ``bureau.csv``): the columns
    read from it. `active_value` is the `active` column's value of a running credit."""
    path: Path
    client: str
    outstanding: str
    monthly_payment: str
    payment_unit: str = "monthly"          # "monthly" | "yearly"
    active: str | None = None
    active_value: Any = None
    overdue_days: str | None = None

    @property
    def columns(self) -> dict[str, str]:
        """What each read column means -> its name in the file."""
        named = {"client": self.client, "outstanding": self.outstanding, "monthly_payment": self.monthly_payment,
                 "active": self.active, "overdue_days": self.overdue_days}
        return {k: v for k, v in named.items() if v}


def debt_roles(debts: Debts | None) -> dict[str, Role]:
    """The roles the aggregates of a debts file fill (none without one)."""
    if debts is None:
        return {}
    return {"debt": Role(DEBT_COLUMNS["debt_service"], "monthly"),
            "outstanding_debt": Role(DEBT_COLUMNS["outstanding_debt"], "currency"),
            "active_credits": Role(DEBT_COLUMNS["active_credits"], "count"),
            "days_overdue": Role(DEBT_COLUMNS["max_days_overdue"], "days")}


def bureau_debts(path: Path) -> Debts:
    """Home Credit's ``bureau.csv``: AMT_ANNUITY monthly, CREDIT_ACTIVE "Active" for a running credit."""
    return Debts(Path(path), client="SK_ID_CURR", outstanding="AMT_CREDIT_SUM_DEBT", monthly_payment="AMT_ANNUITY",
                 active="CREDIT_ACTIVE", active_value="Active", overdue_days="CREDIT_DAY_OVERDUE")


@dataclass(frozen=True)
class Role:
    column: str
    unit: str


@dataclass(frozen=True)
class Protected:
    """An attribute the law protects (EU Charter art. 21, ECOA): kept in the client files for fairness figures;
    a model feature only when `use_as_feature` says the bank may use it (age, with an actuarial justification,
    in many jurisdictions; never gender since the EU's Test-Achats ruling)."""
    column: str
    unit: str = "category"                 # "category", or for an age: "years" | "negative_days"
    bands: tuple[float, ...] = ()          # an age's band edges, in years (fairness figures by band)
    use_as_feature: bool = False

    def to_dict(self) -> dict:
        return {"column": self.column, "unit": self.unit, "bands": list(self.bands),
                "use_as_feature": self.use_as_feature}


AGE_BANDS = (25.0, 35.0, 45.0, 55.0, 65.0)


@dataclass(frozen=True)
class Bound:
    """The physically possible values of a numeric column: an application beyond them is refused (422)."""
    min: float | None = None
    max: float | None = None
    why: str = ""          # what the bounds mean, for the error message ("an age of 18 to 100 years")

    def to_dict(self) -> dict:
        return {"min": self.min, "max": self.max, "why": self.why}


YEAR_DAYS = 365.25


@dataclass(frozen=True)
class DatasetSchema:
    """What the rest of the system needs to know about a dataset."""

    name: str
    train_path: Path | None
    new_path: Path | None = None
    id_column: str | None = None
    target_column: str = "TARGET"
    positive: Any = 1
    roles: dict[str, Role] = field(default_factory=dict)
    #: column -> value meaning "missing" (e.g. DAYS_EMPLOYED = 365243); becomes NaN plus a flag feature
    sentinels: dict[str, float] = field(default_factory=dict)
    #: columns never used as features (free text, leakage)
    exclude: tuple[str, ...] = ()
    #: extra columns that must be >= 0 besides the amount roles
    non_negative: tuple[str, ...] = ()
    #: file with each applicant's true default probability (generated data only)
    true_probability_path: Path | None = None
    #: generated data only: when each application was made, and the later outcomes of new applications
    dates_path: Path | None = None
    outcomes_path: Path | None = None
    #: the dataset's [labels] table (checked, JSON-able): key -> {fr, en, kind, unit, ...}
    labels: dict[str, dict] = field(default_factory=dict)
    #: ISO 4217 code of the amounts; None: unknown, amounts show no currency
    currency: str | None = None
    #: protected attributes by name ("gender", "age"): fairness figures; features only if `use_as_feature`
    protected: dict[str, Protected] = field(default_factory=dict)
    #: column -> physically possible values (a sentinel of `sentinels` is accepted besides)
    bounds: dict[str, Bound] = field(default_factory=dict)
    #: a file of the applicants' other credits; its aggregates (`DEBT_COLUMNS`) join each application
    debts: Debts | None = None

    @property
    def excluded_protected(self) -> tuple[str, ...]:
        """Columns of protected attributes the model must not use."""
        return tuple(p.column for p in self.protected.values() if not p.use_as_feature)

    def label_dictionary(self) -> _labels.LabelDictionary:
        """The label dictionary with this dataset's labels and currency."""
        return _labels.current().with_overrides(self.labels, currency=self.currency)

    def role_column(self, role: str) -> str | None:
        r = self.roles.get(role)
        return r.column if r else None

    @property
    def amount_columns(self) -> tuple[str, ...]:
        cols = [self.roles[r].column for r in AMOUNT_ROLES if r in self.roles]
        return tuple(dict.fromkeys([*cols, *self.non_negative]))

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            "id": self.id_column,
            "target": self.target_column,
            "positive": self.positive,
            "roles": {k: {"column": v.column, "unit": v.unit} for k, v in self.roles.items()},
            "sentinels": dict(self.sentinels),
            "exclude": list(self.exclude),
            "non_negative": list(self.non_negative),
            "labels": dict(self.labels),
            "currency": self.currency,
            "protected": {k: v.to_dict() for k, v in self.protected.items()},
            "bounds": {k: v.to_dict() for k, v in self.bounds.items()},
        }

    @classmethod
    def from_dict(cls, d: dict) -> "DatasetSchema":
        """Rebuild the part of a schema a model card stores (no file paths)."""
        return cls(
            name=d["name"],
            train_path=None,
            id_column=d.get("id"),
            target_column=d["target"],
            positive=d["positive"],
            roles={k: Role(v["column"], v["unit"]) for k, v in d.get("roles", {}).items()},
            sentinels=dict(d.get("sentinels", {})),
            exclude=tuple(d.get("exclude", ())),
            non_negative=tuple(d.get("non_negative", ())),
            labels=dict(d.get("labels") or {}),
            currency=d.get("currency"),
            protected={k: Protected(v["column"], v.get("unit", "category"), tuple(v.get("bands", ())),
                                    bool(v.get("use_as_feature", False)))
                       for k, v in (d.get("protected") or {}).items()},
            bounds={k: Bound(v.get("min"), v.get("max"), v.get("why", "")) for k, v in (d.get("bounds") or {}).items()},
        )


def home_credit_schema(train: Path | None = None, new: Path | None = None,
                       true_probability: Path | None = None, name: str = "home_credit",
                       age_as_feature: bool = True, bureau: Path | None = None) -> DatasetSchema:
    """The public Home Credit `application_train.csv` / `application_test.csv` layout; `bureau`: its
    ``bureau.csv`` (the applicants' other credits), whose aggregates become features and the files' debts.

    Protected: gender (CODE_GENDER) is never a feature; age (DAYS_BIRTH) is one unless `age_as_feature` is
    False (`python -m scoring build --no-age-feature`, where the bank may not use age); both get fairness figures."""
    amounts = ("AMT_INCOME_TOTAL", "AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE")
    debts = None if bureau is None else bureau_debts(bureau)
    return DatasetSchema(
        name=name,
        train_path=train,
        new_path=new,
        id_column="SK_ID_CURR",
        target_column="TARGET",
        positive=1,
        roles={
            "age": Role("DAYS_BIRTH", "negative_days"),
            # both per month: see the module docstring (evidence in data/README.md)
            "income": Role("AMT_INCOME_TOTAL", "monthly"),
            "credit_amount": Role("AMT_CREDIT", "currency"),
            "annuity": Role("AMT_ANNUITY", "monthly"),
            "goods_price": Role("AMT_GOODS_PRICE", "currency"),
            "contract_type": Role("NAME_CONTRACT_TYPE", "category"),
            "employment": Role("DAYS_EMPLOYED", "negative_days"),
            "family": Role("NAME_FAMILY_STATUS", "category"),
            "children": Role("CNT_CHILDREN", "count"),
            **debt_roles(debts),
        },
        sentinels={"DAYS_EMPLOYED": 365243},
        non_negative=amounts,
        true_probability_path=true_probability,
        debts=debts,
        protected={"gender": Protected("CODE_GENDER"),
                   "age": Protected("DAYS_BIRTH", "negative_days", AGE_BANDS, use_as_feature=age_as_feature)},
        bounds={**_home_credit_bounds(), **({} if debts is None else _debt_bounds())},
    )


def _debt_bounds() -> dict[str, Bound]:
    return {DEBT_COLUMNS["active_credits"]: Bound(0, None, "a number of credits"),
            DEBT_COLUMNS["outstanding_debt"]: Bound(0, None, "an amount owed"),
            DEBT_COLUMNS["debt_service"]: Bound(0, None, "monthly payments"),
            DEBT_COLUMNS["max_days_overdue"]: Bound(0, None, "a number of days")}


def _home_credit_bounds() -> dict[str, Bound]:
    """What a Home Credit application can physically hold: days counted back from the application (never in the
    future), an applicant of 18 to 100, scores and shares in [0, 1], counts >= 0, flags 0 or 1."""
    century = -100 * YEAR_DAYS
    bounds = {
        "DAYS_BIRTH": Bound(century, -18 * YEAR_DAYS, "days before the application: an age of 18 to 100 years"),
        "DAYS_EMPLOYED": Bound(-82 * YEAR_DAYS, 0, "days before the application (365243: not employed)"),
        "DAYS_REGISTRATION": Bound(century, 0, "days before the application, never in the future"),
        "DAYS_ID_PUBLISH": Bound(century, 0, "days before the application, never in the future"),
        "DAYS_LAST_PHONE_CHANGE": Bound(century, 0, "days before the application, never in the future"),
        "OWN_CAR_AGE": Bound(0, 100, "a car's age in years"),
        "CNT_CHILDREN": Bound(0, 30, "a number of children"),
        "CNT_FAM_MEMBERS": Bound(1, 40, "a number of family members, the applicant included"),
        "REGION_RATING_CLIENT": Bound(1, 3, "a rating of 1 to 3"),
        "REGION_RATING_CLIENT_W_CITY": Bound(1, 3, "a rating of 1 to 3"),
        "HOUR_APPR_PROCESS_START": Bound(0, 23, "an hour of the day"),
        "REGION_POPULATION_RELATIVE": Bound(0, 1, "a share of the population"),
    }
    for name in ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"):
        bounds[name] = Bound(0, 1, "a normalised score")
    for name in ("OBS_30_CNT_SOCIAL_CIRCLE", "DEF_30_CNT_SOCIAL_CIRCLE", "OBS_60_CNT_SOCIAL_CIRCLE",
                 "DEF_60_CNT_SOCIAL_CIRCLE", *(f"AMT_REQ_CREDIT_BUREAU_{p}" for p in
                                              ("HOUR", "DAY", "WEEK", "MON", "QRT", "YEAR"))):
        bounds[name] = Bound(0, None, "a count")
    for name in ("FLAG_MOBIL", "FLAG_EMP_PHONE", "FLAG_WORK_PHONE", "FLAG_CONT_MOBILE", "FLAG_PHONE", "FLAG_EMAIL",
                 "REG_REGION_NOT_LIVE_REGION", "REG_REGION_NOT_WORK_REGION", "LIVE_REGION_NOT_WORK_REGION",
                 "REG_CITY_NOT_LIVE_CITY", "REG_CITY_NOT_WORK_CITY", "LIVE_CITY_NOT_WORK_CITY",
                 *(f"FLAG_DOCUMENT_{i}" for i in range(2, 22))):
        bounds[name] = Bound(0, 1, "a flag: 0 or 1")
    for base in ("APARTMENTS", "BASEMENTAREA", "YEARS_BEGINEXPLUATATION", "YEARS_BUILD", "COMMONAREA", "ELEVATORS",
                 "ENTRANCES", "FLOORSMAX", "FLOORSMIN", "LANDAREA", "LIVINGAPARTMENTS", "LIVINGAREA",
                 "NONLIVINGAPARTMENTS", "NONLIVINGAREA"):
        for suffix in ("AVG", "MODE", "MEDI"):
            bounds[f"{base}_{suffix}"] = Bound(0, 1, "a normalised building statistic")
    bounds["TOTALAREA_MODE"] = Bound(0, 1, "a normalised building statistic")
    return bounds


def _parse_role(role: str, spec: Any, source: Path) -> Role:
    if role not in ROLE_UNITS:
        raise SchemaError(f"{source}: unknown role {role!r} in [roles]; known roles: {', '.join(ROLE_UNITS)}")
    units = ROLE_UNITS[role]
    if isinstance(spec, str):
        return Role(spec, units[0])
    if isinstance(spec, dict) and isinstance(spec.get("column"), str):
        unit = spec.get("unit", units[0])
        if unit not in units:
            raise SchemaError(f"{source}: role {role!r} has unit {unit!r}; expected one of {', '.join(units)}")
        return Role(spec["column"], unit)
    raise SchemaError(f"{source}: role {role!r} must be a column name or {{ column = ..., unit = ... }}")


def _parse_protected(doc: dict, source: Path) -> dict[str, Protected]:
    out = {}
    for name, spec in doc.get("protected", {}).items():
        if isinstance(spec, str):
            spec = {"column": spec}
        if not isinstance(spec, dict) or not isinstance(spec.get("column"), str):
            raise SchemaError(f"{source}: [protected] {name} must be a column name or "
                              f"{{ column = ..., unit = ..., bands = [...], use_as_feature = ... }}")
        unit = spec.get("unit", "category")
        if unit not in ("category", "years", "negative_days"):
            raise SchemaError(f"{source}: [protected] {name} has unit {unit!r}; expected category, years or "
                              f"negative_days")
        bands = spec.get("bands", list(AGE_BANDS) if unit != "category" else [])
        if not all(isinstance(b, (int, float)) for b in bands) or list(bands) != sorted(bands):
            raise SchemaError(f"{source}: [protected] {name} bands must be increasing numbers of years")
        out[name] = Protected(spec["column"], unit, tuple(float(b) for b in bands),
                              bool(spec.get("use_as_feature", False)))
    return out


def _parse_currency(doc: dict, data: dict, source: Path) -> str | None:
    given = {doc.get("currency"), data.get("currency")} - {None}
    if len(given) > 1:
        raise SchemaError(f"{source}: currency is given twice, as {' and '.join(map(repr, sorted(given, key=str)))}")
    if not given:
        return None
    currency = given.pop()
    if not isinstance(currency, str) or not re.fullmatch(r"[A-Za-z]{3}", currency):
        raise SchemaError(f"{source}: currency must be an ISO 4217 code such as \"EUR\"; got {currency!r}")
    return currency.upper()


def _parse_debts(doc: dict, roles: dict[str, Role], base: Path, source: Path) -> Debts | None:
    spec = doc.get("debts")
    if spec is None:
        return None
    if not isinstance(spec, dict):
        raise SchemaError(f"{source}: [debts] must be a table (file, client, outstanding, monthly_payment, ...)")
    if "debt" in roles:
        raise SchemaError(f"{source}: give either a [debts] file or a `debt` role in [roles], not both")
    for key in ("file", "client", "outstanding", "monthly_payment"):
        if not isinstance(spec.get(key), str) or not spec[key]:
            raise SchemaError(f"{source}: [debts] needs {key} = \"<{'file name' if key == 'file' else 'column'}>\"")
    unit = spec.get("unit", "monthly")
    if unit not in ("monthly", "yearly"):
        raise SchemaError(f"{source}: [debts] unit must be monthly or yearly (of monthly_payment); got {unit!r}")
    active, active_value = spec.get("active"), None
    if isinstance(active, dict):
        if not isinstance(active.get("column"), str) or "value" not in active:
            raise SchemaError(f"{source}: [debts] active must be a column name or {{ column = ..., value = ... }}")
        active, active_value = active["column"], active["value"]
    elif active is not None and not isinstance(active, str):
        raise SchemaError(f"{source}: [debts] active must be a column name or {{ column = ..., value = ... }}")
    overdue = spec.get("overdue_days")
    if overdue is not None and not isinstance(overdue, str):
        raise SchemaError(f"{source}: [debts] overdue_days must be a column name")
    return Debts(base / spec["file"], spec["client"], spec["outstanding"], spec["monthly_payment"], unit,
                 active, active_value, overdue)


def load_schema(path: str | Path) -> DatasetSchema:
    """Read a TOML schema file; paths inside it are relative to the file."""
    path = Path(path).expanduser().resolve()
    if not path.exists():
        raise SchemaError(f"schema file {path} does not exist")
    try:
        doc = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise SchemaError(f"{path} is not valid TOML: {exc}") from exc
    data, columns = doc.get("data", {}), doc.get("columns", {})
    if "train" not in data:
        raise SchemaError(f"{path}: [data] needs train = \"<labelled applications file>\"")
    if "target" not in columns or "positive" not in columns:
        raise SchemaError(f"{path}: [columns] needs target = \"<column>\" and positive = <value meaning default>")
    base = path.parent
    roles = {name: _parse_role(name, spec, path) for name, spec in doc.get("roles", {}).items()}
    debts = _parse_debts(doc, roles, base, path)
    roles.update(debt_roles(debts))
    sentinels = doc.get("sentinels", {})
    if not all(isinstance(v, (int, float)) for v in sentinels.values()):
        raise SchemaError(f"{path}: [sentinels] values must be numbers")
    try:
        labels = _labels.check_overrides(doc.get("labels", {}))
    except ValueError as exc:
        raise SchemaError(f"{path}: {exc}") from exc
    return DatasetSchema(
        name=doc.get("name", path.stem),
        train_path=base / data["train"],
        new_path=(base / data["new"]) if data.get("new") else None,
        id_column=columns.get("id"),
        target_column=columns["target"],
        positive=columns["positive"],
        roles=roles,
        sentinels={k: float(v) for k, v in sentinels.items()},
        exclude=tuple(columns.get("exclude", ())),
        non_negative=tuple(columns.get("non_negative", ())),
        labels=labels,
        currency=_parse_currency(doc, data, path),
        protected=_parse_protected(doc, path),
        debts=debts,
    )
