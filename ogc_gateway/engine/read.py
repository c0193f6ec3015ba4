"""One catalog item into (part of) one target grid: dataset pool, overview choice, window, warp, mask.

Reading is split into `plan` (cheap: open from the pool, work out the window and overview) and
`read` (the pixels), so the engine can refuse a request over its source-pixel budget before any
pixel is read.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import rasterio
from affine import Affine
from rasterio.crs import CRS
from rasterio.enums import ColorInterp, Resampling
from rasterio.warp import reproject
from rasterio.windows import Window, from_bounds

from . import turns, warp
from .errors import InvalidParameter
from .geometry import points_to_crs
from .grid import reproject_bounds
from .nodata import nodata_validity
from .requests import Grid, round_into
from .warp import Bools, Floats, Work

Dataset = Any          # an open rasterio dataset (rasterio has no type annotations)
Bounds = tuple[float, float, float, float]
_Cache = OrderedDict[tuple[str, int | None], tuple[Dataset, tuple[int, int] | None]]

# GDAL settings in one place: block cache for re-read blocks, no directory listing on open.
for _key, _value in {"GDAL_CACHEMAX": "256", "GDAL_DISABLE_READDIR_ON_OPEN": "EMPTY_DIR",
                     "GDAL_PAM_ENABLED": "NO", "CPL_LOG_ERRORS": "OFF"}.items():
    os.environ.setdefault(_key, _value)

_RESAMPLING = {"nearest": Resampling.nearest, "bilinear": Resampling.bilinear,
               "cubic": Resampling.cubic, "mode": Resampling.mode}
# Source pixels of margin around a window, so a kernel at the window's edge has its neighbours.
_MARGIN = {"nearest": 1, "mode": 1, "bilinear": 2, "cubic": 3}


class DatasetPool:
    """Open datasets kept per thread (rasterio handles are not thread-safe), least recently used out."""

    def __init__(self, size: int = 64):
        self.size = size
        self._local = threading.local()
        self._epoch = 0

    def invalidate(self) -> None:
        """Have every thread reopen its datasets at their next use (the files may have changed)."""
        self._epoch += 1

    def get(self, path: str, overview_level: int | None = None) -> Dataset:
        cache: _Cache | None = getattr(self._local, "cache", None)
        if cache is None or self._local.epoch != self._epoch:
            for ds, _ in (cache or {}).values():
                ds.close()
            cache = self._local.cache = OrderedDict()
            self._local.epoch = self._epoch
        key = (path, overview_level)
        stamp = _stamp(path)
        held = cache.pop(key, None)
        if held is not None:
            if held[1] == stamp:
                cache[key] = held
                return held[0]
            held[0].close()                 # the file changed (or went away) since it was opened
        with turns.waiting():                    # opening reads the header (a network round trip on S3)
            if overview_level is None:
                ds = rasterio.open(path)
            else:
                ds = rasterio.open(path, overview_level=overview_level)
        cache[key] = (ds, stamp)
        while len(cache) > self.size:
            _, (old, _) = cache.popitem(last=False)
            old.close()
        return ds


def _stamp(path: str) -> tuple[int, int] | None:
    """(mtime, size) of a local file, so a changed file is reopened; None for GDAL virtual paths."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


POOL = DatasetPool()


@dataclass(frozen=True, slots=True)
class ReadPlan:
    """What to read from one item to fill the grid cells [row0:row1, col0:col1]."""

    path: str
    overview_level: int | None
    window: Window
    rows: slice
    cols: slice

    @property
    def source_pixels(self) -> int:
        return int(self.window.width) * int(self.window.height)


def data_band_indexes(ds: Dataset) -> list[int]:
    """1-based indexes of the bands that hold data (an alpha band is a mask, not a band)."""
    return [i for i, ci in enumerate(ds.colorinterp, start=1) if ci != ColorInterp.alpha] or [1]


def block_size(path: str, pool: DatasetPool = POOL) -> tuple[int, int]:
    """(width, height) of the file's internal blocks (tiles, or strips as wide as the image)."""
    rows, cols = pool.get(path).block_shapes[0]
    return cols, rows


def decimated(ds: Dataset, long_side: int) -> np.ma.MaskedArray:
    """An open dataset's data bands read whole at most `long_side` pixels a side (nearest, so
    values stay source values; GDAL takes an overview when one fits)."""
    scale = min(1.0, long_side / max(ds.width, ds.height))
    h, w = max(1, round(ds.height * scale)), max(1, round(ds.width * scale))
    bands = data_band_indexes(ds)
    out: np.ma.MaskedArray = ds.read(bands, out_shape=(len(bands), h, w), masked=True,
                                     resampling=Resampling.nearest)
    return out


