"""WCS at /arcgis/services/{name}/ImageServer/WCSServer (one coverage) and /ogc/wcs (every service):
routes, version choice and the one operation dispatch, handing over to the module of each version
(wcs10, wcs11, wcs20), which parses its own KVP or XML body and writes its own documents and
exceptions. Each version module offers: OPERATIONS (lower-case name -> answer), EMPTY (the error
of an endpoint without coverages, or None), UNSUPPORTED (OperationNotSupported's locator, None for
the operation's name, and status), kvp_from_xml and exception."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from flask import Blueprint, Response, request
from lxml import etree

from ..engine import GatewayError
from ..gateway import gateway
from ..security.caller import token_query
from . import wcs10, wcs11, wcs20
from .common import KVP, OGCError, negotiate
from .coverage import Coverage, coverage_of
from .errors import WCS, ogc_error
from .isolate import each_service
from .xmlpost import MAX_BODY
from .xmlpost import parse as parse_xml

log = logging.getLogger("ogc_gateway.wcs")
bp = Blueprint("wcs", __name__)

VERSIONS = ("1.0.0", "1.1.1", "2.0.1")
MODULES = {"1.0.0": wcs10, "1.1.1": wcs11, "2.0.1": wcs20}
ALIASES = {"1.0": "1.0.0", "1.0.0": "1.0.0", "1.1": "1.1.1", "1.1.0": "1.1.1", "1.1.1": "1.1.1",
           "1.1.2": "1.1.1", "2.0": "2.0.1", "2.0.0": "2.0.1", "2.0.1": "2.0.1"}


@dataclass(frozen=True)
class Endpoint:
    """One WCS: its URL (ending in '?') and its coverages by identifier."""

    url: str
    coverages: dict[str, Coverage]


@bp.route("/arcgis/services/<name>/ImageServer/WCSServer", methods=["GET", "POST"])
def service_wcs(name: str):
    gw = gateway()
    svc = gw.services.get(name)
    coverages = {} if svc is None else {name: coverage_of(svc)}
    return handle(Endpoint(f"{gw.base_url()}/arcgis/services/{name}/ImageServer/WCSServer?{token_query()}",
                           coverages))


@bp.route("/ogc/wcs", methods=["GET", "POST"])
def combined_wcs():
    gw = gateway()
    return handle(Endpoint(f"{gw.base_url()}/ogc/wcs?{token_query()}", each_service(gw.services, coverage_of)))


_NAMESPACE_VERSIONS = {"http://www.opengis.net/wcs": "1.0.0", "http://www.opengis.net/wcs/1.1": "1.1.1",
                       "http://www.opengis.net/wcs/1.1.1": "1.1.1", "http://www.opengis.net/wcs/2.0": "2.0.1"}


def _xml_version(root) -> str:
    """The module for an XML request: its version attribute, else its namespace (an OWS
    GetCapabilities carries AcceptVersions instead of a version), else 2.0.1."""
    version = (root.get("version") or "").strip()
    if version in ALIASES:
        return ALIASES[version]
    namespace = etree.QName(root).namespace or ""
    return _NAMESPACE_VERSIONS.get(namespace, "2.0.1")


def _version_of(kvp: KVP, operation: str) -> str:
    """The version that answers: for GetCapabilities the first of ACCEPTVERSIONS we support, else
    VERSION negotiated the WCS 1.0 way (none: the highest); for other requests VERSION itself."""
    if operation == "getcapabilities":
        accept = kvp.get("ACCEPTVERSIONS")
        if accept and accept.strip():
            for v in (a.strip() for a in accept.split(",")):
                if v in ALIASES:
                    return ALIASES[v]
            raise OGCError("VersionNegotiationFailed", f"none of {accept} is supported "
                           f"({', '.join(VERSIONS)})", "AcceptVersions", status=400)
        asked = kvp.get("VERSION")
        if asked and asked.strip() in ALIASES:
            return ALIASES[asked.strip()]
        return negotiate(asked, VERSIONS)
    asked = (kvp.get("VERSION") or "").strip()
    if not asked:
        raise OGCError("MissingParameterValue", "parameter VERSION is required", "VERSION", status=400)
    if asked not in ALIASES:
        raise OGCError("InvalidParameterValue", f"VERSION={asked} is not supported ({', '.join(VERSIONS)})",
                       "VERSION", status=400)
    return ALIASES[asked]


def dispatch(version: str, kvp: KVP, ep: Endpoint, operation: str) -> Response:
    """The answer of `version`'s module to `operation` (lower-case)."""
    module = MODULES[version]
    if not ep.coverages and module.EMPTY is not None:
        code, message, locator, status = module.EMPTY
        raise OGCError(code, message, locator, status=status)
    answer = module.OPERATIONS.get(operation)
    if answer is None:
        asked = kvp.get("REQUEST")
        locator, status = module.UNSUPPORTED
        raise OGCError("OperationNotSupported", f"REQUEST={asked!r} is not a WCS {version} operation "
                       "(GetCapabilities, DescribeCoverage, GetCoverage)", locator or asked, status=status)
    return answer(kvp, ep)


def handle(ep: Endpoint) -> Response:
    version = "2.0.1"
    try:
        if request.method == "POST":
            root = parse_xml(request.get_data(cache=False)[:MAX_BODY + 1])
            version = _xml_version(root)
            kvp = MODULES[version].kvp_from_xml(root)
        else:
            kvp = KVP(request.args.items(multi=True))
        operation = (kvp.get("REQUEST") or "").strip().lower()
        if kvp.get("VERSION") and kvp.get("VERSION").strip() in ALIASES:
            version = ALIASES[kvp.get("VERSION").strip()]
        service = (kvp.get("SERVICE") or "").strip()
        if service.upper() != "WCS" and not (service == "" and operation != "getcapabilities"):
            raise OGCError("InvalidParameterValue" if service else "MissingParameterValue",
                           "SERVICE must be WCS", "SERVICE", status=400)
        if not operation:
            raise OGCError("MissingParameterValue", "parameter REQUEST is required", "REQUEST", status=400)
        version = _version_of(kvp, operation)
        return dispatch(version, kvp, ep, operation)
    except OGCError as exc:
        return MODULES[version].exception(exc)
    except GatewayError as exc:            # the engine's refusals (limits, bad values)
        return MODULES[version].exception(ogc_error(exc, WCS[version], status=exc.http_status))
    except Exception:                      # a bug: still an exception report, never a traceback
        log.exception("unexpected error on %s", request.full_path)
        return MODULES[version].exception(OGCError("NoApplicableCode", "the server failed to answer; its log "
                                                   "has the details", status=500))
