"""The export path: ExportRequest -> Raster. Items chosen by footprint, time and mosaic rule, each
read at the right overview and warped into the grid, merged by the mosaic operator, then the
rendering rule, band selection, pixel type and nodata of the request.

Every limit is checked before the first pixel is read.
"""

from __future__ import annotations

import math
import typing
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import replace

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from . import admission, budget, deadline, itemrule, observe, processed, seams, turns, warp
from . import read as reader
from .badfiles import BAD_FILE_ERRORS, left_out
from .catalog import Item
from .errors import InvalidParameter, TooLarge
from .functions import BandDistribution, Signature, apply, cast, is_raw, signature
from .geometry import points_to_crs, to_crs
from .mosaic import OPERATORS, Operator, SeamlineCut, operator
from .names import MosaicMethod
from .query import check_definition, mosaic_items, where_of
from .requests import ExportRequest, Grid, MosaicRule, Raster, RenderingRule, representable
from .service import ImageService, ServiceInfo

# An item's per-cell weights for a weighted mosaic operator (None: the item takes part unweighted).
Weigh = Callable[[Item, reader.ReadPlan, np.ma.MaskedArray], "npt.NDArray[np.float64] | None"]

def export(service: ImageService, req: ExportRequest) -> Raster:
    """The raster a request asks for, before any encoding."""
    check_request(service, req)
    g, seconds = req.grid, service.info.limits.max_request_seconds
    cost = budget.rule_seconds(req.rendering_rule, g.width, g.height, service.info.band_count)
    pixels = g.width * g.height
    with deadline.budget(seconds), admission.admit(pixels, cost, patience=seconds / 2):
        with turns.light() if not admission.heavy(pixels, cost) else nullcontext():
            with observe.timed("render_seconds"):        # the work, not the wait for a slot or a turn
                return _export(service, req)


def _export(service: ImageService, req: ExportRequest) -> Raster:
    ctx = processed.context(service, req, read_source)
    rule = req.rendering_rule
    raster = apply(rule, ctx) if rule else ctx.raster(None)
    item_rule = req.mosaic_rule is not None and req.mosaic_rule.item_rendering_rule is not None
    raster = replace(raster, stretch=None if item_rule else _stretch_hint(service, req, raster),
                     processed=item_rule or not is_raw(rule))
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
    if req.band_ids is not None:
        budget.check_band_count(limits, len(req.band_ids))
    sig = output_signature(service, req.rendering_rule)      # also checks the rule's band references
    bands = sig.bands
    if req.band_ids is not None:
        bad = [b for b in req.band_ids if not 0 <= b < bands]
        if bad:
            raise InvalidParameter("bands", f"band {bad[0]} does not exist; the output has {bands} "
                                              f"bands (0..{bands - 1})")
    budget.check_output_size(limits, g.width, g.height, len(req.band_ids) if req.band_ids is not None else bands,
                             (sig.pixel_type, req.pixel_type))
    budget.check_time(limits, req.rendering_rule, g.width, g.height, sig.bands)
    rule = req.mosaic_rule or service.info.default_rule
    where_of(service, rule.where, "mosaic")           # a bad where clause fails before any read
    check_definition(service, req.mosaic_rule)
    if rule.operation not in OPERATORS:
        raise InvalidParameter("mosaic", f"mosaicOperation {rule.operation} is not supported "
                                             f"(supported: {', '.join(OPERATORS)})")
    operator(rule, (1, 1, 1), np.uint8)                     # refuses what a method does not allow


def output_bands(service: ImageService, req: ExportRequest) -> int:
    base = itemrule.mosaic_signature(service, req.mosaic_rule, service_signature(service.info))
    return signature(req.rendering_rule, base).bands


