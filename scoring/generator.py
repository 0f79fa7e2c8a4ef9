"""Synthetic Home Credit portfolio: a seeded, vectorised look-alike of the public
`application_train.csv` / `application_test.csv`, with each applicant's true default probability.

The real files cannot be downloaded on the project's machines, so this module makes data with the
same 122 columns (file order, dtypes, conventions such as negative ``DAYS_*`` and the
``DAYS_EMPLOYED = 365243`` sentinel) and marginals calibrated on the published per-column figures
in ``resources/home_credit_stats.json``.

How a row is made
-----------------
A few independent standard-normal factors drive each applicant: age, socio-economic status
(education, income, occupation, region), a credit-quality factor shared by the three external
scores, and a gender factor. Columns are monotone maps of noisy mixtures of those factors through
knots placed on the published quantiles (a Gaussian copula), or conditional draws whose category
frequencies are fitted back to the published counts. Building columns (``*_AVG/_MODE/_MEDI``) are
present for nested subsets of rows, one block's three columns always missing together.
``DAYS_EMPLOYED = 365243`` rows are exactly the ``ORGANIZATION_TYPE == "XNA"`` rows (pensioners,
a few unemployed; older; ``FLAG_EMP_PHONE = 0``). ``AMT_GOODS_PRICE`` is missing only for some
revolving loans. The region table (population, rating) is a fixed "country", the same for every seed.

The latent default risk (logit)
-------------------------------
``TRUE_DEFAULT_PROBABILITY = sigmoid(alpha + L)`` and ``TARGET ~ Bernoulli(TRUE_DEFAULT_PROBABILITY)``::

    L = 1.21 * ( - 0.32 * z(EXT_SOURCE_1) - 0.38 * z(EXT_SOURCE_2) - 0.45 * z(EXT_SOURCE_3)
                 + 0.03 * (43 - age_years) / 12                   younger = riskier
                 - 0.07 * (ln(1 + years_employed) - 1.6) / 0.75   shorter employment = riskier
                 + 0.05                                            instead, on DAYS_EMPLOYED = 365243 rows
                 + 0.10 * (ln(AMT_CREDIT / AMT_INCOME_TOTAL) - 1.2) / 0.7
                 + 0.10 * clip((AMT_ANNUITY / AMT_INCOME_TOTAL - 0.18) / 0.09, -2, 4)
                 + 0.22 * clip((AMT_CREDIT / AMT_GOODS_PRICE - 1.10) / 0.10, -3, 4)
                 + 0.55 * [CODE_GENDER == "M"]
                 + education: Lower secondary +0.30, Secondary 0, Incomplete higher -0.12,
                              Higher education -0.36, Academic degree -0.70
                 + 0.32 * (REGION_RATING_CLIENT_W_CITY - 2)
                 + 0.10 * (DAYS_ID_PUBLISH + 3000) / 1500          recent ID document = riskier
                 + 0.16 * (DAYS_LAST_PHONE_CHANGE + 960) / 830     recent phone change = riskier
                 + 0.12 * u )                                      u ~ N(0, 1), in no column

(``_RISK_WEIGHTS`` and ``_RISK_SCALE`` hold these figures.) ``z(EXT_SOURCE_k)`` standardises the
*underlying* score with the published mean and std: a score that is then hidden (missing) still
drives the risk, so missingness does not carry the signal away. Revolving loans use a credit/goods
ratio of 1. Age also acts through EXT_SOURCE_1, which leans on age (corr ~0.55) and on job
stability, so the total effect of being young is larger than its direct term; the sentinel rows
(older pensioners) default at ~5.5 % against ~8.7 % for the others. ``alpha`` is found by
bisection at generation time so that the mean probability over the labelled rows equals the real
default rate (8.07 %). With this scale the oracle ROC AUC (true probability against TARGET) is
about 0.80 and a gradient-boosting model on the columns reaches ~0.97 of it: the Bernoulli draw
keeps the problem as noisy as real credit data, the hidden EXT_SOURCE values and ``u`` are what
no model can recover.

Units and other credits
-----------------------
AMT_ANNUITY is a monthly payment and AMT_INCOME_TOTAL a monthly income (evidence in data/README.md): a cash
loan's annuity is its credit over a product term of 6 to 60 months (``CASH_TERMS``), a card's its minimum
payment. ``bureau`` lists each applicant's other credits like the public ``bureau.csv`` (``bureau_table``),
drawn from a stream of its own after the applications, from their latent risk and income.

New applications (drift)
------------------------
``new`` rows come from the same process in a later period: amounts (income, goods, credit, annuity)
+5 %, applicants about a year younger (so slightly fewer pensioners), more revolving loans (12.5 %
against 9.5 %), EXT_SOURCE_1 missing less often (42 % as in the real test file, against 56 %),
EXT_SOURCE_3 17.8 % missing, no ``CODE_GENDER == "XNA"``. Their default probability uses the
training ``alpha``. A drift monitor should notice the amounts, the contract mix and EXT_SOURCE_1.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from statistics import NormalDist
from typing import NamedTuple

import numpy as np
import pandas as pd

_RESOURCES = Path(__file__).parent / "resources"
_STATS: dict = json.loads((_RESOURCES / "home_credit_stats.json").read_text(encoding="utf-8"))

HOME_CREDIT_COLUMNS: list[str] = list(_STATS["columns_in_order"])
TRAIN_ROWS = 307_511
NEW_ROWS = 48_744

DAYS_EMPLOYED_SENTINEL = 365243
FIRST_ID = 100002
TARGET_RATE: float = float(_STATS["facts"]["target_rate"])

_NUM = _STATS["numeric_[nmiss,mean,std,min,p25,p50,p75,max]"]
_CAT = _STATS["categorical_counts"]
_FLAGS = _STATS["binary_flag_means"]
_REAL_ROWS = TRAIN_ROWS  # the real application_train.csv: denominator of the published counts

_ND = NormalDist()
_YEAR = 365.25


@dataclass(frozen=True)
class GeneratedPortfolio:
    """A generated portfolio: labelled history, new applications, and the truth behind both."""

    train: pd.DataFrame             # the 122 columns of application_train.csv, TARGET 0/1 int64
    new: pd.DataFrame               # the 121 columns of application_test.csv (no TARGET)
    true_probability: pd.DataFrame  # SK_ID_CURR, TRUE_DEFAULT_PROBABILITY: train rows then new rows
    bureau: pd.DataFrame | None = None  # the applicants' other credits, as bureau.csv (`BUREAU_COLUMNS`)


# --------------------------------------------------------------------------------------------
# Latent risk: weights in logit units, all multiplied by _RISK_SCALE (see the module docstring).
_RISK_WEIGHTS = {
    "EXT_SOURCE_1": -0.32,
    "EXT_SOURCE_2": -0.38,
    "EXT_SOURCE_3": -0.45,
    "young": 0.03,
    "employment": -0.07,
    "sentinel": 0.05,
    "credit_income": 0.10,
    "annuity_income": 0.10,
    "credit_goods": 0.22,
    "male": 0.55,
    "region_rating": 0.32,
    "id_publish": 0.10,
    "phone_change": 0.16,
    "unobserved": 0.12,
}
_EDUCATION_RISK = {
    "Lower secondary": 0.30,
    "Secondary / secondary special": 0.0,
    "Incomplete higher": -0.12,
    "Higher education": -0.36,
    "Academic degree": -0.70,
}
_RISK_SCALE = 1.21
# reference moments used to standardise the risk inputs (fixed: the same formula for every sample)
_ES_MEAN_SD = {k: (_NUM[k][1], _NUM[k][2]) for k in ("EXT_SOURCE_1", "EXT_SOURCE_2", "EXT_SOURCE_3")}


@dataclass(frozen=True)
class _Period:
    """What differs between the labelled history and the later new applications."""

    amount_factor: float = 1.0
    age_shift: float = 0.0  # added to the standard-normal age factor (negative = younger)
    revolving_share: float = _CAT["NAME_CONTRACT_TYPE"]["Revolving loans"] / _REAL_ROWS
    es1_missing: float = _NUM["EXT_SOURCE_1"][0] / _REAL_ROWS
    es3_missing: float = _NUM["EXT_SOURCE_3"][0] / _REAL_ROWS
    gender_xna_rate: float = _CAT["CODE_GENDER"]["XNA"] / _REAL_ROWS


_HISTORY = _Period()
_LATER = _Period(amount_factor=1.05, age_shift=-0.08, revolving_share=0.125,
                 es1_missing=0.421, es3_missing=0.178, gender_xna_rate=0.0)


# --------------------------------------------------------------------------------------------
# Small numerical helpers (NumPy only)

def _norm_cdf(x: np.ndarray) -> np.ndarray:
    """Standard normal CDF (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7)."""
    x = np.asarray(x, dtype=float)
    y = np.abs(x) / np.sqrt(2.0)
    t = 1.0 / (1.0 + 0.3275911 * y)
    poly = t * (0.254829592 + t * (-0.284496736 + t * (1.421413741 + t * (-1.453152027 + t * 1.061405429))))
    erf = 1.0 - poly * np.exp(-y * y)
    return 0.5 * (1.0 + np.sign(x) * erf)


def _threshold(rate: float) -> float:
    """z such that P(N(0,1) > z) = rate."""
    return _ND.inv_cdf(min(max(1.0 - rate, 1e-12), 1 - 1e-12))


def _mix(*terms: tuple[float, np.ndarray], rng: np.random.Generator, n: int) -> np.ndarray:
    """Weighted sum of standard normals topped up with fresh noise to unit variance."""
    out = np.zeros(n)
    used = 0.0
    for w, z in terms:
        out += w * z
        used += w * w
    if used < 1.0:
        out += np.sqrt(1.0 - used) * rng.standard_normal(n)
    return out


def _knots(z: np.ndarray, knots: list[tuple[float, float]], log: bool = False) -> np.ndarray:
    """Monotone map of a standard-normal score through (z, value) knots (clamped at the ends)."""
    zs = np.array([k[0] for k in knots])
    vs = np.array([k[1] for k in knots], dtype=float)
    if log:
        return np.exp(np.interp(z, zs, np.log(vs)))
    return np.interp(z, zs, vs)


def _choice(rng: np.random.Generator, weights, n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=float)
    cum = np.cumsum(p / p.sum())
    return np.minimum(np.searchsorted(cum, rng.random(n), side="right"), len(p) - 1)


def _tilted_choice(rng: np.random.Generator, weights, tilt: np.ndarray) -> np.ndarray:
    """Draw a category per row with row-specific log-odds offsets `tilt` (n x K), the base
    log-weights being refitted (iterative proportional fitting) so that the expected category
    frequencies over the rows still equal `weights`."""
    n, k = tilt.shape
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    target = np.asarray(weights, dtype=float)
    target = target / target.sum()
    base = np.log(np.maximum(target, 1e-300))
    for _ in range(10):
        logits = base + tilt
        logits -= logits.max(axis=1, keepdims=True)
        prob = np.exp(logits)
        prob /= prob.sum(axis=1, keepdims=True)
        base += np.log(target / np.maximum(prob.mean(axis=0), 1e-300))
    cum = np.cumsum(prob, axis=1)
    idx = (cum < rng.random(n)[:, None]).sum(axis=1)
    return np.minimum(idx, k - 1)


def _ordinal(score: np.ndarray, probs) -> np.ndarray:
    """Cut a standard-normal score into ordered categories with the given probabilities."""
    p = np.asarray(probs, dtype=float)
    cuts = np.cumsum(p / p.sum())[:-1]
    thresholds = np.array([_ND.inv_cdf(min(max(c, 1e-12), 1 - 1e-12)) for c in cuts])
    return np.searchsorted(thresholds, score)


def _labels(categories, idx: np.ndarray, missing: np.ndarray | None = None) -> np.ndarray:
    out = np.asarray(list(categories), dtype=object)[idx]
    if missing is not None:
        out[missing] = np.nan
    return out


def _with_nan(values: np.ndarray, missing: np.ndarray) -> np.ndarray:
    out = values.astype(float, copy=True)
    out[missing] = np.nan
    return out


def _counts(name: str) -> tuple[list[str], np.ndarray, float]:
    """Categories, their weights, and the missing rate of a categorical column."""
    counts = dict(_CAT[name])
    na = counts.pop("<NA>", 0)
    total = sum(counts.values()) + na
    return list(counts), np.array(list(counts.values()), dtype=float), na / total


def _missing_rate(name: str) -> float:
    return _NUM[name][0] / _REAL_ROWS


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


# --------------------------------------------------------------------------------------------
# Marginal shapes: (standard-normal z, value) knots on the published quantiles (p25 at z=-0.674,
# median at 0, p75 at +0.674), with tails reaching the published min/max near |z| = 3.7-4.9.
_Q = 0.6745
_AGE_KNOTS = [(-3.7, 7489), (-1.96, 8500), (-1.28, 10000), (-_Q, 12413), (0, 15750), (_Q, 19682), (1.28, 22600),
              (1.96, 24100), (3.7, 25229)]
_EMPLOYED_KNOTS = [(-3.9, 0), (-1.6, 280), (-_Q, 840), (0, 1830), (_Q, 3550), (1.28, 5400), (2.33, 9800),
                   (4.0, 17912)]
_REGISTRATION_KNOTS = [(-3.9, 0), (-1.6, 680), (-_Q, 2300), (0, 5350), (_Q, 9000), (1.6, 13200),
                       (2.6, 17000), (4.0, 24672)]
_ID_PUBLISH_KNOTS = [(-3.9, 0), (-1.4, 620), (-_Q, 1720), (0, 3254), (_Q, 4299), (1.6, 4900), (2.6, 5800),
                     (4.0, 7197)]
_PHONE_KNOTS = [(-3.9, 0), (-1.175, 0), (-_Q, 274), (0, 757), (_Q, 1570), (1.6, 2400), (2.6, 3200),
                (4.0, 4292)]
_INCOME_KNOTS = [(-4.0, 25650), (-2.0, 58500), (-_Q, 112500), (0, 147150), (_Q, 202500), (1.64, 315000),
                 (2.33, 450000), (3.1, 900000), (3.9, 2250000), (4.5, 9000000), (5.0, 117000000)]
_GOODS_KNOTS = [(-4.0, 40500), (-2.0, 90000), (-_Q, 265500), (0, 495000), (_Q, 729000), (1.64, 1125000),
                (2.33, 1575000), (3.1, 2475000), (4.2, 4050000)]
_CAR_AGE_KNOTS = [(-3.5, 0), (-1.5, 1), (-_Q, 5), (0, 9), (_Q, 15), (1.4, 21), (2.05, 28), (3.0, 40),
                  (4.0, 91)]
_ES_KNOTS = {
    "EXT_SOURCE_1": [(-3.9, 0.014568), (-1.96, 0.10), (-_Q, 0.334007), (0, 0.505998), (_Q, 0.675053),
                     (1.96, 0.895), (3.9, 0.962693)],
    "EXT_SOURCE_2": [(-4.2, 8.17e-08), (-1.96, 0.045), (-_Q, 0.392457), (0, 0.565961), (_Q, 0.663617),
                     (1.96, 0.775), (4.2, 0.855)],
    "EXT_SOURCE_3": [(-4.0, 0.000527), (-1.96, 0.085), (-_Q, 0.37065), (0, 0.535276), (_Q, 0.669057),
                     (1.96, 0.825), (4.0, 0.89601)],
}

_INCOME_TYPES_WORKING = ["Working", "Commercial associate", "State servant", "Student", "Businessman",
                         "Maternity leave", "Pensioner"]
_EDUCATION_ORDER = ["Lower secondary", "Secondary / secondary special", "Incomplete higher",
                    "Higher education", "Academic degree"]
_CHILDREN_COUNTS = {0: 215371, 1: 61119, 2: 26749, 3: 3717, 4: 429, 5: 84, 6: 21, 7: 7, 8: 2, 9: 2,
                    10: 2, 11: 1, 12: 2, 14: 3, 19: 2}

# ORGANIZATION_TYPE: the published top 12; the other 46 levels of the real file with approximate
# counts, rescaled so that all 58 add up to the real total.
_ORG_TAIL = {
    "Transport: type 4": 5398, "Industry: type 9": 3368, "Industry: type 3": 3278, "Trade: type 3": 3492,
    "Security": 3247, "Housing": 2958, "Industry: type 11": 2704, "Military": 2634, "Bank": 2507,
    "Agriculture": 2454, "Police": 2341, "Transport: type 2": 2204, "Postal": 2157,
    "Security Ministries": 1974, "Trade: type 2": 1900, "Restaurant": 1811, "Services": 1575,
    "University": 1327, "Industry: type 7": 1307, "Transport: type 3": 1187, "Industry: type 1": 1039,
    "Hotel": 966, "Electricity": 950, "Industry: type 4": 877, "Trade: type 6": 631,
    "Industry: type 5": 599, "Insurance": 597, "Telecom": 577, "Emergency": 560, "Industry: type 2": 458,
    "Advertising": 429, "Realtor": 396, "Culture": 379, "Industry: type 12": 369, "Trade: type 1": 348,
    "Mobile": 317, "Legal Services": 305, "Cleaning": 260, "Transport: type 1": 201, "Industry: type 6": 112,
    "Industry: type 10": 109, "Religion": 85, "Industry: type 13": 67, "Trade: type 4": 64,
    "Trade: type 5": 49, "Industry: type 8": 24,
}


def _organizations() -> tuple[list[str], np.ndarray]:
    top = {k: v for k, v in _CAT["ORGANIZATION_TYPE_top"].items() if not k.startswith("_") and k != "XNA"}
    rest = _REAL_ROWS - sum(v for k, v in _CAT["ORGANIZATION_TYPE_top"].items() if not k.startswith("_"))
    scale = rest / sum(_ORG_TAIL.values())
    names = list(top) + list(_ORG_TAIL)
    weights = np.array(list(top.values()) + [v * scale for v in _ORG_TAIL.values()])
    return names, weights


_ORG_NAMES, _ORG_WEIGHTS = _organizations()

# OCCUPATION_TYPE tilts: (male, socio-economic status)
_OCCUPATION_TILT = {
    "Laborers": (0.8, -0.5), "Sales staff": (-0.8, -0.3), "Core staff": (-0.8, 0.5), "Managers": (0.3, 1.0),
    "Drivers": (2.5, -0.3), "High skill tech staff": (0.5, 0.8), "Accountants": (-2.0, 0.6),
    "Medicine staff": (-2.0, 0.2), "Security staff": (1.0, -0.5), "Cooking staff": (-0.8, -0.5),
    "Cleaning staff": (-1.2, -0.8), "Private service staff": (-1.0, -0.2), "Low-skill Laborers": (0.8, -1.0),
    "Waiters/barmen staff": (-0.8, -0.5), "Secretaries": (-2.0, 0.0), "Realty agents": (-0.8, 0.3),
    "HR staff": (-1.5, 0.5), "IT staff": (0.8, 1.0),
}


def _region_table() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A fixed country of 81 regions: applicant share, REGION_POPULATION_RELATIVE, REGION_RATING_CLIENT.

    Sorted by population so that a higher socio-economic score picks a more populous region.
    """
    rng = np.random.default_rng(20180517)
    k = 81
    share = rng.gamma(1.3, size=k - 1)
    share[0] *= 0.05                          # the least populated region: few applicants
    share = np.append(share / share.sum() * (1 - 0.027), 0.027)  # the capital: 2.7 % of applicants
    mid = np.cumsum(share) - share / 2
    q = _NUM["REGION_POPULATION_RELATIVE"]
    # extra knots: the real column piles up on a few big regions (0.035792, 0.04622, 0.072508)
    pop = np.interp(mid, [0, 0.25, 0.5, 0.75, 0.9, 0.97, 1.0], [q[3], q[4], q[5], q[6], 0.035792, 0.04622, q[7]])
    pop[0], pop[-1] = q[3], q[7]
    pop = np.round(pop, 6)
    # ratings: 1 for the rich (populous) regions, 3 for the poor ones, with some shuffling
    richness = mid + rng.normal(0, 0.2, k)
    richness[-1] = np.inf
    order = np.argsort(-richness)
    cum = np.cumsum(share[order])
    rating = np.full(k, 2)
    n_best = int(np.argmin(np.abs(cum - 0.105))) + 1
    n_worst = k - 1 - int(np.argmin(np.abs(cum - (1 - 0.157))))
    rating[order[:n_best]] = 1
    rating[order[k - n_worst:]] = 3
    return share, pop, rating


