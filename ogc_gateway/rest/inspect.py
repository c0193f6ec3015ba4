"""Pixel inspection: identify, getSamples, computeHistograms, computeStatisticsHistograms, and the
histograms, statistics, legend, rasterFunctionInfos and thumbnail resources (digest §8, §10-12)."""

from __future__ import annotations

import base64
from dataclasses import replace

import numpy as np
from shapely.geometry import box

from ..engine import (
    Compression,
    EncodeOptions,
    ExportRequest,
    ImageService,
    InvalidParameter,
    MosaicMethod,
    MosaicRule,
    OutputFormat,
    Resampling,
    SampleRequest,
    get_samples,
    identify,
    is_raw,
    parse_rendering_rule,
    points_to_crs,
    raster_histograms,
    raster_statistics,
    region,
    render_image,
    rule_distribution,
    sample_points,
    service_histograms,
    sr_json,
    target_grid,
)
from ..engine import build_legend as legend
from .catalog import attributes, footprint_json, out_fields, parse_pixel_size
from .geometry import in_service_crs, parse_geometry
from .params import Params, parse_band_ids, parse_interpolation, parse_mosaic_rule, parse_time, with_slice
from .root import function_infos as _function_infos

NODATA = "NoData"
_THUMBNAIL = 200


def format_value(value: float) -> str:
    """A pixel value as ArcGIS writes it: integers bare, floats to float32-worthy precision."""
    if not np.isfinite(value):
        return "NaN"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return f"{value:.9g}"


def _values(values, sep: str) -> str:
    if values is None or np.ma.getmaskarray(values).all():
        return NODATA
    return sep.join(NODATA if m else format_value(v) for v, m in zip(values.data, np.ma.getmaskarray(values)))


def _rules(p: Params, service: ImageService):
    many = p.json_or_text("renderingRules")
    if many is None:
        return ()
    if not isinstance(many, list):
        raise InvalidParameter("renderingRules", "expected a JSON array of rendering rules")
    return tuple(parse_rendering_rule(r, service.templates, "renderingRules") for r in many)


def _mosaic_rule(p: Params, service: ImageService, sliced: bool = False) -> MosaicRule | None:
    """The request's mosaic rule; with `sliced`, sliceId's definition in it (identify, getSamples)."""
    info = service.info
    rule = parse_mosaic_rule(p, info.default_rule, info.crs, service.templates)
    return with_slice(p, service, rule) if sliced else rule


def _point_geometry(p: Params, service: ImageService, needed: str):
    """identify's and getSamples' geometry ('x,y' in the service CRS, or JSON with its own SR)."""
    parsed = parse_geometry(p, service.info.crs, sr_param=None, default_type="esriGeometryPoint")
    if parsed is None:
        raise InvalidParameter("geometry", needed)
    return parsed


# --- identify -------------------------------------------------------------------------------------

def run_identify(p: Params, service: ImageService) -> dict:
    info = service.info
    geom = in_service_crs(_point_geometry(p, service, "identify needs a point: 'x,y' or point JSON"), info.crs)
    max_items = p.number("maxItemCount", None, lo=0)
    base = SampleRequest(points=(), mosaic_rule=_mosaic_rule(p, service, sliced=True),
                         rendering_rule=parse_rendering_rule(p.json_or_text("renderingRule"), service.templates),
                         time=parse_time(p), pixel_size=parse_pixel_size(p), resampling=Resampling.NEAREST,
                         max_items=None if max_items is None else int(max_items))
    rules = _rules(p, service)
    options = dict(catalog=p.bool("returnCatalogItems", True), geometry=p.bool("returnGeometry", False),
                   pixels=p.bool("returnPixelValues", True))
    if geom.geom_type == "MultiPoint":
        return {"results": [_identify_one(service, replace(base, points=((pt.x, pt.y),)), rules, options)
                            for pt in geom.geoms]}
    point = geom if geom.geom_type == "Point" else geom.representative_point()
    return _identify_one(service, replace(base, points=((point.x, point.y),)), rules, options)


def _identify_one(service: ImageService, req: SampleRequest, rules, options) -> dict:
    info = service.info
    found = identify(service, req, rules)
    x, y = found.point
    body: dict = {"objectId": 0, "name": "Pixel", "value": _values(found.value, ", "),
                  "location": {"x": x, "y": y, "spatialReference": sr_json(info.crs)}}
    if rules:
        body["processedValues"] = [_values(v, ", ") for v in found.processed]
    if not options["catalog"]:
        body |= {"properties": None, "catalogItems": None, "catalogItemVisibilities": []}
        return body
    fields = [f for f in info.fields if f.type != "esriFieldTypeGeometry"]
    rings = service.catalog.footprints([s.item.oid for s in found.items]) if options["geometry"] else {}
    features = []
    for s in found.items:
        feature: dict = {"attributes": attributes(s.item, fields)}
        if options["geometry"]:
            feature["geometry"] = footprint_json(service, rings, s.item, info.crs)
        features.append(feature)
    body["properties"] = ({"Values": [_values(s.values, " ") for s in found.items]}
                          if options["pixels"] and found.items else None)
    body["catalogItems"] = {"objectIdFieldName": "OBJECTID", "geometryType": "esriGeometryPolygon",
                            "spatialReference": sr_json(info.crs), "features": features}
    body["catalogItemVisibilities"] = [s.visibility for s in found.items]
    return body


# --- getSamples -----------------------------------------------------------------------------------

