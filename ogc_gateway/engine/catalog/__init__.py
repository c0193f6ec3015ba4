"""The catalog of a service: its items, kept in a store - one SQLite database per service in
cache_dir (the default, `sqlite.py`) or a schema in a PostgreSQL/PostGIS database every instance
shares (`server.catalog_url`, `postgis.py`) - and synchronised with the `sources` globs at start-up.

Tables: `rasters` holds what was read from each file (the only thing that needs file I/O), `footprints`
is its spatial index, and `items`/`fields` are *derived* from `rasters` + the attribute CSV + the config.
Because `items` is pure derivation it is simply rebuilt whenever an input changes, so attribute columns
can appear, vanish or change type without migrations, and a where-clause compiler can query real,
typed columns named exactly like the fields.

The modules, one idea each: records (what the catalog returns), store (the storage seam) with
sqlite and postgis, sync (files in, files out), attributes (fields and derived rows), seamlines and
selection (queries). `Catalog` joins them; this package exports what the rest of the engine uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..fields import DATE, DOUBLE, GEOMETRY, IDENTIFIER, INTEGER, OID, STRING, Field, iso_to_epoch_ms
from ..rasterinfo import BandStats
from ..settings import ServiceConfig
from .attributes import Attributes, check_attributes, convert, infer_type, items_ddl, time_value
from .records import BUILTIN_FIELDS, HEAD_FIELDS, TAIL_FIELDS, CatalogInfo, Item, Order, Progress, Reader, SyncReport
from .seamlines import Seamlines
from .selection import Selection, native_grid
from .sqlite import SqliteStore
from .store import Store
from .sync import Sync

__all__ = [
    "BUILTIN_FIELDS", "DATE", "DOUBLE", "GEOMETRY", "HEAD_FIELDS", "IDENTIFIER", "INTEGER", "OID", "STRING",
    "TAIL_FIELDS", "BandStats", "Catalog", "CatalogInfo", "ConfigError", "Field", "Item", "Order", "Progress",
    "Reader", "SqliteStore", "Store", "SyncReport", "check_attributes", "convert", "infer_type", "iso_to_epoch_ms",
    "drop_store", "native_grid", "open_store", "time_value",
]

_FEW = 1000        # candidates an R*Tree may hand a query before an index walk does better


def open_store(url: str | None, db_path: Path, service: str) -> Store:
    """The store of one service's catalog: PostGIS at `url` (`server.catalog_url`) when given,
    else the SQLite file `db_path`. psycopg is imported only then (the `[postgis]` extra)."""
    if url:
        from .postgis import PostgisStore
        return PostgisStore(url, service, items_ddl([], PostgisStore.types, if_not_exists=True))
    return SqliteStore(db_path, items_ddl([], SqliteStore.types, if_not_exists=True))


def drop_store(url: str, service: str) -> None:
    """Remove a service's catalog from the PostGIS database at `url` (a deleted service)."""
    from .postgis import PostgisStore
    PostgisStore.drop(url, service)


class Catalog(Sync, Attributes, Seamlines, Selection):
    """One service's items. Readers (every worker) only query; `sync()` is the one writer.

    `store` is where the tables live: given, else the PostGIS database at `url`
    (`server.catalog_url`), else the SQLite file `db_path` (the default)."""

    def __init__(self, db_path: Path, service: ServiceConfig, store: Store | None = None, *,
                 url: str | None = None):
        self.db_path = Path(db_path)
        self.service = service
        self._info: tuple[int, CatalogInfo] | None = None
        self._sizes: tuple[int, float] | None = None
        self._shapes: tuple[int, dict[int, Any]] | None = None
        self.store = store or open_store(url, self.db_path, service.name)

    @staticmethod
    def _few_limit() -> int:
        """`_FEW`, read when asked (a module global here, so a test can lower it)."""
        return _FEW

    def ping(self) -> None:
        """Raise OSError unless the catalog's store answers now (readiness)."""
        self.store.ping()