def plan(path: str, grid: Grid, resampling: str, pool: DatasetPool = POOL) -> ReadPlan | None:
    """The overview and window of `path` that cover its overlap with `grid`; None if they don't meet."""
    ds = pool.get(path)
    try:
        item_in_grid = _item_bounds_in(tuple(ds.bounds), ds.crs, grid.crs)
    except ValueError:
        return None
    gx0, gy0, gx1, gy1 = grid.bounds
    ox0, oy0 = max(gx0, item_in_grid[0]), max(gy0, item_in_grid[1])
    ox1, oy1 = min(gx1, item_in_grid[2]), min(gy1, item_in_grid[3])
    if ox0 >= ox1 or oy0 >= oy1:
        return None
    # The grid cells the overlap touches (rounded outward).
    rx, ry = grid.res
    col0, col1 = max(0, math.floor((ox0 - gx0) / rx + 1e-9)), min(grid.width, math.ceil((ox1 - gx0) / rx - 1e-9))
    row0, row1 = max(0, math.floor((gy1 - oy1) / ry + 1e-9)), min(grid.height, math.ceil((gy1 - oy0) / ry - 1e-9))
    if col0 >= col1 or row0 >= row1:
        return None
    native = abs(ds.transform.a), abs(ds.transform.e)
    # The cells' box in the item's CRS: from the grid's lattice when it has one (warp.outline_box;
    # a quarter-pixel miss is harmless, the window has a margin of at least one), else by
    # transforming their outline.
    src_box = None
    if grid.crs != ds.crs:
        src_box = warp.outline_box(grid, ds.crs, slice(row0, row1), slice(col0, col1), min(native) / 4)
    if src_box is None:
        try:
            src_box = _bounds_in(_subgrid_bounds(grid, row0, row1, col0, col1), grid.crs, ds.crs)
        except ValueError:
            return None
    # Source cells per output cell along each axis decides the overview (largest not coarser than needed).
    ratio = min((src_box[2] - src_box[0]) / native[0] / (col1 - col0),
                (src_box[3] - src_box[1]) / native[1] / (row1 - row0))
    level = None
    for i, f in enumerate(ds.overviews(1) or []):
        if f <= ratio * 1.0001:
            level = i
    src = pool.get(path, level) if level is not None else ds
    margin = _MARGIN[resampling]
    win = _window_of(src_box, src.transform)
    c0 = max(0, math.floor(win.col_off) - margin)
    r0 = max(0, math.floor(win.row_off) - margin)
    c1 = min(src.width, math.ceil(win.col_off + win.width) + margin)
    r1 = min(src.height, math.ceil(win.row_off + win.height) + margin)
    if c0 >= c1 or r0 >= r1:
        return None
    return ReadPlan(path, level, Window(c0, r0, c1 - c0, r1 - r0), slice(row0, row1), slice(col0, col1))


def read(p: ReadPlan, grid: Grid, resampling: str, pool: DatasetPool = POOL
         ) -> tuple[np.ma.MaskedArray, Bools]:
    """The item's pixels warped into grid cells [p.rows, p.cols], masked where it has no data, and
    where each cell's kernel had only valid source pixels (`full`).

    Kernels weigh only valid source pixels (validity from nodata, alpha or an internal mask), so
    nodata values never smear in. One warp carries value x validity and validity itself; their
    ratio is the valid-weighted value and validity's own warp is each cell's support. A cell at an
    item's edge keeps a value from its valid neighbours but is not `full`: a mosaic prefers a
    neighbouring item's fully supported value there. (Majority cannot weigh: it warps validity
    as an alpha band instead.) engine/warp.py computes the usual cases (nearest, bilinear, cubic
    on north-up grids) in numpy without the warper's per-call set-up; GDAL's warper does the rest.
    """
    src = pool.get(p.path, p.overview_level)
    bands = data_band_indexes(src)
    with turns.waiting():                    # another request may compute while this one reads
        data: npt.NDArray[np.generic] = src.read(bands, window=p.window)
    valid = band_validity(src, bands, p.window, data)
    work: Work = np.float64 if data.dtype.itemsize >= 4 and data.dtype.kind in "iu" or data.dtype == np.float64 \
        else np.float32
    window_transform = src.transform * Affine.translation(p.window.col_off, p.window.row_off)
    done = warp.resample(data, valid, window_transform, src.crs, grid, p.rows, p.cols, resampling, work)
    if done is None:
        done = _gdal_warp(src, p, data, valid, grid, resampling, work)
    values, support = done                     # support: (k, rows, cols), k = 1 or one per band
    mask = support < 0.5
    full = support.max(axis=0) > 0.999
    values = round_into(values, data.dtype)
    return np.ma.MaskedArray(values, mask=np.broadcast_to(mask, values.shape).copy()), full


