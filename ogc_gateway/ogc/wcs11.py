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
import uuid
from dataclasses import dataclass

import numpy as np
from flask import Response
from lxml import etree
from rasterio.warp import calculate_default_transform

from ..engine import MAX_COORDINATE, Grid, InvalidParameter, Resampling, axis_inverted, crs_from_ogc, reproject_bounds
from ..gateway import gateway
from ..templates import render
from .common import KVP, OGCError, number as _num, ows_is_current, ows_sections, parse_time
from .coverage import Coverage, dimension_parameters, geotiff, interpolation_of, read
from .layers import dimension_values

VERSION = "1.1.1"
WCS_NS = ("http://www.opengis.net/wcs/1.1.1", "http://www.opengis.net/wcs/1.1")
OWS_NS = ("http://www.opengis.net/ows/1.1", "http://www.opengis.net/ows")
GML_NS = "http://www.opengis.net/gml"

FIELD = "contents"                     # the one Range field of every coverage
BAND_AXIS = "Band"
FORMAT = "image/tiff"
# FORMAT values taken for a GeoTIFF (lower case, spaces removed)
FORMAT_ALIASES = {"image/tiff", "image/geotiff", "geotiff", "gtiff", "tiff", "tif", "image/tif",
                  "image/tiff;subtype=geotiff", "image/tiff;application=geotiff", "application/geotiff",
                  "application/x-geotiff"}
# WCS 1.1 interpolation names (interpolationMethods.xml) offered, and their engine resampling
METHODS = ("nearest", "linear", "cubic")
SIMPLE_GRID = "urn:ogc:def:method:WCS:1.1:2dSimpleGrid"
GRID_CS = "urn:ogc:def:cs:OGC:0.0:Grid2dSquareCS"
IMAGE_CRS = "urn:ogc:def:crs:OGC::imageCRS"
CRS84 = "urn:ogc:def:crs:OGC:1.3:CRS84"
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

def handle(kvp: KVP, ep, operation: str) -> Response:
    if not ep.coverages:
        raise OGCError("InvalidParameterValue", "this endpoint serves no coverage (unknown service)",
                       "service", status=404)
    if operation == "getcapabilities":
        return get_capabilities(kvp, ep)
    if operation == "describecoverage":
        return describe_coverage(kvp, ep)
    if operation == "getcoverage":
        return get_coverage(kvp, ep)
    raise OGCError("OperationNotSupported", f"REQUEST={kvp.get('REQUEST')} is not a WCS 1.1.1 operation "
                   "(GetCapabilities, DescribeCoverage, GetCoverage)", "request", status=501)


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


def urn(code: str) -> str:
    """EPSG:n -> urn:ogc:def:crs:EPSG::n (other identifiers unchanged)."""
    if code.upper().startswith("EPSG:"):
        return f"urn:ogc:def:crs:EPSG::{code[5:]}"
    if code.upper() == "CRS:84":
        return CRS84
    return code


def _epsg_code(crs) -> str | None:
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else None


def _ordered(x: float, y: float, inverted: bool) -> tuple[float, float]:
    """x/y as the CRS orders them."""
    return (y, x) if inverted else (x, y)


def _coverage(ep, identifier: str, locator: str) -> Coverage:
    cov = ep.coverages.get(identifier.strip())
    if cov is None:
        raise OGCError("InvalidParameterValue", f"there is no coverage {identifier.strip()!r} (offered: "
                       f"{', '.join(ep.coverages)})", locator)
    return cov


def _supported_crs(cov: Coverage) -> list[str]:
    return [urn(c) for c in cov.layer.crs] + [CRS84]


def _update_sequence(ep) -> int:
    return max(cov.service.catalog.last_change() for cov in ep.coverages.values())


@dataclass(frozen=True)
class Native:
    """The grid a coverage is described (and by default delivered) in: its native grid when the
    native CRS has an EPSG code, else that grid's default warp into EPSG:4326."""

    code: str               # "EPSG:n"
    grid: Grid

    @property
    def inverted(self) -> bool:
        return axis_inverted(self.code)


