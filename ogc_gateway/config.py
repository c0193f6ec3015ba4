"""YAML configuration -> typed, validated config objects.

Validation is strict and complete: every problem is reported (file, key path, what is wrong, the
nearest valid key), and nothing is built from a config that has one.
"""

from __future__ import annotations

import difflib
import glob
import json
import os
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import yaml

from .engine import (
    DEFAULT_OGC_CRS,
    Attribution,
    ConfigError,
    DimensionConfig,
    FunctionTemplate,
    Limits,
    MetadataUrl,
    Resampling,
    ServiceConfig,
    VariableConfig,
    canonical_mosaic_method,
    canonical_resampling,
)
from .security.settings import (SECURITY_KEYS, SecurityConfig, access_value, host_patterns, origin_list,
                                security_section)


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

    @property
    def published_data_dir(self) -> Path:
        return self.data_dir or self.cache_dir / "data"


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    services: dict[str, ServiceConfig]           # in the order of the file
    path: Path | None = None                     # the YAML file, when there is one
    security: SecurityConfig | None = None       # None: every service is public


# --------------------------------------------------------------------------------------------------
# Loading and validation
# --------------------------------------------------------------------------------------------------

LIMIT_KEYS = tuple(f.name for f in fields(Limits))
SERVER_KEYS = ("title", "public_url", "cache_dir", "proxy_headers", "rest_http_errors", "abstract",
               "keywords", "contact", "fees", "access_constraints", "ogc_crs", "tile_metatile_size",
               "tile_cache_max_age", "allowed_hosts", "cors_origins", "data_dir", "max_upload_bytes",
               "upload_ttl_hours", "max_request_bytes", "tile_cache_max_bytes", "output_max_bytes",
               "heavy_request_pixels", "max_heavy_per_worker", "max_heavy_per_host", "access_log",
               "access_log_format", "cache_url") + LIMIT_KEYS
SERVICE_KEYS = ("title", "description", "copyright_text", "sources", "catalog", "crs", "time_field",
                "end_time_field", "default_mosaic_method", "default_band_ids", "default_resampling",
                "tile_scheme", "tile_matrix_sets", "raster_functions", "keywords", "ogc_crs", "attribution",
                "metadata_urls", "min_scale_denominator", "max_scale_denominator", "variable_field",
                "variables", "dimensions", "nadir_field", "seamlines", "seamline_blend_width",
                "allow_download", "access") + LIMIT_KEYS
CONTACT_KEYS = tuple(f.name for f in fields(Contact))
ATTRIBUTION_KEYS = tuple(f.name for f in fields(Attribution))
METADATA_URL_KEYS = ("type", "format", "url")
TEMPLATE_KEYS = ("name", "function", "arguments", "description")
TEMPLATE_FILE_KEYS = ("name", "description", "rasterFunction", "rasterFunctionArguments")
DIMENSION_KEYS = ("field", "band_metadata", "unit", "description")
VARIABLE_KEYS = ("unit", "description")
STANDARD_DIMENSIONS = ("StdTime", "StdZ")
# What the OGC faces call StdTime, StdZ and the variables: not available as dimension names.
RESERVED_DIMENSIONS = ("time", "elevation", "variable")
# ArcGIS raster function template (RFT JSON) files
RFT_FILE_KEYS = ("type", "name", "description", "function", "arguments", "functionType", "thumbnail",
                 "thumbnailEx", "help", "aliases", "definition", "properties", "group", "tag")
TILE_SCHEMES = ("WebMercatorQuad", "native")
RASTER_SUFFIXES = (".tif", ".tiff", ".vrt", ".img", ".jp2")
CACHE_DIR_NAME = ".ogc-gateway-cache"
REMOTE_SOURCES = ("s3://", "http://", "https://")      # sources read through GDAL's /vsis3/ and /vsicurl/

_NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
_HTTP_URL = re.compile(r"^https?://[^/\s]+\S*$")
_MIME_TYPE = re.compile(r"^[A-Za-z0-9][\w!#$&^.+-]*/[A-Za-z0-9][\w!#$&^.+-]*(\s*;\s*\S.*)?$")
_EPSG = re.compile(r"^epsg:(\d+)$", re.IGNORECASE)