_REGION_SHARE, _REGION_POP, _REGION_RATING = _region_table()

# building blocks: the kind of draw (see _building_average) and its parameters; missing counts from the
# stats file, nested across blocks
_BUILDING_BLOCKS: dict[str, tuple] = {
    "APARTMENTS": ("area", 0.0876, 0.75),
    "BASEMENTAREA": ("area", 0.0763, 0.80),
    "YEARS_BEGINEXPLUATATION": ("begin", 0.9816, 0.6),
    "YEARS_BUILD": ("build", 0.7552, 0.11),
    "COMMONAREA": ("area", 0.0211, 0.95),
    "ELEVATORS": ("elevators",),
    "ENTRANCES": ("entrances",),
    "FLOORSMAX": ("floors",),
    "FLOORSMIN": ("floorsmin",),
    "LANDAREA": ("area", 0.0481, 0.95),
    "LIVINGAPARTMENTS": ("area", 0.0756, 0.75),
    "LIVINGAREA": ("area", 0.0745, 0.80),
    "NONLIVINGAPARTMENTS": ("zero", 0.55, 0.0039),
    "NONLIVINGAREA": ("zero", 0.47, 0.0150),
}
# counts: their _MODE and _MEDI repeat the _AVG value instead of varying around it
_DISCRETE_BUILDING_KINDS = frozenset({"elevators", "entrances", "floors", "floorsmin"})
_BUILDING_MISSING = _STATS["building_block_missing_counts(_AVG=_MODE=_MEDI)"]
_DOC_FLAGS = [f"FLAG_DOCUMENT_{i}" for i in range(2, 22)]
_BUREAU = [f"AMT_REQ_CREDIT_BUREAU_{p}" for p in ("HOUR", "DAY", "WEEK", "MON", "QRT", "YEAR")]


