"""Values at points: identify (the mosaic's value plus every item under the point) and getSamples
(values along points, lines and areas, per item or first valid in mosaic order).

The mosaic value of identify comes from the export path itself, on a one-pixel grid centred on the
point, so operators, rendering rules and pixel sizes mean exactly what they mean in exportImage.
Per-item values come from each item's own full-resolution pixels (read.sample).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import islice

import numpy as np
from rasterio.crs import CRS
from shapely.geometry import Point

from . import read as reader
from .badfiles import BAD_FILE_ERRORS, left_out
from .catalog import Item
from .export import export
from .query import mosaic_items, where_of
from .requests import ExportRequest, Grid, MosaicRule, RenderingRule, SampleRequest
from .service import ImageService


@dataclass(frozen=True)
class ItemSample:
    item: Item
    values: np.ma.MaskedArray          # (bands,) float64; fully masked = no data here
    visibility: float = 0.0            # share of the mosaic's value this item gives (identify)


@dataclass(frozen=True)
class Identified:
    point: tuple[float, float]                       # service CRS
    value: np.ma.MaskedArray | None                  # the mosaic's value (None: no data)
    processed: tuple[np.ma.MaskedArray | None, ...]  # one per extra rendering rule
    items: tuple[ItemSample, ...]                    # in mosaic order (first = on top)


@dataclass(frozen=True)
class Sample:
    location: int                 # index of the input location
    point: tuple[float, float]    # service CRS
    item: Item | None             # the item sampled (None: no item has data here)
    values: np.ma.MaskedArray | None


def _rule(service: ImageService, req: SampleRequest) -> MosaicRule:
    return req.mosaic_rule or service.info.default_rule


def items_at(service: ImageService, req: SampleRequest, x: float, y: float) -> list[Item]:
    """Items whose footprint holds the point, in mosaic order for a view centred on it (at most
    max_mosaic_image_count of them, the top ones)."""
    # No MinPS/MaxPS filter here: the export path reads every item at any scale (overviews), so
    # the items listed are the ones the mosaic value really comes from.
    found = mosaic_items(service, _rule(service, req), area=Point(x, y), view_center=(x, y), time=req.time)
    return list(islice(found, service.info.limits.max_mosaic_image_count))   # as many as a mosaic reads


def mosaic_value(service: ImageService, req: SampleRequest, x: float, y: float,
                 rendering_rule: RenderingRule | None) -> np.ma.MaskedArray | None:
    """The exported value of the one-pixel grid centred on (x, y) at the request's pixel size."""
    size = req.pixel_size or service.info.cell_size[0]
    grid = Grid(service.info.crs, (x - size / 2, y - size / 2, x + size / 2, y + size / 2), 1, 1)
    raster = export(service, ExportRequest(grid=grid, mosaic_rule=req.mosaic_rule,
                                           rendering_rule=rendering_rule, time=req.time,
                                           resampling=req.resampling))
    values: np.ma.MaskedArray = np.ma.asarray(raster.data[:, 0, 0], dtype="f8")
    return None if np.ma.getmaskarray(values).all() else values


def _visibilities(samples: list[np.ma.MaskedArray], operation: str) -> list[float]:
    """How much each item gives to the mosaic pixel: the winner 1 (first, last, min, max), an
    equal share for mean, sum and blend; items without data 0."""
    valid = [not np.ma.getmaskarray(v).all() for v in samples]
    shares = [0.0] * len(samples)
    idx = [k for k, ok in enumerate(valid) if ok]
    if not idx:
        return shares
    if operation in ("MT_MEAN", "MT_SUM", "MT_BLEND"):
        for k in idx:
            shares[k] = 1.0 / len(idx)
        return shares
    firsts = [float(samples[k].filled(np.nan)[0]) for k in idx]
    pick = {"MT_LAST": idx[-1],
            "MT_MIN": idx[int(np.nanargmin(firsts))] if not np.isnan(firsts).all() else idx[0],
            "MT_MAX": idx[int(np.nanargmax(firsts))] if not np.isnan(firsts).all() else idx[0],
            }.get(operation, idx[0])
    shares[pick] = 1.0
    return shares


def identify(service: ImageService, req: SampleRequest, rendering_rules: tuple[RenderingRule, ...] = (),
             *, mosaic: bool = True) -> Identified:
    """The mosaic value at the request's (single) point and the items beneath it (only the
    items with `mosaic=False`, for callers that report per-item values alone)."""
    (x, y), = req.points
    where_of(service, _rule(service, req).where, "mosaic")
    value = mosaic_value(service, req, x, y, req.rendering_rule) if mosaic else None
    processed = tuple(mosaic_value(service, req, x, y, rule) for rule in rendering_rules)
    items = items_at(service, req, x, y)
    values = [_sample(service, i, x, y, service.info.crs, req.resampling) for i in items]
    shares = _visibilities(values, _rule(service, req).operation)
    found = [ItemSample(i, v, s) for i, v, s in zip(items, values, shares)]
    if req.max_items is not None:
        found = found[:req.max_items]
    return Identified((x, y), value, processed, tuple(found))


def _sample(service: ImageService, item: Item, x: float, y: float, crs: CRS, resampling: str) -> np.ma.MaskedArray:
    """One item's values at a point; no data when its file can no longer be read (logged)."""
    try:
        values: np.ma.MaskedArray = reader.sample(item.path, [x], [y], crs, resampling)[0]   # (a row of a masked array)
        return values
    except BAD_FILE_ERRORS as exc:
        left_out(item.path, exc)
        return np.ma.MaskedArray(np.zeros(service.info.band_count), mask=True)


def get_samples(service: ImageService, req: SampleRequest, first_value_only: bool = True) -> list[Sample]:
    """Values at each point: the first item with data in mosaic order (or the mosaic's processed
    value when a rendering rule or another operator is asked for), or every item's value."""
    rule = _rule(service, req)
    where_of(service, rule.where, "mosaic")
    processed = req.rendering_rule is not None or rule.operation != "MT_FIRST"
    crs = service.info.crs
    out: list[Sample] = []
    for n, (x, y) in enumerate(req.points):
        items = items_at(service, req, x, y)
        if not first_value_only:
            out += [Sample(n, (x, y), i, _sample(service, i, x, y, crs, req.resampling)) for i in items]
            continue
        top, values = None, None
        if processed:          # the operator decides which item the value comes from
            per_item = [_sample(service, i, x, y, crs, req.resampling) for i in items]
            shares = _visibilities(per_item, rule.operation)
            if any(shares):
                top = items[int(np.argmax(shares))]
            values = mosaic_value(service, replace(req, points=((x, y),)), x, y, req.rendering_rule)
        else:
            for item in items:
                v = _sample(service, item, x, y, crs, req.resampling)
                if not np.ma.getmaskarray(v).all():
                    top, values = item, v
                    break
        out.append(Sample(n, (x, y), top, values))
    return out
