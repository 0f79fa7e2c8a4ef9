"""`panel serve dashboard.py`: the credit-scoring dashboard at /dashboard.

`make run` (`python -m views.serve`) serves the same app with logins, compression and a health probe.
"""

import panel as pn

from views.app import create_app

if pn.state.served:
    create_app().servable(title="Scoring crédit")