def output_signature(service: ImageService, rule: RenderingRule | None) -> Signature:
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
    plans: list[tuple[Item, reader.ReadPlan]] = []
    for item in items:
        if len(plans) == limits.max_mosaic_image_count:
            break
        try:
            p = reader.plan(item.path, grid, resampling)
        except BAD_FILE_ERRORS as exc:           # gone bad since the sync: left out, logged
            left_out(item.path, exc)
            continue
        if p:
            plans.append((item, p))
    source_pixels = sum(p.source_pixels for _, p in plans)
    if source_pixels > limits.max_source_pixels:
        raise TooLarge("size", f"the request would read {source_pixels} source pixels; the limit is "
                               f"{limits.max_source_pixels}")
    sig = itemrule.mosaic_signature(service, rule, service_signature(info))
    op = operator(rule, (sig.bands, grid.height, grid.width), itemrule.dtype_of(sig))
    weigh = _weigher(service, op, [item for item, _ in plans], area, grid)
    read = 0
    for item, p in plans:
        deadline.check()
        try:
            data, full = reader.read(p, grid, resampling)
            read += 1
            if rule.item_rendering_rule is not None:         # each item processed before mosaicking
                data = itemrule.processed_item(service, req, item.oid, rule.item_rendering_rule, p.rows, p.cols,
                                               read_source)
        except BAD_FILE_ERRORS as exc:
            left_out(item.path, exc)
            continue
        op.feed(data, full, p.rows, p.cols, weigh(item, p, data) if weigh else None)
        if op.done:
            break
    observe.report("items_read", read)
    if rule.item_rendering_rule is not None:
        return Raster(op.result(), grid, sig.band_names(), sig.pixel_type, sig.nodata_value)
    return Raster(op.result(), grid, info.band_names, info.pixel_type, info.nodata)


def _weigher(service: ImageService, op: Operator, items: list[Item], area: BaseGeometry | None,
             grid: Grid) -> Weigh | None:
    """Per-cell weights of each item for a weighted operator (engine/seams.py), or None. Seamline
    weights only for items whose seamline (grown by the blend width) meets the grid."""
    if not op.weighted:
        return None
    crs = service.info.crs
    if isinstance(op, SeamlineCut):
        width = service.config.seamline_blend_width * service.info.cell_size[0]
        shapes = service.catalog.seamlines([i.oid for i in items])
        seamed = {oid for oid, s in shapes.items() if area is None or s.intersects(area.buffer(width / 2))}

        def seam_weigh(item: Item, p: reader.ReadPlan, data: np.ma.MaskedArray) -> npt.NDArray[np.float64] | None:
            if item.oid not in seamed:
                return None
            xs, ys = seams.pixel_centres(grid, p.rows, p.cols, crs)
            return seams.seam_weights(shapes[item.oid], width, xs, ys, _valid(data))
        return seam_weigh
    rings = service.catalog.footprints([i.oid for i in items])

    def edge_weigh(item: Item, p: reader.ReadPlan, data: np.ma.MaskedArray) -> npt.NDArray[np.float64] | None:
        xs, ys = seams.pixel_centres(grid, p.rows, p.cols, crs)
        return seams.edge_weights(Polygon(rings[item.oid]), xs, ys, _valid(data))
    return edge_weigh


def _valid(data: np.ma.MaskedArray) -> npt.NDArray[np.bool_]:
    """(rows, cols): any band holds data (mosaic.has_data). numpy's stubs also allow the scalar a
    reduction over every axis gives; over axis 0 of (bands, rows, cols) it is an array."""
    return typing.cast("npt.NDArray[np.bool_]", ~np.ma.getmaskarray(data).all(axis=0))


def item_raster(service: ImageService, req: ExportRequest, oid: int) -> Raster:
    """One catalog item on the request grid (the "$<oid>" raster of raster functions)."""
    if service.catalog.item(oid) is None:
        raise InvalidParameter("rendering", f"raster ${oid} does not exist")
    rule = MosaicRule(method=MosaicMethod.LOCK_RASTER, lock_raster_ids=(oid,))
    return mosaic(service, replace(req, mosaic_rule=rule, time=None))


def read_source(service: ImageService, req: ExportRequest, oid: int | None) -> Raster:
    """The mosaic (oid None) or one item on the request's grid: what raster functions read
    (processed.py is handed this, so it need not import the export path back)."""
    return mosaic(service, req) if oid is None else item_raster(service, req, oid)


