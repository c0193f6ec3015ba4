"""Stateless signed tokens, so any worker on any host verifies them with the shared secret alone.

    ogt1.<payload>.<signature>

payload: base64url (no padding) of compact JSON {"u": user, "r": [roles], "x": expiry epoch ms,
"c": binding}; signature: base64url HMAC-SHA256 of "ogt1.<payload>" under the secret. The binding is
"" (none), "ip:<address>" or "referer:<scheme>://<host>:<port>". Changing the secret invalidates
every token. The "ogt1." prefix lets logs redact tokens wherever they appear.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

PREFIX = "ogt1."
MAX_TOKEN_CHARS = 4096


@dataclass(frozen=True)
class Claims:
    user: str
    roles: tuple[str, ...]
    expires_ms: int
    binding: str = ""


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(secret: bytes, signed: str) -> str:
    return _b64(hmac.new(secret, signed.encode("ascii"), hashlib.sha256).digest())


def issue(secret: bytes, claims: Claims) -> str:
    payload = _b64(json.dumps({"u": claims.user, "r": list(claims.roles), "x": claims.expires_ms,
                               "c": claims.binding}, separators=(",", ":")).encode("utf-8"))
    signed = PREFIX + payload
    return f"{signed}.{_sign(secret, signed)}"


def read(secret: bytes, token: str) -> Claims | None:
    """The claims of a well-formed token with a valid signature (expired or not), else None.
    The signature is compared in constant time before the payload is trusted."""
    if not token.startswith(PREFIX) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 2:
        return None
    signed, _, signature = token.rpartition(".")
    if not hmac.compare_digest(_sign(secret, signed), signature):
        return None
    try:
        body = json.loads(_unb64(signed[len(PREFIX):]))
        return Claims(user=str(body["u"]), roles=tuple(str(r) for r in body["r"]), expires_ms=int(body["x"]),
                      binding=str(body.get("c") or ""))
    except (ValueError, KeyError, TypeError):
        return None


def now_ms() -> int:
    return int(time.time() * 1000)


def origin(url: str | None) -> str | None:
    """scheme://host:port of a URL (default ports filled in, case folded); None when it has none."""
    if not url:
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    port = port or (443 if parts.scheme.lower() == "https" else 80)
    host = parts.hostname.lower()
    return f"{parts.scheme.lower()}://{f'[{host}]' if ':' in host else host}:{port}"


def binding_holds(binding: str, remote_addr: str | None, referer: str | None) -> bool:
    """Whether a request from `remote_addr` with this Referer header may use a token so bound: an IP
    binding wants the same address; a referer binding the same scheme, host and port (any path)."""
    if not binding:
        return True
    kind, _, value = binding.partition(":")
    if kind == "ip":
        return bool(remote_addr) and hmac.compare_digest(value, remote_addr)
    if kind == "referer":
        seen = origin(referer)
        return seen is not None and hmac.compare_digest(value, seen)
    return False
