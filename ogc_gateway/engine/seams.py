"""Where overlapping items meet: seamlines cut from footprints, and the per-pixel weights that
blend items across their overlaps (MT_BLEND) or feather them across their seamlines.

A computed seamline is one cell of a Voronoi partition of the overlaps: the part of an item's
footprint that is nearer its own centre than the centre of any other item covering the same
ground. Weights are measured in the service CRS, at each output pixel's centre, so a pixel's
value never depends on the extent of the request around it (tiles meet without seams of their own).
"""

from __future__ import annotations

import math

import numpy as np
import shapely
from rasterio.crs import CRS
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from .geometry import points_to_crs
from .requests import Grid

_CHUNK = 4096        # points per block of the point x segment distance matrix


def seamline(oid: int, footprint: BaseGeometry, centre: tuple[float, float],
             others: list[tuple[int, BaseGeometry, tuple[float, float]]]) -> BaseGeometry:
    """The part of `footprint` nearer `centre` than the centre of each of `others` (OBJECTID,
    footprint, centre) whose footprint covers the same ground. Items with the same centre
    (a stack of scenes of one place) leave the ground to the lowest OBJECTID."""
    cuts = []
    for other, shape, c in others:
        if other == oid or not shape.intersects(footprint):
            continue
        if c == centre:
            if other < oid:
                cuts.append(shape)
            continue
        cuts.append(shape.intersection(_nearer_half(c, centre, footprint, shape)))
    if not cuts:
        return footprint
    return footprint.difference(shapely.union_all(cuts))


def _nearer_half(near: tuple[float, float], far: tuple[float, float], a: BaseGeometry,
                 b: BaseGeometry) -> Polygon:
    """The half-plane of points nearer `near` than `far`, as a rectangle that covers every point
    of `a` and `b` on that side."""
    x0, y0, x1, y1 = shapely.union(shapely.envelope(a), shapely.envelope(b)).bounds
    reach = math.hypot(x1 - x0, y1 - y0) + math.dist(near, far)
    mx, my = (near[0] + far[0]) / 2, (near[1] + far[1]) / 2
    length = math.dist(near, far)
    nx, ny = (near[0] - far[0]) / length, (near[1] - far[1]) / length      # towards `near`
    tx, ty = -ny, nx
    return Polygon([(mx + reach * tx, my + reach * ty),
                    (mx + reach * (tx + 2 * nx), my + reach * (ty + 2 * ny)),
                    (mx + reach * (2 * nx - tx), my + reach * (2 * ny - ty)),
                    (mx - reach * tx, my - reach * ty)])


def pixel_centres(grid: Grid, rows: slice, cols: slice, crs: CRS) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the grid cells [rows, cols] in `crs`, as two (rows, cols) arrays."""
    rx, ry = grid.res
    xs = grid.bounds[0] + (np.arange(cols.start, cols.stop) + 0.5) * rx
    ys = grid.bounds[3] - (np.arange(rows.start, rows.stop) + 0.5) * ry
    gx, gy = np.meshgrid(xs, ys)
    if grid.crs != crs:
        px, py = points_to_crs(gx.ravel(), gy.ravel(), grid.crs, crs)
        gx, gy = px.reshape(gx.shape), py.reshape(gy.shape)
    return gx, gy


def boundary_distance(geom: BaseGeometry, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Distance from each point to the nearest edge of a (multi)polygon."""
    segments = []
    for ring in shapely.get_rings(shapely.get_parts(geom)):
        coords = shapely.get_coordinates(ring)
        segments.append(np.hstack([coords[:-1], coords[1:]]))
    if not segments:
        return np.full(np.shape(xs), np.inf)
    ax, ay, bx, by = np.concatenate(segments).T
    dx, dy = bx - ax, by - ay
    length2 = np.where(dx * dx + dy * dy > 0, dx * dx + dy * dy, 1.0)
    px, py = np.ravel(xs), np.ravel(ys)
    out = np.empty(px.shape)
    for k in range(0, px.size, _CHUNK):
        x, y = px[k:k + _CHUNK, None], py[k:k + _CHUNK, None]
        t = np.clip(((x - ax) * dx + (y - ay) * dy) / length2, 0.0, 1.0)
        out[k:k + _CHUNK] = np.sqrt(((x - ax - t * dx) ** 2 + (y - ay - t * dy) ** 2).min(axis=1))
    return out.reshape(np.shape(xs))


def edge_weights(footprint: BaseGeometry, xs: np.ndarray, ys: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """MT_BLEND weights: each valid pixel's distance (service CRS units) to the item's own
    valid-data edge, its footprint; 0 elsewhere. Where items overlap, each weighs by how deep
    inside itself the pixel lies, so the blend runs from one edge of the overlap to the other."""
    out = np.zeros(valid.shape)
    if valid.any():
        shapely.prepare(footprint)
        inside = valid & shapely.contains_xy(footprint, xs, ys)
        out[inside] = boundary_distance(footprint, xs[inside], ys[inside])
    return out


def seam_weights(seam: BaseGeometry | None, width: float, xs: np.ndarray, ys: np.ndarray,
                 valid: np.ndarray) -> np.ndarray:
    """Seamline weights of the valid pixels: 1 inside the item's seamline and 0 outside, ramping
    linearly over `width` (service CRS units) centred on the seamline, so two items sharing a
    seam weigh 1/2 each on it."""
    out = np.zeros(valid.shape)
    if seam is None or seam.is_empty or not valid.any():
        return out
    shapely.prepare(seam)
    inside = shapely.contains_xy(seam, xs[valid], ys[valid])
    if width <= 0:
        out[valid] = inside
        return out
    near = boundary_distance(seam, xs[valid], ys[valid])
    signed = np.where(inside, near, -near)
    out[valid] = np.clip(0.5 + signed / width, 0.0, 1.0)
    return out
