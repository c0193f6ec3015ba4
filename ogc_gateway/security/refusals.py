"""Refusals in each face's own format: the ArcGIS JSON error of the REST face, the WMS
ServiceExceptionReport, the OWS ExceptionReport of WCS and WMTS (401 with a Basic challenge, 403,
429 with Retry-After).

Apart from web.py so the token service's views can refuse without importing the glue that
registers them.
"""

from __future__ import annotations

from flask import Response, request

from .access import Decision

REALM = 'Basic realm="ogc-gateway"'
# REST resources answered with real HTTP statuses (they are binary; ArcGIS does the same for 404s)
_REST_REAL_STATUS = ("rest.tile", "rest.output_file")


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
