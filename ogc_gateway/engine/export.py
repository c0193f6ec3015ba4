"""The export path: ExportRequest -> Raster. Items chosen by footprint, time and mosaic rule, each
read at the right overview and warped into the grid, merged by the mosaic operator, then the
rendering rule, band selection, pixel type and nodata of the request.

Every limit is checked before the first pixel is read.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
from rasterio.warp import transform as transform_points
from shapely.geometry import Polygon, box

from . import observe, processed
from . import read as reader
from . import seams
from .errors import InvalidParameter, TooLarge
from .functions import Signature, apply, cast, is_raw, signature
from .geometry import to_crs
from .mosaic import OPERATORS, SeamlineCut, operator
from .query import check_definition, mosaic_items, where_of
from .requests import ExportRequest, Grid, MosaicRule, Raster, representable
from .service import ImageService, ServiceInfo


def export(service: ImageService, req: ExportRequest) -> Raster:
    """The raster a request asks for, before any encoding."""
    check_request(service, req)
    with observe.timed("render_seconds"):
        return _export(service, req)


def _export(service: ImageService, req: ExportRequest) -> Raster:
    ctx = processed.context(service, req)
    rule = req.rendering_rule
    raster = apply(rule, ctx) if rule else ctx.raster(None)
    raster = replace(raster, stretch=_stretch_hint(service, req, raster), processed=not is_raw(rule))
    if req.band_ids is not None:
        raster = select_bands(raster, req.band_ids)
    if req.pixel_type:
        raster = cast(raster, req.pixel_type)
    if req.nodata:
        raster = mask_nodata(raster, req.nodata, req.nodata_match_all)
    return raster


def check_request(service: ImageService, req: ExportRequest) -> None:
    """Refuse what the limits forbid and band ids that do not exist, before any work."""
    limits = service.info.limits
    g = req.grid
    if g.width < 1 or g.height < 1:
        raise InvalidParameter("size", "width and height must be at least 1")
    if g.width > limits.max_image_width or g.height > limits.max_image_height:
        raise TooLarge("size", f"{g.width}x{g.height} exceeds the limit of "
                               f"{limits.max_image_width}x{limits.max_image_height} pixels")
    bands = output_bands(service, req)           # also checks the rule's band references
    if req.band_ids is not None:
        bad = [b for b in req.band_ids if not 0 <= b < bands]
        if bad:
            raise InvalidParameter("bandIds", f"band {bad[0]} does not exist; the output has {bands} "
                                              f"bands (0..{bands - 1})")
    rule = req.mosaic_rule or service.info.default_rule
    where_of(service, rule.where, "mosaicRule")           # a bad where clause fails before any read
    check_definition(service, req.mosaic_rule)
    if rule.item_rendering_rule is not None:
        raise InvalidParameter("mosaicRule", "itemRenderingRule is not supported yet")
    if rule.operation not in OPERATORS:
        raise InvalidParameter("mosaicRule", f"mosaicOperation {rule.operation} is not supported "
                                             f"(supported: {', '.join(OPERATORS)})")
    operator(rule, (1, 1, 1), np.uint8)                     # refuses what a method does not allow


def output_bands(service: ImageService, req: ExportRequest) -> int:
    return output_signature(service, req.rendering_rule).bands


def output_signature(service: ImageService, rule) -> Signature:
    """Bands, pixel type and band names of a rule's output over the service (before any pixel)."""
    return signature(rule, service_signature(service.info))


def service_signature(info: ServiceInfo) -> Signature:
    """What the service's own raster ("$$") looks like to raster functions."""
    return Signature(info.band_count, info.pixel_type, info.band_names, info.nodata)


def mosaic(service: ImageService, req: ExportRequest) -> Raster:
    """The service's items merged into the request grid (the "$$" raster of raster functions).

    The first max_mosaic_image_count items in mosaic order whose footprint meets the grid are read
    (ArcGIS's maxMosaicImageCount: the rest are left out, not refused), fewer when MT_FIRST has
    filled every pixel."""
    info = service.info
    grid = req.grid
    rule = req.mosaic_rule or info.default_rule
    limits = info.limits
    area = _area_in_service(grid, info)
    items = mosaic_items(service, rule, area=area, view_center=_center_in_service(grid, info),
                         time=req.time)
    resampling = req.resampling
    plans = []
    for item in items:
        if len(plans) == limits.max_mosaic_image_count:
            break
        if p := reader.plan(item.path, grid, resampling):
            plans.append((item, p))
    source_pixels = sum(p.source_pixels for _, p in plans)
    if source_pixels > limits.max_source_pixels:
        raise TooLarge("size", f"the request would read {source_pixels} source pixels; the limit is "
                               f"{limits.max_source_pixels}")
    op = operator(rule, (info.band_count, grid.height, grid.width), np.dtype(info.dtype))
    weigh = _weigher(service, op, [item for item, _ in plans], area, grid)
    read = 0
    for item, p in plans:
        data, full = reader.read(p, grid, resampling)
        read += 1
        op.feed(data, full, p.rows, p.cols, weigh(item, p, data) if weigh else None)
        if op.done:
            break
    observe.report("items_read", read)
    return Raster(op.result(), grid, info.band_names, info.pixel_type, info.nodata)