def load_config(path: str | os.PathLike) -> Config:
    """Read, validate and build a configuration; raises ConfigError listing every problem."""
    path = Path(path).expanduser().resolve()
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([f"{path}: no such configuration file"]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {getattr(exc, 'strerror', None) or exc}"]) from None
    raw, problems = _parse_yaml(text, path.name)
    if problems:
        raise ConfigError(problems)
    return config_from_dict(raw, path)


def config_problems(raw: Any, path: Path) -> list[str]:
    """Every problem of an already-parsed YAML document (an empty list when it is valid)."""
    return _Builder(Path(path).name, Path(path).resolve().parent).build(raw)[1]


def config_from_dict(raw: Any, path: Path) -> Config:
    """Build a Config from a parsed YAML document; raises ConfigError listing every problem."""
    path = Path(path).resolve()
    config, problems = _Builder(path.name, path.parent, config_path=path).build(raw)
    if problems:
        raise ConfigError(problems)
    return config


# Keys that name files on the server: a service published over HTTP gets its sources from its
# uploads, and may not point at other files of the server.
SERVER_PATH_KEYS = ("sources", "catalog", "seamlines")


def published_service(name: str, raw: Any, server: ServerConfig, sources: tuple[str, ...],
                      label: str = "service") -> ServiceConfig:
    """A service of the publishing API (`createService`, `edit`, a stored definition) built by the
    validator of `services:` entries, so its errors read the same (`service: services.NAME.key:
    ...`); `sources` are its rasters' files. Raises ConfigError listing every problem."""
    builder = _Builder(label, server.cache_dir)
    where = f"services.{name}"
    if not _NCNAME.match(name):
        builder.problem(where, "service name must start with a letter or '_' and hold only "
                               "letters, digits, '_', '-', '.'")
    if not isinstance(raw, dict):
        builder.problem(where, "must be a JSON object of service keys")
        raise ConfigError(builder.problems)
    for key in SERVER_PATH_KEYS:
        if key in raw:
            builder.problem(f"{where}.{key}", "not available to a published service (its rasters are "
                                              "its uploads)")
    templates = raw.get("raster_functions")
    for i, entry in enumerate(templates if isinstance(templates, list) else []):
        if isinstance(entry, str) and entry.lower().endswith(".json"):
            builder.problem(f"{where}.raster_functions[{i}]", "template files are not available to a "
                                                            "published service; give the template inline")
    body = {k: v for k, v in raw.items() if k not in SERVER_PATH_KEYS}
    service = builder.service(name, builder.mapping({**body, "sources": list(sources)}, where, SERVICE_KEYS),
                              where, server)
    if builder.problems:
        raise ConfigError(builder.problems)
    return service


def config_for_folder(folder: Path, cache_dir: Path) -> tuple[Config, dict[str, str]]:
    """A configuration serving each raster-holding sub-folder of `folder` as a service.

    Returns the config and the mapping sub-folder -> service name, which `serve DIR` prints because
    the names may differ from the folders (NCName rules)."""
    folder = Path(folder).expanduser().resolve()
    if not folder.is_dir():
        raise ConfigError([f"{folder}: not a folder"])
    services: dict[str, Any] = {}
    mapping: dict[str, str] = {}
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        suffixes = sorted({f.suffix for f in sub.rglob("*")
                           if f.is_file() and f.suffix.lower() in RASTER_SUFFIXES})
        if not suffixes:
            continue
        name = _unique(ncname(sub.name), services)
        service: dict[str, Any] = {"title": sub.name,
                                   "sources": [str(sub / "**" / f"*{s}") for s in suffixes]}
        if (sub / "catalog.csv").is_file():
            service["catalog"] = str(sub / "catalog.csv")
        services[name] = service
        mapping[sub.name] = name
    if not services:
        raise ConfigError([f"{folder}: no sub-folder holds rasters "
                           f"({', '.join('*' + s for s in RASTER_SUFFIXES)})"])
    raw = {"server": {"title": folder.name, "cache_dir": str(Path(cache_dir).resolve())},
           "services": services}
    config, problems = _Builder(str(folder), folder).build(raw)
    if problems:
        raise ConfigError(problems)
    return config, mapping


def ncname(text: str) -> str:
    """`text` made a valid service name: invalid characters -> '_', '_' before a leading non-letter."""
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", text) or "_"
    return name if re.match(r"[A-Za-z_]", name) else "_" + name


def _unique(name: str, taken: dict[str, Any]) -> str:
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        candidate = f"{name}_{n}"
    return candidate


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe loader that records duplicate mapping keys, which plain YAML silently overwrites."""

    def construct_mapping(self, node, deep=False):
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if isinstance(key, (str, int, float, bool)) and key in seen:
                mark = key_node.start_mark
                self.duplicates.append(f"line {mark.line + 1}, column {mark.column + 1}: "
                                       f"duplicate key {key!r}")
            seen.add(key)
        return super().construct_mapping(node, deep)


def _parse_yaml(text: str, label: str) -> tuple[Any, list[str]]:
    loader = _UniqueKeyLoader(text)
    loader.duplicates = []
    try:
        raw = loader.get_single_data()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        what = exc.problem or exc.context or "invalid YAML"
        return None, [f"{label}: {where}YAML syntax error: {what}"]
    except yaml.YAMLError as exc:
        return None, [f"{label}: YAML syntax error: {exc}"]
    finally:
        loader.dispose()
    return raw, [f"{label}: {d}" for d in loader.duplicates]


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _Builder:
    """One pass over the parsed document that both collects problems and builds the objects,
    so the checks and the construction can never disagree."""

    def __init__(self, label: str, base: Path, config_path: Path | None = None):
        self.label, self.base, self.config_path = label, base, config_path
        self.problems: list[str] = []

    def problem(self, key: str, what: str) -> None:
        self.problems.append(f"{self.label}: {key}: {what}")

    def mapping(self, value: Any, key: str, valid: tuple[str, ...]) -> dict[str, Any]:
        """`value` as a dict of its known keys; unknown keys are problems with a suggestion."""
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.problem(key, f"must be a mapping, not {value!r}")
            return {}
        known = {}
        for k, v in value.items():
            if k in valid:
                known[k] = v
                continue
            close = difflib.get_close_matches(str(k), valid, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            self.problem(f"{key}.{k}" if key else str(k), f"unknown key{hint}")
        return known

    def path(self, value: str) -> Path:
        return Path(os.path.normpath(self.base / Path(value).expanduser()))

    # ---- typed values; each returns None (and records a problem) when the value is wrong --------

    def text(self, d: dict, key: str, where: str) -> str | None:
        value = d.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            self.problem(f"{where}.{key}", f"must be a string, not {value!r}")
            return None
        return str(value)

    def text_or(self, d: dict, key: str, where: str, default: str) -> str:
        value = self.text(d, key, where)
        return default if value is None else value

    def url(self, d: dict, key: str, where: str) -> str | None:
        value = self.text(d, key, where)
        if value is not None and not _HTTP_URL.match(value):
            self.problem(f"{where}.{key}", f"must be an http:// or https:// URL, not {value!r}")
            return None
        return value

    def mime_type(self, d: dict, key: str, where: str, default: str) -> str:
        value = self.text(d, key, where)
        if value is None:
            return default
        if not _MIME_TYPE.match(value.strip()):
            self.problem(f"{where}.{key}",
                         f"must be a MIME type such as {default!r}, not {value!r}")
            return default
        return value.strip()

    def positive_int(self, d: dict, key: str, where: str) -> int | None:
        value = d.get(key)
        if value is None:
            return None
        if not (_is_int(value) and value > 0):
            self.problem(f"{where}.{key}", f"must be a positive integer, not {value!r}")
            return None
        return value

    def flag(self, d: dict, key: str, where: str, default: bool) -> bool:
        value = d.get(key)
        if value is None:
            return default
        if not isinstance(value, bool):
            self.problem(f"{where}.{key}", f"must be true or false, not {value!r}")
            return default
        return value

    def limits(self, d: dict, where: str, base: Limits) -> Limits:
        overrides = {}
        for key in LIMIT_KEYS:
            value = d.get(key)
            if value is None:
                continue
            if _is_int(value) and value > 0:
                overrides[key] = value
            else:
                self.problem(f"{where}.{key}", f"must be a positive integer, not {value!r}")
        return replace(base, **overrides)

    # ---- sections -------------------------------------------------------------------------------

    def build(self, raw: Any) -> tuple[Config | None, list[str]]:
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            self.problems.append(f"{self.label}: the document must be a mapping with 'server' and "
                                 f"'services', not {type(raw).__name__}")
            return None, self.problems
        top = self.mapping(raw, "", ("server", "services", "security"))
        server = self.server(top.get("server"))
        services = self.services(top.get("services"), server)
        security = None
        if top.get("security") is not None or "security" in top:
            security = security_section(self.mapping(top.get("security"), "security", SECURITY_KEYS),
                                        self.problem, self.path)
        else:
            for name, service in services.items():
                if service.access is not None:
                    self.problem(f"services.{name}.access", "needs a 'security' section (without one every "
                                                            "service is public)")
        if self.problems:
            return None, self.problems
        return Config(server=server, services=services, path=self.config_path, security=security), []

    def server(self, raw: Any) -> ServerConfig:
        d = self.mapping(raw, "server", SERVER_KEYS)
        cache = self.text(d, "cache_dir", "server")
        public_url = self.text(d, "public_url", "server")
        if public_url is not None:
            if re.match(r"^https?://[^/\s]+", public_url):
                public_url = public_url.rstrip("/")
            else:
                self.problem("server.public_url",
                             f"must be an http:// or https:// URL, not {public_url!r}")
        return ServerConfig(
            cache_dir=self.path(cache) if cache else self.base / CACHE_DIR_NAME,
            title=self.text(d, "title", "server") or "ogc-gateway",
            public_url=public_url,
            proxy_headers=self.flag(d, "proxy_headers", "server", False),
            rest_http_errors=self.flag(d, "rest_http_errors", "server", False),
            limits=self.limits(d, "server", Limits()),
            abstract=self.text(d, "abstract", "server") or "",
            keywords=self.keywords(d.get("keywords"), "server.keywords"),
            contact=self.contact(d.get("contact"), "server.contact"),
            fees=self.text_or(d, "fees", "server", "none"),
            access_constraints=self.text_or(d, "access_constraints", "server", "none"),
            ogc_crs=self.ogc_crs(d.get("ogc_crs"), "server.ogc_crs", DEFAULT_OGC_CRS),
            tile_metatile_size=self.bounded_int(d, "tile_metatile_size", "server", 1, 16, 4),
            tile_cache_max_age=self.bounded_int(d, "tile_cache_max_age", "server", 0, 31_536_000, 3600),
            data_dir=self.path(d["data_dir"]) if self.text(d, "data_dir", "server") else None,
            max_upload_bytes=self.positive_int(d, "max_upload_bytes", "server") or 2 * 1024 ** 3,
            upload_ttl_hours=self.bounded_int(d, "upload_ttl_hours", "server", 1, 8760, 24),
            allowed_hosts=host_patterns(d.get("allowed_hosts"), "server.allowed_hosts", self.problem),
            cors_origins=origin_list(d.get("cors_origins"), "server.cors_origins", self.problem),
            max_request_bytes=self.bounded_int(d, "max_request_bytes", "server", 1024, 2**31, 10 * 2**20),
            tile_cache_max_bytes=self.bounded_int(d, "tile_cache_max_bytes", "server", 2**20, 2**60, 10 * 2**30),
            output_max_bytes=self.bounded_int(d, "output_max_bytes", "server", 2**20, 2**60, 2 * 2**30),
            heavy_request_pixels=self.bounded_int(d, "heavy_request_pixels", "server", 1, 2**40, 2048 * 2048),
            max_heavy_per_worker=self.bounded_int(d, "max_heavy_per_worker", "server", 1, 1024, 1),
            max_heavy_per_host=self.positive_int(d, "max_heavy_per_host", "server"),
            access_log=self.flag(d, "access_log", "server", True),
            access_log_format=self.choice(d, "access_log_format", "server", ("text", "json"), "text"),
            cache_url=self.cache_url(d, "cache_url", "server"),
        )

    def choice(self, d: dict, key: str, where: str, allowed: tuple[str, ...], default: str) -> str:
        value = self.text(d, key, where)
        if value is None:
            return default
        if value not in allowed:
            self.problem(f"{where}.{key}", f"must be one of {', '.join(allowed)}, not {value!r}")
            return default
        return value

    def cache_url(self, d: dict, key: str, where: str) -> str | None:
        value = self.text(d, key, where)
        if value is not None and not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$", value):
            self.problem(f"{where}.{key}", f"must be an s3://bucket/prefix URL, not {value!r}")
            return None
        return value.rstrip("/") if value else None

    def services(self, raw: Any, server: ServerConfig) -> dict[str, ServiceConfig]:
        if not raw:
            self.problem("services", "at least one service is required")
            return {}
        if not isinstance(raw, dict):
            self.problem("services", f"must be a mapping of service name to service, not {raw!r}")
            return {}
        built = {}
        for name, body in raw.items():
            name = str(name)
            where = f"services.{name}"
            if not _NCNAME.match(name):
                self.problem(where, "service name must start with a letter or '_' and hold only "
                                    "letters, digits, '_', '-', '.'")
            if not isinstance(body, dict):
                self.problem(where, "must be a mapping with at least 'sources'")
                continue
            service = self.service(name, self.mapping(body, where, SERVICE_KEYS), where, server)
            if service is not None:
                built[name] = service
        return built

    def service(self, name: str, d: dict, where: str, server: ServerConfig) -> ServiceConfig | None:
        time_field = self.text(d, "time_field", where)
        end_time_field = self.text(d, "end_time_field", where)
        if end_time_field and not time_field:
            self.problem(f"{where}.end_time_field", "needs time_field (the start of the extent)")
        return ServiceConfig(
            name=name,
            sources=self.sources(d.get("sources"), f"{where}.sources"),
            title=self.text(d, "title", where) or "",
            description=self.text(d, "description", where) or "",
            copyright_text=self.text(d, "copyright_text", where) or "",
            catalog=self.catalog(self.text(d, "catalog", where), f"{where}.catalog"),
            crs=self.crs(d.get("crs"), f"{where}.crs"),
            time_field=time_field,
            end_time_field=end_time_field,
            default_mosaic_method=self.mosaic_method(d, where),
            default_band_ids=self.band_ids(d.get("default_band_ids"), f"{where}.default_band_ids"),
            default_resampling=self.resampling(d, where),
            tile_scheme=self.tile_scheme(d, where),
            tile_matrix_sets=self.tile_matrix_sets(d.get("tile_matrix_sets"), f"{where}.tile_matrix_sets"),
            raster_functions=self.templates(d.get("raster_functions"), f"{where}.raster_functions"),
            limits=self.limits(d, where, server.limits),
            keywords=self.keywords(d.get("keywords"), f"{where}.keywords"),
            ogc_crs=self.ogc_crs(d.get("ogc_crs"), f"{where}.ogc_crs", server.ogc_crs),
            attribution=self.attribution(d.get("attribution"), f"{where}.attribution"),
            metadata_urls=self.metadata_urls(d.get("metadata_urls"), f"{where}.metadata_urls"),
            **self.scale_denominators(d, where),
            nadir_field=self.text(d, "nadir_field", where),
            seamlines=self.catalog(self.text(d, "seamlines", where), f"{where}.seamlines"),
            seamline_blend_width=self.blend_width(d.get("seamline_blend_width"), f"{where}.seamline_blend_width"),
            **self.multidimensional(d, where, time_field),
            allow_download=self.flag(d, "allow_download", where, False),
            access=access_value(d.get("access"), f"{where}.access", self.problem),
        )

    def blend_width(self, value: Any, key: str) -> float:
        if value is None:
            return 0.0
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
            self.problem(key, f"must be a number of cells, 0 or more, not {value!r}")
            return 0.0
        return float(value)

    # ---- OGC service metadata --------------------------------------------------------------------

    def keywords(self, value: Any, key: str) -> tuple[str, ...]:
        if value is None:
            return ()
        if (not isinstance(value, list)
                or not all(isinstance(v, (str, int, float)) and not isinstance(v, bool)
                           and str(v).strip() for v in value)):
            self.problem(key, f"must be a list of non-empty strings, not {value!r}")
            return ()
        return tuple(str(v).strip() for v in value)

    def ogc_crs(self, value: Any, key: str, default: tuple[str, ...]) -> tuple[str, ...]:
        """A list of `EPSG:<code>` identifiers pyproj knows, normalised to upper-case `EPSG:`."""
        if value is None:
            return default
        if not isinstance(value, list):
            self.problem(key,
                         f"must be a list of CRS identifiers such as 'EPSG:4326', not {value!r}")
            return default
        from pyproj import CRS
        from pyproj.exceptions import CRSError

        built: list[str] = []
        for i, entry in enumerate(value):
            where = f"{key}[{i}]"
            if _is_int(entry):
                self.problem(where, f"must be a string 'EPSG:<code>' (e.g. 'EPSG:{entry}'), "
                                    f"not {entry!r}")
                continue
            if not isinstance(entry, str):
                self.problem(where, f"must be a string 'EPSG:<code>', not {entry!r}")
                continue
            match = _EPSG.match(entry.strip())
            if match is None:
                why = (" (CRS:84 is added by the WMS 1.3.0 face itself)"
                       if entry.strip().upper() == "CRS:84" else "")
                self.problem(where, f"{entry!r} is not of the form 'EPSG:<code>'{why}")
                continue
            code = f"EPSG:{int(match.group(1))}"
            try:
                CRS.from_user_input(code)
            except (CRSError, TypeError, ValueError):
                self.problem(where, f"{entry!r} is not a CRS known to PROJ")
                continue
            if code in built:
                self.problem(where, f"duplicate CRS {code!r}")
                continue
            built.append(code)
        return tuple(built)

    def contact(self, value: Any, key: str) -> Contact | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(key, f"must be a mapping ({', '.join(CONTACT_KEYS)}), not {value!r}")
            return None
        d = self.mapping(value, key, CONTACT_KEYS)
        return Contact(**{k: self.text(d, k, key) or "" for k in CONTACT_KEYS})

    def attribution(self, value: Any, key: str) -> Attribution | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            self.problem(key, f"must be a mapping with 'title' and/or 'url', not {value!r}")
            return None
        d = self.mapping(value, key, ATTRIBUTION_KEYS)
        if d.get("title") is None and d.get("url") is None:
            self.problem(key, "needs at least 'title' or 'url'")
        attribution = Attribution(
            title=self.text(d, "title", key) or "",
            url=self.url(d, "url", key),
            logo_url=self.url(d, "logo_url", key),
            logo_format=self.mime_type(d, "logo_format", key, "image/png"),
            logo_width=self.positive_int(d, "logo_width", key),
            logo_height=self.positive_int(d, "logo_height", key),
        )
        if d.get("logo_url") is None:
            for k in ("logo_format", "logo_width", "logo_height"):
                if d.get(k) is not None:
                    self.problem(f"{key}.{k}", "needs logo_url")
        return attribution

    def metadata_urls(self, value: Any, key: str) -> tuple[MetadataUrl, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(key, f"must be a list of mappings {{type, format, url}}, not {value!r}")
            return ()
        built: list[MetadataUrl] = []
        for i, entry in enumerate(value):
            where = f"{key}[{i}]"
            if not isinstance(entry, dict):
                self.problem(where, f"must be a mapping {{type, format, url}}, not {entry!r}")
                continue
            d = self.mapping(entry, where, METADATA_URL_KEYS)
            kind = self.text(d, "type", where)
            if d.get("type") is None or (kind is not None and not kind.strip()):
                self.problem(f"{where}.type", "required: ISO19115:2003, FGDC, TC211, ISO19139 or "
                                              "another non-empty name")
                kind = None
            url = self.url(d, "url", where)
            if d.get("url") is None:
                self.problem(f"{where}.url",
                             "required: the http:// or https:// URL of the metadata")
            format_ = self.mime_type(d, "format", where, "text/xml")
            if kind is not None and url is not None:
                built.append(MetadataUrl(type=kind.strip(), url=url, format=format_))
        return tuple(built)

    def scale_denominators(self, d: dict, where: str) -> dict[str, float | None]:
        scales: dict[str, float | None] = {}
        for key in ("min_scale_denominator", "max_scale_denominator"):
            value = d.get(key)
            number = None
            if isinstance(value, (int, float, str)) and not isinstance(value, bool):
                try:                # a string too: YAML 1.1 reads 2.5e6 (no exponent sign) as one
                    number = float(value)
                except ValueError:
                    pass
            if value is not None and not (number is not None and 0 < number < float("inf")):
                self.problem(f"{where}.{key}", f"must be a positive number, not {value!r}")
                number = None
            scales[key] = number
        low, high = scales["min_scale_denominator"], scales["max_scale_denominator"]
        if low is not None and high is not None and low >= high:
            self.problem(f"{where}.min_scale_denominator",
                         f"must be less than max_scale_denominator "
                         f"({d['max_scale_denominator']!r}), not {d['min_scale_denominator']!r}")
        return scales

    # ---- multidimensional services ----------------------------------------------------------------

    def multidimensional(self, d: dict, where: str, time_field: str | None) -> dict[str, Any]:
        """variable_field, variables and dimensions, checked together: a multidimensional service
        needs a dimension (time_field counts as StdTime) and a way to name each slice's variable."""
        variable_field = self.text(d, "variable_field", where)
        variables = self.variables(d.get("variables"), f"{where}.variables")
        dimensions = self.dimensions(d.get("dimensions"), f"{where}.dimensions", time_field)
        if not (variable_field or variables or dimensions):
            return {}
        if not dimensions and not time_field:
            self.problem(where, "a multidimensional service needs a dimension: `dimensions`, or "
                                "time_field (its StdTime)")
        from_bands = any(dim.band_metadata for dim in dimensions)
        if not variable_field and len(variables) != 1 and not from_bands:
            self.problem(f"{where}.variable_field",
                         "name each item's variable (variable_field: an attribute) or the "
                         "service's one variable (variables: {name: {unit, description}})")
        return dict(variable_field=variable_field, variables=variables, dimensions=dimensions)

    def variables(self, value: Any, key: str) -> tuple[VariableConfig, ...]:
        if value is None:
            return ()
        if not isinstance(value, dict):
            self.problem(key, f"must be a mapping of variable name to {{unit, description}}, not {value!r}")
            return ()
        built = []
        for name, body in value.items():
            where = f"{key}.{name}"
            if not isinstance(name, str) or not name.strip() or "," in name:
                self.problem(where, "a variable name is non-empty text without commas")
                continue
            if body is not None and not isinstance(body, dict):
                self.problem(where, f"must be a mapping {{unit, description}} or empty, not {body!r}")
                continue
            d = self.mapping(body, where, VARIABLE_KEYS)
            built.append(VariableConfig(name.strip(), unit=self.text(d, "unit", where) or "",
                                        description=self.text(d, "description", where) or ""))
        return tuple(built)

    def dimensions(self, value: Any, key: str, time_field: str | None) -> tuple[DimensionConfig, ...]:
        if value is None:
            return ()
        if not isinstance(value, dict) or not value:
            self.problem(key, "must be a mapping of dimension name (StdTime, StdZ or any name) to an "
                              f"attribute name or {{field | band_metadata, unit, description}}, not {value!r}")
            return ()
        built: list[DimensionConfig] = []
        for raw_name, body in value.items():
            where = f"{key}.{raw_name}"
            name = self.dimension_name(raw_name, where)
            if name is None:
                continue
            if any(dim.name == name for dim in built):
                self.problem(where, f"dimension {name!r} appears twice (names are case-insensitive)")
                continue
            dimension = self.dimension(name, body, where, time_field)
            if dimension is not None:
                built.append(dimension)
        return tuple(built)

    def dimension_name(self, raw: Any, where: str) -> str | None:
        text = str(raw)
        for standard in STANDARD_DIMENSIONS:
            if text.lower() == standard.lower():
                return standard
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", text):
            self.problem(where, "a dimension name is a letter, then letters, digits or '_' (it is also "
                                "the WMS parameter DIM_<NAME>)")
            return None
        if text.lower() in RESERVED_DIMENSIONS:
            self.problem(where, f"{text!r} is how WMS and WCS call StdTime, StdZ or the variables; "
                                "name the dimension StdTime, StdZ or anything else")
            return None
        return text

    def dimension(self, name: str, body: Any, where: str, time_field: str | None) -> DimensionConfig | None:
        if isinstance(body, str):
            body = {"field": body}
        if body is None and name == "StdTime":
            body = {}
        if not isinstance(body, dict):
            self.problem(where, "must be an attribute name or a mapping {field | band_metadata, unit, "
                                f"description}}, not {body!r}")
            return None
        d = self.mapping(body, where, DIMENSION_KEYS)
        field_ = self.text(d, "field", where)
        band = self.text(d, "band_metadata", where)
        unit = self.text(d, "unit", where) or ""
        if name == "StdTime":
            if field_:
                self.problem(f"{where}.field", "StdTime is the service's time: set time_field (and "
                                               "end_time_field) instead")
                return None
            if band and time_field:
                self.problem(f"{where}.band_metadata", "StdTime comes from time_field or from band "
                                                       "metadata, not both")
                return None
            if not band and not time_field:
                self.problem(where, "StdTime needs time_field (an attribute) or band_metadata")
                return None
            if unit:
                self.problem(f"{where}.unit", "StdTime is in time units (ISO 8601, epoch milliseconds); "
                                              "drop unit")
        elif bool(field_) == bool(band):
            self.problem(where, "give field (a catalog attribute) or band_metadata (a band metadata "
                                "item, e.g. NETCDF_DIM_depth: the bands are slices), one of them")
            return None
        return DimensionConfig(name, field=field_, band_metadata=band, unit=unit,
                               description=self.text(d, "description", where) or "")

    # ---- service values -------------------------------------------------------------------------

    def sources(self, value: Any, key: str) -> tuple[str, ...]:
        if value is None:
            self.problem(key, "required: a glob or a list of globs of raster files")
            return ()
        patterns = [value] if isinstance(value, str) else value
        if (not isinstance(patterns, list) or not patterns
                or not all(isinstance(p, str) and p.strip() for p in patterns)):
            self.problem(key, f"must be a glob or a non-empty list of globs, not {value!r}")
            return ()
        # s3://bucket/prefix/**/*.tif and http(s):// URLs are kept as written: listing a bucket is the
        # catalog's work at its sync, which reports a pattern that matches nothing
        absolute = tuple(p if p.startswith(REMOTE_SOURCES) else str(self.path(p)) for p in patterns)
        local = [p for p in absolute if not p.startswith(REMOTE_SOURCES)]
        if local == list(absolute) and not any(os.path.isfile(f) for p in local
                                               for f in glob.iglob(p, recursive=True)):
            written = ", ".join(repr(p) for p in patterns)
            self.problem(key, f"{written} matches no file")
        return absolute

    def catalog(self, value: str | None, key: str) -> Path | None:
        if value is None:
            return None
        path = self.path(value)
        if not path.is_file():
            self.problem(key, f"no such file: {value!r}")
        return path

    def crs(self, value: Any, key: str) -> str | None:
        if value is None:
            return None
        from rasterio.crs import CRS
        from rasterio.errors import CRSError
        try:
            CRS.from_user_input(value)
        except (CRSError, TypeError, ValueError):
            self.problem(key, f"not a CRS (try 'EPSG:4326' or a WKT string): {value!r}")
            return None
        return f"EPSG:{value}" if _is_int(value) else str(value)

    def mosaic_method(self, d: dict, where: str) -> str | None:
        value = self.text(d, "default_mosaic_method", where)
        if value is None:
            return None
        canonical = canonical_mosaic_method(value)
        if canonical is None:
            self.problem(f"{where}.default_mosaic_method",
                         f"unknown mosaic method {value!r} (esriMosaicNorthwest, esriMosaicCenter, "
                         f"esriMosaicNadir, esriMosaicAttribute, esriMosaicLockRaster, ...)")
        return canonical

    def resampling(self, d: dict, where: str) -> str:
        value = self.text(d, "default_resampling", where)
        if value is None:
            return Resampling.BILINEAR
        canonical = canonical_resampling(value)
        if canonical is None:
            self.problem(f"{where}.default_resampling",
                         f"unknown resampling {value!r} (Nearest, Bilinear, Cubic or Majority)")
            return Resampling.BILINEAR
        return canonical

    def tile_scheme(self, d: dict, where: str) -> str:
        value = self.text(d, "tile_scheme", where)
        if value is None:
            return "WebMercatorQuad"
        for scheme in TILE_SCHEMES:
            if value.lower() == scheme.lower():
                return scheme
        self.problem(f"{where}.tile_scheme", f"must be WebMercatorQuad or native, not {value!r}")
        return "WebMercatorQuad"

    def tile_matrix_sets(self, value: Any, key: str) -> tuple[str, ...]:
        """Identifiers of the OGC TMS registry (as morecantile carries it), matched case-insensitively."""
        if value is None:
            return ()
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.problem(key, f"must be a list of tile matrix set identifiers, not {value!r}")
            return ()
        from .engine import InvalidParameter
        from .engine import known_identifiers
        from .engine import standard_tile_set as standard

        known = {k.lower(): k for k in known_identifiers()}
        built: list[str] = []
        for i, entry in enumerate(value):
            identifier = known.get(entry.strip().lower())
            if identifier is None:
                close = difflib.get_close_matches(entry, list(known.values()), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known.values())})"
                self.problem(f"{key}[{i}]", f"unknown tile matrix set {entry!r}{hint}")
                continue
            try:
                standard(identifier)
            except InvalidParameter as exc:
                self.problem(f"{key}[{i}]", exc.why)
                continue
            if identifier not in built:
                built.append(identifier)
        return tuple(built)

    def bounded_int(self, d: dict, key: str, where: str, lo: int, hi: int, default: int) -> int:
        value = d.get(key)
        if value is None:
            return default
        if not (_is_int(value) and lo <= value <= hi):
            self.problem(f"{where}.{key}", f"must be a whole number from {lo} to {hi}, not {value!r}")
            return default
        return value

    def band_ids(self, value: Any, key: str) -> tuple[int, ...] | None:
        if value is None:
            return None
        if (not isinstance(value, list) or not value
                or not all(_is_int(v) and v >= 0 for v in value)):
            self.problem(key, f"must be a non-empty list of band indexes (0, 1, ...), not {value!r}")
            return None
        return tuple(value)

    # ---- raster function templates --------------------------------------------------------------

    def templates(self, value: Any, key: str) -> tuple[FunctionTemplate, ...]:
        if value is None:
            return ()
        if not isinstance(value, list):
            self.problem(key, f"must be a list of templates, not {value!r}")
            return ()
        built: list[FunctionTemplate] = []
        for i, entry in enumerate(value):
            where = f"{key}[{i}]"
            template = self.template(entry, where)
            if template is None:
                continue
            if any(t.name == template.name for t in built):
                self.problem(f"{where}.name", f"duplicate template name {template.name!r}")
                continue
            built.append(template)
        return tuple(built)

    def template(self, entry: Any, where: str) -> FunctionTemplate | None:
        if isinstance(entry, str) and entry.lower().endswith(".json"):
            return self.template_file(entry, where)
        if isinstance(entry, str):
            return FunctionTemplate(name=entry, function=entry) if self.known(entry, where) else None
        if not isinstance(entry, dict):
            self.problem(where, "must be a function name, a mapping {name, function, arguments} "
                                f"or a .json template file, not {entry!r}")
            return None
        d = self.mapping(entry, where, TEMPLATE_KEYS)
        function = self.text(d, "function", where)
        if function is None:
            self.problem(f"{where}.function", "required: the raster function's name")
            return None
        return self.checked_template(self.text(d, "name", where) or function, function,
                                     d.get("arguments"), self.text(d, "description", where) or "",
                                     where, "arguments")

    def template_file(self, entry: str, where: str) -> FunctionTemplate | None:
        path = self.path(entry)
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.problem(where, f"no such file: {entry!r}")
            return None
        except (OSError, UnicodeDecodeError) as exc:
            self.problem(where, f"cannot read {entry!r}: {getattr(exc, 'strerror', None) or exc}")
            return None
        except json.JSONDecodeError as exc:
            self.problem(where, f"{entry}: invalid JSON at line {exc.lineno}, column {exc.colno}: "
                                f"{exc.msg}")
            return None
        where = f"{where} ({entry})"
        if isinstance(doc, dict) and (isinstance(doc.get("function"), dict) or doc.get("type") == "RasterFunctionTemplate"):
            return self.rft_file(doc, path, where)
        d = self.mapping(doc, where, TEMPLATE_FILE_KEYS)
        function = self.text(d, "rasterFunction", where)
        if function is None:
            self.problem(f"{where}.rasterFunction", "required: the raster function's name")
            return None
        return self.checked_template(self.text(d, "name", where) or path.stem, function,
                                     d.get("rasterFunctionArguments"),
                                     self.text(d, "description", where) or "", where,
                                     "rasterFunctionArguments")

    def rft_file(self, doc: dict, path: Path, where: str) -> FunctionTemplate | None:
        """A template file in ArcGIS's RFT JSON form ({"type": "RasterFunctionTemplate", ...})."""
        from .engine import read_template
        from .engine import ArgError

        d = self.mapping(doc, where, RFT_FILE_KEYS)
        try:
            function = read_template(doc).function
        except ArgError as exc:
            self.problem(where, str(exc))
            return None
        template = FunctionTemplate(self.text(d, "name", where) or path.stem, function, {},
                                    self.text(d, "description", where) or "", definition=doc)
        return self.valid_template(template, where)

    def checked_template(self, name: str, function: str, arguments: Any, description: str,
                         where: str, args_key: str) -> FunctionTemplate | None:
        ok = self.known(function, f"{where}.function" if args_key == "arguments"
                        else f"{where}.rasterFunction")
        if arguments is None:
            arguments = {}
        if not isinstance(arguments, dict):
            self.problem(f"{where}.{args_key}", f"must be a mapping, not {arguments!r}")
            return None
        ok = self.nested_functions(arguments, f"{where}.{args_key}") and ok
        return self.valid_template(FunctionTemplate(name, function, arguments, description), where) if ok else None

    def valid_template(self, template: FunctionTemplate, where: str) -> FunctionTemplate | None:
        """The template when its whole chain is a valid rule (every argument checked)."""
        from .engine import check_template

        problem = check_template(template, {})
        if problem:
            self.problem(where, problem)
            return None
        return template

    def known(self, function: str, where: str) -> bool:
        # Imported here: the function registry imports engine modules that import this module.
        from .engine import is_known

        if is_known(function):
            return True
        self.problem(where, f"unknown raster function {function!r}")
        return False

    def nested_functions(self, value: Any, where: str) -> bool:
        """Check the function names of chained functions inside a template's arguments."""
        ok = True
        if isinstance(value, dict):
            inner = value.get("rasterFunction")
            if isinstance(inner, str):
                ok = self.known(inner, f"{where}.rasterFunction")
            for k, v in value.items():
                ok = self.nested_functions(v, f"{where}.{k}") and ok
        elif isinstance(value, list):
            for i, v in enumerate(value):
                ok = self.nested_functions(v, f"{where}[{i}]") and ok
        return ok