def rule_distribution(service: ImageService, rule: RenderingRule) -> tuple[BandDistribution, ...] | None:
    """Per band, the distribution of a rule's output over the service (processed.py), read
    through this path: the default stretch of a rule, the root JSON's and legends' statistics."""
    return processed.rule_distribution(service, rule, read_source)


def _stretch_hint(service: ImageService, req: ExportRequest, raster: Raster) -> tuple[tuple[float, float], ...] | None:
    """Per-band (min, max) for the default 8-bit rendering (DESIGN.md, "Default rendering"): the
    service's statistics for raw values, the processed output's (processed.py) for a rule; None
    (the request's own pixels) when those are not known."""
    rule = req.rendering_rule
    if rule is None or is_raw(rule):                      # (is_raw(None) holds: says so to mypy)
        if len(service.info.stats) == raster.data.shape[0]:
            return tuple((s.min, s.max) for s in service.info.stats)
        return None
    if raster.data.dtype == np.uint8:
        return None
    found = rule_distribution(service, rule)
    if not found or len(found) != raster.data.shape[0]:
        return None
    return tuple((d.min, d.max) for d in found)


def select_bands(raster: Raster, band_ids: tuple[int, ...]) -> Raster:
    idx = list(band_ids)
    stretch = tuple(raster.stretch[i] for i in idx) if raster.stretch else None
    return replace(raster, data=raster.data[idx], band_names=tuple(raster.band_names[i] for i in idx),
                   stretch=stretch)


def mask_nodata(raster: Raster, values: tuple[float, ...], match_all: bool) -> Raster:
    """Values matching `values` (one for every band, or one per band) become nodata.

    MatchAll: a pixel whose every band matches is nodata in every band. MatchAny: each band that
    matches is nodata in that band only - the other bands keep their values, so a GeoTIFF holds
    them bit for bit - and the raster is marked `match_any`, so a picture treats the whole pixel
    as nodata (transparent) when any band is."""
    data = raster.data
    bands = data.shape[0]
    if len(values) not in (1, bands):
        raise InvalidParameter("nodata", f"give one value, or one per band ({bands})")
    ref = np.array(values * bands if len(values) == 1 else values, dtype=np.float64).reshape(-1, 1, 1)
    hits = data.data.astype(np.float64) == ref
    if match_all:
        hits = np.broadcast_to(hits.all(axis=0), hits.shape)
    mask = np.ma.getmaskarray(data) | hits
    nodata = values[0] if len(set(values)) == 1 else raster.nodata
    if nodata is not None and not representable(nodata, data.dtype):
        nodata = raster.nodata
    return replace(raster, data=np.ma.MaskedArray(data.data, mask=mask), nodata=nodata, match_any=not match_all)


def _area_in_service(grid: Grid, info: ServiceInfo) -> BaseGeometry | None:
    """The grid's outline in the service CRS (None: a grid the service CRS cannot express, for
    which every item is a candidate)."""
    if grid.crs != info.crs:
        # From the grid's lattice in the service CRS (the items' usually: made for them anyway),
        # within a quarter of a service cell of the densified transformation below.
        ring = warp.outline(grid, info.crs, min(info.cell_size) / 4)
        if ring is not None:
            return shapely.Polygon(ring)
    try:
        return to_crs(shapely.box(*grid.bounds), grid.crs, info.crs)
    except InvalidParameter:
        return None


def _center_in_service(grid: Grid, info: ServiceInfo) -> tuple[float, float]:
    cx, cy = (grid.bounds[0] + grid.bounds[2]) / 2, (grid.bounds[1] + grid.bounds[3]) / 2
    if grid.crs == info.crs:
        return cx, cy
    try:                              # (pyproj's kept transformer: a tenth of GDAL's per-call set-up)
        xs, ys = points_to_crs([cx], [cy], grid.crs, info.crs)
        if math.isfinite(xs[0]) and math.isfinite(ys[0]):
            return float(xs[0]), float(ys[0])
    except Exception:                 # no coordinate operation: order around the extent's centre
        pass
    e = info.extent
    return (e[0] + e[2]) / 2, (e[1] + e[3]) / 2
