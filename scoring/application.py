"""The application a caller sends for scoring, as one pydantic type built from the feature spec: the only
validator of applications, whether they come from the API (FastAPI validates the body with it), a notebook
or the dashboard (`Scorer.score_record` validates with it). Also readable messages for its errors, and
synthetic examples for the API's documentation.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Mapping, Optional, Sequence, Union

from annotated_types import Ge, Le
from pydantic import AllowInfNan, ConfigDict, Field, Strict, TypeAdapter, ValidationError
from typing_extensions import TypedDict  # pydantic needs typing_extensions' TypedDict before Python 3.12

from .contracts import FLOAT32_MAX
from .errors import InvalidApplicationError
from .features import FeatureSpec

_NOT_A_MAPPING = "must be a mapping (a JSON object) of column name to value"
_SHOWN_CATEGORIES = 12


def application_type(spec: FeatureSpec) -> type:
    """The `Application` TypedDict: every raw column of `spec`, all optional (a missing field is a missing value),
    no other field. Numbers are strict (no text, no booleans), finite, within float32, amounts >= 0; categories
    are the labels seen in training.

    A TypedDict rather than a model: a validated application is a plain dict of the columns sent."""
    categories = {f.source: f.categories for f in spec.features if f.kind == "categorical" and f.source}
    described = {f.source: f for f in spec.features if f.source}
    amounts = set(spec.schema.amount_columns)
    bounds, sentinels = spec.schema.bounds, spec.schema.sentinels
    fields: dict[str, Any] = {}
    for column in spec.raw_columns:
        f = described.get(column)
        description = f"{f.label} ({f.label_fr})" if f else column
        if column in categories:
            kind: Any = Literal[tuple(categories[column])]  # type: ignore[valid-type]
        else:
            low, high = (0 if column in amounts else -FLOAT32_MAX), FLOAT32_MAX
            bound = bounds.get(column)
            if bound is not None:  # what the column can physically hold, from the schema
                low = max(low, bound.min) if bound.min is not None else low
                high = min(high, bound.max) if bound.max is not None else high
                description += f"; {bound.why}" if bound.why else ""
            kind = Annotated[float, Strict(), AllowInfNan(False), Ge(low), Le(high)]
            if column in sentinels and not low <= sentinels[column] <= high:  # e.g. DAYS_EMPLOYED = 365243
                kind = Union[kind, Literal[int(sentinels[column])]]
                description += f"; {sentinels[column]:g} means not given"
            description += "; an amount, >= 0" if column in amounts else ""
        fields[column] = Annotated[Optional[kind], Field(description=description)]
    for name, attribute in spec.schema.protected.items():
        if attribute.column in fields:
            continue  # a protected attribute the model may use (e.g. age): validated as a feature above
        kind = str if attribute.unit == "category" else Annotated[float, Strict(), AllowInfNan(False)]
        fields[attribute.column] = Annotated[Optional[kind], Field(
            description=f"protected attribute ({name}): accepted and kept for fairness figures, never used by the "
                        f"model")]
    application = TypedDict("Application", fields, total=False)  # type: ignore[misc]
    application.__pydantic_config__ = ConfigDict(extra="forbid", title="Application")  # type: ignore[attr-defined]
    return application


class Applications:
    """Validation of applications against `application_type(spec)`, with errors a caller can act on.

    `validate` and `validate_many` raise `InvalidApplicationError` naming the field (`AMT_CREDIT`, or
    `3.AMT_CREDIT` for the fourth application of a batch); `reason` words one pydantic error the same way,
    for the API's 422 answers."""

    def __init__(self, spec: FeatureSpec):
        self.spec = spec
        self.type = application_type(spec)
        self._one = TypeAdapter(self.type)
        self._many = TypeAdapter(list[self.type])
        self._categories = {f.source: f.categories for f in spec.features if f.kind == "categorical" and f.source}
        self._fields = frozenset(self.type.__annotations__)

    def validate(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """The application as a dict of the columns sent: numbers as floats, categories as their labels."""
        try:
            return self._one.validate_python(record)
        except ValidationError as exc:
            raise self._error(exc.errors(include_url=False)[0]) from None

    def validate_many(self, records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
        try:
            return self._many.validate_python(records)
        except ValidationError as exc:
            raise self._error(exc.errors(include_url=False)[0]) from None

    def field_loc(self, loc) -> list:
        """`loc` of a pydantic error up to the application's field: without the member of a union that pydantic
        appends (`DAYS_EMPLOYED`, not `DAYS_EMPLOYED.constrained-float`)."""
        out = []
        for part in loc:
            out.append(part)
            if isinstance(part, str) and part in self._fields:
                break
        return out

    def _error(self, error: dict) -> InvalidApplicationError:
        loc = [str(p) for p in self.field_loc(error["loc"])]  # (column,) or, in a batch, (index, column)
        if error["type"] == "list_type" and not loc:
            return InvalidApplicationError("applications", "must be a list of applications")
        if error["type"] == "dict_type":  # the application itself, or a row of a batch, is not a mapping
            loc.append("application")
        return InvalidApplicationError(".".join(loc), self.reason(error))

    def reason(self, error: dict) -> str:
        """What is wrong, in words a caller can act on, for a pydantic error on an application (or pydantic's own
        message for any other error)."""
        kind, ctx, value = error["type"], error.get("ctx") or {}, error.get("input")
        loc = self.field_loc(error.get("loc") or ())
        column = loc[-1] if loc else None
        if kind == "extra_forbidden":
            return "unknown field; expected one of the application's columns"
        if kind == "dict_type":
            return _NOT_A_MAPPING
        if kind == "float_type":
            return f"must be a number, got {type(value).__name__}"
        if kind == "finite_number":
            return "must be a finite number (NaN and infinity are not accepted)"
        bound = self.spec.schema.bounds.get(column) if isinstance(column, str) else None
        if kind in ("greater_than_equal", "less_than_equal", "literal_error") and bound is not None:
            span = " to ".join(f"{b:g}" for b in (bound.min, bound.max) if b is not None)
            if bound.min is None or bound.max is None:
                span = f">= {bound.min:g}" if bound.max is None else f"<= {bound.max:g}"
            return f"is out of bounds: {bound.why} ({span}), got {value}"
        if kind == "greater_than_equal" and ctx.get("ge") == 0:
            return f"is an amount and cannot be negative (got {value})"
        if kind in ("greater_than_equal", "less_than_equal"):
            return f"is out of range (the model works in 32-bit floats, max {FLOAT32_MAX:.1e})"
        if kind == "literal_error" and column in self._categories:
            if not isinstance(value, str):
                return f"must be a text category, got {type(value).__name__}"
            allowed = ", ".join(self._categories[column][:_SHOWN_CATEGORIES])
            more = len(self._categories[column]) - _SHOWN_CATEGORIES
            return f"unknown category {value!r}; expected one of: {allowed}" + (f" (and {more} more)" if more > 0
                                                                               else "")
        return error["msg"]

    def examples(self, reference: dict | None) -> dict[str, dict[str, Any]]:
        """Synthetic applications for the API's documentation, never a real client's: the training median of
        each numeric column (from `reference`, the model card's reference statistics) and the most frequent
        category."""
        spec = self.spec
        typical: dict[str, Any] = {}
        for j, f in enumerate(spec.features):
            if f.source is None or f.source != f.name or f.kind not in ("numeric", "categorical"):
                continue  # derived features (ratios, flags, ages in years) are not what a caller sends
            if f.kind == "categorical":
                typical[f.source] = f.categories[0]  # categories are stored most frequent first
                continue
            edges = reference["features"][j]["edges"] if reference else []
            if edges:  # training deciles: the middle one is the median
                typical[f.source] = float(f"{edges[len(edges) // 2]:.6g}")
        typical = self._one.validate_python(typical)  # an example the API would refuse is a bug
        amounts = set(spec.schema.amount_columns)
        return {
            "typical": {"summary": "a typical application (training medians, most frequent categories)",
                        "value": typical},
            "amounts only": {"summary": "only the amounts: the model handles missing values",
                             "value": {k: v for k, v in typical.items() if k in amounts}},
        }
