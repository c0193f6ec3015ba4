"""Resampling one item's window into (part of) a grid in numpy, without GDAL's warper.

The reader warps value x validity and validity itself with a plain kernel (engine/read.py). GDAL's
warper (`rasterio.warp.reproject`) does that well but costs about a millisecond of set-up per call
(datasets, transformer, options) before any pixel, and the reader calls it once per item per request.
This module computes the same two results directly:

- in the item's own CRS with north-up axes, resampling is separable: each output column has its
  source taps along x, each row along y, so a 512 x 512 cell block is two passes of row and column
  gathers (`separable`); grids aligned on the source put all the weight on one tap, so their values
  are the source values exactly;
- in another CRS, the source position of each output cell comes from the coordinate
  transformation (GDAL's across datums, PROJ's through pyproj within one) at a lattice of cells,
  interpolated between them (checked against exact positions
  and refused beyond 1/50 of a source pixel — GDAL's warper allows itself 1/8), then the taps are
  gathered in two dimensions (`gathered`).

Kernels are GDAL's: nearest takes the pixel holding the position, bilinear weighs the 2 x 2 centres
around it, cubic is Keys' convolution (a = -0.5) over 4 x 4, never widened when downsampling (the
reader's overview choice keeps the ratio under 2). A tap outside the window counts as an invalid pixel
(the reader's windows carry a margin, so only the raster's own edge is ever reached). Anything else —
majority resampling, cubic across CRSs, a rotated grid, positions a lattice cannot follow — returns
None and the reader uses GDAL.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from affine import Affine
from rasterio.crs import CRS
from rasterio.warp import transform as transform_points

from . import kernels
from .geometry import same_datum, transformer

if TYPE_CHECKING:
    from .requests import Grid

_ALIGNED = 1e-9        # source positions this close to a pixel centre are on it (exact aligned grids)
_LATTICE_STEPS = (32, 8)   # output cells between exactly transformed positions: coarse, then fine
_TOLERANCE = 0.02      # largest error of an interpolated source position, in source pixels

Floats = npt.NDArray[np.floating[Any]]     # float32 or float64 (the reader's work type), any bit width
Bools = npt.NDArray[np.bool_]
Indexes = npt.NDArray[np.intp]
Work = type[np.floating[Any]]               # float32 or float64: what a warp computes in (engine/read.py)
Taps = tuple[Indexes, Floats]               # (indices, weights) of a kernel along one axis
Nodes = npt.NDArray[np.float64]             # a lattice's cell indexes along one axis (evenly spread)
Cells = npt.NDArray[np.float64 | np.intp]   # cell positions: whole cells, or edges between them


def resample(data: npt.NDArray[np.generic], valid: Bools, src_transform: Affine, src_crs: CRS, grid: Grid,
             rows: slice, cols: slice, resampling: str, work: Work) -> tuple[Floats, Floats] | None:
    """(values, support) of the window `data` (n bands, rows, cols) with validity `valid` (k, rows,
    cols: one layer shared by every band, or one per band) on the cells [rows, cols] of `grid`:
    values are the valid-weighted kernel means (0 where no valid tap), support (k, rows, cols) the
    kernel's weight on valid pixels. None: not a case done here."""
    dst_transform = grid.transform
    if resampling not in ("nearest", "bilinear", "cubic") or not _north_up(src_transform) \
            or not _north_up(dst_transform):
        return None
    if src_crs == grid.crs:
        xs = _axis_positions(cols, dst_transform.c, dst_transform.a, src_transform.c, src_transform.a)
        ys = _axis_positions(rows, dst_transform.f, dst_transform.e, src_transform.f, src_transform.e)
        tx, ty = _taps(xs, data.shape[2], resampling), _taps(ys, data.shape[1], resampling)
        return separable(data, valid, tx, ty, work)
    if resampling == "cubic":
        return None
    for step in _LATTICE_STEPS:
        found = LATTICES.get(grid, src_crs, step)
        if found is None:
            return None
        positions = _source_positions(found, src_transform, rows, cols)
        if positions is not None:
            return gathered(data, valid, positions, resampling, work)
    return None


