"""Counter-offers for a refused application: the closest loans the production model accepts, changing only the
loan's own fields (amount, term, hence annuity and down payment), never the person.

Units (Home Credit): AMT_ANNUITY is the MONTHLY payment, so the term in months is AMT_CREDIT / AMT_ANNUITY.
A candidate keeps that relation with the annuity scaled proportionally: annuity = credit / term (no interest
modelled: the data gives no rate, only the ratio). The goods price stays what the client buys; when the credit
no longer covers it, the difference is the down payment (AMT_GOODS_PRICE - AMT_CREDIT).

An offer also keeps the client's effort rate - the existing credits' monthly payments and the offer's, over the
monthly income - under the bank's cap (`SCORING_EFFORT_CAP`, default 35 %, the French HCSF rule): an offer above
it is not proposed (when the income or the payment is unknown, the cap cannot be checked and does not apply).

The whole grid of candidates (amount x term) is scored in one `predict_proba` call; the offers returned are
re-scored one by one exactly as `POST /predict` would, so applying `changes` to the client's application and
posting it gives the offer's probability.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping

import numpy as np

from .contracts import ACCEPTED, Offer, Offers, decide
from .features import FeatureSpec
from .labels import fmt_money, fmt_number, fmt_percent

#: term limits in months by contract type; a type not listed (revolving loans) may change its amount only
TERM_LIMITS = {"Cash loans": (6, 60)}
TERM_STEP = 6                                     # months between the terms tried
AMOUNT_FACTORS = np.round(np.arange(1.0, 0.295, -0.01), 2)  # 100 % of the amount asked down to 30 %
MAX_OFFERS = 3
EFFORT_CAP_ENV = "SCORING_EFFORT_CAP"
DEFAULT_EFFORT_CAP = 0.35  # the French HCSF rule: loan payments at most 35 % of the income
_MESSAGES = {
    "accepted": "La demande est acceptée telle quelle : aucune contre-proposition n'est nécessaire. / "
                "The application is accepted as it stands: no counter-offer is needed.",
    "none": "Aucune offre dans les limites du produit (montant jusqu'à -70 %, {fr}) ne passe le seuil et le "
            "plafond d'effort ({cap}). / No offer within the product's limits (amount down to -70 %, {en}) passes the "
            "threshold and the effort-rate cap ({cap}).",
    "no_amount": "La demande n'a pas de montant : aucune contre-proposition possible. / The application has no "
                 "amount: no counter-offer is possible.",
}


def effort_cap_from_env() -> float:
    """The effort-rate cap: `SCORING_EFFORT_CAP` as a share of the income (0.35) or a percentage (35 %), else
    35 %; ValueError naming the variable for anything but a share in (0, 1]."""
    text = os.environ.get(EFFORT_CAP_ENV, "").strip()
    if not text:
        return DEFAULT_EFFORT_CAP
    percent = text.endswith("%")
    try:
        cap = float(text.rstrip("%").strip()) / (100.0 if percent else 1.0)
    except ValueError:
        cap = math.nan
    if not 0.0 < cap <= 1.0:
        raise ValueError(f"{EFFORT_CAP_ENV} must be a share of the income in (0, 1] such as 0.35, or a percentage "
                         f"such as 35%; got {text!r}")
    return cap


def monthly_budget(spec: FeatureSpec, application: Mapping[str, Any]) -> tuple[float, float]:
    """The monthly income and the existing credits' monthly payments of an application, in the schema's units
    (NaN income when unknown; payments 0 when the dataset states none)."""
    roles = spec.schema.roles

    def per_month(role: str) -> float:
        r = roles.get(role)
        if r is None:
            return math.nan
        v = _number(application.get(r.column))
        return v / 12.0 if r.unit == "yearly" else v

    existing = per_month("debt")
    return per_month("income"), existing if math.isfinite(existing) else 0.0


def loan_columns(spec: FeatureSpec) -> frozenset[str]:
    """The raw columns an offer may change: the loan's own (amount, annuity, goods price, term)."""
    roles = spec.schema.roles
    return frozenset(roles[r].column for r in ("credit_amount", "annuity", "goods_price", "term") if r in roles)


def _col(spec: FeatureSpec, role: str) -> str | None:
    r = spec.schema.roles.get(role)
    return r.column if r else None


