"""WCS 1.1.1 (OGC 06-083r8, OWS Common 1.1): GetCapabilities, DescribeCoverage and GetCoverage
(KVP, and XML bodies for POST), answered from the shared coverage model of coverage.py.

Conventions (spec digest §4, pitfalls 33-36), shared with what GDAL and QGIS send and read:
- every coordinate is in the CRS's own axis order (lat, lon for urn:ogc:def:crs:EPSG::4326) in
  BoundingBox, GridOrigin, GridOffsets and BOUNDINGBOX=; the engine works in x/y, so the order is
  swapped here, on the way in and out, where pyproj says the CRS's first axis is north;
- BOUNDINGBOX values of a GetCoverage are the centres of the outer cells, GRIDORIGIN is the centre
  of the first cell, GRIDOFFSETS the steps between cell centres: the output cells are the lattice
  origin + k * offset whose centres lie in the box;
- DescribeCoverage describes the native grid as a 2dSimpleGrid whose origin is the centre of the
  upper-left pixel, with an imageCRS box 0 0 / W-1 H-1 (the MapServer convention QGIS reads);
- GetCoverage answers multipart/related: the Coverages XML, then the GeoTIFF (binary) it references;
- a multidimensional coverage's dimensions are further axes of its field (elevation, variable, or the
  dimension's name, keyed by their values): RANGESUBSET=contents[elevation[10]], or the vendor
  parameters ELEVATION / DIM_<NAME> as GeoServer takes them.
"""

from __future__ import annotations

import math
import re

import numpy as np
from flask import Response

from ..engine import Resampling
from ..gateway import gateway
from ..templates import render
from .common import KVP, OGCError, ows_is_current, ows_sections, parse_time
from .common import number as _num
from .coverage import (
    Coverage,
    CoverageRequest,
    coverage_in,
    coverage_raster,
    dimension_parameters,
    geotiff,
    interpolation_of,
    multipart_response,
    update_sequence,
)
from .crs import CRS84_URN as CRS84
from .crs import ordered as _ordered
from .crs import urn
from .layers import dimension_values
from .wcs11_grid import GRID_CS, IMAGE_CRS, SIMPLE_GRID, native_of, output_grid
from .wcs11_xml import kvp_from_xml

__all__ = ["EMPTY", "OPERATIONS", "UNSUPPORTED", "exception", "kvp_from_xml"]

VERSION = "1.1.1"

FIELD = "contents"                     # the one Range field of every coverage
BAND_AXIS = "Band"
FORMAT = "image/tiff"
# FORMAT values taken for a GeoTIFF (lower case, spaces removed)
FORMAT_ALIASES = {"image/tiff", "image/geotiff", "geotiff", "gtiff", "tiff", "tif", "image/tif",
                  "image/tiff;subtype=geotiff", "image/tiff;application=geotiff", "application/geotiff",
                  "application/x-geotiff"}
# WCS 1.1 interpolation names (interpolationMethods.xml) offered, and their engine resampling
METHODS = ("nearest", "linear", "cubic")
SECTIONS = ("ServiceIdentification", "ServiceProvider", "OperationsMetadata", "Contents")
# numpy dtype -> GDAL data type name (GDAL reads it from the Band axis' ows:DataType)
GDAL_TYPES = {"uint8": "Byte", "int8": "Int8", "uint16": "UInt16", "int16": "Int16", "uint32": "UInt32",
              "int32": "Int32", "float32": "Float32", "float64": "Float64"}
# OWS 1.1 exception codes -> HTTP status (OWS 2.0 Table 28, applied to 1.1 as the digest advises)
STATUS = {"MissingParameterValue": 400, "InvalidParameterValue": 400, "VersionNegotiationFailed": 400,
          "InvalidUpdateSequence": 400, "UnsupportedCombination": 400, "NotEnoughStorage": 400,
          "OperationNotSupported": 501, "OptionNotSupported": 501, "NoApplicableCode": 500}
