"""Credentials as a request carries them, and the access decision: plain functions of values, so
the Flask views, a fast path in front of Flask and the tests all decide the same way.

Credentials, first found wins: the `token` parameter (query, or form for POST), then
`X-Esri-Authorization: Bearer …`, then `Authorization: Bearer …` or `Authorization: Basic …`.
A bearer value is a token (ogt1.…) or an API key (ogk_…); Basic carries a user and password, or
any name with an API key as the password.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from urllib.parse import parse_qsl

from .settings import PUBLIC

ADMIN = "admin"


@dataclass(frozen=True)
class Credentials:
    kind: str                      # "bearer" (token or key) | "basic"
    secret: str                    # the token, key or password
    user: str | None = None        # Basic's user name


@dataclass(frozen=True)
class Identity:
    user: str
    roles: frozenset[str]
    via: str                       # "token" | "key" | "password"


@dataclass(frozen=True)
class Refused:
    """Credentials were given and are no good: `status` 498 (bad, expired, wrongly bound) or 429
    (too many failed sign-ins; `retry_after` seconds)."""

    status: int
    reason: str
    retry_after: int = 0


Who = Identity | Refused | None    # None: anonymous


@dataclass(frozen=True)
class Decision:
    """`status` is 200 (allowed), 499 (token required), 498 (invalid token), 403 (no role) or 429."""

    status: int
    reason: str = ""
    retry_after: int = 0

    @property
    def allowed(self) -> bool:
        return self.status == 200


ALLOW = Decision(200)


def token_param(query_string: str) -> str | None:
    """The `token` query parameter (name matched case-insensitively, first one wins)."""
    if "oken=" not in query_string and "OKEN=" not in query_string.upper():
        return None
    for key, value in parse_qsl(query_string, keep_blank_values=True):
        if key.lower() == "token":
            return value
    return None


def credentials(environ: dict, form_token: str | None = None) -> Credentials | None:
    """What the request presents, or None. `form_token` is a POST body's `token`, which only the
    framework can read; a fast path for GET requests passes nothing."""
    raw = token_param(environ.get("QUERY_STRING", "")) or form_token
    if raw:
        return Credentials("bearer", raw.strip())
    for header in ("HTTP_X_ESRI_AUTHORIZATION", "HTTP_AUTHORIZATION"):
        value = (environ.get(header) or "").strip()
        scheme, _, rest = value.partition(" ")
        if scheme.lower() == "bearer" and rest.strip():
            return Credentials("bearer", rest.strip())
        if scheme.lower() == "basic" and header == "HTTP_AUTHORIZATION":
            try:
                user, sep, password = base64.b64decode(rest.strip(), validate=True).decode("utf-8").partition(":")
            except (binascii.Error, UnicodeDecodeError, ValueError):
                return Credentials("basic", "", None)        # malformed: refused as invalid
            return Credentials("basic", password if sep else "", user)
    return None


def decide(access: str | tuple[str, ...] | None, who: Who) -> Decision:
    """May `who` use a service whose `access` is this? Credentials that are given must be good even
    for a public service (498/429), as ArcGIS Server answers; then public is open to all, a
    restricted service needs a signed-in user (499) holding one of its roles or `admin` (403)."""
    if isinstance(who, Refused):
        return Decision(who.status, who.reason, who.retry_after)
    if access == PUBLIC:
        return ALLOW
    if who is None:
        return Decision(499, "Token Required")
    if access is None or ADMIN in who.roles or who.roles.intersection(access):
        return ALLOW
    return Decision(403, "You do not have permissions to access this resource or perform this operation.")


def has_role(who: Who, *roles: str) -> bool:
    """Signed in with one of `roles` (or admin)."""
    return isinstance(who, Identity) and (ADMIN in who.roles or bool(who.roles.intersection(roles)))
