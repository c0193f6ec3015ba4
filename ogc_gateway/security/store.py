"""The users file: users (password hashes only) and API keys (SHA-256 digests only).

    users:
      alice: {password: "$argon2id$…", roles: [analyst]}
    keys:
      ci-bot: {digest: "sha256:…", roles: [publisher], created: 1767225600000, expires: null}

Written by `ogc-gateway users …` / `keys …` (atomically, mode 0600, under a lock so two commands
never lose each other's change); read by the server, which re-reads it when it changes on disk.
An API key is 256 random bits, so a fast digest is enough to store it safely (a password hash's
slowness protects guessable secrets; a key is not guessable).
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import logging
import os
import secrets
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .settings import ROLE_NAME

KEY_PREFIX = "ogk_"
USER_NAME_CHARS = 128


@dataclass(frozen=True)
class User:
    name: str
    password: str                 # the hash
    roles: tuple[str, ...]


@dataclass(frozen=True)
class ApiKey:
    name: str
    digest: str                   # "sha256:<hex>"
    roles: tuple[str, ...]
    created_ms: int
    expires_ms: int | None = None


@dataclass
class Identities:
    users: dict[str, User] = field(default_factory=dict)
    keys: dict[str, ApiKey] = field(default_factory=dict)

    def key_for(self, presented: str, now_ms: int) -> ApiKey | None:
        """The unexpired key whose digest matches, compared in constant time against every key."""
        digest = key_digest(presented)
        found = None
        for key in self.keys.values():
            if hmac.compare_digest(key.digest, digest) and (key.expires_ms is None or key.expires_ms > now_ms):
                found = key
        return found


def key_digest(presented: str) -> str:
    return "sha256:" + hashlib.sha256(presented.encode("utf-8")).hexdigest()


def new_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def valid_name(name: str) -> bool:
    return 0 < len(name) <= USER_NAME_CHARS and ":" not in name and name.isprintable() and name.strip() == name


def valid_role(role: str) -> bool:
    return bool(ROLE_NAME.match(role))


class StoreError(ValueError):
    """The users file cannot be read or holds something that is not a users file."""


def load(path: Path) -> Identities:
    """The identities of the file; a missing file holds none."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return Identities()
    except OSError as exc:
        raise StoreError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        raw = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise StoreError(f"{path}: not YAML: {exc}") from None
    if not isinstance(raw, dict):
        raise StoreError(f"{path}: must be a mapping with 'users' and 'keys'")
    out = Identities()
    try:
        for name, body in (raw.get("users") or {}).items():
            out.users[str(name)] = User(str(name), str(body["password"]), tuple(str(r) for r in body.get("roles") or ()))
        for name, body in (raw.get("keys") or {}).items():
            out.keys[str(name)] = ApiKey(str(name), str(body["digest"]), tuple(str(r) for r in body.get("roles") or ()),
                                         int(body.get("created") or 0),
                                         None if body.get("expires") is None else int(body["expires"]))
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"{path}: an entry is malformed ({exc!r}); edit it with `ogc-gateway users`/`keys`") from None
    return out


def _dump(ids: Identities) -> str:
    doc = {"users": {u.name: {"password": u.password, "roles": list(u.roles)} for u in ids.users.values()},
           "keys": {k.name: {"digest": k.digest, "roles": list(k.roles), "created": k.created_ms,
                             "expires": k.expires_ms} for k in ids.keys.values()}}
    return ("# Written by `ogc-gateway users` and `ogc-gateway keys`: password hashes and key digests only.\n"
            + yaml.safe_dump(doc, sort_keys=True, allow_unicode=True))


@contextmanager
def editing(path: Path) -> Iterator[Identities]:
    """Read, change and write back the users file under an exclusive lock; the new file replaces
    the old one in one rename and is readable by its owner only."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        ids = load(path)
        yield ids
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(_dump(ids))
            os.chmod(tmp, 0o600)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


class CachedStore:
    """The users file as the server reads it: re-read only when its size, time or inode change
    (one stat per sign-in), so `ogc-gateway users …` takes effect without a restart."""

    def __init__(self, path: Path):
        self.path = path
        self._stamp: tuple | None = None
        self._ids = Identities()
        self.generation = 0

    def get(self) -> Identities:
        try:
            st = os.stat(self.path)
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        if stamp != self._stamp:
            self._stamp = stamp
            try:
                self._ids = load(self.path) if stamp else Identities()
                self.generation += 1
            except StoreError as exc:       # a hand-edited file gone wrong: keep who was known, say why once
                logging.getLogger("ogc_gateway.security").error("%s; the users known before stay in use", exc)
        return self._ids
