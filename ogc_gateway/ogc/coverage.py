"""A service as a WCS coverage: its native grid, bands and nodata, and the one way every WCS
version answers a GetCoverage: a version-neutral `CoverageRequest` -> the engine's ExportRequest
(native pixel type, no stretch, default time = latest) -> the engine's GeoTIFF writer -> a response
(the GeoTIFF itself, or multipart/related with the version's XML part first).

The WCS modules (wcs10, wcs11, wcs20) only parse their own request syntax, write their own
documents and map exceptions; the grid and the values come from here, so the versions cannot
disagree.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from flask import Response

from ..engine import (
    ExportRequest,
    Grid,
    ImageService,
    Raster,
    Resampling,
    TimeWindow,
    canonical_resampling,
    crs_from_ogc,
    epsg_of,
    reproject_bounds,
)
from ..engine import encode_raster as encode
from ..engine import export_raster as export
from ..facecache import face_cached
from .common import KVP, OGCError
from .layers import Layer, dimension_values, layer_of, select

# The resampling methods WCS offers (every version); the engine's table reads their names and URIs.
OFFERED = (Resampling.NEAREST, Resampling.BILINEAR, Resampling.CUBIC)


def interpolation_of(name: str) -> Resampling | None:
    """A WCS interpolation name or URI (1.0 token, 1.1 name, 2.0 URI; any case) as the engine's
    resampling; None if WCS does not offer it."""
    return canonical_resampling(name, OFFERED)

_MAX_CELLS = 1e9          # columns or rows a resolution may ask for before any size arithmetic


@dataclass(frozen=True)
class Coverage:
    layer: Layer
    grid: Grid                   # the native grid: the service extent at its finest cell size

    @property
    def service(self) -> ImageService:
        return self.layer.service

    @property
    def id(self) -> str:
        return self.layer.name

    @property
    def band_names(self) -> tuple[str, ...]:
        return self.service.info.band_names

    @property
    def nodata(self) -> float | None:
        return self.service.info.nodata

    @property
    def pixel_type(self) -> str:
        return self.service.info.pixel_type

    @property
    def dtype(self) -> str:
        return self.service.info.dtype


def coverage_of(service: ImageService) -> Coverage:
    """The coverage of a service, built once per service object (a catalog change makes a new one)."""
    return face_cached(service, "coverage", lambda: _coverage(service))


def _coverage(service: ImageService) -> Coverage:
    info = service.info
    xmin, ymin, xmax, ymax = info.extent
    rx, ry = info.cell_size
    width, height = max(1, round((xmax - xmin) / rx)), max(1, round((ymax - ymin) / ry))
    grid = Grid(info.crs, (xmin, ymax - height * ry, xmin + width * rx, ymax), width, height)
    layer = layer_of(service)
    return Coverage(layer, grid if epsg_of(info.crs) else named_grid(grid, layer))


def named_grid(grid: Grid, layer: Layer) -> Grid:
    """A grid a WCS document can name for a coverage whose CRS matches no EPSG code: the native
    grid reprojected into the layer's first advertised CRS (EPSG:4326 by default) at about the
    same number of pixels, over the part of the extent that exists there."""
    crs = crs_from_ogc(layer.crs[0] if layer.crs else "EPSG:4326")
    x0, y0, x1, y1 = reproject_bounds(grid.bounds, grid.crs, crs)
    res = math.sqrt((x1 - x0) * (y1 - y0) / (grid.width * grid.height))
    width, height = max(1, round((x1 - x0) / res)), max(1, round((y1 - y0) / res))
    return Grid(crs, (x0, y1 - height * res, x0 + width * res, y1), width, height)


def resampling_of(name: str | None, locator: str = "INTERPOLATION") -> Resampling:
    """An interpolation name or URI (case-insensitive) as the engine's resampling."""
    if name is None or not name.strip():
        return Resampling.NEAREST
    found = interpolation_of(name)
    if found is None:
        raise OGCError("InvalidParameterValue", f"interpolation {name!r} is not supported (nearest "
                       "neighbour, linear/bilinear or cubic)", locator)
    return found


def read(cov: Coverage, grid: Grid, *, bands: tuple[int, ...] | None = None,
         resampling: Resampling = Resampling.NEAREST, time: TimeWindow | None = None, time_locator: str = "TIME",
         dimensions: dict[str, tuple] | None = None) -> Raster:
    """The coverage's values on `grid` in the native pixel type: nearest neighbour at the native
    grid gives the source pixels themselves. No time means the latest one; a dimension not in
    `dimensions` (values by the layer's dimension name) its default."""
    if bands is not None and any(not 0 <= b < len(cov.band_names) for b in bands):
        raise OGCError("InvalidParameterValue", f"the coverage has bands 1..{len(cov.band_names)}", "BAND")
    selection = select(cov.layer, time, dimensions or {}, time_locator)
    return export(cov.service, ExportRequest(grid=grid, band_ids=bands, mosaic_rule=selection.rule,
                                             time=selection.time, resampling=resampling))


def dimension_parameters(kvp: KVP, cov: Coverage, own: tuple[str, ...] | None = None) -> dict[str, tuple]:
    """WCS 1.x dimension values given as KVP, as GeoServer takes them: ELEVATION or DIM_<NAME> (the
    WMS names); with `own` (the version's own parameter names), also the dimension's bare name
    unless it is one of them (WCS 1.0's `<axis>=value`)."""
    chosen = {}
    for dim in cov.layer.dimensions:
        keys = [dim.parameter] + ([dim.name.upper()] if own is not None and dim.name.upper() not in own else [])
        for key in keys:
            raw = kvp.get(key)
            if raw is not None and raw.strip():
                chosen[dim.name] = dimension_values(dim, raw, key)
                break
    return chosen


