"""The catalog of a service: one SQLite database per service in cache_dir, synchronised with the
`sources` globs at start-up. CONTRACT ONLY — implementation pending (see the helper brief)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import ServiceConfig


@dataclass(frozen=True, slots=True)
class BandStats:
    min: float
    max: float
    mean: float
    stdv: float


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
    added: int
    removed: int
    unchanged: int


class Catalog:
    def __init__(self, db_path: Path, service: ServiceConfig):
        raise NotImplementedError

    def sync(self) -> SyncReport:
        raise NotImplementedError

    def info(self) -> CatalogInfo:
        raise NotImplementedError

    def items(self, bbox: tuple[float, float, float, float] | None = None,
              time: tuple[int | None, int | None] | None = None,
              oids: tuple[int, ...] | None = None) -> list[Item]:
        raise NotImplementedError

    def item(self, oid: int) -> Item | None:
        raise NotImplementedError
