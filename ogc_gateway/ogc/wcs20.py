"""WCS 2.0.1: core with the KVP and XML/POST bindings, the GeoTIFF encoding, GMLCOV multipart, and the
CRS, Scaling, Interpolation and Range-subsetting extensions (OGC 09-110r4, 09-147r3, 12-100r1,
11-053r1, 12-039, 12-049, 12-040).

A coverage is 2-D: its axes are the native CRS's own (labels and order from pyproj: `E N` for UTM,
`Lat Lon` for EPSG:4326); a time-enabled service lists its times in `gmlcov:metadata` (GeoServer's
`TimeDomain`, which GDAL reads) and is sliced or trimmed with `SUBSET=time("…")` (also `t`, `ansi`,
`phenomenonTime`); without one it shows its latest time, like the other OGC faces. A multidimensional
service's other dimensions are listed there too (GeoServer's `ElevationDomain` and `DimensionDomain`)
and sliced or trimmed the same way: `SUBSET=elevation(10)` (or `StdZ`), `SUBSET=variable("salt")`,
`SUBSET=<dimension>(a,b)`; one not subset takes its default.

Subsetting selects the native pixels whose centres lie inside the trims (GDAL sends outer pixel
edges), so a request on the native grid with nearest neighbour returns the source pixels. Scaling
keeps the outer edges and divides them into the asked number of cells. SCALEFACTOR multiplies the
grid size (0.5 halves it), as rasdaman reads 12-039.

Documents come from the `wcs20_*.xml` templates; exceptions are OWS 2.0 ExceptionReports with the
HTTP statuses of OGC 09-110r4 / 06-121r9 (404 for NoSuchCoverage, InvalidAxisLabel, InvalidSubsetting
and the extensions' codes).
"""

from __future__ import annotations

import math
import re
import uuid
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import rasterio
from flask import Response
from lxml import etree
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS
from rasterio.io import MemoryFile
from rasterio.warp import calculate_default_transform

from ..engine import (
    MAX_COORDINATE,
    Compression,
    GatewayError,
    Grid,
    Raster,
    Resampling,
    TimeWindow,
    crs_from_ogc,
    extent_in,
    reproject_bounds,
)
from ..gateway import gateway
from ..templates import render
from .common import KVP, OGCError, number as num, parse_instant
from .coverage import Coverage, geotiff, interpolation_of, read
from .layers import subset_values

VERSION = "2.0.1"
WCS_NS = "http://www.opengis.net/wcs/2.0"
OWS_NS = "http://www.opengis.net/ows/2.0"

SPEC = "http://www.opengis.net/spec/"
PROFILES = (
    SPEC + "WCS/2.0/conf/core",
    SPEC + "WCS_protocol-binding_get-kvp/1.0/conf/get-kvp",
    SPEC + "GMLCOV/1.0/conf/special-format",
    SPEC + "GMLCOV/1.0/conf/multipart",
    SPEC + "GMLCOV_geotiff-coverages/1.0/conf/geotiff-coverage",
    SPEC + "WCS_service-extension_crs/1.0/conf/crs",
    SPEC + "WCS_service-extension_crs/1.0/conf/crs-gridded-coverage",
    SPEC + "WCS_service-extension_scaling/1.0/conf/scaling",
    SPEC + "WCS_service-extension_range-subsetting/1.0/conf/record-subsetting",
    SPEC + "WCS_service-extension_interpolation/1.0/conf/interpolation",
    SPEC + "WCS_service-extension_interpolation/1.0/conf/interpolation-nearest-neighbor",
    SPEC + "WCS_service-extension_interpolation/1.0/conf/interpolation-linear",
    SPEC + "WCS_service-extension_interpolation/1.0/conf/interpolation-cubic",
)
FORMATS = ("image/tiff",)
MULTIPART = "multipart/related"
SECTIONS = ("ServiceIdentification", "ServiceProvider", "OperationsMetadata", "ServiceMetadata", "Contents")

INTERPOLATION = "http://www.opengis.net/def/interpolation/OGC/1/"
# the advertised URIs (the engine's table reads them, short names and 1.x spellings too)
INTERPOLATIONS = (INTERPOLATION + "nearest-neighbor", INTERPOLATION + "linear", INTERPOLATION + "cubic")

TIME_AXES = ("time", "t", "ansi", "phenomenontime")      # compared case-insensitively
AXIS_URI = "http://www.opengis.net/def/axis/OGC/"
CRS_URI = "http://www.opengis.net/def/crs/"
CRS84_URI = CRS_URI + "OGC/1.3/CRS84"
DATA_TYPES = {"uint8": "unsignedByte", "int8": "signedByte", "uint16": "unsignedShort", "int16": "signedShort",
              "uint32": "unsignedInt", "int32": "signedInt", "float32": "float32", "float64": "float64"}
# OWS 2.0 (06-121r9 table 28), WCS 2.0.1 core and its extensions (as GeoServer answers them)
STATUS = {"NoSuchCoverage": 404, "emptyCoverageIdList": 404, "InvalidAxisLabel": 404, "InvalidSubsetting": 404,
          "MissingParameterValue": 400, "InvalidParameterValue": 400, "InvalidEncodingSyntax": 400,
          "VersionNegotiationFailed": 400, "InvalidUpdateSequence": 400, "OperationNotSupported": 501,
          "OptionNotSupported": 501, "NoApplicableCode": 500, "NotACrs": 404, "SubsettingCrs-NotSupported": 404,
          "OutputCrs-NotSupported": 404, "InvalidScaleFactor": 404, "InvalidExtent": 404,
          "ScaleAxisUndefined": 404, "InvalidCoverageType": 404, "InterpolationMethodNotSupported": 404,
          "NoSuchField": 404, "IllegalFieldSequence": 400}
XML_MIME = "application/xml"         # OWS 2.0; the XML declaration names UTF-8
_EPS = 1e-6          # pixels: a trim edge this close to a pixel centre counts as reaching it


# --- entry points (called by wcs.py) --------------------------------------------------------------

