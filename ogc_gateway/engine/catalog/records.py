"""The catalog's records: what a selection returns (Item), the service-level facts (CatalogInfo),
a mosaic order (Order), what a sync did (SyncReport), and the built-in fields every item has."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from ..fields import DOUBLE, GEOMETRY, INTEGER, OID, STRING, Field
from ..rasterinfo import BandStats


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
class Filter:
    """The WHERE of an item selection: conditions, and their parameters in order."""

    sql: tuple[str, ...] = ()
    params: tuple[Any, ...] = ()

    def plus(self, sql: str, *params: Any) -> Filter:
        return Filter(self.sql + (sql,), self.params + params)


Progress = Callable[[str, int], None]     # called with each file a change looks at, and their number
Reader = Callable[[list[str]], Iterable[tuple[str, "dict[str, Any] | str"]]]   # files -> (path, record or why not)


@dataclass(frozen=True, slots=True)
class SyncReport:
    added: int        # new files, and changed files that were re-read
    removed: int
    unchanged: int


# --- field vocabulary -----------------------------------------------------------------------------

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
