"""What one catalog item's own grid is (REST `{rasterId}/info`): its origin, cell size, extent in its
own CRS, internal block size, pixel type, overviews and statistics, from the catalog record and the
file. The engine's answer so that a face only lays it out and never reads files, parses WKT or
aggregates statistics itself (issue 20)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rasterio.crs import CRS

from .catalog import Item
from .rasterinfo import BandStats, aggregate_stats, crs_from_wkt
from .read import block_size
from .requests import pixel_type_of
from .service import ImageService


@dataclass(frozen=True, slots=True)
class ItemInfo:
    """One item's grid in its own CRS: `bounds` (xmin, ymin, xmax, ymax) hold every corner of a
    possibly rotated grid; `pixel_size` is the length of a cell's sides; `overview_levels` counts
    the file's overviews."""

    origin: tuple[float, float]
    pixel_size: tuple[float, float]
    bounds: tuple[float, float, float, float]
    crs: CRS
    block_size: tuple[int, int]
    band_count: int
    pixel_type: str
    overview_levels: int
    statistics: tuple[BandStats, ...]


def describe_item(service: ImageService, item: Item) -> ItemInfo:
    """The grid, block size and statistics of `item` (one of `service`'s)."""
    rec = service.catalog.record(item.oid)
    a, b, c, d, e, f = rec["transform"]
    width, height = rec["width"], rec["height"]
    xs = [c, c + a * width, c + b * height, c + a * width + b * height]
    ys = [f, f + d * width, f + e * height, f + d * width + e * height]
    return ItemInfo(
        origin=(c, f), pixel_size=(math.hypot(a, d), math.hypot(b, e)),
        bounds=(min(xs), min(ys), max(xs), max(ys)), crs=crs_from_wkt(rec["crs_wkt"]),
        block_size=block_size(item.path), band_count=rec["band_count"], pixel_type=pixel_type_of(rec["dtype"]),
        overview_levels=len(rec["overviews"] or []),
        statistics=aggregate_stats([rec["stats"]], rec["band_count"]))
