"""The `security:` section and the per-service `access:` key, parsed for the strict validator.

Kept apart from the config package so the validator only calls two functions; every problem is reported
through the validator's own `problem(key, what)`, so it names the file and the key like any other.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SECRET_ENV = "OGC_GATEWAY_SECRET"
MIN_SECRET_BYTES = 32
SECURITY_KEYS = ("secret_file", "users_file", "token_minutes", "max_token_minutes", "max_failed_logins",
                 "failed_login_window_minutes")
PUBLIC = "public"
ROLE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")

Problem = Callable[[str, str], None]


@dataclass(frozen=True)
class SecurityConfig:
    """Where identities live and how long tokens last. The secret itself is read by the runtime
    (security/runtime.py) so that replacing the file rotates it without a restart."""

    users_file: Path
    secret_file: Path | None = None          # None: the OGC_GATEWAY_SECRET environment variable
    token_minutes: int = 60
    max_token_minutes: int = 1440
    max_failed_logins: int = 5               # per user name within the window; an address gets 4 times as many
    failed_login_window_minutes: int = 15


def _minutes(d: dict, key: str, default: int, hi: int, problem: Problem) -> int:
    value = d.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= hi:
        problem(f"security.{key}", f"must be a whole number from 1 to {hi}, not {value!r}")
        return default
    return value


def read_secret(path: Path | None) -> bytes:
    """The HMAC key: the file's bytes (surrounding whitespace removed) or the environment variable.
    Raises ValueError saying what is missing."""
    if path is None:
        value = os.environ.get(SECRET_ENV, "").strip().encode()
        where = f"the {SECRET_ENV} environment variable"
    else:
        try:
            value = path.read_bytes().strip()
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
        where = str(path)
    if len(value) < MIN_SECRET_BYTES:
        raise ValueError(f"{where} must hold at least {MIN_SECRET_BYTES} bytes of secret (it holds {len(value)}); "
                         f"make one with: python -c \"import secrets; print(secrets.token_urlsafe(48))\" > secret.key")
    return value


def security_section(d: dict, problem: Problem, path: Callable[[str], Path]) -> SecurityConfig:
    """`d` holds only known keys (the validator dropped the others and reported them)."""
    secret_file = d.get("secret_file")
    secret_path = None
    if secret_file is not None:
        if not isinstance(secret_file, str) or not secret_file.strip():
            problem("security.secret_file", f"must be a file name, not {secret_file!r}")
        else:
            secret_path = path(secret_file)
    if secret_path is not None or os.environ.get(SECRET_ENV) is not None:
        try:
            read_secret(secret_path)
        except ValueError as exc:
            problem("security.secret_file" if secret_path else "security", str(exc))
    else:
        problem("security.secret_file", f"needed (or the {SECRET_ENV} environment variable): the key that signs "
                                        "tokens, shared by every worker and host")
    users = d.get("users_file", "users.yaml")
    if not isinstance(users, str) or not users.strip():
        problem("security.users_file", f"must be a file name, not {users!r}")
        users = "users.yaml"
    token = _minutes(d, "token_minutes", 60, 525_600, problem)
    longest = _minutes(d, "max_token_minutes", 1440, 525_600, problem)
    if token > longest:
        problem("security.token_minutes", f"{token} is longer than max_token_minutes ({longest})")
    return SecurityConfig(users_file=path(users), secret_file=secret_path, token_minutes=token,
                          max_token_minutes=longest,
                          max_failed_logins=_minutes(d, "max_failed_logins", 5, 1000, problem),
                          failed_login_window_minutes=_minutes(d, "failed_login_window_minutes", 15, 1440, problem))


def access_value(value: Any, key: str, problem: Problem) -> str | tuple[str, ...] | None:
    """`public`, or a list of role names (any one suffices); None when not given (any signed-in user)."""
    if value is None:
        return None
    if value == PUBLIC:
        return PUBLIC
    if isinstance(value, list) and value and all(isinstance(r, str) and ROLE_NAME.match(r) for r in value):
        return tuple(dict.fromkeys(value))
    problem(key, f"must be 'public' or a non-empty list of role names (letters, digits, '_', '-', '.'), "
                 f"not {value!r}")
    return None


def host_patterns(value: Any, key: str, problem: Problem) -> tuple[str, ...]:
    """`server.allowed_hosts`: host names, `*.example.org` for its sub-domains, or `*` for any."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(h, str) and re.fullmatch(r"\*|(\*\.)?[A-Za-z0-9.:\[\]_-]+", h)
                                                for h in value):
        problem(key, f"must be a list of host names (e.g. maps.example.org, *.example.org), not {value!r}")
        return ()
    return tuple(h.lower() for h in value)


def origin_list(value: Any, key: str, problem: Problem) -> tuple[str, ...] | None:
    """`server.cors_origins`: `*` or a list of origins (scheme://host[:port]); None when not given."""
    if value is None:
        return None
    if value == "*":
        return ("*",)
    if not isinstance(value, list) or not all(isinstance(o, str) and (o == "*" or re.fullmatch(r"https?://[^/\s]+/?", o))
                                                for o in value):
        problem(key, f"must be '*' or a list of origins such as https://app.example.org, not {value!r}")
        return None
    return tuple(o.rstrip("/").lower() for o in value)
