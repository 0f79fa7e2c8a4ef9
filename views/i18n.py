"""The dashboard's own words in French and English, and the label dictionary of the model a session shows.

`TEXTS` holds the interface's texts only (titles, buttons, messages). What the data is called, how its
values read and how numbers are written come from the bank's one label dictionary, `scoring.labels`:
`labels_for(service)` is that dictionary with the served dataset's labels and currency, read from the
model card (`ScoringService.model_card()`), so a dashboard over the API needs no engine.
"""

from __future__ import annotations

import logging
import weakref
from collections.abc import Mapping
from typing import Any

from scoring import labels as _labels
from scoring.labels import (LANGUAGES, NBSP, NOT_GIVEN, THIN, LabelDictionary, fmt_money, fmt_number,  # noqa: F401
                            fmt_percent, fmt_value)

log = logging.getLogger(__name__)

TEXTS: dict[str, tuple[str, str]] = {  # key -> (French, English)
    "title": ("Octroi de crédit : aide à la décision", "Credit decisions: scoring dashboard"),
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
    "client_id_placeholder": ("ex. 100002 (Entrée pour ouvrir)", "e.g. 100002 (Enter to open)"),
    "open": ("Ouvrir", "Open"),
    "search": ("Rechercher dans les dossiers", "Search client files"),
    "all": ("Toutes", "All"),
    "all_m": ("Tous", "All"),
    "in_years": ("{label} (ans)", "{label} (years)"),
    "in_months": ("{label} (mois)", "{label} (months)"),
    "in_days": ("{label} (jours)", "{label} (days)"),
    "sort": ("Trier par", "Sort by"),
    "descending": ("Ordre décroissant", "Descending"),
    "previous": ("◀ Préc.", "◀ Prev."),
    "next": ("Suiv. ▶", "Next ▶"),
    "page": ("Page {page} / {pages} · {total} dossiers", "Page {page} / {pages} · {total} files"),
    "no_match": ("Aucun dossier ne correspond", "No client file matches"),
    "col_id": ("N°", "ID"),
    "col_decision": ("Décision", "Decision"),
    "col_probability": ("Proba.", "Prob."),
    "col_age": ("Âge", "Age"),
    "col_income": ("Revenu", "Income"),
    "col_amount": ("Montant", "Amount"),
    "click_row": ("Cliquez sur une ligne pour ouvrir le dossier.", "Click a row to open the file."),
    "missing_roles": ("Absent de ce jeu de données : {names}.", "Not in this dataset: {names}."),
    # side bar: the client
    "no_client": ("Aucun dossier ouvert : saisissez un numéro ou choisissez dans la liste.",
                  "No file open: type an ID or pick one from the list."),
    "threshold_short": ("seuil {value}", "threshold {value}"),
    "history_repaid": ("Historique : crédit remboursé", "History: loan repaid"),
    "history_defaulted": ("Historique : défaut de paiement", "History: loan defaulted"),
    "new_application": ("Nouvelle demande", "New application"),
    "profile": ("Profil", "Profile"),
    "application": ("Demande", "Application"),
    "per_year": ("{value} / an", "{value} / year"),
    "per_month": ("{value} / mois", "{value} / month"),
    "debts": ("Crédits existants", "Existing credits"),
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
    "percentile_longer": ("{pct} des dossiers ont une durée plus longue (percentile {rank}).",
                          "{pct} of applications have a longer duration (percentile {rank})."),
    "client_missing_value": ("Valeur non renseignée pour ce client.", "No value for this client."),
    "debt_capacity": ("Capacité d'endettement", "Debt capacity"),
    "all_applications": ("Tous les dossiers", "All applications"),
    "accepted_applications": ("Dossiers accordés", "Accepted applications"),
    "ratio_summary": ("Client : {client} · moyenne : {mean} · moyenne des accordés : {accepted}",
                      "Client: {client} · mean: {mean} · accepted mean: {accepted}"),
    "no_ratios": ("Revenu, annuité ou montant absents de ce jeu de données : capacité d'endettement indisponible.",
                  "Income, annuity or amount not in this dataset: no debt capacity."),
    "effort_rate": ("Taux d'effort : {rate} (plafond {cap})", "Effort rate: {rate} (cap {cap})"),
    "effort_over_cap": ("au-dessus du plafond", "over the cap"),
    "effort_parts": ("Crédits existants {existing} + mensualité demandée {payment}, sur un revenu de {income}",
                     "Existing credits {existing} + payment asked {payment}, out of an income of {income}"),
    "effort_remaining": ("Capacité restante sous le plafond : {amount}", "Remaining capacity under the cap: {amount}"),
    "effort_exceeded": ("Dépassement du plafond : {amount}", "Over the cap by {amount}"),
    "effort_max_amount": ("Montant maximal finançable sur {term} : {amount}",
                          "Largest amount affordable over {term}: {amount}"),
    "effort_rank": ("Taux d'effort plus élevé que celui de {pct} des clients accordés.",
                    "Effort rate higher than that of {pct} of accepted clients."),
    # centre: the advisor's answer
    "advice": ("Réponse au client", "Answer to the client"),
    "reasons": ("Motifs", "Reasons"),
    "reasons_risk": ("Ce qui fait monter le risque", "What raises the risk"),
    "reasons_strength": ("Ce qui le fait baisser", "What lowers it"),
    "no_reasons": ("Aucun motif à citer.", "No reason to give."),
    "offers": ("Offre acceptable", "Acceptable offer"),
    "offer_line": ("accepté à {amount} sur {term} mois, probabilité {probability}",
                   "accepted at {amount} over {term} months, probability {probability}"),
    "offer_line_no_term": ("accepté à {amount}, probabilité {probability}",
                           "accepted at {amount}, probability {probability}"),
    "offer_down_payment": ("apport {amount}", "down payment {amount}"),
    "offer_annuity": ("mensualité {amount}", "monthly payment {amount}"),
    "peers": ("Dossiers comparables", "Similar applicants"),
    "peers_line": ("Sur les {k} dossiers passés les plus proches, {rate} ont fait défaut ; probabilité de ce client : "
                   "{probability}.",
                   "Of the {k} most similar past applicants, {rate} defaulted; this client's probability: "
                   "{probability}."),
    "decision": ("Décision", "Decision"),
    "follow_model": ("Suivre le modèle ({decision})", "Follow the model ({decision})"),
    "override_model": ("Décider autrement ({decision})", "Decide otherwise ({decision})"),
    "justification": ("Justification (obligatoire si vous ne suivez pas le modèle)",
                      "Justification (required when you do not follow the model)"),
    "record_decision": ("Enregistrer la décision", "Record the decision"),
    "decisions_recorded": ("Décisions enregistrées", "Recorded decisions"),
    "no_decisions": ("Aucune décision enregistrée pour ce dossier.", "No decision recorded for this file."),
    "decision_by": ("{at} · {advisor} : {decision} (modèle : {model})", "{at} · {advisor}: {decision} (model: {model})"),
    "review": ("à étudier", "to review"),
    "review_help": ("Probabilité proche du seuil : dossier à étudier par le conseiller.",
                    "Probability close to the threshold: for the advisor to review."),
    "advice_loading": ("Chargement…", "Loading…"),
    "justification_required": ("Une décision différente de celle du modèle doit être justifiée : rien n'a été "
                               "enregistré.", "A decision other than the model's needs a justification: nothing "
                               "was recorded."),
    "justification_too_long": ("La justification est limitée à {limit} caractères : rien n'a été enregistré.",
                               "The justification is limited to {limit} characters: nothing was recorded."),
    "decision_refused": ("Décision refusée par le service : {detail}", "Decision refused by the service: {detail}"),
    "decision_recorded": ("Décision enregistrée.", "Decision recorded."),
    # centre: what-if and new applications
    "whatif": ("Simulation : et si… ?", "What-if"),
    "whatif_start": ("Simuler d'autres conditions", "Try other terms"),
    "whatif_help": ("Modifiez le prêt ou le profil (jamais le genre ni l'âge) : la probabilité, la décision et les "
                    "motifs sont recalculés par le modèle de production.",
                    "Change the loan or the profile (never gender or age): the probability, decision and reasons are "
                    "recomputed by the production model."),
    "whatif_reset": ("Revenir au dossier", "Back to the file"),
    "whatif_result": ("Avec ces valeurs : {decision}, probabilité de défaut {probability}",
                      "With these values: {decision}, default probability {probability}"),
    "whatif_before": ("Dossier tel quel (modèle de production) : {decision}, {probability}",
                      "File as it stands (production model): {decision}, {probability}"),
    "whatif_changed": ("Modifié : {fields}", "Changed: {fields}"),
    "years_unit": ("ans", "years"),
    "new_application": ("Nouvelle demande", "New application"),
    "new_application_help": ("Saisissez la demande (les champs vides sont des valeurs manquantes) : elle est notée "
                             "par le modèle de production et enregistrée comme un nouveau dossier.",
                             "Type the application (empty fields are missing values): it is scored by the production "
                             "model and saved as a new client file."),
    "new_application_create": ("Noter et créer le dossier", "Score and create the file"),
    "application_created": ("Dossier n° {client_id} créé et ouvert.", "File {client_id} created and opened."),
    "application_refused": ("Demande refusée : corrigez le champ signalé. Rien n'a été enregistré.",
                            "Application refused: correct the field shown. Nothing was saved."),
    "field_refused": ("Valeur refusée : {reason}", "Value refused: {reason}"),
    "application_not_saved": ("Demande non enregistrée : {detail}", "Application not saved: {detail}"),
    # the offer decided on, the decision file, the trust flags (issue 12, items 7-8)
    "decide_on": ("Décider sur", "Decide on"),
    "offer_as_filed": ("la demande telle que déposée", "the application as filed"),
    "on_offer": ("sur l'offre : {offer}", "on the offer: {offer}"),
    "decision_file": ("Dossier de décision", "Decision file"),
    "file_of": ("Décision", "Decision"),
    "file_choice": ("n° {id} du {at} ({decision})", "no. {id} of {at} ({decision})"),
    "download_file": ("Télécharger le dossier ({format})", "Download the file ({format})"),
    "file_refused": ("Le dossier de décision n'a pas pu être produit : {detail}",
                     "The decision file could not be produced: {detail}"),
    "flags": ("Points de vigilance", "Trust flags"),
    # messages
    "unknown_client": ("Aucun dossier n° {client_id}. Le dossier affiché reste le n° {previous}.",
                       "No application with ID {client_id}. Still showing file {previous}."),
    "unknown_client_none": ("Aucun dossier n° {client_id}.", "No application with ID {client_id}."),
    "invalid_id": ("« {text} » n'est pas un numéro de dossier (chiffres uniquement).",
                   "“{text}” is not an application ID (digits only)."),
    "unavailable": ("Service de scoring indisponible ({detail}). Réessayez dans un instant.",
                    "Scoring service unavailable ({detail}). Try again in a moment."),
    # the analysts' audit panel
    "audit_trail": ("Journal d'audit d'un dossier", "Audit trail of a client file"),
    "audit_client_id": ("N° de dossier", "Application ID"),
    "audit_placeholder": ("ex. 100002 (Entrée pour afficher)", "e.g. 100002 (Enter to show)"),
    "audit_show": ("Afficher", "Show"),
    "audit_summary": ("{n} entrée(s) pour le dossier n° {client_id}, la plus récente d'abord (au plus {limit}).",
                      "{n} entr(y/ies) for application {client_id}, newest first (at most {limit})."),
    "audit_none": ("Saisissez un n° de dossier pour voir qui l'a consulté, quand, et ce qui a été décidé.",
                   "Type an application ID to see who opened it, when, and what was decided."),
    "audit_col_at": ("Date (UTC)", "When (UTC)"),
    "audit_col_user": ("Utilisateur", "User"),
    "audit_col_event": ("Action", "Action"),
    "audit_col_decision": ("Décision", "Decision"),
    "audit_col_probability": ("Probabilité de défaut", "Default probability"),
    "audit_col_source": ("Origine", "Source"),
    "audit_col_details": ("Détails", "Details"),
    "audit_unavailable": ("Le journal d'audit n'a pas pu être écrit : rien n'est affiché du dossier n° {client_id}. "
                          "Réessayez dans un instant ou appelez le support.",
                          "The audit log could not be written, so nothing is shown of file {client_id}. "
                          "Try again in a moment or call the support desk."),
    "audit_refused": ("Le journal d'audit n'a pas pu être écrit : rien n'est affiché pour cette demande. "
                      "Réessayez dans un instant ou appelez le support.",
                      "The audit log could not be written, so nothing is shown for this request. "
                      "Try again in a moment or call the support desk."),
    # the analysts' governance panels (fairness, drift and outcomes by month, performance)
    "governance_loading": ("Calcul des indicateurs…", "Computing the figures…"),
    "na": ("n.d.", "n/a"),
    "fairness": ("Équité par attribut protégé", "Fairness by protected attribute"),
    "fairness_help": ("Ratio d'impact disparate : taux d'acceptation le plus bas / le plus haut (règle des quatre "
                      "cinquièmes : au moins {di}). Écart d'égalité des chances : plus grand écart du taux "
                      "d'acceptation des clients qui ont remboursé (au plus {eod}). Calibration : défaut prédit "
                      "face au défaut observé.",
                      "Disparate-impact ratio: lowest acceptance rate / highest (four-fifths rule: at least {di}). "
                      "Equal-opportunity difference: largest gap in the acceptance rate of clients who repaid "
                      "(at most {eod}). Calibration: predicted against observed default rate."),
    "attr_gender": ("Genre", "Gender"),
    "attr_age": ("Tranche d'âge", "Age band"),
    "pop_labelled (out of fold)": ("Historique (hors échantillon)", "Labelled history (out of fold)"),
    "pop_new applications": ("Nouvelles demandes", "New applications"),
    "fair_col_attribute": ("Attribut", "Attribute"),
    "fair_col_population": ("Population", "Population"),
    "fair_col_group": ("Groupe", "Group"),
    "fair_col_applications": ("Demandes", "Applications"),
    "fair_col_acceptance": ("Taux d'acceptation", "Acceptance rate"),
    "fair_col_predicted": ("Défaut prédit", "Predicted default"),
    "fair_col_observed": ("Défaut observé", "Observed default"),
    "fair_col_missed": ("Défauts acceptés", "Missed defaults"),
    "fair_col_refused_good": ("Bons clients refusés", "Good clients refused"),
    "metric_disparate_impact_ratio": ("Ratio d'impact disparate", "Disparate-impact ratio"),
    "metric_equal_opportunity_difference": ("Écart d'égalité des chances", "Equal-opportunity difference"),
    "fair_alert": ("ALERTE {metric} : {value} (limite {limit})", "ALERT {metric}: {value} (limit {limit})"),
    "fair_ok": ("Dans les limites", "Within the limits"),
    "fair_small": ("Trop petits pour être comparés : {groups}", "Too small to be compared: {groups}"),
    "drift_panel": ("Dérive du score et des variables par mois", "Drift of the score and the features by month"),
    "outcomes_panel": ("Résultats et erreurs par mois de décision", "Outcomes and errors by month of decision"),
    "psi_heatmap": ("Dérive du score et des variables suivies par mois de demande (PSI : vert stable, jaune ≥ 0,1, "
                    "rouge ≥ 0,2 : alerte)",
                    "Drift of the score and the monitored features by month of application (PSI: green stable, "
                    "yellow >= 0.1, red >= 0.2: alert)"),
    "outcomes_chart": ("Défauts, erreurs et AUC par mois", "Defaults, errors and AUC by month"),
    "estimate_note": ("Les taux « estimés » viennent des probabilités du modèle, avant que les remboursements ne "
                      "soient connus : une estimation (exacte si le modèle est calibré), pas une mesure.",
                      "The “estimated” rates come from the model's own probabilities, before the repayments are "
                      "known: an estimate (exact if the model is calibrated), not a measurement."),
    "month": ("Mois", "Month"),
    "score_series": ("Score", "Score"),
    "rate_axis": ("Taux", "Rate"),
    "observed_default": ("Défaut observé", "Observed default rate"),
    "realised_error": ("Erreur réalisée", "Realised error rate"),
    "expected_default": ("Défaut estimé (avant résultats)", "Estimated default rate (before outcomes)"),
    "expected_error": ("Erreur estimée (avant résultats)", "Estimated error rate (before outcomes)"),
    "auc_series": ("AUC", "AUC"),
    "mon_col_period": ("Période", "Period"),
    "split_train": ("historique", "history"),
    "split_new": ("nouvelles demandes", "new applications"),
    "mon_col_acceptance": ("Acceptation", "Acceptance"),
    "mon_col_outcomes": ("Résultats connus", "Known outcomes"),
    "mon_col_drifting": ("Variables en dérive", "Drifting features"),
    "drift_features": ("Variables suivies : cliquez sur une ligne pour voir ses distributions",
                       "Monitored features: click a row to see its distributions"),
    "psi_last": ("PSI du dernier mois", "Last month's PSI"),
    "psi_max": ("PSI maximal", "Highest PSI"),
    "monitored_feature": ("Variable suivie", "Monitored feature"),
    "drift_month": ("Demandes comparées", "Applications compared"),
    "all_new": ("Toutes les nouvelles demandes", "Every new application"),
    "distribution_title": ("{feature} : référence et demandes comparées (PSI {psi})",
                           "{feature}: reference and compared applications (PSI {psi})"),
    "reference_series": ("Référence (historique)", "Reference (history)"),
    "current_series": ("Demandes comparées", "Compared applications"),
    "bin": ("Intervalle", "Bin"),
    "missing_bin": ("non renseigné", "missing"),
    "performance": ("Performance du modèle (hors échantillon)", "Model performance (out of fold)"),
    "segment": ("Segment", "Segment"),
    "segment_all": ("Tous les dossiers", "All applications"),
    "segment_contract_type": ("Type de contrat", "Contract type"),
    "segment_age": ("Tranche d'âge", "Age band"),
    "group": ("Groupe", "Group"),
    "roc": ("Courbe ROC", "ROC curve"),
    "pr": ("Précision-rappel", "Precision-recall"),
    "reliability": ("Calibration (fiabilité)", "Reliability diagram"),
    "fpr": ("Taux de faux positifs", "False positive rate"),
    "tpr": ("Taux de vrais positifs", "True positive rate"),
    "recall": ("Rappel (défauts refusés)", "Recall (defaults refused)"),
    "precision": ("Précision", "Precision"),
    "predicted": ("Défaut prédit", "Predicted default rate"),
    "observed": ("Défaut observé", "Observed default rate"),
    "perf_summary": ("{n} dossiers, {d} défauts · AUC {auc} · KS {ks} · Gini {gini} · Brier {brier}",
                     "{n} applications, {d} defaults · AUC {auc} · KS {ks} · Gini {gini} · Brier {brier}"),
    "confusion": ("Décisions au seuil {threshold}", "Decisions at the threshold {threshold}"),
    "cm_defaulted": ("En défaut", "Defaulted"),
    "cm_repaid": ("Remboursé", "Repaid"),
    "cm_refused": ("Refusé", "Refused"),
    "cm_accepted": ("Accordé", "Accepted"),
    "cm_cost": ("Coût d'un défaut accepté : {missed} ; d'un bon client refusé : {refused}. Coût moyen par "
                "dossier : {cost}.", "Cost of a missed default: {missed}; of a good client refused: {refused}. "
                "Mean cost per application: {cost}."),
    # the analysts' sections, one shown at a time (views/sections.py): the titles of the bar's buttons
    "section_audit": ("Journal d'audit", "Audit trail"),
    "section_fairness": ("Équité", "Fairness"),
    "section_drift": ("Dérive", "Drift"),
    "section_outcomes": ("Résultats", "Outcomes"),
    "section_performance": ("Performance", "Performance"),
    "section_policy": ("Politique de seuil", "Threshold policy"),
    "section_versions": ("Versions du modèle", "Model versions"),
    # the threshold policy (analysts, views/policy.py)
    "policy": ("Politique de seuil", "Threshold policy"),
    "policy_help": ("Simulation sur les {n} demandes historiques (probabilités hors échantillon) : ce que chaque seuil "
                    "de refus aurait donné. Seuil servi : {current} ({source}).",
                    "Simulated on the {n} labelled applications (out-of-fold probabilities): what each refusal "
                    "threshold would have done. Threshold served: {current} ({source})."),
    "policy_source_build": ("celui du modèle", "the model build's"),
    "policy_source_policy": ("adopté par un analyste", "adopted by an analyst"),
    "policy_mode": ("Proposer un seuil selon", "Propose a threshold from"),
    "policy_mode_costs": ("les coûts des erreurs", "the costs of errors"),
    "policy_mode_target": ("un taux d'acceptation visé", "a target acceptance rate"),
    "policy_cost_missed": ("Coût d'un défaut accepté", "Cost of a missed default"),
    "policy_cost_refused": ("Coût d'un bon client refusé", "Cost of a refused good client"),
    "policy_target": ("Taux d'acceptation visé (0-1)", "Target acceptance rate (0-1)"),
    "policy_chart_rates": ("Taux", "Rates"),
    "policy_chart_loss": ("Perte attendue", "Expected loss"),
    "policy_chart_fairness": ("Équité", "Fairness"),
    "policy_curves": ("Taux selon le seuil", "Rates by threshold"),
    "policy_loss_chart": ("Perte attendue par demande selon le seuil", "Expected loss per application by threshold"),
    "policy_fairness_chart": ("Équité selon le seuil", "Fairness by threshold"),
    "policy_threshold_axis": ("Seuil de refus (probabilité de défaut)", "Refusal threshold (default probability)"),
    "policy_acceptance": ("Acceptation", "Acceptance"),
    "policy_loss": ("Perte attendue", "Expected loss"),
    "policy_missed": ("Défauts acceptés (part des défauts)", "Missed defaults (share of defaulters)"),
    "policy_refused_good": ("Bons clients refusés (part)", "Good clients refused (share)"),
    "policy_default_accepted": ("Taux de défaut des acceptés", "Default rate of the accepted"),
    "policy_di": ("Impact disparate ({attribute})", "Disparate impact ({attribute})"),
    "policy_eod": ("Écart d'égalité des chances ({attribute})", "Equal-opportunity difference ({attribute})"),
    "policy_current": ("Seuil servi", "Threshold served"),
    "policy_proposed": ("Seuil proposé", "Proposed threshold"),
    "policy_col_figure": ("Indicateur", "Figure"),
    "policy_col_current": ("Seuil servi ({t})", "Served ({t})"),
    "policy_col_proposed": ("Seuil proposé ({t})", "Proposed ({t})"),
    "policy_reason": ("Motif de l'adoption (obligatoire)", "Reason for adopting it (required)"),
    "policy_adopt": ("Adopter le seuil proposé", "Adopt the proposed threshold"),
    "policy_reason_required": ("Indiquez un motif pour changer le seuil de décision.",
                               "Give a reason to change the decision threshold."),
    "policy_refused": ("Changement refusé : {detail}", "Change refused: {detail}"),
    "policy_bad_input": ("Valeur refusée ({field}) : {detail}", "Value refused ({field}): {detail}"),
    "policy_adopted": ("Seuil {fr} adopté : toute nouvelle décision est prise à ce seuil.",
                       "Threshold {en} adopted: every new decision is taken at it."),
    "policy_history": ("Historique des seuils adoptés", "History of the adopted thresholds"),
    "policy_history_empty": ("Aucun seuil adopté : le seuil servi est celui du modèle.",
                             "No threshold adopted: the model build's threshold is served."),
    "policy_col_at": ("Date", "When"),
    "policy_col_version": ("Version du modèle", "Model version"),
    "policy_col_threshold": ("Seuil", "Threshold"),
    "policy_col_previous": ("Précédent", "Previous"),
    "policy_col_user": ("Par", "By"),
    "policy_col_reason": ("Motif", "Reason"),
    "policy_col_origin": ("Issu de", "From"),
    "policy_origin_costs": ("coûts {missed} / {refused}", "costs {missed} / {refused}"),
    "policy_origin_target": ("acceptation visée {target}", "target acceptance {target}"),
    # ------------------------------------------------------------------ model versions (views/versions.py)
    "versions_title": ("Versions du modèle", "Model versions"),
    "versions_help": ("Chaque construction du modèle est une version. Comparez-en deux sur les mêmes dossiers avant "
                      "d'en servir une autre ; le changement vaut pour toute nouvelle décision, il est tracé avec "
                      "son motif et peut être annulé en resservant la version précédente.",
                      "Each build of the model is a version. Compare two on the same client files before serving "
                      "another; the change applies to every new decision, is logged with its reason and can be "
                      "undone by serving the previous version again."),
    "ver_col_active": ("Servie", "Served"),
    "ver_col_version": ("Version", "Version"),
    "ver_col_created": ("Créée le", "Created"),
    "ver_col_auc": ("AUC (test)", "AUC (holdout)"),
    "ver_col_oof_auc": ("AUC (hors échantillon)", "AUC (out of fold)"),
    "ver_col_threshold": ("Seuil", "Threshold"),
    "ver_col_acceptance": ("Taux d'acceptation", "Acceptance rate"),
    "ver_col_alerts": ("Alertes d'équité", "Fairness alerts"),
    "ver_col_trained_in": ("Entraînée sur", "Trained in"),
    "ver_active_mark": ("● servie", "● served"),
    "versions_compare_title": ("Comparer deux versions", "Compare two versions"),
    "versions_a": ("Version de référence (A)", "Reference version (A)"),
    "versions_b": ("Version comparée (B)", "Compared version (B)"),
    "versions_compare": ("Comparer", "Compare"),
    "versions_comparison": ("B contre A sur {clients} dossiers ({labelled} avec issue connue) : écart moyen du score "
                            "{mean} (moyen absolu {abs}, 95e centile {p95}) ; {refused} accordés par A refusés par B, "
                            "{accepted} refusés par A accordés par B.",
                            "B against A on {clients} client files ({labelled} with a known outcome): mean score "
                            "shift {mean} (mean absolute {abs}, 95th percentile {p95}); {refused} accepted by A are "
                            "refused by B, {accepted} refused by A are accepted by B."),
    "versions_cmp_version": ("Version", "Version"),
    "versions_cmp_acceptance": ("Taux d'acceptation", "Acceptance rate"),
    "versions_cmp_auc": ("AUC hors échantillon", "Out-of-fold AUC"),
    "versions_activate_title": ("Servir une autre version", "Serve another version"),
    "versions_target": ("Version à servir", "Version to serve"),
    "versions_reason": ("Motif (obligatoire)", "Reason (required)"),
    "versions_reason_placeholder": ("Pourquoi changer de version ?", "Why change the version?"),
    "versions_activate": ("Servir cette version", "Serve this version"),
    "versions_rollback_hint": ("Version servie avant le dernier changement : {version}",
                               "Version served before the last change: {version}"),
    "versions_history_title": ("Historique des versions", "Versions history"),
    "hist_col_at": ("Date (UTC)", "Date (UTC)"),
    "hist_col_event": ("Événement", "Event"),
    "hist_col_version": ("Version", "Version"),
    "hist_col_previous": ("Version précédente", "Previous version"),
    "hist_col_user": ("Par", "By"),
    "hist_col_reason": ("Motif", "Reason"),
    "hist_registered": ("construite", "built"),
    "hist_activated": ("servie", "served"),
    "versions_pick_two": ("Choisissez deux versions différentes à comparer.", "Choose two different versions to compare."),
    "versions_not_comparable": ("Les versions {a} et {b} ne peuvent pas être comparées (aucun dossier commun).",
                                "Versions {a} and {b} cannot be compared (no client file in common)."),
    "versions_pick_target": ("Choisissez la version à servir.", "Choose the version to serve."),
    "versions_reason_required": ("Un motif est obligatoire pour changer la version servie.",
                                 "A reason is required to change the version served."),
    "versions_conflict": ("La version {version} ne peut pas être servie : elle est déjà servie, ou a été construite "
                          "sur d'autres données ou d'autres variables (reconstruisez plutôt).",
                          "Version {version} cannot be served: it is served already, or was built on other data or "
                          "features (rebuild instead)."),
    "versions_refused": ("La version {version} n'a pas pu être servie (version inconnue ou motif trop long).",
                         "Version {version} could not be served (unknown version or reason too long)."),
    "versions_activated": ("Version {version} servie (à la place de {previous}) pour toute nouvelle décision.",
                           "Version {version} served (instead of {previous}) for every new decision."),
}


