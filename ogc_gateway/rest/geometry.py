"""Esri geometry JSON (digest §4.3) <-> shapely, for the operations that take or return geometry.

Input: point, multipoint, polyline, polygon or envelope JSON with an optional spatialReference, or
the simple `x,y` / `xmin,ymin,xmax,ymax` syntax. The kind is read from the JSON's keys (clients are
not always consistent with geometryType); geometryType decides only for the simple syntax.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry import LineString, MultiLineString, MultiPoint, Point, Polygon, box
from shapely.geometry.base import BaseGeometry
from shapely.ops import unary_union

from ..engine.errors import InvalidParameter
from ..engine.geometry import clockwise_rings, to_crs
from ..engine.grid import parse_sr, sr_json
from .params import Params, _float, numbers, parse_sr_param

GEOMETRY_TYPES = {t.lower(): t for t in ("esriGeometryPoint", "esriGeometryMultipoint", "esriGeometryPolyline",
                                         "esriGeometryPolygon", "esriGeometryEnvelope")}
GEOMETRY_TYPES |= {k.removeprefix("esrigeometry"): v for k, v in GEOMETRY_TYPES.items()}


def _coords(value: Any, name: str, depth: int) -> list:
    """Nested coordinate lists as floats (only x and y of each position are used)."""
    if depth == 0:
        if not isinstance(value, (list, tuple)) or len(value) < 2:
            raise InvalidParameter(name, "a position must be [x, y]")
        return [_float(value[0], name), _float(value[1], name)]
    if not isinstance(value, list):
        raise InvalidParameter(name, "expected a list of coordinates")
    return [_coords(v, name, depth - 1) for v in value]


def _polygon(rings: list, name: str) -> BaseGeometry:
    """Esri rings (outer rings and holes, in any order) as one valid (multi)polygon."""
    shells, holes = [], []
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
        return Point(_float(value["x"], name), _float(value["y"], name)), crs
    if "points" in value:
        points = _coords(value["points"], name, 1)
        if not points:
            raise InvalidParameter(name, "the multipoint has no points")
        return MultiPoint(points), crs
    if "paths" in value:
        paths = _coords(value["paths"], name, 2)
        if not paths or any(len(p) < 2 for p in paths):
            raise InvalidParameter(name, "every path needs at least two points")
        return (LineString(paths[0]) if len(paths) == 1 else MultiLineString(paths)), crs
    if "rings" in value:
        return _polygon(_coords(value["rings"], name, 2), name), crs
    if all(k in value for k in ("xmin", "ymin", "xmax", "ymax")):
        x0, y0, x1, y1 = (_float(value[k], name) for k in ("xmin", "ymin", "xmax", "ymax"))
        if x0 > x1 or y0 > y1:
            raise InvalidParameter(name, "xmin must not exceed xmax, nor ymin ymax")
        return box(x0, y0, x1, y1), crs
    raise InvalidParameter(name, "not a point, multipoint, polyline, polygon or envelope")


def parse_geometry(p: Params, service_crs, *, name: str = "geometry", sr_param: str | None = "inSR",
                   default_type: str = "esriGeometryEnvelope") -> tuple[BaseGeometry, Any] | None:
    """The `geometry` parameter (JSON or simple syntax) and its CRS: the embedded spatialReference,
    else `sr_param` (inSR), else the service's. None when absent."""
    value = p.json_or_text(name)
    if value is None:
        return None
    kind = p.enum("geometryType", GEOMETRY_TYPES, default_type)
    crs = parse_sr_param(p, sr_param, service_crs) if sr_param else service_crs
    if isinstance(value, dict):
        geom, embedded = from_json(value, name)
        return geom, embedded or crs
    if isinstance(value, list):
        value = ",".join(str(v) for v in value)
    coords = numbers(value, name)
    if len(coords) == 2 and kind in ("esriGeometryPoint", "esriGeometryMultipoint", "esriGeometryEnvelope"):
        return Point(coords), crs
    if len(coords) == 4 and kind in ("esriGeometryEnvelope", "esriGeometryPolygon"):
        if coords[0] > coords[2] or coords[1] > coords[3]:
            raise InvalidParameter(name, "xmin must not exceed xmax, nor ymin ymax")
        return box(*coords), crs
    raise InvalidParameter(name, "expected geometry JSON, 'x,y' or 'xmin,ymin,xmax,ymax'")


def in_service_crs(parsed: tuple[BaseGeometry, Any], service_crs, name: str = "geometry") -> BaseGeometry:
    geom, crs = parsed
    return to_crs(geom, crs, service_crs, name=name)


def to_json(geom: BaseGeometry, crs=None) -> dict:
    """Esri JSON of a point or (multi)polygon; the spatialReference only when `crs` is given."""
    if geom.geom_type == "Point":
        out: dict = {"x": geom.x, "y": geom.y}
    else:
        out = {"rings": clockwise_rings(geom)}
    if crs is not None:
        out["spatialReference"] = sr_json(crs)
    return out
