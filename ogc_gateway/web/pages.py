"""The HTML side of the gateway: `/`, the per-service map viewer, the bundled static files
(OpenLayers, built from `web/viewer-src/`) and the strict Content-Security-Policy of every HTML page.

The REST views render their own pages; this module only adds what those templates need to be
readable (spatial reference names, every URL of a service) and what the viewer needs to start
(the service's extent, CRS as a proj4 definition, templates, times). Everything else the pages
ask for, they ask the REST and OGC faces in the browser, as any client would.
"""

from __future__ import annotations

import warnings
from datetime import UTC, datetime
from urllib.parse import quote

from flask import Blueprint, Response, redirect, render_template, url_for
from pyproj import CRS as ProjCRS
from pyproj.exceptions import CRSError

from ..engine import GatewayError, sr_json
from ..gateway import gateway
from ..rest.responses import error_response

bp = Blueprint("web", __name__, static_folder="static", static_url_path="/arcgis/rest/static")

# No inline script or style, no plugin, nothing from another host: the pages' scripts are the
# bundled files; images may be data: (legend swatches) and blob: (exported images read by fetch).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; "
       "frame-ancestors 'self'")


@bp.after_app_request
def _csp(resp: Response) -> Response:
    if resp.mimetype == "text/html":
        resp.headers.setdefault("Content-Security-Policy", CSP)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    return resp


@bp.errorhandler(GatewayError)
def _gateway_error(exc: GatewayError):
    """The viewer of a service that does not exist answers as the REST face does."""
    return error_response(exc, http_errors=gateway().config.server.rest_http_errors)


@bp.route("/", methods=["GET"])
def home():
    return redirect(url_for("rest.services").rstrip("/"))


@bp.route("/arcgis/rest/services/<name>/ImageServer/viewer", methods=["GET"])
def viewer(name: str):
    svc = gateway().service(name)
    return render_template("viewer.html", svc=svc.info, config=viewer_config(svc))


# --- what the templates use ------------------------------------------------------------------------

def _pyproj(crs) -> ProjCRS | None:
    try:
        return ProjCRS.from_wkt(crs.to_wkt()) if hasattr(crs, "to_wkt") else ProjCRS.from_user_input(crs)
    except CRSError:
        return None


def readable_sr(crs) -> str:
    """"WGS 84 / UTM zone 33N (EPSG:32633)": the CRS's name and its authority code, when it has one."""
    proj = _pyproj(crs)
    if proj is None:
        return str(crs)
    code = proj.to_authority(min_confidence=90)
    if code:
        return f"{proj.name} ({code[0]}:{code[1]})"
    operation = proj.coordinate_operation
    method = operation.method_name if operation is not None else proj.type_name
    name = "" if proj.name.lower() == "unknown" else f"{proj.name}, "
    return f"{name}{method} on {proj.datum.name if proj.datum else 'an unknown datum'} (no authority code)"


def wkt_of(crs) -> str:
    proj = _pyproj(crs)
    return proj.to_wkt(pretty=True) if proj is not None else str(crs)


def iso_time(ms) -> str:
    """Epoch milliseconds as ISO 8601 UTC (what a person reads; the JSON keeps the numbers)."""
    if ms is None:
        return ""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ" if moment.time().second or moment.time().minute
                           or moment.time().hour else "%Y-%m-%d")


def service_urls(name: str) -> dict[str, str]:
    """Every way to reach one service, absolute (public_url when configured)."""
    base = gateway().base_url()
    rest = f"{base}/arcgis/rest/services/{quote(name)}/ImageServer"
    ogc = f"{base}/arcgis/services/{quote(name)}/ImageServer"
    return {
        "rest": rest,
        "viewer": f"{rest}/viewer",
        "thumbnail": f"{rest}/info/thumbnail",
        "wms": f"{ogc}/WMSServer?SERVICE=WMS&REQUEST=GetCapabilities",
        "wcs": f"{ogc}/WCSServer?SERVICE=WCS&REQUEST=GetCapabilities",
        "wmts": f"{rest}/WMTS/1.0.0/WMTSCapabilities.xml",
        "wms_base": f"{ogc}/WMSServer",
        "wcs_base": f"{ogc}/WCSServer",
        "wmts_base": f"{rest}/WMTS",
    }


@bp.app_context_processor
def _helpers():
    return {"readable_sr": readable_sr, "wkt_of": wkt_of, "iso_time": iso_time, "service_urls": service_urls}


# --- the viewer's start-up settings ----------------------------------------------------------------

def _projection(crs) -> dict:
    """The service CRS for OpenLayers: an EPSG code, its proj4 definition (proj4js registers it) and
    whether WMS 1.3.0 writes its coordinates north first."""
    proj = _pyproj(crs)
    code = proj.to_authority(min_confidence=90) if proj is not None else None
    epsg = int(code[1]) if code and code[0] == "EPSG" else None
    north_first = bool(proj is not None and proj.axis_info
                       and proj.axis_info[0].direction.lower() in ("north", "south"))
    with warnings.catch_warnings():     # "may lose important projection information": proj4js needs it
        warnings.simplefilter("ignore", UserWarning)
        proj4 = proj.to_proj4() if proj is not None else None
    return {"code": f"EPSG:{epsg}" if epsg else None, "wkid": epsg, "proj4": proj4,
            "name": readable_sr(crs), "northFirst": north_first, "sr": sr_json(crs)}


def viewer_config(svc) -> dict:
    from ..ogc.layers import layer_of  # the OGC face's view of the service: its WMTS times

    info = svc.info
    layer = layer_of(svc)
    return {
        "name": info.name,
        "title": info.title or info.name,
        "urls": service_urls(info.name),
        "extent": list(info.extent),
        "projection": _projection(info.crs),
        "bandNames": list(info.band_names),
        "defaultBandIds": list(info.default_band_ids) if info.default_band_ids else None,
        "templates": [{"name": t.name, "description": t.description} for t in info.templates],
        "times": list(layer.time_values),
        "timeLabels": list(layer.times),
        "multidimensional": info.multidimensional is not None,
        "catalog": info.item_count > 0,
    }
