"""Which catalog items a request concerns: the items a mosaic rule admits (its where clause, fids and
lockRasterIds) within an area and a time window, in mosaic order, and the catalog query with its
spatial relations, ordering and paging.

Where clauses are compiled against the service's own fields into parameterised SQL
(engine/where.py); nothing a user typed ever becomes SQL text.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import shapely
from shapely.geometry import Polygon
from shapely.geometry.base import BaseGeometry

from .catalog import Item, Order
from .errors import InvalidParameter
from .geometry import SPATIAL_RELATIONS
from .mosaic import order_of
from .names import MosaicMethod
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
        md.check(definition, "mosaic")
    elif definition:
        raise InvalidParameter("mosaic", "multidimensionalDefinition: this service has no variables or "
                                             "dimensions (hasMultidimensions is false)")


def resolved(service: ImageService, rule: MosaicRule) -> MosaicRule:
    """A LockRaster rule as the engine runs it (Make Image Server Layer's reading): lockRasterIds
    may name rasters (their Name) as well as number them, and an empty list means the service's
    default order (its where and fids still apply)."""
    if rule.method != MosaicMethod.LOCK_RASTER:
        return rule
    if not rule.lock_raster_ids:
        default = service.info.default_rule
        return replace(rule, method=default.method, sort_field=rule.sort_field or default.sort_field,
                       ascending=default.ascending if not rule.sort_field else rule.ascending)
    if all(isinstance(i, int) for i in rule.lock_raster_ids):
        return rule
    oids = []
    for key in rule.lock_raster_ids:
        if isinstance(key, int):
            oids.append(key)
            continue
        literal = "'" + key.replace("'", "''") + "'"
        found = service.catalog.items(where=compile_where(f"Name = {literal}", service.info.fields,
                                                          param="mosaic"))
        if not found:
            raise InvalidParameter("mosaic", f"lockRasterIds: there is no raster named {key!r}")
        oids += [item.oid for item in found]
    return replace(rule, lock_raster_ids=tuple(oids))


def admitted(service: ImageService, rule: MosaicRule) -> tuple[tuple[int, ...] | None, Where | None]:
    """The OBJECTIDs (None: any) and compiled where clause a mosaic rule restricts items to."""
    rule = resolved(service, rule)
    oids = None
    if rule.method == MosaicMethod.LOCK_RASTER:
        if not rule.lock_raster_ids:
            raise InvalidParameter("mosaic", "esriMosaicLockRaster needs lockRasterIds")
        oids = rule.lock_raster_ids
    if rule.fids is not None:
        oids = tuple(o for o in (oids if oids is not None else rule.fids) if o in set(rule.fids))
    return oids, where_of(service, rule.where, "mosaic")


def mosaic_items(service: ImageService, rule: MosaicRule, *, area: BaseGeometry | None,
                 view_center: tuple[float, float], time: TimeWindow | None = None) -> Iterator[Item]:
    """The items a mosaic rule admits whose footprint meets `area` (service CRS; None: anywhere)
    within the time window, in mosaic order: sorted by the catalog and fetched a page at a time,
    so a request that reads the first few never loads the rest. In a multidimensional service, the
    items (or band members of items) of the slices the rule's definition selects, with the defaults
    of what it leaves out; the time window then selects on their StdTime."""
    info, catalog = service.info, service.catalog
    rule = resolved(service, rule)
    oids, where = admitted(service, rule)
    check_definition(service, rule)
    md = info.multidimensional
    bbox = area.bounds if area is not None else None
    order = order_of(rule, view_center=view_center, northwest=(info.extent[0], info.extent[3]),
                     nadir_field=service.config.nadir_field, view_box=bbox)
    window = (time.start, time.end) if time is not None else None
    by_member = None
    if md is not None and md.from_bands:
        window = None                        # the bands' times, not the files', are the slices' times
        if order.field is not None and not catalog.has_field(order.field):
            # a band's own value (its StdTime ...) orders the members: sort them all here
            by_member, order = order, replace(order, field=None, base=None)
    if area is not None:
        shapely.prepare(area)
    page = info.limits.max_mosaic_image_count + 8        # one page usually holds what is read
    if by_member is not None:
        page = max(page, info.item_count)
    offset = 0
    while True:
        fetched = catalog.items(bbox=bbox, time=window, oids=oids, where=where, order=order, limit=page,
                                offset=offset)
        found = fetched
        if area is not None:
            shapes = catalog.footprint_shapes([i.oid for i in fetched])
            found = [i for i in fetched if i.oid in shapes]
            meets = shapely.intersects(area, np.array([shapes[i.oid] for i in found], dtype=object))
            found = [i for i, ok in zip(found, meets) if ok]
        if md is not None:
            found = md.select(found, rule.multidimensional_definition, time)
        yield from (found if by_member is None else _by_member_value(found, by_member))
        if len(fetched) < page:
            return
        offset += page


def _by_member_value(items: list[Item], order: Order) -> list[Item]:
    """Band members sorted on a value the catalog does not hold (each carries it among its
    attributes), as the catalog sorts a field: |value - base| when a base is given, members
    without a value last, ties by OBJECTID."""
    field = order.field
    if field is None:
        return items

    def distance(item: Item) -> float:
        value = float(item.attributes[field])
        return abs(value - order.base) if order.base is not None else value
    present = sorted((i for i in items if i.attributes.get(field) is not None),
                     key=lambda i: (distance(i), i.oid), reverse=not order.ascending)
    return present + [i for i in items if i.attributes.get(field) is None]


def query(service: ImageService, q: CatalogQuery) -> QueryResult:
    """The catalog query: objectIds alone, or where + geometry + time + pixel size + mosaic rule.
    Every match is listed by OBJECTID; only the page's items are built."""
    catalog = service.catalog
    if q.oids is not None:
        found = catalog.boxes(oids=q.oids, order_by=q.order_by)
    else:
        where = where_of(service, q.where, "where")
        if q.order_by:                       # refuse unknown order fields before any other work
            catalog.items(oids=(), order_by=q.order_by)
        bbox = q.geometry.bounds if q.geometry is not None else None
        rule_oids, rule_where = admitted(service, q.mosaic_rule) if q.mosaic_rule else (None, None)
        if where is not None and rule_where is not None:
            where = Where(f"({where.sql}) AND ({rule_where.sql})", where.params + rule_where.params)
        md = service.info.multidimensional
        band_time = q.time if md is not None and md.from_bands else None    # the bands' times, not the files'
        found = catalog.boxes(bbox=bbox, time=(q.time.start, q.time.end) if q.time and band_time is None else None,
                              oids=rule_oids, where=where or rule_where, pixel_size=q.pixel_size,
                              order_by=q.order_by)
        definition = q.mosaic_rule.multidimensional_definition if q.mosaic_rule else ()
        check_definition(service, q.mosaic_rule)
        if md is not None and (definition or band_time is not None):
            # the definition as given filters (no picture defaults); bands answer by their own times
            items = catalog.items(oids=tuple(oid for oid, _ in found))
            kept = {i.oid for i in md.select(items, definition, band_time, defaults=False)}
            found = [entry for entry in found if entry[0] in kept]
        if q.geometry is not None:
            found = related(service, found, q.geometry, q.spatial_rel)
    limit = service.info.limits.max_record_count
    count = limit if q.count is None else min(q.count, limit)
    matched = tuple(oid for oid, _ in found)
    shown = matched[q.offset:q.offset + count]
    built = {i.oid: i for i in catalog.items(oids=shown)} if shown else {}
    return QueryResult(matched=matched, page=tuple(built[o] for o in shown),
                       exceeded=q.offset + len(shown) < len(matched))


Bounds = tuple[float, float, float, float]


def related(service: ImageService, found: list[tuple[int, Bounds]], geometry: BaseGeometry, relation: str
            ) -> list[tuple[int, Bounds]]:
    """The (OBJECTID, bounds) whose footprint stands in `relation` to `geometry` (both in the service
    CRS). A footprint whose box lies inside the geometry intersects it, and is contained by it,
    without being loaded."""
    test = SPATIAL_RELATIONS[relation]
    boxes = shapely.box(*np.array([b for _, b in found], dtype="f8").reshape(-1, 4).T)
    if relation in ("envelope-intersects", "index-intersects"):
        return [entry for entry, b in zip(found, boxes) if test(geometry, b)]
    shapely.prepare(geometry)
    settled = shapely.contains(geometry, boxes) if relation in ("intersects", "contains") else np.zeros(len(found), bool)
    rings = service.catalog.footprints([oid for (oid, _), sure in zip(found, settled) if not sure])
    return [(oid, b) for (oid, b), sure in zip(found, settled)
            if sure or (oid in rings and test(geometry, Polygon(rings[oid])))]
