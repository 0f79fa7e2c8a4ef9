"""`panel serve dashboard.py`: the credit-scoring dashboard at /dashboard (`make run` adds auth and compression)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # single-row SHAP: one OpenMP thread is fastest (see views/serve.py)

import panel as pn  # noqa: E402

from views.app import create_app  # noqa: E402

if pn.state.served:
    create_app().servable(title="Scoring crédit")