def handle(kvp: KVP, ep, operation: str) -> Response:
    if operation == "getcapabilities":
        return get_capabilities(kvp, ep)
    if operation == "describecoverage":
        return describe_coverage(kvp, ep)
    if operation == "getcoverage":
        return get_coverage(kvp, ep)
    raise OGCError("OperationNotSupported", f"REQUEST={kvp.get('REQUEST')} is not a WCS 2.0.1 operation "
                   "(GetCapabilities, DescribeCoverage, GetCoverage)", kvp.get("REQUEST"), status=501)


def exception(exc: OGCError) -> Response:
    """An OWS 2.0 ExceptionReport, with the HTTP status of its code."""
    code = exc.code or "NoApplicableCode"
    if code == "InvalidDimensionValue":          # a WMS/WCS 1.x code from the shared time parsing
        code = "InvalidSubsetting"
    status = exc.status if exc.status and exc.status != 200 else STATUS.get(code, 400)
    body = render("wcs20_exception.xml", code=code, locator=exc.locator, message=exc.message)
    return Response(body, status=status, content_type=XML_MIME)


# --- CRSs and axes ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Axes:
    """A CRS as WCS 2.0 names it: its URI, its axes in the CRS's own order, and the engine's CRS."""

    uri: str
    crs: CRS                          # the engine's (always x/y internally)
    labels: tuple[str, str]           # CRS axis order
    uoms: tuple[str, str]
    inverted: bool                    # the first axis points north/south (EPSG:4326)

    def ordered(self, x: float, y: float) -> tuple[float, float]:
        """An x/y pair in the CRS's axis order."""
        return (y, x) if self.inverted else (x, y)

    def axis_of(self, label: str) -> int | None:
        """0 for the east/west (x) axis, 1 for the north/south (y) axis, None for other labels.
        The exact labels, plus `Long` for pyproj's `Lon` (the older EPSG abbreviation that many
        clients send)."""
        names = list(self.labels)
        if label not in names and label in ("Long", "Lon") and ("Lon" in names or "Long" in names):
            label = "Lon" if "Lon" in names else "Long"
        if label not in names:
            return None
        index = names.index(label)
        return 1 - index if self.inverted else index


def canonical_crs(text: str | None) -> str | None:
    """An OGC CRS identifier (opengis.net URI, URN, EPSG:n, CRS:84 ...) as the URI WCS 2.0 writes,
    or None when it is not one."""
    if not text or not text.strip():
        return None
    value = text.strip()
    upper = value.upper()
    if "CRS84" in upper.replace(":", "") and ("OGC" in upper or upper.startswith("CRS")):
        return CRS84_URI
    match = (re.fullmatch(r"HTTPS?://WWW\.OPENGIS\.NET/DEF/CRS/EPSG/[^/]*/(\d+)", upper)
             or re.fullmatch(r"URN:OGC:DEF:CRS:EPSG:[^:]*:(\d+)", upper)
             or re.fullmatch(r"EPSG:(\d+)", upper))
    return f"{CRS_URI}EPSG/0/{int(match.group(1))}" if match else None


def _unit(name: str) -> str:
    return {"metre": "m", "meter": "m", "degree": "deg", "foot": "ft", "US survey foot": "ftUS"}.get(
        name, re.sub(r"\s+", "_", name) or "unknown")


@lru_cache(maxsize=64)
def axes_of(uri: str) -> Axes:
    """The axes of a canonical CRS URI (raises OGCError NotACrs for a CRS the engine cannot use)."""
    try:
        crs = crs_from_ogc(uri)
        proj = ProjCRS("OGC:CRS84") if uri == CRS84_URI else ProjCRS.from_epsg(int(uri.rsplit("/", 1)[1]))
    except Exception as exc:          # the engine's InvalidParameter, pyproj's CRSError
        raise OGCError("NotACrs", f"{uri} is not a CRS this server can use ({exc})", "crs") from None
    info = proj.axis_info[:2]
    if len(info) < 2:
        raise OGCError("NotACrs", f"{uri} is not a two-dimensional CRS", "crs")
    inverted = info[0].direction.lower() in ("north", "south")
    labels = tuple(a.abbrev for a in info)
    if not all(labels) or labels[0] == labels[1] or any(" " in a for a in labels):
        labels = ("y", "x") if inverted else ("x", "y")
    return Axes(uri, crs, labels, tuple(_unit(a.unit_name) for a in info), inverted)


def native_uri(cov: Coverage) -> str:
    epsg = cov.grid.crs.to_epsg()
    if epsg is None:
        raise OGCError("NoApplicableCode", f"coverage {cov.id} has a CRS without an EPSG code", status=500)
    return f"{CRS_URI}EPSG/0/{epsg}"


def supported_crs(ep) -> list[str]:
    """crsSupported: every coverage's native CRS and configured OGC CRSs, then CRS84."""
    uris: list[str] = []
    for cov in ep.coverages.values():
        for uri in [native_uri(cov)] + [canonical_crs(c) for c in cov.layer.crs]:
            if uri and uri not in uris:
                uris.append(uri)
    if CRS84_URI not in uris:
        uris.append(CRS84_URI)
    return uris


# --- document pieces ---------------------------------------------------------------------------------

def gml_id(text: str) -> str:
    """A gml:id (an NCName) made of any identifier."""
    value = re.sub(r"[^A-Za-z0-9_.\-]", "_", text)
    return value if re.match(r"[A-Za-z_]", value) else "c_" + value


@dataclass(frozen=True)
class Field:
    name: str                   # the swe:field name (band name made a NameToken)
    band: str                   # the band's own name
    nodata: str | None
    definition: str | None


def fields_of(cov: Coverage) -> tuple[Field, ...]:
    names, out = set(), []
    nodata = None
    if cov.nodata is not None:
        nodata = num(cov.nodata) if math.isfinite(cov.nodata) else "NaN"
    kind = DATA_TYPES.get(cov.dtype)
    for i, band in enumerate(cov.band_names):
        name = re.sub(r"[^A-Za-z0-9_\-]", "_", band)
        if not re.match(r"[A-Za-z]", name):
            name = "b" + name
        while name in names:
            name += f"_{i + 1}"
        names.add(name)
        out.append(Field(name, band, nodata, f"http://www.opengis.net/def/dataType/OGC/0/{kind}" if kind else None))
    return tuple(out)


