"""Esri geometry JSON (digest §4.3) -> shapely: the REST operations' geometry parameters and the
geometry arguments of raster functions (Clip) read it the same way.

The kind is read from the JSON's keys (clients are not always consistent with geometryType).
"""

from __future__ import annotations

import math
from typing import Any

from shapely.geometry import LineString, MultiLineString, MultiPoint, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from .bounded import VertexCounter, check_coordinates
from .errors import InvalidParameter
from .grid import parse_sr


def number(value: Any, name: str) -> float:
    """A finite number, or an InvalidParameter naming the parameter."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidParameter(name, f"{str(value)[:40]!r} is not a number")
    if not math.isfinite(number):
        raise InvalidParameter(name, f"{value!r} is not a finite number")
    return number


def _position(value: Any, name: str, counter: VertexCounter) -> list[float]:
    """A position [x, y] as floats (only x and y are used), counted as it is read."""
    if not isinstance(value, (list, tuple)) or len(value) < 2:
        raise InvalidParameter(name, "a position must be [x, y]")
    counter.add()
    xy = [number(value[0], name), number(value[1], name)]
    check_coordinates(xy, name)
    return xy


def _positions(value: Any, name: str, counter: VertexCounter | None = None) -> list[list[float]]:
    """A list of positions; vertices are counted as they are read, so an oversized geometry stops at the
    limit, not after it is built."""
    counter = counter or VertexCounter(name)
    if not isinstance(value, list):
        raise InvalidParameter(name, "expected a list of coordinates")
    counter.add(0 if len(value) <= counter.limit - counter.count else len(value))
    return [_position(v, name, counter) for v in value]


def _parts(value: Any, name: str) -> list[list[list[float]]]:
    """A list of lists of positions (the paths of a polyline, the rings of a polygon), one count for all."""
    counter = VertexCounter(name)
    if not isinstance(value, list):
        raise InvalidParameter(name, "expected a list of coordinates")
    return [_positions(v, name, counter) for v in value]


def _polygon(rings: list[list[list[float]]], name: str) -> BaseGeometry:
    """Esri rings (outer rings and holes, in any order) as one valid (multi)polygon."""
    shells: list[BaseGeometry] = []
    holes: list[BaseGeometry] = []
    for ring in rings:
        if len(ring) < 3:
            raise InvalidParameter(name, "a ring needs at least three points")
        poly = Polygon(ring)
        (holes if poly.exterior.is_ccw else shells).append(poly.buffer(0))
    if not shells:                 # all counter-clockwise: take them as shells anyway
        shells, holes = holes, []
    geom = unary_union(shells)
    if holes:
        geom = geom.difference(unary_union(holes))
    if geom.is_empty:
        raise InvalidParameter(name, "the polygon has no area")
    return geom


def from_json(value: Any, name: str = "geometry") -> tuple[BaseGeometry, Any]:
    """An Esri geometry JSON object -> (shapely geometry, its CRS or None when not embedded)."""
    if not isinstance(value, dict):
        raise InvalidParameter(name, "expected a geometry JSON object")
    sr = value.get("spatialReference")
    crs = parse_sr(sr, name) if sr else None
    if "x" in value and "y" in value:
        if value["x"] is None or value["x"] == "NaN":
            raise InvalidParameter(name, "the point is empty")
        xy = number(value["x"], name), number(value["y"], name)
        check_coordinates(xy, name)
        return Point(*xy), crs
    if "points" in value:
        points = _positions(value["points"], name)
        if not points:
            raise InvalidParameter(name, "the multipoint has no points")
        return MultiPoint(points), crs
    if "paths" in value:
        paths = _parts(value["paths"], name)
        if not paths or any(len(p) < 2 for p in paths):
            raise InvalidParameter(name, "every path needs at least two points")
        return (LineString(paths[0]) if len(paths) == 1 else MultiLineString(paths)), crs
    if "rings" in value:
        return _polygon(_parts(value["rings"], name), name), crs
    if all(k in value for k in ("xmin", "ymin", "xmax", "ymax")):
        x0, y0, x1, y1 = (number(value[k], name) for k in ("xmin", "ymin", "xmax", "ymax"))
        check_coordinates((x0, y0, x1, y1), name)
        x0, y0, x1, y1 = ordered_corners(x0, y0, x1, y1)
        return box(x0, y0, x1, y1), crs
    raise InvalidParameter(name, "not a point, multipoint, polyline, polygon or envelope")


def ordered_corners(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
    """An envelope's corners as (xmin, ymin, xmax, ymax) whatever order they came in: esri-leaflet
    has long sent bbox=xmin,ymax,xmax,ymin, and ArcGIS servers draw it."""
    return min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)
