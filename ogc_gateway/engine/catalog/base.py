"""What the catalog's mixins (sync, attributes, seamlines, selection) share: the attributes
`Catalog.__init__` sets, the store helpers, and the methods one mixin calls on another, declared
abstract here so that each mixin is type-checked on its own and `Catalog` must have them all."""

from __future__ import annotations

from abc import ABC, abstractmethod
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from ..fields import Field
from ..settings import ServiceConfig
from .records import CatalogInfo
from .store import Store

Gone = tuple[Any, ...] | None    # a removed item's footprint bounds row (minx, miny, maxx, maxy), or None


class CatalogBase(ABC):
    """The shared part of `Catalog`: its service, store and per-generation memos."""

    db_path: Path
    service: ServiceConfig
    store: Store
    _info: tuple[int, CatalogInfo] | None            # (generation, facts)
    _sizes: tuple[int, float] | None                 # (generation, largest item's size)
    _shapes: tuple[int, dict[int, Any]] | None       # (generation, decoded footprint polygons)

    def _con(self) -> Any:
        return self.store.con()

    def _write(self) -> AbstractContextManager[Any]:
        return self.store.write()

    def _meta(self, con: Any, key: str) -> str | None:
        return self.store.meta(con, key)

    def _set_meta(self, con: Any, key: str, value: str) -> None:
        self.store.set_meta(con, key, value)

    @property
    def _where(self) -> str:
        return f"services.{self.service.name}"

    def _no_match(self) -> str:
        return f"{self._where}.sources: no raster file matches {list(self.service.sources)}"

    # one mixin's methods another calls

    @abstractmethod
    def _few_limit(self) -> int:
        """Candidates an R*Tree may hand a query before an index walk does better (Catalog)."""

    @abstractmethod
    def _edits(self, con: Any) -> dict[str, dict[str, str | None]]:
        """Attribute values set by hand, by path then lower-case field name (Sync)."""

    @abstractmethod
    def _stats_sums(self, con: Any) -> list[list[float | None]]:
        """Per band [count, sum, sum of squares, min, max] over every item (Sync)."""

    @abstractmethod
    def _derive(self, con: Any, oids: set[int] | None = None) -> list[str]:
        """Rebuild the derived tables; the problems found (Attributes)."""

    @abstractmethod
    def attribute_fields(self) -> tuple[Field, ...]:
        """The attribute fields, in column order (Attributes)."""

    @abstractmethod
    def _update_seamlines(self, con: Any, crs_wkt: str, touched: set[int] | None,
                          gone: list[Gone]) -> list[str]:
        """Store each item's seamline; the problems found (Seamlines)."""

    @abstractmethod
    def last_change(self) -> int:
        """The catalog's generation (Selection)."""
