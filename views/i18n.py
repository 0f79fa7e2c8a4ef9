"""Words and number formats of the dashboard, in French (the bank staff's language) and English.

Numbers follow each locale's conventions: `12 345,67 €` and `12,3 %` in French,
`€12,345.67` and `12.3%` in English. Plain Python, no locale database: the server's OS locale
must not change what advisors read.
"""

from __future__ import annotations

import math
from typing import Any

LANGUAGES = ("fr", "en")
NBSP = "\u00a0"          # before a unit or a percent sign in French
THIN = "\u202f"          # French thousands separator (narrow no-break space, as in CLDR)

TEXTS: dict[str, tuple[str, str]] = {  # key -> (French, English)
    "title": ("Octroi de crédit : aide à la décision", "Credit decisions: scoring dashboard"),
    "language": ("Langue", "Language"),
    # top bar
    "portfolio": ("Portefeuille et modèle", "Portfolio and model"),
    "applications": ("Demandes", "Applications"),
    "accepted_n": ("Accordées", "Accepted"),
    "refused_n": ("Refusées", "Refused"),
    "mean_score": ("Score moyen (probabilité de défaut)", "Mean client score (default probability)"),
    "error_rate": ("Taux d'erreur au seuil (test)", "Error rate at threshold (holdout)"),
    "auc": ("AUC", "AUC"),
    "threshold": ("Seuil de refus", "Refusal threshold"),
    "drift": ("Dérive", "Drift"),
    "drift_value": ("{n} variables sur {total} (PSI ≥ 0,2)", "{n} of {total} features (PSI ≥ 0.2)"),
    "score_psi": ("PSI du score : {psi}", "Score PSI: {psi}"),
    "drift_none": ("Pas de nouvelles demandes à comparer", "No new applications to compare"),
    "drift_detail": ("Dérive par variable (PSI, référence d'entraînement vs demandes récentes)",
                     "Drift by feature (PSI, training reference vs recent applications)"),
    "importance": ("Importance globale des variables (top 15)", "Global feature importance (top 15)"),
    "importance_axis": ("Impact moyen sur le score (|SHAP|)", "Mean impact on the score (|SHAP|)"),
    "feature": ("Variable", "Feature"),
    "psi": ("PSI", "PSI"),
    "status": ("Statut", "Status"),
    "status_stable": ("stable", "stable"),
    "status_moderate": ("modérée", "moderate"),
    "status_drift": ("dérive", "drift"),
    "model_version": ("Modèle {version}", "Model {version}"),
    # side bar: choosing a client
    "client_file": ("Dossier client", "Client file"),
    "client_id": ("N° de dossier", "Application ID"),
    "client_id_placeholder": ("ex. 100002 (Entrée pour ouvrir)", "e.g. 100002 (Enter to open)"),
    "open": ("Ouvrir", "Open"),
    "search": ("Rechercher dans les dossiers", "Search client files"),
    "decision": ("Décision", "Decision"),
    "all": ("Toutes", "All"),
    "all_m": ("Tous", "All"),
    "probability_range": ("Probabilité de défaut", "Default probability"),
    "contract_type": ("Type de contrat", "Contract type"),
    "income": ("Revenu annuel", "Yearly income"),
    "credit_amount": ("Montant du crédit", "Credit amount"),
    "age": ("Âge (ans)", "Age (years)"),
    "sort": ("Trier par", "Sort by"),
    "descending": ("Ordre décroissant", "Descending"),
    "previous": ("◀ Préc.", "◀ Prev."),
    "next": ("Suiv. ▶", "Next ▶"),
    "page": ("Page {page} / {pages} · {total} dossiers", "Page {page} / {pages} · {total} files"),
    "no_match": ("Aucun dossier ne correspond", "No client file matches"),
    "col_id": ("N°", "ID"),
    "col_probability": ("Proba.", "Prob."),
    "col_contract": ("Contrat", "Contract"),
    "col_age": ("Âge", "Age"),
    "col_income": ("Revenu", "Income"),
    "col_amount": ("Montant", "Amount"),
    "click_row": ("Cliquez sur une ligne pour ouvrir le dossier.", "Click a row to open the file."),
    "missing_roles": ("Absent de ce jeu de données : {names}.", "Not in this dataset: {names}."),
    # side bar: the client
    "no_client": ("Aucun dossier ouvert : saisissez un numéro ou choisissez dans la liste.",
                  "No file open: type an ID or pick one from the list."),
    "accepted": ("Accordé", "Accepted"),
    "refused": ("Refusé", "Refused"),
    "default_probability": ("Probabilité de défaut", "Default probability"),
    "threshold_short": ("seuil {value}", "threshold {value}"),
    "history_repaid": ("Historique : crédit remboursé", "History: loan repaid"),
    "history_defaulted": ("Historique : défaut de paiement", "History: loan defaulted"),
    "new_application": ("Nouvelle demande", "New application"),
    "profile": ("Profil", "Profile"),
    "application": ("Demande", "Application"),
    "age_years": ("Âge", "Age"),
    "debt": ("Charges de crédit existantes", "Existing credit repayments"),
    "debt_ratio": ("Taux d'endettement (annuité / revenu)", "Debt ratio (annuity / income)"),
    "family": ("Situation familiale", "Family status"),
    "children": ("Enfants", "Children"),
    "employment_years": ("Ancienneté dans l'emploi", "Employment seniority"),
    "term_months": ("Durée", "Term"),
    "annuity": ("Annuité", "Annuity"),
    "goods_price": ("Prix du bien", "Goods price"),
    "credit_income_ratio": ("Crédit / revenu", "Credit / income"),
    "years": ("{value} ans", "{value} years"),
    "months": ("{value} mois", "{value} months"),
    "per_year": ("{value} / an", "{value} / year"),
    "not_given": ("non renseigné", "not given"),
    "split": ("Statut du dossier", "File status"),
    # centre
    "explanation": ("Pourquoi ce score ?", "Why this score?"),
    "explanation_help": ("En rouge, ce qui rapproche du défaut ; en vert, ce qui rapproche du remboursement. "
                         "En bas, le dossier moyen ; en haut, ce client ; pointillés : le seuil de refus.",
                         "Red pushes towards default, green towards repayment. "
                         "Bottom: the average application; top: this client; dotted: the refusal threshold."),
    "average_application": ("Dossier moyen", "Average application"),
    "others": ("Autres variables ({n})", "Other features ({n})"),
    "this_client": ("Ce client", "This client"),
    "probability_axis": ("Probabilité de défaut (%)", "Default probability (%)"),
    "contribution": ("Contribution (log-odds)", "Contribution (log-odds)"),
    "comparison": ("Le client face à la population", "The client against the population"),
    "compared_feature": ("Variable comparée (5 principales du modèle)", "Compared feature (model's top five)"),
    "repaid": ("Remboursés", "Repaid"),
    "defaulted": ("En défaut", "Defaulted"),
    "share_axis": ("Part des dossiers (%)", "Share of applications (%)"),
    "client_value": ("Valeur du client : {value}", "Client's value: {value}"),
    "percentile": ("{pct} des dossiers ont une valeur inférieure (percentile {rank}).",
                   "{pct} of applications have a lower value (percentile {rank})."),
    "client_missing_value": ("Valeur non renseignée pour ce client.", "No value for this client."),
    "debt_capacity": ("Capacité d'endettement", "Debt capacity"),
    "all_applications": ("Tous les dossiers", "All applications"),
    "accepted_applications": ("Dossiers accordés", "Accepted applications"),
    "population_mean": ("moyenne", "mean"),
    "accepted_mean": ("moyenne des accordés", "accepted mean"),
    "ratio_summary": ("Client : {client} · moyenne : {mean} · moyenne des accordés : {accepted}",
                      "Client: {client} · mean: {mean} · accepted mean: {accepted}"),
    "no_ratios": ("Revenu, annuité ou montant absents de ce jeu de données : capacité d'endettement indisponible.",
                  "Income, annuity or amount not in this dataset: no debt capacity."),
    # messages
    "unknown_client": ("Aucun dossier n° {client_id}. Le dossier affiché reste le n° {previous}.",
                       "No application with ID {client_id}. Still showing file {previous}."),
    "unknown_client_none": ("Aucun dossier n° {client_id}.", "No application with ID {client_id}."),
    "invalid_id": ("« {text} » n'est pas un numéro de dossier (chiffres uniquement).",
                   "“{text}” is not an application ID (digits only)."),
    "unavailable": ("Service de scoring indisponible ({detail}). Réessayez dans un instant.",
                    "Scoring service unavailable ({detail}). Try again in a moment."),
    "audit_unavailable": ("Le journal d'audit n'a pas pu être écrit : rien n'est affiché du dossier n° {client_id}. "
                          "Réessayez dans un instant ou appelez le support.",
                          "The audit log could not be written, so nothing is shown of file {client_id}. "
                          "Try again in a moment or call the support desk."),
    "audit_refused": ("Le journal d'audit n'a pas pu être écrit : rien n'est affiché pour cette demande. "
                      "Réessayez dans un instant ou appelez le support.",
                      "The audit log could not be written, so nothing is shown for this request. "
                      "Try again in a moment or call the support desk."),
}


