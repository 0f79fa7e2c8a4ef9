"""Local secrets for `make run` / `make api`: dashboard logins, cookie secret, API tokens.

Generated once into a directory outside git (`secrets/`), readable by the owner only. Real
deployments mount their own files or use single sign-on; nothing secret lives in the code.

Dashboard logins (`dashboard_users.json`): per user an Argon2id hash of the password and a role,
`{"name": {"role": "advisor", "hash": "$argon2id$..."}}`. Passwords are generated, printed once and
never stored; `python -m scoring.credentials set-password NAME` makes a new one, `migrate` turns a
file of plaintext passwords (the format before) into hashes.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from .errors import ScoringError

USERS_FILE = "dashboard_users.json"
ROLES = ("advisor", "analyst")
COOKIE_FILE = "cookie_secret"
TOKENS_FILE = "api_tokens"


class SecretFileError(ScoringError, PermissionError):
    """A secret file that others than its owner may read or write."""


class UsersFileError(ScoringError, ValueError):
    """A dashboard users file that cannot be used as it is (plaintext passwords, an unknown role...)."""


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



# ------------------------------------------------------------------------------------------ dashboard logins
#: Argon2id with argon2-cffi's defaults (RFC 9106's second recommended profile: 64 MiB, 3 passes, 4 lanes)
HASHER = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verified when the user name is unknown, so that a wrong name takes as long as a wrong password."""
    return HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class DashboardUser:
    """A dashboard login: the Argon2 hash of its password and its role (`advisor` or `analyst`)."""
    name: str
    role: str
    password_hash: str

    def to_json(self) -> dict:
        return {"role": self.role, "hash": self.password_hash}


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify_password(users: Mapping[str, DashboardUser], name: str, password: str) -> DashboardUser | None:
    """The user if `password` is theirs, else None. Argon2's verification compares in constant time, and an
    unknown name costs one verification too (against a dummy hash): the answer's timing tells nothing."""
    user = users.get(name)
    try:
        HASHER.verify(user.password_hash if user is not None else _dummy_hash(), password)
    except (VerificationError, InvalidHashError):
        return None
    return user


def new_password() -> str:
    return secrets.token_urlsafe(12)