def outline_box(grid: Grid, src_crs: CRS, rows: slice, cols: slice, tolerance: float
                ) -> tuple[float, float, float, float] | None:
    """The box in `src_crs` of the outline of grid cells [rows, cols] - what a densified
    transform_bounds of it gives - from the grid's coarse lattice, which the request's items are
    resampled through anyway: no coordinate transformation per item. None when the grid is not
    north-up or the lattice misses by more than `tolerance` (source CRS units; the caller then
    transforms the outline)."""
    if not _north_up(grid.transform):
        return None
    lat = LATTICES.get(grid, src_crs, _LATTICE_STEPS[0])
    if lat is None or len(lat.rows) < 2 or len(lat.cols) < 2 or lat.error > tolerance:
        return None              # (one cell: nothing to extrapolate its edges from)
    # Cell edges in lattice units (cell centres are the integers). Inside each lattice cell the
    # interpolation is bilinear, whose extremes over a rectangle are at its corners: so the box's
    # extremes are at the outline's corners, the lattice lines' crossings with the outline and
    # the lattice nodes inside - the points of this small grid.
    top, bottom, left, right = rows.start - 0.5, rows.stop - 0.5, cols.start - 0.5, cols.stop - 0.5
    at_rows = np.concatenate([[top], lat.rows[(lat.rows > top) & (lat.rows < bottom)], [bottom]])
    at_cols = np.concatenate([[left], lat.cols[(lat.cols > left) & (lat.cols < right)], [right]])
    xs, ys = _interpolate(lat.offsets, lat.rows, lat.cols, at_rows, at_cols)
    (ox, oy) = lat.origin
    return ox + float(xs.min()), oy + float(ys.min()), ox + float(xs.max()), oy + float(ys.max())


def outline(grid: Grid, crs: CRS, tolerance: float) -> npt.NDArray[np.float64] | None:
    """The grid's outline in `crs` as a closed ring of (x, y) points - its edges at the coarse
    lattice's nodes, where a densified transformation of its box would put points - from the
    lattice the request's items are resampled through anyway. None when outline_box would be."""
    if not _north_up(grid.transform):
        return None
    lat = LATTICES.get(grid, crs, _LATTICE_STEPS[0])
    if lat is None or len(lat.rows) < 2 or len(lat.cols) < 2 or lat.error > tolerance:
        return None
    at_rows = np.concatenate([[-0.5], lat.rows[1:-1], [grid.height - 0.5]])
    at_cols = np.concatenate([[-0.5], lat.cols[1:-1], [grid.width - 0.5]])
    xs, ys = _interpolate(lat.offsets, lat.rows, lat.cols, at_rows, at_cols)
    ring = [(xs[0, :], ys[0, :]), (xs[1:, -1], ys[1:, -1]), (xs[-1, -2::-1], ys[-1, -2::-1]),
            (xs[-2::-1, 0], ys[-2::-1, 0])]       # top, right, bottom, left, back to the start
    x = np.concatenate([r[0] for r in ring]).astype(np.float64) + lat.origin[0]
    y = np.concatenate([r[1] for r in ring]).astype(np.float64) + lat.origin[1]
    return np.column_stack([x, y])[::-1]           # counter-clockwise, as shapely's boxes


def _north_up(t: Affine) -> bool:
    return t.b == 0 and t.d == 0 and t.a > 0 and t.e < 0


# --- kernels --------------------------------------------------------------------------------------

def _axis_positions(cells: slice, dst_origin: float, dst_step: float, src_origin: float, src_step: float
                    ) -> npt.NDArray[np.float64]:
    """Source positions (pixel units, 0 = the window's first edge) of the centres of grid cells
    `cells` along one axis."""
    return (dst_origin + (np.arange(cells.start, cells.stop) + 0.5) * dst_step - src_origin) / src_step


