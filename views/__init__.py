"""Panel views of the credit-scoring dashboard: session state (param), components (Viewers), the app and its launcher.

Views talk only to a `scoring.contracts.ScoringService` (chosen by `scoring.backends`); they never import the
engine (model, store, XGBoost, DuckDB), not even for a type, so a dashboard over the API stays light.
"""
