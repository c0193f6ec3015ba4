"""What is known about a rendering rule's output before a request computes it: its value
distribution (the root JSON's statistics for `?renderingRule=`, the default 8-bit stretch of a
rule's output, stretches and colour ramps over a processed input) and the service's colour table.

A rule's distribution comes from one render of the service's whole extent at about 256 pixels a
side, once per rule and worker (templates and ad-hoc rules alike, an ad-hoc rule among the last
64 kept), so every tile of a rule is stretched from the same numbers. The service's own raster
("$$") uses the service's statistics and histograms.

Pixels are read through a `Read` function the caller passes in (export.py passes its mosaic and
item readers), so this module and the export path that uses it do not import each other.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from . import read as reader
from .errors import TooLarge
from .functions import BandDistribution, FunctionContext, apply, rule_key
from .histograms import service_histograms
from .names import Resampling
from .requests import ExportRequest, Grid, Raster, RenderingRule
from .service import ImageService

# The export path's reader: the mosaic (oid None) or one item (the "$<oid>" raster) on a request's grid.
# A colour table as rasterio gives it: value -> (red, green, blue, alpha)
ColorTable = dict[int, tuple[int, int, int, int]]
Read = Callable[[ImageService, ExportRequest, "int | None"], Raster]

RENDER_SIZE = 256
_KEPT = 64                  # ad-hoc rules remembered per service and worker
_POINTS = 4096              # order statistics kept per band (percentiles to 1/4096)


V = TypeVar("V")


class _Recent(Generic[V]):
    """A small least-recently-used memo, safe across threads (a value may be computed twice)."""

    def __init__(self, size: int) -> None:
        self.size, self._lock = size, threading.Lock()
        self._items: OrderedDict[str, V] = OrderedDict()

    def get(self, key: str, compute: Callable[[], V]) -> V:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        value = compute()
        with self._lock:
            self._items[key] = value
            while len(self._items) > self.size:
                self._items.popitem(last=False)
        return value


def overview_grid(service: ImageService) -> Grid:
    """The service's whole extent, RENDER_SIZE pixels along its longer side."""
    info = service.info
    xmin, ymin, xmax, ymax = info.extent
    scale = max(xmax - xmin, ymax - ymin) / RENDER_SIZE
    return Grid(info.crs, info.extent, max(1, round((xmax - xmin) / scale)), max(1, round((ymax - ymin) / scale)))


def rule_distribution(service: ImageService, rule: RenderingRule, read: Read) -> tuple[BandDistribution, ...] | None:
    """Per band, the distribution of a rule's output over the service; None when the service is too
    large to render whole at low resolution (more items than max_mosaic_image_count)."""
    memo: _Recent[tuple[BandDistribution, ...] | None] = service.cached(
        "processed-distributions", lambda: _Recent(_KEPT))

    def compute() -> tuple[BandDistribution, ...] | None:
        req = ExportRequest(grid=overview_grid(service), rendering_rule=rule, resampling=Resampling.NEAREST)
        try:
            out = apply(rule, context(service, req, read))
        except TooLarge:
            return None
        return tuple(BandDistribution.of(band.compressed(), _POINTS) for band in out.data)

    return memo.get(rule_key(rule), compute)


def distribution(service: ImageService, value: Any, shape: bool, read: Read) -> tuple[BandDistribution, ...]:
    """The distribution of a raster argument: a rule's (above), else the service's statistics
    (and, with `shape`, its histograms, for percentiles and equalisation)."""
    if isinstance(value, RenderingRule):
        return rule_distribution(service, value, read) or ()
    stats = service.info.stats
    if not shape:
        return tuple(BandDistribution(s.min, s.max, s.mean, s.stdv) for s in stats)
    return tuple(BandDistribution.of_histogram((s.min, s.max, s.mean, s.stdv), h.min, h.max, h.counts)
                 for s, h in zip(stats, service_histograms(service)))


def colortable(service: ImageService) -> ColorTable | None:
    """The colour table of the service's first band (from its first item), if it has one."""
    def compute() -> ColorTable | None:
        items = service.catalog.items()
        if not items:
            return None
        try:
            return dict(reader.POOL.get(items[0].path).colormap(1))
        except ValueError:
            return None
    table: ColorTable | None = service.cached("colortable", compute)
    return table


def context(service: ImageService, req: ExportRequest, read: Read) -> FunctionContext:
    """What raster functions may ask for while answering `req`: its mosaic or one item on any grid
    (through `read`), distributions, the service's CRS and colour table."""
    def read_on(oid: int | None, grid: Grid, resampling: str | None) -> Raster:
        sub = ExportRequest(grid=grid, mosaic_rule=req.mosaic_rule, time=req.time,
                            resampling=Resampling(resampling) if resampling else req.resampling)
        return read(service, sub, oid)

    return FunctionContext(grid=req.grid, read=read_on,
                           distribution=lambda value, shape: distribution(service, value, shape, read),
                           service_crs=service.info.crs, colortable=lambda: colortable(service))
