"""Selecting items: the service facts (info), and the item queries every request makes - filters
by box, time, ids, where clause and pixel size, mosaic orders, nearest items - each costing the rows
it returns, not the catalog's size."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import ConfigError, InvalidParameter, NotFound
from ..fields import DATE, DOUBLE, GEOMETRY, INTEGER, Field
from ..fields import quote as _quote
from ..rasterinfo import aggregate_stats, ring_polygons
from .base import CatalogBase
from .records import HEAD_FIELDS, TAIL_FIELDS, CatalogInfo, Filter, Item, Order
from .sync import _READ_COLUMNS

if TYPE_CHECKING:
    from ..where import Where

_SHAPE_MEMO = 20_000            # footprint polygons a worker keeps decoded
_IN_BOX = "r.oid IN (SELECT id FROM footprints WHERE {box})"    # parameters xmin, ymin, xmax, ymax

def native_grid(store: Any, con: Any, crs_wkt: str, footprint_box: tuple[float, float, float, float],
                cell: float) -> tuple[tuple[float, float, float, float], tuple[float, float]]:
    """The service's grid: the extent and (pixelSizeX, pixelSizeY) of its items' own grids.

    Items in the service CRS on north-up grids count with their whole grid (a file's extent is its
    grid, nodata collar included), others with their footprint's box; the extent is then grown to
    whole pixels of the finest such item, so that a coverage read "at the native grid" is that
    item's grid - origin on its pixel corners, x and y sizes kept apart - and no resampling."""
    t = [store.json_number("transform", k) for k in range(6)]
    north_up = f"crs_wkt = ? AND footprint IS NOT NULL AND {t[1]} = 0 AND {t[3]} = 0 AND {t[0]} > 0 AND {t[4]} < 0"
    finest = con.execute(f"SELECT transform FROM rasters WHERE {north_up} ORDER BY cell_size, oid LIMIT 1",
                         (crs_wkt,)).fetchone()
    if finest is None:
        return footprint_box, (cell, cell)
    a, _, c, _, e, f = json.loads(finest[0])[:6]
    grids = con.execute(f"SELECT MIN({t[2]}), MIN({t[5]} + {t[4]} * height), MAX({t[2]} + {t[0]} * width), "
                        f"MAX({t[5]}) FROM rasters WHERE {north_up}", (crs_wkt,)).fetchone()
    x0, y0 = min(footprint_box[0], grids[0]), min(footprint_box[1], grids[1])
    x1, y1 = max(footprint_box[2], grids[2]), max(footprint_box[3], grids[3])
    ry = -e
    snap = 1e-6                    # a millionth of a pixel is float noise, not another pixel
    x0 = c + math.floor((x0 - c) / a + snap) * a
    x1 = c + math.ceil((x1 - c) / a - snap) * a
    y1 = f - math.floor((f - y1) / ry + snap) * ry
    y0 = f - math.ceil((f - y0) / ry - snap) * ry
    return (x0, y0, x1, y1), (a, ry)



