"""`services:` entries: each service's sources, catalog, defaults, tiling and limits (the server's,
overridden per service), with its OGC metadata, templates and dimensions from their modules."""

from __future__ import annotations

import difflib
import glob
import os
import re
from pathlib import Path
from typing import Any

from ..engine import MosaicMethod, Resampling, ServiceConfig, canonical_mosaic_method, canonical_resampling
from ..security.settings import access_value
from .model import ServerConfig
from .multidim import multidimensional
from .ogc_metadata import attribution, keywords, metadata_urls, ogc_crs, scale_denominators
from .raster_functions import templates
from .values import LIMIT_KEYS, Checker, is_int

SERVICE_KEYS = ("title", "description", "copyright_text", "sources", "catalog", "crs", "time_field",
                "end_time_field", "default_mosaic_method", "default_band_ids", "default_resampling",
                "tile_scheme", "tile_matrix_sets", "raster_functions", "keywords", "ogc_crs", "attribution",
                "metadata_urls", "min_scale_denominator", "max_scale_denominator", "variable_field",
                "variables", "dimensions", "nadir_field", "seamlines", "seamline_blend_width",
                "allow_download", "access") + LIMIT_KEYS
TILE_SCHEMES = ("WebMercatorQuad", "native")
REMOTE_SOURCES = ("s3://", "http://", "https://")      # sources read through GDAL's /vsis3/ and /vsicurl/
NCNAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")


def services_section(check: Checker, raw: Any, server: ServerConfig) -> dict[str, ServiceConfig]:
    if not raw:
        check.problem("services", "at least one service is required")
        return {}
    if not isinstance(raw, dict):
        check.problem("services", f"must be a mapping of service name to service, not {raw!r}")
        return {}
    built = {}
    for name, body in raw.items():
        name = str(name)
        where = f"services.{name}"
        check_service_name(check, name, where)
        if not isinstance(body, dict):
            check.problem(where, "must be a mapping with at least 'sources'")
            continue
        service = service_section(check, name, check.mapping(body, where, SERVICE_KEYS), where, server)
        if service is not None:
            built[name] = service
    return built


def service_section(check: Checker, name: str, d: dict, where: str, server: ServerConfig) -> ServiceConfig:
    time_field = check.text(d, "time_field", where)
    end_time_field = check.text(d, "end_time_field", where)
    if end_time_field and not time_field:
        check.problem(f"{where}.end_time_field", "needs time_field (the start of the extent)")
    return ServiceConfig(
        name=name,
        sources=sources(check, d.get("sources"), f"{where}.sources"),
        title=check.text(d, "title", where) or "",
        description=check.text(d, "description", where) or "",
        copyright_text=check.text(d, "copyright_text", where) or "",
        catalog=catalog(check, check.text(d, "catalog", where), f"{where}.catalog"),
        crs=crs(check, d.get("crs"), f"{where}.crs"),
        time_field=time_field,
        end_time_field=end_time_field,
        default_mosaic_method=mosaic_method(check, d, where),
        default_band_ids=band_ids(check, d.get("default_band_ids"), f"{where}.default_band_ids"),
        default_resampling=resampling(check, d, where),
        tile_scheme=tile_scheme(check, d, where),
        tile_matrix_sets=tile_matrix_sets(check, d.get("tile_matrix_sets"), f"{where}.tile_matrix_sets"),
        raster_functions=templates(check, d.get("raster_functions"), f"{where}.raster_functions"),
        limits=check.limits(d, where, server.limits),
        keywords=keywords(check, d.get("keywords"), f"{where}.keywords"),
        ogc_crs=ogc_crs(check, d.get("ogc_crs"), f"{where}.ogc_crs", server.ogc_crs),
        attribution=attribution(check, d.get("attribution"), f"{where}.attribution"),
        metadata_urls=metadata_urls(check, d.get("metadata_urls"), f"{where}.metadata_urls"),
        min_scale_denominator=(scales := scale_denominators(check, d, where))["min_scale_denominator"],
        max_scale_denominator=scales["max_scale_denominator"],
        nadir_field=check.text(d, "nadir_field", where),
        seamlines=catalog(check, check.text(d, "seamlines", where), f"{where}.seamlines"),
        seamline_blend_width=blend_width(check, d.get("seamline_blend_width"), f"{where}.seamline_blend_width"),
        **multidimensional(check, d, where, time_field),
        allow_download=check.flag(d, "allow_download", where, False),
        access=access_value(d.get("access"), f"{where}.access", check.problem),
    )


def blend_width(check: Checker, value: Any, key: str) -> float:
    if value is None:
        return 0.0
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < float("inf"):
        check.problem(key, f"must be a number of cells, 0 or more, not {value!r}")
        return 0.0
    return float(value)


