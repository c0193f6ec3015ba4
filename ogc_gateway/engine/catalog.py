"""The catalog of a service: one SQLite database per service in cache_dir, synchronised with the
`sources` globs at start-up.

Tables: `rasters` holds what was read from each file (the only thing that needs file I/O), `footprints`
is its R*Tree index, and `items`/`fields` are *derived* from `rasters` + the attribute CSV + the config.
Because `items` is pure derivation it is simply rebuilt whenever an input changes, so attribute columns
can appear, vanish or change type without migrations, and a where-clause compiler can query real,
typed columns named exactly like the fields.
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import math
import os
import re
import sqlite3
import threading
import time
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np
import shapely
from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioError
from shapely.errors import GEOSException
from shapely.geometry import shape as geojson_shape
from shapely.geometry.base import BaseGeometry

from . import seams, sources
from .badfiles import BAD_FILE_ERRORS
from .errors import ConfigError, InvalidParameter, NotFound
from .fields import DATE, DOUBLE, GEOMETRY, IDENTIFIER, INTEGER, OID, STRING, Field, iso_to_epoch_ms
from .fields import EPOCH as _EPOCH
from .fields import quote as _quote
from .geometry import to_crs
from .rasterinfo import (BandStats, aggregate_stats, crs_from_wkt, footprint_ring, read_files, read_raster,
                         ring_area, ring_bounds, ring_polygons)
from .settings import ServiceConfig

if TYPE_CHECKING:
    from .where import Where

log = logging.getLogger("ogc_gateway.catalog")


@dataclass(frozen=True, slots=True)
class Item:
    oid: int                                   # OBJECTID
    path: str                                  # absolute path of the raster file
    name: str                                  # Name field (file stem)
    bounds: tuple[float, float, float, float]  # footprint bounds in the service CRS
    crs_wkt: str                               # the item's own CRS
    cell_size: float                           # native cell size in service CRS units (LowPS)
    center: tuple[float, float]                # CenterX, CenterY (service CRS)
    zorder: int | None = None
    time_start: int | None = None              # epoch ms (UTC) from time_field
    time_end: int | None = None                # epoch ms from end_time_field, else = time_start
    attributes: dict[str, Any] = field(default_factory=dict)   # every field by its name; dates as epoch ms


@dataclass(frozen=True, slots=True)
class CatalogInfo:
    """Service-level facts computed when items are added (never per request)."""

    crs_wkt: str
    extent: tuple[float, float, float, float]
    cell_size: tuple[float, float]
    band_count: int
    dtype: str                       # numpy dtype name
    nodata: float | None
    band_names: tuple[str, ...]
    stats: tuple[BandStats, ...]
    time_extent: tuple[int, int] | None
    fields: tuple[Field, ...]
    item_count: int


@dataclass(frozen=True, slots=True)
class Order:
    """A mosaic order, first = on top (engine/mosaic.py picks one per method; `Catalog.items` sorts
    by it in SQL). Keys in turn: items whose seamline meets the box `seams` first; position in
    `ids`; `field` (|field - base| for numbers and dates when base is given), items without a
    value last; squared distance of CenterX/CenterY from `point`; then OBJECTID. `ascending`
    turns the field and OBJECTID keys."""

    seams: tuple[float, float, float, float] | None = None
    ids: tuple[int, ...] | None = None
    field: str | None = None
    base: float | None = None
    point: tuple[float, float] | None = None
    ascending: bool = True


@dataclass(frozen=True, slots=True)
class _Filter:
    """The WHERE of an item selection: conditions, and their parameters in order."""

    sql: tuple[str, ...] = ()
    params: tuple = ()

    def plus(self, sql: str, *params) -> _Filter:
        return _Filter(self.sql + (sql,), self.params + params)


_FEW = 1000        # candidates an R*Tree may hand a query before an index walk does better
_IN_BOX = "r.oid IN (SELECT id FROM footprints WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?)"

Progress = Callable[[str, int], None]     # called with each file a change looks at, and their number
Reader = Callable[[list[str]], Iterable[tuple[str, "dict[str, Any] | str"]]]   # files -> (path, record or why not)


@dataclass(frozen=True, slots=True)
class SyncReport:
    added: int        # new files, and changed files that were re-read
    removed: int
    unchanged: int


# --- field vocabulary -----------------------------------------------------------------------------

_SQL_TYPE = {OID: "INTEGER PRIMARY KEY", STRING: "TEXT", INTEGER: "INTEGER", DOUBLE: "REAL",
             DATE: "INTEGER"}

HEAD_FIELDS = (
    Field("OBJECTID", OID, "OBJECTID"), Field("Shape", GEOMETRY, "Shape"),
    Field("Name", STRING, "Name", 200),
    Field("MinPS", DOUBLE, "MinPS"), Field("MaxPS", DOUBLE, "MaxPS"),
    Field("LowPS", DOUBLE, "LowPS"), Field("HighPS", DOUBLE, "HighPS"),
    Field("Category", INTEGER, "Category"), Field("ZOrder", INTEGER, "ZOrder"),
    Field("CenterX", DOUBLE, "CenterX"), Field("CenterY", DOUBLE, "CenterY"),
)
TAIL_FIELDS = (Field("Shape_Length", DOUBLE, "Shape_Length"), Field("Shape_Area", DOUBLE, "Shape_Area"))
BUILTIN_FIELDS = {f.name.lower(): f.name for f in HEAD_FIELDS + TAIL_FIELDS}

_INT_TEXT = re.compile(r"[+-]?\d+")
_NUM_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS excluded (path TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS edits (
    path TEXT NOT NULL, name TEXT NOT NULL COLLATE NOCASE, value TEXT, PRIMARY KEY (path, name));
CREATE TABLE IF NOT EXISTS rasters (
    oid INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL DEFAULT 'sync', mtime_ns INTEGER, size INTEGER,
    crs_wkt TEXT, transform TEXT, width INTEGER, height INTEGER, band_count INTEGER, dtype TEXT,
    nodata TEXT, band_names TEXT, overviews TEXT, tags TEXT, stats TEXT,
    fp_crs TEXT, footprint TEXT, minx REAL, miny REAL, maxx REAL, maxy REAL,
    time_start INTEGER, time_end INTEGER, outline TEXT, cell_size REAL);
CREATE VIRTUAL TABLE IF NOT EXISTS footprints USING rtree(id, minx, maxx, miny, maxy);
CREATE VIRTUAL TABLE IF NOT EXISTS item_times USING rtree(id, t0, t1);
CREATE TABLE IF NOT EXISTS seamlines (
    oid INTEGER PRIMARY KEY, given INTEGER NOT NULL, shape BLOB NOT NULL,
    minx REAL, miny REAL, maxx REAL, maxy REAL);
CREATE TABLE IF NOT EXISTS fields (
    position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    type TEXT NOT NULL, alias TEXT NOT NULL, length INTEGER);
"""
# The service's extent, time extent and item count come from these without reading the wide rows.
_INDEXES = ("minx", "miny", "maxx", "maxy", "time_start", "time_end")
# Columns added to `rasters` after its first release: a database without them gets them, and its
# files are re-read at the next sync (the catalog is a cache of the files; nothing is lost).
_ADDED_COLUMNS = {"outline": "TEXT", "cell_size": "REAL"}
# What deriving an item row needs of its `rasters` row.
_DERIVE_SQL = "SELECT oid, path, overviews, tags, footprint, cell_size FROM rasters"
_SHAPE_MEMO = 20_000            # footprint polygons a worker keeps decoded
_READ_COLUMNS = ("mtime_ns", "size", "crs_wkt", "transform", "width", "height", "band_count", "dtype",
                 "nodata", "band_names", "overviews", "tags", "stats", "outline")


def _overlay(raw: dict[str, str | None], edits: dict[str, str | None] | None) -> None:
    """Values set by hand (`Catalog.set_attributes`, lower-cased names) over an item's raw cells."""
    if edits:
        for name in raw:
            if name.lower() in edits:
                raw[name] = edits[name.lower()]


def _items_ddl(attributes: list[Field], if_not_exists: bool = False) -> str:
    """The `items` table: one column per field (Shape excepted), named exactly like the field."""
    columns = [f for f in HEAD_FIELDS + tuple(attributes) + TAIL_FIELDS if f.type != GEOMETRY]
    body = ", ".join(f"{_quote(f.name)} {_SQL_TYPE[f.type]}" for f in columns)
    return f"CREATE TABLE {'IF NOT EXISTS ' if if_not_exists else ''}items ({body})"


