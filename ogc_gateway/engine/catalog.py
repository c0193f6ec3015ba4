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
import glob
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
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioError

from ..config import ServiceConfig
from .errors import ConfigError, InvalidParameter, NotFound
from .rasterinfo import (BandStats, aggregate_stats, crs_from_wkt, footprint_ring, read_raster,
                         ring_area, ring_bounds, ring_length)

if TYPE_CHECKING:
    from .where import Where

log = logging.getLogger("ogc_gateway.catalog")


@dataclass(frozen=True, slots=True)
class Field:
    """A catalog field as the ArcGIS root JSON lists it."""

    name: str
    type: str            # esriFieldTypeOID | esriFieldTypeString | esriFieldTypeInteger | esriFieldTypeDouble | esriFieldTypeDate | esriFieldTypeGeometry
    alias: str
    length: int | None = None


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
class SyncReport:
    added: int        # new files, and changed files that were re-read
    removed: int
    unchanged: int


# --- field vocabulary -----------------------------------------------------------------------------

OID, GEOMETRY = "esriFieldTypeOID", "esriFieldTypeGeometry"
STRING, INTEGER, DOUBLE, DATE = ("esriFieldTypeString", "esriFieldTypeInteger",
                                 "esriFieldTypeDouble", "esriFieldTypeDate")
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

IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INT_TEXT = re.compile(r"[+-]?\d+")
_NUM_TEXT = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS excluded (path TEXT PRIMARY KEY);
CREATE TABLE IF NOT EXISTS rasters (
    oid INTEGER PRIMARY KEY AUTOINCREMENT, path TEXT NOT NULL UNIQUE,
    origin TEXT NOT NULL DEFAULT 'sync', mtime_ns INTEGER, size INTEGER,
    crs_wkt TEXT, transform TEXT, width INTEGER, height INTEGER, band_count INTEGER, dtype TEXT,
    nodata TEXT, band_names TEXT, overviews TEXT, tags TEXT, stats TEXT,
    fp_crs TEXT, footprint TEXT, minx REAL, miny REAL, maxx REAL, maxy REAL,
    time_start INTEGER, time_end INTEGER);
CREATE VIRTUAL TABLE IF NOT EXISTS footprints USING rtree(id, minx, maxx, miny, maxy);
CREATE TABLE IF NOT EXISTS fields (
    position INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE COLLATE NOCASE,
    type TEXT NOT NULL, alias TEXT NOT NULL, length INTEGER);
