"""Which catalog items a request concerns: the items a mosaic rule admits (its where clause, fids and
lockRasterIds) within a box and a time window, and the catalog query with its spatial relations,
ordering and paging.

Where clauses are compiled against the service's own fields into parameterised SQL
(engine/where.py); nothing a user typed ever becomes SQL text.
"""

from __future__ import annotations

from dataclasses import dataclass

from shapely.geometry import Polygon, box

from .catalog import Item
from .errors import InvalidParameter
from .geometry import SPATIAL_RELATIONS
from .requests import CatalogQuery, MosaicRule, TimeWindow
from .service import ImageService
from .where import Where, compile_where


@dataclass(frozen=True)
class QueryResult:
    matched: tuple[int, ...]     # OBJECTIDs of every match, in the query's order
    page: tuple[Item, ...]       # the requested page of them
    exceeded: bool               # more matches follow the page (exceededTransferLimit)


def where_of(service: ImageService, text: str | None, param: str) -> Where | None:
    """A where clause compiled against the service's fields (a 400 naming `param` if it is bad)."""
    if text is None or not text.strip():
        return None
    return compile_where(text, service.info.fields, param=param)


def check_definition(service: ImageService, rule: MosaicRule | None) -> None:
    """Refuse a multidimensional definition the service cannot answer, before any work."""
    definition = rule.multidimensional_definition if rule is not None else ()
    md = service.info.multidimensional
    if md is not None:
        md.check(definition, "mosaicRule")
    elif definition:
        raise InvalidParameter("mosaicRule", "multidimensionalDefinition: this service has no variables or "
                                             "dimensions (hasMultidimensions is false)")


def selected(service: ImageService, rule: MosaicRule | None, *, bbox=None, time: TimeWindow | None = None,
             pixel_size: float | None = None, as_filter: bool = False) -> list[Item]:
    """Items the mosaic rule admits in `bbox` (service CRS) and the time window, by OBJECTID. In a
    multidimensional service, the items (or bands of items) of the slices the rule's definition
    selects - with the defaults of what it leaves out, unless `as_filter` (the catalog query);
    the time window selects on their StdTime."""
    oids, where = None, None
    if rule is not None:
        if rule.method == "esriMosaicLockRaster":
            if not rule.lock_raster_ids:
                raise InvalidParameter("mosaicRule", "esriMosaicLockRaster needs lockRasterIds")
            oids = rule.lock_raster_ids
        if rule.fids is not None:
            oids = tuple(o for o in (oids if oids is not None else rule.fids) if o in set(rule.fids))
        where = where_of(service, rule.where, "mosaicRule")
    window = (time.start, time.end) if time is not None else None
    md = service.info.multidimensional
    check_definition(service, rule)
    if md is not None and md.from_bands:
        window = None                        # the bands' times, not the files', are the slices' times
    items = service.catalog.items(bbox=bbox, time=window, oids=oids, where=where, pixel_size=pixel_size)
    if md is None:
        return items
    definition = rule.multidimensional_definition if rule is not None else ()
    return md.select(items, definition, time, defaults=not as_filter)


def query(service: ImageService, q: CatalogQuery) -> QueryResult:
    """The catalog query: objectIds alone, or where + geometry + time + pixel size + mosaic rule."""
    catalog = service.catalog
    if q.oids is not None:
        items = catalog.items(oids=q.oids, order_by=q.order_by)
    else:
        where = where_of(service, q.where, "where")
        if q.order_by:                       # refuse unknown order fields before any other work
            catalog.items(oids=(), order_by=q.order_by)
        bbox = q.geometry.bounds if q.geometry is not None else None
        md = service.info.multidimensional
        band_time = q.time if md is not None and md.from_bands else None    # the bands' times, not the files'
        if q.mosaic_rule is not None or band_time is not None:
            admitted = {i.oid for i in selected(service, q.mosaic_rule, bbox=bbox, time=band_time, as_filter=True)}
        items = catalog.items(bbox=bbox, time=(q.time.start, q.time.end) if q.time and band_time is None else None,
                              where=where, pixel_size=q.pixel_size, order_by=q.order_by)
        if q.mosaic_rule is not None or band_time is not None:
            items = [i for i in items if i.oid in admitted]
        if q.geometry is not None:
            items = related(service, items, q.geometry, q.spatial_rel)
    limit = service.info.limits.max_record_count
    count = limit if q.count is None else min(q.count, limit)
    page = items[q.offset:q.offset + count]
    return QueryResult(matched=tuple(i.oid for i in items), page=tuple(page),
                       exceeded=q.offset + len(page) < len(items))


def related(service: ImageService, items: list[Item], geometry, relation: str) -> list[Item]:
    """Items whose footprint stands in `relation` to `geometry` (both in the service CRS)."""
    test = SPATIAL_RELATIONS[relation]
    if relation in ("envelope-intersects", "index-intersects"):
        return [i for i in items if test(geometry, box(*i.bounds))]
    rings = service.catalog.footprints([i.oid for i in items])
    return [i for i in items if i.oid in rings and test(geometry, Polygon(rings[i.oid]))]
