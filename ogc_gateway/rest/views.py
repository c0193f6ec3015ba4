"""The ArcGIS REST face: thin views that parse, call the engine and answer in ArcGIS's formats."""

from __future__ import annotations

import json
import logging
from urllib.parse import urlencode

from flask import Blueprint, Response, render_template, request, send_file
from werkzeug.wsgi import wrap_file

from .. import __version__
from ..engine import GatewayError, InvalidParameter, NotFound, parse_rendering_rule, render_image, sr_json
from ..gateway import gateway
from ..http_cache import cacheable
from ..security.views import auth_info
from ..web import forms as web
from . import catalog as cat
from . import export as ex
from . import files
from . import inspect as ins
from . import multidim as md
from . import tiles as tl
from .params import Params
from .responses import check_callback, error_response, json_response, rest_error
from .root import CURRENT_VERSION, root_of

log = logging.getLogger("ogc_gateway.rest")
bp = Blueprint("rest", __name__, template_folder="../web/templates")

_F_ROOT = {"json": "json", "pjson": "pjson", "html": "html"}
_F_EXPORT = {"json": "json", "pjson": "pjson", "html": "html", "image": "image", "kmz": "kmz"}
_MIME = {"png": "image/png", "jpg": "image/jpeg", "tif": "image/tiff", "bmp": "image/bmp",
         "gif": "image/gif", "kmz": "application/vnd.google-earth.kmz"}


def params() -> Params:
    """GET and form-encoded POST alike."""
    return Params(request.values.items(multi=True))


def respond(body, p: Params) -> Response:
    return json_response(body, pretty=(p.get("f") or "").lower() == "pjson",
                         callback=check_callback(p.get("callback")))


@bp.errorhandler(GatewayError)
def _gateway_error(exc: GatewayError):
    return error_response(exc, http_errors=gateway().config.server.rest_http_errors,
                          callback=params().get("callback"))


@bp.errorhandler(Exception)
def _unexpected(exc: Exception):
    if hasattr(exc, "code") and hasattr(exc, "get_response"):      # werkzeug HTTP errors (405 ...)
        return error_response(GatewayError(str(exc.description or exc.name)), http_errors=False,
                              force_status=exc.code)
    log.exception("unexpected error on %s", request.path)
    return error_response(GatewayError("Error performing the operation; the server log has details."),
                          http_errors=gateway().config.server.rest_http_errors)


@bp.route("/arcgis/rest/info", methods=["GET", "POST"])
@bp.route("/arcgis/rest/info/", methods=["GET", "POST"])
def info():
    p = params()
    return respond({"currentVersion": CURRENT_VERSION, "fullVersion": f"{CURRENT_VERSION}.0",
                    "soapUrl": None, "secureSoapUrl": None, "gatewayVersion": __version__,
                    "authInfo": auth_info()}, p)


@bp.route("/arcgis/rest/services", methods=["GET", "POST"])
@bp.route("/arcgis/rest/services/", methods=["GET", "POST"])
def services():
    p = params()
    gw = gateway()
    listing = [{"name": name, "type": "ImageServer"} for name in gw.services]
    if p.enum("f", _F_ROOT, "html") == "html":
        return render_template("services.html", title=gw.config.server.title, services=gw.services,
                               version=CURRENT_VERSION)
    return respond({"currentVersion": CURRENT_VERSION, "folders": [], "services": listing}, p)


@bp.route("/arcgis/rest/services/<name>/ImageServer", methods=["GET", "POST"])
@bp.route("/arcgis/rest/services/<name>/ImageServer/", methods=["GET", "POST"])
def root(name: str):
    p = params()
    svc = gateway().service(name)
    f = p.enum("f", _F_ROOT | {"kmz": "kmz", "lyr": "html", "help": "html"}, "html")
    if f == "kmz":
        service_url = f"{gateway().base_url()}/arcgis/rest/services/{name}/ImageServer"
        return Response(files.kmz_network_link(svc, service_url), content_type=_MIME["kmz"],
                        headers={"Content-Disposition": f'attachment; filename="{name}.kmz"'})
    if (p.get("option") or "").lower() == "footprints" and f != "html":
        return respond(cat.footprints_collection(p, svc), p)
    rule = parse_rendering_rule(p.json_or_text("renderingRule"), svc.templates)
    body = root_of(svc, rule) | tl.tile_info_json(svc)
    if f == "html":
        return render_template("root.html", svc=svc.info, body=body, sr=sr_json(svc.info.crs))
    return respond(body, p)