def grid_for(crs, bounds: tuple[float, float, float, float], *, size: tuple[int, int] | None = None,
             resolution: tuple[float, float] | None = None, locator: str = "BBOX") -> Grid:
    """A target grid from bounds and either a size or a resolution (sizes rounded to whole pixels,
    the far edges moved so the resolution is kept exactly)."""
    x0, y0, x1, y1 = bounds
    if not (x0 < x1 and y0 < y1):
        raise OGCError("InvalidParameterValue", "the bounding box is empty or inverted", locator)
    if size is not None:
        width, height = size
    elif resolution is not None:
        rx, ry = abs(resolution[0]), abs(resolution[1])
        if not (rx > 0 and ry > 0):
            raise OGCError("InvalidParameterValue", "resolutions must be positive", locator)
        columns, rows = (x1 - x0) / rx, (y1 - y0) / ry
        if not (columns < _MAX_CELLS and rows < _MAX_CELLS):     # before ceil: 1e-308 gives inf
            raise OGCError("InvalidParameterValue", f"the resolution gives {columns:.3g} x {rows:.3g} cells; "
                           "ask for a coarser resolution", locator)
        width, height = max(1, math.ceil(columns - 1e-9)), max(1, math.ceil(rows - 1e-9))
        x1, y0 = x0 + width * rx, y1 - height * ry
    else:
        raise OGCError("MissingParameterValue", "give a size or a resolution", locator)
    if width < 1 or height < 1:
        raise OGCError("InvalidParameterValue", "sizes must be at least 1", locator)
    return Grid(crs, (x0, y0, x1, y1), int(width), int(height))


def geotiff(raster: Raster, options: Mapping[str, object] | None = None) -> bytes:
    """A GeoTIFF of the values, with its georeferencing and GDAL_NODATA (`options`: the client's
    GeoTIFF creation options, WCS 2.0's GEOTIFF:*)."""
    return encode(raster, "tiff", tiff_options=options or None).data


@dataclass(frozen=True)
class CoverageRequest:
    """A GetCoverage of any WCS version, parsed: the coverage, the output grid, 0-based bands (None:
    all), the engine's resampling, the time and other dimensions asked for (None / absent: their
    defaults) and the GeoTIFF creation options the client chose (None: the writer's own)."""

    coverage: Coverage
    grid: Grid
    bands: tuple[int, ...] | None = None
    resampling: Resampling = Resampling.NEAREST
    time: TimeWindow | None = None
    time_locator: str = "TIME"
    dimensions: dict[str, tuple] = field(default_factory=dict)
    tiff_options: Mapping[str, object] | None = None

    @property
    def filename(self) -> str:
        return f"{self.coverage.id}.tif"


def coverage_raster(req: CoverageRequest) -> Raster:
    """The values a GetCoverage asks for."""
    return read(req.coverage, req.grid, bands=req.bands, resampling=req.resampling, time=req.time,
                time_locator=req.time_locator, dimensions=req.dimensions)


def tiff_response(tiff: bytes, filename: str) -> Response:
    """The GeoTIFF itself (WCS 1.0, WCS 2.0 without a multipart mediaType)."""
    return Response(tiff, content_type="image/tiff", headers={"Content-Disposition": f'inline; filename="{filename}"'})


def multipart_response(xml: str, xml_type: str, xml_id: str, tiff: bytes, tiff_id: str, filename: str,
                       root_type: str) -> Response:
    """multipart/related: the version's XML part first (its reference to `cid:<tiff_id>` names the
    second), then the GeoTIFF in binary (WCS 1.1 Coverages, GMLCOV multipart for WCS 2.0). The
    boundary is quoted: QGIS takes everything after "boundary=" up to the next '"' as it."""
    boundary = "wcs-" + uuid.uuid4().hex
    head = (f"--{boundary}\r\nContent-Type: {xml_type}\r\nContent-ID: <{xml_id}>\r\n\r\n"
            f"{xml}\r\n--{boundary}\r\nContent-Type: image/tiff\r\nContent-Transfer-Encoding: binary\r\n"
            f"Content-ID: <{tiff_id}>\r\nContent-Disposition: inline; filename=\"{filename}\"\r\n\r\n")
    body = head.encode("utf-8") + tiff + f"\r\n--{boundary}--\r\n".encode()
    return Response(body, content_type=f'multipart/related; boundary="{boundary}"; type="{root_type}"; '
                                       f'start="<{xml_id}>"')


def coverage_in(ep, identifier: str, locator: str) -> Coverage:
    """The coverage an endpoint offers under `identifier`; another is NoSuchCoverage (each version
    maps the code to its own)."""
    cov = ep.coverages.get(identifier.strip())
    if cov is None:
        raise OGCError("NoSuchCoverage", f"there is no coverage {identifier.strip()!r} (coverages: "
                       f"{', '.join(ep.coverages)})", locator)
    return cov


def update_sequence(ep) -> int:
    """The endpoint's update sequence: the latest catalog change of its coverages (0: none)."""
    return max((c.service.catalog.last_change() for c in ep.coverages.values()), default=0)


def time_window_iso(cov: Coverage) -> tuple[str, str] | None:
    """(first, last) item time as ISO 8601, for temporal domains."""
    times = cov.layer.times
    return (times[0], times[-1]) if times else None

