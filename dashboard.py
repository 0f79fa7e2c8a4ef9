"""`panel serve dashboard.py`: the credit-scoring dashboard at /dashboard.

`make run` (`python -m views.serve`) serves the same app with logins, compression and a health probe.
Served without login, the page has every part (local development). Behind Panel's own `--oauth-provider`,
the role comes from the ID token's `roles` claim, and a login without a dashboard role sees nothing.
"""

import panel as pn

from views.app import create_app, role_from_claims

if pn.state.served:
    user = pn.state.user
    create_app(user=user, role=role_from_claims(pn.state.user_info) if user else None,
               require_role=user is not None).servable(title="Scoring crédit")