def t(key: str, language: str = "fr", **values: Any) -> str:
    """The text for `key` in `language`, with `{placeholders}` filled."""
    fr, en = TEXTS[key]
    text = en if language == "en" else fr
    return text.format(**values) if values else text


def label(item: Any, language: str) -> str:
    """Business label of a feature (a dict or an object with `label` / `label_fr`)."""
    get = item.get if isinstance(item, dict) else lambda k: getattr(item, k, None)
    return (get("label") if language == "en" else get("label_fr")) or get("label") or get("feature") or ""


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and not math.isfinite(value))


def fmt_number(value: float | None, language: str = "fr", decimals: int = 0) -> str:
    """`12 345,67` (fr) or `12,345.67` (en); an em dash for a missing value."""
    if _missing(value):
        return "—"
    text = f"{float(value):,.{decimals}f}"
    if text in ("-0", "-0." + "0" * decimals):
        text = text[1:]
    if language == "en":
        return text
    return text.replace(",", THIN).replace(".", ",")


def fmt_money(value: float | None, language: str = "fr", decimals: int = 0) -> str:
    if _missing(value):
        return "—"
    number = fmt_number(abs(value), language, decimals)
    sign = "-" if value < 0 else ""
    return f"{sign}{number}{NBSP}€" if language == "fr" else f"{sign}€{number}"


def fmt_percent(share: float | None, language: str = "fr", decimals: int = 1) -> str:
    """A share (0.123) as a percentage: `12,3 %` (fr) or `12.3%` (en)."""
    if _missing(share):
        return "—"
    number = fmt_number(100.0 * float(share), language, decimals)
    return f"{number}{NBSP}%" if language == "fr" else f"{number}%"


def fmt_value(value: Any, language: str = "fr") -> str:
    """A feature value of any kind, with as many decimals as its size calls for."""
    if _missing(value):
        return t("not_given", language)
    if isinstance(value, str):
        return value
    v = float(value)
    if v.is_integer():
        return fmt_number(v, language, 0)
    magnitude = abs(v)
    decimals = 0 if magnitude >= 100 else 1 if magnitude >= 10 else 2 if magnitude >= 1 else 3
    return fmt_number(v, language, decimals)
