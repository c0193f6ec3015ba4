"""Histograms: bins per pixel type, counts of a set of values, and the whole service's histograms
(the `histograms` resource, and percentile and equalisation stretches over the service).

Apart from statistics.py because the function context (processed.py) needs the service's
histograms and statistics.py reads regions through the export path, which uses that context.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from . import read as reader
from .requests import SUB_BYTE_MAX
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

    def json(self) -> dict[str, int | float | list[int]]:
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


def service_histograms(service: ImageService) -> list[Histogram]:
    """Histograms of the whole service over the ranges of its statistics, from every item's
    decimated pixels (at most 256 a side, as the statistics were gathered); once per worker."""
    def compute() -> list[Histogram]:
        info = service.info
        shapes = [bins(info.pixel_type, s.min, s.max) for s in info.stats]
        counts = [np.zeros(size, dtype=np.int64) for size, _, _ in shapes]
        items = service.catalog.items()
        if info.multidimensional is not None:          # each band that is a slice counts
            items = info.multidimensional.expand(items)
        for item in items:
            data = reader.decimated(reader.POOL.get(item.path), _ITEM_SIZE)
            for band, (size, a, b), acc in zip(data, shapes, counts, strict=False):
                values = band.compressed().astype("f8")
                acc += _counts(values[np.isfinite(values)], size, a, b)
        return [Histogram(size, a, b, tuple(int(c) for c in acc))
                for (size, a, b), acc in zip(shapes, counts, strict=True)]
    found: list[Histogram] = service.cached("histograms", compute)
    return found
