"""The catalog's storage seam: what the catalog asks of a database, so that one catalog (sync,
attributes, seamlines, selection) runs on SQLite (embedded, the default) or PostgreSQL/PostGIS
(shared by every instance of a deployment).

The catalog writes its SQL once, with `?` placeholders and quoted identifiers; a store runs it on
its own connection type and supplies the few fragments the two databases spell differently (the
dialect below). Every value travels as a parameter: the fragments hold placeholders, never values.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from typing import Any

from ..fields import DATE, DOUBLE, INTEGER, OID, STRING


class Store(ABC):
    """A database holding one service's catalog tables (meta, excluded, edits, rasters,
    footprints, item_times, seamlines, fields, items)."""

    #: a subquery listing the integers of one JSON-array parameter (`x IN ({ids})`)
    ids: str = "SELECT value FROM json_each(?)"
    #: a subquery listing the strings of one JSON-array parameter
    texts: str = "SELECT value FROM json_each(?)"
    #: the LIMIT parameter that means "no limit"
    no_limit: Any = -1
    #: the column types of the derived `items` table, by Esri field type
    types: dict[str, str] = {OID: "INTEGER PRIMARY KEY", STRING: "TEXT", INTEGER: "INTEGER",
                             DOUBLE: "REAL", DATE: "INTEGER"}
    #: the footprint index's condition "meets the box": parameters xmin, ymin, xmax, ymax
    box: str = "maxx >= ? AND maxy >= ? AND minx <= ? AND miny <= ?"
    #: the time index's condition "meets the window": parameters `span_bounds(lo, hi)`
    span: str = "t1 >= ? AND t0 <= ?"
    #: errors a query raises when a where clause's values do not fit its columns' types
    value_errors: tuple[type[BaseException], ...] = ()

    @abstractmethod
    def con(self) -> Any:
        """This thread's connection: `execute(sql, params)` returns a DB-API cursor, and
        `executemany(sql, rows)` runs one statement per row; outside `write()` each statement
        sees the latest committed state."""

    @abstractmethod
    def write(self) -> AbstractContextManager[Any]:
        """One write transaction (the connection), serialised with every other writer of this
        catalog in any process or instance; rolled back if the block raises."""

    @abstractmethod
    def ping(self) -> None:
        """Raise OSError unless the database answers now and holds a synchronised catalog (a new
        connection, so an outage is noticed; messages never show a password)."""

    @abstractmethod
    def reset_items(self, con: Any, ddl: str) -> None:
        """Replace the derived `items` table by one created with `ddl`."""

    def position(self, column: str) -> str:
        """The 0-based position of `column`'s value in one JSON-array parameter (NULL if absent)."""
        return f"(SELECT key FROM json_each(?) WHERE value = {column})"

    def json_number(self, column: str, *index: int) -> str:
        """A number inside a JSON array held as text, e.g. `transform[1]` or `stats[b][k]`."""
        return f"json_extract({column}, '$" + "".join(f"[{int(i)}]" for i in index) + "')"

    def span_bounds(self, lo: float, hi: float) -> tuple[Any, ...]:
        """The parameters of `span` for a window from lo to hi (epoch ms; -inf/inf: open)."""
        return (lo, hi)

    def greatest(self, a: str, b: str) -> str:
        return f"MAX({a}, {b})"

    def condition(self, sql: str) -> str:
        """A compiled where clause as a WHERE condition (the compiler's "every row" is `1`)."""
        return sql

    @staticmethod
    def meta(con: Any, key: str) -> str | None:
        row = con.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def generation(self) -> str | None:
        """The catalog's generation as committed, seen from this thread's connection."""
        return self.meta(self.con(), "generation")

    @staticmethod
    def set_meta(con: Any, key: str, value: str) -> None:
        con.execute("INSERT INTO meta (key, value) VALUES (?, ?) "
                    "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))
