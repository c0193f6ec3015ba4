"""Tile matrix sets: the OGC TMS standard's grids (morecantile carries their definitions) and one
native set per service, as small frozen values the tile faces and the tile cache share.

Scale denominators are derived here from each matrix's cell size (0.28 mm pixels, metres per CRS
unit), never copied from rounded tables, so WebMercatorQuad reads 559082264.0287178 exactly and
clients recognise the well-known scale sets. Coordinates are kept in x/y (east, north) order; the
documents write them in the CRS's own axis order (`TileMatrixSet.inverted`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import morecantile
from pyproj import CRS as ProjCRS
from rasterio.crs import CRS

from .errors import InvalidParameter
from .grid import extent_in
from .requests import Grid

PIXEL_SIZE = 0.00028                                  # metres: the standardised rendering pixel
METRES_PER_DEGREE = 2 * math.pi * 6378137 / 360      # WMTS 1.0 annex E, for geographic CRSs
TILE_SIZE = 256
CRS84_URN = "urn:ogc:def:crs:OGC:1.3:CRS84"
WELL_KNOWN_SCALE_SETS = {
    "WebMercatorQuad": "urn:ogc:def:wkss:OGC:1.0:GoogleMapsCompatible",
    "WorldCRS84Quad": "urn:ogc:def:wkss:OGC:1.0:GoogleCRS84Quad",
}
STANDARD = ("WebMercatorQuad", "WorldCRS84Quad")


@dataclass(frozen=True, slots=True)
class TileMatrix:
    identifier: str
    cell_size: float                    # CRS units per pixel
    scale_denominator: float
    origin: tuple[float, float]         # top-left corner, x/y order
    tile_width: int
    tile_height: int
    matrix_width: int
    matrix_height: int

    @property
    def span(self) -> tuple[float, float]:
        """Width and height of one tile in CRS units."""
        return self.tile_width * self.cell_size, self.tile_height * self.cell_size

    def bounds(self, row0: int, col0: int, rows: int = 1, cols: int = 1) -> tuple[float, float, float, float]:
        """The box of a block of tiles (one tile by default), x/y order."""
        sx, sy = self.span
        x0, y1 = self.origin[0] + col0 * sx, self.origin[1] - row0 * sy
        return x0, y1 - rows * sy, x0 + cols * sx, y1

    def grid(self, crs: CRS, row0: int, col0: int, rows: int = 1, cols: int = 1) -> Grid:
        return Grid(crs, self.bounds(row0, col0, rows, cols), cols * self.tile_width, rows * self.tile_height)

    def covering(self, bounds: tuple[float, float, float, float]) -> tuple[int, int, int, int] | None:
        """(min_row, max_row, min_col, max_col) of the tiles a box touches, clipped to the matrix."""
        sx, sy = self.span
        xmin, ymin, xmax, ymax = bounds
        eps = 1e-9
        c0 = max(0, math.floor((xmin - self.origin[0]) / sx + eps))
        c1 = min(self.matrix_width - 1, math.ceil((xmax - self.origin[0]) / sx - eps) - 1)
        r0 = max(0, math.floor((self.origin[1] - ymax) / sy + eps))
        r1 = min(self.matrix_height - 1, math.ceil((self.origin[1] - ymin) / sy - eps) - 1)
        if c0 > c1 or r0 > r1:
            return None
        return r0, r1, c0, c1


@dataclass(frozen=True, slots=True)
class TileMatrixSet:
    identifier: str
    crs: CRS
    crs_urn: str | None                 # None: a CRS without an EPSG/OGC code (not offered by WMTS)
    inverted: bool                      # the CRS's first axis is northing/latitude
    well_known_scale_set: str | None
    matrices: tuple[TileMatrix, ...]    # coarse to fine
    metres_per_unit: float

    def matrix(self, identifier: str) -> TileMatrix | None:
        return next((m for m in self.matrices if m.identifier == identifier), None)

    def level(self, identifier: str) -> int | None:
        return next((i for i, m in enumerate(self.matrices) if m.identifier == identifier), None)


@dataclass(frozen=True, slots=True)
class TileSetLimits:
    """Where a service has tiles in one tile matrix set: per level (index into `tms.matrices`) the
    (min_row, max_row, min_col, max_col) that cover its extent, and its native level."""

    tms: TileMatrixSet
    extent: tuple[float, float, float, float]           # the service's extent in the set's CRS
    ranges: tuple[tuple[int, int, int, int], ...]
    native_level: int                                    # finest level not finer than the data

    def contains(self, level: int, row: int, col: int) -> bool:
        if not 0 <= level < len(self.ranges):
            return False
        r0, r1, c0, c1 = self.ranges[level]
        return r0 <= row <= r1 and c0 <= col <= c1


def metres_per_unit(crs: CRS) -> float:
    proj = ProjCRS.from_wkt(crs.to_wkt())
    if proj.is_geographic:
        return METRES_PER_DEGREE
    return proj.axis_info[0].unit_conversion_factor if proj.axis_info else 1.0


def _urn(crs: CRS) -> str | None:
    epsg = crs.to_epsg()
    return f"urn:ogc:def:crs:EPSG::{epsg}" if epsg else None


def _inverted(crs: CRS) -> bool:
    proj = ProjCRS.from_wkt(crs.to_wkt())
    epsg = crs.to_epsg()
    if epsg:
        proj = ProjCRS.from_epsg(epsg)
    axes = proj.axis_info
    return bool(axes) and axes[0].direction.lower() in ("north", "south")


def _matrix(identifier: str, cell: float, mpu: float, origin: tuple[float, float], tile: tuple[int, int],
            size: tuple[int, int]) -> TileMatrix:
    return TileMatrix(identifier, cell, cell * mpu / PIXEL_SIZE, origin, tile[0], tile[1], size[0], size[1])


@functools.cache
def standard(identifier: str) -> TileMatrixSet:
    """A tile matrix set of the OGC TMS registry by identifier (morecantile's copy). Sets whose
    matrix widths vary by row are refused: WMTS 1.0 cannot describe them."""
    try:
        src = morecantile.tms.get(identifier)
    except Exception:
        raise InvalidParameter("tile_set", f"unknown tile matrix set {identifier!r} "
                                                f"(known: {', '.join(known_identifiers())})")
    if src.is_variable:
        raise InvalidParameter("tile_set", f"{identifier} has variable matrix widths, which WMTS 1.0 "
                                                "cannot describe")
    crs = CRS.from_user_input(src.rasterio_crs)
    if identifier == "WorldCRS84Quad":
        crs = CRS.from_epsg(4326)              # CRS84 is EPSG:4326 in lon/lat: the engine is x/y always
    inverted = identifier != "WorldCRS84Quad" and _inverted(crs)
    mpu = metres_per_unit(crs)
    matrices = []
    for m in src.tileMatrices:
        ox, oy = m.pointOfOrigin
        origin = (oy, ox) if inverted else (ox, oy)
        matrices.append(_matrix(str(m.id), m.cellSize, mpu, origin, (m.tileWidth, m.tileHeight),
                                (m.matrixWidth, m.matrixHeight)))
    urn = CRS84_URN if identifier == "WorldCRS84Quad" else _urn(crs)
    return TileMatrixSet(identifier, crs, urn, inverted, WELL_KNOWN_SCALE_SETS.get(identifier),
                         tuple(matrices), mpu)


def known_identifiers() -> list[str]:
    return sorted(morecantile.tms.list())


def native(name: str, crs: CRS, extent: tuple[float, float, float, float], cell: float) -> TileMatrixSet:
    """`{name}-native`: the service's own CRS and finest cell size at the last level, each coarser
    level doubling the cell until the whole extent fits in one tile; the grid starts at the
    extent's top-left corner."""
    xmin, ymin, xmax, ymax = extent
    pixels = max(xmax - xmin, ymax - ymin) / cell
    levels = max(0, math.ceil(math.log2(pixels / TILE_SIZE) - 1e-9)) if pixels > TILE_SIZE else 0
    mpu = metres_per_unit(crs)
    matrices = []
    for k in range(levels + 1):
        size = cell * 2 ** (levels - k)
        span = size * TILE_SIZE
        width = max(1, math.ceil((xmax - xmin) / span - 1e-9))
        height = max(1, math.ceil((ymax - ymin) / span - 1e-9))
        matrices.append(_matrix(str(k), size, mpu, (xmin, ymax), (TILE_SIZE, TILE_SIZE), (width, height)))
    return TileMatrixSet(f"{name}-native", crs, _urn(crs), _inverted(crs), None, tuple(matrices), mpu)


def limits(tms: TileMatrixSet, crs: CRS, extent: tuple[float, float, float, float],
           cell: float) -> TileSetLimits | None:
    """The tiles of `tms` that cover a service (its extent and cell size in `crs`); None when the
    service lies outside the set's CRS area."""
    try:
        box = extent_in(extent, crs, tms.crs)
    except InvalidParameter:
        return None
    ranges = []
    for m in tms.matrices:
        found = m.covering(box)
        if found is None:
            return None
        ranges.append(found)
    # The data's cell size in the set's units: its extent's width there over its pixel count.
    pixels = max(1.0, (extent[2] - extent[0]) / cell)
    data_cell = (box[2] - box[0]) / pixels
    native_level = len(tms.matrices) - 1
    for i, m in enumerate(tms.matrices):
        if m.cell_size <= data_cell * 1.01:
            native_level = i
            break
    return TileSetLimits(tms, box, tuple(ranges), native_level)