def t(key: str, language: str = "fr", **values: Any) -> str:
    """The text for `key` in `language`, with `{placeholders}` filled."""
    fr, en = TEXTS[key]
    text = en if language == "en" else fr
    return text.format(**values) if values else text


# ------------------------------------------------------------------------------------------ the label dictionary
def card_labels(card: Mapping[str, Any]) -> LabelDictionary:
    """The label dictionary of the model a card describes: the built-in entries, the dataset's ``labels`` and
    ``currency`` (the card's ``schema``, `scoring.schema.DatasetSchema.to_dict()`), and, for a feature the
    dictionary has no entry for, the label the model was built with (``features``)."""
    base = _labels.current()
    schema = card.get("schema") if isinstance(card.get("schema"), Mapping) else {}
    known = {f.get("name"): f for f in card.get("features") or () if isinstance(f, Mapping)}
    built = {name: {"fr": f["label_fr"], "en": f["label"]} for name, f in known.items()
             if isinstance(name, str) and name not in base
             and all(isinstance(f.get(k), str) and f[k].strip() for k in ("label", "label_fr"))}
    currency = schema.get("currency")
    currency = currency.strip().upper() if isinstance(currency, str) and currency.strip() else None
    try:
        return base.with_overrides({**built, **(schema.get("labels") or {})}, currency=currency)
    except ValueError as exc:         # a card from another version or service: keep the built-in words
        log.warning("the model card's labels are not readable (%s): built-in labels only", exc)
        return base.with_overrides(built, currency=currency)


_by_service: "weakref.WeakKeyDictionary[Any, LabelDictionary]" = weakref.WeakKeyDictionary()


def labels_for(service) -> LabelDictionary:
    """The label dictionary of the model `service` serves, read from its card once per service object
    (the dictionary itself is built once per dataset: `LabelDictionary.with_overrides` caches it)."""
    try:
        return _by_service[service]
    except KeyError:
        pass
    except TypeError:                 # not weakly referenceable: read the card each time
        return card_labels(service.model_card())
    found = _by_service[service] = card_labels(service.model_card())
    return found


def feature_label(labels: LabelDictionary, feature: str, language: str) -> str:
    """A model feature's label (a dataset column of that name, never a client file's business column)."""
    return labels.entry(feature, client_file=False).text(language)