def _number(v: Any) -> float:
    return float(v) if v is not None and not isinstance(v, str) and math.isfinite(float(v)) else math.nan


def counter_offers(scorer, application: Mapping[str, Any], client_id: int,
                   max_offers: int = MAX_OFFERS, effort_cap: float = DEFAULT_EFFORT_CAP) -> Offers:
    """The closest accepted loans for `application` (as `POST /predict` takes it), by `scorer` (the production
    model), within `effort_cap`, ranked by relative amount reduction, then by how far the term moves. An accepted
    application gets no offer and a message saying none is needed; so does one where nothing within the limits
    passes."""
    spec: FeatureSpec = scorer.spec
    base, _ = scorer.score_record(application)
    head = dict(client_id=int(client_id), default_probability=base.default_probability, decision=base.decision,
                threshold=base.threshold, model_version=base.model_version)
    if base.decision == ACCEPTED:
        return Offers(**head, offers=(), message=_MESSAGES["accepted"])
    income, existing = monthly_budget(spec, application)
    # the annuity column's unit: the cap compares monthly payments
    annuity_role = spec.schema.roles.get("annuity")
    per_month = 1.0 / 12.0 if annuity_role is not None and annuity_role.unit == "yearly" else 1.0

    def effort(annuity_value: float) -> float:
        return (existing + annuity_value * per_month) / income if income > 0 else math.nan
    credit_col, annuity_col, goods_col = _col(spec, "credit_amount"), _col(spec, "annuity"), _col(spec, "goods_price")
    credit = _number(application.get(credit_col)) if credit_col else math.nan
    if not credit > 0:
        return Offers(**head, offers=(), message=_MESSAGES["no_amount"])
    annuity = _number(application.get(annuity_col)) if annuity_col else math.nan
    goods = _number(application.get(goods_col)) if goods_col else math.nan
    term = credit / annuity if annuity > 0 else math.nan
    contract = application.get(_col(spec, "contract_type") or "")
    limits = TERM_LIMITS.get(contract) if math.isfinite(term) else None
    # the term asked, if the product allows it, and the product's terms every TERM_STEP months
    terms = [term] if limits is None else sorted({*range(limits[0], limits[1] + 1, TERM_STEP)}
                                                 | ({term} if limits[0] <= term <= limits[1] else set()))

    # the grid, term by term, amounts from the one asked down: new credit and annuity for each candidate
    factors = AMOUNT_FACTORS
    t_grid = np.repeat(np.asarray(terms, dtype=np.float64), len(factors))
    f_grid = np.tile(factors, len(terms))
    new_credit = np.where(f_grid == 1.0, credit, np.round(credit * f_grid))
    if math.isfinite(term):
        same_term = t_grid == term
        new_annuity = np.where(same_term, np.round(annuity * new_credit / credit, 2), np.round(new_credit / t_grid, 2))
        new_annuity[same_term & (new_credit == credit)] = annuity
    else:
        new_annuity = np.full(len(t_grid), annuity)
    changed = (new_credit != credit) | ((new_annuity != annuity) & np.isfinite(new_annuity))
    t_grid, f_grid, new_credit, new_annuity = t_grid[changed], f_grid[changed], new_credit[changed], new_annuity[changed]
    if not len(t_grid):
        return Offers(**head, offers=(), message=_none(limits, effort_cap))
    X = _grid_rows(scorer, application, new_credit / credit, new_annuity / annuity if annuity > 0 else None,
                   credit_col, annuity_col)
    passing = scorer.predict_proba(X) < scorer.threshold
    if income > 0:  # NaN (an unknown payment): not over the cap
        with np.errstate(invalid="ignore"):
            passing &= ~((existing + new_annuity * per_month) / income > effort_cap)
    # for each term, the smallest amount reduction that passes (the grid runs from the amount asked down)
    best: dict[float, int] = {}
    for i in np.flatnonzero(passing).tolist():
        best.setdefault(float(t_grid[i]), i)
    ranked = sorted(best.values(), key=lambda i: (1.0 - f_grid[i], abs(t_grid[i] - term) if math.isfinite(term)
                                                  else 0.0))
    candidates = []
    for i in ranked:
        changes = {}
        if new_credit[i] != credit:
            changes[credit_col] = float(new_credit[i])
        if math.isfinite(new_annuity[i]) and new_annuity[i] != annuity:
            changes[annuity_col] = float(new_annuity[i])
        candidates.append((float(f_grid[i]), float(t_grid[i]), changes))
    ranked = range(len(candidates))
    offers, amounts = [], set()
    for i in ranked:
        f, t, changes = candidates[i]
        if changes.get(credit_col, credit) in amounts:  # one offer per amount: the term closest to the one asked
            continue
        score, _ = scorer.score_record({**application, **changes})  # exactly what POST /predict answers
        if decide(score.default_probability, scorer.threshold) != ACCEPTED:
            continue
        amount = changes.get(credit_col, credit)
        monthly = changes.get(annuity_col, annuity)
        months = amount / monthly if monthly > 0 else math.nan
        down = max(0.0, goods - amount) if math.isfinite(goods) else 0.0
        rate = effort(monthly)
        offers.append(Offer(changes=changes, default_probability=score.default_probability, decision=score.decision,
                            credit_amount=amount, term_months=months if math.isfinite(months) else None,
                            annuity=monthly if math.isfinite(monthly) else None,
                            down_payment=down, amount_reduction=1.0 - amount / credit,
                            text=_text(amount, months, monthly, down, 1.0 - amount / credit),
                            effort_rate=rate if math.isfinite(rate) else None))
        amounts.add(amount)
        if len(offers) == max_offers:
            break
    if not offers:
        return Offers(**head, offers=(), message=_none(limits, effort_cap))
    return Offers(**head, offers=tuple(offers))