@bp.route("/arcgis/rest/services/<name>/ImageServer/exportImage", methods=["GET", "POST"])
@bp.route("/arcgis/rest/services/<name>/ImageServer/exportImage/", methods=["GET", "POST"])
@bp.route("/arcgis/rest/services/<name>/ImageServer/export", methods=["GET", "POST"])   # GDAL's AGS driver
def export_image(name: str):
    p = params()
    gw = gateway()
    svc = gw.service(name)
    f = p.enum("f", _F_EXPORT, "html")
    check_callback(p.get("callback"))
    if f == "html":
        return _export_form(svc, p)
    return _exported(name, svc, p, f)


def _exported(name: str, svc, p: Params, f: str):
    """An export's answer: the image itself, KMZ, or the JSON descriptor of an output file."""
    gw = gateway()
    req, opts = ex.parse_export(p, svc, kmz_output=(f == "kmz"))
    raster, image = render_image(svc, req, opts)
    if f == "image":
        return Response(image.data, content_type=image.content_type)
    if f == "kmz":
        return Response(ex.kmz_bytes(svc, raster, image), content_type=_MIME["kmz"],
                        headers={"Content-Disposition": f'attachment; filename="{name}.kmz"'})
    file_name = gw.outputs.write(name, image.data, image.extension, svc.info.limits.output_ttl_seconds)
    href = f"{gw.base_url()}/arcgis/rest/directories/arcgisoutput/{name}/{file_name}"
    return respond(ex.json_descriptor(href, raster), p)


def _export_form(svc, p: Params):
    """ArcGIS's HTML form for the operation, opened with working defaults (the service's extent,
    400 x 400 PNG); with parameters given, the image (or the request's error) shown beneath it."""
    fields = ["bbox", "bboxSR", "size", "imageSR", "time", "format", "pixelType", "noData",
              "noDataInterpretation", "interpolation", "compression", "compressionQuality",
              "compressionTolerance", "lercVersion", "bandIds", "mosaicRule", "renderingRule",
              "adjustAspectRatio", "sliceId"]
    asked = bool(p.get("bbox"))
    values = {k: p.get(k) or "" for k in fields}
    if not asked:
        values |= web.export_defaults(svc.info)
    image_url = error = None
    if asked:
        try:
            ex.parse_export(p, svc)                         # a bad parameter is told on the page
        except GatewayError as exc:
            error = rest_error(exc)
        pairs = [(k, v) for k, v in request.values.items(multi=True)
                 if k.lower() not in ("f", "token") and v != ""]        # the form's empty fields say nothing
        image_url = f"{request.base_url}?{urlencode(pairs + [('f', 'image')])}"
    return render_template("export.html", svc=svc.info, values=values, image_url=image_url, error=error)


# --- catalog and inspection (query, identify, getSamples, histograms, legend, items) ---------------

_SERVICE = "/arcgis/rest/services/<name>/ImageServer"
_F_JSON = {"json": "json", "pjson": "pjson", "html": "html"}
_OPERATIONS = {
    # operation: (title, the parameters of its HTML form, what answers it)
    "query": ("Query", ["where", "objectIds", "time", "geometry", "geometryType", "inSR", "spatialRel",
                        "outFields", "returnGeometry", "outSR", "returnIdsOnly", "returnCountOnly",
                        "returnExtentOnly", "pixelSize", "orderByFields", "resultOffset", "resultRecordCount",
                        "mosaicRule"], cat.run_query),
    "identify": ("Identify", ["geometry", "geometryType", "mosaicRule", "renderingRule", "renderingRules",
                              "pixelSize", "time", "returnGeometry", "returnCatalogItems", "returnPixelValues",
                              "maxItemCount", "sliceId"], ins.run_identify),
    "getSamples": ("Get Samples", ["geometry", "geometryType", "sampleDistance", "sampleCount", "mosaicRule",
                                   "pixelSize", "returnFirstValueOnly", "interpolation", "outFields", "sliceId",
                                   "time", "renderingRule"], ins.run_get_samples),
    "computeHistograms": ("Compute Histograms", ["geometry", "geometryType", "mosaicRule", "renderingRule",
                                                 "pixelSize", "time"], ins.compute_histograms),
    "computeStatisticsHistograms": ("Compute Statistics and Histograms",
                                    ["geometry", "geometryType", "mosaicRule", "renderingRule", "pixelSize",
                                     "time"],
                                    lambda p, svc: ins.compute_histograms(p, svc, with_statistics=True)),
    "histograms": ("Histograms", ["renderingRule"], ins.histograms_resource),
    "statistics": ("Statistics", ["renderingRule"], ins.statistics_resource),
    "keyProperties": ("Key Properties", [], lambda p, svc: cat.key_properties(svc)),
    "legend": ("Legend", ["bandIds", "renderingRule"], ins.legend_json),
    "rasterFunctionInfos": ("Raster Function Infos", [], lambda p, svc: ins.function_infos(svc)),
    "multidimensionalInfo": ("Multidimensional Info", ["returnDimensionValues"], md.multidimensional_info),
    "slices": ("Slices", ["multidimensionalDefinition"], md.slices),
    "download": ("Download Rasters", ["rasterIds", "where"], files.download),
}


