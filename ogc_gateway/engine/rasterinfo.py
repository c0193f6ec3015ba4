"""What the catalog learns from one raster file: its grid, bands, tags, statistics and valid-data
outline (read once, when the file is added), its footprint in the service CRS, and the service
statistics that the items' partial sums add up to."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import rasterio
import shapely
from affine import Affine
from rasterio.crs import CRS
from rasterio.features import shapes
from rasterio.io import DatasetReader
from shapely.geometry import Polygon, box, shape

from . import sources
from .badfiles import BAD_FILE_ERRORS
from .geometry import points_to_crs
from .read import data_band_indexes, decimated

_STATS_SIZE = 512          # long side of the decimated read that feeds the statistics
_DENSIFY = 10              # points per side of a footprint ring


@dataclass(frozen=True, slots=True)
class BandStats:
    min: float
    max: float
    mean: float
    stdv: float



def _partial_stats(ds: DatasetReader, data: np.ma.MaskedArray) -> list[list[float | None]]:
    """Per band [count, sum, sum of squares, min, max] of valid pixels from a decimated read.

    Sums are scaled by the decimation factor so that items of different sizes weigh by their true
    pixel counts when the service aggregates them."""
    weight = (ds.width * ds.height) / (data.shape[1] * data.shape[2])
    out = []
    for band in data:
        values = np.ma.compressed(band).astype("f8")
        values = values[np.isfinite(values)]
        if values.size == 0:
            out.append([0.0, 0.0, 0.0, None, None])
            continue
        out.append([values.size * weight, float(values.sum()) * weight,
                    float(np.square(values).sum()) * weight, float(values.min()), float(values.max())])
    return out


def read_raster(path: str) -> dict[str, Any]:
    """Everything the catalog keeps about one file (the only place that opens it)."""
    st = sources.stat(path)
    if st is None:
        raise FileNotFoundError(2, "No such file or directory", path)
    with rasterio.open(path) as ds:
        if ds.crs is None:
            raise ValueError("has no CRS")
        tags = {k: v for k, v in ds.tags().items() if k != "AREA_OR_POINT"}
        bands = data_band_indexes(ds)          # an alpha band is the mask, not a band of the service
        coarse = decimated(ds, _STATS_SIZE)
        return {
            "mtime_ns": st[0], "size": st[1], "crs_wkt": ds.crs.to_wkt(),
            "transform": json.dumps(list(ds.transform)[:6]), "width": ds.width, "height": ds.height,
            "band_count": len(bands), "dtype": np.dtype(ds.dtypes[0]).name,
            "nodata": json.dumps(None if ds.nodata is None else float(ds.nodata)),
            "band_names": json.dumps([ds.descriptions[i - 1] for i in bands]),
            "overviews": json.dumps(ds.overviews(1)),
            "tags": json.dumps(tags), "stats": json.dumps(_partial_stats(ds, coarse)),
            "outline": json.dumps(data_outline(coarse, ds.width, ds.height, on_earth(ds, coarse.shape[1:]))),
        }


def on_earth(ds: DatasetReader, shape: tuple[int, int]) -> np.ndarray | None:
    """Which cells of a (rows, cols) lattice over the file lie on the Earth (have a longitude and
    latitude), or None when all do. A geostationary full disk's corners do not: its footprint is the
    disk, so that it can be taken into other CRSs at all."""
    rows, cols = shape
    a, b, c, d, e, f = list(ds.transform)[:6]
    cc, rr = np.meshgrid((np.arange(cols) + 0.5) * ds.width / cols, (np.arange(rows) + 0.5) * ds.height / rows)
    try:
        lon, lat = points_to_crs(a * cc + b * rr + c, d * cc + e * rr + f, ds.crs, CRS.from_epsg(4326))
    except Exception:              # a CRS with no geographic counterpart (engineering): nothing to say
        return None
    exists = np.isfinite(lon) & np.isfinite(lat)
    return None if exists.all() else exists.reshape(shape)


def read_files(paths: list[str]) -> list[tuple[str, dict[str, Any] | str]]:
    """`read_raster` of each file: its record, or why it is not a usable raster (a sync skips it).
    Pure and picklable, so a sync can run it on Spark executors as well as here."""
    done: list[tuple[str, dict[str, Any] | str]] = []
    for path in paths:
        try:
            done.append((path, read_raster(path)))
        except BAD_FILE_ERRORS as exc:
            done.append((path, f"not a usable raster ({exc})"))
    return done


def data_outline(coarse: np.ma.MaskedArray, width: int, height: int,
                 exists: np.ndarray | None = None) -> list[tuple[float, float]] | None:
    """The outline of an item's valid data, in its own pixel coordinates (col, row), from a coarse
    read of its mask; None when every pixel is valid (the grid itself is the outline).

    Traced at the coarse resolution, grown by one coarse pixel and simplified, then clipped to the
    grid: a little generous, never cutting valid pixels off. Holes are dropped (the reader's mask
    keeps them out of a mosaic) and separate parts are joined by their convex hull, so a footprint
    stays one ring.
    """
    valid = ~np.ma.getmaskarray(coarse).all(axis=0)        # any band valid: per-band nodata keeps a pixel
    if exists is not None:
        valid &= exists
    if valid.all() or not valid.any() or exists is not None and not exists.any():
        return None
    step_x, step_y = width / valid.shape[1], height / valid.shape[0]
    parts = [shape(geom) for geom, _ in shapes(valid.astype("uint8"), mask=valid,
                                               transform=Affine.scale(step_x, step_y))]
    step = max(step_x, step_y)
    region = shapely.union_all(parts).buffer(step, join_style="mitre").simplify(step / 2)
    region = region.intersection(box(0, 0, width, height))
    if exists is not None:         # never grown off the Earth: a ring point there has no place elsewhere
        earth = shapely.union_all([shape(g) for g, _ in shapes(exists.astype("uint8"), mask=exists,
                                                               transform=Affine.scale(step_x, step_y))])
        region = region.intersection(earth.buffer(-step, join_style="mitre"))
    outline = region if isinstance(region, Polygon) else region.convex_hull
    if not isinstance(outline, Polygon):
        raise ValueError(f"the footprint is a {outline.geom_type}, not an area")
    ring = shapely.segmentize(outline.exterior, max(width, height) / _DENSIFY)   # curves survive reprojection
    return [(float(x), float(y)) for x, y in ring.coords]


@lru_cache(maxsize=256)
def crs_from_wkt(wkt: str) -> CRS:
    """A CRS per distinct WKT, parsed once."""
    return CRS.from_wkt(wkt)


def footprint_ring(crs_wkt: str, transform: list[float], width: int, height: int,
                   dst_wkt: str, outline: list[tuple[float, float]] | None = None) -> list[tuple[float, float]]:
    """The item's valid-data `outline` (pixel coordinates; default: the whole pixel grid, densified
    so curvature survives reprojection) in the service CRS; closed (first point repeated)."""
    if outline is None:
        steps = np.arange(_DENSIFY) / _DENSIFY
        cols = np.concatenate([steps * width, np.full(_DENSIFY, width), (1 - steps) * width, np.zeros(_DENSIFY)])
        rows = np.concatenate([np.zeros(_DENSIFY), steps * height, np.full(_DENSIFY, height), (1 - steps) * height])
    else:
        cols, rows = np.asarray(outline[:-1], dtype="f8").T
    a, b, c, d, e, f = transform
    xs, ys = a * cols + b * rows + c, d * cols + e * rows + f
    if crs_from_wkt(crs_wkt) != crs_from_wkt(dst_wkt):
        xs, ys = points_to_crs(xs, ys, crs_from_wkt(crs_wkt), crs_from_wkt(dst_wkt))
    exists = np.isfinite(xs) & np.isfinite(ys)
    if outline is None and not exists.all():        # grid edges off the Earth: the outline has to say
        raise ValueError("footprint cannot be expressed in the service CRS")
    xs, ys = xs[exists], ys[exists]                 # an outline's points off dst's domain are dropped
    if len(xs) < 3:
        raise ValueError("footprint cannot be expressed in the service CRS")
    ring = list(zip(xs.tolist(), ys.tolist()))
    return ring + [ring[0]]


def ring_area(ring: list[tuple[float, float]]) -> float:
    """Shoelace area of a closed ring."""
    xs, ys = np.asarray(ring, dtype="f8").T
    return float(abs(np.dot(xs[:-1], ys[1:]) - np.dot(xs[1:], ys[:-1])) / 2)


def ring_polygons(rings: list[list[tuple[float, float]]]) -> np.ndarray:
    """Polygons of many closed rings at once (shapely's vectorised constructors)."""
    if not rings:
        return np.empty(0, dtype=object)
    coords = np.concatenate([np.asarray(r, dtype="f8") for r in rings])
    index = np.repeat(np.arange(len(rings)), [len(r) for r in rings])
    return np.asarray(shapely.polygons(shapely.linearrings(coords, indices=index)), dtype=object)


def ring_bounds(ring: list[tuple[float, float]]) -> tuple[float, float, float, float]:
    xs, ys = np.asarray(ring, dtype="f8").T
    return float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())


def aggregate_stats(partials: list[list[list[float | None]]], band_count: int) -> tuple[BandStats, ...]:
    """Service statistics from each item's [count, sum, sumsq, min, max] per band (population stdv);
    a band with no valid pixel anywhere gets zeros."""
    out = []
    for b in range(band_count):
        # a band with a count has all five numbers (min and max are None only when it has none)
        parts = [[0.0 if v is None else v for v in p[b]] for p in partials if b < len(p) and p[b][0]]
        n = sum(p[0] for p in parts)
        if not n:
            out.append(BandStats(0.0, 0.0, 0.0, 0.0))
            continue
        mean = sum(p[1] for p in parts) / n
        var = max(0.0, sum(p[2] for p in parts) / n - mean * mean)
        out.append(BandStats(min(p[3] for p in parts), max(p[4] for p in parts), mean, math.sqrt(var)))
    return tuple(out)
