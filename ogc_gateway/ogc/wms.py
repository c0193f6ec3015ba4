"""WMS 1.1.1 and 1.3.0: one layer per service at /arcgis/services/{name}/ImageServer/WMSServer, every
service as a child of one root layer at /ogc/wms.

Requests become the engine's MapRequest (GetMap: one ExportRequest per layer, which the engine's
render_map renders, composes and encodes) and SampleRequest (GetFeatureInfo); pictures use the
engine's default rendering, so WMS shows what exportImage shows. Errors are exception reports in
the request's version (or an image, for EXCEPTIONS=INIMAGE/BLANK).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from flask import Blueprint, Response, request
from PIL import Image, ImageDraw, ImageFont

from ..engine import ExportRequest, GatewayError, Grid, MapRequest, encode_map, render_map
from ..engine import draw_legend as draw
from ..gateway import gateway
from ..security.caller import token_query
from ..templates import render
from . import crs as ogc_crs
from . import featureinfo
from .common import KVP, OGCError, check_update_sequence, negotiate, numbers, parse_time
from .errors import WMS, WMS_111, ogc_error
from .isolate import each_service
from .layers import Layer, Selection, dimension_values, layer_of, select
from .limits import strictest

log = logging.getLogger("ogc_gateway.wms")
bp = Blueprint("wms", __name__)

VERSIONS = ("1.1.1", "1.3.0")
# FORMAT value -> (encoder format, raw values?)
FORMATS = {"image/png": "png", "image/png; mode=8bit": "png8", "image/jpeg": "jpg", "image/gif": "gif",
           "image/webp": "webp", "image/tiff": "tiff", "image/geotiff": "tiff"}
EXCEPTION_FORMATS = {"1.3.0": ("XML", "INIMAGE", "BLANK"),
                     "1.1.1": ("application/vnd.ogc.se_xml", "application/vnd.ogc.se_inimage",
                               "application/vnd.ogc.se_blank")}
EXCEPTION_MIME = {"1.3.0": "text/xml; charset=utf-8", "1.1.1": "application/vnd.ogc.se_xml; charset=utf-8"}
CAPABILITIES_MIME = {"1.3.0": "text/xml; charset=utf-8", "1.1.1": "application/vnd.ogc.wms_xml; charset=utf-8"}
LAYER_LIMIT = 16


@dataclass(frozen=True)
class Endpoint:
    """One WMS: its URL and its layers (one for a service's own WMS, all for /ogc/wms)."""

    url: str                         # OnlineResource, ending in '?'
    layers: dict[str, Layer]
    combined: bool                   # a root layer holds the services


@bp.route("/arcgis/services/<name>/ImageServer/WMSServer", methods=["GET"])
def service_wms(name: str):
    gw = gateway()
    svc = gw.services.get(name)
    if svc is None:
        return _exception(OGCError("LayerNotDefined", f"there is no service named {name!r}"), "1.3.0")
    layer = layer_of(svc)
    return handle(Endpoint(f"{gw.base_url()}/arcgis/services/{name}/ImageServer/WMSServer?{token_query()}",
                           {layer.name: layer}, combined=False))


@bp.route("/ogc/wms", methods=["GET"])
def combined_wms():
    gw = gateway()
    layers = each_service(gw.services, layer_of)
    return handle(Endpoint(f"{gw.base_url()}/ogc/wms?{token_query()}", layers, combined=True))


def handle(ep: Endpoint) -> Response:
    kvp = KVP(request.args.items(multi=True))
    operation = (kvp.get("REQUEST") or "").strip().lower()
    version = _version(kvp, operation)
    try:
        service = kvp.get("SERVICE")
        if service and service.strip().upper() not in ("WMS", ""):
            raise OGCError("InvalidParameterValue", f"SERVICE={service!r}: this is a WMS", "SERVICE")
        if operation in ("getcapabilities", "capabilities"):
            return get_capabilities(kvp, ep, version)
        if not operation:
            raise OGCError("MissingParameterValue", "parameter REQUEST is required", "REQUEST")
        if operation not in ("getmap", "map", "getfeatureinfo", "feature_info", "getlegendgraphic"):
            raise OGCError("OperationNotSupported", f"REQUEST={kvp.get('REQUEST')!r} is not supported "
                           "(GetCapabilities, GetMap, GetFeatureInfo, GetLegendGraphic)", "REQUEST")
        if operation == "getlegendgraphic":
            return get_legend_graphic(kvp, ep)
        if kvp.get("VERSION") is None and kvp.get("WMTVER") is None:
            raise OGCError("MissingParameterValue", "parameter VERSION is required", "VERSION")
        if operation in ("getmap", "map"):
            return get_map(kvp, ep, version)
        return get_feature_info(kvp, ep, version)
    except OGCError as exc:
        return _exception(exc, version, kvp if operation in ("getmap", "map") else None, ep)
    except GatewayError as exc:            # the engine's refusals (limits, bad values)
        return _exception(ogc_error(exc, WMS_111 if version.startswith("1.1") else WMS),
                          version, kvp if operation in ("getmap", "map") else None, ep)
    except Exception:                      # a bug: still an exception report, never a traceback
        log.exception("unexpected error on %s", request.full_path)
        return _exception(OGCError(None, "the server failed to answer; its log has the details", status=500),
                          version)


def _version(kvp: KVP, operation: str) -> str:
    """The version that answers: negotiated for GetCapabilities, else the one asked (1.3.0 rules
    for exceptions when it is missing or unknown)."""
    asked = kvp.get("VERSION") or kvp.get("WMTVER")
    if operation in ("getcapabilities", "capabilities"):
        return negotiate(asked, VERSIONS)
    return asked.strip() if asked and asked.strip() in VERSIONS else "1.3.0"


# --- GetCapabilities ------------------------------------------------------------------------------

def _update_sequence(ep: Endpoint) -> int:
    return max(layer.service.catalog.last_change() for layer in ep.layers.values())


def get_capabilities(kvp: KVP, ep: Endpoint, version: str) -> Response:
    sequence = _update_sequence(ep)
    check_update_sequence(kvp, sequence)
    server = gateway().config.server
    limits = strictest(layer.service for layer in ep.layers.values())
    body = render(f"wms_capabilities_{version.replace('.', '_')}.xml", ep=ep, server=server,
                  update_sequence=sequence, formats=list(FORMATS), info_formats=featureinfo.FORMATS,
                  exception_formats=EXCEPTION_FORMATS[version], layer_limit=LAYER_LIMIT,
                  max_width=limits.max_image_width, max_height=limits.max_image_height,
                  legend_url=_legend_url(ep, version), root_geographic=_union(ep))
    return Response(body, content_type=CAPABILITIES_MIME[version])


def _union(ep: Endpoint) -> tuple[float, float, float, float]:
    boxes = [layer.geographic for layer in ep.layers.values()]
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _legend_url(ep: Endpoint, version: str):
    def url(layer: str, style: str) -> str:
        return (f"{ep.url}SERVICE=WMS&VERSION={version}&REQUEST=GetLegendGraphic&LAYER={layer}"
                f"&STYLE={style}&FORMAT=image/png")
    return url


# --- GetMap ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MapView:
    """The map part of GetMap and GetFeatureInfo: layers with their styles, the grid, the CRS."""

    layers: tuple[tuple[Layer, object], ...]      # (layer, rendering rule or None)
    grid: Grid
    crs_code: str


def map_view(kvp: KVP, ep: Endpoint, version: str) -> MapView:
    names = [n.strip() for n in kvp.required("LAYERS").split(",")]
    if len(names) > LAYER_LIMIT:
        raise OGCError("InvalidParameterValue", f"at most {LAYER_LIMIT} layers per request", "LAYERS")
    layers = []
    for name in names:
        if name not in ep.layers:
            raise OGCError("LayerNotDefined", f"layer {name!r} is not defined", "LAYERS")
        layers.append(ep.layers[name])
    raw_styles = kvp.get("STYLES")
    styles = [s.strip() for s in raw_styles.split(",")] if raw_styles and raw_styles.strip(", ") else []
    if styles and len(styles) != len(layers):
        raise OGCError("StyleNotDefined", f"STYLES lists {len(styles)} styles for {len(layers)} layers", "STYLES")
    styles = styles or [""] * len(layers)
    chosen = []
    for layer, style_name in zip(layers, styles):
        style = layer.style(style_name)
        if style is None:
            raise OGCError("StyleNotDefined", f"layer {layer.name!r} has no style {style_name!r} "
                           f"(styles: {', '.join(s.name for s in layer.styles)})", "STYLES")
        chosen.append((layer, style.rule(layer.service)))
    crs_key = "CRS" if version == "1.3.0" else "SRS"
    code = (kvp.get(crs_key) or kvp.get("CRS") or kvp.get("SRS") or "").strip()
    if not code:
        raise OGCError("MissingParameterValue", f"parameter {crs_key} is required", crs_key)
    bad_crs = "InvalidCRS" if version == "1.3.0" else "InvalidSRS"
    extra = {"CRS:84"} if version == "1.3.0" else set()
    if any(code.upper() not in {c.upper() for c in layer.crs} | extra for layer in layers):
        raise OGCError(bad_crs, f"{crs_key}={code} is not offered by every layer asked for", crs_key)
    crs = ogc_crs.parse(code, bad_crs, f"{crs_key}={code} is not a known CRS", crs_key)
    x0, y0, x1, y1 = numbers(kvp.required("BBOX"), "BBOX", 4)
    if version == "1.3.0" and ogc_crs.inverted(code):
        x0, y0, x1, y1 = y0, x0, y1, x1
    if not (x0 < x1 and y0 < y1):
        raise OGCError("InvalidParameterValue", "BBOX minimum must be less than its maximum", "BBOX")
    width, height = kvp.integer("WIDTH", lo=1), kvp.integer("HEIGHT", lo=1)
    limits = strictest(layer.service for layer in layers)
    if width > limits.max_image_width or height > limits.max_image_height:
        raise OGCError("InvalidParameterValue", f"{width}x{height} exceeds the maximum of "
                       f"{limits.max_image_width}x{limits.max_image_height}", "WIDTH")
    return MapView(tuple(chosen), Grid(crs, (x0, y0, x1, y1), width, height), code)


def selection_of(kvp: KVP, layer: Layer, headers: dict) -> Selection:
    """A layer's TIME, ELEVATION and DIM_<NAME> selection. What is absent takes its default (TIME:
    the latest, also for `current`), which WMS 1.3.0 asks to be announced in a Warning header."""
    raw = kvp.get("TIME")
    asked = parse_time(raw) if raw and raw.strip() else None
    chosen = {}
    for dim in layer.dimensions:
        value = kvp.get(dim.parameter)
        if value is not None and value.strip() and value.strip().lower() != "default":
            chosen[dim.name] = dimension_values(dim, value, dim.parameter)
    selection = select(layer, asked, chosen, "TIME")
    warnings = [f"99 Default value used: {d}" for d in selection.defaults]
    if layer.times and not (raw and raw.strip()):
        warnings.insert(0, f"99 Default value used: time={layer.default_time} ISO8601")
    if warnings:
        earlier = [headers["Warning"]] if "Warning" in headers else []
        headers["Warning"] = ", ".join(dict.fromkeys(earlier + warnings))
    return selection


def layer_request(layer: Layer, rule, grid: Grid, kvp: KVP, headers: dict) -> ExportRequest:
    selection = selection_of(kvp, layer, headers)
    info = layer.service.info
    return ExportRequest(grid=grid, rendering_rule=rule, time=selection.time, mosaic_rule=selection.rule,
                         resampling=info.resampling)


def _background(kvp: KVP) -> tuple[int, int, int]:
    raw = (kvp.get("BGCOLOR") or "0xFFFFFF").strip()
    text = raw[2:] if raw.lower().startswith("0x") else raw.lstrip("#")
    try:
        if len(text) != 6:
            raise ValueError
        value = int(text, 16)
    except ValueError:
        raise OGCError("InvalidParameterValue", f"BGCOLOR={raw!r} is not 0xRRGGBB", "BGCOLOR")
    return value >> 16, (value >> 8) & 255, value & 255


def _format(kvp: KVP, name: str = "FORMAT") -> tuple[str, str]:
    raw = kvp.required(name).strip()
    fmt = FORMATS.get(raw.lower().replace(";mode", "; mode"))
    if fmt is None:
        raise OGCError("InvalidFormat", f"{name}={raw!r} is not offered (formats: {', '.join(FORMATS)})", name)
    return raw, fmt


def get_map(kvp: KVP, ep: Endpoint, version: str) -> Response:
    raw_format, fmt = _format(kvp)
    transparent = kvp.flag("TRANSPARENT", False)
    background = _background(kvp)
    view = map_view(kvp, ep, version)
    headers: dict[str, str] = {}
    if fmt == "tiff" and len(view.layers) != 1:
        raise OGCError("InvalidParameterValue", "raw image/tiff maps hold one layer", "LAYERS")
    layers = tuple((layer.service, layer_request(layer, rule, view.grid, kvp, headers)) for layer, rule in view.layers)
    out = render_map(MapRequest(layers, fmt, transparent=transparent, background=background))
    return Response(out.data, content_type=raw_format if fmt == "png8" else out.content_type, headers=headers)


# --- GetFeatureInfo -------------------------------------------------------------------------------

def get_feature_info(kvp: KVP, ep: Endpoint, version: str) -> Response:
    view = map_view(kvp, ep, version)
    names = [n.strip() for n in kvp.required("QUERY_LAYERS").split(",")]
    in_map = {layer.name: layer for layer, _ in view.layers}
    for name in names:
        if name not in ep.layers:
            raise OGCError("LayerNotDefined", f"layer {name!r} is not defined", "QUERY_LAYERS")
        if name not in in_map:
            raise OGCError("LayerNotQueryable", f"layer {name!r} is not among LAYERS", "QUERY_LAYERS")
    info_format = (kvp.get("INFO_FORMAT") or ("" if version == "1.3.0" else "text/plain")).strip()
    if info_format not in featureinfo.FORMATS:
        raise OGCError("InvalidFormat", f"INFO_FORMAT={info_format!r} is not offered "
                       f"({', '.join(featureinfo.FORMATS)})", "INFO_FORMAT")
    i_key, j_key = ("I", "J") if version == "1.3.0" else ("X", "Y")
    bad_point = "InvalidPoint" if version == "1.3.0" else "InvalidParameterValue"
    i, j = kvp.integer(i_key), kvp.integer(j_key)
    grid = view.grid
    if not (0 <= i < grid.width and 0 <= j < grid.height):
        raise OGCError(bad_point, f"{i_key},{j_key} = {i},{j} lies outside the "
                       f"{grid.width}x{grid.height} map", i_key)
    count = kvp.integer("FEATURE_COUNT", lo=1, required=False) or 1
    x0, y0, x1, y1 = grid.bounds
    x = x0 + (i + 0.5) * (x1 - x0) / grid.width
    y = y1 - (j + 0.5) * (y1 - y0) / grid.height
    headers: dict[str, str] = {}
    results = []
    for name in names:
        layer = in_map[name]
        selection = selection_of(kvp, layer, headers)
        results.append(featureinfo.query(layer, grid.crs, x, y, selection.time, None, count, rule=selection.rule))
    body, mime = featureinfo.render_as(info_format, results, (x, y), view.crs_code)
    return Response(body, content_type=mime, headers=headers)


# --- GetLegendGraphic -----------------------------------------------------------------------------

def get_legend_graphic(kvp: KVP, ep: Endpoint) -> Response:
    name = kvp.required("LAYER").strip()
    layer = ep.layers.get(name)
    if layer is None:
        raise OGCError("LayerNotDefined", f"layer {name!r} is not defined", "LAYER")
    style = layer.style((kvp.get("STYLE") or "").strip())
    if style is None:
        raise OGCError("StyleNotDefined", f"layer {name!r} has no style {kvp.get('STYLE')!r}", "STYLE")
    raw = (kvp.get("FORMAT") or "image/png").strip().lower()
    kinds = {"image/png": ("PNG", "image/png"), "image/jpeg": ("JPEG", "image/jpeg"), "image/gif": ("GIF", "image/gif")}
    if raw not in kinds:
        raise OGCError("InvalidFormat", f"FORMAT={raw!r}: legends come as image/png, image/jpeg or image/gif",
                       "FORMAT")
    width = kvp.integer("WIDTH", lo=1, required=False)
    height = kvp.integer("HEIGHT", lo=1, required=False)
    if (width or 0) > 2000 or (height or 0) > 2000:
        raise OGCError("InvalidParameterValue", "a legend is at most 2000 pixels a side", "WIDTH")
    kind, mime = kinds[raw]
    return Response(draw(style.legend(layer.service), width, height, kind), content_type=mime)


# --- exceptions -----------------------------------------------------------------------------------

def _exception(exc: OGCError, version: str, kvp: KVP | None = None, ep: Endpoint | None = None) -> Response:
    """The exception report of `version`, or for GetMap with EXCEPTIONS=INIMAGE/BLANK an image of
    the requested format and size (the message drawn in it, or just the background)."""
    mode = ((kvp.get("EXCEPTIONS") if kvp else None) or "").strip().lower()
    if kvp is not None and (mode.endswith("inimage") or mode.endswith("blank")):
        image = _exception_image(exc, kvp, ep, drawn=mode.endswith("inimage"))
        if image is not None:
            return image
    body = render(f"wms_exception_{version.replace('.', '_')}.xml", code=exc.code, locator=exc.locator,
                  message=exc.message)
    return Response(body, status=exc.status, content_type=EXCEPTION_MIME[version])


def _exception_image(exc: OGCError, kvp: KVP, ep: Endpoint | None, drawn: bool) -> Response | None:
    try:
        raw_format, fmt = _format(kvp)
        width, height = kvp.integer("WIDTH", lo=1), kvp.integer("HEIGHT", lo=1)
        background = _background(kvp)
        transparent = kvp.flag("TRANSPARENT", False)
    except OGCError:
        return None                 # not enough to draw an image: the XML report says why
    if ep is None:
        return None
    named = [ep.layers[n.strip()] for n in (kvp.get("LAYERS") or "").split(",") if n.strip() in ep.layers]
    limits = strictest(layer.service for layer in named or ep.layers.values())
    if fmt == "tiff" or width > limits.max_image_width or height > limits.max_image_height:
        return None
    image = Image.new("RGBA", (width, height), background + ((0,) if transparent and not drawn else (255,)))
    if drawn:
        pen = ImageDraw.Draw(image)
        pen.text((4, 4), exc.message, fill=(0, 0, 0, 255), font=ImageFont.load_default())
    out = encode_map(np.asarray(image), fmt, transparent=transparent, background=background)
    return Response(out.data, content_type=raw_format if fmt == "png8" else out.content_type)

