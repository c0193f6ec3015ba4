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
from typing import Callable

from flask import Flask, Response, current_app, g, request

from ..config import Config
from . import redact
from .access import Decision, Identity, Refused, Who, has_role
from .runtime import Security

EXTENSION = "ogc_gateway.security"
FACES = ("rest", "wms", "wcs", "wmts", "web")     # web: the viewer pages, checked as the REST face
REALM = 'Basic realm="ogc-gateway"'
# REST resources answered with real HTTP statuses (they are binary; ArcGIS does the same for 404s)
_REST_REAL_STATUS = ("rest.tile", "rest.output_file")
# Reachable with any (even bad) credentials: how a client finds the token service
_OPEN_ENDPOINTS = ("rest.info",)


def security() -> Security | None:
    return current_app.extensions.get(EXTENSION)


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


# --- identity ---------------------------------------------------------------------------------------

def who() -> Who:
    """The caller of this request (None: anonymous, or security is off), worked out once."""
    sec = security()
    if sec is None:
        return None
    if "_ogc_gateway_who" not in g:
        form_token = None
        if request.method == "POST" and request.mimetype in ("application/x-www-form-urlencoded",
                                                             "multipart/form-data"):
            form_token = next((v for k, v in request.form.items(multi=True) if k.lower() == "token"), None)
        g._ogc_gateway_who = sec.identify(request.environ, form_token)
    return g._ogc_gateway_who


def visible_names(names) -> list[str]:
    """Of these service names, those the caller may see (all of them when security is off)."""
    sec = security()
    if sec is None:
        return list(names)
    names = tuple(names)
    memo = g.get("_ogc_gateway_visible")          # the same registry is asked about many times a request
    if memo is None or memo[0] != names:
        memo = g._ogc_gateway_visible = (names, sec.visible(names, who()))
    return memo[1]


def token_query() -> str:
    """`token=…&` when the request carried a good token in its query string, for the URLs a
    capabilities document gives (OWSLib and GDAL follow them without adding credentials)."""
    if security() is None or not isinstance(who(), Identity):
        return ""
    from urllib.parse import quote

    from .access import token_param
    raw = token_param(request.query_string.decode("latin-1"))
    return f"token={quote(raw, safe='')}&" if raw else ""


def token_suffix() -> str:
    """`?token=…` for URL templates that have no query of their own (WMTS RESTful resources)."""
    query = token_query()
    return f"?{query[:-1]}" if query else ""


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


# --- refusals in each face's format ------------------------------------------------------------------

def refusal(decision: Decision, face: str) -> Response:
    if face in ("rest", "web") and decision.status in (498, 499) and _wants_page():
        resp = _sign_in_page(decision)
    elif face in ("rest", "web"):
        resp = _rest_refusal(decision)
    else:
        resp = _ogc_refusal(decision, face)
    if decision.status == 429:
        resp.status_code = 429
        resp.headers["Retry-After"] = str(max(1, decision.retry_after))
    return resp


def _wants_page() -> bool:
    """A person's browser asking for a page (the viewer, or `f=html`): it gets a sign-in form."""
    f = next((v for k, v in request.args.items() if k.lower() == "f"), None)
    return request.blueprint == "web" or (f or "").lower() == "html"


def _sign_in_page(decision: Decision) -> Response:
    """The page's sign-in form (web/templates/signin.html); signed in, the page reloads with its token."""
    from flask import render_template

    reason = {499: "Token Required", 498: "Invalid Token"}.get(decision.status, decision.reason)
    html = render_template("signin.html", reason=reason, service=(request.view_args or {}).get("name", "This page"))
    return Response(html, status=401, content_type="text/html; charset=utf-8")


def _rest_refusal(decision: Decision) -> Response:
    from ..gateway import gateway
    from ..rest.responses import json_response

    real = gateway().config.server.rest_http_errors or request.endpoint in _REST_REAL_STATUS
    message = {499: "Token Required", 498: "Invalid Token"}.get(decision.status, decision.reason)
    details = [decision.reason] if decision.reason and decision.reason != message else []
    status = decision.status if real or decision.status == 429 else 200
    return json_response({"error": {"code": decision.status, "message": message, "details": details}}, status=status)


def _ogc_refusal(decision: Decision, face: str) -> Response:
    from ..ogc.common import KVP, OGCError

    kvp = KVP(request.args.items(multi=True))
    version = (kvp.get("VERSION") or kvp.get("WMTVER") or "").strip()
    status = {499: 401, 498: 401}.get(decision.status, decision.status)
    message = {499: "authentication required: sign in (HTTP Basic) or pass a token",
               498: f"the credentials were not accepted: {decision.reason}"}.get(decision.status, decision.reason)
    if face == "wms":
        from ..ogc import wms
        resp = wms._exception(OGCError(None, message, status=status), version if version in wms.VERSIONS else "1.3.0")
    elif face == "wcs":
        from ..ogc import wcs
        module = wcs.MODULES[wcs.ALIASES.get(version, "2.0.1")]
        resp = module.exception(OGCError("NoApplicableCode", message, status=status))
    else:
        from ..ogc import wmts
        resp = wmts._exception(OGCError("NoApplicableCode", message, status=status))
    resp.status_code = status
    if status == 401:
        resp.headers["WWW-Authenticate"] = REALM
    return resp


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