def _negative_binomial(rng: np.random.Generator, mean: float, sd: float, n: int, cap: float) -> np.ndarray:
    var = max(sd * sd, mean * 1.0001)
    r = mean * mean / (var - mean)
    p = r / (r + mean)
    return np.minimum(rng.negative_binomial(r, p, size=n), cap).astype(float)


# --------------------------------------------------------------------------------------------
# The generative process: one function per block of columns. All blocks draw from one Generator,
# so the order of the calls in _simulate, and of the draws inside each block, is part of the
# output: moving a draw changes the data of every seed (tests/test_generator.py pins it).

_Columns = dict[str, np.ndarray]
_SENTINEL_SHARE: float = _STATS["facts"]["DAYS_EMPLOYED_365243"]["share"]


class _Factors(NamedTuple):
    """The independent standard-normal factors behind each applicant."""

    age: np.ndarray      # older = higher
    ses: np.ndarray      # socio-economic status: education, income, occupation, region
    quality: np.ndarray  # credit quality, shared by the three external scores
    sex: np.ndarray      # male = higher


def _latent_factors(rng: np.random.Generator, n: int, age_shift: float) -> _Factors:
    """Age, status, credit quality and sex: four standard normals, age shifted by the period's `age_shift`."""
    age = rng.standard_normal(n) + age_shift
    ses = rng.standard_normal(n)
    quality = rng.standard_normal(n)
    sex = rng.standard_normal(n)
    return _Factors(age=age, ses=ses, quality=quality, sex=sex)


def _contract_type(rng: np.random.Generator, n: int, revolving_share: float) -> tuple[_Columns, np.ndarray]:
    """NAME_CONTRACT_TYPE, revolving at the period's share; also the revolving mask."""
    revolving = rng.random(n) < revolving_share
    return {"NAME_CONTRACT_TYPE": np.where(revolving, "Revolving loans", "Cash loans").astype(object)}, revolving


def _demographics(rng: np.random.Generator, f: _Factors, gender_xna_rate: float
                  ) -> tuple[_Columns, np.ndarray, np.ndarray, np.ndarray]:
    """CODE_GENDER from sex, DAYS_BIRTH from age, retirement from both; also male, age in days, sentinel mask."""
    n = len(f.age)
    gender_counts = _CAT["CODE_GENDER"]
    p_male = gender_counts["M"] / (gender_counts["M"] + gender_counts["F"])
    male = f.sex > _threshold(p_male)
    gender = np.where(male, "M", "F").astype(object)
    xna = rng.random(n) < gender_xna_rate
    gender[xna] = "XNA"
    male &= ~xna
    age_days = np.rint(_knots(f.age, _AGE_KNOTS))
    # women retire earlier: the pension score leans on age and (a little) on being female
    sentinel = _mix((0.88, f.age), (-0.2, f.sex), rng=rng, n=n) > _threshold(_SENTINEL_SHARE)
    return {"CODE_GENDER": gender, "DAYS_BIRTH": (-age_days).astype(np.int64)}, male, age_days, sentinel


def _income_type(rng: np.random.Generator, f: _Factors, male: np.ndarray, sentinel: np.ndarray) -> _Columns:
    """NAME_INCOME_TYPE: pensioner or unemployed on sentinel rows, else a type tilted by status, age and sex."""
    n = len(sentinel)
    employed = ~sentinel
    income_type = np.empty(n, dtype=object)
    pension_kind = rng.random(n) < _CAT["NAME_INCOME_TYPE"]["Unemployed"] / _SENTINEL_SHARE / _REAL_ROWS
    income_type[sentinel] = np.where(pension_kind[sentinel], "Unemployed", "Pensioner")
    w_counts = _CAT["NAME_INCOME_TYPE"]
    w_weights = [w_counts[k] if k != "Pensioner" else 10 for k in _INCOME_TYPES_WORKING]
    ne = int(employed.sum())
    tilt = np.zeros((ne, len(_INCOME_TYPES_WORKING)))
    ses_e, age_e, male_e = f.ses[employed], f.age[employed], male[employed]
    tilt[:, 1] = 0.4 * ses_e
    tilt[:, 2] = 0.2 * ses_e + 0.2 * age_e
    tilt[:, 3] = -2.5 * age_e
    tilt[:, 4] = 1.5 * ses_e
    tilt[:, 5] = np.where(male_e, -8.0, 0.0) - 1.0 * age_e
    tilt[:, 6] = 2.0 * age_e
    income_type[employed] = _labels(_INCOME_TYPES_WORKING, _tilted_choice(rng, w_weights, tilt))
    return {"NAME_INCOME_TYPE": income_type}