# codes of the shared modules that OWS 1.1 does not know
CODES = {"InvalidDimensionValue": "InvalidParameterValue", "MissingDimensionValue": "MissingParameterValue",
         "CoverageNotDefined": "InvalidParameterValue", "NoSuchCoverage": "InvalidParameterValue"}
DOC_MIME = "text/xml; charset=utf-8"
EXCEPTION_MIME = "application/xml; charset=utf-8"


# --- entry points ---------------------------------------------------------------------------------

EMPTY = ("InvalidParameterValue", "this endpoint serves no coverage (unknown service)", "service", 404)
UNSUPPORTED = ("request", 501)


def exception(exc: OGCError) -> Response:
    """An OWS 1.1 ExceptionReport with the HTTP status of its code."""
    code = CODES.get(exc.code or "", exc.code or "NoApplicableCode")
    status = exc.status if exc.status and exc.status != 200 else STATUS.get(code, 400)
    body = render("ows11_exception.xml", version="1.1.0", code=code, locator=(exc.locator or "").lower() or None,
                  message=exc.message)
    return Response(body, status=status, content_type=EXCEPTION_MIME)


# --- small helpers --------------------------------------------------------------------------------

def _pair(a: float, b: float) -> str:
    return f"{_num(a)} {_num(b)}"


def _supported_crs(cov: Coverage) -> list[str]:
    return [urn(c) for c in cov.layer.crs] + [CRS84]


# --- GetCapabilities ------------------------------------------------------------------------------

def get_capabilities(kvp: KVP, ep) -> Response:
    sequence = update_sequence(ep)
    if ows_is_current(kvp, sequence):
        body = render("wcs11_capabilities.xml", minimal=True, update_sequence=sequence, sections=set())
        return Response(body, content_type=DOC_MIME)
    sections = ows_sections(kvp, SECTIONS)
    server = gateway().config.server
    single = len(ep.coverages) == 1 and "/ImageServer/WCSServer" in ep.url
    first = next(iter(ep.coverages.values()))
    title = first.layer.title if single else server.title
    abstract = (first.layer.abstract or server.abstract) if single else server.abstract
    keywords = tuple(server.keywords) + (tuple(first.layer.keywords) if single else ())
    summaries, all_crs = [], []
    for cov in ep.coverages.values():
        crs = _supported_crs(cov)
        all_crs += [c for c in crs if c not in all_crs]
        w, s, e, n = cov.layer.geographic
        summaries.append(dict(id=cov.id, title=cov.layer.title, abstract=cov.layer.abstract,
                              keywords=cov.layer.keywords, lower=_pair(w, s), upper=_pair(e, n), crs=crs))
    body = render("wcs11_capabilities.xml", minimal=False, update_sequence=sequence, sections=sections,
                  url=ep.url, server=server, title=title, abstract=abstract, keywords=keywords,
                  contact=server.contact, provider=(server.contact.organization if server.contact and
                                                    server.contact.organization else server.title),
                  summaries=summaries, all_crs=all_crs, formats=[FORMAT], methods=METHODS)
    return Response(body, content_type=DOC_MIME)


# --- DescribeCoverage -----------------------------------------------------------------------------

def _dtype_name(cov: Coverage) -> str:
    return GDAL_TYPES.get(np.dtype(cov.dtype).name, np.dtype(cov.dtype).name)


def _null_value(cov: Coverage) -> str | None:
    if cov.nodata is None or (isinstance(cov.nodata, float) and math.isnan(cov.nodata)):
        return None
    return _num(cov.nodata)