def domain(ax: Axes, grid: Grid) -> dict:
    """boundedBy and domainSet numbers of a grid, in the CRS's axis order: outer edges; the centre of
    the upper-left pixel; the column (i) and row (j) steps."""
    x0, y0, x1, y1 = grid.bounds
    rx, ry = grid.res
    return {
        "srs": ax.uri, "labels": " ".join(ax.labels), "uoms": " ".join(ax.uoms),
        "lower": " ".join(num(v) for v in ax.ordered(x0, y0)),
        "upper": " ".join(num(v) for v in ax.ordered(x1, y1)),
        "high": f"{grid.width - 1} {grid.height - 1}",
        "origin": " ".join(num(v) for v in ax.ordered(x0 + rx / 2, y1 - ry / 2)),
        "offsets": (" ".join(num(v) for v in ax.ordered(rx, 0.0)),
                    " ".join(num(v) for v in ax.ordered(0.0, -ry))),
    }


def _coverage_of(ep, cid: str) -> Coverage:
    cov = ep.coverages.get(cid)
    if cov is None:
        raise OGCError("NoSuchCoverage", f"there is no coverage {cid!r}", cid)
    return cov


# --- GetCapabilities -----------------------------------------------------------------------------------

def _update_sequence(ep) -> int:
    return max((c.service.catalog.last_change() for c in ep.coverages.values()), default=0)


def get_capabilities(kvp: KVP, ep) -> Response:
    if not ep.coverages:
        raise OGCError("NoApplicableCode", "there is no such service", "service", status=404)
    sequence = _update_sequence(ep)
    asked = (kvp.get("UPDATESEQUENCE") or "").strip()
    if asked.isdigit() and int(asked) > sequence:
        raise OGCError("InvalidUpdateSequence", f"update sequence {asked} is ahead of the server's {sequence}",
                       "updateSequence")
    raw = (kvp.get("SECTIONS") or "").strip()
    wanted = set(SECTIONS)
    if raw:
        names = [s.strip() for s in raw.split(",") if s.strip()]
        bad = [s for s in names if s not in SECTIONS and s != "All"]
        if bad:
            raise OGCError("InvalidParameterValue", f"unknown section {bad[0]!r} (sections: "
                           f"{', '.join(SECTIONS)}, All)", "sections")
        wanted = set(SECTIONS) if "All" in names else set(names)
    if asked.isdigit() and int(asked) == sequence:
        wanted = set()                 # OWS: the current sequence gets the bare root element
    server = gateway().config.server
    covs = list(ep.coverages.values())
    single = not ep.url.endswith("/ogc/wcs?")           # a service's own WCSServer
    title = covs[0].layer.title if single else server.title
    abstract = (covs[0].layer.abstract or server.abstract) if single else server.abstract
    keywords = tuple(server.keywords) + (tuple(covs[0].layer.keywords) if single else ())
    summaries = []
    for cov in covs:
        ax = axes_of(native_uri(cov))
        x0, y0, x1, y1 = cov.grid.bounds
        w, s, e, n = cov.layer.geographic
        summaries.append({
            "id": cov.id, "title": cov.layer.title, "abstract": cov.layer.abstract,
            "keywords": cov.layer.keywords, "wgs84": (f"{num(w)} {num(s)}", f"{num(e)} {num(n)}"),
            "crs": ax.uri, "lower": " ".join(num(v) for v in ax.ordered(x0, y0)),
            "upper": " ".join(num(v) for v in ax.ordered(x1, y1)),
        })
    body = render("wcs20_capabilities.xml", ep=ep, server=server, sections=wanted, update_sequence=sequence,
                  title=title, abstract=abstract, keywords=keywords, profiles=PROFILES, formats=FORMATS,
                  crs_supported=supported_crs(ep), interpolations=list(INTERPOLATIONS),
                  summaries=summaries)
    return Response(body, content_type=XML_MIME)


# --- DescribeCoverage ---------------------------------------------------------------------------------

def _coverage_ids(kvp: KVP) -> list[str]:
    raw = kvp.get("COVERAGEID")
    if raw is None:
        raw = kvp.get("IDENTIFIER") or kvp.get("COVERAGE")      # 1.x names some clients keep sending
    if raw is None:
        raise OGCError("MissingParameterValue", "parameter COVERAGEID is required", "coverageId")
    ids = [c.strip() for c in raw.split(",") if c.strip()]
    if not ids:
        raise OGCError("emptyCoverageIdList", "COVERAGEID lists no coverage", "coverageId")
    return ids


def description(cov: Coverage) -> dict:
    """What wcs20_macros.xml needs to describe a coverage on its native grid."""
    ax = axes_of(native_uri(cov))
    return {"id": cov.id, "gml_id": gml_id(cov.id), "domain": domain(ax, cov.grid), "fields": fields_of(cov),
            "times": cov.layer.times, "dimensions": cov.layer.dimensions}


def describe_coverage(kvp: KVP, ep) -> Response:
    ids = _coverage_ids(kvp)
    missing = [c for c in ids if c not in ep.coverages]
    if missing:
        raise OGCError("NoSuchCoverage", f"there is no coverage {', '.join(missing)}", ",".join(missing))
    body = render("wcs20_coverage_descriptions.xml", descriptions=[description(ep.coverages[c]) for c in ids])
    return Response(body, content_type=XML_MIME)


# --- GetCoverage: parsing -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Subset:
    label: str
    low: str | None           # None: unbounded ('*')
    high: str | None
    is_slice: bool
    crs: str | None = None    # the 2.0.0-era `axis,crsURI(...)` form


_SUBSET = re.compile(r"^\s*([^\s(),]+)\s*(?:,\s*([^\s()]+)\s*)?\((.*)\)\s*$", re.S)


def _value(text: str) -> str | None:
    value = text.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1].strip()
    return None if value == "*" else value