def _education(rng: np.random.Generator, z_ses: np.ndarray) -> tuple[_Columns, np.ndarray]:
    """NAME_EDUCATION_TYPE: status plus noise cut at the published shares; also the level (index in order)."""
    ed_counts = _CAT["NAME_EDUCATION_TYPE"]
    level = _ordinal(_mix((0.75, z_ses), rng=rng, n=len(z_ses)), [ed_counts[k] for k in _EDUCATION_ORDER])
    return {"NAME_EDUCATION_TYPE": _labels(_EDUCATION_ORDER, level)}, level


def _family(rng: np.random.Generator, age_years: np.ndarray, male: np.ndarray, sentinel: np.ndarray) -> _Columns:
    """NAME_FAMILY_STATUS from age and sex; CNT_CHILDREN and CNT_FAM_MEMBERS from status, age and retirement."""
    n = len(age_years)
    age_c = (age_years - 43.0) / 12.0
    fam_names = list(_CAT["NAME_FAMILY_STATUS"])
    fam_tilt = np.zeros((n, len(fam_names)))
    fam_tilt[:, fam_names.index("Single / not married")] = -1.0 * age_c + 0.3 * male
    fam_tilt[:, fam_names.index("Civil marriage")] = -0.3 * age_c
    fam_tilt[:, fam_names.index("Separated")] = 0.1 * age_c - 0.3 * male
    fam_tilt[:, fam_names.index("Widow")] = 1.6 * age_c - 1.5 * male
    family = _labels(fam_names, _tilted_choice(rng, list(_CAT["NAME_FAMILY_STATUS"].values()), fam_tilt))
    couple = (family == "Married") | (family == "Civil marriage")

    kids = np.array(list(_CHILDREN_COUNTS))
    kid_tilt = np.minimum(kids, 3)[None, :] * (0.6 * couple - 1.5 * sentinel - 0.5 * np.abs(age_c + 0.5)
                                               - 0.4 * (family == "Single / not married"))[:, None]
    children = kids[_tilted_choice(rng, list(_CHILDREN_COUNTS.values()), kid_tilt)]
    fam_members = np.minimum(children + 1.0 + couple, _NUM["CNT_FAM_MEMBERS"][7])
    return {"NAME_FAMILY_STATUS": family, "CNT_CHILDREN": children.astype(np.int64),
            "CNT_FAM_MEMBERS": _with_nan(fam_members, rng.random(n) < _missing_rate("CNT_FAM_MEMBERS"))}


def _housing_and_suite(rng: np.random.Generator, age_years: np.ndarray) -> _Columns:
    """NAME_HOUSING_TYPE from age (the young live with parents or rent); NAME_TYPE_SUITE at the published shares."""
    n = len(age_years)
    age_c = (age_years - 43.0) / 12.0
    housing_names = list(_CAT["NAME_HOUSING_TYPE"])
    h_tilt = np.zeros((n, len(housing_names)))
    h_tilt[:, housing_names.index("With parents")] = -1.5 * age_c
    h_tilt[:, housing_names.index("Rented apartment")] = -0.6 * age_c
    h_tilt[:, housing_names.index("Municipal apartment")] = 0.2 * age_c
    housing = _labels(housing_names, _tilted_choice(rng, list(_CAT["NAME_HOUSING_TYPE"].values()), h_tilt))
    suite_names, suite_w, suite_na = _counts("NAME_TYPE_SUITE")
    suite = _labels(suite_names, _choice(rng, suite_w, n), rng.random(n) < suite_na)
    return {"NAME_HOUSING_TYPE": housing, "NAME_TYPE_SUITE": suite}


def _region(rng: np.random.Generator, z_ses: np.ndarray) -> _Columns:
    """REGION_POPULATION_RELATIVE and both REGION_RATING_* of a region drawn from status (richer = more populous)."""
    n = len(z_ses)
    z_region = _mix((0.3, z_ses), rng=rng, n=n)
    region = np.minimum(np.searchsorted(np.cumsum(_REGION_SHARE), _norm_cdf(z_region)), len(_REGION_SHARE) - 1)
    rating = _REGION_RATING[region].astype(np.int64)
    u = rng.random(n)  # the city can rate better than its region
    w_city = rating.copy()
    w_city[(rating == 3) & (u < 0.09)] = 2
    w_city[(rating == 2) & (u > 0.992)] = 1
    return {"REGION_POPULATION_RELATIVE": _REGION_POP[region], "REGION_RATING_CLIENT": rating,
            "REGION_RATING_CLIENT_W_CITY": w_city.astype(np.int64)}


def _income(rng: np.random.Generator, f: _Factors, sentinel: np.ndarray, amount_factor: float
            ) -> tuple[_Columns, np.ndarray]:
    """AMT_INCOME_TOTAL from status, sex and age (lower when retired), rounded as declared; also its factor."""
    n = len(sentinel)
    z_income = _mix((0.55, f.ses), (0.30, f.sex), (0.10, f.age), rng=rng, n=n)
    income = _knots(z_income, _INCOME_KNOTS, log=True) * np.where(sentinel, 0.72, 1.06) * amount_factor
    coarse = rng.random(n) < 0.8
    income = np.where(coarse, np.round(income / 2250) * 2250, np.round(income / 45) * 45)
    income = np.clip(income, _NUM["AMT_INCOME_TOTAL"][3], _NUM["AMT_INCOME_TOTAL"][7])
    return {"AMT_INCOME_TOTAL": income}, z_income


def _credit_and_goods(rng: np.random.Generator, revolving: np.ndarray, income: np.ndarray, z_income: np.ndarray,
                      z_quality: np.ndarray, amount_factor: float) -> tuple[_Columns, np.ndarray, np.ndarray]:
    """AMT_GOODS_PRICE from income and quality, AMT_CREDIT from it or a card limit; also goods factor and price."""
    n = len(revolving)
    # banks lend more to better clients: bigger loans are slightly safer (corr with TARGET < 0)
    z_goods = _mix((0.45, z_income), (0.45, z_quality), rng=rng, n=n)
    goods = _knots(z_goods, _GOODS_KNOTS, log=True) * amount_factor
    goods = np.where(rng.random(n) < 0.6, np.round(goods / 22500) * 22500, np.round(goods / 4500) * 4500)
    goods = np.clip(goods, _NUM["AMT_GOODS_PRICE"][3], _NUM["AMT_GOODS_PRICE"][7])
    kind = _choice(rng, [0.30, 0.65, 0.05], n)  # equal, insurance/fees on top, down payment
    ratio = np.select([kind == 0, kind == 1],
                      [1.0, 1.0 + rng.gamma(2.0, 0.11, n)], rng.uniform(0.8, 1.0, n))
    credit_cash = np.round(goods * ratio * 2) / 2
    # revolving: a card limit on a grid, scaled on income
    grid = np.array([45000, 67500, 90000, 112500, 135000, 157500, 180000, 202500, 225000, 270000, 315000,
                     360000, 450000, 540000, 675000, 900000, 1125000, 1350000], dtype=float)
    want = income * np.exp(rng.normal(0.25, 0.5, n))
    pos = np.clip(np.searchsorted(grid, want), 1, len(grid) - 1)
    limit = np.where(want - grid[pos - 1] < grid[pos] - want, grid[pos - 1], grid[pos])
    credit = np.where(revolving, limit, credit_cash)
    credit = np.clip(credit, _NUM["AMT_CREDIT"][3], _NUM["AMT_CREDIT"][7])
    goods = np.where(revolving, credit, goods)
    goods_missing = revolving & (rng.random(n) < _NUM["AMT_GOODS_PRICE"][0] /
                                 _CAT["NAME_CONTRACT_TYPE"]["Revolving loans"])
    return {"AMT_CREDIT": credit, "AMT_GOODS_PRICE": _with_nan(goods, goods_missing)}, z_goods, goods


#: cash-loan products: term in months -> share of the loans (the instalment counts of Home Credit's
#: previous_application.csv CNT_PAYMENT: 12, 24 and 36 months the commonest, 6 to 60 months)
CASH_TERMS = {6: 0.03, 10: 0.04, 12: 0.20, 18: 0.13, 24: 0.27, 30: 0.06, 36: 0.17, 48: 0.05, 60: 0.05}
#: revolving loans (cards): the minimum monthly payment, a share of the limit -> share of the cards
CARD_MINIMUM_RATES = {0.05: 0.7, 0.10: 0.15, 0.075: 0.1, 0.0375: 0.05}


