"""Feature engineering: from raw application columns to the model's float matrix.

One `FeatureSpec`, fitted on the labelled data and saved in the model card, turns either a
DataFrame (batch) or one application given as a mapping (API, advisor input) into the same
NumPy layout, so the hot path never builds a pandas object.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from .labels import feature_labels
from .schema import DatasetSchema

DAYS_PER_YEAR = 365.25
MAX_CATEGORIES = 200  # more distinct strings than this is free text or an identifier, not a category


@dataclass(frozen=True)
class Feature:
    name: str
    kind: str                 # "numeric" | "categorical" | "flag" | "ratio"
    label: str                # English business label
    label_fr: str
    source: str | None = None  # the raw column it comes from, when there is one
    categories: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        d = {"name": self.name, "kind": self.kind, "label": self.label, "label_fr": self.label_fr, "source": self.source}
        if self.categories:
            d["categories"] = list(self.categories)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "Feature":
        return cls(d["name"], d["kind"], d["label"], d["label_fr"], d.get("source"), tuple(d.get("categories", ())))


def _yearly(values: np.ndarray, unit: str) -> np.ndarray:
    return values * 12.0 if unit == "monthly" else values


def _scalar_flag(v: float, sentinel: float) -> float:
    return 1.0 if v == sentinel else 0.0


def _scalar_drop(v: float, sentinel: float) -> float:
    return math.nan if v == sentinel else v


def _scalar_div(a: float, b: float) -> float:  # NumPy gives +-inf or NaN for b == 0: NaN in the output either way
    return a / b if b != 0 else math.nan


@dataclass(frozen=True)
class FeatureSpec:
    schema: DatasetSchema
    raw_columns: tuple[str, ...]          # what an application may contain
    features: tuple[Feature, ...]         # the model's inputs, in order
    _index: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        self._index.update({f.name: i for i, f in enumerate(self.features)})
        self._index["__cat__"] = {f.source: {c: i for i, c in enumerate(f.categories)}
                                  for f in self.features if f.kind == "categorical"}

    # ---------------------------------------------------------------- fitting
    @classmethod
    def fit(cls, schema: DatasetSchema, train: pd.DataFrame) -> "FeatureSpec":
        features: list[Feature] = []
        kept: list[str] = []
        renamed = {}
        for role, new_name in (("age", "AGE_YEARS"), ("employment", "EMPLOYMENT_YEARS")):
            r = schema.roles.get(role)
            if r is not None:
                renamed[r.column] = new_name
        protected = set(schema.excluded_protected)
        for column in train.columns:
            if column in protected:  # kept in the client files for fairness figures, never a model input
                continue
            values = train[column]
            name = renamed.get(column, column)
            en, fr = feature_labels(name, schema.labels)
            if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                features.append(Feature(name, "numeric", en, fr, column))
                kept.append(column)
            else:
                counts = values.dropna().astype(str).value_counts()
                if len(counts) > MAX_CATEGORIES or len(counts) == 0:
                    continue
                features.append(Feature(name, "categorical", en, fr, column, tuple(counts.index)))
                kept.append(column)
        for column in schema.sentinels:
            name = f"{column}_MISSING"
            en, fr = feature_labels(name, schema.labels)
            features.append(Feature(name, "flag", en, fr, column))
        for name in cls._ratio_names(schema):
            en, fr = feature_labels(name, schema.labels)
            features.append(Feature(name, "ratio", en, fr))
        return cls(schema, tuple(kept), tuple(features))

    @staticmethod
    def _ratio_names(schema: DatasetSchema) -> list[str]:
        has = schema.roles.__contains__
        names = []
        if has("credit_amount") and has("income"):
            names.append("CREDIT_INCOME_RATIO")
        if has("annuity") and has("income"):
            names.append("ANNUITY_INCOME_RATIO")
        if has("credit_amount") and has("annuity") and not has("term"):
            names.append("CREDIT_TERM_MONTHS")
        if has("credit_amount") and has("goods_price"):
            names.append("CREDIT_GOODS_RATIO")
        return names

    # ---------------------------------------------------------------- transforming
    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    @property
    def feature_types(self) -> list[str]:
        """XGBoost feature types: 'c' for categorical codes, 'q' otherwise."""
        return ["c" if f.kind == "categorical" else "q" for f in self.features]

    def index(self, name: str) -> int:
        return self._index[name]

    def transform_frame(self, frame: pd.DataFrame) -> np.ndarray:
        """Batch path: raw DataFrame -> float32 matrix (n, p)."""
        codes = self._index["__cat__"]
        cols: dict[str, np.ndarray] = {}
        for column in self.raw_columns:
            values = frame[column]
            if column in codes:
                text = values.astype(object).where(values.isna(), values.astype(str))
                c = pd.Index(list(codes[column])).get_indexer(text).astype(np.float64)
                c[c < 0] = np.nan
                cols[column] = c
            elif pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
                cols[column] = values.to_numpy(dtype=np.float64, na_value=np.nan)
        return self._assemble(cols, len(frame))

    def transform_record(self, record: Mapping[str, Any], checked: bool = False) -> np.ndarray:
        """One application as a mapping raw column -> value (missing keys are missing values).

        The same (1, p) float32 row as `transform_frame` gives for a one-row frame of the same data,
        computed with Python floats (the same IEEE double arithmetic) rather than NumPy operations on
        length-1 arrays, which cost ~10x more for a single application.
        The application is validated by `scoring.application` (`InvalidApplicationError` naming the field),
        unless `checked=True`: validated by it already (as `Scorer.score_record` and the API do).
        """
        if not checked:
            record = self.applications.validate(record)
        return self._assemble_record(self._checked_values(record))

    def transform_records(self, records: Sequence[Mapping[str, Any]], checked: bool = False) -> np.ndarray:
        """Several applications (mappings, as `transform_record`) -> float32 matrix (n, p), through the batch path
        (`transform_frame`, as the build scores the portfolio; a frame from the records costs less than gathering
        their columns in Python, measured).

        Validated as `transform_record` does, unless `checked=True`; a bad field raises `InvalidApplicationError`
        naming the row and the field (`2.AMT_CREDIT`)."""
        if not checked:
            records = self.applications.validate_many(records)
        return self.transform_frame(pd.DataFrame(records, columns=list(self.raw_columns)))

    @property
    def applications(self):
        """The validator of applications for this spec (`scoring.application.Applications`), made once."""
        validator = self._index.get("__applications__")
        if validator is None:
            from .application import Applications  # it builds its pydantic type from this module's FeatureSpec

            validator = self._index["__applications__"] = Applications(self)
        return validator

    def _checked_values(self, record: Mapping[str, Any]) -> dict[str, float]:
        """The columns of an application validated already as floats: numbers are floats (pydantic's strict float
        gives floats for integers too), categories known labels (made codes); None becomes NaN."""
        values = dict(record)
        for column, codes in self._index["__cat__"].items():
            v = values.get(column)
            if v is not None:
                values[column] = float(codes[v])
        if None in values.values():
            nan = math.nan
            for column, v in values.items():
                if v is None:
                    values[column] = nan  # an existing key: the dict does not change size while iterated
        return values

    def _derive(self, cols: dict, missing, flag, drop, div) -> tuple[dict, dict]:
        """Sentinel flags, years and ratios, the same steps for arrays (batch) and Python floats (one record).

        `flag(v, sentinel)`, `drop(v, sentinel)` and `div(a, b)` are the array or scalar operations; `cols` is
        updated in place (sentinels become missing, AGE_YEARS and EMPLOYMENT_YEARS are added)."""
        schema = self.schema
        flags = {}
        for column, sentinel in schema.sentinels.items():
            v = cols.get(column, missing)
            flags[f"{column}_MISSING"] = flag(v, sentinel)
            cols[column] = drop(v, sentinel)
        for role, feature in (("age", "AGE_YEARS"), ("employment", "EMPLOYMENT_YEARS")):
            r = schema.roles.get(role)
            if r is not None and r.column in cols:
                v = cols[r.column]
                cols[feature] = -v / DAYS_PER_YEAR if r.unit == "negative_days" else v

        def role(name):
            r = schema.roles.get(name)
            return (cols.get(r.column, missing) if r.column else missing, r.unit) if r else (missing, "")

        income = _yearly(*role("income"))
        annuity = _yearly(*role("annuity"))
        credit, _ = role("credit_amount")
        goods, _ = role("goods_price")
        periods_per_year = 12.0 if schema.roles.get("annuity") and schema.roles["annuity"].unit == "monthly" else 1.0
        ratios = {
            "CREDIT_INCOME_RATIO": div(credit, income),
            "ANNUITY_INCOME_RATIO": div(annuity, income),
            "CREDIT_TERM_MONTHS": div(credit, annuity / periods_per_year) * (12.0 / periods_per_year),
            "CREDIT_GOODS_RATIO": div(credit, goods),
        }
        return flags, ratios

    def _assemble(self, cols: dict[str, np.ndarray], n: int) -> np.ndarray:
        missing = np.full(n, np.nan)
        with np.errstate(divide="ignore", invalid="ignore"):  # x / 0: inf or NaN, made NaN below
            flags, ratios = self._derive(cols, missing, lambda v, s: (v == s).astype(np.float64),
                                         lambda v, s: np.where(v == s, np.nan, v), np.divide)
        out = np.empty((n, len(self.features)), dtype=np.float32)
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, made NaN below
            for i, f in enumerate(self.features):
                if f.kind == "flag":
                    v = flags[f.name]
                elif f.kind == "ratio":
                    v = ratios[f.name]
                else:
                    v = cols.get(f.name, cols.get(f.source, missing))
                out[:, i] = v
        out[~np.isfinite(out)] = np.nan
        return out

    def _assemble_record(self, cols: dict[str, float]) -> np.ndarray:
        """`_assemble` for one application, on Python floats (~10x faster than length-1 arrays)."""
        nan = math.nan
        flags, ratios = self._derive(cols, nan, _scalar_flag, _scalar_drop, _scalar_div)
        missing, fallbacks, row_of = self._record_plan()
        values = missing.copy()  # every feature's name -> NaN
        values.update(cols)      # the columns sent (and AGE_YEARS, EMPLOYMENT_YEARS when derived)
        for name, source in fallbacks:  # a feature named apart from its column, when not derived above
            if name not in cols:
                values[name] = cols.get(source, nan)
        values.update(flags)
        values.update(ratios)
        with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: inf, made NaN below, as in `_assemble`
            out = np.array(row_of(values), dtype=np.float32).reshape(1, -1)  # each double rounded once, as by astype
        out[~np.isfinite(out)] = np.nan
        return out

    def _record_plan(self) -> tuple[dict[str, float], tuple[tuple[str, str], ...], Callable]:
        """What `_assemble_record` reads: every feature's name -> NaN; (name, source) of the features read from a
        column of another name (`cols[name]`, else `cols[source]`, as in `_assemble`); a getter of the row, in
        feature order, from a mapping of feature names (one C call instead of a Python loop)."""
        plan = self._index.get("__plan__")
        if plan is None:
            names = [f.name for f in self.features]
            plan = self._index["__plan__"] = (
                dict.fromkeys(names, math.nan),
                tuple((f.name, f.source) for f in self.features
                      if f.kind not in ("flag", "ratio") and f.source and f.source != f.name),
                operator.itemgetter(*names))  # one feature: a scalar, which reshape(1, -1) makes a row as well
        return plan

    # ---------------------------------------------------------------- persistence
    def to_dict(self) -> dict:
        return {"schema": self.schema.to_dict(), "raw_columns": list(self.raw_columns),
                "features": [f.to_dict() for f in self.features]}

    @classmethod
    def from_dict(cls, d: dict) -> "FeatureSpec":
        return cls(DatasetSchema.from_dict(d["schema"]), tuple(d["raw_columns"]),
                   tuple(Feature.from_dict(f) for f in d["features"]))