# --- value parsing --------------------------------------------------------------------------------

def _is_int(text: str) -> bool:
    return bool(_INT_TEXT.fullmatch(text)) and -2**63 <= int(text) < 2**63


def infer_type(values: list[str]) -> str:
    """Esri type of a column from its non-empty cells: the narrowest type that fits them all."""
    if not values:
        return STRING
    if all(_is_int(v) for v in values):
        return INTEGER
    if all(_NUM_TEXT.fullmatch(v) for v in values):
        return DOUBLE
    if all(iso_to_epoch_ms(v) is not None for v in values):
        return DATE
    return STRING


def convert(text: str | None, ftype: str) -> Any:
    """A cell as stored in its column (dates as epoch ms)."""
    if text is None:
        return None
    if ftype == INTEGER:
        return int(text)
    if ftype == DOUBLE:
        return float(text)
    if ftype == DATE:
        return iso_to_epoch_ms(text)
    return text


def check_attributes(fields: Iterable[Field], values: Any, param: str = "attributes") -> dict[str, str | None]:
    """JSON attribute values for `Catalog.set_attributes`: each name an attribute field (matched
    case-insensitively, given in its own spelling) and each value of its type — integers for
    integer fields, numbers for doubles, epoch ms or ISO 8601 text for dates, text for strings,
    or null — returned as the text a CSV cell would hold."""
    if not isinstance(values, dict):
        raise InvalidParameter(param, "must be a JSON object of field names and values")
    by_name = {f.name.lower(): f for f in fields}
    cells: dict[str, str | None] = {}
    for name, value in values.items():
        f = by_name.get(str(name).lower())
        if f is None:
            known = ", ".join(by_name[k].name for k in by_name) or "(none)"
            if str(name).lower() in BUILTIN_FIELDS:
                raise InvalidParameter(param, f"{name!r} is a built-in field and cannot be set")
            raise InvalidParameter(param, f"no attribute field {name!r}; attribute fields: {known}")
        cells[f.name] = _cell(f, value, param)
    return cells


def _cell(f: Field, value: Any, param: str) -> str | None:
    if value is None:
        return None
    wrong = InvalidParameter(param, f"{f.name}: {value!r} is not a valid {f.type[len('esriFieldType'):].lower()}")
    if isinstance(value, bool):
        raise wrong
    if f.type == INTEGER:
        if isinstance(value, int) and -2**63 <= value < 2**63:
            return str(value)
        raise wrong
    if f.type == DOUBLE:
        if isinstance(value, (int, float)) and math.isfinite(value):
            return repr(float(value))
        raise wrong
    if f.type == DATE:
        if isinstance(value, (int, float)) and math.isfinite(value) and abs(value) < 1e15:
            return (_EPOCH + timedelta(milliseconds=int(value))).isoformat()
        if isinstance(value, str) and iso_to_epoch_ms(value) is not None:
            return value.strip()
        raise wrong
    if isinstance(value, str):
        return value
    raise wrong


def time_value(value: Any, ftype: str) -> int | None:
    """An attribute value as an instant: dates and numbers are epoch ms; strings are parsed as ISO."""
    if value is None:
        return None
    if ftype in (DATE, INTEGER, DOUBLE):
        return int(value)
    if ftype == STRING:
        return iso_to_epoch_ms(value)
    return None


# --- the catalog ----------------------------------------------------------------------------------

def _footprint_and_cell(wkt, transform, width, height, crs_wkt, outline):
    """An item's footprint ring in the service CRS and its cell size there (from the whole grid;
    from the valid-data outline when the grid's edges do not exist there, as a full disk's
    corners off the Earth)."""
    try:
        grid_ring = footprint_ring(wkt, transform, width, height, crs_wkt)
    except ValueError:
        if not outline:
            raise
        ring = footprint_ring(wkt, transform, width, height, crs_wkt, outline)
        return ring, math.sqrt(ring_area(ring) / ring_area([tuple(p) for p in outline]))
    ring = footprint_ring(wkt, transform, width, height, crs_wkt, outline) if outline else grid_ring
    return ring, math.sqrt(ring_area(grid_ring) / (width * height))


def native_grid(con: sqlite3.Connection, crs_wkt: str, footprint_box: tuple[float, float, float, float],
                cell: float) -> tuple[tuple[float, float, float, float], tuple[float, float]]:
    """The service's grid: the extent and (pixelSizeX, pixelSizeY) of its items' own grids.

    Items in the service CRS on north-up grids count with their whole grid (a file's extent is its
    grid, nodata collar included), others with their footprint's box; the extent is then grown to
    whole pixels of the finest such item, so that a coverage read "at the native grid" is that
    item's grid - origin on its pixel corners, x and y sizes kept apart - and no resampling."""
    north_up = ("crs_wkt = ? AND footprint IS NOT NULL AND json_extract(transform, '$[1]') = 0 AND "
                "json_extract(transform, '$[3]') = 0 AND json_extract(transform, '$[0]') > 0 AND "
                "json_extract(transform, '$[4]') < 0")
    finest = con.execute(f"SELECT transform FROM rasters WHERE {north_up} ORDER BY cell_size, oid LIMIT 1",
                         (crs_wkt,)).fetchone()
    if finest is None:
        return footprint_box, (cell, cell)
    a, _, c, _, e, f = json.loads(finest[0])[:6]
    grids = con.execute(f"SELECT MIN(json_extract(transform, '$[2]')), "
                        f"MIN(json_extract(transform, '$[5]') + json_extract(transform, '$[4]') * height), "
                        f"MAX(json_extract(transform, '$[2]') + json_extract(transform, '$[0]') * width), "
                        f"MAX(json_extract(transform, '$[5]')) FROM rasters WHERE {north_up}", (crs_wkt,)).fetchone()
    x0, y0 = min(footprint_box[0], grids[0]), min(footprint_box[1], grids[1])
    x1, y1 = max(footprint_box[2], grids[2]), max(footprint_box[3], grids[3])
    ry = -e
    snap = 1e-6                    # a millionth of a pixel is float noise, not another pixel
    x0 = c + math.floor((x0 - c) / a + snap) * a
    x1 = c + math.ceil((x1 - c) / a - snap) * a
    y1 = f - math.floor((f - y1) / ry + snap) * ry
    y0 = f - math.ceil((f - y0) / ry - snap) * ry
    return (x0, y0, x1, y1), (a, ry)


