"""WCS 1.0.0 (OGC 03-065r6): GetCapabilities, DescribeCoverage and GetCoverage over KVP GET.

The dispatcher (wcs.py) picks this module, checks SERVICE and VERSION, and hands over the KVP; the
coverage's grid and values come from coverage.py. Rules of this version that the others do not share:

- coordinates are always x/y (lon/lat for EPSG:4326: BBOX, lonLatEnvelope, origins, offsets);
- CRS is the CRS of BBOX, RESPONSE_CRS (default: CRS) the CRS of the result, whose grid is the BBOX
  taken into RESPONSE_CRS and cut into WIDTH x HEIGHT pixels or RESX x RESY cells;
- the range subset is an axis named by its AxisDescription (`BAND=1,3` or `BAND=1/3`, 1-based);
  a multidimensional coverage describes its dimensions as further axes (elevation, variable, or the
  dimension's name), taken as `<axis>=value` (the standard PARAMETER) or ELEVATION / DIM_<NAME>;
- the coverage comes back directly as a GeoTIFF (image/tiff), not multipart;
- exceptions are `ServiceExceptionReport version="1.2.0"` in the ogc namespace, sent with
  HTTP 200 and the Content-Type `application/vnd.ogc.se_xml` (which OWSLib compares literally).

XML requests (POST) are not offered, and the capabilities advertise GET only.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from flask import Response

from ..engine import Resampling, TimeWindow, reproject_bounds
from ..gateway import gateway
from ..templates import render
from .common import KVP, OGCError, check_update_sequence, number, numbers, parse_time
from .coverage import (
    Coverage,
    CoverageRequest,
    coverage_in,
    coverage_raster,
    dimension_parameters,
    geotiff,
    grid_for,
    resampling_of,
    tiff_response,
    update_sequence,
)
from .crs import epsg_code as _epsg_code
from .crs import parse as parse_crs

VERSION = "1.0.0"
EXCEPTION_MIME = "application/vnd.ogc.se_xml"
CAPABILITIES_MIME = "text/xml; charset=utf-8"
# FORMAT values accepted (case-insensitive); `GeoTIFF` is the one advertised (an xs:Name, as the
# schema's CodeListType wants: `image/tiff` would be invalid there).
FORMAT = "GeoTIFF"
FORMATS = {"geotiff", "gtiff", "tiff", "tif", "image/tiff", "image/geotiff"}
INTERPOLATIONS = ("nearest neighbor", "bilinear", "bicubic")
SECTIONS = {"/": None, "/wcs_capabilities/service": "Service", "/wcs_capabilities/capability": "Capability",
            "/wcs_capabilities/contentmetadata": "ContentMetadata"}
# Codes of other versions' vocabularies that reach this renderer, as WCS 1.0 codes.
CODES = {"InvalidDimensionValue": "InvalidParameterValue", "InvalidSubsetting": "InvalidParameterValue",
         "NoSuchCoverage": "CoverageNotDefined"}
BAND_KEYS = ("BAND", "BANDS")
# GetCoverage's own parameters: a dimension of one of these names is taken as DIM_<NAME> only.
PARAMETERS = ("SERVICE", "VERSION", "REQUEST", "COVERAGE", "CRS", "RESPONSE_CRS", "BBOX", "TIME", "WIDTH",
              "HEIGHT", "DEPTH", "RESX", "RESY", "RESZ", "INTERPOLATION", "FORMAT", "EXCEPTIONS") + BAND_KEYS


# --- the dispatcher's interface -----------------------------------------------------------------

EMPTY = ("CoverageNotDefined", "this endpoint has no coverage: there is no such service", "COVERAGE", 200)
UNSUPPORTED = ("REQUEST", 200)


def exception(exc: OGCError) -> Response:
    """The 1.2.0 ServiceExceptionReport; HTTP 200 (500 only for a server failure)."""
    code = CODES.get(exc.code, exc.code) if exc.code else "NoApplicableCode"
    body = render("wcs10_exception.xml", code=code, locator=exc.locator, message=exc.message)
    status = 500 if code == "NoApplicableCode" and (exc.status or 200) >= 500 else 200
    return Response(body.encode("utf-8"), status=status, content_type=EXCEPTION_MIME)


def kvp_from_xml(root) -> KVP:
    raise OGCError("OperationNotSupported", "this server offers WCS 1.0.0 over HTTP GET (KVP) only",
                   "request")


# --- what the documents show of a coverage ------------------------------------------------------

def _num(value: float) -> str:
    """A coordinate, exactly (shortest round-trip form)."""
    return repr(float(value))


@dataclass(frozen=True)
class Offering:
    """A coverage as the WCS 1.0 documents write it (every number already a string)."""

    id: str
    title: str
    abstract: str
    keywords: tuple[str, ...]
    lonlat: tuple[str, str]              # "west south", "east north"
    times: tuple[str, ...]
    native: str | None                   # EPSG code of the native grid
    envelope: tuple[str, str]            # native outer edges, "xmin ymin", "xmax ymax"
    high: str                            # "W-1 H-1"
    origin: str                          # centre of the upper-left pixel
    offsets: tuple[str, str]
    bands: tuple[tuple[int, str], ...]   # (1-based number, name)
    nodata: str | None
    crs: tuple[str, ...]
    axes: tuple[tuple[str, str, tuple[str, ...], str], ...] = ()   # (name, label, values, default)


def offering(cov: Coverage) -> Offering:
    layer, grid = cov.layer, cov.grid
    w, s, e, n = layer.geographic
    xmin, ymin, xmax, ymax = grid.bounds
    rx, ry = grid.res
    return Offering(
        id=cov.id, title=layer.title or cov.id, abstract=layer.abstract or "", keywords=tuple(layer.keywords),
        lonlat=(f"{_num(w)} {_num(s)}", f"{_num(e)} {_num(n)}"), times=tuple(layer.times),
        native=_epsg_code(grid.crs),
        envelope=(f"{_num(xmin)} {_num(ymin)}", f"{_num(xmax)} {_num(ymax)}"),
        high=f"{grid.width - 1} {grid.height - 1}",
        origin=f"{_num(xmin + rx / 2)} {_num(ymax - ry / 2)}",
        offsets=(f"{_num(rx)} 0", f"0 {_num(-ry)}"),
        bands=tuple((i + 1, name) for i, name in enumerate(cov.band_names)),
        nodata=None if cov.nodata is None or (isinstance(cov.nodata, float) and math.isnan(cov.nodata))
        else number(cov.nodata),
        crs=tuple(layer.crs),
        axes=tuple((d.name, d.name + (f" ({d.unit_symbol})" if d.unit_symbol else ""), d.values, d.default)
                   for d in layer.dimensions))


def _single(ep) -> Coverage | None:
    """The coverage of a service's own WCS (None for the combined /ogc/wcs)."""
    if ep.url.endswith("/ImageServer/WCSServer?") and len(ep.coverages) == 1:
        return next(iter(ep.coverages.values()))
    return None


