"""ImageService = config + catalog + ServiceInfo; `open_services` builds the registry of services.

ServiceInfo is computed once when a service opens and feeds every face (root JSON, capabilities),
so the faces can never disagree about a service.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

from rasterio.crs import CRS

from . import read as reader
from .catalog import DOUBLE, INTEGER, BandStats, Catalog, Field
from .crsid import identified
from .errors import ConfigError
from .multidim import Multidimensional
from .multidim import build as build_multidimensional
from .names import MOSAIC_SHORT, MosaicMethod, Resampling
from .requests import MosaicRule, pixel_type_of
from .settings import Deployment, FunctionTemplate, Limits, ServiceConfig

T = TypeVar("T")


@dataclass(frozen=True)
class ServiceInfo:
    name: str
    title: str
    description: str
    copyright_text: str
    crs: CRS
    extent: tuple[float, float, float, float]
    cell_size: tuple[float, float]
    band_count: int
    band_names: tuple[str, ...]
    pixel_type: str
    dtype: str
    nodata: float | None
    stats: tuple[BandStats, ...]
    fields: tuple[Field, ...]
    time_field: str | None
    end_time_field: str | None
    time_extent: tuple[int, int] | None
    default_rule: MosaicRule
    resampling: Resampling
    default_band_ids: tuple[int, ...] | None
    templates: tuple[FunctionTemplate, ...]
    limits: Limits
    item_count: int
    multidimensional: Multidimensional | None = None

    @property
    def default_method_short(self) -> str:
        return MOSAIC_SHORT[self.default_rule.method]


class ImageService:
    """One published image service. Built once per worker; nothing here re-reads config per request."""

    def __init__(self, config: ServiceConfig, catalog: Catalog):
        self.config = config
        self.catalog = catalog
        self.generation = catalog.last_change()         # the catalog state `info` describes
        self.info = _service_info(config, catalog, build_multidimensional(config, catalog))
        self.templates = {t.name.lower(): t for t in config.raster_functions}
        self._cache: dict[str, object] = {}
        self._lock = threading.RLock()        # a computation may ask for another

    def reopened(self) -> ImageService:
        """The service rebuilt on its changed catalog: new ServiceInfo, empty memo (statistics,
        tile sets...), and datasets reopened (a file may have gained overviews)."""
        reader.POOL.invalidate()
        return ImageService(self.config, self.catalog)

    def cached(self, key: str, compute: Callable[[], T]) -> T:
        """A per-worker memo of the engine's service-wide results (template statistics, histograms),
        computed once by `compute()` on first use. Faces keep what they build in facecache.
        One key is always computed by one `compute`, so the value under it has that function's type
        (the memo itself holds many types: a cast, not a check)."""
        with self._lock:
            if key not in self._cache:
                self._cache[key] = compute()
            return cast(T, self._cache[key])


def _service_info(config: ServiceConfig, catalog: Catalog, md: Multidimensional | None) -> ServiceInfo:
    cat = catalog.info()
    time_field = _field_name(cat.fields, config.time_field)
    end_field = _field_name(cat.fields, config.end_time_field)
    band_count, band_names, stats, time_extent = cat.band_count, cat.band_names, cat.stats, cat.time_extent
    if md is not None and md.from_bands:
        # Each band of a file is a slice: the service shows one band, and its time (if any) is
        # the bands' StdTime, which its members carry as an attribute of that name.
        band_count, band_names, stats = 1, ("Band_1",), md.stats
        if md.time is not None and not time_field:
            time_field, time_extent = "StdTime", md.time_extent
    if config.default_mosaic_method:
        method = MosaicMethod(config.default_mosaic_method)   # a member (config) or its value (tests)
        rule = MosaicRule(method=method, sort_field=time_field if method is MosaicMethod.ATTRIBUTE else None,
                          ascending=not (method is MosaicMethod.ATTRIBUTE and time_field))
    elif time_field:
        rule = MosaicRule(method=MosaicMethod.ATTRIBUTE, sort_field=time_field, ascending=False)
    else:
        rule = MosaicRule(method=MosaicMethod.NORTHWEST)
    return ServiceInfo(
        name=config.name, title=config.title or config.name, description=config.description,
        copyright_text=config.copyright_text, crs=identified(CRS.from_wkt(cat.crs_wkt)), extent=cat.extent,
        cell_size=cat.cell_size, band_count=band_count, band_names=band_names,
        pixel_type=pixel_type_of(cat.dtype), dtype=cat.dtype, nodata=cat.nodata, stats=stats,
        fields=cat.fields, time_field=time_field, end_time_field=end_field or time_field if time_field else None,
        time_extent=time_extent, default_rule=rule, resampling=config.default_resampling,
        default_band_ids=config.default_band_ids, templates=config.raster_functions,
        limits=config.limits, item_count=cat.item_count, multidimensional=md)


def _field_name(fields: Iterable[Field], name: str | None) -> str | None:
    """The field's own spelling (config names match case-insensitively)."""
    if not name:
        return None
    for f in fields:
        if f.name.lower() == name.lower():
            return f.name
    return name


def _nadir_problems(config: ServiceConfig, fields: Iterable[Field]) -> list[str]:
    """nadir_field must name a numeric attribute (the off-nadir angle esriMosaicNadir sorts by)."""
    if not config.nadir_field:
        return []
    found = next((f for f in fields if f.name.lower() == config.nadir_field.lower()), None)
    if found is None or found.type not in (INTEGER, DOUBLE):
        numeric = [f.name for f in fields if f.type in (INTEGER, DOUBLE)]
        return [f"services.{config.name}.nadir_field: no numeric attribute {config.nadir_field!r}; "
                f"numeric fields: {', '.join(numeric)}"]
    return []


def catalog_path(config: Deployment, name: str) -> Path:
    return config.server.cache_dir / "catalogs" / f"{name}.sqlite"


def open_catalog(config: Deployment, svc: ServiceConfig) -> Catalog:
    """A service's catalog where the deployment keeps it: the shared PostGIS database of
    `server.catalog_url`, else the SQLite file under the cache folder."""
    return Catalog(catalog_path(config, svc.name), svc, url=config.server.catalog_url)


def open_services(config: Deployment, *, sync: bool = True) -> dict[str, ImageService]:
    """Every configured service, its catalog synchronised with its sources when `sync` is true.

    Problems (a file with another band count, a missing time field ...) are collected over all
    services and raised together as one ConfigError.
    """
    services, problems = {}, []
    for name, svc in config.services.items():
        try:
            catalog = open_catalog(config, svc)
            if sync:
                catalog.sync()
            service = ImageService(svc, catalog)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        problems += _nadir_problems(svc, service.info.fields)
        bad_bands = [b for b in (svc.default_band_ids or ()) if b >= service.info.band_count]
        if bad_bands:
            problems.append(f"services.{name}.default_band_ids: band {bad_bands[0]} does not exist "
                            f"(the service has {service.info.band_count} bands, 0..{service.info.band_count - 1})")
        services[name] = service
    if problems:
        raise ConfigError(problems)
    return services
