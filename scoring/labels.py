"""Business labels (English, French) of model features, in the bank's words."""

from __future__ import annotations

_LABELS: dict[str, tuple[str, str]] = {
    "EXT_SOURCE_1": ("External score 1", "Score externe 1"),
    "EXT_SOURCE_2": ("External score 2", "Score externe 2"),
    "EXT_SOURCE_3": ("External score 3", "Score externe 3"),
    "AGE_YEARS": ("Age (years)", "Âge (ans)"),
    "EMPLOYMENT_YEARS": ("Employment seniority (years)", "Ancienneté dans l'emploi (ans)"),
    "DAYS_EMPLOYED_MISSING": ("Not employed (pensioner, unemployed)", "Sans emploi (retraité, chômeur)"),
    "CREDIT_INCOME_RATIO": ("Credit / income", "Crédit / revenu"),
    "ANNUITY_INCOME_RATIO": ("Annuity / income (debt ratio)", "Annuité / revenu (taux d'endettement)"),
    "CREDIT_TERM_MONTHS": ("Credit term (months)", "Durée du crédit (mois)"),
    "CREDIT_GOODS_RATIO": ("Credit / goods price", "Crédit / prix du bien"),
    "AMT_INCOME_TOTAL": ("Yearly income", "Revenu annuel"),
    "AMT_CREDIT": ("Credit amount", "Montant du crédit"),
    "AMT_ANNUITY": ("Yearly annuity", "Annuité annuelle"),
    "AMT_GOODS_PRICE": ("Goods price", "Prix du bien"),
    "NAME_CONTRACT_TYPE": ("Contract type", "Type de contrat"),
    "CODE_GENDER": ("Gender", "Genre"),
    "FLAG_OWN_CAR": ("Owns a car", "Possède une voiture"),
    "FLAG_OWN_REALTY": ("Owns real estate", "Propriétaire d'un bien immobilier"),
    "CNT_CHILDREN": ("Number of children", "Nombre d'enfants"),
    "CNT_FAM_MEMBERS": ("Family members", "Membres de la famille"),
    "NAME_TYPE_SUITE": ("Accompanied by", "Accompagné par"),
    "NAME_INCOME_TYPE": ("Income type", "Type de revenu"),
    "NAME_EDUCATION_TYPE": ("Education", "Niveau d'études"),
    "NAME_FAMILY_STATUS": ("Family status", "Situation familiale"),
    "NAME_HOUSING_TYPE": ("Housing", "Logement"),
    "REGION_POPULATION_RELATIVE": ("Region population density", "Densité de population de la région"),
    "DAYS_REGISTRATION": ("Days since registration change", "Jours depuis le changement d'enregistrement"),
    "DAYS_ID_PUBLISH": ("Days since ID document change", "Jours depuis le changement de pièce d'identité"),
    "DAYS_LAST_PHONE_CHANGE": ("Days since phone change", "Jours depuis le changement de téléphone"),
    "OWN_CAR_AGE": ("Car age (years)", "Âge de la voiture (ans)"),
    "OCCUPATION_TYPE": ("Occupation", "Profession"),
    "ORGANIZATION_TYPE": ("Employer type", "Type d'employeur"),
    "REGION_RATING_CLIENT": ("Region rating", "Note de la région"),
    "REGION_RATING_CLIENT_W_CITY": ("Region rating (with city)", "Note de la région (avec ville)"),
    "WEEKDAY_APPR_PROCESS_START": ("Application weekday", "Jour de la demande"),
    "HOUR_APPR_PROCESS_START": ("Application hour", "Heure de la demande"),
    "REG_CITY_NOT_LIVE_CITY": ("Lives outside registration city", "Réside hors de la ville d'enregistrement"),
    "REG_CITY_NOT_WORK_CITY": ("Works outside registration city", "Travaille hors de la ville d'enregistrement"),
    "FLAG_EMP_PHONE": ("Gave employer phone", "Téléphone employeur fourni"),
    "FLAG_WORK_PHONE": ("Gave work phone", "Téléphone professionnel fourni"),
    "FLAG_PHONE": ("Gave home phone", "Téléphone fixe fourni"),
    "FLAG_DOCUMENT_3": ("Provided document 3", "Document 3 fourni"),
    "DEF_30_CNT_SOCIAL_CIRCLE": ("Defaults in social circle (30 days)", "Défauts dans l'entourage (30 jours)"),
    "DEF_60_CNT_SOCIAL_CIRCLE": ("Defaults in social circle (60 days)", "Défauts dans l'entourage (60 jours)"),
    "OBS_30_CNT_SOCIAL_CIRCLE": ("Observed social circle (30 days)", "Entourage observé (30 jours)"),
    "AMT_REQ_CREDIT_BUREAU_YEAR": ("Credit bureau enquiries (year)", "Consultations du bureau de crédit (an)"),
    "TOTALAREA_MODE": ("Total living area", "Surface habitable totale"),
    # business columns of the client files
    "debt_ratio": ("Annuity / income", "Annuité / revenu"),
    "credit_income_ratio": ("Credit / income", "Crédit / revenu"),
}

_SUFFIX_FR = {"_AVG": " (moyenne)", "_MODE": " (mode)", "_MEDI": " (médiane)"}


def _humanize(name: str) -> str:
    text = name.replace("_", " ").strip().lower()
    return text[:1].upper() + text[1:]


def feature_labels(name: str) -> tuple[str, str]:
    """(English, French) label of a feature; unknown features get a readable version of their name."""
    if name in _LABELS:
        return _LABELS[name]
    if name.endswith("_MISSING"):
        en, fr = feature_labels(name[: -len("_MISSING")])
        return f"{en}: not given", f"{fr} : non renseigné"
    human = _humanize(name)
    return human, human
