"""The embedded catalog store: one SQLite file per service under the cache folder (the default).

Writers take SQLite's write lock (BEGIN IMMEDIATE) and readers in other workers never block on
them (WAL); the footprint and time indexes are R*Trees.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .store import Store

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


class SqliteStore(Store):
    """A service's catalog in one SQLite file."""

    def __init__(self, path: Path, items_ddl: str):
        self.path = Path(path)
        self._local = threading.local()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self.con()
        con.execute("PRAGMA journal_mode=WAL")     # readers in other workers never block on sync
        con.executescript(_SCHEMA)
        con.execute(items_ddl)
        if not _ADDED_COLUMNS.keys() <= self._columns(con):
            with self.write() as con:            # checked again under the lock: one process adds them
                for column, sql_type in _ADDED_COLUMNS.items():
                    if column not in self._columns(con):
                        con.execute(f"ALTER TABLE rasters ADD COLUMN {column} {sql_type}")
                        con.execute("UPDATE rasters SET mtime_ns = NULL, fp_crs = NULL")
        for column in _INDEXES:
            con.execute(f"CREATE INDEX IF NOT EXISTS rasters_{column} ON rasters ({column})")

    @staticmethod
    def _columns(con: sqlite3.Connection) -> set[str]:
        return {row[1] for row in con.execute("PRAGMA table_info(rasters)")}

    def con(self) -> sqlite3.Connection:
        """This thread's connection (sqlite3 connections must not cross threads)."""
        con = getattr(self._local, "con", None)
        if con is None:
            con = sqlite3.connect(self.path, timeout=30, isolation_level=None)
            self._local.con = con
        return con

    def generation(self) -> str | None:
        """The generation, read again only when `PRAGMA data_version` says another connection
        committed since this thread's last look (half the cost of the read, on every request).

        data_version does not move for this connection's own commits: `write()` forgets the kept
        value instead."""
        con = self.con()
        version = con.execute("PRAGMA data_version").fetchone()[0]
        kept: tuple[int, str | None] | None = getattr(self._local, "generation", None)
        if kept is not None and kept[0] == version:
            return kept[1]
        value = self.meta(con, "generation")
        self._local.generation = (version, value)
        return value

    @contextmanager
    def write(self) -> Iterator[sqlite3.Connection]:
        con = self.con()
        self._local.generation = None
        con.execute("BEGIN IMMEDIATE")
        try:
            yield con
        except BaseException:
            con.execute("ROLLBACK")
            raise
        finally:
            self._local.generation = None
        con.execute("COMMIT")

    def reset_items(self, con: sqlite3.Connection, ddl: str) -> None:
        con.execute("DROP TABLE IF EXISTS items")
        con.execute(ddl)

    def ping(self) -> None:
        """A fresh read-only connection, not this thread's open one, so a database that vanished
        is noticed."""
        try:
            con = sqlite3.connect(f"{self.path.resolve().as_uri()}?mode=ro", uri=True, timeout=2)
            try:
                row = con.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
            finally:
                con.close()
        except sqlite3.Error as exc:
            raise OSError(f"catalog database {self.path}: {exc}") from exc
        if row is None:
            raise OSError(f"catalog database {self.path}: never synchronised")