def _annuity(rng: np.random.Generator, revolving: np.ndarray, credit: np.ndarray, z_goods: np.ndarray
             ) -> tuple[_Columns, np.ndarray]:
    """AMT_ANNUITY, the MONTHLY payment: a cash loan's credit over its product term (`CASH_TERMS`, longer for
    bigger loans; the credit stands for all that is repaid, so AMT_CREDIT / AMT_ANNUITY is the term in months), a
    card's minimum payment (`CARD_MINIMUM_RATES` of its limit); also the value before hiding."""
    n = len(revolving)
    # a bigger loan runs a little longer (a stronger tie would flatten the annuities: corr(credit, annuity) ~0.63,
    # the real file's 0.77 comes from annuities with interest, which narrow the spread of credit / annuity)
    term = np.array(list(CASH_TERMS), dtype=float)[_ordinal(_mix((0.3, z_goods), rng=rng, n=n),
                                                            list(CASH_TERMS.values()))]
    card_rate = np.array(list(CARD_MINIMUM_RATES))[_choice(rng, list(CARD_MINIMUM_RATES.values()), n)]
    annuity = np.where(revolving, credit * card_rate, credit / term)
    annuity = np.clip(np.round(annuity * 2) / 2, _NUM["AMT_ANNUITY"][3], _NUM["AMT_ANNUITY"][7])
    return {"AMT_ANNUITY": _with_nan(annuity, rng.random(n) < _missing_rate("AMT_ANNUITY"))}, annuity


def _employment(rng: np.random.Generator, f: _Factors, age_days: np.ndarray, male: np.ndarray,
                sentinel: np.ndarray) -> tuple[_Columns, np.ndarray, np.ndarray]:
    """DAYS_EMPLOYED, ORGANIZATION_TYPE, OCCUPATION_TYPE from age, status, sex, job; also job factor, days employed."""
    n = len(sentinel)
    employed = ~sentinel
    z_job = rng.standard_normal(n)  # job stability beyond age and status (also seen by EXT_SOURCE_1)
    emp_days = _knots(_mix((0.45, f.age), (0.2, f.ses), (0.87, z_job), rng=rng, n=n), _EMPLOYED_KNOTS)
    cap = np.maximum(age_days - 16 * 365, 0)
    emp_days = np.where(emp_days > cap, rng.random(n) * cap, emp_days)
    emp_days = np.rint(emp_days)
    org = _labels(_ORG_NAMES, _choice(rng, _ORG_WEIGHTS, n))
    org[sentinel] = "XNA"

    occ_names, occ_w, _ = _counts("OCCUPATION_TYPE")
    occ_tilt = np.array([_OCCUPATION_TILT[k] for k in occ_names])  # K x 2
    tilt = np.column_stack([male[employed], f.ses[employed]]).astype(float) @ occ_tilt.T
    occ_idx = _tilted_choice(rng, occ_w, tilt)
    occupation = np.full(n, np.nan, dtype=object)
    occ_missing_employed = (_CAT["OCCUPATION_TYPE"]["<NA>"] - _SENTINEL_SHARE * _REAL_ROWS) / (
        (1 - _SENTINEL_SHARE) * _REAL_ROWS)
    occupation[employed] = _labels(occ_names, occ_idx, rng.random(int(employed.sum())) < occ_missing_employed)
    return {"DAYS_EMPLOYED": np.where(sentinel, DAYS_EMPLOYED_SENTINEL, -emp_days).astype(np.int64),
            "ORGANIZATION_TYPE": org, "OCCUPATION_TYPE": occupation}, z_job, emp_days


def _registration_and_id(rng: np.random.Generator, z_age: np.ndarray, age_days: np.ndarray) -> _Columns:
    """DAYS_REGISTRATION and DAYS_ID_PUBLISH from age, capped by the days since the 14th birthday."""
    n = len(z_age)
    reg_days = _knots(_mix((0.35, z_age), rng=rng, n=n), _REGISTRATION_KNOTS)
    reg_cap = np.maximum(age_days - 14 * 365, 0)
    reg_days = np.rint(np.where(reg_days > reg_cap, rng.random(n) * reg_cap, reg_days))
    id_days = _knots(_mix((0.2, z_age), rng=rng, n=n), _ID_PUBLISH_KNOTS)
    id_days = np.rint(np.where(id_days > reg_cap, rng.random(n) * reg_cap, id_days))
    return {"DAYS_REGISTRATION": -reg_days.astype(float), "DAYS_ID_PUBLISH": (-id_days).astype(np.int64)}


def _car_and_realty(rng: np.random.Generator, f: _Factors) -> _Columns:
    """FLAG_OWN_CAR from sex and status, FLAG_OWN_REALTY from age, OWN_CAR_AGE (with 64/65 legacy ages) for cars."""
    n = len(f.age)
    car = _mix((0.45, f.sex), (0.35, f.ses), rng=rng, n=n) > _threshold(_CAT["FLAG_OWN_CAR"]["Y"] / _REAL_ROWS)
    realty = _mix((0.3, f.age), rng=rng, n=n) > _threshold(_CAT["FLAG_OWN_REALTY"]["Y"] / _REAL_ROWS)
    car_age = np.rint(_knots(rng.standard_normal(n), _CAR_AGE_KNOTS))
    legacy = rng.random(n) < 0.024      # the real file's 64/65-year "unknown" car ages
    car_age = np.where(legacy, 64 + (rng.random(n) < 0.5), car_age)
    car_age_missing = ~car | (rng.random(n) < 5 / _CAT["FLAG_OWN_CAR"]["Y"])
    return {"FLAG_OWN_CAR": np.where(car, "Y", "N").astype(object),
            "FLAG_OWN_REALTY": np.where(realty, "Y", "N").astype(object),
            "OWN_CAR_AGE": _with_nan(car_age, car_age_missing)}


def _contact_flags(rng: np.random.Generator, f: _Factors, sentinel: np.ndarray) -> _Columns:
    """FLAG_MOBIL..FLAG_EMAIL at the published rates; work phones follow employment, FLAG_PHONE age, e-mail status."""
    n = len(sentinel)
    mobile = (rng.random(n) < _FLAGS["FLAG_MOBIL"]).astype(np.int64)
    work_phone_rate = (_FLAGS["FLAG_WORK_PHONE"] - _SENTINEL_SHARE * 0.02) / (1 - _SENTINEL_SHARE)
    work_phone = (rng.random(n) < np.where(sentinel, 0.02, work_phone_rate)).astype(np.int64)
    cont_mobile = (rng.random(n) < _FLAGS["FLAG_CONT_MOBILE"]).astype(np.int64)
    phone = (_mix((0.3, f.age), rng=rng, n=n) > _threshold(_FLAGS["FLAG_PHONE"])).astype(np.int64)
    email = (_mix((0.4, f.ses), rng=rng, n=n) > _threshold(_FLAGS["FLAG_EMAIL"])).astype(np.int64)
    return {"FLAG_MOBIL": mobile, "FLAG_EMP_PHONE": (~sentinel).astype(np.int64), "FLAG_WORK_PHONE": work_phone,
            "FLAG_CONT_MOBILE": cont_mobile, "FLAG_PHONE": phone, "FLAG_EMAIL": email}


def _application_time(rng: np.random.Generator, n: int) -> _Columns:
    """WEEKDAY_APPR_PROCESS_START at the published shares, HOUR_APPR_PROCESS_START normal around the published mean."""
    weekdays = _CAT["WEEKDAY_APPR_PROCESS_START"]
    weekday = _labels(list(weekdays), _choice(rng, list(weekdays.values()), n))
    hour = np.rint(rng.normal(_NUM["HOUR_APPR_PROCESS_START"][1], 3.25, n))
    return {"WEEKDAY_APPR_PROCESS_START": weekday, "HOUR_APPR_PROCESS_START": np.clip(hour, 0, 23).astype(np.int64)}


