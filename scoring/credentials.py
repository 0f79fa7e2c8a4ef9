"""Local secrets for `make run` / `make api`: dashboard logins, cookie secret, API tokens.

Generated once into a directory outside git (`secrets/`), readable by the owner only. Real
deployments mount their own files or use OAuth; nothing secret lives in the code.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from .errors import ScoringError

USERS_FILE = "dashboard_users.json"
COOKIE_FILE = "cookie_secret"
TOKENS_FILE = "api_tokens"


class SecretFileError(ScoringError, PermissionError):
    """A secret file that others than its owner may read or write."""


def create_private(path: Path, text: str) -> bool:
    """Write `text` to a new file readable by its owner only, created with that mode (never a moment wider);
    False if the file exists already (it is left as it is)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return True


def check_private(path: Path) -> None:
    """Refuse a secret file that group or others may read or write (`chmod 600 FILE` mends it)."""
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise SecretFileError(f"{path} is readable or writable by others than its owner (mode {mode:o}): "
                              f"restrict it with `chmod 600 {path}`")


def ensure_secrets(directory: str | Path) -> dict[str, Path]:
    """Create what is missing (never overwrite) with owner-only modes; refuse existing files with wider modes;
    return the file paths."""
    d = Path(directory)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = {"users": d / USERS_FILE, "cookie_secret": d / COOKIE_FILE, "api_tokens": d / TOKENS_FILE}
    contents = {
        "users": lambda: json.dumps({"advisor": secrets.token_urlsafe(12), "analyst": secrets.token_urlsafe(12)},
                                    indent=1),
        "cookie_secret": lambda: secrets.token_urlsafe(32),
        "api_tokens": lambda: secrets.token_urlsafe(32),
    }
    for key, path in paths.items():
        if not create_private(path, contents[key]() + "\n"):
            check_private(path)
    return paths


def read_tokens(text: str) -> frozenset[str]:
    """Comma- or newline-separated tokens, blanks ignored."""
    return frozenset(t.strip() for t in text.replace("\n", ",").split(",") if t.strip())