def _gdal_warp(src: Dataset, p: ReadPlan, data: npt.NDArray[np.generic], valid: Bools, grid: Grid,
               resampling: str, work: Work) -> tuple[Floats, Floats]:
    """(values, support) through GDAL's warper, for what engine/warp.py does not do (majority,
    cubic across CRSs, rotated grids, positions a lattice cannot follow)."""
    n, k = data.shape[0], valid.shape[0]
    # Where the window meets the raster's edge, a ring of invalid pixels tells the warper that
    # a kernel reaching past the edge lacks support (it would silently renormalise otherwise).
    win = p.window
    pad = _MARGIN[resampling]
    top, left = (pad if win.row_off == 0 else 0), (pad if win.col_off == 0 else 0)
    bottom = pad if win.row_off + win.height >= src.height else 0
    right = pad if win.col_off + win.width >= src.width else 0
    stack = np.zeros((n + k, data.shape[1] + top + bottom, data.shape[2] + left + right), work)
    inner = (slice(top, top + data.shape[1]), slice(left, left + data.shape[2]))
    stack[(slice(None, n),) + inner] = np.where(valid, data, 0)
    stack[(slice(n, None),) + inner] = valid
    src_transform = src.window_transform(Window(win.col_off - left, win.row_off - top,
                                                win.width + left + right, win.height + top + bottom))
    rows, cols = p.rows.stop - p.rows.start, p.cols.stop - p.cols.start
    out = np.zeros((n + k, rows, cols), dtype=work)
    dst_transform = grid.transform @ Affine.translation(p.cols.start, p.rows.start)
    warp_options = dict(src_transform=src_transform, src_crs=src.crs, dst_transform=dst_transform,
                        dst_crs=grid.crs, resampling=_RESAMPLING[resampling], init_dest_nodata=False,
                        # a plain kernel: GDAL widens it when downsampling (slower, and it blurs),
                        # while the overview choice already keeps the scale ratio under 2
                        XSCALE=1, YSCALE=1)
    if resampling == "mode":
        support = _mode_warp(stack, out, n, warp_options)
        return out[:n], support
    reproject(stack, out, **warp_options)
    support = out[n:]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(support > 0, out[:n] / support, 0), support


def band_validity(src: Dataset, bands: list[int], window: Window, data: npt.NDArray[np.generic] | None = None
                  ) -> Bools:
    """(k, rows, cols) 0/1 validity of a window: one layer when every band has the same mask (an
    alpha band, an internal mask, nodata on all bands at once), else one per band - per-band nodata
    (a Landsat pixel [0, 5, 7] with nodata 0) masks only the band that holds it, so valid values
    of the other bands are never lost. With the window's `data` already read, a mask that is only
    a nodata value is computed from it (engine/nodata.py) instead of a second read through GDAL."""
    masks = nodata_validity(src, bands, data) if data is not None else None
    if masks is None:
        with turns.waiting():
            masks = src.read_masks(bands, window=window) > 0
    if len(bands) == 1 or (masks == masks[:1]).all():
        return masks[:1]
    return masks


def _mode_warp(stack: Floats, out: Floats, n: int, warp: dict[str, Any]) -> Floats:
    """Majority cannot weigh: validity goes as an alpha band (any band valid), and per-band
    validity, when bands differ, by a nearest warp of its own. Returns (k, rows, cols) support."""
    k = stack.shape[0] - n
    alpha = np.concatenate([stack[:n], stack[n:].max(axis=0, keepdims=True) * 255])
    dest = np.zeros((n + 1,) + out.shape[1:], out.dtype)
    reproject(alpha, dest, src_alpha=n + 1, dst_alpha=n + 1, **warp)
    out[:n] = dest[:n]
    support = dest[n:] / 255
    if k > 1:
        per_band = np.zeros((k,) + out.shape[1:], out.dtype)
        reproject(np.ascontiguousarray(stack[n:]), per_band, **{**warp, "resampling": Resampling.nearest})
        support = np.minimum(support, per_band)
    return support


def _bounds_in(bounds: Bounds, src_crs: CRS, dst_crs: CRS) -> Bounds:
    """Bounds reprojected; ValueError when the CRSs cannot express each other there."""
    try:
        return reproject_bounds(bounds, src_crs, dst_crs)
    except InvalidParameter as exc:
        raise ValueError(exc.why) from exc


def _window_of(bounds: Bounds, transform: Affine) -> Window:
    """The fractional window of `bounds` (rasterio's from_bounds, by hand for north-up rasters:
    its general path costs more than the rest of a plan)."""
    if transform.b or transform.d or transform.a <= 0 or transform.e >= 0:
        return from_bounds(*bounds, transform=transform)
    x0, y0, x1, y1 = bounds
    col0, col1 = (x0 - transform.c) / transform.a, (x1 - transform.c) / transform.a
    row0, row1 = (y1 - transform.f) / transform.e, (y0 - transform.f) / transform.e
    return Window(col0, row0, col1 - col0, row1 - row0)


