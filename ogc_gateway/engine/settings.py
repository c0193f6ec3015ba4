"""The settings the engine works from: small frozen dataclasses that the config package fills from YAML.

They live in the engine so the engine never imports the configuration loader (ogc_gateway.config imports
these and re-exports them; `from ogc_gateway.config import ...` keeps working).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .names import MosaicMethod, Resampling


@dataclass(frozen=True)
class Limits:
    """Request limits; set under `server:` and overridable per service."""

    max_image_width: int = 15000
    max_image_height: int = 4100
    max_source_pixels: int = 400_000_000
    max_mosaic_image_count: int = 20
    max_record_count: int = 1000
    output_ttl_seconds: int = 600
    max_output_bytes: int = 512 * 2**20          # width x height x bands x bytes per value of one answer
    max_output_bands: int = 64                   # bands one request may ask for (bandIds, BAND=, RANGESUBSET)
    max_request_seconds: int = 60                # time budget of one request (estimated, then enforced)


DEFAULT_OGC_CRS = ("EPSG:4326", "EPSG:3857")


@dataclass(frozen=True)
class FunctionTemplate:
    """A raster-function template offered by a service (`raster_functions:` entries)."""

    name: str
    function: str
    arguments: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    definition: dict[str, Any] | None = None     # the RFT JSON of a template file in that form


@dataclass(frozen=True)
class Attribution:
    """Attribution of a service's layer (`services.<name>.attribution`); title or url is set."""

    title: str = ""
    url: str | None = None                       # http(s) URL
    logo_url: str | None = None                  # http(s) URL
    logo_format: str = "image/png"               # MIME type of the logo
    logo_width: int | None = None
    logo_height: int | None = None


@dataclass(frozen=True)
class MetadataUrl:
    """One `services.<name>.metadata_urls` entry (WMS MetadataURL)."""

    type: str                                    # ISO19115:2003, FGDC, TC211, ISO19139 or other
    url: str                                     # http(s) URL
    format: str = "text/xml"                     # MIME type


@dataclass(frozen=True)
class DimensionConfig:
    """One `services.<name>.dimensions` entry: where each item's (or band's) value comes from.

    `field` names a catalog attribute; `band_metadata` a metadata item of each band, which makes the
    bands of every file its slices (NetCDF: NETCDF_DIM_<dim>). StdTime takes neither from here: it
    is the service's time (`time_field`), or comes from `band_metadata`."""

    name: str                                    # StdTime, StdZ or any identifier
    field: str | None = None
    band_metadata: str | None = None
    unit: str = ""
    description: str = ""


@dataclass(frozen=True)
class VariableConfig:
    """One `services.<name>.variables` entry."""

    name: str
    unit: str = ""
    description: str = ""


@dataclass(frozen=True)
class ServiceConfig:
    name: str
    sources: tuple[str, ...]                     # absolute glob patterns
    title: str = ""
    description: str = ""
    copyright_text: str = ""
    catalog: Path | None = None                  # absolute path of the attribute CSV
    crs: str | None = None                       # as written, e.g. "EPSG:32633"
    time_field: str | None = None
    end_time_field: str | None = None
    default_mosaic_method: MosaicMethod | None = None
    default_band_ids: tuple[int, ...] | None = None
    default_resampling: Resampling = Resampling.BILINEAR
    tile_scheme: str = "WebMercatorQuad"
    tile_matrix_sets: tuple[str, ...] = ()       # OGC TMS identifiers offered besides the standard ones
    raster_functions: tuple[FunctionTemplate, ...] = ()
    limits: Limits = field(default_factory=Limits)
    keywords: tuple[str, ...] = ()               # the service's own; its WMS adds the server's
    ogc_crs: tuple[str, ...] = DEFAULT_OGC_CRS   # resolved: its own list, else the server's
    attribution: Attribution | None = None
    metadata_urls: tuple[MetadataUrl, ...] = ()
    min_scale_denominator: float | None = None
    max_scale_denominator: float | None = None
    nadir_field: str | None = None               # attribute holding each item's off-nadir angle
    seamlines: Path | None = None                # absolute path of a GeoJSON file of given seamlines
    seamline_blend_width: float = 0.0            # feathering across seamlines, in native cells
    variable_field: str | None = None            # attribute naming each item's variable
    variables: tuple[VariableConfig, ...] = ()
    dimensions: tuple[DimensionConfig, ...] = ()
    allow_download: bool = False                 # REST download/file: the source files of chosen items
    access: str | tuple[str, ...] | None = None  # 'public', role names, or None: any signed-in user

    @property
    def multidimensional(self) -> bool:
        return bool(self.dimensions or self.variables or self.variable_field)


class _Server(Protocol):
    @property
    def cache_dir(self) -> Path: ...

    @property
    def catalog_url(self) -> str | None: ...


class Deployment(Protocol):
    """What the engine reads of a whole configuration (config.Config): its services and the
    server's cache folder, where the catalogs live."""

    @property
    def server(self) -> _Server: ...

    @property
    def services(self) -> Mapping[str, ServiceConfig]: ...
