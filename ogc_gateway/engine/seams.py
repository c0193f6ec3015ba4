"""Where overlapping items meet: seamlines cut from footprints, and the per-pixel weights that
blend items across their overlaps (MT_BLEND) or feather them across their seamlines.

A computed seamline is one cell of a Voronoi partition of the overlaps: the part of an item's
footprint that is nearer its own centre than the centre of any other item covering the same
ground. Weights are measured in the service CRS, at each output pixel's centre, so a pixel's
value never depends on the extent of the request around it (tiles meet without seams of their own).
"""

from __future__ import annotations

import numpy as np
import shapely
from rasterio.crs import CRS
from shapely.geometry.base import BaseGeometry

from .geometry import points_to_crs
from .requests import Grid

_CHUNK = 4096        # points per block of the point x segment distance matrix


def seamlines(oids: np.ndarray, footprints: np.ndarray, centres: np.ndarray, first: np.ndarray,
              second: np.ndarray) -> np.ndarray:
    """The seamline of each item (arrays of OBJECTIDs, footprints and (n, 2) centres): its
    footprint less the part of each overlapping footprint nearer that item's centre. `first` and
    `second` index the pairs that may overlap (footprint `second[k]` may cut item `first[k]`).
    Items with the same centre (a stack of scenes of one place) leave the ground to the lowest
    OBJECTID. Vectorised: a round of differences per neighbour rank, not a Python loop per pair."""
    out = footprints.copy()
    meet = shapely.intersects(footprints[first], footprints[second])
    first, second = first[meet], second[meet]
    if first.size == 0:
        return out
    near, far = centres[second], centres[first]
    same = (near == far).all(axis=1)
    cuts = shapely.intersection(footprints[second], _nearer_halves(near, far, footprints[first], footprints[second]))
    cuts[same] = np.where(oids[second[same]] < oids[first[same]], footprints[second[same]], None)
    keep = ~shapely.is_missing(cuts) & ~shapely.is_empty(cuts)
    first, cuts = first[keep], cuts[keep]
    by_item = np.argsort(first, kind="stable")
    first, cuts = first[by_item], cuts[by_item]
    starts = np.flatnonzero(np.r_[True, first[1:] != first[:-1]])
    rank = np.arange(first.size) - np.repeat(starts, np.diff(np.r_[starts, first.size]))
    for r in range(int(rank.max()) + 1 if rank.size else 0):
        pick = rank == r                        # at most one cut per item in each round
        out[first[pick]] = shapely.difference(out[first[pick]], cuts[pick])
    return out


def _nearer_halves(near: np.ndarray, far: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """For each pair, the half-plane of points nearer `near` than `far`, as a rectangle that covers
    every point of geometries `a` and `b` on that side."""
    lo = np.minimum(shapely.bounds(a)[:, :2], shapely.bounds(b)[:, :2])
    hi = np.maximum(shapely.bounds(a)[:, 2:], shapely.bounds(b)[:, 2:])
    length = np.hypot(*(near - far).T)
    reach = (np.hypot(*(hi - lo).T) + length)[:, None]
    normal = (near - far) / np.where(length > 0, length, 1.0)[:, None]     # towards `near`
    tangent = np.column_stack([-normal[:, 1], normal[:, 0]])
    mid = (near + far) / 2
    corners = [mid + reach * tangent, mid + reach * (tangent + 2 * normal),
               mid + reach * (2 * normal - tangent), mid - reach * tangent]
    return np.asarray(shapely.polygons(np.stack(corners, axis=1)), dtype=object)   # (an array in, an array out)


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
