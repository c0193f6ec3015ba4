"""The `server:` section: the gateway's title and URLs, its folders, its default limits and the
knobs of its caches, uploads and request admission."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from ..engine import DEFAULT_OGC_CRS, Limits
from ..security.settings import host_patterns, origin_list
from .model import ServerConfig
from .ogc_metadata import contact, keywords, ogc_crs
from .values import LIMIT_KEYS, Checker

SERVER_KEYS = ("title", "public_url", "cache_dir", "proxy_headers", "rest_http_errors", "abstract",
               "keywords", "contact", "fees", "access_constraints", "ogc_crs", "tile_metatile_size",
               "tile_cache_max_age", "allowed_hosts", "cors_origins", "data_dir", "max_upload_bytes",
               "upload_ttl_hours", "max_request_bytes", "tile_cache_max_bytes", "output_max_bytes",
               "heavy_request_pixels", "max_heavy_per_worker", "max_heavy_per_host", "access_log",
               "access_log_format", "cache_url", "catalog_url") + LIMIT_KEYS
CACHE_DIR_NAME = ".ogc-gateway-cache"


def server_section(check: Checker, raw: Any) -> ServerConfig:
    d = check.mapping(raw, "server", SERVER_KEYS)
    cache = check.text(d, "cache_dir", "server")
    public_url = check.text(d, "public_url", "server")
    if public_url is not None:
        if re.match(r"^https?://[^/\s]+", public_url):
            public_url = public_url.rstrip("/")
        else:
            check.problem("server.public_url",
                          f"must be an http:// or https:// URL, not {public_url!r}")
    return ServerConfig(
        cache_dir=check.path(cache) if cache else check.base / CACHE_DIR_NAME,
        title=check.text(d, "title", "server") or "ogc-gateway",
        public_url=public_url,
        proxy_headers=check.flag(d, "proxy_headers", "server", False),
        rest_http_errors=check.flag(d, "rest_http_errors", "server", False),
        limits=check.limits(d, "server", Limits()),
        abstract=check.text(d, "abstract", "server") or "",
        keywords=keywords(check, d.get("keywords"), "server.keywords"),
        contact=contact(check, d.get("contact"), "server.contact"),
        fees=check.text_or(d, "fees", "server", "none"),
        access_constraints=check.text_or(d, "access_constraints", "server", "none"),
        ogc_crs=ogc_crs(check, d.get("ogc_crs"), "server.ogc_crs", DEFAULT_OGC_CRS),
        tile_metatile_size=check.bounded_int(d, "tile_metatile_size", "server", 1, 16, 4),
        tile_cache_max_age=check.bounded_int(d, "tile_cache_max_age", "server", 0, 31_536_000, 3600),
        data_dir=optional_folder(check, d, "data_dir", "server"),
        max_upload_bytes=check.positive_int(d, "max_upload_bytes", "server") or 2 * 1024 ** 3,
        upload_ttl_hours=check.bounded_int(d, "upload_ttl_hours", "server", 1, 8760, 24),
        allowed_hosts=host_patterns(d.get("allowed_hosts"), "server.allowed_hosts", check.problem),
        cors_origins=origin_list(d.get("cors_origins"), "server.cors_origins", check.problem),
        max_request_bytes=check.bounded_int(d, "max_request_bytes", "server", 1024, 2**31, 10 * 2**20),
        tile_cache_max_bytes=check.bounded_int(d, "tile_cache_max_bytes", "server", 2**20, 2**60, 10 * 2**30),
        output_max_bytes=check.bounded_int(d, "output_max_bytes", "server", 2**20, 2**60, 2 * 2**30),
        heavy_request_pixels=check.bounded_int(d, "heavy_request_pixels", "server", 1, 2**40, 2048 * 2048),
        max_heavy_per_worker=check.bounded_int(d, "max_heavy_per_worker", "server", 1, 1024, 1),
        max_heavy_per_host=check.positive_int(d, "max_heavy_per_host", "server"),
        access_log=check.flag(d, "access_log", "server", True),
        access_log_format=check.choice(d, "access_log_format", "server", ("text", "json"), "text"),
        cache_url=cache_url(check, d, "cache_url", "server"),
        catalog_url=catalog_url(check, d, "catalog_url", "server"),
    )


def catalog_url(check: Checker, d: dict, key: str, where: str) -> str | None:
    value = check.text(d, key, where)          # never echoed: it may hold a password
    if value is not None and not re.match(r"^postgres(ql)?://\S+$", value):
        check.problem(f"{where}.{key}", "must be a postgresql://user:password@host:port/database URL")
        return None
    return value


def cache_url(check: Checker, d: dict, key: str, where: str) -> str | None:
    value = check.text(d, key, where)
    if value is not None and not re.match(r"^s3://[a-z0-9][a-z0-9.-]{1,61}[a-z0-9](/\S*)?$", value):
        check.problem(f"{where}.{key}", f"must be an s3://bucket/prefix URL, not {value!r}")
        return None
    return value.rstrip("/") if value else None


def optional_folder(check: Checker, d: dict, key: str, where: str) -> Path | None:
    """A folder key that may be absent; a number is a folder name, as for cache_dir."""
    value = check.text(d, key, where)
    return check.path(value) if value else None