def parse_subsets(kvp: KVP) -> list[Subset]:
    """Every SUBSET, SUBSET0, SUBSETx… value (SUBSETTINGCRS aside)."""
    out = []
    for key, values in kvp.all.items():
        if not key.startswith("SUBSET") or key == "SUBSETTINGCRS":
            continue
        for raw in values:
            match = _SUBSET.match(raw or "")
            if not match:
                raise OGCError("InvalidEncodingSyntax", f"SUBSET={raw!r} is not axis(low,high) or axis(point)",
                               "subset")
            label, crs, inner = match.groups()
            parts = inner.split(",")
            if len(parts) == 1:
                point = _value(parts[0])
                if point is None:
                    raise OGCError("InvalidSubsetting", f"SUBSET={raw!r}: a slice needs a point", label)
                out.append(Subset(label, point, point, True, crs))
            elif len(parts) == 2:
                out.append(Subset(label, _value(parts[0]), _value(parts[1]), False, crs))
            else:
                raise OGCError("InvalidEncodingSyntax", f"SUBSET={raw!r} has more than two values", "subset")
    return out


def _crs_param(kvp: KVP, name: str, code: str, supported: list[str], fallback: str) -> Axes:
    raw = kvp.get(name)
    if raw is None or not raw.strip():
        return axes_of(fallback)
    uri = canonical_crs(raw)
    if uri is None or uri not in supported:
        raise OGCError(code, f"{name}={raw} is not among the supported CRSs ({', '.join(supported)})",
                       name.lower())
    try:
        return axes_of(uri)
    except OGCError as exc:
        raise OGCError(code, exc.message, name.lower()) from None