def _answer(name: str, title: str, form: list[str], compute, operation: str | None = None):
    """One JSON operation or resource: JSON (or JSONP) for clients, an HTML form page by default,
    opened with working defaults; its result, or its error, shown beneath the form."""
    p = params()
    svc = gateway().service(name)
    f = p.enum("f", _F_JSON, "html")
    check_callback(p.get("callback"))
    if f == "html":
        asked = any(p.get(k) for k in form) or web.shows_at_once(operation, form)
        fields = {k: p.get(k) or "" for k in form}
        if not any(p.get(k) for k in form):
            fields |= web.operation_defaults(operation, svc.info)
        result = error = None
        if asked:
            try:
                result = json.dumps(compute(p, svc), indent=2)
            except GatewayError as exc:
                error = rest_error(exc)
        return render_template("operation.html", svc=svc.info, title=title, fields=fields, result=result,
                               error=error)
    return respond(compute(p, svc), p)


def _operation_view(operation: str):
    title, form, compute = _OPERATIONS[operation]

    def view(name: str):
        return _answer(name, title, form, compute, operation)
    view.__name__ = f"op_{operation}"
    return view


for _op in _OPERATIONS:
    _view = _operation_view(_op)
    for _path in (f"{_SERVICE}/{_op}", f"{_SERVICE}/{_op}/"):
        bp.add_url_rule(_path, f"op_{_op}", _view, methods=["GET", "POST"])


@bp.route(f"{_SERVICE}/file", methods=["GET", "POST"])
def source_file(name: str):
    """`file`: one source file named by `download` (only where the service allows downloads)."""
    path, file_name = files.file_of(params(), gateway().service(name))
    return send_file(path, mimetype="image/tiff" if file_name.lower().endswith((".tif", ".tiff"))
                     else "application/octet-stream", as_attachment=True, download_name=file_name)


@bp.route(f"{_SERVICE}/info/metadata", methods=["GET"])
def service_metadata(name: str):
    return Response(files.metadata_xml(gateway().service(name)), content_type="text/xml; charset=utf-8")


@bp.route(f"{_SERVICE}/<raster_id>/info/metadata", methods=["GET"])
def raster_metadata(name: str, raster_id: str):
    svc = gateway().service(name)
    return Response(files.metadata_xml(svc, cat.item_or_404(svc, raster_id)), content_type="text/xml; charset=utf-8")


@bp.route(f"{_SERVICE}/info/thumbnail", methods=["GET"])
def service_thumbnail(name: str):
    return Response(ins.thumbnail(gateway().service(name)), content_type="image/png")


_ITEM_PARTS = {  # part: (title, what answers it)
    "item": ("Raster {oid}", cat.item_json),
    "info": ("Raster {oid} Info", cat.item_info),
    "keyProperties": ("Raster {oid} Key Properties", cat.key_properties),
}


@bp.route(f"{_SERVICE}/<raster_id>", methods=["GET", "POST"], defaults={"part": "item"})
@bp.route(f"{_SERVICE}/<raster_id>/info", methods=["GET", "POST"], defaults={"part": "info"})
@bp.route(f"{_SERVICE}/<raster_id>/info/keyProperties", methods=["GET", "POST"],
          defaults={"part": "keyProperties"})
