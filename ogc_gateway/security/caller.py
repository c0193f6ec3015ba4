"""Who is calling, worked out once per request, for every module that needs it: the faces (token
links in capabilities), the gateway (which services the caller may see) and the security glue.

Apart from web.py (which installs the checks and calls into the faces to refuse in their format)
so the faces and the gateway can ask without importing it back.
"""

from __future__ import annotations

from flask import current_app, g, request

from .access import Identity, Who
from .runtime import Security

EXTENSION = "ogc_gateway.security"


def security() -> Security | None:
    return current_app.extensions.get(EXTENSION)


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
