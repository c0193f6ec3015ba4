"""Keeping the catalog in line with its files: sync with the `sources` patterns, add and remove by
hand, and what follows every change (`_settle`): checks, footprints, derived tables, seamlines and
a new generation, all in one write transaction of the store."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rasterio.crs import CRS
from rasterio.errors import CRSError, RasterioError

from .. import sources
from ..badfiles import BAD_FILE_ERRORS
from ..errors import ConfigError, NotFound
from ..rasterinfo import crs_from_wkt, footprint_ring, read_files, read_raster, ring_area, ring_bounds
from .base import CatalogBase, Gone
from .records import Progress, Reader, SyncReport

if TYPE_CHECKING:
    from ..where import Where

log = logging.getLogger("ogc_gateway.catalog")

_READ_COLUMNS = ("mtime_ns", "size", "crs_wkt", "transform", "width", "height", "band_count", "dtype",
                 "nodata", "band_names", "overviews", "tags", "stats", "outline")

def _footprint_and_cell(wkt: str, transform: list[float], width: int, height: int, crs_wkt: str,
                        outline: list[tuple[float, float]] | None) -> tuple[list[tuple[float, float]], float]:
    """An item's footprint ring in the service CRS and its cell size there (from the whole grid;
    from the valid-data outline when the grid's edges do not exist there, as a full disk's
    corners off the Earth)."""
    try:
        grid_ring = footprint_ring(wkt, transform, width, height, crs_wkt)
    except ValueError:
        if not outline:
            raise
        ring = footprint_ring(wkt, transform, width, height, crs_wkt, outline)
        return ring, math.sqrt(ring_area(ring) / ring_area([(x, y) for x, y in outline]))
    ring = footprint_ring(wkt, transform, width, height, crs_wkt, outline) if outline else grid_ring
    return ring, math.sqrt(ring_area(grid_ring) / (width * height))



class Sync(CatalogBase):
    """The changing part of `Catalog` (a mixin: `self.store`, `self.service` come from it)."""

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
            rows = con.execute(f'SELECT i."OBJECTID", r.path FROM items AS i JOIN rasters AS r ON '
                               f'r.oid = i."OBJECTID" WHERE {self.store.condition(where.sql)} ORDER BY i."OBJECTID"',
                               where.params).fetchall()
            total = con.execute("SELECT COUNT(*) FROM rasters").fetchone()[0]
            if rows and len(rows) == total:
                raise ConfigError([f"{self.service.name}: the where clause matches all {total} items; "
                                   "a service keeps at least one (change `sources` to retire it)"])
            gone = [self._delete(con, oid) for oid, _ in rows]
            con.executemany("INSERT INTO excluded (path) VALUES (?) ON CONFLICT DO NOTHING", [(p,) for _, p in rows])
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
            paths = dict(con.execute(f"SELECT oid, path FROM rasters WHERE oid IN ({self.store.ids})",
                                     (json.dumps(oids),)).fetchall())
            missing = [o for o in oids if o not in paths]
            if missing:
                raise NotFound("Raster not found.", details=[f"There is no raster with id {missing[0]}."])
            con.executemany("INSERT INTO edits (path, name, value) VALUES (?, ?, ?) "
                            "ON CONFLICT (path, name) DO UPDATE SET value = excluded.value",
                            [(paths[o], name, value) for o in oids for name, value in values.items()])
            self._settle(con, set(oids), [], [])

    def remove_ids(self, oids: Iterable[int]) -> list[str]:
        """Take items out by OBJECTID (the REST `delete` operation); the paths of their files.
        Unknown ids are an error, and so is removing every item (a service keeps at least one)."""
        oids = sorted({int(o) for o in oids})
        with self._write() as con:
            rows = con.execute(f"SELECT oid, path FROM rasters WHERE oid IN ({self.store.ids})",
                               (json.dumps(oids),)).fetchall()
            missing = sorted(set(oids) - {oid for oid, _ in rows})
            if missing:
                raise NotFound("Raster not found.", details=[f"There is no raster with id {missing[0]}."])
            total = con.execute("SELECT COUNT(*) FROM rasters").fetchone()[0]
            if len(rows) == total:
                raise ConfigError([f"{self.service.name}: a service keeps at least one raster "
                                   f"(all {total} were named)"])
            gone = [self._delete(con, oid) for oid, _ in rows]
            con.executemany("INSERT INTO excluded (path) VALUES (?) ON CONFLICT DO NOTHING", [(p,) for _, p in rows])
            con.executemany("DELETE FROM edits WHERE path = ?", [(p,) for _, p in rows])
            self._settle(con, set(), gone, [])
        return [p for _, p in rows]

    def oids_of(self, paths: Iterable[str]) -> list[int]:
        """The OBJECTIDs of the items of these files, in the order given."""
        paths = [os.path.normpath(os.path.abspath(p)) for p in paths]
        by_path = dict(self.store.con().execute(f"SELECT path, oid FROM rasters WHERE path IN ({self.store.texts})",
                                                (json.dumps(paths),)))
        return [by_path[p] for p in paths]

    @staticmethod
    def _edits(con: Any) -> dict[str, dict[str, str | None]]:
        edits: dict[str, dict[str, str | None]] = {}
        for path, name, value in con.execute("SELECT path, name, value FROM edits"):
            edits.setdefault(path, {})[name.lower()] = value
        return edits

    def entries(self, where: Where | None = None) -> Iterator[tuple[int, str, str, str]]:
        """(OBJECTID, Name, origin, path) of the items matching `where`, by OBJECTID: `catalog list`.
        origin is 'sync' (found by the globs) or 'add' (added by hand)."""
        sql = ('SELECT i."OBJECTID", i."Name", r.origin, r.path FROM items AS i JOIN rasters AS r '
               'ON r.oid = i."OBJECTID"')
        if where is not None:
            sql += f" WHERE {self.store.condition(where.sql)}"
        yield from self.store.con().execute(sql + ' ORDER BY i."OBJECTID"', where.params if where else ())

    def excluded(self) -> list[str]:
        """Files taken out with `remove`, which syncs leave out until they are added again."""
        return [row[0] for row in self.store.con().execute("SELECT path FROM excluded ORDER BY path")]

    def _settle(self, con: Any, touched: set[int], gone: list[Gone], problems: list[str],
                skipped: Sequence[str] = ()) -> None:
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

    def _sync_files(self, con: Any, paths: dict[str, tuple[int, int] | None],
                    progress: Progress | None, reader: Reader
                    ) -> tuple[SyncReport, list[str], set[int], list[Gone]]:
        """Add new files, re-read changed ones (same OBJECTID), drop vanished ones. Items added by
        hand (origin other than 'sync') stay while their file exists."""
        stored = {row[0]: row for row in
                  con.execute("SELECT path, oid, origin, mtime_ns, size FROM rasters")}
        excluded = {row[0] for row in con.execute("SELECT path FROM excluded")}
        by_hand = {p for p, row in stored.items() if row[2] != "sync" and sources.exists(p)}
        wanted = (set(paths) | by_hand) - excluded
        removed = sorted(set(stored) - wanted)
        gone: list[Gone] = []
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

    def _skip(self, con: Any, path: str, row: Any, gone: list[Gone], why: str) -> None:
        """Leave an unusable file out with one warning naming it (an item it was is removed)."""
        message = f"{self._where}.sources: {path}: {why}; skipped"
        log.warning("%s", message)
        self._skipped.append(message)
        if row:
            gone.append(self._delete(con, row[1]))

    def _delete(self, con: Any, oid: int) -> Gone:
        """Remove one item; its footprint bounds (None if it had none) are returned, so the
        seamlines around it can be recut."""
        con.execute("DELETE FROM rasters WHERE oid = ?", (oid,))
        for table, key in (("footprints", "id"), ("item_times", "id"), ("items", '"OBJECTID"'),
                           ("seamlines", "oid")):
            con.execute(f"DELETE FROM {table} WHERE {key} = ?", (oid,))
        bounds: Gone = con.execute("SELECT minx, miny, maxx, maxy FROM rasters WHERE oid = ?", (oid,)).fetchone()
        return bounds

    def _store(self, con: Any, path: str, record: dict[str, Any], oid: int | None,
               origin: str | None = None) -> int:
        """Insert (oid None) or update one file's row; its OBJECTID."""
        values = [record.get(c) for c in _READ_COLUMNS]
        if oid is None:
            cols = ", ".join(("path", "origin") + _READ_COLUMNS)
            cursor = con.execute(f"INSERT INTO rasters ({cols}) VALUES ({', '.join('?' * (len(values) + 2))}) "
                                 "RETURNING oid", [path, origin or "sync", *values])
            return int(cursor.fetchone()[0])
        # fp_crs NULL: the footprint is recomputed from the new grid
        sets = ", ".join(f"{c} = ?" for c in _READ_COLUMNS)
        con.execute(f"UPDATE rasters SET {sets}, fp_crs = NULL, origin = COALESCE(?, origin) WHERE oid = ?",
                    [*values, origin, oid])
        return oid

    def _check_uniform(self, con: Any) -> list[str]:
        """One band count and dtype per service: the majority (first file on ties) is the service's."""
        rows = con.execute("SELECT path, band_count, dtype FROM rasters ORDER BY path").fetchall()
        kinds = Counter((n, dt) for _, n, dt in rows)
        (n, dt), _ = max(kinds.items(), key=lambda kv: kv[1])       # max keeps the first of equals
        ref = next(p for p, bn, bdt in rows if (bn, bdt) == (n, dt))
        return [f"{self._where}.sources: {p} has {bn} band(s) of {bdt}; the service has {n} band(s) "
                f"of {dt} (from {ref})" for p, bn, bdt in rows if (bn, bdt) != (n, dt)]

    def _service_crs(self, con: Any) -> tuple[str, list[str]]:
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

    def _update_footprints(self, con: Any, crs_wkt: str) -> list[str]:
        """(Re)compute footprints that are new or in another CRS, from the stored grid and
        valid-data outline (no file read); and each item's cell size from its whole grid."""
        rows = con.execute("SELECT oid, path, crs_wkt, transform, width, height, outline FROM rasters "
                           "WHERE fp_crs IS NULL OR fp_crs != ?", (crs_wkt,)).fetchall()
        problems: list[str] = []
        done: list[Any] = []
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
        def stamp(path: Path | None) -> dict[str, Any]:
            try:
                return {"path": str(path), "mtime_ns": os.stat(path).st_mtime_ns} if path else {}
            except OSError:
                return {"path": str(path)}
        return json.dumps({"crs": self.service.crs, "catalog": stamp(self.service.catalog),
                           "seamlines": stamp(self.service.seamlines), "time_field": self.service.time_field,
                           "end_time_field": self.service.end_time_field}, sort_keys=True)

    def _stats_sums(self, con: Any) -> list[list[float | None]]:
        """Per band [count, sum, sum of squares, min, max] over every item (the service statistics'
        inputs), kept in `meta` by each change so that opening a service does not read every row."""
        first = con.execute("SELECT band_count FROM rasters WHERE footprint IS NOT NULL LIMIT 1").fetchone()
        bands = first[0] if first else 0
        if not bands:
            return []
        sums = ", ".join(f"{agg}({self.store.json_number('stats', b, k)})" for b in range(bands)
                         for k, agg in enumerate(("SUM", "SUM", "SUM", "MIN", "MAX")))
        row = con.execute(f"SELECT {sums} FROM rasters WHERE footprint IS NOT NULL").fetchone()
        return [list(row[5 * b:5 * b + 5]) for b in range(bands)]
    @staticmethod
    def _content_digest(con: Any) -> str:
        """A digest of what the catalog holds (each file's OBJECTID, location and change stamp, the
        derived item rows, the seamlines), not of when it changed: two instances with their own
        catalogs of the same sources get the same digest, so a shared tile cache serves both."""
        digest = hashlib.blake2b(digest_size=8)
        for sql in ("SELECT oid, path, mtime_ns, size FROM rasters ORDER BY oid",
                    'SELECT * FROM items ORDER BY "OBJECTID"', "SELECT * FROM seamlines ORDER BY oid"):
            for row in con.execute(sql):
                digest.update(repr(row).encode())
            digest.update(b"\x00")
        return digest.hexdigest()