_ITEM_BOUNDS: dict[Bounds, list[tuple[CRS, CRS, Bounds]]] = {}


def _item_bounds_in(bounds: Bounds, src_crs: CRS, dst_crs: CRS) -> Bounds:
    """An item's bounds in a grid's CRS: the same few for every request in that CRS, and a
    densified transformation costs more than the rest of planning a read. Kept by the bounds,
    the CRSs compared rather than hashed (a rasterio CRS hashes its exported WKT, ~10 us each);
    forgotten all at once past 1024 bounds (or 16 CRS pairs for one)."""
    entries = _ITEM_BOUNDS.get(bounds)
    if entries is None:
        if len(_ITEM_BOUNDS) >= 1024:
            _ITEM_BOUNDS.clear()
        entries = _ITEM_BOUNDS[bounds] = []
    for src, dst, found in entries:
        if src == src_crs and dst == dst_crs:
            return found
    found = _bounds_in(bounds, src_crs, dst_crs)          # a ValueError is not kept, as before
    if len(entries) >= 16:                               # requests in many CRSs: keep the scan short
        entries.clear()
    entries.append((src_crs, dst_crs, found))
    return found


def _subgrid_bounds(grid: Grid, row0: int, row1: int, col0: int, col1: int) -> Bounds:
    rx, ry = grid.res
    x0, _, _, y1 = grid.bounds
    return x0 + col0 * rx, y1 - row1 * ry, x0 + col1 * rx, y1 - row0 * ry


def _kernel(t: np.float64, resampling: str) -> tuple[int, npt.NDArray[np.float64]]:
    """First tap offset and weights of a 1-D interpolation kernel at fractional offset t."""
    if resampling == "bilinear":
        return 0, np.array([1 - t, t])
    a = -0.5                                       # Keys' cubic convolution, as GDAL's "cubic"
    d = np.array([1 + t, t, 1 - t, 2 - t])
    near = ((a + 2) * d ** 3 - (a + 3) * d ** 2 + 1)
    far = (a * d ** 3 - 5 * a * d ** 2 + 8 * a * d - 4 * a)
    return -1, np.where(d <= 1, near, far)


def sample(path: str, xs: npt.ArrayLike, ys: npt.ArrayLike, crs: CRS, resampling: str = "nearest",
           pool: DatasetPool = POOL) -> np.ma.MaskedArray:
    """Values of an item at points (given in `crs`) from its full-resolution pixels:
    (points, bands) float64, masked where the item has no data.

    nearest (and mode) take the pixel containing the point; bilinear and cubic weigh the valid
    neighbours only, and a point whose own pixel is nodata stays nodata (as a warp would).
    """
    ds = pool.get(path)
    bands = data_band_indexes(ds)
    px, py = points_to_crs(xs, ys, crs, ds.crs)
    # numpy's stubs leave np.ma.masked_all unannotated
    out: np.ma.MaskedArray = np.ma.masked_all((len(px), len(bands)), dtype="f8")  # type: ignore[no-untyped-call]
    inverse = ~ds.transform
    for k, (x, y) in enumerate(zip(px, py)):
        if not (math.isfinite(x) and math.isfinite(y)):
            continue
        col, row = inverse * (x, y)
        c, r = math.floor(col), math.floor(row)
        if not (0 <= c < ds.width and 0 <= r < ds.height):
            continue
        if resampling in ("nearest", "mode"):
            window = Window(c, r, 1, 1)
            valid = ds.read_masks(bands, window=window)[:, 0, 0] > 0
            if valid.any():
                values = ds.read(bands, window=window)[:, 0, 0].astype("f8")
                out[k] = np.ma.MaskedArray(values, mask=~valid)
            continue
        fx, fy = col - 0.5, row - 0.5
        c0, r0 = math.floor(fx), math.floor(fy)
        start, wx = _kernel(np.float64(fx - c0), resampling)
        _, wy = _kernel(np.float64(fy - r0), resampling)
        taps = len(wx)
        window = Window(c0 + start, r0 + start, taps, taps)
        values = ds.read(bands, window=window, boundless=True, fill_value=0).astype("f8")
        valid = ds.read_masks(bands, window=window, boundless=True) > 0
        if not valid[:, r - (r0 + start), c - (c0 + start)].any():
            continue
        weights = np.outer(wy, wx)[np.newaxis] * valid
        total = weights.sum(axis=(1, 2))
        with np.errstate(invalid="ignore", divide="ignore"):
            result = (values * weights).sum(axis=(1, 2)) / total
        out[k] = np.ma.MaskedArray(result, mask=~valid[:, r - (r0 + start), c - (c0 + start)])
    return out