def native_of(cov: Coverage) -> Native:
    code = _epsg_code(cov.grid.crs)
    if code is not None:
        return Native(code, cov.grid)
    wgs84 = crs_from_ogc("EPSG:4326")
    transform, width, height = calculate_default_transform(cov.grid.crs, wgs84, cov.grid.width,
                                                           cov.grid.height, *cov.grid.bounds)
    x0, y1 = transform.c, transform.f
    bounds = (x0, y1 + transform.e * height, x0 + transform.a * width, y1)
    return Native("EPSG:4326", Grid(wgs84, bounds, width, height))


# --- GetCapabilities ------------------------------------------------------------------------------

def get_capabilities(kvp: KVP, ep) -> Response:
    sequence = _update_sequence(ep)
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
    covs = [_coverage(ep, n, "identifiers") for n in names]
    body = render("wcs11_describe_coverage.xml", descriptions=[description(c) for c in covs])
    return Response(body, content_type=DOC_MIME)


# --- GetCoverage: parameters ----------------------------------------------------------------------

def _numbers(raw: str, locator: str, counts: tuple[int, ...]) -> list[float]:
    parts = [p for p in re.split(r"[,\s]+", raw.strip()) if p]
    if len(parts) not in counts:
        raise OGCError("InvalidParameterValue", f"{locator.upper()} needs {' or '.join(map(str, counts))} "
                       "numbers", locator)
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise OGCError("InvalidParameterValue", f"{locator.upper()}={raw!r} holds something that is not a "
                       "number", locator)
    if not all(math.isfinite(v) and abs(v) <= MAX_COORDINATE for v in values):
        raise OGCError("InvalidParameterValue", f"{locator.upper()} values must be finite numbers within "
                       f"+-{MAX_COORDINATE:g}", locator)
    return values


def _crs(code: str, locator: str):
    try:
        return crs_from_ogc(code)
    except InvalidParameter:
        raise OGCError("InvalidParameterValue", f"{code!r} is not a supported CRS", locator)


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


def _bounding_box(kvp: KVP, cov: Coverage, nat: Native) -> tuple[str, tuple[float, float, float, float]]:
    """(CRS identifier, x/y bounds of the cell centres) of BOUNDINGBOX."""
    raw = kvp.get("BOUNDINGBOX")
    if raw is None or not raw.strip():
        raise OGCError("MissingParameterValue", "parameter BOUNDINGBOX is required", "boundingbox")
    parts = [p.strip() for p in raw.split(",")]
    code = None
    if parts and re.search(r"[A-Za-z]", parts[-1]) and not re.fullmatch(r"[-+.\deE]+|inf|nan", parts[-1],
                                                                         re.I):
        code = parts.pop()
    if len(parts) != 4:
        raise OGCError("InvalidParameterValue", "BOUNDINGBOX is minx,miny,maxx,maxy[,crs] (2-D lower and upper "
                       "corners, in the CRS's axis order)", "boundingbox")
    a0, a1, b0, b1 = _numbers(",".join(parts), "boundingbox", (4,))
    if code is None:
        code = (kvp.get("CRS") or "").strip() or urn(nat.code)
    if code.strip().lower() in (IMAGE_CRS.lower(), "urn:ogc:def:crs:ogc:0.0:imagecrs", "imagecrs"):
        return _image_box(nat, (a0, a1, b0, b1))
    _crs(code, "boundingbox")
    if axis_inverted(code):
        a0, a1, b0, b1 = a1, a0, b1, b0
    x0, y0, x1, y1 = a0, a1, b0, b1
    if _crs(code, "boundingbox").is_geographic and x0 > x1:
        x1 += 360.0                     # a box across the antimeridian
    if x0 > x1 or y0 > y1:
        raise OGCError("InvalidParameterValue", "BOUNDINGBOX: the lower corner is above the upper corner",
                       "boundingbox")
    return code, (x0, y0, x1, y1)


