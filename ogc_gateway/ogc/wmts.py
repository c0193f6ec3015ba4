"""WMTS 1.0.0, KVP and RESTful: one layer per service at /arcgis/rest/services/{name}/ImageServer/WMTS,
every service at /ogc/wmts.

Requests become the engine's TileRequest (GetTile) and a GetFeatureInfo of the WMS's kind at the
tile pixel; tiles come from the shared tile cache (engine/tiles.py), so WMTS, the ImageServer tile
resource and the seeding program fill and read the same store. Errors are OWS 1.1 exception reports
with the status codes of the WMTS test suite; RESTful requests for things that do not exist are 404.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote

from flask import Blueprint, Response, request

from ..engine import TILE_MIME as MIME
from ..engine import GatewayError, NotFound, TileRequest, TileSetLimits, TimeWindow, get_tile, tile_sets
from ..engine import blank_tile as blank
from ..gateway import gateway
from ..http_cache import cacheable
from ..security.caller import token_query, token_suffix
from ..templates import render
from . import featureinfo
from .common import KVP, OGCError, ows_is_current, ows_sections, parse_instant
from .common import number as _num
from .crs import epsg_code, ordered
from .errors import WMTS, ogc_error
from .isolate import each_service
from .layers import Layer, layer_of, select_time

log = logging.getLogger("ogc_gateway.wmts")
bp = Blueprint("wmts", __name__)

VERSION = "1.0.0"
SECTIONS = ("ServiceIdentification", "ServiceProvider", "OperationsMetadata", "Contents", "Themes")
FORMATS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}
EXTENSIONS = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg", "webp": "image/webp"}
INFO_EXTENSIONS = {"txt": "text/plain", "html": "text/html", "xml": "text/xml", "json": "application/json",
                   "gml": "application/vnd.ogc.gml"}
STATUS = {"OperationNotSupported": 501, "NoApplicableCode": 500}
XML_MIME = "application/xml"
_SERVICE = "/arcgis/rest/services/<name>/ImageServer/WMTS"


@dataclass(frozen=True)
class Endpoint:
    """One WMTS: its base URL (KVP requests go to `base`, RESTful ones below it) and its layers."""

    base: str
    layers: dict[str, Layer]
    combined: bool


def _endpoint(name: str | None) -> Endpoint:
    gw = gateway()
    if name is None:
        return Endpoint(f"{gw.base_url()}/ogc/wmts", each_service(gw.services, layer_of), True)
    svc = gw.services.get(name)
    if svc is None:
        raise NotFound(f"There is no image service named {name!r}.")
    return Endpoint(f"{gw.base_url()}/arcgis/rest/services/{name}/ImageServer/WMTS", {name: layer_of(svc)}, False)


# --- routes ---------------------------------------------------------------------------------------

@bp.route(_SERVICE, methods=["GET"])
@bp.route(f"{_SERVICE}/", methods=["GET"])
@bp.route("/ogc/wmts", methods=["GET"])
@bp.route("/ogc/wmts/", methods=["GET"])
def kvp_view(name: str | None = None):
    try:
        ep = _endpoint(name)
    except NotFound as exc:
        return _exception(OGCError("InvalidParameterValue", exc.message, "service", status=404))
    return handle(KVP(request.args.items(multi=True)), ep)


@bp.route(f"{_SERVICE}/1.0.0/WMTSCapabilities.xml", methods=["GET"])
@bp.route("/ogc/wmts/1.0.0/WMTSCapabilities.xml", methods=["GET"])
def rest_capabilities(name: str | None = None):
    accepted = request.accept_mimetypes
    if request.headers.get("Accept") and not (accepted["application/xml"] or accepted["text/xml"]):
        return Response("capabilities are available as application/xml only", status=406,
                        content_type="text/plain; charset=utf-8")
    try:
        ep = _endpoint(name)
    except NotFound as exc:
        return Response(exc.message, status=404, content_type="text/plain; charset=utf-8")
    return _guarded(lambda: get_capabilities(KVP([]), ep))


@bp.route(f"{_SERVICE}/tile/1.0.0/<path:path>", methods=["GET"])
@bp.route("/ogc/wmts/tile/1.0.0/<path:path>", methods=["GET"])
def rest_resource(path: str, name: str | None = None):
    """{layer}/{Style}[/{Time}]/{TileMatrixSet}/{TileMatrix}/{TileRow}/{TileCol}.{ext}, and the same
    followed by /{J}/{I}.{ext} for FeatureInfo. What does not exist is a plain 404."""
    def answer() -> Response:
        ep = _endpoint(name)
        parts = path.split("/")
        layer = ep.layers.get(parts[0])
        if layer is None:
            raise NotFound(f"no layer {parts[0]!r}")
        with_time = 1 if layer.times else 0
        if len(parts) not in (6 + with_time, 8 + with_time):
            raise NotFound("not a tile or feature info resource of this layer")
        pairs = [("LAYER", parts[0]), ("STYLE", parts[1])] + ([("TIME", parts[2])] if with_time else [])
        tms, matrix, row = parts[2 + with_time:5 + with_time]
        pairs += [("TILEMATRIXSET", tms), ("TILEMATRIX", matrix), ("TILEROW", row)]
        last, ext = _split_extension(parts[-1])
        if len(parts) == 6 + with_time:
            fmt = EXTENSIONS.get(ext.lower())
            if fmt is None:
                raise NotFound(f"no tile format for the extension {ext!r}")
            return get_tile_view(KVP(pairs + [("TILECOL", last), ("FORMAT", fmt)]), ep)
        info = INFO_EXTENSIONS.get(ext.lower())
        if info is None:
            raise NotFound(f"no feature info format for the extension {ext!r}")
        pairs += [("TILECOL", parts[-3]), ("J", parts[-2]), ("I", last), ("INFOFORMAT", info),
                  ("FORMAT", "image/png")]
        return get_feature_info(KVP(pairs), ep)
    return _guarded(answer, rest=True)


@bp.route(f"{_SERVICE}/<path:path>", methods=["GET"])
@bp.route("/ogc/wmts/<path:path>", methods=["GET"])
def unknown_resource(path: str, name: str | None = None):
    """Below a WMTS, anything but the capabilities and the tile templates is not a resource."""
    return Response(f"no WMTS resource {path!r}", status=404, content_type="text/plain; charset=utf-8")


def _split_extension(text: str) -> tuple[str, str]:
    stem, dot, ext = text.rpartition(".")
    if not dot:
        raise NotFound("the last path segment needs a file extension (.png, .jpg, .webp, .json ...)")
    return stem, ext


# --- KVP dispatch ---------------------------------------------------------------------------------

def handle(kvp: KVP, ep: Endpoint) -> Response:
    def answer() -> Response:
        service = kvp.get("SERVICE")
        if service is None or not service.strip():
            raise OGCError("MissingParameterValue", "parameter SERVICE is required", "service")
        if service.strip().upper() != "WMTS":
            raise OGCError("InvalidParameterValue", f"SERVICE={service!r}: this is a WMTS", "service")
        operation = (kvp.get("REQUEST") or "").strip().lower()
        if not operation:
            raise OGCError("MissingParameterValue", "parameter REQUEST is required", "request")
        if operation == "getcapabilities":
            return get_capabilities(kvp, ep)
        if operation not in ("gettile", "getfeatureinfo"):
            raise OGCError("InvalidParameterValue", f"REQUEST={kvp.get('REQUEST')!r} is not a WMTS operation "
                           "(GetCapabilities, GetTile, GetFeatureInfo)", "request")
        version = kvp.get("VERSION")
        if version is None or not version.strip():
            raise OGCError("MissingParameterValue", "parameter VERSION is required", "version")
        if version.strip() != VERSION:
            raise OGCError("InvalidParameterValue", f"VERSION={version!r} is not supported (1.0.0)", "version")
        if operation == "gettile":
            return get_tile_view(kvp, ep)
        return get_feature_info(kvp, ep)
    return _guarded(answer)


# What a RESTful request names in its path: a bad value there is a resource that does not exist.
_PATH_LOCATORS = ("layer", "style", "tilematrixset", "tilematrix", "TileRow", "TileCol", "format", "time")


def _guarded(answer, rest: bool = False) -> Response:
    """The answer, or the exception report of whatever went wrong (a 404 for a RESTful path naming
    something that does not exist)."""
    try:
        return answer()
    except NotFound as exc:
        return Response(f"{exc.message} {' '.join(exc.details)}".strip(), status=404,
                        content_type="text/plain; charset=utf-8")
    except OGCError as exc:
        if rest and exc.code in ("TileOutOfRange", "InvalidParameterValue") and exc.locator in _PATH_LOCATORS:
            exc.status = 404
        return _exception(exc)
    except GatewayError as exc:              # the engine's refusals (limits, bad values)
        return _exception(ogc_error(exc, WMTS, status=exc.http_status))
    except Exception:                        # a bug: still an exception report, never a traceback
        log.exception("unexpected error on %s", request.full_path)
        return _exception(OGCError("NoApplicableCode", "the server failed to answer; its log has the details"))


def _exception(exc: OGCError) -> Response:
    """An OWS 1.1 ExceptionReport, with the status the WMTS test suite expects of its code."""
    code = exc.code or "NoApplicableCode"
    status = exc.status if exc.status and exc.status != 200 else STATUS.get(code, 400)
    body = render("ows11_exception.xml", version=VERSION, code=code, locator=exc.locator, message=exc.message)
    return Response(body, status=status, content_type=XML_MIME)


# --- GetCapabilities ------------------------------------------------------------------------------

def _corner(x: float, y: float, inverted: bool) -> str:
    return " ".join(_num(v) for v in ordered(x, y, inverted))


def _box(bounds, inverted: bool) -> dict:
    x0, y0, x1, y1 = bounds
    return {"lower": _corner(x0, y0, inverted), "upper": _corner(x1, y1, inverted)}


def _update_sequence(ep: Endpoint) -> int:
    return max(layer.service.catalog.last_change() for layer in ep.layers.values())


def get_capabilities(kvp: KVP, ep: Endpoint) -> Response:
    accept = kvp.get("ACCEPTVERSIONS")
    if accept and accept.strip() and VERSION not in [v.strip() for v in accept.split(",")]:
        raise OGCError("VersionNegotiationFailed", f"none of {accept} is supported (1.0.0)", None)
    sequence = _update_sequence(ep)
    if ows_is_current(kvp, sequence):
        return Response(render("wmts_capabilities.xml", minimal=True, update_sequence=sequence),
                        content_type=XML_MIME)
    sections = ows_sections(kvp, SECTIONS, empty_is_missing=True)
    server = gateway().config.server
    single = None if ep.combined else next(iter(ep.layers.values()))
    layers, matrix_sets = [], {}
    for layer in ep.layers.values():
        sets = tile_sets(layer.service).sets
        layers.append(_layer_view(ep, layer, sets))
        for identifier, found in sets.items():
            if found.tms.crs_urn is not None:
                matrix_sets.setdefault(identifier, _tms_view(found))
    body = render(
        "wmts_capabilities.xml", minimal=False, update_sequence=sequence, sections=sections,
        all_sections=SECTIONS, server=server,
        title=single.title if single else server.title,
        abstract=(single.abstract or server.abstract) if single else server.abstract,
        keywords=tuple(server.keywords) + (tuple(single.keywords) if single else ()),
        provider=server.contact.organization if server.contact and server.contact.organization else server.title,
        contact=server.contact, kvp_url=f"{ep.base}?{token_query()}",
        rest_capabilities=f"{ep.base}/1.0.0/WMTSCapabilities.xml{token_suffix()}",
        layers=layers, tile_matrix_sets=list(matrix_sets.values()), formats=list(FORMATS),
        info_formats=featureinfo.FORMATS)
    return Response(body, content_type=XML_MIME)


def advertised_levels(found: TileSetLimits) -> int:
    """How many levels a layer's limits list: down to one past the data's native resolution.
    Clients size the layer by its deepest listed level (GDAL would see a 300 m raster at level 24
    as 27 million pixels wide); deeper tiles are still served, as overzoom."""
    return min(len(found.ranges), found.native_level + 2)


def _layer_view(ep: Endpoint, layer: Layer, sets: dict[str, TileSetLimits]) -> dict:
    gw = gateway()
    legend_base = (f"{gw.base_url()}/arcgis/services/{layer.name}/ImageServer/WMSServer?{token_query()}"
                   f"SERVICE=WMS&VERSION=1.3.0&REQUEST=GetLegendGraphic&LAYER={layer.name}&FORMAT=image/png&STYLE=")
    styles = [{"name": s.name, "title": s.title, "legend": legend_base + quote(s.name, safe=""),
               "width": s.legend_size[0], "height": s.legend_size[1]} for s in layer.styles]
    links, bboxes = [], {}
    for identifier, found in sets.items():
        tms = found.tms
        if tms.crs_urn is None:
            continue
        links.append({"id": identifier, "limits": [
            {"id": m.identifier, "r0": r0, "r1": r1, "c0": c0, "c1": c1}
            for m, (r0, r1, c0, c1) in list(zip(tms.matrices, found.ranges))[:advertised_levels(found)]]})
        if tms.crs_urn not in bboxes:
            bboxes[tms.crs_urn] = {"crs": tms.crs_urn, **_box(found.extent, tms.inverted)}
    time_part = "/{Time}" if layer.times else ""
    prefix = f"{ep.base}/tile/1.0.0/{layer.name}/{{Style}}{time_part}/{{TileMatrixSet}}/{{TileMatrix}}/{{TileRow}}/{{TileCol}}"
    suffix = token_suffix()          # a token the capabilities were fetched with, for clients to follow
    resources = [{"format": mime, "type": "tile", "template": f"{prefix}.{fmt}{suffix}"}
                 for mime, fmt in FORMATS.items()]
    info_ext = {mime: ext for ext, mime in INFO_EXTENSIONS.items()}
    resources += [{"format": mime, "type": "FeatureInfo", "template": f"{prefix}/{{J}}/{{I}}.{info_ext[mime]}{suffix}"}
                  for mime in featureinfo.FORMATS]
    w, s, e, n = layer.geographic
    return {"name": layer.name, "title": layer.title, "abstract": layer.abstract, "keywords": layer.keywords,
            "wgs84": _box((w, s, e, n), False), "bboxes": list(bboxes.values()), "styles": styles,
            "times": layer.times, "links": links, "resources": resources}


def _tms_view(found: TileSetLimits) -> dict:
    tms = found.tms
    matrices = [{"id": m.identifier, "scale": repr(float(m.scale_denominator)),
                 "corner": _corner(m.origin[0], m.origin[1], tms.inverted), "tw": m.tile_width,
                 "th": m.tile_height, "mw": m.matrix_width, "mh": m.matrix_height} for m in tms.matrices]
    # Only Web Mercator's square world is worth a box: a native set's level-0 tile reaches past the
    # data (and, in degrees, past the poles).
    first = tms.matrices[0]
    bbox = _box(first.bounds(0, 0, first.matrix_height, first.matrix_width), tms.inverted) \
        if tms.identifier == "WebMercatorQuad" else None
    return {"id": tms.identifier, "crs": tms.crs_urn, "wkss": tms.well_known_scale_set, "bbox": bbox,
            "matrices": matrices}


# --- GetTile --------------------------------------------------------------------------------------

def _layer(kvp: KVP, ep: Endpoint) -> Layer:
    name = kvp.required("LAYER").strip()
    layer = ep.layers.get(name)
    if layer is None:
        raise OGCError("InvalidParameterValue", f"there is no layer {name!r} (layers: {', '.join(ep.layers)})",
                       "layer")
    return layer


def tile_request(kvp: KVP, ep: Endpoint) -> tuple[Layer, TileRequest]:
    """Every GetTile parameter checked, in the order the WMTS test suite probes them."""
    for name in ("LAYER", "STYLE", "FORMAT", "TILEMATRIXSET", "TILEMATRIX", "TILEROW", "TILECOL"):
        if kvp.get(name) is None:
            raise OGCError("MissingParameterValue", f"parameter {name} is required", name.lower())
    layer = _layer(kvp, ep)
    style = layer.style(kvp.get("STYLE").strip())
    if style is None:
        raise OGCError("InvalidParameterValue", f"layer {layer.name!r} has no style {kvp.get('STYLE')!r} "
                       f"(styles: {', '.join(s.name for s in layer.styles)})", "style")
    fmt = FORMATS.get(kvp.get("FORMAT").strip().lower())
    if fmt is None:
        raise OGCError("InvalidParameterValue", f"FORMAT={kvp.get('FORMAT')!r} is not offered "
                       f"({', '.join(FORMATS)})", "format")
    sets = tile_sets(layer.service).sets
    identifier = kvp.get("TILEMATRIXSET").strip()
    found = sets.get(identifier)
    if found is None or found.tms.crs_urn is None:
        raise OGCError("InvalidParameterValue", f"layer {layer.name!r} is not tiled in {identifier!r} "
                       f"(tile matrix sets: {', '.join(sets)})", "tilematrixset")
    level = found.tms.level(kvp.get("TILEMATRIX").strip())
    if level is None:
        raise OGCError("InvalidParameterValue", f"tile matrix set {identifier} has no tile matrix "
                       f"{kvp.get('TILEMATRIX')!r}", "tilematrix")
    row, col = _index(kvp, "TILEROW", "TileRow"), _index(kvp, "TILECOL", "TileCol")
    r0, r1, c0, c1 = found.ranges[level]
    if not r0 <= row <= r1:
        raise OGCError("TileOutOfRange", f"TILEROW {row} is outside {r0}..{r1} on this tile matrix", "TileRow")
    if not c0 <= col <= c1:
        raise OGCError("TileOutOfRange", f"TILECOL {col} is outside {c0}..{c1} on this tile matrix", "TileCol")
    return layer, TileRequest(tile_set=identifier, level=level, row=row, col=col, style=style.name,
                              rendering_rule=style.rule(layer.service), time=_time(kvp, layer), format=fmt)


def _index(kvp: KVP, name: str, locator: str) -> int:
    raw = kvp.get(name).strip()
    if not raw.lstrip("-").isdigit():
        raise OGCError("InvalidParameterValue", f"{name}={raw!r} is not a whole number", locator)
    value = int(raw)
    if value < 0:
        raise OGCError("TileOutOfRange", f"{name} {value} is negative", locator)
    return value


def _time(kvp: KVP, layer: Layer) -> TimeWindow | None:
    """The Time dimension: one of the advertised values, `default`/`current` or absent (the latest)."""
    raw = (kvp.get("TIME") or "").strip()
    if raw.lower() in ("", "default", "current"):
        return select_time(layer, None, "time")[0]
    if not layer.times:
        return None
    try:
        asked = parse_instant(raw, "time")
    except OGCError:
        asked = None
    if asked not in layer.time_values:
        raise OGCError("InvalidParameterValue", f"Time={raw!r} is not one of the layer's times "
                       f"({', '.join(layer.times)})", "time")
    return select_time(layer, TimeWindow.of_instants((asked,)), "time")[0]


def get_tile_view(kvp: KVP, ep: Endpoint) -> Response:
    layer, req = tile_request(kvp, ep)
    gw = gateway()
    server = gw.config.server
    stored = get_tile(layer.service, req, gw.tile_store, metatile_size=server.tile_metatile_size)
    matrix = tile_sets(layer.service).sets[req.tile_set].tms.matrices[req.level]
    empty = blank(req.format, matrix.tile_width, matrix.tile_height)      # a tile without data
    resp = Response(empty if stored.empty else stored.data, content_type=MIME[req.format])
    return cacheable(resp, stored, server.tile_cache_max_age, blank=empty)


# --- GetFeatureInfo -------------------------------------------------------------------------------

def get_feature_info(kvp: KVP, ep: Endpoint) -> Response:
    for name in ("INFOFORMAT", "I", "J"):
        if kvp.get(name) is None:
            raise OGCError("MissingParameterValue", f"parameter {name} is required", name.lower())
    layer, req = tile_request(kvp, ep)
    info_format = kvp.get("INFOFORMAT").strip()
    if info_format not in featureinfo.FORMATS:
        raise OGCError("InvalidParameterValue", f"INFOFORMAT={info_format!r} is not offered "
                       f"({', '.join(featureinfo.FORMATS)})", "infoformat")
    tms = tile_sets(layer.service).sets[req.tile_set].tms
    matrix = tms.matrices[req.level]
    i, j = (_pixel(kvp, key, size) for key, size in (("I", matrix.tile_width), ("J", matrix.tile_height)))
    x0, y0, x1, y1 = matrix.bounds(req.row, req.col)
    x = x0 + (i + 0.5) * matrix.cell_size
    y = y1 - (j + 0.5) * matrix.cell_size
    count = kvp.integer("FEATURE_COUNT", lo=1, required=False) or 1
    result = featureinfo.query(layer, tms.crs, x, y, req.time, None, count)
    crs_code = epsg_code(tms.crs) or tms.crs_urn
    body, mime = featureinfo.render_as(info_format, [result], (x, y), crs_code)
    return Response(body, content_type=mime)


def _pixel(kvp: KVP, name: str, size: int) -> int:
    raw = kvp.get(name).strip()
    if not raw.lstrip("-").isdigit() or not 0 <= int(raw) < size:
        raise OGCError("PointIJOutOfRange", f"{name}={raw!r} is not a pixel of the {size}-pixel tile", name.lower())
    return int(raw)