def _taps(pos: npt.NDArray[np.float64], size: int, resampling: str) -> Taps:
    """Kernel taps at source positions `pos` (any shape) along one axis of `size` pixels:
    (indices, weights), each (taps,) + pos.shape; a tap outside [0, size) has weight 0 (and a
    clipped index, so gathering it is harmless)."""
    if resampling == "nearest":
        first = np.floor(pos + 1e-10)[np.newaxis]            # as GDAL: the pixel holding it
        weights = np.ones_like(first)
    else:
        centre = pos - 0.5
        near = np.rint(centre)
        centre = np.where(np.abs(centre - near) < _ALIGNED, near, centre)
        base = np.floor(centre)
        t = centre - base
        if resampling == "bilinear":
            first = base[np.newaxis] + np.arange(2).reshape((2,) + (1,) * pos.ndim)
            weights = np.stack([1 - t, t])
        else:                                                  # Keys' cubic convolution, a = -0.5
            first = base[np.newaxis] + np.arange(-1, 3).reshape((4,) + (1,) * pos.ndim)
            d = np.abs(first - centre)
            weights = np.where(d <= 1, (1.5 * d - 2.5) * d * d + 1,
                               np.where(d < 2, ((-0.5 * d + 2.5) * d - 4) * d + 2, 0.0))
    inside = (first >= 0) & (first < size)
    return np.clip(first, 0, size - 1).astype(np.intp), np.where(inside, weights, 0.0)


# --- same CRS: two passes -------------------------------------------------------------------------

def separable(data: npt.NDArray[np.generic], valid: Bools, tx: Taps, ty: Taps, work: Work
              ) -> tuple[Floats, Floats]:
    """Resample along x then y. A window valid everywhere needs no validity plane: its support is
    the product of the two axes' in-window weights and the values use weights normalised per axis
    (the same quotient as warping value x validity and validity, factored)."""
    (ix, wx), (iy, wy) = tx, ty
    sx, sy = wx.sum(axis=0), wy.sum(axis=0)
    if valid.all():
        nx = (wx / np.where(sx > 0, sx, 1)).astype(work)
        ny = (wy / np.where(sy > 0, sy, 1)).astype(work)
        values = _two_passes(data.astype(work, copy=False), ix, nx, iy, ny)
        support = np.empty((len(sy), len(sx)), work)
        kernels.outer_support(sy, sx, support, values)        # and values 0 where it is 0
        return values, support[np.newaxis]
    n = data.shape[0]
    planes = np.empty((n + valid.shape[0],) + data.shape[1:], work)
    np.multiply(data, valid, out=planes[:n], casting="unsafe")
    planes[n:] = valid
    out = _two_passes(planes, ix, wx.astype(work), iy, wy.astype(work))
    return _quotient(out[:n], out[n:]), out[n:]


def _two_passes(planes: Floats, ix: Indexes, wx: Floats, iy: Indexes, wy: Floats) -> Floats:
    """sum_k wy[k] * (sum_j wx[j] * planes[:, iy[k], ix[j]]) for (bands, rows, cols) planes."""
    lo, hi = int(iy.min()), int(iy.max()) + 1          # only the rows some output row uses
    out: Floats = kernels.two_passes(np.ascontiguousarray(planes), ix, wx.astype(planes.dtype, copy=False),
                                     wx.any(axis=1), iy, wy.astype(planes.dtype, copy=False), wy.any(axis=1), lo, hi)
    return out


def _quotient(values: Floats, support: Floats) -> Floats:
    """values / support where support > 0, else 0: in place (values is the warp's own array)."""
    kernels.quotient(values, support if support.ndim == 3 else support[np.newaxis])
    return values


# --- another CRS: gathered taps -------------------------------------------------------------------

def gathered(data: npt.NDArray[np.generic], valid: Bools, positions: Positions, resampling: str,
             work: Work) -> tuple[Floats, Floats]:
    """Resample at per-cell source positions, nearest or bilinear, in two dimensions."""
    n, (height, width) = data.shape[0], data.shape[1:]
    everywhere = bool(valid.all())
    planes = data.astype(work, copy=False) if everywhere else \
        np.concatenate([np.multiply(data, valid, dtype=work), valid.astype(work)])
    if resampling == "nearest":
        px, py = positions.arrays()
        col, row = np.floor(px + 1e-10), np.floor(py + 1e-10)        # as GDAL: the pixel holding it
        inside = (col >= 0) & (col < width) & (row >= 0) & (row < height)
        out = np.take(planes.reshape(planes.shape[0], -1), _flat_index(row, col, height, width), axis=1)
        out *= inside
        if everywhere:
            return out, inside.astype(work)[np.newaxis]
        return _quotient(out[:n], out[n:]), out[n:]
    shape = (len(positions.k), positions.xv.shape[1])
    out = np.zeros((planes.shape[0],) + shape, work)
    weights = np.empty(shape, np.float32)
    p = positions
    interior = kernels.bilinear(np.ascontiguousarray(planes), p.xv, p.xd, p.yv, p.yd, p.k, p.t, *p.affine,
                                out, weights)
    if interior:                   # every tap of every cell inside the window: full weight
        if everywhere:
            return out, np.ones((1,) + shape, work)
        return _quotient(out[:n], out[n:]), out[n:]
    if everywhere:
        return _quotient(out, weights), weights[np.newaxis]
    return _quotient(out[:n], out[n:]), out[n:]