def parse_users(text: str, source: str = USERS_FILE) -> dict[str, DashboardUser]:
    """The logins of a users file; a file of plaintext passwords (`{"name": "password"}`, the format before) is
    refused with the command that migrates it."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise UsersFileError(f"{source} is not JSON ({exc})") from None
    if not isinstance(data, dict) or not data:
        raise UsersFileError(f"{source} holds no login")
    users = {}
    for name, entry in data.items():
        if isinstance(entry, str):
            raise UsersFileError(
                f"{source} holds plaintext passwords (the format before hashed logins): they are refused. Hash them "
                f"with `python -m scoring.credentials --dir {Path(source).parent} migrate` (each user keeps "
                f"its password; the role is the user name when it is one of {', '.join(ROLES)}, else given with "
                f"--role NAME=ROLE), or delete the file and run `python -m scoring secrets` for new logins")
        if not isinstance(entry, dict) or not isinstance(entry.get("hash"), str):
            raise UsersFileError(f"{source}: login '{name}' has no password hash")
        if entry.get("role") not in ROLES:
            raise UsersFileError(f"{source}: login '{name}' has role {entry.get('role')!r}; roles: {', '.join(ROLES)}")
        if not entry["hash"].startswith("$argon2"):
            raise UsersFileError(f"{source}: login '{name}' has no Argon2 hash")
        users[name] = DashboardUser(name, entry["role"], entry["hash"])
    return users


def read_users(path: str | Path) -> dict[str, DashboardUser]:
    """The logins of a users file, which must be readable by its owner only."""
    path = Path(path)
    check_private(path)
    return parse_users(path.read_text(encoding="utf-8"), str(path))


def users_json(users: Mapping[str, DashboardUser]) -> str:
    return json.dumps({name: user.to_json() for name, user in users.items()}, indent=1) + "\n"


def _write_users(path: Path, users: Mapping[str, DashboardUser]) -> None:
    """Replace the users file atomically, the new file owner-only from its creation."""
    tmp = path.with_name(path.name + ".new")
    tmp.unlink(missing_ok=True)
    create_private(tmp, users_json(users))
    os.replace(tmp, path)


def generated_users(on_new_login: Callable[[str, str, str], None] | None = None) -> str:
    """A new users file: `advisor` (role advisor) and `analyst` (role analyst) with random passwords, told once to
    `on_new_login(name, role, password)`; only their hashes are in the text returned."""
    users = {}
    for role in ROLES:
        password = new_password()
        users[role] = DashboardUser(role, role, hash_password(password))
        if on_new_login is not None:
            on_new_login(role, role, password)
    return users_json(users)


def migrate_plaintext(path: str | Path, roles: Mapping[str, str] | None = None) -> dict[str, DashboardUser]:
    """Hash the plaintext passwords of a users file of the former format in place (each user keeps its password);
    roles: `roles[name]`, else the name itself when it is a role. Nothing is written if a role is missing."""
    path = Path(path)
    check_private(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
        raise UsersFileError(f"{path} holds no plaintext password to migrate")
    roles = dict(roles or {})
    missing = [name for name in data if roles.get(name, name) not in ROLES]
    if missing:
        raise UsersFileError(f"no role for {', '.join(missing)}: give one with --role NAME=ROLE "
                             f"(roles: {', '.join(ROLES)})")
    users = {name: DashboardUser(name, roles.get(name, name), hash_password(pw)) for name, pw in data.items()}
    _write_users(path, users)
    return users


def set_password(path: str | Path, name: str, role: str | None = None) -> str:
    """Give `name` a new random password (adding the login with `role` if it is new); the password, to tell once."""
    path = Path(path)
    users = read_users(path) if path.exists() else {}
    if role is None and name not in users:
        raise UsersFileError(f"'{name}' is a new login: give its role with --role ({', '.join(ROLES)})")
    if role is not None and role not in ROLES:
        raise UsersFileError(f"unknown role {role!r}; roles: {', '.join(ROLES)}")
    password = new_password()
    users[name] = DashboardUser(name, role or users[name].role, hash_password(password))
    _write_users(path, users)
    return password


def ensure_secrets(directory: str | Path,
                   on_new_login: Callable[[str, str, str], None] | None = None) -> dict[str, Path]:
    """Create what is missing (never overwrite) with owner-only modes; refuse existing files with wider modes, and
    a users file of plaintext passwords; return the file paths. The passwords of new logins are told once to
    `on_new_login(name, role, password)` and never stored."""
    d = Path(directory)
    d.mkdir(mode=0o700, parents=True, exist_ok=True)
    paths = {"users": d / USERS_FILE, "cookie_secret": d / COOKIE_FILE, "api_tokens": d / TOKENS_FILE}
    new_logins: list[tuple[str, str, str]] = []
    contents = {
        "users": lambda: generated_users(lambda *login: new_logins.append(login)),
        "cookie_secret": lambda: secrets.token_urlsafe(32) + "\n",
        # the dashboard's service token: both roles, and it may name the person it acts for (X-User)
        "api_tokens": lambda: f"# token  roles  options (see scoring/credentials.py)\n"
                              f"{secrets.token_urlsafe(32)} advisor+analyst forward-user\n",
    }
    for key, path in paths.items():
        if not path.exists() and create_private(path, contents[key]()):
            if key == "users" and on_new_login is not None:
                for login in new_logins:
                    on_new_login(*login)
            continue
        check_private(path)
    read_users(paths["users"])  # a plaintext or broken users file: refused, with how to mend it
    return paths


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


# ------------------------------------------------------------------------------------------ command line
def main(argv: list[str] | None = None) -> int:
    """`python -m scoring.credentials set-password NAME [--role ROLE] | migrate [--role NAME=ROLE ...]`."""
    parser = argparse.ArgumentParser(prog="python -m scoring.credentials",
                                     description="Dashboard logins: new passwords, and the plaintext file migrated.")
    parser.add_argument("--dir", default="secrets", help="directory of dashboard_users.json (default: secrets)")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("set-password", help="a new random password for a login (created with --role if new)")
    s.add_argument("name")
    s.add_argument("--role", choices=ROLES)
    m = sub.add_parser("migrate", help="hash the plaintext passwords of a users file of the former format")
    m.add_argument("--role", action="append", default=[], metavar="NAME=ROLE",
                   help="role of a user whose name is not a role (repeat per user)")
    args = parser.parse_args(argv)
    path = Path(args.dir) / USERS_FILE
    try:
        if args.command == "set-password":
            password = set_password(path, args.name, args.role)
            print(f"{args.name}: {password}   (shown once: only its hash is stored in {path})")
        else:
            roles = dict(item.split("=", 1) for item in args.role if "=" in item)
            users = migrate_plaintext(path, roles)
            print(f"{path}: {len(users)} passwords hashed ({', '.join(f'{u.name} ({u.role})' for u in users.values())})")
    except (ScoringError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