def _image_box(nat: Native, box) -> tuple[str, tuple[float, float, float, float]]:
    """An imageCRS box (column, row indices of the outer cells) as native cell centres."""
    i0, j0, i1, j1 = box
    if i0 > i1 or j0 > j1:
        raise OGCError("InvalidParameterValue", "BOUNDINGBOX: the lower corner is above the upper corner",
                       "boundingbox")
    g = nat.grid
    rx, ry = g.res
    x0, _, _, ymax = g.bounds
    return urn(nat.code), (x0 + (i0 + 0.5) * rx, ymax - (j1 + 0.5) * ry, x0 + (i1 + 0.5) * rx,
                           ymax - (j0 + 0.5) * ry)


def _grid_type(kvp: KVP) -> str | None:
    raw = (kvp.get("GRIDTYPE") or "").strip()
    if not raw:
        return None
    for kind in ("2dSimpleGrid", "2dGridIn2dCrs", "2dGridIn3dCrs"):
        if raw.lower().endswith(":" + kind.lower()) or raw.lower() == kind.lower():
            return kind
    raise OGCError("InvalidParameterValue", f"GRIDTYPE={raw!r} is not supported (urn:ogc:def:method:WCS:1.1:"
                   "2dSimpleGrid, 2dGridIn2dCrs, 2dGridIn3dCrs)", "gridtype")


def _grid_cs(kvp: KVP) -> None:
    raw = (kvp.get("GRIDCS") or "").strip()
    if raw and not raw.lower().endswith(":grid2dsquarecs") and raw.lower() != "grid2dsquarecs":
        raise OGCError("InvalidParameterValue", f"GRIDCS={raw!r} is not supported ({GRID_CS})", "gridcs")


def _offsets(kvp: KVP, kind: str | None, inverted: bool) -> tuple[float, float] | None:
    """GRIDOFFSETS as positive x/y steps (None: not given)."""
    raw = kvp.get("GRIDOFFSETS")
    if raw is None or not raw.strip():
        return None
    counts = {"2dSimpleGrid": (2,), "2dGridIn2dCrs": (4,), "2dGridIn3dCrs": (6,)}.get(kind, (2, 4))
    v = _numbers(raw, "gridoffsets", counts)
    if len(v) == 2:
        dx, dy = (v[1], v[0]) if inverted else (v[0], v[1])
    else:
        half = len(v) // 2
        c1, c2 = v[:2], v[half:half + 2]            # grid axis 1 (columns), grid axis 2 (rows)
        if inverted:
            c1, c2 = c1[::-1], c2[::-1]
        if c1[1] == 0 and c2[0] == 0:
            dx, dy = c1[0], c2[1]
        elif c1[0] == 0 and c2[1] == 0:             # the row vector given first: same lattice
            dx, dy = c2[0], c1[1]
        else:
            raise OGCError("InvalidParameterValue", "GRIDOFFSETS: rotated or sheared grids are not supported",
                           "gridoffsets")
    if dx == 0 or dy == 0:
        raise OGCError("InvalidParameterValue", "GRIDOFFSETS must not be zero", "gridoffsets")
    return abs(dx), abs(dy)


def _origin(kvp: KVP, inverted: bool) -> tuple[float, float] | None:
    raw = kvp.get("GRIDORIGIN")
    if raw is None or not raw.strip():
        return None
    v = _numbers(raw, "gridorigin", (2, 3))
    return (v[1], v[0]) if inverted else (v[0], v[1])


def _axis(lo: float, hi: float, origin: float, step: float) -> tuple[int, int]:
    """(first, last) lattice index k with origin + k*step in [lo, hi] (at least one: the nearest)."""
    eps = 1e-6
    k0 = math.ceil((lo - origin) / step - eps)
    k1 = math.floor((hi - origin) / step + eps)
    if k1 < k0:
        k0 = k1 = round(((lo + hi) / 2 - origin) / step)
    return k0, k1


