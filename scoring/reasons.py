"""The principal reasons of a decision, in words an advisor can read to the client.

From the exact SHAP values of the model that scored the file: correlated features are grouped (the external
scores; the loan's amount, annuity, goods price, term and the ratios made of them; employment and its missing
flag) and their contributions summed, so that a group the model splits between near-copies is one reason, and
a tiny change of the application does not swap one copy for another. Protected attributes (age, gender) are
never a reason. Each reason is worded from a template with the client's value and their position among the
labelled clients ("Score externe 2 faible : 0,39, plus bas que 75 % des clients").
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

from .contracts import ACCEPTED, REFUSED, Reason
from .features import FeatureSpec
from .labels import NBSP, category_label, fmt_number, format_value, kind, label

MAX_REASONS = 4
MIN_CONTRIBUTION = 0.05   # log-odds: below this a group is no reason (noise of the trees; and a tiny change of
#                            the application moves contributions this small across the cut)
#: log-odds: two groups closer than this are tied, and a list of reasons does not end between tied groups (a tiny
#: change of the application would otherwise swap the last reason for the next). Measured on the generated
#: portfolio, amounts and income moved by +-0.1 % (952 pairs): floor 0.05 and no tie rule, 1 list in 952 changed;
#: ties of 0.01, 3; of 0.03, none. With the debts features (bureau table), 1000 pairs: ties of 0.03, 1 changed;
#: of 0.04, none; of 0.05, 2
TIE = 0.04
#: groups of correlated features, by role of their members (names of Home Credit features)
GROUPS = {
    "external_scores": ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3"),
    "loan": ("AMT_CREDIT", "AMT_ANNUITY", "AMT_GOODS_PRICE", "CREDIT_TERM_MONTHS", "CREDIT_INCOME_RATIO",
             "ANNUITY_INCOME_RATIO", "CREDIT_GOODS_RATIO"),
    "employment": ("EMPLOYMENT_YEARS", "DAYS_EMPLOYED", "DAYS_EMPLOYED_MISSING"),
    # the aggregates of the applicant's other credits (scoring.schema.DEBT_COLUMNS)
    "debts": ("DEBTS_ACTIVE_CREDITS", "DEBTS_OUTSTANDING", "DEBTS_MONTHLY_PAYMENTS", "DEBTS_MAX_DAYS_OVERDUE"),
}
_WORDS = {
    "fr": {"low": "faible", "high": "élevé", "lower": "plus bas que {} des clients",
           "higher": "plus élevé que {} des clients", "missing": "{} non renseigné"},
    "en": {"low": "low", "high": "high", "lower": "lower than {} of clients",
           "higher": "higher than {} of clients", "missing": "{} not given"},
}


def protected_features(spec: FeatureSpec) -> frozenset[str]:
    """Model features that are, or are made from, a protected attribute (e.g. AGE_YEARS from DAYS_BIRTH)."""
    columns = {p.column for p in spec.schema.protected.values()}
    return frozenset(f.name for f in spec.features if f.name in columns or f.source in columns)


def feature_groups(spec: FeatureSpec) -> list[tuple[int, ...]]:
    """The model's features as groups of indices (correlated ones together), protected features left out."""
    protected = protected_features(spec)
    grouped: dict[str, list[int]] = {}
    out: list[tuple[int, ...]] = []
    member = {name: g for g, names in GROUPS.items() for name in names}
    for j, f in enumerate(spec.features):
        if f.name in protected:
            continue
        g = member.get(f.name)
        if g is None:
            out.append((j,))
        else:
            grouped.setdefault(g, []).append(j)
    return out + [tuple(v) for v in grouped.values()]


def _percent(share: float, lang: str) -> str:
    number = fmt_number(share, lang, 0)
    return f"{number}{NBSP}%" if lang == "fr" else f"{number}%"


def word(spec: FeatureSpec, j: int, value: float, percentile: float | None, lang: str) -> str:
    """One feature of the client worded: its label, whether it is low or high, its value and position."""
    f = spec.features[j]
    words = _WORDS[lang]
    name = label(f.name, lang)
    sep = " : " if lang == "fr" else ": "
    if not math.isfinite(value):
        return words["missing"].format(name)
    if f.kind == "categorical":
        return f"{name}{sep}{category_label(f.source or f.name, f.categories[int(value)], lang)}"
    shown = format_value(f.name, value, lang)
    if f.kind == "flag" or percentile is None:
        return f"{name}{sep}{shown}"
    if kind(f.name) == "days":  # days before the application: the duration read is -value, so its order flips
        percentile = 100.0 - percentile
    if percentile < 50:
        level, position = words["low"], words["lower"].format(_percent(100.0 - percentile, lang))
    else:
        level, position = words["high"], words["higher"].format(_percent(percentile, lang))
    return f"{name} {level}{sep}{shown}, {position}"


def principal_reasons(spec: FeatureSpec, x: np.ndarray, shap_values: np.ndarray, decision: str, lang: str,
                      percentile: Callable[[str, float], float | None],
                      top: int = MAX_REASONS) -> tuple[Reason, ...]:
    """Up to `top` reasons: for a refusal, the groups that pushed the probability up most; for an acceptance,
    those that pushed it down most. `shap_values` are the features' SHAP values (no base value);
    `percentile(feature, value)` the share of labelled clients below `value`, in %."""
    if decision not in (ACCEPTED, REFUSED):
        raise ValueError(f"decision must be {ACCEPTED!r} or {REFUSED!r}, got {decision!r}")
    sign = 1.0 if decision == REFUSED else -1.0
    pushes = []
    for group in feature_groups(spec):
        total = float(sum(float(shap_values[j]) for j in group))
        if sign * total > 0:
            pushes.append((sign * total, group, total))
    pushes.sort(key=lambda t: -t[0])
    # a decision close to the threshold may have only small pushes: its largest one is still its reason
    scored = [t for t in pushes if t[0] >= MIN_CONTRIBUTION] or pushes[:1]
    n = min(top, len(scored))
    while TIE and 1 < n < len(scored) and scored[n - 1][0] - scored[n][0] < TIE:
        n -= 1
    reasons = []
    for _, group, total in scored[:n]:
        # the member that pushed most in the group's direction speaks for the group
        lead = max(group, key=lambda j: sign * float(shap_values[j]))
        value = float(x[lead])
        pct = percentile(spec.features[lead].name, value) if math.isfinite(value) else None
        reasons.append(Reason(word(spec, lead, value, pct, lang),
                              tuple(spec.features[j].name for j in group),
                              "risk" if total > 0 else "strength", total))
    return tuple(reasons)
