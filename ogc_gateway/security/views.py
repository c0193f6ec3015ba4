"""The ArcGIS token service: POST /arcgis/tokens/generateToken (also /arcgis/rest/generateToken and
the legacy /arcgis/tokens/), answering {"token", "expires", "ssl"} as ArcGIS Server does.

Credentials are taken from a POST body only: a GET carrying a password is refused (it would sit in
every proxy and access log). Errors are ArcGIS JSON error bodies (HTTP 200 unless
rest_http_errors), except 429 (too many failed sign-ins), which is a real 429 with Retry-After.
"""

from __future__ import annotations

from flask import Blueprint, render_template, request

from ..engine import GatewayError, InvalidParameter
from ..gateway import gateway
from ..rest.params import Params
from ..rest.responses import check_callback, error_response, json_response
from . import tokens
from .access import Decision, Refused
from .caller import security
from .refusals import refusal

bp = Blueprint("security", __name__, template_folder="../web/templates")
_CLIENTS = ("referer", "ip", "requestip")


class TokenError(GatewayError):
    """"Unable to generate token." with what is wrong, as ArcGIS answers (code 400)."""

    http_status = 400

    def __init__(self, *details: str):
        super().__init__("Unable to generate token.", details=list(details))


@bp.errorhandler(GatewayError)
def _error(exc: GatewayError):
    return error_response(exc, http_errors=gateway().config.server.rest_http_errors)


@bp.route("/arcgis/tokens/generateToken", methods=["GET", "POST"])
@bp.route("/arcgis/tokens/generateToken/", methods=["GET", "POST"])
@bp.route("/arcgis/rest/generateToken", methods=["GET", "POST"])
@bp.route("/arcgis/rest/generateToken/", methods=["GET", "POST"])
@bp.route("/arcgis/tokens/", methods=["GET", "POST"])
@bp.route("/arcgis/tokens", methods=["GET", "POST"])
def generate_token():
    sec = security()
    query = Params(request.args.items(multi=True))
    if query.get("username") is not None or query.get("password") is not None:
        # a query string sits in every proxy and access log: refused for GET and POST alike
        raise TokenError("username and password must be sent in the body of a POST request, not in the query "
                         "string.")
    if request.method == "GET":
        if (query.get("f") or "html").lower() == "html":
            return render_template("tokens.html", minutes=sec.settings.token_minutes)
        raise TokenError("'username' must be specified.", "'password' must be specified.")
    p = Params(list(request.form.items(multi=True)) + list(request.args.items(multi=True)))
    f = (p.get("f") or "html").lower()
    pretty = f in ("pjson", "html")
    callback = check_callback(p.get("callback"))
    user = p.get("username")
    # the password exactly as sent (Params trims values; a password may end in a space)
    password = next((v for k, v in request.form.items(multi=True) if k.lower() == "password" and v), None)
    missing = [f"'{k}' must be specified." for k, v in (("username", user), ("password", password)) if not v]
    client = (p.get("client") or ("referer" if p.get("referer") else "requestip")).lower()
    if client not in _CLIENTS:
        raise InvalidParameter("client", f"{client!r} is not one of {', '.join(_CLIENTS)}")
    if client == "referer" and tokens.origin(p.get("referer")) is None:
        missing.append("'referer' must be specified (an http or https URL).")
    if client == "ip" and not (p.get("ip") or "").strip():
        missing.append("'ip' must be specified.")
    if missing:
        raise TokenError(*missing)
    settings = sec.settings
    minutes = settings.token_minutes
    if p.get("expiration") not in (None, ""):
        minutes = int(p.number("expiration", lo=1))
    minutes = min(minutes, settings.max_token_minutes)
    identity = sec.sign_in(user, password, request.remote_addr)
    if isinstance(identity, Refused):
        if identity.status == 429:
            return refusal(Decision(429, identity.reason, identity.retry_after), "rest")
        raise TokenError("Invalid username or password.")
    binding = {"referer": lambda: f"referer:{tokens.origin(p.get('referer'))}",
               "ip": lambda: f"ip:{p.get('ip').strip()}",
               "requestip": lambda: f"ip:{request.remote_addr}"}[client]()
    token, expires = sec.issue_token(identity, minutes, binding)
    return json_response({"token": token, "expires": expires, "ssl": request.scheme == "https"},
                         pretty=pretty, callback=callback)


def auth_info() -> dict:
    """`authInfo` of /arcgis/rest/info."""
    sec = security()
    if sec is None:
        return {"isTokenBasedSecurity": False}
    return {"isTokenBasedSecurity": True, "tokenServicesUrl": f"{gateway().base_url()}/arcgis/tokens/",
            "shortLivedTokenValidity": sec.settings.token_minutes}
