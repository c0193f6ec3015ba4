"""Each catalog item's own values at one point given in any CRS (WMS GetFeatureInfo): the point
carried into the service's CRS, the items beneath it sampled in mosaic order, nodata as None. The
engine's answer so that a face reprojects nothing and holds no masked arrays (issue 20)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from rasterio.crs import CRS

from .catalog import Item
from .geometry import points_to_crs
from .names import Resampling
from .requests import MosaicRule, SampleRequest, TimeWindow
from .sample import identify
from .service import ImageService


@dataclass(frozen=True, slots=True)
class ItemValues:
    """One item with data at the point: a value per band, None where the band has none."""

    item: Item
    values: tuple[float | None, ...]


def item_values_at(service: ImageService, crs: CRS, x: float, y: float, *, rule: MosaicRule,
                   time: TimeWindow | None, count: int) -> tuple[ItemValues, ...]:
    """Up to `count` items of `rule`'s mosaic order with some data at (x, y) (in `crs`), sampled at
    the nearest cell; none when the point has no place in the service's CRS."""
    xs, ys = points_to_crs([x], [y], crs, service.info.crs)
    if not (np.isfinite(xs[0]) and np.isfinite(ys[0])):
        return ()
    found = identify(service, SampleRequest(points=((float(xs[0]), float(ys[0])),), mosaic_rule=rule,
                                            time=time, resampling=Resampling.NEAREST), mosaic=False)
    out: list[ItemValues] = []
    for sample in found.items:
        mask = np.ma.getmaskarray(sample.values)
        if mask.all():
            continue
        values = tuple(None if m else float(v) for v, m in zip(np.ma.getdata(sample.values), mask, strict=True))
        out.append(ItemValues(sample.item, values))
        if len(out) == count:
            break
    return tuple(out)
