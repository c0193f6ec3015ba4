"""The Flask side of security and HTTP hygiene, installed by create_app:

- before every view: the Host header against `allowed_hosts`; then, with a `security` section, the
  caller's identity (once per request) and, for any route naming a service (`<name>`: REST
  resources and operations, tiles, legends, thumbnails, items, output files, KMZ, the per-service
  WMS/WCS/WMTS), the access decision, refused in the face's own format;
- after every view: `X-Content-Type-Options: nosniff` and CORS (`cors_origins`, else `*` for
  public services and service-less resources only);
- `visible_names()`: what the services directory and the combined /ogc endpoints may list;
- `require_role(...)`: a decorator for views that need a role (the publishing API).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from flask import Flask, Response, current_app, request

from ..config import Config
from . import redact
from .access import Decision, Refused, has_role
from .caller import EXTENSION, security, token_query, token_suffix, visible_names, who  # noqa: F401  (API)
from .refusals import REALM, refusal  # noqa: F401  (API)
from .runtime import Security

FACES = ("rest", "wms", "wcs", "wmts", "web")     # web: the viewer pages, checked as the REST face
# Reachable with any (even bad) credentials: how a client finds the token service
_OPEN_ENDPOINTS = ("rest.info",)


def install(app: Flask, config: Config) -> None:
    if config.security is not None:
        redact.install()
        gw = app.extensions["ogc_gateway"]
        app.extensions[EXTENSION] = Security(config.security, gw.access_of, config.server.cache_dir)
        from .views import bp
        app.register_blueprint(bp)
    hosts = config.server.allowed_hosts
    if hosts:
        app.before_request(functools.partial(_check_host, hosts))
    if config.security is not None:
        app.before_request(_check_access)


def require_role(*roles: str) -> Callable:
    """Decorate a view so only signed-in users with one of `roles` (or `admin`) reach it; others get
    the REST refusal (499 / 498 / 403). Without a security section nobody holds a role, so such a
    view is closed: publishing needs security turned on."""
    def wrap(view: Callable) -> Callable:
        @functools.wraps(view)
        def checked(*args, **kwargs):
            caller = who()
            if isinstance(caller, Refused):
                return refusal(Decision(caller.status, caller.reason, caller.retry_after), "rest")
            if caller is None:
                return refusal(Decision(499, "Token Required"), "rest")
            if not has_role(caller, *roles):
                return refusal(Decision(403, "You do not have permissions to access this resource or perform "
                                             "this operation."), "rest")
            return view(*args, **kwargs)
        return checked
    return wrap


# --- the checks -------------------------------------------------------------------------------------

def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    name = name.lower().strip("[]")
    for pattern in patterns:
        pattern = pattern.strip("[]")
        if pattern == "*" or name == pattern or host.lower() == pattern:
            return True
        if pattern.startswith("*.") and (name.endswith(pattern[1:]) or name == pattern[2:]):
            return True
    return False


def _check_host(patterns: tuple[str, ...]):
    if not host_allowed(request.host, patterns):
        return Response(f"host {request.host!r} is not served here (server.allowed_hosts)\n", status=400,
                        content_type="text/plain; charset=utf-8")
    return None


def _check_access():
    if request.method == "OPTIONS" or request.blueprint not in FACES or request.endpoint in _OPEN_ENDPOINTS:
        return None
    sec = security()
    caller = who()
    name = (request.view_args or {}).get("name")
    if isinstance(caller, Refused):
        return refusal(Decision(caller.status, caller.reason, caller.retry_after), request.blueprint)
    if name is None:
        return None
    from ..gateway import gateway
    gw = gateway()
    if name not in gw.registry and name not in gw.config.services:
        return None                       # the face answers "no such service" as it always did
    decision = sec.decide(name, caller)
    return None if decision.allowed else refusal(decision, request.blueprint)


# --- headers on every answer -------------------------------------------------------------------------

def response_headers(resp: Response, config: Config) -> Response:
    """nosniff always; CORS per `cors_origins`, else `*` unless the request names a restricted service.
    With security on, what may differ by caller is kept out of shared caches: a restricted service's
    answers are `Cache-Control: private` (a proxy must not hand a cached tile to the next caller), and
    lists (directory, combined capabilities) vary by the authorization headers."""
    resp.headers["X-Content-Type-Options"] = "nosniff"
    sec = current_app.extensions.get(EXTENSION)
    name = (request.view_args or {}).get("name")
    if sec is not None and request.blueprint in FACES and not (name is not None and sec.is_public(name)):
        resp.vary.update(("Authorization", "X-Esri-Authorization"))
        cache = resp.headers.get("Cache-Control")
        if name is not None and cache and "public" in cache:
            resp.headers["Cache-Control"] = cache.replace("public", "private")
    origins = config.server.cors_origins
    allow = None
    if origins is None:
        if sec is None or name is None or sec.is_public(name):
            allow = "*"
    elif "*" in origins:
        allow = "*"
    else:
        asked = (request.headers.get("Origin") or "").rstrip("/").lower()
        resp.vary.add("Origin")
        if asked and asked in origins:
            allow = request.headers.get("Origin")
    if allow is None:
        return resp
    resp.headers["Access-Control-Allow-Origin"] = allow
    if request.method == "OPTIONS":
        resp.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
        resp.headers["Access-Control-Allow-Headers"] = request.headers.get(
            "Access-Control-Request-Headers", "Content-Type")
    return resp
