"""Esri geometry JSON (digest §4.3) <-> shapely, for the operations that take or return geometry.

Input: point, multipoint, polyline, polygon or envelope JSON with an optional spatialReference, or
the simple `x,y` / `xmin,ymin,xmax,ymax` syntax. The kind is read from the JSON's keys (clients are
not always consistent with geometryType); geometryType decides only for the simple syntax.
"""

from __future__ import annotations

from typing import Any

from shapely.geometry import Point, box
from shapely.geometry.base import BaseGeometry

from ..engine import InvalidParameter, clockwise_rings, ordered_corners, sr_json, to_crs
from ..engine import geometry_from_json as from_json
from .params import Params, numbers, parse_sr_param

GEOMETRY_TYPES = {t.lower(): t for t in ("esriGeometryPoint", "esriGeometryMultipoint", "esriGeometryPolyline",
                                         "esriGeometryPolygon", "esriGeometryEnvelope")}
GEOMETRY_TYPES |= {k.removeprefix("esrigeometry"): v for k, v in GEOMETRY_TYPES.items()}


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
        return box(*ordered_corners(*coords)), crs
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
