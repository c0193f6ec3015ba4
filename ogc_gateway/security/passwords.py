"""Password hashes: argon2id for new ones; bcrypt hashes (from another system) are verified too."""

from __future__ import annotations

import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# argon2id with OWASP's parameters (19 MiB, 2 passes, 1 lane): tens of milliseconds a check, not the half
# second of the library's defaults on a small server. A hash records its own parameters, so hashes
# made with other ones still verify.
_HASHER = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)
# Verified against when a user does not exist, so a missing user costs the same time as a wrong password.
_DUMMY = _HASHER.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    return _HASHER.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    """True when `password` matches `stored` (argon2 `$argon2…` or bcrypt `$2a/$2b/$2y$…`)."""
    if stored is None:
        _safe_argon2(_DUMMY, password)
        return False
    if stored.startswith("$argon2"):
        return _safe_argon2(stored, password)
    if stored.startswith(("$2a$", "$2b$", "$2y$")):
        import bcrypt

        try:
            return bcrypt.checkpw(password.encode("utf-8")[:72], stored.encode("ascii"))
        except ValueError:
            return False
    _safe_argon2(_DUMMY, password)
    return False


def _safe_argon2(stored: str, password: str) -> bool:
    try:
        return _HASHER.verify(stored, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