def _service(ep) -> dict:
    server = gateway().config.server
    single = _single(ep)
    keywords = tuple(server.keywords) + (tuple(single.layer.keywords) if single else ())

    def code_list(text: str) -> str:
        return "NONE" if not text.strip() or text.strip().lower() == "none" else text.strip()

    return dict(name="WCS",
                label=(single.layer.title or single.id) if single else server.title,
                description=(single.layer.abstract or server.abstract) if single else server.abstract,
                keywords=tuple(dict.fromkeys(k for k in keywords if k)),
                contact=server.contact,
                fees=code_list(server.fees), access_constraints=code_list(server.access_constraints))


# --- GetCapabilities ----------------------------------------------------------------------------

def get_capabilities(kvp: KVP, ep) -> Response:
    raw_section = (kvp.get("SECTION") or "").strip() or "/"
    if raw_section.lower() not in SECTIONS:
        raise OGCError("InvalidParameterValue", f"SECTION={raw_section!r} is not one of /, "
                       "/WCS_Capabilities/Service, /WCS_Capabilities/Capability, "
                       "/WCS_Capabilities/ContentMetadata", "SECTION")
    sequence = update_sequence(ep)
    check_update_sequence(kvp, sequence)
    body = render("wcs10_capabilities.xml", section=SECTIONS[raw_section.lower()], update_sequence=sequence,
                  url=ep.url, service=_service(ep), offerings=[offering(c) for c in ep.coverages.values()],
                  exception_format=EXCEPTION_MIME)
    return Response(body, content_type=CAPABILITIES_MIME)