def description(cov: Coverage) -> dict:
    """What the CoverageDescription template writes for one coverage."""
    nat = native_of(cov)
    g, inv = nat.grid, nat.inverted
    rx, ry = g.res
    x0, y0, x1, y1 = g.bounds
    # cell centres of the outer pixels, in the CRS's axis order
    lo = _ordered(x0 + rx / 2, y0 + ry / 2, inv)
    hi = _ordered(x1 - rx / 2, y1 - ry / 2, inv)
    origin = _ordered(x0 + rx / 2, y1 - ry / 2, inv)
    offsets = _ordered(rx, -ry, inv)
    boxes = [dict(crs=urn(nat.code), lower=_pair(*lo), upper=_pair(*hi)),
             dict(crs=IMAGE_CRS, lower="0 0", upper=f"{g.width - 1} {g.height - 1}")]
    w, s, e, n = cov.layer.geographic
    if nat.code != "EPSG:4326":
        boxes.append(dict(crs=urn("EPSG:4326"), lower=_pair(s, w), upper=_pair(n, e)))
    return dict(id=cov.id, title=cov.layer.title, abstract=cov.layer.abstract, keywords=cov.layer.keywords,
                boxes=boxes, wgs84=dict(lower=_pair(w, s), upper=_pair(e, n)),
                grid=dict(base=urn(nat.code), type=SIMPLE_GRID, origin=_pair(*origin),
                          offsets=_pair(*offsets), cs=GRID_CS),
                times=list(cov.layer.times), field=FIELD, null=_null_value(cov), methods=METHODS,
                default_method="nearest", axis=BAND_AXIS, band_keys=[str(i + 1) for i in range(len(cov.band_names))],
                band_names=list(cov.band_names), data_type=_dtype_name(cov), crs=_supported_crs(cov),
                formats=[FORMAT], axes=[dict(id=d.name, values=d.values, default=d.default, unit=d.unit_symbol)
                                        for d in cov.layer.dimensions])


def describe_coverage(kvp: KVP, ep) -> Response:
    raw = kvp.get("IDENTIFIERS")
    if raw is None or not raw.strip():
        raw = kvp.get("IDENTIFIER")
    if raw is None or not raw.strip():
        raise OGCError("MissingParameterValue", "parameter IDENTIFIERS is required", "identifiers")
    names = [n.strip() for n in raw.split(",")]
    if any(not n for n in names):
        raise OGCError("InvalidParameterValue", f"IDENTIFIERS={raw!r} holds an empty identifier", "identifiers")
    covs = [coverage_in(ep, n, "identifiers") for n in names]
    body = render("wcs11_describe_coverage.xml", descriptions=[description(c) for c in covs])
    return Response(body, content_type=DOC_MIME)


# --- GetCoverage: parameters ----------------------------------------------------------------------
def _format(kvp: KVP) -> str:
    raw = kvp.get("FORMAT")
    if raw is None or not raw.strip():
        raise OGCError("MissingParameterValue", "parameter FORMAT is required (image/tiff)", "format")
    if re.sub(r"\s+", "", raw).lower() not in FORMAT_ALIASES:
        raise OGCError("InvalidParameterValue", f"FORMAT={raw!r} is not supported (image/tiff)", "format")
    return FORMAT


def _store(kvp: KVP) -> None:
    raw = kvp.get("STORE")
    if raw is None or not raw.strip():
        return
    low = raw.strip().lower()
    if low == "false":
        return
    if low == "true":
        raise OGCError("InvalidParameterValue", "STORE=true is not supported: coverages are returned in the "
                       "response (STORE=false)", "store")
    raise OGCError("InvalidParameterValue", f"STORE={raw!r} is neither true nor false", "store")

def range_subset(raw: str | None, cov: Coverage) -> tuple[tuple[int, ...] | None, Resampling, dict[str, tuple]]:
    """(0-based bands or None for all, resampling, dimension values by name) of RANGESUBSET
    `field[:interpolation][axis[key,...],...]` (';' between fields). Unknown band keys are ignored."""
    if raw is None or not raw.strip():
        return None, Resampling.NEAREST, {}
    bands, resampling, seen, dims = None, Resampling.NEAREST, set(), {}
    for part in raw.split(";"):
        m = re.fullmatch(r"\s*([^:\[\],;\s]+)\s*(?::\s*([^:\[\],;]+?))?\s*(?:\[(.*)\])?\s*", part)
        if not m:
            raise OGCError("InvalidParameterValue", f"RANGESUBSET: {part!r} is not field[:interpolation]"
                           "[axis[key,...]]", "rangesubset")
        field, method, axes = m.groups()
        if field.lower() in seen:
            raise OGCError("InvalidParameterValue", f"RANGESUBSET names field {field!r} twice", "rangesubset")
        seen.add(field.lower())
        if field.lower() != FIELD:
            raise OGCError("InvalidParameterValue", f"RANGESUBSET: the coverage has no field {field!r} (its one "
                           f"field is {FIELD!r})", "rangesubset")
        if method is not None:
            name = method.strip().lower()
            chosen = Resampling.NEAREST if name == "none" else interpolation_of(name)
            if chosen is None:
                raise OGCError("InvalidParameterValue", f"RANGESUBSET: interpolation {method!r} is not "
                               f"supported ({', '.join(METHODS)})", "rangesubset")
            resampling = chosen
        if axes is not None:
            bands, dims = _axis_subsets(axes, cov)
    return bands, resampling, dims