class Catalog:
    """One service's items. Readers (every worker) only query; `sync()` is the one writer."""

    def __init__(self, db_path: Path, service: ServiceConfig):
        self.db_path = Path(db_path)
        self.service = service
        self._local = threading.local()
        self._info: tuple[int, CatalogInfo] | None = None
        self._sizes: tuple[int, float] | None = None
        self._shapes: tuple[int, dict[int, Any]] | None = None
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        con = self._con()
        con.execute("PRAGMA journal_mode=WAL")     # readers in other workers never block on sync
        con.executescript(_SCHEMA)
        con.execute(_items_ddl([], if_not_exists=True))
        if not _ADDED_COLUMNS.keys() <= self._columns(con):
            with self._write() as con:            # checked again under the lock: one process adds them
                for column, sql_type in _ADDED_COLUMNS.items():
                    if column not in self._columns(con):
                        con.execute(f"ALTER TABLE rasters ADD COLUMN {column} {sql_type}")
                        con.execute("UPDATE rasters SET mtime_ns = NULL, fp_crs = NULL")
        for column in _INDEXES:
            con.execute(f"CREATE INDEX IF NOT EXISTS rasters_{column} ON rasters ({column})")

    @staticmethod
    def _columns(con: sqlite3.Connection) -> set[str]:
        return {row[1] for row in con.execute("PRAGMA table_info(rasters)")}

    # connections and transactions

    def _con(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections must not cross threads)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.db_path, timeout=30, isolation_level=None)
            self._local.con = con
        return con

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        con = self._con()
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")

    def _meta(self, con: sqlite3.Connection, key: str) -> str | None:
        row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def _set_meta(self, con: sqlite3.Connection, key: str, value: str) -> None:
        con.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    @property
    def _where(self) -> str:
        return f"services.{self.service.name}"

    def _no_match(self) -> str:
        return f"{self._where}.sources: no raster file matches {list(self.service.sources)}"

    # sync, add, remove: each one write transaction that ends in `_settle`

    def sync(self, progress: Progress | None = None, reader: Reader = read_files) -> SyncReport:
        """Bring the database in line with the globs; raise one ConfigError listing every problem
        (the transaction is then rolled back, so a failed sync leaves the previous state). `reader`
        reads the new and changed files (`ogc-gateway catalog sync --spark` reads them on a cluster)."""
        paths = self._source_paths()
        with self._write() as con:
            report, problems, touched, gone = self._sync_files(con, paths, progress, reader)
            self._settle(con, touched, gone, problems, skipped=self._skipped)
        return report

    def add(self, paths: list[str], progress: Progress | None = None) -> SyncReport:
        """Add files by hand (`catalog add`): kept across syncs while they exist, even outside the
        globs, and taken back from the excluded list. A file already in the catalog is re-read if it
        changed. Every problem (an unreadable file, another band count) refuses the whole batch."""
        records, problems = [], []
        for path in (sources.normalize(p) for p in paths):
            if progress:
                progress(path, len(paths))
            try:
                records.append((path, read_raster(path)))
            except (RasterioError, ValueError, OSError) as exc:
                problems.append(f"{path}: not a usable raster ({exc})")
        if problems:
            raise ConfigError(problems)
        return self.add_records(records)

    def add_records(self, records: Iterable[tuple[str, dict[str, Any]]]) -> SyncReport:
        """Store items whose file facts are already known: `(path, record)` pairs, each record what
        `rasterinfo.read_raster` returns (a synthetic source may build them without any file, as
        benchmarks/selection.py does; such items last until a sync finds their file missing)."""
        with self._write() as con:
            stored = {row[0]: row[1] for row in con.execute("SELECT path, oid FROM rasters")}
            touched = set()
            for path, record in records:
                con.execute("DELETE FROM excluded WHERE path = ?", (path,))
                touched.add(self._store(con, path, record, stored.get(path), origin="add"))
            self._settle(con, touched, [], [])
        return SyncReport(len(touched), 0, 0)

    def remove(self, where: Where) -> list[str]:
        """Take the items matching a compiled where clause out (`catalog remove`) and remember their
        files as excluded, so later syncs leave them out; the paths removed, in OBJECTID order.
        Removing every item is refused: a service needs at least one."""
        with self._write() as con:
            rows = con.execute(f"SELECT i.OBJECTID, r.path FROM items AS i JOIN rasters AS r ON "
                               f"r.oid = i.OBJECTID WHERE {where.sql} ORDER BY i.OBJECTID",
                               where.params).fetchall()
            total = con.execute("SELECT COUNT(*) FROM rasters").fetchone()[0]
            if rows and len(rows) == total:
                raise ConfigError([f"{self.service.name}: the where clause matches all {total} items; "
                                   "a service keeps at least one (change `sources` to retire it)"])
            gone = [self._delete(con, oid) for oid, _ in rows]
            con.executemany("INSERT OR IGNORE INTO excluded (path) VALUES (?)", [(p,) for _, p in rows])
            if rows:
                self._settle(con, set(), gone, [])
        return [p for _, p in rows]

    def set_attributes(self, oids: Iterable[int], values: dict[str, str | None]) -> None:
        """Give items attribute values by hand (the REST `update` and `add` operations), as text the
        way a CSV cell is written. They outlast syncs and re-reads and win over the CSV and the
        file's metadata. Names must be attribute fields and values must fit their types: the caller
        checks both (`check_attributes`), so a value never retypes a field."""
        oids = sorted({int(o) for o in oids})
        with self._write() as con:
            paths = dict(con.execute("SELECT oid, path FROM rasters WHERE oid IN (SELECT value FROM json_each(?))",
                                     (json.dumps(oids),)).fetchall())
            missing = [o for o in oids if o not in paths]
            if missing:
                raise NotFound("Raster not found.", details=[f"There is no raster with id {missing[0]}."])
            con.executemany("INSERT OR REPLACE INTO edits (path, name, value) VALUES (?, ?, ?)",
                            [(paths[o], name, value) for o in oids for name, value in values.items()])
            self._settle(con, set(oids), [], [])

    def remove_ids(self, oids: Iterable[int]) -> list[str]:
        """Take items out by OBJECTID (the REST `delete` operation); the paths of their files.
        Unknown ids are an error, and so is removing every item (a service keeps at least one)."""
        oids = sorted({int(o) for o in oids})
        with self._write() as con:
            rows = con.execute("SELECT oid, path FROM rasters WHERE oid IN (SELECT value FROM json_each(?))",
                               (json.dumps(oids),)).fetchall()
            missing = sorted(set(oids) - {oid for oid, _ in rows})
            if missing:
                raise NotFound("Raster not found.", details=[f"There is no raster with id {missing[0]}."])
            total = con.execute("SELECT COUNT(*) FROM rasters").fetchone()[0]
            if len(rows) == total:
                raise ConfigError([f"{self.service.name}: a service keeps at least one raster "
                                   f"(all {total} were named)"])
            gone = [self._delete(con, oid) for oid, _ in rows]
            con.executemany("INSERT OR IGNORE INTO excluded (path) VALUES (?)", [(p,) for _, p in rows])
            con.executemany("DELETE FROM edits WHERE path = ?", [(p,) for _, p in rows])
            self._settle(con, set(), gone, [])
        return [p for _, p in rows]

    def oids_of(self, paths: Iterable[str]) -> list[int]:
        """The OBJECTIDs of the items of these files, in the order given."""
        paths = [os.path.normpath(os.path.abspath(p)) for p in paths]
        by_path = dict(self._con().execute("SELECT path, oid FROM rasters WHERE path IN "
                                           "(SELECT value FROM json_each(?))", (json.dumps(paths),)))
        return [by_path[p] for p in paths]

    @staticmethod
    def _edits(con: sqlite3.Connection) -> dict[str, dict[str, str | None]]:
        edits: dict[str, dict[str, str | None]] = {}
        for path, name, value in con.execute("SELECT path, name, value FROM edits"):
            edits.setdefault(path, {})[name.lower()] = value
        return edits

    def entries(self, where: Where | None = None) -> Iterator[tuple[int, str, str, str]]:
        """(OBJECTID, Name, origin, path) of the items matching `where`, by OBJECTID: `catalog list`.
        origin is 'sync' (found by the globs) or 'add' (added by hand)."""
        sql = ("SELECT i.OBJECTID, i.Name, r.origin, r.path FROM items AS i JOIN rasters AS r "
               "ON r.oid = i.OBJECTID")
        if where is not None:
            sql += f" WHERE {where.sql}"
        yield from self._con().execute(sql + " ORDER BY i.OBJECTID", where.params if where else ())

    def excluded(self) -> list[str]:
        """Files taken out with `remove`, which syncs leave out until they are added again."""
        return [row[0] for row in self._con().execute("SELECT path FROM excluded ORDER BY path")]

    def _settle(self, con: sqlite3.Connection, touched: set[int], gone: list[tuple], problems: list[str],
                skipped: list[str] = ()) -> None:
        """What follows any change of the files: checks, footprints, the derived tables, seamlines,
        and a new generation; raises ConfigError (rolling everything back) on any problem.
        `touched` are new or re-read items, `gone` the bounds of removed ones."""
        if con.execute("SELECT COUNT(*) FROM rasters").fetchone()[0] == 0:
            raise ConfigError(problems or list(skipped) or [self._no_match()])
        problems += self._check_uniform(con)
        crs_wkt, crs_problems = self._service_crs(con)
        problems += crs_problems
        crs_changed = crs_wkt != self._meta(con, "service_crs")
        problems += self._update_footprints(con, crs_wkt)
        if con.execute("SELECT COUNT(*) FROM rasters").fetchone()[0] == 0:     # every footprint failed
            raise ConfigError(problems or list(skipped) or [self._no_match()])
        fingerprint = self._fingerprint()
        everything = crs_changed or fingerprint != self._meta(con, "fingerprint")
        changed = everything or touched or gone
        if changed:
            problems += self._derive(con, None if everything else touched)
            problems += self._update_seamlines(con, crs_wkt, None if everything else touched, gone)
        if problems:
            raise ConfigError(problems)
        if changed or self._meta(con, "generation") is None or self._meta(con, "content") is None:
            self._set_meta(con, "content", self._content_digest(con))
        if changed or self._meta(con, "generation") is None:
            self._set_meta(con, "stats", json.dumps(self._stats_sums(con)))
            old = int(self._meta(con, "generation") or 0)
            self._set_meta(con, "generation", str(max(old + 1, time.time_ns() // 1_000_000)))
        self._set_meta(con, "service_crs", crs_wkt)
        self._set_meta(con, "fingerprint", fingerprint)

    def _source_paths(self) -> dict[str, tuple[int, int] | None]:
        """The files the `sources` patterns name (local globs, S3 prefixes or URLs: engine/sources.py),
        each with its change stamp when the listing gave it (S3), else None (stat it when needed)."""
        found: dict[str, tuple[int, int] | None] = {}
        for pattern in self.service.sources:
            found.update(sources.listing(pattern))
        return found

    def _sync_files(self, con: sqlite3.Connection, paths: dict[str, tuple[int, int] | None],
                    progress: Progress | None, reader: Reader
                    ) -> tuple[SyncReport, list[str], set[int], list[tuple]]:
        """Add new files, re-read changed ones (same OBJECTID), drop vanished ones. Items added by
        hand (origin other than 'sync') stay while their file exists."""
        stored = {row[0]: row for row in
                  con.execute("SELECT path, oid, origin, mtime_ns, size FROM rasters")}
        excluded = {row[0] for row in con.execute("SELECT path FROM excluded")}
        by_hand = {p for p, row in stored.items() if row[2] != "sync" and sources.exists(p)}
        wanted = (set(paths) | by_hand) - excluded
        removed = sorted(set(stored) - wanted)
        gone = []
        for path in removed:
            gone.append(self._delete(con, stored[path][1]))
            log.warning("%s: %s is gone; removed from the catalog", self.service.name, path)
        unchanged = 0
        touched: set[int] = set()
        problems: list[str] = []
        self._skipped: list[str] = []      # unusable files: a warning each, the rest still serve
        to_read = []
        for path in sorted(wanted):
            row = stored.get(path)
            try:
                st = paths.get(path) or sources.stat(path)     # an S3 listing already holds it
                if st is None:
                    raise FileNotFoundError(2, "No such file or directory")
            except OSError as exc:
                self._skip(con, path, row, gone, exc.strerror or str(exc))
            else:
                if row and (row[3], row[4]) == st:
                    unchanged += 1
                else:
                    to_read.append(path)
                    continue
            if progress:
                progress(path, len(wanted))
        for path, record in reader(to_read):
            if progress:
                progress(path, len(wanted))
            row = stored.get(path)
            if isinstance(record, str):
                self._skip(con, path, row, gone, record)
                continue
            if row:                   # where it was: the seamlines around its old footprint are recut too
                gone.append(con.execute("SELECT minx, miny, maxx, maxy FROM rasters WHERE oid = ?",
                                        (row[1],)).fetchone())
            touched.add(self._store(con, path, record, row[1] if row else None))
        return SyncReport(len(touched), len(removed), unchanged), problems, touched, gone

    def _skip(self, con: sqlite3.Connection, path: str, row, gone: list[tuple], why: str) -> None:
        """Leave an unusable file out with one warning naming it (an item it was is removed)."""
        message = f"{self._where}.sources: {path}: {why}; skipped"
        log.warning("%s", message)
        self._skipped.append(message)
        if row:
            gone.append(self._delete(con, row[1]))

    def _delete(self, con: sqlite3.Connection, oid: int) -> tuple:
        """Remove one item; its footprint bounds (None if it had none) are returned, so the
        seamlines around it can be recut."""
        bounds = con.execute("SELECT minx, miny, maxx, maxy FROM rasters WHERE oid = ?", (oid,)).fetchone()
        con.execute("DELETE FROM rasters WHERE oid = ?", (oid,))
        for table, key in (("footprints", "id"), ("item_times", "id"), ("items", "OBJECTID"),
                           ("seamlines", "oid")):
            con.execute(f"DELETE FROM {table} WHERE {key} = ?", (oid,))
        return bounds

    def _store(self, con: sqlite3.Connection, path: str, record: dict[str, Any], oid: int | None,
               origin: str | None = None) -> int:
        """Insert (oid None) or update one file's row; its OBJECTID."""
        values = [record.get(c) for c in _READ_COLUMNS]
        if oid is None:
            cols = ", ".join(("path", "origin") + _READ_COLUMNS)
            cursor = con.execute(f"INSERT INTO rasters ({cols}) VALUES ({', '.join('?' * (len(values) + 2))})",
                                 [path, origin or "sync", *values])
            return cursor.lastrowid
        # fp_crs NULL: the footprint is recomputed from the new grid
        sets = ", ".join(f"{c} = ?" for c in _READ_COLUMNS)
        con.execute(f"UPDATE rasters SET {sets}, fp_crs = NULL, origin = COALESCE(?, origin) WHERE oid = ?",
                    [*values, origin, oid])
        return oid

    def _check_uniform(self, con: sqlite3.Connection) -> list[str]:
        """One band count and dtype per service: the majority (first file on ties) is the service's."""
        rows = con.execute("SELECT path, band_count, dtype FROM rasters ORDER BY path").fetchall()
        kinds = Counter((n, dt) for _, n, dt in rows)
        (n, dt), _ = max(kinds.items(), key=lambda kv: kv[1])       # max keeps the first of equals
        ref = next(p for p, bn, bdt in rows if (bn, bdt) == (n, dt))
        return [f"{self._where}.sources: {p} has {bn} band(s) of {bdt}; the service has {n} band(s) "
                f"of {dt} (from {ref})" for p, bn, bdt in rows if (bn, bdt) != (n, dt)]

    def _service_crs(self, con: sqlite3.Connection) -> tuple[str, list[str]]:
        """The configured CRS, else the CRS most items share (ties: the first by sorted path)."""
        problems = []
        if self.service.crs:
            try:
                return CRS.from_user_input(self.service.crs).to_wkt(), []
            except CRSError as exc:
                problems.append(f"{self._where}.crs: {self.service.crs!r} is not a CRS ({exc})")
        wkts = [row[0] for row in con.execute("SELECT crs_wkt FROM rasters ORDER BY path")]
        keys = [crs_from_wkt(w).to_string() for w in wkts]
        best, _ = max(Counter(keys).items(), key=lambda kv: kv[1])
        return wkts[keys.index(best)], problems

    def _update_footprints(self, con: sqlite3.Connection, crs_wkt: str) -> list[str]:
        """(Re)compute footprints that are new or in another CRS, from the stored grid and
        valid-data outline (no file read); and each item's cell size from its whole grid."""
        rows = con.execute("SELECT oid, path, crs_wkt, transform, width, height, outline FROM rasters "
                           "WHERE fp_crs IS NULL OR fp_crs != ?", (crs_wkt,)).fetchall()
        problems, done = [], []
        for oid, path, wkt, transform, width, height, outline in rows:
            transform = json.loads(transform)
            try:
                outline = json.loads(outline) if outline else None
                ring, cell = _footprint_and_cell(wkt, transform, width, height, crs_wkt, outline)
                if not all(math.isfinite(v) for point in ring for v in point):
                    raise ValueError("its footprint does not reproject into the service CRS")
            except BAD_FILE_ERRORS as exc:
                # e.g. a full-disk geostationary scene beside UTM files: left out, named, not fatal
                log.warning("%s.sources: %s: %s; skipped", self._where, path, exc)
                self._delete(con, oid)
                continue
            done.append((json.dumps(ring), crs_wkt, *ring_bounds(ring), cell, oid))
        con.executemany("UPDATE rasters SET footprint = ?, fp_crs = ?, minx = ?, miny = ?, maxx = ?, "
                        "maxy = ?, cell_size = ? WHERE oid = ?", done)
        con.executemany("DELETE FROM footprints WHERE id = ?", [(row[-1],) for row in done])
        con.executemany("INSERT INTO footprints (id, minx, miny, maxx, maxy) VALUES (?, ?, ?, ?, ?)",
                        [(row[-1], *row[2:6]) for row in done])
        return problems

    def _fingerprint(self) -> str:
        """The config parts that shape item rows and seamlines; a change means every row is
        re-derived."""
        def stamp(path: Path | None) -> dict:
            try:
                return {"path": str(path), "mtime_ns": os.stat(path).st_mtime_ns} if path else {}
            except OSError:
                return {"path": str(path)}
        return json.dumps({"crs": self.service.crs, "catalog": stamp(self.service.catalog),
                           "seamlines": stamp(self.service.seamlines), "time_field": self.service.time_field,
                           "end_time_field": self.service.end_time_field}, sort_keys=True)

    # seamlines

    def _update_seamlines(self, con: sqlite3.Connection, crs_wkt: str, touched: set[int] | None,
                          gone: list[tuple]) -> list[str]:
        """Store each item's seamline: the one the service's `seamlines` file gives it, else one cut
        from the footprints (engine/seams.py) - for every item (touched None), or again for the
        items around new, re-read and removed ones."""
        given, problems = self._given_seamlines(con, crs_from_wkt(crs_wkt))
        if touched is None:
            con.execute("DELETE FROM seamlines")
            dirty = {row[0] for row in con.execute("SELECT oid FROM rasters WHERE footprint IS NOT NULL")}
        else:
            boxes = con.execute("SELECT minx, miny, maxx, maxy FROM rasters WHERE oid IN "
                                "(SELECT value FROM json_each(?))", (json.dumps(sorted(touched)),)).fetchall()
            dirty = set(touched)
            for x0, y0, x1, y1 in boxes + [b for b in gone if b and b[0] is not None]:
                dirty.update(row[0] for row in con.execute(
                    "SELECT id FROM footprints WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?",
                    (x0, x1, y0, y1)))
            con.execute("DELETE FROM seamlines WHERE oid IN (SELECT value FROM json_each(?))",
                        (json.dumps(sorted(dirty)),))
        ids = json.dumps(sorted(dirty))
        pairs = con.execute("SELECT a.id, b.id FROM footprints AS a JOIN footprints AS b ON b.maxx >= a.minx "
                            "AND b.minx <= a.maxx AND b.maxy >= a.miny AND b.miny <= a.maxy AND b.id != a.id "
                            "WHERE a.id IN (SELECT value FROM json_each(?))", (ids,)).fetchall()
        needed = json.dumps(sorted(dirty.union(b for _, b in pairs)))
        rows = con.execute("SELECT r.oid, r.footprint, i.CenterX, i.CenterY FROM rasters AS r JOIN items AS i "
                           "ON i.OBJECTID = r.oid WHERE r.oid IN (SELECT value FROM json_each(?)) ORDER BY r.oid",
                           (needed,)).fetchall()
        oids = np.array([r[0] for r in rows], dtype=np.int64)
        at = {oid: k for k, oid in enumerate(oids.tolist())}
        pairs = np.array([(at[a], at[b]) for a, b in pairs if a in at and b in at], dtype=np.int64).reshape(-1, 2)
        shapes = seams.seamlines(oids, shapely.make_valid(ring_polygons([json.loads(r[1]) for r in rows])),
                                 np.array([r[2:] for r in rows], dtype="f8").reshape(-1, 2), pairs[:, 0], pairs[:, 1])
        rows = []
        for oid, shape in zip(oids.tolist(), shapes):
            if oid in dirty:
                shape = given.get(oid, shape)
                rows.append((oid, int(oid in given), shapely.to_wkb(shape), *shape.bounds))
        con.executemany("INSERT INTO seamlines (oid, given, shape, minx, miny, maxx, maxy) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
        return problems

    def _given_seamlines(self, con: sqlite3.Connection, dst: CRS) -> tuple[dict[int, BaseGeometry], list[str]]:
        """The seamlines of the service's `seamlines` GeoJSON file by OBJECTID, in the service CRS:
        each feature names its item by a `name` (the item's Name) or `path` property (relative to
        the file's folder). RFC 7946 coordinates are WGS 84; a `crs` member names another CRS."""
        path = self.service.seamlines
        if path is None:
            return {}, []
        where = f"{self._where}.seamlines: {path}"
        try:
            doc = json.loads(Path(path).read_text(encoding="utf-8"))
            crs_name = ((doc.get("crs") or {}).get("properties") or {}).get("name") or "EPSG:4326"
            src = CRS.from_user_input(crs_name)
            features = doc["features"]
        except (OSError, ValueError, KeyError, TypeError, AttributeError, CRSError) as exc:
            return {}, [f"{where}: not a GeoJSON FeatureCollection ({exc})"]
        items = con.execute("SELECT i.OBJECTID, i.Name, r.path FROM items AS i JOIN rasters AS r "
                            "ON r.oid = i.OBJECTID").fetchall()
        by_name = {name.lower(): oid for oid, name, _ in items}
        by_path = {p: oid for oid, _, p in items}
        base = os.path.dirname(os.path.abspath(path))
        out, problems = {}, []
        for n, feature in enumerate(features):
            try:
                props = {str(k).lower(): v for k, v in (feature.get("properties") or {}).items()}
                geom = geojson_shape(feature["geometry"])
            except (AttributeError, KeyError, TypeError, ValueError, GEOSException) as exc:
                problems.append(f"{where}: feature {n}: not a usable feature ({exc})")
                continue
            oid = (by_path.get(sources.normalize(os.path.join(base, str(props["path"])))
                               if not sources.is_remote(str(props["path"])) else str(props["path"]))
                   if props.get("path") else by_name.get(str(props.get("name", "")).lower()))
            if oid is None:
                log.warning("%s: feature %d names no item; skipped", where, n)
                continue
            if geom.geom_type not in ("Polygon", "MultiPolygon"):
                problems.append(f"{where}: feature {n}: a seamline is a polygon, not a {geom.geom_type}")
                continue
            out[oid] = to_crs(geom, src, dst, name="seamlines")
        return out, problems

    def seamlines(self, oids) -> dict[int, BaseGeometry]:
        """The seamlines (service CRS) of several items."""
        rows = self._con().execute("SELECT oid, shape FROM seamlines WHERE oid IN (SELECT value FROM json_each(?))",
                                   (json.dumps([int(o) for o in oids]),))
        return {oid: shapely.from_wkb(blob) for oid, blob in rows}

    # attributes

    def _derive(self, con: sqlite3.Connection, oids: set[int] | None = None) -> list[str]:
        """Rebuild `items`, `fields` and item times from `rasters`, the CSV and the config. With
        `oids` (new or re-read items) only their rows are written when their attributes fit the
        present fields; a new attribute, or a value of another type, rebuilds everything."""
        if oids is not None:
            problems = self._derive_rows(con, oids)
            if problems is not None:
                return problems
        rows = con.execute(_DERIVE_SQL + " ORDER BY oid").fetchall()
        csv_columns, csv_rows, problems = self._read_csv({r[1] for r in rows})
        tag_columns = self._tag_columns([json.loads(r[3]) for r in rows], csv_columns)
        edits = self._edits(con)
        raw: dict[int, dict[str, str | None]] = {}
        for row in rows:
            oid, path, tags = row[0], row[1], json.loads(row[3])
            tags = {k.lower(): v.strip() or None for k, v in tags.items()}
            raw[oid] = {**{c: csv_rows.get(path, {}).get(c) for c in csv_columns},
                        **{c: tags.get(c.lower()) for c in tag_columns}}
            _overlay(raw[oid], edits.get(path))
        attributes = [self._field_of(c, [raw[o][c] for o in raw]) for c in csv_columns + tag_columns]
        types = {f.name: f.type for f in attributes}
        values = {oid: {c: convert(v, types[c]) for c, v in r.items()} for oid, r in raw.items()}
        self._write_items(con, rows, attributes, values)
        problems += self._write_times(con, attributes, values)
        return problems

    def _derive_rows(self, con: sqlite3.Connection, oids: set[int]) -> list[str] | None:
        """Write the item rows of `oids` alone; None when they do not fit the present fields.
        (Removals leave the fields as they are, so a rebuild may later narrow a type.)"""
        if not oids:
            return []
        ids = json.dumps(sorted(oids))
        rows = con.execute(_DERIVE_SQL + " WHERE oid IN (SELECT value FROM json_each(?)) ORDER BY oid",
                           (ids,)).fetchall()
        attributes = list(self.attribute_fields())
        edits = self._edits(con)
        csv_columns, csv_rows, problems = self._read_csv({r[1] for r in rows}, every_item=False)
        from_csv = {c.lower() for c in csv_columns}
        known = {f.name.lower() for f in attributes} | from_csv
        raw: dict[int, dict[str, str | None]] = {}
        for row in rows:
            oid, path, tags = row[0], row[1], json.loads(row[3])
            if problems or any(IDENTIFIER.fullmatch(k) and k.lower() not in BUILTIN_FIELDS and k.lower() not in known
                               for k in tags):
                return None
            tags = {k.lower(): v.strip() or None for k, v in tags.items()}
            cells = csv_rows.get(path, {})
            raw[oid] = {f.name: cells.get(f.name) if f.name.lower() in from_csv else tags.get(f.name.lower())
                        for f in attributes}
            _overlay(raw[oid], edits.get(path))
        for i, f in enumerate(attributes):
            new = [r[f.name] for r in raw.values() if r[f.name] is not None]
            if new and not self._fits(con, f, new):
                return None
            if new and f.type == STRING:
                attributes[i] = Field(f.name, f.type, f.alias, max([f.length or 1] + [len(v) for v in new]))
                con.execute("UPDATE fields SET length = ? WHERE name = ?", (attributes[i].length, f.name))
        values = {oid: {f.name: convert(r[f.name], f.type) for f in attributes} for oid, r in raw.items()}
        con.execute("DELETE FROM items WHERE OBJECTID IN (SELECT value FROM json_each(?))", (ids,))
        self._insert_items(con, rows, attributes, values)
        return self._write_times(con, attributes, values, rows_only=True)

    @staticmethod
    def _fits(con: sqlite3.Connection, f: Field, new: list[str]) -> bool:
        """Whether new cells leave the type a full inference would give a field unchanged."""
        if f.type == STRING:          # a text field stays text, unless it held nothing so far
            return (infer_type(new) == STRING
                    or con.execute(f"SELECT 1 FROM items WHERE {_quote(f.name)} IS NOT NULL LIMIT 1").fetchone())
        fits = {INTEGER: _is_int, DOUBLE: lambda v: _NUM_TEXT.fullmatch(v) is not None,
                DATE: lambda v: iso_to_epoch_ms(v) is not None}[f.type]
        return all(fits(v) for v in new)

    def _read_csv(self, known: set[str], every_item: bool = True
                  ) -> tuple[list[str], dict[str, dict[str, str | None]], list[str]]:
        """The attribute CSV: (valid columns, cells by absolute file path, problems). Rows for files
        not `known` are skipped, with a warning when `known` is every item (not when only some
        items are being derived)."""
        csv_path = self.service.catalog
        if not csv_path:
            return [], {}, []
        where = f"{self._where}.catalog: {csv_path}"
        try:
            with open(csv_path, newline="", encoding="utf-8-sig") as f:
                table = [row for row in csv.reader(f) if any(cell.strip() for cell in row)]
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            return [], {}, [f"{where}: cannot be read ({exc})"]
        header = [h.strip() for h in table[0]] if table else []
        lowered = [h.lower() for h in header]
        if "path" not in lowered:
            return [], {}, [f"{where}: no 'path' column (the raster file of each row)"]
        path_at = lowered.index("path")
        columns, problems = [], []
        for i, name in enumerate(header):
            if i == path_at:
                continue
            problem = self._column_problem(name, columns)
            if problem:
                problems.append(f"{where}: column {name!r} {problem}")
            else:
                columns.append(name)
        index = {name: header.index(name) for name in columns}
        base = os.path.dirname(os.path.abspath(csv_path))
        cells: dict[str, dict[str, str | None]] = {}
        for row in table[1:]:
            row = row + [""] * (len(header) - len(row))
            cell = row[path_at].strip()
            target = cell if sources.is_remote(cell) else os.path.normpath(os.path.join(base, cell))
            if not row[path_at].strip() or target not in known:
                if every_item:
                    log.warning("%s: row for %r matches no source file; skipped", where, row[path_at])
                continue
            cells[target] = {c: row[index[c]].strip() or None for c in columns}
        return columns, cells, problems

    @staticmethod
    def _column_problem(name: str, taken: list[str]) -> str | None:
        if not IDENTIFIER.fullmatch(name):
            return "is not a valid field name (a letter or _ first, then letters, digits, _)"
        if name.lower() in BUILTIN_FIELDS:
            return f"clashes with the built-in field {BUILTIN_FIELDS[name.lower()]!r}"
        if name.lower() in (t.lower() for t in taken):
            return "appears twice (field names are case-insensitive)"
        return None

    def _tag_columns(self, tag_sets: list[dict[str, str]], csv_columns: list[str]) -> list[str]:
        """GDAL metadata names that become attributes, in order of first appearance; a CSV column of
        the same name wins."""
        seen = {c.lower() for c in csv_columns}
        columns = []
        for tags in tag_sets:
            for name in tags:
                if name.lower() in seen:
                    continue
                seen.add(name.lower())
                if not IDENTIFIER.fullmatch(name) or name.lower() in BUILTIN_FIELDS:
                    # NetCDF's variable attributes ("temp#units" ...) are never fields: no warning
                    (log.debug if "#" in name else log.warning)(
                        "%s: metadata item %r is not usable as a field name; skipped", self._where, name)
                    continue
                columns.append(name)
        return columns

    @staticmethod
    def _field_of(name: str, cells: list[str | None]) -> Field:
        present = [c for c in cells if c is not None]
        ftype = infer_type(present)
        length = max([len(c) for c in present], default=1) if ftype == STRING else None
        return Field(name, ftype, name, length)

    def _write_items(self, con: sqlite3.Connection, rows: list[tuple], attributes: list[Field],
                     values: dict[int, dict[str, Any]]) -> None:
        con.execute("DROP TABLE IF EXISTS items")
        con.execute(_items_ddl(attributes))
        con.execute("DELETE FROM fields")
        con.executemany("INSERT INTO fields (position, name, type, alias, length) VALUES (?, ?, ?, ?, ?)",
                        [(i, f.name, f.type, f.alias, f.length) for i, f in enumerate(attributes)])
        self._insert_items(con, rows, attributes, values)
        # Selection filters and sorts on these (mosaic rules, where clauses, orderByFields): an index
        # each keeps a 100,000-item catalog from being scanned.
        for name in ("Name", "ZOrder", "LowPS", *(f.name for f in attributes)):
            con.execute(f"CREATE INDEX {_quote('items_' + name)} ON items ({_quote(name)})")

    @staticmethod
    def _insert_items(con: sqlite3.Connection, rows: list[tuple], attributes: list[Field],
                      values: dict[int, dict[str, Any]]) -> None:
        names = ["OBJECTID", "Name", "MinPS", "MaxPS", "LowPS", "HighPS", "Category", "ZOrder", "CenterX",
                 "CenterY", *(f.name for f in attributes), "Shape_Length", "Shape_Area"]
        sql = (f"INSERT INTO items ({', '.join(map(_quote, names))}) "
               f"VALUES ({', '.join('?' * len(names))})")
        rows = [r for r in rows if r[4] is not None]      # no footprint: unusable, already reported
        shapes = ring_polygons([json.loads(r[4]) for r in rows])
        centres = shapely.centroid(shapes)
        geometry = zip(shapely.get_x(centres).tolist(), shapely.get_y(centres).tolist(),
                       shapely.length(shapes).tolist(), shapely.area(shapes).tolist())
        batch = []
        for (oid, path, overviews, _tags, _, low), (cx, cy, length, area) in zip(rows, geometry):
            high = low * max(json.loads(overviews), default=1)
            batch.append([oid, Path(path).stem, 0.0, high * 2, low, high, 1, None, cx, cy,
                          *(values[oid][f.name] for f in attributes), length, area])
        con.executemany(sql, batch)

    def _write_times(self, con: sqlite3.Connection, attributes: list[Field],
                     values: dict[int, dict[str, Any]], rows_only: bool = False) -> list[str] | None:
        """Item instants from time_field / end_time_field (matched case-insensitively), and their
        index. With `rows_only` (some rows of a derived table) None is returned when those rows
        change what the whole column says (plain dates become date-times)."""
        by_name = {f.name.lower(): f for f in attributes}
        problems, chosen = [], []
        for key in ("time_field", "end_time_field"):
            wanted = getattr(self.service, key)
            found = by_name.get(wanted.lower()) if wanted else None
            if wanted and found is None:
                problems.append(f"{self._where}.{key}: no attribute {wanted!r}; attributes: "
                                f"{', '.join(f.name for f in attributes) or '(none)'}")
            chosen.append(found)
        start_f, end_f = chosen
        ends = [time_value(vals[end_f.name], end_f.type) for vals in values.values()] if end_f else []
        # A column of plain dates ends each item at the end of its day: "date_end 2024-12-31"
        # covers the 31st, not just its first millisecond.
        whole_days = bool(ends) and all(e is None or e % 86_400_000 == 0 for e in ends)
        if rows_only:
            column = self._meta(con, "whole_days") == "1"
            if whole_days != column and any(e is not None for e in ends):
                return None
            whole_days = column
        else:
            self._set_meta(con, "whole_days", "1" if whole_days else "0")
            con.execute("DELETE FROM item_times")
        ids = json.dumps(list(values))
        con.execute("DELETE FROM item_times WHERE id IN (SELECT value FROM json_each(?))", (ids,))
        spans = []
        for oid, vals in values.items():
            start = time_value(vals[start_f.name], start_f.type) if start_f else None
            end = time_value(vals[end_f.name], end_f.type) if end_f else None
            if end is not None and whole_days:
                end += 86_400_000 - 1
            if start is None:
                end = None
            elif end is None:
                end = start
            spans.append((start, end, oid))
        con.executemany("UPDATE rasters SET time_start = ?, time_end = ? WHERE oid = ?", spans)
        con.executemany("INSERT INTO item_times (id, t0, t1) VALUES (?, ?, ?)",
                        [(oid, t0, t1) for t0, t1, oid in spans if t0 is not None])
        return problems

    # queries

    def info(self) -> CatalogInfo:
        """Service facts, computed once per generation (a change by any process makes new ones)."""
        generation = self.last_change()
        if self._info is None or self._info[0] != generation:
            self._info = (generation, self._compute_info())
        return self._info[1]

    def _compute_info(self) -> CatalogInfo:
        """Aggregated in SQL: no per-item Python work, however many items there are."""
        con = self._con()
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
        cell = con.execute("SELECT MIN(LowPS) FROM items").fetchone()[0]
        time_extent = None
        if self.service.time_field:
            lo, hi = con.execute("SELECT (SELECT MIN(time_start) FROM rasters), "
                                 "(SELECT MAX(time_end) FROM rasters)").fetchone()
            time_extent = None if lo is None else (lo, hi)
        crs_wkt = self._meta(con, "service_crs") or ""
        extent, cell_xy = native_grid(con, crs_wkt, tuple(row[1:5]), cell)
        return CatalogInfo(
            crs_wkt=crs_wkt, extent=extent, cell_size=cell_xy,
            band_count=band_count, dtype=dtype, nodata=nodata, band_names=tuple(names),
            stats=aggregate_stats([partial], band_count),
            time_extent=time_extent, fields=HEAD_FIELDS + self.attribute_fields() + TAIL_FIELDS,
            item_count=row[0])

    @staticmethod
    def _stats_sums(con: sqlite3.Connection) -> list[list[float | None]]:
        """Per band [count, sum, sum of squares, min, max] over every item (the service statistics'
        inputs), kept in `meta` by each change so that opening a service does not read every row."""
        first = con.execute("SELECT band_count FROM rasters WHERE footprint IS NOT NULL LIMIT 1").fetchone()
        bands = first[0] if first else 0
        if not bands:
            return []
        sums = ", ".join(f"{agg}(json_extract(stats, '$[{b}][{k}]'))" for b in range(bands)
                         for k, agg in enumerate(("SUM", "SUM", "SUM", "MIN", "MAX")))
        row = con.execute(f"SELECT {sums} FROM rasters WHERE footprint IS NOT NULL").fetchone()
        return [list(row[5 * b:5 * b + 5]) for b in range(bands)]

    def attribute_fields(self) -> tuple[Field, ...]:
        """The attribute fields (CSV columns, then metadata items), in column order."""
        rows = self._con().execute("SELECT name, type, alias, length FROM fields ORDER BY position")
        return tuple(Field(*row) for row in rows)

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
            return self._select(f, keys + ["i.OBJECTID"], [], limit, offset)
        if not narrow and limit is not None and order.ids is None and order.seams is None:
            if order.field is not None:
                return self._by_field(f, order, limit, offset)
            return self._nearest(f, order, bbox, limit, offset)
        return self._select(f, *self._order_sql(order), limit, offset)

    def boxes(self, bbox=None, time=None, oids=None, where: Where | None = None, pixel_size=None,
              order_by: tuple[tuple[str, bool], ...] = ()) -> list[tuple[int, tuple[float, float, float, float]]]:
        """(OBJECTID, footprint bounds) of the items `items` would return, without building them:
        a query lists every match but shows one page."""
        # Every match is wanted here: an R*Tree pays unless it would list most of the catalog.
        f, _ = self._filter(bbox, time, oids, where, pixel_size, few=max(_FEW, self.info().item_count // 4))
        keys = [f"i.{_quote(self._field(name))} {'ASC' if asc else 'DESC'}" for name, asc in order_by]
        rows = self._rows("i.OBJECTID, r.minx, r.miny, r.maxx, r.maxy", f, keys + ["i.OBJECTID"], [], None, 0)
        return [(row[0], row[1:]) for row in rows]

    def _filter(self, bbox, time, oids, where, pixel_size, few: int | None = None) -> tuple[_Filter, bool]:
        """The WHERE of a selection, and whether an R*Tree (holding at most `few` of its items,
        default _FEW) or a list of ids makes it narrow."""
        few = _FEW if few is None else few
        f = _Filter()
        if where is not None:
            f = f.plus(where.sql, *where.params)
        if pixel_size is not None:
            f = f.plus("i.MinPS <= ? AND i.MaxPS >= ?", float(pixel_size), float(pixel_size))
        narrow = oids is not None
        if bbox is not None:
            xmin, ymin, xmax, ymax = (float(v) for v in bbox)
            # R*Tree narrows (its float32 boxes are rounded outward); the exact bounds decide.
            if self._few(few, "footprints WHERE maxx >= ? AND minx <= ? AND maxy >= ? AND miny <= ?",
                         xmin, xmax, ymin, ymax):
                f, narrow = f.plus(_IN_BOX, xmin, xmax, ymin, ymax), True
            f = f.plus("r.maxx >= ? AND r.minx <= ? AND r.maxy >= ? AND r.miny <= ?", xmin, xmax, ymin, ymax)
        if time is not None:
            start, end = (None if t is None else int(t) for t in time)
            lo, hi = -math.inf if start is None else start, math.inf if end is None else end
            if self._few(few, "item_times WHERE t1 >= ? AND t0 <= ?", lo, hi):
                f, narrow = f.plus("r.oid IN (SELECT id FROM item_times WHERE t1 >= ? AND t0 <= ?)", lo, hi), True
            f = f.plus("r.time_start IS NOT NULL AND r.time_start <= ? AND r.time_end >= ?", hi, lo)
        if oids is not None:
            f = f.plus("i.OBJECTID IN (SELECT value FROM json_each(?))", json.dumps([int(o) for o in oids]))
        return f, narrow

    def _few(self, few: int, rtree: str, *params) -> bool:
        """Whether an R*Tree query finds at most `few` entries (counting stops there)."""
        sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM {rtree} LIMIT {int(few) + 1})"
        return self._con().execute(sql, params).fetchone()[0] <= few

    def _select(self, f: _Filter, keys: list[str], key_params: list, limit: int | None, offset: int) -> list[Item]:
        cursor = self._rows("r.path, r.crs_wkt, r.minx, r.miny, r.maxx, r.maxy, r.time_start, r.time_end, i.*",
                            f, keys, key_params, limit, offset)
        names = [d[0] for d in cursor.description[8:]]
        return [self._item(row, names) for row in cursor.fetchall()]

    def _rows(self, columns: str, f: _Filter, keys: list[str], key_params: list, limit: int | None,
              offset: int) -> sqlite3.Cursor:
        sql = f"SELECT {columns} FROM items AS i JOIN rasters AS r ON r.oid = i.OBJECTID"
        if f.sql:
            sql += " WHERE " + " AND ".join(f"({w})" for w in f.sql)
        sql += " ORDER BY " + ", ".join(keys)
        params = [*f.params, *key_params]
        if limit is not None or offset:
            sql += " LIMIT ? OFFSET ?"
            params += [-1 if limit is None else int(limit), int(offset)]
        return self._con().execute(sql, params)

    def _order_sql(self, order: Order) -> tuple[list[str], list]:
        """ORDER BY terms (and their parameters) of a mosaic order."""
        keys, params = [], []
        direction = "ASC" if order.ascending else "DESC"
        if order.seams is not None:
            keys.append("NOT EXISTS (SELECT 1 FROM seamlines AS s WHERE s.oid = i.OBJECTID AND "
                        "s.maxx >= ? AND s.minx <= ? AND s.maxy >= ? AND s.miny <= ?)")
            xmin, ymin, xmax, ymax = order.seams
            params += [xmin, xmax, ymin, ymax]
        if order.ids is not None:
            keys.append("(SELECT key FROM json_each(?) WHERE value = i.OBJECTID)")
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
            keys.append("(i.CenterX - ?) * (i.CenterX - ?) + (i.CenterY - ?) * (i.CenterY - ?)")
            x, y = order.point
            params += [x, x, y, y]
        keys.append(f"i.OBJECTID {direction}")
        return keys, params

    def _by_field(self, f: _Filter, order: Order, limit: int, offset: int) -> list[Item]:
        """A field order over a wide selection: the field's index walked in order. For |field -
        base|, walked away from base on both sides (or towards it from both ends, farthest first)
        and merged; items without a value come last."""
        field = self._field_named(order.field, "mosaic")
        column, direction = f"i.{_quote(field.name)}", "ASC" if order.ascending else "DESC"
        point_keys, point_params = self._order_sql(Order(point=order.point)) if order.point else ([], [])
        point_keys = point_keys[:-1]
        if order.base is None or field.type not in (INTEGER, DOUBLE, DATE):
            return self._select(f, [f"{column} {direction} NULLS LAST", *point_keys, f"i.OBJECTID {direction}"],
                                point_params, limit, offset)
        wanted, base, sign = offset + limit, order.base, 1 if order.ascending else -1
        up, down = ("ASC", "DESC") if order.ascending else ("DESC", "ASC")
        found = (self._select(f.plus(f"{column} >= ?", base), [f"{column} {up}", f"i.OBJECTID {direction}"], [],
                              wanted, 0)
                 + self._select(f.plus(f"{column} < ?", base), [f"{column} {down}", f"i.OBJECTID {direction}"], [],
                                wanted, 0))
        px, py = order.point or (0.0, 0.0)
        found.sort(key=lambda i: (sign * abs(i.attributes[field.name] - base),
                                  (i.center[0] - px) ** 2 + (i.center[1] - py) ** 2 if order.point else 0,
                                  sign * i.oid))
        if len(found) < wanted:
            found += self._select(f.plus(f"{column} IS NULL"), [*point_keys, f"i.OBJECTID {direction}"],
                                  point_params, wanted - len(found), 0)
        return found[offset:wanted]

    def _nearest(self, f: _Filter, order: Order, bbox, limit: int, offset: int) -> list[Item]:
        """A distance order over a wide selection: the nearest centres found in boxes around the
        point that double until they hold enough. A box needs only reach the items that can meet
        `bbox`: their centres lie within the largest item's size of it."""
        px, py = order.point
        wanted = offset + limit
        grow = self._largest_item()
        x0, y0, x1, y1 = bbox if bbox is not None else self.info().extent
        x0, y0, x1, y1 = x0 - grow, y0 - grow, x1 + grow, y1 + grow
        # start at the region, with a box expected to hold a few times `wanted` items
        reach = math.hypot(max(0.0, x0 - px, px - x1), max(0.0, y0 - py, py - y1))
        reach += math.sqrt((x1 - x0) * (y1 - y0) * wanted / _FEW) or 1.0
        keys, params = self._order_sql(order)
        while True:
            box = (max(x0, px - reach), max(y0, py - reach), min(x1, px + reach), min(y1, py + reach))
            found = self._select(f.plus(_IN_BOX, box[0], box[2], box[1], box[3]), keys, params, wanted, 0)
            if box == (x0, y0, x1, y1) or (len(found) == wanted and math.dist(found[-1].center, (px, py)) <= reach):
                return found[offset:]
            reach *= 2

    def _largest_item(self) -> float:
        """The largest width or height of an item's footprint (per generation)."""
        generation = self.last_change()
        if self._sizes is None or self._sizes[0] != generation:
            size = self._con().execute("SELECT MAX(MAX(maxx - minx, maxy - miny)) FROM footprints").fetchone()[0]
            self._sizes = (generation, size or 0.0)
        return self._sizes[1]

    @staticmethod
    def _item(row: tuple, names: list[str]) -> Item:
        path, crs_wkt, minx, miny, maxx, maxy, t0, t1 = row[:8]
        attrs = dict(zip(names, row[8:]))
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
        return self._con().execute("SELECT MIN(LowPS), MAX(HighPS), MIN(MinPS), MAX(MaxPS) FROM items").fetchone()

    def item(self, oid: int) -> Item | None:
        found = self.items(oids=(oid,))
        return found[0] if found else None

    def times(self) -> list[int]:
        """The distinct item times (starts, epoch ms), ascending: a service's time dimension."""
        rows = self._con().execute("SELECT DISTINCT time_start FROM rasters WHERE time_start IS NOT NULL "
                                   "AND footprint IS NOT NULL ORDER BY time_start")
        return [r[0] for r in rows]

    def time_bounds(self) -> list[tuple[int, int]]:
        """(start, end) of every item with a time (epoch ms): the tile cache snaps times to these."""
        return self._con().execute("SELECT time_start, time_end FROM rasters WHERE time_start IS NOT NULL "
                                   "AND footprint IS NOT NULL").fetchall()

    def last_change(self) -> int:
        """The catalog's generation: an integer that strictly grows with every change any process
        makes (sync, add, remove), the epoch milliseconds of the change or one more than the last.
        One indexed read: workers ask it per request to notice changes, and it is the update
        sequence of the OGC capabilities and the generation of cached tiles."""
        return int(self._meta(self._con(), "generation") or 0)

    @staticmethod
    def _content_digest(con: sqlite3.Connection) -> str:
        """A digest of what the catalog holds (each file's OBJECTID, location and change stamp, the
        derived item rows, the seamlines), not of when it changed: two instances with their own
        catalogs of the same sources get the same digest, so a shared tile cache serves both."""
        digest = hashlib.blake2b(digest_size=8)
        for sql in ("SELECT oid, path, mtime_ns, size FROM rasters ORDER BY oid",
                    "SELECT * FROM items ORDER BY OBJECTID", "SELECT * FROM seamlines ORDER BY oid"):
            for row in con.execute(sql):
                digest.update(repr(row).encode())
            digest.update(b"\x00")
        return digest.hexdigest()

    def content_stamp(self) -> str:
        """The catalog's content digest (see `_content_digest`); '' before the first sync."""
        return self._meta(self._con(), "content") or ""

    def ping(self) -> None:
        """Raise OSError unless the catalog's store answers now (readiness): a fresh read-only
        connection, not this thread's open one, so a database that vanished is noticed."""
        try:
            con = sqlite3.connect(f"{self.db_path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
            try:
                row = con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise OSError(f"catalog database {self.db_path}: {exc}") from exc
        if row is None:
            raise OSError(f"catalog database {self.db_path}: never synchronised")

    def footprints(self, oids) -> dict[int, list[tuple[float, float]]]:
        """Closed footprint rings (service CRS) of several items in one query."""
        rows = self._con().execute("SELECT oid, footprint FROM rasters WHERE footprint IS NOT NULL AND oid IN "
                                   "(SELECT value FROM json_each(?))", (json.dumps([int(o) for o in oids]),))
        return {oid: [tuple(p) for p in json.loads(ring)] for oid, ring in rows}

    def footprint_shapes(self, oids) -> dict[int, Any]:
        """Footprint polygons of several items, kept per catalog generation (a bounded memo): every
        request tests the footprints of the items it meets, a getSamples request once per point."""
        generation = self.last_change()
        if self._shapes is None or self._shapes[0] != generation or len(self._shapes[1]) > _SHAPE_MEMO:
            self._shapes = (generation, {})
        known = self._shapes[1]
        missing = [o for o in oids if o not in known]
        if missing:
            rings = self.footprints(missing)
            known.update(zip(rings, ring_polygons(list(rings.values()))))
        return {o: known[o] for o in oids if o in known}

    def record(self, oid: int) -> dict[str, Any]:
        """What was read from an item's file: grid, bands, overviews, tags, partial statistics."""
        cursor = self._con().execute(f"SELECT {', '.join(_READ_COLUMNS)} FROM rasters WHERE oid = ? "
                                     "AND footprint IS NOT NULL", (int(oid),))
        row = cursor.fetchone()
        if row is None:
            raise NotFound(f"Raster {oid} does not exist.")
        out = dict(zip(_READ_COLUMNS, row))
        for key in ("transform", "nodata", "band_names", "overviews", "tags", "stats"):
            out[key] = json.loads(out[key]) if out[key] is not None else None
        return out

    def footprint(self, oid: int) -> list[tuple[float, float]]:
        """The item's closed footprint ring in the service CRS."""
        row = self._con().execute("SELECT footprint FROM rasters WHERE oid = ?", (int(oid),)).fetchone()
        if row is None or row[0] is None:
            raise NotFound(f"Item {oid} does not exist.")
        return [tuple(p) for p in json.loads(row[0])]
