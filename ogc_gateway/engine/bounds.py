"""Bounds of a box in another CRS from the points of it that exist there.

Why: the corners (and often whole edges) of a geostationary full disk lie off the Earth, and much
of a world box has no place in a geostationary or polar CRS; a corner-and-edge transform then gives
infinities and the box is "blank" or "a single point". Here the box is sampled on a lattice, points
that do not transform are dropped, and the edge of the valid region along every lattice row and
column is found by bisection, so the limb of a disk is met to a small fraction of a lattice step.
"""

from __future__ import annotations

import numpy as np
from rasterio.crs import CRS

from .geometry import transformer

LATTICE = 65          # points a side
BISECTIONS = 12       # halvings of a lattice step towards the limb


def _forward(src: CRS, dst: CRS, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points transformed (non-finite where they do not exist in `dst`), never raising. pyproj,
    not GDAL: GDAL fails a whole batch over one point and leaves an error pending."""
    try:
        tx, ty = transformer(src, dst).transform(xs.ravel(), ys.ravel(), errcheck=False)
    except Exception:                       # no coordinate operation at all
        return np.full(xs.size, np.nan), np.full(xs.size, np.nan)
    return np.asarray(tx, dtype="f8"), np.asarray(ty, dtype="f8")


def _limb_points(src: CRS, dst: CRS, ax: np.ndarray, ay: np.ndarray, bx: np.ndarray,
                 by: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bisect between points a (valid) and b (invalid) pairwise; the last valid points found."""
    for _ in range(BISECTIONS):
        mx, my = (ax + bx) / 2, (ay + by) / 2
        tx, ty = _forward(src, dst, mx, my)
        ok = np.isfinite(tx) & np.isfinite(ty)
        ax, ay = np.where(ok, mx, ax), np.where(ok, my, ay)
        bx, by = np.where(ok, bx, mx), np.where(ok, by, my)
    return _forward(src, dst, ax, ay)


def finite_bounds(bounds: tuple[float, float, float, float], src: CRS, dst: CRS
                  ) -> tuple[float, float, float, float] | None:
    """(xmin, ymin, xmax, ymax) in `dst` of the part of `bounds` (in `src`) that exists there, or
    None when no part of it does."""
    x0, y0, x1, y1 = bounds
    gx, gy = np.meshgrid(np.linspace(x0, x1, LATTICE), np.linspace(y0, y1, LATTICE))
    tx, ty = _forward(src, dst, gx, gy)
    ok = (np.isfinite(tx) & np.isfinite(ty)).reshape(gx.shape)
    if not ok.any():
        return None
    xs, ys = [tx[ok.ravel()]], [ty[ok.ravel()]]
    if not ok.all():
        for axis in (0, 1):          # neighbours along columns, then along rows
            a = [slice(None), slice(None)]
            b = [slice(None), slice(None)]
            a[axis], b[axis] = slice(None, -1), slice(1, None)
            oa, ob = ok[tuple(a)], ok[tuple(b)]
            for good, _bad, va, vb in ((oa & ~ob, None, a, b), (ob & ~oa, None, b, a)):
                if not good.any():
                    continue
                px, py = gx[tuple(va)][good], gy[tuple(va)][good]
                qx, qy = gx[tuple(vb)][good], gy[tuple(vb)][good]
                lx, ly = _limb_points(src, dst, px, py, qx, qy)
                fine = np.isfinite(lx) & np.isfinite(ly)
                xs.append(lx[fine])
                ys.append(ly[fine])
    allx, ally = np.concatenate(xs), np.concatenate(ys)
    return float(allx.min()), float(ally.min()), float(allx.max()), float(ally.max())


def edges_exist(bounds: tuple[float, float, float, float], src: CRS, dst: CRS, points: int = 21) -> bool:
    """Whether every point of the box's densified edges exists in `dst`. When some do not, a
    corner-and-edge transform silently leaves them out and can miss most of the box (a Web
    Mercator box over a full disk): then only `finite_bounds` is right."""
    x0, y0, x1, y1 = bounds
    t = np.linspace(0.0, 1.0, points)
    xs = np.concatenate([x0 + (x1 - x0) * t, np.full(points, x1), x0 + (x1 - x0) * t, np.full(points, x0)])
    ys = np.concatenate([np.full(points, y0), y0 + (y1 - y0) * t, np.full(points, y1), y0 + (y1 - y0) * t])
    tx, ty = _forward(src, dst, xs, ys)
    return bool(np.isfinite(tx).all() and np.isfinite(ty).all())