def _address_mismatches(rng: np.random.Generator, f: _Factors, sentinel: np.ndarray) -> _Columns:
    """The six REG/LIVE/WORK mismatch flags: city flags from age and quality, region flags subsets of them."""
    n = len(sentinel)
    employed = ~sentinel
    # movers are younger and (a little) weaker payers
    reg_not_live_city = _mix((-0.25, f.age), (-0.2, f.quality), rng=rng, n=n) > _threshold(
        _FLAGS["REG_CITY_NOT_LIVE_CITY"])
    live_not_work_city = employed & (_mix((-0.15, f.age), (-0.2, f.quality), rng=rng, n=n) > _threshold(0.21))
    reg_not_work_city = employed & np.where(reg_not_live_city,
                                            ~live_not_work_city | (rng.random(n) < 0.5), live_not_work_city)
    reg_not_live_region = reg_not_live_city & (rng.random(n) < _FLAGS["REG_REGION_NOT_LIVE_REGION"] /
                                               _FLAGS["REG_CITY_NOT_LIVE_CITY"])
    live_not_work_region = live_not_work_city & (rng.random(n) < _FLAGS["LIVE_REGION_NOT_WORK_REGION"] /
                                                 _FLAGS["LIVE_CITY_NOT_WORK_CITY"])
    reg_not_work_region = reg_not_work_city & (reg_not_live_region | live_not_work_region)
    return {"REG_REGION_NOT_LIVE_REGION": reg_not_live_region.astype(np.int64),
            "REG_REGION_NOT_WORK_REGION": reg_not_work_region.astype(np.int64),
            "LIVE_REGION_NOT_WORK_REGION": live_not_work_region.astype(np.int64),
            "REG_CITY_NOT_LIVE_CITY": reg_not_live_city.astype(np.int64),
            "REG_CITY_NOT_WORK_CITY": reg_not_work_city.astype(np.int64),
            "LIVE_CITY_NOT_WORK_CITY": live_not_work_city.astype(np.int64)}


def _external_scores(rng: np.random.Generator, f: _Factors, z_job: np.ndarray, period: _Period
                     ) -> tuple[_Columns, dict[str, np.ndarray]]:
    """EXT_SOURCE_1..3 from age, quality, status (and job for 1), hidden at the period's rates; also all the scores."""
    n = len(z_job)
    # computed for everyone (they drive the risk), then hidden
    scores = {
        "EXT_SOURCE_1": _knots(_mix((0.55, f.age), (0.30, f.quality), (0.20, f.ses), (0.30, z_job), rng=rng, n=n),
                               _ES_KNOTS["EXT_SOURCE_1"]),
        "EXT_SOURCE_2": _knots(_mix((0.10, f.age), (0.30, f.quality), (0.30, f.ses), rng=rng, n=n),
                               _ES_KNOTS["EXT_SOURCE_2"]),
        "EXT_SOURCE_3": _knots(_mix((0.18, f.age), (0.30, f.quality), (0.12, f.ses), rng=rng, n=n),
                               _ES_KNOTS["EXT_SOURCE_3"]),
    }
    missing = {
        "EXT_SOURCE_1": rng.random(n) < period.es1_missing,
        "EXT_SOURCE_2": rng.random(n) < _missing_rate("EXT_SOURCE_2"),
        "EXT_SOURCE_3": rng.random(n) < period.es3_missing,
    }
    return {name: _with_nan(values, missing[name]) for name, values in scores.items()}, scores


def _building_average(rng: np.random.Generator, kind: str, params: tuple[float, ...], size: np.ndarray,
                      floors: np.ndarray) -> np.ndarray:
    """One building block's _AVG value (before hiding) for every row, drawn by `kind` from size and floors."""
    n = len(size)
    if kind == "area":         # log-normal around a median, leaning on size
        median, spread = params
        v = median * np.exp(spread * _mix((0.85, size), rng=rng, n=n))
    elif kind == "begin":      # just below 1: 1 minus a log-normal gap
        median, spread = params
        v = 1.0 - (1.0 - median) * np.exp(spread * rng.standard_normal(n))
    elif kind == "build":
        mean, sd = params
        v = mean + sd * rng.standard_normal(n)
    elif kind == "elevators":  # only in buildings of 6 floors or more
        v = np.where(floors >= 6, 0.04 * np.rint(floors / 3.5 * np.exp(0.3 * rng.standard_normal(n))), 0.0)
    elif kind == "entrances":
        v = (1 + rng.poisson(3.0 * np.exp(0.4 * size))) / 29.0
    elif kind == "floors":
        v = floors / 24.0
    elif kind == "floorsmin":
        v = np.maximum(floors - rng.poisson(0.8, n) * (rng.random(n) < 0.4), 0) / 24.0
    else:  # "zero": zero-inflated log-normal
        zero_share, median = params
        v = np.where(rng.random(n) < zero_share, 0.0, median * np.exp(0.9 * _mix((0.5, size), rng=rng, n=n)))
    return np.round(np.clip(v, 0.0, 1.0), 4)


def _building(rng: np.random.Generator, n: int) -> _Columns:
    """The building's *_AVG/_MODE/_MEDI and categorical _MODE columns from a size factor, known for nested rows."""
    depth = rng.random(n)  # how much is known about the building: nested availability
    size = rng.standard_normal(n)
    floors = np.clip(np.rint(4.0 * np.exp(0.95 * _mix((0.8, size), rng=rng, n=n))), 1, 24)  # median 4, p75 ~8

    def present(missing_count: int) -> np.ndarray:
        return depth < 1.0 - missing_count / _REAL_ROWS

    def variant(values: np.ndarray, spread: float) -> np.ndarray:
        return np.round(np.clip(values * np.exp(spread * rng.standard_normal(n)), 0.0, 1.0), 4)

    avg = {block: _with_nan(_building_average(rng, kind, params, size, floors), ~present(_BUILDING_MISSING[block]))
           for block, (kind, *params) in _BUILDING_BLOCKS.items()}
    discrete = {block for block, (kind, *_) in _BUILDING_BLOCKS.items() if kind in _DISCRETE_BUILDING_KINDS}
    out: _Columns = {f"{block}_AVG": values for block, values in avg.items()}
    for block, values in avg.items():
        out[f"{block}_MODE"] = values if block in discrete else variant(values, 0.08)
    for block, values in avg.items():
        out[f"{block}_MEDI"] = values.copy() if block in discrete else variant(values, 0.02)

    for name in ("FONDKAPREMONT_MODE", "HOUSETYPE_MODE", "WALLSMATERIAL_MODE", "EMERGENCYSTATE_MODE"):
        names, weights, na = _counts(name)
        out[name] = _labels(names, _choice(rng, weights, n), ~(depth < 1.0 - na))
    total = np.round(np.clip(0.0688 * np.exp(0.83 * _mix((0.9, size), rng=rng, n=n)), 0, 1), 4)
    out["TOTALAREA_MODE"] = _with_nan(total, ~present(_NUM["TOTALAREA_MODE"][0]))
    return out


def _social_circle(rng: np.random.Generator, z_quality: np.ndarray) -> _Columns:
    """OBS/DEF_30/60_CNT_SOCIAL_CIRCLE: negative-binomial contacts, more defaulters among weak payers' contacts."""
    n = len(z_quality)
    obs = _NUM["OBS_30_CNT_SOCIAL_CIRCLE"]
    obs30 = _negative_binomial(rng, obs[1], obs[2], n, obs[7])
    obs60 = np.maximum(obs30 - (rng.random(n) < 0.03) * rng.integers(0, 2, n), 0)
    def_rate = np.clip(0.10 * np.exp(-0.3 * z_quality - 0.045), 0, 1)  # weaker payers know more defaulters; mean 0.10
    def30 = rng.binomial(obs30.astype(np.int64), def_rate).astype(float)
    def60 = rng.binomial(def30.astype(np.int64), 0.70).astype(float)
    missing = rng.random(n) < _missing_rate("OBS_30_CNT_SOCIAL_CIRCLE")
    counts = {"OBS_30": obs30, "DEF_30": def30, "OBS_60": obs60, "DEF_60": def60}
    return {f"{prefix}_CNT_SOCIAL_CIRCLE": _with_nan(values, missing) for prefix, values in counts.items()}


def _phone_change(rng: np.random.Generator, z_age: np.ndarray) -> tuple[_Columns, np.ndarray]:
    """DAYS_LAST_PHONE_CHANGE from age, sometimes missing; also its value before hiding (for the risk)."""
    n = len(z_age)
    days = -np.rint(_knots(_mix((0.15, z_age), rng=rng, n=n), _PHONE_KNOTS))
    return {"DAYS_LAST_PHONE_CHANGE": _with_nan(days, rng.random(n) < _missing_rate("DAYS_LAST_PHONE_CHANGE"))}, days


def _documents(rng: np.random.Generator, sentinel: np.ndarray, revolving: np.ndarray) -> _Columns:
    """FLAG_DOCUMENT_2..21: a main document (3, 6, 8 or none; 6 likelier if retired, none for cards), extras."""
    n = len(sentinel)
    doc3, doc6, doc8 = _FLAGS["FLAG_DOCUMENT_3"], _FLAGS["FLAG_DOCUMENT_6"], _FLAGS["FLAG_DOCUMENT_8"]
    main_doc = _tilted_choice(rng, [doc3, doc6, doc8, 1 - doc3 - doc6 - doc8],
                              np.column_stack([np.zeros(n), 1.5 * sentinel, np.zeros(n), 2.5 * revolving]))
    out: _Columns = {}
    for i, name in enumerate(_DOC_FLAGS, start=2):
        if i in (3, 6, 8):
            flag = main_doc == {3: 0, 6: 1, 8: 2}[i]
        else:
            flag = rng.random(n) < _FLAGS[name]
        out[name] = flag.astype(np.int64)
    return out


