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

import re

from flask import Response

from ..engine import Grid
from ..gateway import gateway
from ..templates import render
from .common import KVP, OGCError
from .common import number as num
from .coverage import (
    Coverage,
    CoverageRequest,
    coverage_in,
    coverage_raster,
    geotiff,
    multipart_response,
    tiff_response,
    update_sequence,
)
from .crs import CRS84_URI, Axes, axes_of, epsg_uri
from .crs import uri as crs_uri
from .wcs20_params import (
    INTERPOLATIONS,
    check_tiff_options,
    fields_of,
    geotiff_options,
    interpolation,
    range_subset,
    scaled_size,
)
from .wcs20_subsets import axis_subsets, parse_subsets, target_grid
from .wcs20_xml import kvp_from_xml

__all__ = ["EMPTY", "OPERATIONS", "UNSUPPORTED", "exception", "kvp_from_xml"]

VERSION = "2.0.1"

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

# OWS 2.0 (06-121r9 table 28), WCS 2.0.1 core and its extensions (as GeoServer answers them)
STATUS = {"NoSuchCoverage": 404, "emptyCoverageIdList": 404, "InvalidAxisLabel": 404, "InvalidSubsetting": 404,
          "MissingParameterValue": 400, "InvalidParameterValue": 400, "InvalidEncodingSyntax": 400,
          "VersionNegotiationFailed": 400, "InvalidUpdateSequence": 400, "OperationNotSupported": 501,
          "OptionNotSupported": 501, "NoApplicableCode": 500, "NotACrs": 404, "SubsettingCrs-NotSupported": 404,
          "OutputCrs-NotSupported": 404, "InvalidScaleFactor": 404, "InvalidExtent": 404,
          "ScaleAxisUndefined": 404, "InvalidCoverageType": 404, "InterpolationMethodNotSupported": 404,
          "NoSuchField": 404, "IllegalFieldSequence": 400}
XML_MIME = "application/xml"         # OWS 2.0; the XML declaration names UTF-8


# --- the dispatcher's interface (wcs.py) -----------------------------------------------------------

EMPTY = None                         # an endpoint without coverages: each operation says so itself
UNSUPPORTED = (None, 501)            # OperationNotSupported: locator (None: the operation asked), status


def exception(exc: OGCError) -> Response:
    """An OWS 2.0 ExceptionReport, with the HTTP status of its code."""
    code = exc.code or "NoApplicableCode"
    if code == "InvalidDimensionValue":          # a WMS/WCS 1.x code from the shared time parsing
        code = "InvalidSubsetting"
    status = exc.status if exc.status and exc.status != 200 else STATUS.get(code, 400)
    body = render("wcs20_exception.xml", code=code, locator=exc.locator, message=exc.message)
    return Response(body, status=status, content_type=XML_MIME)


def native_uri(cov: Coverage) -> str:
    found = epsg_uri(cov.grid.crs)
    if found is None:
        raise OGCError("NoApplicableCode", f"coverage {cov.id} has a CRS without an EPSG code", status=500)
    return found


def supported_crs(ep) -> list[str]:
    """crsSupported: every coverage's native CRS and configured OGC CRSs, then CRS84."""
    uris: list[str] = []
    for cov in ep.coverages.values():
        for uri in [native_uri(cov)] + [crs_uri(c) for c in cov.layer.crs]:
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


# --- GetCapabilities -----------------------------------------------------------------------------------

def get_capabilities(kvp: KVP, ep) -> Response:
    if not ep.coverages:
        raise OGCError("NoApplicableCode", "there is no such service", "service", status=404)
    sequence = update_sequence(ep)
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


def _crs_param(kvp: KVP, name: str, code: str, supported: list[str], fallback: str) -> Axes:
    raw = kvp.get(name)
    if raw is None or not raw.strip():
        return axes_of(fallback)
    found = crs_uri(raw)
    if found is None or found not in supported:
        raise OGCError(code, f"{name}={raw} is not among the supported CRSs ({', '.join(supported)})",
                       name.lower())
    try:
        return axes_of(found)
    except OGCError as exc:
        raise OGCError(code, exc.message, name.lower()) from None


# --- GetCoverage -------------------------------------------------------------------------------------

def get_coverage(kvp: KVP, ep) -> Response:
    ids = _coverage_ids(kvp)
    if len(ids) != 1:
        raise OGCError("InvalidParameterValue", "GetCoverage takes exactly one COVERAGEID", "coverageId")
    cov = coverage_in(ep, ids[0], ids[0])
    fmt = (kvp.get("FORMAT") or "").strip()
    if fmt and fmt.lower() not in FORMATS:
        raise OGCError("InvalidParameterValue", f"FORMAT={fmt!r} is not offered ({', '.join(FORMATS)})", "format")
    media = (kvp.get("MEDIATYPE") or "").strip()
    if media and media.lower() != MULTIPART:
        raise OGCError("InvalidParameterValue", f"MEDIATYPE={media!r}: only {MULTIPART} is defined", "mediaType")

    supported = supported_crs(ep)
    native = axes_of(native_uri(cov))
    subsets = parse_subsets(kvp)
    subset_crs = {crs_uri(s.crs) or s.crs for s in subsets if s.crs}
    if len(subset_crs) > 1:
        raise OGCError("InvalidParameterValue", "the SUBSETs name different CRSs", "subset")
    if subset_crs and not (kvp.get("SUBSETTINGCRS") or "").strip():
        kvp = KVP([*((k, v) for k, vs in kvp.all.items() for v in vs), ("SUBSETTINGCRS", subset_crs.pop())])
    sub = _crs_param(kvp, "SUBSETTINGCRS", "SubsettingCrs-NotSupported", supported, native.uri)
    out = _crs_param(kvp, "OUTPUTCRS", "OutputCrs-NotSupported", supported, native.uri)

    trims, time, dims = axis_subsets(subsets, cov, sub)
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
    req = CoverageRequest(cov, grid, bands=bands, resampling=resampling, time=time, time_locator="time",
                          dimensions=dims, tiff_options=opts)
    try:
        raster = coverage_raster(req)
    except OGCError as exc:
        if exc.code == "InvalidDimensionValue":
            raise OGCError("InvalidSubsetting", exc.message, "time") from None
        raise
    check_tiff_options(raster, opts)
    tiff = geotiff(raster, opts)
    if media:
        chosen = fields if bands is None else tuple(fields[b] for b in bands)
        gml = render("wcs20_coverage.xml", id=gml_id(cov.id), domain=domain(out, grid), fields=chosen,
                     href=f"cid:{req.filename}")
        return multipart_response(gml, "application/gml+xml", "GML-Part", tiff, req.filename, req.filename,
                                  "application/gml+xml")
    return tiff_response(tiff, req.filename)


OPERATIONS = {"getcapabilities": get_capabilities, "describecoverage": describe_coverage,
              "getcoverage": get_coverage}
