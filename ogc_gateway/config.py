"""YAML configuration -> typed, validated config objects.

Validation is strict and complete: every problem is reported (file, key path, what is wrong, the
nearest valid key), and nothing is built from a config that has one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Request limits; set under `server:` and overridable per service."""

    max_image_width: int = 15000
    max_image_height: int = 4100
    max_source_pixels: int = 400_000_000
    max_mosaic_image_count: int = 20
    max_record_count: int = 1000
    output_ttl_seconds: int = 600


@dataclass(frozen=True)
class FunctionTemplate:
    """A raster-function template offered by a service (`raster_functions:` entries)."""

    name: str
    function: str
    arguments: dict[str, Any] = field(default_factory=dict)
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
    default_mosaic_method: str | None = None     # canonical esriMosaic* name
    default_band_ids: tuple[int, ...] | None = None
    default_resampling: str = "bilinear"         # nearest | bilinear | cubic | mode
    tile_scheme: str = "WebMercatorQuad"
    raster_functions: tuple[FunctionTemplate, ...] = ()
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class ServerConfig:
    cache_dir: Path
    title: str = "ogc-gateway"
    public_url: str | None = None
    proxy_headers: bool = False
    rest_http_errors: bool = False
    limits: Limits = field(default_factory=Limits)


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    services: dict[str, ServiceConfig]           # in the order of the file
    path: Path | None = None                     # the YAML file, when there is one