def _bureau_enquiries(rng: np.random.Generator, n: int) -> _Columns:
    """AMT_REQ_CREDIT_BUREAU_*: negative binomials on the published mean, std and max, all six missing together."""
    missing = rng.random(n) < _missing_rate("AMT_REQ_CREDIT_BUREAU_YEAR")
    out: _Columns = {}
    for name in _BUREAU:
        _, mean, sd, _, _, _, _, mx = _NUM[name]
        out[name] = _with_nan(_negative_binomial(rng, mean, sd, n, mx), missing)
    return out


def _latent_risk(rng: np.random.Generator, *, ext_sources: dict[str, np.ndarray], age_years: np.ndarray,
                 emp_days: np.ndarray, sentinel: np.ndarray, income: np.ndarray, credit: np.ndarray,
                 goods: np.ndarray, annuity: np.ndarray, revolving: np.ndarray, male: np.ndarray,
                 education_level: np.ndarray, rating_w_city: np.ndarray, days_id_publish: np.ndarray,
                 days_last_phone_change: np.ndarray) -> np.ndarray:
    """The latent risk L of the module docstring from the drawn values (unhidden) and a fresh unobserved N(0, 1)."""
    w = _RISK_WEIGHTS
    risk = np.zeros(len(age_years))
    for name, values in ext_sources.items():
        m, s = _ES_MEAN_SD[name]
        risk += w[name] * (values - m) / s
    risk += w["young"] * (43.0 - age_years) / 12.0
    emp_years = emp_days / _YEAR
    risk += np.where(sentinel, w["sentinel"], w["employment"] * (np.log1p(emp_years) - 1.6) / 0.75)
    risk += w["credit_income"] * (np.log(credit / income) - 1.2) / 0.7
    risk += w["annuity_income"] * np.clip((annuity / income - 0.18) / 0.09, -2, 4)
    credit_goods = np.where(revolving, 1.0, credit / goods)
    risk += w["credit_goods"] * np.clip((credit_goods - 1.10) / 0.10, -3, 4)
    risk += w["male"] * male
    risk += np.array([_EDUCATION_RISK[k] for k in _EDUCATION_ORDER])[education_level]
    risk += w["region_rating"] * (rating_w_city - 2)
    risk += w["id_publish"] * (days_id_publish + 3000.0) / 1500.0
    risk += w["phone_change"] * (days_last_phone_change + 960.0) / 830.0
    risk += w["unobserved"] * rng.standard_normal(len(age_years))
    return _RISK_SCALE * risk


def _simulate(rng: np.random.Generator, n: int, period: _Period) -> tuple[_Columns, np.ndarray]:
    """Columns (all but SK_ID_CURR and TARGET) and the latent risk L (logit without intercept)."""
    f = _latent_factors(rng, n, period.age_shift)
    contract, revolving = _contract_type(rng, n, period.revolving_share)
    person, male, age_days, sentinel = _demographics(rng, f, period.gender_xna_rate)
    age_years = age_days / _YEAR
    income_type = _income_type(rng, f, male, sentinel)
    education, education_level = _education(rng, f.ses)
    family = _family(rng, age_years, male, sentinel)
    housing = _housing_and_suite(rng, age_years)
    region = _region(rng, f.ses)
    income, z_income = _income(rng, f, sentinel, period.amount_factor)
    loan, z_goods, goods = _credit_and_goods(rng, revolving, income["AMT_INCOME_TOTAL"], z_income, f.quality,
                                             period.amount_factor)
    annuity, annuity_value = _annuity(rng, revolving, loan["AMT_CREDIT"], z_goods)
    employment, z_job, emp_days = _employment(rng, f, age_days, male, sentinel)
    registration = _registration_and_id(rng, f.age, age_days)
    car = _car_and_realty(rng, f)
    contact = _contact_flags(rng, f, sentinel)
    timing = _application_time(rng, n)
    mismatches = _address_mismatches(rng, f, sentinel)
    ext, ext_sources = _external_scores(rng, f, z_job, period)
    building = _building(rng, n)
    social = _social_circle(rng, f.quality)
    phone, days_last_phone_change = _phone_change(rng, f.age)
    documents = _documents(rng, sentinel, revolving)
    bureau = _bureau_enquiries(rng, n)
    risk = _latent_risk(
        rng, ext_sources=ext_sources, age_years=age_years, emp_days=emp_days, sentinel=sentinel,
        income=income["AMT_INCOME_TOTAL"], credit=loan["AMT_CREDIT"], goods=goods, annuity=annuity_value,
        revolving=revolving, male=male, education_level=education_level,
        rating_w_city=region["REGION_RATING_CLIENT_W_CITY"], days_id_publish=registration["DAYS_ID_PUBLISH"],
        days_last_phone_change=days_last_phone_change)
    columns = {**contract, **person, **income_type, **education, **family, **housing, **region, **income, **loan,
               **annuity, **employment, **registration, **car, **contact, **timing, **mismatches, **ext,
               **building, **social, **phone, **documents, **bureau}
    return columns, risk


def _intercept(risk: np.ndarray, rate: float) -> float:
    """alpha such that mean(sigmoid(alpha + risk)) == rate (bisection: deterministic)."""
    lo, hi = -20.0, 10.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if _sigmoid(mid + risk).mean() < rate:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


# the dtype pandas gives text columns read from CSV ("str" on pandas 3, object before)
_TEXT_DTYPE = pd.Series(["text"]).dtype


def _frame(columns: dict[str, np.ndarray], names: list[str]) -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(columns[name], dtype=_TEXT_DTYPE) if columns[name].dtype == object
                         else columns[name] for name in names})


# --------------------------------------------------------------------------------------------
# The credit bureau: each applicant's other credits, as the public bureau.csv

BUREAU_COLUMNS = ["SK_ID_CURR", "SK_ID_BUREAU", "CREDIT_ACTIVE", "CREDIT_CURRENCY", "DAYS_CREDIT",
                  "CREDIT_DAY_OVERDUE", "DAYS_CREDIT_ENDDATE", "AMT_CREDIT_SUM", "AMT_CREDIT_SUM_DEBT",
                  "AMT_CREDIT_SUM_OVERDUE", "CREDIT_TYPE", "AMT_ANNUITY"]
FIRST_BUREAU_ID = 5000000
#: credit type -> (share of the credits, amount as months of the applicant's income, term in months)
_BUREAU_TYPES = {"Consumer credit": (0.73, 0.9, 24), "Credit card": (0.23, 1.2, 0), "Car loan": (0.02, 6.0, 60),
                 "Mortgage": (0.01, 40.0, 240), "Microloan": (0.01, 0.2, 6)}
_BUREAU_HISTORY_SHARE = 0.86  # applicants with at least one credit at the bureau (the real file lists ~86 %)


def bureau_table(rng: np.random.Generator, client_ids: np.ndarray, risk: np.ndarray,
                 income: np.ndarray) -> pd.DataFrame:
    """The other credits of each applicant, one row per credit (bureau.csv's columns, AMT_ANNUITY monthly).

    `risk` is each applicant's latent default logit and `income` their monthly income: riskier applicants hold
    more credits, more of them still running, owe more of them and are more often overdue (the defaulters'
    averages are higher); amounts scale with the income. About 86 % of applicants have a history; 37 % of
    the credits are active, as in the real file."""
    n = len(client_ids)
    z = (risk - risk.mean()) / (risk.std() or 1.0)
    known = rng.random(n) < _BUREAU_HISTORY_SHARE
    count = np.where(known, 1 + rng.poisson(4.6 * np.exp(0.12 * z)), 0)
    owner = np.repeat(np.arange(n), count)
    m = len(owner)
    zc = z[owner]
    kinds = list(_BUREAU_TYPES)
    kind = _choice(rng, [v[0] for v in _BUREAU_TYPES.values()], m)
    months_of_income = np.array([v[1] for v in _BUREAU_TYPES.values()])[kind]
    term = np.array([v[2] for v in _BUREAU_TYPES.values()], dtype=float)[kind]
    active = rng.random(m) < _sigmoid(_ND.inv_cdf(0.37) * 1.7 + 0.35 * zc)
    amount = np.round(income[owner] * months_of_income * np.exp(0.6 * rng.standard_normal(m)) / 450) * 450
    # a running credit still owes part of it, more of it for weaker payers
    owed = np.clip(rng.beta(2.0, 2.0, m) * np.exp(0.25 * zc), 0.02, 1.0)
    debt = np.where(active, np.round(amount * owed, 1), 0.0)
    card = kind == kinds.index("Credit card")
    annuity = np.where(card, np.round(0.05 * debt, 1), np.round(amount / np.maximum(term, 1.0), 1))
    annuity = np.where(active, annuity, np.where(rng.random(m) < 0.5, annuity, np.nan))  # closed: often unknown
    overdue_now = active & (rng.random(m) < _sigmoid(-5.0 + 1.1 * zc))
    days_overdue = np.where(overdue_now, 1 + rng.geometric(1 / 25.0, m), 0).astype(np.int64)
    amount_overdue = np.where(overdue_now, np.round(annuity * np.ceil(days_overdue / 30.0), 1), 0.0)
    days_credit = np.where(active, -rng.integers(1, 1200, m), -rng.integers(300, 2923, m)).astype(np.int64)
    end = days_credit + np.where(term > 0, term, 36.0) * 30.4
    order = np.lexsort((days_credit, owner))
    return pd.DataFrame({
        "SK_ID_CURR": client_ids[owner][order].astype(np.int64),
        "SK_ID_BUREAU": FIRST_BUREAU_ID + np.arange(m, dtype=np.int64),
        "CREDIT_ACTIVE": pd.Series(np.where(active, "Active", "Closed")[order], dtype=_TEXT_DTYPE),
        "CREDIT_CURRENCY": pd.Series(np.full(m, "currency 1", dtype=object), dtype=_TEXT_DTYPE),
        "DAYS_CREDIT": days_credit[order],
        "CREDIT_DAY_OVERDUE": days_overdue[order],
        "DAYS_CREDIT_ENDDATE": np.round(end)[order],
        "AMT_CREDIT_SUM": amount[order],
        "AMT_CREDIT_SUM_DEBT": debt[order],
        "AMT_CREDIT_SUM_OVERDUE": amount_overdue[order],
        "CREDIT_TYPE": pd.Series(np.asarray(kinds, dtype=object)[kind][order], dtype=_TEXT_DTYPE),
        "AMT_ANNUITY": annuity[order],
    })


