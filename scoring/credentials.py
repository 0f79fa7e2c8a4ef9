"""Local secrets for `make run` / `make api`: dashboard logins, cookie secret, API tokens.

Generated once into a directory outside git (`secrets/`), readable by the owner only. Real
deployments mount their own files or use OAuth; nothing secret lives in the code.
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
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
        # the dashboard's service token: both roles, and it may name the person it acts for (X-User)
        "api_tokens": lambda: f"# token  roles  options (see scoring/credentials.py)\n"
                              f"{secrets.token_urlsafe(32)} advisor+analyst forward-user",
    }
    for key, path in paths.items():
        if not create_private(path, contents[key]() + "\n"):
            check_private(path)
    return paths


ROLES = ("advisor", "analyst")
FORWARD_USER = "forward-user"


@dataclass(frozen=True)
class TokenSpec:
    """An API token, the roles it grants, and whether it may act for a person it names (`X-User`): a service
    such as the dashboard does; a per-user or batch token does not."""
    token: str
    roles: frozenset[str] = frozenset(ROLES)
    forward_user: bool = False


def parse_token_specs(text: str) -> list[TokenSpec]:
    """Entries separated by newlines or commas, `#` comments: `TOKEN [ROLE+ROLE] [forward-user]`, e.g.
    `k3j4... analyst` or `x9... advisor+analyst forward-user`. A bare token grants both roles, without forwarding."""
    specs = []
    for line in text.splitlines():
        for entry in line.split("#", 1)[0].split(","):
            fields = entry.split()
            if not fields:
                continue
            token, rest = fields[0], fields[1:]
            forward = FORWARD_USER in rest
            rest = [f for f in rest if f != FORWARD_USER]
            if len(rest) > 1:
                raise ValueError(f"token entry '{token[:4]}...': expected `TOKEN [ROLE+ROLE] [{FORWARD_USER}]`, "
                                 f"got {len(rest)} role fields")
            roles = frozenset(rest[0].split("+")) if rest else frozenset(ROLES)
            unknown = roles - set(ROLES)
            if unknown:
                raise ValueError(f"token entry '{token[:4]}...': unknown role {', '.join(sorted(unknown))}; "
                                 f"roles: {', '.join(ROLES)}")
            specs.append(TokenSpec(token, roles, forward))
    return specs


def read_tokens(text: str) -> frozenset[str]:
    """The tokens of a token file or variable (without their roles)."""
    return frozenset(spec.token for spec in parse_token_specs(text))


def first_token(text: str) -> str:
    """The first token of a token file: the one a client sends."""
    specs = parse_token_specs(text)
    return specs[0].token if specs else ""