def raster_item(name: str, raster_id: str, part: str):
    """A catalog item (`{rasterId}`: a number; any other word is an unsupported operation)."""
    item = cat.item_or_404(gateway().service(name), raster_id)
    title, answer = _ITEM_PARTS[part]
    return _answer(name, title.format(oid=item.oid), [], lambda p, svc: answer(svc, item))


@bp.route(f"{_SERVICE}/<raster_id>/image", methods=["GET", "POST"])
def raster_image(name: str, raster_id: str):
    """`{rasterId}/image` (ArcGIS "Raster Image"): one item exported alone, whatever the mosaic
    rule or time; exportImage's parameters, by default the item's whole extent as PNG."""
    svc = gateway().service(name)
    item = cat.item_or_404(svc, raster_id)
    ignored = {"mosaicrule", "time"} | ({"bboxsr"} if params().get("bbox") is None else set())
    pairs = [(k, v) for k, v in request.values.items(multi=True) if k.lower() not in ignored]
    pairs += [("mosaicRule", json.dumps({"mosaicMethod": "esriMosaicLockRaster", "lockRasterIds": [item.oid]})),
              ("bbox", ",".join(map(repr, item.bounds))), ("format", "png")]       # defaults: first wins
    p = Params(pairs)
    f = p.enum("f", _F_EXPORT, "html")
    check_callback(p.get("callback"))
    if f == "html":
        return _export_form(svc, p)
    return _exported(name, svc, p, f)


@bp.route(f"{_SERVICE}/<raster_id>/thumbnail", methods=["GET"])
@bp.route(f"{_SERVICE}/<raster_id>/info/thumbnail", methods=["GET"])
def raster_thumbnail(name: str, raster_id: str):
    svc = gateway().service(name)
    return Response(ins.thumbnail(svc, cat.item_or_404(svc, raster_id)), content_type="image/png")


@bp.route(f"{_SERVICE}/tile/<int:level>/<int:row>/<int:col>", methods=["GET"])
def tile(name: str, level: int, row: int, col: int):
    """A cached tile; a missing one is HTTP 404 (or, with blankTile=true, an empty picture)."""
    gw = gateway()
    p = params()
    try:
        svc = gw.service(name)
        stored = tl.tile(svc, p, level, row, col, metatile_size=gw.config.server.tile_metatile_size,
                         store=gw.tile_store)
        if stored.empty and not p.bool("blankTile", False):
            raise NotFound("Tile not found.", details=[f"level {level}, row {row}, col {col} holds no data"])
    except NotFound as exc:
        # blankTile=true: an empty picture for any tile of the scheme, even one outside the data's limits
        if p.bool("blankTile", False) and name in gw.services and tl.in_scheme(gw.services[name], level, row, col):
            return tl.blank_tile(gw.services[name])
        return error_response(exc, http_errors=True)
    if stored.empty:
        return tl.blank_tile(svc)
    resp = Response(stored.data, content_type=tl.content_type(stored.data))
    return cacheable(resp, stored, gw.config.server.tile_cache_max_age)


@bp.route(f"{_SERVICE}/tilemap/<int:level>/<int:row>/<int:col>/<int:width>/<int:height>", methods=["GET"])
def tilemap(name: str, level: int, row: int, col: int, width: int, height: int):
    p = params()
    return respond(tl.tilemap(gateway().service(name), level, row, col, width, height), p)


@bp.route("/arcgis/rest/services/<name>/ImageServer/<path:operation>", methods=["GET", "POST"])
def unsupported(name: str, operation: str):
    gateway().service(name)
    raise InvalidParameter("operation", f"{operation!r} is not supported by this service")


@bp.route("/arcgis/rest/directories/arcgisoutput/<name>/<file_name>", methods=["GET"])
def output_file(name: str, file_name: str):
    """f=json hrefs: a plain GET (a `token` query is tolerated); 404 once expired, as ArcGIS does."""
    gw = gateway()
    try:
        svc = gw.service(name)
        handle, size = gw.outputs.open(name, file_name, svc.info.limits.output_ttl_seconds)
    except NotFound as exc:
        return error_response(exc, http_errors=True)
    ext = file_name.rsplit(".", 1)[-1]
    # streamed in blocks (the WSGI file wrapper), never read whole into memory
    resp = Response(wrap_file(request.environ, handle), content_type=_MIME.get(ext, "application/octet-stream"),
                    direct_passthrough=True)
    resp.content_length = size
    return resp