def output_grid(kvp: KVP, cov: Coverage) -> Grid:
    """The grid a GetCoverage asks for: cells centred on GRIDORIGIN + k*GRIDOFFSETS inside BOUNDINGBOX,
    in GRIDBASECRS (default: the box's CRS), at the native resolution when no offsets are given."""
    nat = native_of(cov)
    box_code, box = _bounding_box(kvp, cov, nat)
    base_code = (kvp.get("GRIDBASECRS") or "").strip() or box_code
    base = _crs(base_code, "gridbasecrs")
    inverted = axis_inverted(base_code)
    box_crs = _crs(box_code, "boundingbox")
    if base != box_crs:
        box = reproject_bounds(box, box_crs, base)
    kind = _grid_type(kvp)
    _grid_cs(kvp)
    steps = _offsets(kvp, kind, inverted)
    origin = _origin(kvp, inverted)
    native = base == nat.grid.crs
    if steps is None:
        if native:
            steps = nat.grid.res
        else:
            transform, _, _ = calculate_default_transform(nat.grid.crs, base, nat.grid.width, nat.grid.height,
                                                          *nat.grid.bounds)
            steps = (abs(transform.a), abs(transform.e))
    if origin is None:
        if native and all(math.isclose(s, r, rel_tol=1e-9) for s, r in zip(steps, nat.grid.res)):
            g = nat.grid
            origin = (g.bounds[0] + g.res[0] / 2, g.bounds[3] - g.res[1] / 2)    # the native lattice
        else:
            origin = (box[0], box[3])
    rx, ry = steps
    i0, i1 = _axis(box[0], box[2], origin[0], rx)
    j0, j1 = _axis(box[1], box[3], origin[1], ry)
    width, height = i1 - i0 + 1, j1 - j0 + 1
    left = origin[0] + i0 * rx - rx / 2
    top = origin[1] + j1 * ry + ry / 2
    return Grid(base, (left, top - height * ry, left + width * rx, top), width, height)


def range_subset(raw: str | None, cov: Coverage) -> tuple[tuple[int, ...] | None, str, dict[str, tuple]]:
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
            resampling = Resampling.NEAREST if name == "none" else interpolation_of(name)
            if resampling is None:
                raise OGCError("InvalidParameterValue", f"RANGESUBSET: interpolation {method!r} is not "
                               f"supported ({', '.join(METHODS)})", "rangesubset")
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
    cov = _coverage(ep, raw_id, "identifier")
    _format(kvp)
    _store(kvp)
    grid = output_grid(kvp, cov)
    bands, resampling, dims = range_subset(kvp.get("RANGESUBSET"), cov)
    time_raw = kvp.get("TIMESEQUENCE")
    time = parse_time(time_raw, "timesequence") if time_raw and time_raw.strip() else None
    raster = read(cov, grid, bands=bands, resampling=resampling, time=time, time_locator="timesequence",
                  dimensions=dimension_parameters(kvp, cov) | dims)
    tiff = geotiff(raster)
    cid = f"coverage/{cov.id}.tif"
    xml = render("wcs11_coverages.xml", id=cov.id, title=cov.layer.title, abstract=cov.layer.abstract,
                 href=f"cid:{cid}", format=FORMAT)
    boundary = "wcs" + uuid.uuid4().hex
    crlf = b"\r\n"
    body = b"".join([
        b"--", boundary.encode(), crlf,
        b"Content-Type: text/xml; charset=utf-8", crlf,
        b"Content-ID: <coverages.xml>", crlf,
        crlf, xml.encode("utf-8"), crlf,
        b"--", boundary.encode(), crlf,
        b"Content-Type: image/tiff", crlf,
        b"Content-Transfer-Encoding: binary", crlf,
        b"Content-ID: <", cid.encode(), b">", crlf,
        b'Content-Disposition: inline; filename="', cov.id.encode(), b'.tif"', crlf,
        crlf, tiff, crlf,
        b"--", boundary.encode(), b"--", crlf,
    ])
    # The boundary is quoted: QGIS takes everything after "boundary=" up to the next '"' as it.
    return Response(body, content_type=f'multipart/related; boundary="{boundary}"; type="text/xml"; '
                                       f'start="<coverages.xml>"')


# --- XML requests (POST) --------------------------------------------------------------------------

