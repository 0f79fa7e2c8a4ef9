"""Panel views of the credit-scoring dashboard: session state (param), components (Viewers), the app and its launcher.

Views talk only to `scoring.service.ScoringService`; they never import the model or the store.
"""
