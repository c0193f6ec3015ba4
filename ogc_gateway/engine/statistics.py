"""Histograms and statistics of a region (computeHistograms, computeStatisticsHistograms) and of the
whole service (the `histograms` and `statistics` resources).

A region is read through the export path on a grid aligned with the service's native pixels, so
at the native pixel size every source pixel is counted once; pixels whose centre lies outside
the polygon are left out.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from rasterio.features import geometry_mask

from . import read as reader
from .errors import InvalidParameter, TooLarge
from .export import export
from .requests import SUB_BYTE_MAX, ExportRequest, Grid, MosaicRule, Raster, RenderingRule, TimeWindow
from .service import ImageService

_BINS = 256
_ITEM_SIZE = 256            # long side of each item's read behind the service-wide histograms
_TYPE_RANGE = {"U8": (0, 255), "S8": (-128, 127)} | {t: (0, m) for t, m in SUB_BYTE_MAX.items()}


@dataclass(frozen=True)
class Histogram:
    size: int
    min: float
    max: float
    counts: tuple[int, ...]

    def json(self) -> dict:
        return {"size": self.size, "min": self.min, "max": self.max, "counts": list(self.counts)}


def bins(pixel_type: str, lo: float, hi: float) -> tuple[int, float, float]:
    """(size, min, max) of a histogram: 8-bit and smaller types one bin per value over the type's
    range (U8: 256 bins from -0.5 to 255.5); other integers one bin per value when the data spans
    at most 256 values, else 256 bins; floats 256 bins from the data's min to its max."""
    if pixel_type in _TYPE_RANGE:
        a, b = _TYPE_RANGE[pixel_type]
        return b - a + 1, a - 0.5, b + 0.5
    if pixel_type.startswith(("U", "S")):
        lo, hi = math.floor(lo), math.ceil(hi)
        return min(_BINS, int(hi - lo) + 1), lo - 0.5, hi + 0.5
    if not hi > lo:
        hi = lo + 1.0
    return _BINS, float(lo), float(hi)


def histogram(values: np.ndarray, pixel_type: str, lo: float | None = None, hi: float | None = None) -> Histogram:
    """Counts of finite `values` in the bins for `pixel_type` over [lo, hi] (default: their range);
    values outside the range go to the end bins."""
    values = values[np.isfinite(values)].astype("f8")
    if lo is None or hi is None:
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 1.0)
    size, a, b = bins(pixel_type, lo, hi)
    return Histogram(size, a, b, tuple(int(c) for c in _counts(values, size, a, b)))


def _counts(values: np.ndarray, size: int, a: float, b: float) -> np.ndarray:
    idx = np.clip(np.floor((values - a) / (b - a) * size), 0, size - 1).astype(np.int64)
    return np.bincount(idx, minlength=size)


def band_statistics(values: np.ndarray) -> dict:
    values = values[np.isfinite(values)].astype("f8")
    if values.size == 0:
        return {"min": None, "max": None, "mean": None, "standardDeviation": None, "median": None,
                "count": 0, "skipX": 1, "skipY": 1}
    return {"min": float(values.min()), "max": float(values.max()), "mean": float(values.mean()),
            "standardDeviation": float(values.std()), "median": float(np.median(values)),
            "count": int(values.size), "skipX": 1, "skipY": 1}


def region(service: ImageService, geometry, *, mosaic_rule: MosaicRule | None = None,
           rendering_rule: RenderingRule | None = None, pixel_size: float | None = None,
           time: TimeWindow | None = None) -> Raster:
    """The processed pixels of a polygon or envelope (service CRS), masked outside it."""
    info = service.info
    size = pixel_size or info.cell_size[0]
    if not size > 0:
        raise InvalidParameter("pixelSize", "must be positive")
    ox, oy = info.extent[0], info.extent[3]             # snap to the service's pixel grid
    xmin, ymin, xmax, ymax = geometry.bounds
    x0 = ox + math.floor((xmin - ox) / size + 1e-9) * size
    x1 = ox + math.ceil((xmax - ox) / size - 1e-9) * size
    y1 = oy - math.floor((oy - ymax) / size + 1e-9) * size
    y0 = oy - math.ceil((oy - ymin) / size - 1e-9) * size
    width, height = max(1, round((x1 - x0) / size)), max(1, round((y1 - y0) / size))
    limits = info.limits
    if width > limits.max_image_width or height > limits.max_image_height:
        raise TooLarge("pixelSize", f"the region is {width}x{height} pixels at pixel size {size:g}; the "
                                    f"limit is {limits.max_image_width}x{limits.max_image_height} "
                                    "(ask with a larger pixelSize)")
    grid = Grid(info.crs, (x0, y0, x0 + width * size, y1), width, height)
    raster = export(service, ExportRequest(grid=grid, mosaic_rule=mosaic_rule, rendering_rule=rendering_rule,
                                           time=time, resampling="nearest"))
    if geometry.geom_type in ("Polygon", "MultiPolygon"):
        outside = geometry_mask([geometry], out_shape=(height, width), transform=grid.transform)
        data = raster.data
        raster = Raster(np.ma.MaskedArray(data.data, mask=np.ma.getmaskarray(data) | outside[np.newaxis]),
                        raster.grid, raster.band_names, raster.pixel_type, raster.nodata)
    return raster


def raster_histograms(raster: Raster) -> list[Histogram]:
    return [histogram(band.compressed(), raster.pixel_type) for band in raster.data]


def raster_statistics(raster: Raster) -> list[dict]:
    return [band_statistics(band.compressed()) for band in raster.data]


def service_histograms(service: ImageService) -> list[Histogram]:
    """Histograms of the whole service over the ranges of its statistics, from every item's
    decimated pixels (at most 256 a side, as the statistics were gathered); once per worker."""
    def compute():
        info = service.info
        shapes = [bins(info.pixel_type, s.min, s.max) for s in info.stats]
        counts = [np.zeros(size, dtype=np.int64) for size, _, _ in shapes]
        items = service.catalog.items()
        if info.multidimensional is not None:          # each band that is a slice counts
            items = info.multidimensional.expand(items)
        for item in items:
            data = reader.decimated(reader.POOL.get(item.path), _ITEM_SIZE)
            for band, (size, a, b), acc in zip(data, shapes, counts):
                values = band.compressed().astype("f8")
                acc += _counts(values[np.isfinite(values)], size, a, b)
        return [Histogram(size, a, b, tuple(int(c) for c in acc)) for (size, a, b), acc in zip(shapes, counts)]
    return service.cached("histograms", compute)
