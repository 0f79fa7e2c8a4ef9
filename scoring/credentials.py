"""Local secrets for `make run` / `make api`: dashboard logins, cookie secret, API tokens.

Generated once into a directory outside git (`secrets/`), readable by the owner only. Real
deployments mount their own files or use OAuth; nothing secret lives in the code.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

USERS_FILE = "dashboard_users.json"
COOKIE_FILE = "cookie_secret"
TOKENS_FILE = "api_tokens"


def ensure_secrets(directory: str | Path) -> dict[str, Path]:
    """Create what is missing (never overwrite); return the file paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    os.chmod(d, 0o700)
    paths = {"users": d / USERS_FILE, "cookie_secret": d / COOKIE_FILE, "api_tokens": d / TOKENS_FILE}
    contents = {
        "users": lambda: json.dumps({"advisor": secrets.token_urlsafe(12), "analyst": secrets.token_urlsafe(12)},
                                    indent=1),
        "cookie_secret": lambda: secrets.token_urlsafe(32),
        "api_tokens": lambda: secrets.token_urlsafe(32),
    }
    for key, path in paths.items():
        if not path.exists():
            path.write_text(contents[key]() + "\n")
            os.chmod(path, 0o600)
    return paths


def read_tokens(text: str) -> frozenset[str]:
    """Comma- or newline-separated tokens, blanks ignored."""
    return frozenset(t.strip() for t in text.replace("\n", ",").split(",") if t.strip())
