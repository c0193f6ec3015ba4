"""Vector geometry for the catalog and the sampling operations: shapely geometries moved between
CRSs, the spatial relations of a query, and the points a line or an area is sampled at.

Geometries cross CRSs densified first, so a long envelope edge becomes the curve it really is in
the other CRS (a 4326 box over a UTM service is not a rectangle there).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import lru_cache

import numpy as np
import numpy.typing as npt
import shapely
from pyproj import CRS as ProjCRS
from pyproj import Transformer
from rasterio.crs import CRS
from shapely.geometry import LineString, MultiLineString, MultiPoint, MultiPolygon, Point, Polygon, box
from shapely.geometry.base import BaseGeometry

from .errors import InvalidParameter

_DENSIFY_STEPS = 16          # points per edge when a polygon or line changes CRS
MAX_SAMPLES = 1000           # getSamples answers at most this many locations per request

# Query geometry (first) against an item's footprint (second), as ArcGIS's esriSpatialRelEnum
# defines them: "Contains" = the query geometry contains the footprint, "Within" = it lies inside it.
# The query's spatial relations: relation(query geometry, footprint)
SPATIAL_RELATIONS: dict[str, Callable[[BaseGeometry, BaseGeometry], bool]] = {
    "intersects": lambda q, f: q.intersects(f),
    "contains": lambda q, f: q.contains(f),
    "within": lambda q, f: q.within(f),
    "crosses": lambda q, f: q.crosses(f),
    "overlaps": lambda q, f: q.overlaps(f),
    "touches": lambda q, f: q.touches(f),
    "envelope-intersects": lambda q, f: box(*q.bounds).intersects(box(*f.bounds)),
    "index-intersects": lambda q, f: box(*q.bounds).intersects(box(*f.bounds)),
}


_held: dict[tuple[int, int], tuple[CRS, CRS, Transformer, bool]] = {}


def transformer(src: CRS, dst: CRS) -> Transformer:
    """A pyproj transformer between two CRSs (x/y order), kept."""
    return _pair(src, dst)[0]


def same_datum(src: CRS, dst: CRS) -> bool:
    """Whether the two CRSs share one datum, so going between them is a conversion (projection
    formulas, no datum shift): GDAL and pyproj, each with its own PROJ, then compute the same, and
    it does not matter which one does."""
    return _pair(src, dst)[1]


def _pair(src: CRS, dst: CRS) -> tuple[Transformer, bool]:
    """Looked up by the CRS objects first: the service's, a dataset's and a parsed request CRS are
    long-lived objects, while keying by WKT exports each CRS again (10 us apiece, more on a
    request's cold caches)."""
    key = (id(src), id(dst))
    held = _held.get(key)
    if held is not None and held[0] is src and held[1] is dst:
        return held[2], held[3]
    found = _by_wkt(src.to_wkt(), dst.to_wkt())
    if len(_held) >= 256:            # (the objects held are kept alive, so their ids stay theirs)
        _held.clear()
    _held[key] = (src, dst, *found)
    return found


@lru_cache(maxsize=64)
def _by_wkt(src_wkt: str, dst_wkt: str) -> tuple[Transformer, bool]:
    src, dst = ProjCRS.from_wkt(src_wkt), ProjCRS.from_wkt(dst_wkt)
    return Transformer.from_crs(src, dst, always_xy=True), src.datum is not None and src.datum == dst.datum


def to_crs(geom: BaseGeometry, src: CRS, dst: CRS, *, name: str = "geometry") -> BaseGeometry:
    """`geom` from `src` into `dst` (x/y order throughout), edges densified on the way."""
    if src == dst:
        return geom
    if geom.geom_type in ("Polygon", "MultiPolygon", "LineString", "MultiLineString"):
        xmin, ymin, xmax, ymax = geom.bounds
        step = max(xmax - xmin, ymax - ymin) / _DENSIFY_STEPS
        if step > 0:
            geom = shapely.segmentize(geom, step)
    tr = transformer(src, dst)

    def move(coords: np.ndarray) -> np.ndarray:
        xs, ys = tr.transform(coords[:, 0], coords[:, 1], errcheck=False)
        return np.column_stack([xs, ys])

    out = shapely.transform(geom, move)
    if not np.isfinite(shapely.get_coordinates(out)).all():
        raise InvalidParameter(name, f"the {name} lies outside the area where {dst.to_string() or 'the CRS'} "
                                     "is defined")
    return out


def points_to_crs(xs: npt.ArrayLike, ys: npt.ArrayLike, src: CRS, dst: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Coordinate arrays from `src` to `dst`; points that cannot be moved come back as NaN."""
    xs, ys = np.asarray(xs, dtype="f8"), np.asarray(ys, dtype="f8")
    if src == dst:
        return xs, ys
    out = transformer(src, dst).transform(xs, ys, errcheck=False)
    return np.asarray(out[0], dtype="f8"), np.asarray(out[1], dtype="f8")


def clockwise_rings(geom: BaseGeometry) -> list[list[list[float]]]:
    """Esri polygon rings: outer rings clockwise, holes counter-clockwise (ArcGIS JSON's rule)."""
    polys = list(geom.geoms) if isinstance(geom, MultiPolygon) else [geom]
    rings = []
    for part in polys:
        if not isinstance(part, Polygon):
            raise TypeError(f"polygon rings of a {part.geom_type}")
        poly = shapely.geometry.polygon.orient(part, sign=-1.0)
        rings.append([[x, y] for x, y in poly.exterior.coords])
        rings.extend([[x, y] for x, y in hole.coords] for hole in poly.interiors)
    return rings


def sample_line(line: BaseGeometry, distance: float | None, count: int | None) -> list[Point]:
    """Points along a (multi)line: every `distance`, or `count` evenly spaced, or its vertices."""
    parts = list(line.geoms) if isinstance(line, MultiLineString) else [line]
    if distance is None and count is None:
        points = [Point(c) for part in parts for c in part.coords]
    else:
        total = sum(p.length for p in parts)
        step = total / max(count - 1, 1) if count is not None else distance
        if step is None or step <= 0:
            raise InvalidParameter("sample_distance", "must be positive")
        if total / step + len(parts) > MAX_SAMPLES:
            raise InvalidParameter("sample_distance", f"the line would give more than {MAX_SAMPLES} samples")
        points = []
        for part in parts:
            n = int(math.floor(part.length / step + 1e-9))
            points += [part.interpolate(k * step) for k in range(n + 1)]
            if part.length - n * step > 1e-9 * max(part.length, 1):
                points.append(Point(part.coords[-1]))
    if len(points) > MAX_SAMPLES:
        raise InvalidParameter("geometry", f"{len(points)} locations; at most {MAX_SAMPLES} per request")
    return points


def sample_area(area: BaseGeometry, distance: float | None, count: int | None) -> list[Point]:
    """Cell centres of a regular grid over an area that fall inside it: spacing `distance`, or
    chosen so about `count` (default 100) cells lie inside."""
    xmin, ymin, xmax, ymax = area.bounds
    if distance is None:
        wanted = count or 100
        distance = math.sqrt(max(area.area, 1e-300) / wanted)
    if distance <= 0:
        raise InvalidParameter("sample_distance", "must be positive")
    cols = max(1, math.ceil((xmax - xmin) / distance - 1e-9))
    rows = max(1, math.ceil((ymax - ymin) / distance - 1e-9))
    if cols * rows > 4 * MAX_SAMPLES:
        raise InvalidParameter("sample_distance", f"the area would give more than {MAX_SAMPLES} samples")
    xs = xmin + (np.arange(cols) + 0.5) * (xmax - xmin) / cols
    ys = ymax - (np.arange(rows) + 0.5) * (ymax - ymin) / rows
    gx, gy = np.meshgrid(xs, ys)
    inside = shapely.contains_xy(area, gx.ravel(), gy.ravel())
    points = [Point(x, y) for x, y in zip(gx.ravel()[inside], gy.ravel()[inside])]
    if len(points) > MAX_SAMPLES:
        raise InvalidParameter("sample_count", f"{len(points)} locations; at most {MAX_SAMPLES} per request")
    return points


def sample_points(geom: BaseGeometry, distance: float | None = None, count: int | None = None
                  ) -> list[Point]:
    """The locations getSamples answers for any geometry."""
    if isinstance(geom, Point):
        return [geom]
    if isinstance(geom, MultiPoint):
        points = list(geom.geoms)
        if len(points) > MAX_SAMPLES:
            raise InvalidParameter("geometry", f"{len(points)} points; at most {MAX_SAMPLES} per request")
        return points
    if isinstance(geom, (LineString, MultiLineString)):
        return sample_line(geom, distance, count)
    return sample_area(geom, distance, count)

