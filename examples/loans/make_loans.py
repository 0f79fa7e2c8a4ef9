"""Regenerate the small example dataset described by loans.toml (seeded, so the CSVs are stable)."""

from pathlib import Path

import numpy as np
import pandas as pd


def make(n: int, seed: int, first_id: int, labelled: bool) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    age = rng.integers(21, 70, n)
    income = np.round(rng.lognormal(np.log(4200), 0.45, n), 0)          # monthly
    grade = rng.choice(list("ABCDEFG"), n, p=[0.18, 0.28, 0.24, 0.15, 0.09, 0.04, 0.02])
    term = rng.choice([36, 60], n, p=[0.75, 0.25])
    amount = np.round(rng.lognormal(np.log(14000), 0.6, n), -2)
    rate = 0.06 + 0.035 * (np.array([ord(g) - 65 for g in grade])) / 12
    payment = np.round(amount * rate / 12 / (1 - (1 + rate / 12) ** -term), 2)
    other = np.round(rng.gamma(2.0, 350, n), 0)
    home = rng.choice(["RENT", "MORTGAGE", "OWN"], n, p=[0.45, 0.42, 0.13])
    purpose = rng.choice(["debt_consolidation", "credit_card", "home_improvement", "car", "other"], n)
    emp = rng.integers(0, 25, n).astype(float)
    emp[rng.random(n) < 0.06] = np.nan
    df = pd.DataFrame({"loan_id": np.arange(first_id, first_id + n), "age": age, "income": income,
                       "loan_amount": amount, "term_months": term, "monthly_payment": payment,
                       "other_debts": other, "grade": grade, "home_ownership": home, "purpose": purpose,
                       "employment_length": emp})
    if labelled:
        g = np.array([ord(x) - 65 for x in grade])
        logit = -3.4 + 0.38 * g + 2.2 * (payment + other) / income - 0.015 * (age - 40) + rng.normal(0, 0.8, n)
        df.insert(1, "status", np.where(rng.random(n) < 1 / (1 + np.exp(-logit)), "charged_off", "fully_paid"))
    return df


if __name__ == "__main__":
    here = Path(__file__).parent
    make(1500, 7, 1, True).to_csv(here / "loans.csv", index=False)
    make(300, 8, 5001, False).to_csv(here / "loans_new.csv", index=False)
