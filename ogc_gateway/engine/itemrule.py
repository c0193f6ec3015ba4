"""mosaicRule.itemRenderingRule: each item processed by a rendering rule before mosaicking (as
ArcGIS does, e.g. a per-scene stretch or NDVI, so seams merge processed values, not raw ones).

The item rule sees the item alone as its "$$" raster, on the request's grid; the mosaic then
merges the processed items, so the mosaic's bands and pixel type are the item rule's output."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from . import processed
from .functions import Signature, apply, signature
from .names import MosaicMethod
from .requests import PIXEL_TYPES, ExportRequest, MosaicRule, RenderingRule
from .service import ImageService


def mosaic_signature(service: ImageService, rule: MosaicRule | None, base: Signature) -> Signature:
    """What the mosaic ("$$") looks like: the service (`base`), or its items' processed output."""
    if rule is None or rule.item_rendering_rule is None:
        return base
    return signature(rule.item_rendering_rule, base)


def dtype_of(sig: Signature) -> np.dtype:
    return np.dtype(PIXEL_TYPES[sig.pixel_type])


def processed_item(service: ImageService, req: ExportRequest, oid: int, item_rule: RenderingRule,
                   rows: slice, cols: slice, read: processed.Read) -> np.ma.MaskedArray:
    """One item run through `item_rule` on the request's grid, cells [rows, cols] (pixels read
    through `read`, the export path's reader)."""
    alone = MosaicRule(method=MosaicMethod.LOCK_RASTER, lock_raster_ids=(oid,))
    out = apply(item_rule, processed.context(service, replace(req, mosaic_rule=alone, time=None), read))
    return out.data[:, rows, cols]