def run_get_samples(p: Params, service: ImageService) -> dict:
    info = service.info
    geom, crs = _point_geometry(p, service, "getSamples needs a geometry")
    distance = p.number("sampleDistance", None)
    if distance is not None and not distance > 0:
        raise InvalidParameter("sampleDistance", "must be positive")
    count = p.number("sampleCount", None, lo=1)
    points = sample_points(geom, distance, None if count is None else int(count))
    xs, ys = points_to_crs([pt.x for pt in points], [pt.y for pt in points], crs, info.crs)
    located = [(k, x, y) for k, (x, y) in enumerate(zip(xs, ys)) if np.isfinite(x) and np.isfinite(y)]
    fields = out_fields(p, service, default="")
    req = SampleRequest(points=tuple((x, y) for _, x, y in located), mosaic_rule=_mosaic_rule(p, service, sliced=True),
                        rendering_rule=parse_rendering_rule(p.json_or_text("renderingRule"), service.templates),
                        time=parse_time(p), pixel_size=parse_pixel_size(p),
                        resampling=parse_interpolation(p, Resampling.NEAREST))
    if is_raw(req.rendering_rule):
        req = replace(req, rendering_rule=None)
    samples = get_samples(service, req, first_value_only=p.bool("returnFirstValueOnly", True))
    sr = sr_json(crs)
    out = []
    for s in samples:
        k = located[s.location][0]
        sample: dict = {"location": {"x": points[k].x, "y": points[k].y, "spatialReference": sr},
                        "locationId": k, "value": _values(s.values, " ").replace(NODATA, "NaN")}
        if s.item is not None:
            sample["rasterId"] = s.item.oid
            sample["resolution"] = s.item.cell_size
            if p.get("outFields"):
                sample["attributes"] = attributes(s.item, fields)
        out.append(sample)
    return {"samples": out}


# --- histograms and statistics --------------------------------------------------------------------

def _region(p: Params, service: ImageService, geometry_required: bool = True):
    info = service.info
    parsed = parse_geometry(p, info.crs, sr_param=None, default_type="esriGeometryEnvelope")
    if parsed is None:
        if geometry_required:
            raise InvalidParameter("geometry", "an envelope or polygon is required")
        return None
    geom = in_service_crs(parsed, info.crs)
    if geom.geom_type not in ("Polygon", "MultiPolygon"):
        raise InvalidParameter("geometry", "expected an envelope or a polygon")
    return region(service, geom, mosaic_rule=_mosaic_rule(p, service),
                  rendering_rule=parse_rendering_rule(p.json_or_text("renderingRule"), service.templates),
                  pixel_size=parse_pixel_size(p), time=parse_time(p))


def compute_histograms(p: Params, service: ImageService, with_statistics: bool = False) -> dict:
    raster = _region(p, service)
    body: dict[str, object] = {"histograms": [h.json() for h in raster_histograms(raster)]}
    if with_statistics:
        body = {"statistics": raster_statistics(raster)} | body
    return body


def _whole_service(p: Params, service: ImageService):
    """The service processed by a rendering rule, over its whole extent at <= 1024 pixels a side."""
    rule = parse_rendering_rule(p.json_or_text("renderingRule"), service.templates)
    if is_raw(rule):
        return None
    info = service.info
    xmin, ymin, xmax, ymax = info.extent
    size = max(info.cell_size[0], max(xmax - xmin, ymax - ymin) / 1024)
    return region(service, box(*info.extent), rendering_rule=rule, pixel_size=size)


def histograms_resource(p: Params, service: ImageService) -> dict:
    raster = _whole_service(p, service)
    if raster is not None:
        return {"histograms": [h.json() for h in raster_histograms(raster)]}
    return {"histograms": [h.json() for h in service_histograms(service)]}


def statistics_resource(p: Params, service: ImageService) -> dict:
    raster = _whole_service(p, service)
    if raster is not None:
        return {"statistics": raster_statistics(raster)}
    return {"statistics": [{"min": s.min, "max": s.max, "mean": s.mean, "standardDeviation": s.stdv}
                           for s in service.info.stats]}


# --- legend, functions, thumbnails ----------------------------------------------------------------

def legend_json(p: Params, service: ImageService) -> dict:
    info = service.info
    drawn = legend(info, parse_band_ids(p), parse_rendering_rule(p.json_or_text("renderingRule"), service.templates),
                   distributions=lambda rule: rule_distribution(service, rule))
    entries = [{"label": e.label, "url": "", "imageData": base64.b64encode(e.png()).decode("ascii"),
                "contentType": "image/png", "height": 20, "width": 20} for e in drawn.entries]
    return {"layers": [{"layerId": 0, "layerName": info.name, "layerType": "Raster Layer",
                        "minScale": 0, "maxScale": 0, "legendType": drawn.kind, "legend": entries}]}


def function_infos(service: ImageService) -> dict:
    return {"rasterFunctionInfos": _function_infos(service.info)}


def thumbnail(service: ImageService, item=None) -> bytes:
    """A small PNG of the service's (or one item's) whole extent in the default rendering."""
    info = service.info
    bounds = item.bounds if item is not None else info.extent
    grid = target_grid(bounds, info.crs, info.crs, _THUMBNAIL, _THUMBNAIL, True)
    rule = MosaicRule(method=MosaicMethod.LOCK_RASTER, lock_raster_ids=(item.oid,)) if item is not None else None
    req = ExportRequest(grid=grid, mosaic_rule=rule, resampling=Resampling.NEAREST)
    _, image = render_image(service, req, EncodeOptions(OutputFormat.PNG, 75, Compression.NONE, None, 2))
    return image.data