def _axis_subsets(text: str, cov: Coverage) -> tuple[tuple[int, ...] | None, dict[str, tuple]]:
    pos, chosen, dims = 0, [], {}
    pattern = re.compile(r"\s*([^\[\],;:\s]+)\s*\[([^\[\]]*)\]\s*(,|$)")
    while pos < len(text):
        m = pattern.match(text, pos)
        if not m or (m.group(3) == "," and m.end() == len(text)):
            raise OGCError("InvalidParameterValue", f"RANGESUBSET: {text!r} is not axis[key,...][,axis[...]]",
                           "rangesubset")
        axis, keys = m.group(1), [k.strip() for k in m.group(2).split(",")]
        if any(not k for k in keys):
            raise OGCError("InvalidParameterValue", f"RANGESUBSET: {axis}[{m.group(2)}] holds an empty key",
                           "rangesubset")
        dim = cov.layer.dimension(axis)
        if dim is not None:
            dims[dim.name] = dimension_values(dim, ",".join(keys), "rangesubset")
            pos = m.end()
            continue
        if axis.lower() not in ("band", "bands"):
            axes = ", ".join([BAND_AXIS] + [d.name for d in cov.layer.dimensions])
            raise OGCError("InvalidParameterValue", f"RANGESUBSET: the field has no axis {axis!r} (its axes: "
                           f"{axes})", "rangesubset")
        names = [n.lower() for n in cov.band_names]
        for key in keys:
            if key.isdigit() and 1 <= int(key) <= len(names):
                index = int(key) - 1
            elif key.lower() in names:
                index = names.index(key.lower())
            else:
                continue                       # an unknown key is not an error (ets-wcs11)
            if index not in chosen:
                chosen.append(index)
        pos = m.end()
    return (tuple(chosen) if chosen else None), dims


# --- GetCoverage ----------------------------------------------------------------------------------

def get_coverage(kvp: KVP, ep) -> Response:
    raw_id = kvp.get("IDENTIFIER")
    if raw_id is None or not raw_id.strip():
        raise OGCError("MissingParameterValue", "parameter IDENTIFIER is required", "identifier")
    cov = coverage_in(ep, raw_id, "identifier")
    _format(kvp)
    _store(kvp)
    grid = output_grid(kvp, cov)
    bands, resampling, dims = range_subset(kvp.get("RANGESUBSET"), cov)
    time_raw = kvp.get("TIMESEQUENCE")
    time = parse_time(time_raw, "timesequence") if time_raw and time_raw.strip() else None
    req = CoverageRequest(cov, grid, bands=bands, resampling=resampling, time=time, time_locator="timesequence",
                          dimensions=dimension_parameters(kvp, cov) | dims)
    tiff = geotiff(coverage_raster(req))
    cid = f"coverage/{req.filename}"
    xml = render("wcs11_coverages.xml", id=cov.id, title=cov.layer.title, abstract=cov.layer.abstract,
                 href=f"cid:{cid}", format=FORMAT)
    return multipart_response(xml, "text/xml; charset=utf-8", "coverages.xml", tiff, cid, req.filename,
                              "text/xml")


OPERATIONS = {"getcapabilities": get_capabilities, "describecoverage": describe_coverage,
              "getcoverage": get_coverage}