# --- DescribeCoverage ---------------------------------------------------------------------------

def describe_coverage(kvp: KVP, ep) -> Response:
    raw = kvp.get("COVERAGE")
    names = [n.strip() for n in raw.split(",") if n.strip()] if raw and raw.strip() else list(ep.coverages)
    coverages = [coverage_in(ep, name, "COVERAGE") for name in dict.fromkeys(names)]
    body = render("wcs10_describe_coverage.xml", update_sequence=update_sequence(ep),
                  offerings=[offering(c) for c in coverages], format=FORMAT, interpolations=INTERPOLATIONS)
    return Response(body, content_type=CAPABILITIES_MIME)


# --- GetCoverage --------------------------------------------------------------------------------

def _crs(cov: Coverage, code: str, locator: str):
    """A CRS the coverage is offered in (EPSG:n as advertised; other spellings of the same EPSG code,
    such as CRS:84 or a URN, are read in x/y order too, as WCS 1.0 does)."""
    crs = parse_crs(code, "InvalidParameterValue", f"{locator}={code!r} is not a known CRS", locator)
    if _epsg_code(crs) not in cov.layer.crs:
        raise OGCError("InvalidParameterValue", f"{locator}={code!r} is not offered for {cov.id} "
                       f"({', '.join(cov.layer.crs)})", locator)
    return crs


def _format(kvp: KVP) -> str:
    raw = kvp.required("FORMAT").strip()
    if raw.lower() not in FORMATS:
        raise OGCError("InvalidFormat", f"FORMAT={raw!r} is not offered ({FORMAT})", "FORMAT")
    return FORMAT


def _time(kvp: KVP) -> TimeWindow | None:
    raw = kvp.get("TIME")
    return parse_time(raw, "TIME") if raw and raw.strip() else None


def _bbox(kvp: KVP, cov: Coverage, crs, time_given: bool) -> tuple[float, float, float, float]:
    raw = kvp.get("BBOX")
    if raw is None or not raw.strip():
        if not time_given:
            raise OGCError("MissingParameterValue", "give BBOX (or TIME, for the whole extent)", "BBOX")
        code = _epsg_code(crs)
        box = next((b.bounds for b in cov.layer.bboxes if b.crs == code), None)
        if box is None:
            raise OGCError("InvalidParameterValue", "the coverage has no extent in this CRS: give BBOX", "BBOX")
        return box
    count = len(raw.split(","))
    values = numbers(raw, "BBOX", 6 if count == 6 else 4)       # minz,maxz of a 3-D box are ignored
    x0, y0, x1, y1 = values[:4]
    if not (x0 < x1 and y0 < y1):
        raise OGCError("InvalidParameterValue", "BBOX minimum must be less than its maximum", "BBOX")
    return x0, y0, x1, y1


def _positive(kvp: KVP, name: str) -> float:
    raw = kvp.required(name)
    try:
        value = float(raw.strip())
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise OGCError("InvalidParameterValue", f"{name}={raw!r} is not a positive number", name)
    return value