def _flat_index(row: Floats, col: Floats, height: int, width: int) -> Indexes:
    """Indexes into a (height * width) raveled plane, clipped into it."""
    r = _clipped(row, height)
    r *= width
    r += _clipped(col, width)
    return r


def _clipped(index: Floats, size: int) -> Indexes:
    """Float indexes as intp, clipped into [0, size)."""
    return np.clip(index, 0, size - 1).astype(np.intp)


@dataclass(frozen=True)
class Lattice:
    """Where a grid's cell centres lie in a source CRS, exactly at a lattice of cells: the lattice's
    cell indexes along each axis, the coordinates there as offsets from `origin` (a point of the
    grid: float32 offsets keep a millimetre's precision), and the largest miss of linear
    interpolation at the middles of lattice cells (source CRS units)."""

    rows: Nodes
    cols: Nodes
    origin: tuple[float, float]
    offsets: npt.NDArray[np.float32]    # (2, len(rows), len(cols)): x and y
    error: float


_LatticeKey = tuple[tuple[float, float, float, float], int, int, int]    # (bounds, width, height, step)


class Lattices:
    """The lattices of the few grids being drawn, per thread (a request's items share one)."""

    def __init__(self, size: int = 8):
        self.size = size
        self._local = threading.local()

    def get(self, grid: Grid, src_crs: CRS, step: int) -> Lattice | None:
        memo: OrderedDict[_LatticeKey, list[tuple[CRS, CRS, Lattice | None]]] | None = \
            getattr(self._local, "memo", None)
        if memo is None:
            memo = self._local.memo = OrderedDict()
        # Keyed by the grid's numbers; the CRSs are compared, not hashed: hashing a rasterio CRS
        # exports its WKT (~10 us, and this is asked twice per item).
        key = (grid.bounds, grid.width, grid.height, step)
        entries = memo.get(key)
        if entries is None:
            entries = memo[key] = []
        else:
            memo.move_to_end(key)
        for grid_crs, crs, found in entries:
            if grid_crs == grid.crs and crs == src_crs:
                return found
        found = lattice(grid.transform, grid.crs, (grid.height, grid.width), src_crs, step)
        entries.append((grid.crs, src_crs, found))
        while len(memo) > self.size:
            memo.popitem(last=False)
        return found


LATTICES = Lattices()


def lattice(dst_transform: Affine, dst_crs: CRS, shape: tuple[int, int], src_crs: CRS, step: int
            ) -> Lattice | None:
    """The lattice (every `step` cells) of a grid in `src_crs`, through GDAL's coordinate
    transformation across datums (so the same datum shifts as its warper), pyproj's within one
    (the same projection formulas, without GDAL's set-up per call); None when some coordinate is
    not finite or no transformation exists."""
    rows, cols = _nodes(shape[0], step), _nodes(shape[1], step)
    middle_rows, middle_cols = _middles(rows), _middles(cols)
    nodes = [np.meshgrid(cols, rows), np.meshgrid(middle_cols, middle_rows)]
    cc = np.concatenate([n[0].ravel() for n in nodes])
    rr = np.concatenate([n[1].ravel() for n in nodes])
    # the cell centres through the grid's transform: affine's arithmetic written out, its `*` being
    # typed for a point of floats while this is arrays of them
    t, vx, vy = dst_transform, cc + 0.5, rr + 0.5
    x, y = vx * t.a + vy * t.b + t.c, vx * t.d + vy * t.e + t.f
    try:
        if same_datum(dst_crs, src_crs):     # a conversion: pyproj's kept transformer, no set-up per call
            sx, sy = transformer(dst_crs, src_crs).transform(x, y, errcheck=False)
        else:                                # a datum shift: GDAL's choice of transformation, as its warper's
            sx, sy = transform_points(dst_crs, src_crs, x, y)
    except Exception:  # noqa: BLE001 -- no coordinate operation (a GDAL error): the warper decides
        return None
    exact = np.array([sx, sy])
    if not np.isfinite(exact).all():
        return None
    origin = exact[:, :1].copy()
    exact -= origin
    n = nodes[0][0].size
    offsets = exact[:, :n].reshape(2, len(rows), len(cols))
    middles = _interpolate(offsets, rows, cols, middle_rows, middle_cols)
    error = float(np.abs(middles - exact[:, n:].reshape(middles.shape)).max(initial=0.0))
    return Lattice(rows, cols, (float(origin[0, 0]), float(origin[1, 0])), offsets.astype(np.float32), error)