class Selection(CatalogBase):
    """The query part of `Catalog` (a mixin: `self.store`, `self.service`, `_few_limit` come from it)."""

    # queries

    def info(self) -> CatalogInfo:
        """Service facts, computed once per generation (a change by any process makes new ones)."""
        generation = self.last_change()
        if self._info is None or self._info[0] != generation:
            self._info = (generation, self._compute_info())
        return self._info[1]

    def _compute_info(self) -> CatalogInfo:
        """Aggregated in SQL: no per-item Python work, however many items there are."""
        con = self.store.con()
        first = con.execute("SELECT band_count, dtype, nodata, band_names FROM rasters "
                            "WHERE footprint IS NOT NULL ORDER BY oid LIMIT 1").fetchone()
        if first is None:
            raise ConfigError([self._no_match()])
        band_count, dtype = first[0], first[1]
        nodata, names = json.loads(first[2]), json.loads(first[3])
        if not all(names):
            names = [f"Band_{i + 1}" for i in range(band_count)]
        row = con.execute("SELECT (SELECT COUNT(*) FROM items), (SELECT MIN(minx) FROM rasters), "
                          "(SELECT MIN(miny) FROM rasters), (SELECT MAX(maxx) FROM rasters), "
                          "(SELECT MAX(maxy) FROM rasters)").fetchone()
        stats = self._meta(con, "stats")
        partial = json.loads(stats) if stats else self._stats_sums(con)
        cell = con.execute('SELECT MIN("LowPS") FROM items').fetchone()[0]
        time_extent = None
        if self.service.time_field:
            lo, hi = con.execute("SELECT (SELECT MIN(time_start) FROM rasters), "
                                 "(SELECT MAX(time_end) FROM rasters)").fetchone()
            time_extent = None if lo is None else (lo, hi)
        crs_wkt = self._meta(con, "service_crs") or ""
        extent, cell_xy = native_grid(self.store, con, crs_wkt, tuple(row[1:5]), cell)
        return CatalogInfo(
            crs_wkt=crs_wkt, extent=extent, cell_size=cell_xy,
            band_count=band_count, dtype=dtype, nodata=nodata, band_names=tuple(names),
            stats=aggregate_stats([partial], band_count),
            time_extent=time_extent, fields=HEAD_FIELDS + self.attribute_fields() + TAIL_FIELDS,
            item_count=row[0])


    def items(self, bbox: tuple[float, float, float, float] | None = None,
              time: tuple[int | None, int | None] | None = None,
              oids: tuple[int, ...] | None = None, where: Where | None = None,
              pixel_size: float | None = None,
              order_by: tuple[tuple[str, bool], ...] = (), order: Order | None = None,
              limit: int | None = None, offset: int = 0) -> list[Item]:
        """Items intersecting bbox (service CRS), whose time extent meets the window (None = open
        end; items without a time never match), among oids, matching a compiled where clause,
        visible at pixel_size (MinPS <= ps <= MaxPS); ordered by a mosaic `order`, else by
        `order_by` (field, ascending) pairs, then OBJECTID; `limit` rows from `offset`.

        A selection costs the rows it returns, not the catalog's size. A box or time window that
        holds few items drives the query from its R*Tree; a wide one (a zoomed-out view, an open
        time) would make the R*Tree list most of the catalog, so then a field order walks the
        field's index, |field - value| walks it both ways from the value, and a distance order
        looks in growing boxes around its point, each stopping once `limit` rows are found."""
        f, narrow = self._filter(bbox, time, oids, where, pixel_size)
        if order is None:
            keys = [f"i.{_quote(self._field(name))} {'ASC' if asc else 'DESC'}" for name, asc in order_by]
            return self._select(f, keys + ['i."OBJECTID"'], [], limit, offset)
        if not narrow and limit is not None and order.ids is None and order.seams is None:
            if order.field is not None:
                return self._by_field(f, order, order.field, limit, offset)
            if order.point is not None:
                return self._nearest(f, order, order.point, bbox, limit, offset)
        return self._select(f, *self._order_sql(order), limit, offset)

    def boxes(self, bbox: tuple[float, float, float, float] | None = None,
              time: tuple[int | None, int | None] | None = None,
              oids: tuple[int, ...] | None = None, where: Where | None = None, pixel_size: float | None = None,
              order_by: tuple[tuple[str, bool], ...] = ()) -> list[tuple[int, tuple[float, float, float, float]]]:
        """(OBJECTID, footprint bounds) of the items `items` would return, without building them:
        a query lists every match but shows one page."""
        # Every match is wanted here: an R*Tree pays unless it would list most of the catalog.
        f, _ = self._filter(bbox, time, oids, where, pixel_size,
                            few=max(self._few_limit(), self.info().item_count // 4))
        keys = [f"i.{_quote(self._field(name))} {'ASC' if asc else 'DESC'}" for name, asc in order_by]
        rows = self._rows('i."OBJECTID", r.minx, r.miny, r.maxx, r.maxy', f, keys + ['i."OBJECTID"'], [], None, 0)
        return [(row[0], row[1:]) for row in rows]

    def _filter(self, bbox: tuple[float, float, float, float] | None,
                time: tuple[int | None, int | None] | None, oids: tuple[int, ...] | None,
                where: Where | None, pixel_size: float | None, few: int | None = None) -> tuple[Filter, bool]:
        """The WHERE of a selection, and whether an R*Tree (holding at most `few` of its items,
        default `_FEW`) or a list of ids makes it narrow."""
        few = self._few_limit() if few is None else few
        f = Filter()
        if where is not None:
            f = f.plus(self.store.condition(where.sql), *where.params)
        if pixel_size is not None:
            f = f.plus('i."MinPS" <= ? AND i."MaxPS" >= ?', float(pixel_size), float(pixel_size))
        narrow = oids is not None
        # The R*Tree probes of the box and of the time window go in one statement (one round trip
        # to a PostGIS catalog); an R*Tree narrows (its float32 boxes are rounded outward), the
        # exact bounds decide.
        box = time_ = None
        probes: list[tuple[str, tuple[Any, ...]]] = []
        if bbox is not None:
            box = tuple(float(v) for v in bbox)
            probes.append((f"footprints WHERE {self.store.box}", box))
        if time is not None:
            start, end = (None if t is None else int(t) for t in time)
            time_ = (-math.inf if start is None else start, math.inf if end is None else end)
            probes.append((f"item_times WHERE {self.store.span}", self.store.span_bounds(*time_)))
        few_ = iter(self._few(few, probes))
        if box is not None:
            xmin, ymin, xmax, ymax = box
            if next(few_):
                f, narrow = f.plus(_IN_BOX.format(box=self.store.box), *box), True
            f = f.plus("r.maxx >= ? AND r.minx <= ? AND r.maxy >= ? AND r.miny <= ?", xmin, xmax, ymin, ymax)
        if time_ is not None:
            lo, hi = time_
            if next(few_):
                f, narrow = f.plus(f"r.oid IN (SELECT id FROM item_times WHERE {self.store.span})",
                                   *self.store.span_bounds(lo, hi)), True
            f = f.plus("r.time_start IS NOT NULL AND r.time_start <= ? AND r.time_end >= ?", hi, lo)
        if oids is not None:
            f = f.plus(f'i."OBJECTID" IN ({self.store.ids})', json.dumps([int(o) for o in oids]))
        return f, narrow

    def _few(self, few: int, probes: list[tuple[str, tuple[Any, ...]]]) -> list[bool]:
        """Whether each R*Tree query (`table WHERE condition`, parameters) finds at most `few`
        entries (counting stops there), all in one statement."""
        if not probes:
            return []
        counts = ", ".join(f"(SELECT COUNT(*) FROM (SELECT 1 FROM {rtree} LIMIT {int(few) + 1}) AS few{k})"
                           for k, (rtree, _) in enumerate(probes))
        row = self.store.con().execute(f"SELECT {counts}", [p for _, params in probes for p in params]).fetchone()
        return [n <= few for n in row]

    def _select(self, f: Filter, keys: list[str], key_params: list[Any], limit: int | None, offset: int) -> list[Item]:
        cursor = self._rows("r.path, r.crs_wkt, r.minx, r.miny, r.maxx, r.maxy, r.time_start, r.time_end, i.*",
                            f, keys, key_params, limit, offset)
        names = [d[0] for d in cursor.description[8:]]
        return [self._item(row, names) for row in cursor.fetchall()]

    def _rows(self, columns: str, f: Filter, keys: list[str], key_params: list[Any], limit: int | None,
              offset: int) -> Any:
        sql = f'SELECT {columns} FROM items AS i JOIN rasters AS r ON r.oid = i."OBJECTID"'
        if f.sql:
            sql += " WHERE " + " AND ".join(f"({w})" for w in f.sql)
        sql += " ORDER BY " + ", ".join(keys)
        params = [*f.params, *key_params]
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [self.store.no_limit if limit is None else int(limit), int(offset)]
        try:
            return self.store.con().execute(sql, params)
        except self.store.value_errors as exc:     # e.g. a number compared with a text field (PostGIS)
            raise InvalidParameter("where", f"the where clause does not fit the fields' types ({exc})") from None

    def _order_sql(self, order: Order) -> tuple[list[str], list[Any]]:
        """ORDER BY terms (and their parameters) of a mosaic order."""
        keys: list[str] = []
        params: list[Any] = []
        direction = "ASC" if order.ascending else "DESC"
        if order.seams is not None:
            keys.append('NOT EXISTS (SELECT 1 FROM seamlines AS s WHERE s.oid = i."OBJECTID" AND '
                        "s.maxx >= ? AND s.minx <= ? AND s.maxy >= ? AND s.miny <= ?)")
            xmin, ymin, xmax, ymax = order.seams
            params += [xmin, xmax, ymin, ymax]
        if order.ids is not None:
            keys.append(self.store.position('i."OBJECTID"'))
            params.append(json.dumps(list(order.ids)))
        if order.field is not None:
            f = self._field_named(order.field, "mosaic")
            column = f"i.{_quote(f.name)}"
            if order.base is not None and f.type in (INTEGER, DOUBLE, DATE):
                keys.append(f"ABS({column} - ?) {direction} NULLS LAST")
                params.append(order.base)
            else:
                keys.append(f"{column} {direction} NULLS LAST")       # items without a value last
        if order.point is not None:
            keys.append('(i."CenterX" - ?) * (i."CenterX" - ?) + (i."CenterY" - ?) * (i."CenterY" - ?)')
            x, y = order.point
            params += [x, x, y, y]
        keys.append(f'i."OBJECTID" {direction}')
        return keys, params

    def _by_field(self, f: Filter, order: Order, name: str, limit: int, offset: int) -> list[Item]:
        """A field order over a wide selection: the field's index walked in order (or both ways
        from a base, `_by_distance`); items without a value come last."""
        field = self._field_named(name, "mosaic")
        column, direction = f"i.{_quote(field.name)}", "ASC" if order.ascending else "DESC"
        point_keys, point_params = self._order_sql(Order(point=order.point)) if order.point else ([], [])
        point_keys = point_keys[:-1]
        wanted = offset + limit
        if order.base is None or field.type not in (INTEGER, DOUBLE, DATE):
            # Items with a value, then those without: `field DESC NULLS LAST` in one query would
            # be a full sort on PostgreSQL, whose one index on the field serves ASC NULLS LAST and
            # DESC NULLS FIRST only (100x slower on a whole-extent view); split, either direction walks it.
            found = self._select(f.plus(f"{column} IS NOT NULL"),
                                 [f"{column} {direction}", *point_keys, f'i."OBJECTID" {direction}'],
                                 point_params, wanted, 0)
        else:
            found = self._by_distance(f, order, order.base, field, column, direction, wanted)
        if len(found) < wanted:
            found += self._select(f.plus(f"{column} IS NULL"), [*point_keys, f'i."OBJECTID" {direction}'],
                                  point_params, wanted - len(found), 0)
        return found[offset:wanted]

    def _by_distance(self, f: Filter, order: Order, base: float, field: Field, column: str, direction: str,
                     wanted: int) -> list[Item]:
        """The first `wanted` items with a value in |field - base| order: walked away from base on
        both sides (or towards it from both ends, farthest first) and merged."""
        sign = 1 if order.ascending else -1
        up, down = ("ASC", "DESC") if order.ascending else ("DESC", "ASC")
        found = (self._select(f.plus(f"{column} >= ?", base), [f"{column} {up}", f'i."OBJECTID" {direction}'], [],
                              wanted, 0)
                 + self._select(f.plus(f"{column} < ?", base), [f"{column} {down}", f'i."OBJECTID" {direction}'], [],
                                wanted, 0))
        px, py = order.point or (0.0, 0.0)
        found.sort(key=lambda i: (sign * abs(i.attributes[field.name] - base),
                                  (i.center[0] - px) ** 2 + (i.center[1] - py) ** 2 if order.point else 0,
                                  sign * i.oid))
        return found[:wanted]

    def _nearest(self, f: Filter, order: Order, point: tuple[float, float],
                 bbox: tuple[float, float, float, float] | None, limit: int, offset: int) -> list[Item]:
        """A distance order over a wide selection: the nearest centres found in boxes around the
        point that double until they hold enough. A box needs only reach the items that can meet
        `bbox`: their centres lie within the largest item's size of it."""
        px, py = point
        wanted = offset + limit
        grow = self._largest_item()
        x0, y0, x1, y1 = bbox if bbox is not None else self.info().extent
        x0, y0, x1, y1 = x0 - grow, y0 - grow, x1 + grow, y1 + grow
        # start at the region, with a box expected to hold a few times `wanted` items
        reach = math.hypot(max(0.0, x0 - px, px - x1), max(0.0, y0 - py, py - y1))
        reach += math.sqrt((x1 - x0) * (y1 - y0) * wanted / self._few_limit()) or 1.0
        keys, params = self._order_sql(order)
        while True:
            box = (max(x0, px - reach), max(y0, py - reach), min(x1, px + reach), min(y1, py + reach))
            found = self._select(f.plus(_IN_BOX.format(box=self.store.box), *box), keys, params, wanted, 0)
            if box == (x0, y0, x1, y1) or (len(found) == wanted and math.dist(found[-1].center, (px, py)) <= reach):
                return found[offset:]
            reach *= 2

    def _largest_item(self) -> float:
        """The largest width or height of an item's footprint (per generation)."""
        generation = self.last_change()
        if self._sizes is None or self._sizes[0] != generation:
            widest = self.store.greatest("maxx - minx", "maxy - miny")
            size = self.store.con().execute(f"SELECT MAX({widest}) FROM footprints").fetchone()[0]
            self._sizes = (generation, size or 0.0)
        return self._sizes[1]

    @staticmethod
    def _item(row: tuple[Any, ...], names: list[str]) -> Item:
        path, crs_wkt, minx, miny, maxx, maxy, t0, t1 = row[:8]
        attrs = dict(zip(names, row[8:], strict=True))
        return Item(oid=attrs["OBJECTID"], path=path, name=attrs["Name"], bounds=(minx, miny, maxx, maxy),
                    crs_wkt=crs_wkt, cell_size=attrs["LowPS"], center=(attrs["CenterX"], attrs["CenterY"]),
                    zorder=attrs["ZOrder"], time_start=t0, time_end=t1, attributes=attrs)

    def has_field(self, name: str) -> bool:
        """Whether the catalog holds a field of this name (case-insensitive)."""
        return any(f.name.lower() == name.lower() and f.type != GEOMETRY
                   for f in HEAD_FIELDS + self.attribute_fields() + TAIL_FIELDS)

    def _field(self, name: str) -> str:
        """A field's own spelling (names match case-insensitively); unknown names are refused."""
        return self._field_named(name, "orderByFields").name

    def _field_named(self, name: str, param: str) -> Field:
        for f in HEAD_FIELDS + self.attribute_fields() + TAIL_FIELDS:
            if f.name.lower() == name.lower() and f.type != GEOMETRY:
                return f
        raise InvalidParameter(param, f"unknown field {name!r}")

    def cell_size_range(self) -> tuple[float, float, float, float]:
        """The smallest LowPS, largest HighPS, smallest MinPS and largest MaxPS of the items."""
        row: tuple[float, float, float, float] = self.store.con().execute(
            'SELECT MIN("LowPS"), MAX("HighPS"), MIN("MinPS"), MAX("MaxPS") FROM items').fetchone()
        return row

    def item(self, oid: int) -> Item | None:
        found = self.items(oids=(oid,))
        return found[0] if found else None

    def times(self) -> list[int]:
        """The distinct item times (starts, epoch ms), ascending: a service's time dimension."""
        rows = self.store.con().execute("SELECT DISTINCT time_start FROM rasters WHERE time_start IS NOT NULL "
                                   "AND footprint IS NOT NULL ORDER BY time_start")
        return [r[0] for r in rows]

    def time_bounds(self) -> list[tuple[int, int]]:
        """(start, end) of every item with a time (epoch ms): the tile cache snaps times to these."""
        rows: list[tuple[int, int]] = self.store.con().execute(
            "SELECT time_start, time_end FROM rasters WHERE time_start IS NOT NULL "
            "AND footprint IS NOT NULL").fetchall()
        return rows

    def last_change(self) -> int:
        """The catalog's generation: an integer that strictly grows with every change any process
        makes (sync, add, remove), the epoch milliseconds of the change or one more than the last.
        One indexed read: workers ask it per request to notice changes, and it is the update
        sequence of the OGC capabilities and the generation of cached tiles."""
        return int(self.store.generation() or 0)


    def content_stamp(self) -> str:
        """The catalog's content digest (see `_content_digest`); '' before the first sync."""
        return self._meta(self.store.con(), "content") or ""

    def footprints(self, oids: Iterable[int]) -> dict[int, list[tuple[float, float]]]:
        """Closed footprint rings (service CRS) of several items in one query."""
        rows = self.store.con().execute(f"SELECT oid, footprint FROM rasters WHERE footprint IS NOT NULL AND oid IN "
                                        f"({self.store.ids})", (json.dumps([int(o) for o in oids]),))
        return {oid: [tuple(p) for p in json.loads(ring)] for oid, ring in rows}

    def footprint_shapes(self, oids: Iterable[int]) -> dict[int, Any]:
        """Footprint polygons of several items, kept per catalog generation (a bounded memo): every
        request tests the footprints of the items it meets, a getSamples request once per point."""
        generation = self.last_change()
        if self._shapes is None or self._shapes[0] != generation or len(self._shapes[1]) > _SHAPE_MEMO:
            self._shapes = (generation, {})
        known = self._shapes[1]
        missing = [o for o in oids if o not in known]
        if missing:
            rings = self.footprints(missing)
            known.update(zip(rings, ring_polygons(list(rings.values())), strict=True))
        return {o: known[o] for o in oids if o in known}

    def record(self, oid: int) -> dict[str, Any]:
        """What was read from an item's file: grid, bands, overviews, tags, partial statistics."""
        cursor = self.store.con().execute(f"SELECT {', '.join(_READ_COLUMNS)} FROM rasters WHERE oid = ? "
                                     "AND footprint IS NOT NULL", (int(oid),))
        row = cursor.fetchone()
        if row is None:
            raise NotFound(f"Raster {oid} does not exist.")
        out = dict(zip(_READ_COLUMNS, row, strict=True))
        for key in ("transform", "nodata", "band_names", "overviews", "tags", "stats"):
            out[key] = json.loads(out[key]) if out[key] is not None else None
        return out

    def footprint(self, oid: int) -> list[tuple[float, float]]:
        """The item's closed footprint ring in the service CRS."""
        row = self.store.con().execute("SELECT footprint FROM rasters WHERE oid = ?", (int(oid),)).fetchone()
        if row is None or row[0] is None:
            raise NotFound(f"Item {oid} does not exist.")
        return [tuple(p) for p in json.loads(row[0])]