"""
_READ_COLUMNS = ("mtime_ns", "size", "crs_wkt", "transform", "width", "height", "band_count", "dtype",
                 "nodata", "band_names", "overviews", "tags", "stats")


def _quote(name: str) -> str:
    """A column identifier for SQL; only names that passed IDENTIFIER ever get here."""
    if not IDENTIFIER.fullmatch(name):
        raise ValueError(f"not a field name: {name!r}")
    return f'"{name}"'


def _items_ddl(attributes: list[Field], if_not_exists: bool = False) -> str:
    """The `items` table: one column per field (Shape excepted), named exactly like the field."""
    columns = [f for f in HEAD_FIELDS + tuple(attributes) + TAIL_FIELDS if f.type != GEOMETRY]
    body = ", ".join(f"{_quote(f.name)} {_SQL_TYPE[f.type]}" for f in columns)
    return f"CREATE TABLE {'IF NOT EXISTS ' if if_not_exists else ''}items ({body})"


# --- value parsing --------------------------------------------------------------------------------

def iso_to_epoch_ms(text: str) -> int | None:
    """ISO 8601 date or date-time -> epoch ms; naive times are UTC (the catalog's one convention)."""
    try:
        dt = datetime.fromisoformat(text.strip())
    except ValueError:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return (dt - _EPOCH) // timedelta(milliseconds=1)


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

class Catalog:
    """One service's items. Readers (every worker) only query; `sync()` is the one writer."""

    def __init__(self, db_path: Path, service: ServiceConfig):
        self.db_path = Path(db_path)
        self.service = service
        self._local = threading.local()
        self._info: CatalogInfo | None = None
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        con = self._con()
        con.execute("PRAGMA journal_mode=WAL")     # readers in other workers never block on sync
        con.executescript(_SCHEMA)
        con.execute(_items_ddl([], if_not_exists=True))

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

    # sync

    def sync(self) -> SyncReport:
        """Bring the database in line with the globs; raise one ConfigError listing every problem
        (the transaction is then rolled back, so a failed sync leaves the previous state)."""
        paths = self._source_paths()
        with self._write() as con:
            report, problems = self._sync_files(con, paths)
            if con.execute("SELECT COUNT(*) FROM rasters").fetchone()[0] == 0:
                raise ConfigError(problems or [self._no_match()])
            problems += self._check_uniform(con)
            crs_wkt, crs_problems = self._service_crs(con)
            problems += crs_problems
            crs_changed = crs_wkt != self._meta(con, "service_crs")
            problems += self._update_footprints(con, crs_wkt)
            fingerprint = self._fingerprint()
            changed = report.added or report.removed or crs_changed or fingerprint != self._meta(con, "fingerprint")
            if changed:
                problems += self._derive(con)
            if problems:
                raise ConfigError(problems)
            if changed or self._meta(con, "changed_at") is None:
                self._set_meta(con, "changed_at", str(int(time.time())))
            self._set_meta(con, "service_crs", crs_wkt)
            self._set_meta(con, "fingerprint", fingerprint)
        self._info = None
        return report

    def _source_paths(self) -> list[str]:
        found = {os.path.normpath(os.path.abspath(p))
                 for pattern in self.service.sources for p in glob.glob(pattern, recursive=True)}
        return sorted(p for p in found if os.path.isfile(p))

    def _sync_files(self, con: sqlite3.Connection, paths: list[str]) -> tuple[SyncReport, list[str]]:
        """Add new files, re-read changed ones (same OBJECTID), drop vanished ones. Items added by
        hand (origin other than 'sync') stay while their file exists."""
        stored = {row[0]: row for row in
                  con.execute("SELECT path, oid, origin, mtime_ns, size FROM rasters")}
        excluded = {row[0] for row in con.execute("SELECT path FROM excluded")}
        by_hand = {p for p, row in stored.items() if row[2] != "sync" and os.path.isfile(p)}
        wanted = (set(paths) | by_hand) - excluded
        removed = sorted(set(stored) - wanted)
        for path in removed:
            self._delete(con, stored[path][1])
            log.info("%s: %s is gone; removed from the catalog", self.service.name, path)
        added = unchanged = 0
        problems = []
        for path in sorted(wanted):
            row = stored.get(path)
            try:
                st = os.stat(path)
            except OSError as exc:
                problems.append(f"{self._where}.sources: {path}: {exc.strerror}")
                continue
            if row and (row[3], row[4]) == (st.st_mtime_ns, st.st_size):
                unchanged += 1
                continue
            try:
                record = read_raster(path)
            except (RasterioError, ValueError, OSError) as exc:
                problems.append(f"{self._where}.sources: {path}: not a usable raster ({exc})")
                continue
            self._store(con, path, record, row[1] if row else None)
            added += 1
        return SyncReport(added, len(removed), unchanged), problems

    def _delete(self, con: sqlite3.Connection, oid: int) -> None:
        con.execute("DELETE FROM rasters WHERE oid = ?", (oid,))
        con.execute("DELETE FROM footprints WHERE id = ?", (oid,))
        con.execute("DELETE FROM items WHERE OBJECTID = ?", (oid,))

    def _store(self, con: sqlite3.Connection, path: str, record: dict[str, Any], oid: int | None) -> None:
        values = [record[c] for c in _READ_COLUMNS]
        if oid is None:
            cols = ", ".join(("path",) + _READ_COLUMNS)
            con.execute(f"INSERT INTO rasters ({cols}) VALUES ({', '.join('?' * (len(values) + 1))})",
                        [path, *values])
        else:           # fp_crs NULL: the footprint is recomputed from the new grid
            sets = ", ".join(f"{c} = ?" for c in _READ_COLUMNS)
            con.execute(f"UPDATE rasters SET {sets}, fp_crs = NULL WHERE oid = ?", [*values, oid])

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
        """(Re)compute footprints that are new or in another CRS, from the stored grid (no file read)."""
        rows = con.execute("SELECT oid, path, crs_wkt, transform, width, height FROM rasters "
                           "WHERE fp_crs IS NULL OR fp_crs != ?", (crs_wkt,)).fetchall()
        problems = []
        for oid, path, wkt, transform, width, height in rows:
            try:
                ring = footprint_ring(wkt, json.loads(transform), width, height, crs_wkt)
            except (ValueError, RasterioError) as exc:
                problems.append(f"{self._where}.sources: {path}: {exc}")
                continue
            minx, miny, maxx, maxy = ring_bounds(ring)
            con.execute("UPDATE rasters SET footprint = ?, fp_crs = ?, minx = ?, miny = ?, maxx = ?, "
                        "maxy = ? WHERE oid = ?", (json.dumps(ring), crs_wkt, minx, miny, maxx, maxy, oid))
            con.execute("DELETE FROM footprints WHERE id = ?", (oid,))
            con.execute("INSERT INTO footprints (id, minx, maxx, miny, maxy) VALUES (?, ?, ?, ?, ?)",
                        (oid, minx, maxx, miny, maxy))
        return problems

    def _fingerprint(self) -> str:
        """The config parts that shape item rows; a change means every row is re-derived."""
        csv_path = self.service.catalog
        try:
            mtime = os.stat(csv_path).st_mtime_ns if csv_path else None
        except OSError:
            mtime = None
        return json.dumps({"crs": self.service.crs, "catalog": str(csv_path) if csv_path else None,
                           "catalog_mtime_ns": mtime, "time_field": self.service.time_field,
                           "end_time_field": self.service.end_time_field}, sort_keys=True)

    # attributes

    def _derive(self, con: sqlite3.Connection) -> list[str]:
        """Rebuild `items`, `fields` and item times from `rasters`, the CSV and the config."""
        rows = con.execute("SELECT oid, path, width, height, overviews, tags, footprint, minx, miny, "
                           "maxx, maxy FROM rasters ORDER BY oid").fetchall()
        csv_columns, csv_rows, problems = self._read_csv({r[1] for r in rows})
        tag_columns = self._tag_columns([json.loads(r[5]) for r in rows], csv_columns)
        raw: dict[int, dict[str, str | None]] = {}
        for row in rows:
            oid, path, tags = row[0], row[1], json.loads(row[5])
            tags = {k.lower(): v.strip() or None for k, v in tags.items()}
            raw[oid] = {**{c: csv_rows.get(path, {}).get(c) for c in csv_columns},
                        **{c: tags.get(c.lower()) for c in tag_columns}}
        attributes = [self._field_of(c, [raw[o][c] for o in raw]) for c in csv_columns + tag_columns]
        types = {f.name: f.type for f in attributes}
        values = {oid: {c: convert(v, types[c]) for c, v in r.items()} for oid, r in raw.items()}
        self._write_items(con, rows, attributes, values)
        problems += self._write_times(con, attributes, values)
        return problems

    def _read_csv(self, known: set[str]) -> tuple[list[str], dict[str, dict[str, str | None]], list[str]]:
        """The attribute CSV: (valid columns, cells by absolute file path, problems)."""
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
            target = os.path.normpath(os.path.join(base, row[path_at].strip()))
            if not row[path_at].strip() or target not in known:
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
                    log.warning("%s: metadata item %r is not usable as a field name; skipped",
                                self._where, name)
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
        names = ["OBJECTID", "Name", "MinPS", "MaxPS", "LowPS", "HighPS", "Category", "ZOrder", "CenterX",
                 "CenterY", *(f.name for f in attributes), "Shape_Length", "Shape_Area"]
        sql = (f"INSERT INTO items ({', '.join(map(_quote, names))}) "
               f"VALUES ({', '.join('?' * len(names))})")
        for oid, path, width, height, overviews, _tags, footprint, minx, miny, maxx, maxy in rows:
            if footprint is None:       # unusable item; already reported as a problem
                continue
            ring = json.loads(footprint)
            area = ring_area(ring)
            low = math.sqrt(area / (width * height))
            high = low * max(json.loads(overviews), default=1)
            con.execute(sql, [oid, Path(path).stem, 0.0, high * 2, low, high, 1, None, (minx + maxx) / 2,
                              (miny + maxy) / 2, *(values[oid][f.name] for f in attributes),
                              ring_length(ring), area])

    def _write_times(self, con: sqlite3.Connection, attributes: list[Field],
                     values: dict[int, dict[str, Any]]) -> list[str]:
        """Item instants from time_field / end_time_field (matched case-insensitively)."""
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
        for oid, vals in values.items():
            start = time_value(vals[start_f.name], start_f.type) if start_f else None
            end = time_value(vals[end_f.name], end_f.type) if end_f else None
            if end is not None and whole_days:
                end += 86_400_000 - 1
            if start is None:
                end = None
            elif end is None:
                end = start
            con.execute("UPDATE rasters SET time_start = ?, time_end = ? WHERE oid = ?", (start, end, oid))
        return problems

    # queries

    def info(self) -> CatalogInfo:
        """Service facts, computed once per Catalog (and again only after a sync)."""
        if self._info is None:
            self._info = self._compute_info()
        return self._info

    def _compute_info(self) -> CatalogInfo:
        con = self._con()
        rows = con.execute("SELECT band_count, dtype, nodata, band_names, stats, minx, miny, maxx, maxy "
                           "FROM rasters WHERE footprint IS NOT NULL ORDER BY oid").fetchall()
        if not rows:
            raise ConfigError([self._no_match()])
        band_count, dtype = rows[0][0], rows[0][1]
        nodata, names = json.loads(rows[0][2]), json.loads(rows[0][3])
        if not all(names):
            names = [f"Band_{i + 1}" for i in range(band_count)]
        extent = (min(r[5] for r in rows), min(r[6] for r in rows), max(r[7] for r in rows),
                  max(r[8] for r in rows))
        cell = con.execute("SELECT MIN(LowPS) FROM items").fetchone()[0]
        time_extent = None
        if self.service.time_field:
            lo, hi = con.execute("SELECT MIN(time_start), MAX(time_end) FROM rasters "
                                 "WHERE time_start IS NOT NULL").fetchone()
            time_extent = None if lo is None else (lo, hi)
        return CatalogInfo(
            crs_wkt=self._meta(con, "service_crs") or "", extent=extent, cell_size=(cell, cell),
            band_count=band_count, dtype=dtype, nodata=nodata, band_names=tuple(names),
            stats=aggregate_stats([json.loads(r[4]) for r in rows], band_count),
            time_extent=time_extent, fields=HEAD_FIELDS + self.attribute_fields() + TAIL_FIELDS,
            item_count=len(rows))

    def attribute_fields(self) -> tuple[Field, ...]:
        """The attribute fields (CSV columns, then metadata items), in column order."""
        rows = self._con().execute("SELECT name, type, alias, length FROM fields ORDER BY position")
        return tuple(Field(*row) for row in rows)

    def items(self, bbox: tuple[float, float, float, float] | None = None,
              time: tuple[int | None, int | None] | None = None,
              oids: tuple[int, ...] | None = None, where: Where | None = None,
              pixel_size: float | None = None,
              order_by: tuple[tuple[str, bool], ...] = ()) -> list[Item]:
        """Items intersecting bbox (service CRS), whose time extent meets the window (None = open
        end; items without a time never match), among oids, matching a compiled where clause,
        visible at pixel_size (MinPS <= ps <= MaxPS); ordered by `order_by` (field, ascending)
        pairs, then OBJECTID."""
        where_sql, params = [], []
        if where is not None:
            where_sql.append(where.sql)
            params += list(where.params)
        if pixel_size is not None:
            where_sql.append("i.MinPS <= ? AND i.MaxPS >= ?")
            params += [float(pixel_size)] * 2
        if bbox is not None:
            xmin, ymin, xmax, ymax = (float(v) for v in bbox)
            # R*Tree narrows (its float32 boxes are rounded outward); the exact bounds decide.
            where_sql.append("r.oid IN (SELECT id FROM footprints WHERE maxx >= ? AND minx <= ? "
                             "AND maxy >= ? AND miny <= ?)")
            where_sql.append("r.maxx >= ? AND r.minx <= ? AND r.maxy >= ? AND r.miny <= ?")
            params += [xmin, xmax, ymin, ymax] * 2
        if time is not None:
            start, end = time
            where_sql.append("r.time_start IS NOT NULL")
            if end is not None:
                where_sql.append("r.time_start <= ?")
                params.append(int(end))
            if start is not None:
                where_sql.append("r.time_end >= ?")
                params.append(int(start))
        if oids is not None:
            where_sql.append("i.OBJECTID IN (SELECT value FROM json_each(?))")
            params.append(json.dumps([int(o) for o in oids]))
        sql = ("SELECT r.path, r.crs_wkt, r.minx, r.miny, r.maxx, r.maxy, r.time_start, r.time_end, i.* "
               "FROM items AS i JOIN rasters AS r ON r.oid = i.OBJECTID")
        if where_sql:
            sql += " WHERE " + " AND ".join(f"({w})" for w in where_sql)
        keys = [f"i.{_quote(self._field(name))} {'ASC' if asc else 'DESC'}" for name, asc in order_by]
        cursor = self._con().execute(sql + " ORDER BY " + ", ".join(keys + ["i.OBJECTID"]), params)
        names = [d[0] for d in cursor.description[8:]]
        return [self._item(row, names) for row in cursor.fetchall()]

    @staticmethod
    def _item(row: tuple, names: list[str]) -> Item:
        path, crs_wkt, minx, miny, maxx, maxy, t0, t1 = row[:8]
        attrs = dict(zip(names, row[8:]))
        return Item(oid=attrs["OBJECTID"], path=path, name=attrs["Name"], bounds=(minx, miny, maxx, maxy),
                    crs_wkt=crs_wkt, cell_size=attrs["LowPS"], center=(attrs["CenterX"], attrs["CenterY"]),
                    zorder=attrs["ZOrder"], time_start=t0, time_end=t1, attributes=attrs)

    def _field(self, name: str) -> str:
        """A field's own spelling (names match case-insensitively); unknown names are refused."""
        for f in self.info().fields:
            if f.name.lower() == name.lower() and f.type != GEOMETRY:
                return f.name
        raise InvalidParameter("orderByFields", f"unknown field {name!r}")

    def item(self, oid: int) -> Item | None:
        found = self.items(oids=(oid,))
        return found[0] if found else None

    def times(self) -> list[int]:
        """The distinct item times (starts, epoch ms), ascending: a service's time dimension."""
        rows = self._con().execute("SELECT DISTINCT time_start FROM rasters WHERE time_start IS NOT NULL "
                                   "AND footprint IS NOT NULL ORDER BY time_start")
        return [r[0] for r in rows]

    def last_change(self) -> int:
        """When the items last changed (epoch seconds, recorded by sync): an update sequence that
        every worker reads alike and that grows whenever the catalog does."""
        return int(self._meta(self._con(), "changed_at") or 0)

    def footprints(self, oids) -> dict[int, list[tuple[float, float]]]:
        """Closed footprint rings (service CRS) of several items in one query."""
        rows = self._con().execute("SELECT oid, footprint FROM rasters WHERE footprint IS NOT NULL AND oid IN "
                                   "(SELECT value FROM json_each(?))", (json.dumps([int(o) for o in oids]),))
        return {oid: [tuple(p) for p in json.loads(ring)] for oid, ring in rows}

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