def _size(kvp: KVP) -> tuple[tuple[int, int] | None, tuple[float, float] | None]:
    def given(name: str) -> bool:
        return bool((kvp.get(name) or "").strip())

    if given("WIDTH") or given("HEIGHT"):
        return (kvp.integer("WIDTH", lo=1), kvp.integer("HEIGHT", lo=1)), None
    if given("RESX") or given("RESY"):
        return None, (_positive(kvp, "RESX"), _positive(kvp, "RESY"))
    raise OGCError("MissingParameterValue", "give WIDTH and HEIGHT, or RESX and RESY", "WIDTH")


def _bands(kvp: KVP, cov: Coverage) -> tuple[int, ...] | None:
    """The range subset on the `Band` axis: 1-based numbers, single values and min/max[/res]
    intervals, comma-separated (`BAND=4,3,2`, `BAND=1/3`); None: every band."""
    key = next((k for k in BAND_KEYS if (kvp.get(k) or "").strip()), None)
    if key is None:
        return None
    raw, count = kvp.get(key).strip(), len(cov.band_names)
    bands: list[int] = []

    def band_number(text: str) -> int:
        try:
            value = float(text.strip())
        except ValueError:
            value = math.nan
        if not (value.is_integer() and 1 <= value <= count):
            raise OGCError("InvalidParameterValue", f"{key}={raw!r}: the Band axis has the values 1..{count}",
                           key)
        return int(value)

    for part in raw.split(","):
        if "/" in part:
            pieces = part.split("/")
            if len(pieces) not in (2, 3):
                raise OGCError("InvalidParameterValue", f"{key}={raw!r}: an interval is min/max[/res]", key)
            lo, hi = band_number(pieces[0]), band_number(pieces[1])
            step = band_number(pieces[2]) if len(pieces) == 3 else 1
            if lo > hi:
                raise OGCError("InvalidParameterValue", f"{key}={raw!r}: the interval's min is above its max",
                               key)
            bands.extend(range(lo, hi + 1, step))
        else:
            bands.append(band_number(part))
    return tuple(b - 1 for b in bands)


def _interpolation(kvp: KVP) -> Resampling:
    raw = kvp.get("INTERPOLATION")
    if raw and not raw.strip().lower().startswith("http"):
        raw = raw.replace("_", " ").replace("-", " ")
    return resampling_of(raw, "INTERPOLATION")


def get_coverage(kvp: KVP, ep) -> Response:
    name = kvp.required("COVERAGE").strip()
    cov = coverage_in(ep, name, "COVERAGE")
    _format(kvp)
    crs_code = kvp.required("CRS").strip()
    crs = _crs(cov, crs_code, "CRS")
    response_code = (kvp.get("RESPONSE_CRS") or "").strip()
    out_crs = _crs(cov, response_code, "RESPONSE_CRS") if response_code else crs
    time = _time(kvp)
    bbox = _bbox(kvp, cov, crs, time_given=bool((kvp.get("TIME") or "").strip()))
    size, resolution = _size(kvp)
    bands = _bands(kvp, cov)
    resampling = _interpolation(kvp)
    bounds = reproject_bounds(bbox, crs, out_crs) if out_crs != crs else bbox
    grid = grid_for(out_crs, bounds, size=size, resolution=resolution)
    limits = cov.service.info.limits
    if grid.width > limits.max_image_width or grid.height > limits.max_image_height:
        raise OGCError("InvalidParameterValue", f"the coverage would be {grid.width}x{grid.height} pixels; the "
                       f"maximum is {limits.max_image_width}x{limits.max_image_height}",
                       "WIDTH" if size else "RESX")
    req = CoverageRequest(cov, grid, bands=bands, resampling=resampling, time=time, time_locator="TIME",
                          dimensions=dimension_parameters(kvp, cov, own=PARAMETERS))
    return tiff_response(geotiff(coverage_raster(req)), req.filename)


OPERATIONS = {"getcapabilities": get_capabilities, "describecoverage": describe_coverage,
              "getcoverage": get_coverage}