@dataclass(frozen=True)
class Positions:
    """The window's pixel positions of grid cells [rows, cols], half-way computed: the lattice
    interpolated along the columns at every cell column (`xv`, `yv`: one line per lattice row, and
    `xd`, `yd` their differences down the rows), then, per output row, the lattice row interval `k`
    and the fraction `t` along it; position = (d[k] t + v[k] + offset) * scale, all in float32.
    The last step is done per cell by the kernel (engine/kernels.py) or by `arrays`."""

    xv: npt.NDArray[np.float32]
    xd: npt.NDArray[np.float32]
    yv: npt.NDArray[np.float32]
    yd: npt.NDArray[np.float32]
    k: Indexes
    t: npt.NDArray[np.float32]
    affine: tuple[np.float32, np.float32, np.float32, np.float32]    # x offset, x scale, y offset, y scale

    def arrays(self) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """The positions as two (rows, cols) arrays."""
        (ox, sx, oy, sy), t = self.affine, self.t[:, np.newaxis]
        xs, ys = self.xd[self.k] * t, self.yd[self.k] * t
        xs += self.xv[self.k]
        ys += self.yv[self.k]
        xs += ox
        xs *= sx
        ys += oy
        ys *= sy
        return xs, ys


def _source_positions(lat: Lattice, src_transform: Affine, rows: slice, cols: slice) -> Positions | None:
    """The window's pixel positions (float32) of grid cells [rows, cols]; None when the lattice
    misses by more than _TOLERANCE source pixels."""
    if lat.error > _TOLERANCE * min(abs(src_transform.a), abs(src_transform.e)):
        return None
    xv, yv = _along(lat.offsets, lat.cols, np.arange(cols.start, cols.stop), rows=False)
    at = np.arange(rows.start, rows.stop)
    if len(lat.rows) == 1:        # one lattice row: every cell row takes it
        k, t = np.zeros(len(at), np.intp), np.zeros(len(at), np.float32)
        xd, yd = np.zeros_like(xv), np.zeros_like(yv)
    else:
        k, t64 = kernels.between(lat.rows, at.astype(np.float64))
        t = t64.astype(np.float32)
        xd, yd = np.diff(xv, axis=0), np.diff(yv, axis=0)
    affine = (np.float32(lat.origin[0] - src_transform.c), np.float32(1 / src_transform.a),
              np.float32(lat.origin[1] - src_transform.f), np.float32(1 / src_transform.e))
    return Positions(xv, xd, yv, yd, k, t, affine)


def _nodes(n: int, step: int) -> Nodes:
    """Cell indexes 0, step, 2 step ... and the last cell (evenly spread); one node for one cell."""
    if n == 1:
        return np.zeros(1)
    steps = math.ceil((n - 1) / step)
    return np.linspace(0, n - 1, steps + 1)


def _middles(nodes: Nodes) -> Nodes:
    return (nodes[:-1] + nodes[1:]) / 2 if len(nodes) > 1 else nodes


def _interpolate(values: Floats, rows: Nodes, cols: Nodes, at_rows: Cells, at_cols: Cells) -> Floats:
    """Bilinear interpolation of (k, len(rows), len(cols)) node values at the cells at_rows x at_cols."""
    return _along(_along(values, cols, at_cols, rows=False), rows, at_rows, rows=True)


def _along(values: Floats, nodes: Nodes, at: Cells, rows: bool) -> Floats:
    """Linear interpolation of (k, rows, cols) node values along the rows or the columns, at positions
    `at` (kernels.along: a handful of numpy calls on small arrays cost more than their arithmetic)."""
    out: Floats = kernels.along(np.ascontiguousarray(values), nodes, np.asarray(at, np.float64), rows)
    return out