def _local(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _children(el, name: str) -> list:
    return [c for c in el if isinstance(c.tag, str) and _local(c) == name]


def _child(el, name: str):
    found = _children(el, name)
    return found[0] if found else None


def _text(el) -> str:
    return (el.text or "").strip() if el is not None else ""


def kvp_from_xml(root) -> KVP:
    """A WCS 1.1.1 XML request (GetCoverage, DescribeCoverage, GetCapabilities) as the equivalent KVP.
    Documents with a DTD are refused: nothing in a request needs one."""
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None:
        raise OGCError("InvalidParameterValue", "XML requests with a DOCTYPE are not accepted", "request")
    name = _local(root)
    pairs = [("SERVICE", root.get("service") or "WCS"), ("REQUEST", name)]
    if root.get("version"):
        pairs.append(("VERSION", root.get("version")))
    if name == "GetCoverage":
        pairs += _get_coverage_pairs(root)
    elif name == "DescribeCoverage":
        pairs.append(("IDENTIFIERS", ",".join(_text(i) for i in _children(root, "Identifier"))))
    elif name == "GetCapabilities":
        if root.get("updateSequence"):
            pairs.append(("UPDATESEQUENCE", root.get("updateSequence")))
        for group, item, key in (("AcceptVersions", "Version", "ACCEPTVERSIONS"),
                                 ("Sections", "Section", "SECTIONS"),
                                 ("AcceptFormats", "OutputFormat", "ACCEPTFORMATS")):
            node = _child(root, group)
            if node is not None:
                pairs.append((key, ",".join(_text(v) for v in _children(node, item))))
    else:
        raise OGCError("OperationNotSupported", f"{name!r} is not a WCS 1.1.1 request", "request", status=501)
    return KVP(pairs)


def _get_coverage_pairs(root) -> list[tuple[str, str]]:
    pairs = [("IDENTIFIER", _text(_child(root, "Identifier")))]
    subset = _child(root, "DomainSubset")
    if subset is not None:
        box = _child(subset, "BoundingBox")
        if box is None:
            box = _child(subset, "WGS84BoundingBox")
        if box is not None:
            lower, upper = _text(_child(box, "LowerCorner")).split(), _text(_child(box, "UpperCorner")).split()
            crs = box.get("crs") or (CRS84 if _local(box) == "WGS84BoundingBox" else "")
            pairs.append(("BOUNDINGBOX", ",".join(lower + upper + ([crs] if crs else []))))
        temporal = _child(subset, "TemporalSubset")
        if temporal is not None:
            times = []
            for item in temporal:
                if _local(item) == "timePosition":
                    times.append(_text(item))
                elif _local(item) == "TimePeriod":
                    period = [_text(_child(item, "BeginPosition")), _text(_child(item, "EndPosition"))]
                    if _child(item, "TimeResolution") is not None:
                        period.append(_text(_child(item, "TimeResolution")))
                    times.append("/".join(period))
            pairs.append(("TIMESEQUENCE", ",".join(times)))
    ranges = _child(root, "RangeSubset")
    if ranges is not None:
        fields = []
        for field in _children(ranges, "FieldSubset"):
            text = _text(_child(field, "Identifier"))
            method = _text(_child(field, "InterpolationType"))
            if method:
                text += ":" + method
            axes = [f"{_text(_child(a, 'Identifier'))}[{','.join(_text(k) for k in _children(a, 'Key'))}]"
                    for a in _children(field, "AxisSubset")]
            if axes:
                text += "[" + ",".join(axes) + "]"
            fields.append(text)
        pairs.append(("RANGESUBSET", ";".join(fields)))
    output = _child(root, "Output")
    if output is not None:
        pairs.append(("FORMAT", output.get("format") or ""))
        if output.get("store") is not None:
            pairs.append(("STORE", output.get("store")))
        grid = _child(output, "GridCRS")
        if grid is not None:
            for tag, key in (("GridBaseCRS", "GRIDBASECRS"), ("GridType", "GRIDTYPE"), ("GridCS", "GRIDCS"),
                             ("GridOrigin", "GRIDORIGIN"), ("GridOffsets", "GRIDOFFSETS")):
                node = _child(grid, tag)
                if node is not None:
                    pairs.append((key, ",".join(_text(node).split())))
    return pairs
