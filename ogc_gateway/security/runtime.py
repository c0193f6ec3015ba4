"""Security: one per app, built from the config; joins the users file, the secret, the limiter and
the access decision. Framework-free, so anything holding a WSGI environ can ask `may_access`."""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from . import tokens
from .access import ALLOW, Credentials, Decision, Identity, Refused, Who, credentials, decide
from .limiter import Limiter
from .passwords import verify_password
from .settings import PUBLIC, SecurityConfig, read_secret
from .store import KEY_PREFIX, CachedStore

log = logging.getLogger("ogc_gateway.security")
_VERIFIED_SECONDS = 60            # a checked Basic password is trusted this long per worker (argon2 is slow on purpose)


class Security:
    def __init__(self, settings: SecurityConfig, access: Callable[[str], str | tuple[str, ...] | None],
                 cache_dir: Path):
        self.settings = settings
        self.access = access                       # service name -> 'public' | roles | None
        self.store = CachedStore(settings.users_file)
        self.limiter = Limiter(cache_dir / "security" / "sign-ins.sqlite", settings.max_failed_logins,
                               settings.failed_login_window_minutes * 60)
        self._secret = read_secret(settings.secret_file)
        self._secret_stamp: tuple | None = self._stamp(settings.secret_file)
        self._verified: dict[bytes, tuple[float, int, Identity]] = {}
        self._lock = threading.Lock()

    # --- the secret (re-read when its file changes: replacing it revokes every token) ------------

    @property
    def secret(self) -> bytes:
        path = self.settings.secret_file
        if path is not None:
            try:
                st = os.stat(path)
                stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
            except OSError:
                stamp = None
            if stamp != self._secret_stamp:
                self._secret_stamp = stamp
                try:
                    self._secret = read_secret(path)
                except ValueError as exc:          # keep the last good secret; say why once per change
                    log.error("security.secret_file: %s; the previous secret stays in use", exc)
        return self._secret

    @staticmethod
    def _stamp(path: Path | None) -> tuple | None:
        try:
            st = os.stat(path) if path is not None else None
        except OSError:
            return None
        return None if st is None else (st.st_mtime_ns, st.st_size, st.st_ino)

    # --- who is asking ---------------------------------------------------------------------------

    def identify(self, environ: dict, form_token: str | None = None) -> Who:
        found = credentials(environ, form_token)
        if found is None:
            return None
        address = environ.get("REMOTE_ADDR")
        if found.kind == "basic" and not found.secret.startswith(KEY_PREFIX):
            return self.sign_in(found.user or "", found.secret, address)
        if found.secret.startswith(KEY_PREFIX):
            return self._key(found, address)
        claims = tokens.read(self.secret, found.secret)
        if claims is None:
            return Refused(498, "Invalid Token")
        if claims.expires_ms <= tokens.now_ms():
            return Refused(498, "Invalid Token")
        if not tokens.binding_holds(claims.binding, address, environ.get("HTTP_REFERER")):
            return Refused(498, "Invalid Token")
        if claims.user not in self.store.get().users:            # a removed user's tokens stop working
            return Refused(498, "Invalid Token")
        return Identity(claims.user, frozenset(claims.roles), "token")

    def _key(self, found: Credentials, address: str | None) -> Who:
        """An API key. A right key (256 random bits: not guessable) is accepted at once; only a
        wrong one touches the limiter, so keys cost a digest and a lookup, not a database read."""
        key = self.store.get().key_for(found.secret, tokens.now_ms())
        if key is not None:
            return Identity(f"key:{key.name}", frozenset(key.roles), "key")
        wait = self.limiter.retry_after(None, address)
        if wait:
            return Refused(429, "Too many failed sign-ins; try again later.", wait)
        self.limiter.failed(None, address)
        return Refused(498, "Invalid Token")

    def sign_in(self, user: str, password: str, address: str | None) -> Identity | Refused:
        """A user name and password, checked against the users file under the brute-force limits.
        A success is remembered for a minute per worker (keyed by an HMAC of the pair, never the
        password itself) so clients that send Basic on every tile do not pay argon2 each time."""
        ids = self.store.get()
        memo = hmac.new(self.secret, f"{user}\0{password}".encode(), hashlib.sha256).digest()
        now = time.monotonic()
        with self._lock:
            hit = self._verified.get(memo)
        if hit and hit[0] > now and hit[1] == self.store.generation:
            return hit[2]
        wait = self.limiter.retry_after(user, address)
        if wait:
            return Refused(429, "Too many failed sign-ins; try again later.", wait)
        record = ids.users.get(user)
        if not verify_password(record.password if record else None, password):
            self.limiter.failed(user, address)
            log.warning("failed sign-in for user %r from %s", user, address)
            return Refused(498, "Invalid username or password.")
        self.limiter.succeeded(user)
        identity = Identity(user, frozenset(record.roles), "password")
        with self._lock:
            if len(self._verified) > 10_000:
                self._verified.clear()
            self._verified[memo] = (now + _VERIFIED_SECONDS, self.store.generation, identity)
        return identity

    def issue_token(self, identity: Identity, minutes: int, binding: str) -> tuple[str, int]:
        expires = tokens.now_ms() + minutes * 60_000
        return tokens.issue(self.secret, tokens.Claims(identity.user, tuple(sorted(identity.roles)), expires,
                                                        binding)), expires

    # --- what they may see -----------------------------------------------------------------------

    def access_of(self, name: str) -> str | tuple[str, ...] | None:
        """A service's `access` (configured, or published over HTTP); None, the default: any
        signed-in user."""
        return self.access(name)

    def decide(self, name: str, who: Who) -> Decision:
        return decide(self.access_of(name), who)

    def may_access(self, name: str, environ: dict) -> Decision:
        """The whole check for one service from a WSGI environ (query `token`, bearer headers, Basic):
        what a path in front of Flask (the cached-tile fast path) calls before answering."""
        if self.access_of(name) == PUBLIC and credentials(environ) is None:
            return ALLOW
        return self.decide(name, self.identify(environ))

    def visible(self, names, who: Who) -> list[str]:
        """The names `who` may see, in their order (a refused identity sees only public ones)."""
        if isinstance(who, Refused):
            who = None
        return [n for n in names if decide(self.access_of(n), who).allowed]

    def is_public(self, name: str) -> bool:
        return self.access_of(name) == PUBLIC
