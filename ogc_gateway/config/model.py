"""The gateway-level settings that are not the engine's: the server section, its contact, and the
whole configuration. The engine's own settings (services, limits, templates ...) are the
dataclasses of engine/settings.py; config only builds them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..engine import DEFAULT_OGC_CRS, Limits, ServiceConfig
from ..security.settings import SecurityConfig


@dataclass(frozen=True)
class Contact:
    """Contact of the gateway (`server.contact`), for the OGC capabilities; "" where not given."""

    person: str = ""
    organization: str = ""
    position: str = ""
    email: str = ""
    phone: str = ""
    fax: str = ""
    address: str = ""
    city: str = ""
    state_or_province: str = ""
    postcode: str = ""
    country: str = ""


@dataclass(frozen=True)
class ServerConfig:
    cache_dir: Path
    title: str = "ogc-gateway"
    public_url: str | None = None
    proxy_headers: bool = False
    rest_http_errors: bool = False
    limits: Limits = field(default_factory=Limits)
    abstract: str = ""
    keywords: tuple[str, ...] = ()
    contact: Contact | None = None
    fees: str = "none"
    access_constraints: str = "none"
    ogc_crs: tuple[str, ...] = DEFAULT_OGC_CRS   # "EPSG:<code>", besides each native CRS
    tile_metatile_size: int = 4                  # tiles per side rendered in one engine call
    tile_cache_max_age: int = 3600               # Cache-Control max-age of tiles, seconds
    data_dir: Path | None = None                 # rasters of published services (default cache_dir/data)
    max_upload_bytes: int = 2 * 1024 ** 3        # largest file the publishing API accepts
    upload_ttl_hours: int = 24                   # uploads unused this long are removed
    allowed_hosts: tuple[str, ...] = ()          # Host header values accepted (empty: any)
    cors_origins: tuple[str, ...] | None = None  # None: '*' for public services only
    max_request_bytes: int = 10 * 2**20          # request bodies (forms, geometries) are refused above this
    tile_cache_max_bytes: int = 10 * 2**30       # disk the tile cache may take; the oldest tiles go first
    output_max_bytes: int = 2 * 2**30            # disk the f=json output files may take
    heavy_request_pixels: int = 2048 * 2048      # a request this large (or a rule of >= 1 s) is heavy
    max_heavy_per_worker: int = 1                # heavy requests one worker runs at once
    max_heavy_per_host: int | None = None        # ... every worker of the host together (None: CPU count)
    access_log: bool = True                      # one line per request on stdout under `serve`
    access_log_format: str = "text"              # text | json
    cache_url: str | None = None                 # s3://bucket/prefix: tiles and f=json outputs shared there
    catalog_url: str | None = None               # postgresql://...: every service's catalog in PostGIS, shared

    @property
    def published_data_dir(self) -> Path:
        return self.data_dir or self.cache_dir / "data"


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    services: dict[str, ServiceConfig]           # in the order of the file
    path: Path | None = None                     # the YAML file, when there is one
    security: SecurityConfig | None = None       # None: every service is public