# --------------------------------------------------------------------------------------------
# Public API

def generate_portfolio(n_train: int = TRAIN_ROWS, n_new: int = NEW_ROWS, seed: int = 42) -> GeneratedPortfolio:
    """Generate `n_train` labelled applications and `n_new` new ones (same seed -> same frames).

    Apart from SK_ID_CURR, the labelled rows depend only on (`n_train`, `seed`), not on `n_new`.
    Train and new rows share one ID space (100002 upward, interleaved at random, each frame sorted
    by ID) and the training intercept. `true_probability` lists the train rows, then the new rows,
    in frame order.
    """
    if isinstance(n_train, bool) or not isinstance(n_train, (int, np.integer)) or n_train < 1:
        raise ValueError(f"n_train must be a whole number >= 1 (labelled applications); got {n_train!r}")
    if isinstance(n_new, bool) or not isinstance(n_new, (int, np.integer)) or n_new < 0:
        raise ValueError(f"n_new must be a whole number >= 0 (new applications); got {n_new!r}")
    n_train, n_new = int(n_train), int(n_new)
    train_seq, new_seq, id_seq = np.random.SeedSequence(seed).spawn(3)
    train_rng, new_rng = np.random.default_rng(train_seq), np.random.default_rng(new_seq)

    train_cols, train_risk = _simulate(train_rng, n_train, _HISTORY)
    new_cols, new_risk = _simulate(new_rng, n_new, _LATER)
    alpha = _intercept(train_risk, TARGET_RATE)
    p_train = _sigmoid(alpha + train_risk)
    p_new = _sigmoid(alpha + new_risk)
    target = (train_rng.random(n_train) < p_train).astype(np.int64)

    ids = np.random.default_rng(id_seq).permutation(n_train + n_new).astype(np.int64) + FIRST_ID
    train_ids, new_ids = np.sort(ids[:n_train]), np.sort(ids[n_train:])

    train_cols.update(SK_ID_CURR=train_ids, TARGET=target)
    new_cols.update(SK_ID_CURR=new_ids)
    train = _frame(train_cols, HOME_CREDIT_COLUMNS)
    new = _frame(new_cols, [k for k in HOME_CREDIT_COLUMNS if k != "TARGET"])
    truth = pd.DataFrame({
        "SK_ID_CURR": np.concatenate([train_ids, new_ids]),
        "TRUE_DEFAULT_PROBABILITY": np.concatenate([p_train, p_new]),
    })
    # the other credits, from a stream of their own: the application columns do not change with them
    bureau_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(4,)))
    bureau = bureau_table(bureau_rng, truth["SK_ID_CURR"].to_numpy(), np.concatenate([train_risk, new_risk]),
                          np.concatenate([train_cols["AMT_INCOME_TOTAL"], new_cols["AMT_INCOME_TOTAL"]]))
    return GeneratedPortfolio(train=train, new=new, true_probability=truth, bureau=bureau)


HISTORY_START = np.datetime64("2024-01-01")   # the labelled history: 24 months from here
NEW_START = np.datetime64("2026-01-01")       # the new applications: 12 months from here, drifting
OUTCOME_LAG_MONTHS = 3                        # a repayment outcome is known this long after the decision


#: column -> relative change reached in the last month of the new applications (drift growing from zero):
#: external score 3 sliding down, wages and prices rising
MONTHLY_DRIFT = {"EXT_SOURCE_3": -0.25, "AMT_INCOME_TOTAL": 0.06, "AMT_CREDIT": 0.10, "AMT_ANNUITY": 0.10,
                 "AMT_GOODS_PRICE": 0.10}


def application_timeline(portfolio: GeneratedPortfolio, seed: int = 42, history_months: int = 24,
                         new_months: int = 12) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """When each application was made, a drift of the new applications that grows month after month, and the
    repayment outcomes of the new ones (kept out of the features, like the true probability).

    Labelled applications spread evenly over `history_months`, new ones over `new_months`. In month m of the
    new applications, each column of `MONTHLY_DRIFT` is moved by m / (new_months - 1) of its change: none in the
    first month, all of it in the last (the observed values move, the applicants' true risk does not, so the
    model's error grows too). Outcomes (1 = defaulted, drawn from each applicant's true probability) for the new
    applications made at least `OUTCOME_LAG_MONTHS` months before the end; the build keeps those of accepted
    applications (a refused one never got the loan).

    Returns the new applications with the drift, (SK_ID_CURR, APPLICATION_DATE) for every application and
    (SK_ID_CURR, DEFAULTED, REPORTED_ON). Drawn from a stream of its own: `generate_portfolio`'s frames and
    draws are unchanged."""
    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(3,)))
    train_ids = portfolio.train["SK_ID_CURR"].to_numpy()
    new_ids = portfolio.new["SK_ID_CURR"].to_numpy()
    history_month = rng.integers(0, history_months, len(train_ids))
    new_month = rng.integers(0, new_months, len(new_ids))
    day = rng.integers(0, 28, len(train_ids) + len(new_ids))

    def dates(start: np.datetime64, months: np.ndarray, days: np.ndarray) -> np.ndarray:
        month_start = (start.astype("datetime64[M]") + months).astype("datetime64[D]")
        return month_start + days

    drifted = portfolio.new.copy()
    share = new_month / max(new_months - 1, 1)
    for column, change in MONTHLY_DRIFT.items():
        values = drifted[column].to_numpy(dtype=np.float64) * (1.0 + change * share)
        drifted[column] = values.round(6) if column.startswith("EXT_SOURCE") else values.round(1)
    timeline = pd.DataFrame({
        "SK_ID_CURR": np.concatenate([train_ids, new_ids]),
        "APPLICATION_DATE": np.concatenate([dates(HISTORY_START, history_month, day[:len(train_ids)]),
                                            dates(NEW_START, new_month, day[len(train_ids):])]),
    })
    truth = portfolio.true_probability.set_index("SK_ID_CURR")["TRUE_DEFAULT_PROBABILITY"]
    known = new_month < new_months - OUTCOME_LAG_MONTHS
    defaulted = (rng.random(len(new_ids)) < truth.reindex(new_ids).to_numpy()).astype(np.int64)
    reported = dates(NEW_START, new_month + OUTCOME_LAG_MONTHS, day[len(train_ids):])
    outcomes = pd.DataFrame({"SK_ID_CURR": new_ids[known], "DEFAULTED": defaulted[known],
                             "REPORTED_ON": reported[known]})
    return drifted, timeline, outcomes


def write_portfolio(portfolio: GeneratedPortfolio, directory: Path) -> dict[str, Path]:
    """Write the CSV files (Home Credit names: the applications, bureau.csv, the true probabilities) into
    `directory`; returns their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = {
        "train": directory / "application_train.csv",
        "new": directory / "application_test.csv",
        "true_probability": directory / "true_default_probability.csv",
    }
    if portfolio.bureau is not None:
        paths["bureau"] = directory / "bureau.csv"
        portfolio.bureau.to_csv(paths["bureau"], index=False)
    portfolio.train.to_csv(paths["train"], index=False)
    portfolio.new.to_csv(paths["new"], index=False)
    portfolio.true_probability.to_csv(paths["true_probability"], index=False)
    return paths