#: how the model's loan features scale with the amount and the annuity: feature -> (power of credit, of annuity)
_SCALING = {"CREDIT_INCOME_RATIO": (1, 0), "ANNUITY_INCOME_RATIO": (0, 1), "CREDIT_TERM_MONTHS": (1, -1),
            "CREDIT_GOODS_RATIO": (1, 0)}


def _grid_rows(scorer, application: Mapping[str, Any], credit_scale: np.ndarray, annuity_scale: np.ndarray | None,
               credit_col: str, annuity_col: str | None) -> np.ndarray:
    """The model's rows of the candidates: the application's row with the loan's features scaled (the amount,
    the annuity and the ratios made of them), without building each application (20 ms for a grid of 700 through
    pandas, 0.2 ms this way). Only a search: the offers returned are re-scored from their applications."""
    spec = scorer.spec
    x = spec.transform_record(scorer.applications.validate(application), checked=True)[0].astype(np.float64)
    X = np.repeat(x[None, :], len(credit_scale), axis=0)
    a = annuity_scale if annuity_scale is not None else np.ones(len(credit_scale))
    for j, f in enumerate(spec.features):
        if f.kind == "ratio" and f.name in _SCALING:
            pc, pa = _SCALING[f.name]
            X[:, j] = x[j] * credit_scale ** pc * a ** pa
        elif f.kind == "numeric" and f.source == credit_col:
            X[:, j] = x[j] * credit_scale
        elif f.kind == "numeric" and annuity_col is not None and f.source == annuity_col:
            X[:, j] = x[j] * a
    return X


def _none(limits: tuple[int, int] | None, effort_cap: float) -> str:
    cap = f"{effort_cap * 100:g} %"
    if limits is None:
        return _MESSAGES["none"].format(fr="durée inchangée", en="same term", cap=cap)
    return _MESSAGES["none"].format(fr=f"durée {limits[0]} à {limits[1]} mois",
                                    en=f"term {limits[0]} to {limits[1]} months", cap=cap)


def _text(credit: float, months: float, annuity: float, down: float, reduction: float) -> str:
    """The offer in French, as an advisor says it."""
    parts = [f"{fmt_money(credit, 'fr')} sur {fmt_number(months, 'fr', 0)} mois" if math.isfinite(months)
             else fmt_money(credit, 'fr')]
    if math.isfinite(annuity):
        parts.append(f"mensualité {fmt_money(annuity, 'fr')}")
    if reduction > 0:
        parts.append(f"montant -{fmt_percent(reduction, 'fr', 0)}")
    if down > 0:
        parts.append(f"apport {fmt_money(down, 'fr')}")
    return ", ".join(parts)