def _number(text: str, label: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise OGCError("InvalidSubsetting", f"{label}: {text!r} is not a number", label) from None
    if not (math.isfinite(value) and abs(value) <= MAX_COORDINATE):
        raise OGCError("InvalidSubsetting", f"{label}: {text!r} is not a finite number within "
                       f"+-{MAX_COORDINATE:g}", label)
    return value


@dataclass(frozen=True)
class Trim:
    low: float | None
    high: float | None
    is_slice: bool
    label: str


def _time_request(cov: Coverage, s: Subset) -> TimeWindow:
    try:
        if s.is_slice:
            return TimeWindow.of_instants((parse_instant(s.low, s.label),))
        lo, hi = cov.service.info.time_extent
        start = lo if s.low is None else parse_instant(s.low, s.label)
        end = hi if s.high is None else parse_instant(s.high, s.label)
    except OGCError as exc:
        raise OGCError("InvalidSubsetting", exc.message, s.label) from None
    if start > end:
        raise OGCError("InvalidSubsetting", f"{s.label}: the low bound is after the high bound", s.label)
    return TimeWindow(start, end)


# --- GetCoverage: grids ----------------------------------------------------------------------------------

def _span(trim: Trim | None, lo_edge: float, hi_edge: float, res: float, count: int, from_top: bool
          ) -> tuple[int, int]:
    """First and last pixel index along one axis whose centres the trim holds (a slice: the pixel
    holding the point; a trim between two centres: the pixel holding its middle)."""
    if trim is None:
        return 0, count - 1
    lo = lo_edge if trim.low is None else trim.low
    hi = hi_edge if trim.high is None else trim.high
    if lo > hi:
        raise OGCError("InvalidSubsetting", f"{trim.label}: the low bound {num(lo)} is above the high "
                       f"bound {num(hi)}", trim.label)
    if hi < lo_edge or lo > hi_edge:
        raise OGCError("InvalidSubsetting", f"{trim.label}: ({num(lo)}, {num(hi)}) lies outside the coverage "
                       f"({num(lo_edge)}, {num(hi_edge)})", trim.label)
    a, b = ((hi_edge - hi) / res, (hi_edge - lo) / res) if from_top else ((lo - lo_edge) / res, (hi - lo_edge) / res)
    if trim.is_slice:
        k = min(max(int(math.floor(a)), 0), count - 1)
        return k, k
    first = max(int(math.ceil(a - 0.5 - _EPS)), 0)
    last = min(int(math.floor(b - 0.5 + _EPS)), count - 1)
    if first > last:
        k = min(max(int(math.floor((a + b) / 2)), 0), count - 1)
        return k, k
    return first, last


def native_window(grid: Grid, tx: Trim | None, ty: Trim | None) -> Grid:
    """The part of the native grid the trims select: whole native pixels, edges kept exact."""
    x0, y0, x1, y1 = grid.bounds
    rx, ry = grid.res
    c0, c1 = _span(tx, x0, x1, rx, grid.width, from_top=False)
    r0, r1 = _span(ty, y0, y1, ry, grid.height, from_top=True)
    left = x0 if c0 == 0 else x0 + c0 * rx
    right = x1 if c1 == grid.width - 1 else x0 + (c1 + 1) * rx
    top = y1 if r0 == 0 else y1 - r0 * ry
    bottom = y0 if r1 == grid.height - 1 else y1 - (r1 + 1) * ry
    return Grid(grid.crs, (left, bottom, right, top), c1 - c0 + 1, r1 - r0 + 1)


def _box(trims: dict[int, Trim], extent: tuple[float, float, float, float]) -> tuple[float, ...]:
    """The trims as an x/y box, open sides taken from `extent`; checked against it."""
    box = list(extent)
    for axis in (0, 1):
        t = trims.get(axis)
        if t is None:
            continue
        lo = extent[axis] if t.low is None else t.low
        hi = extent[axis + 2] if t.high is None else t.high
        if lo > hi:
            raise OGCError("InvalidSubsetting", f"{t.label}: the low bound {num(lo)} is above the high bound "
                           f"{num(hi)}", t.label)
        if hi < extent[axis] or lo > extent[axis + 2]:
            raise OGCError("InvalidSubsetting", f"{t.label}: ({num(lo)}, {num(hi)}) lies outside the coverage "
                           f"({num(extent[axis])}, {num(extent[axis + 2])})", t.label)
        box[axis], box[axis + 2] = lo, hi
    return tuple(box)


def _extent(cov: Coverage, ax: Axes) -> tuple[float, float, float, float]:
    try:
        return extent_in(cov.grid.bounds, cov.grid.crs, ax.crs)
    except GatewayError as exc:
        raise OGCError("InvalidSubsetting", f"the coverage lies outside {ax.uri}: {exc.message}", "subset")


def target_grid(cov: Coverage, native: Axes, sub: Axes, out: Axes, trims: dict[int, Trim]) -> Grid:
    """The output grid before scaling: native pixels when the output is in the native CRS, else the
    trimmed box in the output CRS at about the native resolution."""
    if out.uri == native.uri:
        if sub.uri == native.uri:
            return native_window(cov.grid, trims.get(0), trims.get(1))
        box = reproject_bounds(_box(trims, _extent(cov, sub)), sub.crs, native.crs)
        converted = {axis: Trim(box[axis], box[axis + 2], t.is_slice, t.label) for axis, t in trims.items()}
        if any(t.is_slice for t in converted.values()):      # the pixel holding the point's image
            converted = {axis: Trim((t.low + t.high) / 2, (t.low + t.high) / 2, True, t.label)
                         if t.is_slice else t for axis, t in converted.items()}
        return native_window(cov.grid, converted.get(0), converted.get(1))
    box = _box(trims, _extent(cov, sub))
    if sub.uri != out.uri:
        box = reproject_bounds(box, sub.crs, out.crs)
    ext = _extent(cov, out)
    x0, y0, x1, y1 = max(box[0], ext[0]), max(box[1], ext[1]), min(box[2], ext[2]), min(box[3], ext[3])
    if x0 > x1 or y0 > y1:
        raise OGCError("InvalidSubsetting", "the subset does not intersect the coverage", "subset")
    g = cov.grid
    transform, _, _ = calculate_default_transform(g.crs, out.crs, g.width, g.height, *g.bounds)
    res = abs(transform.a)
    if x1 - x0 < res:                     # a slice, or a trim thinner than a pixel: one pixel wide
        cx = (x0 + x1) / 2
        x0, x1 = cx - res / 2, cx + res / 2
    if y1 - y0 < res:
        cy = (y0 + y1) / 2
        y0, y1 = cy - res / 2, cy + res / 2
    return Grid(out.crs, (x0, y0, x1, y1), max(1, round((x1 - x0) / res)), max(1, round((y1 - y0) / res)))


# --- GetCoverage: scaling, range subsetting, interpolation ------------------------------------------------

_AXIS_ITEM = re.compile(r"\s*([^\s(),]+)\s*\(\s*([^()]*?)\s*\)\s*(?:,|$)")


def _axis_items(raw: str, name: str) -> list[tuple[str, str]]:
    items, pos = [], 0
    text = raw.strip()
    while pos < len(text):
        match = _AXIS_ITEM.match(text, pos)
        if not match:
            raise OGCError("InvalidParameterValue", f"{name}={raw!r} is not axis(value),axis(value)", name.lower())
        items.append((match.group(1), match.group(2)))
        pos = match.end()
    if not items:
        raise OGCError("InvalidParameterValue", f"{name} is empty", name.lower())
    return items


def grid_axis(label: str, *axes: Axes) -> int | None:
    """0 (columns) or 1 (rows) for a scaling axis name: grid labels i/j or x/y, the axis URIs
    (…/def/axis/OGC/1/i), or a CRS axis label (E/N, Lat/Lon …)."""
    name = label.rsplit("/", 1)[1] if label.startswith(AXIS_URI) else label
    if name.lower() in ("i", "x"):
        return 0
    if name.lower() in ("j", "y"):
        return 1
    for ax in axes:
        found = ax.axis_of(name)
        if found is not None:
            return found
    if name.lower() in ("lon", "long", "e", "easting"):
        return 0
    if name.lower() in ("lat", "n", "northing"):
        return 1
    return None


def scaled_size(kvp: KVP, grid: Grid, *axes: Axes) -> tuple[int, int]:
    """The output size after SCALEFACTOR, SCALEAXES, SCALESIZE or SCALEEXTENT (or MapServer's SIZE /
    RESOLUTION, which OWSLib sends); the outer edges stay where they are."""
    given = [n for n in ("SCALEFACTOR", "SCALEAXES", "SCALESIZE", "SCALEEXTENT") if (kvp.get(n) or "").strip()]
    if len(given) > 1:
        raise OGCError("InvalidParameterValue", f"give only one of {', '.join(given)}", given[1].lower())
    size = [grid.width, grid.height]
    name = given[0] if given else next((n for n in ("SIZE", "RESOLUTION") if (kvp.get(n) or "").strip()), None)
    if name is None:
        return grid.width, grid.height
    raw = kvp.get(name).strip()
    if name == "SCALEFACTOR":
        factor = _positive(raw, name)
        return max(1, round(grid.width * factor)), max(1, round(grid.height * factor))
    done = set()
    for label, value in _axis_items(raw, name):
        axis = grid_axis(label, *axes)
        if axis is None:
            raise OGCError("ScaleAxisUndefined", f"{name}: {label!r} is not an axis of the coverage "
                           "(i, j or the CRS's axis labels)", label)
        if axis in done:
            raise OGCError("ScaleAxisUndefined", f"{name}: axis {label!r} is given twice", label)
        done.add(axis)
        if name == "SCALEAXES":
            size[axis] = max(1, round(size[axis] * _positive(value, name)))
        elif name in ("SCALESIZE", "SIZE"):
            n = _positive(value, name)
            if not float(n).is_integer():
                raise OGCError("InvalidScaleFactor", f"{name}: {label}({value}) is not a whole number", label)
            size[axis] = int(n)
        elif name == "SCALEEXTENT":
            parts = value.split(":")
            try:
                lo, hi = (float(p) for p in parts)
            except ValueError:
                raise OGCError("InvalidExtent", f"{name}: {label}({value}) is not low:high", label) from None
            if not (lo.is_integer() and hi.is_integer()) or lo > hi:
                raise OGCError("InvalidExtent", f"{name}: {label}({value}) needs whole numbers with low <= high",
                               label)
            size[axis] = int(hi - lo) + 1
        else:                                           # RESOLUTION: cell size in CRS units
            extent = grid.bounds[axis + 2] - grid.bounds[axis]
            size[axis] = max(1, round(extent / _positive(value, name)))
    return size[0], size[1]


def _positive(text: str, name: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise OGCError("InvalidScaleFactor", f"{name}: {text!r} is not a number above 0", name.lower())
    return value


def range_subset(raw: str | None, fields: tuple[Field, ...]) -> tuple[int, ...] | None:
    """RANGESUBSET: field names (or band names, or 1-based band numbers) and intervals a:b, in the
    order asked."""
    if raw is None or not raw.strip():
        return None

    def index(token: str) -> int:
        token = token.strip()
        for i, f in enumerate(fields):
            if token in (f.name, f.band):
                return i
        if token.isdigit() and 1 <= int(token) <= len(fields):
            return int(token) - 1
        raise OGCError("NoSuchField", f"RANGESUBSET: there is no field {token!r} (fields: "
                       f"{', '.join(f.name for f in fields)})", token)

    bands: list[int] = []
    for item in raw.split(","):
        if ":" in item:
            first, last = item.split(":", 1)
            a, b = index(first), index(last)
            if a > b:
                raise OGCError("IllegalFieldSequence", f"RANGESUBSET: {item.strip()!r} runs backwards", first.strip())
            bands.extend(range(a, b + 1))
        else:
            bands.append(index(item))
    return tuple(bands)


def interpolation(kvp: KVP, *axes: Axes) -> Resampling:
    """The engine's resampling for INTERPOLATION (and INTERPOLATIONPERAXIS, one method for all)."""
    methods = []
    raw = (kvp.get("INTERPOLATION") or "").strip()
    if raw:
        methods.append(("interpolation", raw))
    per_axis = (kvp.get("INTERPOLATIONPERAXIS") or "").strip()
    for item in filter(None, (p.strip() for p in per_axis.split(";"))):
        label, _, uri = item.partition(",")
        if not uri.strip() or grid_axis(label.strip(), *axes) is None:
            raise OGCError("InvalidParameterValue", f"INTERPOLATIONPERAXIS: {item!r} is not axis,method",
                           "interpolationPerAxis")
        methods.append(("interpolationPerAxis", uri.strip()))
    found = set()
    for locator, uri in methods:
        method = interpolation_of(uri)
        if method is None:
            raise OGCError("InterpolationMethodNotSupported", f"interpolation {uri!r} is not supported "
                           f"({', '.join(INTERPOLATIONS)})", locator)
        found.add(method)
    if len(found) > 1:
        raise OGCError("InterpolationMethodNotSupported", "one interpolation method for all axes, please",
                       "interpolationPerAxis")
    return found.pop() if found else Resampling.NEAREST


# --- GetCoverage: encoding ---------------------------------------------------------------------------------

# the GeoTIFF extension's words for the engine's compressions
_COMPRESSION = {"none": Compression.NONE, "packbits": Compression.PACKBITS, "lzw": Compression.LZW,
                "deflate": Compression.DEFLATE, "jpeg": Compression.JPEG, "huffman": Compression.CCITTRLE}
_PREDICTOR = {"none": 1, "horizontal": 2, "floatingpoint": 3}


def geotiff_options(kvp: KVP) -> dict:
    """rasterio creation options from the GeoTIFF extension's GEOTIFF:* parameters."""
    opts: dict = {}
    raw = (kvp.get("GEOTIFF:COMPRESSION") or "").strip()
    if raw:
        if raw.lower() not in _COMPRESSION:
            raise OGCError("InvalidParameterValue", f"GEOTIFF:COMPRESSION={raw!r} (None, PackBits, LZW, Deflate, "
                           "JPEG, Huffman)", "geotiff:compression")
        opts["compress"] = _COMPRESSION[raw.lower()].gdal
    raw = (kvp.get("GEOTIFF:JPEG_QUALITY") or "").strip()
    if raw:
        q = kvp.integer("GEOTIFF:JPEG_QUALITY", lo=1)
        if q > 100:
            raise OGCError("InvalidParameterValue", "GEOTIFF:JPEG_QUALITY is 1 to 100", "geotiff:jpeg_quality")
        opts["jpeg_quality"] = q
    raw = (kvp.get("GEOTIFF:PREDICTOR") or "").strip()
    if raw:
        if raw.lower() not in _PREDICTOR:
            raise OGCError("InvalidParameterValue", f"GEOTIFF:PREDICTOR={raw!r} (None, Horizontal, FloatingPoint)",
                           "geotiff:predictor")
        opts["predictor"] = _PREDICTOR[raw.lower()]
    raw = (kvp.get("GEOTIFF:INTERLEAVE") or "").strip()
    if raw:
        if raw.lower() not in ("pixel", "band"):
            raise OGCError("InvalidParameterValue", f"GEOTIFF:INTERLEAVE={raw!r} (Pixel, Band)", "geotiff:interleave")
        opts["interleave"] = raw.lower()
    if kvp.flag("GEOTIFF:TILING", False):
        opts["tiled"] = True
    for key, opt in (("GEOTIFF:TILEWIDTH", "blockxsize"), ("GEOTIFF:TILEHEIGHT", "blockysize")):
        if (kvp.get(key) or "").strip():
            n = kvp.integer(key, lo=16)
            if n % 16:
                raise OGCError("InvalidParameterValue", f"{key} must be a multiple of 16", key.lower())
            opts[opt] = n
            opts["tiled"] = True
    return opts


def encode_tiff(raster: Raster, opts: dict) -> bytes:
    """The GeoTIFF of a raster: the engine's encoder, or with the GEOTIFF:* options when given."""
    if not opts:
        return geotiff(raster)
    data = raster.data
    bands, rows, cols = data.shape
    dtype = data.dtype
    compress = opts.get("compress")
    if compress == "JPEG" and (dtype != np.uint8 or bands not in (1, 3)):
        raise OGCError("InvalidParameterValue", "JPEG compression needs 8-bit data with 1 or 3 bands",
                       "geotiff:compression")
    if compress == "CCITTRLE":
        raise OGCError("InvalidParameterValue", "Huffman (CCITT) compression is for 1-bit data only",
                       "geotiff:compression")
    if opts.get("predictor") == 3 and dtype.kind != "f":
        raise OGCError("InvalidParameterValue", "the FloatingPoint predictor needs floating-point data",
                       "geotiff:predictor")
    profile = {"driver": "GTiff", "width": cols, "height": rows, "count": bands, "dtype": dtype.name,
               "crs": raster.grid.crs, "transform": raster.grid.transform}
    for key, value in opts.items():
        if value is not None:
            profile[key] = value
    if opts.get("tiled"):
        profile.setdefault("blockxsize", 256)
        profile.setdefault("blockysize", 256)
    nodata = raster.nodata
    if nodata is not None and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if not (float(nodata).is_integer() and info.min <= nodata <= info.max):
            nodata = None
    valid = raster.valid
    if nodata is not None:
        profile["nodata"] = int(nodata) if dtype.kind in "iu" else nodata
    values = data.filled(0 if nodata is None else nodata)
    with rasterio.Env(GDAL_TIFF_INTERNAL_MASK=True), MemoryFile() as memfile:
        with memfile.open(**profile) as dst:
            dst.write(values)
            for i, name in enumerate(raster.band_names, start=1):
                dst.set_band_description(i, name)
            if nodata is None and not valid.all():
                dst.write_mask(np.where(valid, np.uint8(255), np.uint8(0)))
        return memfile.read()


def multipart(gml: str, tiff: bytes, filename: str) -> Response:
    """multipart/related: the GML coverage first (its rangeSet points at the second part), then the
    GeoTIFF (GMLCOV 09-146r2, multipart conformance class)."""
    boundary = "wcs-" + uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Type: application/gml+xml\r\nContent-ID: <GML-Part>\r\n\r\n"
            f"{gml}\r\n--{boundary}\r\nContent-Type: image/tiff\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{filename}>\r\nContent-Disposition: inline; filename=\"{filename}\"\r\n\r\n")
    body = head.encode("utf-8") + tiff + f"\r\n--{boundary}--\r\n".encode()
    mime = f'multipart/related; boundary="{boundary}"; type="application/gml+xml"; start="<GML-Part>"'
    return Response(body, content_type=mime)


# --- GetCoverage -------------------------------------------------------------------------------------

def get_coverage(kvp: KVP, ep) -> Response:
    ids = _coverage_ids(kvp)
    if len(ids) != 1:
        raise OGCError("InvalidParameterValue", "GetCoverage takes exactly one COVERAGEID", "coverageId")
    cov = _coverage_of(ep, ids[0])
    fmt = (kvp.get("FORMAT") or "").strip()
    if fmt and fmt.lower() not in FORMATS:
        raise OGCError("InvalidParameterValue", f"FORMAT={fmt!r} is not offered ({', '.join(FORMATS)})", "format")
    media = (kvp.get("MEDIATYPE") or "").strip()
    if media and media.lower() != MULTIPART:
        raise OGCError("InvalidParameterValue", f"MEDIATYPE={media!r}: only {MULTIPART} is defined", "mediaType")

    supported = supported_crs(ep)
    native = axes_of(native_uri(cov))
    subsets = parse_subsets(kvp)
    subset_crs = {canonical_crs(s.crs) or s.crs for s in subsets if s.crs}
    if len(subset_crs) > 1:
        raise OGCError("InvalidParameterValue", "the SUBSETs name different CRSs", "subset")
    if subset_crs and not (kvp.get("SUBSETTINGCRS") or "").strip():
        kvp = KVP([*((k, v) for k, vs in kvp.all.items() for v in vs), ("SUBSETTINGCRS", subset_crs.pop())])
    sub = _crs_param(kvp, "SUBSETTINGCRS", "SubsettingCrs-NotSupported", supported, native.uri)
    out = _crs_param(kvp, "OUTPUTCRS", "OutputCrs-NotSupported", supported, native.uri)

    trims: dict[int, Trim] = {}
    time: TimeWindow | None = None
    dims: dict[str, tuple] = {}
    seen: set[str] = set()
    for s in subsets:
        if s.label in seen:
            raise OGCError("InvalidAxisLabel", f"axis {s.label!r} is subset twice", s.label)
        seen.add(s.label)
        if s.label.lower() in TIME_AXES and cov.layer.times:
            if time is not None:
                raise OGCError("InvalidAxisLabel", "the time axis is subset twice", s.label)
            time = _time_request(cov, s)
            continue
        axis = sub.axis_of(s.label)
        dim = cov.layer.dimension(s.label) if axis is None else None
        if dim is not None:
            if dim.name in dims:
                raise OGCError("InvalidAxisLabel", f"the {dim.name} axis is subset twice", s.label)
            dims[dim.name] = subset_values(dim, s.low, s.high, s.is_slice, s.label)
            continue
        if axis is None:
            extra = "".join(f", {d}" for d in (["time"] if cov.layer.times else [])
                            + [d.name for d in cov.layer.dimensions])
            raise OGCError("InvalidAxisLabel", f"{s.label!r} is not an axis of {cov.id} in {sub.uri} "
                           f"({' '.join(sub.labels)}{extra})", s.label)
        if axis in trims:
            raise OGCError("InvalidAxisLabel", f"axis {s.label!r} is subset twice", s.label)
        low = None if s.low is None else _number(s.low, s.label)
        high = None if s.high is None else _number(s.high, s.label)
        trims[axis] = Trim(low, high, s.is_slice, s.label)

    grid = target_grid(cov, native, sub, out, trims)
    width, height = scaled_size(kvp, grid, out, native, sub)
    grid = Grid(grid.crs, grid.bounds, width, height)
    limits = cov.service.info.limits
    if width > limits.max_image_width or height > limits.max_image_height:
        raise OGCError("InvalidParameterValue", f"the coverage asked for is {width}x{height} pixels; this service "
                       f"sends at most {limits.max_image_width}x{limits.max_image_height}: trim it with SUBSET "
                       "or scale it with SCALESIZE/SCALEFACTOR", "subset")
    fields = fields_of(cov)
    bands = range_subset(kvp.get("RANGESUBSET"), fields)
    resampling = interpolation(kvp, out, native, sub)
    opts = geotiff_options(kvp)
    try:
        raster = read(cov, grid, bands=bands, resampling=resampling, time=time, time_locator="time",
                      dimensions=dims)
    except OGCError as exc:
        if exc.code == "InvalidDimensionValue":
            raise OGCError("InvalidSubsetting", exc.message, "time") from None
        raise
    tiff = encode_tiff(raster, opts)
    filename = f"{cov.id}.tif"
    if media:
        chosen = fields if bands is None else tuple(fields[b] for b in bands)
        gml = render("wcs20_coverage.xml", id=gml_id(cov.id), domain=domain(out, grid), fields=chosen,
                     href=f"cid:{filename}")
        return multipart(gml, tiff, filename)
    return Response(tiff, content_type="image/tiff",
                    headers={"Content-Disposition": f'inline; filename="{filename}"'})


# --- XML (POST) requests ------------------------------------------------------------------------------

def _local(el) -> str:
    return etree.QName(el).localname if isinstance(el.tag, str) else ""


def _text(el) -> str:
    return (el.text or "").strip() if el is not None else ""


def _children(el, name: str) -> list:
    return [c for c in el if _local(c) == name]


def kvp_from_xml(root) -> KVP:
    """The KVP of a WCS 2.0 XML request (GetCapabilities, DescribeCoverage, GetCoverage with the
    extensions' elements inside wcs:Extension)."""
    qname = etree.QName(root)
    if qname.namespace != WCS_NS:
        raise OGCError("InvalidEncodingSyntax", f"{qname.localname} is not a WCS 2.0 request element "
                       f"(namespace {WCS_NS})", "request", status=400)
    name = qname.localname
    pairs = [("SERVICE", root.get("service") or "WCS"), ("REQUEST", name)]
    if root.get("version"):
        pairs.append(("VERSION", root.get("version")))
    if name == "GetCapabilities":
        versions = [_text(v) for v in root.iter(f"{{{OWS_NS}}}Version")]
        if versions:
            pairs.append(("ACCEPTVERSIONS", ",".join(versions)))
        sections = [_text(s) for s in root.iter(f"{{{OWS_NS}}}Section")]
        if sections:
            pairs.append(("SECTIONS", ",".join(sections)))
        if root.get("updateSequence"):
            pairs.append(("UPDATESEQUENCE", root.get("updateSequence")))
        return KVP(pairs)
    ids = [_text(c) for c in _children(root, "CoverageId")]
    if ids:
        pairs.append(("COVERAGEID", ",".join(ids)))
    if name != "GetCoverage":
        return KVP(pairs)
    for el in root:
        local = _local(el)
        if local == "DimensionTrim":
            dim = _text(next(iter(_children(el, "Dimension")), None))
            low = _text(next(iter(_children(el, "TrimLow")), None)) or "*"
            high = _text(next(iter(_children(el, "TrimHigh")), None)) or "*"
            pairs.append(("SUBSET", f"{dim}({low},{high})"))
        elif local == "DimensionSlice":
            dim = _text(next(iter(_children(el, "Dimension")), None))
            pairs.append(("SUBSET", f"{dim}({_text(next(iter(_children(el, 'SlicePoint')), None))})"))
        elif local == "format":
            pairs.append(("FORMAT", _text(el)))
        elif local == "mediaType":
            pairs.append(("MEDIATYPE", _text(el)))
        elif local == "Extension":
            pairs.extend(_extension_pairs(el))
    return KVP(pairs)


def _extension_pairs(ext) -> list[tuple[str, str]]:
    pairs = []
    for el in ext.iter():
        local = _local(el)
        if local in ("subsettingCrs", "outputCrs"):
            pairs.append((local.upper(), _text(el)))
        elif local == "ScaleByFactor":
            pairs.append(("SCALEFACTOR", _text(next(iter(_children(el, "scaleFactor")), None))))
        elif local in ("ScaleAxesByFactor", "ScaleToSize", "ScaleToExtent"):
            items = []
            for axis in el:
                label = _text(next(iter(_children(axis, "axis")), None))
                if local == "ScaleAxesByFactor":
                    value = _text(next(iter(_children(axis, "scaleFactor")), None))
                elif local == "ScaleToSize":
                    value = _text(next(iter(_children(axis, "targetSize")), None))
                else:
                    value = (f"{_text(next(iter(_children(axis, 'low')), None))}:"
                             f"{_text(next(iter(_children(axis, 'high')), None))}")
                items.append(f"{label}({value})")
            key = {"ScaleAxesByFactor": "SCALEAXES", "ScaleToSize": "SCALESIZE", "ScaleToExtent": "SCALEEXTENT"}
            pairs.append((key[local], ",".join(items)))
        elif local == "RangeSubset":
            items = []
            for item in _children(el, "RangeItem"):
                for part in item:
                    if _local(part) == "RangeComponent":
                        items.append(_text(part))
                    elif _local(part) == "RangeInterval":
                        items.append(f"{_text(next(iter(_children(part, 'startComponent')), None))}:"
                                     f"{_text(next(iter(_children(part, 'endComponent')), None))}")
            pairs.append(("RANGESUBSET", ",".join(items)))
        elif local == "Interpolation":
            glob = _children(el, "globalInterpolation")
            if glob:
                pairs.append(("INTERPOLATION", _text(glob[0])))
            per_axis = [f"{_text(next(iter(_children(p, 'axis')), None))},"
                        f"{_text(next(iter(_children(p, 'interpolationMethod')), None))}"
                        for p in _children(el, "InterpolationPerAxis")]
            if per_axis:
                pairs.append(("INTERPOLATIONPERAXIS", ";".join(per_axis)))
        elif local.lower() in ("compression", "jpeg_quality", "predictor", "interleave", "tiling",
                               "tileheight", "tilewidth") and "geotiff" in (etree.QName(el).namespace or ""):
            pairs.append((f"GEOTIFF:{local.upper()}", _text(el)))
    return pairs