def sources(check: Checker, value: Any, key: str) -> tuple[str, ...]:
    if value is None:
        check.problem(key, "required: a glob or a list of globs of raster files")
        return ()
    patterns = [value] if isinstance(value, str) else value
    if (not isinstance(patterns, list) or not patterns
            or not all(isinstance(p, str) and p.strip() for p in patterns)):
        check.problem(key, f"must be a glob or a non-empty list of globs, not {value!r}")
        return ()
    # s3://bucket/prefix/**/*.tif and http(s):// URLs are kept as written: listing a bucket is the
    # catalog's work at its sync, which reports a pattern that matches nothing
    absolute = tuple(p if p.startswith(REMOTE_SOURCES) else str(check.path(p)) for p in patterns)
    local = [p for p in absolute if not p.startswith(REMOTE_SOURCES)]
    if local == list(absolute) and not any(os.path.isfile(f) for p in local
                                           for f in glob.iglob(p, recursive=True)):
        written = ", ".join(repr(p) for p in patterns)
        check.problem(key, f"{written} matches no file")
    return absolute


def catalog(check: Checker, value: str | None, key: str) -> Path | None:
    if value is None:
        return None
    path = check.path(value)
    if not path.is_file():
        check.problem(key, f"no such file: {value!r}")
    return path


# URLs GDAL would fetch: every scheme except the OGC's own CRS register, which PROJ reads offline
_FETCHED = re.compile(r"^(?!https?://www\.opengis\.net/def/crs/)[a-z][a-z0-9+.-]*://", re.IGNORECASE)


def check_service_name(check: Checker, name: str, where: str) -> None:
    """A service name is NCName-safe: it is also a WMS layer, a WCS coverage and a WMTS layer identifier."""
    if not NCNAME.match(name):
        check.problem(where, "service name must start with a letter or '_' and hold only "
                             "letters, digits, '_', '-', '.'")


def crs(check: Checker, value: Any, key: str) -> str | None:
    if value is None:
        return None
    from rasterio.crs import CRS
    from rasterio.errors import CRSError
    if isinstance(value, str) and _FETCHED.match(value.strip()):
        # GDAL would download any other URL to read it: checking a config must not touch the network
        check.problem(key, f"not a CRS (a URL is not fetched; try 'EPSG:4326' or a WKT string): {value!r}")
        return None
    try:
        CRS.from_user_input(value)
    except (CRSError, TypeError, ValueError):
        check.problem(key, f"not a CRS (try 'EPSG:4326' or a WKT string): {value!r}")
        return None
    return f"EPSG:{value}" if is_int(value) else str(value)


def mosaic_method(check: Checker, d: dict, where: str) -> MosaicMethod | None:
    value = check.text(d, "default_mosaic_method", where)
    if value is None:
        return None
    canonical = canonical_mosaic_method(value)
    if canonical is None:
        check.problem(f"{where}.default_mosaic_method",
                      f"unknown mosaic method {value!r} (esriMosaicNorthwest, esriMosaicCenter, "
                      f"esriMosaicNadir, esriMosaicAttribute, esriMosaicLockRaster, ...)")
    return canonical


def resampling(check: Checker, d: dict, where: str) -> Resampling:
    value = check.text(d, "default_resampling", where)
    if value is None:
        return Resampling.BILINEAR
    canonical = canonical_resampling(value)
    if canonical is None:
        check.problem(f"{where}.default_resampling",
                      f"unknown resampling {value!r} (Nearest, Bilinear, Cubic or Majority)")
        return Resampling.BILINEAR
    return canonical


def tile_scheme(check: Checker, d: dict, where: str) -> str:
    value = check.text(d, "tile_scheme", where)
    if value is None:
        return "WebMercatorQuad"
    for scheme in TILE_SCHEMES:
        if value.lower() == scheme.lower():
            return scheme
    check.problem(f"{where}.tile_scheme", f"must be WebMercatorQuad or native, not {value!r}")
    return "WebMercatorQuad"


def tile_matrix_sets(check: Checker, value: Any, key: str) -> tuple[str, ...]:
    """Identifiers of the OGC TMS registry (as morecantile carries it), matched case-insensitively."""
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        check.problem(key, f"must be a list of tile matrix set identifiers, not {value!r}")
        return ()
    from ..engine import InvalidParameter, known_identifiers
    from ..engine import standard_tile_set as standard

    known = {k.lower(): k for k in known_identifiers()}
    built: list[str] = []
    for i, entry in enumerate(value):
        identifier = known.get(entry.strip().lower())
        if identifier is None:
            close = difflib.get_close_matches(entry, list(known.values()), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else f" (known: {', '.join(known.values())})"
            check.problem(f"{key}[{i}]", f"unknown tile matrix set {entry!r}{hint}")
            continue
        try:
            standard(identifier)
        except InvalidParameter as exc:
            check.problem(f"{key}[{i}]", exc.why)
            continue
        if identifier not in built:
            built.append(identifier)
    return tuple(built)


def band_ids(check: Checker, value: Any, key: str) -> tuple[int, ...] | None:
    if value is None:
        return None
    if (not isinstance(value, list) or not value
            or not all(is_int(v) and v >= 0 for v in value)):
        check.problem(key, f"must be a non-empty list of band indexes (0, 1, ...), not {value!r}")
        return None
    return tuple(value)