def _weigher(service: ImageService, op, items, area, grid: Grid):
    """Per-cell weights of each item for a weighted operator (engine/seams.py), or None. Seamline
    weights only for items whose seamline (grown by the blend width) meets the grid."""
    if not op.weighted:
        return None
    crs = service.info.crs
    if isinstance(op, SeamlineCut):
        width = service.config.seamline_blend_width * service.info.cell_size[0]
        shapes = service.catalog.seamlines([i.oid for i in items])
        seamed = {oid for oid, s in shapes.items() if area is None or s.intersects(area.buffer(width / 2))}

        def weigh(item, p, data):
            if item.oid not in seamed:
                return None
            xs, ys = seams.pixel_centres(grid, p.rows, p.cols, crs)
            return seams.seam_weights(shapes[item.oid], width, xs, ys, _valid(data))
        return weigh
    rings = service.catalog.footprints([i.oid for i in items])

    def weigh(item, p, data):
        xs, ys = seams.pixel_centres(grid, p.rows, p.cols, crs)
        return seams.edge_weights(Polygon(rings[item.oid]), xs, ys, _valid(data))
    return weigh


def _valid(data: np.ma.MaskedArray) -> np.ndarray:
    return ~np.ma.getmaskarray(data).any(axis=0)


def item_raster(service: ImageService, req: ExportRequest, oid: int) -> Raster:
    """One catalog item on the request grid (the "$<oid>" raster of raster functions)."""
    if service.catalog.item(oid) is None:
        raise InvalidParameter("renderingRule", f"raster ${oid} does not exist")
    rule = MosaicRule(method="esriMosaicLockRaster", lock_raster_ids=(oid,))
    return mosaic(service, replace(req, mosaic_rule=rule, time=None))


def _stretch_hint(service: ImageService, req: ExportRequest, raster: Raster):
    """Per-band (min, max) for the default 8-bit rendering (DESIGN.md, "Default rendering"): the
    service's statistics for raw values, the processed output's (processed.py) for a rule; None
    (the request's own pixels) when those are not known."""
    rule = req.rendering_rule
    if is_raw(rule):
        if len(service.info.stats) == raster.data.shape[0]:
            return tuple((s.min, s.max) for s in service.info.stats)
        return None
    if raster.data.dtype == np.uint8:
        return None
    found = processed.rule_distribution(service, rule)
    if not found or len(found) != raster.data.shape[0]:
        return None
    return tuple((d.min, d.max) for d in found)


def select_bands(raster: Raster, band_ids: tuple[int, ...]) -> Raster:
    idx = list(band_ids)
    stretch = tuple(raster.stretch[i] for i in idx) if raster.stretch else None
    return replace(raster, data=raster.data[idx], band_names=tuple(raster.band_names[i] for i in idx),
                   stretch=stretch)


def mask_nodata(raster: Raster, values: tuple[float, ...], match_all: bool) -> Raster:
    """Mask pixels matching `values` (one for every band, or one per band): any band or all bands."""
    data = raster.data
    bands = data.shape[0]
    if len(values) not in (1, bands):
        raise InvalidParameter("noData", f"give one value, or one per band ({bands})")
    ref = np.array(values * bands if len(values) == 1 else values, dtype=np.float64).reshape(-1, 1, 1)
    hits = data.data.astype(np.float64) == ref
    pixel = hits.all(axis=0) if match_all else hits.any(axis=0)
    mask = np.ma.getmaskarray(data) | pixel[np.newaxis]
    nodata = values[0] if len(set(values)) == 1 else raster.nodata
    if nodata is not None and not representable(nodata, data.dtype):
        nodata = raster.nodata
    return replace(raster, data=np.ma.MaskedArray(data.data, mask=mask), nodata=nodata)


def _area_in_service(grid: Grid, info):
    """The grid's outline in the service CRS (None: a grid the service CRS cannot express, for
    which every item is a candidate)."""
    try:
        return to_crs(box(*grid.bounds), grid.crs, info.crs)
    except InvalidParameter:
        return None


def _center_in_service(grid: Grid, info) -> tuple[float, float]:
    cx, cy = (grid.bounds[0] + grid.bounds[2]) / 2, (grid.bounds[1] + grid.bounds[3]) / 2
    if grid.crs == info.crs:
        return cx, cy
    try:
        xs, ys = transform_points(grid.crs, info.crs, [cx], [cy])
        if math.isfinite(xs[0]) and math.isfinite(ys[0]):
            return xs[0], ys[0]
    except Exception:                 # no coordinate operation: order around the extent's centre
        pass
    e = info.extent
    return (e[0] + e[2]) / 2, (e[1] + e[3]) / 2
